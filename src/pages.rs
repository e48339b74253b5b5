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
.error{color:#b3261e}.note{color:#555}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}dt{font-weight:600}\
ul.docs{list-style:none;padding:0}ul.docs li{margin:.8rem 0}ul.docs .button{margin-right:.4rem;padding:.3rem .8rem}\
.drop{border:2px dashed #999;border-radius:.4rem;padding:1rem;margin:.5rem 0}.drop.over{border-color:#0b57d0;background:#eef3fd}";

/// The one script: drag-and-drop onto the upload form's file input. The form works without it.
const DROP_SCRIPT: &str = "(function(){var d=document.getElementById('drop'),i=document.getElementById('files');if(!d||!i){return;}\
['dragenter','dragover'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.add('over');});});\
['dragleave','drop'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.remove('over');});});\
d.addEventListener('drop',function(e){if(e.dataTransfer&&e.dataTransfer.files.length){i.files=e.dataTransfer.files;}});})();";

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The page CSP: nothing loads, only our stylesheet and our one script (by hash) apply, forms
/// post back here.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        sha256_b64(STYLE),
        sha256_b64(DROP_SCRIPT)
    )
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

static NOT_FOUND: LazyLock<Bytes> = LazyLock::new(|| {
    page("Not found", "This link is not valid. It may have expired, been cancelled, or reached its download limit.")
});

/// A page for `status`; unknown statuses get a generic text.
pub fn for_status(status: u16) -> Bytes {
    match status {
        404 => NOT_FOUND.clone(),
        405 => page(
            "Method not allowed",
            "This link can only be opened or downloaded.",
        ),
        429 => page("Too many requests", "Please wait a moment and try again."),
        502 => page(
            "Bad gateway",
            "The document store could not be reached. Please try again later.",
        ),
        503 => page(
            "Service unavailable",
            "The service is temporarily unavailable. Please try again shortly.",
        ),
        504 => page(
            "Gateway timeout",
            "The document store did not answer in time. Please try again later.",
        ),
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

/// [`page_headers`] as an answer's own list, to add cookies or other headers to.
pub fn page_headers_owned() -> Vec<(&'static str, String)> {
    page_headers()
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect()
}

/// Headers of a non-HTML answer the gateway writes itself (plain text, JSON): private, never
/// sniffed.
pub fn data_headers(content_type: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", content_type.to_string()),
        ("cache-control", "private, no-store".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
    ]
}

/// What the recipient's pages show of a document.
pub struct DocumentFacts {
    pub name: String,
    pub size: Option<u64>,
    /// Expiry, already formatted with its time zone.
    pub expires: Option<String>,
}

pub fn human_size(bytes: u64) -> String {
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

fn facts(doc: &DocumentFacts) -> String {
    let mut out = format!("<dl><dt>Document</dt><dd>{}</dd>", escape(&doc.name));
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
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

pub fn password_form(doc: &DocumentFacts, csrf: &str, error: Option<&str>) -> Bytes {
    let fields = "<label for=\"password\">Password</label>\
                  <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>";
    layout(
        "This document is protected by a password",
        &format!(
            "{}{}{}",
            facts(doc),
            error_line(error),
            form("password", csrf, fields, "Continue")
        ),
    )
}

/// One document on the landing page and what may be done with it.
pub struct LandingDocument {
    pub name: String,
    pub size: Option<u64>,
    /// (button label, href), in the order offered.
    pub actions: Vec<(String, String)>,
}

/// The upload form of a link with the `upload` right.
pub struct UploadForm {
    /// Where the form posts (`/s/{token}?upload`).
    pub action: String,
    /// A single-use CSRF token, for links behind a password or a device check.
    pub csrf: Option<String>,
    /// What the recipient is told about limits ("up to 10.0 MB each; PDF or images").
    pub limits: String,
}

/// The landing page: the documents with their buttons, and the upload form if any.
pub fn landing(
    expires: Option<&str>,
    documents: &[LandingDocument],
    upload: Option<&UploadForm>,
    view_only: bool,
) -> Bytes {
    let title = match (documents.len(), upload.is_some()) {
        (0, true) => "Upload files",
        (1, _) => "A document was shared with you",
        _ => "Documents were shared with you",
    };
    let mut body = String::new();
    if view_only {
        body.push_str("<p class=\"note\">This browser may view the documents; downloading needs a verified recipient.</p>");
    }
    if let [doc] = documents {
        body.push_str(&format!(
            "<dl><dt>Document</dt><dd>{}</dd>",
            escape(&doc.name)
        ));
        if let Some(size) = doc.size {
            body.push_str(&format!("<dt>Size</dt><dd>{}</dd>", human_size(size)));
        }
        body.push_str(&format!(
            "<dt>Available until</dt><dd>{}</dd></dl><p>",
            escape(expires.unwrap_or("no expiry date"))
        ));
        for (i, (label, href)) in doc.actions.iter().enumerate() {
            let id = if i == 0 {
                "download".to_string()
            } else {
                format!("action-1-{}", i + 1)
            };
            body.push_str(&format!(
                "<a class=\"button\" id=\"{id}\" href=\"{}\">{}</a> ",
                escape(href),
                escape(label)
            ));
        }
        body.push_str("</p>");
    } else if !documents.is_empty() {
        body.push_str(&format!(
            "<p>Available until {}.</p><ul class=\"docs\">",
            escape(expires.unwrap_or("no expiry date"))
        ));
        for (n, doc) in documents.iter().enumerate() {
            let size = doc
                .size
                .map(|s| format!(" <span class=\"note\">({})</span>", human_size(s)))
                .unwrap_or_default();
            body.push_str(&format!(
                "<li><strong>{}</strong>{size}<br>",
                escape(&doc.name)
            ));
            for (i, (label, href)) in doc.actions.iter().enumerate() {
                let id = format!("action-{}-{}", n + 1, i + 1);
                body.push_str(&format!(
                    "<a class=\"button\" id=\"{id}\" href=\"{}\">{}</a>",
                    escape(href),
                    escape(label)
                ));
            }
            body.push_str("</li>");
        }
        body.push_str("</ul>");
    } else if let Some(e) = expires {
        body.push_str(&format!("<p>Available until {}.</p>", escape(e)));
    }
    if let Some(form) = upload {
        let csrf = form
            .csrf
            .as_ref()
            .map(|c| {
                format!(
                    "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                    escape(c)
                )
            })
            .unwrap_or_default();
        body.push_str(&format!(
            "<h2>Send files</h2><form method=\"post\" action=\"{}\" enctype=\"multipart/form-data\" id=\"upload-form\">{csrf}\
             <div class=\"drop\" id=\"drop\"><label for=\"files\">Drop files here, or choose them:</label>\
             <input type=\"file\" id=\"files\" name=\"file\" multiple required></div>\
             <p class=\"note\">{}</p><button type=\"submit\" id=\"upload\">Upload</button></form><script>{DROP_SCRIPT}</script>",
            escape(&form.action),
            escape(&form.limits)
        ));
    }
    layout(title, &body)
}

/// What an upload through the form came to: the files stored, then the error that stopped it.
pub fn upload_result(stored: &[(String, u64)], error: Option<&str>, back: &str) -> Bytes {
    let title = match (stored.is_empty(), error) {
        (false, None) => "Upload complete",
        (false, Some(_)) => "Upload partly complete",
        (true, _) => "Upload failed",
    };
    let mut body = String::new();
    if !stored.is_empty() {
        body.push_str("<p>Received:</p><ul id=\"stored\">");
        for (name, bytes) in stored {
            body.push_str(&format!(
                "<li>{} ({})</li>",
                escape(name),
                human_size(*bytes)
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(&error_line(error));
    body.push_str(&format!(
        "<p><a class=\"button\" id=\"back\" href=\"{}\">Back</a></p>",
        escape(back)
    ));
    layout(title, &body)
}

pub fn confirm_device(doc: &DocumentFacts, csrf: &str) -> Bytes {
    layout(
        "A document was shared with you",
        &format!(
            "{}<p>Opening it here makes this browser the one verified for this link.</p>{}",
            facts(doc),
            form("trust", csrf, "", "Open the document in this browser")
        ),
    )
}

pub fn send_code(doc: &DocumentFacts, csrf: &str, masked: &str, notice: Option<&str>) -> Bytes {
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

pub fn enter_code(
    doc: &DocumentFacts,
    csrf: &str,
    resend_csrf: &str,
    masked: &str,
    error: Option<&str>,
) -> Bytes {
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
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }

    #[test]
    fn hostile_names_are_escaped_on_pages() {
        let doc = LandingDocument {
            name: "<script>alert(1)</script>".into(),
            size: None,
            actions: vec![("Download".into(), "/s/x?download".into())],
        };
        let html = String::from_utf8(landing(None, &[doc], None, false).to_vec()).unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
        let form = UploadForm {
            action: "/s/x?upload".into(),
            csrf: Some("\"><b>".into()),
            limits: "<i>".into(),
        };
        let html = String::from_utf8(landing(None, &[], Some(&form), false).to_vec()).unwrap();
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(
            html.contains(DROP_SCRIPT),
            "the script whose hash the CSP allows"
        );
    }
}
