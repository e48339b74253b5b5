//! The view-only viewer and the gateway's page images: what `?as=page`, `?as=thumbnail` and a
//! view of a PDF or image answer (see `docs/documents.md`).
//!
//! A viewer is a page of the gateway's own, under a strict CSP (no script at all; images only
//! from the gateway), that shows the document as page images. No original byte reaches the
//! browser, so a view-only recipient holds pictures of the pages, not the file.

use std::sync::LazyLock;

use base64::Engine;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::model::link::{Link, Right, Target};
use crate::model::markup::escape;
use crate::render::pool::RenderSettings;

/// What the gateway makes for a request instead of relaying the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Render {
    /// One page as an image (`?as=page&page=N&width=W`); not counted.
    Page { page: u32, width: u32 },
    /// The first page small (`?as=thumbnail`); not counted.
    Thumbnail,
    /// The viewer page (a view of a PDF or image); counted as the link counts a view, except
    /// when it is the same view again at another zoom (`again`: the request carries the view's
    /// genuine page ticket).
    Viewer { width: u32, again: bool },
    /// A rendition the operator defines (`download:NAME`); counted as a download.
    Generated(String),
    /// A download of a PDF or image stamped with the recipient's identity (`watermark: all`);
    /// counted as a download. Holds the variant (`download`, `download:NAME`).
    Stamped(String),
}

impl Render {
    /// Whether the answer draws from the link's download count.
    pub fn counted(&self) -> bool {
        match self {
            Render::Viewer { again, .. } => !again,
            Render::Generated(_) | Render::Stamped(_) => true,
            Render::Page { .. } | Render::Thumbnail => false,
        }
    }

    /// The variant named in events and logs.
    pub fn variant(&self) -> String {
        match self {
            Render::Page { .. } => "page".to_string(),
            Render::Thumbnail => "thumbnail".to_string(),
            Render::Viewer { .. } => "view".to_string(),
            Render::Generated(name) => format!("download:{name}"),
            Render::Stamped(variant) => variant.clone(),
        }
    }
}

/// A page request whose query cannot be read (answered with the uniform 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unreadable page request")]
pub struct Unreadable;

/// A page-image request: `as=page` (with `page` and `width`) or `as=thumbnail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Page { page: u32, width: Option<u32> },
    Thumbnail,
}

fn number(value: &str) -> Option<u32> {
    if value.is_empty() || value.len() > 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The `width` of a query, if any (`Err` when unreadable).
pub fn width_of(query: Option<&str>) -> Result<Option<u32>, Unreadable> {
    let mut width = None;
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix("width=") {
            width = Some(number(v).ok_or(Unreadable)?);
        }
    }
    Ok(width)
}

/// Reads `as=page|thumbnail` from a query: `Ok(None)` for any other request, `Err` for a page
/// request that is unreadable.
pub fn ask_of(query: Option<&str>) -> Result<Option<Ask>, Unreadable> {
    let Some(query) = query else { return Ok(None) };
    let mut what = None;
    let mut page = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "as" if what.is_none() => what = Some(value),
            "page" if page.is_none() => page = Some(number(value).ok_or(Unreadable)?),
            _ => {}
        }
    }
    match what {
        Some("page") => Ok(Some(Ask::Page {
            page: page.unwrap_or(1).max(1),
            width: width_of(Some(query))?,
        })),
        Some("thumbnail") => Ok(Some(Ask::Thumbnail)),
        _ => Ok(None),
    }
}

/// The page ticket (`pt=`) a page image's request carries, if any.
pub fn ticket_of(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("pt="))
}

/// The query without `as`, `page` and `width` (the `doc` choice stays).
pub fn doc_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| p.starts_with("doc="))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Whether a link may see page images of its documents: it grants viewing or downloading the
/// original (a browser held to view-only may too).
pub fn may_see_pages(link: &Link, view_only: bool) -> bool {
    view_only || link.allows(&Right::View) || link.allows(&Right::Download)
}

