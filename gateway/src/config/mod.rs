//! The YAML configuration: its schema, defaults, units and validation.
//!
//! [`Config::load`] reads a file, [`Config::parse`] a string, [`Config::embedded_default`] gives
//! the config `atoll serve` uses without `--config`. Everything is validated here, once: unknown
//! keys, bad units, bad names, routes outside a tenant's hosts, duplicate routes, limits above
//! the pool's ceilings. Every error names the file, the line and the key
//! (`config/atoll.yaml:12: tenants.demo.limits.memory: …`). Relative paths are relative to the
//! config file's directory. Tenants go through the same checks as the admin API's
//! ([`crate::definition`]); the settings of the cache, key-value store, origins, outbound
//! client and TLS are those modules' own types. The YAML shapes are in `raw`, the checks that
//! turn them into a [`Config`] in `parse`. Every key and default is listed in
//! `docs/configuration.md`.

mod locate;
mod parse;
mod raw;
mod units;

use self::parse::Parser;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::units::{ByteSize, format_duration, parse_duration};
use crate::cache::CacheSettings;
use crate::definition::{
    Invalid, TenantDefinition, check_config_variables, check_function_name, check_name,
};
use crate::kv::KvSettings;
use crate::origins::{HostHeader, OriginSpec, OriginUrl};
use crate::outbound::OutboundSettings;
use crate::routes::{HostPattern, Route};
use crate::tls::CertificateConfig;

/// The config `atoll serve` runs without `--config`.
pub const DEFAULT_CONFIG_YAML: &str = "\
listen:
  http: 127.0.0.1:8080
  admin: 127.0.0.1:8081
data_dir: ./atoll-data
";

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The listeners.
    pub listen: Listen,
    /// Where deployments, precompiled artifacts and state live. Default `./atoll-data`.
    pub data_dir: PathBuf,
    /// Proxy worker threads. Default: the CPUs this process may use ([`default_threads`]).
    pub threads: usize,
    /// The gateway-wide limits every tenant's missing limit keys inherit.
    pub limits: Limits,
    /// The instance pool's global ceilings.
    pub pool: PoolConfig,
    /// How long a graceful shutdown waits for requests in flight. Default 5s.
    pub shutdown_grace: Duration,
    /// The largest response body a function may produce. Default 1GiB.
    pub response_body: ByteSize,
    /// The largest component the admin API accepts. Default 50MiB.
    pub max_upload: ByteSize,
    /// How many versions of each function are kept for rollback. Default 10.
    pub keep_versions: usize,
    /// What the request path records: metrics and access-log lines.
    pub observability: Observability,
    /// How guests' outbound calls are bounded and whom TLS trusts, gateway-wide.
    pub outbound: OutboundConfig,
    /// The `https` listener's certificates.
    pub tls: TlsConfig,
    /// The response cache's sizes.
    pub cache: CacheSettings,
    /// Each tenant's key-value quotas.
    pub kv: KvSettings,
    /// Tenants by name.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// The file this config came from, if any.
    pub source: Option<PathBuf>,
}

/// Whether a per-request record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Recording {
    /// Recorded (the default).
    On,
    /// Not recorded.
    Off,
}

/// What the request path records, under `observability:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    /// Per-tenant request metrics on `/metrics`. Default `on`; `off` leaves only the gateway's
    /// own series (deployments, artifacts, functions loaded).
    #[serde(default = "Observability::on")]
    pub metrics: Recording,
    /// One `atoll::access` log line per request. Default `on`.
    #[serde(default = "Observability::on")]
    pub access_log: Recording,
}

/// The CPUs this process may run on (`std::thread::available_parallelism`, which honours
/// cgroup quotas and the affinity mask), 1 to 256; 2 when that cannot be known.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(1, 256)
}

impl Observability {
    fn on() -> Recording {
        Recording::On
    }
}

impl Default for Observability {
    fn default() -> Self {
        Observability {
            metrics: Recording::On,
            access_log: Recording::On,
        }
    }
}

/// Listener addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// The proxy listener. Default `127.0.0.1:8080`.
    pub http: SocketAddr,
    /// The admin listener. Default `127.0.0.1:8081`.
    pub admin: SocketAddr,
    /// The TLS listener (HTTP/1.1 and HTTP/2 by ALPN), with `tls.certificates`. Default none.
    pub https: Option<SocketAddr>,
}

