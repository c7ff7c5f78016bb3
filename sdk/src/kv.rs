//! Key-value storage through the standard `wasi:keyvalue` interfaces: durable, per tenant (no
//! other tenant can reach it), within the tenant's quotas.
//!
//! ```no_run
//! let bucket = atoll_sdk::kv::Bucket::open("visits")?;
//! let visits = bucket.increment("home", 1)?;
//! bucket.set("last-path", b"/home")?;
//! assert_eq!(bucket.get("last-path")?.as_deref(), Some(&b"/home"[..]));
//! # Ok::<(), atoll_sdk::kv::KvError>(())
//! ```

use std::fmt;

use crate::bindings::wasi::keyvalue::{atomics, batch, store};

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The function's tenant may not use key-value storage.
    AccessDenied,
    /// No such store.
    NoSuchStore,
    /// Anything else, described: a quota crossed, a key too long, a counter that is not a
    /// number, a storage failure.
    Other(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::AccessDenied => f.write_str("key-value access denied"),
            KvError::NoSuchStore => f.write_str("no such key-value store"),
            KvError::Other(why) => write!(f, "key-value: {why}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<store::Error> for KvError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::AccessDenied => KvError::AccessDenied,
            store::Error::NoSuchStore => KvError::NoSuchStore,
            store::Error::Other(why) => KvError::Other(why),
        }
    }
}

/// A bucket of keys and values.
pub struct Bucket(store::Bucket);

impl Bucket {
    /// Opens the bucket `name` (1 to 128 bytes), made on first use.
    pub fn open(name: &str) -> Result<Bucket, KvError> {
        Ok(Bucket(store::open(name)?))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.0.get(key)?)
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        Ok(self.0.set(key, value)?)
    }

    /// Deletes `key` (absent is fine).
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        Ok(self.0.delete(key)?)
    }

    /// Whether `key` is set.
    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.0.exists(key)?)
    }

    /// Every key of the bucket, in order.
    pub fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.0.list_keys(cursor)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the decimal number at `key` (0 when absent), atomically, and returns
    /// the result: concurrent increments never lose one.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, KvError> {
        Ok(atomics::increment(&self.0, key, delta)?)
    }

    /// The values of `keys` (`None` where unset), in order.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<(String, Vec<u8>)>>, KvError> {
        Ok(batch::get_many(&self.0, keys)?)
    }

    /// Sets every key to its value, all or none.
    pub fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        Ok(batch::set_many(&self.0, entries)?)
    }

    /// Deletes every key.
    pub fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        Ok(batch::delete_many(&self.0, keys)?)
    }
}
