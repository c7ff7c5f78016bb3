//! Bindings for the interfaces beyond `wasi:http` that the SDK wraps (`wasi:config`,
//! `wasi:keyvalue`), generated from `wit/`. The only unsafe code of the crate.

#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    path: "wit",
    world: "atoll:sdk/imports",
    generate_all,
});
