//! The HTML the gateway answers with itself: the uniform 404, error pages, and the recipient's
//! pages (password form, landing page with the documents and their buttons, device
//! confirmation, code forms, upload form and result), in the request's language
//! ([`crate::share::i18n`]).
//!
//! Pages are small, load nothing but the operator's logo and the documents' thumbnails (same
//! origin), and carry a strict CSP: the one inline stylesheet and the inline scripts are allowed
//! by their hashes. They work without JavaScript (the scripts only improve them: local times,
//! upload progress, drag and drop), except the password form of a link under heavy guessing,
//! which asks the browser for a proof of work and says so. The 404 page is byte-for-byte the
//! same for every link that is not good (forged, unknown, expired, deactivated, cancelled,
//! exhausted) in one language; the language comes from `Accept-Language` only.

use std::sync::{Arc, LazyLock};

use base64::Engine;
use bytes::Bytes;
use fluent_bundle::FluentValue;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::share::i18n::{t, tr, Lang};

/// The stylesheet; `{accent}` is the operator's accent colour (checked to be `#rrggbb`).
const STYLE_TEMPLATE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}\
header.brand{display:flex;align-items:center;gap:.6rem;margin-bottom:1rem;font-weight:600}header.brand img{max-height:2.5rem;width:auto}\
h1{font-size:1.4rem}h2{font-size:1.15rem;margin:.2rem 0}form{margin:1rem 0}label{display:block;margin:.5rem 0 .2rem}\
input[type=password],input[type=text]{font-size:1rem;padding:.4rem;width:12rem;border:1px solid #767676;border-radius:.2rem}\
button,.button{font-size:1rem;padding:.5rem 1.2rem;margin-top:.6rem;display:inline-block;background:{accent};color:#fff;border:0;border-radius:.3rem;text-decoration:none;cursor:pointer}\
:focus-visible{outline:3px solid #1b1b1b;outline-offset:2px}\
.error{color:#b3261e}.note{color:#4a4a4a}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}dt{font-weight:600}\
blockquote{margin:.5rem 0;padding:.3rem .8rem;border-left:4px solid {accent};white-space:pre-line}\
form.inline{display:inline}ul.docs{list-style:none;padding:0}ul.docs li{margin:1rem 0;display:flex;gap:1rem;align-items:flex-start;flex-wrap:wrap}\
ul.docs .button{margin-right:.4rem;padding:.4rem .9rem}img.thumb{border:1px solid #ccc;max-width:120px;height:auto}\
.drop{border:2px dashed #767676;border-radius:.4rem;padding:1rem;margin:.5rem 0}.drop.over{border-color:{accent};background:#eef3fd}\
ul.progress{list-style:none;padding:0}ul.progress progress{width:100%}textarea{width:100%;box-sizing:border-box;font:inherit;border:1px solid #767676}";

/// Rewrites every `<time datetime>` in the recipient's own time zone and language (the page
/// shows UTC without JavaScript), and hides the note that says times are in UTC.
const TIME_SCRIPT: &str = "(function(){var l=document.documentElement.lang;var ts=document.querySelectorAll('time[datetime]');\
for(var i=0;i<ts.length;i++){var t=ts[i],d=new Date(t.getAttribute('datetime'));if(isNaN(d.getTime())){continue;}\
var o=t.getAttribute('data-only')==='time'?{hour:'2-digit',minute:'2-digit',timeZoneName:'short'}:{year:'numeric',month:'long',day:'numeric',hour:'2-digit',minute:'2-digit',timeZoneName:'short'};\
try{t.textContent=d.toLocaleString(l,o);}catch(e){}}var n=document.querySelectorAll('.utc-note');for(var j=0;j<n.length;j++){n[j].hidden=true;}})();";

/// The upload form's script: drag and drop onto the file input, and one request whose progress
/// is shown per file (the form works without it: a plain multipart POST).
const UPLOAD_SCRIPT: &str = "(function(){var f=document.getElementById('upload-form');if(!f){return;}\
var d=document.getElementById('drop'),i=document.getElementById('files'),p=document.getElementById('progress'),st=document.getElementById('upload-status');\
if(d&&i){['dragenter','dragover'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.add('over');});});\
['dragleave','drop'].forEach(function(n){d.addEventListener(n,function(e){e.preventDefault();d.classList.remove('over');});});\
d.addEventListener('drop',function(e){if(e.dataTransfer&&e.dataTransfer.files.length){i.files=e.dataTransfer.files;}});}\
if(!window.FormData||!window.XMLHttpRequest||!p){return;}\
f.addEventListener('submit',function(e){var files=[],ins=f.querySelectorAll('input[type=file]');\
for(var a=0;a<ins.length;a++){for(var k=0;k<ins[a].files.length;k++){files.push(ins[a].files[k]);}}if(!files.length){return;}\
e.preventDefault();var fd=new FormData(f),bars=[];p.textContent='';p.hidden=false;\
files.forEach(function(file){var li=document.createElement('li'),s=document.createElement('span'),b=document.createElement('progress');\
s.textContent=file.name;b.max=file.size||1;b.value=0;b.setAttribute('aria-label',file.name);li.appendChild(s);li.appendChild(b);p.appendChild(li);bars.push(b);});\
var btn=document.getElementById('upload');if(btn){btn.disabled=true;}if(st){st.textContent=st.getAttribute('data-sending');}\
var x=new XMLHttpRequest();x.open('POST',f.action);\
x.upload.onprogress=function(ev){var left=ev.loaded;bars.forEach(function(b){b.value=Math.min(b.max,Math.max(0,left));left-=b.max;});};\
x.onload=function(){document.open();document.write(x.responseText);document.close();};\
x.onerror=function(){if(btn){btn.disabled=false;}if(st){st.textContent=st.getAttribute('data-failed');}};x.send(fd);});})();";

/// The proof of work a password form asks for past the link's guessing budget: finds `n` such
/// that SHA-256(`challenge:n`) starts with `bits` zero bits, in slices so the page stays
/// responsive, and fills the hidden `proof` field; a submit before then waits for it. Pure
/// JavaScript SHA-256: `crypto.subtle` is missing on plain-http origins. Its texts come from the
/// page (`data-ready`, `data-checking`), in the page's language.
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
out.value=ch+':'+n;done=true;if(note){note.textContent=el.getAttribute('data-ready');}if(waiting){form.submit();}return;}}setTimeout(step,0);}\
form.addEventListener('submit',function(e){if(!done){e.preventDefault();waiting=true;if(note){note.textContent=el.getAttribute('data-checking');}}});\
step();})();";

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The accent colour of pages without branding (6.4:1 against white text).
pub const DEFAULT_ACCENT: &str = "#0b57d0";
/// Where the gateway serves the operator's logo.
pub const LOGO_PATH: &str = "/_linkgate/logo";

/// The operator's logo, read at start and on reload.
#[derive(Clone, Debug)]
pub struct Logo {
    pub bytes: Bytes,
    /// `image/png`, `image/jpeg` or `image/svg+xml` (checked from the file's first bytes).
    pub content_type: &'static str,
}

/// Why an accent colour or logo is refused.
#[derive(Debug, thiserror::Error)]
pub enum BrandingError {
    #[error("branding.accent must be a colour written #rrggbb (got {0:?})")]
    AccentForm(String),
    #[error("branding.accent {0} is too light: white button text on it has a contrast of {1:.1}:1, at least 4.5:1 is needed")]
    AccentContrast(String, f64),
    #[error("branding.logo must be a PNG, JPEG or SVG image")]
    LogoType,
    #[error("branding.logo is larger than 256 KiB")]
    LogoSize,
}

/// Checks an accent colour: `#rrggbb` only (it goes into the stylesheet) and dark enough for
/// white button text (WCAG contrast at least 4.5:1). Returns it in lower case.
pub fn check_accent(text: &str) -> Result<String, BrandingError> {
    let hex = text
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| BrandingError::AccentForm(text.to_string()))?;
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    let contrast = 1.05 / (luminance + 0.05);
    if contrast < 4.5 {
        return Err(BrandingError::AccentContrast(text.to_string(), contrast));
    }
    Ok(format!("#{}", hex.to_ascii_lowercase()))
}

/// Checks a logo file's bytes: PNG, JPEG or SVG (by content, not name), at most 256 KiB.
pub fn check_logo(bytes: Vec<u8>) -> Result<Logo, BrandingError> {
    if bytes.len() > 256 * 1024 {
        return Err(BrandingError::LogoSize);
    }
    let content_type = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
        if head.contains("<svg") {
            "image/svg+xml"
        } else {
            return Err(BrandingError::LogoType);
        }
    };
    Ok(Logo {
        bytes: Bytes::from(bytes),
        content_type,
    })
}

