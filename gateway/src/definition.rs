//! What a tenant is, checked in one place. The config file's `tenants.<name>` and the admin
//! API's `PUT /v1/tenants/{t}` (and the records it journals) both become a
//! [`TenantDefinition`] through [`TenantDefinition::check`]; functions' and origins' names,
//! routes and config variables go through the checks here too. So both sources accept and
//! refuse exactly the same things, and each reports an [`Invalid`] its own way: the config
//! file with the key's path and line, the admin API with an error code.

use std::collections::BTreeMap;

use crate::config::{Limits, LimitsSpec, PoolConfig};
use crate::outbound::OriginPattern;
use crate::routes::{HostPattern, Route};

/// The most config variables a function may have.
pub const MAX_CONFIG_VARIABLES: usize = 256;
/// The largest config value, in bytes.
pub const MAX_CONFIG_VALUE: usize = 64 << 10;

/// A tenant's own settings, checked: hosts, limits and outbound allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDefinition {
    /// The hosts the tenant may route.
    pub hosts: Vec<HostPattern>,
    /// Its limits: its own keys over the gateway-wide defaults.
    pub limits: Limits,
    /// What its functions may fetch: `scheme://host[:port]`, host possibly `*.suffix`.
    pub outbound_allow: Vec<String>,
}

/// What part of a definition is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A tenant's, function's or origin's name.
    Name,
    /// A host pattern.
    Host,
    /// A limit, or limits the pool cannot hold.
    Limit,
    /// An outbound allow-list entry.
    Outbound,
    /// A route that does not parse.
    Route,
    /// A route on a host outside the tenant's hosts.
    ForeignHost,
    /// A config variable.
    Config,
    /// More functions, routes, config bytes or tokens than the tenant's limits allow.
    Quota,
}

impl Field {
    /// The admin API's `error.code` for it.
    pub fn code(self) -> &'static str {
        match self {
            Field::Name => "invalid_name",
            Field::Host => "invalid_host",
            Field::Limit => "invalid_limit",
            Field::Outbound => "invalid_outbound",
            Field::Route | Field::ForeignHost => "invalid_route",
            Field::Config => "invalid_config",
            Field::Quota => "quota_exceeded",
        }
    }
}

/// Why a definition is refused: the field, its key under the tenant (`hosts`,
/// `limits.memory`, `outbound.allow`, `routes`...) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What kind of setting it is.
    pub field: Field,
    /// The dotted key under the tenant (or function, for routes and config).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    fn new(field: Field, key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            field,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl TenantDefinition {
    /// Checks tenant `name`'s settings as written: its name, each host pattern, its limits
    /// over `defaults` within the `pool`'s ceilings, and each outbound allow-list entry.
    pub fn check(
        name: &str,
        hosts: &[String],
        limits: &LimitsSpec,
        outbound_allow: &[String],
        (defaults, pool): (&Limits, &PoolConfig),
    ) -> Result<TenantDefinition, Invalid> {
        check_name("tenant", name).map_err(|message| Invalid::new(Field::Name, "", message))?;
        let hosts = hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Invalid::new(Field::Host, "hosts", e.to_string()))?;
        let limits = limits.over(defaults);
        pool.check(&limits).map_err(|(key, message)| {
            Invalid::new(Field::Limit, format!("limits.{key}"), message)
        })?;
        for origin in outbound_allow {
            OriginPattern::parse(origin).map_err(|why| {
                Invalid::new(
                    Field::Outbound,
                    "outbound.allow",
                    format!("`{origin}`: {why}"),
                )
            })?;
        }
        Ok(TenantDefinition {
            hosts,
            limits,
            outbound_allow: outbound_allow.to_vec(),
        })
    }

    /// Parses `text` as one of tenant `tenant`'s routes ([`check_route`]).
    pub fn route(&self, tenant: &str, text: &str) -> Result<Route, Invalid> {
        let route = parse_route(text)?;
        check_route(tenant, &self.hosts, &route)?;
        Ok(route)
    }
}

