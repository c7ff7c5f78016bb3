//! The deployment state — tenants made through the admin API, their functions with their
//! versions and routes, and the hashes of their tokens — kept crash-safely and checksummed, so
//! a torn or corrupt file is detected and reported, never served.
//!
//! Two files hold it, so that a change costs the size of the change, not of the whole state:
//!
//! - `state.json`, the checkpoint: an envelope `{"format": 1, "sha256": "<hex>", "state": {…}}`
//!   where `sha256` is the hash of the serialized `state`, replaced whole by [`write_atomic`].
//! - `state.journal`, the changes since: one line per [`Change`], `<sha256 of the JSON> <JSON>`,
//!   appended and fsynced before the change is acknowledged. Once it holds more changes than
//!   the state has tenants (and at least [`MIN_JOURNAL`]), a new checkpoint is written and the
//!   journal emptied, so each change is amortized constant work however many tenants there are.
//!
//! Loading reads the checkpoint and replays the journal. Replaying is idempotent (a change sets
//! a tenant's record or removes it), so a crash between a checkpoint and emptying the journal
//! loses nothing. A damaged *last* line is a write the crash cut short, never acknowledged: it is
//! dropped with a warning. A damaged line with good lines after it is corruption: loading stops.
//!
//! Component bytes live beside them in [`ComponentStore`](super::ComponentStore), referenced by
//! version.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::write_atomic;
use crate::config::LimitsSpec;

/// The state file's name under `data_dir`.
pub const STATE_FILE: &str = "state.json";
/// The envelope format this build writes and reads.
const FORMAT: u32 = 1;

/// Everything deployed through the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Tenants by name.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantRecord>,
}

/// A tenant as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRecord {
    /// The hosts it may route, as written (`api.example.com`, `*.example.com`).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Its own limits; missing keys inherit the gateway-wide ones.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Origins its functions may fetch.
    #[serde(default)]
    pub outbound_allow: Vec<String>,
    /// Its functions by name.
    #[serde(default)]
    pub functions: BTreeMap<String, FunctionRecord>,
    /// sha256 hashes of tokens made before tokens had ids (listed with an id from their hash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_hashes: Vec<String>,
    /// Its API tokens: ids, hashes (the tokens themselves are never stored), when made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenRecord>,
    /// Who this tenant is, beyond its name: random, given when it is created. Its key-value
    /// data is kept under it, so a tenant deleted and made again under the same name starts
    /// empty, even if a crash came between the deletion and the removal of the old data.
    /// Empty for tenants made before generations existed (their data is under their name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generation: String,
}

/// One API token of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// Its public id, for listing and revoking.
    pub id: String,
    /// The sha256 of the token, as hex.
    pub hash: String,
    /// When it was made, in seconds since the Unix epoch.
    pub created: u64,
}

impl TenantRecord {
    /// Every token's `(id, hash, created)`: ids of tokens older than ids are made from their
    /// hash, and their creation time is unknown.
    pub fn token_list(&self) -> impl Iterator<Item = (String, &str, Option<u64>)> {
        let legacy = self.token_hashes.iter().map(|hash| {
            (
                format!("legacy-{}", &hash[..hash.len().min(12)]),
                hash.as_str(),
                None,
            )
        });
        let current = self
            .tokens
            .iter()
            .map(|t| (t.id.clone(), t.hash.as_str(), Some(t.created)));
        legacy.chain(current)
    }

    /// The id of the token whose sha256 is `hash`, compared in constant time.
    pub fn token_id_of(&self, hash: &str) -> Option<String> {
        let mut found = None;
        for (id, stored, _) in self.token_list() {
            if crate::auth::constant_time_eq(stored.as_bytes(), hash.as_bytes()) {
                found = Some(id);
            }
        }
        found
    }

    /// Removes token `id`; whether it was there.
    pub fn revoke_token(&mut self, id: &str) -> bool {
        let before = self.tokens.len() + self.token_hashes.len();
        self.tokens.retain(|t| t.id != id);
        self.token_hashes.retain(|hash| legacy_token_id(hash) != id);
        before != self.tokens.len() + self.token_hashes.len()
    }

