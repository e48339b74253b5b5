//! Request hygiene on the recipients' listener, before anything else looks at a request.
//!
//! Pingora's parser already refuses most malformed requests (bare CR, NUL, obs-folded headers,
//! duplicate `Content-Length`, absolute-form URIs with another host than `Host`). What it lets through and a
//! gateway must not: a `GET`/`HEAD` with a body (Pingora would stream it to the origin, chunked),
//! both `Transfer-Encoding` and `Content-Length` (the classic CL.TE/TE.CL desync), transfer
//! codings other than `chunked`, and very large request heads. Each is refused with a 4xx (or
//! 501) naming the reason, and the connection is closed.

use std::time::Duration;

use http::{header, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::ServerSession;
use pingora::proxy::Session;

use crate::share::pages;

/// Longest request target accepted (nginx's default header buffer).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Longest single header value.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Largest request head (all header names and values).
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 100;

/// Why a request is refused before it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestDefect {
    #[error("the request has both Transfer-Encoding and Content-Length")]
    Ambiguous,
    #[error("the request's Content-Length is not a single number")]
    BadLength,
    #[error("only the chunked transfer coding is supported")]
    Coding,
    #[error("a GET or HEAD request must not have a body")]
    BodyNotAllowed,
    #[error("the request target must be a path")]
    NotOriginForm,
    #[error("an HTTP/1.1 request must have a Host header")]
    NoHost,
    #[error("the request target is too long")]
    UriTooLong,
    #[error("the request headers are too large")]
    HeadTooLarge,
}

impl RequestDefect {
    pub fn status(self) -> u16 {
        match self {
            RequestDefect::Coding => 501,
            RequestDefect::UriTooLong => 414,
            RequestDefect::HeadTooLarge => 431,
            _ => 400,
        }
    }
}

/// Checks the request a session read: [`check`], plus the one thing only the raw head shows —
/// Pingora drops `Content-Length` when `Transfer-Encoding` is present too (RFC 9112 lets a
/// server do that), but a request carrying both is a desync attempt and is refused.
pub fn check_session(session: &Session) -> Result<(), RequestDefect> {
    let req = session.req_header();
    check(req)?;
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host (HTTP/2
    // carries the authority as a pseudo-header; HTTP/1.0 may leave it out).
    if req.version == http::Version::HTTP_11 && !req.headers.contains_key(header::HOST) {
        return Err(RequestDefect::NoHost);
    }
    if req.headers.contains_key(header::TRANSFER_ENCODING) {
        if let pingora::protocols::http::ServerSession::H1(h1) = session.as_downstream() {
            if raw_head_has_length(&h1.get_headers_raw_bytes()) {
                return Err(RequestDefect::Ambiguous);
            }
        }
    }
    Ok(())
}

/// Whether a raw request head has a `Content-Length` field line (any case, any spacing).
pub fn raw_head_has_length(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        let name = line.split(|&b| b == b':').next().unwrap_or(line);
        name.len() < line.len() && name.trim_ascii().eq_ignore_ascii_case(b"content-length")
    })
}

