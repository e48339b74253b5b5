//! A link's status (`active`, `expired`, `exhausted`, `deactivated`, `cancelled`) reached for
//! real, filtered, and the moments it changed recorded once; documents changed or removed at the
//! origin under `on_change: refuse` and `serve_latest`, with what a holder of only the link can
//! try (ranges, conditionals, HEAD); a recipient without an address made verifiable by `PATCH`.
//! Real nginx origins and folder stores, real redis-server, a real SMTP listener.

mod common;
#[path = "common/webhook_receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const PASSWORD: &str = "correct horse";

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An expiry `secs` seconds from now (whole seconds, as the API stores them).
fn soon(secs: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn kinds(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

fn listed(gw: &Gateway, query: &str) -> Vec<String> {
    let r = gw
        .admin()
        .call("GET", &format!("/v1/links?{query}&limit=500"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

fn id_url(v: &Value) -> (String, String) {
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

/// Every status reached on one gateway, each filterable, and the expired and exhausted moments
/// recorded once.
fn every_status(gw: &Gateway) {
    let admin = gw.admin();
    let object = "st/doc.bin";
    let (active, _) = id_url(&admin.create(json!({"store": "docs", "object": object})));
    let (limited, limited_url) =
        id_url(&admin.create(json!({"store": "docs", "object": object, "max_downloads": 1})));
    let (deactivated, _) = id_url(&admin.create(json!({"store": "docs", "object": object})));
    let (cancelled, _) = id_url(&admin.create(json!({"store": "docs", "object": object})));
    let (expiring, expiring_url) =
        id_url(&admin.create(json!({"store": "docs", "object": object, "expires_at": soon(2)})));

    let v = admin.link(&active);
    assert_eq!(v["status"], "active");
    assert_eq!(
        v["status_since"], v["created_at"],
        "active since it was created"
    );

    // Exhausted: the one download, counted by bytes, delivered.
    assert_eq!(get(&limited_url).body.len(), 2000);
    let events = events_when(gw, &limited, |e| !kinds(e, "link.exhausted").is_empty());
    let exhausted = &kinds(&events, "link.exhausted")[0];
    assert_eq!(exhausted["detail"]["downloads_used"], 1);
    let v = admin.link(&limited);
    assert_eq!(
        (v["status"].as_str(), v["state"].as_str()),
        (Some("exhausted"), Some("active"))
    );
    assert_eq!(v["status_since"], exhausted["at"]);

    let r = admin.call(
        "POST",
        &format!("/v1/links/{deactivated}/deactivate?by=ops"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "deactivated");
    assert!(r.json()["status_since"].as_str().is_some());
    let r = admin.call(
        "DELETE",
        &format!("/v1/links/{cancelled}?cancelled_by=bob"),
        None,
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["cancelled_by"].as_str()),
        (Some("cancelled"), Some("bob"))
    );
    assert_eq!(v["status_since"], v["cancelled_at"]);

    // Expired: the clock passes the expiry; the first request after it notices.
    wait_until("the link expires", Duration::from_secs(20), || {
        get(&expiring_url).status == 404 && admin.link(&expiring)["status"] == "expired"
    });
    let events = events_when(gw, &expiring, |e| !kinds(e, "link.expired").is_empty());
    let expired = kinds(&events, "link.expired");
    let v = admin.link(&expiring);
    assert_eq!(
        expired[0]["at"], v["expires_at"],
        "dated at the expiry instant"
    );
    assert_eq!(v["status_since"], v["expires_at"]);

    for (status, id) in [
        ("active", &active),
        ("exhausted", &limited),
        ("deactivated", &deactivated),
        ("cancelled", &cancelled),
        ("expired", &expiring),
    ] {
        let ids = listed(gw, &format!("object={object}&status={status}"));
        assert_eq!(ids, vec![id.clone()], "?status={status}");
    }
    // The stored state still filters as before: expired and exhausted links are `active` there.
    let mut by_state = listed(gw, &format!("object={object}&state=active"));
    by_state.sort();
    let mut expected = vec![active.clone(), limited.clone(), expiring.clone()];
    expected.sort();
    assert_eq!(by_state, expected);

    let r = admin.call("GET", "/v1/links?status=used", None);
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["field"], "status");

    // A new limit is a new generation: active again, and its exhaustion is a new event.
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{limited}"),
        Some(json!({"max_downloads": 2})),
    );
    assert_eq!(r.json()["status"], "active");
    assert_eq!(get(&limited_url).status, 200);
    assert_eq!(get(&limited_url).status, 200);
    let events = events_when(gw, &limited, |e| kinds(e, "link.exhausted").len() == 2);
    // Admin reads after it never add another.
    admin.link(&limited);
    admin.link(&expiring);
    listed(gw, "status=exhausted");
    let r = admin.call("POST", &format!("/v1/links/{limited}/deactivate"), None);
    assert_eq!(r.status, 200);
    let r = admin.call("POST", &format!("/v1/links/{expiring}/deactivate"), None);
    assert_eq!(r.status, 200);
    let after = events_when(gw, &limited, |e| e.len() > events.len());
    assert_eq!(kinds(&after, "link.exhausted").len(), 2);
    let expiring_events = events_when(gw, &expiring, |e| !kinds(e, "link.deactivated").is_empty());
    assert_eq!(kinds(&expiring_events, "link.expired").len(), 1);
}

fn status_origin() -> Origin {
    let origin = Origin::start();
    origin.put("st/doc.bin", &pseudo_random(2000, 5));
    origin
}

#[test]
fn every_status_is_reached_and_filtered_on_the_embedded_store() {
    let origin = status_origin();
    let gw = Gateway::start(&origin);
    every_status(&gw);
}

#[test]
fn every_status_is_reached_and_filtered_on_redis() {
    let origin = status_origin();
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    every_status(&gw);
}

#[test]
fn expiry_is_recorded_once_across_two_instances_on_redis() {
    let origin = status_origin();
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = id_url(
        &a.admin()
            .create(json!({"store": "docs", "object": "st/doc.bin", "expires_at": soon(2)})),
    );
    wait_until("the link expires", Duration::from_secs(20), || {
        get(&a.same_link(&url)).status == 404
    });
    // Both instances notice it, by requests and by admin reads, at the same time.
    let threads: Vec<_> = [a.same_link(&url), b.same_link(&url)]
        .into_iter()
        .flat_map(|u| (0..4).map(move |_| u.clone()))
        .map(|u| std::thread::spawn(move || get(&u).status))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 404);
    }
    for gw in [&a, &b] {
        assert_eq!(gw.admin().link(&id)["status"], "expired");
        assert_eq!(listed(gw, "status=expired"), vec![id.clone()]);
    }
    // An admin action on each instance writes that instance's queued events first.
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    assert_eq!(
        b.admin()
            .call("POST", &format!("/v1/links/{id}/activate"), None)
            .status,
        200
    );
    let events = events_when(&a, &id, |e| !kinds(e, "link.activated").is_empty());
    let expired = kinds(&events, "link.expired");
    assert_eq!(expired.len(), 1, "{events:#?}");
    assert_eq!(expired[0]["at"], a.admin().link(&id)["expires_at"]);
}

#[test]
fn exhaustion_is_recorded_once_across_two_instances_on_redis() {
    let origin = status_origin();
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let (id, url) = id_url(
        &a.admin()
            .create(json!({"store": "docs", "object": "st/doc.bin", "max_downloads": 2})),
    );
    // The last two downloads, one on each instance, at once.
    let threads: Vec<_> = [a.same_link(&url), b.same_link(&url)]
        .into_iter()
        .map(|u| std::thread::spawn(move || get(&u).body.len()))
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 2000);
    }
    events_when(&a, &id, |e| kinds(e, "download.completed").len() == 2);
    for gw in [&a, &b] {
        assert_eq!(get(&gw.same_link(&url)).status, 404);
        assert_eq!(gw.admin().link(&id)["status"], "exhausted");
    }
    assert_eq!(
        a.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    assert_eq!(
        b.admin()
            .call("POST", &format!("/v1/links/{id}/activate"), None)
            .status,
        200
    );
    let events = events_when(&a, &id, |e| !kinds(e, "link.activated").is_empty());
    let exhausted = kinds(&events, "link.exhausted");
    assert_eq!(exhausted.len(), 1, "{events:#?}");
    assert_eq!(b.admin().link(&id)["status_since"], exhausted[0]["at"]);
}

#[test]
fn expiry_is_recorded_once_across_a_restart_on_the_embedded_store() {
    let origin = status_origin();
    let gw = Gateway::start(&origin);
    let (id, url) = id_url(
        &gw.admin()
            .create(json!({"store": "docs", "object": "st/doc.bin", "expires_at": soon(2)})),
    );
    wait_until("the link expires", Duration::from_secs(20), || {
        get(&url).status == 404
    });
    events_when(&gw, &id, |e| !kinds(e, "link.expired").is_empty());
    let dir = gw.stop();
    let gw = Gateway::start_with(GatewayOptions {
        db: Some(dir.path().join("linkgate.db")),
        ..GatewayOptions::for_origin(&origin)
    });
    assert_eq!(get(&gw.same_link(&url)).status, 404);
    assert_eq!(gw.admin().link(&id)["status"], "expired");
    assert_eq!(
        gw.admin()
            .call("POST", &format!("/v1/links/{id}/deactivate"), None)
            .status,
        200
    );
    let events = events_when(&gw, &id, |e| !kinds(e, "link.deactivated").is_empty());
    assert_eq!(kinds(&events, "link.expired").len(), 1, "{events:#?}");
}

/// Each gateway looks for expiries every second.
const SWEEP_EVERY_SECOND: &str = "[audit]\nexpiry_sweep_seconds = 1\n";

#[test]
fn an_expiry_nobody_looks_at_is_recorded_and_sent_once_by_two_instances_on_redis() {
    let origin = status_origin();
    let redis = RedisServer::start();
    let hooks = receiver::Receiver::start();
    let start = || {
        let mut opts = GatewayOptions::on_redis(&origin, redis.state());
        opts.extra = format!(
            "{SWEEP_EVERY_SECOND}[webhooks]\nurl = \"{}\"\nsecret = \"{}\"\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\n",
            hooks.url(),
            receiver::SECRET
        );
        Gateway::start_with(opts)
    };
    let (a, b) = (start(), start());
    let created = a
        .admin()
        .create(json!({"store": "docs", "object": "st/doc.bin", "expires_at": soon(2)}));
    let (id, _url) = id_url(&created);
    // Nobody requests the link or reads its status: the sweepers notice it.
    let events = events_when(&b, &id, |e| !kinds(e, "link.expired").is_empty());
    let expired = kinds(&events, "link.expired");
    assert_eq!(expired[0]["at"], created["expires_at"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent = loop {
        let sent: Vec<_> = hooks
            .deliveries()
            .into_iter()
            .filter(|d| d.kind == "link.expired" && d.status == 204)
            .collect();
        if !sent.is_empty() {
            break sent;
        }
        assert!(Instant::now() < deadline, "no link.expired webhook");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(sent[0].signed);
    assert_eq!(sent[0].body["link"], id.as_str());
    assert_eq!(sent[0].body["at"], created["expires_at"]);
    // Reactivating puts the link back in the index; both sweepers see it again, neither records
    // it twice. An admin action on each instance writes that instance's queued events first.
    for (gw, action) in [(&a, "deactivate"), (&b, "activate")] {
        let r = gw
            .admin()
            .call("POST", &format!("/v1/links/{id}/{action}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let events = events_when(&a, &id, |e| !kinds(e, "link.activated").is_empty());
    assert_eq!(kinds(&events, "link.expired").len(), 1, "{events:#?}");
    wait_until(
        "the reactivated link was swept again",
        Duration::from_secs(30),
        || redis.cli(&["ZCARD", "lg:expiry"]).trim() == "0",
    );
    for (gw, action) in [(&a, "deactivate"), (&b, "activate")] {
        let r = gw
            .admin()
            .call("POST", &format!("/v1/links/{id}/{action}"), None);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let events = events_when(&a, &id, |e| kinds(e, "link.activated").len() == 2);
    assert_eq!(kinds(&events, "link.expired").len(), 1, "{events:#?}");
    let ids: std::collections::BTreeSet<String> = hooks
        .deliveries()
        .into_iter()
        .filter(|d| d.kind == "link.expired")
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 1, "one event, one webhook id: {ids:?}");
}

/// An expiry brought forward by `PATCH` (the index learns the new moment) and one pushed back
/// (the sweeper, finding the link not yet expired, waits for the new moment), each recorded at
/// the new moment only, nobody looking.
fn expiry_moved_by_patch(state: Option<String>) {
    let origin = status_origin();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = SWEEP_EVERY_SECOND.to_string();
    opts.state = state;
    let gw = Gateway::start_with(opts);
    for (first, later) in [(3600, 3), (3, 6)] {
        expiry_moved(&gw, soon(first), soon(later));
    }
}

fn expiry_moved(gw: &Gateway, first: String, later: String) {
    let (id, _) = id_url(
        &gw.admin()
            .create(json!({"store": "docs", "object": "st/doc.bin", "expires_at": first})),
    );
    let patched = gw.admin().call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"expires_at": later})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let events = events_when(gw, &id, |e| !kinds(e, "link.expired").is_empty());
    let expired = kinds(&events, "link.expired");
    assert_eq!(expired.len(), 1, "{events:#?}");
    assert_eq!(expired[0]["at"], later.as_str());
    assert_eq!(
        expired[0]["detail"]["generation"],
        patched.json()["generation"]
    );
}

#[test]
fn an_expiry_moved_by_patch_is_recorded_at_the_new_moment_only() {
    expiry_moved_by_patch(None);
}

#[test]
fn an_expiry_moved_by_patch_is_recorded_at_the_new_moment_only_on_redis() {
    let redis = RedisServer::start();
    expiry_moved_by_patch(Some(redis.state()));
}

// ---------------------------------------------------------------- versions

const V1: usize = 3000;
const V2: usize = 4500;

fn versioned() -> (Origin, Gateway) {
    let origin = Origin::start();
    origin.put("v/doc.bin", &pseudo_random(V1, 1));
    let gw = Gateway::start(&origin);
    (origin, gw)
}

fn with_password<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("x-link-password", PASSWORD)];
    h.extend_from_slice(extra);
    h
}

#[test]
fn a_refusing_link_never_serves_a_changed_document_and_says_so_only_after_the_password() {
    let (origin, gw) = versioned();
    let admin = gw.admin();
    let v = admin.create(
        json!({"store": "docs", "object": "v/doc.bin", "password": PASSWORD,
        "max_downloads": 2, "on_change": "refuse"}),
    );
    let (id, url) = id_url(&v);
    assert_eq!(v["on_change"], "refuse");
    let etag = v["documents"][0]["etag"].as_str().unwrap().to_string();
    assert!(etag.starts_with('"'), "the origin's ETag is recorded: {v}");
    assert!(v["documents"][0]["last_modified"].as_str().is_some());

    // Before any change, a crafted request uses nothing: a 304 for the recorded version, a HEAD;
    // and the client's own If-Match (replaced by the gateway's) still gets the recorded version.
    let not_modified = request(
        "GET",
        &url,
        &with_password(&[("if-none-match", &etag)]),
        None,
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(request("HEAD", &url, &with_password(&[]), None).status, 200);
    let theirs = request(
        "GET",
        &url,
        &with_password(&[("if-match", "\"other\""), ("range", "bytes=0-9")]),
        None,
    );
    assert_eq!(
        (theirs.status, theirs.body.as_slice()),
        (206, &pseudo_random(V1, 1)[..10])
    );
    events_when(&gw, &id, |e| !kinds(e, "download.completed").is_empty());
    assert_eq!(
        admin.link(&id)["downloads_used"],
        1,
        "the 206 counted one download, the rest none"
    );

    let before_no_pw = request("GET", &url, &[], None);
    let before_wrong = request("GET", &url, &[("x-link-password", "wrong one")], None);
    let first = request("GET", &url, &with_password(&[]), None);
    assert_eq!(
        first.body,
        pseudo_random(V1, 1),
        "the recorded version is served"
    );
    assert_eq!(
        admin.link(&id)["downloads_used"],
        1,
        "the whole copy rides on the 206's download"
    );

    origin.put("v/doc.bin", &pseudo_random(V2, 2));

    // Before the password: exactly what an unchanged link answers.
    for (before, headers) in [
        (&before_no_pw, vec![]),
        (&before_wrong, vec![("x-link-password", "wrong one")]),
    ] {
        let now = request("GET", &url, &headers, None);
        assert_eq!((now.status, &now.body), (before.status, &before.body));
        let head = request("HEAD", &url, &headers, None);
        assert_eq!(head.status, before.status);
    }
    // And a token that names nothing is the uniform 404 as ever.
    assert_eq!(get(&gw.url("/s/AAAA")).status, 404);

    // After it: the page, whatever the request asks.
    let new_tag = request("HEAD", &format!("{}v/doc.bin", origin.url()), &[], None)
        .header("etag")
        .unwrap()
        .to_string();
    assert_ne!(new_tag, etag);
    let tries: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("range", "bytes=0-9")],
        vec![("range", "bytes=100-")],
        vec![("if-none-match", &etag)],
        vec![("if-none-match", &new_tag)],
        vec![("if-range", &etag), ("range", "bytes=0-9")],
        vec![("if-range", &new_tag), ("range", "bytes=0-9")],
        vec![("if-match", &new_tag)],
        vec![("if-match", "*")],
        vec![("if-unmodified-since", "Fri, 01 Jan 2100 00:00:00 GMT")],
        vec![("range", "bytes=0-9,20-29")],
    ];
    for extra in &tries {
        let mut headers = vec![("x-link-password", PASSWORD)];
        headers.extend(extra.iter().copied());
        let r = request("GET", &url, &headers, None);
        assert_eq!(r.status, 410, "{extra:?}: {}", r.text());
        assert!(r.text().contains("changed or removed"), "{extra:?}");
        let new_start = &pseudo_random(V2, 2)[..64];
        assert!(
            !r.body.windows(64).any(|w| w == new_start),
            "{extra:?}: none of the new version"
        );
        let head = request("HEAD", &url, &headers, None);
        assert_eq!(head.status, 410, "HEAD {extra:?}");
    }
    let events = events_when(&gw, &id, |e| {
        kinds(e, "document.changed").len() >= 2 * tries.len()
    });
    let changed = kinds(&events, "document.changed");
    assert!(changed.iter().all(|e| e["outcome"] == "refused"));
    assert_eq!(changed[0]["detail"]["recorded_etag"], etag.as_str());
    assert_eq!(
        admin.link(&id)["downloads_used"],
        1,
        "refused answers use no download"
    );
    assert_eq!(kinds(&events, "download.completed").len(), 2);
}

#[test]
fn a_serve_latest_link_serves_the_new_version_and_records_it_once() {
    let (origin, gw) = versioned();
    let admin = gw.admin();
    let v = admin.create(json!({"store": "docs", "object": "v/doc.bin", "max_downloads": 5}));
    let (id, url) = id_url(&v);
    assert_eq!(v["on_change"], "serve_latest");
    let etag = v["documents"][0]["etag"].as_str().unwrap().to_string();
    assert_eq!(get(&url).body, pseudo_random(V1, 1));
    origin.put("v/doc.bin", &pseudo_random(V2, 2));
    assert_eq!(get(&url).body, pseudo_random(V2, 2));
    // A resume of the old version gets the whole new one (If-Range no longer matches).
    let r = request(
        "GET",
        &url,
        &[("range", "bytes=100-"), ("if-range", &etag)],
        None,
    );
    assert_eq!((r.status, r.body.len()), (200, V2));
    let r = request("GET", &url, &[("range", "bytes=0-9")], None);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (206, &pseudo_random(V2, 2)[..10])
    );
    let events = events_when(&gw, &id, |e| {
        !kinds(e, "document.changed").is_empty() && kinds(e, "download.completed").len() == 4
    });
    let changed = kinds(&events, "document.changed");
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0]["outcome"], "ok");
    assert_eq!(changed[0]["detail"]["recorded_etag"], etag.as_str());
}

