//! Runs the `atoll serve` binary for end-to-end tests: on ephemeral ports with its own data
//! directory and JSON logs, which are kept for the test to search.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `atoll` binary of this build.
pub fn atoll() -> Command {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The built example component `name`.
pub fn tenant_wasm(name: &str) -> std::path::PathBuf {
    let path = repo().join(format!("tenants/target/wasm32-wasip2/release/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make tenants`",
        path.display()
    );
    path
}

/// A gateway run as the `atoll serve` binary; killed on drop.
pub struct Served {
    pub child: Child,
    pub proxy: String,
    pub admin: String,
    pub data: tempfile::TempDir,
    pub log: Log,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// `atoll serve` with no tenants, its data in a new temporary directory.
    pub fn start() -> Served {
        Served::start_in(tempfile::tempdir().unwrap(), "")
    }

    /// `atoll serve` with `extra` appended to its config (which listens on ephemeral ports and
    /// keeps its data in `data/data`), with `RUST_LOG=info`.
    pub fn start_in(data: tempfile::TempDir, extra: &str) -> Served {
        let path = data.path().join("atoll.yaml");
        std::fs::write(
            &path,
            format!("listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\ndata_dir: data\n{extra}"),
        )
        .unwrap();
        let mut child = atoll()
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .env_remove("ATOLL_ADMIN_TOKEN")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log::default();
        log.follow(child.stderr.take().unwrap());
        let serving = log.wait_for(Duration::from_secs(60), |event| {
            event["fields"]["message"] == "atoll is serving"
        });
        let serving = serving.expect("atoll serve reports serving within 60 s");
        let address = |key: &str| serving["fields"][key].as_str().unwrap().to_owned();
        Served {
            proxy: address("proxy"),
            admin: address("admin"),
            child,
            data,
            log,
        }
    }

    /// The operator token the gateway wrote to its data directory.
    pub fn operator_token(&self) -> String {
        std::fs::read_to_string(self.data.path().join("data/admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// The JSON log events a gateway has written so far, in order.
#[derive(Clone, Default)]
pub struct Log {
    events: Arc<(Mutex<Vec<Value>>, Condvar)>,
}

impl Log {
    /// Reads `stderr` line by line on a thread of its own until it closes, so the gateway
    /// never writes into a full pipe.
    fn follow(&self, stderr: impl std::io::Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let (events, changed) = &*log.events;
                events.lock().unwrap().push(event);
                changed.notify_all();
            }
        });
    }

    /// Every event so far that `filter` accepts.
    pub fn matching(&self, filter: impl Fn(&Value) -> bool) -> Vec<Value> {
        let events = self.events.0.lock().unwrap();
        events.iter().filter(|e| filter(e)).cloned().collect()
    }

    /// Waits up to `limit` for an event that `filter` accepts.
    pub fn wait_for(&self, limit: Duration, filter: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait_for_count(limit, 1, filter).pop()
    }

    /// Waits up to `limit` until `count` events match `filter`; returns those there are.
    pub fn wait_for_count(
        &self,
        limit: Duration,
        count: usize,
        filter: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let (events, changed) = &*self.events;
        let mut guard = events.lock().unwrap();
        loop {
            let found: Vec<Value> = guard.iter().filter(|e| filter(e)).cloned().collect();
            let now = Instant::now();
            if found.len() >= count || now >= deadline {
                return found;
            }
            guard = changed.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

/// One HTTP call, blocking: `method url` with a bearer `token` (when given), an optional
/// `Host` header and `body`; the status and the body.
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    host: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    try_call(method, url, token, host, body).expect("the gateway answers")
}

/// [`call`], with `Err` when there is no answer (the gateway is gone), bounded at 30 s.
pub fn try_call(
    method: &str,
    url: &str,
    token: Option<&str>,
    host: Option<&str>,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .timeout(Duration::from_secs(30))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?.to_vec()))
    })
}

/// [`call`] whose answer is JSON.
pub fn call_json(method: &str, url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let (status, body) = call(method, url, token, None, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `atoll` run against `served` as `token`, through `ATOLL_ADMIN` and `ATOLL_TOKEN`; its output.
pub fn atoll_as(served: &Served, token: &str, args: &[&str]) -> std::process::Output {
    atoll()
        .args(args)
        .env("ATOLL_ADMIN", format!("http://{}", served.admin))
        .env("ATOLL_TOKEN", token)
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded (else its output is the failure message).
pub fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
