//! Request smuggling and header abuse, sent over raw TCP to the gateway in front of a recording
//! origin. Whatever a client sends, the gateway answers each request at most once, never lets an
//! injected header into its answer, and the origin receives nothing or only well-formed requests
//! for the signed object.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use md5::{Digest, Md5};

const FILE: &[u8] = b"the signed document\n";

struct Fixture {
    origin: RecordingOrigin,
    gw: Gateway,
    /// `/s/{token}` of a plain, unlimited link to `doc.bin`.
    link: String,
}

fn fixture() -> Fixture {
    let origin = RecordingOrigin::start(FILE);
    // Legacy nginx secure_link URLs under /dl/ too (hash of `$uri k`, no expiry).
    let extra = "[stores.docs.secure_link]\nprefix = \"/dl/\"\nsecure_link = \"$arg_md5\"\nsecure_link_md5 = \"$uri k\"\n".to_string();
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_url(&origin.url())
    });
    let (_, url) = gw.admin().share("doc.bin", None);
    let link = url[url.find("/s/").unwrap()..].to_string();
    assert_eq!(get(&gw.url(&link)).body, FILE, "the fixture works");
    origin.clear();
    Fixture { origin, gw, link }
}

/// Writes `bytes` on one connection and reads until the gateway closes it or is quiet for half a second.
fn exchange(port: u16, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500))).ok();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Everything the origin received is a well-formed GET/HEAD of the signed object with only the
/// headers the gateway forwards, and nothing else followed.
fn assert_origin_clean(f: &Fixture, case: &str) {
    // Give in-flight upstream writes a moment to land.
    std::thread::sleep(Duration::from_millis(150));
    let (heads, leftover) = f.origin.requests();
    assert!(
        leftover.iter().all(|b| b.is_empty()),
        "{case}: bytes outside any request reached the origin: {leftover:?}"
    );
    let allowed = [
        "host",
        "range",
        "if-range",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
        "accept",
        "x-origin-auth",
    ];
    for head in heads {
        let mut lines = head.trim_end_matches("\r\n\r\n").split("\r\n");
        let first = lines.next().unwrap_or("");
        assert!(
            first == "GET /doc.bin HTTP/1.1" || first == "HEAD /doc.bin HTTP/1.1",
            "{case}: origin got {first:?} in {head:?}"
        );
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{case}: malformed header line {line:?}"));
            assert!(
                allowed.contains(&name.to_ascii_lowercase().as_str()),
                "{case}: header {name:?} reached the origin"
            );
            assert!(
                !value.bytes().any(|b| b.is_ascii_control() && b != b'\t'),
                "{case}: control bytes in {line:?}"
            );
        }
    }
}

/// Sends one raw request and checks: exactly one answer with one of `expected`, the connection
/// closed after it when refused, and the origin clean. Returns the answer.
fn one_answer(f: &Fixture, case: &str, request: &[u8], expected: &[u16]) -> String {
    f.origin.clear();
    let answer = exchange(f.gw.port, request);
    let got = statuses(&answer);
    assert_eq!(
        got.len(),
        1,
        "{case}: one request, one answer; got {got:?} in {answer:?}"
    );
    assert!(
        expected.contains(&got[0]),
        "{case}: status {} not in {expected:?}: {answer:?}",
        got[0]
    );
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let injected = head
        .split("\r\n")
        .any(|line| line.starts_with("x-injected") || line.starts_with("set-cookie: x=1"));
    assert!(
        !injected && !head.contains('\0'),
        "{case}: an injected header in {head:?}"
    );
    assert!(
        !head
            .split("\r\n")
            .any(|line| line.contains('\r') || line.contains('\n')),
        "{case}: a split line in {head:?}"
    );
    assert_origin_clean(f, case);
    answer
}

/// Nothing at all reached the origin.
fn assert_origin_untouched(f: &Fixture, case: &str) {
    let (heads, leftover) = f.origin.requests();
    assert!(
        heads.is_empty() && leftover.iter().all(|b| b.is_empty()),
        "{case}: the origin received {heads:?} {leftover:?}"
    );
}

