//! The `atoll` binary's commands: `check` on good and bad configs, `serve` with the embedded
//! default and with a config, stopped by SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Served, atoll, atoll_as, repo, stdout_of};

#[test]
fn check_accepts_the_demo_config() {
    let output = atoll()
        .args(["check", "--config"])
        .arg(repo().join("config/atoll.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok (1 tenants, 4 functions)"), "{stdout}");
}

#[test]
fn check_names_the_file_line_and_key_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "listen:\n  http: 127.0.0.1:8080\ntenants:\n  demo:\n    limits:\n      memory: 64MB\n",
    )
    .unwrap();
    let output = atoll()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("{}:6:", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("tenants.demo.limits.memory"), "{stderr}");
    assert!(stderr.contains("64MB"), "{stderr}");
}

#[test]
fn check_refuses_a_missing_component_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atoll.yaml");
    std::fs::write(
        &path,
        "tenants:\n  demo:\n    functions:\n      hello: {wasm: missing.wasm, routes: [/hello]}\n",
    )
    .unwrap();
    let output = atoll()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":4: tenants.demo.functions.hello.wasm"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.wasm"), "{stderr}");
}

#[test]
fn check_refuses_a_missing_file() {
    let output = atoll()
        .args(["check", "--config", "/nonexistent/atoll.yaml"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/atoll.yaml"), "{stderr}");
}

#[test]
fn serve_starts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atoll.yaml");
    let hello = repo().join("tenants/target/wasm32-wasip2/release/hello.wasm");
    assert!(hello.exists(), "run `make tenants` first");
    std::fs::write(
        &path,
        format!(
            "listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\ndata_dir: data\ntenants:\n  demo:\n    functions:\n      hello: {{wasm: {}, routes: [/hello]}}\n",
            hello.display()
        ),
    )
    .unwrap();
    let mut child = atoll()
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut saw_serving = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("atoll is serving") {
            saw_serving = true;
            break;
        }
        assert!(Instant::now() < deadline, "no start within 60 s");
    }
    assert!(saw_serving, "the gateway logged that it serves");
    assert!(
        dir.path().join("data/artifacts").is_dir(),
        "data_dir is relative to the config"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn deploy_uploads_a_component_and_reports_errors_clearly() {
    let served = Served::start();
    let operator = served.operator_token();
    let operator = operator.as_str();
    let admin = format!("http://{}", served.admin);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let token = runtime.block_on(async {
        let status = client
            .put(format!("{admin}/v1/tenants/acme"))
            .bearer_auth(operator)
            .body(r#"{"hosts": ["acme.test"]}"#)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let body: serde_json::Value = client
            .post(format!("{admin}/v1/tenants/acme/tokens"))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["token"].as_str().unwrap().to_owned()
    });
    let hello = repo().join("tenants/target/wasm32-wasip2/release/hello.wasm");

    let output = atoll()
        .args([
            "deploy",
            "--tenant",
            "acme",
            "--function",
            "hello",
            "--route",
            "acme.test/hi",
        ])
        .args(["--admin", &admin])
        .arg(&hello)
        .env("ATOLL_TOKEN", &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("deployed acme/hello version "), "{stdout}");
    assert!(stdout.contains("routes: acme.test/hi"), "{stdout}");
    let text = runtime.block_on(async {
        client
            .get(format!("http://{}/hi", served.proxy))
            .header("host", "acme.test")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(text, "Hello from Atoll!\n");

    let output = atoll()
        .args([
            "deploy",
            "--tenant",
            "acme",
            "--function",
            "hello",
            "--token",
            "wrong",
        ])
        .args(["--admin", &admin])
        .arg(&hello)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("--token"),
        "{stderr}"
    );

    let output = atoll()
        .args([
            "deploy",
            "--tenant",
            "acme",
            "--function",
            "hello",
            "--token",
            "x",
        ])
        .args(["--admin", "http://127.0.0.1:9"])
        .arg(&hello)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot reach the admin API"), "{stderr}");
}

#[test]
fn a_deploy_survives_sigkill() {
    let served = Served::start();
    let operator = served.operator_token();
    let admin = format!("http://{}", served.admin);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let hello =
        std::fs::read(repo().join("tenants/target/wasm32-wasip2/release/hello.wasm")).unwrap();
    let version = runtime.block_on(async {
        let put = client
            .put(format!("{admin}/v1/tenants/acme"))
            .bearer_auth(&operator)
            .body(r#"{"hosts": ["acme.test"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let deployed: serde_json::Value = client
            .put(format!(
                "{admin}/v1/tenants/acme/functions/hello?route=acme.test/"
            ))
            .bearer_auth(&operator)
            .body(hello)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        deployed["version"].as_str().unwrap().to_owned()
    });
    // SIGKILL: no shutdown code runs.
    let mut served = served;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let data = std::mem::replace(&mut served.data, tempfile::tempdir().unwrap());
    drop(served);

    let restarted = Served::start_in(data, "");
    let admin = format!("http://{}", restarted.admin);
    runtime.block_on(async {
        let view: serde_json::Value = client
            .get(format!("{admin}/v1/tenants/acme/functions/hello"))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["version"], version.as_str());
        let text = client
            .get(format!("http://{}/", restarted.proxy))
            .header("host", "acme.test")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(text, "Hello from Atoll!\n");
    });
}

#[test]
fn tokens_are_made_listed_revoked_and_the_operators_rotated_from_the_command_line() {
    let served = Served::start();
    let operator = served.operator_token();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("http://{}/v1/tenants/acme", served.admin))
            .bearer_auth(&operator)
            .body(r#"{"hosts": ["acme.test"]}"#)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let made: serde_json::Value = serde_json::from_str(&stdout_of(&atoll_as(
        &served,
        &operator,
        &["tokens", "create", "--tenant", "acme", "--json"],
    )))
    .unwrap();
    let (id, token) = (
        made["id"].as_str().unwrap(),
        made["token"].as_str().unwrap(),
    );
    assert!(token.starts_with("atl_acme_"), "{made}");

    // The tenant lists its own tokens: a table with the id and never the secret.
    let table = stdout_of(&atoll_as(
        &served,
        token,
        &["tokens", "list", "--tenant", "acme"],
    ));
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(id) && table.contains("GMT"), "{table}");
    assert!(!table.contains(&token[9..]), "{table}");

    // A tenant may not make tokens; the error names the status, the code and a hint.
    let refused = atoll_as(&served, token, &["tokens", "create", "--tenant", "acme"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("403 forbidden"), "{stderr}");

    stdout_of(&atoll_as(
        &served,
        &operator,
        &["tokens", "revoke", "--tenant", "acme", id],
    ));
    let revoked = atoll_as(&served, token, &["tokens", "list", "--tenant", "acme"]);
    assert!(!revoked.status.success(), "a revoked token is refused");
    let stderr = String::from_utf8_lossy(&revoked.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("ATOLL_TOKEN"),
        "{stderr}"
    );

    // Rotation: the new token is printed once, written to admin.token, and the old one is
    // refused at once.
    let rotated = stdout_of(&atoll_as(
        &served,
        &operator,
        &["tokens", "rotate-operator"],
    ));
    let rotated = rotated.trim();
    assert!(rotated.starts_with("atl_operator_") && rotated != operator);
    assert_eq!(served.operator_token(), rotated);
    let old = atoll_as(&served, &operator, &["tokens", "list", "--tenant", "acme"]);
    assert!(!old.status.success(), "the old operator token is refused");
    let listed = stdout_of(&atoll_as(
        &served,
        rotated,
        &["tokens", "list", "--tenant", "acme", "--json"],
    ));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["tokens"], serde_json::json!([]), "{listed}");
}
