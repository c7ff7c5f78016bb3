//! From the YAML shapes of [`raw`](super::raw) to a checked [`Config`](super::Config):
//! defaults filled in, tenants checked through [`crate::definition`], routes owned once, and
//! every error located at its file, line and key.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::*;
use super::*;
use crate::definition::Holdings;

/// One parse: the text and its file name, for errors.
pub(super) struct Parser<'a> {
    pub(super) text: &'a str,
    pub(super) file: String,
}

impl Parser<'_> {
    pub(super) fn invalid(&self, path: &[&str], message: String) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: locate::line_of(self.text, path),
            key: path.join("."),
            message,
        }
    }

    pub(super) fn parse(&self, source: Option<&Path>) -> Result<Config, ConfigError> {
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
        let threads = raw.threads.unwrap_or_else(super::default_threads);
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
        let held = Holdings {
            functions: functions.len() + origins.len(),
            routes: functions.values().map(|f| f.routes.len()).sum::<usize>()
                + origins.values().map(|o| o.routes.len()).sum::<usize>(),
            config_bytes: functions
                .values()
                .map(|f| Holdings::config_bytes_of(&f.config))
                .sum(),
            tokens: 0,
        };
        held.check(&definition.limits)
            .map_err(|e| self.invalid_at(&["tenants", name], &e))?;
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