#[test]
fn conflicting_or_unexpected_body_framing_is_refused_before_the_origin() {
    let f = fixture();
    let l = &f.link;
    let smuggled = "GET /evil HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases = [
        ("CL.TE", format!("GET {l} HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"), 400),
        ("TE.CL", format!("GET {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n{smuggled}0\r\n\r\n"), 400),
        ("TE.CL on POST", format!("POST {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n{smuggled}0\r\n\r\n"), 400),
        ("duplicate Content-Length", format!("GET {l} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\n{smuggled}"), 400),
        ("a GET with a body", format!("GET {l} HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n{smuggled}"), 400),
        ("a HEAD with a chunked body", format!("HEAD {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1e\r\n{smuggled}\r\n0\r\n\r\n"), 400),
        ("an unknown coding", format!("POST {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501),
        ("Transfer-Encoding with a space before the colon", format!("GET {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400),
        ("chunked on HTTP/1.0", format!("GET {l} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        ("an invalid chunk size", format!("GET {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"), 400),
        ("a negative chunk size", format!("GET {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n"), 400),
        ("an overflowing chunk size", format!("GET {l} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n"), 400),
    ];
    for (case, request, status) in cases {
        one_answer(&f, case, request.as_bytes(), &[status]);
        assert_origin_untouched(&f, case);
    }
}

#[test]
fn invalid_chunks_in_a_form_post_never_reach_the_origin() {
    let f = fixture();
    let created = f.gw.admin().create(
        serde_json::json!({ "store": "docs", "object": "doc.bin", "password": "correct horse" }),
    );
    let url = created["url"].as_str().unwrap();
    let link = &url[url.find("/s/").unwrap()..];
    f.origin.clear();
    for (case, chunk) in [
        ("zz", "zz\r\nabc\r\n0\r\n\r\n"),
        ("overflow", "fffffffffffffffffffff\r\nabc\r\n"),
        ("short", "5\r\nab\r\n0\r\n\r\n"),
    ] {
        let request = format!(
            "POST {link} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}"
        );
        let answer = exchange(f.gw.port, request.as_bytes());
        let got = statuses(&answer);
        assert!(got.len() <= 1, "{case}: {got:?}");
        assert!(
            got.iter().all(|s| (400..500).contains(s)),
            "{case}: {answer:?}"
        );
        assert_origin_untouched(&f, case);
    }
}

#[test]
fn malformed_header_lines_are_refused_before_the_origin() {
    let f = fixture();
    let l = &f.link;
    let cases = [
        (
            "an obs-folded header",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n ,3-4\r\n\r\n"),
        ),
        (
            "an obs-folded injection",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\tX-Injected: 1\r\n\r\n"),
        ),
        (
            "a bare CR",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\rX-Injected: 1\r\n\r\n"),
        ),
        (
            "a NUL in a name",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nX-A\0b: 1\r\n\r\n"),
        ),
        (
            "a NUL in a value",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\0\r\n\r\n"),
        ),
        (
            "a space in a name",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\nX Injected: 1\r\n\r\n"),
        ),
        (
            "two Host headers",
            format!("GET {l} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ),
        (
            "a CR in the target",
            format!("GET {l}\r/x HTTP/1.1\r\nHost: x\r\n\r\n"),
        ),
        (
            "a NUL in the target",
            format!("GET {l}\0 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ),
    ];
    for (case, request) in cases {
        // A CR or NUL ends the target for the parser: a refusal or an unknown link, never the file.
        let refusals: &[u16] = if case.contains("target") {
            &[400, 404]
        } else {
            &[400]
        };
        one_answer(&f, case, request.as_bytes(), refusals);
        assert_origin_untouched(&f, case);
    }
}

#[test]
fn oversized_requests_are_refused_before_the_origin() {
    let f = fixture();
    let l = &f.link;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        (
            "a 200 KB header",
            format!(
                "GET {l} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(200_000)
            ),
            vec![431, 400],
        ),
        (
            "150 headers",
            format!("GET {l} HTTP/1.1\r\nHost: x\r\n{many}\r\n"),
            vec![431, 400],
        ),
        (
            "a 10 KB target",
            format!("GET {l}/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000)),
            vec![414],
        ),
    ];
    for (case, request, statuses) in cases {
        one_answer(&f, case, request.as_bytes(), &statuses);
        assert_origin_untouched(&f, case);
    }
}

#[test]
fn absolute_form_targets_never_choose_the_origin() {
    let f = fixture();
    let l = &f.link;
    // Accepted, as RFC 9112 §3.2.2 requires of a server, when its authority is the Host: the
    // link in the path names the document, never the authority.
    let own = format!("127.0.0.1:{}", f.gw.port);
    let answer = one_answer(
        &f,
        "the gateway's own host",
        format!("GET http://{own}{l} HTTP/1.1\r\nHost: {own}\r\n\r\n").as_bytes(),
        &[200],
    );
    assert!(answer.ends_with(std::str::from_utf8(FILE).unwrap()));
    // An authority other than the Host is refused (Pingora's parser).
    for (case, target) in [
        ("another host", format!("http://evil.example{l}")),
        (
            "the gateway's host with a Host that differs",
            format!("http://127.0.0.1:{}{l}", f.gw.port),
        ),
        ("another scheme", format!("https://evil.example{l}")),
    ] {
        one_answer(
            &f,
            case,
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
            &[400],
        );
        assert_origin_untouched(&f, case);
    }
    one_answer(
        &f,
        "an authority target",
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
        &[400, 404, 405],
    );
    assert_origin_untouched(&f, "CONNECT");
}

#[test]
fn dot_segments_and_encoded_slashes_never_leave_the_signed_object() {
    let f = fixture();
    let l = &f.link;
    let token = &l[3..];
    // The signed object, whatever cosmetic path follows the token.
    for tail in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/%2fetc%2fpasswd",
        "/./x",
    ] {
        let answer = one_answer(
            &f,
            tail,
            format!("GET {l}{tail} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            &[200],
        );
        assert!(
            answer.ends_with(std::str::from_utf8(FILE).unwrap()),
            "{tail}"
        );
    }
    // Anything that changes the token is an unknown link.
    for path in [
        format!("/s/..%2f{token}"),
        format!("/s/%2e%2e/{token}"),
        format!("/s/{token}%2f..%2fother"),
        format!("/s/{token}%00"),
        format!("/s/../s/{token}"),
        format!("/x/../s/{token}"),
        format!("/s/{token}%0d%0aX-Injected:%201"),
    ] {
        one_answer(
            &f,
            &path,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            &[404],
        );
        assert_origin_untouched(&f, &path);
    }
    // Legacy secure_link URLs: the decoded path is the object, so dot segments are refused.
    let sign = |uri: &str| URL_SAFE_NO_PAD.encode(Md5::digest(format!("{uri} k").as_bytes()));
    let good = format!("/dl/doc.bin?md5={}", sign("/dl/doc.bin"));
    one_answer(
        &f,
        "a legacy link",
        format!("GET {good} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        &[200],
    );
    for (path, signed) in [
        ("/dl/%2e%2e/doc.bin", "/dl/../doc.bin"),
        ("/dl/x/../../doc.bin", "/dl/x/../../doc.bin"),
        ("/dl/x%2f..%2f..%2fdoc.bin", "/dl/x/../../doc.bin"),
        ("/dl//doc.bin", "/dl//doc.bin"),
        ("/dl/doc.bin%00", "/dl/doc.bin\0"),
    ] {
        let request = format!(
            "GET {path}?md5={} HTTP/1.1\r\nHost: x\r\n\r\n",
            sign(signed)
        );
        one_answer(&f, path, request.as_bytes(), &[404]);
        assert_origin_untouched(&f, path);
    }
}

#[test]
fn crlf_and_nul_in_parameters_never_split_the_answer() {
    let f = fixture();
    let l = &f.link;
    for target in [
        format!("{l}?a=%0d%0aSet-Cookie:%20x=1"),
        format!("{l}/%0d%0aX-Injected:%201"),
        format!("{l}/name%0aX-Injected:%201.pdf"),
        format!("{l}?download%00"),
        format!("{l}?%00=%00"),
    ] {
        one_answer(
            &f,
            &target,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            &[200],
        );
    }
    let created = f.gw.admin().create(serde_json::json!({ "store": "docs", "object": "doc.bin", "filename": "a\r\nX-Injected: 1\u{0}.pdf" }));
    let url = created["url"].as_str().unwrap();
    let answer = one_answer(
        &f,
        "a filename with CR LF",
        format!(
            "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
            &url[url.find("/s/").unwrap()..]
        )
        .as_bytes(),
        &[200],
    );
    assert!(
        answer.contains("filename=\"a__X-Injected_ 1_.pdf\""),
        "{answer}"
    );
}

#[test]
fn pipelined_requests_are_answered_once_and_the_rest_dropped_never_smuggled() {
    let f = fixture();
    let l = &f.link;
    f.origin.clear();
    // Pingora 0.9 does not pipeline: it answers the first request and closes the connection, and
    // the bytes after it are never parsed as a request (the client retries on a new connection).
    let request = format!(
        "GET {l} HTTP/1.1\r\nHost: x\r\n\r\nGET /s/nope HTTP/1.1\r\nHost: x\r\n\r\nGET {l}/../../evil HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let answer = exchange(f.gw.port, request.as_bytes());
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    assert_origin_clean(&f, "pipelined");
    let (heads, _) = f.origin.requests();
    assert_eq!(
        heads.len(),
        1,
        "only the first request reached the origin: {heads:?}"
    );
    // Keep-alive without pipelining works as usual.
    let mut s = TcpStream::connect(("127.0.0.1", f.gw.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    for _ in 0..2 {
        s.write_all(format!("GET {l} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(FILE) {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(statuses(&String::from_utf8_lossy(&got)), vec![200]);
    }
}

#[test]
fn tokens_and_legacy_hashes_never_reach_the_gateway_log() {
    let Fixture { origin, gw, link } = fixture();
    let legacy = format!(
        "/dl/doc.bin?md5={}",
        URL_SAFE_NO_PAD.encode(Md5::digest(b"/dl/doc.bin k"))
    );
    drop(origin); // the origin goes away: Pingora logs the failures it sees
    std::thread::sleep(Duration::from_millis(300));
    for path in [link.clone(), format!("{link}/name.pdf"), legacy.clone()] {
        let answer = exchange(
            gw.port,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(statuses(&answer), vec![502], "{path}");
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = gw.log();
    assert!(
        log.contains("GET /s/…"),
        "Pingora logged the failures, with the summary: {log}"
    );
    assert!(!log.contains(&link[3..]), "a token in the log: {log}");
    assert!(
        !log.contains(legacy.split('=').nth(1).unwrap()),
        "a legacy hash in the log: {log}"
    );
}
