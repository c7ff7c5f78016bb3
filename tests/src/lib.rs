//! The harness for Atoll's end-to-end tests: starts the real gateway in-process on ephemeral
//! ports, with tenants built from `tenants/`, and gives the tests its addresses.
//!
//! ```no_run
//! let gateway = atoll_tests::TestGateway::start(atoll_tests::DEMO_TENANTS);
//! let url = gateway.url("/hello");
//! ```

use std::path::{Path, PathBuf};

use atoll_gateway::{Config, ServerHandle};

/// A config fragment with one tenant, `demo`, serving the example functions on host-less routes.
pub const DEMO_TENANTS: &str = r#"
tenants:
  demo:
    hosts: [localhost, "*.demo.localhost"]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [/hello]}
      echo: {wasm: "{wasm}/echo.wasm", routes: [/echo]}
      trap: {wasm: "{wasm}/trap.wasm", routes: [/trap]}
      noresponse: {wasm: "{wasm}/noresponse.wasm", routes: [/noresponse]}
"#;

/// Where `make tenants` puts the example components.
pub fn tenants_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenants/target/wasm32-wasip2/release")
}

/// The path of the example component `name`, checked to exist.
pub fn tenant_wasm(name: &str) -> PathBuf {
    let path = tenants_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the example tenants first (`make tenants`)",
        path.display()
    );
    path
}

/// A gateway running in this process, with its own data directory.
pub struct TestGateway {
    handle: Option<ServerHandle>,
    data_dir: DataDir,
    tenants_yaml: String,
}

/// The listeners of test gateways: ephemeral loopback ports.
const LISTEN: &str = "listen: {http: 127.0.0.1:0, admin: 127.0.0.1:0}";

/// The same, with an `https` listener (its certificates go in the `tls:` section).
const LISTEN_WITH_HTTPS: &str =
    "listen: {http: 127.0.0.1:0, admin: 127.0.0.1:0, https: 127.0.0.1:0}";

enum DataDir {
    Owned(tempfile::TempDir),
    Borrowed(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Owned(dir) => dir.path(),
            DataDir::Borrowed(path) => path,
        }
    }
}

impl TestGateway {
    /// Starts a gateway serving `tenants_yaml` (a `tenants:` section in which `{wasm}` stands
    /// for the directory of the built example tenants) with a fresh data directory.
    pub fn start(tenants_yaml: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        Self::start_in(tenants_yaml, DataDir::Owned(dir))
    }

    /// Starts a gateway like [`TestGateway::start`] but on an existing data directory.
    pub fn start_with_data_dir(tenants_yaml: &str, data_dir: &Path) -> TestGateway {
        Self::start_in(tenants_yaml, DataDir::Borrowed(data_dir.to_owned()))
    }

    /// Starts a gateway like [`TestGateway::start`] with an `https` listener too:
    /// `tenants_yaml` holds its `tls:` section.
    pub fn start_with_https(tenants_yaml: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let yaml = format!("{LISTEN_WITH_HTTPS}\n{tenants_yaml}");
        let config = parse_config(&yaml, dir.path()).expect("a valid test config");
        let handle = ServerHandle::start(config).expect("the gateway starts");
        TestGateway {
            handle: Some(handle),
            data_dir: DataDir::Owned(dir),
            tenants_yaml: tenants_yaml.to_owned(),
        }
    }

    fn start_in(tenants_yaml: &str, data_dir: DataDir) -> TestGateway {
        let config = test_config(tenants_yaml, data_dir.path()).expect("a valid test config");
        let handle = ServerHandle::start(config).expect("the gateway starts");
        TestGateway {
            handle: Some(handle),
            data_dir,
            tenants_yaml: tenants_yaml.to_owned(),
        }
    }

    /// The running server.
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// `http://<proxy>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle().http_addr())
    }

    /// The `https` listener's address, when started with [`TestGateway::start_with_https`].
    pub fn https_addr(&self) -> std::net::SocketAddr {
        self.handle()
            .https_addr()
            .expect("started with an https listener")
    }

    /// `http://<admin>/<path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle().admin_addr())
    }

    /// The operator token the gateway generated in its data directory.
    pub fn operator_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .expect("the gateway writes admin.token")
            .trim()
            .to_owned()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Starts the gateway again after a stop (see [`TestGateway::stop`]).
    pub fn try_start_again(&mut self) -> anyhow::Result<()> {
        let config = test_config(&self.tenants_yaml, self.data_dir.path())?;
        self.handle = Some(ServerHandle::start(config)?);
        Ok(())
    }

    /// Stops the gateway, keeping its data directory.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop();
        }
    }

    /// Stops the gateway and starts a new one on the same data directory and tenants.
    pub fn restart(&mut self) {
        self.restart_after(|_| {});
    }

    /// Stops the gateway, runs `between` on the data directory while nothing uses it, and
    /// starts a new gateway on it.
    pub fn restart_after(&mut self, between: impl FnOnce(&Path)) {
        if let Some(handle) = self.handle.take() {
            handle.stop();
        }
        between(self.data_dir.path());
        let config = test_config(&self.tenants_yaml, self.data_dir.path()).expect("valid config");
        self.handle = Some(ServerHandle::start(config).expect("the gateway restarts"));
    }
}

/// A config listening on ephemeral loopback ports with `data_dir` and the given tenants.
pub fn test_config(tenants_yaml: &str, data_dir: &Path) -> anyhow::Result<Config> {
    parse_config(&format!("{LISTEN}\n{tenants_yaml}"), data_dir)
}

/// `yaml` (with its `listen:` line) plus `data_dir` and 2 threads, `{wasm}` replaced.
fn parse_config(yaml: &str, data_dir: &Path) -> anyhow::Result<Config> {
    let wasm = tenants_dir();
    let yaml = format!(
        "data_dir: {}\nthreads: 2\n{}",
        data_dir.display(),
        yaml.replace("{wasm}", &wasm.display().to_string())
    );
    Ok(Config::parse(&yaml, None)?)
}

/// The value of a Prometheus sample line `name{labels} value` in `text`, if present.
pub fn metric_value(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}
