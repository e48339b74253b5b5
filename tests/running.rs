//! Running the gateway: Prometheus metrics, health and readiness, the JSON access log, graceful
//! shutdown and a zero-downtime upgrade (SIGQUIT hands the listening sockets to a new process).

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

/// The link's `download.aborted` event, once it is there.
fn aborted_event(gw: &Gateway, id: &str) -> Value {
    let events = events_when(gw, id, |e| {
        e.iter().any(|e| e["kind"] == "download.aborted")
    });
    events
        .into_iter()
        .find(|e| e["kind"] == "download.aborted")
        .expect("an aborted event")
}

fn scrape(gw: &Gateway) -> String {
    let r = get(&format!("{}/metrics", gw.admin().base));
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    r.text()
}

#[test]
fn metrics_count_requests_downloads_bytes_and_latency() {
    let origin = Origin::start();
    let body = pseudo_random(100_000, 5);
    origin.put("m/file.bin", &body);
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    let (_, url) = admin.share("m/file.bin", None);
    let (_, missing) = admin.share("m/missing.bin", None);

    assert_eq!(get(&url).status, 200);
    assert_eq!(
        request("GET", &url, &[("range", "bytes=0-99")], None).status,
        206
    );
    assert_eq!(request("HEAD", &url, &[], None).status, 200);
    assert_eq!(get(&missing).status, 404);
    assert_eq!(get(&gw.url("/s/not-a-token")).status, 404);

    // A request is counted in its logging phase, just after the client has its answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&gw);
        let counted: f64 = text
            .lines()
            .filter(|l| l.starts_with("linkgate_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if counted >= 5.0 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        metric(&text, "linkgate_requests_total{outcome=\"served\"}"),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "linkgate_requests_total{outcome=\"origin_not_found\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "linkgate_requests_total{outcome=\"bad_token\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "linkgate_downloads_started_total"),
        3.0,
        "two GETs of the file and one of the missing one"
    );
    assert_eq!(metric(&text, "linkgate_downloads_completed_total"), 2.0);
    assert_eq!(metric(&text, "linkgate_downloads_aborted_total"), 1.0);
    assert!(metric(&text, "linkgate_bytes_sent_total") >= (body.len() + 100) as f64);
    assert_eq!(metric(&text, "linkgate_active_streams"), 0.0);
    assert_eq!(
        metric(
            &text,
            "linkgate_upstream_response_seconds_count{store=\"docs\"}"
        ),
        4.0
    );
    assert_eq!(
        metric(
            &text,
            "linkgate_store_errors_total{kind=\"not_found\",store=\"docs\"}"
        ),
        1.0
    );
}

#[test]
fn metrics_show_active_streams_while_a_download_runs() {
    let origin = Origin::start();
    let body = pseudo_random(24 * 1024 * 1024, 9);
    origin.put("big.bin", &body);
    let gw = Gateway::start(&origin);
    let (_, url) = gw.admin().share("big.bin", None);
    let path = url
        .trim_start_matches(&format!("http://127.0.0.1:{}", gw.port))
        .to_string();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut first = [0u8; 4096];
    let _ = conn.read(&mut first).unwrap();
    // The client has stopped reading: the stream stays open.
    assert_eq!(metric(&scrape(&gw), "linkgate_active_streams"), 1.0);
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&scrape(&gw), "linkgate_active_streams") != 0.0 {
        assert!(Instant::now() < deadline, "the stream never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        metric(&scrape(&gw), "linkgate_downloads_aborted_total"),
        1.0
    );
}

/// A recipient who breaks a download off (a closed tab, a cancelled download manager, a
/// scanner that only wanted the first bytes) is not a fault of the gateway: the request is
/// counted as `client_gone` and its event gives that reason, never `error`, and the log has no
/// error line for it, whether the gateway relays the document or reads it from a folder.
#[test]
fn a_recipient_breaking_off_is_recorded_as_gone_not_as_a_server_error() {
    let origin = Origin::start();
    let body = pseudo_random(32 * 1024 * 1024, 13);
    origin.put("big.bin", &body);
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("big.bin"), &body).unwrap();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
            folder.path().display()
        ),
        server_extra: "client_write_timeout_seconds = 1\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    for store in ["docs", "files"] {
        let created = gw
            .admin()
            .create(serde_json::json!({ "store": store, "object": "big.bin", "max_downloads": 5 }));
        let id = created["id"].as_str().unwrap().to_string();
        let path = path_of(created["url"].as_str().unwrap());
        // Closed after 1 MiB of 32.
        assert_eq!(
            take(gw.port, &path, &[], 1 << 20),
            (200, 1 << 20),
            "{store}"
        );
        let aborted = aborted_event(&gw, &id);
        assert_eq!(aborted["reason"], "client_gone", "{store}: {aborted}");
    }
    // A recipient that reads slowly (so the rest of the body is spliced, from the origin's
    // socket or from the file), then stops reading: its write timeout ends the download as gone.
    for store in ["docs", "files"] {
        let spliced = metric(&scrape(&gw), "linkgate_bytes_spliced_total");
        let created = gw
            .admin()
            .create(serde_json::json!({ "store": store, "object": "big.bin", "max_downloads": 5 }));
        let id = created["id"].as_str().unwrap().to_string();
        let mut stalled = std::net::TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        receive_buffer(&stalled, 64 * 1024);
        let path = path_of(created["url"].as_str().unwrap());
        write!(stalled, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (mut got, mut buf) = (0, vec![0u8; 64 * 1024]);
        // Long enough for the gateway's socket buffer (a few MiB) to take writes again.
        while got < 8 << 20 {
            let n = stalled.read(&mut buf).unwrap();
            assert!(n > 0, "{store}: the body comes");
            got += n;
            std::thread::sleep(Duration::from_secs_f64(n as f64 / (4 << 20) as f64));
        }
        let aborted = aborted_event(&gw, &id);
        assert_eq!(
            aborted["reason"], "client_gone",
            "{store} stalled: {aborted}"
        );
        // Spliced before it stalled.
        gw.wait_for_metric("linkgate_bytes_spliced_total", |v| v > spliced);
        drop(stalled);
    }
    let text = scrape(&gw);
    assert_eq!(
        metric(&text, "linkgate_requests_total{outcome=\"client_gone\"}"),
        4.0
    );
    assert_eq!(
        metric(&text, "linkgate_requests_total{outcome=\"error\"}"),
        0.0
    );
    let log = gw.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "error lines for a recipient's break: {errors:#?}"
    );
}