/// What the pages show of the operator: a name, a logo, an accent colour; with the stylesheet
/// and CSP that follow from them.
pub struct Theme {
    pub name: Option<String>,
    pub logo: Option<Logo>,
    /// The operator's labels for renditions, by name (every language).
    rendition_labels: std::collections::BTreeMap<String, String>,
    style: String,
    csp: String,
}

impl Theme {
    /// `accent` must have passed [`check_accent`]; anything else falls back to the default.
    pub fn new(name: Option<String>, logo: Option<Logo>, accent: Option<&str>) -> Theme {
        let accent = accent
            .and_then(|a| check_accent(a).ok())
            .unwrap_or_else(|| DEFAULT_ACCENT.to_string());
        let style = STYLE_TEMPLATE.replace("{accent}", &accent);
        let csp = format!(
            "default-src 'none'; img-src 'self'; connect-src 'self'; style-src 'sha256-{}'; script-src 'sha256-{}' 'sha256-{}' 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            sha256_b64(&style),
            sha256_b64(TIME_SCRIPT),
            sha256_b64(UPLOAD_SCRIPT),
            sha256_b64(POW_SCRIPT)
        );
        Theme {
            name: name.filter(|n| !n.trim().is_empty()),
            logo,
            rendition_labels: Default::default(),
            style,
            csp,
        }
    }

    /// The operator's own labels for renditions (`[branding.renditions]`).
    pub fn with_rendition_labels(
        mut self,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Theme {
        self.rendition_labels = labels;
        self
    }

    /// The page CSP: only same-origin images (logo, thumbnails), our stylesheet and scripts (by
    /// hash), XHR back to us (upload progress); forms post back here.
    pub fn csp(&self) -> &str {
        &self.csp
    }
}

static THEME: LazyLock<RwLock<Arc<Theme>>> =
    LazyLock::new(|| RwLock::new(Arc::new(Theme::new(None, None, None))));

/// The pages' branding from now on (start and reload).
pub fn set_theme(theme: Theme) {
    *THEME.write() = Arc::new(theme);
}

/// The current branding.
pub fn theme() -> Arc<Theme> {
    THEME.read().clone()
}

/// An answer written by the gateway itself.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

use crate::model::markup::escape;

/// A whole page in `lang`; `body` is already-escaped HTML. The time script is added only to
/// pages that show a time.
fn layout(lang: Lang, title: &str, body: &str) -> Bytes {
    let theme = theme();
    let brand = match (&theme.name, &theme.logo) {
        (None, None) => String::new(),
        (name, logo) => {
            let alt = name.as_deref().unwrap_or("");
            let img = logo
                .as_ref()
                .map(|_| format!("<img src=\"{LOGO_PATH}\" alt=\"{}\">", escape(alt)))
                .unwrap_or_default();
            // The name is the logo's text alternative when both are there.
            let text = match (name, logo) {
                (Some(n), None) => format!("<span>{}</span>", escape(n)),
                _ => String::new(),
            };
            format!("<header class=\"brand\">{img}{text}</header>\n")
        }
    };
    let script = if body.contains("<time ") {
        format!("<script>{TIME_SCRIPT}</script>")
    } else {
        String::new()
    };
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{style}</style></head>\n<body>{brand}<main>\n<h1>{title}</h1>\n{body}\n</main>{script}</body></html>\n",
        code = lang.code(),
        title = escape(title),
        style = theme.style,
    ))
}

