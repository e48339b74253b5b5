//! Shares sent by mail: one link per recipient, each mailed by the gateway itself through a real
//! SMTP listener (aiosmtpd), read back and followed in a real headless Chromium; re-send,
//! revoke one recipient, cancel all, delivery failures, the history per document, and what an
//! operator's texts may not do to a mail.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const DMS_TOKEN: &str = "dms-caller-token";

fn gateway(origin: &Origin, mail: &str, extra: &str) -> Gateway {
    let mut opts = GatewayOptions::for_origin(origin);
    opts.extra = format!("{mail}\n{extra}");
    Gateway::start_with(opts)
}

/// A mail's headers and parts, decoded by Python's `email` package (RFC 2047 headers,
/// quoted-printable or base64 bodies).
fn parse_mail(raw: &str) -> Value {
    const SCRIPT: &str = r#"
import sys, json, email
from email import policy
m = email.message_from_string(sys.stdin.read(), policy=policy.default)
text = m.get_body(('plain',))
html = m.get_body(('html',))
print(json.dumps({
    "from": str(m["From"]), "to": str(m["To"]), "subject": str(m["Subject"]),
    "reply_to": str(m["Reply-To"] or ""), "headers": list(m.keys()),
    "text": text.get_content() if text else None,
    "html": html.get_content() if html else None,
}))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(raw.as_bytes())
        .expect("write mail");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "could not parse mail: {raw}");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Waits for at least `n` mails and returns them all, parsed.
fn mails(smtp: &SmtpSink, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let raw = smtp.messages();
        if raw.len() >= n {
            return raw.iter().map(|m| parse_mail(m)).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} mails arrived",
            raw.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mail_to<'a>(all: &'a [Value], email: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|m| m["to"].as_str().unwrap_or("").contains(email))
        .collect()
}

/// The one `/s/…` URL in a plain-text mail.
fn url_in(mail: &Value) -> String {
    let text = mail["text"].as_str().expect("text part");
    text.split_whitespace()
        .find(|w| w.contains("/s/"))
        .expect("a link in the mail")
        .to_string()
}

