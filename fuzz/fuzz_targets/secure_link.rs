//! Legacy nginx secure_link URLs: arbitrary paths and queries never panic, and anything accepted
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::secure_link(data));
