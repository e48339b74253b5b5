//! Cookie parsing: device, password and CSRF values from arbitrary `Cookie` headers never panic
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::cookies(data));
