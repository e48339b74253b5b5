//! The document system's side: changing, deactivating, cancelling and listing links, the policy,
//! and the audit trail. Every test runs twice: on the embedded store and on a real Redis.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A gateway on the backend under test, with what keeps it running.
struct Setup {
    origin: Origin,
    redis: Option<RedisServer>,
    gw: Gateway,
}

fn setup(redis: bool, extra: &str) -> Setup {
    let origin = Origin::start();
    origin.put("a.txt", b"hello");
    origin.put("b.txt", b"other");
    let server = redis.then(RedisServer::start);
    let mut opts = match &server {
        Some(r) => GatewayOptions::on_redis(&origin, r.state()),
        None => GatewayOptions::for_origin(&origin),
    };
    opts.extra = extra.to_string();
    let gw = Gateway::start_with(opts);
    Setup {
        origin,
        redis: server,
        gw,
    }
}

fn events(gw: &Gateway, id: &str) -> Vec<Value> {
    let r = gw
        .admin()
        .call("GET", &format!("/v1/links/{id}/events"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"].as_array().unwrap().clone()
}

/// Waits for the batched recipient events to be written.
fn kinds_eventually(gw: &Gateway, id: &str, want: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let evs = events(gw, id);
        let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
        if kinds == want {
            return evs;
        }
        assert!(
            Instant::now() < deadline,
            "events {kinds:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn error_of(r: &Reply) -> (u16, String, String) {
    let e = &r.json();
    (
        r.status,
        e["field"].as_str().unwrap_or("").to_string(),
        e["detail"].as_str().unwrap_or("").to_string(),
    )
}

fn changes_to_expiry_and_limit_restart_the_counter(redis: bool) {
    let s = setup(redis, "");
    let admin = s.gw.admin();
    let (id, url) = admin.share("a.txt", Some(2));
    assert_eq!(get(&url).status, 200);
    assert_eq!(admin.link(&id)["downloads_used"], 1);
    let changed = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"max_downloads": 1, "changed_by": "alice"})),
    );
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["generation"], 2);
    assert_eq!(
        changed.json()["downloads_used"],
        0,
        "the counter restarts at zero"
    );
    assert_eq!(
        get(&url).status,
        200,
        "the URL already sent follows the new limit"
    );
    assert_eq!(get(&url).status, 404);
    // A display-name change is not a counter reset, and applies at once.
    let renamed = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"filename": "Renamed: v2.txt"})),
    );
    assert_eq!(renamed.json()["generation"], 2);
    assert_eq!(renamed.json()["filename"], "Renamed_ v2.txt");
    // Removing the limit and the expiry.
    let future = "2099-06-01T00:00:00Z";
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"expires_at": future})),
    );
    assert_eq!(r.json()["expires_at"], future);
    let r = admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"expires_at": null, "max_downloads": null})),
    );
    assert_eq!(r.status, 200);
    assert!(r.json()["expires_at"].is_null() && r.json()["max_downloads"].is_null());
    let reply = get(&url);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-disposition"),
        Some("attachment; filename=\"Renamed_ v2.txt\"")
    );
    // An expiry in the past is refused; a link can be made to expire soon.
    assert_eq!(
        error_of(&admin.call(
            "PATCH",
            &format!("/v1/links/{id}"),
            Some(json!({"expires_at": "2001-01-01T00:00:00Z"}))
        ))
        .1,
        "expires_at"
    );
    let evs = events(&s.gw, &id);
    let changed: Vec<&Value> = evs.iter().filter(|e| e["kind"] == "link.changed").collect();
    assert_eq!(
        changed.len(),
        4,
        "a request refused before any change records nothing: {evs:?}"
    );
    assert_eq!(changed[0]["actor"], "alice");
    assert_eq!(changed[0]["detail"]["counter_reset"], true);
    assert_eq!(changed[1]["detail"]["counter_reset"], false);
}

