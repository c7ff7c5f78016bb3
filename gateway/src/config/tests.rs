//! Config tests: the contract's example, defaults, inheritance, units and every validation.

use super::*;

const EXAMPLE: &str = r#"
listen:
  http: 127.0.0.1:8080
  admin: 127.0.0.1:8081
data_dir: ./atoll-data
tenants:
  demo:
    hosts: [localhost, "*.demo.localhost"]
    limits: {memory: 64MiB, cpu_time: 50ms, timeout: 10s, concurrency: 64, rate: 0, request_body: 10MiB}
    outbound: {allow: ["https://api.example.com"]}
    functions:
      hello: {wasm: path/to/hello.wasm, routes: [/hello]}
"#;

fn error(yaml: &str) -> String {
    Config::parse(yaml, Some(Path::new("cfg/atoll.yaml")))
        .unwrap_err()
        .to_string()
}

#[test]
fn the_contract_example_parses() {
    let config = Config::parse(EXAMPLE, Some(Path::new("/etc/atoll/atoll.yaml"))).unwrap();
    assert_eq!(config.listen.http, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.listen.admin, "127.0.0.1:8081".parse().unwrap());
    assert_eq!(config.data_dir, Path::new("/etc/atoll/./atoll-data"));
    let demo = &config.tenants["demo"];
    assert_eq!(
        demo.definition.hosts,
        vec![
            HostPattern::Exact("localhost".into()),
            HostPattern::Wildcard("demo.localhost".into())
        ]
    );
    assert_eq!(demo.definition.limits, Limits::default());
    assert_eq!(
        demo.definition.outbound_allow,
        vec!["https://api.example.com".to_owned()]
    );
    let hello = &demo.functions["hello"];
    assert_eq!(hello.wasm, Path::new("/etc/atoll/path/to/hello.wasm"));
    assert_eq!(hello.routes, vec![Route::parse("/hello").unwrap()]);
    assert_eq!(
        config.threads,
        std::thread::available_parallelism().unwrap().get().min(256),
        "threads default to the CPUs the process may use"
    );
    assert_eq!(config.shutdown_grace, Duration::from_secs(5));
}

#[test]
fn the_embedded_default() {
    let config = Config::embedded_default();
    assert_eq!(config.listen.http, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.listen.admin, "127.0.0.1:8081".parse().unwrap());
    assert_eq!(config.data_dir, Path::new("./atoll-data"));
    assert!(config.tenants.is_empty());
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.pool, PoolConfig::default());
}

#[test]
fn an_empty_file_is_the_defaults() {
    let config = Config::parse("# nothing\n", None).unwrap();
    assert_eq!(config.listen, Config::embedded_default().listen);
}

#[test]
fn tenant_limits_inherit_the_gateway_defaults() {
    let config = Config::parse(
        "limits: {cpu_time: 20ms, rate: 100}\ntenants:\n  a:\n    limits: {memory: 32MiB}\n  b: {}\n",
        None,
    )
    .unwrap();
    let a = &config.tenants["a"].definition.limits;
    assert_eq!(a.memory, ByteSize(32 << 20));
    assert_eq!(a.cpu_time, Duration::from_millis(20));
    assert_eq!(a.rate, 100);
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert_eq!(
        config.tenants["b"].definition.limits.cpu_time,
        Duration::from_millis(20)
    );
}

#[test]
fn relative_wasm_paths_resolve_against_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atoll.yaml");
    std::fs::write(
        &path,
        "tenants:\n  t:\n    functions:\n      f: {wasm: f.wasm}\n",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(
        config.tenants["t"].functions["f"].wasm,
        dir.path().join("f.wasm")
    );
    assert_eq!(config.data_dir, dir.path().join("./atoll-data"));
    let missing = config.check_files().unwrap_err().to_string();
    assert!(
        missing.contains(":4: tenants.t.functions.f.wasm: component file"),
        "{missing}"
    );
    std::fs::write(dir.path().join("f.wasm"), b"x").unwrap();
    config.check_files().unwrap();
}

#[test]
fn an_unknown_key_names_itself_and_its_line() {
    let e = error("listen:\n  http: 127.0.0.1:1\ntenants:\n  demo:\n    limits: {memry: 1MiB}\n");
    assert!(e.starts_with("cfg/atoll.yaml:5:"), "{e}");
    assert!(e.contains("memry"), "{e}");
    assert!(e.contains("tenants.demo.limits"), "{e}");
}

