//! Folder stores: the gateway serves files from a local folder itself.
//!
//! [`DirStore::resolve`] turns an object key into a path under the root: the key's segments were
//! checked at link creation (no `..`), the joined path is canonicalised, and a path that leaves
//! the root (a symlink pointing out of it) is refused; the file is then opened without following
//! a symlink in its last component. Responses honour `Range` (one range; several are answered
//! whole), `If-Range`, `If-None-Match`, `If-Modified-Since`, `If-Match` and
//! `If-Unmodified-Since`, and stream the file in bounded chunks read off the async runtime
//! (positional reads on the blocking pool, the next chunk read while the current one is sent).

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, Method};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::pace::{chunk_for, Streaming, MIN_CHUNK};
use super::splice::{self, MIN_BODY};
use super::{write_body, Allowance};
use crate::docstore::settings::DirStoreConfig;
use crate::metrics::{metrics, StoreSeries};
use crate::model::link::check_object_key;

/// Why a key is not served.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("no such file")]
    NotFound,
    #[error("the path leaves the store's root")]
    Escape,
    #[error("not a regular file")]
    NotAFile,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How serving a file ended badly.
#[derive(Debug)]
pub enum ServeError {
    /// Nothing was written: the caller answers (the uniform 404).
    Refused(DirError),
    /// The response had started (or the allowance could not be asked); the connection is broken
    /// off.
    Broken(Box<pingora::Error>),
    /// The download limit leaves nothing to send: nothing was written, the caller answers.
    Exhausted,
    /// An `If-Match` or `If-Unmodified-Since` failed (the file changed): nothing was written, the
    /// caller answers (412, or the "changed" page when the gateway made the condition).
    PreconditionFailed,
}

impl From<Box<pingora::Error>> for ServeError {
    fn from(e: Box<pingora::Error>) -> Self {
        ServeError::Broken(e)
    }
}

/// A file's validators and size.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub size: u64,
    pub modified: SystemTime,
    pub etag: String,
}

impl FileMeta {
    fn of(m: &std::fs::Metadata) -> FileMeta {
        let modified = m.modified().unwrap_or(UNIX_EPOCH);
        let secs = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        FileMeta {
            size: m.len(),
            modified,
            etag: format!("\"{secs:x}-{:x}\"", m.len()),
        }
    }

    /// Last-Modified at one-second precision (what HTTP dates carry).
    fn modified_secs(&self) -> u64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// What to answer, from the request's conditional and range headers.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Full,
    /// Bytes `start..=end`.
    Partial {
        start: u64,
        end: u64,
    },
    NotModified,
    PreconditionFailed,
    Unsatisfiable,
}

fn date_secs(value: &str) -> Option<u64> {
    httpdate::parse_http_date(value)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Whether an `If-Match`/`If-None-Match` list names `etag` (`weak`: W/ prefixes ignored).
fn etag_listed(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag == etag || (weak && tag.strip_prefix("W/").is_some_and(|t| t == etag))
    })
}

/// One `bytes=` range against a file of `size` bytes: `Some(Ok(range))`, `Some(Err(()))` when
/// unsatisfiable, `None` when the header is to be ignored (malformed, several ranges).
fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let n: u64 = last.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        return Some(Ok((size.saturating_sub(n), size - 1)));
    }
    let start: u64 = first.parse().ok()?;
    let end: u64 = if last.is_empty() {
        u64::MAX
    } else {
        last.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Err(()));
    }
    Some(Ok((start, end.min(size - 1))))
}

