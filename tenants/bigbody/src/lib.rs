//! `bigbody`: streams a large response without holding it in memory: `?mib=N` MiB (default 64)
//! of the byte `x`, written 4 KiB at a time. Used to test the gateway's response cap and
//! streaming.
//!
//! Written directly against `wasip2` because the SDK buffers whole responses.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const CHUNK: [u8; 4096] = [b'x'; 4096];

struct BigBody;

impl Guest for BigBody {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let mib = request
            .path_with_query()
            .and_then(|p| p.split_once("mib=").and_then(|(_, n)| n.parse::<u64>().ok()))
            .unwrap_or(64);
        drop(request);
        let headers = Fields::new();
        let _ = headers.append("content-type", b"application/octet-stream");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("a new body has a stream");
        let chunks = mib * (1 << 20) / CHUNK.len() as u64;
        for _ in 0..chunks {
            if stream.blocking_write_and_flush(&CHUNK).is_err() {
                return; // The client went away or the gateway stopped reading.
            }
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(BigBody);