#[test]
fn bad_yaml_names_the_line() {
    let e = error("listen:\n  http: [\n");
    assert!(e.starts_with("cfg/atoll.yaml:"), "{e}");
    let e = error("a: 1\n  b: 2\n");
    assert!(e.starts_with("cfg/atoll.yaml:"), "{e}");
}

#[test]
fn bad_units_name_the_key() {
    let e = error("tenants:\n  demo:\n    limits:\n      memory: 64MB\n");
    assert!(e.starts_with("cfg/atoll.yaml:4:"), "{e}");
    assert!(e.contains("tenants.demo.limits.memory"), "{e}");
    assert!(e.contains("invalid size `64MB`"), "{e}");
    let e = error("limits: {timeout: 10h}\n");
    assert!(e.contains("invalid duration `10h`"), "{e}");
    let e = error("listen: {http: nope}\n");
    assert!(e.contains("listen.http"), "{e}");
}

#[test]
fn bad_values_in_flow_mappings_name_the_innermost_key() {
    for yaml in [
        "tenants:\n  demo:\n    limits: {memory: lots}\n",
        "tenants:\n  demo:\n    limits: {cpu_time: 50ms, memory: lots}\n",
        "tenants: {demo: {limits: {memory: lots}}}\n",
    ] {
        let e = error(yaml);
        assert!(
            e.contains(": tenants.demo.limits.memory: invalid size `lots`"),
            "{yaml}: {e}"
        );
    }
    let e = error(
        "tenants:\n  demo:\n    functions:\n      f: {wasm: a.wasm, routes: [/a], config: {K: [1]}}\n",
    );
    assert!(e.contains("tenants.demo.functions.f.config.K"), "{e}");
}

#[test]
fn bad_names_are_refused() {
    for name in ["Demo", "-demo", "de_mo", &"a".repeat(64)] {
        let e = error(&format!("tenants:\n  {name}: {{}}\n"));
        assert!(
            e.contains("must match ^[a-z0-9][a-z0-9-]{0,62}$"),
            "{name}: {e}"
        );
        assert!(e.starts_with("cfg/atoll.yaml:2:"), "{e}");
    }
    let e = error("tenants:\n  t:\n    functions:\n      Bad: {wasm: x.wasm}\n");
    assert!(e.contains("function name `Bad`"), "{e}");
    use crate::definition::is_valid_name;
    assert!(is_valid_name("a") && is_valid_name("a-1") && is_valid_name(&"a".repeat(63)));
}

#[test]
fn a_route_host_outside_the_tenants_hosts_is_refused() {
    let e = error(
        "tenants:\n  beta:\n    hosts: [beta.test]\n    functions:\n      f: {wasm: f.wasm, routes: [acme.test/api]}\n",
    );
    assert!(
        e.contains("route `acme.test/api`: host `acme.test` is not in tenant `beta`'s hosts"),
        "{e}"
    );
    assert!(
        e.starts_with("cfg/atoll.yaml:5: tenants.beta.functions.f.routes:"),
        "{e}"
    );
    // Covered by a wildcard, and host-less routes (the operator's config) are allowed.
    Config::parse(
        "tenants:\n  beta:\n    hosts: ['*.beta.test']\n    functions:\n      f: {wasm: f.wasm, routes: [x.beta.test/a, /b]}\n",
        None,
    )
    .unwrap();
}

#[test]
fn a_duplicate_route_names_both_functions() {
    let e = error(
        "tenants:\n  a:\n    functions:\n      hello: {wasm: a.wasm, routes: [/hello]}\n  b:\n    functions:\n      x: {wasm: b.wasm, routes: [/hello/]}\n",
    );
    assert!(
        e.contains(
            "route `/hello` of tenants.b.functions.x is already taken by tenants.a.functions.hello"
        ),
        "{e}"
    );
}

#[test]
fn bad_routes_and_hosts_are_refused() {
    let e = error("tenants:\n  t:\n    functions:\n      f: {wasm: f.wasm, routes: [nopath]}\n");
    assert!(e.contains("has no path"), "{e}");
    let e = error("tenants:\n  t:\n    hosts: ['a.*.test']\n");
    assert!(e.contains("tenants.t.hosts"), "{e}");
}

