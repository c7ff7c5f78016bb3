//! Tenants' key-value data through the admin API: list, read and delete, the same store and
//! quotas as their guests use.

use crate::kv::store::{KvError, Usage, check_bucket};

use super::{ControlError, ControlPlane, invalid, not_found_tenant};

/// A page of a tenant's keys.
#[derive(Debug)]
pub struct KvPage {
    /// `bucket/key` names, in order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` after the last.
    pub cursor: Option<u64>,
    /// What the tenant holds.
    pub usage: Usage,
}

impl From<KvError> for ControlError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Invalid(why) => invalid("bad_request", why),
            KvError::DiskFull(why) => ControlError::StorageFull(format!("key-value data: {why}")),
            other => ControlError::Storage(other.to_string()),
        }
    }
}

impl ControlPlane {
    /// A page of `tenant`'s keys, in `bucket` or in all of them, from `cursor`.
    pub async fn kv_keys(
        &self,
        tenant: &str,
        bucket: Option<String>,
        cursor: u64,
    ) -> Result<KvPage, ControlError> {
        if let Some(bucket) = &bucket {
            check_bucket(bucket)?;
        }
        let kv = self.existing_kv(tenant).await?;
        let page = kv
            .run(move |store, tenant| {
                let (keys, cursor) = store.list_keys(tenant, bucket.as_deref(), cursor)?;
                let usage = store.usage(tenant)?;
                Ok(KvPage {
                    keys,
                    cursor,
                    usage,
                })
            })
            .await?;
        Ok(page)
    }

    /// The value of `tenant`'s `key` in `bucket`.
    pub async fn kv_get(
        &self,
        tenant: &str,
        bucket: String,
        key: String,
    ) -> Result<Vec<u8>, ControlError> {
        let kv = self.existing_kv(tenant).await?;
        kv.run(move |store, tenant| store.get(tenant, &bucket, &key))
            .await?
            .ok_or_else(|| ControlError::NotFound("no such key".into()))
    }

    /// Deletes `tenant`'s `key` in `bucket`.
    pub async fn kv_delete(
        &self,
        tenant: &str,
        bucket: String,
        key: String,
    ) -> Result<(), ControlError> {
        let kv = self.existing_kv(tenant).await?;
        let removed = kv
            .run(move |store, tenant| store.delete_many(tenant, &bucket, &[key]))
            .await?;
        if removed == 0 {
            return Err(ControlError::NotFound("no such key".into()));
        }
        Ok(())
    }

    /// The key-value data of served tenant `tenant`: its generation's.
    async fn existing_kv(&self, tenant: &str) -> Result<crate::kv::TenantKv, ControlError> {
        let inner = self.inner.lock().await;
        let live = inner
            .live
            .get(tenant)
            .ok_or_else(|| not_found_tenant(tenant))?;
        let namespace = match (live.origin, inner.state.tenants.get(tenant)) {
            (super::Origin::Api, Some(record)) => record.kv_namespace(tenant),
            _ => tenant.to_owned(),
        };
        Ok(crate::kv::TenantKv::new(self.kv.clone(), &namespace))
    }

    /// Deletes the key-value data of generations no tenant has (a crash came between deleting
    /// a tenant and deleting its data). Data under a bare name (config tenants, tenants older
    /// than generations) is never touched here. Blocking: call it at start-up.
    pub(super) fn collect_kv_garbage(&self, inner: &super::Inner) {
        let kept: std::collections::HashSet<String> = inner
            .state
            .tenants
            .iter()
            .map(|(name, record)| record.kv_namespace(name))
            .collect();
        let namespaces = match self.kv.namespaces() {
            Ok(namespaces) => namespaces,
            Err(e) => {
                tracing::warn!(error = %e, "listing key-value namespaces failed");
                return;
            }
        };
        for namespace in namespaces {
            if namespace.contains('@') && !kept.contains(&namespace) {
                match self.kv.delete_tenant(&namespace) {
                    Ok(()) => tracing::info!(
                        namespace = namespace.as_str(),
                        "deleted the key-value data of a tenant deleted before a crash"
                    ),
                    Err(e) => tracing::warn!(error = %e, "deleting orphaned key-value data failed"),
                }
            }
        }
    }
}
