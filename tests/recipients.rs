//! What a recipient meets: downloads through a share link, against a real nginx origin and the
//! real gateway binary. Each test reads as one rule of the contract.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

fn setup() -> (Origin, Gateway) {
    let origin = Origin::start();
    let gateway = Gateway::start(&origin);
    (origin, gateway)
}

#[test]
fn a_small_file_arrives_byte_exact_with_the_gateway_headers() {
    let (origin, gw) = setup();
    let data = pseudo_random(10_000, 1);
    origin.put("reports/q3.pdf", &data);
    let link = gw
        .admin()
        .create(json!({"store": "docs", "object": "reports/q3.pdf", "filename": "Q3 report.pdf"}));
    let reply = get(link["url"].as_str().unwrap());
    assert_eq!(reply.status, 200);
    assert_eq!(sha256(&reply.body), sha256(&data));
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"Q3 report.pdf\"")
    );
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert!(
        reply.header("set-cookie").is_none(),
        "the origin's Set-Cookie must be stripped"
    );
    // A cosmetic file name after the token is accepted and changes nothing.
    let named = get(&format!(
        "{}/Q3%20report.pdf",
        link["url"].as_str().unwrap()
    ));
    assert_eq!(sha256(&named.body), sha256(&data));
}

#[test]
fn a_large_file_streams_byte_exact_with_flat_memory() {
    let (origin, gw) = setup();
    let size = 256 * 1024 * 1024 + 12_345;
    let data = pseudo_random(size, 7);
    let expected = sha256(&data);
    origin.put("big.bin", &data);
    drop(data);
    let (_, url) = gw.admin().share("big.bin", None);
    // Stream through curl to a file, then hash, so the test itself holds no second copy.
    let out = gw.dir.path().join("big.out");
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .arg(&out)
        .arg(&url)
        .status()
        .expect("curl");
    assert!(status.success());
    let got = std::fs::read(&out).expect("download");
    assert_eq!(got.len(), size);
    assert_eq!(sha256(&got), expected);
    let rss_mib = gw.rss_kib() / 1024;
    assert!(
        rss_mib < 100,
        "gateway RSS after a 256 MiB download is {rss_mib} MiB"
    );
}

#[test]
fn ranges_and_conditionals_pass_through() {
    let (origin, gw) = setup();
    let data = pseudo_random(5_000, 3);
    origin.put("doc.bin", &data);
    let (_, url) = gw.admin().share("doc.bin", None);
    let part = request("GET", &url, &[("range", "bytes=100-199")], None);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &data[100..200]);
    assert_eq!(part.header("content-range"), Some("bytes 100-199/5000"));
    let full = get(&url);
    let etag = full.header("etag").expect("etag").to_string();
    let not_modified = request("GET", &url, &[("if-none-match", &etag)], None);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let unsatisfiable = request("GET", &url, &[("range", "bytes=9000-")], None);
    assert_eq!(unsatisfiable.status, 416);
    let stale_if_range = request(
        "GET",
        &url,
        &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        None,
    );
    assert_eq!(
        stale_if_range.status, 200,
        "If-Range with a stale validator sends the whole file"
    );
    assert_eq!(stale_if_range.body.len(), 5_000);
}

#[test]
fn curl_resume_completes_the_file_and_counts_once() {
    let (origin, gw) = setup();
    let data = pseudo_random(3_000_000, 5);
    origin.put("resume.bin", &data);
    let (id, url) = gw.admin().share("resume.bin", Some(2));
    // The first download "breaks" after 1 MB: curl stops at --max-filesize? No: fetch a range
    // from 0 (a counted, fresh download) and keep only its bytes, as an interrupted transfer would.
    let first = request("GET", &url, &[("range", "bytes=0-999999")], None);
    assert_eq!(first.status, 206);
    let out = gw.dir.path().join("resume.out");
    std::fs::write(&out, &first.body).unwrap();
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-C", "-", "-o"])
        .arg(&out)
        .arg(&url)
        .status()
        .expect("curl");
    assert!(status.success());
    assert_eq!(sha256(&std::fs::read(&out).unwrap()), sha256(&data));
    assert_eq!(
        gw.admin().link(&id)["downloads_used"],
        1,
        "a resume rides on the bytes the first download left unsent"
    );
    // A second whole copy is a second download.
    assert_eq!(
        request("GET", &url, &[("range", "bytes=0-")], None).status,
        206
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 2);
    assert_eq!(get(&url).status, 404, "the limit is reached");
}

#[test]
fn head_and_prefetch_never_count() {
    let (origin, gw) = setup();
    origin.put("a.txt", b"hello");
    let (id, url) = gw.admin().share("a.txt", Some(1));
    for _ in 0..3 {
        let head = request("HEAD", &url, &[], None);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("5"));
    }
    let prefetch = request("GET", &url, &[("sec-purpose", "prefetch")], None);
    assert_eq!(prefetch.status, 204);
    assert!(
        prefetch.body.is_empty(),
        "a prefetch never receives the document"
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 0);
    assert_eq!(get(&url).body, b"hello");
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
}