#[test]
fn limits_above_the_pool_say_which() {
    let e = error("pool: {max_memory: 128MiB}\ntenants:\n  t:\n    limits: {memory: 256MiB}\n");
    assert!(
        e.contains("tenants.t.limits.memory: memory 256MiB is above pool.max_memory 128MiB"),
        "{e}"
    );
    assert!(e.starts_with("cfg/atoll.yaml:4:"), "{e}");
    let e = error("pool: {total_instances: 10}\nlimits: {concurrency: 11}\n");
    assert!(e.contains("limits.concurrency"), "{e}");
    let e = error("limits: {concurrency: 0}\n");
    assert!(e.contains("concurrency 0 must be from 1"), "{e}");
    let e = error("limits: {cpu_time: 0ms}\n");
    assert!(e.contains("cpu_time must be above 0"), "{e}");
}

#[test]
fn other_checks() {
    assert!(error("threads: 0\n").contains("threads"));
    assert!(
        error("listen: {http: 127.0.0.1:9000, admin: 127.0.0.1:9000}\n").contains("listen.admin")
    );
    Config::parse("listen: {http: 127.0.0.1:0, admin: 127.0.0.1:0}\n", None).unwrap();
    assert!(
        error("tenants:\n  t:\n    outbound: {allow: [ftp://x.test]}\n")
            .contains("tenants.t.outbound.allow")
    );
    assert!(
        error("tenants:\n  t:\n    outbound: {allow: ['https://x.test:99999']}\n").contains("port")
    );
    Config::parse(
        "tenants:\n  t:\n    outbound: {allow: ['https://*.x.test:8443', 'http://y.test']}\n",
        None,
    )
    .unwrap();
    assert!(
        error("tenants:\n  t:\n    functions:\n      f: {wasm: ''}\n")
            .contains("wasm cannot be empty")
    );
}

#[test]
fn the_default_yaml_parses() {
    Config::parse(DEFAULT_CONFIG_YAML, None).unwrap();
}

#[test]
fn observability_defaults_on_and_switches_off() {
    let config = Config::parse("", None).unwrap();
    assert_eq!(config.observability, Observability::default());
    assert_eq!(config.observability.metrics, Recording::On);
    assert_eq!(config.observability.access_log, Recording::On);

    let config = Config::parse("observability: {metrics: off, access_log: off}\n", None).unwrap();
    assert_eq!(config.observability.metrics, Recording::Off);
    assert_eq!(config.observability.access_log, Recording::Off);

    let message = error("observability:\n  access_log: sometimes\n");
    assert!(message.contains("cfg/atoll.yaml:2"), "{message}");
    assert!(message.contains("observability.access_log"), "{message}");
}

#[test]
fn gateway_wide_outbound_settings() {
    let config = Config::parse(
        "outbound: {max_requests: 3, connect_timeout: 2s, first_byte_timeout: 250ms, ca_file: ca.pem}\n",
        Some(Path::new("/etc/atoll/atoll.yaml")),
    )
    .unwrap();
    let settings = config.outbound.settings;
    assert_eq!(settings.max_requests, 3);
    assert_eq!(settings.connect_timeout, Duration::from_secs(2));
    assert_eq!(settings.first_byte_timeout, Duration::from_millis(250));
    assert_eq!(
        settings.between_bytes_timeout,
        OutboundSettings::default().between_bytes_timeout
    );
    assert_eq!(
        config.outbound.ca_file.as_deref(),
        Some(Path::new("/etc/atoll/ca.pem"))
    );
    let e = error("outbound: {connect_timeout: 0s}\n");
    assert!(
        e.contains("cfg/atoll.yaml:1: outbound.connect_timeout"),
        "{e}"
    );
    assert!(error("outbound: {retries: 2}\n").contains("retries"));
    // An address pattern, IPv4 or IPv6, is a valid origin.
    Config::parse(
        "tenants:\n  t:\n    outbound: {allow: ['http://10.0.0.5:8080', 'https://[fd00::1]']}\n",
        None,
    )
    .unwrap();
}

