//! `[render]` (the gateway's own renditions: pool, limits, cache) and `[renditions.NAME]` (the
//! renditions an operator defines for links' `download:NAME` rights).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::error::invalid;
use super::ConfigError;
use crate::model::link::valid_rendition_name;
use crate::render::pool::{Generated, RenderSettings};
use crate::render::{Caps, Format};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRender {
    pub enabled: Option<bool>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub memory_mb: Option<u64>,
    pub max_pages: Option<u32>,
    pub max_pixels: Option<u64>,
    pub max_input_bytes: Option<u64>,
    pub cache_dir: Option<PathBuf>,
    pub cache_max_bytes: Option<u64>,
    pub page_widths: Option<Vec<u32>>,
    pub thumbnail_width: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRendition {
    pub kind: String,
    pub dpi: Option<u32>,
    pub quality: Option<u8>,
    pub width: Option<u32>,
    pub format: Option<String>,
}

fn within<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: Option<T>,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(invalid(key, format!("must be from {min} to {max}")));
    }
    Ok(v)
}

pub fn validate(
    raw: RawRender,
    renditions: BTreeMap<String, RawRendition>,
    base_dir: &Path,
) -> Result<RenderSettings, ConfigError> {
    let d = RenderSettings::default();
    let caps = Caps {
        max_pages: within(
            "render.max_pages",
            raw.max_pages,
            d.caps.max_pages,
            1,
            100_000,
        )?,
        max_pixels: within(
            "render.max_pixels",
            raw.max_pixels,
            d.caps.max_pixels,
            10_000,
            400_000_000,
        )?,
        ..d.caps
    };
    let page_widths = match raw.page_widths {
        None => d.page_widths.clone(),
        Some(w) if !w.is_empty() && w.len() <= 8 && w.iter().all(|x| (64..=4096).contains(x)) => {
            let mut w = w;
            w.sort_unstable();
            w.dedup();
            w
        }
        Some(_) => {
            return Err(invalid(
                "render.page_widths",
                "must list 1 to 8 widths, each from 64 to 4096 pixels",
            ))
        }
    };
    let cache_dir = match raw.cache_dir {
        None => d.cache_dir.clone(),
        Some(p) if p.is_relative() => base_dir.join(p),
        Some(p) => p,
    };
    let mut generated = BTreeMap::new();
    for (name, r) in renditions {
        let key = |field: &str| format!("renditions.{name}.{field}");
        if !valid_rendition_name(&name) {
            return Err(invalid(
                format!("renditions.{name}"),
                "a name is 1 to 32 of a-z 0-9 _ - and not original, view, download, page or thumbnail",
            ));
        }
        let g = match r.kind.as_str() {
            "pdf" => Generated::Pdf {
                dpi: within(&key("dpi"), r.dpi, 100, 36, 300)?,
                quality: within(&key("quality"), r.quality, 70, 10, 95)?,
            },
            "image" => Generated::Image {
                width: within(&key("width"), r.width, 1600, 64, 4096)?,
                format: match r.format.as_deref() {
                    None => Format::Jpeg,
                    Some(f) => Format::parse(f)
                        .ok_or_else(|| invalid(key("format"), "must be \"jpeg\" or \"png\""))?,
                },
            },
            _ => return Err(invalid(key("kind"), "must be \"pdf\" or \"image\"")),
        };
        generated.insert(name, g);
    }
    Ok(RenderSettings {
        enabled: raw.enabled.unwrap_or(true),
        workers: within("render.workers", raw.workers, d.workers, 1, 256)?,
        queue: within("render.queue", raw.queue, d.queue, 0, 10_000)?,
        timeout: Duration::from_millis(within(
            "render.timeout_ms",
            raw.timeout_ms,
            20_000,
            100,
            600_000,
        )?),
        memory_bytes: within("render.memory_mb", raw.memory_mb, 512, 64, 65_536)? << 20,
        max_input_bytes: within(
            "render.max_input_bytes",
            raw.max_input_bytes,
            d.max_input_bytes,
            1024,
            4 << 30,
        )?,
        caps,
        cache_dir,
        cache_max_bytes: raw.cache_max_bytes.unwrap_or(d.cache_max_bytes),
        page_widths,
        thumbnail_width: within(
            "render.thumbnail_width",
            raw.thumbnail_width,
            d.thumbnail_width,
            32,
            1024,
        )?,
        generated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> (RawRender, BTreeMap<String, RawRendition>) {
        #[derive(Deserialize)]
        struct Both {
            #[serde(default)]
            render: RawRender,
            #[serde(default)]
            renditions: BTreeMap<String, RawRendition>,
        }
        let both: Both = toml::from_str(text).expect("toml");
        (both.render, both.renditions)
    }

    fn check(text: &str) -> Result<RenderSettings, ConfigError> {
        let (r, g) = raw(text);
        validate(r, g, Path::new("/etc/linkgate"))
    }

    #[test]
    fn defaults_are_safe_and_renditions_are_read() {
        let s = check("[renditions.lowres]\nkind = \"pdf\"\ndpi = 100\n[renditions.jpeg]\nkind = \"image\"\nwidth = 1600\nformat = \"jpeg\"\n")
            .expect("valid");
        assert_eq!((s.workers, s.queue, s.memory_bytes), (2, 16, 512 << 20));
        assert_eq!(
            s.generated["lowres"],
            Generated::Pdf {
                dpi: 100,
                quality: 70
            }
        );
        assert_eq!(
            s.generated["jpeg"],
            Generated::Image {
                width: 1600,
                format: Format::Jpeg
            }
        );
        let s = check("[render]\ncache_dir = \"cache\"\n").expect("valid");
        assert_eq!(s.cache_dir, Path::new("/etc/linkgate/cache"));
    }

    #[test]
    fn each_bad_value_names_its_key() {
        for (text, key) in [
            ("[render]\nworkers = 0\n", "render.workers"),
            ("[render]\nmemory_mb = 1\n", "render.memory_mb"),
            ("[render]\npage_widths = []\n", "render.page_widths"),
            ("[renditions.page]\nkind = \"pdf\"\n", "renditions.page"),
            ("[renditions.x]\nkind = \"gif\"\n", "renditions.x.kind"),
            (
                "[renditions.x]\nkind = \"pdf\"\ndpi = 9000\n",
                "renditions.x.dpi",
            ),
            (
                "[renditions.x]\nkind = \"image\"\nformat = \"gif\"\n",
                "renditions.x.format",
            ),
        ] {
            match check(text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
