//! Guessing and lockout, tried as an attacker who holds the link would: parallel password guesses
//! from one address and from many (distinct loopback source addresses, which the gateway sees as
//! distinct clients), on one instance and on two sharing a Redis; the proof of work past a link's
//! budget, solved by a script here and by the page's own script in headless Chromium; a flood of
//! code requests; code guessing; and a store that fails mid-way. Real gateway, nginx, Redis, SMTP.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "right-password-1";

/// One HTTP/1.1 request sent from the loopback address `ip` (any 127.x.y.z works on Linux).
async fn send_from(
    ip: [u8; 4],
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Reply {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let target: SocketAddr = host.parse().expect("host:port");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((ip, 0)))
        .expect("bind a loopback source address");
    let mut stream = socket.connect(target).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    if let Some(b) = body {
        stream.write_all(b).await.expect("write body");
    }
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `X-Link-Password` guesses, all sent at once; each is (source address, url, password).
fn guesses(all: Vec<([u8; 4], String, String)>) -> Vec<Reply> {
    runtime().block_on(async {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(all.len()));
        let tasks: Vec<_> = all
            .into_iter()
            .map(|(ip, url, pw)| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    send_from(ip, &url, "GET", &[("x-link-password".into(), pw)], None).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    })
}

fn guess_from(ip: [u8; 4], url: &str, headers: &[(&str, &str)]) -> Reply {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    runtime().block_on(send_from(ip, url, "GET", &headers, None))
}

/// A browser without a browser (cookies, forms) on a chosen source address.
struct BoundJar {
    ip: [u8; 4],
    jar: Jar,
}

impl BoundJar {
    fn new(ip: [u8; 4]) -> BoundJar {
        BoundJar {
            ip,
            jar: Jar::default(),
        }
    }

    fn page(&mut self, url: &str) -> Reply {
        let headers = vec![
            ("accept".to_string(), "text/html,*/*".to_string()),
            ("cookie".to_string(), self.jar.header()),
        ];
        let r = runtime().block_on(send_from(self.ip, url, "GET", &headers, None));
        self.jar.keep(&r);
        r
    }

    fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        let headers = vec![
            ("accept".to_string(), "text/html".to_string()),
            ("cookie".to_string(), self.jar.header()),
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded".to_string(),
            ),
        ];
        let r = runtime().block_on(send_from(
            self.ip,
            url,
            "POST",
            &headers,
            Some(body.join("&").as_bytes()),
        ));
        self.jar.keep(&r);
        r
    }
}

fn statuses(replies: &[Reply]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in replies {
        *m.entry(r.status).or_insert(0) += 1;
    }
    m
}

fn count(events: &[Value], kind: &str, outcome: &str) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["outcome"] == outcome)
        .count()
}

/// The challenge and difficulty of a `429` that asks for a proof of work.
fn challenge_of(r: &Reply) -> (String, u32) {
    let h = r
        .header("x-link-challenge")
        .unwrap_or_else(|| panic!("no X-Link-Challenge on {}: {}", r.status, r.text()));
    let (challenge, bits) = h.split_once("; bits=").expect("challenge; bits=n");
    (challenge.to_string(), bits.parse().expect("bits"))
}

/// What a script does: finds n with SHA-256(challenge ":" n) starting with `bits` zero bits.
fn solve(challenge: &str, bits: u32) -> String {
    (0u64..)
        .map(|n| format!("{challenge}:{n}"))
        .find(|candidate| {
            let digest = Sha256::digest(candidate.as_bytes());
            let mut zeros = 0;
            for byte in digest {
                zeros += byte.leading_zeros();
                if byte != 0 {
                    break;
                }
            }
            zeros >= bits
        })
        .expect("a solution")
}

fn setup(extra: &str) -> (Origin, SmtpSink, Gateway) {
    let origin = Origin::start();
    origin.put("doc.pdf", &pseudo_random(10_000, 5));
    let smtp = SmtpSink::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "{}\n[limits]\npage_requests_per_minute = 100000\n{extra}",
            smtp.config()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    (origin, smtp, gw)
}