fn recipient<'a>(share: &'a Value, email: &str) -> &'a Value {
    share["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("no recipient {email} in {share:#}"))
}

fn in_days(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn create(gw: &Gateway, body: Value) -> Value {
    let reply = gw.admin().call("POST", "/v1/shares", Some(body));
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

fn share_of(gw: &Gateway, id: &str) -> Value {
    let reply = gw.admin().call("GET", &format!("/v1/shares/{id}"), None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The share once every recipient's delivery is no longer pending.
fn settled(gw: &Gateway, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let share = share_of(gw, id);
        if share["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["delivery"]["state"] != "pending")
        {
            return share;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries stay pending: {share:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unknown_link(gw: &Gateway) -> Reply {
    get(&gw.url("/s/AQJrMUV0yc_fsJC6LIOgxB9dLII8Wx7TFiUdQ4tw28nMyiCVYM9TexbAb2XubCC8uko9DA"))
}

#[test]
fn each_recipient_is_mailed_their_own_link_and_only_theirs_counts() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let gw = gateway(&origin, &smtp.config(), "");
    let data = pseudo_random(120_000, 18);
    origin.put("contracts/c-7.pdf", &data);
    let expires = in_days(7);
    let share = create(
        &gw,
        json!({
            "store": "docs", "object": "contracts/c-7.pdf", "filename": "Contract 7.pdf",
            "max_downloads": 2, "expires_at": expires, "created_by": "alice",
            "recipients": [
                {"email": "jane@example.org", "name": "Zoë Ångström"},
                {"email": "bob@example.org", "name": "<img src=x onerror=alert(1)>"},
                {"email": "carol@example.org"}
            ],
            "subject": "Contract 7 — bitte prüfen",
            "message": "Hello,\nplease sign <script>alert(1)</script> & return.",
            "sender": {"name": "Alice Sender", "email": "alice@example.org"}
        }),
    );
    assert_eq!(share["type"], "share");
    assert_eq!(share["status"], "active");
    assert_eq!(share["shared_by"], "alice");
    for r in share["recipients"].as_array().unwrap() {
        assert_eq!(r["delivery"]["state"], "sent", "{r:#}");
        assert_eq!(r["delivery"]["attempts"], 1);
        assert_eq!(r["link"]["type"], "guest");
        assert_eq!(r["link"]["share"], share["id"], "each link names its share");
    }
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["link"]["recipient"]["name"], "Zoë Ångström");
    let ids: Vec<String> = share["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["link_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);

    let all = mails(&smtp, 3);
    assert_eq!(all.len(), 3);
    let mut urls = Vec::new();
    for (email, id) in [
        ("jane@example.org", &ids[0]),
        ("bob@example.org", &ids[1]),
        ("carol@example.org", &ids[2]),
    ] {
        let got = mail_to(&all, email);
        assert_eq!(got.len(), 1, "one mail each");
        let m = got[0];
        assert_eq!(m["subject"], "Contract 7 — bitte prüfen");
        assert!(
            m["from"].as_str().unwrap().contains("Alice Sender"),
            "{m:#}"
        );
        assert!(m["from"].as_str().unwrap().contains("shares@example.org"));
        assert_eq!(m["reply_to"], "alice@example.org");
        let text = m["text"].as_str().unwrap();
        let html = m["html"].as_str().expect("an HTML part");
        assert!(
            text.contains("Alice Sender shared a document with you"),
            "{text}"
        );
        assert!(text.contains("please sign <script>alert(1)</script> & return."));
        assert!(text.contains("Contract 7.pdf (117.2 KiB)"), "{text}");
        assert!(text.contains("The link works until"), "{text}");
        assert!(html.contains("please sign &lt;script&gt;alert(1)&lt;/script&gt; &amp; return."));
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("Contract 7.pdf"));
        let url = url_in(m);
        let link = recipient(&share, email);
        assert_eq!(Some(url.as_str()), link["link"]["url"].as_str());
        assert!(html.contains(&format!("href=\"{url}\"")));
        let events = events_when(&gw, id, |e| e.iter().any(|e| e["kind"] == "share.mailed"));
        let mailed = events.iter().find(|e| e["kind"] == "share.mailed").unwrap();
        assert_eq!(mailed["outcome"], "ok");
        assert_eq!(mailed["actor"], "alice");
        urls.push(url);
    }
    assert!(mail_to(&all, "jane@example.org")[0]["to"]
        .as_str()
        .unwrap()
        .contains("Zoë Ångström"));
    assert!(mail_to(&all, "bob@example.org")[0]["html"]
        .as_str()
        .unwrap()
        .contains("Hello &lt;img src=x onerror=alert(1)&gt;,"));
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 3, "each recipient gets a different link");

    // Jane follows her mail in a browser and downloads; the others' counters are untouched.
    let jane_url = url_in(mail_to(&all, "jane@example.org")[0]);
    let jane_browser = Browser::start();
    jane_browser.goto(&jane_url);
    jane_browser.wait_for("Open the document in this browser");
    jane_browser.click("button[type=submit]");
    jane_browser.wait_for("id=\"download\"");
    jane_browser.click("#download");
    assert_eq!(
        sha256(&jane_browser.downloaded("Contract 7.pdf")),
        sha256(&data)
    );
    let now = share_of(&gw, share["id"].as_str().unwrap());
    assert_eq!(
        recipient(&now, "jane@example.org")["link"]["downloads_used"],
        1
    );
    assert_eq!(
        recipient(&now, "bob@example.org")["link"]["downloads_used"],
        0
    );
    assert_eq!(
        recipient(&now, "carol@example.org")["link"]["downloads_used"],
        0
    );

    // Carol's link, once her browser holds it, is not Jane's: Jane's browser is asked for a
    // code mailed to Carol.
    let carol_url = url_in(mail_to(&all, "carol@example.org")[0]);
    let carol_browser = Browser::start();
    carol_browser.goto(&carol_url);
    carol_browser.wait_for("Open the document in this browser");
    carol_browser.click("button[type=submit]");
    carol_browser.wait_for("id=\"download\"");
    jane_browser.goto(&carol_url);
    jane_browser.wait_for("we will send a 6-digit code to c***@example.org");
}

#[test]
fn revoke_resend_cancel_and_the_history_per_document() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let gw = gateway(
        &origin,
        &smtp.config(),
        "[admin.callers.dms]\ntoken = \"dms-caller-token\"\ncreated_by = [\"alice\"]\n",
    );
    origin.put("q3.pdf", b"quarterly");
    origin.put("other.pdf", b"other");
    let first = create(
        &gw,
        json!({"store": "docs", "object": "q3.pdf", "created_by": "alice", "expires_at": in_days(3),
               "recipients": [{"email": "jane@example.org"}, {"email": "bob@example.org"}]}),
    );
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(
        first["subject"], "alice shared q3.pdf with you",
        "the subject defaults to who shares what"
    );
    let jane_id = recipient(&first, "jane@example.org")["link_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = recipient(&first, "bob@example.org");
    let (bob_id, bob_url) = (
        bob["link_id"].as_str().unwrap().to_string(),
        bob["link"]["url"].as_str().unwrap().to_string(),
    );
    let jane_url = recipient(&first, "jane@example.org")["link"]["url"]
        .as_str()
        .unwrap()
        .to_string();

    // Revoke Bob: his link is the uniform 404, Jane's still answers.
    let revoked = gw.admin().call(
        "DELETE",
        &format!("/v1/shares/{first_id}/recipients/{bob_id}?by=dms-operator"),
        None,
    );
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    let revoked = revoked.json();
    let bob = recipient(&revoked, "bob@example.org");
    assert_eq!(bob["revoked_by"], "dms-operator");
    assert_eq!(bob["link"]["state"], "cancelled");
    assert_eq!(bob["link"]["cancelled_by"], "dms-operator");
    let gone = get(&bob_url);
    let unknown = unknown_link(&gw);
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, unknown.body);
    assert_ne!(get(&jane_url).status, 404, "Jane's link still answers");
    assert_eq!(
        recipient(&revoked, "jane@example.org")["link"]["state"],
        "active"
    );
    events_when(&gw, &bob_id, |e| {
        e.iter()
            .any(|e| e["kind"] == "link.cancelled" && e["actor"] == "dms-operator")
    });
    // A revoked recipient is not mailed again.
    let again = gw.admin().call(
        "POST",
        &format!("/v1/shares/{first_id}/recipients/{bob_id}/resend"),
        None,
    );
    assert_eq!(again.status, 409, "{}", again.text());

    // Re-send Jane's mail: the same link, at most three times an hour.
    mails(&smtp, 2);
    for n in 1..=3 {
        let resent = gw.admin().call(
            "POST",
            &format!("/v1/shares/{first_id}/recipients/{jane_id}/resend"),
            None,
        );
        assert_eq!(resent.status, 200, "{}", resent.text());
        let jane = recipient(&resent.json(), "jane@example.org").clone();
        assert_eq!(jane["delivery"]["state"], "sent");
        assert_eq!(jane["delivery"]["attempts"], 1 + n);
        let to_jane = mails(&smtp, 2 + n as usize);
        let to_jane = mail_to(&to_jane, "jane@example.org");
        assert_eq!(to_jane.len(), 1 + n as usize);
        assert!(
            to_jane.iter().all(|m| url_in(m) == jane_url),
            "the same link"
        );
    }
    let over = gw.admin().call(
        "POST",
        &format!("/v1/shares/{first_id}/recipients/{jane_id}/resend"),
        None,
    );
    assert_eq!(over.status, 429, "{}", over.text());
    assert_eq!(over.json()["field"], "recipient");
    assert!(over.json()["detail"]
        .as_str()
        .unwrap()
        .contains("3 times in the last hour"));

    // Two more shares: one of the same document by bob's team, one of another document.
    let second = create(
        &gw,
        json!({"store": "docs", "object": "q3.pdf", "created_by": "bob",
               "recipients": [{"email": "dave@example.org"}]}),
    );
    create(
        &gw,
        json!({"store": "docs", "object": "other.pdf", "created_by": "alice",
               "recipients": [{"email": "erin@example.org"}]}),
    );
    // Cancel the first share: every link of it stops, the history says who and when.
    let cancelled = gw.admin().call(
        "DELETE",
        &format!("/v1/shares/{first_id}?by=records-office"),
        None,
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(get(&jane_url).status, 404);
    let history = gw.admin().call("GET", "/v1/shares?object=q3.pdf", None);
    assert_eq!(history.status, 200);
    let history = history.json();
    let rows = history["shares"].as_array().unwrap();
    assert_eq!(
        rows.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        vec![second["id"].clone(), first["id"].clone()],
        "newest first"
    );
    assert_eq!(rows[0]["status"], "active");
    assert_eq!(rows[0]["type"], "share");
    assert_eq!(rows[0]["shared_by"], "bob");
    assert_eq!(rows[1]["status"], "cancelled");
    assert_eq!(rows[1]["cancelled_by"], "records-office");
    assert!(rows[1]["cancelled_at"].is_string());
    assert!(rows[1]["expires_at"].is_string());
    assert!(rows[1]["created_at"].is_string());
    assert_eq!(rows[1]["recipients"].as_array().unwrap().len(), 2);
    let jane_link = gw.admin().link(&jane_id);
    assert_eq!(jane_link["cancelled_by"], "records-office");
    assert_eq!(
        gw.admin().link(&bob_id)["cancelled_by"],
        "dms-operator",
        "a link revoked before keeps who revoked it"
    );
    assert_eq!(
        gw.admin().call("GET", "/v1/shares", None).json()["shares"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A restricted caller sees only the shares of its creators.
    let auth = format!("Bearer {DMS_TOKEN}");
    let mine = request(
        "GET",
        &format!("{}/v1/shares?object=q3.pdf", gw.admin().base),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(mine.status, 200);
    let mine = mine.json();
    assert_eq!(mine["shares"].as_array().unwrap().len(), 1);
    assert_eq!(mine["shares"][0]["id"], first["id"]);
    let theirs = request(
        "GET",
        &format!(
            "{}/v1/shares/{}",
            gw.admin().base,
            second["id"].as_str().unwrap()
        ),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(theirs.status, 404);
}

#[test]
fn a_relay_that_is_down_leaves_the_delivery_failed_and_a_resend_delivers_later() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let port = free_port(); // nothing listens here yet
    let mail = format!(
        "[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\nshare_attempts = 1\n"
    );
    let gw = gateway(&origin, &mail, "");
    let share = create(
        &gw,
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org", "name": "Jane"}]}),
    );
    let id = share["id"].as_str().unwrap().to_string();
    let share = settled(&gw, &id);
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["state"], "failed", "{jane:#}");
    assert_eq!(jane["delivery"]["attempts"], 1);
    assert!(jane["delivery"]["error"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(
        jane["link"]["state"], "active",
        "the link exists; only the mail failed"
    );
    let link_id = jane["link_id"].as_str().unwrap().to_string();
    let events = events_when(&gw, &link_id, |e| {
        e.iter().any(|e| e["kind"] == "share.mailed")
    });
    let mailed = events.iter().find(|e| e["kind"] == "share.mailed").unwrap();
    assert_eq!(mailed["outcome"], "failed");
    assert!(mailed["reason"].is_string());

    let smtp = SmtpSink::start_on(port);
    let resent = gw.admin().call(
        "POST",
        &format!("/v1/shares/{id}/recipients/{link_id}/resend"),
        None,
    );
    assert_eq!(resent.status, 200, "{}", resent.text());
    let share = settled(&gw, &id);
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["state"], "sent", "{jane:#}");
    assert_eq!(jane["delivery"]["attempts"], 2);
    assert_eq!(jane["delivery"]["error"], Value::Null);
    let got = mails(&smtp, 1);
    assert_eq!(url_in(&got[0]), jane["link"]["url"].as_str().unwrap());
}

#[test]
fn what_an_operator_puts_in_a_mail_cannot_break_out_of_it() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let gw = gateway(&origin, &smtp.config(), "");
    origin.put("a.pdf", b"document");
    let base = || {
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org"}]})
    };
    let with = |key: &str, value: Value| {
        let mut b = base();
        b[key] = value;
        b
    };
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"email": format!("r{i}@example.org")}))
        .collect();
    let cases = [
        (
            with("subject", json!("Hi\r\nBcc: victim@example.org")),
            "subject",
        ),
        (with("subject", json!("Hi\nX-Evil: 1")), "subject"),
        (with("subject", json!("x".repeat(201))), "subject"),
        (
            with(
                "recipients",
                json!([{"email": "jane@example.org\r\nBcc: victim@example.org"}]),
            ),
            "recipients[0].email",
        ),
        (
            with(
                "recipients",
                json!([{"email": "jane@example.org", "name": "Jane\r\nBcc: v@example.org"}]),
            ),
            "recipients[0].name",
        ),
        (
            with("recipients", json!([{"email": "Jane <jane@example.org>"}])),
            "recipients[0].email",
        ),
        (
            with(
                "recipients",
                json!([{"email": "a@example.org"}, {"email": "A@Example.org"}]),
            ),
            "recipients[1].email",
        ),
        (
            with(
                "recipients",
                json!([{"email": "a@example.org", "phone": "+1 555"}]),
            ),
            "recipients[0].phone",
        ),
        (
            with("recipients", json!([{"name": "No Address"}])),
            "recipients[0].email",
        ),
        (with("recipients", json!([])), "recipients"),
        (with("recipients", Value::Array(many)), "recipients"),
        (
            with("sender", json!({"name": "Alice\r\nBcc: v@example.org"})),
            "sender.name",
        ),
        (
            with(
                "sender",
                json!({"email": "alice@example.org\nBcc: v@example.org"}),
            ),
            "sender.email",
        ),
        (with("message", json!("stop \u{1b}[2J here")), "message"),
        (with("message", json!("x".repeat(5_001))), "message"),
        (
            with("recipient", json!({"email": "x@example.org"})),
            "recipient",
        ),
        (with("expires_at", json!("yesterday")), "expires_at"),
        (with("store", json!("nope")), "store"),
    ];
    for (body, field) in cases {
        let reply = gw.admin().call("POST", "/v1/shares", Some(body.clone()));
        assert_eq!(reply.status, 422, "{body}: {}", reply.text());
        let error = &reply.json();
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(
            error["detail"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    // Nothing of a refused share was written or mailed.
    assert_eq!(
        gw.admin().call("GET", "/v1/shares", None).json()["shares"],
        json!([])
    );
    assert_eq!(
        gw.admin().call("GET", "/v1/links", None).json()["links"],
        json!([])
    );
    assert!(smtp.messages().is_empty());

    // Line breaks in a message stay inside the body: a bare CR, or a lone dot line with SMTP
    // commands after it, is text of the one mail, never the end of it or a second message.
    let smuggle = create(
        &gw,
        with(
            "message",
            json!(
                "first\r.\r\nMAIL FROM:<x@evil.example>\r\n.\r\nRCPT TO:<victim@example.org>\rlast"
            ),
        ),
    );
    assert_eq!(
        recipient(&smuggle, "jane@example.org")["delivery"]["state"],
        "sent"
    );
    let got = mails(&smtp, 1);
    assert_eq!(got.len(), 1, "one mail, nothing smuggled");
    let text = got[0]["text"].as_str().unwrap();
    assert!(
        text.contains("MAIL FROM:<x@evil.example>") && text.contains("last"),
        "{text}"
    );
    assert!(!got[0]["to"].as_str().unwrap().contains("victim"));
}

#[test]
fn shares_on_redis_and_an_outage_writes_nothing_half() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let mut redis = RedisServer::start();
    let mut opts = GatewayOptions::on_redis(&origin, redis.state());
    opts.extra = smtp.config();
    let gw = Gateway::start_with(opts);
    origin.put("a.pdf", b"document");
    let share = create(
        &gw,
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice", "password": "correct horse",
               "recipients": [{"email": "jane@example.org"}, {"email": "bob@example.org"}]}),
    );
    for r in share["recipients"].as_array().unwrap() {
        assert_eq!(r["delivery"]["state"], "sent");
        assert_eq!(r["link"]["has_password"], true);
    }
    assert_eq!(mails(&smtp, 2).len(), 2);

    redis.kill();
    let refused = gw.admin().call(
        "POST",
        "/v1/shares",
        Some(json!({"store": "docs", "object": "a.pdf",
                    "recipients": [{"email": "carol@example.org"}]})),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    redis.restart();
    let wait = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let reply = gw.admin().call("GET", "/v1/shares?object=a.pdf", None);
        if reply.status == 200 {
            break reply.json();
        }
        assert!(
            Instant::now() < wait,
            "redis never came back: {}",
            reply.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(listed["shares"].as_array().unwrap().len(), 1);
    assert_eq!(listed["shares"][0]["id"], share["id"]);
    assert_eq!(
        gw.admin().call("GET", "/v1/links", None).json()["links"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "no link of the refused share"
    );
    assert_eq!(smtp.messages().len(), 2, "nothing mailed for it");
}

#[test]
fn a_share_whose_links_cannot_be_written_is_recorded_cancelled_and_never_mailed() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let redis = RedisServer::start();
    // A real Redis that lets this gateway write shares, indexes, events and counters but refuses
    // link records: creation fails after the share record and the links' index entries are
    // written, the way a store that fails midway would.
    let acl = redis.cli(&[
        "ACL",
        "SETUSER",
        "gw",
        "on",
        ">gw-secret",
        "allcommands",
        "allchannels",
        "resetkeys",
        "~lg:share:*",
        "~lg:sidx:*",
        "~lg:idx:*",
        "~lg:events:*",
        "~lg:seen:*",
        "~lg:eph:*",
        "~lg:tally:*",
    ]);
    assert_eq!(acl.trim(), "OK", "{acl}");
    let mut opts = GatewayOptions::on_redis(
        &origin,
        format!(
            "backend = \"redis\"\nredis_url = \"redis://gw:gw-secret@127.0.0.1:{}\"\nredis_timeout_ms = 400",
            redis.port
        ),
    );
    opts.extra = smtp.config();
    let gw = Gateway::start_with(opts);
    origin.put("a.pdf", b"document");
    let refused = gw.admin().call(
        "POST",
        "/v1/shares",
        Some(
            json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
                    "recipients": [{"email": "jane@example.org"}, {"email": "bob@example.org"}]}),
        ),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    let listed = gw.admin().call("GET", "/v1/shares?object=a.pdf", None);
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    let rows = listed["shares"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the record says what happened: {listed:#}");
    assert_eq!(rows[0]["status"], "cancelled");
    assert_eq!(rows[0]["cancelled_by"], "linkgate");
    for r in rows[0]["recipients"].as_array().unwrap() {
        assert_eq!(r["delivery"]["state"], "pending", "never mailed");
        assert_eq!(r["delivery"]["attempts"], 0);
    }
    let id = rows[0]["id"].as_str().unwrap();
    // It never became complete, so nothing of it can be mailed later either.
    let link = rows[0]["recipients"][0]["link_id"].as_str().unwrap();
    let resend = gw.admin().call(
        "POST",
        &format!("/v1/shares/{id}/recipients/{link}/resend"),
        None,
    );
    assert_eq!(resend.status, 409, "{}", resend.text());
    assert!(smtp.messages().is_empty());
}

fn cli(gw: &Gateway, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["share", "--config"])
        .arg(&gw.config_path)
        .args(args)
        .output()
        .expect("linkgate share");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_cli_creates_lists_revokes_and_cancels_shares() {
    let origin = Origin::start();
    let smtp = SmtpSink::start();
    let gw = gateway(&origin, &smtp.config(), "");
    origin.put("a.pdf", b"document");
    let created: Value = serde_json::from_str(&cli(
        &gw,
        &[
            "create",
            "--store",
            "docs",
            "--object",
            "a.pdf",
            "--to",
            "Jane Doe <jane@example.org>",
            "--to",
            "bob@example.org",
            "--subject",
            "For you",
            "--message",
            "Hi",
            "--created-by",
            "alice",
            "--max-downloads",
            "2",
            "--json",
        ],
    ))
    .expect("--json prints the API's JSON");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(recipient(&created, "jane@example.org")["name"], "Jane Doe");
    assert_eq!(created["recipients"][0]["link"]["max_downloads"], 2);
    assert_eq!(mails(&smtp, 2).len(), 2);
    let bob_link = recipient(&created, "bob@example.org")["link_id"]
        .as_str()
        .unwrap()
        .to_string();

    let listed = cli(&gw, &["list", "--object", "a.pdf"]);
    let mut lines = listed.lines();
    assert!(lines.next().unwrap().starts_with("ID"), "{listed}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id) && row.contains("alice") && row.contains("active"),
        "{listed}"
    );
    assert!(
        row.contains("jane@example.org, bob@example.org"),
        "{listed}"
    );

    let revoked = cli(&gw, &["revoke", &id, &bob_link, "--by", "ops"]);
    let bob_row = revoked
        .lines()
        .find(|l| l.starts_with("bob@example.org"))
        .unwrap_or_else(|| panic!("{revoked}"));
    assert!(bob_row.contains("cancelled"), "{revoked}");

    let shown = cli(&gw, &["show", &id]);
    assert!(shown.contains("subject: For you"), "{shown}");
    assert!(shown
        .lines()
        .any(|l| l.starts_with("jane@example.org") && l.contains("sent")));

    let cancelled: Value =
        serde_json::from_str(&cli(&gw, &["cancel", &id, "--by", "ops", "--json"])).unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancelled_by"], "ops");
    let history = cli(&gw, &["list"]);
    assert!(history.contains("cancelled  ops"), "{history}");
}

/// A relay that accepts connections and never says a word until released (then hangs up).
struct SilentRelay {
    port: u16,
    release: std::sync::mpsc::Sender<()>,
    accepted: std::sync::mpsc::Receiver<()>,
}

impl SilentRelay {
    fn start() -> SilentRelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (accept_tx, accepted) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            if let Ok((conn, _)) = listener.accept() {
                held.push(conn);
                let _ = accept_tx.send(());
            }
            // Hold the connection silent until the test says so, then close it.
            let _ = released.recv();
            drop(held);
        });
        SilentRelay {
            port,
            release,
            accepted,
        }
    }
}

#[test]
fn a_slow_relay_answers_pending_and_the_share_shows_the_outcome_later() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let relay = SilentRelay::start();
    let mail = format!(
        "[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\ntimeout_seconds = 300\nshare_attempts = 1\n",
        relay.port
    );
    let gw = gateway(&origin, &mail, "");
    // The relay never greets: the call answers once its wait for mails is over, with the
    // delivery still pending (and the link already usable).
    let share = create(
        &gw,
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org"}]}),
    );
    relay
        .accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway connected to the relay");
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["state"], "pending", "{jane:#}");
    assert_eq!(jane["delivery"]["attempts"], 0);
    assert_eq!(jane["link"]["state"], "active");
    // The relay hangs up: the share shows the failure as soon as it is known.
    relay.release.send(()).expect("release");
    let id = share["id"].as_str().unwrap();
    let settled = settled(&gw, id);
    let jane = recipient(&settled, "jane@example.org");
    assert_eq!(jane["delivery"]["state"], "failed", "{jane:#}");
    assert_eq!(jane["delivery"]["attempts"], 1);
}

/// The share's deliveries once `done` holds for every recipient (polled; bounded by `limit`).
fn share_when(gw: &Gateway, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let reply = gw.admin().call("GET", &format!("/v1/shares/{id}"), None);
        if reply.status == 200 {
            let share = reply.json();
            if share["recipients"].as_array().unwrap().iter().all(&done) {
                return share;
            }
            assert!(Instant::now() < deadline, "not there yet: {share:#}");
        } else {
            assert!(Instant::now() < deadline, "{}", reply.text());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `[mail]` table for a relay on `port` whose attempts are bounded to 5 s (3 × 5 + 5 s an
/// attempt, so a mail held by a gateway that died falls due 30 s after it was taken).
fn held_mail(port: u16) -> String {
    format!(
        "[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\ntimeout_seconds = 5\nshare_retry_seconds = 1\n"
    )
}

/// Starts `POST /v1/shares` on `admin` in a thread of its own (its answer never comes when the
/// gateway is killed meanwhile).
fn create_in_background(admin: Admin, body: Value) {
    std::thread::spawn(move || {
        let _ = admin.call("POST", "/v1/shares", Some(body));
    });
}

fn only_share(gw: &Gateway) -> String {
    let listed = gw.admin().call("GET", "/v1/shares", None).json();
    let shares = listed["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "{listed:#}");
    shares[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn a_gateway_killed_while_a_mail_is_pending_sends_it_after_a_restart() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let relay = SilentRelay::start();
    let mail = held_mail(relay.port);
    let gw = gateway(&origin, &mail, "");
    create_in_background(
        gw.admin(),
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org", "name": "Jane"}]}),
    );
    relay
        .accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway connected to the relay");
    // SIGKILL while the relay holds the mail: nothing was sent or recorded.
    let dir = gw.stop();
    relay.release.send(()).expect("release");
    let smtp = SmtpSink::start_on(relay.port);

    let mut opts = GatewayOptions::for_origin(&origin);
    opts.db = Some(dir.path().join("linkgate.db"));
    opts.extra = mail;
    let gw = Gateway::start_with(opts);
    let id = only_share(&gw);
    let share = share_when(&gw, &id, Duration::from_secs(120), |r| {
        r["delivery"]["state"] == "sent"
    });
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["attempts"], 1, "{jane:#}");
    let got = mails(&smtp, 1);
    assert_eq!(got.len(), 1, "mailed once");
    assert_eq!(url_in(&got[0]), jane["link"]["url"].as_str().unwrap());
    drop(dir);
}

#[test]
fn on_redis_a_gateway_killed_mid_send_leaves_its_mails_to_another_which_mails_each_once() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let redis = RedisServer::start();
    let relay = SilentRelay::start();
    let mail = held_mail(relay.port);
    let start = || {
        let mut opts = GatewayOptions::on_redis(&origin, redis.state());
        opts.extra = mail.clone();
        Gateway::start_with(opts)
    };
    let (a, b) = (start(), start());
    create_in_background(
        a.admin(),
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org"}, {"email": "bob@example.org"}]}),
    );
    relay
        .accepted
        .recv_timeout(Duration::from_secs(20))
        .expect("the gateway connected to the relay");
    drop(a.stop());
    relay.release.send(()).expect("release");
    let smtp = SmtpSink::start_on(relay.port);

    let id = only_share(&b);
    let share = share_when(&b, &id, Duration::from_secs(120), |r| {
        r["delivery"]["state"] == "sent"
    });
    let got = mails(&smtp, 2);
    for email in ["jane@example.org", "bob@example.org"] {
        let theirs = mail_to(&got, email);
        assert_eq!(theirs.len(), 1, "{email} mailed once: {got:#?}");
        assert_eq!(
            url_in(theirs[0]),
            recipient(&share, email)["link"]["url"].as_str().unwrap()
        );
    }
    assert_eq!(smtp.messages().len(), 2);
}

#[test]
fn a_relay_that_refuses_for_good_leaves_the_delivery_failed_after_the_bounded_attempts() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let port = free_port(); // nothing ever listens here
    let mail = format!(
        "[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\nshare_attempts = 3\nshare_retry_seconds = 1\n"
    );
    let gw = gateway(&origin, &mail, "");
    let share = create(
        &gw,
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org"}]}),
    );
    let id = share["id"].as_str().unwrap().to_string();
    let share = share_when(&gw, &id, Duration::from_secs(60), |r| {
        r["delivery"]["state"] == "failed"
    });
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["attempts"], 3, "{jane:#}");
    assert!(
        jane["delivery"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{jane:#}"
    );
    assert_eq!(jane["delivery"]["next_attempt_at"], Value::Null);
    let link_id = jane["link_id"].as_str().unwrap();
    let events = events_when(&gw, link_id, |e| {
        e.iter().filter(|e| e["kind"] == "share.mailed").count() == 3
    });
    let mailed: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "share.mailed")
        .collect();
    assert!(mailed.iter().all(|e| e["outcome"] == "failed"));
    assert_eq!(mailed[0]["detail"]["final"], false);
    assert_eq!(mailed[2]["detail"]["final"], true);
    // No fourth attempt follows.
    let later = share_of(&gw, &id);
    assert_eq!(
        recipient(&later, "jane@example.org")["delivery"]["attempts"],
        3
    );
}

/// `share create` takes the same typed link flags as `link create` and the share's own: every
/// field set from the command line, read back from the share and from a recipient's link.
#[test]
fn the_cli_creates_a_share_with_every_field() {
    const HOOK_SECRET: &str = "a-share-webhook-secret-from-the-env";
    const PASSWORD: &str = "share password from env";
    let origin = Origin::start();
    origin.put("c/c-7.pdf", b"contract");
    origin.put("c/c-7-low.pdf", b"low");
    let smtp = SmtpSink::start();
    // Per-link webhooks to loopback only; the receiver is never reached (nothing is asked of it).
    let gw = gateway(
        &origin,
        &smtp.config(),
        "[webhooks]\ntimeout_seconds = 1\nbackoff_base_seconds = 1\nbackoff_max_seconds = 2\nallowed_hosts = [\"127.0.0.1\"]\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let note = dir.path().join("note.txt");
    std::fs::write(&note, "Hello,\nplease sign and return by Friday.\n").unwrap();
    let expires = in_days(30);
    let out = Command::new(bin())
        .args(["share", "--config"])
        .arg(&gw.config_path)
        .args([
            "create",
            "--store",
            "docs",
            "--object",
            "c/c-7.pdf",
            "--filename",
            "Contract 7.pdf",
            "--rendition",
            "low=c/c-7-low.pdf=Contract 7 (low).pdf",
            "--rights",
            "download,download:low,upload,approve",
            "--expires-at",
            &expires,
            "--max-downloads",
            "4",
            "--created-by",
            "alice",
            "--password-env",
            "CLI_SHARE_PASSWORD",
            "--on-change",
            "refuse",
            "--upload-folder",
            "incoming/c-7",
            "--upload-overwrite",
            "--upload-max-files",
            "2",
            "--upload-max-bytes",
            "100000",
            "--upload-types",
            "application/pdf,image/*",
            "--webhook-url",
            "http://127.0.0.1:9/hooks",
            "--webhook-secret-env",
            "CLI_SHARE_HOOK_SECRET",
            "--webhook-events",
            "review.decided,download.completed",
            "--notify-sender",
            "alice@example.org",
            "--to",
            "Jane Doe <jane@example.org>",
            "--to",
            "bob@example.org",
            "--require-code",
            "--subject",
            "Contract 7",
            "--message-file",
        ])
        .arg(&note)
        .args([
            "--sender-name",
            "Alice Sender",
            "--sender-email",
            "alice@example.org",
            "--json",
        ])
        .env("CLI_SHARE_PASSWORD", PASSWORD)
        .env("CLI_SHARE_HOOK_SECRET", HOOK_SECRET)
        .output()
        .expect("linkgate share create");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    for secret in [HOOK_SECRET, PASSWORD] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret was printed"
        );
    }
    let created: Value = serde_json::from_str(&stdout).expect("--json prints the API's JSON");
    let id = created["id"].as_str().unwrap();

    let share = share_of(&gw, id);
    assert_eq!(share["subject"], "Contract 7");
    assert_eq!(
        share["message"],
        "Hello,\nplease sign and return by Friday.\n"
    );
    assert_eq!(
        share["sender"],
        json!({"name": "Alice Sender", "email": "alice@example.org"})
    );
    assert_eq!(share["shared_by"], "alice");
    assert_eq!(share["expires_at"], expires.as_str());
    assert_eq!(share["objects"], json!(["c/c-7.pdf"]));
    assert_eq!(recipient(&share, "jane@example.org")["name"], "Jane Doe");
    assert_eq!(recipient(&share, "bob@example.org")["name"], Value::Null);

    for email in ["jane@example.org", "bob@example.org"] {
        let link_id = recipient(&share, email)["link_id"].as_str().unwrap();
        let link = gw.admin().link(link_id);
        assert!(!link.to_string().contains(HOOK_SECRET));
        assert_eq!(link["share"], id);
        assert_eq!(link["documents"][0]["object"], "c/c-7.pdf");
        assert_eq!(link["documents"][0]["filename"], "Contract 7.pdf");
        assert_eq!(
            link["documents"][0]["renditions"]["low"]["filename"],
            "Contract 7 (low).pdf"
        );
        // The API lists rights in its own order: compared as a set.
        let mut rights: Vec<&str> = link["rights"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        rights.sort_unstable();
        assert_eq!(rights, ["approve", "download", "download:low", "upload"]);
        assert_eq!(link["expires_at"], expires.as_str());
        assert_eq!(link["max_downloads"], 4);
        assert_eq!(link["created_by"], "alice");
        assert_eq!(link["has_password"], true);
        assert_eq!(link["type"], "guest");
        assert_eq!(link["on_change"], "refuse");
        assert_eq!(
            link["upload"],
            json!({"folder": "incoming/c-7", "overwrite": true, "max_files": 2,
                   "max_bytes": 100000, "allowed_types": ["application/pdf", "image/*"]})
        );
        assert_eq!(
            link["webhook"],
            json!({"url": "http://127.0.0.1:9/hooks",
                   "events": ["review.decided", "download.completed"]})
        );
        assert_eq!(link["notify_sender"], "alice@example.org");
        assert_eq!(
            (
                link["recipient"]["email"].as_str(),
                link["recipient"]["require_code"].as_bool()
            ),
            (Some(email), Some(true))
        );
    }

    // Each recipient got the subject and the message from the file.
    let all = mails(&smtp, 2);
    for email in ["jane@example.org", "bob@example.org"] {
        let mail = mail_to(&all, email)[0];
        assert_eq!(mail["subject"], "Contract 7");
        assert!(mail["text"]
            .as_str()
            .unwrap()
            .contains("please sign and return by Friday."));
        assert_eq!(mail["reply_to"], "alice@example.org");
    }

    // The table shows the share's facts; the secret is not in it either.
    let shown = cli(&gw, &["show", id]);
    assert!(shown.contains("subject: Contract 7"), "{shown}");
    assert!(
        shown.contains("sender: Alice Sender <alice@example.org>\nmessage:\n  Hello,\n"),
        "{shown}"
    );
    assert!(!shown.contains(HOOK_SECRET));
}

#[test]
fn on_redis_a_mail_being_retried_across_a_redis_outage_is_sent_when_both_are_back() {
    let origin = Origin::start();
    origin.put("a.pdf", b"document");
    let mut redis = RedisServer::start();
    let port = free_port(); // no relay yet
    let mut opts = GatewayOptions::on_redis(&origin, redis.state());
    opts.extra = format!(
        "[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Shares <shares@example.org>\"\nshare_attempts = 20\nshare_retry_seconds = 1\n"
    );
    // The workers say a Redis outage at debug (the change follower warns of it once).
    opts.rust_log = Some("info,linkgate::state::outage=debug".into());
    let gw = Gateway::start_with(opts);
    let share = create(
        &gw,
        json!({"store": "docs", "object": "a.pdf", "created_by": "alice",
               "recipients": [{"email": "jane@example.org"}]}),
    );
    let jane = recipient(&share, "jane@example.org");
    assert_eq!(jane["delivery"]["state"], "pending", "{jane:#}");
    assert!(jane["delivery"]["error"].is_string(), "{jane:#}");
    assert!(jane["delivery"]["next_attempt_at"].is_string(), "{jane:#}");

    // The link state goes away while the mail waits for its next attempt; the relay comes up.
    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    let said = |text: &str| {
        gw.log()
            .lines()
            .any(|l| l.contains(text) && l.contains("worker=\"share mail\""))
    };
    while !said("link state unreachable; will retry") {
        assert!(Instant::now() < deadline, "the sweeper never noticed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let smtp = SmtpSink::start_on(port);
    redis.restart();
    let id = share["id"].as_str().unwrap();
    let share = share_when(&gw, id, Duration::from_secs(90), |r| {
        r["delivery"]["state"] == "sent"
    });
    let got = mails(&smtp, 1);
    assert_eq!(
        url_in(&got[0]),
        recipient(&share, "jane@example.org")["link"]["url"]
            .as_str()
            .unwrap()
    );
    assert!(said("link state calls work again"));
}