/// Checks a request head; `Err` says why it must be refused.
///
/// Absolute-form targets (`GET http://host/s/…`) are accepted, as RFC 9112 §3.2.2 requires of a
/// server: Pingora refuses one whose authority is not the `Host`, and keeps only its path, and
/// the link in the path, never the authority, names the document. What is refused is a target
/// that is not a path at all (`*`, authority-form).
pub fn check(req: &RequestHeader) -> Result<(), RequestDefect> {
    if !req.uri.path().starts_with('/') || req.uri.path_and_query().is_none() {
        return Err(RequestDefect::NotOriginForm);
    }
    if req.uri.path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI_BYTES {
        return Err(RequestDefect::UriTooLong);
    }
    let headers = &req.headers;
    if headers.len() > MAX_HEADERS {
        return Err(RequestDefect::HeadTooLarge);
    }
    let mut head = 0usize;
    for (name, value) in headers {
        if value.len() > MAX_HEADER_BYTES {
            return Err(RequestDefect::HeadTooLarge);
        }
        head += name.as_str().len() + value.len() + 4;
    }
    if head > MAX_HEAD_BYTES {
        return Err(RequestDefect::HeadTooLarge);
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let length = match (lengths.next(), lengths.next()) {
        (None, _) => None,
        (Some(v), None) => match v
            .to_str()
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(s) => Some(s.parse::<u64>().map_err(|_| RequestDefect::BadLength)?),
            None => return Err(RequestDefect::BadLength),
        },
        (Some(_), Some(_)) => return Err(RequestDefect::BadLength),
    };
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    let chunked = codings.peek().is_some();
    if chunked {
        if length.is_some() {
            return Err(RequestDefect::Ambiguous);
        }
        let only_chunked = codings.count() == 1
            && headers
                .get(header::TRANSFER_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !only_chunked {
            return Err(RequestDefect::Coding);
        }
    }
    let bodiless = req.method == Method::GET || req.method == Method::HEAD;
    if bodiless && (chunked || length.is_some_and(|n| n > 0)) {
        return Err(RequestDefect::BodyNotAllowed);
    }
    Ok(())
}

/// What Pingora's own error lines say about a request: the method, the first path segment and
/// the link id once known — never the rest of the path or the query, where tokens and legacy
/// hashes live.
pub fn request_summary(req: &RequestHeader, link: Option<crate::model::link::LinkId>) -> String {
    let path = req.uri.path();
    let first = path
        .get(1..)
        .and_then(|p| p.split('/').next())
        .unwrap_or("");
    let first: String = first
        .chars()
        .take(32)
        .filter(|c| c.is_ascii_graphic())
        .collect();
    match link {
        Some(id) => format!("{} /{first}/… (link {id})", req.method),
        None => format!("{} /{first}/…", req.method),
    }
}

/// Reads the next piece of the request's body. A body that cannot be read (a malformed chunk, a
/// timeout, a client gone) leaves the connection's framing unknown: keep-alive is turned off, so
/// the answer says `Connection: close` and no byte after it is ever read as another request
/// (RFC 9112 §6.3). Every read of a recipient's request body goes through here.
///
/// Over HTTP/2 each read is bounded here by the edge's read timeout (Pingora applies its read
/// timeout to HTTP/1 only), so a stream whose body stalls does not hold its slot for ever.
pub async fn read_body(session: &mut Session) -> pingora::Result<Option<bytes::Bytes>> {
    let h2_limit = session
        .as_downstream()
        .is_http2()
        .then(crate::share::edge::body_read_timeout)
        .flatten();
    let read = match h2_limit {
        None => session.read_request_body().await,
        Some(limit) => tokio::time::timeout(limit, session.read_request_body())
            .await
            .unwrap_or_else(|_| {
                let mut e = pingora::Error::explain(
                    pingora::ErrorType::ReadTimedout,
                    "reading an HTTP/2 request body",
                );
                e.as_down();
                Err(e)
            }),
    };
    match read {
        Ok(chunk) => Ok(chunk),
        Err(e) => {
            session.set_keepalive(None);
            Err(e)
        }
    }
}

/// Answers a refused request with a page naming the reason, and closes the connection (its body,
/// if any, is never read).
pub async fn refuse(session: &mut Session, why: RequestDefect) -> pingora::Result<()> {
    session.set_keepalive(None);
    let lang = crate::share::i18n::Lang::of(&session.req_header().headers);
    let body = pages::message(
        lang,
        &crate::share::i18n::t(lang, "bad-request-title"),
        &format!("{why}. {}", crate::share::i18n::t(lang, "bad-request-next")),
    );
    let mut resp = ResponseHeader::build(why.status(), Some(8))?;
    for (k, v) in pages::page_headers() {
        resp.insert_header(k, v)?;
    }
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(header::CONNECTION, "close")?;
    let head = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(resp), head)
        .await
        .map_err(crate::docstore::from_recipient)?;
    if !head {
        session
            .write_response_body(Some(body), true)
            .await
            .map_err(crate::docstore::from_recipient)?;
    }
    Ok(())
}