fn page(lang: Lang, title: &str, message: &str) -> Bytes {
    layout(lang, title, &format!("<p>{}</p>", escape(message)))
}

/// The uniform 404: the same bytes for every link that is not good, in one language.
fn not_found(lang: Lang) -> Bytes {
    layout(
        lang,
        &t(lang, "notfound-title"),
        &format!(
            "<p>{}</p><p id=\"next\">{}</p>",
            escape(&t(lang, "notfound-text")),
            escape(&t(lang, "notfound-next"))
        ),
    )
}

/// A page for `status` in `lang`; unknown statuses get a generic text.
pub fn for_status(lang: Lang, status: u16) -> Bytes {
    let id = match status {
        404 => return not_found(lang),
        405 | 429 | 502 | 503 | 504 => format!("status-{status}"),
        _ => "status-other".to_string(),
    };
    page(
        lang,
        &t(lang, &format!("{id}-title")),
        &t(lang, &format!("{id}-text")),
    )
}

/// A page with a title and a message (notices, refusals), both already in the page's language.
pub fn message(lang: Lang, title: &str, text: &str) -> Bytes {
    page(lang, title, text)
}

/// The page of catalogue messages `{id}-title` and `{id}-text`.
pub fn notice(lang: Lang, id: &str) -> Bytes {
    page(
        lang,
        &t(lang, &format!("{id}-title")),
        &t(lang, &format!("{id}-text")),
    )
}

/// Headers every page carries: private, never sniffed, never framed, loads nothing but our own
/// images.
pub fn page_headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "text/html; charset=utf-8".to_string()),
        ("cache-control", "private, no-store".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("content-security-policy", theme().csp().to_string()),
        ("referrer-policy", "no-referrer".to_string()),
    ]
}

/// [`page_headers`] as an answer's own list, to add cookies or other headers to.
pub fn page_headers_owned() -> Vec<(&'static str, String)> {
    page_headers()
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

/// The logo's answer: long-cached, never sniffed; an SVG is sandboxed (opened on its own it
/// runs nothing). `None` without a logo.
pub fn logo_reply() -> Option<Reply> {
    let logo = theme().logo.clone()?;
    let mut headers = vec![
        ("content-type", logo.content_type.to_string()),
        ("cache-control", "public, max-age=86400".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
    ];
    if logo.content_type == "image/svg+xml" {
        headers.push(("content-security-policy", "sandbox".to_string()));
    }
    Some(Reply {
        status: 200,
        headers,
        body: logo.bytes,
    })
}

/// What the recipient's pages show of a document.
pub struct DocumentFacts {
    pub name: String,
    pub size: Option<u64>,
    /// The media type of a single document; `None` for several or none.
    pub media_type: Option<&'static str>,
    pub expires: Option<OffsetDateTime>,
}

/// A size in binary units, language-neutral (mails, logs, error texts): `2 GiB`, `1.5 MiB`,
/// `999 bytes`.
pub fn human_size(bytes: u64) -> String {
    size_in(Lang::En, bytes)
}

/// A size in binary units in `lang` (`2 GiB`, `1,5 Mio`).
pub fn size_in(lang: Lang, bytes: u64) -> String {
    const UNITS: [&str; 4] = ["unit-kib", "unit-mib", "unit-gib", "unit-tib"];
    if bytes < 1024 {
        return tr(lang, "size-bytes", &[("n", FluentValue::from(bytes))]);
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let mut number = format!("{value:.1}");
    if number.ends_with(".0") {
        number.truncate(number.len() - 2);
    }
    if lang != Lang::En {
        number = number.replace('.', ",");
    }
    format!("{number} {}", t(lang, UNITS[unit]))
}

/// A media type in words ("PDF document"); "File" for anything else.
pub fn type_word(lang: Lang, media_type: &str) -> String {
    type_id(media_type)
        .map(|id| t(lang, id))
        .unwrap_or_else(|| t(lang, "type-file"))
}

fn type_id(media_type: &str) -> Option<&'static str> {
    let mt = media_type.to_ascii_lowercase();
    let id = match mt.as_str() {
        "application/pdf" => "type-pdf",
        "image/jpeg" => "type-jpeg",
        "image/png" => "type-png",
        "image/gif" => "type-gif",
        "image/webp" => "type-webp",
        "image/svg+xml" => "type-svg",
        "image/tiff" => "type-tiff",
        "image/*" => "type-images",
        "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "type-word",
        "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "type-excel",
        "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            "type-powerpoint"
        }
        "text/plain" => "type-text",
        "text/csv" => "type-csv",
        "application/zip" | "application/x-zip-compressed" => "type-zip",
        m if m.starts_with("application/vnd.oasis.opendocument.") => "type-opendocument",
        m if m.starts_with("image/") => "type-image",
        m if m.starts_with("video/") => "type-video",
        m if m.starts_with("audio/") => "type-audio",
        _ => return None,
    };
    Some(id)
}

/// A rendition's name for people: the operator's label (`[branding.renditions]`), else the
/// catalogue's label for the usual names ("Low resolution"), else the name with `_`/`-` as
/// spaces and a capital first letter.
pub fn rendition_label(lang: Lang, name: &str) -> String {
    if let Some(label) = theme().rendition_labels.get(name) {
        return label.clone();
    }
    let known = ["lowres", "hires", "preview", "print", "web", "watermarked"];
    if known.contains(&name) {
        return t(lang, &format!("rendition-{name}"));
    }
    let spaced = name.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// A time as the page shows it without JavaScript (`2026-12-03 22:20 UTC`) in a `<time>`
/// element the time script rewrites in the recipient's time zone.
pub fn time_element(at: OffsetDateTime, only_time: bool) -> String {
    use time::format_description::well_known::Rfc3339;
    let at = at.to_offset(time::UtcOffset::UTC);
    let machine = at.format(&Rfc3339).unwrap_or_default();
    let shown = if only_time {
        at.format(time::macros::format_description!("[hour]:[minute] UTC"))
    } else {
        at.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
    }
    .unwrap_or_default();
    format!(
        "<time datetime=\"{machine}\"{}>{shown}</time>",
        if only_time { " data-only=\"time\"" } else { "" }
    )
}

fn expiry_row(lang: Lang, expires: Option<OffsetDateTime>) -> String {
    match expires {
        Some(at) => format!(
            "<dt>{}</dt><dd id=\"expires\">{} <span class=\"note utc-note\">{}</span></dd>",
            escape(&t(lang, "label-expires")),
            time_element(at, false),
            escape(&t(lang, "local-time-note"))
        ),
        None => format!(
            "<dt>{}</dt><dd id=\"expires\">{}</dd>",
            escape(&t(lang, "label-expires")),
            escape(&t(lang, "no-expiry"))
        ),
    }
}

fn facts(lang: Lang, doc: &DocumentFacts) -> String {
    let mut out = format!(
        "<dl><dt>{}</dt><dd>{}</dd>",
        escape(&t(lang, "label-document")),
        escape(&doc.name)
    );
    if let Some(mt) = doc.media_type {
        out.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            escape(&t(lang, "label-type")),
            escape(&type_word(lang, mt))
        ));
    }
    if let Some(size) = doc.size {
        out.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            escape(&t(lang, "label-size")),
            escape(&size_in(lang, size))
        ));
    }
    out.push_str(&expiry_row(lang, doc.expires));
    out.push_str("</dl>");
    out
}

