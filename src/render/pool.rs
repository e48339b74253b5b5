//! The render pool: at most `workers` renders at once, at most `queue` waiting for a turn; a
//! render beyond that is refused at once (`Busy`, a `503` with `Retry-After` for the recipient)
//! instead of piling up memory and latency.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::cache::Cache;
use super::worker::{self, ProcessLimits, Spec};
use super::{Caps, Format, Job, Output, RenderError};

/// A rendition the operator defines (`[renditions.NAME]`), made by the gateway on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generated {
    /// A new PDF of the document's pages as images at `dpi` (`kind = "pdf"`).
    Pdf { dpi: u32, quality: u8 },
    /// The first page (or the image itself) `width` pixels wide (`kind = "image"`).
    Image { width: u32, format: Format },
}

impl Generated {
    pub fn job(&self) -> Job {
        match self {
            Generated::Pdf { dpi, quality } => Job::LowresPdf {
                dpi: *dpi,
                quality: *quality,
            },
            Generated::Image { width, format } => Job::Page {
                page: 1,
                width: *width,
                format: *format,
            },
        }
    }
}

/// `[render]` and `[renditions.*]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    pub enabled: bool,
    pub workers: usize,
    pub queue: usize,
    pub timeout: Duration,
    pub memory_bytes: u64,
    pub max_input_bytes: u64,
    pub caps: Caps,
    pub cache_dir: PathBuf,
    pub cache_max_bytes: u64,
    /// The page widths a viewer may ask for; any other width is rounded to the nearest.
    pub page_widths: Vec<u32>,
    pub thumbnail_width: u32,
    pub generated: BTreeMap<String, Generated>,
}

impl Default for RenderSettings {
    fn default() -> RenderSettings {
        RenderSettings {
            enabled: true,
            workers: 2,
            queue: 16,
            timeout: Duration::from_millis(20_000),
            memory_bytes: 512 << 20,
            max_input_bytes: 64 << 20,
            caps: Caps::default(),
            cache_dir: std::env::temp_dir().join("linkgate-renders"),
            cache_max_bytes: 512 << 20,
            page_widths: vec![480, 800, 1200, 1600],
            thumbnail_width: 240,
            generated: BTreeMap::new(),
        }
    }
}

impl RenderSettings {
    /// The allowed width nearest to the one asked for (the default viewer width when none).
    pub fn clamp_width(&self, asked: Option<u32>) -> u32 {
        let default = self
            .page_widths
            .get(1)
            .or(self.page_widths.first())
            .copied()
            .unwrap_or(800);
        let Some(asked) = asked else { return default };
        self.page_widths
            .iter()
            .copied()
            .min_by_key(|w| w.abs_diff(asked))
            .unwrap_or(default)
    }
}

/// The generated renditions' names with the file extension each makes (for the link model).
pub fn generated_names(settings: &RenderSettings) -> BTreeMap<String, String> {
    if !settings.enabled {
        return BTreeMap::new();
    }
    settings
        .generated
        .iter()
        .map(|(name, g)| {
            let ext = match g {
                Generated::Pdf { .. } => "pdf",
                Generated::Image {
                    format: Format::Png,
                    ..
                } => "png",
                Generated::Image {
                    format: Format::Jpeg,
                    ..
                } => "jpg",
            };
            (name.clone(), ext.to_string())
        })
        .collect()
}

/// At most `workers` at once and `queue` waiting.
pub struct Pool {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// A turn in the pool (dropped when the render ends).
pub struct Turn(#[allow(dead_code)] OwnedSemaphorePermit);

impl Pool {
    pub fn new(workers: usize, queue: usize) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// A turn now, or after waiting in the queue; `Busy` when the queue is full.
    pub async fn enter(&self) -> Result<Turn, RenderError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Turn(permit));
        }
        let admitted = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.queue).then_some(w + 1)
            })
            .is_ok();
        if !admitted {
            return Err(RenderError::Busy);
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map(Turn).map_err(|_| RenderError::Busy)
    }
}

