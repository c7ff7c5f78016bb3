#![no_main]
//! `cargo fuzz run cache_control`: see `atoll_gateway::fuzz_targets::cache_control`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| atoll_gateway::fuzz_targets::cache_control(data));