fn password_link(gw: &Gateway) -> (String, String) {
    let v = gw.admin().create(
        json!({"store": "docs", "object": "doc.pdf", "filename": "Doc.pdf", "password": PASSWORD}),
    );
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

fn assert_exactly_five_checked(replies: &[Reply], gw: &Gateway, id: &str) {
    let seen = statuses(replies);
    assert_eq!(
        seen.get(&401),
        Some(&5),
        "exactly the cap of guesses is checked: {seen:?}"
    );
    assert_eq!(
        seen.get(&429),
        Some(&(replies.len() - 5)),
        "the rest are refused unchecked: {seen:?}"
    );
    assert!(replies
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| r.header("retry-after").is_some()));
    let events = events_when(gw, id, |e| {
        count(e, "password.failed", "failed") + count(e, "password.failed", "refused")
            >= replies.len()
    });
    assert_eq!(
        count(&events, "password.failed", "failed"),
        5,
        "the audit shows 5 checked guesses"
    );
}

#[test]
fn a_hundred_parallel_guesses_from_one_address_get_exactly_five_checks() {
    let (_origin, _smtp, gw) = setup("");
    let (id, url) = password_link(&gw);
    let replies = guesses(
        (0..100)
            .map(|i| ([127, 0, 0, 7], url.clone(), format!("wrong-{i}")))
            .collect(),
    );
    assert_exactly_five_checked(&replies, &gw, &id);
    // The same address stays refused, even with the right password, and costs no hashing.
    assert_eq!(
        guess_from([127, 0, 0, 7], &url, &[("x-link-password", PASSWORD)]).status,
        429
    );
}

#[test]
fn two_instances_on_one_redis_hold_the_same_cap() {
    let origin = Origin::start();
    origin.put("doc.pdf", &pseudo_random(10_000, 5));
    let redis = RedisServer::start();
    let (a, b) = Gateway::pair_on_redis(&origin, &redis);
    let (id, url) = password_link(&a);
    let url_b = b.same_link(&url);
    let replies = guesses(
        (0..100)
            .map(|i| {
                (
                    [127, 0, 0, 8],
                    if i % 2 == 0 {
                        url.clone()
                    } else {
                        url_b.clone()
                    },
                    format!("wrong-{i}"),
                )
            })
            .collect(),
    );
    assert_exactly_five_checked(&replies, &a, &id);
    assert_eq!(
        guess_from([127, 0, 0, 8], &url_b, &[("x-link-password", PASSWORD)]).status,
        429
    );
    assert_eq!(
        guess_from([127, 0, 0, 9], &url_b, &[("x-link-password", PASSWORD)]).status,
        200,
        "another address is not affected"
    );
}

#[test]
fn one_address_guessing_never_locks_out_the_recipient() {
    let (_origin, _smtp, gw) = setup("");
    let (_id, url) = password_link(&gw);
    let replies = guesses(
        (0..60)
            .map(|i| ([127, 0, 0, 11], url.clone(), format!("wrong-{i}")))
            .collect(),
    );
    assert_eq!(statuses(&replies).get(&401), Some(&5));
    let recipient = guess_from([127, 0, 0, 12], &url, &[("x-link-password", PASSWORD)]);
    assert_eq!(
        recipient.status,
        200,
        "the recipient from another address is served at once: {}",
        recipient.text()
    );
    assert_eq!(recipient.body.len(), 10_000);
}

/// Spends the link's proof-free budget (50) from 12 addresses, 5 guesses each; returns the
/// replies.
fn spend_budget(url: &str) -> Vec<Reply> {
    guesses(
        (0..60)
            .map(|i| {
                (
                    [127, 0, 1, 10 + (i / 5) as u8],
                    url.to_string(),
                    format!("wrong-{i}"),
                )
            })
            .collect(),
    )
}

