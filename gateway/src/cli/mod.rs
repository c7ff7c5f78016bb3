//! The `atoll` commands that talk to a running gateway's admin API: what they share (where the
//! API is, whose token, how to print) and one module per command group.
//!
//! Every command takes `--admin URL` (or `ATOLL_ADMIN`, default `http://127.0.0.1:8081`) and
//! `--token` (or `ATOLL_TOKEN`); results print as a table, or as the API's JSON with `--json`.
//! Errors name the API's status and code and, where one helps, a hint ([`client`]).

pub mod backup;
pub mod client;
pub mod deploy;
pub mod table;
pub mod tokens;

/// Where the admin API is and who is calling it.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The admin API's base URL.
    #[arg(
        long,
        env = "ATOLL_ADMIN",
        default_value = "http://127.0.0.1:8081",
        global = true
    )]
    pub admin: String,
    /// A token: the operator's or a tenant's.
    #[arg(long, env = "ATOLL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// How a command prints what it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// The API's JSON, one document, for scripts.
    Json,
}

impl Format {
    /// `--json` or not.
    pub fn from_flag(json: bool) -> Format {
        if json { Format::Json } else { Format::Table }
    }
}

/// Prints `value` as JSON on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}
