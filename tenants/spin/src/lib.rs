//! `spin`: never answers; loops forever burning CPU. The gateway stops it at the tenant's
//! `cpu_time` limit (503 `cpu_limit_exceeded`).

use atoll_sdk::Request;

/// Spins until the engine interrupts it.
fn spin(_request: Request) -> &'static str {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

atoll_sdk::export!(spin);
