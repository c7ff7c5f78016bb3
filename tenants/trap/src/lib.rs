//! `trap`: panics on every request, which the runtime sees as a WebAssembly
//! trap (`unreachable`).

use atoll_sdk::Request;

/// Never answers: always panics.
fn trap(_request: Request) -> &'static str {
    panic!("trap: this function panics on purpose")
}

atoll_sdk::export!(trap);
