//! Renditions the gateway makes itself: page images of PDFs, downscaled images, a low-resolution
//! PDF, first-page thumbnails (see `docs/documents.md`).
//!
//! Parsing documents is the riskiest thing the gateway does with bytes it does not control, so
//! no render runs inside the gateway's process: each one is a child process (the gateway's own
//! binary, `linkgate render-worker`) with a memory, CPU-time, file-size and open-file limit, killed
//! at a wall-clock deadline ([`worker`]). The [`Pool`] bounds how many run at once and how many
//! wait; beyond that a recipient gets `503` with `Retry-After`. Results are kept in a disk
//! [`cache`] keyed by the object's version and the rendition's parameters.
//!
//! The in-process entry points ([`run_job`], [`pdf`], [`image`], [`lowres`]) are what the worker
//! calls and what the fuzz target and the bench call directly.

pub mod cache;
pub mod image;
pub mod lowres;
pub mod pdf;
pub mod pool;
pub mod watermark;
pub mod worker;

use serde::{Deserialize, Serialize};

pub use pool::{Pool, Renderer};

/// An output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "png" => Some(Format::Png),
            "jpeg" | "jpg" => Some(Format::Jpeg),
            _ => None,
        }
    }
}

/// One render: what to make of the input bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// What the document is and how many pages it has, as JSON (`{"kind":"pdf","pages":3}`).
    Info,
    /// One page (1-based) as an image `width` pixels wide; an image original has one page.
    Page {
        page: u32,
        width: u32,
        format: Format,
    },
    /// A new PDF whose pages are JPEG images at `dpi` (text is no longer selectable).
    LowresPdf { dpi: u32, quality: u8 },
    /// The document with `text` stamped on it: a PDF gets an overlay (pages not re-encoded), an
    /// image is decoded, stamped and encoded again in its own format.
    Stamp { text: String },
}

impl Job {
    /// The parameters as a stable text, part of the cache key.
    pub fn key_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The bounds a render runs under inside the worker (the process limits are set by the parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Most pages a PDF may have.
    pub max_pages: u32,
    /// Most pixels one output or decoded image may have.
    pub max_pixels: u64,
    /// Largest page side, in PDF points (a page bigger than this is refused, not scaled).
    pub max_page_points: u32,
}

impl Default for Caps {
    fn default() -> Caps {
        Caps {
            max_pages: 500,
            max_pixels: 40_000_000,
            max_page_points: 14_400,
        }
    }
}

/// What a render made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// Why a render made nothing.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The document cannot be rendered (not a PDF or image, malformed, over a cap): the
    /// recipient is told so; retrying does not help.
    #[error("cannot render this document: {0}")]
    Refused(String),
    /// The render ran past its time or memory limit and was stopped.
    #[error("the render ran past its limits: {0}")]
    Limit(String),
    /// The document is not in its store.
    #[error("the document is not in its store")]
    Missing,
    /// Every worker is busy and the queue is full.
    #[error("all render workers are busy")]
    Busy,
    /// The worker could not be started or failed otherwise.
    #[error("render failed: {0}")]
    Failed(String),
}

/// What kind of document the bytes are, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Image,
}

pub fn sniff(input: &[u8]) -> Option<Kind> {
    let head = &input[..input.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some(Kind::Pdf);
    }
    match ::image::guess_format(input) {
        Ok(::image::ImageFormat::Png | ::image::ImageFormat::Jpeg) => Some(Kind::Image),
        _ => None,
    }
}

