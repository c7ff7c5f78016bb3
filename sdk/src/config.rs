//! The function's config variables, set at deploy time (the config file's
//! `functions.<name>.config`, or `PUT /v1/tenants/{t}/functions/{f}/config`), read through the
//! standard `wasi:config/store` interface.
//!
//! ```no_run
//! let origin = atoll_sdk::config::get("origin")
//!     .ok()
//!     .flatten()
//!     .unwrap_or_else(|| "https://example.com".to_owned());
//! ```

use std::fmt;

use crate::bindings::wasi::config::store;

/// Why the variables could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading config variables failed: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl From<store::Error> for ConfigError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::Upstream(why) | store::Error::Io(why) => ConfigError(why),
        }
    }
}

/// The value of the variable `key`, or `None` when it is not set.
pub fn get(key: &str) -> Result<Option<String>, ConfigError> {
    Ok(store::get(key)?)
}

/// Every variable, as `(key, value)` pairs.
pub fn get_all() -> Result<Vec<(String, String)>, ConfigError> {
    Ok(store::get_all()?)
}