#[test]
fn a_removed_document_gets_the_page_after_the_password_and_uses_nothing() {
    let (origin, gw) = versioned();
    let admin = gw.admin();
    let (id, url) = id_url(&admin.create(json!({"store": "docs", "object": "v/doc.bin",
        "password": PASSWORD, "max_downloads": 1})));
    let before = request("GET", &url, &[], None);
    std::fs::remove_file(origin.root.join("v/doc.bin")).unwrap();
    let now = request("GET", &url, &[], None);
    assert_eq!((now.status, &now.body), (before.status, &before.body));
    let r = request("GET", &url, &with_password(&[]), None);
    assert_eq!(r.status, 410);
    assert!(r.text().contains("changed or removed"));
    let r = request("GET", &url, &with_password(&[("range", "bytes=5-")]), None);
    assert_eq!(r.status, 410);
    let events = events_when(&gw, &id, |e| kinds(e, "document.missing").len() == 2);
    assert!(kinds(&events, "document.changed").is_empty());
    assert_eq!(admin.link(&id)["downloads_used"], 0);
    assert_eq!(admin.link(&id)["status"], "active");
    // Whoever holds the link and its password can ask again and again: every time is an event,
    // but the operator's warnings get one line a minute.
    for _ in 0..10 {
        assert_eq!(request("GET", &url, &with_password(&[]), None).status, 410);
    }
    events_when(&gw, &id, |e| kinds(e, "document.missing").len() == 12);
    let log = gw.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("document changed or removed"))
        .count();
    assert_eq!(warnings, 1, "{log}");
}