/// Whether tenant `tenant`, with `hosts`, may serve `route`: a host-less route (`/PATH`, which
/// only the operator may deploy), or one on a host inside its hosts.
pub fn check_route(tenant: &str, hosts: &[HostPattern], route: &Route) -> Result<(), Invalid> {
    if *route.host() == HostPattern::Any || hosts.iter().any(|h| h.covers(route.host())) {
        return Ok(());
    }
    Err(Invalid::new(
        Field::ForeignHost,
        "routes",
        format!(
            "route `{route}`: host `{}` is not in tenant `{tenant}`'s hosts",
            route.host()
        ),
    ))
}

/// Parses a route as written, wherever it is going.
pub fn parse_route(text: &str) -> Result<Route, Invalid> {
    Route::parse(text).map_err(|e| Invalid::new(Field::Route, "routes", e.to_string()))
}

/// What a tenant holds, counted against the quota keys of its limits (`functions`, `routes`,
/// `config_bytes`, `tokens`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Functions (origins count too: they hold routes the same way).
    pub functions: usize,
    /// Routes across them.
    pub routes: usize,
    /// Bytes of config variables, names and values, across them.
    pub config_bytes: usize,
    /// API tokens.
    pub tokens: usize,
}

impl Holdings {
    /// The bytes `variables` count for.
    pub fn config_bytes_of(variables: &BTreeMap<String, String>) -> usize {
        variables.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Checks these holdings against `limits`: the first one over its limit is refused.
    pub fn check(&self, limits: &Limits) -> Result<(), Invalid> {
        let over = |key: &str, held: usize, limit: u64, what: &str| {
            Invalid::new(
                Field::Quota,
                key,
                format!("{held} {what}: this tenant's limit is {limit} (limits.{key})"),
            )
        };
        if self.functions as u64 > u64::from(limits.functions) {
            return Err(over(
                "functions",
                self.functions,
                limits.functions.into(),
                "functions",
            ));
        }
        if self.routes as u64 > u64::from(limits.routes) {
            return Err(over("routes", self.routes, limits.routes.into(), "routes"));
        }
        if self.config_bytes as u64 > limits.config_bytes.0 {
            return Err(over(
                "config_bytes",
                self.config_bytes,
                limits.config_bytes.0,
                "bytes of config variables",
            ));
        }
        if self.tokens as u64 > u64::from(limits.tokens) {
            return Err(over("tokens", self.tokens, limits.tokens.into(), "tokens"));
        }
        Ok(())
    }
}

/// Whether `name` is a valid tenant, function or origin name: `^[a-z0-9][a-z0-9-]{0,62}$`.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=63).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Checks the name of a `what` (`tenant`, `function`, `origin`).
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{what} name `{name}` must match ^[a-z0-9][a-z0-9-]{{0,62}}$"
        ))
    }
}

/// Checks a function's name ([`check_name`]) as an [`Invalid`] at `key`.
pub fn check_function_name(name: &str) -> Result<(), Invalid> {
    check_name("function", name).map_err(|message| Invalid::new(Field::Name, "", message))
}

