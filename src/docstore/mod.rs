//! Document stores: where a link's object lives and how a request for it is built.
//!
//! - [`http::HttpStore`]: one or more HTTP(S) origins serving the same files, health-checked,
//!   with failover between them and the store's own credential.
//! - [`s3::S3Store`]: an S3-compatible bucket; every upstream request is signed with SigV4.
//! - [`dir::DirStore`]: a local folder served by the gateway itself.
//! - [`relay`]: how an HTTP or S3 store's answer reaches the recipient (the gateway's own
//!   HTTP/1.1 client over Pingora's connector); [`pace`]: how much of a document a stream reads
//!   at a time; [`splice`]: large plain-HTTP bodies moved by the kernel instead of copied;
//!   [`write`]: uploads into a store.
//!
//! Only the object key a link was created with (and so signed) chooses the upstream path. Keys are
//! checked at creation (no empty, `.` or `..` segments, no control characters) and every segment is
//! percent-encoded on the way out, so no key can leave the store's base path (or root folder).

pub mod dir;
pub mod fetch;
pub mod http;
pub mod pace;
pub mod relay;
pub mod s3;
pub mod settings;
pub mod splice;
pub mod write;

use std::time::{Duration, Instant};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use crate::docstore::settings::StoreConfig;
use crate::metrics::StoreSeries;

/// What a response may still send. The stores ask before each write of a body chunk, so a
/// download limit is kept byte by byte (see [`crate::model::counting`]); `()` allows everything.
pub trait Allowance: Send {
    /// Once the response's head is known and before it is written: whether it may go out at all
    /// (`length` of its body and the document's `size`, where stated).
    fn begin(
        &mut self,
        length: Option<u64>,
        size: Option<u64>,
    ) -> impl std::future::Future<Output = pingora::Result<bool>> + Send;
    /// How many of the next `n` bytes may be written now; fewer than `n` means the limit is
    /// reached: those are written, then the response is broken off.
    fn allow(
        &mut self,
        n: usize,
    ) -> impl std::future::Future<Output = pingora::Result<usize>> + Send;
    /// `n` bytes are being handed to the connection (counted before the write, so a write that
    /// breaks off half-way is counted whole).
    fn wrote(&mut self, n: usize);
}

impl Allowance for () {
    async fn begin(&mut self, _: Option<u64>, _: Option<u64>) -> pingora::Result<bool> {
        Ok(true)
    }

    async fn allow(&mut self, n: usize) -> pingora::Result<usize> {
        Ok(n)
    }

    fn wrote(&mut self, _: usize) {}
}

/// Writes one body chunk within what `allowance` allows; past the limit, the part still allowed
/// goes out and the response is broken off with an error.
pub async fn write_body<A: Allowance>(
    session: &mut pingora::proxy::Session,
    chunk: bytes::Bytes,
    end: bool,
    allowance: &mut A,
) -> pingora::Result<()> {
    let allowed = allowance.allow(chunk.len()).await?;
    allowance.wrote(allowed);
    if allowed < chunk.len() {
        if allowed > 0 {
            session
                .write_response_body(Some(chunk.slice(..allowed)), false)
                .await
                .map_err(from_recipient)?;
        }
        return Err(limit_reached());
    }
    session
        .write_response_body(Some(chunk), end)
        .await
        .map_err(from_recipient)
}

/// Marks an error writing to the recipient as the recipient's: one who went away (a closed tab,
/// a cancelled download, a reset) or would not take the bytes in time. Such a request ends as
/// `client_gone` and is no error of the gateway's (Pingora leaves the source of its session's
/// write errors unset, which reads as the gateway's own fault: a 500 in the log and `error` in
/// the metrics for every cancelled download).
pub fn from_recipient(e: Box<pingora::Error>) -> Box<pingora::Error> {
    e.into_down()
}

/// The error a response is broken off with when its link's limit is reached mid-body.
pub const LIMIT_REACHED: pingora::ErrorType = pingora::ErrorType::Custom("download limit reached");

