//! Identity watermarks: the recipient, the time and the client address, stamped on what a link
//! shows or hands out, so that a leaked copy names its source.
//!
//! A watermark deters and traces; it is not DRM. Anyone can photograph a screen, crop an image or
//! rewrite a PDF without the overlay; what the stamp gives is that a copy found elsewhere carries
//! the name of the link it left through.
//!
//! - [`stamp_raster`] draws the text into a page image (tiled rows across the page plus one
//!   stronger line at the foot), with a fixed 8×8 bitmap font scaled to the image, so no font file
//!   is read at run time.
//! - [`stamp_pdf`] adds the text to every page of a PDF as an **incremental update**: the original
//!   bytes are kept as they are, and new objects (one font, one transparency state, two content
//!   streams per page wrapping the page's own content in `q … Q`) are appended after them. No page
//!   is decoded or re-encoded; a reader shows the overlay above the page.

use std::net::IpAddr;

use image::{Rgba, RgbaImage};
use lopdf::{dictionary, IncrementalDocument, Object, ObjectId};
use time::OffsetDateTime;

/// Why a PDF could not be stamped.
#[derive(Debug, thiserror::Error)]
pub enum WatermarkError {
    #[error("the file is not a PDF that can be read: {0}")]
    Unreadable(String),
    #[error("the PDF is encrypted, so no overlay can be added to it")]
    Encrypted,
    #[error("the PDF has no pages")]
    NoPages,
    #[error("the PDF has more than {0} pages")]
    TooManyPages(usize),
    #[error("the stamped PDF could not be written: {0}")]
    Write(String),
}

/// Most pages [`stamp_pdf`] stamps; larger documents are refused rather than half stamped.
pub const MAX_PDF_PAGES: usize = 5_000;

/// The line stamped for one recipient: who (their address, or the link's id), when (UTC, to the
/// minute) and from where. Plain ASCII, so both the bitmap font and the PDF's standard font can
/// draw every character; anything else becomes `?`.
pub fn mark_text(who: &str, at: OffsetDateTime, client: Option<IpAddr>) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let when = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    let mut text = ascii_only(who.trim());
    text.truncate(120);
    text.push_str(" - ");
    text.push_str(&when);
    if let Some(ip) = client {
        text.push_str(" - ");
        text.push_str(&ip.to_string());
    }
    text
}

fn ascii_only(text: &str) -> String {
    text.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// How strongly the tiled rows and the foot line cover the page (0–255).
const TILE_ALPHA: u16 = 70;
const FOOT_ALPHA: u16 = 190;
const INK: [u8; 3] = [180, 20, 20];

/// Draws `text` into `img`: rows of the text repeated across the whole page, each shifted, and
/// the text once more, stronger, at the bottom left. The glyph size follows the image width so
/// that the stamp stays legible on a thumbnail and on a 2,000-pixel page alike.
pub fn stamp_raster(img: &mut RgbaImage, text: &str) {
    let text = ascii_only(text);
    let (w, h) = img.dimensions();
    if w < 16 || h < 16 || text.is_empty() {
        return;
    }
    let scale = (w / 300).clamp(1, 6);
    let glyph = 8 * scale;
    let line_width = glyph * text.chars().count() as u32;
    let gap = glyph * 4;
    let step_y = (glyph * 6).max(h / 6);
    let mut y = glyph;
    let mut row = 0u32;
    while y + glyph < h.saturating_sub(glyph * 2) {
        // Each row starts a little further left, so the rows read as a diagonal band.
        let shift = (row * glyph * 5) % (line_width + gap);
        let mut x = -(shift as i64);
        while x < i64::from(w) {
            draw_text(img, &text, x, i64::from(y), scale, TILE_ALPHA);
            x += i64::from(line_width + gap);
        }
        y += step_y;
        row += 1;
    }
    let foot_scale = scale.max(1);
    let foot_y = i64::from(h) - i64::from(8 * foot_scale) - i64::from(foot_scale * 2);
    draw_text(
        img,
        &text,
        i64::from(foot_scale * 2),
        foot_y,
        foot_scale,
        FOOT_ALPHA,
    );
}

fn draw_text(img: &mut RgbaImage, text: &str, x0: i64, y0: i64, scale: u32, alpha: u16) {
    let (w, h) = img.dimensions();
    let s = i64::from(scale);
    for (i, c) in text.chars().enumerate() {
        let gx = x0 + i as i64 * 8 * s;
        if gx >= i64::from(w) {
            break;
        }
        if gx + 8 * s < 0 {
            continue;
        }
        let Some(rows) = glyph_rows(c) else { continue };
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..8i64 {
                if bits & (1 << rx) == 0 {
                    continue;
                }
                for dy in 0..s {
                    let py = y0 + ry as i64 * s + dy;
                    if py < 0 || py >= i64::from(h) {
                        continue;
                    }
                    for dx in 0..s {
                        let px = gx + rx * s + dx;
                        if px < 0 || px >= i64::from(w) {
                            continue;
                        }
                        blend(img.get_pixel_mut(px as u32, py as u32), alpha);
                    }
                }
            }
        }
    }
}

