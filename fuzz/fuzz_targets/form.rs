//! Form bodies (recipients' pages) and admin query strings never panic; decoded fields are text.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::form(data));