#[test]
fn origins_parse_and_are_checked() {
    let config = Config::parse(
        "tenants:\n  t:\n    hosts: [shop.test]\n    origins:\n      web: {url: 'https://origin.test:8443/v2/', routes: [shop.test/static], strip_prefix: /static, host: incoming, read_timeout: 2s}\n",
        None,
    )
    .unwrap();
    let web = &config.tenants["t"].origins["web"];
    assert_eq!(web.spec.url.host, "origin.test");
    assert_eq!(web.spec.url.port, 8443);
    assert_eq!(web.spec.url.base_path, "/v2");
    assert_eq!(web.spec.host_header, crate::origins::HostHeader::Incoming);
    assert_eq!(web.spec.read_timeout, Duration::from_secs(2));
    assert_eq!(web.spec.connect_timeout, Duration::from_secs(5));
    assert_eq!(web.routes, vec![Route::parse("shop.test/static").unwrap()]);

    let e = error("tenants:\n  t:\n    origins:\n      o: {url: 'ftp://x.test', routes: [/o]}\n");
    assert!(e.contains("tenants.t.origins.o.url"), "{e}");
    let e = error(
        "tenants:\n  t:\n    origins:\n      o: {url: 'http://x.test', routes: [other.test/o]}\n",
    );
    assert!(e.contains("not in tenant `t`'s hosts"), "{e}");
    let e = error(
        "tenants:\n  t:\n    functions:\n      f: {wasm: f.wasm, routes: [/x]}\n    origins:\n      o: {url: 'http://x.test', routes: [/x]}\n",
    );
    assert!(e.contains("already taken by tenants.t.functions.f"), "{e}");
    let e = error(
        "tenants:\n  t:\n    functions:\n      same: {wasm: f.wasm}\n    origins:\n      same: {url: 'http://x.test'}\n",
    );
    assert!(e.contains("already the name of a function"), "{e}");
    let e = error(
        "tenants:\n  t:\n    origins:\n      o: {url: 'http://x.test', strip_prefix: static}\n",
    );
    assert!(e.contains("strip_prefix"), "{e}");
    let e = error("tenants:\n  t:\n    origins:\n      o: {url: 'http://x.test', host: ''}\n");
    assert!(e.contains("tenants.t.origins.o.host"), "{e}");
}

#[test]
fn the_https_listener_needs_certificates() {
    let e = error("listen: {https: 127.0.0.1:8443}\n");
    assert!(e.contains("cfg/atoll.yaml:1: listen.https"), "{e}");
    assert!(e.contains("tls.certificates"), "{e}");
    let e = error(
        "listen: {https: 127.0.0.1:8080}\ntls:\n  certificates:\n    - {hosts: [a.test], cert: a.pem, key: a.key}\n",
    );
    assert!(e.contains("already another listener's"), "{e}");
    let e = error("tls:\n  certificates:\n    - {hosts: [], cert: a.pem, key: a.key}\n");
    assert!(e.contains("needs its hosts"), "{e}");
    let config = Config::parse(
        "listen: {https: 127.0.0.1:8443}\ntls:\n  certificates:\n    - {hosts: [a.test, '*.b.test'], cert: certs/a.pem, key: certs/a.key}\n",
        Some(Path::new("/etc/atoll/atoll.yaml")),
    )
    .unwrap();
    assert_eq!(config.listen.https, Some("127.0.0.1:8443".parse().unwrap()));
    let certificate = &config.tls.certificates[0];
    assert_eq!(certificate.cert, Path::new("/etc/atoll/certs/a.pem"));
    assert_eq!(certificate.hosts.len(), 2);
}

#[test]
fn function_config_variables_are_checked_by_name() {
    let config = Config::parse(
        "tenants:\n  t:\n    functions:\n      f: {wasm: f.wasm, config: {origin: 'https://o.test', API_KEY: s3cr3t}}\n",
        None,
    )
    .unwrap();
    let f = &config.tenants["t"].functions["f"];
    assert_eq!(f.config["origin"], "https://o.test");
    assert_eq!(f.config.len(), 2);
    let e = error(
        "tenants:\n  t:\n    functions:\n      f: {wasm: f.wasm, config: {'bad key': secret-value}}\n",
    );
    assert!(e.contains("tenants.t.functions.f.config"), "{e}");
    assert!(e.contains("bad key"), "{e}");
    assert!(
        !e.contains("secret-value"),
        "a value leaked into the error: {e}"
    );
}

#[test]
fn a_tenant_past_a_quota_is_refused_naming_it() {
    let e = error(
        "tenants:\n  t:\n    hosts: [t.test]\n    limits: {functions: 1}\n    functions:\n      a: {wasm: a.wasm}\n      b: {wasm: b.wasm}\n",
    );
    assert!(e.contains("tenants.t.functions: 2 functions"), "{e}");
    assert!(e.contains("limits.functions"), "{e}");
    let e = error(
        "tenants:\n  t:\n    hosts: [t.test]\n    limits: {routes: 1}\n    functions:\n      a: {wasm: a.wasm, routes: [t.test/a, t.test/b]}\n",
    );
    assert!(e.contains("tenants.t.routes"), "{e}");
}