fn glyph_rows(c: char) -> Option<[u8; 8]> {
    use font8x8::UnicodeFonts;
    font8x8::BASIC_FONTS.get(c)
}

fn blend(px: &mut Rgba<u8>, alpha: u16) {
    for (channel, ink) in px.0.iter_mut().take(3).zip(INK) {
        let mixed = (u16::from(*channel) * (255 - alpha) + u16::from(ink) * alpha) / 255;
        *channel = mixed as u8;
    }
    px.0[3] = px.0[3].max(alpha as u8);
}

/// Adds `text` to every page of `pdf` as an incremental update (see the module's notes) and
/// returns the whole new file: the original bytes, then the update.
pub fn stamp_pdf(pdf: &[u8], text: &str) -> Result<Vec<u8>, WatermarkError> {
    let text = ascii_only(text);
    let mut doc: IncrementalDocument = pdf
        .try_into()
        .map_err(|e: lopdf::Error| WatermarkError::Unreadable(e.to_string()))?;
    let pages: Vec<ObjectId> = {
        let prev = doc.get_prev_documents();
        if prev.is_encrypted() {
            return Err(WatermarkError::Encrypted);
        }
        let mut pages = Vec::new();
        for id in prev.page_iter() {
            if pages.len() == MAX_PDF_PAGES {
                return Err(WatermarkError::TooManyPages(MAX_PDF_PAGES));
            }
            pages.push(id);
        }
        pages
    };
    if pages.is_empty() {
        return Err(WatermarkError::NoPages);
    }
    let font = doc.new_document.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let state = doc.new_document.add_object(dictionary! {
        "Type" => "ExtGState",
        "ca" => 0.3,
        "CA" => 0.3,
    });
    let foot_state = doc.new_document.add_object(dictionary! {
        "Type" => "ExtGState",
        "ca" => 0.75,
        "CA" => 0.75,
    });
    let open = doc.new_document.add_object(lopdf::Stream::new(
        lopdf::Dictionary::new(),
        b"q\n".to_vec(),
    ));
    for page in pages {
        let (x0, y0, width, height) = media_box(doc.get_prev_documents(), page);
        add_resource(&mut doc, page, b"Font", b"LinkgateMark", font)?;
        add_resource(&mut doc, page, b"ExtGState", b"LinkgateTile", state)?;
        add_resource(&mut doc, page, b"ExtGState", b"LinkgateFoot", foot_state)?;
        let overlay = overlay_content(&text, x0, y0, width, height);
        let overlay = doc
            .new_document
            .add_object(lopdf::Stream::new(lopdf::Dictionary::new(), overlay));
        wrap_contents(&mut doc, page, open, overlay)?;
    }
    let mut out = Vec::with_capacity(pdf.len() + 4096);
    doc.save_to(&mut out)
        .map_err(|e| WatermarkError::Write(e.to_string()))?;
    Ok(out)
}

/// The page's visible area in points, from its own or an inherited `MediaBox`; US Letter when
/// none can be read.
fn media_box(doc: &lopdf::Document, page: ObjectId) -> (f64, f64, f64, f64) {
    let mut node = doc.get_dictionary(page).ok();
    for _ in 0..32 {
        let Some(dict) = node else { break };
        if let Ok(Object::Array(b)) = dict
            .get(b"MediaBox")
            .and_then(|o| doc.dereference(o).map(|(_, o)| o))
        {
            let n: Vec<f64> = b.iter().filter_map(number).collect();
            if n.len() == 4 {
                let (x0, x1) = (n[0].min(n[2]), n[0].max(n[2]));
                let (y0, y1) = (n[1].min(n[3]), n[1].max(n[3]));
                if x1 - x0 >= 1.0 && y1 - y0 >= 1.0 {
                    return (x0, y0, x1 - x0, y1 - y0);
                }
            }
            break;
        }
        node = dict
            .get(b"Parent")
            .and_then(Object::as_reference)
            .and_then(|id| doc.get_dictionary(id))
            .ok();
    }
    (0.0, 0.0, 612.0, 792.0)
}

fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// Names `id` as `name` in the page's `/Resources /<kind>` dictionary, copying what the update
/// changes into the new revision.
fn add_resource(
    doc: &mut IncrementalDocument,
    page: ObjectId,
    kind: &[u8],
    name: &[u8],
    id: ObjectId,
) -> Result<(), WatermarkError> {
    let bad = |e: lopdf::Error| WatermarkError::Unreadable(e.to_string());
    let resources = doc.get_or_create_resources(page).map_err(bad)?;
    let resources = resources.as_dict_mut().map_err(bad)?;
    if !resources.has(kind) {
        resources.set(kind, lopdf::Dictionary::new());
    }
    let entry = resources.get_mut(kind).map_err(bad)?;
    if let Object::Reference(sub) = *entry {
        doc.opt_clone_object_to_new_document(sub).map_err(bad)?;
        let dict = doc
            .new_document
            .get_object_mut(sub)
            .and_then(Object::as_dict_mut)
            .map_err(bad)?;
        dict.set(name, Object::Reference(id));
    } else {
        entry
            .as_dict_mut()
            .map_err(bad)?
            .set(name, Object::Reference(id));
    }
    Ok(())
}

/// The page's contents become `[q, …its own streams…, overlay]`; the overlay starts with `Q`,
/// so whatever state the page's own content leaves behind is undone before the stamp is drawn.
fn wrap_contents(
    doc: &mut IncrementalDocument,
    page: ObjectId,
    open: ObjectId,
    overlay: ObjectId,
) -> Result<(), WatermarkError> {
    let bad = |e: lopdf::Error| WatermarkError::Unreadable(e.to_string());
    let own: Vec<Object> = {
        let prev = doc.get_prev_documents();
        let dict = prev.get_dictionary(page).map_err(bad)?;
        match dict.get(b"Contents") {
            Ok(Object::Reference(id)) => match prev.get_object(*id) {
                Ok(Object::Array(items)) => items.clone(),
                _ => vec![Object::Reference(*id)],
            },
            Ok(Object::Array(items)) => items.clone(),
            _ => Vec::new(),
        }
    };
    let mut contents = Vec::with_capacity(own.len() + 2);
    contents.push(Object::Reference(open));
    contents.extend(own);
    contents.push(Object::Reference(overlay));
    doc.opt_clone_object_to_new_document(page).map_err(bad)?;
    let dict = doc
        .new_document
        .get_object_mut(page)
        .and_then(Object::as_dict_mut)
        .map_err(bad)?;
    dict.set("Contents", contents);
    Ok(())
}

/// The overlay's content stream: the text three times along the page's diagonal, faint, and
/// once at the foot, stronger.
fn overlay_content(text: &str, x0: f64, y0: f64, width: f64, height: f64) -> Vec<u8> {
    let literal = pdf_literal(text);
    let chars = text.chars().count().max(1) as f64;
    // Helvetica's characters average about half an em wide.
    let diagonal = (width * width + height * height).sqrt();
    let size = (diagonal * 0.8 / (chars * 0.5)).clamp(6.0, 48.0);
    let angle = height.atan2(width);
    let (sin, cos) = angle.sin_cos();
    let span = chars * 0.5 * size;
    let mut out = String::from("Q\nq\n/LinkgateTile gs 0.7 0.08 0.08 rg\n");
    for part in [0.25, 0.5, 0.75] {
        let cx = x0 + width * part;
        let cy = y0 + height * part;
        let x = cx - cos * span / 2.0;
        let y = cy - sin * span / 2.0;
        out.push_str(&format!(
            "BT /LinkgateMark {size:.2} Tf {cos:.4} {sin:.4} {:.4} {cos:.4} {x:.2} {y:.2} Tm {literal} Tj ET\n",
            -sin
        ));
    }
    let foot = (width / (chars * 0.5) * 0.9).clamp(5.0, 10.0);
    out.push_str(&format!(
        "/LinkgateFoot gs BT /LinkgateMark {foot:.2} Tf 1 0 0 1 {:.2} {:.2} Tm {literal} Tj ET\nQ\n",
        x0 + 12.0,
        y0 + 8.0
    ));
    out.into_bytes()
}

