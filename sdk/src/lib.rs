//! Write [Atoll] edge functions in Rust as plain functions.
//!
//! `atoll-sdk` turns a function from [`Request`] to anything implementing
//! [`IntoResponse`] into a standard [`wasi:http/proxy`] WebAssembly component.
//! The component has no Atoll-specific imports or exports, so it runs
//! unchanged under the Atoll gateway or `wasmtime serve`.
//!
//! Before the handler runs, the whole request body is read into memory as
//! [`Bytes`] (a `GET` or `HEAD` without a length, or a request with
//! `content-length: 0`, has none and is not read). The response body is buffered the same way and written out
//! once the handler returns.
//!
//! # Example
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "greeter"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! atoll-sdk = { path = "../sdk" }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use atoll_sdk::http::{self, StatusCode, header};
//! use atoll_sdk::{Request, Response};
//!
//! fn greet(req: Request) -> Result<Response, http::Error> {
//!     if req.uri().path() != "/" {
//!         return http::Response::builder()
//!             .status(StatusCode::NOT_FOUND)
//!             .body("not found\n".into());
//!     }
//!     let name = req.uri().query().unwrap_or("world");
//!     http::Response::builder()
//!         .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
//!         .body(format!("Hello, {name}!\n").into())
//! }
//!
//! atoll_sdk::export!(greet);
//! # fn main() {}
//! ```
//!
//! Build it into a component (`target/wasm32-wasip2/release/greeter.wasm`):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! Handlers that only need to say something can return a string (sent as a
//! `200 OK` `text/plain` response); fallible handlers can return
//! `Result<_, E>` for any `E: Display` (an error is sent as a
//! `500 Internal Server Error` with the error message as its body):
//!
//! ```
//! fn hello(_req: atoll_sdk::Request) -> &'static str {
//!     "Hello!\n"
//! }
//!
//! atoll_sdk::export!(hello);
//! # fn main() {}
//! ```
//!
//! [Atoll]: https://example.invalid/atoll
//! [`wasi:http/proxy`]: https://github.com/WebAssembly/wasi-http

#![warn(missing_docs)]
#![deny(unsafe_code)]

mod bindings;
pub mod config;
mod convert;
mod fetch;
mod guest;
pub mod kv;
pub mod log;
mod response;

pub use bytes;
pub use bytes::Bytes;
pub use fetch::{FetchError, fetch};
pub use http;
pub use response::IntoResponse;
/// The `wasi:http` error a failed [`fetch`] reports.
pub use wasip2::http::types::ErrorCode;

/// An incoming HTTP request, with its whole body already read into memory.
///
/// The URI holds the path and query the client sent and, when the host
/// reports them, the scheme and authority. The `Host` header, if any, is
/// kept in the headers either way.
pub type Request = http::Request<Bytes>;

/// An HTTP response returned by a handler.
pub type Response = http::Response<Bytes>;

/// Exports a handler function as the component's `wasi:http/incoming-handler`.
///
/// The argument is the path of a function taking a [`Request`] and returning
/// any type that implements [`IntoResponse`]. Invoke the macro exactly once
/// per component, at module level.
///
/// ```
/// use atoll_sdk::{Request, Response};
///
/// fn handler(req: Request) -> Response {
///     Response::new(req.into_body())
/// }
///
/// atoll_sdk::export!(handler);
/// # fn main() {}
/// ```
///
/// If the host hands over a request that cannot be represented as an
/// [`http::Request`] (an invalid method or header, or a failure while
/// reading the body), the handler is not called and the client gets a
/// `400 Bad Request`.
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        const _: () = {
            #[doc(hidden)]
            struct AtollHandler;

            impl $crate::__private::wasip2::exports::http::incoming_handler::Guest for AtollHandler {
                fn handle(
                    request: $crate::__private::wasip2::http::types::IncomingRequest,
                    response_out: $crate::__private::wasip2::http::types::ResponseOutparam,
                ) {
                    $crate::__private::handle($handler, request, response_out);
                }
            }

            $crate::__private::wasip2::http::proxy::export!(
                AtollHandler with_types_in $crate::__private::wasip2
            );
        };
    };
}

/// Implementation details of [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guest::handle;
    pub use wasip2;
}
