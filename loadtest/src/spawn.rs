//! A gateway the load tester starts itself: the `atoll serve` binary on ephemeral loopback
//! ports, with a fresh data directory and one proxy thread per `threads`, pinned to a CPU with
//! `taskset` when asked. Killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::Context as _;

/// How long the gateway may take to say it serves.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `atoll serve`.
pub struct SpawnedGateway {
    child: Child,
    /// The proxy listener.
    pub proxy: SocketAddr,
    /// The admin API's base URL.
    pub admin: String,
    /// The operator token.
    pub token: String,
    _data: tempfile::TempDir,
}

impl SpawnedGateway {
    /// Starts `atoll` (the binary at `binary`) with `threads` proxy threads, on `cpu` when given.
    pub fn start(binary: &Path, threads: usize, cpu: Option<usize>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: build it (cargo build --release --workspace --bins --examples)",
            binary.display()
        );
        let data = tempfile::tempdir()?;
        let config = data.path().join("atoll.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0}}\ndata_dir: data\nthreads: {threads}\n\
                 observability: {{access_log: off}}\n"
            ),
        )?;
        let mut command = crate::peers::pinned(binary, cpu);
        let mut child = command
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove("ATOLL_ADMIN_TOKEN")
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (addresses, serving) = std::sync::mpsc::channel();
        let last_words = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let words = last_words.clone();
        // Keep reading the log for the gateway's whole life, so it never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                    // Not a log event: the gateway's own last word, such as a start-up error.
                    *words
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = line;
                    continue;
                };
                if event["fields"]["message"] == "atoll is serving" {
                    let field =
                        |k: &str| event["fields"][k].as_str().unwrap_or_default().to_owned();
                    let _ = addresses.send((field("proxy"), field("admin")));
                }
            }
        });
        let (proxy, admin) = match serving.recv_timeout(START_TIMEOUT) {
            Ok(found) => found,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                anyhow::bail!("the gateway did not report serving within {START_TIMEOUT:?}");
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                let words = last_words
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                anyhow::bail!("the gateway exited before serving: {words}");
            }
        };
        let token = std::fs::read_to_string(data.path().join("data/admin.token"))
            .context("reading the operator token")?
            .trim()
            .to_owned();
        Ok(SpawnedGateway {
            proxy: proxy.parse().context("the proxy address")?,
            admin: format!("http://{admin}"),
            token,
            child,
            _data: data,
        })
    }

    /// The gateway's process id (of `taskset`'s child when pinned, which `taskset` execs into).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SpawnedGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