/// Whether the gateway shows this document in its viewer instead of sending it inline.
pub fn viewable(settings: &RenderSettings, target: &Target) -> bool {
    settings.enabled && crate::render::renderable_name(&target.filename)
}

/// The identity line stamped for this request (`watermark` set on the link): the recipient's
/// address, else the link's id; now; the client's address.
pub fn mark_for(link: &Link, client: &str) -> Option<String> {
    if link.watermark == crate::model::link::Watermark::Off {
        return None;
    }
    let who = link
        .recipient
        .as_ref()
        .and_then(|r| r.email.clone())
        .unwrap_or_else(|| format!("link {}", link.id));
    Some(crate::render::watermark::mark_text(
        &who,
        time::OffsetDateTime::now_utc(),
        client.parse().ok(),
    ))
}

/// The media type of a stamped download, by the bytes the worker made.
pub fn stamped_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"%PDF-") {
        "application/pdf"
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else {
        "image/png"
    }
}

/// Stamps `text` on a page image the gateway made (PNG), off the async threads.
pub async fn stamp_page(png: Vec<u8>, text: String) -> Result<Vec<u8>, crate::render::RenderError> {
    use crate::render::{Format, RenderError};
    tokio::task::spawn_blocking(move || {
        let mut img = ::image::load_from_memory_with_format(&png, ::image::ImageFormat::Png)
            .map_err(|e| RenderError::Failed(format!("reading a page image: {e}")))?
            .into_rgba8();
        crate::render::watermark::stamp_raster(&mut img, &text);
        crate::render::image::encode(&img, Format::Png).map(|o| o.bytes)
    })
    .await
    .map_err(|e| crate::render::RenderError::Failed(e.to_string()))?
}

/// Stamps `text` on a PDF or image the gateway made itself (a generated rendition).
pub async fn stamp_made(
    bytes: Vec<u8>,
    text: String,
) -> Result<Vec<u8>, crate::render::RenderError> {
    use crate::render::RenderError;
    tokio::task::spawn_blocking(move || {
        if bytes.starts_with(b"%PDF-") {
            return crate::render::watermark::stamp_pdf(&bytes, &text)
                .map_err(|e| RenderError::Failed(e.to_string()));
        }
        let format = match ::image::guess_format(&bytes) {
            Ok(::image::ImageFormat::Jpeg) => crate::render::Format::Jpeg,
            _ => crate::render::Format::Png,
        };
        let mut img = ::image::load_from_memory(&bytes)
            .map_err(|e| RenderError::Failed(format!("reading an image: {e}")))?
            .into_rgba8();
        crate::render::watermark::stamp_raster(&mut img, &text);
        crate::render::image::encode(&img, format).map(|o| o.bytes)
    })
    .await
    .map_err(|e| RenderError::Failed(e.to_string()))?
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#525659;color:#fff}\
header{position:sticky;top:0;background:#323639;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
h1{font-size:1rem;margin:0;flex:1}.mark{margin:0;font-size:.8rem;color:#fbb}nav a{color:#fff;margin:0 .3rem}nav a.on{font-weight:700;text-decoration:none}\
main{display:flex;flex-direction:column;align-items:center;gap:1rem;padding:1rem}\
img{display:block;background:#fff;width:100%;height:auto;box-shadow:0 1px 4px #0008;\
-webkit-user-drag:none;user-select:none}";

fn sha256_b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The viewer's CSP: no script, no form, images only from the gateway, its one stylesheet.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; img-src 'self'; style-src 'sha256-{}'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        sha256_b64(STYLE)
    )
});

/// Headers of the viewer page.
pub fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "text/html; charset=utf-8".to_string()),
        ("cache-control", "private, no-store".to_string()),
        ("x-content-type-options", "nosniff".to_string()),
        ("content-security-policy", CSP.clone()),
        ("referrer-policy", "no-referrer".to_string()),
    ]
}

