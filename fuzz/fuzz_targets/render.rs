//! The renderer: PDF page count and rasterising (hayro), image decoding under limits (image).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::render(data));
