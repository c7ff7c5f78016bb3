//! `hog`: allocates memory. Without a query it allocates 1 MiB at a time until it dies at the
//! tenant's `memory` limit (503 `memory_limit_exceeded`); with `?mib=N` it allocates N MiB,
//! touches every page and answers how much it holds.

use atoll_sdk::Request;

const MIB: usize = 1 << 20;

/// Allocates `?mib=N` MiB, or without end.
fn hog(request: Request) -> String {
    let wanted = request
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("mib="))
        .and_then(|n| n.parse::<usize>().ok());
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if wanted.is_some_and(|n| held.len() >= n) {
            return format!("holding {} MiB\n", held.len());
        }
        held.push(std::hint::black_box(vec![1u8; MIB]));
    }
}

atoll_sdk::export!(hog);
