//! The property checks behind every fuzz target, shared with `tests/fuzz_regressions.rs`, which
//! replays the stored inputs (`fuzz/regressions/<target>/`) through the same functions.
#![allow(dead_code)]

use std::future::Future;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use linkgate::admin::bodies::{parse_query, validate_link_body, validate_patch_body};
use linkgate::docstore::dir::{plan, FileMeta, Plan};
use linkgate::docstore::relay::{for_recipient, take_head, Chunked, Framing, Step};
use linkgate::model::counting::{
    classify, expected_length, is_multi_range, single_range, ByteRange, Kind,
};
use linkgate::model::link::{check_object_key, sanitize_filename, Document, Link, LinkId};
use linkgate::model::secure_link::{
    decoded_path, nginx_atotm, nginx_base64url_decode, LegacyLinks, RawSecureLink, Request,
    SecureLink,
};
use linkgate::model::token::Keyring;
use linkgate::share::proxy::token_of;
use linkgate::share::recipient::parse_form;
use linkgate::share::upload::{clean_name, form_boundary, FormPart, UploadForm};
use linkgate::share::verify::{cookies as cookie_values, Verifier};
use md5::{Digest, Md5};

/// A display name as `sanitize_filename` promises it: never empty, no control characters, no
/// path or shell-special characters, not `.` or `..`.
fn assert_safe_name(name: &str) {
    assert!(!name.is_empty());
    assert!(
        !name
            .chars()
            .any(|c| c.is_control() || "\\/:*?\"<>|".contains(c)),
        "{name:?}"
    );
    assert!(name != "." && name != "..");
}

/// Token parser/verifier and sealed values: never panic; a token verifies only if it is exactly
/// what `sign` produced; a sealed value opens only for its purpose.
pub fn token(data: &[u8]) {
    static RING: LazyLock<Keyring> = LazyLock::new(|| {
        Keyring::new(
            "k2",
            vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
        )
        .with_retirements(vec![("k1".into(), 1_000)])
    });
    let ring = &*RING;
    let text = String::from_utf8_lossy(data);
    // What the proxy runs on a request path: `token_of`, then `verify`.
    for path in [text.to_string(), format!("/s/{text}")] {
        if let Some(token) = token_of(&path) {
            assert!(!token.is_empty() && !token.contains('/'));
            assert!(path.starts_with("/s/"));
            if let Some(id) = ring.verify(token) {
                assert_eq!(ring.sign(&id), token, "only the exact signed text verifies");
            }
        }
    }
    if let Some(id) = ring.verify(&text) {
        // Only the exact signed text verifies (no second encoding of the same token).
        let kid = Keyring::key_id_of(&text).expect("a verified token has a key id");
        assert_eq!(ring.sign_with(&kid, &id).as_deref(), Some(text.as_ref()));
        assert_eq!(kid, "k2", "k1 is retired");
    }
    let _ = ring.verify_at(&text, 0);
    let _ = Keyring::key_id_of(&text);
    if let Some(payload) = ring.open("device", &text) {
        assert!(
            ring.open("pass", &text).is_none(),
            "bound to its purpose: {payload}"
        );
    }
    if data.len() >= 16 {
        let id = LinkId::from_slice(&data[..16]).expect("16 bytes");
        assert_eq!(ring.verify(&ring.sign(&id)), Some(id));
    }
}

/// Cookie parsing: device, password and CSRF values from arbitrary `Cookie` headers never panic
/// and never verify without the key.
pub fn cookies(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append(http::header::COOKIE, value);
    for name in ["lg_dev", "lg_pw", ""] {
        for v in cookie_values(&headers, name) {
            assert!(!v.contains(';'), "a cookie value never spans pairs");
        }
    }
    static VERIFIER: LazyLock<Verifier> =
        LazyLock::new(|| Verifier::new(Keyring::new("k", vec![("k".into(), vec![5u8; 32])]), true));
    static LINK: LazyLock<Link> = LazyLock::new(|| {
        let doc = Document::new("a".into(), "a".into(), None);
        Link::new("docs", doc, "k", time::OffsetDateTime::UNIX_EPOCH)
    });
    let verifier = &*VERIFIER;
    if let Some(device) = verifier.device_of(&headers) {
        assert_eq!(device.len(), 32);
    }
    assert!(
        !verifier.passed(&headers, &LINK),
        "no password cookie verifies without the key"
    );
    let text = String::from_utf8_lossy(data);
    let _ = verifier.check_csrf(&text, &LinkId::random(), "d");
}