fn deactivate_activate_and_cancel_follow_the_rules(redis: bool) {
    let s = setup(redis, "");
    let admin = s.gw.admin();
    let (id, url) = admin.share("a.txt", None);
    let post = |verb: &str| admin.call("POST", &format!("/v1/links/{id}/{verb}?by=ops"), None);
    assert_eq!(post("deactivate").json()["state"], "deactivated");
    assert_eq!(get(&url).status, 404);
    assert_eq!(
        post("deactivate").status,
        200,
        "deactivating twice is harmless"
    );
    assert_eq!(post("activate").json()["state"], "active");
    assert_eq!(get(&url).status, 200);
    // The download's completion is recorded just after its last byte (batched, off the request
    // path), while admin events are written at once: wait for it, so the order below is fixed.
    kinds_eventually(
        &s.gw,
        &id,
        &[
            "link.created",
            "link.deactivated",
            "download.refused",
            "link.deactivated",
            "link.activated",
            "download.completed",
        ],
    );
    let cancelled = admin.call("DELETE", &format!("/v1/links/{id}?cancelled_by=bob"), None);
    assert_eq!(cancelled.json()["state"], "cancelled");
    assert_eq!(cancelled.json()["cancelled_by"], "bob");
    let again = admin.call("DELETE", &format!("/v1/links/{id}?cancelled_by=eve"), None);
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json()["cancelled_by"],
        "bob",
        "cancelling again changes nothing"
    );
    for (method, path, body) in [
        ("POST", format!("/v1/links/{id}/activate"), None),
        ("POST", format!("/v1/links/{id}/deactivate"), None),
        (
            "PATCH",
            format!("/v1/links/{id}"),
            Some(json!({"max_downloads": 5})),
        ),
    ] {
        let r = admin.call(method, &path, body);
        assert_eq!(r.status, 409, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["field"], "state");
    }
    assert_eq!(get(&url).status, 404);
    let evs = kinds_eventually(
        &s.gw,
        &id,
        &[
            "link.created",
            "link.deactivated",
            "download.refused",
            "link.deactivated",
            "link.activated",
            "download.completed",
            "link.cancelled",
            "link.cancelled",
            "link.activated",
            "link.deactivated",
            "link.changed",
            "download.refused",
        ],
    );
    assert_eq!(evs[1]["actor"], "ops");
    assert_eq!(evs[2]["reason"], "deactivated");
    assert_eq!(evs[8]["outcome"], "refused");
}

