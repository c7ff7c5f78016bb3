//! What start-up could not load from the stored state, and why.
//!
//! A stored tenant or function that cannot be served (its component is missing or corrupt, its
//! routes clash with another tenant's, its limits no longer fit a changed pool) must never stop
//! the gateway from starting: everything else is served, and the item waits here, logged with
//! its reason, counted in `atoll_quarantined_functions`, reported by `/readyz` and listed by
//! the admin API, until an operator or the tenant fixes it (deploy, roll back, `PUT` the tenant)
//! or deletes it. An entry leaves as soon as what it names is served again or is gone.

use std::collections::BTreeMap;

use super::LiveTenant;

/// One item start-up could not serve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    /// The tenant.
    pub tenant: String,
    /// The function; `None` when the tenant itself could not be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Why it is not served, and so what to fix.
    pub reason: String,
}

/// Quarantined tenants and functions, by tenant then function (`None`: the tenant itself).
#[derive(Debug, Default)]
pub(super) struct Quarantine {
    items: BTreeMap<(String, Option<String>), String>,
}

impl Quarantine {
    /// Tenant `tenant` could not be loaded: it and each of its `functions` are quarantined.
    pub(super) fn add_tenant<'f>(
        &mut self,
        tenant: &str,
        reason: &str,
        functions: impl Iterator<Item = &'f String>,
    ) {
        tracing::error!(
            tenant,
            reason,
            "quarantined a stored tenant: it is not served until it is fixed or deleted"
        );
        self.items
            .insert((tenant.to_owned(), None), reason.to_owned());
        for function in functions {
            self.items.insert(
                (tenant.to_owned(), Some(function.clone())),
                format!("its tenant could not be loaded: {reason}"),
            );
        }
    }

    /// Function `function` of `tenant` could not be loaded.
    pub(super) fn add_function(&mut self, tenant: &str, function: &str, reason: &str) {
        tracing::error!(
            tenant,
            function,
            reason,
            "quarantined a stored function: it is not served until it is fixed or deleted"
        );
        self.items.insert(
            (tenant.to_owned(), Some(function.to_owned())),
            reason.to_owned(),
        );
    }

    /// `function` of `tenant` is gone.
    pub(super) fn remove_function(&mut self, tenant: &str, function: &str) {
        self.items
            .remove(&(tenant.to_owned(), Some(function.to_owned())));
    }

    /// After tenant `name` was published: drops what `live` now serves, or everything of the
    /// tenant when it is gone.
    pub(super) fn clear_tenant_if_served(
        &mut self,
        name: &str,
        live: &BTreeMap<String, LiveTenant>,
    ) {
        match live.get(name) {
            None => self.items.retain(|(tenant, _), _| tenant != name),
            Some(served) => self.items.retain(|(tenant, function), _| {
                tenant != name
                    || function
                        .as_ref()
                        .is_some_and(|f| !served.functions.contains_key(f))
            }),
        }
    }

    /// Why `function` of `tenant` is quarantined, if it is.
    pub(super) fn reason(&self, tenant: &str, function: &str) -> Option<&str> {
        self.items
            .get(&(tenant.to_owned(), Some(function.to_owned())))
            .map(String::as_str)
    }

    /// How many functions are quarantined: `atoll_quarantined_functions`.
    pub(super) fn functions(&self) -> usize {
        self.items.keys().filter(|(_, f)| f.is_some()).count()
    }

    /// Every entry, tenant by tenant.
    pub(super) fn list(&self) -> Vec<Quarantined> {
        self.items
            .iter()
            .map(|((tenant, function), reason)| Quarantined {
                tenant: tenant.clone(),
                function: function.clone(),
                reason: reason.clone(),
            })
            .collect()
    }
}