/// Decides the answer as RFC 9110 orders the preconditions.
pub fn plan(method: &Method, headers: &HeaderMap, meta: &FileMeta) -> Plan {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(list) = get(header::IF_MATCH) {
        if !etag_listed(list, &meta.etag, false) {
            return Plan::PreconditionFailed;
        }
    } else if let Some(since) = get(header::IF_UNMODIFIED_SINCE).and_then(date_secs) {
        if meta.modified_secs() > since {
            return Plan::PreconditionFailed;
        }
    }
    if let Some(list) = get(header::IF_NONE_MATCH) {
        if etag_listed(list, &meta.etag, true) {
            return Plan::NotModified;
        }
    } else if let Some(since) = get(header::IF_MODIFIED_SINCE).and_then(date_secs) {
        if meta.modified_secs() <= since && (*method == Method::GET || *method == Method::HEAD) {
            return Plan::NotModified;
        }
    }
    let Some(range) = get(header::RANGE) else {
        return Plan::Full;
    };
    if let Some(validator) = get(header::IF_RANGE) {
        let current = if validator.starts_with('"') {
            validator == meta.etag
        } else {
            date_secs(validator) == Some(meta.modified_secs())
        };
        if !current {
            return Plan::Full;
        }
    }
    match parse_range(range, meta.size) {
        None => Plan::Full,
        Some(Ok((start, end))) => Plan::Partial { start, end },
        Some(Err(())) => Plan::Unsatisfiable,
    }
}

/// A content type from the file name's extension.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" | "log" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

/// Fills `buf` from `offset`. The buffer comes from the request's thread: memory allocated on a
/// blocking-pool thread and freed on the request's thread stayed with the (idle) pool thread's
/// heap until that thread allocated again; 1,000 slow downloads held ~600 MiB that way instead
/// of ~400 MiB with 128 KiB chunks.
fn read_chunk(file: &File, offset: u64, mut buf: BytesMut) -> std::io::Result<Bytes> {
    let len = buf.len();
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf.freeze())
}

fn io_error(e: impl std::fmt::Display) -> Box<pingora::Error> {
    pingora::Error::explain(
        pingora::ErrorType::ReadError,
        format!("reading a dir store file: {e}"),
    )
}

pub struct DirStore {
    pub config: DirStoreConfig,
    pub metrics: &'static StoreSeries,
}

impl DirStore {
    pub fn new(config: DirStoreConfig) -> DirStore {
        let metrics = metrics().store(&config.name);
        DirStore { config, metrics }
    }

