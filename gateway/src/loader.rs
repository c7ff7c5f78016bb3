//! Turns configured functions into a servable [`Snapshot`]: reads each component, hashes it,
//! loads its precompiled artifact or compiles it (through [`ArtifactCache`]), links it, and
//! builds the route table.
//!
//! This is the start-up half of the deploy path; it runs before the proxy serves and never on
//! the request path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::registry::{Endpoint, Function, Snapshot, Tenant};
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::store::{ArtifactCache, ArtifactSource, content_hash};

/// Loads one component file into a [`Function`].
pub fn load_function(
    runtime: &Runtime,
    artifacts: &ArtifactCache,
    name: &str,
    wasm: &Path,
) -> anyhow::Result<(Function, ArtifactSource)> {
    let bytes =
        std::fs::read(wasm).with_context(|| format!("reading component {}", wasm.display()))?;
    let version = content_hash(&bytes);
    let (component, source) = artifacts.load_or_compile(runtime, &version, &bytes)?;
    let image = runtime.prepare(&component)?;
    Ok((
        Function {
            name: name.to_owned(),
            version,
            image,
        },
        source,
    ))
}

/// Builds the snapshot for every tenant and function in `config`.
pub fn snapshot_from_config(
    config: &Config,
    runtime: &Runtime,
    artifacts: &ArtifactCache,
    metrics: &Metrics,
) -> anyhow::Result<Snapshot> {
    let mut tenants = BTreeMap::new();
    let mut routes = RouteTable::builder();
    for (tenant_name, tenant_config) in &config.tenants {
        let tenant = Arc::new(Tenant::new(
            tenant_name.clone(),
            tenant_config.hosts.clone(),
            tenant_config.limits.clone(),
            config.response_body.0,
        ));
        for (function_name, function_config) in &tenant_config.functions {
            let started = Instant::now();
            let (function, source) =
                load_function(runtime, artifacts, function_name, &function_config.wasm)
                    .with_context(|| {
                        format!("loading function `{function_name}` of tenant `{tenant_name}`")
                    })?;
            let source_label = source.as_str();
            metrics.artifacts.with_label_values(&[source_label]).inc();
            tracing::info!(
                tenant = tenant_name.as_str(),
                function = function_name.as_str(),
                version = function.version.as_str(),
                artifact = source_label,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "function loaded"
            );
            let function = Arc::new(function);
            let function_metrics = Arc::new(metrics.for_function(tenant_name, function_name));
            for route in &function_config.routes {
                routes
                    .insert(
                        route.clone(),
                        Endpoint {
                            tenant: tenant.clone(),
                            function: function.clone(),
                            metrics: function_metrics.clone(),
                        },
                    )
                    .with_context(|| {
                        format!("function `{function_name}` of tenant `{tenant_name}`")
                    })?;
            }
        }
        tenants.insert(tenant_name.clone(), tenant);
    }
    let snapshot = Snapshot {
        tenants,
        routes: routes.build(),
    };
    metrics
        .functions_loaded
        .set(i64::try_from(snapshot.function_count()).unwrap_or(i64::MAX));
    Ok(snapshot)
}
