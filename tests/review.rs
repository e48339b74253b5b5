//! Reviews: the `review` and `approve` rights in real headless Chromium (the forms appear after
//! the link's checks, comments and decisions are recorded, escaped on every page, shown on the
//! link, in its events and in the webhook), and scripted clients for what an attacker holding the
//! link tries: forms before the checks, replayed tokens, a right the link does not grant,
//! oversized comments, floods, and racing decisions.

mod common;
#[path = "common/webhook_receiver.rs"]
mod receiver;

use std::collections::BTreeSet;

use common::*;
use receiver::{Receiver, SECRET};
use serde_json::{json, Value};

fn setup(extra: &str) -> (Origin, SmtpSink, Gateway) {
    let origin = Origin::start();
    origin.put("proof.pdf", &pseudo_random(50_000, 3));
    let smtp = SmtpSink::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!("{}\n{extra}", smtp.config()),
        ..GatewayOptions::for_origin(&origin)
    });
    (origin, smtp, gw)
}

fn event_of<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:#?}"))
}

#[test]
fn a_recipient_comments_and_approves_in_a_browser_and_everyone_hears_of_it() {
    let receiver = Receiver::start();
    let (_origin, _smtp, gw) = setup(&format!(
        "[webhooks]\nurl = \"{}\"\nsecret = \"{SECRET}\"\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\n",
        receiver.url()
    ));
    let link = gw.admin().create(json!({
        "store": "docs",
        "object": "proof.pdf",
        "filename": "Proof.pdf",
        "rights": ["approve"],
        "recipient": {"email": "jane@example.org"},
    }));
    assert_eq!(link["rights"], json!(["approve"]));
    let (id, url) = (
        link["id"].as_str().unwrap().to_string(),
        link["url"].as_str().unwrap().to_string(),
    );
    let browser = Browser::start();
    browser.goto(&url);
    // The device check comes first: no review form before it.
    let check = browser.wait_for("Open the document in this browser");
    assert!(!check.contains("comment-form"));
    browser.click("button[type=submit]");
    let landing = browser.wait_for("id=\"decision-form\"");
    assert!(landing.contains("id=\"comment-form\""));
    assert!(!landing.contains("<script>alert"));

    let comment = "<b>Looks</b> good & <img src=x onerror=alert(1)>";
    browser.type_into("#comment", comment);
    browser.click("#send-comment");
    browser.wait_for("your comment was recorded");
    browser.goto(&url);
    browser.wait_for("id=\"decision-form\"");
    let reason = "<script>alert('x')</script> approved for print";
    browser.type_into("#decision-text", reason);
    browser.click("#approve");
    browser.wait_for("your decision was recorded");
    browser.goto(&url);
    let after = browser.wait_for("id=\"decision\"");
    assert!(after.contains("approved"));
    assert!(
        !after.contains("id=\"decision-form\""),
        "a decision is final"
    );
    assert!(after.contains("&lt;script&gt;alert"), "{after}");
    assert!(!after.contains("<script>alert"));
    // Nothing the reviewer wrote ran as a script in the browser.
    assert_eq!(
        browser.execute("return typeof window.x"),
        json!("undefined")
    );

    // On the link, with who and when.
    let view = gw.admin().link(&id);
    let decisions = view["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["decision"], "approved");
    assert_eq!(decisions[0]["by"], "jane@example.org");
    assert_eq!(decisions[0]["comment"], reason);
    assert!(decisions[0]["at"].as_str().is_some());

    // In the events.
    let events = events_when(&gw, &id, |e| {
        e.iter().any(|e| e["kind"] == "review.decided")
            && e.iter().any(|e| e["kind"] == "review.commented")
    });
    let commented = event_of(&events, "review.commented");
    assert_eq!(commented["detail"]["comment"], comment);
    assert_eq!(commented["actor"], "jane@example.org");
    let decided = event_of(&events, "review.decided");
    assert_eq!(decided["detail"]["decision"], "approved");
    assert_eq!(decided["detail"]["comment"], reason);

    // And in the webhooks.
    let ids: BTreeSet<String> = [
        format!("{id}.{}", commented["seq"]),
        format!("{id}.{}", decided["seq"]),
    ]
    .into();
    receiver.wait_for(&ids);
    let hook = receiver
        .deliveries()
        .into_iter()
        .find(|d| d.kind == "review.decided")
        .unwrap();
    assert!(hook.signed);
    assert_eq!(hook.body["detail"]["decision"], "approved");
    assert_eq!(hook.body["actor"], "jane@example.org");
}

#[test]
fn review_forms_need_the_checks_a_fresh_token_and_the_right() {
    // The pages' own rate limit well above what this test sends: the bound tested is the
    // comments' own.
    let (_origin, _smtp, gw) = setup("[limits]\npage_requests_per_minute = 6000\n");
    let link = gw.admin().create(json!({
        "store": "docs",
        "object": "proof.pdf",
        "rights": ["review"],
        "password": "open sesame",
    }));
    let (id, url) = (
        link["id"].as_str().unwrap().to_string(),
        link["url"].as_str().unwrap().to_string(),
    );
    let mut jar = Jar::default();
    let page = jar.page(&url);
    assert!(page.text().contains("protected by a password"));
    assert!(!page.text().contains("comment-form"));
    // The password form's token does not get a comment past the password.
    let csrf = csrf_of(&page.text());
    let early = jar.post(
        &url,
        &[("action", "comment"), ("csrf", &csrf), ("comment", "hi")],
    );
    assert_eq!(early.status, 403, "{}", early.text());
    assert!(early.text().contains("Please open the link again"));

    let csrf = csrf_of(&jar.page(&url).text());
    let passed = jar.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf),
            ("password", "open sesame"),
        ],
    );
    assert_eq!(passed.status, 303);
    let landing = jar.page(&url).text();
    assert!(landing.contains("id=\"comment-form\""));
    assert!(
        !landing.contains("id=\"decision-form\""),
        "review grants no decision"
    );
    let csrf = csrf_of(&landing);
    let ok = jar.post(
        &url,
        &[("action", "comment"), ("csrf", &csrf), ("comment", "fine")],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let replay = jar.post(
        &url,
        &[("action", "comment"), ("csrf", &csrf), ("comment", "again")],
    );
    assert_eq!(replay.status, 403, "a form token works once");
    // Another browser holding only the link and a forged or missing token gets nowhere.
    let mut other = Jar::default();
    other.page(&url);
    let forged = other.post(
        &url,
        &[("action", "comment"), ("csrf", &csrf), ("comment", "x")],
    );
    assert_eq!(forged.status, 403);

    // A decision on a review link is refused, whatever the form says.
    let csrf = csrf_of(&jar.page(&url).text());
    let decide = jar.post(
        &url,
        &[
            ("action", "decide"),
            ("csrf", &csrf),
            ("decision", "approved"),
        ],
    );
    assert_eq!(decide.status, 403, "{}", decide.text());
    assert!(gw.admin().link(&id)["decisions"]
        .as_array()
        .is_none_or(|d| d.is_empty()));
    // Too long, and empty.
    let csrf = csrf_of(&jar.page(&url).text());
    let long = "x".repeat(2001);
    let r = jar.post(
        &url,
        &[("action", "comment"), ("csrf", &csrf), ("comment", &long)],
    );
    assert_eq!(r.status, 400);
    let csrf = csrf_of(&jar.page(&url).text());
    let r = jar.post(
        &url,
        &[
            ("action", "comment"),
            ("csrf", &csrf),
            ("comment", " \r\n "),
        ],
    );
    assert_eq!(r.status, 400);

    // A flood stops at the per-reviewer bound (20 an hour; one was sent above).
    let mut statuses = Vec::new();
    for i in 0..20 {
        let csrf = csrf_of(&jar.page(&url).text());
        let text = format!("comment {i}");
        statuses.push(
            jar.post(
                &url,
                &[("action", "comment"), ("csrf", &csrf), ("comment", &text)],
            )
            .status,
        );
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 19);
    assert_eq!(statuses.last(), Some(&429));
    let events = events_when(&gw, &id, |e| {
        e.iter().filter(|e| e["kind"] == "review.commented").count() >= 20
    });
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "review.commented")
            .count(),
        20
    );
}

