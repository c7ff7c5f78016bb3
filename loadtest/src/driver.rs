//! Drives HTTP load at a server: N connections (HTTP/1.1 keep-alive, one request at a time on
//! each) or N streams over one h2c connection, paced closed- or open-loop (see [`crate::pacing`]),
//! each request to a target picked by a [`Picker`], every answer timed into [`Latencies`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpStream;

use crate::latency::Latencies;
use crate::pacing::{Bounds, OpenLoop, Pacing, latency};
use crate::zipf::ZipfPicker;

/// The HTTP version spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive, one connection per worker.
    Http1,
    /// HTTP/2 without TLS (prior knowledge), one connection carrying a stream per worker.
    H2c,
}

/// Where a request goes: its `Host` header and path (with query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `Host` header (and `:authority`).
    pub host: String,
    /// The path and query.
    pub path: String,
}

/// Picks each request's target.
#[derive(Debug, Clone)]
pub enum Picker {
    /// Always the first target.
    First,
    /// Zipf-distributed over the targets, the first the busiest.
    Zipf(ZipfPicker),
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// The server.
    pub addr: SocketAddr,
    /// The targets requests go to.
    pub targets: Arc<Vec<Target>>,
    /// How targets are picked.
    pub picker: Picker,
    /// HTTP/1.1 or h2c.
    pub protocol: Protocol,
    /// Workers: connections for HTTP/1.1, streams for h2c.
    pub connections: usize,
    /// Closed or open loop.
    pub pacing: Pacing,
    /// Where the run stops.
    pub bounds: Bounds,
    /// Counts answers as they arrive, for a progress display.
    pub answered: Arc<AtomicU64>,
}

impl Load {
    /// `connections` HTTP/1.1 connections to `addr`, every request `GET /` with `Host: host`,
    /// paced by `pacing` for `duration`.
    pub fn one_host(
        addr: SocketAddr,
        host: &str,
        connections: usize,
        pacing: Pacing,
        duration: Duration,
    ) -> Load {
        Load {
            addr,
            targets: Arc::new(vec![Target {
                host: host.to_owned(),
                path: "/".to_owned(),
            }]),
            picker: Picker::First,
            protocol: Protocol::Http1,
            connections,
            pacing,
            bounds: Bounds {
                duration,
                max_requests: u64::MAX,
            },
            answered: Arc::default(),
        }
    }
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Latency of every answer, whatever its status.
    pub latencies: Latencies,
    /// 2xx answers.
    pub ok: u64,
    /// Other answers, and requests that failed without one.
    pub errors: u64,
    /// From the start to the last answer.
    pub elapsed: Duration,
    /// The first failure without an answer, to report.
    pub first_failure: Option<String>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies.merge(&other.latencies);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// A request sender: one HTTP/1.1 connection, or a handle on the shared h2c connection.
enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The connection was closed before the request left: it may be sent on a new one.
    #[error("the connection was closed")]
    Closed,
    /// The request was sent, or the connection broke while it was.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl Sender {
    async fn send(&mut self, request: http::Request<Empty<Bytes>>) -> Result<u16, SendError> {
        let response = match self {
            Sender::Http1(sender) => {
                sender.ready().await.map_err(|_| SendError::Closed)?;
                sender.send_request(request).await
            }
            Sender::H2(sender) => {
                sender.ready().await.map_err(|_| SendError::Closed)?;
                sender.send_request(request).await
            }
        }
        .map_err(|e| {
            if e.is_canceled() {
                SendError::Closed
            } else {
                SendError::Failed(e.into())
            }
        })?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| SendError::Failed(e.into()))?;
        Ok(status)
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<TokioIo<TcpStream>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(stream))
}

async fn http1_sender(addr: SocketAddr) -> anyhow::Result<Sender> {
    let (sender, connection) = hyper::client::conn::http1::handshake(connect(addr).await?).await?;
    tokio::spawn(connection);
    Ok(Sender::Http1(sender))
}