/// Checks a function's config variables: at most [`MAX_CONFIG_VARIABLES`], names of letters,
/// digits, `_`, `-` and `.` (1 to 128 of them), values up to [`MAX_CONFIG_VALUE`] bytes. The
/// error names the key, never a value (values may be secrets).
pub fn check_config_variables(variables: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let invalid = |message: String| Invalid::new(Field::Config, "config", message);
    if variables.len() > MAX_CONFIG_VARIABLES {
        return Err(invalid(format!(
            "{} variables: at most {MAX_CONFIG_VARIABLES}",
            variables.len()
        )));
    }
    for (key, value) in variables {
        let valid = (1..=128).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(invalid(format!(
                "variable name `{key}`: use 1 to 128 letters, digits, `_`, `-` or `.`"
            )));
        }
        if value.len() > MAX_CONFIG_VALUE {
            return Err(invalid(format!(
                "the value of `{key}` is over {MAX_CONFIG_VALUE} bytes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        hosts: &[&str],
        limits: LimitsSpec,
        allow: &[&str],
    ) -> Result<TenantDefinition, Invalid> {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let allow: Vec<String> = allow.iter().map(|a| a.to_string()).collect();
        TenantDefinition::check(
            "acme",
            &hosts,
            &limits,
            &allow,
            (&Limits::default(), &PoolConfig::default()),
        )
    }

    #[test]
    fn a_good_definition_inherits_missing_limits() {
        let spec = LimitsSpec {
            rate: Some(5),
            ..LimitsSpec::default()
        };
        let definition = check(&["acme.test", "*.acme.test"], spec, &["https://api.test"]).unwrap();
        assert_eq!(definition.limits.rate, 5);
        assert_eq!(definition.limits.memory, Limits::default().memory);
        assert_eq!(definition.hosts.len(), 2);
    }

    #[test]
    fn each_bad_field_is_named_with_its_key() {
        let bad_host = check(&["bad host"], LimitsSpec::default(), &[]).unwrap_err();
        assert_eq!(
            (bad_host.field, bad_host.key.as_str()),
            (Field::Host, "hosts")
        );
        let huge = LimitsSpec {
            memory: Some(crate::config::ByteSize(1 << 40)),
            ..LimitsSpec::default()
        };
        let too_big = check(&[], huge, &[]).unwrap_err();
        assert_eq!(
            (too_big.field, too_big.key.as_str()),
            (Field::Limit, "limits.memory")
        );
        let bad_allow = check(&[], LimitsSpec::default(), &["nope"]).unwrap_err();
        assert_eq!(bad_allow.field, Field::Outbound);
        assert!(bad_allow.message.contains("`nope`"), "{bad_allow}");
        let bad_name = TenantDefinition::check(
            "Acme",
            &[],
            &LimitsSpec::default(),
            &[],
            (&Limits::default(), &PoolConfig::default()),
        )
        .unwrap_err();
        assert_eq!(bad_name.field, Field::Name);
    }

    #[test]
    fn routes_stay_inside_the_tenants_hosts() {
        let definition = check(&["*.acme.test"], LimitsSpec::default(), &[]).unwrap();
        assert!(definition.route("acme", "api.acme.test/x").is_ok());
        assert!(definition.route("acme", "/x").is_ok(), "host-less");
        let foreign = definition.route("acme", "globex.test/x").unwrap_err();
        assert_eq!(foreign.field, Field::ForeignHost);
        assert_eq!(
            definition.route("acme", "no-slash").unwrap_err().field,
            Field::Route
        );
    }

    #[test]
    fn holdings_past_a_quota_are_refused_naming_the_limit() {
        let limits = Limits {
            functions: 2,
            routes: 3,
            ..Limits::default()
        };
        let mut held = Holdings {
            functions: 2,
            routes: 3,
            ..Holdings::default()
        };
        assert!(held.check(&limits).is_ok());
        held.functions = 3;
        let error = held.check(&limits).unwrap_err();
        assert_eq!(
            (error.field, error.key.as_str()),
            (Field::Quota, "functions")
        );
        assert!(error.message.contains("limits.functions"), "{error}");
        held.functions = 1;
        held.routes = 4;
        assert_eq!(held.check(&limits).unwrap_err().key, "routes");
    }

    #[test]
    fn config_variables_are_bounded_and_never_echo_values() {
        let mut variables = BTreeMap::new();
        variables.insert("ok_key".to_owned(), "secret".to_owned());
        assert!(check_config_variables(&variables).is_ok());
        variables.insert("bad key".to_owned(), "s3cr3t".to_owned());
        let error = check_config_variables(&variables).unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        let many: BTreeMap<String, String> = (0..=MAX_CONFIG_VARIABLES)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(check_config_variables(&many).is_err());
    }
}
