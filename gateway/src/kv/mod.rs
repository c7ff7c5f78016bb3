//! Tenants' key-value data through the standard `wasi:keyvalue` draft (`store`, `atomics`,
//! `batch`), kept in an embedded database under `data_dir` ([`store`]). Each tenant has its
//! own namespace that no other tenant can reach, with quotas on keys and bytes; its data
//! survives restarts and goes with the tenant when it is deleted.

pub mod store;

use std::sync::Arc;

use tokio::sync::Semaphore;

pub use self::store::{KvError, KvSettings, KvSnapshot, KvStore, Usage};

/// The most key-value operations one tenant has on blocking threads at once. The rest of its
/// calls wait their turn on its own queue, so a tenant hammering writes (which redb serialises)
/// never fills the blocking pool other tenants' calls need.
pub const MAX_IN_FLIGHT_PER_TENANT: usize = 4;

/// One tenant's view of the database: every operation is in its namespace, at most
/// [`MAX_IN_FLIGHT_PER_TENANT`] at once.
#[derive(Debug, Clone)]
pub struct TenantKv {
    store: Arc<KvStore>,
    tenant: String,
    in_flight: Arc<Semaphore>,
}

impl TenantKv {
    /// `tenant`'s namespace of `store`.
    pub fn new(store: Arc<KvStore>, tenant: &str) -> TenantKv {
        TenantKv {
            store,
            tenant: tenant.to_owned(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_TENANT)),
        }
    }

    /// Runs `op` on the database in a blocking thread (writes wait for the disk), once one of
    /// the tenant's turns is free.
    pub async fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&KvStore, &str) -> Result<R, KvError> + Send + 'static,
    ) -> Result<R, KvError> {
        let _turn = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| KvError::Storage("the key-value queue is closed".into()))?;
        let (store, tenant) = (self.store.clone(), self.tenant.clone());
        tokio::task::spawn_blocking(move || op(&store, &tenant))
            .await
            .map_err(|e| KvError::Storage(format!("the storage task failed: {e}")))?
    }
}
