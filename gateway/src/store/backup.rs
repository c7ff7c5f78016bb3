//! Backups of a gateway's data: one tar archive holding what `data_dir` must not lose, taken from
//! a running gateway ([`write_archive`]) and laid down as a new data directory offline
//! ([`restore`]).
//!
//! The archive holds, in this order:
//! - `state.json`: the deployment state as a checkpoint (tenants, functions, versions, routes,
//!   config variables, token hashes, generations), checksummed as the live file is;
//! - `components/<sha256>.wasm`: the bytes of every version the state keeps;
//! - `kv.redb`: every tenant's key-value data, a copy made from one read transaction;
//! - `atoll-backup.json`: the manifest, written **last**, so an archive cut short has none and
//!   is refused.
//!
//! Artifacts (native code, per engine) and the operator token are not in it: a restored
//! gateway compiles its artifacts at start and keeps or makes its own operator token.
//!
//! A restore checks everything before it answers: only the names above (no paths that climb
//! out), each component's bytes against its name, the state's checksum, every kept version's
//! component present, the manifest's counts. On any failure nothing stays behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{self, STATE_FILE, State};
use super::{content_hash, create_private_dir, private_file};
use crate::kv::KvSnapshot;

/// The manifest's name in the archive.
pub const MANIFEST: &str = "atoll-backup.json";
/// The key-value database's name, in the archive and in `data_dir`.
pub const KV_FILE: &str = "kv.redb";
/// The archive format this build writes and reads.
const FORMAT: u32 = 1;

/// What an archive says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The archive format.
    pub format: u32,
    /// The Atoll version that wrote it.
    pub atoll: String,
    /// When it was taken, in seconds since the Unix epoch.
    pub created: u64,
    /// API tenants in the state.
    pub tenants: usize,
    /// The components it holds (sha256).
    pub components: Vec<String>,
    /// Keys in the key-value copy.
    pub kv_keys: u64,
}

/// What a backup is made of, taken at one moment: the state, open handles on the components it
/// keeps (so that a garbage collection after this moment cannot take them away), and a
/// key-value snapshot.
pub struct BackupSource {
    /// The state.
    pub state: State,
    /// `(sha256, open file)` of every kept component.
    pub components: Vec<(String, File)>,
    /// Every tenant's key-value data.
    pub kv: KvSnapshot,
    /// A free path for the key-value copy, removed once it is in the archive.
    pub kv_scratch: PathBuf,
}

/// Every component `state` keeps, in order.
pub fn kept_components(state: &State) -> BTreeSet<String> {
    state.kept_versions().map(str::to_owned).collect()
}

/// Writes the archive of `source` to `out`; returns its manifest.
pub fn write_archive(source: BackupSource, out: impl Write) -> std::io::Result<Manifest> {
    let mut archive = tar::Builder::new(out);
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let checkpoint = state::checkpoint_bytes(&source.state)?;
    append_bytes(&mut archive, STATE_FILE, &checkpoint, created)?;
    let mut components = Vec::with_capacity(source.components.len());
    for (sha256, mut file) in source.components {
        let len = file.metadata()?.len();
        let mut header = header(len, created);
        archive.append_data(&mut header, format!("components/{sha256}.wasm"), &mut file)?;
        components.push(sha256);
    }
    let kv_keys = {
        let scratch = Scratch(source.kv_scratch);
        let keys = source
            .kv
            .write_to(&scratch.0)
            .map_err(|e| std::io::Error::other(format!("copying the key-value data: {e}")))?;
        let mut file = File::open(&scratch.0)?;
        let mut header = header(file.metadata()?.len(), created);
        archive.append_data(&mut header, KV_FILE, &mut file)?;
        keys
    };
    let manifest = Manifest {
        format: FORMAT,
        atoll: env!("CARGO_PKG_VERSION").to_owned(),
        created,
        tenants: source.state.tenants.len(),
        components,
        kv_keys,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
    append_bytes(&mut archive, MANIFEST, &json, created)?;
    archive.into_inner()?.flush()?;
    Ok(manifest)
}

/// A file removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn header(len: u64, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn append_bytes(
    archive: &mut tar::Builder<impl Write>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> std::io::Result<()> {
    let mut header = header(bytes.len() as u64, mtime);
    archive.append_data(&mut header, name, bytes)
}

/// Why a restore was refused; nothing it wrote stays.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target directory holds files already.
    #[error("{0} is not empty: restore into a new or empty directory")]
    NotEmpty(PathBuf),
    /// The archive is not a complete Atoll backup.
    #[error("not a complete Atoll backup: {0}")]
    Invalid(String),
    /// Reading the archive or writing the directory failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What a restore laid down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
}

/// Lays down the archive read from `archive` as the data directory `data_dir`, which must be
/// missing or empty. Every file is 0600 and every directory 0700, as a gateway makes them.
pub fn restore(archive: impl Read, data_dir: &Path) -> Result<Restored, RestoreError> {
    let existed = data_dir.exists();
    if existed && std::fs::read_dir(data_dir)?.next().is_some() {
        return Err(RestoreError::NotEmpty(data_dir.to_owned()));
    }
    let result = restore_into(archive, data_dir);
    if result.is_err() {
        // Take back everything written: the directory was empty or missing.
        let _ = std::fs::remove_dir_all(data_dir);
        if existed {
            let _ = create_private_dir(data_dir);
        }
    }
    result
}