#[test]
fn a_folder_store_refuses_a_changed_file_and_reports_a_removed_one() {
    let origin = Origin::start();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.bin"), pseudo_random(V1, 1)).unwrap();
    std::fs::write(root.path().join("b.bin"), pseudo_random(V1, 3)).unwrap();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[stores.files]\nkind = \"dir\"\nroot = \"{}\"\n",
            root.path().display()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let v = admin.create(
        json!({"store": "files", "object": "a.bin", "on_change": "refuse", "max_downloads": 3}),
    );
    let (a, a_url) = id_url(&v);
    assert!(v["documents"][0]["etag"].as_str().is_some());
    let (b, b_url) = id_url(&admin.create(json!({"store": "files", "object": "b.bin"})));
    assert_eq!(get(&a_url).body, pseudo_random(V1, 1));
    std::fs::write(root.path().join("a.bin"), pseudo_random(V2, 2)).unwrap();
    for headers in [
        vec![],
        vec![("range", "bytes=0-9")],
        vec![("if-match", "*")],
    ] {
        let r = request("GET", &a_url, &headers, None);
        assert_eq!(r.status, 410, "{headers:?}");
    }
    std::fs::remove_file(root.path().join("b.bin")).unwrap();
    assert_eq!(get(&b_url).status, 410);
    events_when(&gw, &a, |e| kinds(e, "document.changed").len() == 3);
    events_when(&gw, &b, |e| kinds(e, "document.missing").len() == 1);
    assert_eq!(admin.link(&a)["downloads_used"], 1);
}

