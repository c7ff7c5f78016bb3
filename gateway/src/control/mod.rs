//! The control plane: every change to what the gateway serves goes through here, one at a time,
//! and lands whole or not at all.
//!
//! A change is validated, compiled off the request path (a blocking thread), written to the
//! durable [`store`](crate::store) (component bytes, then the state journal), and only then
//! published as a new registry [`Snapshot`] in one atomic swap. Requests in flight keep the
//! snapshot, and so the version, they started with.
//!
//! Tenants come from two places: the config file (read-only here: the file wins on restart)
//! and the admin API (kept in `state.json` and its journal). Both are served side by side.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::config::Config;
use crate::definition::{Field, Holdings, Invalid};
use crate::kv::KvStore;
use crate::metrics::{FunctionMetrics, Metrics};
use crate::outbound::OutboundClient;
use crate::registry::{Function, Registry, Tenant};
use crate::routes::Route;
use crate::store::ComponentStore;
use crate::store::state::{Change, State, StateStore, TenantRecord};

mod backup;
mod functions;
mod gc;
mod kv;
mod loader;
mod publish;
mod quarantine;
mod startup;
mod tenants;
mod view;

use self::loader::Loader;
use self::quarantine::Quarantine;

pub use self::quarantine::Quarantined;

pub use self::kv::KvPage;
pub use self::view::{Deployed, FunctionView, NewToken, OutboundSpec, TenantSpec, TokenView};

/// Why a change was refused. `admin` maps each to its status in one place.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Bad input: a name, a host, a route, a limit, a component (400).
    #[error("{message}")]
    Invalid {
        /// The machine-readable code.
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such tenant, function or version (404).
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The change would take the tenant past a quota of its limits (409 `quota_exceeded`).
    #[error("{0}")]
    OverQuota(String),
    /// Storing the change failed; nothing changed (500).
    #[error("{0}")]
    Storage(String),
    /// The disk is full; nothing changed (507).
    #[error("{0}")]
    StorageFull(String),
}

/// Config variables as the runtime takes them.
fn variables(config: &BTreeMap<String, String>) -> Arc<crate::runtime::ConfigVariables> {
    Arc::new(
        config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    )
}

impl ControlError {
    /// The status the admin API answers it with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            ControlError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ControlError::Forbidden(_) => StatusCode::FORBIDDEN,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) | ControlError::OverQuota(_) => StatusCode::CONFLICT,
            ControlError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ControlError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// The contract's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ControlError::Invalid { code, .. } => code,
            ControlError::Forbidden(_) => "forbidden",
            ControlError::NotFound(_) => "not_found",
            ControlError::Conflict(_) => "conflict",
            ControlError::OverQuota(_) => "quota_exceeded",
            ControlError::Storage(_) => "storage_error",
            ControlError::StorageFull(_) => "storage_full",
        }
    }

    /// The `result` label of `atoll_deployments_total` for a deploy refused this way.
    pub fn deploy_result(&self) -> &'static str {
        match self {
            ControlError::Invalid { .. } => "invalid",
            ControlError::Forbidden(_) => "forbidden",
            ControlError::NotFound(_) => "not_found",
            ControlError::Conflict(_) | ControlError::OverQuota(_) => "conflict",
            ControlError::Storage(_) | ControlError::StorageFull(_) => "error",
        }
    }
}

impl From<Invalid> for ControlError {
    /// A definition the shared checks refuse: 400 with its field's code, or 403 for a route
    /// on another tenant's host.
    fn from(e: Invalid) -> Self {
        match e.field {
            Field::ForeignHost => ControlError::Forbidden(e.message),
            Field::Quota => ControlError::OverQuota(e.message),
            field => invalid(field.code(), e.to_string()),
        }
    }
}

fn invalid(code: &'static str, message: impl Into<String>) -> ControlError {
    ControlError::Invalid {
        code,
        message: message.into(),
    }
}

/// Where a served tenant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The config file: read-only through the API.
    Config,
    /// The admin API: kept in the state store.
    Api,
}

/// A function being served.
#[derive(Debug, Clone)]
struct LiveFunction {
    function: Arc<Function>,
    routes: Vec<Route>,
    metrics: Arc<FunctionMetrics>,
}

/// An origin being served (from the config file).
#[derive(Debug, Clone)]
struct LiveOrigin {
    origin: Arc<crate::origins::Origin>,
    routes: Vec<Route>,
    metrics: Arc<FunctionMetrics>,
}

/// A tenant being served.
#[derive(Debug, Clone)]
struct LiveTenant {
    origin: Origin,
    tenant: Arc<Tenant>,
    functions: BTreeMap<String, LiveFunction>,
    origins: BTreeMap<String, LiveOrigin>,
}

impl LiveTenant {
    /// How many of its functions have a route.
    fn routed_functions(&self) -> usize {
        self.functions
            .values()
            .filter(|f| !f.routes.is_empty())
            .count()
    }
}

