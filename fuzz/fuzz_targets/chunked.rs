//! The relay's chunked-body decoder: split-invariant and equal to a plain reading of RFC 9112.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::chunked(data));
