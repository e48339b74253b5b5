//! The HTML the gateway answers with itself: the uniform 404, error pages, and the recipient's
//! pages (password form, landing page with the Download button, device confirmation, code forms).
//!
//! Pages are small, load nothing, and carry a strict CSP (the one inline stylesheet and the two
//! inline scripts are allowed by their hashes). They work without JavaScript, except the password
//! form of a link under heavy guessing, which asks the browser for a proof of work and says so. The 404 page is byte-for-byte the same for every link that
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
form.inline{display:inline}ul.docs{list-style:none;padding:0}ul.docs li{margin:.8rem 0}ul.docs .button{margin-right:.4rem;padding:.3rem .8rem}\
.drop{border:2px dashed #999;border-radius:.4rem;padding:1rem;margin:.5rem 0}.drop.over{border-color:#0b57d0;background:#eef3fd}";

/// The one script: drag-and-drop onto the upload form's file input. The form works without it.
const DROP_SCRIPT: &str = "(function(){var d=document.getElementById('drop'),i=document.getElementById('files');if(!d||!i){return;}\
['dragenter','dragover'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.add('over');});});\
['dragleave','drop'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.remove('over');});});\
d.addEventListener('drop',function(e){if(e.dataTransfer&&e.dataTransfer.files.length){i.files=e.dataTransfer.files;}});})();";

/// The proof of work a password form asks for past the link's guessing budget: finds `n` such
/// that SHA-256(`challenge:n`) starts with `bits` zero bits, in slices so the page stays
/// responsive, and fills the hidden `proof` field; a submit before then waits for it. Pure
/// JavaScript SHA-256: `crypto.subtle` is missing on plain-http origins.
const POW_SCRIPT: &str = "(function(){var el=document.getElementById('pow'),out=document.getElementById('proof');if(!el||!out){return;}\
var ch=el.getAttribute('data-challenge'),bits=+el.getAttribute('data-bits'),form=out.form,note=document.getElementById('pow-note');\
var K=[1116352408,1899447441,3049323471,3921009573,961987163,1508970993,2453635748,2870763221,3624381080,310598401,607225278,1426881987,\
1925078388,2162078206,2614888103,3248222580,3835390401,4022224774,264347078,604807628,770255983,1249150122,1555081692,1996064986,\
2554220882,2821834349,2952996808,3210313671,3336571891,3584528711,113926993,338241895,666307205,773529912,1294757372,1396182291,\
1695183700,1986661051,2177026350,2456956037,2730485921,2820302411,3259730800,3345764771,3516065817,3600352804,4094571909,275423344,\
430227734,506948616,659060556,883997877,958139571,1322822218,1537002063,1747873779,1955562222,2024104815,2227730452,2361852424,\
2428436474,2756734187,3204031479,3329325298];for(var q=0;q<64;q++){K[q]=K[q]|0;}var W=new Int32Array(64),M=new Int32Array(64);\
function h0(s){var n=s.length,nb=(n+72)>>6,i,b;for(i=0;i<nb*16;i++){M[i]=0;}for(i=0;i<n;i++){M[i>>2]|=s.charCodeAt(i)<<(24-(i&3)*8);}\
M[n>>2]|=128<<(24-(n&3)*8);M[nb*16-1]=n*8;var H=[1779033703,-1150833019,1013904242,-1521486534,1359893119,-1694144372,528734635,1541459225];\
for(b=0;b<nb;b++){for(i=0;i<16;i++){W[i]=M[b*16+i];}for(i=16;i<64;i++){var x=W[i-15],y=W[i-2];\
W[i]=(((x>>>7|x<<25)^(x>>>18|x<<14)^(x>>>3))+((y>>>17|y<<15)^(y>>>19|y<<13)^(y>>>10))+W[i-7]+W[i-16])|0;}\
var a=H[0],c=H[1],d=H[2],e=H[3],f=H[4],g=H[5],h=H[6],k=H[7];for(i=0;i<64;i++){\
var t1=(k+((f>>>6|f<<26)^(f>>>11|f<<21)^(f>>>25|f<<7))+((f&g)^(~f&h))+K[i]+W[i])|0;\
var t2=(((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+((a&c)^(a&d)^(c&d)))|0;k=h;h=g;g=f;f=(e+t1)|0;e=d;d=c;c=a;a=(t1+t2)|0;}\
H[0]=(H[0]+a)|0;H[1]=(H[1]+c)|0;H[2]=(H[2]+d)|0;H[3]=(H[3]+e)|0;H[4]=(H[4]+f)|0;H[5]=(H[5]+g)|0;H[6]=(H[6]+h)|0;H[7]=(H[7]+k)|0;}return H[0];}\
var n=0,done=false,waiting=false;function step(){var end=n+20000;for(;n<end;n++){if(bits<1||(h0(ch+':'+n)>>>(32-bits))===0){\
out.value=ch+':'+n;done=true;if(note){note.textContent='Your browser is ready.';}if(waiting){form.submit();}return;}}setTimeout(step,0);}\
form.addEventListener('submit',function(e){if(!done){e.preventDefault();waiting=true;if(note){note.textContent='Checking your browser: this takes a few seconds...';}}});\
step();})();";

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The page CSP: nothing loads, only our stylesheet and our two scripts (by hash) apply, forms
/// post back here.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}' 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        sha256_b64(STYLE),
        sha256_b64(DROP_SCRIPT),
        sha256_b64(POW_SCRIPT)
    )
});