fn form(action: &str, csrf: &str, fields: &str, button: &str) -> String {
    format!(
        "<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{fields}<button type=\"submit\">{button}</button></form>",
        csrf = escape(csrf),
        button = escape(button)
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
    lang: Lang,
    doc: &DocumentFacts,
    csrf: &str,
    error: Option<&str>,
    work: Option<&Work>,
) -> Bytes {
    let mut fields = format!(
        "<label for=\"password\">{}</label>\
         <input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus>",
        escape(&t(lang, "password-label"))
    );
    let mut notice = String::new();
    if let Some(w) = work {
        fields.push_str("<input type=\"hidden\" name=\"proof\" id=\"proof\" value=\"\">");
        notice = format!(
            "<div id=\"pow\" data-challenge=\"{}\" data-bits=\"{}\" data-ready=\"{}\" data-checking=\"{}\">\
             <p class=\"note\" id=\"pow-note\" role=\"status\">{}</p>\
             <noscript><p class=\"error\">{}</p></noscript></div>",
            escape(w.challenge),
            w.bits,
            escape(&t(lang, "pow-ready")),
            escape(&t(lang, "pow-checking")),
            escape(&t(lang, "pow-note")),
            escape(&t(lang, "pow-noscript")),
        );
    }
    let script = if work.is_some() {
        format!("<script>{POW_SCRIPT}</script>")
    } else {
        String::new()
    };
    layout(
        lang,
        &t(lang, "password-title"),
        &format!(
            "{}{}{notice}{}{script}",
            facts(lang, doc),
            error_line(error),
            form("password", csrf, &fields, &t(lang, "password-continue"))
        ),
    )
}

/// What a landing page's button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    Download,
    View,
    /// A rendition, by its name.
    Rendition(String),
}

/// One button of a document on the landing page.
pub struct Action {
    pub kind: ActionKind,
    pub href: String,
}

/// One document on the landing page and what may be done with it.
pub struct LandingDocument {
    pub name: String,
    pub size: Option<u64>,
    pub media_type: &'static str,
    /// A first-page thumbnail's address, when one can be shown.
    pub thumbnail: Option<String>,
    /// The buttons, in the order offered.
    pub actions: Vec<Action>,
}

/// Where the landing page's thumbnail of document `doc_number` (1-based) comes from, when its
/// type has one (a PDF or an image) and the gateway draws renditions (`render.enabled`). The
/// thumbnail is asked through the same link, so it passes the same checks as the page.
pub fn thumbnail_url(base: &str, doc_number: usize, media_type: &str) -> Option<String> {
    let drawable = matches!(media_type, "application/pdf" | "image/png" | "image/jpeg");
    (drawable && THUMBNAILS.load(std::sync::atomic::Ordering::Relaxed))
        .then(|| format!("{base}?doc={doc_number}&as=thumbnail"))
}

/// Whether the gateway draws thumbnails (`render.enabled`), set once at start.
static THUMBNAILS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Turns the landing pages' thumbnails on or off (from `render.enabled`, at start).
pub fn set_thumbnails(on: bool) {
    THUMBNAILS.store(on, std::sync::atomic::Ordering::Relaxed);
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
    /// The limits the form states.
    pub rules: crate::share::upload::Rules,
    /// Files received so far.
    pub received: u64,
}

/// What the upload form says about its limits, in `lang`.
fn upload_limits(lang: Lang, rules: &crate::share::upload::Rules) -> String {
    let mut text = tr(
        lang,
        "upload-limit-size",
        &[("size", FluentValue::from(size_in(lang, rules.max_bytes)))],
    );
    if let Some(types) = &rules.allowed_types {
        let words: Vec<String> = types
            .iter()
            .map(|ty| {
                type_id(ty)
                    .map(|id| t(lang, id))
                    .unwrap_or_else(|| ty.clone())
            })
            .collect();
        text.push(' ');
        text.push_str(&tr(
            lang,
            "upload-limit-types",
            &[("types", FluentValue::from(words.join(", ")))],
        ));
    }
    if !rules.overwrite {
        text.push(' ');
        text.push_str(&t(lang, "upload-limit-no-overwrite"));
    }
    text
}

/// What the landing page shows.
pub struct Landing<'a> {
    pub expires: Option<OffsetDateTime>,
    /// Who shared the documents (the share's sender, else the link's creator).
    pub sender: Option<String>,
    /// The share's message.
    pub message: Option<String>,
    /// Downloads left on a limited link.
    pub downloads_left: Option<u64>,
    pub documents: &'a [LandingDocument],
    pub upload: Option<&'a UploadForm>,
    pub view_only: bool,
    /// A fresh single-use form token per button, for links whose downloads start only from a
    /// press.
    pub button_csrf: Option<&'a dyn Fn() -> String>,
}