fn every_share_of_a_document_is_listed_newest_first_in_pages(redis: bool) {
    let s = setup(redis, "");
    let admin = s.gw.admin();
    let mut ids = Vec::new();
    for i in 0..7 {
        let by = if i % 2 == 0 { "alice" } else { "bob" };
        let v = admin.create(json!({"store": "docs", "object": "a.txt", "created_by": by, "max_downloads": 3, "expires_at": "2099-01-01T00:00:00Z"}));
        ids.push(v["id"].as_str().unwrap().to_string());
        std::thread::sleep(Duration::from_millis(3));
    }
    admin.create(json!({"store": "docs", "object": "b.txt", "created_by": "alice"}));
    assert_eq!(
        admin
            .call(
                "DELETE",
                &format!("/v1/links/{}?cancelled_by=carol", ids[2]),
                None
            )
            .status,
        200
    );
    assert_eq!(
        get(admin.link(&ids[6])["url"].as_str().unwrap()).status,
        200
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/links?object=a.txt&limit=3&after={a}"),
            None => "/v1/links?object=a.txt&limit=3".to_string(),
        };
        let page = admin.call("GET", &q, None).json();
        pages += 1;
        for l in page["links"].as_array().unwrap() {
            seen.push(l.clone());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
        assert!(pages < 10);
    }
    let listed: Vec<String> = seen
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    let newest = &seen[0];
    assert_eq!(newest["type"], "link");
    assert_eq!(newest["created_by"], "alice");
    assert!(newest["created_at"].is_string());
    assert_eq!(newest["expires_at"], "2099-01-01T00:00:00Z");
    assert_eq!(newest["downloads_used"], 1);
    let cancelled = &seen[4];
    assert_eq!(cancelled["cancelled_by"], "carol");
    assert!(cancelled["cancelled_at"].is_string());
    let bob = admin.call("GET", "/v1/links?created_by=bob", None).json();
    assert_eq!(bob["links"].as_array().unwrap().len(), 3);
    let only_cancelled = admin
        .call("GET", "/v1/links?object=a.txt&state=cancelled", None)
        .json();
    assert_eq!(only_cancelled["links"].as_array().unwrap().len(), 1);
    let everything = admin.call("GET", "/v1/links?limit=500", None).json();
    assert_eq!(everything["links"].as_array().unwrap().len(), 8);
    assert!(everything["next"].is_null());
    for (q, field) in [
        ("state=gone", "state"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=x", "limit"),
        ("colour=red", "colour"),
    ] {
        assert_eq!(
            error_of(&admin.call("GET", &format!("/v1/links?{q}"), None)),
            (
                422,
                field.to_string(),
                error_of(&admin.call("GET", &format!("/v1/links?{q}"), None)).2
            )
        );
    }
}

fn the_audit_trail_records_everything_and_verifies(redis: bool) {
    let s = setup(redis, "");
    let admin = s.gw.admin();
    let v = admin.create(
        json!({"store": "docs", "object": "a.txt", "max_downloads": 1, "created_by": "alice"}),
    );
    let (id, url) = (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        request("GET", &url, &[("user-agent", "curl/8.0 test")], None).status,
        200
    );
    // The completion is recorded once the response is over, which the client may see a moment
    // before the gateway does: wait for it (and for the moment the limit was used up), so the
    // refusals follow it in the chain.
    kinds_eventually(
        &s.gw,
        &id,
        &[
            "link.created",
            "download.started",
            "download.completed",
            "link.exhausted",
        ],
    );
    assert_eq!(get(&url).status, 404);
    assert_eq!(request("HEAD", &url, &[], None).status, 404);
    let evs = kinds_eventually(
        &s.gw,
        &id,
        &[
            "link.created",
            "download.started",
            "download.completed",
            "link.exhausted",
            "download.refused",
            "download.refused",
        ],
    );
    assert_eq!(evs[0]["actor"], "alice");
    assert_eq!(evs[0]["client"], "127.0.0.1");
    assert_eq!(evs[2]["bytes"], 5);
    assert_eq!(evs[2]["user_agent"], "curl/8.0 test");
    assert_eq!(evs[2]["document"], "a.txt");
    assert_eq!(evs[3]["detail"]["downloads_used"], 1);
    assert_eq!(evs[4]["reason"], "download limit reached");
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        assert!(e["at"].as_str().unwrap().ends_with('Z'), "times are UTC");
        if i > 0 {
            assert_eq!(e["prev"], evs[i - 1]["hash"]);
        }
    }
    let verify = Command::new(bin())
        .args(["audit", "--config"])
        .arg(&s.gw.config_path)
        .args(["verify", &id])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("intact (6 events)"));
    // Paging.
    let page = admin
        .call(
            "GET",
            &format!("/v1/links/{id}/events?after=2&limit=2"),
            None,
        )
        .json();
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(page["next"], 4);
    assert_eq!(
        error_of(&admin.call("GET", &format!("/v1/links/{id}/events?after=x"), None)).1,
        "after"
    );
    if let Some(r) = &s.redis {
        // Someone with access to Redis rewrites history: verification names the event.
        let key = format!("lg:events:{{{id}}}");
        let raw = r.cli(&["LINDEX", &key, "2"]);
        let forged = raw.trim().replace("\"bytes\":5", "\"bytes\":0");
        assert_ne!(forged, raw.trim());
        assert_eq!(r.cli(&["LSET", &key, "2", &forged]).trim(), "OK");
        let verify = Command::new(bin())
            .args(["audit", "--config"])
            .arg(&s.gw.config_path)
            .args(["verify", &id])
            .output()
            .unwrap();
        assert!(!verify.status.success());
        assert!(
            String::from_utf8_lossy(&verify.stderr).contains("event 3"),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
    let _ = &s.origin;
}

const POLICY: &str = r#"
[policy]
require_expiry = true
max_expiry_days = 30
max_downloads = 10
allowed_rights = ["download"]

[admin.callers.dms]
token = "dms-caller-token"
created_by = ["alice", "bob"]
"#;

fn the_policy_and_restricted_callers_are_enforced(redis: bool) {
    let s = setup(redis, POLICY);
    let admin = s.gw.admin();
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let late = (time::OffsetDateTime::now_utc() + time::Duration::days(31))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases = [
        (
            json!({"store": "docs", "object": "a.txt", "max_downloads": 3}),
            "expires_at",
            "policy.require_expiry",
        ),
        (
            json!({"store": "docs", "object": "a.txt", "max_downloads": 3, "expires_at": late}),
            "expires_at",
            "policy.max_expiry_days",
        ),
        (
            json!({"store": "docs", "object": "a.txt", "max_downloads": 11, "expires_at": soon}),
            "max_downloads",
            "policy.max_downloads",
        ),
        (
            json!({"store": "docs", "object": "a.txt", "expires_at": soon}),
            "max_downloads",
            "policy.max_downloads",
        ),
        (
            json!({"store": "docs", "object": "a.txt", "max_downloads": 3, "expires_at": soon, "rights": ["view"]}),
            "rights",
            "policy.allowed_rights",
        ),
    ];
    for (body, field, rule) in cases {
        let (status, f, message) = error_of(&admin.call("POST", "/v1/links", Some(body)));
        assert_eq!((status, f.as_str()), (422, field));
        assert!(message.contains(rule), "{message}");
    }
    let ok = admin.create(json!({"store": "docs", "object": "a.txt", "max_downloads": 3, "expires_at": soon, "created_by": "carol"}));
    let id = ok["id"].as_str().unwrap();
    let (status, field, message) = error_of(&admin.call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"expires_at": null})),
    ));
    assert_eq!((status, field.as_str()), (422, "expires_at"));
    assert!(message.contains("policy.require_expiry"));
    assert_eq!(
        admin.link(id)["expires_at"],
        ok["expires_at"],
        "a refused change leaves the link as it was"
    );
    // A restricted caller sees and creates only its identities' links.
    let dms = |method: &str, path: &str, body: Option<Value>| {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        request(
            method,
            &format!("{}{}", admin.base, path),
            &[("authorization", "Bearer dms-caller-token")],
            bytes.as_deref(),
        )
    };
    let body = json!({"store": "docs", "object": "a.txt", "max_downloads": 3, "expires_at": soon, "created_by": "carol"});
    assert_eq!(
        error_of(&dms("POST", "/v1/links", Some(body))).1,
        "created_by"
    );
    let mine = dms(
        "POST",
        "/v1/links",
        Some(
            json!({"store": "docs", "object": "a.txt", "max_downloads": 3, "expires_at": soon, "created_by": "bob"}),
        ),
    );
    assert_eq!(mine.status, 201);
    assert_eq!(
        dms("GET", &format!("/v1/links/{id}"), None).status,
        404,
        "carol's link is not the caller's"
    );
    assert_eq!(dms("DELETE", &format!("/v1/links/{id}"), None).status, 404);
    assert_eq!(
        dms("GET", &format!("/v1/links/{id}/events"), None).status,
        404
    );
    let listed = dms("GET", "/v1/links?object=a.txt", None).json();
    let ids: Vec<&str> = listed["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.json()["id"].as_str().unwrap()]);
    assert_eq!(admin.link(id)["state"], "active");
}

