//! The one place where the proxy's own failures become HTTP responses: each [`GatewayError`]
//! gets its status and `error.code` from `contract.md`, and a JSON body
//! `{"error": {"code", "message", "request_id"}}`. Details beyond the message go to the log.

use bytes::Bytes;
use http::StatusCode;
use pingora::http::ResponseHeader;

use crate::admission::Rejection;
use crate::runtime::InvokeError;

use super::request_id::{HEADER as REQUEST_ID, RequestId};

/// A failure the gateway answers itself, instead of a guest's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No route matches the request.
    NoRoute,
    /// The request body is larger than the tenant's `request_body` limit.
    RequestTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The request could not be handed to a guest (for example an invalid URI).
    BadRequest(String),
    /// Over the tenant's `rate`.
    RateLimited {
        /// Whole seconds until a request would be admitted (at least 1).
        retry_after: u64,
    },
    /// The tenant's concurrency is full and its queue too.
    OverCapacity,
    /// The function's response is larger than the gateway's `response_body` cap.
    ResponseTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The function failed to produce a response.
    Invoke(InvokeError),
    /// The origin could not be reached, refused the connection or TLS, or broke the response.
    /// The detail is for the log.
    OriginUnreachable(String),
    /// The origin did not connect or answer within its timeouts. The detail is for the log.
    OriginTimeout(String),
}

impl From<Rejection> for GatewayError {
    /// A tenant's admission refusal: 429 with whole seconds to wait (at least 1), or 503.
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Rate { retry_after } => GatewayError::RateLimited {
                retry_after: retry_after.as_secs_f64().ceil().max(1.0) as u64,
            },
            Rejection::Concurrency => GatewayError::OverCapacity,
        }
    }
}

impl GatewayError {
    /// The status code the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoRoute => StatusCode::NOT_FOUND,
            GatewayError::RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::OverCapacity => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
            GatewayError::OriginUnreachable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::OriginTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Invoke(e) => match e {
                InvokeError::Trap(_) | InvokeError::Instantiate(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                InvokeError::CpuLimit | InvokeError::MemoryLimit | InvokeError::PoolExhausted => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                InvokeError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                InvokeError::NoResponse | InvokeError::GuestError(_) => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::NoRoute => "no_route",
            GatewayError::RequestTooLarge { .. } => "request_too_large",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::OverCapacity => "over_capacity",
            GatewayError::ResponseTooLarge { .. } => "response_too_large",
            GatewayError::OriginUnreachable(_) => "origin_unreachable",
            GatewayError::OriginTimeout(_) => "origin_timeout",
            GatewayError::Invoke(e) => match e {
                InvokeError::Trap(_) | InvokeError::Instantiate(_) => "function_trap",
                InvokeError::CpuLimit => "cpu_limit_exceeded",
                InvokeError::MemoryLimit => "memory_limit_exceeded",
                InvokeError::PoolExhausted => "over_capacity",
                InvokeError::Timeout => "timeout",
                InvokeError::NoResponse | InvokeError::GuestError(_) => "function_error",
            },
        }
    }

    /// What went wrong and what to do, for the client. Never includes guest internals beyond
    /// the trap's one-line description.
    pub fn message(&self) -> String {
        match self {
            GatewayError::NoRoute => "no route matches this host and path".to_owned(),
            GatewayError::RequestTooLarge { limit } => {
                format!("the request body is larger than this function's limit of {limit} bytes")
            }
            GatewayError::BadRequest(why) => why.clone(),
            GatewayError::RateLimited { retry_after } => {
                format!("this tenant is over its request rate; retry in {retry_after} s")
            }
            GatewayError::OverCapacity => {
                "this tenant is running as many requests as it may; retry shortly".to_owned()
            }
            GatewayError::ResponseTooLarge { limit } => {
                format!(
                    "the function's response is larger than the gateway's limit of {limit} bytes"
                )
            }
            GatewayError::Invoke(e) => e.to_string(),
            GatewayError::OriginUnreachable(_) => {
                "the origin could not be reached or failed to answer".to_owned()
            }
            GatewayError::OriginTimeout(_) => "the origin did not answer in time".to_owned(),
        }
    }

    /// What went wrong, for the log: the message, or the origin's failure in full.
    pub fn detail(&self) -> String {
        match self {
            GatewayError::OriginUnreachable(detail) | GatewayError::OriginTimeout(detail) => {
                detail.clone()
            }
            _ => self.message(),
        }
    }

