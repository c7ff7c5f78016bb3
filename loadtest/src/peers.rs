//! The servers `hello` is measured against, started by the load tester on a free loopback port
//! and killed when dropped: nginx answering the same text from its config (the ceiling), and
//! `wasmtime serve` running the same component (the peer). Either may be missing on a machine:
//! [`PeerError::Missing`] says so, and the scenario reports the peer as skipped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a peer may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a peer is not running.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Its program is not installed.
    #[error("`{program}` is not installed ({hint})")]
    Missing {
        /// The program looked for.
        program: String,
        /// How to install it.
        hint: &'static str,
    },
    /// It is installed but did not start.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for PeerError {
    fn from(error: anyhow::Error) -> Self {
        PeerError::Failed(error)
    }
}

impl From<std::io::Error> for PeerError {
    fn from(error: std::io::Error) -> Self {
        PeerError::Failed(error.into())
    }
}

/// A running peer server.
pub struct Peer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Peer {
    /// nginx (`program`: a path or a name on `PATH`) as one process (`master_process off`, so
    /// killing it leaves no worker behind), answering every request with `body` as
    /// `text/plain`, access log off.
    pub fn nginx(program: &str, body: &str, cpu: Option<usize>) -> Result<Peer, PeerError> {
        let program = find(program, "apt-get install nginx-light")?;
        let dir = tempfile::tempdir()?;
        let addr = free_port()?;
        let prefix = dir.path();
        let config = prefix.join("nginx.conf");
        let escaped = body
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        std::fs::write(
            &config,
            format!(
                "master_process off;\ndaemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  client_body_temp_path {prefix};\n  proxy_temp_path {prefix};\n\
                 fastcgi_temp_path {prefix};\n  uwsgi_temp_path {prefix};\n  scgi_temp_path {prefix};\n\
                 server {{\n    listen {addr};\n    location / {{ default_type \"text/plain; charset=utf-8\"; return 200 \"{escaped}\"; }}\n  }}\n}}\n",
                prefix = prefix.display(),
            ),
        )?;
        let mut command = pinned(&program, cpu);
        command
            .arg("-c")
            .arg(&config)
            .arg("-p")
            .arg(prefix)
            .arg("-e")
            .arg(prefix.join("error.log"));
        Peer::start(command, addr, dir)
    }

    /// `wasmtime serve` (`program`: a path or a name on `PATH`) running `wasm` with its default
    /// settings (a fresh instance per request) and the wasi:cli interfaces linked.
    pub fn wasmtime_serve(
        program: &str,
        wasm: &Path,
        cpu: Option<usize>,
    ) -> Result<Peer, PeerError> {
        let program = find(
            program,
            "cargo install wasmtime-cli --version 48.0.8 --locked, the gateway's wasmtime",
        )?;
        let dir = tempfile::tempdir()?;
        let addr = free_port()?;
        let mut command = pinned(&program, cpu);
        // `-S cli`: components built for wasm32-wasip2 (Rust's std) import wasi:cli
        // interfaces beyond the proxy world; Atoll links them too.
        command
            .args(["serve", "-S", "cli", "--addr", &addr.to_string()])
            .arg(wasm);
        Peer::start(command, addr, dir)
    }

    fn start(
        mut command: Command,
        addr: SocketAddr,
        dir: tempfile::TempDir,
    ) -> Result<Peer, PeerError> {
        let log = std::fs::File::create(dir.path().join("stderr.log"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {command:?}: {e}"))?;
        let mut peer = Peer {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(peer);
            }
            if let Some(status) = peer.child.try_wait()? {
                let log = std::fs::read_to_string(peer._dir.path().join("stderr.log"))
                    .unwrap_or_default();
                return Err(
                    anyhow::anyhow!("{command:?} exited ({status}) before serving: {log}").into(),
                );
            }
            if Instant::now() > deadline {
                return Err(anyhow::anyhow!(
                    "{command:?} did not accept connections within {START_TIMEOUT:?}"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` on `cpu` through `taskset` when one is given, else as it is.
pub fn pinned(program: &Path, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", &cpu.to_string()]).arg(program);
            taskset
        }
        None => Command::new(program),
    }
}

/// `program` as a path, or found on `PATH` (and in `~/.cargo/bin`, where `cargo install` puts
/// it).
fn find(program: &str, hint: &'static str) -> Result<PathBuf, PeerError> {
    let missing = || PeerError::Missing {
        program: program.to_owned(),
        hint,
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(missing())
        };
    }
    let cargo_bin = std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin"));
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(cargo_bin)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .ok_or_else(missing)
}

/// A loopback port nobody listens on now.
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_reported_as_missing_with_how_to_install_it() {
        let error = Peer::nginx("/nonexistent/nginx", "hi", None).err().unwrap();
        assert!(matches!(error, PeerError::Missing { .. }), "{error}");
        assert!(
            error.to_string().contains("apt-get install nginx-light"),
            "{error}"
        );
        let error = Peer::wasmtime_serve("no-such-wasmtime-here", Path::new("x.wasm"), None)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("cargo install wasmtime-cli"),
            "{error}"
        );
    }

    #[test]
    fn nginx_answers_with_the_body() {
        // `make test` installs nginx (scripts/setup.sh).
        let peer = Peer::nginx("nginx", "Hello \"quoted\"\n", None).unwrap();
        let mut stream = TcpStream::connect(peer.addr).unwrap();
        use std::io::{Read, Write};
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("Hello \"quoted\"\n"), "{answer}");
        // Dropped, nothing of it is left listening (no orphaned worker process).
        let addr = peer.addr;
        drop(peer);
        assert!(TcpStream::connect(addr).is_err(), "{addr} still answers");
    }
}
