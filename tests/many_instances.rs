//! Several gateway instances sharing one Redis (or a Redis Cluster): limits hold across them,
//! revocations reach all of them within a second, and Redis faults fail closed and heal.
//! Real redis-server processes, real nginx origin, real gateway binaries, real curl and aria2c.

mod common;

use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn a_thousand_concurrent_downloads_on_two_instances_serve_exactly_the_limit() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(4096, 1));
    let redis = RedisServer::start();
    let (a, b) = Gateway::pair_on_redis(&origin, &redis);
    let (id, url) = a.admin().share("doc.bin", Some(10));
    let urls = [a.same_link(&url), b.same_link(&url)];
    let barrier = Arc::new(Barrier::new(1000));
    let handles: Vec<_> = (0..1000)
        .map(|i| {
            let (url, barrier) = (urls[i % 2].clone(), barrier.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let r = get(&url);
                    (r.status, r.body.len())
                })
                .unwrap()
        })
        .collect();
    let results: Vec<(u16, usize)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let bodies = results
        .iter()
        .filter(|(s, len)| *s == 200 && *len == 4096)
        .count();
    assert_eq!(
        bodies, 10,
        "exactly the limit is served across both instances"
    );
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 404),
        "only 200 or 404: {:?}",
        results
            .iter()
            .filter(|(s, _)| *s != 200 && *s != 404)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(a.used(&id), 10);
    assert_eq!(b.used(&id), 10);
}

#[test]
fn a_revocation_on_one_instance_stops_every_instance_within_a_second() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = a.admin().share("a.txt", None);
    let (url_a, url_b) = (a.same_link(&url), b.same_link(&url));
    // Warm both caches: from now on neither asks Redis for this unlimited link.
    assert_eq!(get(&url_a).status, 200);
    assert_eq!(get(&url_b).status, 200);
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    let took = wait_until("deactivation on B", Duration::from_secs(1), || {
        get(&url_b).status == 404
    });
    eprintln!("deactivation reached the other instance in {took:?}");
    assert_eq!(get(&url_a).status, 404);
    assert_eq!(
        b.admin()
            .call("POST", &format!("/v1/links/{id}/activate"), None)
            .status,
        200
    );
    wait_until("activation on A", Duration::from_secs(1), || {
        get(&url_a).status == 200
    });
    assert_eq!(
        b.admin()
            .call("DELETE", &format!("/v1/links/{id}"), None)
            .status,
        200
    );
    wait_until("cancellation on A", Duration::from_secs(1), || {
        get(&url_a).status == 404
    });
}

