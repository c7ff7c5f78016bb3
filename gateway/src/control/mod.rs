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
use crate::registry::{Endpoint, Function, OriginEndpoint, Registry, Snapshot, Target, Tenant};
use crate::routes::{HostPattern, Route};
use crate::runtime::{LoadError, Runtime};
use crate::store::state::{Change, FunctionRecord, RollbackError, State, StateStore, TenantRecord};
use crate::store::{ArtifactCache, ComponentStore};

mod loader;
mod view;

use self::loader::Loader;

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
        for (name, record) in &state.tenants {
            if live.contains_key(name) {
                tracing::warn!(
                    tenant = name.as_str(),
                    "tenant is defined in the config file and in state.json: the config file wins"
                );
                continue;
            }
            let tenant = plane.tenant_from_record(name, record)?;
            let mut functions = BTreeMap::new();
            for (function, f) in &record.functions {
                let bytes = plane.components.get(&f.active)?;
                let (loaded, _) = plane
                    .compile(function, &bytes)
                    .map_err(|e| anyhow::anyhow!("loading {name}/{function}: {e}"))?;
                let routes = f
                    .routes
                    .iter()
                    .map(|r| Route::parse(r))
                    .collect::<Result<Vec<_>, _>>()?;
                functions.insert(
                    function.clone(),
                    plane.live_function(name, loaded, routes, &f.config),
                );
            }
            live.insert(
                name.clone(),
                LiveTenant {
                    origin: Origin::Api,
                    tenant: Arc::new(tenant),
                    functions,
                    origins: BTreeMap::new(),
                },
            );
        }
        {
            let mut inner = plane.inner.try_lock().expect("nobody else has it yet");
            inner.state = state;
            for (name, tenant) in live {
                plane.serve(&mut inner, &name, Some(tenant))?;
            }
        }
        Ok(plane)
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

    /// Makes `next` what tenant `name` serves (`None`: nothing), in `inner.live` and in a new
    /// published snapshot. The snapshot is the current one with only this tenant's routes
    /// changed (its maps are persistent), so a change costs the same with 10 tenants or 10,000.
    /// A route conflict leaves everything as it was.
    fn serve(
        &self,
        inner: &mut Inner,
        name: &str,
        next: Option<LiveTenant>,
    ) -> Result<(), ControlError> {
        let mut snapshot = Snapshot::clone(&self.registry.snapshot());
        let previous = inner.live.get(name);
        for f in previous.iter().flat_map(|t| t.functions.values()) {
            for route in &f.routes {
                snapshot.routes.remove(route);
            }
        }
        for o in previous.iter().flat_map(|t| t.origins.values()) {
            for route in &o.routes {
                snapshot.routes.remove(route);
            }
        }
        snapshot.tenants.remove(name);
        if let Some(live) = &next {
            snapshot
                .tenants
                .insert(name.to_owned(), live.tenant.clone());
            for f in live.functions.values() {
                for route in &f.routes {
                    let endpoint = Endpoint {
                        tenant: live.tenant.clone(),
                        function: f.function.clone(),
                        route: route.to_string().into(),
                        metrics: f.metrics.clone(),
                    };
                    snapshot
                        .routes
                        .insert(route.clone(), Target::Function(endpoint))
                        .map_err(|e| ControlError::Conflict(e.to_string()))?;
                }
            }
            for o in live.origins.values() {
                for route in &o.routes {
                    let endpoint = OriginEndpoint {
                        tenant: live.tenant.clone(),
                        origin: o.origin.clone(),
                        route: route.to_string().into(),
                        metrics: o.metrics.clone(),
                    };
                    snapshot
                        .routes
                        .insert(route.clone(), Target::Origin(endpoint))
                        .map_err(|e| ControlError::Conflict(e.to_string()))?;
                }
            }
        }
        inner.functions_served -= previous.map_or(0, LiveTenant::routed_functions);
        inner.functions_served += next.as_ref().map_or(0, LiveTenant::routed_functions);
        match next {
            Some(live) => inner.live.insert(name.to_owned(), live),
            None => inner.live.remove(name),
        };
        self.metrics
            .functions_loaded
            .set(i64::try_from(inner.functions_served).unwrap_or(i64::MAX));
        self.registry.publish(snapshot);
        Ok(())
    }

    /// Makes `change` durable, then applies it to the current state.
    fn save(&self, inner: &mut Inner, change: Change) -> Result<(), ControlError> {
        let Inner { state, store, .. } = inner;
        store.record(state, change).map_err(|e| {
            ControlError::Storage(format!("writing {}: {e}", store.journal_path().display()))
        })
    }

    /// Makes `record` tenant `name`'s stored record, durably.
    fn save_record(
        &self,
        inner: &mut Inner,
        name: &str,
        record: TenantRecord,
    ) -> Result<(), ControlError> {
        self.save(
            inner,
            Change::PutTenant {
                name: name.to_owned(),
                record,
            },
        )
    }

    /// `name`'s stored record, to change and [`save_record`](Self::save_record) as a whole.
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
        self.save_record(&mut inner, name, record)?;
        let functions = inner
            .live
            .get(name)
            .map(|t| t.functions.clone())
            .unwrap_or_default();
        self.serve(
            &mut inner,
            name,
            Some(LiveTenant {
                origin: Origin::Api,
                tenant: Arc::new(tenant),
                functions,
                origins: BTreeMap::new(),
            }),
        )?;
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
        self.save_record(&mut inner, tenant, record)?;
        if let Some(mut live) = inner.live.get(tenant).cloned()
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
            self.serve(&mut inner, tenant, Some(live))?;
        }
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
        inner
            .live
            .keys()
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
        self.save(
            &mut inner,
            Change::DeleteTenant {
                name: name.to_owned(),
            },
        )?;
        if let Some(live) = inner.live.get(name).cloned() {
            self.serve(&mut inner, name, None)?;
            self.metrics
                .forget_tenant(name, live.functions.keys().map(String::as_str));
        }
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
        self.save_record(&mut inner, tenant, record)?;
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
        self.api_tenant(&inner, tenant)?;
        let live_tenant = inner.live.get(tenant).cloned();
        let routes = if routes.is_empty() {
            live_tenant
                .as_ref()
                .and_then(|t| t.functions.get(function))
                .map(|f| f.routes.clone())
                .unwrap_or_default()
        } else {
            routes
        };
        let hosts = live_tenant
            .as_ref()
            .map(|t| t.tenant.hosts.clone())
            .unwrap_or_default();
        for route in &routes {
            if *route.host() != HostPattern::Any && !hosts.iter().any(|h| h.covers(route.host())) {
                return Err(ControlError::Forbidden(format!(
                    "route `{route}`: host `{}` is not in tenant `{tenant}`'s hosts",
                    route.host()
                )));
            }
        }
        for (other_tenant, live) in &inner.live {
            for (other_function, f) in &live.functions {
                if other_tenant == tenant && other_function == function {
                    continue;
                }
                if let Some(taken) = f.routes.iter().find(|r| routes.contains(r)) {
                    return Err(ControlError::Conflict(format!(
                        "route `{taken}` is already taken"
                    )));
                }
            }
        }

        self.components
            .put(&bytes)
            .map_err(|e| ControlError::Storage(format!("storing the component: {e}")))?;
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
        self.save_record(&mut inner, tenant, record)?;

        let version = loaded.version.clone();
        let live_function = self.live_function(tenant, loaded, routes, &config);
        if let Some(mut live) = inner.live.get(tenant).cloned() {
            live.functions.insert(function.to_owned(), live_function);
            self.serve(&mut inner, tenant, Some(live))?;
        }
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
        let (mut loaded, _) = self
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
        };
        self.save_record(&mut inner, tenant, record)?;
        let mut live = inner
            .live
            .get(tenant)
            .cloned()
            .ok_or_else(|| not_found_tenant(tenant))?;
        if let Some(current) = live.functions.get(function).cloned() {
            loaded.config = current.function.config.clone();
            live.functions.insert(
                function.to_owned(),
                LiveFunction {
                    function: Arc::new(loaded),
                    ..current
                },
            );
            self.serve(&mut inner, tenant, Some(live))?;
        }
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
        self.save_record(&mut inner, tenant, record)?;
        if let Some(mut live) = inner.live.get(tenant).cloned() {
            live.functions.remove(function);
            self.serve(&mut inner, tenant, Some(live))?;
        }
        self.metrics.forget_function(tenant, function);
        Ok(())
    }

    /// The largest upload accepted.
    pub fn max_upload(&self) -> u64 {
        self.config.max_upload.0
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
