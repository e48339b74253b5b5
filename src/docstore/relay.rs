//! Relaying a document from an HTTP origin (HTTP and S3 stores) to the recipient.
//!
//! The gateway speaks HTTP/1.1 to the origin itself rather than through Pingora's proxy loop, so
//! that it decides how the body is buffered. Pingora 0.9's loop reads the upstream body in reads
//! of up to 64 KiB, copies each into a new buffer and queues several of them between its two
//! halves: about 0.8 MiB held per download whose recipient reads slowly (818 MiB for 1,000 of
//! them, measured), and a copy and a task hop per read for a fast one. Here one task reads a chunk
//! sized to the recipient's pace (see [`super::pace`]) into one reused buffer and writes it out
//! before reading the next, so a stream holds one chunk, and a body is never copied in user space.
//!
//! What stays Pingora's: the connection itself (TCP or TLS, connect timeouts, the keep-alive pool)
//! through its [`TransportConnector`], and the recipient's side of the exchange.
//!
//! The origin's answer is read strictly: one response head (informational 1xx answers skipped),
//! a body framed by `Content-Length`, `Transfer-Encoding: chunked` (decoded here and re-chunked
//! to the recipient) or the end of the connection; a head with conflicting or malformed framing
//! is an error (502), never guessed at. A connection goes back to the pool only after its body
//! was read to the end with nothing left over and nothing more arrived for a moment after, and an origin that closes a pooled connection
//! before answering is asked again once on a new one (nothing had reached it).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use http::{header, HeaderValue, Method, StatusCode, Version};
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::v1::client::http_req_header_to_wire;
use pingora::protocols::l4::stream::DEFAULT_L4_READ_BUFFER_SIZE as READ_BUFFER;
use pingora::protocols::Stream;
use pingora::proxy::Session;
use pingora::upstreams::peer::{HttpPeer, Peer};
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::pace::{chunk_for, Streaming, MIN_CHUNK};
use super::{splice, write_body, Allowance, Attempt, DocStore};

/// The longest response head accepted from an origin.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines accepted in a response head.
const MAX_HEADERS: usize = 128;
/// The longest chunk-size or trailer line accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 4096;

/// Headers about one connection, never passed on (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// How long a connection whose answer was read to the end is watched before it goes back to the
/// pool: an origin that sends anything in that time (a body after a 304 or a HEAD answer, bytes
/// past its `Content-Length`) has its connection closed, so those bytes can never be read as the
/// answer to another recipient's request. Pingora's pool drops a connection that receives bytes
/// while idle, but not one picked up again within the few milliseconds such bytes take. Short,
/// so that under load connections come back to the pool instead of new ones being opened for
/// every request (200 ms emptied the pool at a few thousand requests a second).
const QUARANTINE: Duration = Duration::from_millis(25);

/// The origin's response headers a recipient gets (after the hop-by-hop ones are gone); every
/// other one stays behind, as on the request side: HSTS, CORS, cookies, `Server`, `Link`,
/// `Refresh` and the like are about the origin's site, not the gateway's. `Cache-Control` is
/// replaced by the gateway's own, and only the first `Content-Type` is kept.
const RELAYED: [&str; 11] = [
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "etag",
    "last-modified",
    "cache-control",
    "content-encoding",
    "content-language",
    "date",
    "vary",
];

/// Connections to the stores' origins, shared by every request (one keep-alive pool).
pub struct Relay {
    connector: std::sync::Arc<TransportConnector>,
}

/// How the origin's body ends.
#[derive(Debug)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
    /// Until the origin closes the connection.
    Close,
}

/// The body of an origin's answer, still to be read, and the connection it arrives on.
pub struct Body<'a> {
    relay: &'a Relay,
    peer: Box<HttpPeer>,
    stream: Stream,
    /// Bytes read past the response head.
    buf: BytesMut,
    framing: Framing,
    keepalive: bool,
    /// The recipient's socket, when both connections are plain and the body long: once the
    /// kernel is the better place for the rest (see [`splice::time_to_splice`]), it is spliced.
    splice: Option<RawFd>,
}

/// A failed try, and whether the origin had sent anything yet.
struct Failure {
    error: Box<Error>,
    nothing_received: bool,
}

