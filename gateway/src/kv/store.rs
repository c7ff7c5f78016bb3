//! The key-value database: one embedded `redb` file under `data_dir`, every tenant's keys in
//! their own namespace (the tenant's name and the bucket's prefix every key), with per-tenant
//! quotas on keys and bytes kept in the same transactions as the data. Every write is
//! committed durably before it returns. Blocking: call from a blocking thread.
//!
//! After an I/O error (a full disk, say) redb refuses every later call until it is reopened; the
//! store answers the failed call with [`KvError::DiskFull`] or [`KvError::Io`], closes the
//! database and opens it again at once (and at most once a second while that keeps failing), so
//! the other calls of every tenant are served again as soon as the disk is.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};

/// `tenant \0 bucket \0 key` → value.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// `tenant` → keys (u64 LE) and bytes (u64 LE) it holds.
const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");

/// The data table, open for writing.
type DataTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

/// `tenant`'s usage as `table` has it (none yet: zero).
fn usage_of(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    tenant: &str,
) -> Result<Usage, KvError> {
    Ok(table
        .get(tenant)
        .map_err(storage)?
        .map(|u| Usage::decode(u.value()))
        .unwrap_or_default())
}

/// Keys listed per page.
pub const PAGE: usize = 1000;

/// The per-tenant limits, gateway-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvSettings {
    /// Keys a tenant may hold. Default 100,000.
    pub max_keys: u64,
    /// Bytes (keys and values) a tenant may hold. Default 256 MiB.
    pub max_bytes: u64,
    /// The largest value. Default 1 MiB.
    pub max_value: u64,
}

impl Default for KvSettings {
    fn default() -> Self {
        KvSettings {
            max_keys: 100_000,
            max_bytes: 256 << 20,
            max_value: 1 << 20,
        }
    }
}

/// Why an operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KvError {
    /// A tenant limit would be crossed; nothing was written.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// A bucket name or key that cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// A counter that is not a decimal number, or would overflow.
    #[error("{0}")]
    NotANumber(String),
    /// The database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The disk is full; nothing was written, and the database is being reopened.
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// The disk failed (or failed before and the database is not yet reopened); nothing was
    /// written.
    #[error("storage I/O: {0}")]
    Io(String),
    /// The caller has no key-value namespace (a guest run outside any tenant).
    #[error("key-value access is not enabled")]
    Disabled,
}

/// Classifies a database error: the disk's own errors (after which redb must be reopened) apart
/// from the rest.
fn storage(e: impl Into<redb::Error>) -> KvError {
    match e.into() {
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            KvError::DiskFull(io.to_string())
        }
        redb::Error::Io(io) => KvError::Io(io.to_string()),
        redb::Error::PreviousIo => {
            KvError::Io("an earlier I/O error closed the database; it is being reopened".into())
        }
        other => KvError::Storage(other.to_string()),
    }
}

impl KvError {
    /// Whether the database must be reopened before it serves again.
    fn needs_reopen(&self) -> bool {
        matches!(self, KvError::DiskFull(_) | KvError::Io(_))
    }
}

/// The least time between two attempts to reopen the database while they keep failing.
const REOPEN_INTERVAL: Duration = Duration::from_secs(1);

/// A tenant's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Keys held.
    pub keys: u64,
    /// Bytes of keys and values held.
    pub bytes: u64,
}

