//! Tenants' key-value data through the standard `wasi:keyvalue` draft (`store`, `atomics`,
//! `batch`), kept in an embedded database under `data_dir` ([`store`]). Each tenant has its
//! own namespace that no other tenant can reach, with quotas on keys and bytes; its data
//! survives restarts and goes with the tenant when it is deleted.

pub mod store;

use std::sync::Arc;

pub use self::store::{KvError, KvSettings, KvStore, Usage};

/// One tenant's view of the database: every operation is in its namespace.
#[derive(Debug, Clone)]
pub struct TenantKv {
    store: Arc<KvStore>,
    tenant: String,
}

impl TenantKv {
    /// `tenant`'s namespace of `store`.
    pub fn new(store: Arc<KvStore>, tenant: &str) -> TenantKv {
        TenantKv {
            store,
            tenant: tenant.to_owned(),
        }
    }

    /// Runs `op` on the database in a blocking thread (writes wait for the disk).
    pub async fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&KvStore, &str) -> Result<R, KvError> + Send + 'static,
    ) -> Result<R, KvError> {
        let (store, tenant) = (self.store.clone(), self.tenant.clone());
        tokio::task::spawn_blocking(move || op(&store, &tenant))
            .await
            .map_err(|e| KvError::Storage(format!("the storage task failed: {e}")))?
    }
}
