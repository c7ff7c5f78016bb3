//! `atoll deploy`: uploads a component to the admin API and says what happened, in words.

use std::path::PathBuf;

use reqwest::Method;

use super::Connection;
use super::client::{AdminClient, Payload, escape};

/// What to deploy, and where.
#[derive(Debug, clap::Args)]
pub struct Request {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The function.
    #[arg(long)]
    pub function: String,
    /// A route for it (repeatable); without any, the function keeps its routes.
    #[arg(long = "route")]
    pub routes: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
    /// The component (`.wasm`).
    pub file: PathBuf,
}

/// Deploys and prints the new version; an error says what went wrong and what to do.
pub fn run(request: &Request) -> anyhow::Result<()> {
    let bytes = std::fs::read(&request.file)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", request.file.display()))?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for route in &request.routes {
        query.append_pair("route", route);
    }
    let query = query.finish();
    let path = format!(
        "/v1/tenants/{}/functions/{}{}{}",
        escape(&request.tenant),
        escape(&request.function),
        if query.is_empty() { "" } else { "?" },
        query
    );
    let client = AdminClient::new(&request.connection)?;
    let body = client
        .call(
            Method::PUT,
            &path,
            Payload::Bytes("application/wasm", bytes),
        )
        .map_err(|e| anyhow::anyhow!("deploy refused: {e}"))?;
    println!(
        "deployed {}/{} version {} ({:.0} ms to compile), routes: {}",
        request.tenant,
        request.function,
        body["version"].as_str().unwrap_or("?"),
        body["compile_ms"].as_f64().unwrap_or(0.0),
        body["routes"]
            .as_array()
            .map(|r| r
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "none".to_owned())
    );
    Ok(())
}
