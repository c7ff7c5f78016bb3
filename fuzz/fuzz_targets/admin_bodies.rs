#![no_main]
//! `cargo fuzz run admin_bodies`: see `atoll_gateway::fuzz_targets::admin_bodies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| atoll_gateway::fuzz_targets::admin_bodies(data));
