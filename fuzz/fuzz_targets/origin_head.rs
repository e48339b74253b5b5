//! Origin response heads: the relay's head parser and what it makes of the head for a recipient.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::origin_head(data));