    /// A new tenant's record: empty, with a generation of its own.
    pub fn created() -> TenantRecord {
        TenantRecord {
            generation: hex::encode(rand::random::<[u8; 16]>()),
            ..TenantRecord::default()
        }
    }

    /// The key-value namespace of tenant `name` in this generation.
    pub fn kv_namespace(&self, name: &str) -> String {
        kv_namespace(name, &self.generation)
    }
}

/// The id listed for a token made before tokens had ids: from its hash.
fn legacy_token_id(hash: &str) -> String {
    format!("legacy-{}", &hash[..hash.len().min(12)])
}

/// The key-value namespace of tenant `name` in `generation` (its name alone for config tenants
/// and tenants older than generations).
pub fn kv_namespace(name: &str, generation: &str) -> String {
    if generation.is_empty() {
        name.to_owned()
    } else {
        format!("{name}@{generation}")
    }
}

/// A function's versions and routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRecord {
    /// The versions kept for rollback, oldest first (sha256 of the component bytes).
    pub versions: Vec<String>,
    /// The version serving.
    pub active: String,
    /// The routes it serves, as written.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Its config variables (`wasi:config`), set through the admin API.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// Why a rollback cannot happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The version asked for is not among the kept versions.
    #[error("version `{0}` is not one of this function's kept versions")]
    UnknownVersion(String),
    /// No version before the active one is kept.
    #[error("there is no version before the active one to roll back to")]
    NoPrevious,
}

impl FunctionRecord {
    /// A function whose first version is `version`.
    pub fn new(version: String, routes: Vec<String>) -> FunctionRecord {
        FunctionRecord {
            versions: vec![version.clone()],
            active: version,
            routes,
            config: BTreeMap::new(),
        }
    }

    /// Makes `version` active and the newest, keeping at most `keep` versions (never dropping
    /// the active one). Returns the versions no longer kept.
    pub fn deploy(&mut self, version: String, keep: usize) -> Vec<String> {
        self.versions.retain(|v| *v != version);
        self.versions.push(version.clone());
        self.active = version;
        let excess = self.versions.len().saturating_sub(keep.max(1));
        self.versions.drain(..excess).collect()
    }

    /// Makes `to` active, or without it the version before the active one. Returns the
    /// version now active.
    pub fn rollback(&mut self, to: Option<&str>) -> Result<String, RollbackError> {
        let target = match to {
            Some(version) => {
                if !self.versions.iter().any(|v| v == version) {
                    return Err(RollbackError::UnknownVersion(version.to_owned()));
                }
                version.to_owned()
            }
            None => {
                let active = self
                    .versions
                    .iter()
                    .position(|v| *v == self.active)
                    .unwrap_or(0);
                if active == 0 {
                    return Err(RollbackError::NoPrevious);
                }
                self.versions[active - 1].clone()
            }
        };
        self.active = target.clone();
        Ok(target)
    }
}

/// One change to the state, as the journal keeps it: a tenant's whole record replaced, or the
/// tenant removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// Tenant `name` is now `record` (created or replaced).
    PutTenant {
        /// The tenant.
        name: String,
        /// Its record after the change (boxed: a record is large beside a deletion).
        record: Box<TenantRecord>,
    },
    /// Tenant `name` and everything it had is gone.
    DeleteTenant {
        /// The tenant.
        name: String,
    },
}

impl State {
    /// Every component version a function of a tenant keeps (duplicates included).
    pub fn kept_versions(&self) -> impl Iterator<Item = &str> {
        self.tenants
            .values()
            .flat_map(|tenant| tenant.functions.values())
            .flat_map(|function| function.versions.iter().map(String::as_str))
    }

    /// Applies `change`; applying the same change twice is the same as once.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::PutTenant { name, record } => {
                self.tenants.insert(name, *record);
            }
            Change::DeleteTenant { name } => {
                self.tenants.remove(&name);
            }
        }
    }
}

/// Why the state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is torn, corrupt, or of another format.
    #[error(
        "{path} is corrupt ({why}); nothing from it is served. Restore it from a backup, or move it away to start empty"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: u32,
    sha256: String,
    state: serde_json::Value,
}