impl Usage {
    fn decode(raw: &[u8]) -> Usage {
        let word = |i: usize| {
            raw.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        Usage {
            keys: word(0),
            bytes: word(8),
        }
    }

    /// Counts `key` stored with a value of `new` bytes, over an old one of `old` bytes if any.
    fn stored(&mut self, key: &str, old: Option<usize>, new: usize) {
        match old {
            Some(old) => self.bytes = self.bytes - old as u64 + new as u64,
            None => {
                self.keys += 1;
                self.bytes += (key.len() + new) as u64;
            }
        }
    }

    /// Counts `key` and its value of `old` bytes removed.
    fn removed(&mut self, key: &str, old: usize) {
        self.keys = self.keys.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub((key.len() + old) as u64);
    }

    fn encode(self) -> [u8; 16] {
        let mut raw = [0; 16];
        raw[..8].copy_from_slice(&self.keys.to_le_bytes());
        raw[8..].copy_from_slice(&self.bytes.to_le_bytes());
        raw
    }
}

/// The database.
pub struct KvStore {
    path: PathBuf,
    /// The open database; `None` while a reopen after an I/O error has not yet succeeded. Every
    /// call holds the read side for its one transaction; only a reopen takes the write side.
    db: RwLock<Option<Database>>,
    /// When the database was last reopened (or tried to be).
    last_reopen: Mutex<Option<Instant>>,
    settings: KvSettings,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Every tenant's data at one moment ([`KvStore::snapshot`]).
pub struct KvSnapshot(redb::ReadTransaction);

impl KvSnapshot {
    /// Writes the snapshot as a new database at `path` (which must not exist); returns how many
    /// keys it holds.
    pub fn write_to(&self, path: &Path) -> Result<u64, KvError> {
        let copy = open_database(path)?;
        let txn = copy.begin_write().map_err(storage)?;
        let mut keys = 0;
        {
            let mut data = txn.open_table(DATA).map_err(storage)?;
            for entry in self
                .0
                .open_table(DATA)
                .map_err(storage)?
                .iter()
                .map_err(storage)?
            {
                let (key, value) = entry.map_err(storage)?;
                data.insert(key.value(), value.value()).map_err(storage)?;
                keys += 1;
            }
            let mut usage = txn.open_table(USAGE).map_err(storage)?;
            for entry in self
                .0
                .open_table(USAGE)
                .map_err(storage)?
                .iter()
                .map_err(storage)?
            {
                let (tenant, used) = entry.map_err(storage)?;
                usage
                    .insert(tenant.value(), used.value())
                    .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(keys)
    }
}

/// The database key of `key` in `bucket` of `tenant`.
fn full_key(tenant: &str, bucket: &str, key: &str) -> Vec<u8> {
    let mut full = Vec::with_capacity(tenant.len() + bucket.len() + key.len() + 2);
    full.extend_from_slice(tenant.as_bytes());
    full.push(0);
    full.extend_from_slice(bucket.as_bytes());
    full.push(0);
    full.extend_from_slice(key.as_bytes());
    full
}

/// The prefix of every key of `bucket` of `tenant` (of every bucket when `None`).
fn prefix(tenant: &str, bucket: Option<&str>) -> Vec<u8> {
    let mut prefix = tenant.as_bytes().to_vec();
    prefix.push(0);
    if let Some(bucket) = bucket {
        prefix.extend_from_slice(bucket.as_bytes());
        prefix.push(0);
    }
    prefix
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    // Prefixes end in the 0 separator: raising it to 1 bounds them.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// Checks a bucket name: 1 to 128 bytes, no NUL.
pub fn check_bucket(bucket: &str) -> Result<(), KvError> {
    if bucket.is_empty() || bucket.len() > 128 || bucket.contains('\0') {
        return Err(KvError::Invalid(format!(
            "bucket `{}`: use 1 to 128 bytes without NUL",
            bucket.escape_debug()
        )));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > 1024 {
        return Err(KvError::Invalid("a key is 1 to 1024 bytes".into()));
    }
    Ok(())
}

/// Opens (or creates) the database at `path`, private to the gateway's user, with its tables.
fn open_database(path: &Path) -> Result<Database, KvError> {
    let db = Database::create(path).map_err(storage)?;
    // Tenants' data: readable by the gateway's user only.
    crate::store::make_private(path).map_err(storage)?;
    let txn = db.begin_write().map_err(storage)?;
    txn.open_table(DATA).map_err(storage)?;
    txn.open_table(USAGE).map_err(storage)?;
    txn.commit().map_err(storage)?;
    Ok(db)
}

impl KvStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path, settings: KvSettings) -> Result<KvStore, KvError> {
        let db = open_database(path)?;
        Ok(KvStore {
            path: path.to_owned(),
            db: RwLock::new(Some(db)),
            last_reopen: Mutex::new(None),
            settings,
        })
    }

    /// Runs `op` on the open database. An I/O error closes and reopens it (see the module doc);
    /// the call that met it gets the error.
    fn with_db<R>(&self, op: impl FnOnce(&Database) -> Result<R, KvError>) -> Result<R, KvError> {
        let result = {
            let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
            match db.as_ref() {
                Some(db) => op(db),
                None => Err(KvError::Io(
                    "the database is closed after an I/O error and not yet reopened".into(),
                )),
            }
        };
        if let Err(e) = &result
            && e.needs_reopen()
        {
            self.reopen();
        }
        result
    }

    /// Closes the database and opens it again, unless that was tried in the last
    /// [`REOPEN_INTERVAL`] (calls failing together reopen it once). A failure leaves it closed
    /// until the next attempt.
    fn reopen(&self) {
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        {
            let mut last = self
                .last_reopen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < REOPEN_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        // redb holds a lock on the file: the old handle goes before the new one opens.
        *db = None;
        match open_database(&self.path) {
            Ok(reopened) => {
                tracing::warn!(path = %self.path.display(), "key-value database reopened after an I/O error");
                *db = Some(reopened);
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "key-value database could not be reopened; calls fail until it is");
            }
        }
    }

    /// The limits.
    pub fn settings(&self) -> &KvSettings {
        &self.settings
    }

    /// The value of `key`, if set.
    pub fn get(&self, tenant: &str, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(DATA).map_err(storage)?;
            let value = table
                .get(full_key(tenant, bucket, key).as_slice())
                .map_err(storage)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    /// Sets each key to its value, all or none, within the tenant's quota.
    pub fn set_many(
        &self,
        tenant: &str,
        bucket: &str,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), KvError> {
        for (key, value) in entries {
            check_key(key)?;
            if value.len() as u64 > self.settings.max_value {
                return Err(KvError::Quota(format!(
                    "a value of {} bytes is over the limit of {}",
                    value.len(),
                    self.settings.max_value
                )));
            }
        }
        self.write(tenant, |data, usage| {
            for (key, value) in entries {
                let full = full_key(tenant, bucket, key);
                let old = data
                    .insert(full.as_slice(), value.as_slice())
                    .map_err(storage)?
                    .map(|v| v.value().len());
                usage.stored(key, old, value.len());
            }
            self.check_quota(tenant, *usage)
        })
    }

    /// Runs `change` on the data table and `tenant`'s usage in one write transaction, then
    /// stores the usage and commits: all of it, or (on an error) none.
    fn write<R>(
        &self,
        tenant: &str,
        change: impl FnOnce(&mut DataTable<'_>, &mut Usage) -> Result<R, KvError>,
    ) -> Result<R, KvError> {
        self.with_db(|db| {
            let txn = db.begin_write().map_err(storage)?;
            let result = {
                let mut data = txn.open_table(DATA).map_err(storage)?;
                let mut usage_table = txn.open_table(USAGE).map_err(storage)?;
                let mut usage = usage_of(&usage_table, tenant)?;
                let result = change(&mut data, &mut usage)?;
                usage_table
                    .insert(tenant, usage.encode().as_slice())
                    .map_err(storage)?;
                result
            };
            txn.commit().map_err(storage)?;
            Ok(result)
        })
    }

    fn check_quota(&self, tenant: &str, usage: Usage) -> Result<(), KvError> {
        if usage.keys > self.settings.max_keys {
            return Err(KvError::Quota(format!(
                "tenant `{tenant}` may hold {} keys",
                self.settings.max_keys
            )));
        }
        if usage.bytes > self.settings.max_bytes {
            return Err(KvError::Quota(format!(
                "tenant `{tenant}` may hold {} bytes",
                self.settings.max_bytes
            )));
        }
        Ok(())
    }

    /// Deletes the keys; absent ones are fine. Returns how many were there.
    pub fn delete_many(&self, tenant: &str, bucket: &str, keys: &[String]) -> Result<u64, KvError> {
        self.write(tenant, |data, usage| {
            let mut removed = 0;
            for key in keys {
                let full = full_key(tenant, bucket, key);
                if let Some(old) = data.remove(full.as_slice()).map_err(storage)? {
                    removed += 1;
                    usage.removed(key, old.value().len());
                }
            }
            Ok(removed)
        })
    }

    /// Adds `delta` to the decimal number at `key` (0 when absent), atomically: concurrent
    /// increments never lose one. Returns the new value.
    pub fn increment(
        &self,
        tenant: &str,
        bucket: &str,
        key: &str,
        delta: u64,
    ) -> Result<u64, KvError> {
        check_key(key)?;
        self.write(tenant, |data, usage| {
            let full = full_key(tenant, bucket, key);
            let current = data
                .get(full.as_slice())
                .map_err(storage)?
                .map(|v| v.value().to_vec());
            let number = match &current {
                None => 0,
                Some(raw) => std::str::from_utf8(raw)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        KvError::NotANumber(format!("the value of `{key}` is not a decimal number"))
                    })?,
            };
            let next = number
                .checked_add(delta)
                .ok_or_else(|| KvError::NotANumber(format!("incrementing `{key}` overflows")))?;
            let text = next.to_string();
            usage.stored(key, current.map(|old| old.len()), text.len());
            self.check_quota(tenant, *usage)?;
            data.insert(full.as_slice(), text.as_bytes())
                .map_err(storage)?;
            Ok(next)
        })
    }

    /// A page of `bucket`'s keys (every bucket's, as `bucket/key`, when `None`) from `cursor`,
    /// and the cursor of the next page.
    pub fn list_keys(
        &self,
        tenant: &str,
        bucket: Option<&str>,
        cursor: u64,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(DATA).map_err(storage)?;
            let start = prefix(tenant, bucket);
            let end = prefix_end(&start);
            let skip = usize::try_from(cursor).unwrap_or(usize::MAX);
            let mut keys = Vec::new();
            let mut more = false;
            for entry in table
                .range(start.as_slice()..end.as_slice())
                .map_err(storage)?
                .skip(skip)
            {
                if keys.len() == PAGE {
                    more = true;
                    break;
                }
                let (key, _) = entry.map_err(storage)?;
                let rest = &key.value()[start.len()..];
                let text = match bucket {
                    Some(_) => String::from_utf8_lossy(rest).into_owned(),
                    None => String::from_utf8_lossy(rest).replacen('\0', "/", 1),
                };
                keys.push(text);
            }
            let next = more.then(|| cursor + keys.len() as u64);
            Ok((keys, next))
        })
    }

