//! Document stores as recipients meet them: a local folder served by the gateway, a real
//! S3-compatible server (s3s-fs, verifying SigV4 signatures) started on loopback, and HTTP
//! origins with failover and the store's own credentials.

mod common;
#[path = "common/s3.rs"]
mod s3;

use std::path::Path;

use common::*;
use s3::{S3Server, S3_SECRET};
use serde_json::json;

/// A link to `object` in `store` (limit optional): (id, url).
fn share_in(admin: &Admin, store: &str, object: &str, max: Option<u64>) -> (String, String) {
    let v = admin.create(
        json!({ "store": store, "object": object, "max_downloads": max, "filename": "file.bin" }),
    );
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

fn uniform_404(url: &str) -> Reply {
    let r = get(url);
    assert_eq!(r.status, 404, "{}", r.text());
    r
}

// ---------------------------------------------------------------- dir

fn dir_gateway(origin: &Origin, root: &Path) -> Gateway {
    let extra = format!(
        "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
        root.display()
    );
    Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(origin)
    })
}

#[test]
fn dir_store_serves_whole_files_ranges_and_conditionals() {
    let origin = Origin::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("files");
    std::fs::create_dir_all(root.join("reports")).unwrap();
    let big = pseudo_random(9 * 1024 * 1024 + 123, 7);
    std::fs::write(root.join("reports/q3 final.pdf"), &big).unwrap();
    let gw = dir_gateway(&origin, &root);
    let admin = gw.admin();
    let (_, url) = share_in(&admin, "files", "reports/q3 final.pdf", None);

    let whole = get(&url);
    assert_eq!(whole.status, 200);
    assert_eq!(
        sha256(&whole.body),
        sha256(&big),
        "the whole file arrives intact"
    );
    assert_eq!(
        whole.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(whole.header("content-type"), Some("application/pdf"));
    assert!(whole
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(whole.header("cache-control"), Some("private, no-store"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    let etag = whole.header("etag").unwrap().to_string();
    let modified = whole.header("last-modified").unwrap().to_string();

    let part = request("GET", &url, &[("range", "bytes=1000-1999")], None);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &big[1000..2000]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{}", big.len()).as_str())
    );

    let tail = request("GET", &url, &[("range", "bytes=-10")], None);
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &big[big.len() - 10..])
    );

    let resumed = request(
        "GET",
        &url,
        &[("range", "bytes=5000-"), ("if-range", &etag)],
        None,
    );
    assert_eq!(
        (resumed.status, resumed.body.len()),
        (206, big.len() - 5000)
    );
    let stale = request(
        "GET",
        &url,
        &[("range", "bytes=5000-"), ("if-range", "\"other\"")],
        None,
    );
    assert_eq!(
        (stale.status, stale.body.len()),
        (200, big.len()),
        "a stale If-Range gets the whole file"
    );

    let beyond = request(
        "GET",
        &url,
        &[("range", &format!("bytes={}-", big.len()))],
        None,
    );
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", big.len()).as_str())
    );

    assert_eq!(
        request("GET", &url, &[("if-none-match", &etag)], None).status,
        304
    );
    assert_eq!(
        request("GET", &url, &[("if-modified-since", &modified)], None).status,
        304
    );
    assert_eq!(
        request("GET", &url, &[("if-match", "\"other\"")], None).status,
        412
    );

    let head = request("HEAD", &url, &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(big.len().to_string().as_str())
    );

    // Keep-alive holds after a served file: three requests, one after the other, on one connection.
    let path = url
        .trim_start_matches(&format!("http://127.0.0.1:{}", gw.port))
        .to_string();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let (head, body) = exchange(
        &mut conn,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n"),
    );
    assert!(
        head.starts_with("HTTP/1.1 206") && body == big[..10],
        "{head}"
    );
    let (head, body) = exchange(
        &mut conn,
        &format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assert!(
        head.starts_with("HTTP/1.1 200") && body.is_empty(),
        "{head}"
    );
    let (head, body) = exchange(
        &mut conn,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n"),
    );
    assert!(
        head.starts_with("HTTP/1.1 206") && body == big[10..20],
        "{head}"
    );
}

/// Writes one request on an open connection and reads one response (HEAD: no body).
fn exchange(conn: &mut std::net::TcpStream, request: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    conn.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(
            conn.read(&mut byte).unwrap(),
            1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![
        0u8;
        if request.starts_with("HEAD") {
            0
        } else {
            length
        }
    ];
    conn.read_exact(&mut body).unwrap();
    (head, body)
}

#[test]
fn dir_store_counts_downloads_like_any_store() {
    let origin = Origin::start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("once.txt"), b"only once").unwrap();
    let gw = dir_gateway(&origin, tmp.path());
    let admin = gw.admin();
    let (id, url) = share_in(&admin, "files", "once.txt", Some(1));
    assert_eq!(get(&url).body, b"only once");
    uniform_404(&url);
    assert_eq!(admin.link(&id)["downloads_used"], 1);

    // A file that is gone is the uniform 404 and gives the slot back.
    let (id, url) = share_in(&admin, "files", "gone.txt", Some(1));
    uniform_404(&url);
    assert_eq!(admin.link(&id)["downloads_used"], 0);
}

#[test]
fn dir_store_never_serves_outside_its_root() {
    let origin = Origin::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), b"outside the root").unwrap();
    std::fs::write(root.join("sub/inside.txt"), b"inside").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), root.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("sub/inside.txt"), root.join("alias.txt")).unwrap();
    let gw = dir_gateway(&origin, &root);
    let admin = gw.admin();

    for object in ["escape.txt", "up/secret.txt", "sub"] {
        let (_, url) = share_in(&admin, "files", object, None);
        let r = uniform_404(&url);
        assert!(!r.text().contains("outside the root"), "{object}");
    }
    let (_, url) = share_in(&admin, "files", "alias.txt", None);
    assert_eq!(
        get(&url).body,
        b"inside",
        "a symlink within the root is followed"
    );
    let refused = admin.call(
        "POST",
        "/v1/links",
        Some(json!({ "store": "files", "object": "../secret.txt" })),
    );
    assert_eq!(refused.status, 422, "{}", refused.text());
}