#[test]
fn past_the_link_budget_a_distributed_guesser_must_work_and_the_recipient_still_gets_in() {
    let (_origin, _smtp, gw) = setup("");
    let (id, url) = password_link(&gw);
    let replies = spend_budget(&url);
    let seen = statuses(&replies);
    assert_eq!(
        seen.get(&401),
        Some(&50),
        "exactly the link's budget is checked without a proof: {seen:?}"
    );
    for r in replies.iter().filter(|r| r.status == 429) {
        let (_, bits) = challenge_of(r);
        assert!((16..=20).contains(&bits), "{bits}");
    }
    // The rightful recipient, from a fresh address, is asked for a few seconds of work, then served.
    let started = Instant::now();
    let asked = guess_from([127, 0, 1, 200], &url, &[("x-link-password", PASSWORD)]);
    assert_eq!(asked.status, 429, "{}", asked.text());
    assert!(
        asked.text().contains("X-Link-Proof"),
        "the answer says what to do: {}",
        asked.text()
    );
    let (challenge, bits) = challenge_of(&asked);
    let proof = solve(&challenge, bits);
    let served = guess_from(
        [127, 0, 1, 200],
        &url,
        &[("x-link-password", PASSWORD), ("x-link-proof", &proof)],
    );
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.body.len(), 10_000);
    assert!(started.elapsed() < Duration::from_secs(60));
    // A proof works once, and a forged one is refused; neither is hashed.
    let replayed = guess_from(
        [127, 0, 1, 201],
        &url,
        &[("x-link-password", "wrong"), ("x-link-proof", &proof)],
    );
    assert_eq!(replayed.status, 429);
    challenge_of(&replayed);
    let fresh = challenge_of(&guess_from(
        [127, 0, 1, 201],
        &url,
        &[("x-link-password", "wrong")],
    ));
    let forged = format!("{}:{}", fresh.0, "12345678901234567");
    let refused = guess_from(
        [127, 0, 1, 201],
        &url,
        &[("x-link-password", "wrong"), ("x-link-proof", &forged)],
    );
    assert!(
        refused.status == 400 || refused.status == 429,
        "{}",
        refused.status
    );
    // A proven wrong guess is checked (and counted for its address). This proof comes from the
    // Python one-liner the 429 answer gives.
    let asked = guess_from([127, 0, 1, 202], &url, &[("x-link-password", "wrong")]);
    let line = asked
        .text()
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("python3 -c"))
        .expect("a one-liner")
        .to_string();
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .output()
        .expect("python3");
    let proven = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        proven.starts_with(&challenge_of(&asked).0),
        "{proven:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        guess_from(
            [127, 0, 1, 201],
            &url,
            &[("x-link-password", "wrong"), ("x-link-proof", &proven)]
        )
        .status,
        401
    );
    let events = events_when(&gw, &id, |e| {
        count(e, "password.passed", "ok") == 1 && count(e, "password.failed", "failed") == 51
    });
    assert_eq!(
        count(&events, "password.failed", "failed"),
        51,
        "the replayed and forged proofs were not checked"
    );
}

#[test]
fn past_the_link_budget_a_browser_solves_the_challenge_by_itself() {
    let (_origin, _smtp, gw) = setup("");
    let (_id, url) = password_link(&gw);
    spend_budget(&url);
    // Without JavaScript the page says what is going on.
    let mut plain = Jar::default();
    let page = plain.page(&url);
    let text = page.text();
    assert!(
        text.contains("heavy guessing") && text.contains("JavaScript"),
        "{text}"
    );
    let csp = page.header("content-security-policy").unwrap().to_string();
    let refused = plain.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf_of(&text)),
            ("password", PASSWORD),
        ],
    );
    assert_eq!(refused.status, 429);
    assert!(refused.text().contains("JavaScript"), "{}", refused.text());
    assert!(
        refused.text().contains("id=\"password\""),
        "the form is offered again"
    );
    // The page's script is allowed by the page's CSP, by its hash, and nothing else is.
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe"),
        "{csp}"
    );
    // Headless Chromium, from an address that never guessed: type, submit, wait for the work.
    let browser = Browser::start();
    let started = Instant::now();
    browser.goto(&url);
    browser.wait_for("protected by a password");
    browser.type_into("#password", PASSWORD);
    browser.click("button[type=submit]");
    loop {
        let source = browser.source();
        if source.contains("id=\"download\"") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the browser was not served within 60 s: {source}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("served in the browser after {:?}", started.elapsed());
}

