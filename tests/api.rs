//! The admin API as a system that builds on it meets it (issue 23): RFC 9457 problem details and
//! `Allow` on every 405, `ETag`/`If-Match` against lost updates, `Idempotency-Key` on creates (on
//! one gateway and on two sharing one Redis), bulk actions by object, share and creator, and
//! cursors that stay correct while links are being created.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{json, Value};

const PROBLEMS: &str = "https://linkgate.dev/problems/";

fn auth() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

/// A call with extra headers (the body as JSON).
fn call(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let a = auth();
    let mut all = vec![
        ("authorization", a.as_str()),
        ("content-type", "application/json"),
    ];
    all.extend_from_slice(headers);
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    request(
        method,
        &format!("{}{}", gw.admin().base, path),
        &all,
        bytes.as_deref(),
    )
}

fn expect_problem(reply: &Reply, status: u16, kind: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{}",
        reply.text()
    );
    let p = reply.json();
    assert_eq!(p["type"], format!("{PROBLEMS}{kind}"), "{p}");
    assert_eq!(p["status"], status, "{p}");
    assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    p
}

#[test]
fn every_error_is_a_problem_and_every_405_names_what_is_allowed() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let base = gw.admin().base;
    let id = gw.admin().share("a.txt", None).0;

    // Unknown and unserved methods, with and without a token, on every admin path.
    let paths = [
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/v1/openapi.json", "GET"),
        ("/v1/links", "GET, POST"),
        ("/v1/links/bulk", "POST"),
        (&format!("/v1/links/{id}") as &str, "GET, PATCH, DELETE"),
        (&format!("/v1/links/{id}/events"), "GET"),
        (&format!("/v1/links/{id}/deactivate"), "POST"),
        ("/v1/shares", "GET, POST"),
        ("/v1/webhooks/failed", "GET"),
    ];
    for (path, allow) in paths {
        for method in ["TRACE", "PUT", "OPTIONS", "FROBNICATE"] {
            let reply = request(method, &format!("{base}{path}"), &[], None);
            expect_problem(&reply, 405, "method-not-allowed");
            assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        }
    }
    // TRACE by hand too (no client library in between): 405 with Allow, never an echo.
    let raw_trace = raw(
        gw.admin_port,
        b"TRACE /healthz HTTP/1.1\r\nHost: x\r\nX-Secret: echo-me\r\nConnection: close\r\n\r\n",
    );
    assert!(raw_trace.starts_with("HTTP/1.1 405"), "{raw_trace}");
    assert!(
        raw_trace.to_ascii_lowercase().contains("allow: get\r\n"),
        "{raw_trace}"
    );
    assert!(!raw_trace.contains("echo-me"), "{raw_trace}");

    // 401, 404, 400, 413, 422: each its type; a 422 names its field.
    expect_problem(
        &request("GET", &format!("{base}/v1/links"), &[], None),
        401,
        "unauthorized",
    );
    expect_problem(
        &call(&gw, "GET", "/v1/links/nope", &[], None),
        404,
        "not-found",
    );
    expect_problem(
        &call(&gw, "GET", "/v1/nothing", &[], None),
        404,
        "not-found",
    );
    let a = auth();
    let bad = request(
        "POST",
        &format!("{base}/v1/links"),
        &[("authorization", &a)],
        Some(b"{not json"),
    );
    expect_problem(&bad, 400, "malformed-request");
    let p = expect_problem(
        &call(
            &gw,
            "POST",
            "/v1/links",
            &[],
            Some(&json!({"store": "nope", "object": "a"})),
        ),
        422,
        "invalid-field",
    );
    assert_eq!(p["field"], "store");
    assert_eq!(p["instance"], "/v1/links");
    let p = expect_problem(
        &call(&gw, "GET", "/v1/links?limit=0", &[], None),
        422,
        "invalid-field",
    );
    assert_eq!(p["field"], "limit");
    // A cancelled link refuses activation: a state conflict.
    assert_eq!(
        call(&gw, "DELETE", &format!("/v1/links/{id}"), &[], None).status,
        200
    );
    expect_problem(
        &call(&gw, "POST", &format!("/v1/links/{id}/activate"), &[], None),
        409,
        "conflict",
    );
    // The served document is JSON and names the configured stores.
    let doc = get(&format!("{base}/v1/openapi.json"));
    assert_eq!(doc.status, 200);
    assert!(doc.json()["openapi"].is_string());
}