// ---------------------------------------------------------------- s3

#[test]
fn s3_store_streams_objects_through_signed_requests() {
    let origin = Origin::start();
    let s3 = S3Server::start();
    let big = pseudo_random(6 * 1024 * 1024 + 7, 3);
    s3.put("reports/q3 (final).bin", &big);
    s3.put("notes.txt", b"hello from s3");
    let gw = Gateway::start_with(GatewayOptions {
        extra: s3.store("bucket", S3_SECRET),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();

    let (_, url) = share_in(&admin, "bucket", "reports/q3 (final).bin", None);
    let whole = get(&url);
    assert_eq!(whole.status, 200, "{}", whole.text());
    assert_eq!(sha256(&whole.body), sha256(&big));
    assert!(whole
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert!(
        whole
            .headers
            .iter()
            .all(|(k, _)| !k.to_ascii_lowercase().starts_with("x-amz-")),
        "no S3 headers reach the recipient"
    );

    let part = request("GET", &url, &[("range", "bytes=100-199")], None);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &big[100..200]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 100-199/{}", big.len()).as_str())
    );

    let head = request("HEAD", &url, &[], None);
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some(big.len().to_string().as_str()))
    );

    // NoSuchKey is the uniform 404 and the slot comes back.
    let (id, missing) = share_in(&admin, "bucket", "no/such/key.pdf", Some(1));
    uniform_404(&missing);
    assert_eq!(admin.link(&id)["downloads_used"], 0);

    let (id, once) = share_in(&admin, "bucket", "notes.txt", Some(1));
    assert_eq!(get(&once).body, b"hello from s3");
    uniform_404(&once);
    assert_eq!(admin.link(&id)["downloads_used"], 1);

    let ready = request("GET", &format!("{}/readyz", admin.base), &[], None);
    assert_eq!(ready.status, 200, "{}", ready.text());
}

