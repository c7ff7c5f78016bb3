//! The deployment state — tenants made through the admin API, their functions with their
//! versions and routes, and the hashes of their tokens — in one file, `state.json`, written
//! crash-safely and checksummed, so a torn or corrupt file is detected and reported, never
//! served.
//!
//! The file is an envelope `{"format": 1, "sha256": "<hex>", "state": {…}}` where `sha256` is
//! the hash of the serialized `state`. Component bytes live beside it in
//! [`ComponentStore`](super::ComponentStore), referenced by version.

use std::collections::BTreeMap;
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
    /// sha256 hashes of its tokens (the tokens themselves are never stored).
    #[serde(default)]
    pub token_hashes: Vec<String>,
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

/// The state file of one data directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file under `data_dir`.
    pub fn new(data_dir: &Path) -> StateFile {
        StateFile {
            path: data_dir.join(STATE_FILE),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the state; a missing file is the empty state.
    pub fn load(&self) -> Result<State, StateError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let corrupt = |why: String| StateError::Corrupt {
            path: self.path.clone(),
            why,
        };
        let envelope: Envelope = serde_json::from_slice(&bytes)
            .map_err(|e| corrupt(format!("not a state envelope: {e}")))?;
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

    /// Writes `state` crash-safely.
    pub fn save(&self, state: &State) -> std::io::Result<()> {
        let value = serde_json::to_value(state).map_err(std::io::Error::other)?;
        let envelope = Envelope {
            format: FORMAT,
            sha256: checksum(&value),
            state: value,
        };
        let bytes = serde_json::to_vec_pretty(&envelope).map_err(std::io::Error::other)?;
        write_atomic(&self.path, &bytes)
    }
}

fn checksum(state: &serde_json::Value) -> String {
    let canonical = serde_json::to_vec(state).expect("a JSON value always serializes");
    hex::encode(Sha256::digest(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ByteSize;

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
            },
        );
        State { tenants }
    }

    #[test]
    fn saves_and_loads_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        assert_eq!(
            file.load().unwrap(),
            State::default(),
            "no file is the empty state"
        );
        file.save(&sample()).unwrap();
        assert_eq!(file.load().unwrap(), sample());
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("\"memory\": \"32MiB\""), "{text}");
        assert!(text.contains("\"cpu_time\": \"20ms\""), "{text}");
    }

    #[test]
    fn a_truncated_or_edited_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path());
        file.save(&sample()).unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();

        std::fs::write(file.path(), &text[..text.len() / 2]).unwrap();
        let error = file.load().unwrap_err().to_string();
        assert!(
            error.contains("is corrupt") && error.contains("not a state envelope"),
            "{error}"
        );

        std::fs::write(
            file.path(),
            text.replace("acme.test/hello", "evil.test/hello"),
        )
        .unwrap();
        let error = file.load().unwrap_err().to_string();
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
