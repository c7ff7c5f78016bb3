//! Admin authentication: who a bearer token belongs to.
//!
//! - The **operator token** comes from `ATOLL_ADMIN_TOKEN`; when that is unset the gateway
//!   keeps one in `<data_dir>/admin.token` (mode 0600), made at first start and reused after,
//!   and logs that path — never the token. A file token can be rotated
//!   ([`OperatorToken::rotate`], `POST /v1/admin/token/rotate`); an environment one cannot.
//! - **Tenant tokens** (`atl_<tenant>_<64 hex>`) are made by the operator for one tenant. Only
//!   their sha256 is stored; a presented token is hashed and compared in constant time.
//!
//! The control plane turns a token into a [`Caller`] (the operator's by
//! [`OperatorToken::matches`], a tenant's by its stored hashes); [`Caller::access`] says
//! whether that caller may act on a tenant (the admin API answers 401 for an unknown token, 403 for another
//! tenant's).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};

/// The environment variable holding the operator token.
pub const OPERATOR_TOKEN_ENV: &str = "ATOLL_ADMIN_TOKEN";
/// The file under `data_dir` holding a generated operator token.
pub const OPERATOR_TOKEN_FILE: &str = "admin.token";

/// Where the operator token came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorTokenSource {
    /// `ATOLL_ADMIN_TOKEN`.
    Environment,
    /// A token file written by an earlier start.
    ExistingFile(PathBuf),
    /// A token made now and written to this file.
    GeneratedFile(PathBuf),
}

/// The operator token, kept only as its hash, and where it lives.
#[derive(Debug)]
pub struct OperatorToken {
    hash: ArcSwap<[u8; 32]>,
    /// The file holding it; `None` when it comes from `ATOLL_ADMIN_TOKEN`.
    file: Option<PathBuf>,
    /// Serialises rotations: one file write and one swap at a time.
    rotating: Mutex<()>,
}

/// Why the operator token could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The token is `ATOLL_ADMIN_TOKEN`'s: the gateway cannot change the environment.
    #[error(
        "the operator token comes from ATOLL_ADMIN_TOKEN: set a new value there and restart the gateway"
    )]
    FromEnvironment,
    /// Writing the new token's file failed; the old token still holds.
    #[error("writing the new operator token to {path}: {source}")]
    Write {
        /// The token file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl OperatorToken {
    /// The operator token from `from_env` (the value of `ATOLL_ADMIN_TOKEN`, if set and not
    /// empty), else from `<data_dir>/admin.token`, else a new one written there with mode 0600.
    pub fn load(
        data_dir: &Path,
        from_env: Option<String>,
    ) -> std::io::Result<(OperatorToken, OperatorTokenSource)> {
        if let Some(token) = from_env.filter(|t| !t.trim().is_empty()) {
            return Ok((
                Self::new(token.trim(), None),
                OperatorTokenSource::Environment,
            ));
        }
        let path = data_dir.join(OPERATOR_TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => {
                return Ok((
                    Self::new(token.trim(), Some(path.clone())),
                    OperatorTokenSource::ExistingFile(path),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let token = new_operator_token();
        write_secret(&path, &token)?;
        Ok((
            Self::new(&token, Some(path.clone())),
            OperatorTokenSource::GeneratedFile(path),
        ))
    }

    /// Whether `token` is the operator's, compared in constant time.
    pub fn matches(&self, token: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        constant_time_eq(&hash, &**self.hash.load())
    }

    /// Replaces the operator token with a new one and returns it (the only time it is shown).
    /// The new token is durable in its file before it is accepted; from then on the old one is
    /// refused. A token from `ATOLL_ADMIN_TOKEN` is not rotated: the environment is the
    /// operator's to change.
    pub fn rotate(&self) -> Result<String, RotateError> {
        let path = self.file.as_ref().ok_or(RotateError::FromEnvironment)?;
        let _one_at_a_time = self.rotating.lock().unwrap_or_else(|e| e.into_inner());
        let token = new_operator_token();
        write_secret(path, &token).map_err(|source| RotateError::Write {
            path: path.clone(),
            source,
        })?;
        self.hash
            .store(Arc::new(Sha256::digest(token.as_bytes()).into()));
        Ok(token)
    }

    fn new(token: &str, file: Option<PathBuf>) -> OperatorToken {
        OperatorToken {
            hash: ArcSwap::from_pointee(Sha256::digest(token.as_bytes()).into()),
            file,
            rotating: Mutex::new(()),
        }
    }
}

fn new_operator_token() -> String {
    format!("atl_operator_{}", random_hex())
}

/// Writes `secret` to `path`, readable by the owner only, crash-safely.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}{}",
        OPERATOR_TOKEN_FILE,
        std::process::id(),
        crate::store::TEMP_SUFFIX
    ));
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// 32 random bytes as 64 hex digits.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A new token for `tenant`. Give it to the tenant; store only [`token_hash`] of it.
pub fn new_tenant_token(tenant: &str) -> String {
    format!("atl_{tenant}_{}", random_hex())
}

/// The tenant a tenant token (`atl_<tenant>_<hex>`) names, if it is one.
pub fn token_tenant(token: &str) -> Option<&str> {
    Some(token.strip_prefix("atl_")?.rsplit_once('_')?.0)
}

/// The stored form of a token: its sha256 as hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator: may do everything.
    Operator,
    /// A tenant's token: may act on that tenant only.
    Tenant(String),
}

/// Whether a caller may act on a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Go ahead.
    Allowed,
    /// Another tenant's token (403).
    Forbidden,
}