#[test]
fn readyz_follows_the_link_store_and_the_origins() {
    let mut origin = Origin::start();
    let gw = Gateway::start(&origin);
    let base = gw.admin().base;
    assert_eq!(get(&format!("{base}/healthz")).status, 200);
    let ready = get(&format!("{base}/readyz"));
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["stores"]["docs"], "ok");
    assert_eq!(ready.json()["state"], "ok");

    origin.stop();
    let down = get(&format!("{base}/readyz"));
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.json()["status"], "not ready");
    assert!(
        down.json()["stores"]["docs"]
            .as_str()
            .unwrap()
            .contains("reachable"),
        "{}",
        down.text()
    );
    assert_eq!(
        get(&format!("{base}/healthz")).status,
        200,
        "alive even when not ready"
    );
}

#[test]
fn readyz_is_not_ready_while_redis_is_down() {
    let origin = Origin::start();
    let mut redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let base = gw.admin().base;
    assert_eq!(get(&format!("{base}/readyz")).status, 200);
    redis.kill();
    let down = get(&format!("{base}/readyz"));
    assert_eq!(down.status, 503, "{}", down.text());
    assert_ne!(down.json()["state"], "ok");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/readyz")).status != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready again after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn json_log_has_one_line_per_request_without_the_token() {
    let origin = Origin::start();
    origin.put("log/file.txt", b"logged");
    let gw = Gateway::start_with(GatewayOptions {
        extra: "[log]\nformat = \"json\"\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let created = admin.create(serde_json::json!({ "store": "docs", "object": "log/file.txt" }));
    let (id, url, token) = (
        created["id"].as_str().unwrap(),
        created["url"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    assert_eq!(get(url).body, b"logged");
    assert_eq!(get(&gw.url("/s/forged-token")).status, 404);

    let deadline = Instant::now() + Duration::from_secs(10);
    let access = loop {
        let lines: Vec<Value> = gw
            .log()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .filter(|v| v["target"] == "linkgate::access")
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(access.len(), 2, "one line per request: {access:?}");
    // The two requests' lines may be written in either order: the first request's line is
    // written after its response went out, maybe while the second one is being answered.
    let line = |outcome: &str| {
        access
            .iter()
            .map(|l| &l["fields"])
            .find(|f| f["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} line: {access:?}"))
    };
    let served = line("served");
    assert_eq!(served["link"], id);
    assert_eq!(served["outcome"], "served");
    assert_eq!(served["status"], 200);
    assert_eq!(served["bytes"], 6);
    assert_eq!(served["store"], "docs");
    assert!(served["duration_ms"].is_u64(), "{served}");
    let forged = line("bad_token");
    assert_eq!(
        (forged["outcome"].as_str(), forged["status"].as_u64()),
        (Some("bad_token"), Some(404))
    );
    assert!(!gw.log().contains(token), "the token never reaches the log");
}

#[test]
fn sigterm_lets_running_downloads_finish() {
    let origin = Origin::start();
    let body = pseudo_random(16 * 1024 * 1024, 21);
    origin.put("big.bin", &body);
    let mut gw = Gateway::start_with(GatewayOptions {
        grace_period_seconds: 8,
        ..GatewayOptions::for_origin(&origin)
    });
    let (_, url) = gw.admin().share("big.bin", None);
    let path = url
        .trim_start_matches(&format!("http://127.0.0.1:{}", gw.port))
        .to_string();
    let port = gw.port;
    let download = std::thread::spawn(move || slow_download(port, &path, 4 * 1024 * 1024));
    std::thread::sleep(Duration::from_millis(500));
    gw.signal("TERM");
    let (status, digest) = download
        .join()
        .unwrap()
        .expect("the download survives SIGTERM");
    assert!(status.contains("200"), "{status}");
    assert_eq!(digest, sha256(&body));
    assert!(
        gw.wait_exit(Duration::from_secs(30)),
        "the gateway exits after its grace period"
    );
}

#[test]
fn upgrade_hands_over_without_cutting_downloads_or_refusing_requests() {
    let origin = Origin::start();
    let redis = RedisServer::start();
    let big = pseudo_random(24 * 1024 * 1024, 33);
    origin.put("big.bin", &big);
    origin.put("small.txt", b"small");
    let opts = GatewayOptions {
        grace_period_seconds: 12,
        ..GatewayOptions::on_redis(&origin, redis.state())
    };
    let mut old = Gateway::start_with(opts);
    let admin = old.admin();
    let (_, big_url) = admin.share("big.bin", Some(100));
    let (_, small_url) = admin.share("small.txt", None);
    let big_path = big_url
        .trim_start_matches(&format!("http://127.0.0.1:{}", old.port))
        .to_string();
    let port = old.port;

    // Long downloads (about 8 s each at 3 MiB/s: past the old process's 5 s of accepting after
    // SIGQUIT), started on the old process.
    let downloads: Vec<_> = (0..3)
        .map(|_| {
            let path = big_path.clone();
            std::thread::spawn(move || slow_download(port, &path, 3 * 1024 * 1024))
        })
        .collect();
    // New requests, each on a new connection, all through the upgrade.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (stop, served, url) = (stop.clone(), served.clone(), small_url.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match try_request("GET", &url, &[], None) {
                    Ok(r) if r.status == 200 && r.body == b"small" => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status)),
                    Err(e) => failures.push(e),
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            failures
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let new = old.start_upgrade();
    assert!(
        downloads.iter().all(|d| !d.is_finished()),
        "the downloads are running when the upgrade starts"
    );
    old.signal("QUIT");
    // The old process keeps its running downloads, stops accepting, and exits after its grace period.
    assert!(
        old.wait_exit(Duration::from_secs(40)),
        "the old process exits after handing over"
    );
    let served_before = served.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let failures = prober.join().unwrap();
    assert!(
        failures.is_empty(),
        "requests failed during the upgrade: {failures:?}"
    );
    assert!(
        served.load(Ordering::Relaxed) > served_before,
        "the new process serves after the old one left"
    );
    for d in downloads {
        let (status, digest) = d.join().unwrap().expect("no download was cut");
        assert!(status.contains("200"), "{status}");
        assert_eq!(digest, sha256(&big));
    }
    // The new process holds both listeners.
    assert_eq!(get(&format!("{}/healthz", admin.base)).status, 200);
    drop(new);
}

#[test]
fn upgrade_on_the_embedded_store_is_refused_with_a_reason() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let out = std::process::Command::new(bin())
        .args(["serve", "--upgrade", "--config"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("state.backend = \"redis\""), "{stderr}");
    assert_eq!(
        get(&format!("{}/healthz", gw.admin().base)).status,
        200,
        "the running instance is untouched"
    );
}
