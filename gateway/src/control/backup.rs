//! Taking a backup: what the archive holds, gathered under the writers' lock so that the state,
//! the components it keeps and the key-value data belong to one moment. The lock is held only
//! to clone the state, open the components and begin a key-value read transaction; the archive
//! is written after, from those ([`crate::store::backup`]).

use crate::store::backup::{BackupSource, KV_FILE, kept_components};

use super::{ControlError, ControlPlane, storage_error};

impl ControlPlane {
    /// Everything a backup holds, as of now.
    pub async fn backup_source(&self) -> Result<BackupSource, ControlError> {
        let inner = self.inner.lock().await;
        let state = inner.state.clone();
        let components = kept_components(&state)
            .into_iter()
            .map(|sha256| match self.components.open(&sha256) {
                Ok(file) => Ok((sha256, file)),
                Err(e) => Err(storage_error(format!("opening component {sha256}"), &e)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let kv = self.kv.snapshot()?;
        drop(inner);
        let kv_scratch = self.config.data_dir.join(format!(
            ".{KV_FILE}.backup.{}{}",
            hex::encode(rand::random::<[u8; 8]>()),
            crate::store::TEMP_SUFFIX
        ));
        Ok(BackupSource {
            state,
            components,
            kv,
            kv_scratch,
        })
    }
}