/// The journal's file name under `data_dir`.
pub const JOURNAL_FILE: &str = "state.journal";
/// The fewest changes the journal holds before a checkpoint may replace them.
pub const MIN_JOURNAL: usize = 256;

/// The durable state of one data directory: the checkpoint and the journal. Not shared: the
/// control plane holds it under its writers' lock.
#[derive(Debug)]
pub struct StateStore {
    checkpoint: PathBuf,
    journal_path: PathBuf,
    journal: File,
    /// The journal's length: where its last whole line ends.
    journal_len: u64,
    /// Changes in the journal since the checkpoint.
    journaled: usize,
    /// Set when a failed append could not be cut back: every later change is refused, since it
    /// would follow a torn line.
    damaged: bool,
    /// The fault-injection seam: the next append writes only this many bytes, then fails.
    fail_next_append_after: Option<usize>,
}

impl StateStore {
    /// Opens the store under `data_dir` (creating it when missing) and loads the state: the
    /// checkpoint, then every change journaled since. A torn last change is cut off (and
    /// reported in the log).
    pub fn open(data_dir: &Path) -> Result<(StateStore, State), StateError> {
        let checkpoint = data_dir.join(STATE_FILE);
        let journal_path = data_dir.join(JOURNAL_FILE);
        let mut state = load_checkpoint(&checkpoint)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StateError::Io { path, source }
        };
        super::create_private_dir(data_dir).map_err(io(data_dir))?;
        let mut journal = super::private_file()
            .read(true)
            .append(true)
            .create(true)
            .open(&journal_path)
            .map_err(io(&journal_path))?;
        // Made private even when an older version created it world-readable.
        super::make_private(&journal_path).map_err(io(&journal_path))?;
        let mut bytes = Vec::new();
        journal.read_to_end(&mut bytes).map_err(io(&journal_path))?;
        let replay = replay_journal(&bytes).map_err(|why| StateError::Corrupt {
            path: journal_path.clone(),
            why,
        })?;
        if let Some(torn) = &replay.torn {
            tracing::warn!(
                file = %journal_path.display(),
                offset = replay.valid_len,
                why = torn.as_str(),
                "dropping the journal's last change, cut short by a crash before it was acknowledged"
            );
            journal
                .set_len(replay.valid_len as u64)
                .and_then(|()| journal.sync_all())
                .map_err(io(&journal_path))?;
        }
        let journaled = replay.changes.len();
        for change in replay.changes {
            state.apply(change);
        }
        Ok((
            StateStore {
                checkpoint,
                journal_path,
                journal,
                journal_len: replay.valid_len as u64,
                journaled,
                damaged: false,
                fail_next_append_after: None,
            },
            state,
        ))
    }

    /// The checkpoint's path.
    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.checkpoint
    }

    /// Makes `change` durable, then applies it to `state` (which must be the state this store
    /// loaded, with every change since recorded here). When the journal has grown past the
    /// state's size, writes a new checkpoint and empties the journal; that failing is only
    /// logged, since the change itself is already durable.
    ///
    /// When the append fails part-way (a full disk), the journal is cut back to its last whole
    /// line before the error is returned, so nothing of the refused change stays and the next
    /// change starts on a clean line; `state` is untouched.
    pub fn record(&mut self, state: &mut State, change: Change) -> std::io::Result<()> {
        if self.damaged {
            return Err(std::io::Error::other(
                "the journal could not be repaired after a failed write; restart the gateway",
            ));
        }
        let json = serde_json::to_string(&change).map_err(std::io::Error::other)?;
        let line = format!("{} {json}\n", hex::encode(Sha256::digest(json.as_bytes())));
        if let Err(error) = self.append(line.as_bytes()) {
            let cut = self
                .journal
                .set_len(self.journal_len)
                .and_then(|()| self.journal.sync_all());
            if let Err(cut) = cut {
                self.damaged = true;
                tracing::error!(
                    file = %self.journal_path.display(),
                    error = %cut,
                    "could not cut a failed change off the journal; refusing changes until restart"
                );
            }
            return Err(error);
        }
        self.journal_len += line.len() as u64;
        self.journaled += 1;
        state.apply(change);
        if self.journaled >= MIN_JOURNAL.max(state.tenants.len())
            && let Err(error) = self.checkpoint(state)
        {
            tracing::warn!(
                file = %self.checkpoint.display(),
                %error,
                "could not write a state checkpoint; the journal keeps every change and grows until one succeeds"
            );
        }
        Ok(())
    }

    /// Appends `bytes` to the journal and makes them durable.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(after) = self.fail_next_append_after.take() {
            self.journal.write_all(&bytes[..after.min(bytes.len())])?;
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "injected: no space left on device",
            ));
        }
        self.journal.write_all(bytes)?;
        self.journal.sync_data()
    }

    /// The fault-injection seam: the next append writes `after` bytes of its line, then fails
    /// as a full disk would.
    #[doc(hidden)]
    pub fn fail_next_append_after(&mut self, after: usize) {
        self.fail_next_append_after = Some(after);
    }

    /// Writes all of `state` as the checkpoint and empties the journal.
    pub fn checkpoint(&mut self, state: &State) -> std::io::Result<()> {
        write_atomic(&self.checkpoint, &checkpoint_bytes(state)?)?;
        // A crash here replays changes the checkpoint already holds: harmless.
        self.journal.set_len(0)?;
        self.journal.sync_all()?;
        self.journal_len = 0;
        self.journaled = 0;
        Ok(())
    }

    /// Changes journaled since the last checkpoint.
    pub fn journaled(&self) -> usize {
        self.journaled
    }

    /// The journal's path.
    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }
}