/// Range header handling: never panics; no request expects more than the whole document; a
/// multi-range is never read as one range; the classification names resumes.
pub fn range(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let single = single_range(&text);
    if is_multi_range(&text) {
        assert_eq!(single, None);
    }
    for size in [0u64, 1, 100, u64::MAX] {
        if let Some(n) = expected_length(Some(&text), Some(size)) {
            assert!(n <= size, "{n} > {size}");
        }
    }
    // A document whose size the link does not know (the proxy asks with `None` then).
    if let (Some(n), Some(ByteRange::Span(a, b))) = (expected_length(Some(&text), None), single) {
        assert!(
            n >= 1 && (n - 1 == b - a || n == u64::MAX),
            "{n} for {a}-{b}"
        );
    }
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RANGE, value);
    let kind = classify(&Method::GET, &headers);
    assert_ne!(kind, Kind::Head);
    match value_str(&headers).and_then(single_range) {
        Some(ByteRange::From(0)) | Some(ByteRange::Span(0, _)) | None => {
            assert_eq!(kind, Kind::Fresh)
        }
        Some(_) => assert_eq!(kind, Kind::Continuation),
    }
    assert_eq!(classify(&Method::HEAD, &headers), Kind::Head);
    // A folder store answers the same header: a range it serves lies inside the file, and has
    // the length the counting expected.
    for size in [0u64, 1, 100, u64::MAX] {
        let meta = FileMeta {
            size,
            modified: UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            etag: "\"e\"".into(),
        };
        match plan(&Method::GET, &headers, &meta) {
            Plan::Partial { start, end } => {
                assert!(start <= end && end < size, "{start}-{end}/{size}");
                if single_range(&text).is_some() {
                    assert_eq!(
                        expected_length(Some(&text), Some(size)),
                        Some(end - start + 1),
                        "{text:?} of {size}"
                    );
                }
            }
            Plan::Full | Plan::Unsatisfiable => {}
            other => panic!("no precondition was sent: {other:?}"),
        }
        if let Ok(Some((start, end))) = linkgate::app::demo_origin::parse_range(&text, size) {
            assert!(start <= end && end < size, "{start}-{end}/{size}");
        }
    }
}

fn value_str(h: &HeaderMap) -> Option<&str> {
    h.get(http::header::RANGE)?.to_str().ok()
}

/// Form bodies (recipients' pages) and admin query strings never panic; decoded fields are text.
pub fn form(data: &[u8]) {
    if let Some(fields) = parse_form(data) {
        // Every pair came from one `&`-separated piece of the body.
        assert!(fields.len() <= data.iter().filter(|&&b| b == b'&').count() + 1);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for key in parse_query(text).keys() {
            assert!(!key.is_empty());
        }
    }
}

