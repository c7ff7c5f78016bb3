//! `sleepy`: waits before answering, on a monotonic-clock subscription (the guest is idle, not
//! spinning). `?ms=N` sets the wait; the default, 60 s, is past any sensible timeout
//! (504 `timeout`). `?spin=N` first computes for N ms of wall time (a guest that works, then
//! waits); parameters combine as `?spin=10&ms=2000`.

use std::time::{Duration, Instant};

use atoll_sdk::Request;

/// The value of `name=N` in the query, if any.
fn param(request: &Request, name: &str) -> Option<u64> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        .and_then(|n| n.parse().ok())
}

/// Computes `?spin=N` ms, sleeps `?ms=N` milliseconds (default 60000), then answers.
fn sleepy(request: Request) -> String {
    let spin = param(&request, "spin").unwrap_or(0);
    let started = Instant::now();
    let mut counter: u64 = 0;
    while started.elapsed() < Duration::from_millis(spin) {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
    let ms = param(&request, "ms").unwrap_or(60_000);
    std::thread::sleep(Duration::from_millis(ms));
    format!("slept {ms} ms\n")
}

atoll_sdk::export!(sleepy);