/// `state` as the checkpoint file holds it: a checksummed envelope.
pub fn checkpoint_bytes(state: &State) -> std::io::Result<Vec<u8>> {
    let value = serde_json::to_value(state).map_err(std::io::Error::other)?;
    let envelope = Envelope {
        format: FORMAT,
        sha256: checksum(&value),
        state: value,
    };
    serde_json::to_vec_pretty(&envelope).map_err(std::io::Error::other)
}

fn load_checkpoint(path: &Path) -> Result<State, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    parse_checkpoint(&bytes, path)
}

/// The state in checkpoint `bytes` (read from `path`, for errors), its envelope and checksum
/// checked.
pub fn parse_checkpoint(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    let corrupt = |why: String| StateError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a state envelope: {e}")))?;
    if envelope.format != FORMAT {
        return Err(corrupt(format!(
            "format {} is not the format {FORMAT} this build reads",
            envelope.format
        )));
    }
    let actual = checksum(&envelope.state);
    if actual != envelope.sha256 {
        return Err(corrupt(format!(
            "checksum mismatch: {actual} instead of {}",
            envelope.sha256
        )));
    }
    serde_json::from_value(envelope.state).map_err(|e| corrupt(format!("invalid state: {e}")))
}

/// What a journal's bytes hold.
#[derive(Debug)]
struct Replay {
    changes: Vec<Change>,
    /// The length of the good prefix.
    valid_len: usize,
    /// Why the last line was dropped, when it was.
    torn: Option<String>,
}

/// Parses the journal: every line must be good but the last, which a crash may have cut short.
fn replay_journal(bytes: &[u8]) -> Result<Replay, String> {
    let mut changes = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], offset + end + 1),
            None => (rest, bytes.len()),
        };
        let parsed = if next == bytes.len() && !rest.ends_with(b"\n") {
            Err("no end of line".to_owned())
        } else {
            parse_line(line)
        };
        match parsed {
            Ok(change) => changes.push(change),
            Err(why) if next == bytes.len() => {
                return Ok(Replay {
                    changes,
                    valid_len: offset,
                    torn: Some(why),
                });
            }
            Err(why) => {
                return Err(format!(
                    "change {} (byte {offset}) is damaged and others follow it: {why}",
                    changes.len() + 1
                ));
            }
        }
        offset = next;
    }
    Ok(Replay {
        changes,
        valid_len: bytes.len(),
        torn: None,
    })
}

