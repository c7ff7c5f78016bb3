//! TLS termination end to end: the `https` listener picks a certificate by SNI, speaks
//! HTTP/1.1 and HTTP/2 (by ALPN) to functions, and refuses to start on a bad certificate file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use atoll_tests::TestGateway;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `name`, written to `dir`; returns its paths and DER.
fn certificate(dir: &Path, stem: &str, name: &str) -> (String, String, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (
        cert.display().to_string(),
        key.display().to_string(),
        generated.cert.der().clone(),
    )
}

struct Fixture {
    gateway: TestGateway,
    shop: CertificateDer<'static>,
    wildcard: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

/// A gateway with two certificates: `shop.test`, and `*.api.test`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (shop_cert, shop_key, shop) = certificate(dir.path(), "shop", "shop.test");
    let (api_cert, api_key, wildcard) = certificate(dir.path(), "api", "*.api.test");
    let gateway = TestGateway::start_with_https(&format!(
        r#"
tls:
  certificates:
    - {{hosts: [shop.test], cert: {shop_cert}, key: {shop_key}}}
    - {{hosts: ["*.api.test"], cert: {api_cert}, key: {api_key}}}
tenants:
  demo:
    hosts: [shop.test, "*.api.test"]
    functions:
      hello: {{wasm: "{{wasm}}/hello.wasm", routes: [/hello]}}
      echo: {{wasm: "{{wasm}}/echo.wasm", routes: [/echo]}}
"#
    ));
    Fixture {
        gateway,
        shop,
        wildcard,
        _dir: dir,
    }
}

/// Connects with `sni`, offering `alpn`, trusting both test certificates.
async fn connect(
    fixture: &Fixture,
    address: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(fixture.shop.clone()).unwrap();
    roots.add(fixture.wildcard.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    connector
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .expect("the handshake verifies")
}

fn leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn sni_chooses_the_certificate_and_http1_reaches_the_function() {
    let fixture = fixture();
    let address = fixture.gateway.https_addr();

    let mut stream = connect(&fixture, address, "shop.test", &[b"http/1.1"]).await;
    assert_eq!(leaf(&stream), fixture.shop);
    stream
        .write_all(b"GET /hello HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .unwrap_or_default();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("x-request-id"), "{response}");
    // The body may come whole or chunked, as the guest's frames arrive.
    assert!(response.contains("Hello from Atoll!\n"), "{response}");

    let stream = connect(&fixture, address, "www.api.test", &[b"http/1.1"]).await;
    assert_eq!(leaf(&stream), fixture.wildcard);
}

#[tokio::test]
async fn alpn_h2_serves_http2_over_tls() {
    let fixture = fixture();
    let address = fixture.gateway.https_addr();
    let stream = connect(&fixture, address, "v1.api.test", &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::get("https://v1.api.test/echo/over-h2?x=1")
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        bytes.extend_from_slice(&chunk);
    }
    let echo: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(echo["path"], "/echo/over-h2");
    assert_eq!(echo["query"], "x=1");
}

#[test]
fn a_bad_certificate_stops_start_up_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(dir.path(), "good", "a.test");
    let broken_key = dir.path().join("broken.key");
    std::fs::write(
        &broken_key,
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let yaml = format!(
        "listen: {{http: 127.0.0.1:0, admin: 127.0.0.1:0, https: 127.0.0.1:0}}\ndata_dir: {}\ntls:\n  certificates:\n    - {{hosts: [a.test], cert: {cert}, key: {}}}\n",
        dir.path().display(),
        broken_key.display()
    );
    let config = atoll_gateway::Config::parse(&yaml, None).unwrap();
    let error = format!(
        "{:#}",
        atoll_gateway::ServerHandle::start(config).unwrap_err()
    );
    assert!(error.contains("broken.key"), "{error}");
}