#[test]
fn if_match_refuses_a_stale_edit_and_one_of_two_racing_editors_wins() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let created = call(
        &gw,
        "POST",
        "/v1/links",
        &[],
        Some(&json!({"store": "docs", "object": "a.txt"})),
    );
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let etag = created.header("etag").expect("ETag on create").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag: {etag}"
    );
    assert_eq!(created.json()["etag"], etag.as_str());
    let read = call(&gw, "GET", &format!("/v1/links/{id}"), &[], None);
    assert_eq!(
        read.header("etag"),
        Some(etag.as_str()),
        "unchanged record, same tag"
    );
    // The listing shows each link's tag too, so an editor can start from a list.
    let list = call(&gw, "GET", "/v1/links", &[], None).json();
    assert_eq!(list["links"][0]["etag"], etag.as_str());

    // Two editors read the same version and change it at once: exactly one wins.
    let path = format!("/v1/links/{id}");
    let results: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let (gw, path, etag) = (&gw, &path, &etag);
                s.spawn(move || {
                    call(
                        gw,
                        "PATCH",
                        path,
                        &[("if-match", etag)],
                        Some(&json!({"max_downloads": 3 + i})),
                    )
                    .status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(sorted, vec![200, 412], "{results:?}");
    let now = call(&gw, "GET", &path, &[], None);
    let fresh = now.header("etag").unwrap().to_string();
    assert_ne!(fresh, etag);
    // The loser's retry with the old tag is still refused, and names If-Match.
    let stale = call(
        &gw,
        "PATCH",
        &path,
        &[("if-match", &etag)],
        Some(&json!({"max_downloads": 9})),
    );
    let p = expect_problem(&stale, 412, "precondition-failed");
    assert_eq!(p["field"], "If-Match");
    // A weak tag never matches (strong comparison); a list with the current tag does.
    let weak = format!("W/{fresh}");
    assert_eq!(
        call(
            &gw,
            "PATCH",
            &path,
            &[("if-match", &weak)],
            Some(&json!({"filename": "x.txt"}))
        )
        .status,
        412
    );
    let listed = format!("\"nope\", {fresh}");
    let ok = call(
        &gw,
        "PATCH",
        &path,
        &[("if-match", &listed)],
        Some(&json!({"filename": "x.txt"})),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let after_patch = ok.header("etag").unwrap().to_string();
    // DELETE: a stale tag changes nothing, `*` matches any version.
    assert_eq!(
        call(&gw, "DELETE", &path, &[("if-match", &fresh)], None).status,
        412
    );
    assert_eq!(gw.admin().link(&id)["state"], "active");
    assert_eq!(
        call(
            &gw,
            "POST",
            &format!("{path}/deactivate"),
            &[("if-match", &fresh)],
            None
        )
        .status,
        412
    );
    let gone = call(&gw, "DELETE", &path, &[("if-match", "*")], None);
    assert_eq!(gone.status, 200);
    assert_ne!(gone.header("etag"), Some(after_patch.as_str()));
    assert_eq!(gw.admin().link(&id)["state"], "cancelled");
}

#[test]
fn a_share_has_an_etag_and_a_stale_cancel_changes_nothing() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let smtp = SmtpSink::start();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = smtp.config();
    let gw = Gateway::start_with(opts);
    let body =
        json!({"store": "docs", "object": "a.txt", "recipients": [{"email": "jane@example.org"}]});
    let created = call(&gw, "POST", "/v1/shares", &[], Some(&body));
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("/v1/shares/{id}");
    let read = call(&gw, "GET", &path, &[], None);
    let etag = read.header("etag").expect("ETag on a share").to_string();
    assert_eq!(read.json()["etag"], etag.as_str());
    let stale = call(&gw, "DELETE", &path, &[("if-match", "\"0000\"")], None);
    expect_problem(&stale, 412, "precondition-failed");
    assert!(call(&gw, "GET", &path, &[], None).json()["cancelled_at"].is_null());
    let cancel = call(&gw, "DELETE", &path, &[("if-match", &etag)], None);
    assert_eq!(cancel.status, 200, "{}", cancel.text());
}

fn idempotent_create(gw: &Gateway, key: &str, body: &Value) -> Reply {
    call(
        gw,
        "POST",
        "/v1/links",
        &[("idempotency-key", key)],
        Some(body),
    )
}

#[test]
fn a_retried_create_with_the_same_key_answers_the_first_result() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let body = json!({"store": "docs", "object": "a.txt", "created_by": "idem"});
    let first = idempotent_create(&gw, "order-42", &body);
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.header("idempotency-replayed"), None);
    let again = idempotent_create(&gw, "order-42", &body);
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.json(), first.json(), "the first answer, as it was");
    assert_eq!(again.header("etag"), first.header("etag"));
    // Another body under the same key is refused; another key makes another link.
    let other =
        json!({"store": "docs", "object": "a.txt", "created_by": "idem", "max_downloads": 2});
    let p = expect_problem(
        &idempotent_create(&gw, "order-42", &other),
        422,
        "idempotency-key-reused",
    );
    assert_eq!(p["field"], "Idempotency-Key");
    let second = idempotent_create(&gw, "order-43", &body);
    assert_eq!(second.status, 201);
    assert_ne!(second.json()["id"], first.json()["id"]);
    let listed = call(&gw, "GET", "/v1/links?created_by=idem", &[], None).json();
    assert_eq!(listed["links"].as_array().unwrap().len(), 2, "{listed}");
    // A refused create releases its key: the corrected request may use it.
    let wrong = json!({"store": "nope", "object": "a.txt", "created_by": "idem"});
    expect_problem(
        &idempotent_create(&gw, "order-44", &wrong),
        422,
        "invalid-field",
    );
    assert_eq!(idempotent_create(&gw, "order-44", &body).status, 201);
    // A bad key is named.
    let p = expect_problem(&idempotent_create(&gw, "a b", &body), 422, "invalid-field");
    assert_eq!(p["field"], "Idempotency-Key");
    let long = "k".repeat(256);
    expect_problem(&idempotent_create(&gw, &long, &body), 422, "invalid-field");
}