fn parse_line(line: &[u8]) -> Result<Change, String> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_owned())?;
    let (sha256, json) = line
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_owned())?;
    let actual = hex::encode(Sha256::digest(json.as_bytes()));
    if actual != sha256 {
        return Err(format!("checksum mismatch: {actual} instead of {sha256}"));
    }
    serde_json::from_str(json).map_err(|e| format!("invalid change: {e}"))
}

fn checksum(state: &serde_json::Value) -> String {
    let canonical = serde_json::to_vec(state).expect("a JSON value always serializes");
    hex::encode(Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;
    use std::fs;

    fn sample() -> State {
        let mut functions = BTreeMap::new();
        functions.insert(
            "hello".to_owned(),
            FunctionRecord::new("aa".repeat(32), vec!["acme.test/hello".to_owned()]),
        );
        let mut tenants = BTreeMap::new();
        tenants.insert(
            "acme".to_owned(),
            TenantRecord {
                hosts: vec!["acme.test".to_owned(), "*.acme.test".to_owned()],
                limits: LimitsSpec {
                    memory: Some(ByteSize(32 << 20)),
                    cpu_time: Some(std::time::Duration::from_millis(20)),
                    ..LimitsSpec::default()
                },
                outbound_allow: vec![],
                functions,
                token_hashes: vec!["bb".repeat(32)],
                tokens: vec![],
                generation: "cc".repeat(16),
            },
        );
        State { tenants }
    }

    fn put(name: &str, record: TenantRecord) -> Change {
        Change::PutTenant {
            name: name.to_owned(),
            record: Box::new(record),
        }
    }

    fn reopen(dir: &Path) -> State {
        StateStore::open(dir).unwrap().1
    }

    #[test]
    fn a_failed_append_is_cut_back_and_the_next_one_starts_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        store
            .record(&mut state, put("a", TenantRecord::default()))
            .unwrap();
        let good = fs::metadata(store.journal_path()).unwrap().len();
        store.fail_next_append_after(10);
        let error = store
            .record(&mut state, put("b", TenantRecord::default()))
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(fs::metadata(store.journal_path()).unwrap().len(), good);
        assert!(!state.tenants.contains_key("b"), "the state is untouched");
        store
            .record(&mut state, put("c", TenantRecord::default()))
            .unwrap();
        drop(store);
        let state = reopen(dir.path());
        let names: Vec<&str> = state.tenants.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["a", "c"],
            "every acknowledged change, and only those"
        );
    }

    #[test]
    fn an_empty_directory_is_the_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(reopen(dir.path()), State::default());
    }

    #[test]
    fn changes_survive_a_restart_through_the_journal_and_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        let acme = sample().tenants.remove("acme").unwrap();
        store.record(&mut state, put("acme", acme.clone())).unwrap();
        store
            .record(&mut state, put("gone", TenantRecord::default()))
            .unwrap();
        store
            .record(
                &mut state,
                Change::DeleteTenant {
                    name: "gone".into(),
                },
            )
            .unwrap();
        assert_eq!(state, sample());
        assert_eq!(store.journaled(), 3);
        assert!(
            !dir.path().join(STATE_FILE).exists(),
            "small changes are only journaled"
        );
        assert_eq!(reopen(dir.path()), sample(), "replayed from the journal");

        store.checkpoint(&state).unwrap();
        assert_eq!(store.journaled(), 0);
        assert_eq!(fs::metadata(store.journal_path()).unwrap().len(), 0);
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(text.contains("\"memory\": \"32MiB\""), "{text}");
        assert!(text.contains("\"cpu_time\": \"20ms\""), "{text}");
        assert_eq!(reopen(dir.path()), sample(), "read from the checkpoint");
    }

    #[test]
    fn the_journal_is_folded_into_a_checkpoint_once_it_outgrows_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        for i in 0..MIN_JOURNAL {
            store
                .record(
                    &mut state,
                    put(&format!("t{}", i % 10), TenantRecord::default()),
                )
                .unwrap();
        }
        assert_eq!(store.journaled(), 0, "a checkpoint replaced the journal");
        assert_eq!(state.tenants.len(), 10);
        assert_eq!(reopen(dir.path()), state);
        // A crash after the checkpoint but before the journal was emptied replays changes the
        // checkpoint already holds: nothing changes.
        let line = {
            let json = serde_json::to_string(&put("t3", TenantRecord::default())).unwrap();
            format!("{} {json}\n", hex::encode(Sha256::digest(json.as_bytes())))
        };
        fs::write(store.journal_path(), line).unwrap();
        assert_eq!(reopen(dir.path()), state);
    }

    #[test]
    fn a_change_cut_short_by_a_crash_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        store
            .record(&mut state, put("kept", TenantRecord::default()))
            .unwrap();
        store
            .record(&mut state, put("torn", TenantRecord::default()))
            .unwrap();
        let journal = fs::read(store.journal_path()).unwrap();
        let first_line = journal.iter().position(|&b| b == b'\n').unwrap() + 1;
        drop(store);
        fs::write(dir.path().join(JOURNAL_FILE), &journal[..journal.len() - 7]).unwrap();

        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        assert_eq!(state.tenants.keys().collect::<Vec<_>>(), ["kept"]);
        assert_eq!(
            fs::metadata(dir.path().join(JOURNAL_FILE)).unwrap().len() as usize,
            first_line,
            "the torn tail is cut off, so later changes follow a good line"
        );
        store
            .record(&mut state, put("after", TenantRecord::default()))
            .unwrap();
        assert_eq!(
            reopen(dir.path()).tenants.keys().collect::<Vec<_>>(),
            ["after", "kept"]
        );
    }

    #[test]
    fn a_damaged_change_with_changes_after_it_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = StateStore::open(dir.path()).unwrap();
        for name in ["one", "two"] {
            store
                .record(&mut state, put(name, TenantRecord::default()))
                .unwrap();
        }
        let text = fs::read_to_string(store.journal_path()).unwrap();
        fs::write(
            store.journal_path(),
            text.replacen("\"one\"", "\"evil\"", 1),
        )
        .unwrap();
        let error = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("state.journal is corrupt")
                && error.contains("change 1")
                && error.contains("checksum mismatch"),
            "{error}"
        );
    }

    #[test]
    fn a_truncated_or_edited_checkpoint_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = StateStore::open(dir.path()).unwrap();
        store.checkpoint(&sample()).unwrap();
        let text = fs::read_to_string(store.path()).unwrap();

        fs::write(store.path(), &text[..text.len() / 2]).unwrap();
        let error = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("is corrupt") && error.contains("not a state envelope"),
            "{error}"
        );

        fs::write(
            store.path(),
            text.replace("acme.test/hello", "evil.test/hello"),
        )
        .unwrap();
        let error = StateStore::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
    }

    #[test]
    fn deploys_keep_the_newest_versions() {
        let mut f = FunctionRecord::new("v1".into(), vec![]);
        assert!(f.deploy("v2".into(), 3).is_empty());
        assert!(f.deploy("v3".into(), 3).is_empty());
        assert_eq!(f.deploy("v4".into(), 3), vec!["v1".to_owned()]);
        assert_eq!(f.versions, ["v2", "v3", "v4"]);
        assert_eq!(f.active, "v4");
        // Deploying a kept version again makes it the newest, without a duplicate.
        assert!(f.deploy("v2".into(), 3).is_empty());
        assert_eq!(f.versions, ["v3", "v4", "v2"]);
    }

    #[test]
    fn rollback_to_the_previous_or_a_named_version() {
        let mut f = FunctionRecord::new("v1".into(), vec![]);
        assert_eq!(f.rollback(None), Err(RollbackError::NoPrevious));
        f.deploy("v2".into(), 10);
        f.deploy("v3".into(), 10);
        assert_eq!(f.rollback(None).unwrap(), "v2");
        assert_eq!(f.rollback(None).unwrap(), "v1");
        assert_eq!(f.rollback(Some("v3")).unwrap(), "v3");
        assert_eq!(
            f.rollback(Some("v9")),
            Err(RollbackError::UnknownVersion("v9".into()))
        );
        assert_eq!(f.active, "v3");
    }
}
