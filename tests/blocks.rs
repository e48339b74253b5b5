//! Blocks of downloads: a gateway counts the small documents of links with many downloads left
//! from a block it took from the link state in one round trip (docs/counting.md, "Blocks"). What
//! must hold whatever the load: no more downloads than the limit across instances, the count
//! shown exact once the gateway is quiet, a change to the link obeyed at once by an instance
//! holding a block, and a stop (graceful or not) that never grants a download twice.
//! Real redis-server, nginx origin and gateway processes.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

const SIZE: usize = 4096;

/// Waits (polling, up to a minute: blocks go back after a second of quiet) until `ok` holds.
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GETs every URL, `threads` at a time (all started together); (status, body length) of each.
fn fetch_all(urls: &[String], threads: usize) -> Vec<(u16, usize)> {
    let barrier = Arc::new(Barrier::new(threads));
    let chunks: Vec<Vec<String>> = (0..threads)
        .map(|t| urls.iter().skip(t).step_by(threads).cloned().collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    chunk
                        .iter()
                        .map(|u| {
                            let r = get(u);
                            (r.status, r.body.len())
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap()
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn served(results: &[(u16, usize)]) -> usize {
    assert!(
        results
            .iter()
            .all(|r| *r == (200, SIZE) || (r.0 == 404 && r.1 < SIZE)),
        "only whole copies or the uniform 404: {:?}",
        results
            .iter()
            .filter(|r| **r != (200, SIZE) && r.0 != 404)
            .take(5)
            .collect::<Vec<_>>()
    );
    results.iter().filter(|r| **r == (200, SIZE)).count()
}

#[test]
fn downloads_in_blocks_on_two_instances_serve_exactly_the_limit_and_the_count_settles() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(SIZE, 7));
    let redis = RedisServer::start();
    let (a, b) = Gateway::pair_on_redis(&origin, &redis);
    let (id, url) = a.admin().share("doc.bin", Some(600));
    let urls = [a.same_link(&url), b.same_link(&url)];

    // 200 downloads, 8 at a time on each instance: all whole, and once both instances are quiet
    // the count is exactly 200 (while they hold blocks, each shows the downloads the other one's
    // blocks reserved).
    let first: Vec<String> = (0..200).map(|i| urls[i % 2].clone()).collect();
    assert_eq!(served(&fetch_all(&first, 16)), 200);
    wait_until("the count settles at 200", || {
        a.used(&id) == 200 && b.used(&id) == 200
    });

    // Then 2,000 at once: exactly the 400 left are served, across both instances.
    let rush: Vec<String> = (0..2000).map(|i| urls[i % 2].clone()).collect();
    assert_eq!(
        served(&fetch_all(&rush, 200)),
        400,
        "exactly the limit is served across both instances"
    );
    wait_until("the count settles at the limit", || {
        a.used(&id) == 600 && b.used(&id) == 600
    });
    assert_eq!(get(&urls[0]).status, 404);
    assert_eq!(get(&urls[1]).status, 404);
}

#[test]
fn a_link_changed_on_one_instance_is_obeyed_by_another_holding_a_block() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(SIZE, 8));
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = a.admin().share("doc.bin", Some(100_000));
    let url_b = b.same_link(&url);
    // B takes a block (hundreds of downloads reserved) and keeps using it.
    assert_eq!(served(&fetch_all(&vec![url_b.clone(); 40], 4)), 40);
    assert!(a.used(&id) >= 40);
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    wait_until("deactivation on B", || get(&url_b).status == 404);
    // And it stays refused, block or not.
    assert_eq!(served(&fetch_all(&vec![url_b.clone(); 40], 4)), 0);
    // Active again, B serves again; once it is quiet its block goes back, and both instances
    // show the same count, no more than before.
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/activate"), None)
            .status,
        200
    );
    wait_until("activation on B", || get(&url_b).status == 200);
    let before = a.used(&id);
    wait_until("B's block goes back", || {
        let now = a.used(&id);
        now <= before && now == b.used(&id)
    });
}

#[test]
fn a_stopping_gateway_gives_its_blocks_back_and_a_killed_one_never_grants_twice() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(SIZE, 9));
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("linkgate.db");
    let opts = || {
        let mut o = GatewayOptions::for_origin(&origin);
        o.db = Some(db.clone());
        o
    };
    let mut gw = Gateway::start_with(opts());
    let (id, url) = gw.admin().share("doc.bin", Some(800));
    let path = path_of(&url);

    // Downloads, then a graceful stop at once (the block is still held): it goes back, and the
    // restarted gateway shows exactly the downloads served.
    assert_eq!(served(&fetch_all(&vec![gw.url(&path); 100], 8)), 100);
    assert_eq!(
        gw.used(&id),
        100,
        "an instance's own count leaves out what its blocks reserved"
    );
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(30)), "the gateway stopped");
    drop(gw);
    let mut gw = Gateway::start_with(opts());
    assert_eq!(gw.used(&id), 100, "the stop gave the block back");

    // Downloads, then killed while holding a block: the downloads it reserved and did not serve
    // stay counted (never granted twice), and the link still serves what is left.
    assert_eq!(served(&fetch_all(&vec![gw.url(&path); 100], 8)), 100);
    gw.signal("KILL");
    assert!(gw.wait_exit(Duration::from_secs(30)));
    drop(gw);
    let gw = Gateway::start_with(opts());
    let counted = gw.used(&id);
    assert!(
        (200..=200 + 2 * 700 / 16).contains(&counted),
        "a killed gateway's reserved downloads stay counted, no more: {counted}"
    );
    let rest = served(&fetch_all(&vec![gw.url(&path); 1000], 16));
    assert_eq!(rest as u64, 800 - counted, "what is left, and no more");
    wait_until("the count settles at the limit", || gw.used(&id) == 800);
}

