//! `sleepy`: waits before answering, on a monotonic-clock subscription (the guest is idle, not
//! spinning). `?ms=N` sets the wait; the default, 60 s, is past any sensible timeout
//! (504 `timeout`).

use std::time::Duration;

use atoll_sdk::Request;

/// Sleeps `?ms=N` milliseconds (default 60000), then answers.
fn sleepy(request: Request) -> String {
    let ms = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(60_000);
    std::thread::sleep(Duration::from_millis(ms));
    format!("slept {ms} ms\n")
}

atoll_sdk::export!(sleepy);