/// A PDF literal string: `(`, `)` and `\` escaped; the text is already plain ASCII.
fn pdf_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for c in text.chars() {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn white(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_pixel(w, h, Rgba([255, 255, 255, 255]))
    }

    #[test]
    fn the_mark_names_who_when_and_where_in_plain_ascii() {
        let at = time::macros::datetime!(2026-12-02 07:05:59 UTC);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            mark_text("alice@example.com", at, Some(ip)),
            "alice@example.com - 2026-12-02 07:05 UTC - 203.0.113.9"
        );
        assert_eq!(
            mark_text("jörg@exämple.de", at, None),
            "j?rg@ex?mple.de - 2026-12-02 07:05 UTC"
        );
        let long = "x".repeat(500);
        assert!(mark_text(&long, at, None).len() < 160);
    }

    #[test]
    fn a_stamped_image_differs_across_the_page_and_at_its_foot() {
        let mut img = white(1200, 1600);
        stamp_raster(&mut img, "alice@example.com - 2026-12-02 07:05 UTC");
        let changed = |y0: u32, y1: u32| {
            (y0..y1)
                .flat_map(|y| (0..1200).map(move |x| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255, 255])
                .count()
        };
        // Every sixth of the page carries ink, and the foot line is there.
        for band in 0..5 {
            assert!(changed(band * 300, band * 300 + 300) > 500, "band {band}");
        }
        assert!(changed(1550, 1600) > 500);
        // The ink is reddish and the page stays mostly readable (faint tiles).
        let inked: Vec<_> = img
            .pixels()
            .filter(|p| p.0[0] != 255 || p.0[1] != 255)
            .collect();
        assert!(inked.len() < (1200 * 1600) / 3);
        assert!(inked.iter().all(|p| p.0[0] >= p.0[1]));
    }

    #[test]
    fn tiny_or_empty_stamps_leave_the_image_alone() {
        let mut img = white(10, 10);
        stamp_raster(&mut img, "someone");
        assert!(img.pixels().all(|p| p.0 == [255, 255, 255, 255]));
        let mut img = white(200, 200);
        stamp_raster(&mut img, "");
        assert!(img.pixels().all(|p| p.0 == [255, 255, 255, 255]));
    }

    /// A small real PDF: `pages` pages of US Letter, each with a line of text.
    fn sample_pdf(pages: usize) -> Vec<u8> {
        use lopdf::{Document, Stream};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
        });
        let resources = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font },
        });
        let mut kids = Vec::new();
        for n in 0..pages {
            let content = format!("BT /F1 24 Tf 72 700 Td (Page {n}) Tj ET 2 0 0 2 0 0 cm");
            let content = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
            let page = doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content,
            });
            kids.push(Object::Reference(page));
        }
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => pages as i64,
                "Resources" => resources,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
            }),
        );
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    #[test]
    fn a_stamped_pdf_keeps_the_original_bytes_and_adds_the_overlay_to_every_page() {
        let original = sample_pdf(3);
        let text = "bob@example.org - 2026-12-02 07:05 UTC - 192.0.2.1";
        let stamped = stamp_pdf(&original, text).unwrap();
        // An incremental update: the original file is a prefix, unchanged.
        assert!(stamped.len() > original.len());
        assert_eq!(&stamped[..original.len()], &original[..]);
        // Read back, every page still has its own content, wrapped, and then the overlay.
        let doc = lopdf::Document::load_mem(&stamped).unwrap();
        let pages: Vec<_> = doc.page_iter().collect();
        assert_eq!(pages.len(), 3);
        for (n, page) in pages.into_iter().enumerate() {
            let content = String::from_utf8_lossy(&doc.get_page_content(page)).into_owned();
            let own = content.find(&format!("(Page {n})")).unwrap();
            let mark = content.find("(bob@example.org").unwrap();
            assert!(content.starts_with("q\n"));
            assert!(own < mark);
            // The page's own `cm` is undone by the `Q` before the stamp.
            assert!(content[own..mark].contains("Q\nq\n"));
            // The page's inherited font is still there beside ours.
            let fonts = doc.get_page_fonts(page).unwrap();
            assert!(fonts.contains_key(b"F1".as_slice()), "{fonts:?}");
            assert!(fonts.contains_key(b"LinkgateMark".as_slice()));
        }
    }

    #[test]
    fn text_that_would_break_the_content_stream_is_escaped() {
        let stamped = stamp_pdf(&sample_pdf(1), r"a) Tj (b\ (c").unwrap();
        let doc = lopdf::Document::load_mem(&stamped).unwrap();
        let page = doc.page_iter().next().unwrap();
        let content = String::from_utf8_lossy(&doc.get_page_content(page)).into_owned();
        assert!(content.contains(r"(a\) Tj \(b\\ \(c)"), "{content}");
        let ops = lopdf::content::Content::decode(&doc.get_page_content(page)).unwrap();
        let shown = ops.operations.iter().filter(|o| o.operator == "Tj").count();
        assert_eq!(shown, 1 + 4);
    }

    #[test]
    fn what_is_not_a_readable_pdf_is_refused_without_panicking() {
        for bad in [
            &b""[..],
            b"%PDF-1.7\n",
            b"hello world",
            &sample_pdf(2)[..400],
        ] {
            assert!(
                stamp_pdf(bad, "x").is_err(),
                "{:?}",
                &bad[..bad.len().min(20)]
            );
        }
    }
}
