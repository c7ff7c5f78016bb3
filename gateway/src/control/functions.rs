//! Functions through the admin API: deploys, versions and rollbacks, config variables, and
//! deletion.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::auth::Caller;
use crate::definition::{check_config_variables, check_function_name, check_route, parse_route};
use crate::registry::Function;
use crate::routes::{HostPattern, Route};
use crate::runtime::LoadError;
use crate::store::state::{FunctionRecord, RollbackError};

use super::view::describe_functions;
use super::{
    ControlError, ControlPlane, Deployed, FunctionView, LiveFunction, invalid, not_found_function,
    put_change, storage_error, variables,
};

impl ControlPlane {
    pub(super) fn live_function(
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
    pub(super) fn compile(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Function, Duration), LoadError> {
        self.loader.load(name, bytes)
    }

    /// Replaces the config variables of an API function; returns their names. The function
    /// keeps serving, with the new variables from the next request on.
    pub async fn set_config(
        &self,
        tenant: &str,
        function: &str,
        config: BTreeMap<String, String>,
    ) -> Result<Vec<String>, ControlError> {
        check_config_variables(&config)?;
        let mut inner = self.inner.lock().await;
        let record = self.api_tenant(&inner, tenant)?;
        if !record.functions.contains_key(function) {
            return Err(not_found_function(tenant, function));
        }
        let mut record = Self::record_of(&inner, tenant);
        if let Some(f) = record.functions.get_mut(function) {
            f.config = config.clone();
        }
        Self::holdings(&record).check(&record.limits.over(&self.config.limits))?;
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
        check_function_name(function)?;
        let routes = routes
            .iter()
            .map(|r| parse_route(r))
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
                .map(|r| parse_route(r))
                .collect::<Result<_, _>>()?
        };
        for route in &routes {
            check_route(tenant, &next.tenant.hosts, route)?;
        }

        let route_texts: Vec<String> = routes.iter().map(Route::to_string).collect();
        let mut record = Self::record_of(&inner, tenant);
        let function_record = record
            .functions
            .entry(function.to_owned())
            .or_insert_with(|| FunctionRecord::new(loaded.version.clone(), vec![]));
        let dropped = function_record.deploy(loaded.version.clone(), self.config.keep_versions);
        function_record.routes = route_texts.clone();
        let versions = function_record.versions.clone();
        let config = function_record.config.clone();
        let version = loaded.version.clone();
        Self::holdings(&record).check(&next.tenant.limits)?;
        next.functions.insert(
            function.to_owned(),
            self.live_function(tenant, loaded, routes, &config),
        );
        // Validated and built (a route taken twice, or by any other function or origin, is
        // refused here), then the bytes, then the journal line, then served.
        let prepared = self.prepare(&inner, tenant, Some(next))?;
        self.components
            .put(&bytes)
            .map_err(|e| storage_error("storing the component".to_owned(), &e))?;
        self.commit(&mut inner, put_change(tenant, record), prepared)?;
        // Versions past `keep_versions` are gone from the record: their files go too.
        if !dropped.is_empty() {
            self.collect_garbage(&inner);
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
            .map(|r| parse_route(r))
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
        self.collect_garbage(&inner);
        inner.quarantine.remove_function(tenant, function);
        self.count_quarantined(&inner);
        self.metrics.forget_function(tenant, function);
        Ok(())
    }
}