#[test]
fn an_idempotency_key_outlives_a_restart_of_the_embedded_gateway() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let keep = tempfile::tempdir().unwrap();
    let db = keep.path().join("linkgate.db");
    let opts = || {
        let mut o = GatewayOptions::for_origin(&origin);
        o.db = Some(db.clone());
        o
    };
    let body = json!({"store": "docs", "object": "a.txt"});
    let gw = Gateway::start_with(opts());
    let first = idempotent_create(&gw, "before-restart", &body);
    assert_eq!(first.status, 201, "{}", first.text());
    drop(gw.stop());
    let gw = Gateway::start_with(opts());
    let again = idempotent_create(&gw, "before-restart", &body);
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"]);
}

#[test]
fn two_gateways_on_one_redis_racing_one_key_create_one_link() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let redis = RedisServer::start();
    let a = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let b = Gateway::start_with(GatewayOptions::on_redis(&origin, redis.state()));
    let body = json!({"store": "docs", "object": "a.txt", "created_by": "racer"});
    for round in 0..3 {
        let key = format!("race-{round}");
        let replies: Vec<Reply> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (gw, key, body) = (if i % 2 == 0 { &a } else { &b }, &key, &body);
                    s.spawn(move || idempotent_create(gw, key, body))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut ids = HashSet::new();
        for r in &replies {
            match r.status {
                201 => {
                    ids.insert(r.json()["id"].as_str().unwrap().to_string());
                }
                409 => {
                    expect_problem(r, 409, "idempotency-in-progress");
                    assert!(r.header("retry-after").is_some());
                }
                other => panic!("{other}: {}", r.text()),
            }
        }
        assert!(ids.len() <= 1, "{ids:?}");
        // Once the first is done, every retry on either gateway gets its answer.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let settled = loop {
            let r = idempotent_create(&b, &key, &body);
            if r.status == 201 {
                break r;
            }
            assert!(std::time::Instant::now() < deadline, "{}", r.text());
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        if let Some(id) = ids.iter().next() {
            assert_eq!(settled.json()["id"], id.as_str());
        }
    }
    let listed = call(&a, "GET", "/v1/links?created_by=racer", &[], None).json();
    assert_eq!(
        listed["links"].as_array().unwrap().len(),
        3,
        "one per key: {listed}"
    );
}