#[test]
fn on_change_is_validated_and_changed_by_patch() {
    let (_origin, gw) = versioned();
    let admin = gw.admin();
    let r = admin.call(
        "POST",
        "/v1/links",
        Some(json!({"store": "docs", "object": "v/doc.bin", "on_change": "latest"})),
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("on_change"))
    );
    let (id, _) = admin.share("v/doc.bin", None);
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"on_change": "refuse"})),
    );
    assert_eq!(
        (r.status, r.json()["on_change"].as_str()),
        (200, Some("refuse"))
    );
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"on_change": 1})),
    );
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (422, Some("on_change"))
    );
}

// ---------------------------------------------------------------- contacts

#[test]
fn a_recipient_without_an_address_becomes_verifiable_when_one_is_added() {
    let origin = Origin::start();
    origin.put("c.pdf", &pseudo_random(5000, 9));
    let smtp = SmtpSink::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: smtp.config(),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let (id, url) = id_url(&admin.create(
        json!({"store": "docs", "object": "c.pdf", "filename": "C.pdf",
        "recipient": {"email": null}, "rights": ["view", "download"]}),
    ));
    let mut jar = Jar::default();
    assert!(jar.page(&url).text().contains(">View<"));
    let file = jar.page(&format!("{url}?download"));
    assert_eq!(
        file.header("content-type"),
        Some("text/html; charset=utf-8"),
        "without an address: view only, in the gateway's viewer"
    );
    assert_eq!(file.header("content-disposition"), None);
    for bad in [json!({"email": "nope"}), json!({}), json!(null)] {
        let r = admin.call(
            "PATCH",
            &format!("/v1/links/{id}"),
            Some(json!({ "recipient": bad })),
        );
        assert_eq!(r.status, 422, "{bad}");
        assert!(r.json()["field"].as_str().unwrap().starts_with("recipient"));
    }
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"recipient": {"email": "jane@example.org"}, "changed_by": "alice"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["recipient"]["email"], "jane@example.org");
    assert_eq!(
        r.json()["recipient"]["require_code"],
        true,
        "the link was out as view-only: every browser verifies"
    );

    // The browser that held it view-only now gets the code flow, and downloads once verified.
    let page = jar.page(&url);
    assert!(page.text().contains("Send me a code"), "{}", page.text());
    let sent = jar.post(
        &url,
        &[("action", "send_code"), ("csrf", &csrf_of(&page.text()))],
    );
    assert_eq!(sent.status, 303);
    let code = smtp.code(1);
    assert!(smtp.messages()[0].contains("jane@example.org"));
    let page = jar.page(&url);
    let r = jar.post(
        &url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&page.text())),
            ("code", &code),
        ],
    );
    assert_eq!(r.status, 303);
    assert!(jar.page(&url).text().contains("id=\"download\""));
    let file = jar.page(&format!("{url}?download"));
    assert_eq!(file.status, 200);
    assert_eq!(
        file.header("content-disposition"),
        Some("attachment; filename=\"C.pdf\"")
    );
    assert_eq!(file.body, pseudo_random(5000, 9));
    // Another browser still needs its own code.
    let mut other = Jar::default();
    assert!(other.page(&url).text().contains("Send me a code"));
    let events = events_when(&gw, &id, |e| !kinds(e, "code.passed").is_empty());
    let changed = kinds(&events, "link.changed");
    assert!(changed
        .iter()
        .any(|e| e["detail"]["fields"] == json!(["recipient"]) && e["actor"] == "alice"));
}

