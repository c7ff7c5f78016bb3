#![no_main]
//! `cargo fuzz run path`: see `atoll_gateway::fuzz_targets::path`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| atoll_gateway::fuzz_targets::path(data));