impl Relay {
    pub fn new(options: Option<ConnectorOptions>) -> Relay {
        Relay {
            connector: std::sync::Arc::new(TransportConnector::new(options)),
        }
    }

    /// Sends the request for `key` to the store's origin (failing over to another origin of an
    /// HTTP store while none could be reached) and reads the response head.
    ///
    /// The returned head is ready for the recipient: hop-by-hop headers removed, and
    /// `Transfer-Encoding: chunked` set when the body's length is not known and the recipient
    /// speaks HTTP/1.1. Errors are the upstream's (Pingora's `ErrorSource::Upstream`).
    pub async fn open(
        &self,
        store: &DocStore,
        attempt: &mut Attempt,
        method: &Method,
        key: &str,
        client: &RequestHeader,
        trace: Option<&opentelemetry::Context>,
    ) -> Result<(ResponseHeader, Body<'_>)> {
        let (peer, stream, reused) = self.connect(store, attempt).await?;
        crate::telemetry::event(trace, "connected", || {
            vec![opentelemetry::KeyValue::new(
                "linkgate.connection_reused",
                reused,
            )]
        });
        let req = store.upstream_request(attempt, method, key, client)?;
        let Some(wire) = http_req_header_to_wire(&req) else {
            return Error::e_explain(
                ErrorType::InternalError,
                "the upstream request's path has a forbidden byte",
            );
        };
        let head_only = method == Method::HEAD;
        let answered = match self.exchange(stream, &peer, &wire).await {
            Err(Failure {
                nothing_received: true,
                ..
            }) if reused => {
                // A pooled connection the origin had closed: nothing reached it, ask again once.
                let stream = Box::pin(self.connector.new_stream(&*peer))
                    .await
                    .map_err(|e| {
                        store.metrics().error("connect");
                        e.into_up()
                    })?;
                self.exchange(stream, &peer, &wire).await
            }
            other => other,
        };
        let (head, stream, buf) = answered.map_err(|f| f.error)?;
        let (head, framing, keepalive) = for_recipient(head, head_only, client.version)?;
        Ok((
            head,
            Body {
                relay: self,
                peer,
                stream,
                buf,
                framing,
                keepalive,
                splice: None,
            },
        ))
    }

    /// A connection to one of the store's origins: the next untried one while connecting fails
    /// and the store has another.
    async fn connect(
        &self,
        store: &DocStore,
        attempt: &mut Attempt,
    ) -> Result<(Box<HttpPeer>, Stream, bool)> {
        loop {
            let Some(peer) = store.peer(attempt) else {
                return Error::e_explain(ErrorType::InternalError, "a folder store has no origin");
            };
            // Pingora's `get_stream`, with connecting boxed: a new connection (TLS included)
            // is a future of ~8 KiB, which a warm download reusing a pooled one never needs.
            if let Some(stream) = self.connector.reused_stream(&*peer).await {
                return Ok((peer, stream, true));
            }
            match Box::pin(self.connector.new_stream(&*peer)).await {
                Ok(stream) => return Ok((peer, stream, false)),
                Err(e) => {
                    store.metrics().error("connect");
                    if !store.may_retry(attempt) {
                        return Err(e.into_up());
                    }
                    tracing::warn!(store = store.name(), origin = %peer, error = %e, "origin unreachable, trying another");
                }
            }
        }
    }

    /// Writes the request and reads the response head (skipping 1xx answers).
    async fn exchange(
        &self,
        mut stream: Stream,
        peer: &HttpPeer,
        wire: &[u8],
    ) -> std::result::Result<(ResponseHeader, Stream, BytesMut), Failure> {
        let untouched = |error: Box<Error>| Failure {
            error,
            nothing_received: true,
        };
        let write = async {
            stream.write_all(wire).await?;
            stream.flush().await
        };
        match peer.options.write_timeout {
            Some(t) => match tokio::time::timeout(t, write).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(untouched(
                        Error::explain(
                            ErrorType::WriteTimedout,
                            "writing the request to the origin",
                        )
                        .into_up(),
                    ))
                }
            },
            None => write.await,
        }
        .map_err(|e| {
            untouched(
                Error::because(
                    ErrorType::WriteError,
                    "writing the request to the origin",
                    e,
                )
                .into_up(),
            )
        })?;

        let mut buf = BytesMut::with_capacity(MIN_CHUNK);
        let mut received = false;
        loop {
            match take_head(&mut buf) {
                Ok(Some(head)) => return Ok((head, stream, buf)),
                Ok(None) => {}
                Err(e) => {
                    return Err(Failure {
                        error: e,
                        nothing_received: false,
                    })
                }
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(MIN_CHUNK);
            }
            let spare = buf.capacity() - buf.len();
            match read_some(&mut stream, &mut buf, spare, peer.options.read_timeout).await {
                Ok(0) => {
                    let e = Error::explain(
                        ErrorType::ConnectionClosed,
                        "the origin closed the connection before answering",
                    );
                    return Err(Failure {
                        error: e.into_up(),
                        nothing_received: !received,
                    });
                }
                Ok(_) => received = true,
                Err(error) => {
                    return Err(Failure {
                        error,
                        nothing_received: !received,
                    })
                }
            }
        }
    }
}

