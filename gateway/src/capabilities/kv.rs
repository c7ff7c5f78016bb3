//! Key-value storage, the host side of `wasi:keyvalue` (`store`, `atomics`, `batch`) over the
//! tenant's namespace of [`crate::kv`]. Granted the tenant's namespace; each request's state
//! is that namespace. Every call runs on a blocking thread, so a write waiting for the disk
//! never holds a worker that other requests need. A guest without a namespace gets
//! `access-denied`.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use crate::kv::store::check_bucket;
use crate::kv::{KvError, TenantKv};

use super::Capability;

/// The most keys one batch call (`get-many`, `set-many`, `delete-many`) may name: its results
/// are held by the host until the guest takes them, so a batch is bounded like any value.
pub const MAX_BATCH_KEYS: usize = 1000;

fn check_batch(keys: usize) -> Result<(), KvError> {
    if keys > MAX_BATCH_KEYS {
        return Err(KvError::Invalid(format!(
            "{keys} keys in one batch: at most {MAX_BATCH_KEYS}"
        )));
    }
    Ok(())
}

/// Key-value storage.
pub struct KeyValue;

impl Capability for KeyValue {
    /// The tenant's namespace; `None` refuses every call.
    type Grant = Option<Arc<TenantKv>>;
    type State = Option<Arc<TenantKv>>;

    fn prepare(grant: &Self::Grant) -> Self::State {
        grant.clone()
    }
}

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// An open bucket.
#[derive(Debug)]
pub struct Bucket {
    name: String,
}

/// What a guest's `wasi:keyvalue` calls see: its resources and its tenant's namespace.
pub struct KvView<'a> {
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
    /// The tenant's namespace; `None` refuses every call.
    pub kv: Option<&'a TenantKv>,
}

impl From<ResourceTableError> for KvError {
    fn from(e: ResourceTableError) -> Self {
        KvError::Storage(e.to_string())
    }
}

impl KvView<'_> {
    fn namespace(&self) -> Result<TenantKv, KvError> {
        self.kv.cloned().ok_or(KvError::Disabled)
    }

    fn bucket(&self, bucket: &Resource<Bucket>) -> Result<String, KvError> {
        Ok(self.table.get(bucket)?.name.clone())
    }
}

impl store::Host for KvView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, KvError> {
        self.namespace()?;
        check_bucket(&identifier)?;
        Ok(self.table.push(Bucket { name: identifier })?)
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
        Ok(match err {
            KvError::Disabled => store::Error::AccessDenied,
            other => store::Error::Other(other.to_string()),
        })
    }
}

impl store::HostBucket for KvView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        kv.run(move |s, t| s.get(t, &name, &key)).await
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        kv.run(move |s, t| s.set_many(t, &name, &[(key, value)]))
            .await
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        kv.run(move |s, t| s.delete_many(t, &name, &[key]).map(|_| ()))
            .await
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        kv.run(move |s, t| s.get(t, &name, &key).map(|v| v.is_some()))
            .await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        let (keys, cursor) = kv
            .run(move |s, t| s.list_keys(t, Some(&name), cursor.unwrap_or(0)))
            .await?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KvView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        kv.run(move |s, t| s.increment(t, &name, &key, delta)).await
    }
}

impl batch::Host for KvView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        check_batch(keys.len())?;
        kv.run(move |s, t| {
            keys.into_iter()
                .map(|key| Ok(s.get(t, &name, &key)?.map(|value| (key, value))))
                .collect()
        })
        .await
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        check_batch(key_values.len())?;
        kv.run(move |s, t| s.set_many(t, &name, &key_values)).await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        let (kv, name) = (self.namespace()?, self.bucket(&bucket)?);
        check_batch(keys.len())?;
        kv.run(move |s, t| s.delete_many(t, &name, &keys).map(|_| ()))
            .await
    }
}

struct HasKv;

impl HasData for HasKv {
    type Data<'a> = KvView<'a>;
}

/// Adds `wasi:keyvalue/{store, atomics, batch}` to `linker`, with `view` finding a store's
/// [`KvView`].
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KvView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<_, HasKv>(linker, view)?;
    atomics::add_to_linker::<_, HasKv>(linker, view)?;
    batch::add_to_linker::<_, HasKv>(linker, view)?;
    Ok(())
}