/// The upload part of a landing page; `heading` when documents come before it (an upload-only
/// page's title says it already).
fn upload_section(lang: Lang, form: &UploadForm, heading: bool) -> String {
    let expected = form.rules.max_files;
    let remaining = expected.map(|e| e.saturating_sub(form.received));
    let mut out = if heading {
        format!("<h2>{}</h2>", escape(&t(lang, "upload-heading")))
    } else {
        String::new()
    };
    if let (Some(expected), Some(remaining)) = (expected, remaining) {
        let args = [
            ("expected", FluentValue::from(expected)),
            ("remaining", FluentValue::from(remaining)),
        ];
        if remaining == 0 {
            out.push_str(&format!(
                "<p id=\"upload-done\" role=\"status\">{}</p>",
                escape(&tr(lang, "upload-all-received", &args))
            ));
            return out;
        }
        out.push_str(&format!(
            "<p id=\"upload-expected\">{}</p>",
            escape(&tr(lang, "upload-expected", &args))
        ));
    }
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
    out.push_str(&format!(
        "<form method=\"post\" action=\"{action}\" enctype=\"multipart/form-data\" id=\"upload-form\">{csrf}\
         <div class=\"drop\" id=\"drop\"><label for=\"files\">{drop}</label>\
         <input type=\"file\" id=\"files\" name=\"file\" multiple>\
         <label for=\"folder\">{folder}</label><input type=\"file\" id=\"folder\" name=\"file\" webkitdirectory multiple></div>\
         <p class=\"note\" id=\"upload-limits\">{limits}</p><button type=\"submit\" id=\"upload\">{button}</button>\
         <p id=\"upload-status\" role=\"status\" data-sending=\"{sending}\" data-failed=\"{failed}\"></p>\
         <ul class=\"progress\" id=\"progress\" aria-label=\"{progress}\" hidden></ul></form><script>{UPLOAD_SCRIPT}</script>",
        action = escape(&form.action),
        drop = escape(&t(lang, "upload-drop")),
        folder = escape(&t(lang, "upload-folder")),
        limits = escape(&upload_limits(lang, &form.rules)),
        button = escape(&t(lang, "upload-button")),
        sending = escape(&t(lang, "upload-sending")),
        failed = escape(&t(lang, "upload-failed-file")),
        progress = escape(&t(lang, "upload-progress")),
    ));
    out
}

fn action_label(lang: Lang, kind: &ActionKind) -> String {
    match kind {
        ActionKind::Download => t(lang, "action-download"),
        ActionKind::View => t(lang, "action-view"),
        ActionKind::Rendition(name) => tr(
            lang,
            "action-download-variant",
            &[("variant", FluentValue::from(rendition_label(lang, name)))],
        ),
    }
}

/// The landing page: who shared what, until when, each document with its thumbnail, facts and
/// buttons, and the upload form if any.
pub fn landing(lang: Lang, l: &Landing) -> Bytes {
    let documents = l.documents;
    let title = match (documents.len(), l.upload.is_some()) {
        (0, true) => t(lang, "landing-upload-title"),
        (1, _) => t(lang, "landing-one-title"),
        _ => t(lang, "landing-many-title"),
    };
    let mut body = String::new();
    if l.view_only {
        body.push_str(&format!(
            "<p class=\"note\">{}</p>",
            escape(&t(lang, "landing-view-only"))
        ));
    }
    body.push_str("<dl id=\"about\">");
    if let Some(sender) = &l.sender {
        body.push_str(&format!(
            "<dt>{}</dt><dd id=\"sender\">{}</dd>",
            escape(&t(lang, "label-sender")),
            escape(sender)
        ));
    }
    if !documents.is_empty() || l.expires.is_some() {
        body.push_str(&expiry_row(lang, l.expires));
    }
    if let Some(left) = l.downloads_left {
        body.push_str(&format!(
            "<dt>{}</dt><dd id=\"downloads-left\">{left}</dd>",
            escape(&t(lang, "label-downloads-left"))
        ));
    }
    body.push_str("</dl>");
    if let Some(message) = &l.message {
        body.push_str(&format!(
            "<h2>{}</h2><blockquote id=\"message\">{}</blockquote>",
            escape(&t(lang, "label-message")),
            escape(message)
        ));
    }
    if !documents.is_empty() {
        body.push_str("<ul class=\"docs\">");
    }
    let single = documents.len() == 1;
    for (n, doc) in documents.iter().enumerate() {
        body.push_str("<li>");
        if let Some(src) = &doc.thumbnail {
            body.push_str(&format!(
                "<img class=\"thumb\" src=\"{}\" alt=\"{}\" width=\"120\" height=\"160\">",
                escape(src),
                escape(&tr(
                    lang,
                    "thumbnail-alt",
                    &[("name", FluentValue::from(doc.name.as_str()))]
                ))
            ));
        }
        body.push_str(&format!(
            "<div><h2 class=\"doc\">{}</h2><p class=\"note\">{}",
            escape(&doc.name),
            escape(&type_word(lang, doc.media_type))
        ));
        if let Some(size) = doc.size {
            body.push_str(&format!(" · {}", escape(&size_in(lang, size))));
        }
        body.push_str("</p><p>");
        for (i, action) in doc.actions.iter().enumerate() {
            let id = if single && i == 0 {
                "download".to_string()
            } else {
                format!("action-{}-{}", n + 1, i + 1)
            };
            body.push_str(&action_button(
                &id,
                &action_label(lang, &action.kind),
                &action.href,
                l.button_csrf.map(|token| token()).as_deref(),
            ));
        }
        body.push_str("</p></div></li>");
    }
    if !documents.is_empty() {
        body.push_str("</ul>");
    } else if l.upload.is_none() {
        body.push_str(&format!(
            "<p>{}</p>",
            escape(&t(lang, "landing-no-documents"))
        ));
    }
    if let Some(form) = l.upload {
        body.push_str(&upload_section(lang, form, !documents.is_empty()));
    }
    layout(lang, &title, &body)
}