/// Admin JSON bodies: `POST /v1/links` validation never panics on any bytes, and display names
/// always come out safe.
pub fn admin_json(data: &[u8]) {
    let epoch = time::OffsetDateTime::UNIX_EPOCH;
    let _ = validate_link_body(data, epoch);
    // `PATCH /v1/links/{id}`: what it accepts names something to change, each value checked.
    if let Ok(patch) = validate_patch_body(data, epoch) {
        assert!(
            patch.expires_at.is_some()
                || patch.max_downloads.is_some()
                || patch.filename.is_some()
                || patch.password.is_some()
                || patch.on_change.is_some()
                || patch.watermark.is_some()
                || patch.recipient.is_some()
        );
        if let Some(Some(t)) = patch.expires_at {
            assert!(t > epoch && t.offset().is_utc(), "{t}");
        }
        if let Some(Some(n)) = patch.max_downloads {
            assert!(n >= 1);
        }
        if let Some(name) = &patch.filename {
            assert_safe_name(name);
        }
        if let Some(by) = &patch.changed_by {
            assert!(!by.is_empty() && by.len() <= 256 && !by.chars().any(char::is_control));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let name = sanitize_filename(text);
        assert_safe_name(&name);
        if check_object_key(text).is_ok() {
            assert!(!text.split('/').any(|s| s == ".."));
        }
    }
}

/// Legacy nginx secure_link URLs: arbitrary paths and queries never panic, and anything accepted
/// names an object key that cannot leave the store.
pub fn secure_link(data: &[u8]) {
    let _ = nginx_base64url_decode(data);
    let _ = nginx_atotm(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    static RULES: LazyLock<(SecureLink, LegacyLinks)> = LazyLock::new(|| {
        let md5 = RawSecureLink {
            prefix: "/dl/".into(),
            secure_link: Some("$arg_md5,$arg_expires".into()),
            secure_link_md5: Some("$secure_link_expires$uri$remote_addr k".into()),
            secure_link_secret: None,
            max_downloads: None,
        };
        let secret = RawSecureLink {
            prefix: "/p/".into(),
            secure_link: None,
            secure_link_md5: None,
            secure_link_secret: Some("w".into()),
            max_downloads: Some(3),
        };
        let md5_rule = SecureLink::from_raw("fuzz", "docs", md5).expect("valid rule");
        let secret_rule = SecureLink::from_raw("fuzz", "docs", secret).expect("valid rule");
        (
            md5_rule.clone(),
            LegacyLinks::new(vec![secret_rule, md5_rule]),
        )
    });
    let (md5_rule, rules) = &*RULES;
    // What `securelink::resolve` runs on a request: the rules' verdict, then the link record a
    // first use creates.
    let req = Request {
        path,
        query,
        remote_addr: "127.0.0.1",
    };
    if let Some((rule, Ok(legacy))) = rules.check(&req) {
        assert!(
            check_object_key(&legacy.object).is_ok(),
            "{:?}",
            legacy.object
        );
        let link = rule.record(&legacy, time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(link.id, legacy.id);
        assert_safe_name(&link.documents[0].filename);
        if let (Some(e), Some(at)) = (legacy.expires, link.expires_at) {
            assert!(at.unix_timestamp() > e);
        }
    }
    // A link signed the way nginx documents it is accepted whenever its path is one linkgate
    // serves, and names exactly that path; anything else is refused.
    let raw_path = format!("/dl/{}", path.trim_start_matches('/'));
    let expires = "2000000000";
    let served = decoded_path(&raw_path).filter(|uri| check_object_key(&uri[4..]).is_ok());
    let uri_bytes: Vec<u8> = percent_encoding::percent_decode_str(&raw_path).collect();
    let mut signed = expires.as_bytes().to_vec();
    signed.extend_from_slice(&uri_bytes);
    signed.extend_from_slice(b"127.0.0.1 k");
    let hash = URL_SAFE_NO_PAD.encode(Md5::digest(&signed));
    let query = format!("md5={hash}&expires={expires}");
    let verdict = md5_rule.check(&Request {
        path: &raw_path,
        query: Some(&query),
        remote_addr: "127.0.0.1",
    });
    match served {
        Some(uri) => assert_eq!(
            verdict.map(|v| v.map(|l| l.object)),
            Some(Ok(uri[4..].to_string())),
            "{raw_path:?}"
        ),
        None => assert!(matches!(verdict, Some(Err(_))), "{raw_path:?}: {verdict:?}"),
    }
}

/// Runs a future that never waits on anything outside it (every stream here is in memory).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// `data` in pieces, as reads may deliver it: at most 16, of sizes chosen by `seed` (from a byte
/// to a few KiB, some empty), the rest in one. Few pieces, so that the checks stay linear.
fn pieces(data: &[u8], seed: u8) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = data;
    let scale = 1usize << (seed >> 5);
    let mut step = usize::from(seed % 13) + 1;
    while !rest.is_empty() {
        let n = if out.len() >= 15 {
            rest.len()
        } else {
            (step * scale).min(rest.len())
        };
        out.push(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
        step = (step * 7 + usize::from(seed)) % 29 + 1;
        if step == 5 {
            out.push(Bytes::new());
        }
    }
    out
}

/// What an upload form comes to, as `Upload::form` meets it: every `csrf` value and every file
/// (name sanitised, or why it has none, and data), then how the form ended.
#[derive(Debug, PartialEq, Eq)]
enum FormSeen {
    Csrf(String),
    File(Result<String, String>, Vec<u8>),
    Skipped,
    End,
    Error(u16, String),
}

fn read_form(boundary: &str, body: Vec<Bytes>) -> Vec<FormSeen> {
    let stream = futures_util::stream::iter(body.into_iter().map(Ok::<Bytes, std::io::Error>));
    let mut form = UploadForm::new(stream, boundary.to_string());
    let mut seen = Vec::new();
    block_on(async {
        loop {
            match form.next_part().await {
                Ok(None) => {
                    seen.push(FormSeen::End);
                    break;
                }
                Err(e) => {
                    seen.push(FormSeen::Error(e.status(), e.to_string()));
                    break;
                }
                Ok(Some(FormPart::Csrf(token))) => {
                    assert!(token.len() <= 4096);
                    seen.push(FormSeen::Csrf(token));
                }
                Ok(Some(FormPart::File(mut file))) => {
                    if file.name().is_empty() {
                        if let Err(e) = file.skip().await {
                            seen.push(FormSeen::Error(e.status(), e.to_string()));
                            break;
                        }
                        seen.push(FormSeen::Skipped);
                        continue;
                    }
                    let name = clean_name(file.name()).map_err(|e| e.to_string());
                    if let Ok(name) = &name {
                        assert_safe_name(name);
                    }
                    let mut data = Vec::new();
                    loop {
                        match file.chunk().await {
                            Ok(Some(chunk)) => data.extend_from_slice(&chunk),
                            Ok(None) => break,
                            Err(e) => {
                                seen.push(FormSeen::File(name.clone(), data.clone()));
                                seen.push(FormSeen::Error(e.status(), e.to_string()));
                                return;
                            }
                        }
                    }
                    seen.push(FormSeen::File(name, data));
                }
            }
        }
    });
    seen
}

/// Upload forms (`multipart/form-data`): the first line is the `Content-Type`, the rest the
/// body. Never panics; the parts read are the same however the body's bytes arrive; no file
/// holds more bytes than the body; a status is always a client error.
pub fn multipart(data: &[u8]) {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"multipart/form-data; boundary=b"[..], data),
    };
    let Ok(boundary) = form_boundary(&String::from_utf8_lossy(content_type)) else {
        return;
    };
    let whole = read_form(&boundary, vec![Bytes::copy_from_slice(body)]);
    let mut file_bytes = 0;
    for seen in &whole {
        match seen {
            FormSeen::File(_, d) => file_bytes += d.len(),
            FormSeen::Error(status, _) => assert_eq!(*status, 400),
            _ => {}
        }
    }
    assert!(file_bytes <= body.len());
    let seed = data.last().copied().unwrap_or(0);
    let split = read_form(&boundary, pieces(body, seed));
    assert_eq!(whole, split, "the same form, split differently");
}

/// Response heads from an origin, as the relay reads them: the final head is the same however
/// its bytes arrive and leaves the same bytes behind; what reaches a recipient has one framing
/// (never `Content-Length` with `Transfer-Encoding`, never a coding but chunked), only relayed
/// headers, one `Content-Type` and an HTTP/1.1 status line; an origin answer with ambiguous
/// framing is refused.
pub fn origin_head(data: &[u8]) {
    /// The final head (status, version, headers) and every byte after it, `None` while more
    /// are needed, or refused.
    type Taken = Result<Option<(StatusCode, Version, HeaderMap, Vec<u8>)>, ()>;
    let run = |parts: Vec<Bytes>| -> Taken {
        let mut buf = BytesMut::new();
        let mut parts = parts.into_iter();
        loop {
            match take_head(&mut buf) {
                Ok(Some(h)) => {
                    let mut rest = buf.to_vec();
                    for p in parts.by_ref() {
                        rest.extend_from_slice(&p);
                    }
                    return Ok(Some((h.status, h.version, h.headers.clone(), rest)));
                }
                Ok(None) => {}
                Err(_) => return Err(()),
            }
            match parts.next() {
                Some(p) => buf.extend_from_slice(&p),
                None => return Ok(None),
            }
        }
    };
    let whole = run(vec![Bytes::copy_from_slice(data)]);
    let split = run(pieces(data, data.first().copied().unwrap_or(0)));
    assert_eq!(whole, split, "the same head, split differently");

    let mut buf = BytesMut::from(data);
    let Ok(Some(head)) = take_head(&mut buf) else {
        return;
    };
    assert!(!head.status.is_informational());
    let tokens = |name: header::HeaderName| -> Vec<String> {
        head.headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let te = head.headers.contains_key(header::TRANSFER_ENCODING);
    let cl = head.headers.contains_key(header::CONTENT_LENGTH);
    let lengths = tokens(header::CONTENT_LENGTH);
    // What the `Content-Length` headers state: nothing, one valid length, or not a length.
    let stated: Option<Result<u64, ()>> = cl.then(|| {
        let numbers: Vec<Option<u64>> = lengths
            .iter()
            .map(|l| {
                l.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| l.parse().ok())
                    .flatten()
            })
            .collect();
        match numbers.first() {
            Some(Some(n)) if numbers.iter().all(|m| *m == Some(*n)) => Ok(*n),
            _ => Err(()),
        }
    });
    for head_only in [false, true] {
        for client in [Version::HTTP_10, Version::HTTP_11] {
            let bodiless = head_only
                || head.status == StatusCode::NO_CONTENT
                || head.status == StatusCode::NOT_MODIFIED;
            let Ok((out, framing, keepalive)) = for_recipient(head.clone(), head_only, client)
            else {
                assert!(
                    !bodiless || matches!(stated, Some(Err(()))),
                    "a bodiless answer is refused only for its stated length"
                );
                continue;
            };
            assert!(!matches!(stated, Some(Err(()))), "{lengths:?} accepted");
            if !bodiless {
                assert!(
                    !(te && cl),
                    "Transfer-Encoding with Content-Length was accepted"
                );
                if te {
                    assert_eq!(tokens(header::TRANSFER_ENCODING), ["chunked"]);
                }
            }
            assert_eq!(out.version, Version::HTTP_11);
            assert_eq!(out.status, head.status);
            assert!(out.headers.get_all(header::CONTENT_TYPE).iter().count() <= 1);
            assert!(out.headers.get_all(header::CONTENT_LENGTH).iter().count() <= 1);
            for name in out.headers.keys() {
                assert!(
                    [
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
                        "transfer-encoding",
                    ]
                    .contains(&name.as_str()),
                    "{name} relayed"
                );
            }
            let out_te: Vec<_> = out
                .headers
                .get_all(header::TRANSFER_ENCODING)
                .iter()
                .collect();
            let out_cl = out.headers.get(header::CONTENT_LENGTH);
            assert!(
                out_te.is_empty() || out_cl.is_none(),
                "both reach the recipient"
            );
            match framing {
                Framing::Empty => {
                    assert!(out_te.is_empty());
                    // The length the origin stated, once (a HEAD answer's is the document's).
                    let expected = stated.and_then(Result::ok).map(|n| n.to_string());
                    assert_eq!(out_cl.and_then(|v| v.to_str().ok()), expected.as_deref());
                    if !bodiless {
                        assert!(out_cl.is_none_or(|v| v == "0"));
                    }
                }
                Framing::Length(n) => {
                    assert!(n > 0 && !bodiless);
                    assert_eq!(out_cl.and_then(|v| v.to_str().ok()), Some(&*n.to_string()));
                }
                Framing::Chunked(_) | Framing::Close => {
                    assert!(!bodiless && out_cl.is_none());
                    assert_eq!(out_te.len(), usize::from(client == Version::HTTP_11));
                    if matches!(framing, Framing::Close) {
                        assert!(!keepalive, "a body ended by the close keeps no connection");
                    }
                }
            }
            if head.version == Version::HTTP_10 {
                assert!(!keepalive);
            }
        }
    }
}

/// How a chunked body ends: its data and what follows it, more bytes needed, or refused.
#[derive(Debug, PartialEq, Eq)]
enum Dechunked {
    Done(Vec<u8>, Vec<u8>),
    More,
    Refused,
}

/// A chunked body's decoding by RFC 9112 §7.1, written plainly from the whole input, with the
/// relay's limits: lines (chunk sizes, trailers) of at most 4096 bytes, sizes of 1 to 15 hex
/// digits, extensions after `;`, space or tab.
fn dechunk_reference(input: &[u8]) -> Dechunked {
    const MAX_LINE: usize = 4096;
    let line = |at: usize| -> Result<Option<(&[u8], usize)>, ()> {
        let rest = &input[at..];
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(eol) if eol > MAX_LINE => Err(()),
            Some(eol) => Ok(Some((&rest[..eol], at + eol + 2))),
            None if rest.len() > MAX_LINE + 1 => Err(()),
            None => Ok(None),
        }
    };
    let mut at = 0;
    let mut out = Vec::new();
    loop {
        let (size_line, next) = match line(at) {
            Err(()) => return Dechunked::Refused,
            Ok(None) => return Dechunked::More,
            Ok(Some(l)) => l,
        };
        let digits = size_line
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if !(1..=15).contains(&digits)
            || !matches!(size_line.get(digits), None | Some(b';' | b' ' | b'\t'))
        {
            return Dechunked::Refused;
        }
        let size = size_line[..digits].iter().fold(0u64, |n, &b| {
            n * 16 + u64::from((b as char).to_digit(16).unwrap_or(0))
        });
        at = next;
        if size == 0 {
            loop {
                match line(at) {
                    Err(()) => return Dechunked::Refused,
                    Ok(None) => return Dechunked::More,
                    Ok(Some((trailer, next))) => {
                        at = next;
                        if trailer.is_empty() {
                            return Dechunked::Done(out, input[at..].to_vec());
                        }
                    }
                }
            }
        }
        let left = (input.len() - at) as u64;
        if left < size {
            return Dechunked::More;
        }
        let size = size as usize;
        out.extend_from_slice(&input[at..at + size]);
        at += size;
        match input.get(at..at + 2) {
            Some(b"\r\n") => at += 2,
            Some(_) => return Dechunked::Refused,
            // The decoder waits for both bytes before it looks at them.
            None => return Dechunked::More,
        }
    }
}

