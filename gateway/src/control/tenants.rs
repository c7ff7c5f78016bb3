//! Tenants through the admin API: their definitions (checked as the config file's are),
//! tokens, cache purges and key-value data.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::auth::Caller;
use crate::definition::{Field, Invalid, TenantDefinition, check_route};
use crate::kv::TenantKv;
use crate::outbound::{AllowList, TenantOutbound};
use crate::registry::Tenant;
use crate::store::state::{Change, TenantRecord, TokenRecord};

use super::view::describe;
use super::{
    ControlError, ControlPlane, LiveTenant, NewToken, Origin, TenantSpec, TokenView,
    not_found_tenant, put_change,
};

impl ControlPlane {
    /// Checks stored tenant `name`'s record as the config file's tenants are checked.
    pub(super) fn tenant_from_record(
        &self,
        name: &str,
        record: &TenantRecord,
    ) -> Result<Tenant, Invalid> {
        let definition = TenantDefinition::check(
            name,
            &record.hosts,
            &record.limits,
            &record.outbound_allow,
            (&self.config.limits, &self.config.pool),
        )?;
        self.build_tenant(name, &definition, &record.kv_namespace(name))
    }

    /// The tenant the registry serves for `definition`, from the config file or the API alike.
    /// Its key-value data is `kv_namespace`'s.
    pub(super) fn build_tenant(
        &self,
        name: &str,
        definition: &TenantDefinition,
        kv_namespace: &str,
    ) -> Result<Tenant, Invalid> {
        let allow = AllowList::parse(&definition.outbound_allow).map_err(|why| Invalid {
            field: Field::Outbound,
            key: "outbound.allow".to_owned(),
            message: why,
        })?;
        Ok(Tenant::new(
            name.to_owned(),
            definition.hosts.clone(),
            definition.limits.clone(),
            self.tenant_outbound(name, allow),
            self.config.response_body.0,
            self.config.cache,
            Some(self.tenant_kv(kv_namespace)),
        ))
    }

    /// The key-value data of `namespace` ([`TenantRecord::kv_namespace`]).
    pub(super) fn tenant_kv(&self, namespace: &str) -> Arc<TenantKv> {
        Arc::new(TenantKv::new(self.kv.clone(), namespace))
    }

    pub(super) fn tenant_outbound(&self, name: &str, allow: AllowList) -> Arc<TenantOutbound> {
        Arc::new(TenantOutbound::new(
            name,
            allow,
            self.outbound.clone(),
            self.metrics.outbound_for(name),
        ))
    }

    /// Creates or updates an API tenant.
    pub async fn put_tenant(
        &self,
        name: &str,
        spec: TenantSpec,
    ) -> Result<TenantSpec, ControlError> {
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
        let mut record = match inner.state.tenants.get(name) {
            Some(record) => record.clone(),
            None => TenantRecord::created(),
        };
        record.hosts = spec.hosts.clone();
        record.limits = spec.limits.clone();
        record.outbound_allow = spec.outbound.allow.clone();
        let tenant = self.tenant_from_record(name, &record)?;
        if let Some(live) = inner.live.get(name) {
            for (function, f) in &live.functions {
                for route in &f.routes {
                    if check_route(name, &tenant.hosts, route).is_err() {
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
        let record = inner.state.tenants.get(name).cloned().unwrap_or_default();
        let functions: Vec<String> = record.functions.keys().cloned().collect();
        let prepared = self.prepare(&inner, name, None)?;
        let change = Change::DeleteTenant {
            name: name.to_owned(),
        };
        self.commit(&mut inner, change, prepared)?;
        self.collect_garbage(&inner);
        self.metrics
            .forget_tenant(name, functions.iter().map(String::as_str));
        // Its data goes with it. A crash before this line leaves the data of a generation no
        // tenant has; start-up deletes it (`collect_kv_garbage`).
        self.tenant_kv(&record.kv_namespace(name))
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

    /// Makes a token for `tenant` and returns it with its id; only its hash is kept.
    pub async fn create_token(&self, tenant: &str) -> Result<NewToken, ControlError> {
        let mut inner = self.inner.lock().await;
        self.api_tenant(&inner, tenant)?;
        let token = crate::auth::new_tenant_token(tenant);
        let mut record = Self::record_of(&inner, tenant);
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = hex::encode(rand::random::<[u8; 8]>());
        record.tokens.push(TokenRecord {
            id: id.clone(),
            hash: crate::auth::token_hash(&token),
            created,
        });
        Self::holdings(&record).check(&record.limits.over(&self.config.limits))?;
        self.save(&mut inner, put_change(tenant, record))?;
        Ok(NewToken { id, token })
    }

    /// Who `token` belongs to, if anyone.
    pub async fn identify(
        &self,
        token: &str,
        operator: &crate::auth::OperatorToken,
    ) -> Option<Caller> {
        if operator.matches(token) {
            return Some(Caller::Operator);
        }
        let tenant = crate::auth::token_tenant(token)?;
        let hash = crate::auth::token_hash(token);
        let mut inner = self.inner.lock().await;
        // A config tenant has no tokens: the record of an API tenant it shadows (same name,
        // ignored since the config file wins) must not open it.
        if inner
            .live
            .get(tenant)
            .is_some_and(|t| t.origin == Origin::Config)
        {
            return None;
        }
        let id = inner.state.tenants.get(tenant)?.token_id_of(&hash)?;
        inner
            .token_last_used
            .insert(format!("{tenant}/{id}"), std::time::SystemTime::now());
        Some(Caller::Tenant(tenant.to_owned()))
    }

    /// Tenant `tenant`'s tokens: ids, when made and when last used (since this start); never
    /// the secrets.
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenView>, ControlError> {
        let inner = self.inner.lock().await;
        let record = self.api_tenant(&inner, tenant)?;
        let unix = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        Ok(record
            .token_list()
            .map(|(id, _, created)| TokenView {
                last_used: inner
                    .token_last_used
                    .get(&format!("{tenant}/{id}"))
                    .copied()
                    .map(unix),
                id,
                created,
            })
            .collect())
    }

    /// Revokes token `id` of `tenant`: the next request with it gets 401.
    pub async fn revoke_token(&self, tenant: &str, id: &str) -> Result<(), ControlError> {
        let mut inner = self.inner.lock().await;
        self.api_tenant(&inner, tenant)?;
        let mut record = Self::record_of(&inner, tenant);
        if !record.revoke_token(id) {
            return Err(ControlError::NotFound(format!(
                "tenant `{tenant}` has no token `{id}`"
            )));
        }
        self.save(&mut inner, put_change(tenant, record))?;
        inner.token_last_used.remove(&format!("{tenant}/{id}"));
        Ok(())
    }
}