impl Body<'_> {
    /// Whether a body follows the head.
    pub fn is_empty(&self) -> bool {
        matches!(self.framing, Framing::Empty)
    }

    /// Whether this body may be spliced to `session`'s recipient: both connections plain TCP,
    /// HTTP/1 to the recipient, and a `Content-Length` of at least [`splice::MIN_BODY`]. Asked
    /// before the response head is written, which must then say `Connection: close`.
    pub fn may_splice(&mut self, session: &Session) -> bool {
        let long = matches!(self.framing, Framing::Length(n) if n >= splice::MIN_BODY);
        self.splice = splice::recipient_fd(session)
            .filter(|_| long && splice::plain_fd(&self.stream).is_some());
        self.splice.is_some()
    }

    /// Streams the body to the recipient (whose response head was written), chunk by chunk,
    /// then gives the connection back to the pool if it can serve another request. Bytes that
    /// went by `splice(2)` are added to `spliced` (Pingora's session does not count them).
    pub async fn send_to<A: Allowance>(
        mut self,
        session: &mut Session,
        allowance: &mut A,
        spliced: &mut u64,
    ) -> Result<()> {
        let read_timeout = self.peer.options.read_timeout;
        let _streaming = Streaming::start();
        let started = Instant::now();
        let mut sent = 0u64;
        let mut framing = std::mem::replace(&mut self.framing, Framing::Empty);
        match &mut framing {
            Framing::Empty => {}
            Framing::Length(left) => {
                if self.buf.len() as u64 > *left {
                    // More than the head announced: sent on, the rest is not trusted.
                    self.buf.truncate(*left as usize);
                    self.keepalive = false;
                }
                while *left > 0 {
                    if self.buf.is_empty() {
                        let elapsed = started.elapsed();
                        if let Some(to) = self
                            .splice
                            .take_if(|to| splice::time_to_splice(*to, sent, elapsed))
                        {
                            let rest = (&mut *left, sent, started);
                            if self
                                .splice_rest(session, to, allowance, rest, spliced)
                                .await?
                            {
                                break;
                            }
                            continue;
                        }
                        let size = chunk_for(sent, started.elapsed()).min(*left as usize);
                        if read_some(&mut self.stream, &mut self.buf, size, read_timeout).await?
                            == 0
                        {
                            return Err(closed_early(*left));
                        }
                    }
                    let chunk = self.buf.split().freeze();
                    *left -= chunk.len() as u64;
                    sent += chunk.len() as u64;
                    write_body(session, chunk, *left == 0, allowance).await?;
                }
            }
            Framing::Chunked(decoder) => loop {
                match decoder
                    .step(&mut self.buf)
                    .map_err(|why| Error::explain(ErrorType::InvalidHTTPHeader, why).into_up())?
                {
                    Step::Data(chunk) => {
                        sent += chunk.len() as u64;
                        write_body(session, chunk, false, allowance).await?;
                    }
                    Step::More => {
                        let size = chunk_for(sent, started.elapsed());
                        if read_some(&mut self.stream, &mut self.buf, size, read_timeout).await?
                            == 0
                        {
                            return Err(Error::explain(
                                ErrorType::ConnectionClosed,
                                "the origin closed the connection inside a chunked body",
                            )
                            .into_up());
                        }
                    }
                    Step::Done => {
                        session
                            .write_response_body(None, true)
                            .await
                            .map_err(super::from_recipient)?;
                        break;
                    }
                }
            },
            Framing::Close => loop {
                if self.buf.is_empty() {
                    let size = chunk_for(sent, started.elapsed());
                    if read_some(&mut self.stream, &mut self.buf, size, read_timeout).await? == 0 {
                        session
                            .write_response_body(None, true)
                            .await
                            .map_err(super::from_recipient)?;
                        break;
                    }
                }
                let chunk = self.buf.split().freeze();
                sent += chunk.len() as u64;
                write_body(session, chunk, false, allowance).await?;
            },
        }
        self.finish();
        Ok(())
    }

    /// Sends the rest of a `Content-Length` body (`left` bytes, nothing in `self.buf`) to the
    /// recipient's socket `to` by splicing: first what Pingora's origin stream has already read
    /// into user space (the copying way), then Pingora's buffer for the recipient is flushed,
    /// then chunks sized by the recipient's pace go through a pipe, each added to `spliced` once
    /// it reached the recipient's socket. `Ok(false)` when no pipe could be made (out of
    /// descriptors): the caller copies the rest.
    async fn splice_rest<A: Allowance>(
        &mut self,
        session: &mut Session,
        to: RawFd,
        allowance: &mut A,
        (left, mut sent, started): (&mut u64, u64, Instant),
        spliced: &mut u64,
    ) -> Result<bool> {
        let read_timeout = self.peer.options.read_timeout;
        // One read of at least Pingora's read buffer takes whatever that buffer holds (tokio's
        // `BufReader` hands out its whole buffer to a read at least its size, and reads the
        // socket directly when empty); pending means the buffer is empty.
        let size = (*left).min(READ_BUFFER as u64) as usize;
        let buffered = read_some(&mut self.stream, &mut self.buf, size, None).now_or_never();
        if let Some(read) = buffered {
            if read? == 0 {
                return Err(closed_early(*left));
            }
            let chunk = self.buf.split().freeze();
            *left -= chunk.len() as u64;
            sent += chunk.len() as u64;
            write_body(session, chunk, *left == 0, allowance).await?;
        }
        // The chunk's allocation is not needed again (it would stay with a slow download).
        self.buf = BytesMut::new();
        if *left == 0 {
            return Ok(true);
        }
        // Plain, as `may_splice` found.
        let Some(from) = splice::plain_fd(&self.stream) else {
            return Ok(false);
        };
        let mut pipe = match splice::Splice::new(from, to) {
            Ok(pipe) => pipe,
            Err(e) => {
                tracing::debug!(error = %e, "no pipe for splicing, copying instead");
                return Ok(false);
            }
        };
        let rest = (left, sent, started);
        pipe.send_body(session, allowance, rest, read_timeout, spliced)
            .await?;
        Ok(true)
    }

    /// Gives the connection back to the pool if its answer was read to the end with nothing
    /// after it (a body that was not read closes it), once nothing more arrived on it for
    /// [`QUARANTINE`].
    pub fn finish(self) {
        if !(self.keepalive && self.buf.is_empty() && matches!(self.framing, Framing::Empty)) {
            return;
        }
        let Body {
            relay,
            peer,
            mut stream,
            ..
        } = self;
        let connector = relay.connector.clone();
        let key = peer.reuse_hash();
        let idle = peer.idle_timeout();
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(QUARANTINE, stream.read(&mut byte)).await {
                // Quiet: fit for another request (Pingora's pool watches it from here on).
                Err(_) => connector.release_stream(stream, key, idle),
                Ok(Ok(0)) | Ok(Err(_)) => {}
                Ok(Ok(_)) => {
                    tracing::warn!(origin = %peer, "the origin sent bytes after a complete answer; connection closed");
                }
            }
        });
    }
}

