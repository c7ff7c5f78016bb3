//! Component bytes, content-addressed: `components/<sha256>.wasm`. A file whose bytes no longer
//! hash to its name (a torn write, a disk error) is reported, never served.

use std::path::{Path, PathBuf};

use super::{content_hash, write_atomic};

/// Why a stored component could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// Reading failed.
    #[error("reading component {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The bytes do not match their hash.
    #[error("component {path} is corrupt: its bytes hash to {actual}, not {expected}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The hash in its name.
        expected: String,
        /// The hash of what is there.
        actual: String,
    },
}

/// The content-addressed component store of one data directory.
#[derive(Debug, Clone)]
pub struct ComponentStore {
    dir: PathBuf,
}

impl ComponentStore {
    /// The store under `data_dir/components/`.
    pub fn new(data_dir: &Path) -> ComponentStore {
        ComponentStore {
            dir: data_dir.join("components"),
        }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.wasm"))
    }

    /// Stores `bytes` (once: the same bytes are already there under the same name) and returns
    /// their sha256.
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha256 = content_hash(bytes);
        let path = self.path_for(&sha256);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(sha256)
    }

    /// The bytes of component `sha256`, checked against their hash.
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, ComponentError> {
        let path = self.path_for(sha256);
        let bytes = std::fs::read(&path).map_err(|source| ComponentError::Io {
            path: path.clone(),
            source,
        })?;
        let actual = content_hash(&bytes);
        if actual != sha256 {
            return Err(ComponentError::Corrupt {
                path,
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// An open handle on component `sha256`'s file: it stays readable even if the file is
    /// removed after (a backup reads it so).
    pub fn open(&self, sha256: &str) -> std::io::Result<std::fs::File> {
        std::fs::File::open(self.path_for(sha256))
    }

    /// The sha256 of every component stored.
    pub fn list(&self) -> std::io::Result<Vec<String>> {
        super::list_named(&self.dir, ".wasm")
    }

    /// Removes component `sha256`, if it is there.
    pub fn remove(&self, sha256: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path_for(sha256)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = ComponentStore::new(dir.path());
        let sha = store.put(b"component bytes").unwrap();
        assert_eq!(store.put(b"component bytes").unwrap(), sha);
        assert_eq!(store.get(&sha).unwrap(), b"component bytes");

        std::fs::write(dir.path().join(format!("components/{sha}.wasm")), b"compo").unwrap();
        let error = store.get(&sha).unwrap_err().to_string();
        assert!(error.contains("is corrupt"), "{error}");

        store.remove(&sha).unwrap();
        store.remove(&sha).unwrap();
        assert!(matches!(store.get(&sha), Err(ComponentError::Io { .. })));
    }
}
