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
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::auth::Caller;
use crate::config::{Config, check_origin, is_valid_name};
use crate::kv::{KvStore, TenantKv};
use crate::metrics::{FunctionMetrics, Metrics};
use crate::outbound::{AllowList, OutboundClient, TenantOutbound};
use crate::registry::{Function, Registry, Tenant};
use crate::routes::{HostPattern, Route};
use crate::runtime::{LoadError, Runtime};
use crate::store::state::{Change, FunctionRecord, RollbackError, State, StateStore, TenantRecord};
use crate::store::{ArtifactCache, ComponentStore};

mod loader;
mod publish;
mod quarantine;
mod view;

use self::loader::Loader;
use self::quarantine::Quarantine;

pub use self::quarantine::Quarantined;

pub use self::view::{Deployed, FunctionView, OutboundSpec, TenantSpec};
use self::view::{describe, describe_functions};

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
    /// Storing the change failed; nothing changed (500).
    #[error("{0}")]
    Storage(String),
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
    /// Loads the config's tenants and the stored state (compiling only what the artifact cache
    /// lacks) and publishes the first snapshot. Blocking; call it before serving.
    pub fn start(
        config: Config,
        runtime: Arc<Runtime>,
        metrics: Metrics,
        registry: Arc<Registry>,
    ) -> anyhow::Result<ControlPlane> {
        let artifacts = ArtifactCache::new(&config.data_dir, runtime.engine());
        let components = ComponentStore::new(&config.data_dir);
        let removed = crate::store::remove_stray_temp_files(&config.data_dir)?;
        for name in removed {
            tracing::warn!(
                file = name.as_str(),
                "removed a temporary file left by a crash"
            );
        }
        let (store, state) = StateStore::open(&config.data_dir)?;
        let outbound =
            OutboundClient::new(config.outbound.settings, config.outbound.ca_file.as_deref())
                .context("outbound.ca_file")?;
        let kv = KvStore::open(&config.data_dir.join("kv.redb"), config.kv)
            .map_err(|e| anyhow::anyhow!("opening the key-value store: {e}"))?;
        let plane = ControlPlane {
            kv: Arc::new(kv),
            outbound: Arc::new(outbound),
            loader: Loader::new(runtime, artifacts, metrics.clone()),
            components,
            registry,
            metrics,
            inner: Mutex::new(Inner {
                state: State::default(),
                store,
                live: BTreeMap::new(),
                functions_served: 0,
                quarantine: Quarantine::default(),
            }),
            config,
        };
        let mut live = BTreeMap::new();
        for (name, tenant) in &plane.config.tenants {
            let allow = AllowList::parse(&tenant.outbound.allow)
                .map_err(|e| anyhow::anyhow!("tenants.{name}.outbound.allow: {e}"))?;
            let tenant_arc = Arc::new(Tenant::new(
                name.clone(),
                tenant.hosts.clone(),
                tenant.limits.clone(),
                plane.tenant_outbound(name, allow),
                plane.config.response_body.0,
                plane.config.cache,
                Some(plane.tenant_kv(name)),
            ));
            let mut functions = BTreeMap::new();
            for (function, f) in &tenant.functions {
                let bytes = std::fs::read(&f.wasm).map_err(|e| {
                    anyhow::anyhow!(
                        "reading component {} of tenants.{name}.functions.{function}: {e}",
                        f.wasm.display()
                    )
                })?;
                let (loaded, _) = plane.compile(function, &bytes).map_err(|e| {
                    anyhow::anyhow!("loading tenants.{name}.functions.{function}: {e}")
                })?;
                functions.insert(
                    function.clone(),
                    plane.live_function(name, loaded, f.routes.clone(), &f.config),
                );
            }
            let mut origins = BTreeMap::new();
            for (origin_name, o) in &tenant.origins {
                let origin = crate::origins::Origin::new(origin_name, o.spec.clone())
                    .map_err(|e| anyhow::anyhow!("tenants.{name}.origins.{origin_name}: {e}"))?;
                origins.insert(
                    origin_name.clone(),
                    LiveOrigin {
                        origin: Arc::new(origin),
                        routes: o.routes.clone(),
                        metrics: Arc::new(plane.metrics.for_function(name, origin_name)),
                    },
                );
            }
            live.insert(
                name.clone(),
                LiveTenant {
                    origin: Origin::Config,
                    tenant: tenant_arc,
                    functions,
                    origins,
                },
            );
        }
        {
            let mut inner = plane.inner.try_lock().expect("nobody else has it yet");
            // The config file's tenants were checked as a whole: a conflict there is the
            // operator's to fix, and `atoll check` names it.
            for (name, tenant) in live {
                let prepared = plane
                    .prepare(&inner, &name, Some(tenant))
                    .map_err(|e| anyhow::anyhow!("tenants.{name}: {e}"))?;
                plane.publish(&mut inner, prepared);
            }
            // What the admin API stored is loaded item by item: what cannot be served is
            // quarantined, and everything else is served.
            for (name, record) in &state.tenants {
                if inner.live.contains_key(name) {
                    tracing::warn!(
                        tenant = name.as_str(),
                        "tenant is defined in the config file and in state.json: the config file wins"
                    );
                    continue;
                }
                plane.load_stored_tenant(&mut inner, name, record);
            }
            inner.state = state;
            plane.count_quarantined(&inner);
        }
        Ok(plane)
    }

    /// Serves stored tenant `name` and each of its functions that can be loaded; quarantines
    /// the rest with their reasons. Blocking (it may compile).
    fn load_stored_tenant(&self, inner: &mut Inner, name: &str, record: &TenantRecord) {
        let tenant = match self.tenant_from_record(name, record) {
            Ok(tenant) => Arc::new(tenant),
            Err(e) => {
                let reason = e.to_string();
                inner
                    .quarantine
                    .add_tenant(name, &reason, record.functions.keys());
                return;
            }
        };
        let mut live = LiveTenant {
            origin: Origin::Api,
            tenant,
            functions: BTreeMap::new(),
            origins: BTreeMap::new(),
        };
        let prepared = self
            .prepare(inner, name, Some(live.clone()))
            .expect("a tenant without routes cannot conflict");
        self.publish(inner, prepared);
        for (function, f) in &record.functions {
            let loaded = self
                .load_stored_function(name, function, f)
                .and_then(|one| {
                    let mut next = live.clone();
                    next.functions.insert(function.clone(), one);
                    let prepared = self.prepare(inner, name, Some(next.clone()))?;
                    Ok((next, prepared))
                });
            match loaded {
                Ok((next, prepared)) => {
                    self.publish(inner, prepared);
                    live = next;
                }
                Err(e) => inner
                    .quarantine
                    .add_function(name, function, &e.to_string()),
            }
        }
    }

    /// Loads the active version of a stored function. Blocking.
    fn load_stored_function(
        &self,
        tenant: &str,
        function: &str,
        record: &FunctionRecord,
    ) -> Result<LiveFunction, ControlError> {
        let routes = record
            .routes
            .iter()
            .map(|r| Route::parse(r).map_err(|e| invalid("invalid_route", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = self
            .components
            .get(&record.active)
            .map_err(|e| ControlError::Storage(format!("component {}: {e}", record.active)))?;
        let (loaded, _) = self
            .compile(function, &bytes)
            .map_err(|e| invalid("invalid_component", e.to_string()))?;
        Ok(self.live_function(tenant, loaded, routes, &record.config))
    }

    fn tenant_from_record(
        &self,
        name: &str,
        record: &TenantRecord,
    ) -> Result<Tenant, ControlError> {
        let hosts = record
            .hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("invalid_host", e.to_string()))?;
        let limits = record.limits.over(&self.config.limits);
        self.config.pool.check(&limits).map_err(|(key, message)| {
            invalid("invalid_limit", format!("limits.{key}: {message}"))
        })?;
        let allow = AllowList::parse(&record.outbound_allow)
            .map_err(|e| invalid("invalid_outbound", format!("outbound.allow {e}")))?;
        Ok(Tenant::new(
            name.to_owned(),
            hosts,
            limits,
            self.tenant_outbound(name, allow),
            self.config.response_body.0,
            self.config.cache,
            Some(self.tenant_kv(name)),
        ))
    }

    fn tenant_kv(&self, name: &str) -> Arc<TenantKv> {
        Arc::new(TenantKv::new(self.kv.clone(), name))
    }

    /// The key-value data of tenant `name`.
    pub fn kv(&self, name: &str) -> TenantKv {
        TenantKv::new(self.kv.clone(), name)
    }

    fn tenant_outbound(&self, name: &str, allow: AllowList) -> Arc<TenantOutbound> {
        Arc::new(TenantOutbound::new(
            name,
            allow,
            self.outbound.clone(),
            self.metrics.outbound_for(name),
        ))
    }

    fn live_function(
        &self,
        tenant: &str,
        mut function: Function,
        routes: Vec<Route>,
        config: &BTreeMap<String, String>,
    ) -> LiveFunction {
        function.config = variables(config);
        LiveFunction {
            metrics: Arc::new(self.metrics.for_function(tenant, &function.name)),
            function: Arc::new(function),
            routes,
        }
    }

    /// Compiles (or loads from the artifact cache) and links `bytes`. Blocking.
    fn compile(&self, name: &str, bytes: &[u8]) -> Result<(Function, Duration), LoadError> {
        self.loader.load(name, bytes)
    }

    /// Makes `change` durable, then applies it to the current state.
    fn save(&self, inner: &mut Inner, change: Change) -> Result<(), ControlError> {
        let Inner { state, store, .. } = inner;
        store.record(state, change).map_err(|e| {
            ControlError::Storage(format!("writing {}: {e}", store.journal_path().display()))
        })
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

    /// `name`'s stored record, to change and [`commit_tenant`](Self::commit_tenant) as a whole.
    fn record_of(inner: &Inner, name: &str) -> TenantRecord {
        inner.state.tenants.get(name).cloned().unwrap_or_default()
    }

    /// Creates or updates an API tenant.
    pub async fn put_tenant(
        &self,
        name: &str,
        spec: TenantSpec,
    ) -> Result<TenantSpec, ControlError> {
        check_name("tenant", name)?;
        for origin in &spec.outbound.allow {
            check_origin(origin).map_err(|why| {
                invalid(
                    "invalid_outbound",
                    format!("outbound.allow `{origin}`: {why}"),
                )
            })?;
        }
        let mut inner = self.inner.lock().await;
        if inner
            .live
            .get(name)
            .is_some_and(|t| t.origin == Origin::Config)
        {
            return Err(ControlError::Conflict(format!(
                "tenant `{name}` is defined in the config file; change it there"
            )));
        }
        let mut record = Self::record_of(&inner, name);
        record.hosts = spec.hosts.clone();
        record.limits = spec.limits.clone();
        record.outbound_allow = spec.outbound.allow.clone();
        let tenant = self.tenant_from_record(name, &record)?;
        if let Some(live) = inner.live.get(name) {
            for (function, f) in &live.functions {
                for route in &f.routes {
                    if *route.host() != HostPattern::Any
                        && !tenant.hosts.iter().any(|h| h.covers(route.host()))
                    {
                        return Err(ControlError::Conflict(format!(
                            "function `{function}` routes `{route}`, which the new hosts do not cover; move or delete it first"
                        )));
                    }
                }
            }
        }
        let functions = inner
            .live
            .get(name)
            .map(|t| t.functions.clone())
            .unwrap_or_default();
        let prepared = self.prepare(
            &inner,
            name,
            Some(LiveTenant {
                origin: Origin::Api,
                tenant: Arc::new(tenant),
                functions,
                origins: BTreeMap::new(),
            }),
        )?;
        self.commit(&mut inner, put_change(name, record), prepared)?;
        Ok(spec)
    }

    /// Replaces the config variables of an API function; returns their names. The function
    /// keeps serving, with the new variables from the next request on.
    pub async fn set_config(
        &self,
        tenant: &str,
        function: &str,
        config: BTreeMap<String, String>,
    ) -> Result<Vec<String>, ControlError> {
        crate::config::check_config_variables(&config)
            .map_err(|e| invalid("invalid_config", format!("config: {e}")))?;
        let mut inner = self.inner.lock().await;
        let record = self.api_tenant(&inner, tenant)?;
        if !record.functions.contains_key(function) {
            return Err(not_found_function(tenant, function));
        }
        let mut record = Self::record_of(&inner, tenant);
        if let Some(f) = record.functions.get_mut(function) {
            f.config = config.clone();
        }
        let mut next = inner.live.get(tenant).cloned();
        if let Some(live) = &mut next
            && let Some(current) = live.functions.get(function).cloned()
        {
            let updated = Function {
                name: current.function.name.clone(),
                version: current.function.version.clone(),
                image: current.function.image.clone(),
                config: variables(&config),
            };
            live.functions.insert(
                function.to_owned(),
                LiveFunction {
                    function: Arc::new(updated),
                    ..current
                },
            );
        }
        self.commit_tenant(&mut inner, tenant, record, next)?;
        Ok(config.into_keys().collect())
    }

    /// The names (never the values) of an API function's config variables.
    pub async fn config_names(
        &self,
        tenant: &str,
        function: &str,
    ) -> Result<Vec<String>, ControlError> {
        let inner = self.inner.lock().await;
        let record = self.api_tenant(&inner, tenant)?;
        let f = record
            .functions
            .get(function)
            .ok_or_else(|| not_found_function(tenant, function))?;
        Ok(f.config.keys().cloned().collect())
    }

    /// Drops tenant `name`'s cached responses under `prefix` (all without one); how many went.
    pub fn purge_cache(&self, name: &str, prefix: Option<&str>) -> Result<usize, ControlError> {
        let snapshot = self.registry.snapshot();
        let tenant = snapshot
            .tenants
            .get(name)
            .ok_or_else(|| ControlError::NotFound(format!("no tenant `{name}`")))?;
        Ok(tenant.cache().map_or(0, |cache| cache.purge(prefix)))
    }

    /// Every tenant, as the API describes it.
    pub async fn tenants(&self) -> BTreeMap<String, TenantSpec> {
        let inner = self.inner.lock().await;
        let stored = inner.state.tenants.keys();
        let names: std::collections::BTreeSet<&String> = inner.live.keys().chain(stored).collect();
        names
            .into_iter()
            .filter_map(|name| describe(&inner, &self.config, name))
            .collect()
    }

    /// One tenant.
    pub async fn tenant(&self, name: &str) -> Result<TenantSpec, ControlError> {
        let inner = self.inner.lock().await;
        describe(&inner, &self.config, name)
            .map(|(_, spec)| spec)
            .ok_or_else(|| not_found_tenant(name))
    }

    /// Deletes an API tenant and its functions, and their metric series.
    pub async fn delete_tenant(&self, name: &str) -> Result<(), ControlError> {
        let mut inner = self.inner.lock().await;
        self.api_tenant(&inner, name)?;
        let functions: Vec<String> = inner
            .state
            .tenants
            .get(name)
            .map(|t| t.functions.keys().cloned().collect())
            .unwrap_or_default();
        let prepared = self.prepare(&inner, name, None)?;
        let change = Change::DeleteTenant {
            name: name.to_owned(),
        };
        self.commit(&mut inner, change, prepared)?;
        self.metrics
            .forget_tenant(name, functions.iter().map(String::as_str));
        // Its data goes with it.
        self.kv(name)
            .run(|store, tenant| store.delete_tenant(tenant))
            .await
            .map_err(|e| {
                ControlError::Storage(format!("deleting the tenant's key-value data: {e}"))
            })?;
        Ok(())
    }

    /// Whether a tenant of that name is served.
    pub async fn has_tenant(&self, name: &str) -> bool {
        self.inner.lock().await.live.contains_key(name)
    }

    /// Makes a token for `tenant`; only its hash is kept.
    pub async fn create_token(&self, tenant: &str) -> Result<String, ControlError> {
        let mut inner = self.inner.lock().await;
        self.api_tenant(&inner, tenant)?;
        let token = crate::auth::new_tenant_token(tenant);
        let mut record = Self::record_of(&inner, tenant);
        record.token_hashes.push(crate::auth::token_hash(&token));
        self.save(&mut inner, put_change(tenant, record))?;
        Ok(token)
    }

    /// Who `token` belongs to, if anyone.
    pub async fn identify(
        &self,
        token: &str,
        operator: &crate::auth::OperatorToken,
    ) -> Option<Caller> {
        let inner = self.inner.lock().await;
        crate::auth::identify(token, operator, |tenant| {
            inner
                .state
                .tenants
                .get(tenant)
                .map(|t| t.token_hashes.as_slice())
        })
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

    /// Deploys `bytes` as the new version of `function` of `tenant`, on `routes` (or, when
    /// none are given, the routes it already has).
    pub async fn deploy(
        &self,
        caller: &Caller,
        tenant: &str,
        function: &str,
        routes: Vec<String>,
        bytes: Bytes,
    ) -> Result<Deployed, ControlError> {
        check_name("function", function)?;
        let routes = routes
            .iter()
            .map(|r| Route::parse(r).map_err(|e| invalid("invalid_route", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if routes.iter().any(|r| *r.host() == HostPattern::Any) && *caller != Caller::Operator {
            return Err(ControlError::Forbidden(
                "host-less routes (`/PATH`) need the operator token; route one of your hosts instead".into(),
            ));
        }
        {
            let inner = self.inner.lock().await;
            self.api_tenant(&inner, tenant)?;
        }
        // Compile outside the lock, on a blocking thread: deploys never stall serving.
        let (loaded, compile) = self
            .loader
            .load_blocking(function, bytes.clone())
            .await
            .map_err(|e| invalid("invalid_component", e.to_string()))?;

        let mut inner = self.inner.lock().await;
        let stored = self.api_tenant(&inner, tenant)?;
        let stored_routes = stored
            .functions
            .get(function)
            .map(|f| f.routes.clone())
            .unwrap_or_default();
        let mut next = self.served_tenant(&inner, tenant)?;
        let routes = if !routes.is_empty() {
            routes
        } else if let Some(live) = next.functions.get(function) {
            live.routes.clone()
        } else {
            stored_routes
                .iter()
                .map(|r| Route::parse(r).map_err(|e| invalid("invalid_route", e.to_string())))
                .collect::<Result<_, _>>()?
        };
        for route in &routes {
            if *route.host() != HostPattern::Any
                && !next.tenant.hosts.iter().any(|h| h.covers(route.host()))
            {
                return Err(ControlError::Forbidden(format!(
                    "route `{route}`: host `{}` is not in tenant `{tenant}`'s hosts",
                    route.host()
                )));
            }
        }

        let route_texts: Vec<String> = routes.iter().map(Route::to_string).collect();
        let mut record = Self::record_of(&inner, tenant);
        let function_record = record
            .functions
            .entry(function.to_owned())
            .or_insert_with(|| FunctionRecord::new(loaded.version.clone(), vec![]));
        function_record.deploy(loaded.version.clone(), self.config.keep_versions);
        function_record.routes = route_texts.clone();
        let versions = function_record.versions.clone();
        let config = function_record.config.clone();
        let version = loaded.version.clone();
        next.functions.insert(
            function.to_owned(),
            self.live_function(tenant, loaded, routes, &config),
        );
        // Validated and built (a route taken twice, or by any other function or origin, is
        // refused here), then the bytes, then the journal line, then served.
        let prepared = self.prepare(&inner, tenant, Some(next))?;
        self.components
            .put(&bytes)
            .map_err(|e| ControlError::Storage(format!("storing the component: {e}")))?;
        self.commit(&mut inner, put_change(tenant, record), prepared)?;
        Ok(Deployed {
            version,
            versions,
            routes: route_texts,
            compile_ms: compile.as_secs_f64() * 1e3,
        })
    }

    /// A function of a tenant.
    pub async fn function(
        &self,
        tenant: &str,
        function: &str,
    ) -> Result<FunctionView, ControlError> {
        let inner = self.inner.lock().await;
        describe_functions(&inner, tenant)?
            .remove(function)
            .ok_or_else(|| not_found_function(tenant, function))
    }

    /// Every function of a tenant.
    pub async fn functions(
        &self,
        tenant: &str,
    ) -> Result<BTreeMap<String, FunctionView>, ControlError> {
        let inner = self.inner.lock().await;
        describe_functions(&inner, tenant)
    }

    /// Makes `to` (or the version before the active one) active again.
    pub async fn rollback(
        &self,
        tenant: &str,
        function: &str,
        to: Option<String>,
    ) -> Result<FunctionView, ControlError> {
        let target = {
            let inner = self.inner.lock().await;
            let record = self.api_tenant(&inner, tenant)?;
            let mut f = record
                .functions
                .get(function)
                .cloned()
                .ok_or_else(|| not_found_function(tenant, function))?;
            f.rollback(to.as_deref()).map_err(|e| match e {
                RollbackError::UnknownVersion(_) => ControlError::NotFound(e.to_string()),
                RollbackError::NoPrevious => ControlError::Conflict(e.to_string()),
            })?
        };
        let bytes = self
            .components
            .get(&target)
            .map_err(|e| ControlError::Storage(e.to_string()))?;
        let (loaded, _) = self
            .loader
            .load_blocking(function, bytes.into())
            .await
            .map_err(|e| ControlError::Storage(e.to_string()))?;

        let mut inner = self.inner.lock().await;
        let mut record = Self::record_of(&inner, tenant);
        let f = record
            .functions
            .get_mut(function)
            .ok_or_else(|| not_found_function(tenant, function))?;
        f.rollback(Some(&target))
            .map_err(|e| ControlError::Conflict(e.to_string()))?;
        let view = FunctionView {
            version: f.active.clone(),
            versions: f.versions.clone(),
            routes: f.routes.clone(),
            quarantined: None,
        };
        let routes = f
            .routes
            .iter()
            .map(|r| Route::parse(r).map_err(|e| invalid("invalid_route", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let config = f.config.clone();
        let mut next = self.served_tenant(&inner, tenant)?;
        // Also how a quarantined function is brought back: its stored routes and config.
        next.functions.insert(
            function.to_owned(),
            self.live_function(tenant, loaded, routes, &config),
        );
        self.commit_tenant(&mut inner, tenant, record, Some(next))?;
        Ok(view)
    }

    /// Deletes a function and its routes.
    pub async fn delete_function(&self, tenant: &str, function: &str) -> Result<(), ControlError> {
        let mut inner = self.inner.lock().await;
        let record = self.api_tenant(&inner, tenant)?;
        if !record.functions.contains_key(function) {
            return Err(not_found_function(tenant, function));
        }
        let mut record = Self::record_of(&inner, tenant);
        record.functions.remove(function);
        let mut next = inner.live.get(tenant).cloned();
        if let Some(live) = &mut next {
            live.functions.remove(function);
        }
        self.commit_tenant(&mut inner, tenant, record, next)?;
        inner.quarantine.remove_function(tenant, function);
        self.count_quarantined(&inner);
        self.metrics.forget_function(tenant, function);
        Ok(())
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

/// The journal line that makes `record` tenant `name`'s.
fn put_change(name: &str, record: TenantRecord) -> Change {
    Change::PutTenant {
        name: name.to_owned(),
        record,
    }
}

fn check_name(what: &str, name: &str) -> Result<(), ControlError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(invalid(
            "invalid_name",
            format!("{what} name `{name}` must match ^[a-z0-9][a-z0-9-]{{0,62}}$"),
        ))
    }
}

fn not_found_tenant(name: &str) -> ControlError {
    ControlError::NotFound(format!("no tenant `{name}`"))
}

fn not_found_function(tenant: &str, function: &str) -> ControlError {
    ControlError::NotFound(format!("tenant `{tenant}` has no function `{function}`"))
}