/// Whether a document of this file name is one the gateway renders (PDFs, PNG and JPEG images).
pub fn renderable_name(filename: &str) -> bool {
    let lower = filename.to_ascii_lowercase();
    [".pdf", ".png", ".jpg", ".jpeg"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// Runs one job on `input` in this process (the worker's body; also the fuzz target's).
pub fn run_job(job: &Job, input: &[u8], caps: &Caps) -> Result<Output, RenderError> {
    let kind = sniff(input)
        .ok_or_else(|| RenderError::Refused("neither a PDF nor a PNG or JPEG image".to_string()))?;
    match (job, kind) {
        (Job::Info, Kind::Pdf) => {
            let pages = pdf::page_count(input, caps)?;
            Ok(json_output(
                serde_json::json!({"kind": "pdf", "pages": pages}),
            ))
        }
        (Job::Info, Kind::Image) => {
            let (w, h) = image::dimensions(input, caps)?;
            Ok(json_output(
                serde_json::json!({"kind": "image", "pages": 1, "width": w, "height": h}),
            ))
        }
        (
            Job::Page {
                page,
                width,
                format,
            },
            Kind::Pdf,
        ) => {
            let raster = pdf::rasterize(input, *page, *width, caps)?;
            image::encode(&raster, *format)
        }
        (
            Job::Page {
                page,
                width,
                format,
            },
            Kind::Image,
        ) => {
            if *page != 1 {
                return Err(RenderError::Refused("an image has one page".to_string()));
            }
            let img = image::decode(input, caps)?;
            image::encode(&image::downscale(img, *width), *format)
        }
        (Job::LowresPdf { dpi, quality }, Kind::Pdf) => {
            lowres::lowres_pdf(input, *dpi, *quality, caps)
        }
        (Job::LowresPdf { .. }, Kind::Image) => Err(RenderError::Refused(
            "a low-resolution PDF is made of PDFs only".to_string(),
        )),
        (Job::Stamp { text }, Kind::Pdf) => {
            pdf::page_count(input, caps)?;
            let bytes = watermark::stamp_pdf(input, text)
                .map_err(|e| RenderError::Refused(e.to_string()))?;
            Ok(Output {
                bytes,
                content_type: "application/pdf".to_string(),
            })
        }
        (Job::Stamp { text }, Kind::Image) => {
            let format = match ::image::guess_format(input) {
                Ok(::image::ImageFormat::Jpeg) => Format::Jpeg,
                _ => Format::Png,
            };
            let mut img = image::decode(input, caps)?;
            watermark::stamp_raster(&mut img, text);
            image::encode(&img, format)
        }
    }
}

fn json_output(value: serde_json::Value) -> Output {
    Output {
        bytes: value.to_string().into_bytes(),
        content_type: "application/json".to_string(),
    }
}

pub mod sample;

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(out: &Output) -> ::image::RgbaImage {
        ::image::load_from_memory(&out.bytes)
            .expect("an image")
            .into_rgba8()
    }

    fn not_blank(img: &::image::RgbaImage) -> bool {
        let first = img.get_pixel(0, 0);
        img.pixels().any(|p| p != first)
    }

    #[test]
    fn a_pdf_page_becomes_an_image_of_the_asked_width() {
        let pdf = sample::pdf(3, 612.0, 792.0);
        let caps = Caps::default();
        let info = run_job(&Job::Info, &pdf, &caps).expect("info");
        let info: serde_json::Value = serde_json::from_slice(&info.bytes).expect("json");
        assert_eq!(info["pages"], 3);
        let job = Job::Page {
            page: 2,
            width: 300,
            format: Format::Png,
        };
        let img = decoded(&run_job(&job, &pdf, &caps).expect("page"));
        assert_eq!(img.width(), 300);
        assert_eq!(img.height(), 388);
        assert!(not_blank(&img));
        let job = Job::Page {
            page: 4,
            width: 300,
            format: Format::Png,
        };
        assert!(matches!(
            run_job(&job, &pdf, &caps),
            Err(RenderError::Refused(_))
        ));
    }

    #[test]
    fn an_image_is_downscaled_never_enlarged() {
        let png = sample::png(1000, 500);
        let caps = Caps::default();
        let job = Job::Page {
            page: 1,
            width: 200,
            format: Format::Jpeg,
        };
        let img = decoded(&run_job(&job, &png, &caps).expect("image"));
        assert_eq!((img.width(), img.height()), (200, 100));
        let job = Job::Page {
            page: 1,
            width: 4000,
            format: Format::Png,
        };
        let img = decoded(&run_job(&job, &png, &caps).expect("image"));
        assert_eq!(img.width(), 1000);
    }

    #[test]
    fn bombs_are_refused_before_allocating() {
        let caps = Caps::default();
        // A PNG header announcing 100000 x 100000 pixels, and nothing after.
        let mut png = sample::png(1, 1);
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let job = Job::Page {
            page: 1,
            width: 200,
            format: Format::Png,
        };
        assert!(matches!(
            run_job(&job, &png, &caps),
            Err(RenderError::Refused(_))
        ));
        // A page of 200 x 200 inches.
        let huge = sample::pdf(1, 14_400.0 * 2.0, 14_400.0 * 2.0);
        assert!(matches!(
            run_job(&job, &huge, &caps),
            Err(RenderError::Refused(_))
        ));
        // Too many pages.
        let many = sample::pdf(20, 100.0, 100.0);
        let small = Caps {
            max_pages: 10,
            ..caps
        };
        assert!(matches!(
            run_job(&Job::Info, &many, &small),
            Err(RenderError::Refused(_))
        ));
        // Truncated and not a document.
        let pdf = sample::pdf(2, 612.0, 792.0);
        let cut = &pdf[..pdf.len() / 3];
        assert!(run_job(&job, cut, &caps).is_err());
        assert!(matches!(
            run_job(&job, b"<svg/>", &caps),
            Err(RenderError::Refused(_))
        ));
    }

    #[test]
    fn the_lowres_pdf_has_every_page() {
        let pdf = sample::pdf(3, 612.0, 792.0);
        let caps = Caps::default();
        let out = run_job(
            &Job::LowresPdf {
                dpi: 72,
                quality: 60,
            },
            &pdf,
            &caps,
        )
        .expect("lowres");
        assert!(out.bytes.starts_with(b"%PDF-"));
        assert_eq!(pdf::page_count(&out.bytes, &caps).expect("pages"), 3);
        let page = run_job(
            &Job::Page {
                page: 3,
                width: 200,
                format: Format::Png,
            },
            &out.bytes,
            &caps,
        )
        .expect("its pages render");
        assert!(not_blank(&decoded(&page)));
    }
}
