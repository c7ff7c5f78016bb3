#![no_main]
//! `cargo fuzz run config`: see `atoll_gateway::fuzz_targets::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| atoll_gateway::fuzz_targets::config(data));
