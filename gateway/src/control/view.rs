//! What the admin API shows of tenants and functions, and how it reads them from the control
//! plane's state.

use std::collections::BTreeMap;

use super::{ControlError, Inner, Origin, not_found_tenant};
use crate::config::{Config, LimitsSpec};
use crate::routes::Route;

/// A tenant as the admin API describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// Hosts the tenant may route.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Its limits; missing keys inherit the gateway-wide ones.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// What its functions may fetch.
    #[serde(default)]
    pub outbound: OutboundSpec,
}

/// Outbound policy as the admin API describes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OutboundSpec {
    /// Allowed origins, `scheme://host[:port]`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A tenant token as the admin API lists it: never its secret.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct TokenView {
    /// Its id, for `DELETE /v1/tenants/{t}/tokens/{id}`.
    pub id: String,
    /// When it was made (seconds since the Unix epoch); `null` for tokens older than ids.
    pub created: Option<u64>,
    /// When it was last used since the gateway started (seconds since the Unix epoch).
    pub last_used: Option<u64>,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct NewToken {
    /// Its id, as the token list shows it.
    pub id: String,
    /// The secret, for `Authorization: Bearer`.
    pub token: String,
}

/// A function as the admin API describes it.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct FunctionView {
    /// The active version.
    pub version: String,
    /// The versions kept for rollback, oldest first.
    pub versions: Vec<String>,
    /// Its routes.
    pub routes: Vec<String>,
    /// Why it is not served, when start-up could not load it (see
    /// [`Quarantined`](super::Quarantined)); absent while it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<String>,
}

/// What a deploy did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Deployed {
    /// The new active version.
    pub version: String,
    /// The versions kept.
    pub versions: Vec<String>,
    /// Its routes.
    pub routes: Vec<String>,
    /// Milliseconds spent compiling (0 when the artifact was cached).
    pub compile_ms: f64,
}

pub(super) fn describe(inner: &Inner, config: &Config, name: &str) -> Option<(String, TenantSpec)> {
    let origin = match inner.live.get(name) {
        Some(live) => live.origin,
        // Stored but quarantined at start-up: still the API's to show, fix or delete.
        None if inner.state.tenants.contains_key(name) => Origin::Api,
        None => return None,
    };
    let spec = match origin {
        Origin::Config => {
            let t = config.tenants.get(name)?;
            TenantSpec {
                hosts: t.definition.hosts.iter().map(ToString::to_string).collect(),
                limits: LimitsSpec::from(&t.definition.limits),
                outbound: OutboundSpec {
                    allow: t.definition.outbound_allow.clone(),
                },
            }
        }
        Origin::Api => {
            let t = inner.state.tenants.get(name)?;
            TenantSpec {
                hosts: t.hosts.clone(),
                limits: t.limits.clone(),
                outbound: OutboundSpec {
                    allow: t.outbound_allow.clone(),
                },
            }
        }
    };
    Some((name.to_owned(), spec))
}

pub(super) fn describe_functions(
    inner: &Inner,
    tenant: &str,
) -> Result<BTreeMap<String, FunctionView>, ControlError> {
    let live = inner.live.get(tenant);
    let stored = inner.state.tenants.get(tenant);
    if live.is_none() && stored.is_none() {
        return Err(not_found_tenant(tenant));
    }
    let mut views = BTreeMap::new();
    for (name, f) in live.iter().flat_map(|t| &t.functions) {
        let versions = stored
            .and_then(|t| t.functions.get(name))
            .map(|r| r.versions.clone())
            .unwrap_or_else(|| vec![f.function.version.clone()]);
        views.insert(
            name.clone(),
            FunctionView {
                version: f.function.version.clone(),
                versions,
                routes: f.routes.iter().map(Route::to_string).collect(),
                quarantined: None,
            },
        );
    }
    // Stored but not served: quarantined at start-up.
    for (name, r) in stored.iter().flat_map(|t| &t.functions) {
        if views.contains_key(name) {
            continue;
        }
        views.insert(
            name.clone(),
            FunctionView {
                version: r.active.clone(),
                versions: r.versions.clone(),
                routes: r.routes.clone(),
                quarantined: Some(
                    inner
                        .quarantine
                        .reason(tenant, name)
                        .unwrap_or("not loaded")
                        .to_owned(),
                ),
            },
        );
    }
    Ok(views)
}