/// An answer written by the gateway itself.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

use crate::model::markup::escape;

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

/// A proof-of-work challenge for a password form: the challenge and its difficulty in bits.
pub struct Work<'a> {
    pub challenge: &'a str,
    pub bits: u32,
}

pub fn password_form(
    doc: &DocumentFacts,
    csrf: &str,
    error: Option<&str>,
    work: Option<&Work>,
) -> Bytes {
    let mut fields = "<label for=\"password\">Password</label>\
                  <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>"
        .to_string();
    let mut notice = String::new();
    if let Some(w) = work {
        fields.push_str("<input type=\"hidden\" name=\"proof\" id=\"proof\" value=\"\">");
        notice = format!(
            "<div id=\"pow\" data-challenge=\"{}\" data-bits=\"{}\"><p class=\"note\" id=\"pow-note\">Many wrong passwords were tried on this \
             link lately, so your browser does a few seconds of work before the password is checked.</p>\
             <noscript><p class=\"error\">This link is under heavy guessing right now. For now it can only be opened with \
             JavaScript turned on: please turn it on and reload this page, or try again later.</p></noscript></div>",
            escape(w.challenge),
            w.bits
        );
    }
    let script = if work.is_some() {
        format!("<script>{POW_SCRIPT}</script>")
    } else {
        String::new()
    };
    layout(
        "This document is protected by a password",
        &format!(
            "{}{}{notice}{}{script}",
            facts(doc),
            error_line(error),
            form("password", csrf, &fields, "Continue")
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

/// One button of a landing page: a link, or (with a form token, one per button: each is good
/// once) a form that posts to the same address, for downloads that only a person's press may
/// start.
fn action_button(id: &str, label: &str, href: &str, csrf: Option<&str>) -> String {
    match csrf {
        None => format!("<a class=\"button\" id=\"{id}\" href=\"{}\">{}</a> ", escape(href), escape(label)),
        Some(token) => format!(
            "<form class=\"inline\" method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <input type=\"hidden\" name=\"action\" value=\"download\"><button class=\"button\" id=\"{id}\" type=\"submit\">{}</button></form> ",
            escape(href),
            escape(token),
            escape(label)
        ),
    }
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
    button_csrf: Option<&dyn Fn() -> String>,
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
            body.push_str(&action_button(
                &id,
                label,
                href,
                button_csrf.map(|token| token()).as_deref(),
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
                body.push_str(&action_button(
                    &id,
                    label,
                    href,
                    button_csrf.map(|token| token()).as_deref(),
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

/// The code box: the link's current code works in any browser the link is opened in.
/// `valid_until` is the code's expiry, already formatted with its time zone.
pub fn enter_code(
    doc: &DocumentFacts,
    csrf: &str,
    resend_csrf: &str,
    masked: &str,
    valid_until: &str,
    error: Option<&str>,
) -> Bytes {
    let fields = "<label for=\"code\">6-digit code</label>\
                  <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{6}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus>";
    layout(
        "Enter your code",
        &format!(
            "{}<p>A 6-digit code was mailed to {}. It is valid until {}, in any browser you open this link in.</p>{}{}\
             <p class=\"note\">No mail? It may take a minute to arrive, or we can send the same code again.</p>{}",
            facts(doc),
            escape(masked),
            escape(valid_until),
            error_line(error),
            form("verify_code", csrf, fields, "Verify"),
            form("send_code", resend_csrf, "", "Send the code again")
        ),
    )
}

/// A link on which so many wrong codes were tried that no new browser can be verified by code.
pub fn no_more_codes(doc: &DocumentFacts, sender: Option<&str>) -> Bytes {
    let ask = sender
        .map(|s| format!("Please ask {} for a new link.", escape(s)))
        .unwrap_or_else(|| "Please ask the sender for a new link.".into());
    layout(
        "This browser cannot be verified",
        &format!(
            "{}<p class=\"error\" role=\"alert\">This link can no longer verify new browsers: too many wrong codes were tried on it. \
             Browsers verified before keep working.</p><p>{ask}</p>",
            facts(doc)
        ),
    )
}

/// `page` with `section` (already-escaped HTML) added at the end of its main part.
pub fn with_section(page: Bytes, section: &str) -> Bytes {
    if section.is_empty() {
        return page;
    }
    let text = String::from_utf8_lossy(&page);
    match text.rfind("\n</main>") {
        Some(at) => Bytes::from(format!("{}{section}{}", &text[..at], &text[at..])),
        None => page,
    }
}

/// A notice with a link back to the page (review forms).
pub fn notice_with_back(title: &str, text: &str, back: &str) -> Bytes {
    layout(
        title,
        &format!(
            "<p id=\"notice\">{}</p><p><a class=\"button\" id=\"back\" href=\"{}\">Back</a></p>",
            escape(text),
            escape(back)
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
        let html = String::from_utf8(landing(None, &[doc], None, false, None).to_vec()).unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
        let form = UploadForm {
            action: "/s/x?upload".into(),
            csrf: Some("\"><b>".into()),
            limits: "<i>".into(),
        };
        let html =
            String::from_utf8(landing(None, &[], Some(&form), false, None).to_vec()).unwrap();
        assert!(!html.contains("<b>") && !html.contains("<i>"));
        assert!(
            html.contains(DROP_SCRIPT),
            "the script whose hash the CSP allows"
        );
        let doc = LandingDocument {
            name: "a.pdf".into(),
            size: Some(10),
            actions: vec![("Download".into(), "/s/x?download&a=\"><b>".into())],
        };
        let html = String::from_utf8(
            landing(None, &[doc], None, false, Some(&|| "\"><i>".to_string())).to_vec(),
        )
        .unwrap();
        assert!(
            html.contains("<form class=\"inline\" method=\"post\""),
            "a limited link's button posts"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>") && !html.contains("<a class"));
    }

    #[test]
    fn the_password_form_carries_the_work_only_when_asked() {
        let doc = DocumentFacts {
            name: "d".into(),
            size: None,
            expires: None,
        };
        let plain = String::from_utf8(password_form(&doc, "t", None, None).to_vec()).unwrap();
        assert!(!plain.contains("<script") && !plain.contains("proof"));
        let work = Work {
            challenge: "16.1.ab.\"><b>",
            bits: 16,
        };
        let html = String::from_utf8(password_form(&doc, "t", None, Some(&work)).to_vec()).unwrap();
        assert!(
            html.contains(POW_SCRIPT)
                && html.contains("name=\"proof\"")
                && html.contains("data-bits=\"16\"")
        );
        assert!(!html.contains("<b>"), "the challenge is escaped");
        assert!(html.contains("<noscript>") && html.contains("heavy guessing"));
        assert!(CSP.contains(&format!("'sha256-{}'", sha256_b64(POW_SCRIPT))));
    }
}