/// The origin closed its connection `left` bytes before the end of a `Content-Length` body.
fn closed_early(left: u64) -> Box<Error> {
    let context =
        format!("the origin closed the connection {left} bytes before the end of the body");
    Error::explain(ErrorType::ConnectionClosed, context).into_up()
}

/// Reads at most `limit` bytes into `buf`; `Ok(0)` is the end of the connection.
///
/// An empty `buf` is reused when it has room for `limit` bytes and is not more than twice that,
/// else replaced by one of exactly `limit` bytes: a stream's memory follows its current pace,
/// and is never doubled the way `BytesMut::reserve` grows a buffer.
async fn read_some(
    stream: &mut Stream,
    buf: &mut BytesMut,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<usize> {
    if buf.is_empty() {
        // The whole allocation comes back once the chunks split off it are gone.
        if !buf.try_reclaim(limit) || buf.capacity() > 2 * limit {
            *buf = BytesMut::with_capacity(limit);
        }
    } else {
        buf.reserve(limit);
    }
    let mut limited = (&mut *stream).take(limit as u64);
    let read = limited.read_buf(buf);
    super::within(
        timeout,
        read,
        ErrorType::ReadTimedout,
        "reading from the origin",
    )
    .await
    .map_err(|e| e.into_up())
}

/// The origin's final response head, taken off the start of `buf` (1xx answers before it are
/// taken off and skipped), or `None` while more bytes are needed: what the relay runs on every
/// read of an answer, and a fuzzing entry point. A head longer than [`MAX_HEAD`], an answer
/// switching protocols and anything unparsable are errors.
pub fn take_head(buf: &mut BytesMut) -> Result<Option<ResponseHeader>> {
    loop {
        match parse_head(buf)? {
            // A whole head that came in one read is held to the limit too.
            Some((_, len)) if len > MAX_HEAD => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "the origin's response head is too long",
                )
                .into_up());
            }
            Some((head, len)) => {
                buf.advance(len);
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                if head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(Error::explain(
                        ErrorType::InvalidHTTPHeader,
                        "the origin switched protocols on a download",
                    )
                    .into_up());
                }
                return Ok(Some(head));
            }
            None if buf.len() >= MAX_HEAD => {
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "the origin's response head is too long",
                )
                .into_up());
            }
            None => return Ok(None),
        }
    }
}

