//! The gateway's admin API as the load tester uses it, as the operator: tenants, deploys, and
//! the Prometheus exposition.

use anyhow::Context as _;
use bytes::Bytes;

/// The gateway's admin API, as the operator.
#[derive(Debug, Clone)]
pub struct Admin {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Admin {
    /// The admin API at `base` (`http://127.0.0.1:8081`) with the operator `token`.
    pub fn new(base: &str, token: &str) -> Admin {
        Admin {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn check(response: reqwest::Response, what: &str) -> anyhow::Result<()> {
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{what}: {status}: {body}")
    }

    /// Creates or updates tenant `name` routing `hosts`, with the gateway's default limits.
    pub async fn put_tenant(&self, name: &str, hosts: &[String]) -> anyhow::Result<()> {
        self.put_tenant_spec(name, &serde_json::json!({ "hosts": hosts }))
            .await
    }

    /// Creates or updates tenant `name` as `spec` says (`{"hosts": [...], "limits": {...}}`).
    pub async fn put_tenant_spec(
        &self,
        name: &str,
        spec: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let response = self
            .client
            .put(format!("{}/v1/tenants/{name}", self.base))
            .bearer_auth(&self.token)
            .json(spec)
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        Self::check(response, &format!("creating tenant {name}")).await
    }

    /// Deploys `wasm` as `tenant`'s `function` on `route`.
    pub async fn deploy(
        &self,
        tenant: &str,
        function: &str,
        route: &str,
        wasm: Bytes,
    ) -> anyhow::Result<()> {
        let response = self
            .client
            .put(format!(
                "{}/v1/tenants/{tenant}/functions/{function}",
                self.base
            ))
            .query(&[("route", route)])
            .bearer_auth(&self.token)
            .header(http::header::CONTENT_TYPE, "application/wasm")
            .body(wasm)
            .send()
            .await
            .with_context(|| format!("reaching the admin API at {}", self.base))?;
        Self::check(response, &format!("deploying {tenant}/{function}")).await
    }

    /// The Prometheus exposition on `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
}
