//! Notifications to the document system: webhooks from the durable outbox (signed, retried with
//! backoff, delivered after a receiver outage, a gateway restart and a Redis outage, by two
//! gateways on one Redis) and the sender's first-download mail.
//!
//! The webhook receiver (`common/webhook_receiver.rs`) is a real HTTP server on a loopback port
//! that checks every signature with its own HMAC, can answer 500 for a while, and can be closed
//! and opened again on the same port.

mod common;
#[path = "common/webhook_receiver.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use receiver::{Receiver, SECRET};
use serde_json::{json, Value};

/// The `[webhooks]` table for a gateway delivering to `url`, retrying quickly.
fn webhooks(url: &str) -> String {
    format!(
        "[webhooks]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nmax_attempts = 1000\n"
    )
}

const NOTIFIABLE: &[&str] = &[
    "page.viewed",
    "download.started",
    "download.completed",
    "link.exhausted",
    "link.expired",
    "upload.completed",
    "review.commented",
    "review.decided",
    "password.failed",
    "code.failed",
    "document.changed",
    "document.missing",
    "share.mailed",
];

/// The event ids (`LINK.SEQ`) of a link's notifiable events, once there are at least `n`.
fn notifiable_ids(gw: &Gateway, link: &str, n: usize) -> BTreeSet<String> {
    events_when(gw, link, |events| {
        events
            .iter()
            .filter(|e| NOTIFIABLE.contains(&e["kind"].as_str().unwrap_or("")))
            .count()
            >= n
    })
    .iter()
    .filter(|e| NOTIFIABLE.contains(&e["kind"].as_str().unwrap_or("")))
    .map(|e| format!("{link}.{}", e["seq"]))
    .collect()
}

fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = get(&format!("{}/metrics", gw.admin().base)).text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

fn wait_metric(gw: &Gateway, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(gw, name) < at_least {
        assert!(Instant::now() < deadline, "{name} never reached {at_least}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn limited_link(gw: &Gateway, max: u64) -> (String, String) {
    gw.admin().share("report.pdf", Some(max))
}

fn origin() -> Origin {
    let origin = Origin::start();
    origin.put("report.pdf", &vec![7u8; 10_000]);
    origin
}

#[test]
fn webhooks_are_signed_carry_stable_ids_and_outlast_failures_and_receiver_restarts() {
    let origin = origin();
    let mut receiver = Receiver::start();
    // The first three attempts fail with 500.
    receiver.seen.fail_next.store(3, Ordering::SeqCst);
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&receiver.url());
    let gw = Gateway::start_with(opts);
    let (id, url) = limited_link(&gw, 5);
    assert_eq!(get(&url).status, 200);
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&gw, &id, 4);
    receiver.wait_for(&ids);
    let all = receiver.deliveries();
    assert!(all.iter().all(|d| d.signed), "unsigned delivery: {all:?}");
    assert!(all.iter().filter(|d| d.status == 500).count() >= 3);
    // Every attempt of one event carries the same id and the same content.
    let mut bodies: BTreeMap<String, Value> = BTreeMap::new();
    for d in &all {
        assert_eq!(d.body["id"], d.id.as_str());
        assert_eq!(d.body["link"], id.as_str());
        let mut body = d.body.clone();
        body.as_object_mut().unwrap().remove("at");
        if let Some(before) = bodies.insert(d.id.clone(), body.clone()) {
            assert_eq!(before, body, "a retry changed the payload");
        }
    }
    let kinds: BTreeSet<&str> = all.iter().map(|d| d.kind.as_str()).collect();
    assert!(kinds.contains("download.started") && kinds.contains("download.completed"));
    assert!(
        !kinds.contains("link.created"),
        "admin events are not delivered"
    );

    // The receiver goes away: the next event waits in the outbox, failing, until it is back.
    receiver.close();
    let failed_before = metric(&gw, "linkgate_webhook_attempts_failed_total");
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&gw, &id, 6);
    wait_metric(
        &gw,
        "linkgate_webhook_attempts_failed_total",
        failed_before + 1,
    );
    receiver.open();
    receiver.wait_for(&ids);
    assert!(receiver.deliveries().iter().all(|d| d.signed));
    let failed = gw.admin().call("GET", "/v1/webhooks/failed", None).json();
    assert_eq!(failed["enabled"], true);
    assert_eq!(failed["failed"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_receiver_that_never_accepts_gets_the_entry_given_up_and_listed() {
    let origin = origin();
    let receiver = Receiver::start();
    receiver.seen.failing.store(true, Ordering::SeqCst);
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&receiver.url()).replace("max_attempts = 1000", "max_attempts = 2");
    let gw = Gateway::start_with(opts);
    let (id, url) = limited_link(&gw, 5);
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&gw, &id, 2);
    wait_metric(&gw, "linkgate_webhooks_given_up_total", 2);
    let failed = gw.admin().call("GET", "/v1/webhooks/failed", None).json();
    let listed: BTreeSet<String> = failed["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["attempts"], 2);
            assert!(f["last_error"].as_str().unwrap().contains("500"), "{f}");
            f["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(failed["pending"], 0);
}

#[test]
fn pending_webhooks_are_delivered_after_a_gateway_restart() {
    let origin = origin();
    let mut receiver = Receiver::start();
    receiver.close();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&receiver.url());
    opts.db = Some(db.clone());
    let gw = Gateway::start_with(opts);
    let (id, url) = limited_link(&gw, 5);
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&gw, &id, 2);
    wait_metric(&gw, "linkgate_webhook_attempts_failed_total", 1);
    drop(gw.stop());

    receiver.open();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&receiver.url());
    opts.db = Some(db);
    let _gw = Gateway::start_with(opts);
    receiver.wait_for(&ids);
}