/// The certificates of the `https` listener, under `tls:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// Certificates chosen by SNI; the first also serves clients without SNI.
    pub certificates: Vec<CertificateConfig>,
}

/// The largest response body a function may produce unless `response_body` says otherwise.
pub const DEFAULT_RESPONSE_BODY: u64 = 1 << 30;

/// A tenant's limits, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per instance. Default 64MiB.
    pub memory: ByteSize,
    /// CPU time per request. Default 50ms.
    pub cpu_time: Duration,
    /// Wall-clock time per request. Default 10s.
    pub timeout: Duration,
    /// Instances running at once. Default 64.
    pub concurrency: u32,
    /// Requests per second; 0 means unlimited. Default 0.
    pub rate: u32,
    /// Largest request body. Default 10MiB.
    pub request_body: ByteSize,
    /// How long a request waits for a concurrency slot before 503 `over_capacity`.
    /// Default 100ms; 0 refuses at once.
    pub queue_wait: Duration,
    /// Functions the tenant may have. Default 100.
    pub functions: u32,
    /// Routes across all its functions. Default 1000.
    pub routes: u32,
    /// Bytes of config variables (names and values) across all its functions. Default 1MiB.
    pub config_bytes: ByteSize,
    /// API tokens it may have. Default 100.
    pub tokens: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: ByteSize(64 << 20),
            cpu_time: Duration::from_millis(50),
            timeout: Duration::from_secs(10),
            concurrency: 64,
            rate: 0,
            request_body: ByteSize(10 << 20),
            queue_wait: Duration::from_millis(100),
            functions: 100,
            routes: 1000,
            config_bytes: ByteSize(1 << 20),
            tokens: 100,
        }
    }
}

/// Global ceilings of the instance pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The most instances alive at once across all tenants. Default 1000.
    pub total_instances: u32,
    /// The largest memory any instance may have. Default 256MiB.
    pub max_memory: ByteSize,
}

impl PoolConfig {
    /// Checks `limits` against the pool's ceilings and basic sense; on failure, the limit's
    /// key and what is wrong.
    pub fn check(&self, limits: &Limits) -> Result<(), (&'static str, String)> {
        if limits.memory > self.max_memory {
            return Err((
                "memory",
                format!(
                    "memory {} is above pool.max_memory {}",
                    limits.memory, self.max_memory
                ),
            ));
        }
        if limits.concurrency == 0 || limits.concurrency > self.total_instances {
            return Err((
                "concurrency",
                format!(
                    "concurrency {} must be from 1 to pool.total_instances ({})",
                    limits.concurrency, self.total_instances
                ),
            ));
        }
        if limits.cpu_time.is_zero() {
            return Err(("cpu_time", "cpu_time must be above 0".to_owned()));
        }
        if limits.timeout.is_zero() {
            return Err(("timeout", "timeout must be above 0".to_owned()));
        }
        Ok(())
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            total_instances: 1000,
            max_memory: ByteSize(256 << 20),
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    /// Its hosts, limits and outbound allow list, checked as the admin API checks them.
    pub definition: TenantDefinition,
    /// Its functions by name.
    pub functions: BTreeMap<String, FunctionConfig>,
    /// Its origins by name.
    pub origins: BTreeMap<String, OriginConfig>,
}

/// An origin and the routes it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginConfig {
    /// Where it is and how requests are sent to it.
    pub spec: OriginSpec,
    /// The routes it serves.
    pub routes: Vec<Route>,
}

/// The gateway-wide outbound settings, under the top-level `outbound:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboundConfig {
    /// The per-request cap and the timeouts.
    pub settings: OutboundSettings,
    /// PEM certificates trusted for `https` calls besides the Mozilla roots. Default none.
    pub ca_file: Option<PathBuf>,
}

/// A function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// The component file, resolved against the config file's directory.
    pub wasm: PathBuf,
    /// The routes it serves.
    pub routes: Vec<Route>,
    /// Its config variables (`wasi:config/store`).
    pub config: BTreeMap<String, String>,
}

