//! The data directory on a real, small, full filesystem (issue 16): a size-limited tmpfs,
//! mounted by the test when it runs as root (skipped, saying so, otherwise). A change that
//! cannot be made durable is refused with 507 `storage_full` and leaves nothing behind; every
//! acknowledged change survives a restart.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_tests::TestGateway;
use reqwest::Method;
use serde_json::{Value, json};
use support::admin_json;

/// A tmpfs of `size` mounted on a new temporary directory, unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (with the reason on stderr) when this process may not mount one.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { mount, _dir: dir }),
            Ok(out) => {
                eprintln!(
                    "skipped: mounting a tmpfs needs root ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: no mount command ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// Fills the filesystem under `dir` until a write fails; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_data())
        .is_ok()
    {}
    path
}

/// A tenant whose journal line is larger than a page, so that on a full disk its append
/// fails part-way.
fn big_tenant(name: &str) -> String {
    let hosts: Vec<String> = (0..300).map(|i| format!("h{i}.{name}.test")).collect();
    json!({ "hosts": hosts }).to_string()
}

/// `PUT /v1/tenants/{name}` with [`big_tenant`]'s body.
async fn put_big(gateway: &TestGateway, operator: &str, name: &str) -> (u16, Value) {
    let path = format!("/v1/tenants/{name}");
    admin_json(gateway, Method::PUT, &path, operator, big_tenant(name)).await
}

#[tokio::test]
async fn a_full_disk_refuses_changes_with_507_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let data = disk.path().join("data");
    let mut gateway = TestGateway::start_with_data_dir("", &data);
    let operator = gateway.operator_token();
    let (status, body) = put_big(&gateway, &operator, "acme").await;
    assert_eq!(status, 200, "{body}");

    let filler = fill(disk.path());
    let (status, body) = put_big(&gateway, &operator, "beta").await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "storage_full");
    // The journal ends on a whole line: nothing of the refused change is left.
    let journal = std::fs::read(data.join("state.journal")).unwrap();
    assert!(journal.ends_with(b"\n"), "no torn line");
    let (status, body) = admin_json(&gateway, Method::GET, "/v1/tenants", &operator, "").await;
    assert_eq!(status, 200);
    assert!(body["tenants"].get("beta").is_none(), "{body}");

    // Space again: the next change lands, and a restart keeps every acknowledged one.
    std::fs::remove_file(filler).unwrap();
    let (status, body) = put_big(&gateway, &operator, "gamma").await;
    assert_eq!(status, 200, "{body}");
    gateway.restart();
    let (status, body): (u16, Value) =
        admin_json(&gateway, Method::GET, "/v1/tenants", &operator, "").await;
    assert_eq!(status, 200);
    let names: Vec<&String> = body["tenants"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["acme", "gamma"]);
    drop(gateway);
}

/// `component` with a custom section holding `n`: distinct bytes, the same behaviour.
fn distinct(component: &[u8], n: u32) -> Vec<u8> {
    let name = b"atoll-test";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut bytes = component.to_vec();
    bytes.extend([0x00, size as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(payload);
    bytes
}

/// The `.wasm` files in `components/` and the `.cwasm` files in `artifacts/*/`.
fn stored(data: &Path) -> (usize, usize) {
    let count = |dir: &Path, suffix: &str| {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(suffix)
                })
                .count()
        })
    };
    let artifacts = std::fs::read_dir(data.join("artifacts")).map_or(0, |engines| {
        engines
            .map(|engine| count(&engine.unwrap().path(), ".cwasm"))
            .sum()
    });
    (count(&data.join("components"), ".wasm"), artifacts)
}