#[test]
fn at_the_limit_the_link_looks_exactly_like_an_unknown_one() {
    let (origin, gw) = setup();
    origin.put("a.txt", b"hello");
    let (id, url) = gw.admin().share("a.txt", Some(2));
    assert_eq!(get(&url).status, 200);
    assert_eq!(get(&url).status, 200);
    let exhausted = get(&url);
    let unknown =
        get(&gw.url("/s/AQJrMUV0yc_fsJC6LIOgxB9dLII8Wx7TFiUdQ4tw28nMyiCVYM9TexbAb2XubCC8uko9DA"));
    assert_eq!(exhausted.status, 404);
    assert_eq!(exhausted.body, unknown.body);
    assert_eq!(
        exhausted.header("content-type"),
        unknown.header("content-type")
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 2);
}

#[test]
fn concurrent_downloads_never_exceed_the_limit() {
    let (origin, gw) = setup();
    origin.put("c.bin", &pseudo_random(20_000, 9));
    let (id, url) = gw.admin().share("c.bin", Some(5));
    let handles: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || get(&url).status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 35);
    assert_eq!(gw.admin().link(&id)["downloads_used"], 5);
}

#[test]
fn every_bad_token_gets_the_uniform_404_and_never_a_500() {
    let (origin, gw) = setup();
    origin.put("a.txt", b"hello");
    let (_, url) = gw.admin().share("a.txt", None);
    let token = url.rsplit('/').next().unwrap().to_string();
    let reference = get(&url.replace(&token, "AAAA"));
    assert_eq!(reference.status, 404);
    // The same link signed by a key the gateway does not know.
    let foreign = linkgate::model::token::Keyring::new("kx", vec![("kx".into(), vec![9u8; 32])]);
    let id = linkgate::model::link::LinkId::random();
    let mut flipped = token.clone().into_bytes();
    flipped[40] = if flipped[40] == b'A' { b'B' } else { b'A' };
    let mut bad: Vec<String> = vec![
        String::new(),
        "x".into(),
        token[..token.len() - 1].to_string(),
        token[..20].to_string(),
        format!("{token}A"),
        format!("{token}="),
        String::from_utf8(flipped).unwrap(),
        format!("B{}", &token[1..]),
        foreign.sign(&id),
        "A".repeat(5000),
        "%00%0d%0a".into(),
        "..%2f..%2fetc%2fpasswd".into(),
    ];
    bad.push(token.to_lowercase());
    for t in &bad {
        let reply = get(&gw.url(&format!("/s/{t}")));
        assert_eq!(reply.status, 404, "token {t:?}");
        assert_eq!(reply.body, reference.body, "token {t:?}");
    }
    for path in [
        "/",
        "/s",
        "/s/",
        "/favicon.ico",
        "/v1/links",
        "/s/../a.txt",
        "/a.txt",
    ] {
        let reply = get(&gw.url(path));
        assert_eq!(reply.status, 404, "path {path}");
    }
    // A POST with a bad token is a 404; on a good link a method other than GET/HEAD is 405.
    assert_eq!(
        request("POST", &gw.url("/s/AAAA"), &[], Some(b"x")).status,
        404
    );
    let post = request("DELETE", &url, &[], None);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn expired_links_are_404() {
    let (origin, gw) = setup();
    origin.put("a.txt", b"hello");
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let link = gw
        .admin()
        .create(json!({"store": "docs", "object": "a.txt", "expires_at": soon}));
    let url = link["url"].as_str().unwrap();
    assert_eq!(get(url).status, 200);
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(get(url).status, 404);
}

#[test]
fn cancelled_and_deactivated_links_stop_at_once() {
    let (origin, gw) = setup();
    origin.put("a.txt", b"hello");
    let admin = gw.admin();
    let (id, url) = admin.share("a.txt", None);
    assert_eq!(get(&url).status, 200); // now cached in the gateway
    assert_eq!(
        admin
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    assert_eq!(get(&url).status, 404);
    assert_eq!(
        admin
            .call("POST", &format!("/v1/links/{id}/activate"), None)
            .status,
        200
    );
    assert_eq!(get(&url).status, 200);
    let cancelled = admin.call(
        "DELETE",
        &format!("/v1/links/{id}?cancelled_by=alice"),
        None,
    );
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.json()["state"], "cancelled");
    assert_eq!(cancelled.json()["cancelled_by"], "alice");
    assert!(cancelled.json()["cancelled_at"].is_string());
    assert_eq!(get(&url).status, 404);
    let again = admin.call("POST", &format!("/v1/links/{id}/activate"), None);
    assert_eq!(again.status, 409, "a cancelled link can never be activated");
    assert_eq!(get(&url).status, 404);
}

#[test]
fn non_ascii_and_hostile_names_are_safe() {
    let (origin, gw) = setup();
    origin.put("ü ber/na me.bin", b"unicode key");
    let admin = gw.admin();
    let link = admin.create(
        json!({"store": "docs", "object": "ü ber/na me.bin", "filename": "Überweisung €.pdf"}),
    );
    let reply = get(link["url"].as_str().unwrap());
    assert_eq!(reply.body, b"unicode key");
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"_berweisung _.pdf\"; filename*=UTF-8''%C3%9Cberweisung%20%E2%82%AC.pdf")
    );
    let hostile = admin.create(json!({"store": "docs", "object": "ü ber/na me.bin", "filename": "a\"\r\nSet-Cookie: x=1; ../..\\evil|.exe"}));
    assert_eq!(
        hostile["filename"],
        "a\"__Set-Cookie_ x=1; .._.._evil_.exe".replace('"', "_")
    );
    let reply = get(hostile["url"].as_str().unwrap());
    assert_eq!(reply.status, 200);
    assert!(reply.header("set-cookie").is_none());
    let cd = reply.header("content-disposition").unwrap();
    assert_eq!(cd.matches('"').count(), 2, "{cd}");
    // Keys that would leave the store's base path are refused at creation.
    for key in ["../secret", "a/../../b", "a//b", "./x"] {
        let r = admin.call(
            "POST",
            "/v1/links",
            Some(json!({"store": "docs", "object": key})),
        );
        assert_eq!(r.status, 422, "{key}");
        assert_eq!(r.json()["field"], "object");
    }
    // Encoded dots in a key are a literal name, not a way up.
    let (_, url) = admin.share("%2e%2e/a.txt", None);
    assert_eq!(get(&url).status, 404);
}