/// The recipient's response head made from the origin's `head`, how its body is framed and
/// whether the origin's connection may serve another request: hop-by-hop headers and every
/// header not relayed removed, the gateway's HTTP/1.1 status line, the body's length when it is
/// known and `Transfer-Encoding: chunked` when it is not and the recipient (`client_version`)
/// speaks HTTP/1.1. A head with conflicting or malformed framing is an error. What
/// [`Relay::open`] runs on every answer, and a fuzzing entry point.
pub fn for_recipient(
    mut head: ResponseHeader,
    head_only: bool,
    client_version: Version,
) -> Result<(ResponseHeader, Framing, bool)> {
    let (framing, keepalive) = framing_of(&head, head_only)?;
    let length = content_length(&head)?;
    strip_hop_by_hop(&mut head);
    keep_relayed(&mut head)?;
    // The recipient's status line is the gateway's (HTTP/1.1), whatever the origin spoke.
    head.set_version(Version::HTTP_11);
    if let Framing::Length(n) = framing {
        head.insert_header(header::CONTENT_LENGTH, n)?;
    }
    if let (Framing::Empty, Some(n)) = (&framing, length) {
        // One value, as the origin stated it (`12, 12` and repeated headers become `12`).
        head.insert_header(header::CONTENT_LENGTH, n)?;
    }
    if matches!(framing, Framing::Chunked(_) | Framing::Close) {
        // The length of such a body is not known: never a Content-Length beside it. An
        // HTTP/1.1 recipient gets it chunked, an HTTP/1.0 one delimited by the connection's end.
        head.remove_header(&header::CONTENT_LENGTH);
        if client_version >= Version::HTTP_11 {
            head.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
    }
    Ok((head, framing, keepalive))
}

/// Parses a complete response head at the start of `buf`: the head and its length in bytes, or
/// `None` while more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<(ResponseHeader, usize)>> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(Error::explain(
                ErrorType::InvalidHTTPHeader,
                format!("the origin's response head: {e}"),
            )
            .into_up())
        }
    };
    let status = parsed.code.unwrap_or(0);
    let bad = |what: String| Error::explain(ErrorType::InvalidHTTPHeader, what).into_up();
    let mut head = ResponseHeader::build(status, Some(parsed.headers.len()))
        .map_err(|_| bad(format!("the origin's status {status}")))?;
    if parsed.version == Some(0) {
        head.set_version(Version::HTTP_10);
    }
    for h in parsed.headers.iter() {
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| bad(format!("the origin's {} header", h.name)))?;
        head.append_header(h.name.to_string(), value)?;
    }
    Ok(Some((head, len)))
}

