//! The YAML configuration: its schema, defaults, units and validation.
//!
//! [`Config::load`] reads a file, [`Config::parse`] a string, [`Config::embedded_default`] gives
//! the config `atoll serve` uses without `--config`. Everything is validated here, once: unknown
//! keys, bad units, bad names, routes outside a tenant's hosts, duplicate routes, limits above
//! the pool's ceilings. Every error names the file, the line and the key
//! (`config/atoll.yaml:12: tenants.demo.limits.memory: …`). Relative paths are relative to the
//! config file's directory. This module knows nothing of the rest of the gateway but the route
//! syntax. Every key and default is listed in `docs/configuration.md`.

mod locate;
mod units;

use std::collections::{BTreeMap, HashMap};
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
    /// Proxy worker threads. Default 2.
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: RawListen,
    data_dir: Option<PathBuf>,
    threads: Option<usize>,
    #[serde(default)]
    limits: LimitsSpec,
    #[serde(default)]
    pool: RawPool,
    #[serde(default, deserialize_with = "units::opt_duration")]
    shutdown_grace: Option<Duration>,
    response_body: Option<ByteSize>,
    max_upload: Option<ByteSize>,
    keep_versions: Option<usize>,
    #[serde(default)]
    observability: Observability,
    #[serde(default)]
    outbound: RawGatewayOutbound,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    kv: RawKv,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGatewayOutbound {
    max_requests: Option<u32>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    first_byte_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    between_bytes_timeout: Option<Duration>,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawListen {
    http: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    https: Option<SocketAddr>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKv {
    max_keys: Option<u64>,
    max_bytes: Option<ByteSize>,
    max_value: Option<ByteSize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    tenant_size: Option<ByteSize>,
    max_object: Option<ByteSize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCertificate {
    hosts: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
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
    #[serde(
        default,
        deserialize_with = "units::opt_duration",
        serialize_with = "units::ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_time: Option<Duration>,
    /// Wall-clock time per request.
    #[serde(
        default,
        deserialize_with = "units::opt_duration",
        serialize_with = "units::ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
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
    #[serde(
        default,
        deserialize_with = "units::opt_duration",
        serialize_with = "units::ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_wait: Option<Duration>,
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
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPool {
    total_instances: Option<u32>,
    max_memory: Option<ByteSize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    limits: LimitsSpec,
    #[serde(default)]
    outbound: RawOutbound,
    #[serde(default)]
    functions: BTreeMap<String, RawFunction>,
    #[serde(default)]
    origins: BTreeMap<String, RawOrigin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    url: String,
    #[serde(default)]
    routes: Vec<String>,
    host: Option<String>,
    strip_prefix: Option<String>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    read_timeout: Option<Duration>,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    wasm: PathBuf,
    #[serde(default)]
    routes: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

/// One parse: the text and its file name, for errors.
struct Parser<'a> {
    text: &'a str,
    file: String,
}

impl Parser<'_> {
    fn invalid(&self, path: &[&str], message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: locate::line_of(self.text, path),
            key: path.join("."),
            message,
        }
    }

    fn parse(&self, source: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = if locate::is_blank(self.text) {
            RawConfig::default()
        } else {
            // serde's own path stops at the enclosing mapping of a flow mapping's key
            // (`limits: {memory: lots}`); the path to the error names the key itself.
            let yaml = serde_norway::Deserializer::from_str(self.text);
            serde_path_to_error::deserialize(yaml)
                .map_err(|e| self.syntax(&e.path().to_string(), e.inner()))?
        };
        let base = source
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };

        let pool = PoolConfig {
            total_instances: raw.pool.total_instances.unwrap_or(1000),
            max_memory: raw.pool.max_memory.unwrap_or(ByteSize(256 << 20)),
        };
        let limits = raw.limits.over(&Limits::default());
        self.check_limits(&["limits"], &limits, &pool)?;
        let keep_versions = raw.keep_versions.unwrap_or(10);
        if keep_versions == 0 {
            return Err(self.invalid(&["keep_versions"], "keep at least 1 version".to_owned()));
        }
        let threads = raw.threads.unwrap_or(2);
        if !(1..=256).contains(&threads) {
            return Err(self.invalid(&["threads"], format!("{threads} threads: use 1 to 256")));
        }
        let listen = Listen {
            http: raw.listen.http.unwrap_or(([127, 0, 0, 1], 8080).into()),
            admin: raw.listen.admin.unwrap_or(([127, 0, 0, 1], 8081).into()),
            https: raw.listen.https,
        };
        if listen.http == listen.admin && listen.http.port() != 0 {
            return Err(self.invalid(
                &["listen", "admin"],
                format!(
                    "the admin listener cannot share {} with the proxy",
                    listen.http
                ),
            ));
        }
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./atoll-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(self.invalid(&["data_dir"], "data_dir cannot be empty".to_owned()));
        }

        let outbound = self.gateway_outbound(&raw.outbound, &resolve)?;
        let tls = self.tls(&raw.tls, &resolve)?;
        if listen.https.is_some() && tls.certificates.is_empty() {
            return Err(self.invalid(
                &["listen", "https"],
                "the https listener needs tls.certificates".to_owned(),
            ));
        }
        if let Some(https) = listen.https
            && https.port() != 0
            && (https == listen.http || https == listen.admin)
        {
            return Err(self.invalid(
                &["listen", "https"],
                format!("{https} is already another listener's"),
            ));
        }

        let mut tenants = BTreeMap::new();
        // Which function holds each route, for duplicate errors naming both.
        let mut route_owners: HashMap<Route, String> = HashMap::new();
        for (tenant_name, raw_tenant) in &raw.tenants {
            let tenant = self.tenant(
                tenant_name,
                raw_tenant,
                &limits,
                &pool,
                &resolve,
                &mut route_owners,
            )?;
            tenants.insert(tenant_name.clone(), tenant);
        }
        Ok(Config {
            listen,
            data_dir: resolve(&data_dir),
            threads,
            limits,
            pool,
            shutdown_grace: raw.shutdown_grace.unwrap_or(Duration::from_secs(5)),
            response_body: raw.response_body.unwrap_or(ByteSize(DEFAULT_RESPONSE_BODY)),
            max_upload: raw.max_upload.unwrap_or(ByteSize(50 << 20)),
            keep_versions,
            observability: raw.observability,
            outbound,
            tls,
            cache: CacheSettings {
                tenant_size: usize::try_from(
                    raw.cache
                        .tenant_size
                        .map_or(CacheSettings::default().tenant_size as u64, |s| s.0),
                )
                .unwrap_or(usize::MAX),
                max_object: usize::try_from(
                    raw.cache
                        .max_object
                        .map_or(CacheSettings::default().max_object as u64, |s| s.0),
                )
                .unwrap_or(usize::MAX),
            },
            kv: KvSettings {
                max_keys: raw.kv.max_keys.unwrap_or(KvSettings::default().max_keys),
                max_bytes: raw
                    .kv
                    .max_bytes
                    .map_or(KvSettings::default().max_bytes, |s| s.0),
                max_value: raw
                    .kv
                    .max_value
                    .map_or(KvSettings::default().max_value, |s| s.0),
            },
            tenants,
            source: source.map(Path::to_owned),
        })
    }

    fn tls(
        &self,
        raw: &RawTls,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<TlsConfig, ConfigError> {
        let mut certificates = Vec::new();
        for (i, c) in raw.certificates.iter().enumerate() {
            if c.hosts.is_empty() {
                return Err(self.invalid(
                    &["tls", "certificates"],
                    format!(
                        "certificate {} ({}) needs its hosts",
                        i + 1,
                        c.cert.display()
                    ),
                ));
            }
            let hosts = c
                .hosts
                .iter()
                .map(|h| HostPattern::parse(h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.invalid(&["tls", "certificates"], e.to_string()))?;
            certificates.push(CertificateConfig {
                hosts,
                cert: resolve(&c.cert),
                key: resolve(&c.key),
            });
        }
        Ok(TlsConfig { certificates })
    }

    fn gateway_outbound(
        &self,
        raw: &RawGatewayOutbound,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<OutboundConfig, ConfigError> {
        let defaults = OutboundSettings::default();
        let settings = OutboundSettings {
            max_requests: raw.max_requests.unwrap_or(defaults.max_requests),
            connect_timeout: raw.connect_timeout.unwrap_or(defaults.connect_timeout),
            first_byte_timeout: raw
                .first_byte_timeout
                .unwrap_or(defaults.first_byte_timeout),
            between_bytes_timeout: raw
                .between_bytes_timeout
                .unwrap_or(defaults.between_bytes_timeout),
        };
        for (key, value) in [
            ("connect_timeout", settings.connect_timeout),
            ("first_byte_timeout", settings.first_byte_timeout),
            ("between_bytes_timeout", settings.between_bytes_timeout),
        ] {
            if value.is_zero() {
                return Err(
                    self.invalid(&["outbound", key], "a timeout must be above 0".to_owned())
                );
            }
        }
        Ok(OutboundConfig {
            settings,
            ca_file: raw.ca_file.as_deref().map(resolve),
        })
    }

    fn tenant(
        &self,
        name: &str,
        raw: &RawTenant,
        defaults: &Limits,
        pool: &PoolConfig,
        resolve: &dyn Fn(&Path) -> PathBuf,
        route_owners: &mut HashMap<Route, String>,
    ) -> Result<TenantConfig, ConfigError> {
        let definition = TenantDefinition::check(
            name,
            &raw.hosts,
            &raw.limits,
            &raw.outbound.allow,
            (defaults, pool),
        )
        .map_err(|e| self.invalid_at(&["tenants", name], &e))?;
        let mut functions = BTreeMap::new();
        for (function_name, raw_function) in &raw.functions {
            let key = ["tenants", name, "functions", function_name.as_str()];
            check_function_name(function_name).map_err(|e| self.invalid_at(&key, &e))?;
            if raw_function.wasm.as_os_str().is_empty() {
                return Err(self.invalid(
                    &[&key[..], &["wasm"]].concat(),
                    "wasm cannot be empty".to_owned(),
                ));
            }
            check_config_variables(&raw_function.config).map_err(|e| self.invalid_at(&key, &e))?;
            let routes = self.routes(
                &[&key[..], &["routes"]].concat(),
                &raw_function.routes,
                (name, &definition),
                route_owners,
            )?;
            functions.insert(
                function_name.clone(),
                FunctionConfig {
                    wasm: resolve(&raw_function.wasm),
                    routes,
                    config: raw_function.config.clone(),
                },
            );
        }
        let mut origins = BTreeMap::new();
        for (origin_name, raw_origin) in &raw.origins {
            let key = ["tenants", name, "origins", origin_name.as_str()];
            check_name("origin", origin_name).map_err(|e| self.invalid(&key, e))?;
            if functions.contains_key(origin_name) {
                return Err(self.invalid(
                    &key,
                    format!("`{origin_name}` is already the name of a function of `{name}`"),
                ));
            }
            let at = |k: &'static str| [&key[..], &[k]].concat();
            let url = OriginUrl::parse(&raw_origin.url).map_err(|e| self.invalid(&at("url"), e))?;
            let host_header = match &raw_origin.host {
                Some(host) => HostHeader::parse(host).map_err(|e| self.invalid(&at("host"), e))?,
                None => HostHeader::Origin,
            };
            if let Some(prefix) = &raw_origin.strip_prefix
                && !prefix.starts_with('/')
            {
                return Err(self.invalid(
                    &at("strip_prefix"),
                    format!("`{prefix}` must start with `/`"),
                ));
            }
            for (k, timeout) in [
                ("connect_timeout", raw_origin.connect_timeout),
                ("read_timeout", raw_origin.read_timeout),
            ] {
                if timeout.is_some_and(|t| t.is_zero()) {
                    return Err(self.invalid(&at(k), "a timeout must be above 0".to_owned()));
                }
            }
            let routes = self.routes(
                &at("routes"),
                &raw_origin.routes,
                (name, &definition),
                route_owners,
            )?;
            origins.insert(
                origin_name.clone(),
                OriginConfig {
                    spec: OriginSpec {
                        url,
                        host_header,
                        strip_prefix: raw_origin.strip_prefix.clone(),
                        connect_timeout: raw_origin
                            .connect_timeout
                            .unwrap_or(Duration::from_secs(5)),
                        read_timeout: raw_origin.read_timeout.unwrap_or(Duration::from_secs(30)),
                        ca_file: raw_origin.ca_file.as_deref().map(resolve),
                    },
                    routes,
                },
            );
        }
        Ok(TenantConfig {
            definition,
            functions,
            origins,
        })
    }

    /// Parses a function's or origin's routes, each inside the tenant's hosts (or host-less)
    /// and not taken by another function or origin.
    fn routes(
        &self,
        route_key: &[&str],
        texts: &[String],
        (tenant, definition): (&str, &TenantDefinition),
        route_owners: &mut HashMap<Route, String>,
    ) -> Result<Vec<Route>, ConfigError> {
        let owner = route_key[..route_key.len() - 1].join(".");
        let mut routes = Vec::new();
        for text in texts {
            let route = definition
                .route(tenant, text)
                .map_err(|e| self.invalid(route_key, e.message))?;
            if let Some(previous) = route_owners.insert(route.clone(), owner.clone()) {
                return Err(self.invalid(
                    route_key,
                    format!("route `{route}` of {owner} is already taken by {previous}"),
                ));
            }
            routes.push(route);
        }
        Ok(routes)
    }

    /// `e`, found under the key path `under`.
    fn invalid_at(&self, under: &[&str], e: &Invalid) -> ConfigError {
        let key: Vec<&str> = under
            .iter()
            .copied()
            .chain(e.key.split('.').filter(|k| !k.is_empty()))
            .collect();
        self.invalid(&key, e.message.clone())
    }

    fn check_limits(
        &self,
        at: &[&str],
        limits: &Limits,
        pool: &PoolConfig,
    ) -> Result<(), ConfigError> {
        pool.check(limits)
            .map_err(|(key, message)| self.invalid(&[at, &[key]].concat(), message))
    }

    /// A parse error `e` at the dotted key path `path` (`.` when it is at the top).
    fn syntax(&self, path: &str, e: &serde_norway::Error) -> ConfigError {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = e.to_string();
        // The location is in the prefix already; drop serde's own " at line X column Y".
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        // Name the innermost key: the path to the error, or else the key at the error's
        // position, in place of serde's own path prefix (which stops at the enclosing mapping).
        let key = Some(path.to_owned())
            .filter(|p| p != ".")
            .or_else(|| locate::path_at(self.text, line, column));
        let message = match key {
            Some(key) if !key.is_empty() => match message.split_once(": ") {
                Some((prefix, rest)) if key.starts_with(prefix) => format!("{key}: {rest}"),
                _ => format!("{key}: {message}"),
            },
            _ => message,
        };
        ConfigError::Syntax {
            file: self.file.clone(),
            line,
            column,
            message,
        }
    }
}

#[cfg(test)]
mod tests;
