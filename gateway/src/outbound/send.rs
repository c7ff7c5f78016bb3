//! Sending one allowed outbound request: connect to addresses already checked (never resolving
//! again), TLS with host-name verification, HTTP/1.1, and real timeouts for the connection, the
//! first byte of the response and the gaps between body frames.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::allow::OutboundScheme;

/// How outbound calls are bounded, gateway-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundSettings {
    /// The most outbound calls one request's guest may make. Default 16.
    pub max_requests: u32,
    /// Resolving the host and connecting (TLS included). Default 5 s.
    pub connect_timeout: Duration,
    /// From the request sent to the response head. Default 30 s.
    pub first_byte_timeout: Duration,
    /// The longest gap between two frames of the response body. Default 30 s.
    pub between_bytes_timeout: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            max_requests: 16,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
        }
    }
}

impl OutboundSettings {
    /// These settings, shortened where the guest asked for less (it may never ask for more).
    fn within(&self, options: Option<RequestOptions>) -> OutboundSettings {
        let shorter = |ours: Duration, theirs: Option<Duration>| match theirs {
            Some(theirs) => ours.min(theirs),
            None => ours,
        };
        let options = options.unwrap_or_default();
        OutboundSettings {
            connect_timeout: shorter(self.connect_timeout, options.connect_timeout),
            first_byte_timeout: shorter(self.first_byte_timeout, options.first_byte_timeout),
            between_bytes_timeout: shorter(
                self.between_bytes_timeout,
                options.between_bytes_timeout,
            ),
            ..*self
        }
    }
}

/// The gateway's outbound HTTP client: its TLS roots and its timeouts.
pub struct OutboundClient {
    tls: TlsConnector,
    settings: OutboundSettings,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A response whose body is still arriving, and the connection's end, which reports a failure
/// of the body.
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

impl OutboundClient {
    /// A client trusting the Mozilla roots (`webpki-roots`) and, when given, the PEM
    /// certificates of `ca_file`.
    pub fn new(
        settings: OutboundSettings,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<OutboundClient> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(ca_file) = ca_file {
            crate::tls::add_roots(ca_file, &mut roots).map_err(anyhow::Error::msg)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(OutboundClient {
            tls: TlsConnector::from(Arc::new(config)),
            settings,
        })
    }

    /// The settings every call runs under.
    pub fn settings(&self) -> &OutboundSettings {
        &self.settings
    }

    /// Sends `request` to the first of `addresses` that accepts a connection, over TLS for
    /// `https` (verifying the certificate for `server_name`).
    pub(crate) async fn send(
        &self,
        scheme: OutboundScheme,
        server_name: &str,
        addresses: &[SocketAddr],
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let settings = self.settings.within(options);
        let connecting = async {
            let tcp = connect_any(addresses).await?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = match scheme {
                OutboundScheme::Http => Box::new(tcp),
                OutboundScheme::Https => {
                    let name = ServerName::try_from(server_name.to_owned())
                        .map_err(|_| Error::HttpRequestUriInvalid)?;
                    Box::new(self.tls.connect(name, tcp).await.map_err(tls_error)?)
                }
            };
            hyper::client::conn::http1::Builder::new()
                .handshake::<_, WasiBody>(TokioIo::new(io))
                .await
                .map_err(Error::from)
        };
        let (mut sender, connection) = tokio::time::timeout(settings.connect_timeout, connecting)
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        // The connection is driven by its own task, which ends when the response (and its
        // body) and the sender are dropped: when the guest is done or stopped.
        let connection = tokio::spawn(connection);

        // On the wire the target is origin-form; the host travels in `Host`.
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
        let response =
            tokio::time::timeout(settings.first_byte_timeout, sender.send_request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?
                .map_err(Error::from)?;
        let response = response.map(|incoming| {
            TimedBody {
                incoming,
                gap: settings.between_bytes_timeout,
                deadline: Box::pin(tokio::time::sleep(settings.between_bytes_timeout)),
            }
            .boxed_unsync()
        });
        let ended = async move {
            match connection.await {
                Ok(Ok(())) | Err(_) => Ok(()),
                Ok(Err(e)) => Err(Error::from(e)),
            }
        };
        Ok((response, Box::new(ended)))
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Connects to each address in turn; the last failure is the error.
async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationNotFound;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::ConnectionRefused;
            }
            Err(e) => last = Error::Connect(e),
        }
    }
    Err(last)
}

/// A certificate the roots do not vouch for is told apart from other TLS failures.
fn tls_error(error: std::io::Error) -> Error {
    let certificate = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)));
    if certificate {
        Error::TlsCertificateError
    } else {
        Error::Tls(error)
    }
}

/// A response body that fails when the origin goes quiet for longer than `gap`.
struct TimedBody {
    incoming: hyper::body::Incoming,
    gap: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.gap;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Error::from)))
            }
            Poll::Pending => {
                ready!(this.deadline.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
