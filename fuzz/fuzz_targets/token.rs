//! Token parser/verifier and sealed values: never panic; a token verifies only if it is exactly
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::token(data));