impl Caller {
    /// Whether this caller may act on `tenant`.
    pub fn access(&self, tenant: &str) -> Access {
        match self {
            Caller::Operator => Access::Allowed,
            Caller::Tenant(own) if own == tenant => Access::Allowed,
            Caller::Tenant(_) => Access::Forbidden,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_then_the_file_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, source) = OperatorToken::load(dir.path(), Some("from-env".into())).unwrap();
        assert_eq!(source, OperatorTokenSource::Environment);
        assert!(!dir.path().join(OPERATOR_TOKEN_FILE).exists());

        let (first, source) = OperatorToken::load(dir.path(), None).unwrap();
        let path = dir.path().join(OPERATOR_TOKEN_FILE);
        assert_eq!(source, OperatorTokenSource::GeneratedFile(path.clone()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        let (second, source) = OperatorToken::load(dir.path(), Some("  ".into())).unwrap();
        assert_eq!(source, OperatorTokenSource::ExistingFile(path.clone()));
        assert_eq!(**first.hash.load(), **second.hash.load());
        let token = std::fs::read_to_string(&path).unwrap();
        assert!(token.trim().starts_with("atl_operator_"));
        assert!(second.matches(token.trim()));
        assert!(!second.matches("atl_operator_not-it"));
    }

    #[test]
    fn a_file_token_rotates_durably_and_an_environment_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (token, _) = OperatorToken::load(dir.path(), None).unwrap();
        let path = dir.path().join(OPERATOR_TOKEN_FILE);
        let old = std::fs::read_to_string(&path).unwrap().trim().to_owned();

        let new = token.rotate().unwrap();
        assert_ne!(new, old);
        assert!(token.matches(&new));
        assert!(!token.matches(&old), "the old token is refused at once");
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), new);
        let (reloaded, _) = OperatorToken::load(dir.path(), None).unwrap();
        assert!(reloaded.matches(&new), "a restart keeps the rotated token");

        let (from_env, _) = OperatorToken::load(dir.path(), Some("from-env".into())).unwrap();
        assert!(matches!(
            from_env.rotate(),
            Err(RotateError::FromEnvironment)
        ));
        assert!(from_env.matches("from-env"));
    }

    #[test]
    fn tenant_tokens_name_their_tenant_and_reach_it_only() {
        let acme = new_tenant_token("acme");
        assert_eq!(token_tenant(&acme), Some("acme"));
        assert_eq!(token_tenant(&new_tenant_token("a-b")), Some("a-b"));
        assert_eq!(token_tenant("nonsense"), None);
        assert_ne!(token_hash(&acme), token_hash(&new_tenant_token("acme")));
        let caller = Caller::Tenant("acme".into());
        assert_eq!(caller.access("acme"), Access::Allowed);
        assert_eq!(caller.access("beta"), Access::Forbidden);
        assert_eq!(Caller::Operator.access("beta"), Access::Allowed);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