fn code_link(gw: &Gateway) -> (String, String) {
    let v = gw.admin().create(
        json!({"store": "docs", "object": "doc.pdf", "filename": "Doc.pdf",
        "recipient": {"email": "jane@example.org", "require_code": true}}),
    );
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

fn codes_in(smtp: &SmtpSink) -> Vec<String> {
    smtp.messages()
        .iter()
        .filter_map(|m| {
            m.lines()
                .map(str::trim)
                .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .collect()
}

/// Asks for a code in a fresh browser; returns the browser and the answer.
fn ask_for_code(url: &str, ip: [u8; 4]) -> (BoundJar, Reply) {
    let mut jar = BoundJar::new(ip);
    let page = jar.page(url);
    let r = jar.post(
        url,
        &[("action", "send_code"), ("csrf", &csrf_of(&page.text()))],
    );
    (jar, r)
}

#[test]
fn a_flood_of_code_requests_sends_at_most_ten_mails_and_the_recipient_still_gets_in() {
    let (_origin, smtp, gw) = setup("");
    let (id, url) = code_link(&gw);
    let answers: Vec<Reply> = (0..12)
        .map(|i| ask_for_code(&url, [127, 0, 2, 10 + i]).1)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().len() < 10 {
        assert!(
            Instant::now() < deadline,
            "mails: {}",
            smtp.messages().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let codes = codes_in(&smtp);
    assert_eq!(codes.len(), 10, "at most 10 code mails per link and hour");
    assert!(
        codes.iter().all(|c| c == &codes[0]),
        "the code still valid is sent again, not a new one: {codes:?}"
    );
    for late in &answers[10..] {
        let text = late.text();
        assert!(
            text.contains("id=\"code\""),
            "past the mail cap the page still offers to enter the mailed code: {text}"
        );
        assert!(text.contains("No new mail was sent"), "and says so: {text}");
    }
    // The recipient's own browser, on a fresh address, asks too: no mail, but the mailed code works.
    let (mut mine, asked) = ask_for_code(&url, [127, 0, 2, 99]);
    assert!(asked.text().contains("id=\"code\""), "{}", asked.text());
    let page = mine.page(&url);
    assert!(page.text().contains("id=\"code\""), "{}", page.text());
    let ok = mine.post(
        &url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&page.text())),
            ("code", &codes[0]),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert!(mine.page(&url).text().contains("id=\"download\""));
    assert_eq!(codes_in(&smtp).len(), 10);
    events_when(&gw, &id, |e| {
        count(e, "code.passed", "ok") == 1 && count(e, "code.sent", "refused") >= 3
    });
}

#[test]
fn a_throttled_resend_still_shows_the_code_box() {
    let (_origin, smtp, gw) = setup("");
    let (_id, url) = code_link(&gw);
    let (mut jar, first) = ask_for_code(&url, [127, 0, 3, 1]);
    assert_eq!(first.status, 303);
    let code = smtp.code(1);
    let page = jar.page(&url);
    let again = jar.post(
        &url,
        &[("action", "send_code"), ("csrf", &csrf_of(&page.text()))],
    );
    assert_eq!(again.status, 429, "resends are throttled per browser");
    assert!(
        again.text().contains("id=\"code\""),
        "the recipient can go on entering the code: {}",
        again.text()
    );
    let ok = jar.post(
        &url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&again.text())),
            ("code", &code),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
}

#[test]
fn code_guesses_are_capped_per_browser_address_and_code_and_any_browser_may_enter_the_code() {
    let (_origin, smtp, gw) = setup("");
    let (id, url) = code_link(&gw);
    let (_asker, first) = ask_for_code(&url, [127, 0, 4, 1]);
    assert_eq!(first.status, 303);
    let code = smtp.code(1);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // One attacking address, a new browser each time: 5 checks for the address, then refused.
    let mut tries = Vec::new();
    for _ in 0..8 {
        let mut jar = BoundJar::new([127, 0, 4, 66]);
        let page = jar.page(&url);
        tries.push(
            jar.post(
                &url,
                &[
                    ("action", "verify_code"),
                    ("csrf", &csrf_of(&page.text())),
                    ("code", wrong),
                ],
            )
            .status,
        );
    }
    assert_eq!(tries.iter().filter(|s| **s == 401).count(), 5, "{tries:?}");
    assert!(tries[5..].iter().all(|s| *s == 429), "{tries:?}");
    // The recipient reads the mail on another device: that browser enters the code and is verified.
    let mut other = BoundJar::new([127, 0, 4, 2]);
    let page = other.page(&url);
    assert!(
        page.text().contains("id=\"code\""),
        "a browser of this link may enter the current code: {}",
        page.text()
    );
    let ok = other.post(
        &url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&page.text())),
            ("code", &code),
        ],
    );
    assert_eq!(ok.status, 303, "{}", ok.text());
    // Many addresses: 20 wrong codes in all discard the code.
    let (_asker, _) = ask_for_code(&url, [127, 0, 4, 3]);
    let code = smtp.code(2);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut answers = Vec::new();
    for n in 0..24u8 {
        let mut jar = BoundJar::new([127, 0, 5, 10 + n / 4]);
        let page = jar.page(&url);
        answers.push(
            jar.post(
                &url,
                &[
                    ("action", "verify_code"),
                    ("csrf", &csrf_of(&page.text())),
                    ("code", wrong),
                ],
            )
            .text(),
        );
    }
    assert!(
        answers[..20]
            .iter()
            .all(|t| t.contains("That code is not right")),
        "20 tries are checked"
    );
    assert!(
        answers[20].contains("no longer works"),
        "then the code is discarded: {}",
        answers[20]
    );
    assert!(answers[21..]
        .iter()
        .all(|t| !t.contains("That code is not right")));
    let mut late = BoundJar::new([127, 0, 5, 200]);
    let page = late.page(&url);
    let r = late.post(
        &url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&page.text())),
            ("code", &code),
        ],
    );
    assert_ne!(r.status, 303, "a code guessed at 20 times no longer works");
    events_when(&gw, &id, |e| count(e, "code.failed", "failed") >= 25);
}