/// How the body of `head` is framed, and whether its connection may serve another request.
fn framing_of(head: &ResponseHeader, head_only: bool) -> Result<(Framing, bool)> {
    let bad = |what: &'static str| Error::explain(ErrorType::InvalidHTTPHeader, what).into_up();
    let tokens = |name| header_tokens(head, name);
    let connection = tokens(header::CONNECTION);
    let keepalive = head.version != Version::HTTP_10 && !connection.iter().any(|t| t == "close");
    let status = head.status;
    if head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        // No body follows, but a stated length is passed on (a HEAD answer's is the document's):
        // it must be one valid number, as for any other answer (two conflicting or garbage
        // values reached recipients).
        content_length(head)?;
        return Ok((Framing::Empty, keepalive));
    }
    if head.headers.contains_key(header::TRANSFER_ENCODING) {
        if tokens(header::TRANSFER_ENCODING) != ["chunked"] {
            return Err(bad("the origin used a transfer coding other than chunked"));
        }
        if head.headers.contains_key(header::CONTENT_LENGTH) {
            // Both: RFC 9112 §6.3 lets the coding win, but the answer "ought to be handled as an
            // error" (response splitting); relaying it sent recipients both headers, and an
            // HTTP/1.0 recipient a body cut at the stated length. Refused (502), never guessed.
            return Err(bad(
                "the origin sent both Transfer-Encoding and Content-Length",
            ));
        }
        return Ok((Framing::Chunked(Chunked::default()), keepalive));
    }
    match content_length(head)? {
        None => Ok((Framing::Close, false)),
        Some(0) => Ok((Framing::Empty, keepalive)),
        Some(n) => Ok((Framing::Length(n), keepalive)),
    }
}

/// The length every `Content-Length` of `head` states (`12, 12` is 12); `None` when there is
/// none, an error when one is not a number or they differ.
fn content_length(head: &ResponseHeader) -> Result<Option<u64>> {
    let bad = |what: &'static str| Error::explain(ErrorType::InvalidHTTPHeader, what).into_up();
    let mut length: Option<u64> = None;
    for value in &header_tokens(head, header::CONTENT_LENGTH) {
        let n = value
            .parse::<u64>()
            .ok()
            .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("the origin sent an invalid Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(bad("the origin sent conflicting Content-Length values"));
        }
        length = Some(n);
    }
    if length.is_none() && head.headers.contains_key(header::CONTENT_LENGTH) {
        // Only empty values: not a length.
        return Err(bad("the origin sent an invalid Content-Length"));
    }
    Ok(length)
}

/// Removes the headers about the origin's connection, and any it named in `Connection`.
fn strip_hop_by_hop(head: &mut ResponseHeader) {
    let named = header_tokens(head, header::CONNECTION);
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        head.remove_header(name);
    }
}

/// Removes every header not in [`RELAYED`], and all but the first `Content-Type`.
fn keep_relayed(head: &mut ResponseHeader) -> Result<()> {
    let content_type = head.headers.get(header::CONTENT_TYPE).cloned();
    let others: Vec<header::HeaderName> = head
        .headers
        .keys()
        .filter(|n| !RELAYED.contains(&n.as_str()))
        .cloned()
        .collect();
    for name in others {
        head.remove_header(&name);
    }
    if let Some(value) = content_type {
        head.insert_header(header::CONTENT_TYPE, value)?;
    }
    Ok(())
}

/// The comma-separated tokens of every `name` header, trimmed and lowercased; a value that is
/// not text is one token that matches nothing (a NUL).
fn header_tokens(head: &ResponseHeader, name: header::HeaderName) -> Vec<String> {
    head.headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Where a chunked body's decoder is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    Done,
}

/// Decodes `Transfer-Encoding: chunked` from a buffer, handing out the data without copying it.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
}

/// What the decoder found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Data(Bytes),
    /// The buffer holds no more complete element: read more.
    More,
    Done,
}

