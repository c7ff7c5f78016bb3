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