#[test]
fn the_clients_credentials_never_reach_the_origin_but_the_stores_do() {
    let (_origin, gw) = setup();
    let (_, url) = gw.admin().share("echo-headers", None);
    let reply = request(
        "GET",
        &url,
        &[
            ("cookie", "lg_session=abc"),
            ("authorization", "Bearer client-secret"),
            ("x-forwarded-host", "evil"),
        ],
        None,
    );
    let text = reply.text();
    assert!(text.contains("cookie=[]"), "{text}");
    assert!(text.contains("authorization=[]"), "{text}");
    assert!(text.contains("x-origin-auth=[store-credential]"), "{text}");
    assert!(text.contains("uri=[/echo-headers]"), "{text}");
}

#[test]
fn origin_errors_show_our_page_and_do_not_count() {
    let (_origin, gw) = setup();
    let admin = gw.admin();
    let (missing, url) = admin.share("does/not/exist.pdf", Some(1));
    let reply = get(&url);
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.body,
        get(&gw.url("/s/AAAA")).body,
        "the origin's 404 becomes the uniform page"
    );
    let (broken, url) = admin.share("teapot", Some(1));
    let reply = get(&url);
    assert_eq!(reply.status, 502);
    assert!(
        !reply.text().contains("nginx"),
        "the origin's error body never reaches the recipient"
    );
    assert_eq!(admin.link(&missing)["downloads_used"], 0);
    assert_eq!(admin.link(&broken)["downloads_used"], 0);
    // Anyone holding the link can ask again and again: each request is on its access line, but
    // the operator's warnings get one line a minute, not one per request.
    for _ in 0..20 {
        assert_eq!(get(&url).status, 502);
    }
    let log = gw.wait_for_log("an access line for every request", |log| {
        log.lines()
            .filter(|l| l.contains("linkgate::access") && l.contains("outcome=\"origin_"))
            .count()
            >= 22
    });
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("origin answered with an error"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[test]
fn origin_down_is_502_and_does_not_count() {
    let dead_port = free_port();
    let gw = Gateway::start_with(GatewayOptions {
        store_url: format!("http://127.0.0.1:{dead_port}/"),
        read_timeout_ms: 1_000,
        ..GatewayOptions::for_origin(&Origin::start())
    });
    let (id, url) = gw.admin().share("a.txt", Some(1));
    let reply = get(&url);
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains("could not be reached"));
    assert_eq!(gw.admin().link(&id)["downloads_used"], 0);
}

#[test]
fn origin_timeout_is_504_and_does_not_count() {
    // An origin that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let _keeper = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(8) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let gw = Gateway::start_with(GatewayOptions {
        store_url: format!("http://127.0.0.1:{port}/"),
        read_timeout_ms: 800,
        ..GatewayOptions::for_origin(&Origin::start())
    });
    let (id, url) = gw.admin().share("a.txt", Some(1));
    let reply = get(&url);
    assert_eq!(reply.status, 504);
    assert_eq!(gw.admin().link(&id)["downloads_used"], 0);
}

#[test]
fn a_browser_restarting_after_an_early_break_completes_on_a_limit_of_one() {
    let (origin, gw) = setup();
    origin.put("big.bin", &pseudo_random(64 * 1024 * 1024, 11));
    let (id, url) = gw.admin().share("big.bin", Some(1));
    // Dropped after 1 MiB of 64.
    assert_eq!(take(gw.port, &path_of(&url), &[], 1 << 20), (200, 1 << 20));
    // The broken-off download's unsent bytes are back once its event is recorded.
    events_when(&gw, &id, |e| {
        e.iter().any(|e| e["kind"] == "download.aborted")
    });
    let reply = get(&url);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 64 * 1024 * 1024);
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
}