impl Chunked {
    /// Takes the next element off `buf`: data (handed out without copying), `More` when `buf`
    /// holds no complete element, `Done` after the last chunk and its trailers (what follows
    /// them stays in `buf`). What the relay runs on a chunked body, and a fuzzing entry point.
    pub fn step(&mut self, buf: &mut BytesMut) -> std::result::Result<Step, &'static str> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(eol) = line_end(buf).map_err(|()| "a chunk-size line is too long")?
                    else {
                        return Ok(Step::More);
                    };
                    let size = chunk_size(&buf[..eol])?;
                    buf.advance(eol + 2);
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = left.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                    return Ok(Step::Data(data));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("a chunk's data is not followed by CRLF");
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(eol) = line_end(buf).map_err(|()| "a trailer line is too long")?
                    else {
                        return Ok(Step::More);
                    };
                    buf.advance(eol + 2);
                    if eol == 0 {
                        self.state = ChunkState::Done;
                    }
                }
                ChunkState::Done => return Ok(Step::Done),
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// Where the line at the start of `buf` ends (its CRLF), `None` while it may still end within
/// [`MAX_CHUNK_LINE`] bytes, an error once it is longer: the same verdict however the line's
/// bytes arrive (a long line that came in one read used to pass, one that came in several not).
fn line_end(buf: &[u8]) -> std::result::Result<Option<usize>, ()> {
    match find_crlf(buf) {
        Some(eol) if eol > MAX_CHUNK_LINE => Err(()),
        Some(eol) => Ok(Some(eol)),
        // Without a CRLF, `buf` is the start of the line and perhaps its CR.
        None if buf.len() > MAX_CHUNK_LINE + 1 => Err(()),
        None => Ok(None),
    }
}