    /// The path of `key` under the root (blocking: call on the blocking pool). A later upload
    /// writes beside this: a temporary file in the resolved parent, then a no-clobber link.
    pub fn resolve_blocking(root: &Path, key: &str) -> Result<PathBuf, DirError> {
        check_object_key(key).map_err(|_| DirError::Escape)?;
        let joined = root.join(key.strip_prefix('/').unwrap_or(key));
        let canonical = std::fs::canonicalize(&joined).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DirError::NotFound,
            _ => DirError::Io(e),
        })?;
        if !canonical.starts_with(root) {
            return Err(DirError::Escape);
        }
        Ok(canonical)
    }

    /// Resolves and opens `key` (no symlink followed in the last step): the file and its metadata.
    pub async fn open(&self, key: &str) -> Result<(File, FileMeta, PathBuf), DirError> {
        let root = self.config.root.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            let path = DirStore::resolve_blocking(&root, &key)?;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => DirError::NotFound,
                    _ => DirError::Io(e),
                })?;
            let m = file.metadata()?;
            if !m.is_file() {
                return Err(DirError::NotAFile);
            }
            Ok((file, FileMeta::of(&m), path))
        })
        .await
        .map_err(|e| DirError::Io(std::io::Error::other(e.to_string())))?
    }

    /// The file's size and the validators `serve` answers with (the `ETag` is made of the
    /// modification second and the size, so a same-size replacement within the same second is
    /// not seen as a change).
    pub async fn meta_of(&self, key: &str) -> Option<super::ObjectMeta> {
        self.open(key)
            .await
            .ok()
            .map(|(_, meta, _)| super::ObjectMeta {
                size: Some(meta.size),
                etag: Some(meta.etag.clone()),
                last_modified: Some(httpdate::fmt_http_date(meta.modified)),
            })
    }

    /// Ready when the root is a folder the gateway can list.
    pub async fn ready(&self) -> Result<(), String> {
        let root = self.config.root.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::read_dir(&root)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", root.display()))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Answers the request for `key` from the folder; `decorate` adds the gateway's own headers
    /// (disposition, caching) to a successful answer; `allowance` meters the body.
    pub async fn serve<F, A>(
        &self,
        session: &mut Session,
        key: &str,
        decorate: F,
        allowance: &mut A,
        spliced: &mut u64,
    ) -> Result<(), ServeError>
    where
        F: FnOnce(&mut ResponseHeader) -> pingora::Result<()>,
        A: Allowance,
    {
        let started = Instant::now();
        let (file, meta, path) = match self.open(key).await {
            Ok(opened) => opened,
            Err(e) => {
                self.metrics.error(match e {
                    DirError::NotFound | DirError::NotAFile => "not_found",
                    _ => "io",
                });
                return Err(ServeError::Refused(e));
            }
        };
        self.metrics.observe(started.elapsed());
        let method = session.req_header().method.clone();
        let plan = plan(&method, &session.req_header().headers, &meta);
        if plan == Plan::PreconditionFailed {
            return Err(ServeError::PreconditionFailed);
        }
        let (status, range) = match plan {
            Plan::Full => (200, Some((0, meta.size.saturating_sub(1)))),
            Plan::Partial { start, end } => (206, Some((start, end))),
            Plan::NotModified => (304, None),
            Plan::PreconditionFailed => (412, None),
            Plan::Unsatisfiable => (416, None),
        };
        let length = match range {
            Some((start, end)) if meta.size > 0 => end - start + 1,
            _ => 0,
        };
        let mut resp = ResponseHeader::build(status, Some(10))?;
        resp.insert_header(header::ACCEPT_RANGES, "bytes")?;
        resp.insert_header(header::ETAG, meta.etag.as_str())?;
        resp.insert_header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(meta.modified),
        )?;
        match plan {
            Plan::Full | Plan::Partial { .. } => {
                resp.insert_header(header::CONTENT_TYPE, content_type(&path))?;
                resp.insert_header(header::CONTENT_LENGTH, length)?;
                if let Some((start, end)) = range.filter(|_| status == 206) {
                    resp.insert_header(
                        header::CONTENT_RANGE,
                        format!("bytes {start}-{end}/{}", meta.size),
                    )?;
                }
                decorate(&mut resp)?;
            }
            Plan::Unsatisfiable => {
                resp.insert_header(header::CONTENT_RANGE, format!("bytes */{}", meta.size))?;
                resp.insert_header(header::CONTENT_LENGTH, 0)?;
            }
            Plan::NotModified => {}
            Plan::PreconditionFailed => {
                resp.insert_header(header::CONTENT_LENGTH, 0)?;
            }
        }
        let body = method != Method::HEAD && length > 0;
        if !allowance
            .begin(Some(if body { length } else { 0 }), Some(meta.size))
            .await?
        {
            return Err(ServeError::Exhausted);
        }
        // A large file to a plain HTTP/1 recipient may go file → pipe → socket (see
        // `super::splice`); Pingora does not see those bytes, so no keep-alive after it.
        let mut splice_to = splice::recipient_fd(session).filter(|_| body && length >= MIN_BODY);
        if splice_to.is_some() {
            session.set_keepalive(None);
        }
        session
            .write_response_header(Box::new(resp), !body)
            .await
            .map_err(super::from_recipient)?;
        if !body {
            return Ok(());
        }
        let Some((mut offset, _)) = range else {
            return Ok(());
        };
        let _streaming = Streaming::start();
        let file = Arc::new(file);
        let read = |offset: u64, len: usize| {
            let file = file.clone();
            let buf = BytesMut::zeroed(len);
            tokio::task::spawn_blocking(move || read_chunk(&file, offset, buf))
        };
        let (mut left, start, streaming) = (length, offset, Instant::now());
        let mut next = Some(read(offset, MIN_CHUNK.min(left as usize)));
        while let Some(pending) = next.take() {
            let chunk = pending.await.map_err(io_error)?.map_err(io_error)?;
            offset += chunk.len() as u64;
            left -= chunk.len() as u64;
            if left == 0 {
                write_body(session, chunk, true, allowance).await?;
                break;
            }
            // Sized by what the client has taken so far (the chunk in hand is not sent yet).
            let (sent, elapsed) = (offset - start - chunk.len() as u64, streaming.elapsed());
            let size = chunk_for(sent, elapsed);
            if let Some(to) = splice_to.filter(|to| splice::time_to_splice(*to, sent, elapsed)) {
                // A slow recipient: the rest goes file → pipe → socket, and no chunk of ours
                // waits for it meanwhile.
                write_body(session, chunk, false, allowance).await?;
                match splice::Splice::from_file(file.clone(), offset, to) {
                    Ok(mut pipe) => {
                        let rest = (&mut left, offset - start, streaming);
                        pipe.send_body(session, allowance, rest, None, spliced)
                            .await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "no pipe for splicing, copying instead");
                        splice_to = None;
                        next = Some(read(offset, size.min(left as usize)));
                        continue;
                    }
                }
            }
            next = Some(read(offset, size.min(left as usize)));
            write_body(session, chunk, false, allowance).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> FileMeta {
        FileMeta {
            size: 1000,
            modified: UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
            etag: "\"abc-3e8\"".into(),
        }
    }

    fn plan_for(headers: &[(&str, &str)]) -> Plan {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        plan(&Method::GET, &h, &meta())
    }

    #[test]
    fn ranges() {
        assert_eq!(plan_for(&[]), Plan::Full);
        assert_eq!(
            plan_for(&[("range", "bytes=0-99")]),
            Plan::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            plan_for(&[("range", "bytes=990-")]),
            Plan::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            plan_for(&[("range", "bytes=-10")]),
            Plan::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(
            plan_for(&[("range", "bytes=500-5000")]),
            Plan::Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(plan_for(&[("range", "bytes=1000-")]), Plan::Unsatisfiable);
        assert_eq!(plan_for(&[("range", "bytes=0-1,5-6")]), Plan::Full);
        assert_eq!(plan_for(&[("range", "items=0-1")]), Plan::Full);
        assert_eq!(plan_for(&[("range", "bytes=9-1")]), Plan::Full);
    }

    #[test]
    fn conditionals() {
        let date = httpdate::fmt_http_date(meta().modified);
        let earlier = httpdate::fmt_http_date(meta().modified - std::time::Duration::from_secs(60));
        assert_eq!(
            plan_for(&[("if-none-match", "\"abc-3e8\"")]),
            Plan::NotModified
        );
        assert_eq!(
            plan_for(&[("if-none-match", "W/\"abc-3e8\"")]),
            Plan::NotModified
        );
        assert_eq!(plan_for(&[("if-none-match", "\"other\"")]), Plan::Full);
        assert_eq!(plan_for(&[("if-modified-since", &date)]), Plan::NotModified);
        assert_eq!(plan_for(&[("if-modified-since", &earlier)]), Plan::Full);
        assert_eq!(
            plan_for(&[("if-match", "\"other\"")]),
            Plan::PreconditionFailed
        );
        assert_eq!(
            plan_for(&[("if-unmodified-since", &earlier)]),
            Plan::PreconditionFailed
        );
        assert_eq!(
            plan_for(&[("range", "bytes=0-9"), ("if-range", "\"abc-3e8\"")]),
            Plan::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            plan_for(&[("range", "bytes=0-9"), ("if-range", "\"stale\"")]),
            Plan::Full
        );
        assert_eq!(
            plan_for(&[("range", "bytes=0-9"), ("if-range", &date)]),
            Plan::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            plan_for(&[("range", "bytes=0-9"), ("if-range", &earlier)]),
            Plan::Full
        );
    }

    #[test]
    fn keys_never_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.txt"), b"a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("out.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a.txt"), root.join("in.txt")).unwrap();
        assert!(DirStore::resolve_blocking(&root, "sub/a.txt").is_ok());
        assert!(DirStore::resolve_blocking(&root, "in.txt").is_ok());
        assert!(matches!(
            DirStore::resolve_blocking(&root, "out.txt"),
            Err(DirError::Escape)
        ));
        assert!(matches!(
            DirStore::resolve_blocking(&root, "../secret.txt"),
            Err(DirError::Escape)
        ));
        assert!(matches!(
            DirStore::resolve_blocking(&root, "missing"),
            Err(DirError::NotFound)
        ));
    }
}
