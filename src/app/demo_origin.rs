//! A small static-file origin for the demo and for trying linkgate without a document store.
//!
//! `linkgate origin --dir DIR --listen ADDR` serves the files under DIR with GET and HEAD, a single
//! byte Range (206/416), `ETag`/`If-None-Match` (304) and `Last-Modified`, streaming in 64 KiB
//! chunks. Paths are percent-decoded and must stay inside DIR (no `..`, no symlinks out).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::BytesMut;
use http::{header, Method};
use pingora::apps::{HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub struct StaticOrigin {
    root: PathBuf,
}

impl StaticOrigin {
    pub fn new(root: &Path) -> std::io::Result<StaticOrigin> {
        Ok(StaticOrigin {
            root: root.canonicalize()?,
        })
    }

    /// The file a request path names, if it is a regular file inside the root.
    fn resolve(&self, path: &str) -> Option<PathBuf> {
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .ok()?;
        let mut out = self.root.clone();
        for segment in decoded.split('/').filter(|s| !s.is_empty()) {
            if segment == "." || segment == ".." || segment.contains('\\') || segment.contains('\0')
            {
                return None;
            }
            out.push(segment);
        }
        let real = out.canonicalize().ok()?;
        (real.starts_with(&self.root) && real.is_file()).then_some(real)
    }
}

/// A Range that cannot be satisfied (416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range against a file length: `Ok(None)` for no (or an ignorable)
/// Range, `Err(Unsatisfiable)` when it cannot be satisfied.
pub fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: serve the whole file, as RFC 9110 allows
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let n: u64 = end.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || len == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let s: u64 = start.parse().map_err(|_| Unsatisfiable)?;
        let e: u64 = if end.is_empty() {
            len.saturating_sub(1)
        } else {
            end.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .min(len.saturating_sub(1))
        };
        if s >= len || e < s {
            return Err(Unsatisfiable);
        }
        (s, e)
    };
    Ok(Some(range))
}

async fn respond(
    session: &mut ServerSession,
    status: u16,
    headers: &[(&str, String)],
) -> Option<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 1)).ok()?;
    for (k, v) in headers {
        resp.insert_header(k.to_string(), v.as_str()).ok()?;
    }
    session.write_response_header(Box::new(resp)).await.ok()
}

impl StaticOrigin {
    async fn serve(&self, session: &mut ServerSession) -> Option<()> {
        let method = session.req_header().method.clone();
        if method != Method::GET && method != Method::HEAD {
            respond(
                session,
                405,
                &[
                    ("allow", "GET, HEAD".into()),
                    ("content-length", "0".into()),
                ],
            )
            .await?;
            return Some(());
        }
        let Some(path) = self.resolve(session.req_header().uri.path()) else {
            respond(session, 404, &[("content-length", "0".into())]).await?;
            return Some(());
        };
        let mut file = tokio::fs::File::open(&path).await.ok()?;
        let meta = file.metadata().await.ok()?;
        let len = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let etag = format!("\"{len:x}-{mtime:x}\"");
        let last_modified = httpdate(mtime);
        let req = session.req_header();
        if req
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        {
            respond(session, 304, &[("etag", etag)]).await?;
            return Some(());
        }
        let if_range_ok = match req
            .headers
            .get(header::IF_RANGE)
            .and_then(|v| v.to_str().ok())
        {
            Some(v) => v == etag || v == last_modified,
            None => true,
        };
        let range = match req.headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(r) if if_range_ok => parse_range(r, len),
            _ => Ok(None),
        };
        let common = [
            ("etag", etag),
            ("last-modified", last_modified),
            ("accept-ranges", "bytes".to_string()),
            ("content-type", media_type(&path)),
        ];
        let (start, end) = match range {
            Err(Unsatisfiable) => {
                let mut h = common.to_vec();
                h.push(("content-range", format!("bytes */{len}")));
                h.push(("content-length", "0".into()));
                respond(session, 416, &h).await?;
                return Some(());
            }
            Ok(Some((s, e))) => {
                let mut h = common.to_vec();
                h.push(("content-range", format!("bytes {s}-{e}/{len}")));
                h.push(("content-length", (e - s + 1).to_string()));
                respond(session, 206, &h).await?;
                (s, e + 1)
            }
            Ok(None) => {
                let mut h = common.to_vec();
                h.push(("content-length", len.to_string()));
                respond(session, 200, &h).await?;
                (0, len)
            }
        };
        if method == Method::HEAD || start == end {
            return Some(());
        }
        file.seek(std::io::SeekFrom::Start(start)).await.ok()?;
        let mut left = end - start;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        while left > 0 {
            buf.clear();
            let want = left.min(64 * 1024) as usize;
            buf.resize(want, 0);
            let n = file.read(&mut buf[..want]).await.ok()?;
            if n == 0 {
                return None; // the file shrank: break the connection rather than lie about its length
            }
            buf.truncate(n);
            left -= n as u64;
            session
                .write_response_body(buf.split().freeze(), left == 0)
                .await
                .ok()?;
        }
        Some(())
    }
}

/// The media type of a served file, by its extension (text gets `charset=utf-8`); unknown
/// extensions are `application/octet-stream`, as nginx's `default_type` usually is.
fn media_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for Unix seconds.
fn httpdate(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap_or_default()
}

#[async_trait]
impl HttpServerApp for StaticOrigin {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !session.read_request().await.ok()? {
            return None;
        }
        session.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        self.serve(&mut session).await?;
        let persistent = pingora::apps::HttpPersistentSettings::for_session(&session);
        let stream = session.finish().await.ok()??;
        Some(ReusedHttpStream::from_reusable_stream(stream, persistent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(Unsatisfiable));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("lines=1-2", 100), Ok(None));
        assert_eq!(httpdate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn media_types_follow_the_extension() {
        for (name, want) in [
            ("welcome.txt", "text/plain; charset=utf-8"),
            ("report.PDF", "application/pdf"),
            ("photo.jpg", "image/jpeg"),
            ("page.html", "text/html; charset=utf-8"),
            ("sample-8MiB.bin", "application/octet-stream"),
            ("no-extension", "application/octet-stream"),
        ] {
            assert_eq!(media_type(Path::new(name)), want, "{name}");
        }
    }
}
