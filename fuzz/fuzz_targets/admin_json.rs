//! Admin JSON bodies: `POST /v1/links` validation never panics on any bytes, and display names
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::admin_json(data));