#[tokio::test]
async fn old_versions_and_deleted_tenants_leave_no_files() {
    let gateway = TestGateway::start("keep_versions: 3\n");
    let operator = gateway.operator_token();
    let data = gateway.data_dir().to_path_buf();
    for tenant in ["acme", "globex"] {
        let body = json!({"hosts": [format!("{tenant}.test")]}).to_string();
        let path = format!("/v1/tenants/{tenant}");
        let (status, _) = admin_json(&gateway, Method::PUT, &path, &operator, body).await;
        assert_eq!(status, 200);
    }
    let hello = std::fs::read(atoll_tests::tenant_wasm("hello")).unwrap();
    // 30 deploys of distinct bytes, 3 versions kept.
    for n in 0..30 {
        let path = "/v1/tenants/acme/functions/f?route=acme.test/f";
        let (status, body) =
            support::admin_call(&gateway, Method::PUT, path, &operator, distinct(&hello, n)).await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    }
    let (status, view) = admin_json(
        &gateway,
        Method::GET,
        "/v1/tenants/acme/functions/f",
        &operator,
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(view["versions"].as_array().unwrap().len(), 3, "{view}");
    assert_eq!(stored(&data), (3, 3), "only the kept versions' files stay");
    // globex deploys bytes acme also had: shared files stay while either needs them.
    let shared = distinct(&hello, 29);
    let path = "/v1/tenants/globex/functions/g?route=globex.test/g";
    let (status, _) = support::admin_call(&gateway, Method::PUT, path, &operator, shared).await;
    assert_eq!(status, 201);
    assert_eq!(stored(&data), (3, 3));
    let (status, _) = admin_json(&gateway, Method::DELETE, "/v1/tenants/acme", &operator, "").await;
    assert_eq!(status, 204);
    assert_eq!(stored(&data), (1, 1), "only globex's version is left");
    let (status, _) = admin_json(
        &gateway,
        Method::DELETE,
        "/v1/tenants/globex",
        &operator,
        "",
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(stored(&data), (0, 0));
}

/// Creates API tenant `name` on `name.test` with `kv-counter` on `/`; returns its token.
async fn counting_tenant(gateway: &TestGateway, operator: &str, name: &str) -> String {
    let body = json!({"hosts": [format!("{name}.test")]}).to_string();
    let path = format!("/v1/tenants/{name}");
    let (status, _) = admin_json(gateway, Method::PUT, &path, operator, body).await;
    assert_eq!(status, 200);
    let (status, token) = admin_json(
        gateway,
        Method::POST,
        &format!("/v1/tenants/{name}/tokens"),
        operator,
        "",
    )
    .await;
    assert_eq!(status, 201);
    let counter = std::fs::read(atoll_tests::tenant_wasm("kv_counter")).unwrap();
    let path = format!("/v1/tenants/{name}/functions/count?route={name}.test/");
    let (status, _) = support::admin_call(gateway, Method::PUT, &path, operator, counter).await;
    assert_eq!(status, 201);
    token["token"].as_str().unwrap().to_owned()
}

/// The count `kv-counter` answers for `host`.
async fn count(gateway: &TestGateway, host: &str) -> String {
    support::get_text(gateway, host, "/visits").await.1
}

#[tokio::test]
async fn a_name_made_again_never_sees_the_old_tenants_data_or_tokens() {
    let mut gateway = TestGateway::start("");
    let operator = gateway.operator_token();
    let old_token = counting_tenant(&gateway, &operator, "acme").await;
    for expected in ["1\n", "2\n", "3\n"] {
        assert_eq!(count(&gateway, "acme.test").await, expected);
    }
    let (status, _) = admin_json(&gateway, Method::DELETE, "/v1/tenants/acme", &operator, "").await;
    assert_eq!(status, 204);
    counting_tenant(&gateway, &operator, "acme").await;
    assert_eq!(count(&gateway, "acme.test").await, "1\n", "a fresh start");
    let (status, _) = admin_json(&gateway, Method::GET, "/v1/tenants/acme", &old_token, "").await;
    assert_eq!(status, 401, "the old tenant's token is gone with it");

    // A crash between journaling the deletion and deleting the data: the journal says the
    // tenant is gone, its data is still there.
    gateway.restart_after(|data| {
        let (mut store, mut state) = atoll_gateway::store::state::StateStore::open(data).unwrap();
        store
            .record(
                &mut state,
                atoll_gateway::store::state::Change::DeleteTenant {
                    name: "acme".into(),
                },
            )
            .unwrap();
    });
    counting_tenant(&gateway, &operator, "acme").await;
    assert_eq!(
        count(&gateway, "acme.test").await,
        "1\n",
        "never the old data"
    );
    // And start-up deleted the orphaned data.
    gateway.stop();
    let kv = atoll_gateway::kv::KvStore::open(
        &gateway.data_dir().join("kv.redb"),
        atoll_gateway::kv::KvSettings::default(),
    )
    .unwrap();
    let namespaces = kv.namespaces().unwrap();
    assert_eq!(
        namespaces.len(),
        1,
        "only the new generation's: {namespaces:?}"
    );
}

#[tokio::test]
async fn a_token_of_an_api_tenant_never_opens_a_config_tenant_of_its_name() {
    let data = tempfile::tempdir().unwrap();
    let mut gateway = TestGateway::start_with_data_dir("", data.path());
    let operator = gateway.operator_token();
    let token = counting_tenant(&gateway, &operator, "shop").await;
    let (status, _) = admin_json(&gateway, Method::GET, "/v1/tenants/shop/kv", &token, "").await;
    assert_eq!(status, 200);
    gateway.stop();
    drop(gateway);
    // The config file now defines `shop` itself: it wins, and the API tenant's token is void.
    let config = r#"
tenants:
  shop:
    hosts: [shop.test]
    functions:
      hello: {wasm: "{wasm}/hello.wasm", routes: [shop.test/]}
"#;
    let gateway = TestGateway::start_with_data_dir(config, data.path());
    for path in [
        "/v1/tenants/shop",
        "/v1/tenants/shop/kv",
        "/v1/tenants/shop/functions",
    ] {
        let (status, _) = admin_json(&gateway, Method::GET, path, &token, "").await;
        assert_eq!(status, 401, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deploys_of_identical_bytes_all_land_whole() {
    let gateway = TestGateway::start("");
    let operator = gateway.operator_token();
    let bytes = distinct(
        &std::fs::read(atoll_tests::tenant_wasm("hello")).unwrap(),
        7,
    );
    let names: Vec<String> = (0..6).map(|i| format!("t{i}")).collect();
    for name in &names {
        let body = json!({"hosts": [format!("{name}.test")]}).to_string();
        let path = format!("/v1/tenants/{name}");
        assert_eq!(
            admin_json(&gateway, Method::PUT, &path, &operator, body)
                .await
                .0,
            200
        );
    }
    let paths: Vec<String> = names
        .iter()
        .map(|name| format!("/v1/tenants/{name}/functions/f?route={name}.test/"))
        .collect();
    let deploys: Vec<_> = paths
        .iter()
        .map(|path| support::admin_call(&gateway, Method::PUT, path, &operator, bytes.clone()))
        .collect();
    for (status, body) in futures::future::join_all(deploys).await {
        assert!(
            status == 201 || status == 409,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    // One file, whole, and every tenant serves it.
    let sha = atoll_gateway::store::content_hash(&bytes);
    let stored = std::fs::read(gateway.data_dir().join(format!("components/{sha}.wasm"))).unwrap();
    assert_eq!(stored, bytes);
    assert_eq!(self::stored(gateway.data_dir()).0, 1);
    for name in &names {
        let (status, text) = support::get_text(&gateway, &format!("{name}.test"), "/").await;
        assert_eq!(status, 200, "{name}: {text}");
    }
}

/// A value of `len` bytes of `byte`.
fn value(byte: u8, len: usize) -> Vec<(String, Vec<u8>)> {
    vec![(format!("key-{byte}"), vec![byte; len])]
}

#[test]
fn the_key_value_store_reopens_after_a_full_disk_and_serves_without_a_restart() {
    use atoll_gateway::kv::{KvError, KvSettings, KvStore};
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let store = KvStore::open(&disk.path().join("kv.redb"), KvSettings::default()).unwrap();
    store.set_many("acme", "b", &value(0, 100)).unwrap();
    store.set_many("beta", "b", &value(0, 100)).unwrap();

    // Full: a write that needs new space is refused as such, and none of it is kept.
    let filler = fill(disk.path());
    let refused = (1..=16u8)
        .map(|n| (n, store.set_many("acme", "b", &value(n, 256 << 10))))
        .find(|(_, result)| result.is_err());
    let Some((n, Err(error))) = refused else {
        panic!("a full disk took every write");
    };
    assert!(
        matches!(error, KvError::DiskFull(_) | KvError::Io(_)),
        "{error:?}"
    );

    // Space again: every tenant's calls are served without reopening by hand, the refused
    // write is not there, and the next write lands.
    std::fs::remove_file(filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let old = loop {
        match store.get("beta", "b", "key-0") {
            Ok(found) => break found,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(matches!(e, KvError::Io(_) | KvError::DiskFull(_)), "{e:?}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("still failing after 10 s: {e:?}"),
        }
    };
    assert_eq!(old, Some(vec![0; 100]));
    assert_eq!(store.get("acme", "b", "key-0").unwrap(), Some(vec![0; 100]));
    assert_eq!(store.get("acme", "b", &format!("key-{n}")).unwrap(), None);
    store.set_many("acme", "b", &value(200, 100)).unwrap();
    assert_eq!(
        store.get("acme", "b", "key-200").unwrap(),
        Some(vec![200; 100])
    );
}
