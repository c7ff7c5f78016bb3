//! The runtime alone, without Pingora: real components from `tenants/` invoked with `http`
//! crate types.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atoll_gateway::runtime::{FunctionImage, InvokeError, InvokeLimits, Runtime, RuntimeSettings};
use atoll_gateway::store::{ArtifactCache, content_hash};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};

fn wasm(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tenants/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make tenants`",
        path.display()
    );
    path
}

struct Loaded {
    runtime: Arc<Runtime>,
    data_dir: tempfile::TempDir,
}

impl Loaded {
    fn new() -> Loaded {
        Loaded {
            runtime: Runtime::new(RuntimeSettings::default()).unwrap(),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn image(&self, name: &str) -> FunctionImage {
        let bytes = std::fs::read(wasm(name)).unwrap();
        let cache = ArtifactCache::new(self.data_dir.path(), self.runtime.engine());
        let (component, _) = cache
            .load_or_compile(&self.runtime, &content_hash(&bytes), &bytes)
            .unwrap();
        self.runtime.prepare(&component).unwrap()
    }
}

fn request(path: &str, body: &'static str) -> http::Request<Full<Bytes>> {
    http::Request::post(format!("http://localhost{path}"))
        .header("x-test", "yes")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn hello_answers_from_a_fresh_instance_each_time() {
    let loaded = Loaded::new();
    let image = loaded.image("hello");
    for _ in 0..3 {
        let invocation = loaded
            .runtime
            .invoke(&image, &InvokeLimits::default(), request("/hello", ""))
            .await
            .unwrap();
        assert_eq!(invocation.response.status(), 200);
        assert!(invocation.instantiation > std::time::Duration::ZERO);
        let body = invocation
            .response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"Hello from Atoll!\n");
    }
}

#[tokio::test]
async fn echo_receives_the_request() {
    let loaded = Loaded::new();
    let image = loaded.image("echo");
    let invocation = loaded
        .runtime
        .invoke(
            &image,
            &InvokeLimits::default(),
            request("/echo/x?y=1", "payload"),
        )
        .await
        .unwrap();
    let body = invocation
        .response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo/x");
    assert_eq!(echo["query"], "y=1");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo["headers"]["x-test"][0], "yes");
}

#[tokio::test]
async fn a_panic_is_a_trap_and_no_response_is_told_apart() {
    let loaded = Loaded::new();
    let trap = loaded.image("trap");
    let error = loaded
        .runtime
        .invoke(&trap, &InvokeLimits::default(), request("/", ""))
        .await
        .unwrap_err();
    assert!(matches!(error, InvokeError::Trap(_)), "{error:?}");

    let noresponse = loaded.image("noresponse");
    let error = loaded
        .runtime
        .invoke(&noresponse, &InvokeLimits::default(), request("/", ""))
        .await
        .unwrap_err();
    assert_eq!(error, InvokeError::NoResponse);
}

#[test]
fn non_components_are_refused_with_a_reason() {
    let loaded = Loaded::new();
    let not_wasm = loaded.runtime.precompile(b"hello, not wasm").unwrap_err();
    assert!(
        not_wasm.to_string().contains("not a WebAssembly binary"),
        "{not_wasm}"
    );
    let core_module = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    let error = loaded.runtime.precompile(&core_module).unwrap_err();
    assert!(
        error.to_string().contains("core WebAssembly module"),
        "{error}"
    );
    let broken = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0xff, 0xff];
    let error = loaded.runtime.precompile(&broken).unwrap_err();
    assert!(error.to_string().contains("invalid component"), "{error}");
}

/// Invokes `hello` until its instance gets a pool slot, for at most a few seconds.
async fn hello_gets_a_slot(loaded: &Loaded, hello: &FunctionImage) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match loaded
            .runtime
            .invoke(hello, &InvokeLimits::default(), request("/", ""))
            .await
        {
            Ok(invocation) => {
                assert_eq!(invocation.response.status(), 200);
                return;
            }
            Err(InvokeError::PoolExhausted) if std::time::Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(e) => panic!("the pool slot was never freed: {e:?}"),
        }
    }
}

fn single_slot() -> Loaded {
    Loaded {
        runtime: Runtime::new(RuntimeSettings {
            total_instances: 1,
            ..RuntimeSettings::default()
        })
        .unwrap(),
        data_dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn dropping_an_invocation_stops_its_guest_and_frees_its_slot() {
    let loaded = single_slot();
    let sleepy = loaded.image("sleepy");
    let hello = loaded.image("hello");
    let waited = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        loaded
            .runtime
            .invoke(&sleepy, &InvokeLimits::default(), request("/?ms=60000", "")),
    )
    .await;
    assert!(waited.is_err(), "sleepy cannot answer within 50 ms");
    hello_gets_a_slot(&loaded, &hello).await;
}

#[tokio::test]
async fn dropping_a_response_body_stops_a_streaming_guest() {
    let loaded = single_slot();
    let bigbody = loaded.image("bigbody");
    let hello = loaded.image("hello");
    let invocation = loaded
        .runtime
        .invoke(
            &bigbody,
            &InvokeLimits::default(),
            request("/?mib=100000", ""),
        )
        .await
        .unwrap();
    let mut body = invocation.response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert!(!frame.into_data().unwrap().is_empty());
    drop(body);
    hello_gets_a_slot(&loaded, &hello).await;
}

#[tokio::test]
async fn the_limit_that_stopped_a_guest_is_named() {
    let loaded = Loaded::new();
    let limits = InvokeLimits {
        memory: 8 << 20,
        cpu_time: std::time::Duration::from_millis(20),
        ..InvokeLimits::default()
    };
    let hog = loaded.image("hog");
    let error = loaded
        .runtime
        .invoke(&hog, &limits, request("/", ""))
        .await
        .unwrap_err();
    assert_eq!(error, InvokeError::MemoryLimit);
    let spin = loaded.image("spin");
    let started = std::time::Instant::now();
    let error = loaded
        .runtime
        .invoke(&spin, &limits, request("/", ""))
        .await
        .unwrap_err();
    assert_eq!(error, InvokeError::CpuLimit);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