#[test]
fn redis_killed_and_restarted_mid_load_never_over_grants_and_heals_by_itself() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(20_000, 2));
    let mut redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let limit = 40;
    let (id, url) = a.admin().share("doc.bin", Some(limit));
    let urls = [a.same_link(&url), b.same_link(&url)];
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (url, stop) = (urls[i % 2].clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && seen.len() < 2_000 {
                    let started = Instant::now();
                    let r = get(&url);
                    seen.push((r.status, started.elapsed()));
                    std::thread::sleep(Duration::from_millis(40));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    redis.kill();
    std::thread::sleep(Duration::from_secs(2));
    // While Redis is down, the admin API fails closed too.
    let create = a.admin().call(
        "POST",
        "/v1/links",
        Some(json!({"store": "docs", "object": "doc.bin"})),
    );
    assert_eq!(create.status, 503, "{}", create.text());
    redis.restart();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: Vec<(u16, Duration)> = load.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let ok = seen.iter().filter(|(s, _)| *s == 200).count() as u64;
    let unavailable = seen.iter().filter(|(s, _)| *s == 503).count();
    assert!(ok <= limit, "{ok} bodies served on a limit of {limit}");
    assert!(
        unavailable > 0,
        "requests during the outage fail closed with 503"
    );
    assert!(
        seen.iter().all(|(s, _)| [200, 404, 503].contains(s)),
        "{seen:?}"
    );
    let slowest = seen.iter().map(|(_, d)| *d).max().unwrap();
    assert!(
        slowest < Duration::from_secs(5),
        "no request hangs past the store timeout: {slowest:?}"
    );
    assert!(a.used(&id) <= limit);
    // Recovered without a restart: new links are created and served on both instances.
    let mut fresh = None;
    wait_until("the admin API to recover", Duration::from_secs(10), || {
        let r = a.admin().call(
            "POST",
            "/v1/links",
            Some(json!({"store": "docs", "object": "doc.bin", "max_downloads": 5})),
        );
        fresh = (r.status == 201).then(|| r.json()["url"].as_str().unwrap().to_string());
        fresh.is_some()
    });
    let fresh = fresh.unwrap();
    for gw in [&a, &b] {
        wait_until("downloads to recover", Duration::from_secs(10), || {
            get(&gw.same_link(&fresh)).status == 200
        });
    }
}

#[test]
fn a_paused_or_sleeping_redis_answers_503_within_the_timeout_then_recovers() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    // Few enough downloads that each is counted in Redis (no block of downloads is held, which
    // would keep serving without Redis, as warm unlimited links do).
    let (_, url) = gw.admin().share("a.txt", Some(100));
    assert_eq!(get(&url).status, 200);
    redis.cli(&["CLIENT", "PAUSE", "2500", "ALL"]);
    let started = Instant::now();
    assert_eq!(get(&url).status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
    wait_until(
        "recovery after CLIENT PAUSE",
        Duration::from_secs(10),
        || get(&url).status == 200,
    );
    let sleeper = {
        let port = redis.port;
        std::thread::spawn(move || {
            Command::new("redis-cli")
                .args(["-p", &port.to_string(), "DEBUG", "SLEEP", "2"])
                .output()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get(&url).status, 503);
    assert!(started.elapsed() < Duration::from_secs(2));
    let _ = sleeper.join();
    wait_until(
        "recovery after DEBUG SLEEP",
        Duration::from_secs(10),
        || get(&url).status == 200,
    );
}

#[test]
fn a_download_manager_with_four_connections_counts_once() {
    let origin = Origin::start();
    let data = pseudo_random(16 * 1024 * 1024, 3);
    origin.put("big.bin", &data);
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = gw.admin().share("big.bin", Some(1));
    let dir = tempfile::tempdir().unwrap();
    aria2c(&url, dir.path(), "big.bin", 4);
    assert_eq!(
        sha256(&std::fs::read(dir.path().join("big.bin")).unwrap()),
        sha256(&data)
    );
    assert_eq!(gw.used(&id), 1);
    assert_eq!(get(&url).status, 404, "the one download is used up");
}

#[test]
fn a_broken_download_restarted_then_resumed_with_curl_counts_once_on_redis() {
    let origin = Origin::start();
    let data = pseudo_random(32 * 1024 * 1024, 4);
    origin.put("big.bin", &data);
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    // Broken off after 1 MiB of 32: its unsent bytes come back.
    let (id, url) = gw.admin().share("big.bin", Some(1));
    assert_eq!(take(gw.port, &path_of(&url), &[], 1 << 20), (200, 1 << 20));
    events_when(&gw, &id, |e| {
        e.iter().any(|e| e["kind"] == "download.aborted")
    });
    // Restarted from byte 0, broken again after 5 MB, then resumed with curl -C -: one download.
    let first = request("GET", &url, &[("range", "bytes=0-4999999")], None);
    assert_eq!(first.status, 206);
    let file = gw.dir.path().join("resume.out");
    std::fs::write(&file, &first.body).unwrap();
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-C", "-", "-o"])
        .arg(&file)
        .arg(&url)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(sha256(&std::fs::read(&file).unwrap()), sha256(&data));
    assert_eq!(gw.used(&id), 1);
}

#[test]
fn a_redis_cluster_shares_limits_and_revocations() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello cluster");
    let cluster = RedisCluster::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, cluster.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, cluster.state()));
    // Several links, so their keys land on different masters.
    let links: Vec<(String, String)> = (0..6).map(|_| a.admin().share("a.txt", Some(3))).collect();
    for (id, url) in &links {
        let urls = [a.same_link(url), b.same_link(url)];
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let u = urls[i % 2].clone();
                std::thread::spawn(move || get(&u).status)
            })
            .collect();
        let ok = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|s| *s == 200)
            .count();
        assert_eq!(ok, 3, "link {id}");
        assert_eq!(b.used(id), 3);
    }
    let masters_used = cluster
        .nodes
        .iter()
        .filter(|n| n.cli(&["DBSIZE"]).trim() != "0")
        .count();
    assert!(masters_used >= 2, "links should spread over the masters");
    let (id, url) = a.admin().share("a.txt", None);
    assert_eq!(get(&b.same_link(&url)).status, 200);
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    wait_until("deactivation on B", Duration::from_secs(1), || {
        get(&b.same_link(&url)).status == 404
    });
}
