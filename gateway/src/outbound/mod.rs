//! Guests' outbound HTTP (`wasi:http/outgoing-handler`), decided and sent by the gateway.
//!
//! A call goes out only when, in order:
//!
//! 1. the request has not used up its calls ([`OutboundSettings::max_requests`]);
//! 2. the tenant's [`AllowList`] has a pattern for its scheme, host and port;
//! 3. every address its host resolves to is public ([`address::is_public`]), unless the
//!    pattern named that very address.
//!
//! Otherwise the guest gets `HttpRequestDenied`. The call then connects to the addresses that
//! were checked, with the gateway's timeouts ([`send`]). Every call is counted in
//! `atoll_outbound_requests_total{tenant, result}` as `ok`, `denied` or `error`.

pub mod address;
pub mod allow;
mod send;

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::IntCounterVec;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

pub use self::allow::{AddressPermit, AllowList, Host, OriginPattern, OutboundScheme};
pub use self::send::{OutboundClient, OutboundSettings};

use self::send::Sent;

/// How an outbound call ended, the `result` label of `atoll_outbound_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundResult {
    /// Sent, and a response head came back.
    Ok,
    /// Refused by the gateway: the allowlist, a private address, or the per-request cap.
    Denied,
    /// Allowed, but failed: DNS, connection, TLS, timeouts, a broken response.
    Error,
}

impl OutboundResult {
    /// Every result, for removing a tenant's series.
    pub const ALL: [OutboundResult; 3] = [
        OutboundResult::Ok,
        OutboundResult::Denied,
        OutboundResult::Error,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboundResult::Ok => "ok",
            OutboundResult::Denied => "denied",
            OutboundResult::Error => "error",
        }
    }
}

/// Counts one tenant's calls in `atoll_outbound_requests_total`. A series appears with the
/// first call that has its result, so tenants that never call out export nothing.
#[derive(Debug, Clone)]
pub struct OutboundCounters {
    family: IntCounterVec,
    tenant: String,
}

impl OutboundCounters {
    /// Counts into `family` under the label `tenant`.
    pub fn new(family: IntCounterVec, tenant: &str) -> OutboundCounters {
        OutboundCounters {
            family,
            tenant: tenant.to_owned(),
        }
    }

    fn count(&self, result: OutboundResult) {
        self.family
            .with_label_values(&[self.tenant.as_str(), result.as_str()])
            .inc();
    }
}

/// What one tenant's functions may call, the client they call with, and their counters.
#[derive(Debug)]
pub struct TenantOutbound {
    tenant: String,
    allow: AllowList,
    client: Arc<OutboundClient>,
    counters: OutboundCounters,
}

impl TenantOutbound {
    /// The outbound policy of `tenant`.
    pub fn new(
        tenant: &str,
        allow: AllowList,
        client: Arc<OutboundClient>,
        counters: OutboundCounters,
    ) -> TenantOutbound {
        TenantOutbound {
            tenant: tenant.to_owned(),
            allow,
            client,
            counters,
        }
    }

    /// The tenant's allowlist.
    pub fn allow(&self) -> &AllowList {
        &self.allow
    }

    fn deny(&self, origin: &str, why: &str) -> Error {
        self.counters.count(OutboundResult::Denied);
        tracing::info!(
            tenant = self.tenant.as_str(),
            origin,
            why,
            "outbound request denied"
        );
        Error::HttpRequestDenied
    }
}

/// Why a call was refused before anything was sent.
enum Refusal {
    /// By policy: the guest sees `HttpRequestDenied`.
    Denied(&'static str),
    /// The destination could not be found or the request is malformed.
    Failed(Error),
}

/// One request's outbound calls: the tenant's policy (none: every call is denied) and how many
/// calls the guest has made. The hooks of the guest's `wasi:http` context.
#[derive(Debug, Default)]
pub struct OutboundCalls {
    policy: Option<Arc<TenantOutbound>>,
    made: u32,
}

impl OutboundCalls {
    /// Calls under `policy`; `None` denies them all.
    pub fn new(policy: Option<Arc<TenantOutbound>>) -> OutboundCalls {
        OutboundCalls { policy, made: 0 }
    }
}

type SendFuture = Box<dyn Future<Output = Result<Sent, Error>> + Send>;

impl WasiHttpHooks for OutboundCalls {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let Some(policy) = self.policy.clone() else {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        self.made += 1;
        let uri = request.uri();
        let scheme = match uri.scheme_str() {
            Some("https") => OutboundScheme::Https,
            Some("http") => OutboundScheme::Http,
            _ => return Box::new(async { Err(Error::HttpProtocolError) }),
        };
        let Some(host) = uri.host().map(Host::parse) else {
            return Box::new(async { Err(Error::HttpRequestUriInvalid) });
        };
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        let origin = format!(
            "{}://{}:{port}",
            uri.scheme_str().unwrap_or_default(),
            uri.host().unwrap_or_default()
        );
        let max = policy.client.settings().max_requests;
        if self.made > max {
            return Box::new(async move {
                Err(policy.deny(&origin, "the request made more outbound calls than its cap"))
            });
        }
        let Some(permit) = policy.allow.permit(scheme, &host, port) else {
            return Box::new(async move {
                Err(policy.deny(&origin, "not in the tenant's outbound.allow"))
            });
        };
        Box::new(async move {
            let addresses = match resolve(&host, port, permit, &policy.client).await {
                Ok(addresses) => addresses,
                Err(Refusal::Denied(why)) => return Err(policy.deny(&origin, why)),
                Err(Refusal::Failed(e)) => {
                    policy.counters.count(OutboundResult::Error);
                    return Err(e);
                }
            };
            let server_name = match &host {
                Host::Name(name) => name.clone(),
                Host::Address(address) => address.to_string(),
            };
            let sent = policy
                .client
                .send(scheme, &server_name, &addresses, request, options)
                .await;
            match &sent {
                Ok(_) => policy.counters.count(OutboundResult::Ok),
                Err(e) => {
                    policy.counters.count(OutboundResult::Error);
                    tracing::info!(
                        tenant = policy.tenant.as_str(),
                        origin = origin.as_str(),
                        error = %e,
                        "outbound request failed"
                    );
                }
            }
            sent
        })
    }
}

/// The addresses a call may connect to: the host's, all checked against `permit`.
async fn resolve(
    host: &Host,
    port: u16,
    permit: AddressPermit,
    client: &OutboundClient,
) -> Result<Vec<SocketAddr>, Refusal> {
    let allowed = |address: std::net::IpAddr| {
        permit == AddressPermit::Exactly(address) || address::is_public(address)
    };
    match host {
        Host::Address(address) => {
            if !allowed(*address) {
                return Err(Refusal::Denied(
                    "a private, loopback or link-local address that outbound.allow does not name",
                ));
            }
            Ok(vec![SocketAddr::new(*address, port)])
        }
        Host::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            let addresses: Vec<SocketAddr> =
                match tokio::time::timeout(client.settings().connect_timeout, lookup).await {
                    Err(_) => return Err(Refusal::Failed(Error::DnsTimeout)),
                    Ok(Err(_)) => return Err(Refusal::Failed(Error::DestinationNotFound)),
                    Ok(Ok(addresses)) => addresses.collect(),
                };
            if addresses.is_empty() {
                return Err(Refusal::Failed(Error::DestinationNotFound));
            }
            // One private address among public ones is still a way in: refuse the name.
            if addresses.iter().any(|a| !allowed(a.ip())) {
                return Err(Refusal::Denied(
                    "the host resolves to a private, loopback or link-local address",
                ));
            }
            Ok(addresses)
        }
    }
}
