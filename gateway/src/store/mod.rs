//! The durable store under `data_dir`. Everything written here is written crash-safely
//! ([`write_atomic`]: a temporary file, fsync, rename, fsync the directory), so a crash leaves
//! the old file or the new one, never a torn one; and everything read back is checked.
//!
//! - [`artifacts`]: precompiled components, keyed by engine and content hash.
//! - [`backup`]: one archive of what must not be lost, and its restore into a new directory.
//! - [`components`]: component bytes, content-addressed by sha256.
//! - [`state`]: the deployment state (tenants, functions, versions, routes, token hashes) in
//!   one checksummed file.

pub mod artifacts;
pub mod backup;
pub mod components;
pub mod state;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub use self::artifacts::{ArtifactCache, ArtifactSource};
pub use self::components::ComponentStore;

/// The sha256 of `bytes` as lowercase hex: a component's version.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The suffix of the temporary files [`write_atomic`] renames into place.
pub(crate) const TEMP_SUFFIX: &str = ".atoll-tmp";

/// The mode of every file Atoll writes under `data_dir`: config variables and token hashes are
/// secrets, so only the gateway's user reads them.
pub const FILE_MODE: u32 = 0o600;
/// The mode of `data_dir` and the directories in it.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) readable by the gateway's user only, and makes an existing
/// one so.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Makes `path`, a file Atoll created (or found) under `data_dir`, readable by its user only.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))
}

/// Options that create a file readable by the gateway's user only.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never a
/// torn one: a temporary file in the same directory, fsync, rename, fsync the directory. The
/// temporary file's name is unique to this call, so concurrent writes of one path (two deploys
/// of the same bytes) never write into each other's; the last rename wins, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    create_private_dir(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let write = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{file_name}.{}.{write}{TEMP_SUFFIX}",
        std::process::id()
    ));
    let written = (|| {
        let mut file = private_file().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // A full disk, say: give back what the partial file took.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// The stems of the files in `dir` named `<stem><suffix>` (none when `dir` is missing).
fn list_named(dir: &Path, suffix: &str) -> std::io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut stems = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(suffix))
            && !stem.starts_with('.')
        {
            stems.push(stem.to_owned());
        }
    }
    Ok(stems)
}

/// Removes temporary files a crash left in `dir` (from [`write_atomic`]); returns their names
/// so the caller can report them.
pub fn remove_stray_temp_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_files_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn files_and_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/state.json");
        write_atomic(&path, b"{}").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(path.parent().unwrap()), DIR_MODE);
    }

    #[test]
    fn concurrent_writes_of_one_path_never_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.wasm");
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || write_atomic(&path, &vec![i; 1 << 20]))
            })
            .collect();
        for writer in writers {
            writer.join().unwrap().unwrap();
        }
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(
            bytes.iter().all(|b| *b == bytes[0]),
            "one writer's bytes, whole"
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn stray_temp_files_are_removed_and_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(format!(".state.json.1{TEMP_SUFFIX}")),
            b"torn",
        )
        .unwrap();
        fs::write(dir.path().join("state.json"), b"{}").unwrap();
        let removed = remove_stray_temp_files(dir.path()).unwrap();
        assert_eq!(removed, vec![format!(".state.json.1{TEMP_SUFFIX}")]);
        assert!(dir.path().join("state.json").exists());
        assert!(
            remove_stray_temp_files(&dir.path().join("absent"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn content_hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