/// What an upload through the form came to: the files stored, then the error that stopped it.
pub fn upload_result(
    lang: Lang,
    stored: &[(String, u64)],
    error: Option<&str>,
    back: &str,
) -> Bytes {
    let title = match (stored.is_empty(), error) {
        (false, None) => t(lang, "upload-complete-title"),
        (false, Some(_)) => t(lang, "upload-partial-title"),
        (true, _) => t(lang, "upload-failed-title"),
    };
    let mut body = String::new();
    if !stored.is_empty() {
        body.push_str(&format!(
            "<p>{}</p><ul id=\"stored\">",
            escape(&t(lang, "upload-received"))
        ));
        for (name, bytes) in stored {
            body.push_str(&format!(
                "<li>{} ({})</li>",
                escape(name),
                escape(&size_in(lang, *bytes))
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(&error_line(error));
    body.push_str(&format!(
        "<p><a class=\"button\" id=\"back\" href=\"{}\">{}</a></p>",
        escape(back),
        escape(&t(lang, "back"))
    ));
    layout(lang, &title, &body)
}

pub fn confirm_device(lang: Lang, doc: &DocumentFacts, csrf: &str) -> Bytes {
    layout(
        lang,
        &t(lang, "landing-one-title"),
        &format!(
            "{}<p>{}</p>{}",
            facts(lang, doc),
            escape(&t(lang, "confirm-text")),
            form("trust", csrf, "", &t(lang, "confirm-button"))
        ),
    )
}

/// The button that mails a code. `first`: no browser was verified for the link yet (a
/// `require_code` link opened for the first time), so the page does not speak of another one.
pub fn send_code(
    lang: Lang,
    doc: &DocumentFacts,
    csrf: &str,
    masked: &str,
    first: bool,
    notice: Option<&str>,
) -> Bytes {
    let text = tr(
        lang,
        if first {
            "send-code-first"
        } else {
            "send-code-other"
        },
        &[("email", FluentValue::from(masked))],
    );
    layout(
        lang,
        &t(lang, "verify-title"),
        &format!(
            "{}<p>{}</p>{}{}",
            facts(lang, doc),
            escape(&text),
            error_line(notice),
            form("send_code", csrf, "", &t(lang, "send-code-button"))
        ),
    )
}

/// The code box: the link's current code works in any browser the link is opened in.
/// `valid_until` is the code's expiry (unix seconds).
pub fn enter_code(
    lang: Lang,
    doc: &DocumentFacts,
    csrf: &str,
    resend_csrf: &str,
    masked: &str,
    valid_until: i64,
    error: Option<&str>,
) -> Bytes {
    let fields = format!(
        "<label for=\"code\">{}</label>\
         <input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" autocomplete=\"one-time-code\" required autofocus>",
        escape(&t(lang, "code-label"))
    );
    let until = OffsetDateTime::from_unix_timestamp(valid_until)
        .map(|at| time_element(at, true))
        .unwrap_or_default();
    layout(
        lang,
        &t(lang, "code-title"),
        &format!(
            "{}<p>{}</p><p>{}: {until}</p>{}{}<p class=\"note\">{}</p>{}",
            facts(lang, doc),
            escape(&tr(
                lang,
                "code-sent",
                &[("email", FluentValue::from(masked))]
            )),
            escape(&t(lang, "code-valid-until")),
            error_line(error),
            form("verify_code", csrf, &fields, &t(lang, "code-verify")),
            escape(&t(lang, "code-no-mail")),
            form("send_code", resend_csrf, "", &t(lang, "code-resend"))
        ),
    )
}

/// "Please ask {sender} for a new link", or the person who sent it.
pub fn ask_sender(lang: Lang, sender: Option<&str>) -> String {
    match sender {
        Some(s) => tr(
            lang,
            "ask-sender-named",
            &[("sender", FluentValue::from(s))],
        ),
        None => t(lang, "ask-sender"),
    }
}

/// A link on which so many wrong codes were tried that no new browser can be verified by code.
pub fn no_more_codes(lang: Lang, doc: &DocumentFacts, sender: Option<&str>) -> Bytes {
    layout(
        lang,
        &t(lang, "no-codes-title"),
        &format!(
            "{}<p class=\"error\" role=\"alert\">{}</p><p>{}</p>",
            facts(lang, doc),
            escape(&t(lang, "no-codes-text")),
            escape(&ask_sender(lang, sender))
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

/// A notice with a link back to the page (review forms); `title` and `text` in `lang` already.
pub fn notice_with_back(lang: Lang, title: &str, text: &str, back: &str) -> Bytes {
    layout(
        lang,
        title,
        &format!(
            "<p id=\"notice\">{}</p><p><a class=\"button\" id=\"back\" href=\"{}\">{}</a></p>",
            escape(text),
            escape(back),
            escape(&t(lang, "back"))
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::i18n::take_problems;
    use crate::share::upload::Rules;

    fn text(b: Bytes) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    fn doc_facts() -> DocumentFacts {
        DocumentFacts {
            name: "Contract.pdf".into(),
            size: Some(2 * 1024 * 1024 * 1024),
            media_type: Some("application/pdf"),
            expires: OffsetDateTime::from_unix_timestamp(1_796_336_425).ok(),
        }
    }

    fn rules() -> Rules {
        Rules {
            max_bytes: 10 * 1024 * 1024,
            allowed_types: Some(vec!["application/pdf".into(), "image/*".into()]),
            overwrite: false,
            max_files: Some(3),
        }
    }

    /// Every page the recipients meet, in `lang`.
    fn every_page(lang: Lang) -> Vec<(&'static str, Bytes)> {
        let docs = vec![
            LandingDocument {
                name: "Contract.pdf".into(),
                size: Some(300_000),
                media_type: "application/pdf",
                thumbnail: Some("/s/x?doc=1&as=thumbnail".into()),
                actions: vec![
                    Action {
                        kind: ActionKind::Download,
                        href: "/s/x?download&doc=1".into(),
                    },
                    Action {
                        kind: ActionKind::Rendition("lowres".into()),
                        href: "/s/x?download&doc=1&as=lowres".into(),
                    },
                ],
            },
            LandingDocument {
                name: "Photo.jpg".into(),
                size: Some(999),
                media_type: "image/jpeg",
                thumbnail: None,
                actions: vec![Action {
                    kind: ActionKind::View,
                    href: "/s/x?download&doc=2".into(),
                }],
            },
        ];
        let form = UploadForm {
            action: "/s/x?upload".into(),
            csrf: Some("t".into()),
            rules: rules(),
            received: 1,
        };
        let landing_page = |upload: Option<&UploadForm>, view_only| {
            landing(
                lang,
                &Landing {
                    expires: doc_facts().expires,
                    sender: Some("Alice".into()),
                    message: Some("Here it is".into()),
                    downloads_left: Some(2),
                    documents: &docs,
                    upload,
                    view_only,
                    button_csrf: None,
                },
            )
        };
        let work = Work {
            challenge: "c",
            bits: 16,
        };
        let mut pages = vec![
            ("landing", landing_page(Some(&form), false)),
            ("landing-view-only", landing_page(None, true)),
            (
                "password",
                password_form(lang, &doc_facts(), "t", Some("x"), Some(&work)),
            ),
            ("confirm", confirm_device(lang, &doc_facts(), "t")),
            (
                "send-code-first",
                send_code(lang, &doc_facts(), "t", "j***@example.org", true, None),
            ),
            (
                "send-code",
                send_code(lang, &doc_facts(), "t", "j***@example.org", false, None),
            ),
            (
                "enter-code",
                enter_code(
                    lang,
                    &doc_facts(),
                    "t",
                    "u",
                    "j***@example.org",
                    1_796_336_425,
                    None,
                ),
            ),
            ("no-codes", no_more_codes(lang, &doc_facts(), Some("Alice"))),
            (
                "upload-result",
                upload_result(lang, &[("a.pdf".into(), 10)], None, "/s/x"),
            ),
            ("notice", notice_with_back(lang, "t", "x", "/s/x")),
        ];
        for status in [404, 405, 429, 502, 503, 504, 500] {
            pages.push(("status", for_status(lang, status)));
        }
        for id in [
            "form-unreadable",
            "form-expired",
            "form-spent",
            "code-too-many",
            "code-last-try",
            "review-closed",
            "decision-recorded",
            "comment-sent",
            "gone",
            "render-busy",
            "render-refused",
            "render-limit",
            "render-failed",
        ] {
            pages.push(("notice", notice(lang, id)));
        }
        pages.push((
            "viewer",
            crate::share::viewer::page(
                lang,
                &crate::share::viewer::Shown {
                    name: "Contract.pdf",
                    doc: 1,
                    pages: 3,
                    width: 800,
                    widths: &[480, 800],
                    mark: Some("x@y"),
                    ticket: None,
                },
            ),
        ));
        pages
    }

    #[test]
    fn every_page_renders_in_every_language_without_a_missing_message() {
        take_problems();
        for lang in Lang::ALL {
            for (name, page) in every_page(lang) {
                let html = text(page);
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", lang.code())),
                    "{name}"
                );
            }
            // Labels used by the other modules.
            for id in [
                "bad-request-title",
                "bad-request-next",
                "not-allowed-title",
                "recipient-browser-only",
                "password-wrong",
                "password-throttled",
                "password-needs-work",
                "password-bad-proof",
                "code-resend-throttled",
                "code-mail-cap-current",
                "code-mail-cap-later",
                "code-mail-failed",
                "code-expired",
                "code-discarded",
                "code-wrong",
                "label-documents",
                "file-upload",
                "not-granted-upload",
                "not-granted-open",
                "not-granted-original",
                "not-granted-view",
                "not-granted-rendition",
                "not-granted-next",
            ] {
                t(lang, id);
            }
            tr(
                lang,
                "code-mail-cap",
                &[
                    ("count", FluentValue::from(10)),
                    ("email", FluentValue::from("e")),
                ],
            );
            tr(
                lang,
                "several-documents",
                &[("count", FluentValue::from(2))],
            );
            for name in ["lowres", "hires", "preview", "print", "web", "watermarked"] {
                rendition_label(lang, name);
            }
            for mt in [
                "application/pdf",
                "image/png",
                "image/gif",
                "image/webp",
                "image/svg+xml",
                "image/tiff",
                "image/x-icon",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.oasis.opendocument.text",
                "text/plain",
                "text/csv",
                "application/zip",
                "video/mp4",
                "audio/mpeg",
                "application/x-unknown",
            ] {
                type_word(lang, mt);
            }
            size_in(lang, 1);
        }
        let problems = take_problems();
        assert!(problems.is_empty(), "missing messages: {problems:?}");
    }

    #[test]
    fn pages_speak_the_language_asked_for() {
        let de = text(for_status(Lang::De, 404));
        assert!(de.contains("Bitten Sie die Person"), "{de}");
        let fr = text(send_code(
            Lang::Fr,
            &doc_facts(),
            "t",
            "j***@e.org",
            true,
            None,
        ));
        assert!(fr.contains("Pour ouvrir ce document"), "{fr}");
    }

    #[test]
    fn the_404_is_the_same_bytes_each_time_and_asks_for_a_new_link() {
        for lang in Lang::ALL {
            assert_eq!(for_status(lang, 404), for_status(lang, 404));
        }
        let en = text(for_status(Lang::En, 404));
        assert!(en.contains("ask the person who sent it to you for a new link"));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn sizes_are_in_binary_units_with_the_right_suffix() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(2 * 1024 * 1024 * 1024), "2 GiB");
        assert_eq!(human_size(1536 * 1024), "1.5 MiB");
        assert_eq!(human_size(300_000), "293 KiB");
        assert_eq!(size_in(Lang::De, 1536 * 1024), "1,5 MiB");
        assert_eq!(size_in(Lang::Fr, 2 * 1024 * 1024 * 1024), "2 Gio");
    }

    #[test]
    fn labels_are_words() {
        assert_eq!(type_word(Lang::En, "application/pdf"), "PDF document");
        assert_eq!(type_word(Lang::En, "image/jpeg"), "JPEG image");
        assert_eq!(
            type_word(
                Lang::En,
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            ),
            "Word document"
        );
        assert_eq!(type_word(Lang::En, "application/x-thing"), "File");
        assert_eq!(rendition_label(Lang::En, "lowres"), "Low resolution");
        assert_eq!(rendition_label(Lang::En, "board_pack"), "Board pack");
        let page = text(for_status(Lang::En, 502));
        assert!(!page.contains("Bad gateway") && page.contains("could not be reached"));
    }

    #[test]
    fn times_are_utc_without_javascript_and_local_with_it() {
        let html = text(password_form(Lang::En, &doc_facts(), "t", None, None));
        assert!(
            html.contains("<time datetime=\"2026-12-03T22:20:25Z\""),
            "machine-readable time: {html}"
        );
        assert!(html.contains(" UTC</time>"));
        assert!(html.contains(TIME_SCRIPT));
        assert!(theme()
            .csp()
            .contains(&format!("'sha256-{}'", sha256_b64(TIME_SCRIPT))));
    }

    #[test]
    fn accents_and_logos_are_checked() {
        assert_eq!(check_accent("#0B57D0").unwrap(), "#0b57d0");
        for bad in ["red", "#fff", "#0b57d0;}", "0b57d0", "#0b57dz", "#ffff00"] {
            assert!(check_accent(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_logo(b"\x89PNG\r\n\x1a\nrest".to_vec())
                .unwrap()
                .content_type,
            "image/png"
        );
        assert_eq!(
            check_logo(
                b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec()
            )
            .unwrap()
            .content_type,
            "image/svg+xml"
        );
        assert!(check_logo(b"<html><script>".to_vec()).is_err());
        let theme = Theme::new(Some("Acme".into()), None, Some("#123456"));
        assert!(theme.style.contains("#123456"));
        assert!(theme
            .csp()
            .contains(&format!("'sha256-{}'", sha256_b64(&theme.style))));
    }

    #[test]
    fn hostile_names_are_escaped_on_pages() {
        let doc = LandingDocument {
            name: "<script>alert(1)</script>".into(),
            size: None,
            media_type: "application/pdf",
            thumbnail: None,
            actions: vec![Action {
                kind: ActionKind::Download,
                href: "/s/x?download".into(),
            }],
        };
        let html = text(landing(
            Lang::En,
            &Landing {
                expires: None,
                sender: Some("<b>".into()),
                message: Some("<i>hi</i>".into()),
                downloads_left: None,
                documents: &[doc],
                upload: None,
                view_only: false,
                button_csrf: None,
            },
        ));
        assert!(!html.contains("<script>alert") && !html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("&lt;script&gt;"));
        let form = UploadForm {
            action: "/s/x?upload".into(),
            csrf: Some("\"><b>".into()),
            rules: rules(),
            received: 0,
        };
        let html = text(landing(
            Lang::En,
            &Landing {
                expires: None,
                sender: None,
                message: None,
                downloads_left: None,
                documents: &[],
                upload: Some(&form),
                view_only: false,
                button_csrf: None,
            },
        ));
        assert!(!html.contains("<b>"));
        assert!(
            html.contains(UPLOAD_SCRIPT),
            "the script whose hash the CSP allows"
        );
        let doc = LandingDocument {
            name: "a.pdf".into(),
            size: Some(10),
            media_type: "application/pdf",
            thumbnail: None,
            actions: vec![Action {
                kind: ActionKind::Download,
                href: "/s/x?download&a=\"><b>".into(),
            }],
        };
        let html = text(landing(
            Lang::En,
            &Landing {
                expires: None,
                sender: None,
                message: None,
                downloads_left: None,
                documents: &[doc],
                upload: None,
                view_only: false,
                button_csrf: Some(&|| "\"><i>".to_string()),
            },
        ));
        assert!(
            html.contains("<form class=\"inline\" method=\"post\""),
            "a limited link's button posts"
        );
        assert!(!html.contains("<b>") && !html.contains("<i>") && !html.contains("<a class"));
    }

    #[test]
    fn the_upload_form_counts_expected_files_and_goes_once_all_arrived() {
        let mut form = UploadForm {
            action: "/s/x?upload".into(),
            csrf: None,
            rules: rules(),
            received: 1,
        };
        let page = |form: &UploadForm| {
            text(landing(
                Lang::En,
                &Landing {
                    expires: None,
                    sender: None,
                    message: None,
                    downloads_left: None,
                    documents: &[],
                    upload: Some(form),
                    view_only: false,
                    button_csrf: None,
                },
            ))
        };
        let open = page(&form);
        assert!(
            open.contains("Expected files: 3. Still to send: 2."),
            "{open}"
        );
        assert!(open.contains("id=\"upload-form\"") && open.contains("webkitdirectory"));
        assert!(open.contains("Up to 10 MiB per file."));
        assert!(open.contains("PDF document, Images"));
        form.received = 3;
        let done = page(&form);
        assert!(!done.contains("id=\"upload-form\""), "{done}");
        assert!(done.contains("All 3 expected files were received"));
    }

    #[test]
    fn the_password_form_carries_the_work_only_when_asked() {
        let doc = DocumentFacts {
            name: "d".into(),
            size: None,
            media_type: None,
            expires: None,
        };
        let plain = text(password_form(Lang::En, &doc, "t", None, None));
        assert!(!plain.contains("<script") && !plain.contains("proof"));
        let work = Work {
            challenge: "16.1.ab.\"><b>",
            bits: 16,
        };
        let html = text(password_form(Lang::En, &doc, "t", None, Some(&work)));
        assert!(
            html.contains(POW_SCRIPT)
                && html.contains("name=\"proof\"")
                && html.contains("data-bits=\"16\"")
        );
        assert!(!html.contains("<b>"), "the challenge is escaped");
        assert!(html.contains("<noscript>") && html.contains("heavy guessing"));
        assert!(theme()
            .csp()
            .contains(&format!("'sha256-{}'", sha256_b64(POW_SCRIPT))));
    }
}