/// The relay's decoder fed `parts` one after the other, as reads deliver them.
fn dechunk(parts: Vec<Bytes>) -> (Dechunked, usize) {
    let mut decoder = Chunked::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut parts = parts.into_iter();
    let mut steps = 0;
    loop {
        steps += 1;
        match decoder.step(&mut buf) {
            Err(_) => return (Dechunked::Refused, steps),
            Ok(Step::Data(d)) => {
                assert!(!d.is_empty(), "no empty data steps");
                out.extend_from_slice(&d)
            }
            Ok(Step::More) => match parts.next() {
                Some(p) => buf.extend_from_slice(&p),
                None => return (Dechunked::More, steps),
            },
            Ok(Step::Done) => {
                let mut rest = buf.to_vec();
                for p in parts {
                    rest.extend_from_slice(&p);
                }
                assert_eq!(decoder.step(&mut buf), Ok(Step::Done), "done stays done");
                return (Dechunked::Done(out, rest), steps);
            }
        }
    }
}

/// The relay's chunked decoder: the same outcome however the body's bytes arrive, the same as
/// a plain reading of RFC 9112, never more data out than bytes in, and the bytes after the body
/// left untouched.
pub fn chunked(data: &[u8]) {
    let (whole, _) = dechunk(vec![Bytes::copy_from_slice(data)]);
    let (split, _) = dechunk(pieces(data, data.first().copied().unwrap_or(0)));
    assert_eq!(whole, split, "the same body, split differently");
    if let Dechunked::Done(out, rest) = &whole {
        assert!(out.len() + rest.len() < data.len());
        assert!(data.ends_with(rest));
    }
    assert_eq!(
        whole,
        dechunk_reference(data),
        "the relay and RFC 9112 differ"
    );
}

/// The renderer's in-process entry points (what a render worker runs) on arbitrary bytes, under
/// small caps: page count, page rasterising and image decoding never panic, and whatever comes
/// out is a decodable image within the caps.
pub fn render(data: &[u8]) {
    use linkgate::render::{run_job, Caps, Format, Job};
    let caps = Caps {
        max_pages: 4,
        max_pixels: 200_000,
        max_page_points: 2_000,
    };
    let _ = run_job(&Job::Info, data, &caps);
    let width = 32 + u32::from(data.first().copied().unwrap_or(0));
    for format in [Format::Png, Format::Jpeg] {
        let job = Job::Page {
            page: 1,
            width,
            format,
        };
        if let Ok(out) = run_job(&job, data, &caps) {
            let img = image::load_from_memory(&out.bytes).expect("a page image decodes");
            assert!(
                img.width() <= width.max(1)
                    && u64::from(img.width()) * u64::from(img.height()) <= caps.max_pixels
            );
        }
    }
}