fn restore_into(archive: impl Read, data_dir: &Path) -> Result<Restored, RestoreError> {
    let invalid = |why: String| RestoreError::Invalid(why);
    create_private_dir(data_dir)?;
    let components_dir = data_dir.join("components");
    create_private_dir(&components_dir)?;
    let mut state = None;
    let mut manifest: Option<Manifest> = None;
    let mut components = BTreeSet::new();
    let mut kv = false;
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = entry
            .path()
            .map_err(damaged)?
            .to_string_lossy()
            .into_owned();
        if manifest.is_some() {
            return Err(invalid(format!("`{name}` follows the manifest")));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("`{name}` is not a regular file")));
        }
        match name.as_str() {
            STATE_FILE => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(damaged)?;
                let parsed = state::parse_checkpoint(&bytes, Path::new(STATE_FILE))
                    .map_err(|e| invalid(e.to_string()))?;
                write_new(&data_dir.join(STATE_FILE), &mut bytes.as_slice())?;
                state = Some(parsed);
            }
            KV_FILE => {
                write_new(&data_dir.join(KV_FILE), &mut entry).map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
                        damaged(e)
                    }
                    _ => RestoreError::Io(e),
                })?;
                kv = true;
            }
            MANIFEST => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(damaged)?;
                let parsed: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| invalid(format!("its manifest: {e}")))?;
                if parsed.format != FORMAT {
                    return Err(invalid(format!(
                        "format {} is not the format {FORMAT} this build reads",
                        parsed.format
                    )));
                }
                manifest = Some(parsed);
            }
            other => {
                let sha256 = other
                    .strip_prefix("components/")
                    .and_then(|n| n.strip_suffix(".wasm"))
                    .filter(|sha| {
                        sha.len() == 64
                            && sha
                                .bytes()
                                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    })
                    .ok_or_else(|| invalid(format!("unexpected entry `{other}`")))?;
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(damaged)?;
                if content_hash(&bytes) != sha256 {
                    return Err(invalid(format!(
                        "component {sha256} does not match its hash"
                    )));
                }
                write_new(
                    &components_dir.join(format!("{sha256}.wasm")),
                    &mut bytes.as_slice(),
                )?;
                components.insert(sha256.to_owned());
            }
        }
    }
    let manifest = manifest.ok_or_else(|| invalid("it has no manifest (cut short?)".into()))?;
    let state = state.ok_or_else(|| invalid(format!("it has no {STATE_FILE}")))?;
    if !kv {
        return Err(invalid(format!("it has no {KV_FILE}")));
    }
    if let Some(missing) = kept_components(&state).difference(&components).next() {
        return Err(invalid(format!(
            "component {missing}, which the state keeps, is missing"
        )));
    }
    let listed: BTreeSet<String> = manifest.components.iter().cloned().collect();
    if listed != components || manifest.tenants != state.tenants.len() {
        return Err(invalid("its contents differ from its manifest".into()));
    }
    File::open(&components_dir)?.sync_all()?;
    File::open(data_dir)?.sync_all()?;
    Ok(Restored { manifest })
}

/// A failure to read the archive: it is damaged or cut short.
fn damaged(e: std::io::Error) -> RestoreError {
    RestoreError::Invalid(format!("the archive is damaged or cut short: {e}"))
}

/// Writes `from` to `path`, which must not exist, private and durable.
fn write_new(path: &Path, from: &mut impl Read) -> std::io::Result<()> {
    let mut file = private_file().write(true).create_new(true).open(path)?;
    std::io::copy(from, &mut file)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `entries` (`name`, `bytes`, `type`), written as given.
    fn archive(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes, kind) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            // `set_path` refuses `..`; write the raw name as a hostile archive would.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn hostile_entries_are_refused_and_nothing_stays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("data");
        let regular = tar::EntryType::Regular;
        let state = state::checkpoint_bytes(&State::default()).unwrap();
        let cases: [(&str, Vec<u8>, &str); 4] = [
            (
                "a path that climbs out",
                archive(&[("../escape", b"x", regular)]),
                "unexpected entry `../escape`",
            ),
            (
                "a component under a path",
                archive(&[("components/../../x.wasm", b"x", regular)]),
                "unexpected entry",
            ),
            (
                "a symbolic link",
                archive(&[(STATE_FILE, b"", tar::EntryType::Symlink)]),
                "not a regular file",
            ),
            (
                "a state with no manifest",
                archive(&[(STATE_FILE, &state, regular)]),
                "no manifest",
            ),
        ];
        for (what, bytes, expected) in cases {
            let error = restore(bytes.as_slice(), &target).unwrap_err().to_string();
            assert!(error.contains(expected), "{what}: {error}");
            assert!(!target.exists(), "{what}: nothing stays");
            assert!(!dir.path().join("escape").exists(), "{what}");
        }
    }
}