async fn h2_sender(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http2::SendRequest<Empty<Bytes>>> {
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), connect(addr).await?).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Runs `load` to its bounds. Must be called within a tokio runtime.
pub async fn run(load: Load) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!load.targets.is_empty(), "no targets to send to");
    anyhow::ensure!(load.connections > 0, "at least one connection");
    let mut senders = Vec::with_capacity(load.connections);
    match load.protocol {
        Protocol::Http1 => {
            for _ in 0..load.connections {
                senders.push(http1_sender(load.addr).await?);
            }
        }
        Protocol::H2c => {
            let shared = h2_sender(load.addr).await?;
            senders.extend((0..load.connections).map(|_| Sender::H2(shared.clone())));
        }
    }
    let start = Instant::now();
    let schedule = match load.pacing {
        Pacing::Open { rate } => Some(Arc::new(OpenLoop::new(start, rate, load.bounds))),
        Pacing::Closed => None,
    };
    let issued = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let worker = Worker {
            sender,
            load: load.clone(),
            schedule: schedule.clone(),
            issued: issued.clone(),
            start,
            rng: StdRng::seed_from_u64(i as u64),
        };
        workers.spawn(worker.run());
    }
    let mut outcome = Outcome::default();
    while let Some(done) = workers.join_next().await {
        outcome.merge(done.context("a load worker failed")?);
    }
    outcome.elapsed = start.elapsed();
    Ok(outcome)
}

struct Worker {
    sender: Sender,
    load: Load,
    schedule: Option<Arc<OpenLoop>>,
    issued: Arc<AtomicU64>,
    start: Instant,
    rng: StdRng,
}

impl Worker {
    async fn run(mut self) -> Outcome {
        let mut outcome = Outcome::default();
        loop {
            // When the request is due (open loop) or now (closed loop), or the run is over.
            let due = match &self.schedule {
                Some(schedule) => match schedule.claim() {
                    Some(slot) => {
                        tokio::time::sleep_until(slot.due.into()).await;
                        slot.due
                    }
                    None => break,
                },
                None => {
                    let n = self.issued.fetch_add(1, Ordering::Relaxed);
                    if self.load.bounds.excludes(n, self.start.elapsed()) {
                        break;
                    }
                    Instant::now()
                }
            };
            let target = match &self.load.picker {
                Picker::First => &self.load.targets[0],
                Picker::Zipf(zipf) => &self.load.targets[zipf.pick(&mut self.rng)],
            };
            let mut sent = self
                .sender
                .send(request_for(target, self.load.protocol))
                .await;
            // A server may close a keep-alive connection between requests (nginx after
            // `keepalive_requests`, or `Connection: close`): the request never left, so open
            // a new connection and send it there, as a browser or wrk would.
            if matches!(sent, Err(SendError::Closed)) && self.load.protocol == Protocol::Http1 {
                sent = match http1_sender(self.load.addr).await {
                    Ok(sender) => {
                        self.sender = sender;
                        self.sender
                            .send(request_for(target, self.load.protocol))
                            .await
                    }
                    Err(e) => Err(SendError::Failed(e.context("reconnecting"))),
                };
            }
            self.load.answered.fetch_add(1, Ordering::Relaxed);
            match sent {
                Ok(status) => {
                    outcome.latencies.record(latency(due, Instant::now()));
                    if (200..300).contains(&status) {
                        outcome.ok += 1;
                    } else {
                        outcome.errors += 1;
                    }
                }
                Err(e) => {
                    outcome.errors += 1;
                    outcome.first_failure.get_or_insert_with(|| e.to_string());
                    // A broken connection stays broken: this worker stops.
                    break;
                }
            }
        }
        outcome
    }
}

/// A GET for `target`, as `protocol` carries it.
fn request_for(target: &Target, protocol: Protocol) -> http::Request<Empty<Bytes>> {
    let request = http::Request::get(target.path.as_str())
        .header(http::header::HOST, target.host.as_str())
        .body(Empty::new())
        .expect("a valid request");
    match protocol {
        Protocol::Http1 => request,
        // h2 takes the authority from the URI.
        Protocol::H2c => with_authority(request, &target.host),
    }
}

fn with_authority(request: http::Request<Empty<Bytes>>, host: &str) -> http::Request<Empty<Bytes>> {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if let Ok(uri) = http::Uri::builder()
        .scheme("http")
        .authority(host)
        .path_and_query(path)
        .build()
    {
        parts.uri = uri;
    }
    http::Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};

    use super::*;

    /// A server that answers one request per connection, then closes it, as nginx does when a
    /// connection reaches `keepalive_requests`.
    fn one_request_per_connection() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = (&stream).write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_reopened_not_counted_as_an_error() {
        let outcome = run(Load {
            addr: one_request_per_connection(),
            targets: Arc::new(vec![Target {
                host: "x".into(),
                path: "/".into(),
            }]),
            picker: Picker::First,
            protocol: Protocol::Http1,
            connections: 1,
            pacing: Pacing::Closed,
            bounds: Bounds {
                duration: Duration::from_secs(30),
                max_requests: 5,
            },
            answered: Default::default(),
        })
        .await
        .unwrap();
        assert_eq!(
            (outcome.ok, outcome.errors),
            (5, 0),
            "{:?}",
            outcome.first_failure
        );
    }
}
