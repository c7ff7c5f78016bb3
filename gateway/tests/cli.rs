//! The `atoll` binary's commands: `check` on good and bad configs, `serve` with the embedded
//! default and with a config, stopped by SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn atoll() -> Command {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

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
    assert!(stdout.contains("ok (1 tenants, 3 functions)"), "{stdout}");
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
