//! PDF pages to pixels with `hayro` (pure Rust), under page-count, page-size and pixel caps.

use ::image::RgbaImage;
use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{PixmapSettings, RenderCache, RenderSettings};

use super::{Caps, RenderError};

fn open(input: &[u8]) -> Result<Pdf, RenderError> {
    Pdf::new(input.to_vec())
        .map_err(|e| RenderError::Refused(format!("not a readable PDF ({e:?})")))
}

fn checked_pages(pdf: &Pdf, caps: &Caps) -> Result<usize, RenderError> {
    let pages = pdf.pages().len();
    if pages == 0 {
        return Err(RenderError::Refused("the PDF has no pages".to_string()));
    }
    if pages > caps.max_pages as usize {
        return Err(RenderError::Refused(format!(
            "the PDF has {pages} pages, more than the {} allowed",
            caps.max_pages
        )));
    }
    Ok(pages)
}

/// How many pages the PDF has (refused past `caps.max_pages`).
pub fn page_count(input: &[u8], caps: &Caps) -> Result<u32, RenderError> {
    let pdf = open(input)?;
    Ok(checked_pages(&pdf, caps)? as u32)
}

/// The size of a page in pixels at `width` pixels wide, and the scale from points; refused when
/// the page is larger than `caps.max_page_points` or the output larger than `caps.max_pixels`.
pub fn page_scale(
    points: (f32, f32),
    width: u32,
    caps: &Caps,
) -> Result<(u32, u32, f32), RenderError> {
    let (w, h) = points;
    if !(w.is_finite() && h.is_finite()) || w < 1.0 || h < 1.0 {
        return Err(RenderError::Refused("the page has no size".to_string()));
    }
    let max = caps.max_page_points as f32;
    if w > max || h > max {
        return Err(RenderError::Refused(format!(
            "the page is {w:.0}x{h:.0} points, larger than {max:.0}"
        )));
    }
    let scale = width.max(1) as f32 / w;
    let pw = (w * scale).round().max(1.0) as u64;
    let ph = (h * scale).round().max(1.0) as u64;
    if pw > u16::MAX as u64 || ph > u16::MAX as u64 || pw * ph > caps.max_pixels {
        return Err(RenderError::Refused(format!(
            "the page image would be {pw}x{ph} pixels, more than allowed"
        )));
    }
    Ok((pw as u32, ph as u32, scale))
}

/// Renders page `page` (1-based) `width` pixels wide on white.
pub fn rasterize(
    input: &[u8],
    page: u32,
    width: u32,
    caps: &Caps,
) -> Result<RgbaImage, RenderError> {
    let pdf = open(input)?;
    let pages = checked_pages(&pdf, caps)?;
    let index = (page as usize)
        .checked_sub(1)
        .filter(|i| *i < pages)
        .ok_or_else(|| RenderError::Refused(format!("the PDF has no page {page}")))?;
    let cache = RenderCache::new();
    render_page(&pdf, index, width, caps, &cache)
}

/// Renders every page, `each` called with the page's image in order (the low-res PDF).
pub fn rasterize_all(
    input: &[u8],
    dpi: u32,
    caps: &Caps,
    mut each: impl FnMut(RgbaImage, (f32, f32)) -> Result<(), RenderError>,
) -> Result<(), RenderError> {
    let pdf = open(input)?;
    let pages = checked_pages(&pdf, caps)?;
    let cache = RenderCache::new();
    for index in 0..pages {
        let points = pdf.pages()[index].render_dimensions();
        let width = ((points.0 / 72.0) * dpi as f32).round().max(1.0) as u32;
        let img = render_page(&pdf, index, width, caps, &cache)?;
        each(img, points)?;
    }
    Ok(())
}

fn render_page<'a>(
    pdf: &'a Pdf,
    index: usize,
    width: u32,
    caps: &Caps,
    cache: &RenderCache<'a>,
) -> Result<RgbaImage, RenderError> {
    let page = &pdf.pages()[index];
    let (_, _, scale) = page_scale(page.render_dimensions(), width, caps)?;
    let pixmap = hayro::render(
        page,
        cache,
        &InterpreterSettings::default(),
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    let (w, h) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    // Painted on opaque white, so premultiplied and straight alpha are the same bytes.
    RgbaImage::from_raw(w, h, pixmap.data_as_u8_slice().to_vec())
        .ok_or_else(|| RenderError::Failed("the page raster has the wrong size".to_string()))
}