fn kinds(gw: &Gateway, id: &str) -> Vec<String> {
    call(gw, "GET", &format!("/v1/links/{id}/events"), &[], None).json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn bulk_actions_change_every_link_of_an_object_a_share_or_a_creator_once() {
    let origin = Origin::start();
    origin.put("x.txt", b"x");
    origin.put("y.txt", b"y");
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    let mk = |object: &str, who: &str| {
        admin.create(json!({"store": "docs", "object": object, "created_by": who}))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let x1 = mk("x.txt", "alice");
    let x2 = mk("x.txt", "bob");
    let x3 = mk("x.txt", "alice");
    let y1 = mk("y.txt", "alice");
    let other = mk("y.txt", "carol");
    assert_eq!(
        call(&gw, "DELETE", &format!("/v1/links/{x3}"), &[], None).status,
        200
    );

    let bulk = |body: Value| call(&gw, "POST", "/v1/links/bulk", &[], Some(&body));
    let r = bulk(json!({"action": "deactivate", "object": "x.txt", "by": "dms"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["count"], 2, "{v}");
    let ids: HashSet<String> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, HashSet::from([x1.clone(), x2.clone()]));
    assert_eq!(v["skipped"], json!([x3]), "the cancelled one is skipped");
    assert_eq!(v["complete"], true);
    for id in [&x1, &x2] {
        assert_eq!(admin.link(id)["state"], "deactivated");
        let k = kinds(&gw, id);
        assert_eq!(
            k.iter().filter(|k| *k == "link.deactivated").count(),
            1,
            "{k:?}"
        );
    }
    // Again: nothing left to do, every link skipped, no second event.
    let again = bulk(json!({"action": "deactivate", "object": "x.txt"})).json();
    assert_eq!(again["count"], 0, "{again}");
    assert_eq!(
        kinds(&gw, &x1)
            .iter()
            .filter(|k| *k == "link.deactivated")
            .count(),
        1
    );

    // By creator: alice's links are cancelled (deactivated ones too), carol's are untouched.
    let v = bulk(json!({"action": "cancel", "created_by": "alice", "by": "dms"})).json();
    assert_eq!(v["count"], 2, "{v}");
    for id in [&x1, &y1] {
        let l = admin.link(id);
        assert_eq!(
            (l["state"].as_str(), l["cancelled_by"].as_str()),
            (Some("cancelled"), Some("dms"))
        );
    }
    assert_eq!(admin.link(&x2)["state"], "deactivated");
    assert_eq!(admin.link(&other)["state"], "active");

    // The CLI does the same: `linkgate link bulk`.
    let base = admin.base.clone();
    let out = std::process::Command::new(bin())
        .args(["link", "--admin-url", &base, "--token", ADMIN_TOKEN])
        .args(["bulk", "cancel", "--created-by", "carol", "--by", "ops"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("cancel 1 link(s), 0 skipped"), "{text}");
    assert!(text.contains(&other), "{text}");
    assert_eq!(admin.link(&other)["cancelled_by"], "ops");

    // Exactly one selector, a known action; an unknown share is a 404.
    expect_problem(&bulk(json!({"action": "cancel"})), 422, "invalid-field");
    expect_problem(
        &bulk(json!({"action": "cancel", "object": "x.txt", "created_by": "a"})),
        422,
        "invalid-field",
    );
    expect_problem(
        &bulk(json!({"action": "erase", "object": "x.txt"})),
        422,
        "invalid-field",
    );
    expect_problem(
        &bulk(json!({"action": "cancel", "share": "nope"})),
        404,
        "not-found",
    );
}

#[test]
fn bulk_cancel_of_a_share_cancels_each_recipients_link() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let smtp = SmtpSink::start();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = smtp.config();
    let gw = Gateway::start_with(opts);
    let body = json!({"store": "docs", "object": "a.txt",
        "recipients": [{"email": "jane@example.org"}, {"email": "bob@example.org"}]});
    let created = call(
        &gw,
        "POST",
        "/v1/shares",
        &[("idempotency-key", "share-1")],
        Some(&body),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let replay = call(
        &gw,
        "POST",
        "/v1/shares",
        &[("idempotency-key", "share-1")],
        Some(&body),
    );
    assert_eq!(replay.header("idempotency-replayed"), Some("true"));
    assert_eq!(replay.json()["id"], created.json()["id"], "one share");
    let share = created.json()["id"].as_str().unwrap().to_string();
    let v = call(
        &gw,
        "POST",
        "/v1/links/bulk",
        &[],
        Some(&json!({"action": "cancel", "share": share})),
    )
    .json();
    assert_eq!(v["count"], 2, "{v}");
    for id in v["ids"].as_array().unwrap() {
        let id = id.as_str().unwrap();
        assert_eq!(gw.admin().link(id)["state"], "cancelled");
        assert_eq!(
            kinds(&gw, id)
                .iter()
                .filter(|k| *k == "link.cancelled")
                .count(),
            1
        );
    }
}

#[test]
fn cursors_skip_and_repeat_nothing_while_links_are_created() {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    let mk = || {
        admin.create(json!({"store": "docs", "object": "a.txt", "created_by": "pager"}))["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before: HashSet<String> = (0..7).map(|_| mk()).collect();
    let mut seen = Vec::new();
    let mut path = "/v1/links?created_by=pager&limit=2".to_string();
    for _ in 0..20 {
        let page = call(&gw, "GET", &path, &[], None);
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        seen.extend(
            page["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["id"].as_str().unwrap().to_string()),
        );
        // Links created while paging are newer: they come before the cursor, never twice.
        mk();
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/links?created_by=pager&limit=2&cursor={c}"),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated: {seen:?}");
    assert!(before.is_subset(&unique), "nothing skipped");
    // A cursor the API did not give out is a position like any other, never an error; one
    // longer than any it gives out is refused.
    assert_eq!(
        call(&gw, "GET", "/v1/links?cursor=%25%25", &[], None).status,
        200
    );
    let long = format!("/v1/links?cursor={}", "A".repeat(3000));
    let p = expect_problem(&call(&gw, "GET", &long, &[], None), 422, "invalid-field");
    assert_eq!(p["field"], "cursor");
    let any = before.iter().next().unwrap();
    let p = expect_problem(
        &call(
            &gw,
            "GET",
            &format!("/v1/links/{any}/events?cursor=x"),
            &[],
            None,
        ),
        422,
        "invalid-field",
    );
    assert_eq!(p["field"], "cursor");

    // Events page by cursor too.
    let id = before.iter().next().unwrap().clone();
    for _ in 0..3 {
        call(
            &gw,
            "POST",
            &format!("/v1/links/{id}/deactivate"),
            &[],
            None,
        );
        call(&gw, "POST", &format!("/v1/links/{id}/activate"), &[], None);
    }
    let mut events = Vec::new();
    let mut path = format!("/v1/links/{id}/events?limit=2");
    loop {
        let page = call(&gw, "GET", &path, &[], None).json();
        events.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/links/{id}/events?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(events, (1..=7).collect::<Vec<u64>>());
    // Shares list the same way.
    let shares = call(&gw, "GET", "/v1/shares?limit=1", &[], None).json();
    assert!(shares.get("next_cursor").is_some(), "{shares}");
}

#[test]
fn a_restricted_caller_bulk_changes_only_its_creators_links() {
    let origin = Origin::start();
    origin.put("x.txt", b"x");
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra =
        "[admin.callers.dms]\ntoken = \"dms-caller-token\"\ncreated_by = [\"alice\"]\n".into();
    let gw = Gateway::start_with(opts);
    let admin = gw.admin();
    let mine = admin.create(json!({"store": "docs", "object": "x.txt", "created_by": "alice"}))
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = admin.create(json!({"store": "docs", "object": "x.txt", "created_by": "bob"}))
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let as_dms = |body: Value| {
        request(
            "POST",
            &format!("{}/v1/links/bulk", admin.base),
            &[
                ("authorization", "Bearer dms-caller-token"),
                ("content-type", "application/json"),
            ],
            Some(&serde_json::to_vec(&body).unwrap()),
        )
    };
    let v = as_dms(json!({"action": "cancel", "object": "x.txt"})).json();
    assert_eq!(v["ids"], json!([mine]), "{v}");
    assert_eq!(
        admin.link(&theirs)["state"],
        "active",
        "another creator's link is untouched"
    );
    let v = as_dms(json!({"action": "cancel", "created_by": "bob"})).json();
    assert_eq!(v["count"], 0, "{v}");
    assert_eq!(admin.link(&theirs)["state"], "active");
}
