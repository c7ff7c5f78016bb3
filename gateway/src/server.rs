//! Assembles the gateway: the runtime, the artifact cache, the registry loaded from the config,
//! the Pingora proxy service and the admin service, and runs them on a thread of their own.
//!
//! [`ServerHandle::start`] returns once the proxy accepts connections, with the addresses it
//! bound (port 0 in the config means an ephemeral port, as tests use); [`ServerHandle::stop`]
//! shuts everything down and waits for it. `atoll serve` is `start` plus waiting for a signal.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};
use tokio::sync::watch;

use crate::admin::{self, AdminState};
use crate::auth::{OperatorToken, OperatorTokenSource};
use crate::config::Config;
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::proxy::AtollProxy;
use crate::registry::{Registry, Snapshot};
use crate::runtime::{Runtime, RuntimeSettings};
use crate::tls::SniCertificates;

/// How long `start` waits for the proxy listener to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running gateway. Dropping it stops the gateway.
pub struct ServerHandle {
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    registry: Arc<Registry>,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("http_addr", &self.http_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

/// The most HTTP/2 streams one client connection may have open at once.
const H2_MAX_STREAMS: u32 = 100;
/// The most bytes of decoded headers one HTTP/2 request may carry.
const H2_MAX_HEADER_LIST: u32 = 64 << 10;

impl ServerHandle {
    /// Loads every function of `config` (compiling only what the artifact cache lacks), starts
    /// the proxy and admin listeners, and returns once the proxy accepts connections.
    pub fn start(config: Config) -> anyhow::Result<ServerHandle> {
        crate::store::create_private_dir(&config.data_dir)
            .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
        let runtime = Runtime::new(RuntimeSettings {
            total_instances: config.pool.total_instances,
            max_memory: config.pool.max_memory.0,
            // One worker fewer than the proxy has: long-running guests never occupy them all.
            long_running_lanes: config.threads.saturating_sub(1).max(1),
            ..RuntimeSettings::default()
        })?;
        let metrics = Metrics::new();
        let registry = Arc::new(Registry::new(Snapshot::empty()));
        let control = Arc::new(ControlPlane::start(
            config.clone(),
            runtime.clone(),
            metrics.clone(),
            registry.clone(),
        )?);
        let (operator, token_source) = OperatorToken::load(
            &config.data_dir,
            std::env::var(crate::auth::OPERATOR_TOKEN_ENV).ok(),
        )
        .context("loading the operator token")?;
        match &token_source {
            OperatorTokenSource::Environment => {
                tracing::info!("operator token from ATOLL_ADMIN_TOKEN");
            }
            OperatorTokenSource::ExistingFile(path) | OperatorTokenSource::GeneratedFile(path) => {
                tracing::info!(path = %path.display(), "operator token in file");
            }
        }

        let http_addr = reserve(config.listen.http).context("the proxy listener (listen.http)")?;
        let https = match config.listen.https {
            Some(addr) => {
                let certificates =
                    SniCertificates::load(&config.tls.certificates).map_err(anyhow::Error::msg)?;
                let addr = reserve(addr).context("the TLS listener (listen.https)")?;
                Some((addr, certificates))
            }
            None => None,
        };
        let admin_listener = TcpListener::bind(config.listen.admin).with_context(|| {
            format!(
                "binding the admin listener (listen.admin) on {}",
                config.listen.admin
            )
        })?;
        let admin_addr = admin_listener.local_addr()?;
        let ready = Arc::new(AtomicBool::new(false));

        let mut server = Server::new_with_opt_and_conf(None, server_conf(&config));
        server.bootstrap();

        let mut proxy = pingora::proxy::http_proxy_service_with_name(
            &server.configuration,
            AtollProxy::new(
                registry.clone(),
                runtime.clone(),
                metrics.clone(),
                config.observability,
            ),
            "atoll proxy",
        );
        proxy.add_tcp(&http_addr.to_string());
        let https_addr = match https {
            Some((addr, certificates)) => {
                // The paths are unused: the resolver picks the certificate by SNI.
                let mut settings =
                    TlsSettings::intermediate("", "").context("the TLS listener's settings")?;
                settings.set_cert_resolver(Arc::new(certificates));
                settings.enable_h2();
                proxy.add_tls_with_settings(&addr.to_string(), None, settings);
                Some(addr)
            }
            None => None,
        };
        proxy.threads = Some(config.threads);
        if let Some(app) = proxy.app_logic_mut() {
            let mut options = HttpServerOptions::default();
            options.h2c = true;
            // An HTTP/2 connection that carries nothing for a minute is closed.
            options.h2_idle_timeout = Some(std::time::Duration::from_secs(60));
            app.server_options = Some(options);
            // Pingora's bounded defaults, said out loud: 100 streams per connection and 64 KiB of
            // decoded headers.
            let mut h2 = pingora::protocols::http::v2::server::default_h2_options();
            h2.max_concurrent_streams(H2_MAX_STREAMS);
            h2.max_header_list_size(H2_MAX_HEADER_LIST);
            app.h2_options = Some(h2);
        }
        server.add_service(proxy);

        let admin = AdminService {
            listener: std::sync::Mutex::new(Some(admin_listener)),
            router: admin::router(AdminState {
                metrics: metrics.clone(),
                ready: ready.clone(),
                control,
                operator: Arc::new(operator),
            }),
        };
        let mut admin = background_service("atoll admin", admin);
        admin.threads = Some(1);
        server.add_service(admin);

        let (shutdown, shutdown_rx) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("atoll-server".into())
            .spawn(move || {
                server.run(RunArgs {
                    shutdown_signal: Box::new(HandleSignal(shutdown_rx)),
                });
                // The runtime and its epoch ticker outlive the services that use them.
                drop(runtime);
            })?;

        let handle = ServerHandle {
            http_addr,
            https_addr,
            admin_addr,
            registry,
            metrics,
            shutdown,
            thread: Some(thread),
        };
        wait_until_accepting(http_addr, START_TIMEOUT)?;
        if let Some(addr) = https_addr {
            wait_until_accepting(addr, START_TIMEOUT)?;
        }
        ready.store(true, Ordering::Release);
        tracing::info!(proxy = %http_addr, admin = %admin_addr, "atoll is serving");
        Ok(handle)
    }

    /// The address the proxy listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address of the TLS listener, when there is one.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The address the admin API listens on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The live registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops accepting, ends the services and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown_and_join();
    }

    fn shutdown_and_join(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}

fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(config.shutdown_grace.as_secs().max(1)),
        ..ServerConf::default()
    }
}

/// Checks that `addr` can be bound and, for port 0, picks a free port for Pingora to bind.
fn reserve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    Ok(listener.local_addr()?)
}

fn wait_until_accepting(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("the proxy did not start listening on {addr} within {limit:?}")
}

/// Pingora's shutdown signal, driven by [`ServerHandle::stop`].
struct HandleSignal(watch::Receiver<bool>);

#[async_trait]
impl ShutdownSignalWatch for HandleSignal {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        ShutdownSignal::GracefulTerminate
    }
}

/// Serves the admin router on the listener bound in `start`.
struct AdminService {
    listener: std::sync::Mutex<Option<TcpListener>>,
    router: axum::Router,
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(listener) = self.listener.lock().expect("not poisoned").take() else {
            return;
        };
        let listener = match listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
        {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!(error = %e, "the admin listener failed");
                return;
            }
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            let _ = stop.send(true);
        });
        admin::listener::serve(listener, self.router.clone(), stopped).await;
    }
}
