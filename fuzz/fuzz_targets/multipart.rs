//! Upload forms (multipart/form-data): parts read the same however the body arrives.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::multipart(data));