#[path = "common/s3.rs"]
mod s3;

#[test]
fn an_s3_store_reports_versions_and_a_changed_object_is_refused() {
    let origin = Origin::start();
    let s3 = s3::S3Server::start();
    s3.put("s/doc.bin", &pseudo_random(V1, 1));
    s3.put("s/gone.bin", &pseudo_random(V1, 3));
    let gw = Gateway::start_with(GatewayOptions {
        extra: s3.store("bucket", s3::S3_SECRET),
        ..GatewayOptions::for_origin(&origin)
    });
    let admin = gw.admin();
    let v = admin.create(json!({"store": "bucket", "object": "s/doc.bin", "on_change": "refuse", "max_downloads": 3}));
    let (id, url) = id_url(&v);
    assert!(v["documents"][0]["etag"].as_str().is_some(), "{v}");
    assert!(v["documents"][0]["last_modified"].as_str().is_some(), "{v}");
    let (latest, latest_url) =
        id_url(&admin.create(json!({"store": "bucket", "object": "s/doc.bin"})));
    let (gone, gone_url) =
        id_url(&admin.create(json!({"store": "bucket", "object": "s/gone.bin"})));
    assert_eq!(get(&url).body, pseudo_random(V1, 1));
    s3.put("s/doc.bin", &pseudo_random(V2, 2));
    for headers in [vec![], vec![("range", "bytes=0-9")]] {
        let r = request("GET", &url, &headers, None);
        assert_eq!(r.status, 410, "{headers:?}");
    }
    assert_eq!(get(&latest_url).body, pseudo_random(V2, 2));
    std::fs::remove_file(s3.root.path().join("docs/s/gone.bin")).unwrap();
    assert_eq!(get(&gone_url).status, 410);
    events_when(&gw, &id, |e| kinds(e, "document.changed").len() == 2);
    events_when(&gw, &latest, |e| kinds(e, "document.changed").len() == 1);
    events_when(&gw, &gone, |e| kinds(e, "document.missing").len() == 1);
    assert_eq!(admin.link(&id)["downloads_used"], 1);
}