/// Runs `io` within `timeout`: its failure a `ReadError` or `WriteError` (after the kind of
/// timeout given) explained by `what`, the timeout itself `timed_out`.
pub(crate) async fn within<T>(
    timeout: Option<Duration>,
    io: impl std::future::Future<Output = std::io::Result<T>>,
    timed_out: ErrorType,
    what: &'static str,
) -> pingora::Result<T> {
    let done = match timeout {
        Some(t) => match tokio::time::timeout(t, io).await {
            Ok(done) => done,
            Err(_) => return Error::e_explain(timed_out, format!("{what}, timeout {t:?}")),
        },
        None => io.await,
    };
    let kind = if matches!(timed_out, ErrorType::ReadTimedout) {
        ErrorType::ReadError
    } else {
        ErrorType::WriteError
    };
    done.map_err(|e| Error::because(kind, what, e))
}

/// A [`LIMIT_REACHED`] error.
pub fn limit_reached() -> Box<pingora::Error> {
    pingora::Error::explain(
        LIMIT_REACHED,
        "the download limit was reached during the response",
    )
}

/// Everything but RFC 3986 unreserved characters is encoded (including `%`, so nothing is decoded twice).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Request headers passed to the origin; everything else the client sent (cookies, authorization,
/// forwarding headers) stays at the gateway.
pub const FORWARDED_REQUEST_HEADERS: [&str; 7] = [
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "accept",
];

/// `base` followed by the key, each segment percent-encoded.
pub fn encoded_path(base: &str, key: &str) -> String {
    let key = key.strip_prefix('/').unwrap_or(key);
    let mut out = String::with_capacity(base.len() + key.len() + 16);
    out.push_str(base);
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(segment, SEGMENT));
    }
    out
}

/// A request's attempts at a store's origins (for failover), and when the current one began.
#[derive(Debug, Default, Clone, Copy)]
pub struct Attempt {
    /// The origin chosen for the current try.
    pub origin: usize,
    /// Origins tried so far (bit i = origin i).
    tried: u64,
    pub tries: u8,
    /// When the current try was started (for the upstream latency histogram).
    pub started: Option<Instant>,
}

impl Attempt {
    fn mark(&mut self, origin: usize) {
        self.origin = origin;
        self.tried |= 1u64 << (origin % 64);
        self.tries = self.tries.saturating_add(1);
        self.started = Some(Instant::now());
    }

    fn tried(&self, origin: usize) -> bool {
        self.tried & (1u64 << (origin % 64)) != 0
    }
}

/// A configured store (one per `[stores.NAME]`, built at start and shared behind an `Arc`, so
/// the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub enum DocStore {
    Http(http::HttpStore),
    S3(s3::S3Store),
    Dir(dir::DirStore),
}

impl DocStore {
    pub fn new(config: &StoreConfig) -> DocStore {
        match config {
            StoreConfig::Http(c) => DocStore::Http(http::HttpStore::new(c.clone())),
            StoreConfig::S3(c) => DocStore::S3(s3::S3Store::new(c.clone())),
            StoreConfig::Dir(c) => DocStore::Dir(dir::DirStore::new(c.clone())),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            DocStore::Http(s) => &s.config.name,
            DocStore::S3(s) => &s.config.name,
            DocStore::Dir(s) => &s.config.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DocStore::Http(_) => "http",
            DocStore::S3(_) => "s3",
            DocStore::Dir(_) => "dir",
        }
    }