#[test]
fn webhooks_survive_redis_going_down_while_they_are_pending() {
    let origin = origin();
    let receiver = Receiver::start();
    receiver.seen.failing.store(true, Ordering::SeqCst);
    let mut redis = RedisServer::start();
    let mut opts = GatewayOptions::on_redis(&origin, redis.state());
    opts.extra = webhooks(&receiver.url());
    let gw = Gateway::start_with(opts);
    // Several documents: the link has a landing page, and an unlimited link is served from the
    // gateway's cache without the store.
    let link = gw.admin().create(json!({
        "store": "docs",
        "documents": [{"object": "report.pdf"}, {"object": "report.pdf", "filename": "copy.pdf"}],
    }));
    let (id, url) = (
        link["id"].as_str().unwrap().to_string(),
        link["url"].as_str().unwrap().to_string(),
    );
    let page = || request("GET", &url, &[("accept", "text/html")], None).status;
    assert_eq!(page(), 200);
    let first = notifiable_ids(&gw, &id, 1);
    // Its webhook is pending (the receiver fails it), and Redis goes away.
    receiver.wait_requests(1);
    redis.kill();
    // Events of this outage wait in the gateway's queue.
    assert_eq!(page(), 200);
    assert_eq!(page(), 200);
    redis.restart();
    let ids = notifiable_ids(&gw, &id, 3);
    assert!(first.is_subset(&ids));
    receiver.seen.failing.store(false, Ordering::SeqCst);
    receiver.wait_for(&ids);
}

#[test]
fn two_gateways_on_one_redis_deliver_every_event() {
    let origin = origin();
    let receiver = Receiver::start();
    let redis = RedisServer::start();
    let start = || {
        let mut opts = GatewayOptions::on_redis(&origin, redis.state_with_timeout(2000));
        opts.extra = webhooks(&receiver.url());
        Gateway::start_with(opts)
    };
    let (a, b) = (start(), start());
    let (id, url) = limited_link(&a, 50);
    let url_b = url.replace(&format!(":{}/", a.port), &format!(":{}/", b.port));
    for _ in 0..5 {
        assert_eq!(get(&url).status, 200);
        assert_eq!(get(&url_b).status, 200);
    }
    let ids = notifiable_ids(&a, &id, 20);
    receiver.wait_for(&ids);
    // At least once; a repeat (a lease that ran out on a loaded machine) carries the same event.
    let mut bodies: BTreeMap<String, Value> = BTreeMap::new();
    for d in receiver.deliveries() {
        assert!(d.signed);
        let mut body = d.body.clone();
        body.as_object_mut().unwrap().remove("at");
        if let Some(before) = bodies.insert(d.id.clone(), body.clone()) {
            assert_eq!(before, body);
        }
    }
    assert_eq!(bodies.len(), ids.len(), "only this link's events arrived");
}