/// A request's headers, and how many body bytes its client reads before it goes away.
type Shape = (Vec<(&'static str, &'static str)>, usize);

/// Whatever the shape of the requests (whole copies, ranges of every kind, multi-ranges, clients
/// that break off), downloads handed out from blocks give no more than the store itself would:
/// the document bytes that leave the two gateways stay within (limit + ½) × size.
#[test]
fn no_shape_of_request_takes_more_than_the_limit_from_blocks() {
    const DOC: usize = 64 * 1024;
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(DOC, 10));
    let redis = RedisServer::start();
    let (a, b) = Gateway::pair_on_redis(&origin, &redis);
    let (id, url) = a.admin().share("doc.bin", Some(200));
    let path = path_of(&url);
    let shapes: Arc<Vec<Shape>> = Arc::new(vec![
        (vec![], usize::MAX),
        (vec![], 1000),
        (vec![], DOC * 45 / 100),
        (vec![("range", "bytes=0-")], usize::MAX),
        (vec![("range", "bytes=1-")], usize::MAX),
        (vec![("range", "bytes=32768-")], usize::MAX),
        (vec![("range", "bytes=-1000")], usize::MAX),
        (vec![("range", "bytes=0-0")], usize::MAX),
        (vec![("range", "bytes=1000-1999,5000-5999")], usize::MAX),
        (vec![("range", "bytes=0-32767,32768-")], usize::MAX),
        (vec![("range", "bytes=5-,0-")], usize::MAX),
        (vec![("range", "bytes=100-199,-100")], 300),
    ]);
    let ports = [a.port, b.port];
    let received = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (shapes, path) = (shapes.clone(), path.clone());
            let (received, refused) = (received.clone(), refused.clone());
            std::thread::spawn(move || {
                // Until the link has refused this thread ten times, at most 200 requests each.
                let mut no = 0;
                for i in 0..200 {
                    let (headers, keep) = &shapes[(t + i) % shapes.len()];
                    let (status, got) = take(ports[(t + i / 3) % 2], &path, headers, *keep);
                    received.fetch_add(got, Ordering::Relaxed);
                    if status == 404 {
                        no += 1;
                        refused.fetch_add(1, Ordering::Relaxed);
                        if no == 10 {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut received = received.load(Ordering::Relaxed);
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the link ended up refusing"
    );
    assert!(
        received > 100 * DOC,
        "the attack took most of what the link gives (else it proves little): {received}"
    );
    // Then whole copies from both instances until both refuse and the count is at the limit (a
    // block one instance still holds serves, or goes back after a second of quiet).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (sa, ga) = take(a.port, &path, &[], usize::MAX);
        let (sb, gb) = take(b.port, &path, &[], usize::MAX);
        received += ga + gb;
        if sa == 404 && sb == 404 {
            if a.used(&id) == 200 && b.used(&id) == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            Instant::now() < deadline,
            "the count never reached the limit"
        );
    }
    assert!(
        received <= 200 * DOC + DOC / 2,
        "received {received} bytes of a {DOC}-byte document on a limit of 200"
    );
}

/// A block take whose answer is lost (Redis holds it past the gateway's timeout, then applies it)
/// leaves no downloads counted for nobody: the request fails closed (503), and the gateway gives
/// back what the take reserved once Redis answers again.
#[test]
fn a_block_whose_answer_was_lost_goes_back_to_the_link() {
    let origin = Origin::start();
    origin.put("doc.bin", &pseudo_random(SIZE, 11));
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = gw.admin().share("doc.bin", Some(1000));
    // A download from another link loads the counting script (a held call of a script Redis
    // does not know yet would only fail).
    let (_, other) = gw.admin().share("doc.bin", Some(5));
    assert_eq!(get(&other).status, 200);
    // Writes (every script) wait; reads, such as loading the link, go through.
    redis.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert_eq!(get(&url).status, 503, "the take timed out: fail closed");
    // A write of our own returns once the pause is over, and the held take lands.
    redis.cli(&["SET", "probe", "1"]);
    wait_until("the lost block goes back", || gw.used(&id) == 0);
    assert_eq!(get(&url).status, 200);
    wait_until("one download counted", || gw.used(&id) == 1);
}