#[test]
fn past_the_lifetime_bound_no_new_browser_is_verified_by_code_and_trusted_ones_keep_working() {
    let origin = Origin::start();
    origin.put("doc.pdf", &pseudo_random(10_000, 5));
    let smtp = SmtpSink::start();
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: smtp.config(),
        ..GatewayOptions::on_redis(&origin, redis.state_with_timeout(5_000))
    });
    let v = gw.admin().create(json!({"store": "docs", "object": "doc.pdf", "filename": "Doc.pdf", "recipient": {"email": "jane@example.org"}}));
    let (id, url) = (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    );
    let mut first = Jar::default();
    let page = first.page(&url);
    assert_eq!(
        first
            .post(
                &url,
                &[("action", "trust"), ("csrf", &csrf_of(&page.text()))]
            )
            .status,
        303
    );
    assert!(first.page(&url).text().contains("id=\"download\""));
    let mut late = Jar::default();
    let before = late.page(&url);
    assert!(before.text().contains("Send me a code"));
    // The link has seen its whole life's worth of code checks.
    redis.cli(&["SET", &format!("lg:tally:codechecks:{id}"), "1000"]);
    let page = late.page(&url);
    assert_eq!(page.status, 403);
    assert!(
        page.text().contains("can no longer verify"),
        "{}",
        page.text()
    );
    let r = late.post(
        &url,
        &[("action", "send_code"), ("csrf", &csrf_of(&before.text()))],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(smtp.messages().is_empty(), "no code is mailed");
    assert!(
        first.page(&url).text().contains("id=\"download\""),
        "a trusted browser keeps working"
    );
    events_when(&gw, &id, |e| {
        e.iter().any(|e| {
            e["kind"] == "code.sent"
                && e["outcome"] == "refused"
                && e["reason"].as_str().is_some_and(|r| r.contains("life"))
        })
    });
}

#[test]
fn a_failing_store_never_loosens_a_throttle() {
    let origin = Origin::start();
    origin.put("doc.pdf", &pseudo_random(10_000, 5));
    let smtp = SmtpSink::start();
    let redis = RedisServer::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: smtp.config(),
        ..GatewayOptions::on_redis(&origin, redis.state())
    });
    let (id, url) = password_link(&gw);
    let (_code_id, code_url) = code_link(&gw);
    // Warm the link cache, so only the throttles' store calls meet the outage.
    assert_eq!(
        guess_from([127, 0, 6, 1], &url, &[("x-link-password", "wrong")]).status,
        401
    );
    let mut jar = Jar::default();
    assert_eq!(jar.page(&code_url).status, 200);
    let pause = Duration::from_secs(8);
    redis.cli(&["CLIENT", "PAUSE", "8000", "ALL"]);
    let paused = Instant::now();
    let guess = guess_from(
        [127, 0, 6, 2],
        &url,
        &[("x-link-password", "wrong-while-paused")],
    );
    let right = guess_from([127, 0, 6, 3], &url, &[("x-link-password", PASSWORD)]);
    let mut fresh = Jar::default();
    let device_page = fresh.page(&code_url);
    let during = paused.elapsed();
    assert!(
        during < pause,
        "the checks outlasted the pause ({during:?}): inconclusive"
    );
    assert_eq!(guess.status, 503, "{}", guess.text());
    assert_eq!(
        right.status, 503,
        "nothing is checked while the throttle cannot be taken"
    );
    assert_eq!(
        device_page.status,
        503,
        "the device page does not guess what the store holds: {}",
        device_page.text()
    );
    std::thread::sleep(pause.saturating_sub(paused.elapsed()) + Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(15);
    while guess_from([127, 0, 6, 3], &url, &[("x-link-password", PASSWORD)]).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the gateway did not recover by itself"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let events = events_when(&gw, &id, |e| count(e, "password.passed", "ok") == 1);
    assert_eq!(
        count(&events, "password.failed", "failed"),
        1,
        "the guess during the outage was not checked"
    );
}