/// Why a config is not valid. The message starts with `file:line:` when the line is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// YAML syntax, an unknown key or a value of the wrong type or unit.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file, `<embedded>` or `<string>`.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, with the key path.
        message: String,
    },
    /// A value that parses but is not allowed.
    #[error("{file}:{}{key}: {message}", line.map(|l| format!("{l}: ")).unwrap_or_default())]
    Invalid {
        /// The file, `<embedded>` or `<string>`.
        file: String,
        /// 1-based line, when found.
        line: Option<usize>,
        /// The dotted key path.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Config {
    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, Some(path))
    }

    /// Parses and validates `text`; relative paths resolve against `source`'s directory, or
    /// the current directory without a source.
    pub fn parse(text: &str, source: Option<&Path>) -> Result<Config, ConfigError> {
        let file = source.map_or_else(|| "<string>".to_owned(), |p| p.display().to_string());
        Parser { text, file }.parse(source)
    }

    /// The embedded default: proxy on 127.0.0.1:8080, admin on 127.0.0.1:8081, data in
    /// `./atoll-data`, no tenants, built-in limits.
    pub fn embedded_default() -> Config {
        Parser {
            text: DEFAULT_CONFIG_YAML,
            file: "<embedded>".to_owned(),
        }
        .parse(None)
        .expect("the embedded default config is valid")
    }

    /// Checks that every function's component file exists, naming the config line when not.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        let text = match &self.source {
            Some(path) => std::fs::read_to_string(path).unwrap_or_default(),
            None => String::new(),
        };
        let parser = Parser {
            text: &text,
            file: self
                .source
                .as_ref()
                .map_or_else(|| "<string>".to_owned(), |p| p.display().to_string()),
        };
        for (tenant, t) in &self.tenants {
            for (function, f) in &t.functions {
                if !f.wasm.is_file() {
                    return Err(parser.invalid(
                        &["tenants", tenant, "functions", function, "wasm"],
                        format!("component file {} does not exist", f.wasm.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Limits as written in a config or an admin request: any key may be missing, and missing
/// keys inherit (see [`LimitsSpec::over`]). Serialized with units, as written.
#[derive(Debug, Serialize, Deserialize, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear memory per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// CPU time per request.
    #[serde(default, with = "units::span", skip_serializing_if = "Option::is_none")]
    pub cpu_time: Option<Duration>,
    /// Wall-clock time per request.
    #[serde(default, with = "units::span", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Instances at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Requests per second (0: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u32>,
    /// Largest request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<ByteSize>,
    /// Longest wait for a concurrency slot.
    #[serde(default, with = "units::span", skip_serializing_if = "Option::is_none")]
    pub queue_wait: Option<Duration>,
    /// Functions the tenant may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<u32>,
    /// Routes across its functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<u32>,
    /// Bytes of config variables across its functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_bytes: Option<ByteSize>,
    /// API tokens it may have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u32>,
}

impl From<&Limits> for LimitsSpec {
    fn from(limits: &Limits) -> LimitsSpec {
        LimitsSpec {
            memory: Some(limits.memory),
            cpu_time: Some(limits.cpu_time),
            timeout: Some(limits.timeout),
            concurrency: Some(limits.concurrency),
            rate: Some(limits.rate),
            request_body: Some(limits.request_body),
            queue_wait: Some(limits.queue_wait),
            functions: Some(limits.functions),
            routes: Some(limits.routes),
            config_bytes: Some(limits.config_bytes),
            tokens: Some(limits.tokens),
        }
    }
}

impl LimitsSpec {
    /// These limits, with every missing key taken from `base`.
    pub fn over(&self, base: &Limits) -> Limits {
        Limits {
            memory: self.memory.unwrap_or(base.memory),
            cpu_time: self.cpu_time.unwrap_or(base.cpu_time),
            timeout: self.timeout.unwrap_or(base.timeout),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
            rate: self.rate.unwrap_or(base.rate),
            request_body: self.request_body.unwrap_or(base.request_body),
            queue_wait: self.queue_wait.unwrap_or(base.queue_wait),
            functions: self.functions.unwrap_or(base.functions),
            routes: self.routes.unwrap_or(base.routes),
            config_bytes: self.config_bytes.unwrap_or(base.config_bytes),
            tokens: self.tokens.unwrap_or(base.tokens),
        }
    }
}

#[cfg(test)]
mod tests;
