//! The low-resolution PDF: every page rasterised at a chosen dpi, JPEG-encoded and written as a
//! page of a new PDF (with `lopdf`) the same size in points. Text is no longer selectable or
//! searchable, links and forms are gone: what remains is what the pages looked like.

use lopdf::{dictionary, Document, Object, Stream};

use super::{image, pdf, Caps, Output, RenderError};

/// The dpi range a generated PDF may use.
pub const DPI: std::ops::RangeInclusive<u32> = 36..=300;

/// A new PDF of `input`'s pages as JPEG images at `dpi` and `quality`.
pub fn lowres_pdf(input: &[u8], dpi: u32, quality: u8, caps: &Caps) -> Result<Output, RenderError> {
    let dpi = dpi.clamp(*DPI.start(), *DPI.end());
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let mut kids: Vec<Object> = Vec::new();
    pdf::rasterize_all(input, dpi, caps, |img, (w_pt, h_pt)| {
        let (w, h) = (img.width(), img.height());
        let jpeg = image::encode_jpeg(&img, quality)?;
        let image_id = doc.add_object(
            Stream::new(
                dictionary! {
                    "Type" => "XObject",
                    "Subtype" => "Image",
                    "Width" => i64::from(w),
                    "Height" => i64::from(h),
                    "ColorSpace" => "DeviceRGB",
                    "BitsPerComponent" => 8,
                    "Filter" => "DCTDecode",
                },
                jpeg,
            )
            .with_compression(false),
        );
        let content = format!("q {w_pt:.3} 0 0 {h_pt:.3} 0 0 cm /Im0 Do Q").into_bytes();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), Object::Real(w_pt), Object::Real(h_pt)],
            "Contents" => content_id,
            "Resources" => dictionary! { "XObject" => dictionary! { "Im0" => image_id } },
        });
        kids.push(page_id.into());
        Ok(())
    })?;
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out)
        .map_err(|e| RenderError::Failed(format!("writing the PDF: {e}")))?;
    Ok(Output {
        bytes: out,
        content_type: "application/pdf".to_string(),
    })
}
