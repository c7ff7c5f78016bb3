//! `hello`: the smallest Atoll function; answers every request with a greeting.

use atoll_sdk::Request;

/// Answers `200 OK`, `text/plain; charset=utf-8`, `Hello from Atoll!`.
fn hello(_request: Request) -> &'static str {
    "Hello from Atoll!\n"
}

atoll_sdk::export!(hello);
