//! Small PDFs made on the spot (for tests, the bench and the demo): each page a coloured
//! rectangle and its page number in Helvetica, so a rasterised page is never blank and pages
//! differ from each other.

use lopdf::{dictionary, Document, Object, Stream};

/// A PDF of `pages` pages, each `width` x `height` points.
pub fn pdf(pages: u32, width: f32, height: f32) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut kids: Vec<Object> = Vec::new();
    for n in 1..=pages {
        let shade = (n % 7) as f32 / 10.0;
        let content = format!(
            "q {shade:.2} 0.3 0.6 rg {x:.1} {y:.1} {w:.1} {h:.1} re f Q \
             BT /F1 {size:.1} Tf {tx:.1} {ty:.1} Td (Page {n}) Tj ET",
            x = width * 0.1,
            y = height * 0.5,
            w = width * 0.8,
            h = height * 0.3,
            size = (width / 12.0).max(4.0),
            tx = width * 0.1,
            ty = height * 0.2,
        );
        let content_id = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), Object::Real(width), Object::Real(height)],
            "Contents" => content_id,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = doc.save_to(&mut out);
    out
}

/// A one-page PDF whose page paints `shapes` small curved shapes with transparency: slow to
/// rasterise on purpose (for tests of the render time limit and the pool).
pub fn heavy_pdf(shapes: u32) -> Vec<u8> {
    let mut content = String::with_capacity(shapes as usize * 90);
    for i in 0..shapes {
        let x = (i * 37 % 560) as f32 + 20.0;
        let y = (i * 53 % 740) as f32 + 20.0;
        content.push_str(&format!(
            "{r:.2} 0.4 0.7 rg {x} {y} m {a} {b} {c} {d} {e} {y} c {x} {f} l h f\n",
            r = (i % 10) as f32 / 10.0,
            a = x + 10.0,
            b = y + 30.0,
            c = x + 25.0,
            d = y - 20.0,
            e = x + 30.0,
            f = y + 12.0,
        ));
    }
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.into_bytes()));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    let _ = doc.save_to(&mut out);
    out
}

/// A PNG `width` x `height` with a gradient (never blank).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = ::image::RgbaImage::from_fn(width, height, |x, y| {
        ::image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let mut out = Vec::new();
    let _ = img.write_to(
        &mut std::io::Cursor::new(&mut out),
        ::image::ImageFormat::Png,
    );
    out
}
