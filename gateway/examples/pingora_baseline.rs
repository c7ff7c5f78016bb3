//! The ceiling for the HTTP benchmark: Pingora alone, answering `Hello from Atoll!\n` from
//! `request_filter` with no routing, no Wasm and no metrics. `scripts/bench-http.sh` runs it
//! next to the gateway so the two are compared in the same run.
//!
//! `cargo run --release -p atoll-gateway --example pingora_baseline -- 127.0.0.1:18090`

use async_trait::async_trait;
use bytes::Bytes;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session, http_proxy_service};
use pingora::server::configuration::ServerConf;

struct Hello;

#[async_trait]
impl ProxyHttp for Hello {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        let body = Bytes::from_static(b"Hello from Atoll!\n");
        let mut head = pingora::http::ResponseHeader::build(200, Some(2))?;
        head.insert_header("content-type", "text/plain; charset=utf-8")?;
        head.insert_header("content-length", body.len())?;
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Error::e_explain(ErrorType::InternalError, "no upstream")
    }
}

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let conf = ServerConf {
        threads: 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(&server.configuration, Hello);
    service.add_tcp(&addr);
    server.add_service(service);
    server.run_forever();
}
