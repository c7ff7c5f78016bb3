//! Start-up: the config file's tenants (a conflict there stops the gateway: `atoll check`
//! names it), then what the admin API stored, item by item: what cannot be loaded is
//! quarantined and everything else serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::definition::parse_route;
use crate::kv::KvStore;
use crate::metrics::Metrics;
use crate::outbound::OutboundClient;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::store::state::{FunctionRecord, State, StateStore, TenantRecord};
use crate::store::{ArtifactCache, ComponentStore};

use super::loader::Loader;
use super::quarantine::Quarantine;
use super::{
    ControlError, ControlPlane, Inner, LiveFunction, LiveOrigin, LiveTenant, Origin, invalid,
};

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
        let kv = KvStore::open(
            &config.data_dir.join(crate::store::backup::KV_FILE),
            config.kv,
        )
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
                token_last_used: Default::default(),
            }),
            config,
        };
        let mut live = BTreeMap::new();
        for (name, tenant) in &plane.config.tenants {
            let tenant_arc = Arc::new(
                plane
                    .build_tenant(name, &tenant.definition, name)
                    .map_err(|e| anyhow::anyhow!("tenants.{name}.{e}"))?,
            );
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
            // What earlier runs left: versions dropped before collection existed, other
            // engines' artifacts.
            plane.collect_garbage(&inner);
            plane.collect_kv_garbage(&inner);
        }
        Ok(plane)
    }

    /// Serves stored tenant `name` and each of its functions that can be loaded; quarantines
    /// the rest with their reasons. Blocking (it may compile).
    pub(super) fn load_stored_tenant(&self, inner: &mut Inner, name: &str, record: &TenantRecord) {
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
    pub(super) fn load_stored_function(
        &self,
        tenant: &str,
        function: &str,
        record: &FunctionRecord,
    ) -> Result<LiveFunction, ControlError> {
        let routes = record
            .routes
            .iter()
            .map(|r| parse_route(r))
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
}
