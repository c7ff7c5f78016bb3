//! The configuration as written: the serde shapes of the YAML, every key optional where it has
//! a default, unknown keys refused. [`parse`](super::parse) turns them into a [`Config`](super::Config).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::units::{self, ByteSize};
use super::{LimitsSpec, Observability};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) listen: RawListen,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) threads: Option<usize>,
    #[serde(default)]
    pub(super) limits: LimitsSpec,
    #[serde(default)]
    pub(super) pool: RawPool,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) shutdown_grace: Option<Duration>,
    pub(super) response_body: Option<ByteSize>,
    pub(super) max_upload: Option<ByteSize>,
    pub(super) keep_versions: Option<usize>,
    #[serde(default)]
    pub(super) observability: Observability,
    #[serde(default)]
    pub(super) outbound: RawGatewayOutbound,
    #[serde(default)]
    pub(super) tls: RawTls,
    #[serde(default)]
    pub(super) cache: RawCache,
    #[serde(default)]
    pub(super) kv: RawKv,
    #[serde(default)]
    pub(super) tenants: BTreeMap<String, RawTenant>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGatewayOutbound {
    pub(super) max_requests: Option<u32>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) first_byte_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) between_bytes_timeout: Option<Duration>,
    pub(super) ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    pub(super) http: Option<SocketAddr>,
    pub(super) admin: Option<SocketAddr>,
    pub(super) https: Option<SocketAddr>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKv {
    pub(super) max_keys: Option<u64>,
    pub(super) max_bytes: Option<ByteSize>,
    pub(super) max_value: Option<ByteSize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) tenant_size: Option<ByteSize>,
    pub(super) max_object: Option<ByteSize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificate {
    pub(super) hosts: Vec<String>,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) total_instances: Option<u32>,
    pub(super) max_memory: Option<ByteSize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    #[serde(default)]
    pub(super) hosts: Vec<String>,
    #[serde(default)]
    pub(super) limits: LimitsSpec,
    #[serde(default)]
    pub(super) outbound: RawOutbound,
    #[serde(default)]
    pub(super) functions: BTreeMap<String, RawFunction>,
    #[serde(default)]
    pub(super) origins: BTreeMap<String, RawOrigin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrigin {
    pub(super) url: String,
    #[serde(default)]
    pub(super) routes: Vec<String>,
    pub(super) host: Option<String>,
    pub(super) strip_prefix: Option<String>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) connect_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "units::opt_duration")]
    pub(super) read_timeout: Option<Duration>,
    pub(super) ca_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutbound {
    #[serde(default)]
    pub(super) allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunction {
    pub(super) wasm: PathBuf,
    #[serde(default)]
    pub(super) routes: Vec<String>,
    #[serde(default)]
    pub(super) config: BTreeMap<String, String>,
}