/// Reads and drops what is left of a refused request's body, so that a client that sends its
/// whole body before reading the answer gets the answer instead of a reset: at most `limit`
/// bytes in all (`seen` of them read already) and for at most `within`. A body not read to its
/// end, or one that could not be read, leaves the connection to be closed after the answer.
pub async fn drain(session: &mut ServerSession, mut seen: usize, limit: usize, within: Duration) {
    let finished = tokio::time::timeout(within, async {
        while seen <= limit {
            match session.read_request_body().await {
                Ok(Some(chunk)) => seen += chunk.len(),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    if !finished {
        session.set_keepalive(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build(method, uri.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn ordinary_requests_pass() {
        assert_eq!(
            check(&req(
                "GET",
                "/s/abc",
                &[("host", "x"), ("range", "bytes=0-1")]
            )),
            Ok(())
        );
        assert_eq!(
            check(&req("GET", "/s/abc", &[("content-length", "0")])),
            Ok(())
        );
        assert_eq!(
            check(&req("POST", "/s/abc", &[("content-length", "12")])),
            Ok(())
        );
        assert_eq!(
            check(&req("PUT", "/s/abc", &[("transfer-encoding", "Chunked")])),
            Ok(())
        );
    }

    #[test]
    fn desync_shapes_are_refused() {
        assert_eq!(
            check(&req(
                "POST",
                "/s/a",
                &[("content-length", "6"), ("transfer-encoding", "chunked")]
            )),
            Err(RequestDefect::Ambiguous)
        );
        assert_eq!(
            check(&req(
                "POST",
                "/s/a",
                &[("content-length", "6"), ("content-length", "6")]
            )),
            Err(RequestDefect::BadLength)
        );
        assert_eq!(
            check(&req("POST", "/s/a", &[("content-length", "+6")])),
            Err(RequestDefect::BadLength)
        );
        assert_eq!(
            check(&req(
                "POST",
                "/s/a",
                &[("content-length", "99999999999999999999999")]
            )),
            Err(RequestDefect::BadLength)
        );
        assert_eq!(
            check(&req(
                "POST",
                "/s/a",
                &[("transfer-encoding", "gzip, chunked")]
            )),
            Err(RequestDefect::Coding)
        );
        assert_eq!(
            check(&req(
                "POST",
                "/s/a",
                &[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked")
                ]
            )),
            Err(RequestDefect::Coding)
        );
        assert_eq!(
            check(&req("GET", "/s/a", &[("content-length", "5")])),
            Err(RequestDefect::BodyNotAllowed)
        );
        assert_eq!(
            check(&req("HEAD", "/s/a", &[("transfer-encoding", "chunked")])),
            Err(RequestDefect::BodyNotAllowed)
        );
        assert_eq!(RequestDefect::Coding.status(), 501);
    }

    #[test]
    fn a_length_hidden_by_the_parser_is_found_in_the_raw_head() {
        assert!(raw_head_has_length(b"POST /s/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ncontent-LENGTH: 4\r\n\r\n"));
        assert!(!raw_head_has_length(
            b"POST /s/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(!raw_head_has_length(
            b"POST /content-length: HTTP/1.1\r\nX-Content-Length: 4\r\n\r\n"
        ));
    }

    #[test]
    fn summaries_for_error_logs_never_hold_tokens() {
        let r = req("GET", "/s/SECRET-TOKEN/name.pdf?md5=HASH", &[]);
        let summary = request_summary(&r, None);
        assert_eq!(summary, "GET /s/…");
        assert!(!request_summary(&req("GET", "/p/abcdef/x", &[]), None).contains("abcdef"));
    }

    #[test]
    fn targets_and_heads_are_bounded() {
        let mut absolute = req("GET", "/s/a", &[]);
        absolute.set_uri(http::Uri::from_static("http://evil.example/s/a"));
        assert_eq!(
            check(&absolute),
            Ok(()),
            "absolute-form: the path is what counts"
        );
        let mut authority = req("CONNECT", "/", &[]);
        authority.set_uri(http::Uri::from_static("evil.example:443"));
        assert_eq!(check(&authority), Err(RequestDefect::NotOriginForm));
        assert_eq!(
            check(&req(
                "GET",
                &format!("/s/{}", "a".repeat(MAX_URI_BYTES)),
                &[]
            )),
            Err(RequestDefect::UriTooLong)
        );
        assert_eq!(
            check(&req(
                "GET",
                "/s/a",
                &[("x-big", &"a".repeat(MAX_HEADER_BYTES + 1))]
            )),
            Err(RequestDefect::HeadTooLarge)
        );
        let many: Vec<(String, String)> = (0..=MAX_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_string()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            check(&req("GET", "/s/a", &many)),
            Err(RequestDefect::HeadTooLarge)
        );
        let wide: Vec<(String, String)> = (0..5)
            .map(|i| (format!("x-h{i}"), "v".repeat(7000)))
            .collect();
        let wide: Vec<(&str, &str)> = wide.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            check(&req("GET", "/s/a", &wide)),
            Err(RequestDefect::HeadTooLarge)
        );
    }
}
