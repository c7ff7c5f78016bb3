//! `atoll backup` of a running gateway and `atoll restore` into a new directory: the restored
//! gateway serves the same versions, routes, tokens and key-value values as of the backup; a
//! cut or tampered archive, or a directory in use, is refused and leaves nothing behind.

mod support;

use std::os::unix::fs::PermissionsExt as _;

use support::{Served, atoll, atoll_as, call, call_json, stdout_of, tenant_wasm};

fn count(served: &Served, query: &str) -> String {
    let url = format!("http://{}/count{query}", served.proxy);
    let (status, body) = call("GET", &url, None, Some("acme.test"), Vec::new());
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn a_backup_restores_into_a_new_directory_and_serves_the_same_versions_and_values() {
    let served = Served::start();
    let operator = served.operator_token();
    let admin = |path: &str| format!("http://{}{path}", served.admin);
    let (status, _) = call_json(
        "PUT",
        &admin("/v1/tenants/acme"),
        Some(&operator),
        br#"{"hosts": ["acme.test"]}"#.to_vec(),
    );
    assert_eq!(status, 200);
    let (_, made) = call_json(
        "POST",
        &admin("/v1/tenants/acme/tokens"),
        Some(&operator),
        vec![],
    );
    let tenant_token = made["token"].as_str().unwrap().to_owned();
    // `web`: two versions, rolled back to the first; `counter` counts in key-value storage.
    for (function, wasm) in [("web", "hello"), ("web", "echo"), ("counter", "kv_counter")] {
        let route = if function == "web" {
            "acme.test/web"
        } else {
            "acme.test/count"
        };
        let url = admin(&format!(
            "/v1/tenants/acme/functions/{function}?route={route}"
        ));
        let (status, body) = call_json(
            "PUT",
            &url,
            Some(&tenant_token),
            std::fs::read(tenant_wasm(wasm)).unwrap(),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (status, _) = call_json(
        "POST",
        &admin("/v1/tenants/acme/functions/web/rollback"),
        Some(&tenant_token),
        vec![],
    );
    assert_eq!(status, 200);
    for _ in 0..3 {
        count(&served, "");
    }
    let (_, web) = call_json(
        "GET",
        &admin("/v1/tenants/acme/functions/web"),
        Some(&operator),
        vec![],
    );

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("atoll.tar");
    let archive_arg = archive.to_str().unwrap();
    let said = stdout_of(&atoll_as(
        &served,
        &operator,
        &["backup", "--out", archive_arg],
    ));
    assert!(
        said.contains("1 tenants, 3 components and 1 key-value keys"),
        "{said}"
    );
    // Changes after the backup are not in it.
    assert_eq!(count(&served, ""), "4\n");

    // A tenant's token may not take a backup: it holds every tenant's data.
    let refused = atoll_as(&served, &tenant_token, &["backup", "--out", archive_arg]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"));
    assert!(
        archive.exists(),
        "a refused backup leaves the earlier file alone"
    );

    let restored = tempfile::tempdir().unwrap();
    let data_dir = restored.path().join("data");
    let said = stdout_of(
        &atoll()
            .args(["restore", archive_arg, "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap(),
    );
    assert!(said.contains("restored 1 tenants"), "{said}");
    for entry in walk(&data_dir) {
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
        let expected = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{}", entry.display());
    }
    // Never over a directory in use.
    let again = atoll()
        .args(["restore", archive_arg, "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let second = Served::start_in(restored, "");
    let operator = second.operator_token();
    let admin = |path: &str| format!("http://{}{path}", second.admin);
    let (status, view) = call_json(
        "GET",
        &admin("/v1/tenants/acme/functions/web"),
        Some(&tenant_token),
        vec![],
    );
    assert_eq!(
        status, 200,
        "the tenant's token works on the restored gateway"
    );
    assert_eq!(view, web, "the same versions, active version and routes");
    let url = format!("http://{}/web", second.proxy);
    let (_, hello) = call("GET", &url, None, Some("acme.test"), vec![]);
    assert_eq!(hello, b"Hello from Atoll!\n");
    assert_eq!(count(&second, "?peek"), "3\n", "the value as of the backup");
    assert_eq!(count(&second, ""), "4\n");
    let (status, _) = call_json("GET", &admin("/v1/tenants"), Some(&operator), vec![]);
    assert_eq!(status, 200);
}

#[test]
fn a_cut_or_tampered_archive_is_refused_and_leaves_nothing() {
    let served = Served::start();
    let operator = served.operator_token();
    let admin = |path: &str| format!("http://{}{path}", served.admin);
    call_json(
        "PUT",
        &admin("/v1/tenants/acme"),
        Some(&operator),
        br#"{"hosts": ["acme.test"]}"#.to_vec(),
    );
    let url = admin("/v1/tenants/acme/functions/web?route=acme.test/web");
    let (status, _) = call_json(
        "PUT",
        &url,
        Some(&operator),
        std::fs::read(tenant_wasm("hello")).unwrap(),
    );
    assert_eq!(status, 201);
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("atoll.tar");
    stdout_of(&atoll_as(
        &served,
        &operator,
        &["backup", "--out", archive.to_str().unwrap()],
    ));
    let bytes = std::fs::read(&archive).unwrap();

    let component_at = bytes
        .windows(4)
        .position(|w| w == b"\0asm")
        .expect("the archive holds the component");
    let mut flipped = bytes.clone();
    flipped[component_at + 100] ^= 0x40;
    let cases = [
        (
            "cut in half",
            bytes[..bytes.len() / 2].to_vec(),
            "not a complete Atoll backup",
        ),
        ("a flipped byte", flipped, "does not match its hash"),
        (
            "not an archive",
            b"hello".to_vec(),
            "not a complete Atoll backup",
        ),
    ];
    for (what, archive_bytes, expected) in cases {
        let path = work.path().join("bad.tar");
        std::fs::write(&path, archive_bytes).unwrap();
        let data_dir = work.path().join("restored");
        let output = atoll()
            .args(["restore", path.to_str().unwrap(), "--data-dir"])
            .arg(&data_dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}");
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert!(!data_dir.exists(), "{what}: nothing stays behind");
    }
}

/// Every file and directory under `dir`, `dir` included.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![dir.to_owned()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
