//! Precompiled artifacts: the first start compiles and caches, a restart on the same data
//! directory loads from the cache (no compile), and a stale or corrupt artifact is recompiled.

use atoll_tests::{TestGateway, metric_value};

const TENANTS: &str = r#"
tenants:
  demo:
    hosts: [localhost]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [/hello]}
      echo: {wasm: "{wasm}/echo.wasm", routes: [/echo]}
"#;

fn artifacts(gateway: &TestGateway, source: &str) -> f64 {
    let text = gateway.handle().metrics().render();
    metric_value(
        &text,
        &format!("atoll_artifacts_total{{source=\"{source}\"}}"),
    )
    .unwrap_or(0.0)
}

fn hello_answers(gateway: &TestGateway) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let response = reqwest::get(gateway.url("/hello")).await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    });
    assert_eq!(body, "Hello from Atoll!\n");
}

#[test]
fn a_restart_loads_artifacts_instead_of_compiling() {
    let mut gateway = TestGateway::start(TENANTS);
    assert_eq!(artifacts(&gateway, "compiled"), 2.0);
    assert_eq!(artifacts(&gateway, "cached"), 0.0);
    hello_answers(&gateway);

    gateway.restart();
    assert_eq!(
        artifacts(&gateway, "compiled"),
        0.0,
        "nothing compiled on restart"
    );
    assert_eq!(artifacts(&gateway, "cached"), 2.0);
    hello_answers(&gateway);
}

#[test]
fn an_artifact_with_one_byte_flipped_is_never_mapped() {
    let mut gateway = TestGateway::start(TENANTS);
    gateway.restart_after(|data_dir| {
        let mut flipped = 0;
        for engine_dir in std::fs::read_dir(data_dir.join("artifacts")).unwrap() {
            for artifact in std::fs::read_dir(engine_dir.unwrap().path()).unwrap() {
                let path = artifact.unwrap().path();
                if path.extension().is_some_and(|e| e == "cwasm") {
                    // In the middle, where the code is: the header still checks out.
                    let mut bytes = std::fs::read(&path).unwrap();
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 0x40;
                    std::fs::write(&path, bytes).unwrap();
                    flipped += 1;
                }
            }
        }
        assert_eq!(flipped, 2);
    });
    assert_eq!(artifacts(&gateway, "recompiled"), 2.0);
    assert_eq!(artifacts(&gateway, "cached"), 0.0);
    hello_answers(&gateway);
}

#[test]
fn a_corrupt_artifact_is_recompiled_not_trusted() {
    let mut gateway = TestGateway::start(TENANTS);
    // Artifacts are mapped into memory while the gateway runs: change them only once it
    // has stopped.
    gateway.restart_after(|data_dir| {
        let mut corrupted = 0;
        for engine_dir in std::fs::read_dir(data_dir.join("artifacts")).unwrap() {
            for artifact in std::fs::read_dir(engine_dir.unwrap().path()).unwrap() {
                let path = artifact.unwrap().path();
                if path.extension().is_some_and(|e| e == "cwasm") {
                    let mut bytes = std::fs::read(&path).unwrap();
                    bytes.truncate(bytes.len() / 2);
                    std::fs::write(&path, bytes).unwrap();
                    corrupted += 1;
                }
            }
        }
        assert_eq!(corrupted, 2);
    });
    assert_eq!(artifacts(&gateway, "recompiled"), 2.0);
    assert_eq!(artifacts(&gateway, "cached"), 0.0);
    hello_answers(&gateway);

    gateway.restart();
    assert_eq!(
        artifacts(&gateway, "cached"),
        2.0,
        "the rewritten artifacts load"
    );
}