// ---------------------------------------------------------------- CLI

fn cli(gw: &Gateway, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(bin())
        .args(["link", "--config"])
        .arg(&gw.config_path)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

fn cli_json(gw: &Gateway, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(gw, &all).0).unwrap()
}

#[test]
fn the_cli_sets_every_link_field_and_prints_tables() {
    let origin = Origin::start();
    origin.put("cli/a.pdf", &pseudo_random(1200, 1));
    origin.put("cli/a-low.pdf", b"low");
    origin.put("cli/b.pdf", &pseudo_random(800, 2));
    let gw = Gateway::start(&origin);
    let dir = tempfile::tempdir().unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\nignored\n")).unwrap();

    // A password link with a rendition, refusing changes, created by a named sender.
    let (out, err) = cli(
        &gw,
        &[
            "create",
            "--store",
            "docs",
            "--object",
            "cli/a.pdf",
            "--filename",
            "A.pdf",
            "--rendition",
            "low=cli/a-low.pdf=A low.pdf",
            "--rights",
            "download,download:low",
            "--password-file",
            pw_file.to_str().unwrap(),
            "--max-downloads",
            "2",
            "--expires-at",
            &soon(3600),
            "--on-change",
            "refuse",
            "--created-by",
            "alice",
        ],
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .map(|v| v.trim().to_string())
        .unwrap();
    assert!(err.contains("link: http"), "{err}");
    for shown in [
        "status      active since",
        "password    yes",
        "on change   refuse",
        "renditions low",
        "downloads   0/2",
    ] {
        assert!(out.contains(shown), "{shown:?} in\n{out}");
    }
    let v = gw.admin().link(&id);
    assert_eq!(
        v["documents"][0]["renditions"]["low"]["filename"],
        "A low.pdf"
    );
    assert_eq!(
        (v["type"].as_str(), v["on_change"].as_str()),
        (Some("password"), Some("refuse"))
    );
    let url = v["url"].as_str().unwrap();
    assert_eq!(
        request("GET", url, &with_password(&[]), None).body,
        pseudo_random(1200, 1)
    );

    // Several documents, a recipient with an address, uploads.
    let guest = cli_json(
        &gw,
        &[
            "create",
            "--store",
            "docs",
            "--document",
            "cli/a.pdf=First.pdf",
            "--document",
            "cli/b.pdf",
            "--email",
            "jane@example.org",
            "--require-code",
            "--rights",
            "download,upload",
            "--upload-folder",
            "inbox/cli",
            "--upload-max-files",
            "3",
            "--upload-types",
            "application/pdf,image/*",
            "--created-by",
            "bob",
        ],
    );
    assert_eq!(guest["documents"].as_array().unwrap().len(), 2);
    assert_eq!(guest["documents"][0]["filename"], "First.pdf");
    assert_eq!(
        guest["recipient"],
        json!({"email": "jane@example.org", "require_code": true})
    );
    assert_eq!(guest["upload"]["max_files"], 3);
    assert_eq!(
        guest["upload"]["allowed_types"],
        json!(["application/pdf", "image/*"])
    );
    let guest_id = guest["id"].as_str().unwrap();

    // A recipient without an address, given one later.
    let viewer = cli_json(
        &gw,
        &[
            "create",
            "--store",
            "docs",
            "--object",
            "cli/b.pdf",
            "--recipient-without-email",
            "--rights",
            "view,download",
        ],
    );
    let viewer_id = viewer["id"].as_str().unwrap();
    assert_eq!(viewer["recipient"]["email"], Value::Null);
    let updated = cli_json(
        &gw,
        &[
            "update",
            viewer_id,
            "--email",
            "sam@example.org",
            "--on-change",
            "refuse",
            "--changed-by",
            "carol",
        ],
    );
    assert_eq!(
        updated["recipient"],
        json!({"email": "sam@example.org", "require_code": true})
    );
    assert_eq!(updated["on_change"], "refuse");
    let updated = cli_json(
        &gw,
        &[
            "update",
            &id,
            "--remove-password",
            "--max-downloads",
            "none",
        ],
    );
    assert_eq!(
        (
            updated["has_password"].as_bool(),
            updated["max_downloads"].as_u64()
        ),
        (Some(false), None)
    );
    let updated = cli_json(&gw, &["update", &id, "--password", "another horse"]);
    assert_eq!(updated["has_password"], true);

    // Who cancels and deactivates is recorded.
    let (out, _) = cli(&gw, &["deactivate", guest_id, "--by", "ops"]);
    assert!(out.contains("deactivated"), "{out}");
    let cancelled = cli_json(&gw, &["cancel", viewer_id, "--by", "dana"]);
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["cancelled_by"].as_str()
        ),
        (Some("cancelled"), Some("dana"))
    );
    let events = events_when(&gw, guest_id, |e| !kinds(e, "link.deactivated").is_empty());
    assert_eq!(kinds(&events, "link.deactivated")[0]["actor"], "ops");
    let events = events_when(&gw, viewer_id, |e| !kinds(e, "link.cancelled").is_empty());
    assert_eq!(kinds(&events, "link.cancelled")[0]["actor"], "dana");

    // The list is a table: id, type, status, downloads, expires, created by.
    let (table, _) = cli(&gw, &["list", "--store", "docs"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID")
            && lines[0].contains("STATUS")
            && lines[0].contains("CREATED BY"),
        "{table}"
    );
    let row_of = |id: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(id))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap()
    };
    // (the password change started a new generation: its counter is at zero, with no limit)
    assert_eq!(row_of(&id)[1..4], ["password", "active", "0"]);
    assert_eq!(row_of(guest_id)[1..3], ["guest", "deactivated"]);
    assert_eq!(*row_of(guest_id).last().unwrap(), "bob");
    assert_eq!(row_of(viewer_id)[2], "cancelled");
    let (only, _) = cli(&gw, &["list", "--status", "cancelled"]);
    assert_eq!(only.lines().count(), 2, "{only}");
    let (events, _) = cli(&gw, &["events", guest_id]);
    assert!(
        events.lines().next().unwrap().starts_with("SEQ"),
        "{events}"
    );
    assert!(
        events.contains("link.deactivated") && events.contains("ops"),
        "{events}"
    );

    // A bad field is named, and nothing is printed on standard output.
    let bad = std::process::Command::new(bin())
        .args(["link", "--config"])
        .arg(&gw.config_path)
        .args([
            "create",
            "--store",
            "docs",
            "--object",
            "cli/a.pdf",
            "--on-change",
            "sometimes",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(msg.contains("422") && msg.contains("on_change"), "{msg}");
    assert!(bad.stdout.is_empty());
}