    /// What `tenant` holds.
    pub fn usage(&self, tenant: &str) -> Result<Usage, KvError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            usage_of(&txn.open_table(USAGE).map_err(storage)?, tenant)
        })
    }

    /// Every namespace that holds data.
    pub fn namespaces(&self) -> Result<Vec<String>, KvError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(storage)?;
            let table = txn.open_table(USAGE).map_err(storage)?;
            let mut names = Vec::new();
            for entry in table.iter().map_err(storage)? {
                let (name, _) = entry.map_err(storage)?;
                names.push(name.value().to_owned());
            }
            Ok(names)
        })
    }

    /// A consistent view of every tenant's data as it is now, for a backup: later writes do
    /// not change it.
    pub fn snapshot(&self) -> Result<KvSnapshot, KvError> {
        self.with_db(|db| Ok(KvSnapshot(db.begin_read().map_err(storage)?)))
    }

    /// Deletes everything `tenant` holds (the tenant was deleted).
    pub fn delete_tenant(&self, tenant: &str) -> Result<(), KvError> {
        self.with_db(|db| {
            let txn = db.begin_write().map_err(storage)?;
            {
                let mut data = txn.open_table(DATA).map_err(storage)?;
                let start = prefix(tenant, None);
                let end = prefix_end(&start);
                let keys: Vec<Vec<u8>> = data
                    .range(start.as_slice()..end.as_slice())
                    .map_err(storage)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(storage)?;
                for key in keys {
                    data.remove(key.as_slice()).map_err(storage)?;
                }
                let mut usage = txn.open_table(USAGE).map_err(storage)?;
                usage.remove(tenant).map_err(storage)?;
            }
            txn.commit().map_err(storage)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(settings: KvSettings) -> (tempfile::TempDir, KvStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = KvStore::open(&dir.path().join("kv.redb"), settings).unwrap();
        (dir, store)
    }

    fn kv(key: &str, value: &str) -> Vec<(String, Vec<u8>)> {
        vec![(key.to_owned(), value.as_bytes().to_vec())]
    }

    #[test]
    fn tenants_and_buckets_are_separate_namespaces() {
        let (_dir, store) = store(KvSettings::default());
        store.set_many("a", "b", &kv("k", "from a")).unwrap();
        store.set_many("ab", "", &kv("k", "x")).ok();
        store.set_many("b", "b", &kv("k", "from b")).unwrap();
        assert_eq!(store.get("a", "b", "k").unwrap().unwrap(), b"from a");
        assert_eq!(store.get("b", "b", "k").unwrap().unwrap(), b"from b");
        assert_eq!(store.get("a", "other", "k").unwrap(), None);
        assert_eq!(store.list_keys("a", Some("b"), 0).unwrap().0, ["k"]);
        assert_eq!(store.list_keys("a", None, 0).unwrap().0, ["b/k"]);
        store.delete_tenant("a").unwrap();
        assert_eq!(store.get("a", "b", "k").unwrap(), None);
        assert_eq!(store.get("b", "b", "k").unwrap().unwrap(), b"from b");
    }

    #[test]
    fn quotas_refuse_whole_writes_and_usage_is_exact() {
        let (_dir, store) = store(KvSettings {
            max_keys: 2,
            max_bytes: 100,
            max_value: 50,
        });
        store.set_many("t", "b", &kv("one", "1")).unwrap();
        store.set_many("t", "b", &kv("two", "22")).unwrap();
        let e = store.set_many("t", "b", &kv("three", "3")).unwrap_err();
        assert!(matches!(e, KvError::Quota(_)), "{e}");
        assert_eq!(store.get("t", "b", "three").unwrap(), None);
        assert_eq!(
            store.usage("t").unwrap(),
            Usage {
                keys: 2,
                bytes: 3 + 1 + 3 + 2
            }
        );
        let big = vec![("one".to_owned(), vec![b'x'; 51])];
        assert!(matches!(
            store.set_many("t", "b", &big),
            Err(KvError::Quota(_))
        ));
        // Overwriting counts the difference; deleting frees.
        store.set_many("t", "b", &kv("one", "1111")).unwrap();
        assert_eq!(store.usage("t").unwrap().bytes, 3 + 4 + 3 + 2);
        assert_eq!(
            store
                .delete_many("t", "b", &["one".into(), "nope".into()])
                .unwrap(),
            1
        );
        assert_eq!(store.usage("t").unwrap(), Usage { keys: 1, bytes: 5 });
    }

    #[test]
    fn increments_are_decimal_and_checked() {
        let (_dir, store) = store(KvSettings::default());
        assert_eq!(store.increment("t", "b", "n", 5).unwrap(), 5);
        assert_eq!(store.increment("t", "b", "n", 2).unwrap(), 7);
        assert_eq!(store.get("t", "b", "n").unwrap().unwrap(), b"7");
        store.set_many("t", "b", &kv("s", "text")).unwrap();
        assert!(matches!(
            store.increment("t", "b", "s", 1),
            Err(KvError::NotANumber(_))
        ));
        store
            .set_many("t", "b", &kv("max", &u64::MAX.to_string()))
            .unwrap();
        assert!(matches!(
            store.increment("t", "b", "max", 1),
            Err(KvError::NotANumber(_))
        ));
    }

    #[test]
    fn listing_pages_with_a_cursor() {
        let (_dir, store) = store(KvSettings::default());
        let entries: Vec<(String, Vec<u8>)> = (0..PAGE + 5)
            .map(|i| (format!("k{i:05}"), vec![1]))
            .collect();
        store.set_many("t", "b", &entries).unwrap();
        let (first, cursor) = store.list_keys("t", Some("b"), 0).unwrap();
        assert_eq!(first.len(), PAGE);
        let (rest, end) = store.list_keys("t", Some("b"), cursor.unwrap()).unwrap();
        assert_eq!((rest.len(), end), (5, None));
    }
}