    /// Seconds the client should wait before retrying, for the statuses that carry
    /// `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GatewayError::RateLimited { retry_after } => Some(*retry_after),
            GatewayError::OverCapacity | GatewayError::Invoke(InvokeError::PoolExhausted) => {
                Some(1)
            }
            _ => None,
        }
    }

    /// The `limit` label of `atoll_limit_rejections_total`, when a tenant limit refused or
    /// stopped the request.
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            GatewayError::RateLimited { .. } => Some("rate"),
            GatewayError::OverCapacity => Some("concurrency"),
            GatewayError::RequestTooLarge { .. } => Some("request_body"),
            GatewayError::Invoke(InvokeError::CpuLimit) => Some("cpu"),
            GatewayError::Invoke(InvokeError::MemoryLimit) => Some("memory"),
            GatewayError::Invoke(InvokeError::Timeout) => Some("timeout"),
            _ => None,
        }
    }

    /// The trap reason for the metrics, when the guest was stopped.
    pub fn trap_reason(&self) -> Option<&'static str> {
        match self {
            GatewayError::Invoke(InvokeError::Trap(_) | InvokeError::Instantiate(_)) => {
                Some("trap")
            }
            GatewayError::Invoke(InvokeError::CpuLimit) => Some("cpu"),
            GatewayError::Invoke(InvokeError::MemoryLimit) => Some("memory"),
            GatewayError::Invoke(InvokeError::Timeout) => Some("timeout"),
            _ => None,
        }
    }

    /// The response head and JSON body for this error.
    pub fn to_response(&self, request_id: &RequestId) -> pingora::Result<(ResponseHeader, Bytes)> {
        let body = serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.message(),
                "request_id": request_id.as_str(),
            }
        });
        let body = Bytes::from(body.to_string());
        let mut head = ResponseHeader::build_no_case(self.status(), Some(4))?;
        head.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        head.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        head.insert_header(REQUEST_ID, request_id.as_str())?;
        if let Some(seconds) = self.retry_after() {
            head.insert_header(http::header::RETRY_AFTER, seconds)?;
        }
        Ok((head, body))
    }
}

impl From<InvokeError> for GatewayError {
    fn from(e: InvokeError) -> Self {
        GatewayError::Invoke(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_contract() {
        let cases = [
            (GatewayError::NoRoute, 404, "no_route"),
            (
                GatewayError::RequestTooLarge { limit: 1 },
                413,
                "request_too_large",
            ),
            (InvokeError::Trap("x".into()).into(), 500, "function_trap"),
            (InvokeError::CpuLimit.into(), 503, "cpu_limit_exceeded"),
            (
                InvokeError::MemoryLimit.into(),
                503,
                "memory_limit_exceeded",
            ),
            (InvokeError::Timeout.into(), 504, "timeout"),
            (InvokeError::NoResponse.into(), 502, "function_error"),
            (
                InvokeError::GuestError("x".into()).into(),
                502,
                "function_error",
            ),
            (InvokeError::PoolExhausted.into(), 503, "over_capacity"),
            (
                GatewayError::RateLimited { retry_after: 1 },
                429,
                "rate_limited",
            ),
            (GatewayError::OverCapacity, 503, "over_capacity"),
            (
                GatewayError::ResponseTooLarge { limit: 1 },
                502,
                "response_too_large",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn throttling_errors_carry_retry_after() {
        let id = RequestId::random();
        let (head, _) = GatewayError::RateLimited { retry_after: 3 }
            .to_response(&id)
            .unwrap();
        assert_eq!(head.headers.get("retry-after").unwrap(), "3");
        let (head, _) = GatewayError::OverCapacity.to_response(&id).unwrap();
        assert_eq!(head.headers.get("retry-after").unwrap(), "1");
        let (head, _) = GatewayError::NoRoute.to_response(&id).unwrap();
        assert!(head.headers.get("retry-after").is_none());
    }

    #[test]
    fn error_body_is_the_contract_json() {
        let id = RequestId::random();
        let (head, body) = GatewayError::NoRoute.to_response(&id).unwrap();
        assert_eq!(head.status, 404);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "no_route");
        assert_eq!(json["error"]["request_id"], id.as_str());
        assert!(json["error"]["message"].as_str().unwrap().len() > 5);
        assert_eq!(head.headers.get(REQUEST_ID).unwrap(), id.as_str());
    }
}
