//! A blocking client of the admin API for the commands: one call at a time, JSON in and out,
//! and failures turned into sentences that say what the API answered and what to try.

use anyhow::Context as _;
use reqwest::Method;

use super::Connection;

/// The admin API of one gateway, as one caller.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// What a call sends.
pub enum Payload {
    /// No body.
    Empty,
    /// Raw bytes with their content type.
    Bytes(&'static str, Vec<u8>),
}

impl AdminClient {
    /// A client for `connection`.
    pub fn new(connection: &Connection) -> anyhow::Result<AdminClient> {
        Ok(AdminClient {
            base: connection.admin.trim_end_matches('/').to_owned(),
            token: connection.token.clone().filter(|t| !t.trim().is_empty()),
            http: reqwest::Client::new(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        })
    }

    /// `method path` with `payload`; the answer's JSON (`null` for an empty one) when it
    /// succeeded, else an error naming the status, the API's code and message, and a hint.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        payload: Payload,
    ) -> anyhow::Result<serde_json::Value> {
        let response = self.send(method, path, payload)?;
        self.runtime.block_on(async {
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .context("reading the admin API's answer")?;
            let body: serde_json::Value = if bytes.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
                })
            };
            if status.is_success() {
                return Ok(body);
            }
            Err(api_error(status, &body))
        })
    }

    /// `GET path`, its answer streamed to `out`; returns the bytes written.
    pub fn download(&self, path: &str, out: &mut impl std::io::Write) -> anyhow::Result<u64> {
        let mut response = self.send(Method::GET, path, Payload::Empty)?;
        self.runtime.block_on(async {
            let status = response.status();
            if !status.is_success() {
                let body = response.json().await.unwrap_or_default();
                return Err(api_error(status, &body));
            }
            let mut written = 0u64;
            while let Some(chunk) = response.chunk().await.context("reading the download")? {
                out.write_all(&chunk)?;
                written += chunk.len() as u64;
            }
            Ok(written)
        })
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        payload: Payload,
    ) -> anyhow::Result<reqwest::Response> {
        let token = self.token.as_deref().ok_or_else(|| {
            anyhow::anyhow!("no token: pass --token or set ATOLL_TOKEN (the operator's token is in <data_dir>/admin.token)")
        })?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        request = match payload {
            Payload::Empty => request,
            Payload::Bytes(content_type, bytes) => {
                request.header("content-type", content_type).body(bytes)
            }
        };
        self.runtime.block_on(request.send()).map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the admin API at {}: {e}; is `atoll serve` running there (--admin or ATOLL_ADMIN)?",
                self.base
            )
        })
    }
}

/// The sentence for a refused call: `404 not_found: no tenant `x` (hint)`.
fn api_error(status: reqwest::StatusCode, body: &serde_json::Value) -> anyhow::Error {
    let code = body["error"]["code"].as_str().unwrap_or("error");
    let message = body["error"]["message"]
        .as_str()
        .or_else(|| body.as_str())
        .unwrap_or("no details");
    let hint = match status.as_u16() {
        401 => " (check --token or ATOLL_TOKEN)",
        403 => " (a tenant token only reaches its own tenant; this may need the operator's)",
        413 => " (larger than the gateway allows: max_upload)",
        503 => " (the gateway cannot take changes now; retry)",
        507 => " (the gateway's disk is full; free space on data_dir and retry)",
        _ => "",
    };
    anyhow::anyhow!("{} {code}: {message}{hint}", status.as_u16())
}

/// `segment` made safe for a URL path.
pub fn escape(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