/// The renderer the recipients' listener uses: pool, cache and worker program.
pub struct Renderer {
    pub settings: RenderSettings,
    pool: Pool,
    cache: Cache,
    program: PathBuf,
    /// Renders under way by cache key: a second request for the same rendition waits for the
    /// first and takes its result from the cache instead of rendering it again (fifty viewers
    /// opening the same page make one render, not fifty).
    in_flight: parking_lot::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Renderer {
    pub fn new(settings: RenderSettings) -> Renderer {
        // The running binary itself: `/proc/self/exe` still names it after a `serve --upgrade`
        // replaced the file on disk (its path then ends in " (deleted)").
        let proc_exe = PathBuf::from("/proc/self/exe");
        let program = if proc_exe.exists() {
            proc_exe
        } else {
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from("linkgate"))
        };
        Renderer {
            pool: Pool::new(settings.workers, settings.queue),
            cache: Cache::new(settings.cache_dir.clone(), settings.cache_max_bytes),
            program,
            settings,
            in_flight: parking_lot::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The content type of a job's output.
    pub fn content_type(job: &Job) -> &'static str {
        match job {
            Job::Info => "application/json",
            Job::Page { format, .. } => format.content_type(),
            Job::LowresPdf { .. } => "application/pdf",
            Job::Stamp { .. } => "application/octet-stream",
        }
    }

    /// The job's output: from the cache under `cache_key` when there, else the document fetched
    /// by `fetch` rendered by a worker (and cached when a key is given).
    pub async fn render<F, Fut>(
        &self,
        job: &Job,
        cache_key: Option<String>,
        fetch: F,
    ) -> Result<Output, RenderError>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, RenderError>>,
    {
        let content_type = Renderer::content_type(job).to_string();
        let cached = |bytes| {
            crate::metrics::metrics()
                .renders
                .with_label_values(&["cached"])
                .inc();
            Ok(Output {
                bytes,
                content_type: content_type.clone(),
            })
        };
        let Some(key) = cache_key else {
            return self.render_now(job, None, fetch).await;
        };
        if let Some(bytes) = self.cache.get(&key).await {
            return cached(bytes);
        }
        let lock = self
            .in_flight
            .lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone();
        let result = {
            let _one = lock.lock().await;
            match self.cache.get(&key).await {
                // Made by the request this one waited for.
                Some(bytes) => cached(bytes),
                None => self.render_now(job, Some(&key), fetch).await,
            }
        };
        let mut map = self.in_flight.lock();
        if Arc::strong_count(&lock) <= 2 {
            map.remove(&key);
        }
        result
    }

    /// Renders now (a turn in the pool, the document fetched, a worker), caching under `key`.
    async fn render_now<F, Fut>(
        &self,
        job: &Job,
        cache_key: Option<&str>,
        fetch: F,
    ) -> Result<Output, RenderError>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = Result<Vec<u8>, RenderError>>,
    {
        let content_type = Renderer::content_type(job).to_string();
        let _turn = self.pool.enter().await?;
        let input = fetch(self.settings.max_input_bytes).await?;
        let spec = Spec {
            job: job.clone(),
            caps: self.settings.caps,
            max_input_bytes: self.settings.max_input_bytes,
        };
        let limits = ProcessLimits {
            memory_bytes: self.settings.memory_bytes,
            timeout: self.settings.timeout,
            max_output_bytes: self
                .settings
                .max_input_bytes
                .max(self.settings.caps.max_pixels * 4),
        };
        let started = std::time::Instant::now();
        let result = worker::run(&self.program, &spec, input, limits).await;
        let label = match &result {
            Ok(_) => "rendered",
            Err(RenderError::Refused(_)) => "refused",
            Err(RenderError::Limit(_)) => "limit",
            Err(_) => "failed",
        };
        crate::metrics::metrics()
            .renders
            .with_label_values(&[label])
            .inc();
        tracing::debug!(job = %job.key_text(), outcome = label, ms = started.elapsed().as_millis() as u64, "render");
        let bytes = result?;
        if let Some(key) = cache_key {
            self.cache.put(key, &bytes).await;
        }
        Ok(Output {
            bytes,
            content_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_busy_at_once() {
        let pool = Pool::new(1, 1);
        let first = pool.enter().await.expect("a free slot");
        let pool = Arc::new(pool);
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.enter().await.map(|_| ()) })
        };
        // Wait until the second caller is queued.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.waiting.load(Ordering::Acquire) == 0 && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.enter().await, Err(RenderError::Busy)));
        drop(first);
        assert!(waiter.await.expect("joined").is_ok());
    }

    #[test]
    fn widths_are_clamped_to_the_allowed_ones() {
        let s = RenderSettings::default();
        assert_eq!(s.clamp_width(Some(1)), 480);
        assert_eq!(s.clamp_width(Some(99_999)), 1600);
        assert_eq!(s.clamp_width(Some(790)), 800);
        assert_eq!(s.clamp_width(None), 800);
    }
}