/// What one viewer page shows.
pub struct Shown<'a> {
    /// The document's file name (the page's title).
    pub name: &'a str,
    /// Which document of the link (1-based).
    pub doc: usize,
    pub pages: u32,
    /// The page images' width, and the widths the zoom links offer.
    pub width: u32,
    pub widths: &'a [u32],
    /// The identity line stamped on the pages (`watermark` set), shown above them too.
    pub mark: Option<&'a str>,
    /// The page ticket of a counted view (limited links), carried by every page image's URL.
    pub ticket: Option<&'a str>,
}

/// The viewer page: the document's pages as images, zoom links. Page images are asked with
/// relative URLs (same link, same cookies).
pub fn page(lang: crate::share::i18n::Lang, shown: &Shown<'_>) -> Bytes {
    let Shown {
        name,
        doc,
        pages,
        width,
        widths,
        mark,
        ticket,
    } = *shown;
    let ticket = ticket
        .map(|t| format!("&amp;pt={}", escape(t)))
        .unwrap_or_default();
    let mut zoom = String::new();
    for (i, w) in widths.iter().enumerate() {
        let class = if *w == width { " class=\"on\"" } else { "" };
        zoom.push_str(&format!(
            "<a{class} href=\"?doc={doc}&amp;as=view&amp;download&amp;width={w}{ticket}\">{label}</a>",
            label = ["S", "M", "L", "XL", "XXL", "6", "7", "8"]
                .get(i)
                .copied()
                .unwrap_or("+")
        ));
    }
    let mut imgs = String::new();
    for p in 1..=pages {
        let loading = if p <= 2 { "eager" } else { "lazy" };
        imgs.push_str(&format!(
            "<img src=\"?doc={doc}&amp;as=page&amp;page={p}&amp;width={width}{ticket}\" loading=\"{loading}\" \
             style=\"max-width:{width}px\" alt=\"{alt}\">\n",
            alt = escape(&crate::share::i18n::tr(
                lang,
                "viewer-page",
                &[("page", p.into()), ("pages", pages.into())]
            )),
        ));
    }
    let note = mark
        .map(|m| format!("<p class=\"mark\">{}</p>", escape(m)))
        .unwrap_or_default();
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>{STYLE}</style></head>\n\
         <body><header><h1>{title}</h1><nav aria-label=\"{zoom_label}\">{zoom_label}: {zoom}</nav>{note}</header>\n\
         <main>\n{imgs}</main></body></html>\n",
        title = escape(name),
        code = lang.code(),
        zoom_label = escape(&crate::share::i18n::t(lang, "viewer-zoom")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests_are_read_strictly() {
        assert_eq!(
            ask_of(Some("doc=2&as=page&page=3&width=800")),
            Ok(Some(Ask::Page {
                page: 3,
                width: Some(800)
            }))
        );
        assert_eq!(ask_of(Some("as=thumbnail&doc=1")), Ok(Some(Ask::Thumbnail)));
        assert_eq!(ask_of(Some("as=view")), Ok(None));
        assert_eq!(ask_of(None), Ok(None));
        assert!(ask_of(Some("as=page&page=-1")).is_err());
        assert!(ask_of(Some("as=page&width=99999999")).is_err());
        assert_eq!(doc_query(Some("doc=2&as=page")), Some("doc=2".to_string()));
    }

    #[test]
    fn the_viewer_has_no_link_to_the_original_and_no_script() {
        let html = String::from_utf8(
            page(
                crate::share::i18n::Lang::En,
                &Shown {
                    name: "a<b>.pdf",
                    doc: 1,
                    pages: 3,
                    width: 800,
                    widths: &[480, 800],
                    mark: Some("x@y"),
                    ticket: Some("tk"),
                },
            )
            .to_vec(),
        )
        .expect("utf-8");
        assert!(html.contains("a&lt;b&gt;.pdf"));
        assert_eq!(html.matches("as=page").count(), 3);
        // Every page image and every zoom link carries the view's page ticket.
        assert_eq!(html.matches("&amp;pt=tk\"").count(), 3 + 2);
        assert!(!html.contains("<script"));
        assert!(!html.contains("as=original"));
        assert!(!CSP.contains("script-src"));
    }
}
