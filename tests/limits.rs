//! Limits that cannot be beaten: what someone holding only the link can take out of a limited
//! link, whatever the shape of their requests, on one instance and on two sharing Redis — and
//! the fair paths that must keep working on a limit of one.
//!
//! The invariant under test: for each document of a link generation, the payload bytes that leave
//! the gateway never exceed `(max_downloads + ½) × size`. Each attack below was a way around the
//! old "half sent" rule and resume grants; each test counts the bytes the attacker received.

mod common;

use std::process::Command;

use common::*;

const SIZE: usize = 8 * 1024 * 1024;

/// Every shape that used to ride for free, repeated until the link answers 404 (or 40 tries):
/// the bytes received never exceed one and a half copies on a limit of one.
fn attack(ports: &[u16], url: &str) -> usize {
    let path = path_of(url);
    let n = SIZE;
    let multi = format!("bytes={}-{},0-{}", n / 2, n / 2 + 999, n - 1001);
    let suffix = format!("bytes=-{n}");
    let shapes: Vec<(Vec<(&str, &str)>, usize)> = vec![
        (vec![("range", multi.as_str())], 1000),
        (vec![("range", multi.as_str())], usize::MAX),
        (vec![("range", suffix.as_str())], usize::MAX),
        (vec![("range", "bytes=1-")], usize::MAX),
        (vec![("range", "bytes=5-,0-")], usize::MAX),
        (
            vec![("range", "bytes=1-"), ("if-range", "\"not-the-etag\"")],
            usize::MAX,
        ),
        (vec![], n * 45 / 100),
        (vec![("range", "bytes=0-")], n * 45 / 100),
    ];
    let mut received = 0;
    let mut refused = 0;
    for round in 0..5 {
        for (i, (headers, keep)) in shapes.iter().enumerate() {
            let port = ports[(round + i) % ports.len()];
            let (status, got) = take(port, &path, headers, *keep);
            received += got;
            if status == 404 {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "the link must end up refusing");
    received
}

#[test]
fn no_shape_of_request_takes_more_than_the_limit_on_one_instance() {
    let origin = Origin::start();
    origin.put("big.bin", &pseudo_random(SIZE, 21));
    let gw = Gateway::start(&origin);
    let (id, url) = gw.admin().share("big.bin", Some(1));
    let received = attack(&[gw.port], &url);
    assert!(
        received <= SIZE * 3 / 2,
        "received {received} bytes of a {SIZE}-byte document on a limit of 1"
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    assert_eq!(get(&url).status, 404);
}

#[test]
fn no_shape_of_request_takes_more_than_the_limit_across_two_instances_on_redis() {
    let origin = Origin::start();
    origin.put("big.bin", &pseudo_random(SIZE, 22));
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = a.admin().share("big.bin", Some(2));
    let received = attack(&[a.port, b.port], &url);
    assert!(
        received <= SIZE * 5 / 2,
        "received {received} bytes of a {SIZE}-byte document on a limit of 2"
    );
    assert_eq!(a.admin().link(&id)["downloads_used"], 2);
}

#[test]
fn a_dir_store_holds_the_same_limit() {
    let origin = Origin::start();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("big.bin"), pseudo_random(SIZE, 23)).unwrap();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
            root.path().display()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    let made = gw
        .admin()
        .create(serde_json::json!({"store": "files", "object": "big.bin", "max_downloads": 1}));
    let url = made["url"].as_str().unwrap().to_string();
    let received = attack(&[gw.port], &url);
    assert!(
        received <= SIZE * 3 / 2,
        "received {received} bytes on a limit of 1"
    );
}

#[test]
fn a_download_manager_with_sixteen_connections_completes_on_a_limit_of_one() {
    let origin = Origin::start();
    let data = pseudo_random(32 * 1024 * 1024, 24);
    origin.put("big.bin", &data);
    let gw = Gateway::start(&origin);
    let (id, url) = gw.admin().share("big.bin", Some(1));
    let dir = tempfile::tempdir().unwrap();
    aria2c(&url, dir.path(), "big.bin", 16);
    assert_eq!(
        sha256(&std::fs::read(dir.path().join("big.bin")).unwrap()),
        sha256(&data)
    );
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
}

#[test]
fn curl_broken_off_at_any_point_resumes_to_the_end_on_a_limit_of_one() {
    let origin = Origin::start();
    let data = pseudo_random(SIZE, 25);
    origin.put("big.bin", &data);
    let gw = Gateway::start(&origin);
    for cut in [1, SIZE / 3, SIZE * 3 / 4, SIZE - 1] {
        let (id, url) = gw.admin().share("big.bin", Some(1));
        // A transfer broken off after `cut` bytes; curl -C - then fetches the rest.
        let (_, got) = take(gw.port, &path_of(&url), &[], cut);
        // Broken off, or (for the last byte) handed whole to the kernel before the break.
        events_when(&gw, &id, |e| {
            e.iter()
                .any(|e| e["kind"] == "download.aborted" || e["kind"] == "download.completed")
        });

        let file = gw.dir.path().join(format!("part-{cut}"));
        std::fs::write(&file, &data[..got]).unwrap();
        let status = Command::new("curl")
            .args(["-sS", "--fail", "-C", "-", "-o"])
            .arg(&file)
            .arg(&url)
            .status()
            .expect("curl");
        assert!(status.success(), "resume after {cut} bytes");
        assert_eq!(
            sha256(&std::fs::read(&file).unwrap()),
            sha256(&data),
            "cut at {cut}"
        );
        assert_eq!(gw.admin().link(&id)["downloads_used"], 1, "cut at {cut}");
    }
}

#[test]
fn head_and_prefetch_never_count_and_a_used_up_link_is_404_for_them_too() {
    let origin = Origin::start();
    origin.put("a.bin", &pseudo_random(100_000, 26));
    let gw = Gateway::start(&origin);
    let (id, url) = gw.admin().share("a.bin", Some(1));
    for _ in 0..3 {
        assert_eq!(request("HEAD", &url, &[], None).status, 200);
        assert_eq!(
            request("GET", &url, &[("sec-purpose", "prefetch")], None).status,
            204
        );
    }
    assert_eq!(gw.admin().link(&id)["downloads_used"], 0);
    assert_eq!(get(&url).body.len(), 100_000);
    assert_eq!(request("HEAD", &url, &[], None).status, 404);
    assert_eq!(
        request("GET", &url, &[("purpose", "prefetch")], None).status,
        404
    );
}

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[test]
fn scanners_and_link_previews_never_use_up_a_limited_link() {
    let origin = Origin::start();
    let data = pseudo_random(200_000, 27);
    origin.put("report.pdf", &data);
    let gw = Gateway::start(&origin);
    let (id, url) = gw.admin().share("report.pdf", Some(1));
    // A mail scanner's or chat unfurler's GETs, following every link on the page they get.
    for _ in 0..3 {
        let page = request(
            "GET",
            &url,
            &[
                ("accept", BROWSER_ACCEPT),
                ("user-agent", "Mozilla/5.0 scanner"),
            ],
            None,
        );
        assert_eq!(page.status, 200);
        assert!(page
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/html"));
        let text = page.text();
        assert!(
            text.contains("report.pdf") && text.contains("method=\"post\""),
            "{text}"
        );
        let download = request(
            "GET",
            &format!("{url}?download"),
            &[("accept", BROWSER_ACCEPT)],
            None,
        );
        assert_eq!(download.status, 200);
        assert!(
            download.text().contains("<form"),
            "a download without the button's ticket gets the page"
        );
        let forged = request(
            "GET",
            &format!("{url}?download&go=AAAA"),
            &[("accept", BROWSER_ACCEPT)],
            None,
        );
        assert!(
            forged.text().contains("<form"),
            "a forged ticket gets the page"
        );
    }
    // A headless browser (which runs scripts) visits too.
    let scanner = Browser::start();
    scanner.goto(&url);
    scanner.wait_for("report.pdf");
    assert_eq!(
        gw.admin().link(&id)["downloads_used"],
        0,
        "nothing the scanners did counted"
    );
    // The person presses the button: one download.
    let person = Browser::start();
    person.goto(&url);
    person.wait_for("report.pdf");
    person.click("#download");
    assert_eq!(person.downloaded("report.pdf"), data);
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    // A used-up link: the page is the uniform 404 too.
    assert_eq!(
        request("GET", &url, &[("accept", BROWSER_ACCEPT)], None).status,
        404
    );
}

#[test]
fn scripts_and_download_managers_still_get_a_limited_link_directly() {
    let origin = Origin::start();
    let data = pseudo_random(50_000, 28);
    origin.put("a.bin", &data);
    let gw = Gateway::start(&origin);
    let (_, url) = gw.admin().share("a.bin", Some(3));
    let out = Command::new("curl")
        .args(["-sS", "--fail", &url])
        .output()
        .expect("curl");
    assert!(out.status.success());
    assert_eq!(out.stdout, data);
    let dir = tempfile::tempdir().unwrap();
    let wget = Command::new("wget")
        .args(["-q", "-O"])
        .arg(dir.path().join("a.bin"))
        .arg(&url)
        .status();
    if let Ok(status) = wget {
        assert!(status.success());
        assert_eq!(std::fs::read(dir.path().join("a.bin")).unwrap(), data);
    }
    let reply = request("GET", &url, &[("accept", "*/*")], None);
    assert_eq!(reply.body, data);
}
