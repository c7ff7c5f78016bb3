//! A short `scenario density` end to end: the load tester starts the real `atoll` binary, deploys
//! tenants through its admin API, loads them and writes its report and charts.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn density_scenario_runs_each_tenant_count_and_writes_its_report() {
    let atoll = repo().join("target/debug/atoll");
    assert!(
        atoll.exists(),
        "{} is missing: `cargo test --workspace` (make test) builds it",
        atoll.display()
    );
    let hello = repo().join("tenants/target/wasm32-wasip2/release/hello.wasm");
    assert!(hello.exists(), "run `make tenants` first");
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_atoll-loadtest"))
        .args([
            "scenario",
            "density",
            "--tenants",
            "2,5",
            "--duration",
            "300ms",
        ])
        .args(["--connections", "4", "--atoll"])
        .arg(&atoll)
        .arg("--wasm")
        .arg(&hello)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("| density n=2 | closed | 4 |"), "{stdout}");
    assert!(stdout.contains("| density n=5 | closed | 4 |"), "{stdout}");
    assert!(
        stderr.contains("RSS growth per idle deployed function"),
        "{stderr}"
    );

    let reports: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("density.json")).unwrap())
            .unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    for report in reports {
        assert!(report["ok"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert!(report["rss_bytes"].as_u64().unwrap() > 0, "{report}");
    }
    for chart in ["density.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(out.path().join(chart)).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
    }
}
