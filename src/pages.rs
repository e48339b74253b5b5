//! The plain pages the gateway answers with itself: the uniform 404 and the error pages.
//!
//! The 404 page is byte-for-byte the same for every link that is not good (forged, unknown,
//! expired, deactivated, cancelled, exhausted), so it tells an unverified client nothing.

use bytes::Bytes;

fn page(title: &str, message: &str) -> Bytes {
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body><main><h1>{title}</h1><p>{message}</p></main></body></html>\n"
    ))
}

/// A page for `status`; unknown statuses get a generic text.
pub fn for_status(status: u16) -> Bytes {
    match status {
        404 => page("Not found", "This link is not valid. It may have expired, been cancelled, or reached its download limit."),
        405 => page("Method not allowed", "This link can only be opened or downloaded."),
        502 => page("Bad gateway", "The document store could not be reached. Please try again later."),
        503 => page("Service unavailable", "The service is temporarily unavailable. Please try again shortly."),
        504 => page("Gateway timeout", "The document store did not answer in time. Please try again later."),
        _ => page("Error", "The request could not be completed."),
    }
}

/// Headers every page carries: the page is private, never sniffed, never framed, and loads nothing.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/html; charset=utf-8"),
    ("cache-control", "private, no-store"),
    ("x-content-type-options", "nosniff"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ("referrer-policy", "no-referrer"),
];