#[test]
fn each_browser_decides_once_even_when_its_forms_race() {
    let (_origin, _smtp, gw) = setup("");
    let link = gw.admin().create(json!({
        "store": "docs",
        "object": "proof.pdf",
        "rights": ["approve"],
    }));
    let (id, url) = (
        link["id"].as_str().unwrap().to_string(),
        link["url"].as_str().unwrap().to_string(),
    );
    let mut jar = Jar::default();
    jar.page(&url);
    // Two forms of one browser, sent at once: one decision is recorded, the other refused.
    let tokens: Vec<String> = (0..2).map(|_| csrf_of(&jar.page(&url).text())).collect();
    let cookie = jar.header();
    let posts: Vec<_> = tokens
        .into_iter()
        .zip(["approved", "rejected"])
        .map(|(csrf, decision)| {
            let (url, cookie) = (url.clone(), cookie.clone());
            std::thread::spawn(move || {
                let body = format!("action=decide&csrf={csrf}&decision={decision}&comment=mine");
                request(
                    "POST",
                    &url,
                    &[
                        ("accept", "text/html"),
                        ("cookie", &cookie),
                        ("content-type", "application/x-www-form-urlencoded"),
                    ],
                    Some(body.as_bytes()),
                )
                .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let decisions = gw.admin().link(&id)["decisions"].clone();
    assert_eq!(decisions.as_array().unwrap().len(), 1);
    let by = decisions[0]["by"].as_str().unwrap().to_string();
    assert!(by.starts_with("browser:"), "{by}");
    // The page no longer offers a decision to that browser.
    assert!(!jar.page(&url).text().contains("id=\"decision-form\""));

    // Another browser is another reviewer.
    let mut other = Jar::default();
    other.page(&url);
    let csrf = csrf_of(&other.page(&url).text());
    let r = other.post(
        &url,
        &[
            ("action", "decide"),
            ("csrf", &csrf),
            ("decision", "rejected"),
        ],
    );
    assert_eq!(r.status, 200);
    let decisions = gw.admin().link(&id)["decisions"].clone();
    let decisions = decisions.as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert_ne!(decisions[0]["by"], decisions[1]["by"]);
    // A browser without its cookie (a fresh one) cannot post a form at all.
    let r = request(
        "POST",
        &url,
        &[
            ("accept", "text/html"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some(format!("action=decide&csrf={csrf}&decision=approved").as_bytes()),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn unknown_rights_are_still_refused_and_review_rights_are_listed() {
    let (_origin, _smtp, gw) = setup("");
    let r = gw.admin().call(
        "POST",
        "/v1/links",
        Some(json!({"store": "docs", "object": "proof.pdf", "rights": ["annotate"]})),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("review, approve"), "{}", r.text());
    let link = gw
        .admin()
        .create(json!({"store": "docs", "object": "proof.pdf", "rights": ["review", "download"]}));
    assert_eq!(link["rights"], json!(["download", "review"]));
}
