//! What several end-to-end test files share (each uses some): test origins on loopback, and
//! short calls to a test gateway's admin API, metrics and proxy.

#![allow(dead_code)]

use std::net::SocketAddr;

use atoll_tests::TestGateway;
use axum::extract::Request;
use serde_json::{Value, json};

/// Calls the admin API: `method path` with `token` and `body`; returns the status and body.
pub async fn admin_call(
    gateway: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .request(method, gateway.admin_url(path))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// [`admin_call`], with the body as JSON (`null` when it is none).
pub async fn admin_json(
    gateway: &TestGateway,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let (status, body) = admin_call(gateway, method, path, token, body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(gateway: &TestGateway) -> String {
    reqwest::get(gateway.admin_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// `GET path` with `Host: host` through the proxy: the status and the body as text.
pub async fn get_text(gateway: &TestGateway, host: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(gateway.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Requests every origin started here has answered.
pub static ORIGIN_REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An origin on loopback that describes the request it got; `/hang` accepts and never answers;
/// paths under `/cacheable` say `Cache-Control: public, max-age=60`.
pub async fn start_origin() -> SocketAddr {
    async fn describe(request: Request) -> axum::response::Response {
        if request.uri().path() == "/hang" {
            std::future::pending::<()>().await;
        }
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let count = ORIGIN_REQUESTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let cacheable = request.uri().path().starts_with("/cacheable");
        let body = json!({
            "count": count,
            "method": request.method().as_str(),
            "path": request.uri().path(),
            "query": request.uri().query(),
            "host": header("host"),
            "forwarded_host": header("x-forwarded-host"),
            "custom": header("x-custom"),
            "origin_header": header("x-origin"),
            "request_id": header("x-request-id"),
            "forwarded_for": header("x-forwarded-for"),
        });
        let mut response = axum::response::Response::builder();
        if cacheable {
            response = response.header("cache-control", "public, max-age=60");
        }
        response
            .header("content-type", "application/json")
            .header("x-from-origin", "yes")
            .body(body.to_string().into())
            .unwrap()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(describe))
            .await
            .unwrap();
    });
    address
}

/// A test CA, and an HTTPS origin on loopback with a certificate it signed for `127.0.0.1`
/// that answers every request with `secure hello`. Returns the origin's address and the CA
/// certificate in PEM.
pub async fn start_tls_origin() -> (SocketAddr, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // a client that refused our certificate
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "secure hello";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (address, ca.pem())
}