/// What writers hold the lock for.
struct Inner {
    state: State,
    store: StateStore,
    live: BTreeMap<String, LiveTenant>,
    /// Functions with at least one route, over all of `live`: `atoll_functions_loaded`.
    functions_served: usize,
    /// What start-up could not load from `state`.
    quarantine: Quarantine,
    /// When each tenant token (`tenant/id`) was last used, since this start.
    token_last_used: std::collections::HashMap<String, std::time::SystemTime>,
}

/// The control plane of one gateway.
pub struct ControlPlane {
    config: Config,
    loader: Loader,
    components: ComponentStore,
    registry: Arc<Registry>,
    metrics: Metrics,
    /// The client every tenant's outbound calls go through.
    outbound: Arc<OutboundClient>,
    /// Every tenant's key-value data.
    kv: Arc<KvStore>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Makes `change` durable, then applies it to the current state.
    fn save(&self, inner: &mut Inner, change: Change) -> Result<(), ControlError> {
        let Inner { state, store, .. } = inner;
        store
            .record(state, change)
            .map_err(|e| storage_error(format!("writing {}", store.journal_path().display()), &e))
    }

    /// Makes `record` API tenant `name`'s stored record and `next` what it serves: validated
    /// and built, then persisted, then published ([`publish`](self::publish)). `next` is `None`
    /// when the tenant is not served (it is quarantined): the record alone is saved.
    fn commit_tenant(
        &self,
        inner: &mut Inner,
        name: &str,
        record: TenantRecord,
        next: Option<LiveTenant>,
    ) -> Result<(), ControlError> {
        match next {
            Some(live) => {
                let prepared = self.prepare(inner, name, Some(live))?;
                self.commit(inner, put_change(name, record), prepared)
            }
            None => self.save(inner, put_change(name, record)),
        }
    }

    /// What `record` holds, to check against its tenant's quotas.
    fn holdings(record: &TenantRecord) -> Holdings {
        Holdings {
            functions: record.functions.len(),
            routes: record.functions.values().map(|f| f.routes.len()).sum(),
            config_bytes: record
                .functions
                .values()
                .map(|f| Holdings::config_bytes_of(&f.config))
                .sum(),
            tokens: record.token_list().count(),
        }
    }

    /// `name`'s stored record, to change and [`commit_tenant`](Self::commit_tenant) as a whole.
    fn record_of(inner: &Inner, name: &str) -> TenantRecord {
        inner.state.tenants.get(name).cloned().unwrap_or_default()
    }

    fn api_tenant<'i>(
        &self,
        inner: &'i Inner,
        name: &str,
    ) -> Result<&'i TenantRecord, ControlError> {
        match inner.live.get(name) {
            Some(t) if t.origin == Origin::Config => Err(ControlError::Conflict(format!(
                "tenant `{name}` is defined in the config file; change it there"
            ))),
            _ => inner
                .state
                .tenants
                .get(name)
                .ok_or_else(|| not_found_tenant(name)),
        }
    }

    /// What API tenant `name` serves now, to change into the next; a quarantined tenant must
    /// be fixed (`PUT` it) first.
    fn served_tenant(&self, inner: &Inner, name: &str) -> Result<LiveTenant, ControlError> {
        inner.live.get(name).cloned().ok_or_else(|| {
            ControlError::Conflict(format!(
                "tenant `{name}` is quarantined (see GET /v1/quarantine); fix it with PUT /v1/tenants/{name} or delete it"
            ))
        })
    }

    /// What start-up could not load from the stored state and has not been fixed since.
    pub async fn quarantined(&self) -> Vec<Quarantined> {
        self.inner.lock().await.quarantine.list()
    }

    /// The largest upload accepted.
    pub fn max_upload(&self) -> u64 {
        self.config.max_upload.0
    }
}

/// A failure to store `what`: 507 when the disk is full, 500 otherwise.
fn storage_error(what: String, e: &std::io::Error) -> ControlError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        ControlError::StorageFull(format!("{what}: the disk is full: {e}"))
    } else {
        ControlError::Storage(format!("{what}: {e}"))
    }
}

impl From<crate::auth::RotateError> for ControlError {
    fn from(e: crate::auth::RotateError) -> Self {
        match &e {
            crate::auth::RotateError::FromEnvironment => ControlError::Conflict(e.to_string()),
            crate::auth::RotateError::Write { path, source } => storage_error(
                format!("writing the new operator token to {}", path.display()),
                source,
            ),
        }
    }
}

/// The journal line that makes `record` tenant `name`'s.
fn put_change(name: &str, record: TenantRecord) -> Change {
    Change::PutTenant {
        name: name.to_owned(),
        record: Box::new(record),
    }
}

fn not_found_tenant(name: &str) -> ControlError {
    ControlError::NotFound(format!("no tenant `{name}`"))
}

fn not_found_function(tenant: &str, function: &str) -> ControlError {
    ControlError::NotFound(format!("tenant `{tenant}` has no function `{function}`"))
}
