//! The public edge against an attacker with raw sockets, a misbehaving origin and slow clients
//! (issue 16): malformed request bodies close the connection, an origin's framing and headers
//! never reach the recipient as sent, pooled origin connections never carry stray bytes into
//! another answer, every wait on a client is bounded, and inline documents never run script on
//! the gateway's origin.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const FILE: &[u8] = b"the signed document\n";

/// The path and query part of a gateway URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
}

fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Reads from `s` until one whole answer (head plus `Content-Length` body) has arrived, the
/// connection closed, or `limit` passed. Returns what was read.
fn read_one_answer(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + length {
                return out;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return out,
        }
    }
    out
}

/// Reads until the peer closes the connection or `limit` passes; `true` when it closed.
fn read_to_close(s: &mut TcpStream, limit: Duration, out: &mut Vec<u8>) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// A gateway in front of nginx holding `doc.bin`, with a plain link to it: (origin, gateway,
/// path of the link).
fn nginx_fixture() -> (Origin, Gateway, String) {
    let origin = Origin::start();
    origin.put("doc.bin", FILE);
    let gw = Gateway::start(&origin);
    let (_, url) = gw.admin().share("doc.bin", None);
    (origin, gw, path_of(&url))
}

#[test]
fn a_malformed_chunked_body_is_refused_and_the_connection_closed() {
    let (_origin, gw, plain) = nginx_fixture();
    let admin = gw.admin();
    let upload = admin
        .create(json!({ "store": "docs", "rights": ["upload"], "upload": { "folder": "inbox" } }));
    let upload = path_of(upload["url"].as_str().unwrap());
    let password =
        admin.create(json!({ "store": "docs", "object": "doc.bin", "password": "correct horse" }));
    let password = path_of(password["url"].as_str().unwrap());
    let heads = [
        ("an upload PUT", format!("PUT {upload}/a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")),
        ("an upload form POST", format!("POST {upload}?upload HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nContent-Type: multipart/form-data; boundary=XX\r\nTransfer-Encoding: chunked\r\n\r\n")),
        ("a password form POST", format!("POST {password} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n")),
    ];
    let bodies = [
        ("a chunk size Z", "Z\r\n"),
        ("a chunk size 0x5", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("a bare-LF chunk line", "5\nhello\r\n0\r\n\r\n"),
        (
            "an overflowing chunk size",
            "fffffffffffffffffffff\r\nabc\r\n",
        ),
    ];
    for (what, head) in &heads {
        for (bad, body) in bodies {
            let case = format!("{what} with {bad}");
            let mut s = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
            let first = read_one_answer(&mut s, Duration::from_secs(20));
            let first = String::from_utf8_lossy(&first).into_owned();
            assert_eq!(statuses(&first), vec![400], "{case}: {first:?}");
            // A later segment must never run as a new request on this connection.
            std::thread::sleep(Duration::from_millis(300));
            let _ = s.write_all(format!("GET {plain} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            let mut rest = Vec::new();
            let closed = read_to_close(&mut s, Duration::from_secs(20), &mut rest);
            let rest = String::from_utf8_lossy(&rest);
            assert!(
                statuses(&rest).is_empty(),
                "{case}: a second answer {rest:?}"
            );
            assert!(closed, "{case}: the connection stayed open");
        }
    }
    // Anyone holding a link can send these: they are the client's doing, recorded on its
    // access line, never a warning or an error line for the operator.
    let cases = heads.len() * bodies.len();
    let log = gw.wait_for_log("an access line for every case", |log| {
        log.lines()
            .filter(|l| l.contains("linkgate::access") && l.contains("status=400"))
            .count()
            >= cases
    });
    let alarms: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(alarms.is_empty(), "{alarms:#?}");
}

/// Anyone can open connections and leave in the middle of a request head (closing, or
/// resetting the connection): that is the client's doing, so it leaves a debug line, never an
/// error line for the operator's alerts.
#[test]
fn a_client_leaving_in_the_middle_of_a_head_leaves_no_error_line() {
    let origin = Origin::start();
    let gw = Gateway::start_with(GatewayOptions {
        rust_log: Some("info,pingora=debug".into()),
        ..GatewayOptions::for_origin(&origin)
    });
    // The recipients' listener, and the admin listener (Pingora's plain HTTP service).
    for (port, reset) in [gw.port, gw.admin_port]
        .into_iter()
        .flat_map(|p| [(p, false), (p, true)])
    {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        (&s).write_all(b"GET /s/abc HTTP/1.1\r\nHo").unwrap();
        if reset {
            // SO_LINGER 0: closing sends a reset instead of a FIN.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            socket_option(&s, libc::SO_LINGER, &linger);
        }
        drop(s);
    }
    let log = gw.wait_for_log("the gateway never saw all four", |log| {
        log.matches("while reading request headers").count() >= 4
    });
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

// ---------------------------------------------------------------- what an origin sends back

/// 20 bytes, chunked in two pieces.
fn chunked_file() -> Vec<u8> {
    let mut out = Vec::new();
    for piece in FILE.chunks(12) {
        out.extend(format!("{:x}\r\n", piece.len()).bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// An origin answering by path, byte for byte.
fn misbehaving_origin() -> ScriptedOrigin {
    ScriptedOrigin::start(move |head, _| {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let with = |head: &str, body: &[u8]| Some(([head.as_bytes(), body].concat(), false));
        if head.starts_with("HEAD ") {
            return with(
                &format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", FILE.len()),
                b"",
            );
        }
        match path.as_str() {
            "/both.bin" => with(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                &chunked_file(),
            ),
            "/chunked.bin" => with(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                &chunked_file(),
            ),
            "/old.bin" => Some((
                [b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".as_slice(), FILE].concat(),
                true,
            )),
            "/headers.bin" => with(
                &format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nStrict-Transport-Security: max-age=31536000\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\nServer: origin/1.0\r\nSet-Cookie: s=1\r\nX-Internal-Host: db7\r\nLink: <https://evil.example/>; rel=preload\r\nRefresh: 0; url=https://evil.example/\r\nETag: \"v1\"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nAccept-Ranges: bytes\r\n\r\n",
                    FILE.len()
                ),
                FILE,
            ),
            _ => with("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b""),
        }
    })
}

/// A gateway with the store `scripted` in front of [`misbehaving_origin`].
fn scripted_fixture() -> (Origin, ScriptedOrigin, Gateway) {
    let (origin, scripted) = (Origin::start(), misbehaving_origin());
    let extra = format!(
        "[stores.scripted]\nkind = \"http\"\nurl = \"{}\"\n",
        scripted.url()
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    (origin, scripted, gw)
}

fn share_scripted(gw: &Gateway, object: &str, extra: serde_json::Value) -> String {
    let mut body = json!({ "store": "scripted", "object": object });
    if let (Some(b), serde_json::Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    path_of(gw.admin().create(body)["url"].as_str().unwrap())
}

/// The head (lowercased) and body of a raw answer.
fn split_answer(answer: &str) -> (String, String) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn an_origin_answer_with_both_lengths_is_refused_and_http10_recipients_get_whole_bodies() {
    let (_origin, _scripted, gw) = scripted_fixture();
    let both = share_scripted(&gw, "both.bin", json!({}));
    for version in ["HTTP/1.1\r\nHost: x", "HTTP/1.0"] {
        let answer = raw(gw.port, format!("GET {both} {version}\r\n\r\n").as_bytes());
        let (head, body) = split_answer(&answer);
        assert_eq!(statuses(&answer), vec![502], "{version}: {answer:?}");
        assert!(
            !body.contains("the s") && !head.contains("transfer-encoding"),
            "{version}: none of the origin's answer is relayed: {answer:?}"
        );
    }
    // A chunked answer goes to an HTTP/1.0 recipient whole, delimited by the connection's end.
    let chunked = share_scripted(&gw, "chunked.bin", json!({}));
    let answer = raw(
        gw.port,
        format!("GET {chunked} HTTP/1.0\r\n\r\n").as_bytes(),
    );
    let (head, body) = split_answer(&answer);
    assert_eq!(statuses(&answer), vec![200], "{answer:?}");
    assert!(
        !head.contains("transfer-encoding"),
        "no chunked coding toward HTTP/1.0: {head}"
    );
    assert!(
        head.lines()
            .filter(|l| l.starts_with("content-length:"))
            .all(|l| l.trim() == format!("content-length: {}", FILE.len())),
        "{head}"
    );
    assert_eq!(body.as_bytes(), FILE, "{answer:?}");
    // And to an HTTP/1.1 recipient chunked, with no Content-Length beside it.
    let answer = raw(
        gw.port,
        format!("GET {chunked} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, _) = split_answer(&answer);
    assert!(
        head.contains("transfer-encoding: chunked") && !head.contains("content-length"),
        "{head}"
    );
}

// ---------------------------------------------------------------- pooled origin connections

/// An origin that, a few milliseconds after each complete answer for `/a.bin` (a body of exactly
/// its `Content-Length`, a HEAD answer or a 304), sends a whole second answer nobody asked for.
/// `/b.bin` is answered plainly. Connections are kept alive.
fn poisoning_origin() -> u16 {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                conn.set_nodelay(true).ok();
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
                        pending.drain(..end + 4);
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        let body: &[u8] = if path == "/a.bin" { b"AAAA" } else { b"BBBB" };
                        let answer = if head.to_ascii_lowercase().contains("if-none-match") {
                            "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n"
                                .as_bytes()
                                .to_vec()
                        } else if head.starts_with("HEAD ") {
                            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nETag: \"a\"\r\n\r\n".to_vec()
                        } else {
                            [
                                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nETag: \"a\"\r\n\r\n"
                                    .as_slice(),
                                body,
                            ]
                            .concat()
                        };
                        if conn.write_all(&answer).is_err() {
                            return;
                        }
                        if path == "/a.bin" {
                            std::thread::sleep(Duration::from_millis(5));
                            let stray = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON";
                            if conn.write_all(stray).is_err() {
                                return;
                            }
                        }
                    }
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    port
}

#[test]
fn bytes_an_origin_sends_after_a_complete_answer_never_become_another_answer() {
    let origin = Origin::start();
    let port = poisoning_origin();
    let extra = format!("[stores.sloppy]\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/\"\n");
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let share = |object: &str| {
        admin.create(json!({ "store": "sloppy", "object": object }))["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, b) = (share("a.bin"), share("b.bin"));
    let mut poisoned = Vec::new();
    for n in 0..30 {
        let first = match n % 3 {
            0 => request("GET", &a, &[], None),
            1 => request("HEAD", &a, &[], None),
            _ => request("GET", &a, &[("if-none-match", "\"a\"")], None),
        };
        assert!(
            [200, 304].contains(&first.status),
            "try {n}: {}",
            first.status
        );
        // Another recipient, another link, on the same store, right after.
        let second = get(&b);
        if second.status != 200 || second.body != b"BBBB" {
            poisoned.push((n, second.status, second.text()));
        }
    }
    assert!(poisoned.is_empty(), "poisoned answers: {poisoned:?}");
}

// ---------------------------------------------------------------- slow clients

/// Whether the gateway closes `s` within `limit` while the client keeps doing `tick` every
/// `every` (a trickle) or nothing (`tick` = `None`). Returns the time it took.
fn closed_within(
    s: &mut TcpStream,
    limit: Duration,
    every: Duration,
    mut tick: Option<&mut dyn FnMut(&mut TcpStream)>,
) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(every)).ok();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if let Some(tick) = tick.as_mut() {
                    tick(s);
                }
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn slow_heads_idle_connections_and_slow_uploads_are_cut_off() {
    let origin = Origin::start();
    origin.put("doc.bin", FILE);
    let gw = Gateway::start_with(GatewayOptions {
        server_extra: "client_head_timeout_seconds = 3\nkeepalive_timeout_seconds = 4\n".into(),
        extra: "[limits]\nupload_min_bytes_per_second = 1000\nupload_grace_seconds = 3\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    let (_, url) = gw.admin().share("doc.bin", None);
    let plain = path_of(&url);
    // Generous bounds: each cut must come within its deadline plus a wide margin on a busy
    // machine, and far sooner than the trickle would otherwise last (Pingora's per-read timeout
    // never fires on a byte every second).
    let margin = Duration::from_secs(12);

    // A few heads trickled one byte a second, each on its own connection, all at once.
    let head = format!(
        "GET {plain} HTTP/1.1\r\nHost: x\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let trickles: Vec<_> = (0..4)
        .map(|_| {
            let head = head.clone();
            let port = gw.port;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let mut sent = 0usize;
                let mut tick = |s: &mut TcpStream| {
                    if sent < head.len() {
                        let _ = s.write_all(&head.as_bytes()[sent..sent + 1]);
                        sent += 1;
                    }
                };
                closed_within(
                    &mut s,
                    Duration::from_secs(3) + margin,
                    Duration::from_secs(1),
                    Some(&mut tick),
                )
            })
        })
        .collect();

    // An idle keep-alive connection after one answer.
    let mut idle = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    idle.write_all(format!("GET {plain} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let first = read_one_answer(&mut idle, Duration::from_secs(20));
    assert!(String::from_utf8_lossy(&first).ends_with("document\n"));
    let idle_closed = closed_within(
        &mut idle,
        Duration::from_secs(4) + margin,
        Duration::from_millis(500),
        None,
    );

    // An upload at one byte a second, against a link that expects a single file: the slow one
    // is cut off, its slot and name given back, and a rightful uploader then gets in.
    let created = gw.admin().create(json!({ "store": "docs", "rights": ["upload"], "upload": { "folder": "inbox", "max_files": 1 } }));
    let upload = path_of(created["url"].as_str().unwrap());
    let mut slow = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    slow.write_all(
        format!("PUT {upload}/a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut dripped = 0;
    let mut drip = |s: &mut TcpStream| {
        if dripped < 1000 {
            let _ = s.write_all(b"x");
            dripped += 1;
        }
    };
    let slow_closed = closed_within(
        &mut slow,
        Duration::from_secs(3) + margin,
        Duration::from_secs(1),
        Some(&mut drip),
    );
    let rightful = request(
        "PUT",
        &format!("{}/a.txt", gw.url(&upload)),
        &[("content-type", "text/plain")],
        Some(b"whole"),
    );

    let mut failed = Vec::new();
    for (n, t) in trickles.into_iter().enumerate() {
        if t.join().unwrap().is_none() {
            failed.push(format!(
                "trickled head {n} was still open after its deadline"
            ));
        }
    }
    if idle_closed.is_none() {
        failed.push("an idle keep-alive connection stayed open".into());
    }
    if slow_closed.is_none() {
        failed.push("an upload at 1 byte/s was still open".into());
    }
    if rightful.status != 201 {
        failed.push(format!(
            "the rightful upload got {}: {}",
            rightful.status,
            rightful.text()
        ));
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

// ---------------------------------------------------------------- content that could run script

#[test]
fn inline_documents_are_sandboxed_and_never_served_with_an_active_type() {
    let origin = Origin::start();
    let page = b"<html><script>document.cookie</script></html>";
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    origin.put("page.html", page);
    origin.put("pic.svg", svg);
    origin.put("data.xml", b"<?xml version=\"1.0\"?><a/>");
    origin.put("notes.txt", b"plain");
    origin.put("report.pdf", b"%PDF-1.4\n%%EOF\n");
    // The same files in a folder store, which types them by extension (SVG, XML and all).
    let folder = tempfile::tempdir().unwrap();
    for name in [
        "page.html",
        "pic.svg",
        "data.xml",
        "notes.txt",
        "report.pdf",
    ] {
        std::fs::copy(origin.root.join(name), folder.path().join(name)).unwrap();
    }
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
            folder.path().display()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    for (store, object, body) in [
        ("docs", "page.html", page.as_slice()),
        ("files", "page.html", page.as_slice()),
        ("files", "pic.svg", svg.as_slice()),
        (
            "files",
            "data.xml",
            b"<?xml version=\"1.0\"?><a/>".as_slice(),
        ),
    ] {
        let view = admin.create(json!({ "store": store, "object": object, "rights": ["view"] }));
        let url = view["url"].as_str().unwrap();
        for target in [url.to_string(), format!("{url}?as=view")] {
            let r = get(&target);
            assert_eq!(r.status, 200, "{target}");
            assert_eq!(r.body, body, "{target}");
            let csp = r.header("content-security-policy").unwrap_or("");
            assert!(
                csp.split(';').any(|d| d.trim() == "sandbox"),
                "{object}: CSP {csp:?}"
            );
            let disposition = r.header("content-disposition").unwrap_or("");
            let ty = r.all("content-type");
            let passive = ty.len() == 1
                && !["html", "xml", "svg", "script"]
                    .iter()
                    .any(|a| ty[0].to_ascii_lowercase().contains(a));
            assert!(
                disposition.starts_with("attachment") || passive,
                "{object} inline with {ty:?}, {disposition}"
            );
        }
    }
    // Passive types keep their type inline, with the sandbox all the same.
    let view = admin.create(json!({ "store": "files", "object": "notes.txt", "rights": ["view"] }));
    let r = get(view["url"].as_str().unwrap());
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    assert!(r
        .header("content-security-policy")
        .unwrap_or("")
        .contains("sandbox"));
    // A PDF is viewed in the gateway's own viewer (page images; this one has no page, so the
    // gateway's page says it cannot be shown): never the PDF itself inline.
    let pdf = admin.create(json!({ "store": "files", "object": "report.pdf", "rights": ["view"] }));
    let r = get(pdf["url"].as_str().unwrap());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-disposition"), None);
    assert!(r
        .header("content-security-policy")
        .unwrap_or("")
        .contains("default-src 'none'"));
}

#[test]
fn only_whitelisted_origin_headers_reach_recipients_on_an_http11_status_line() {
    let (_origin, _scripted, gw) = scripted_fixture();
    let headers = share_scripted(&gw, "headers.bin", json!({}));
    let answer = raw(
        gw.port,
        format!("GET {headers} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, body) = split_answer(&answer);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body.as_bytes(), FILE);
    for dropped in [
        "strict-transport-security",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "server: origin",
        "set-cookie",
        "x-internal-host",
        "link:",
        "refresh",
    ] {
        assert!(!head.contains(dropped), "{dropped} relayed: {head}");
    }
    assert_eq!(
        head.lines()
            .filter(|l| l.starts_with("content-type:"))
            .count(),
        1,
        "{head}"
    );
    for kept in [
        "etag: \"v1\"",
        "last-modified:",
        "accept-ranges: bytes",
        "content-length: 20",
    ] {
        assert!(head.contains(kept), "{kept} missing: {head}");
    }
    // An HTTP/1.0 origin's answer goes out on an HTTP/1.1 status line, framed for HTTP/1.1.
    let old = share_scripted(&gw, "old.bin", json!({}));
    let answer = raw(
        gw.port,
        format!("GET {old} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, body) = split_answer(&answer);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("transfer-encoding: chunked") && !head.contains("content-length"),
        "{head}"
    );
    assert!(dechunk(&body).contains("the signed document"), "{answer:?}");
}

/// The payload of a chunked body (however the gateway happened to cut it into chunks).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

// ---------------------------------------------------------------- smaller holes

#[test]
fn targets_hosts_logs_and_admin_input_behave_as_documented() {
    let (_origin, gw, plain) = nginx_fixture();
    // Absolute-form targets are accepted (RFC 9112 §3.2.2): the link, never the authority, names
    // the document.
    let answer = raw(
        gw.port,
        format!(
            "GET http://127.0.0.1:{}{plain} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            gw.port, gw.port
        )
        .as_bytes(),
    );
    assert_eq!(statuses(&answer), vec![200], "{answer:?}");
    assert!(answer.ends_with("the signed document\n"), "{answer:?}");
    // HTTP/1.1 without Host is a 400 (RFC 9112 §3.2), and the connection closes.
    let answer = raw(gw.port, format!("GET {plain} HTTP/1.1\r\n\r\n").as_bytes());
    assert_eq!(statuses(&answer), vec![400], "{answer:?}");
    // HTTP/1.0 may leave it out.
    let answer = raw(gw.port, format!("GET {plain} HTTP/1.0\r\n\r\n").as_bytes());
    assert_eq!(statuses(&answer), vec![200], "{answer:?}");

    // Refusals before any link is known still name the client in the access log.
    get(&gw.url("/s/not-a-token"));
    raw(
        gw.port,
        b"GET /s/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    );
    request("DELETE", &gw.url(&plain), &[], None);
    let deadline = Instant::now() + Duration::from_secs(20);
    let wanted = ["bad_token", "malformed", "method"];
    loop {
        let log = gw.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("linkgate::access"))
            .collect();
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|o| {
                !lines.iter().any(|l| {
                    l.contains(&format!("outcome=\"{o}\"")) && l.contains("client=127.0.0.1")
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no client address for {missing:?} in {lines:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Authentication schemes are case-insensitive (RFC 9110 §11.1).
    let admin = gw.admin();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = request(
            "GET",
            &format!("{}/v1/links", admin.base),
            &[("authorization", &format!("{scheme} {ADMIN_TOKEN}"))],
            None,
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.text());
    }
    // A time whose UTC value is past year 9999 is refused, naming the field (it panicked).
    for expiry in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+23:59"] {
        let r = admin.call(
            "POST",
            "/v1/links",
            Some(json!({ "store": "docs", "object": "doc.bin", "expires_at": expiry })),
        );
        assert_eq!(r.status, 422, "{expiry}: {}", r.text());
        assert_eq!(r.json()["field"], "expires_at", "{expiry}");
    }
}
