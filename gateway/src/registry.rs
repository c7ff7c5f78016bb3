//! The live state: tenants, their functions and the route table, published as one immutable
//! [`Snapshot`] behind an atomic pointer.
//!
//! Readers (every request) call [`Registry::snapshot`] and never lock; writers build a whole new
//! snapshot and [`Registry::publish`] it in one swap, so a request sees either the old state or
//! the new one, and requests in flight finish on the version they started with.

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::admission::TenantAdmission;
use crate::cache::{CacheSettings, TenantCache};
use crate::capabilities::Grants;
use crate::capabilities::config::ConfigVariables;
use crate::config::Limits;
use crate::kv::TenantKv;
use crate::metrics::FunctionMetrics;
use crate::origins::Origin;
use crate::outbound::TenantOutbound;
use crate::routes::{HostPattern, RouteTable};
use crate::runtime::{FunctionImage, InvokeLimits};

/// A tenant as the gateway serves it.
#[derive(Debug)]
pub struct Tenant {
    /// The tenant's name.
    pub name: String,
    /// The hosts the tenant may route.
    pub hosts: Vec<HostPattern>,
    /// The tenant's limits.
    pub limits: Limits,
    /// The per-invocation part of `limits`, ready for the runtime.
    pub invoke_limits: InvokeLimits,
    /// Its key-value namespace, granted to its functions.
    pub kv: Option<Arc<TenantKv>>,
    /// The tenant's rate and concurrency state.
    pub admission: TenantAdmission,
    /// What its functions may call.
    pub outbound: Arc<TenantOutbound>,
    cache_settings: CacheSettings,
    /// Its response cache, made with the first response worth keeping.
    cache: OnceLock<TenantCache>,
}

impl Tenant {
    /// A tenant named `name` with these hosts, limits and outbound policy; its functions'
    /// responses are capped at `response_body` bytes (the gateway-wide cap).
    pub fn new(
        name: String,
        hosts: Vec<HostPattern>,
        limits: Limits,
        outbound: Arc<TenantOutbound>,
        response_body: u64,
        cache_settings: CacheSettings,
        kv: Option<Arc<TenantKv>>,
    ) -> Tenant {
        let invoke_limits = InvokeLimits {
            memory: limits.memory.0,
            cpu_time: limits.cpu_time,
            response_body,
        };
        Tenant {
            name,
            hosts,
            admission: TenantAdmission::new(&limits),
            limits,
            invoke_limits,
            kv,
            outbound,
            cache_settings,
            cache: OnceLock::new(),
        }
    }

    /// What `function`'s guests may use: this tenant's outbound policy and key-value
    /// namespace, and the function's config variables.
    pub fn grants(&self, function: &Function) -> Arc<Grants> {
        Arc::new(Grants {
            outbound: Some(self.outbound.clone()),
            kv: self.kv.clone(),
            config: function.config.clone(),
        })
    }

    /// Its response cache, if anything was ever stored in it.
    pub fn cache(&self) -> Option<&TenantCache> {
        self.cache.get()
    }

    /// Its response cache, made now if need be; `None` when caching is off.
    pub fn cache_to_fill(&self) -> Option<&TenantCache> {
        if self.cache_settings.tenant_size == 0 {
            return None;
        }
        Some(
            self.cache
                .get_or_init(|| TenantCache::new(self.cache_settings)),
        )
    }
}

/// One deployed version of a function, ready to instantiate.
pub struct Function {
    /// The function's name, unique within its tenant.
    pub name: String,
    /// The sha256 of the component bytes.
    pub version: String,
    /// The compiled, pre-linked component; shared by every function serving the same bytes.
    pub image: Arc<FunctionImage>,
    /// Its config variables (`wasi:config/store`). Values may be secrets: never logged.
    pub config: Arc<ConfigVariables>,
}

impl std::fmt::Debug for Function {
    /// Name and version only: config values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a route leads to: a tenant's function.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The tenant that owns the route.
    pub tenant: Arc<Tenant>,
    /// The function the route serves.
    pub function: Arc<Function>,
    /// The route as deployed (`HOST/PATH` or `/PATH`), for the access log.
    pub route: Arc<str>,
    /// What its guests may use ([`Tenant::grants`]).
    pub grants: Arc<Grants>,
    /// The function's metric series.
    pub metrics: Arc<FunctionMetrics>,
}

/// A route of a tenant's origin, proxied by Pingora.
#[derive(Debug, Clone)]
pub struct OriginEndpoint {
    /// The tenant that owns the route.
    pub tenant: Arc<Tenant>,
    /// The origin the route leads to.
    pub origin: Arc<Origin>,
    /// The route as configured, for the access log.
    pub route: Arc<str>,
    /// The request series, under the origin's name as the `function` label.
    pub metrics: Arc<FunctionMetrics>,
}

/// What a route leads to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A function, run for the request.
    Function(Endpoint),
    /// An origin, proxied to.
    Origin(OriginEndpoint),
}

impl Target {
    /// The tenant the route belongs to.
    pub fn tenant(&self) -> &Arc<Tenant> {
        match self {
            Target::Function(endpoint) => &endpoint.tenant,
            Target::Origin(endpoint) => &endpoint.tenant,
        }
    }
}

/// An immutable view of everything the gateway serves. Cheap to clone: its maps are
/// persistent, so the next snapshot shares all that did not change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Tenants by name.
    pub tenants: imbl::HashMap<String, Arc<Tenant>>,
    /// Every route of every function and origin.
    pub routes: RouteTable<Target>,
}

impl Snapshot {
    /// A snapshot with no tenants and no routes.
    pub fn empty() -> Snapshot {
        Snapshot {
            tenants: imbl::HashMap::new(),
            routes: RouteTable::new(),
        }
    }

    /// Finds the endpoint for a request's host (from the URI authority or `Host` header, port and
    /// all) and path.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Target> {
        self.routes.lookup(host, path)
    }
}

/// The holder of the current [`Snapshot`].
#[derive(Debug)]
pub struct Registry {
    current: ArcSwap<Snapshot>,
}

impl Registry {
    /// A registry serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Registry {
        Registry {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current snapshot. Lock-free; hold it for the length of one request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the current snapshot atomically.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