    /// This store's metric series.
    pub fn metrics(&self) -> &'static StoreSeries {
        match self {
            DocStore::Http(s) => s.metrics,
            DocStore::S3(s) => s.metrics,
            DocStore::Dir(s) => s.metrics,
        }
    }

    /// The folder store, which the gateway serves itself (no upstream peer).
    pub fn as_dir(&self) -> Option<&dir::DirStore> {
        match self {
            DocStore::Dir(d) => Some(d),
            _ => None,
        }
    }

    /// The peer for the next try of a request; `None` for a folder store.
    pub fn peer(&self, attempt: &mut Attempt) -> Option<Box<HttpPeer>> {
        match self {
            DocStore::Http(s) => Some(s.peer(attempt)),
            DocStore::S3(s) => {
                attempt.mark(0);
                Some(s.peer())
            }
            DocStore::Dir(_) => None,
        }
    }

    /// Whether a request whose connection to the chosen origin failed may try another origin.
    pub fn may_retry(&self, attempt: &Attempt) -> bool {
        match self {
            DocStore::Http(s) => (attempt.tries as usize) < s.origin_count(),
            _ => false,
        }
    }

    /// The request sent upstream for `key`: origin-form path, `Host`, the whitelisted client
    /// headers, and the store's credential (or SigV4 signature).
    pub fn upstream_request(
        &self,
        attempt: &Attempt,
        method: &::http::Method,
        key: &str,
        client: &RequestHeader,
    ) -> pingora::Result<RequestHeader> {
        match self {
            DocStore::Http(s) => s.request(attempt.origin, method, key, client),
            DocStore::S3(s) => s.request(method, key, client),
            DocStore::Dir(_) => pingora::Error::e_explain(
                pingora::ErrorType::InternalError,
                "a folder store has no upstream",
            ),
        }
    }

    /// Drops store-specific response headers a recipient has no business seeing.
    pub fn clean_response(&self, resp: &mut ResponseHeader) {
        if let DocStore::S3(_) = self {
            let names: Vec<::http::HeaderName> = resp
                .headers
                .keys()
                .filter(|n| n.as_str().starts_with("x-amz-"))
                .cloned()
                .collect();
            for name in names {
                resp.remove_header(&name);
            }
        }
    }

    /// The object's size and validators (a HEAD, bounded to two seconds), or `None` when the
    /// store does not answer with a success.
    pub async fn meta_of(&self, key: &str) -> Option<ObjectMeta> {
        match self {
            DocStore::Http(s) => s.meta_of(key).await,
            DocStore::S3(s) => s.meta_of(key).await,
            DocStore::Dir(s) => s.meta_of(key).await,
        }
    }

    /// Whether the store can serve now (checked live); `Err` says why not.
    pub async fn ready(&self) -> Result<(), String> {
        match self {
            DocStore::Http(s) => s.ready().await,
            DocStore::S3(s) => s.ready().await,
            DocStore::Dir(s) => s.ready().await,
        }
    }

    /// One pass of the background health check (HTTP stores with several origins).
    pub async fn check_health(&self) -> Option<Duration> {
        match self {
            DocStore::Http(s) => s.check_health().await,
            _ => None,
        }
    }
}

/// Sends one bodiless request (HEAD or GET) to `peer` and returns the response header; the body,
/// if any, is drained. Used off the request path: readiness probes and object sizes.
pub(crate) async fn probe(
    peer: &HttpPeer,
    req: RequestHeader,
    timeout: Duration,
) -> Result<ResponseHeader, String> {
    let connector = pingora::connectors::http::Connector::new(None);
    let work = async {
        let (mut session, _) = connector
            .get_http_session(peer)
            .await
            .map_err(|e| e.to_string())?;
        session.set_read_timeout(Some(timeout));
        session.set_write_timeout(Some(timeout));
        let head = req.method == ::http::Method::HEAD;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.to_string())?;
        session
            .finish_request_body()
            .await
            .map_err(|e| e.to_string())?;
        session
            .read_response_header()
            .await
            .map_err(|e| e.to_string())?;
        let resp = session
            .response_header()
            .cloned()
            .ok_or_else(|| "no response header".to_string())?;
        if !head {
            let mut drained = 0usize;
            while let Ok(Some(chunk)) = session.read_response_body().await {
                drained += chunk.len();
                if drained > 1 << 20 {
                    break;
                }
            }
        }
        session.shutdown().await;
        Ok(resp)
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// What a store says of an object: its size and the validators a later request can be made
/// conditional on (`If-Match`, `If-Unmodified-Since`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl ObjectMeta {
    /// From a successful HEAD's headers.
    pub(crate) fn of_response(resp: &ResponseHeader) -> ObjectMeta {
        let text = |name: ::http::header::HeaderName| {
            resp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.len() <= 256)
        };
        ObjectMeta {
            size: content_length(resp),
            etag: text(::http::header::ETAG),
            last_modified: text(::http::header::LAST_MODIFIED),
        }
    }
}

/// The `Content-Length` of a response, if any.
pub(crate) fn content_length(resp: &ResponseHeader) -> Option<u64> {
    resp.headers
        .get(::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_under_the_base() {
        assert_eq!(encoded_path("/files/", "a/b c.pdf"), "/files/a/b%20c.pdf");
        assert_eq!(encoded_path("/files/", "%2e%2e/x"), "/files/%252e%252e/x");
        assert_eq!(
            encoded_path("/files/", "ü?#.txt"),
            "/files/%C3%BC%3F%23.txt"
        );
    }

    #[test]
    fn attempts_remember_their_origins() {
        let mut a = Attempt::default();
        a.mark(2);
        assert!(a.tried(2) && !a.tried(0));
        assert_eq!((a.origin, a.tries), (2, 1));
    }
}