#[test]
fn s3_store_with_a_wrong_secret_is_refused_by_the_server() {
    let origin = Origin::start();
    let s3 = S3Server::start();
    s3.put("notes.txt", b"hello from s3");
    let gw = Gateway::start_with(GatewayOptions {
        extra: s3.store("bucket", "not-the-secret"),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let (id, url) = share_in(&admin, "bucket", "notes.txt", Some(1));
    let r = uniform_404(&url);
    assert!(
        !r.text().contains("Signature"),
        "the store's error never reaches the recipient"
    );
    assert_eq!(admin.link(&id)["downloads_used"], 0);
    let ready = request("GET", &format!("{}/readyz", admin.base), &[], None);
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert!(
        ready.json()["stores"]["bucket"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{}",
        ready.text()
    );
}

// ---------------------------------------------------------------- http

#[test]
fn http_store_fails_over_between_origins() {
    let a = Origin::start();
    let b = Origin::start();
    let body = pseudo_random(300_000, 11);
    a.put("shared/file.bin", &body);
    b.put("shared/file.bin", &body);
    let dead = free_port();
    let extra = format!(
        "[stores.pair]\nkind = \"http\"\nurls = [\"http://127.0.0.1:{dead}/\", \"{}\", \"{}\"]\nhealth_check_interval_ms = 200\nconnect_timeout_ms = 500\n",
        a.url(),
        b.url()
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&a)
    });
    let admin = gw.admin();
    let (_, url) = share_in(&admin, "pair", "shared/file.bin", None);

    // One origin never answers: every request still gets the file (retried, then health-checked out).
    for i in 0..9 {
        let r = get(&url);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(sha256(&r.body), sha256(&body));
    }
    // A second origin goes away while requests keep coming.
    drop(a);
    for i in 0..9 {
        let r = get(&url);
        assert_eq!(
            r.status,
            200,
            "request {i} after an origin stopped: {}",
            r.text()
        );
        assert_eq!(sha256(&r.body), sha256(&body));
    }
    let ready = request("GET", &format!("{}/readyz", admin.base), &[], None);
    assert_eq!(ready.json()["stores"]["pair"], "ok", "{}", ready.text());
    let metrics = request("GET", &format!("{}/metrics", admin.base), &[], None).text();
    assert!(
        metrics.lines().any(|l| l
            .starts_with("linkgate_store_errors_total{kind=\"connect\",store=\"pair\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    drop(b);
    let (id, url) = share_in(&admin, "pair", "shared/file.bin", Some(1));
    let r = get(&url);
    assert_eq!(r.status, 502, "no origin left: {}", r.text());
    assert_eq!(admin.link(&id)["downloads_used"], 0);
}

#[test]
fn http_store_sends_its_own_credential_never_the_clients() {
    let origin = Origin::start();
    let url = origin.url();
    let extra = format!(
        "[stores.basic]\nkind = \"http\"\nurl = \"{url}\"\nauth = {{ kind = \"basic\", username = \"reader\", password = \"s3cret\" }}\n\
         [stores.bearer]\nkind = \"http\"\nurl = \"{url}\"\nauth = {{ kind = \"bearer\", token = \"store-token\" }}\n\
         [stores.custom]\nkind = \"http\"\nurl = \"{url}\"\nauth = {{ kind = \"header\", name = \"X-Origin-Auth\", value = \"custom-value\" }}\n"
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let client = [
        ("authorization", "Bearer the-clients-own"),
        ("cookie", "session=abc"),
    ];
    let seen = |store: &str| {
        let (_, link) = share_in(&admin, store, "echo-headers", None);
        let r = request("GET", &link, &client, None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    // base64("reader:s3cret")
    assert!(seen("basic").contains("authorization=[Basic cmVhZGVyOnMzY3JldA==]"));
    assert!(seen("bearer").contains("authorization=[Bearer store-token]"));
    let custom = seen("custom");
    assert!(
        custom.contains("x-origin-auth=[custom-value]") && custom.contains("authorization=[]"),
        "{custom}"
    );
    for store in ["basic", "bearer", "custom"] {
        let text = seen(store);
        assert!(
            !text.contains("the-clients-own") && text.contains("cookie=[]"),
            "{store}: {text}"
        );
    }
}

#[test]
fn http_store_read_timeout_is_a_504_and_gives_the_slot_back() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let origin = Origin::start();
    let extra = format!("[stores.slow]\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/\"\nread_timeout_ms = 300\n");
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let (id, url) = share_in(&admin, "slow", "x.bin", Some(1));
    let r = get(&url);
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(admin.link(&id)["downloads_used"], 0);
    drop(silent);
}

#[test]
fn http_health_check_path_decides_which_origins_are_ready() {
    let origin = Origin::start();
    origin.put("f.txt", b"checked");
    let url = origin.url();
    // nginx answers /teapot with a 500: that origin counts as down; /echo-headers answers 200.
    let extra = format!(
        "[stores.sick]\nkind = \"http\"\nurl = \"{url}\"\nhealth_check_path = \"/teapot\"\n\
         [stores.well]\nkind = \"http\"\nurls = [\"{url}\", \"http://127.0.0.1:{}/\"]\nhealth_check_path = \"/echo-headers\"\nhealth_check_interval_ms = 200\n",
        free_port()
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(&origin)
    });
    let ready = get(&format!("{}/readyz", gw.admin().base));
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["stores"]["well"], "ok", "{}", ready.text());
    assert!(
        ready.json()["stores"]["sick"]
            .as_str()
            .unwrap()
            .contains("reachable"),
        "{}",
        ready.text()
    );
    let (_, link) = share_in(&gw.admin(), "well", "f.txt", None);
    for _ in 0..4 {
        assert_eq!(get(&link).body, b"checked");
    }
}

// ---------------------------------------------------------------- what the relay takes from an HTTP origin

/// 50,000 bytes that are not all alike.
fn pattern() -> Vec<u8> {
    (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// An origin answering by path: HEAD with the length, and a GET as each test needs.
fn scripted_origin() -> ScriptedOrigin {
    let body = pattern();
    ScriptedOrigin::start(move |head, nth| {
        let ok_with_length = |extra: &str| {
            [
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{extra}\r\n",
                    body.len()
                )
                .into_bytes(),
                body.clone(),
            ]
            .concat()
        };
        if head.starts_with("HEAD ") {
            let length = if head.starts_with("HEAD /short-big.bin ") {
                24 << 20
            } else {
                body.len()
            };
            return Some((
                format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n").into_bytes(),
                false,
            ));
        }
        match head.split_whitespace().nth(1).unwrap_or("") {
            "/chunked.bin" => {
                let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for piece in body.chunks(4000) {
                    out.extend(format!("{:x};ext=1\r\n", piece.len()).bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
                Some((out, false))
            }
            "/close.bin" => Some((
                [
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec(),
                    body.clone(),
                ]
                .concat(),
                true,
            )),
            "/conflict.bin" => Some((ok_with_length("Content-Length: 7\r\n"), true)),
            "/short.bin" => {
                let mut out = ok_with_length("");
                out.truncate(out.len() - body.len() / 2);
                Some((out, true))
            }
            // Large enough to be spliced once the recipient's pace shows: half of 24 MiB, then
            // the origin closes.
            "/short-big.bin" => {
                let mut out =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 24 << 20).into_bytes();
                out.extend(body.iter().cycle().take(12 << 20));
                Some((out, true))
            }
            // Kept alive after the first answer, then closed on the next request unanswered (as
            // an origin does whose idle timeout ran out just as the gateway reused it).
            "/pooled.bin" => (nth == 0).then(|| (ok_with_length(""), false)),
            _ => Some((
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                false,
            )),
        }
    })
}

fn scripted_gateway(origin: &Origin, scripted: &ScriptedOrigin) -> Gateway {
    let extra = format!(
        "[stores.scripted]\nkind = \"http\"\nurl = \"{}\"\n",
        scripted.url()
    );
    Gateway::start_with(GatewayOptions {
        extra,
        ..GatewayOptions::for_origin(origin)
    })
}

#[test]
fn http_store_relays_chunked_and_close_delimited_bodies_whole_and_counts_them() {
    let (origin, scripted) = (Origin::start(), scripted_origin());
    let gw = scripted_gateway(&origin, &scripted);
    let admin = gw.admin();
    for object in ["chunked.bin", "close.bin"] {
        let (id, url) = share_in(&admin, "scripted", object, Some(3));
        let r = get(&url);
        assert_eq!(r.status, 200, "{object}: {}", r.text());
        assert!(
            r.body == pattern(),
            "{object}: {} bytes, not the origin's body",
            r.body.len()
        );
        assert_eq!(r.header("x-trailer"), None, "{object}");
        assert_eq!(admin.link(&id)["downloads_used"], 1, "{object}");
    }
}

#[test]
fn http_store_with_conflicting_lengths_is_a_502_that_counts_nothing() {
    let (origin, scripted) = (Origin::start(), scripted_origin());
    let gw = scripted_gateway(&origin, &scripted);
    let admin = gw.admin();
    let (id, url) = share_in(&admin, "scripted", "conflict.bin", Some(1));
    let r = get(&url);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        !r.body.windows(7).any(|w| w == &pattern()[..7]),
        "none of the origin's body"
    );
    assert_eq!(admin.link(&id)["downloads_used"], 0);
}

#[test]
fn http_store_body_cut_short_breaks_the_download_off_and_the_retry_rides_on_its_allowance() {
    let (origin, scripted) = (Origin::start(), scripted_origin());
    let gw = scripted_gateway(&origin, &scripted);
    let admin = gw.admin();
    // Copied (50,000 bytes) and spliced (24 MiB, read slowly) alike.
    for (object, length) in [("short.bin", 50_000), ("short-big.bin", 24 << 20)] {
        let (id, url) = share_in(&admin, "scripted", object, Some(1));
        let path = path_of(&url);
        // Read slowly, so that the large one is spliced when the origin stops sending.
        let (head, got) = read_slowly(gw.port, &path, &[], 4 << 20).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{object}: {head}");
        assert!(
            got.len() < length,
            "{object}: the recipient sees the download broken off ({} bytes)",
            got.len()
        );
        // The half that left counts (one download); what was drawn and not sent comes back.
        events_when(&gw, &id, |e| {
            e.iter().any(|e| e["kind"] == "download.aborted")
        });
        assert_eq!(admin.link(&id)["downloads_used"], 1, "{object}");
        if length > 1 << 20 {
            assert!(gw.metric("linkgate_bytes_spliced_total") > 0.0, "spliced");
        }
        let again = raw(
            gw.port,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert!(
            again.starts_with("HTTP/1.1 200"),
            "{object}: the retry rides on the broken download's allowance (the origin cuts it short again): {}",
            &again[..again.len().min(200)]
        );
    }
}

#[test]
fn http_store_asks_again_when_the_origin_closed_a_pooled_connection() {
    let (origin, scripted) = (Origin::start(), scripted_origin());
    let gw = scripted_gateway(&origin, &scripted);
    let admin = gw.admin();
    let (_, url) = share_in(&admin, "scripted", "pooled.bin", None);
    for n in 0..3 {
        let r = get(&url);
        assert_eq!(r.status, 200, "request {n}: {}", r.text());
        assert!(r.body == pattern(), "request {n}");
        // A connection goes back to the pool only after a quiet moment (see the relay).
        std::thread::sleep(std::time::Duration::from_millis(600));
    }
    // The size probe's connection, then one per download: each pooled one was closed unanswered.
    assert_eq!(scripted.connections(), 4);
}

// ---------------------------------------------------------------- large bodies, socket to socket

/// A large document read slowly goes from the HTTP origin's socket to the recipient's inside
/// the kernel (`splice`), or from a folder store's file; read at once, it is copied (faster for
/// one download). Either way it reaches every kind of client whole: read slowly or at once, one
/// range of it, parallel ranges by a real download manager. The bytes are counted as sent, the
/// connection says it closes after such a body, and the download counts once.
#[test]
fn large_bodies_read_slowly_move_socket_to_socket_whole() {
    let origin = Origin::start();
    let body = pseudo_random(16 << 20, 31);
    origin.put("big.bin", &body);
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("big.bin"), &body).unwrap();
    let gw = dir_gateway(&origin, folder.path());
    let admin = gw.admin();
    for store in ["docs", "files"] {
        let (id, url) = share_in(&admin, store, "big.bin", Some(10));
        let path = path_of(&url);
        let (sent, spliced) = (
            gw.metric("linkgate_bytes_sent_total"),
            gw.metric("linkgate_bytes_spliced_total"),
        );
        // 4 MiB/s: a slow recipient (under about 6.5 MB/s, see `pace::prefer_kernel`).
        let (head, got) = read_slowly(gw.port, &path, &[], 4 << 20).unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{store}: {head}");
        assert!(
            got == body,
            "{store}: {} bytes, not the document",
            got.len()
        );
        assert!(
            head.to_ascii_lowercase().contains("\r\nconnection: close"),
            "{store}: {head}"
        );
        assert_eq!(admin.link(&id)["downloads_used"], 1, "{store}");
        gw.wait_for_metric("linkgate_bytes_sent_total", |v| {
            v >= sent + body.len() as f64
        });
        assert_eq!(
            gw.metric("linkgate_bytes_sent_total"),
            sent + body.len() as f64,
            "{store}: every byte counted once"
        );
        let moved = gw.metric("linkgate_bytes_spliced_total") - spliced;
        // The switch comes with the first write after the gateway's socket buffer (a few MiB)
        // has room again.
        assert!(
            moved >= (body.len() / 4) as f64 && moved <= body.len() as f64,
            "{store}: once its pace showed, the slow download was spliced: {moved}"
        );

        let (head, got) =
            read_slowly(gw.port, &path, &[("range", "bytes=1000-5000000")], 4 << 20).unwrap();
        assert!(head.starts_with("HTTP/1.1 206"), "{store}: {head}");
        assert!(
            got == body[1000..=5_000_000],
            "{store}: {} bytes",
            got.len()
        );

        let r = get(&url);
        assert_eq!(r.status, 200, "{store}: {}", r.text());
        assert!(r.body == body, "{store}: read at once");
        assert_eq!(r.header("connection"), Some("close"), "{store}");
        let dir = tempfile::tempdir().unwrap();
        aria2c(&url, dir.path(), "big.bin", 4);
        assert!(
            std::fs::read(dir.path().join("big.bin")).unwrap() == body,
            "{store}"
        );
    }
}
