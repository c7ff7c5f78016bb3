//! `noresponse`: returns from the handler without ever sending a response.
//!
//! The SDK always answers, so this one implements the raw
//! `wasi:http/incoming-handler` interface directly with `wasip2`.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct NoResponse;

impl Guest for NoResponse {
    /// Drops the `response-outparam` without calling `set` on it.
    fn handle(_request: IncomingRequest, _response_out: ResponseOutparam) {}
}

wasip2::http::proxy::export!(NoResponse);