/// The size on a chunk-size line (hex digits, then nothing, whitespace or `;` extensions).
fn chunk_size(line: &[u8]) -> std::result::Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err("a chunk size is not 1 to 15 hex digits");
    }
    if !matches!(line.get(digits), None | Some(b';' | b' ' | b'\t')) {
        return Err("a chunk-size line has garbage after the size");
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| "a chunk size is not hex")?;
    u64::from_str_radix(hex, 16).map_err(|_| "a chunk size is not hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split_every: usize) -> std::result::Result<Vec<u8>, &'static str> {
        let mut decoder = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pieces = input.chunks(split_every.max(1));
        loop {
            match decoder.step(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::More => match pieces.next() {
                    Some(p) => buf.extend_from_slice(p),
                    None => return Err("ended early"),
                },
                Step::Done => return Ok(out),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE \r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in [1, 2, 3, 7, 1000] {
            assert_eq!(
                decode_all(body, split).unwrap(),
                b"Wikipedia in\r\n\r\nchunks.",
                "split every {split}"
            );
        }
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        assert!(
            decode_all(b"zz\r\nab\r\n0\r\n\r\n", 100).is_err(),
            "not hex"
        );
        assert!(
            decode_all(b"2\r\nabX\r\n0\r\n\r\n", 100).is_err(),
            "no CRLF after data"
        );
        assert!(
            decode_all(b"1234567890abcdef0\r\n", 100).is_err(),
            "too many digits"
        );
        assert!(
            decode_all(b"2x\r\nab\r\n0\r\n\r\n", 100).is_err(),
            "garbage after the size"
        );
        assert!(decode_all(b"2\nab\r\n0\r\n\r\n", 100).is_err(), "bare LF");
        assert_eq!(decode_all(b"2\r\nab\r\n", 100), Err("ended early"));
    }

    #[test]
    fn long_lines_are_refused_however_they_arrive() {
        // Found by the chunked fuzz target: a line over the limit passed when its CRLF came in
        // the same read, and was refused when it came in a later one.
        let ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        let trailer = format!("0\r\nX: {}\r\n\r\n", "y".repeat(MAX_CHUNK_LINE));
        for body in [ext, trailer] {
            for split in [1, 1000, 100_000] {
                assert!(decode_all(body.as_bytes(), split).is_err(), "split {split}");
            }
        }
        // A line of exactly the limit passes, split anywhere (its CR alone at the end of a read).
        let longest = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE - 2));
        for split in [1, MAX_CHUNK_LINE + 1, 100_000] {
            assert_eq!(decode_all(longest.as_bytes(), split).unwrap(), b"a");
        }
    }

    fn head(raw: &str) -> ResponseHeader {
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn bodies_are_framed_as_rfc_9112_says() {
        let frame = |raw: &str, head_only| framing_of(&head(raw), head_only);
        let length = frame("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false).unwrap();
        assert!(matches!(length, (Framing::Length(12), true)));
        assert!(matches!(
            frame("HTTP/1.1 200 OK\r\nContent-Length: 12, 12\r\n\r\n", false).unwrap(),
            (Framing::Length(12), true)
        ));
        assert!(
            matches!(
                frame("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true).unwrap(),
                (Framing::Empty, true)
            ),
            "HEAD"
        );
        assert!(matches!(
            frame("HTTP/1.1 304 Not Modified\r\n\r\n", false).unwrap(),
            (Framing::Empty, true)
        ));
        assert!(matches!(
            frame(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .unwrap(),
            (Framing::Chunked(_), true)
        ));
        assert!(matches!(
            frame("HTTP/1.1 200 OK\r\n\r\n", false).unwrap(),
            (Framing::Close, false)
        ));
        assert!(matches!(
            frame(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
                false
            )
            .unwrap(),
            (_, false)
        ));
        assert!(matches!(
            frame("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false).unwrap(),
            (_, false)
        ));
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +12\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(frame(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bodiless_answer_passes_on_one_valid_length() {
        let recipient = |raw: &str, head_only| {
            for_recipient(head(raw), head_only, Version::HTTP_11).map(|(h, _, _)| {
                h.headers
                    .get_all(header::CONTENT_LENGTH)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
        };
        // Found by the origin_head fuzz target: both values reached the recipient.
        assert!(recipient(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: LL\r\n\r\n",
            true
        )
        .is_err());
        assert!(recipient(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            false
        )
        .is_err());
        assert!(recipient("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", true).is_err());
        assert_eq!(
            recipient(
                "HTTP/1.1 200 OK\r\nContent-Length: 12, 12\r\nContent-Length: 12\r\n\r\n",
                true
            )
            .unwrap(),
            ["12"]
        );
        assert_eq!(
            recipient("HTTP/1.1 200 OK\r\nContent-Length: 0, 0\r\n\r\n", false).unwrap(),
            ["0"]
        );
        assert_eq!(
            recipient("HTTP/1.1 304 Not Modified\r\n\r\n", false).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut h = head("HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nETag: \"a\"\r\n\r\n");
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["etag"]);
    }

    #[test]
    fn only_relayed_headers_stay_and_one_content_type() {
        let mut h = head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nStrict-Transport-Security: max-age=1\r\nAccess-Control-Allow-Origin: *\r\nServer: x\r\nSet-Cookie: a=1\r\nETag: \"a\"\r\nVary: Accept\r\n\r\n");
        keep_relayed(&mut h).unwrap();
        let mut names: Vec<&str> = h.headers.keys().map(|n| n.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "etag", "vary"]);
        let types: Vec<_> = h.headers.get_all(header::CONTENT_TYPE).iter().collect();
        assert_eq!(types, ["text/plain"]);
    }

    #[test]
    fn heads_over_the_limit_are_refused_however_they_arrive() {
        let raw = format!(
            "HTTP/1.1 200 OK\r\nETag: \"{}\"\r\nContent-Length: 0\r\n\r\n",
            "e".repeat(MAX_HEAD)
        );
        // In one read (it passed), and in reads of 8 KiB.
        assert!(take_head(&mut BytesMut::from(raw.as_bytes())).is_err());
        let mut buf = BytesMut::new();
        let refused = raw.as_bytes().chunks(8192).any(|piece| {
            buf.extend_from_slice(piece);
            take_head(&mut buf).is_err()
        });
        assert!(refused);
        let fits = format!(
            "HTTP/1.1 200 OK\r\nETag: \"{}\"\r\n\r\n",
            "e".repeat(MAX_HEAD - 100)
        );
        assert!(take_head(&mut BytesMut::from(fits.as_bytes()))
            .unwrap()
            .is_some());
    }

    #[test]
    fn response_heads_parse_or_wait() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .unwrap()
            .is_none());
        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/2\r\n\r\nab";
        let (h, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(
            (h.status.as_u16(), len),
            (206, raw.len() - 2),
            "the head ends before the body"
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n").is_err());
    }
}