#[test]
fn the_sender_is_mailed_once_on_the_first_download_across_gateways() {
    let origin = origin();
    let smtp = SmtpSink::start();
    let redis = RedisServer::start();
    let start = || {
        let mut opts = GatewayOptions::on_redis(&origin, redis.state_with_timeout(2000));
        opts.extra = smtp.config();
        Gateway::start_with(opts)
    };
    let (a, b) = (start(), start());
    let link = a.admin().create(json!({
        "store": "docs",
        "object": "report.pdf",
        "max_downloads": 10,
        "notify_sender": "sender@example.org",
    }));
    assert_eq!(link["notify_sender"], "sender@example.org");
    let url = link["url"].as_str().unwrap().to_string();
    let url_b = url.replace(&format!(":{}/", a.port), &format!(":{}/", b.port));
    assert_eq!(get(&url).status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.messages().is_empty() {
        assert!(Instant::now() < deadline, "no first-download mail");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The other gateway's first completed download finds the notice taken.
    assert_eq!(get(&url_b).status, 200);
    assert_eq!(get(&url).status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b
        .log()
        .contains("first-download notice: another download was first")
    {
        assert!(
            Instant::now() < deadline,
            "gateway b never checked the notice"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("sender@example.org"));
    assert!(messages[0].contains("First download"));
    assert!(messages[0].contains("report.pdf"));
}

#[test]
fn per_link_webhooks_are_checked_and_their_secret_never_shown() {
    let origin = origin();
    let receiver = Receiver::start();
    let mut opts = GatewayOptions::for_origin(&origin);
    // No global endpoint: only links' own webhooks.
    opts.extra =
        "[webhooks]\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nallowed_hosts = [\"127.0.0.1\"]\n"
            .into();
    let gw = Gateway::start_with(opts);
    let admin = gw.admin();
    for (bad, field) in [
        (
            json!({"url": "ftp://x.org/", "secret": SECRET}),
            "webhook.url",
        ),
        (
            json!({"url": "file:///etc/passwd", "secret": SECRET}),
            "webhook.url",
        ),
        (
            json!({"url": receiver.url(), "secret": "short"}),
            "webhook.secret",
        ),
        // Only the hosts the operator listed.
        (
            json!({"url": "http://169.254.169.254/latest/meta-data", "secret": SECRET}),
            "webhook.url",
        ),
        (
            json!({"url": receiver.url(), "secret": SECRET, "events": ["link.created"]}),
            "webhook.events",
        ),
        (
            json!({"url": receiver.url(), "secret": SECRET, "extra": 1}),
            "webhook.extra",
        ),
    ] {
        let r = admin.call(
            "POST",
            "/v1/links",
            Some(json!({"store": "docs", "object": "report.pdf", "webhook": bad})),
        );
        assert_eq!(r.status, 422, "{}", r.text());
        assert!(r.text().contains(field), "{}", r.text());
    }
    let link = admin.create(json!({
        "store": "docs",
        "object": "report.pdf",
        "max_downloads": 3,
        "webhook": {"url": receiver.url(), "secret": SECRET, "events": ["download.completed"]},
    }));
    assert!(!link.to_string().contains(SECRET));
    assert_eq!(link["webhook"]["events"], json!(["download.completed"]));
    let id = link["id"].as_str().unwrap();
    assert!(!admin.link(id).to_string().contains(SECRET));
    assert_eq!(get(link["url"].as_str().unwrap()).status, 200);
    let events = events_when(&gw, id, |e| {
        e.iter().any(|e| e["kind"] == "download.completed")
    });
    let done = events
        .iter()
        .find(|e| e["kind"] == "download.completed")
        .unwrap();
    let wanted: BTreeSet<String> = [format!("{id}.{}", done["seq"])].into();
    receiver.wait_for(&wanted);
    // Only the subscribed kind arrives (download.started was not asked for).
    assert!(receiver
        .deliveries()
        .iter()
        .all(|d| d.kind == "download.completed"));
}

/// A receiver that takes the connection and never answers: each attempt ends at the timeout,
/// costs a delivery slot, and the recipients' downloads go on.
#[test]
fn a_receiver_that_never_answers_costs_a_slot_not_a_request() {
    let origin = origin();
    let hole = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in hole.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&format!("http://127.0.0.1:{port}/h"))
        .replace("max_attempts = 1000", "max_attempts = 1")
        + "concurrency = 1\n";
    let gw = Gateway::start_with(opts);
    let (id, url) = limited_link(&gw, 20);
    for _ in 0..5 {
        assert_eq!(get(&url).status, 200);
    }
    let ids = notifiable_ids(&gw, &id, 10);
    wait_metric(&gw, "linkgate_webhooks_given_up_total", ids.len() as u64);
    let failed = gw.admin().call("GET", "/v1/webhooks/failed", None).json();
    let listed = failed["failed"].as_array().unwrap();
    assert_eq!(listed.len(), ids.len());
    for f in listed {
        assert!(
            f["last_error"]
                .as_str()
                .unwrap()
                .contains("no answer within"),
            "{f}"
        );
    }
    assert!(!held.lock().unwrap().is_empty());
}

/// A share's links carry the share's `webhook` and `notify_sender` (shares build links with the
/// links' own code), and their webhooks name the share.
#[test]
fn a_shares_links_notify_with_the_share_named() {
    let origin = origin();
    let smtp = SmtpSink::start();
    let global = Receiver::start();
    let own = Receiver::start();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = format!("{}\n{}", smtp.config(), webhooks(&global.url()));
    let gw = Gateway::start_with(opts);
    let reply = gw.admin().call(
        "POST",
        "/v1/shares",
        Some(json!({
            "store": "docs",
            "object": "report.pdf",
            "recipients": [{"email": "jane@example.org", "name": "Jane"}],
            "subject": "The report",
            "webhook": {"url": own.url(), "secret": SECRET, "events": ["share.mailed"]},
            "notify_sender": "sender@example.org",
        })),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let share = reply.json();
    assert!(!share.to_string().contains(SECRET));
    let share_id = share["id"].as_str().unwrap().to_string();
    let links = gw
        .admin()
        .call("GET", "/v1/links?object=report.pdf", None)
        .json();
    let link = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["share"] == share_id.as_str())
        .unwrap_or_else(|| panic!("no link of the share in {links:#}"))
        .clone();
    assert_eq!(link["notify_sender"], "sender@example.org");
    assert_eq!(link["webhook"]["events"], json!(["share.mailed"]));
    let id = link["id"].as_str().unwrap();
    let mailed = events_when(&gw, id, |e| e.iter().any(|e| e["kind"] == "share.mailed"));
    let mailed = mailed.iter().find(|e| e["kind"] == "share.mailed").unwrap();
    let wanted: BTreeSet<String> = [format!("{id}.{}", mailed["seq"])].into();
    global.wait_for(&wanted);
    own.wait_for(&wanted);
    for receiver in [&global, &own] {
        let d = receiver
            .deliveries()
            .into_iter()
            .find(|d| d.kind == "share.mailed")
            .unwrap();
        assert!(d.signed);
        assert_eq!(d.body["share"], share_id.as_str());
    }
}

/// An instance that dies in the middle of a delivery leaves its entry leased; when the lease runs
/// out, another instance delivers it.
#[test]
fn another_gateway_takes_over_a_delivery_a_dead_one_left_leased() {
    let origin = origin();
    let receiver = Receiver::start();
    receiver.seen.hanging.store(true, Ordering::SeqCst);
    let redis = RedisServer::start();
    let start = || {
        let mut opts = GatewayOptions::on_redis(&origin, redis.state_with_timeout(2000));
        opts.extra =
            webhooks(&receiver.url()).replace("timeout_seconds = 1", "timeout_seconds = 2");
        Gateway::start_with(opts)
    };
    let first = start();
    let (id, url) = limited_link(&first, 5);
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&first, &id, 2);
    // The first gateway is in the middle of a delivery (the receiver holds it): it dies.
    receiver.wait_requests(1);
    drop(first.stop());
    receiver.seen.hanging.store(false, Ordering::SeqCst);
    let _second = start();
    receiver.wait_for(&ids);
}

/// A receiver that answers with a redirect gets a failed attempt: the gateway never follows it.
#[test]
fn redirects_are_failures_and_never_followed() {
    let origin = origin();
    let elsewhere = Receiver::start();
    let receiver = Receiver::start();
    *receiver.seen.redirect.lock().unwrap() = Some(elsewhere.url());
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = webhooks(&receiver.url()).replace("max_attempts = 1000", "max_attempts = 1");
    let gw = Gateway::start_with(opts);
    let (id, url) = limited_link(&gw, 5);
    assert_eq!(get(&url).status, 200);
    let ids = notifiable_ids(&gw, &id, 2);
    wait_metric(&gw, "linkgate_webhooks_given_up_total", ids.len() as u64);
    let failed = gw.admin().call("GET", "/v1/webhooks/failed", None).json();
    for f in failed["failed"].as_array().unwrap() {
        assert!(f["last_error"].as_str().unwrap().contains("302"), "{f}");
    }
    assert!(receiver.deliveries().iter().all(|d| d.status == 302));
    assert!(elsewhere.deliveries().is_empty(), "a redirect was followed");
}
