//! `wstd-hello`: a `wasi:http/proxy` server written with `wstd`, the async standard library for
//! WASI, without atoll-sdk: Atoll runs any standard component.

use wstd::http::body::Body;
use wstd::http::{Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
    let path = request.uri().path().to_owned();
    Ok(Response::new(format!("Hello from wstd at {path}\n").into()))
}
