//! The HTML the gateway answers with itself: the uniform 404, error pages, and the recipient's
//! pages (password form, landing page with the Download button, device confirmation, code forms).
//!
//! Pages are small, work without JavaScript, load nothing, and carry a strict CSP (the one inline
//! stylesheet is allowed by its hash). The 404 page is byte-for-byte the same for every link that
//! is not good (forged, unknown, expired, deactivated, cancelled, exhausted).

use std::sync::LazyLock;

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}\
h1{font-size:1.4rem}form{margin:1rem 0}label{display:block;margin:.5rem 0 .2rem}\
input[type=password],input[type=text]{font-size:1rem;padding:.4rem;width:12rem}\
button,.button{font-size:1rem;padding:.5rem 1.2rem;margin-top:.6rem;display:inline-block;background:#0b57d0;color:#fff;border:0;border-radius:.3rem;text-decoration:none}\
.error{color:#b3261e}.note{color:#555}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}dt{font-weight:600}";

/// The page CSP: nothing loads, only our stylesheet (by hash) applies, forms post back here.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
});

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page; `body` is already-escaped HTML.
fn layout(title: &str, body: &str) -> Bytes {
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n<h1>{title}</h1>\n{body}\n</main></body></html>\n",
        title = escape(title)
    ))
}

fn page(title: &str, message: &str) -> Bytes {
    layout(title, &format!("<p>{}</p>", escape(message)))
}

static NOT_FOUND: LazyLock<Bytes> =
    LazyLock::new(|| page("Not found", "This link is not valid. It may have expired, been cancelled, or reached its download limit."));

/// A page for `status`; unknown statuses get a generic text.
pub fn for_status(status: u16) -> Bytes {
    match status {
        404 => NOT_FOUND.clone(),
        405 => page("Method not allowed", "This link can only be opened or downloaded."),
        429 => page("Too many requests", "Please wait a moment and try again."),
        502 => page("Bad gateway", "The document store could not be reached. Please try again later."),
        503 => page("Service unavailable", "The service is temporarily unavailable. Please try again shortly."),
        504 => page("Gateway timeout", "The document store did not answer in time. Please try again later."),
        _ => page("Error", "The request could not be completed."),
    }
}

/// A page with a title and a message (notices, refusals).
pub fn message(title: &str, text: &str) -> Bytes {
    page(title, text)
}

/// Headers every page carries: private, never sniffed, never framed, loads nothing.
pub fn page_headers() -> [(&'static str, &'static str); 5] {
    [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "private, no-store"),
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", CSP.as_str()),
        ("referrer-policy", "no-referrer"),
    ]
}

/// What the recipient's pages show of a document.
pub struct DocumentFacts<'a> {
    pub name: &'a str,
    pub size: Option<u64>,
    /// Expiry, already formatted with its time zone.
    pub expires: Option<String>,
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn facts(doc: &DocumentFacts<'_>) -> String {
    let mut out = format!("<dl><dt>Document</dt><dd>{}</dd>", escape(doc.name));
    if let Some(size) = doc.size {
        out.push_str(&format!("<dt>Size</dt><dd>{}</dd>", human_size(size)));
    }
    out.push_str(&format!(
        "<dt>Available until</dt><dd>{}</dd></dl>",
        escape(doc.expires.as_deref().unwrap_or("no expiry date"))
    ));
    out
}

fn form(action: &str, csrf: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{fields}<button type=\"submit\">{button}</button></form>",
        csrf = escape(csrf)
    )
}

fn error_line(error: Option<&str>) -> String {
    error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default()
}

pub fn password_form(doc: &DocumentFacts<'_>, csrf: &str, error: Option<&str>) -> Bytes {
    let fields = "<label for=\"password\">Password</label>\
                  <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>";
    layout(
        "This document is protected by a password",
        &format!("{}{}{}", facts(doc), error_line(error), form("password", csrf, fields, "Continue")),
    )
}

/// The landing page: the facts and the button that starts the download.
pub fn landing(doc: &DocumentFacts<'_>, href: &str, view_only: bool) -> Bytes {
    let (title, button, note) = if view_only {
        ("A document was shared with you", "View", "<p class=\"note\">This browser may view the document; downloading needs a verified recipient.</p>")
    } else {
        ("A document was shared with you", "Download", "")
    };
    layout(
        title,
        &format!("{}{note}<p><a class=\"button\" id=\"download\" href=\"{}\">{button}</a></p>", facts(doc), escape(href)),
    )
}

pub fn confirm_device(doc: &DocumentFacts<'_>, csrf: &str) -> Bytes {
    layout(
        "A document was shared with you",
        &format!(
            "{}<p>Opening it here makes this browser the one verified for this link.</p>{}",
            facts(doc),
            form("trust", csrf, "", "Open the document in this browser")
        ),
    )
}

pub fn send_code(doc: &DocumentFacts<'_>, csrf: &str, masked: &str, notice: Option<&str>) -> Bytes {
    layout(
        "Verify this browser",
        &format!(
            "{}<p>This link was already opened in another browser. To open it here, we will send a 6-digit code to {}.</p>{}{}",
            facts(doc),
            escape(masked),
            error_line(notice),
            form("send_code", csrf, "", "Send me a code")
        ),
    )
}

pub fn enter_code(doc: &DocumentFacts<'_>, csrf: &str, resend_csrf: &str, masked: &str, error: Option<&str>) -> Bytes {
    let fields = "<label for=\"code\">6-digit code</label>\
                  <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus>";
    layout(
        "Enter your code",
        &format!(
            "{}<p>We sent a code to {}. It is valid for 10 minutes.</p>{}{}<p class=\"note\">No code?</p>{}",
            facts(doc),
            escape(masked),
            error_line(error),
            form("verify_code", csrf, fields, "Verify"),
            form("send_code", resend_csrf, "", "Send a new code")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }

    #[test]
    fn hostile_names_are_escaped_on_pages() {
        let doc = DocumentFacts { name: "<script>alert(1)</script>", size: None, expires: None };
        let html = String::from_utf8(landing(&doc, "/s/x?download", false).to_vec()).unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
