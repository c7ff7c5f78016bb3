//! `atoll deploy`: uploads a component to the admin API and says what happened, in words.

use std::path::PathBuf;

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
    /// The admin API.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin: String,
    /// A token: the operator's or the tenant's.
    #[arg(long, env = "ATOLL_TOKEN", hide_env_values = true)]
    pub token: String,
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
    let url = format!(
        "{}/v1/tenants/{}/functions/{}{}{}",
        request.admin.trim_end_matches('/'),
        request.tenant,
        request.function,
        if query.is_empty() { "" } else { "?" },
        query
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .put(&url)
            .bearer_auth(&request.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the admin API at {}: {e}; is `atoll serve` running there?",
                    request.admin
                )
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::Ok((status, body))
    })?;
    if status.is_success() {
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
        return Ok(());
    }
    let message = body["error"]["message"].as_str().unwrap_or("no details");
    let hint = match status.as_u16() {
        401 => " (check --token or ATOLL_TOKEN)",
        403 => " (a tenant token only reaches its own tenant and hosts)",
        413 => " (the component is larger than the gateway's max_upload)",
        _ => "",
    };
    anyhow::bail!("deploy refused: {status}: {message}{hint}")
}
