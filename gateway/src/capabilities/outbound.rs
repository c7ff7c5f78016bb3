//! Outbound HTTP through `wasi:http/outgoing-handler`, decided and sent by
//! [`crate::outbound`]: granted the tenant's policy (allow list, per-request cap, client and
//! counters); each request's state counts the calls it made. Without a policy every call is
//! denied.

use std::sync::Arc;

use crate::outbound::{OutboundCalls, TenantOutbound};

use super::Capability;

/// Outbound HTTP.
pub struct Outbound;

impl Capability for Outbound {
    /// The tenant's policy; `None` denies every call.
    type Grant = Option<Arc<TenantOutbound>>;
    type State = OutboundCalls;

    fn prepare(grant: &Self::Grant) -> OutboundCalls {
        OutboundCalls::new(grant.clone())
    }
}
