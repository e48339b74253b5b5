//! Images: decoded under `image::Limits` (a huge header is refused before any allocation),
//! downscaled, encoded as PNG or JPEG.

use std::io::Cursor;

use ::image::imageops::FilterType;
use ::image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbaImage};

use super::{Caps, Format, Output, RenderError};

fn limits(caps: &Caps) -> Limits {
    let mut limits = Limits::default();
    let side = (caps.max_pixels.min(u64::from(u32::MAX)) as u32).min(65_535);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // RGBA at 4 bytes a pixel, plus room for the decoder's own buffers.
    limits.max_alloc = Some(caps.max_pixels.saturating_mul(4).saturating_add(16 << 20));
    limits
}

fn reader<'a>(input: &'a [u8], caps: &Caps) -> Result<ImageReader<Cursor<&'a [u8]>>, RenderError> {
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| RenderError::Refused(format!("unreadable image: {e}")))?;
    if !matches!(reader.format(), Some(ImageFormat::Png | ImageFormat::Jpeg)) {
        return Err(RenderError::Refused(
            "only PNG and JPEG images are rendered".to_string(),
        ));
    }
    reader.limits(limits(caps));
    Ok(reader)
}

fn check_pixels(w: u32, h: u32, caps: &Caps) -> Result<(), RenderError> {
    if u64::from(w) * u64::from(h) > caps.max_pixels {
        return Err(RenderError::Refused(format!(
            "the image is {w}x{h} pixels, more than allowed"
        )));
    }
    Ok(())
}

/// The image's size from its header, refused past the pixel cap.
pub fn dimensions(input: &[u8], caps: &Caps) -> Result<(u32, u32), RenderError> {
    let (w, h) = reader(input, caps)?
        .into_dimensions()
        .map_err(|e| RenderError::Refused(format!("unreadable image: {e}")))?;
    check_pixels(w, h, caps)?;
    Ok((w, h))
}

/// Decodes a PNG or JPEG, refusing one whose header announces more than the caps allow.
pub fn decode(input: &[u8], caps: &Caps) -> Result<RgbaImage, RenderError> {
    dimensions(input, caps)?;
    let img = reader(input, caps)?
        .decode()
        .map_err(|e| RenderError::Refused(format!("unreadable image: {e}")))?;
    Ok(img.into_rgba8())
}

/// `img` at most `width` pixels wide (never enlarged), aspect kept.
pub fn downscale(img: RgbaImage, width: u32) -> RgbaImage {
    let width = width.max(1);
    if img.width() <= width {
        return img;
    }
    let height =
        ((u64::from(img.height()) * u64::from(width)) / u64::from(img.width())).max(1) as u32;
    ::image::imageops::resize(&img, width, height, FilterType::Triangle)
}

/// Encodes `img` (JPEG drops the alpha channel onto white).
pub fn encode(img: &RgbaImage, format: Format) -> Result<Output, RenderError> {
    let mut out = Vec::new();
    match format {
        Format::Png => img
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|e| RenderError::Failed(format!("PNG encoding: {e}")))?,
        Format::Jpeg => {
            out = encode_jpeg(img, 85)?;
        }
    }
    Ok(Output {
        bytes: out,
        content_type: format.content_type().to_string(),
    })
}

/// JPEG bytes of `img` at `quality` (1-100).
pub fn encode_jpeg(img: &RgbaImage, quality: u8) -> Result<Vec<u8>, RenderError> {
    let rgb = DynamicImage::ImageRgba8(img.clone()).into_rgb8();
    let mut out = Vec::new();
    let mut cursor = Cursor::new(&mut out);
    let encoder =
        ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut cursor, quality.clamp(1, 100));
    rgb.write_with_encoder(encoder)
        .map_err(|e| RenderError::Failed(format!("JPEG encoding: {e}")))?;
    Ok(out)
}