fn refusals_are_clear_and_change_nothing(redis: bool) {
    let s = setup(redis, "");
    let admin = s.gw.admin();
    let (id, _) = admin.share("a.txt", Some(2));
    let before = admin.link(&id);
    let patch = |body: &[u8]| {
        request(
            "PATCH",
            &format!("{}/v1/links/{id}", admin.base),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Some(body),
        )
    };
    assert_eq!(error_of(&patch(b"{")).0, 400);
    assert_eq!(error_of(&patch(b"[]")).0, 400);
    assert_eq!(
        error_of(&patch(b"{}")),
        (422, "body".into(), error_of(&patch(b"{}")).2)
    );
    assert_eq!(
        error_of(&patch(br#"{"max_downloads": "many"}"#)).1,
        "max_downloads"
    );
    assert_eq!(
        error_of(&patch(br#"{"max_downloads": 0}"#)).1,
        "max_downloads"
    );
    assert_eq!(error_of(&patch(br#"{"expires_at": 5}"#)).1, "expires_at");
    assert_eq!(error_of(&patch(br#"{"filename": ["x"]}"#)).1, "filename");
    assert_eq!(error_of(&patch(br#"{"store": "other"}"#)).1, "store");
    assert_eq!(
        error_of(&patch(br#"{"changed_by": "a\nb", "filename": "x"}"#)).1,
        "changed_by"
    );
    let after = admin.link(&id);
    assert_eq!(before, after, "nothing changed");
    let unknown = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        ("GET", format!("/v1/links/{unknown}")),
        ("PATCH", format!("/v1/links/{unknown}")),
        ("DELETE", format!("/v1/links/{unknown}")),
        ("POST", format!("/v1/links/{unknown}/activate")),
        ("GET", format!("/v1/links/{unknown}/events")),
        ("GET", "/v1/links/NOT-AN-ID".to_string()),
    ] {
        let body = (method == "PATCH").then(|| json!({"filename": "x"}));
        assert_eq!(
            admin.call(method, &path, body).status,
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        admin.call("PUT", &format!("/v1/links/{id}"), None).status,
        405
    );
    assert_eq!(
        admin
            .call("GET", &format!("/v1/links/{id}/activate"), None)
            .status,
        405
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded_backend {
            $(#[test]
            fn $name() {
                super::$name(false);
            })*
        }
        mod redis_backend {
            $(#[test]
            fn $name() {
                super::$name(true);
            })*
        }
    };
}

on_both_backends!(
    changes_to_expiry_and_limit_restart_the_counter,
    deactivate_activate_and_cancel_follow_the_rules,
    every_share_of_a_document_is_listed_newest_first_in_pages,
    the_audit_trail_records_everything_and_verifies,
    the_policy_and_restricted_callers_are_enforced,
    refusals_are_clear_and_change_nothing,
);

#[test]
fn the_openapi_document_is_served_and_covers_every_endpoint() {
    let s = setup(false, "");
    let served = get(&format!("{}/v1/openapi.json", s.gw.admin().base));
    assert_eq!(served.status, 200);
    let checked_in = std::fs::read("src/admin/openapi.json").unwrap();
    let doc: Value = serde_json::from_slice(&checked_in).unwrap();
    // The served document is the checked-in one with the configured store names filled in as
    // the `enum` of every schema marked `x-linkgate-enum: stores`, and nothing else.
    let mut served_doc: Value = serde_json::from_slice(&served.body).unwrap();
    fn unfill(v: &mut Value, filled: &mut usize) {
        match v {
            Value::Object(o) => {
                if o.get("x-linkgate-enum").and_then(Value::as_str) == Some("stores") {
                    assert!(o.remove("enum").is_some(), "a store enum is filled in");
                    *filled += 1;
                }
                o.values_mut().for_each(|c| unfill(c, filled));
            }
            Value::Array(a) => a.iter_mut().for_each(|c| unfill(c, filled)),
            _ => {}
        }
    }
    let mut filled = 0;
    unfill(&mut served_doc, &mut filled);
    assert!(filled > 0, "the store names are filled in");
    assert!(
        served_doc == doc,
        "the served document is the checked-in one, store names aside"
    );
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
        {
            let (id, _) = s.gw.admin().share("a.txt", None);
            let mut concrete = path.replace("{id}", &id);
            let share_body = json!({"store": "docs", "object": "a.txt",
                                    "recipients": [{"email": "r@example.org"}]});
            if path.starts_with("/v1/shares/") {
                let share =
                    s.gw.admin()
                        .call("POST", "/v1/shares", Some(share_body.clone()))
                        .json();
                concrete = path.replace("{id}", share["id"].as_str().unwrap()).replace(
                    "{link_id}",
                    share["recipients"][0]["link_id"].as_str().unwrap(),
                );
            }
            let body = match method.as_str() {
                "post" if path == "/v1/links" => Some(json!({"store": "docs", "object": "a.txt"})),
                "post" if path == "/v1/shares" => Some(share_body),
                "post" if path == "/v1/links/bulk" => {
                    Some(json!({"action": "deactivate", "object": "nothing-links-here.txt"}))
                }
                "patch" => Some(json!({"filename": "x.txt"})),
                _ => None,
            };
            let r = s.gw.admin().call(&method.to_uppercase(), &concrete, body);
            assert!(
                r.status < 300,
                "{method} {path} answered {}: {}",
                r.status,
                r.text()
            );
        }
    }
}

#[test]
fn the_cli_covers_the_lifecycle() {
    let s = setup(false, "");
    let cli = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["link", "--json", "--config"])
            .arg(&s.gw.config_path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let created = cli(&[
        "create",
        "--store",
        "docs",
        "--object",
        "a.txt",
        "--max-downloads",
        "2",
        "--created-by",
        "alice",
    ]);
    let id = created["id"].as_str().unwrap();
    let updated = cli(&[
        "update",
        id,
        "--max-downloads",
        "5",
        "--expires-at",
        "2099-01-01T00:00:00Z",
        "--changed-by",
        "alice",
    ]);
    assert_eq!(updated["max_downloads"], 5);
    assert_eq!(updated["generation"], 2);
    let unlimited = cli(&[
        "update",
        id,
        "--max-downloads",
        "none",
        "--expires-at",
        "never",
    ]);
    assert!(unlimited["max_downloads"].is_null() && unlimited["expires_at"].is_null());
    assert_eq!(cli(&["deactivate", id])["state"], "deactivated");
    assert_eq!(cli(&["activate", id])["state"], "active");
    let listed = cli(&["list", "--object", "a.txt", "--created-by", "alice"]);
    assert_eq!(listed["links"][0]["id"], id);
    assert_eq!(cli(&["cancel", id])["state"], "cancelled");
    let evs = cli(&["events", id]);
    let kinds: Vec<&str> = evs["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "link.created",
            "link.changed",
            "link.changed",
            "link.deactivated",
            "link.activated",
            "link.cancelled"
        ]
    );
}
