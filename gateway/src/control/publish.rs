//! The one way a change reaches what the gateway serves: **validate, build, persist, publish**,
//! in that order.
//!
//! [`ControlPlane::prepare`] builds the next registry [`Snapshot`] (route table included) with a
//! tenant's new contents and refuses the change if publishing it would fail (a route taken by
//! another tenant's function or origin, or twice by the same change). Only a [`Prepared`] change
//! can be [committed](ControlPlane::commit): its record is written to the journal, then the
//! snapshot is published. So nothing that publishing would refuse is ever persisted, and a
//! restart can always serve what was acknowledged.

use super::{ControlError, ControlPlane, Inner, LiveTenant};
use crate::registry::{Endpoint, OriginEndpoint, Snapshot, Target};
use crate::store::state::Change;

/// A checked change: the snapshot that serves it, ready to publish.
pub(super) struct Prepared {
    name: String,
    next: Option<LiveTenant>,
    snapshot: Snapshot,
}

impl ControlPlane {
    /// Builds the snapshot in which tenant `name` serves `next` (`None`: nothing), from the
    /// current one with only this tenant's routes changed (its maps are persistent, so this
    /// costs the same with 10 tenants or 10,000). Changes nothing; a route conflict is refused.
    ///
    /// Writers hold `inner`'s lock from here to [`publish`](Self::publish), so the current
    /// snapshot cannot move in between.
    pub(super) fn prepare(
        &self,
        inner: &Inner,
        name: &str,
        next: Option<LiveTenant>,
    ) -> Result<Prepared, ControlError> {
        let mut snapshot = Snapshot::clone(&self.registry.snapshot());
        if let Some(previous) = inner.live.get(name) {
            let functions = previous.functions.values().flat_map(|f| &f.routes);
            for route in functions.chain(previous.origins.values().flat_map(|o| &o.routes)) {
                snapshot.routes.remove(route);
            }
        }
        snapshot.tenants.remove(name);
        if let Some(live) = &next {
            snapshot
                .tenants
                .insert(name.to_owned(), live.tenant.clone());
            for f in live.functions.values() {
                let grants = live.tenant.grants(&f.function);
                for route in &f.routes {
                    let endpoint = Endpoint {
                        tenant: live.tenant.clone(),
                        function: f.function.clone(),
                        route: route.to_string().into(),
                        grants: grants.clone(),
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
        Ok(Prepared {
            name: name.to_owned(),
            next,
            snapshot,
        })
    }

    /// Makes a prepared change what is served: in `inner.live`, the gauges, and one atomic swap
    /// of the registry's snapshot. Cannot fail.
    pub(super) fn publish(&self, inner: &mut Inner, prepared: Prepared) {
        let Prepared {
            name,
            next,
            snapshot,
        } = prepared;
        let previous = inner.live.get(&name);
        inner.functions_served -= previous.map_or(0, LiveTenant::routed_functions);
        inner.functions_served += next.as_ref().map_or(0, LiveTenant::routed_functions);
        match next {
            Some(live) => inner.live.insert(name.clone(), live),
            None => inner.live.remove(&name),
        };
        inner.quarantine.clear_tenant_if_served(&name, &inner.live);
        self.metrics
            .functions_loaded
            .set(i64::try_from(inner.functions_served).unwrap_or(i64::MAX));
        self.count_quarantined(inner);
        self.registry.publish(snapshot);
    }

    /// Sets `atoll_quarantined_functions` from `inner`'s quarantine.
    pub(super) fn count_quarantined(&self, inner: &Inner) {
        self.metrics
            .quarantined_functions
            .set(i64::try_from(inner.quarantine.functions()).unwrap_or(i64::MAX));
    }

    /// Persists `change` (the journal line is durable when this returns), then publishes
    /// `prepared`. A storage failure leaves both the state and what is served as they were.
    pub(super) fn commit(
        &self,
        inner: &mut Inner,
        change: Change,
        prepared: Prepared,
    ) -> Result<(), ControlError> {
        self.save(inner, change)?;
        self.publish(inner, prepared);
        Ok(())
    }
}
