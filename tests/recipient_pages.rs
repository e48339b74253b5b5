//! What a recipient meets on links with a password or a named recipient: real headless Chromium
//! profiles (each a different device) walking the pages, a real SMTP listener receiving the codes,
//! and scripted clients for the non-browser paths and every kind of bad input.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn setup_with(extra: &str) -> (Origin, SmtpSink, Gateway) {
    let origin = Origin::start();
    origin.put("contract.pdf", &pseudo_random(300_000, 21));
    let smtp = SmtpSink::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!("{}\n{extra}", smtp.config()),
        ..GatewayOptions::for_origin(&origin)
    });
    (origin, smtp, gw)
}

fn setup() -> (Origin, SmtpSink, Gateway) {
    setup_with("")
}

#[test]
fn a_browser_enters_the_password_then_downloads_from_the_landing_page() {
    let (_origin, _smtp, gw) = setup();
    let link = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "filename": "Contract 2026.pdf", "password": "correct horse", "max_downloads": 3}));
    let (id, url) = (link["id"].as_str().unwrap(), link["url"].as_str().unwrap());
    assert_eq!(link["type"], "password");
    assert_eq!(link["has_password"], true);
    assert!(
        !link.to_string().contains("argon2"),
        "the hash never leaves the gateway"
    );
    let browser = Browser::start();
    browser.goto(url);
    browser.wait_for("protected by a password");
    assert!(browser.source().contains("Contract 2026.pdf"));
    browser.type_into("#password", "wrong guess");
    browser.click("button[type=submit]");
    browser.wait_for("That password is not right");
    browser.type_into("#password", "correct horse");
    browser.click("button[type=submit]");
    let landing = browser.wait_for("id=\"download\"");
    assert!(
        landing.contains("293 KiB"),
        "the landing page shows the size"
    );
    assert_eq!(gw.used(id), 0, "pages never count");
    browser.click("#download");
    let file = browser.downloaded("Contract 2026.pdf");
    assert_eq!(sha256(&file), sha256(&pseudo_random(300_000, 21)));
    assert_eq!(gw.used(id), 1);
}

#[test]
fn the_first_browser_is_trusted_and_another_needs_the_mailed_code() {
    let (_origin, smtp, gw) = setup();
    let link = gw.admin().create(
        json!({"store": "docs", "object": "contract.pdf", "filename": "Contract.pdf",
        "recipient": {"email": "jane@example.org"}, "created_by": "Alice Sender"}),
    );
    let (id, url) = (
        link["id"].as_str().unwrap().to_string(),
        link["url"].as_str().unwrap().to_string(),
    );
    assert_eq!(link["type"], "guest");
    // A mail scanner opens the link first: it sees a page and claims nothing.
    let mut scanner = Jar::default();
    let seen = scanner.page(&url);
    assert_eq!(seen.status, 200);
    assert!(seen.text().contains("Open the document in this browser"));
    assert_eq!(gw.admin().link(&id)["trusted_devices"], 0);

    let first = Browser::start();
    first.goto(&url);
    first.wait_for("Open the document in this browser");
    first.click("button[type=submit]");
    first.wait_for("id=\"download\"");
    assert_eq!(gw.admin().link(&id)["trusted_devices"], 1);
    first.goto(&url);
    first.wait_for("id=\"download\""); // never asked again
    first.click("#download");
    assert_eq!(first.downloaded("Contract.pdf").len(), 300_000);

    let second = Browser::start();
    second.goto(&url);
    second.wait_for("we will send a 6-digit code to j***@example.org");
    second.click("button[type=submit]");
    second.wait_for("Enter your code");
    let code = smtp.code(1);
    let mail = &smtp.messages()[0];
    assert!(
        mail.contains("jane@example.org")
            && mail.contains("Contract.pdf")
            && mail.contains("Alice Sender"),
        "{mail}"
    );
    second.type_into("#code", &code);
    second.click("form:first-of-type button[type=submit]");
    second.wait_for("id=\"download\"");
    second.click("#download");
    assert_eq!(second.downloaded("Contract.pdf").len(), 300_000);
    assert_eq!(gw.admin().link(&id)["trusted_devices"], 2);

    // A third browser gets five wrong codes: the code stops working in that browser.
    let third = Browser::start();
    third.goto(&url);
    third.wait_for("Send me a code");
    third.click("button[type=submit]");
    third.wait_for("Enter your code");
    let real = smtp.code(2);
    let wrong = if real == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        third.type_into("#code", wrong);
        third.click_and_load("form:first-of-type button[type=submit]");
        if attempt < 5 {
            third.wait_for("That code is not right");
        }
    }
    let page = third.wait_for("no longer works in this browser");
    assert!(!page.contains("id=\"code\""));
    let kinds: Vec<String> = gw
        .admin()
        .call("GET", &format!("/v1/links/{id}/events"), None)
        .json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "page.viewed",
        "device.trusted",
        "code.sent",
        "code.passed",
        "code.failed",
        "download.completed",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
}

#[test]
fn scripts_send_the_password_in_a_header_and_guessing_is_throttled() {
    let (_origin, _smtp, gw) = setup();
    let (id, url) = {
        let v = gw
            .admin()
            .create(json!({"store": "docs", "object": "contract.pdf", "password": "s3cret-pass"}));
        (
            v["id"].as_str().unwrap().to_string(),
            v["url"].as_str().unwrap().to_string(),
        )
    };
    let bare = get(&url);
    assert_eq!(bare.status, 401);
    assert!(bare.text().contains("X-Link-Password"));
    assert!(bare.header("www-authenticate").is_none());
    assert_eq!(
        request("GET", &url, &[("x-link-password", "nope")], None).status,
        401
    );
    let ok = request("GET", &url, &[("x-link-password", "s3cret-pass")], None);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.len(), 300_000);
    // Usage of unlimited links is written in batches.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gw.used(&id) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "usage never reached 1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every checked password counts (the attempt is taken before hashing): 2 so far.
    for _ in 0..3 {
        assert_eq!(
            request("GET", &url, &[("x-link-password", "guess")], None).status,
            401
        );
    }
    let throttled = request("GET", &url, &[("x-link-password", "another guess")], None);
    assert_eq!(
        throttled.status, 429,
        "after 5 checked passwords this client waits"
    );
    assert!(throttled.header("retry-after").is_some());
    // The right password this gateway already verified is not a guess: scripts that send it with
    // every request keep working (tests/guessing.rs shows a throttled address that never sent
    // it is refused even with it).
    assert_eq!(
        request("GET", &url, &[("x-link-password", "s3cret-pass")], None).status,
        200
    );
    // Another link is not affected.
    let other = gw
        .admin()
        .create(json!({"store": "docs", "object": "contract.pdf", "password": "other-pass"}));
    assert_eq!(
        request(
            "GET",
            other["url"].as_str().unwrap(),
            &[("x-link-password", "other-pass")],
            None
        )
        .status,
        200
    );
}

#[test]
fn changing_the_password_logs_every_browser_out() {
    let (_origin, _smtp, gw) = setup();
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "contract.pdf", "password": "first-pass"}));
    let (id, url) = (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    );
    let mut jar = Jar::default();
    let form = jar.page(&url);
    let passed = jar.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf_of(&form.text())),
            ("password", "first-pass"),
        ],
    );
    assert_eq!(passed.status, 303);
    let cookie = passed
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("lg_pw="))
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/s/")
    );
    assert!(jar.page(&url).text().contains("id=\"download\""));
    let r = gw.admin().call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"password": "second-pass"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["generation"], 2);
    assert!(
        jar.page(&url).text().contains("protected by a password"),
        "the old cookie no longer opens the link"
    );
    let r = gw.admin().call(
        "PATCH",
        &format!("/v1/links/{id}"),
        Some(json!({"password": null})),
    );
    assert_eq!(r.json()["has_password"], false);
    assert_eq!(
        get(&url).status,
        200,
        "without a password the link is a plain link again"
    );
}

#[test]
fn forms_refuse_replayed_forged_and_malformed_input() {
    let (_origin, _smtp, gw) = setup();
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "contract.pdf", "password": "right-one"}));
    let url = v["url"].as_str().unwrap().to_string();
    let mut jar = Jar::default();
    let page = jar.page(&url);
    let csrf = csrf_of(&page.text());
    assert_eq!(
        jar.post(
            &url,
            &[("action", "password"), ("csrf", &csrf), ("password", "bad")]
        )
        .status,
        401
    );
    let replay = jar.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf),
            ("password", "right-one"),
        ],
    );
    assert_eq!(replay.status, 403, "a form token works once");
    assert!(replay.text().contains("already sent"));
    let forged = jar.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf.replace('a', "b")),
            ("password", "right-one"),
        ],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(
        jar.post(&url, &[("action", "password"), ("password", "right-one")])
            .status,
        403,
        "no token"
    );
    assert_eq!(jar.post_raw(&url, b"").status, 403);
    assert_eq!(
        jar.post_raw(&url, &vec![b'a'; 40_000]).status,
        400,
        "huge bodies are refused"
    );
    assert_eq!(
        jar.post_raw(&url, b"action=password&csrf=\xff\xfe&password=x")
            .status,
        400,
        "non-UTF-8"
    );
    assert_eq!(
        jar.post_raw(&url, b"action=%ZZ&csrf=%ZZ").status,
        403,
        "a malformed escape is taken literally: no valid token"
    );
    // Another browser's token does not work here.
    let mut other = Jar::default();
    let theirs = csrf_of(&other.page(&url).text());
    assert_eq!(
        jar.post(
            &url,
            &[
                ("action", "password"),
                ("csrf", &theirs),
                ("password", "right-one")
            ]
        )
        .status,
        403
    );
    // A forged device cookie is not a device: the browser gets a fresh one.
    let mut forger = Jar {
        cookies: vec![(
            "lg_dev".into(),
            "0123456789abcdef0123456789abcdef.k1.AAAA".into(),
        )],
    };
    let r = forger.page(&url);
    assert!(r.all("set-cookie").iter().any(|c| c.starts_with("lg_dev=")));
    let mut pw_forger = Jar {
        cookies: vec![(
            "lg_pw".into(),
            format!("{}:1:99999999999.k1.AAAA", v["id"].as_str().unwrap()),
        )],
    };
    assert!(pw_forger
        .page(&url)
        .text()
        .contains("protected by a password"));
    // Plain links and bad tokens take no POST.
    let (_, plain) = gw.admin().share("contract.pdf", None);
    assert_eq!(request("POST", &plain, &[], Some(b"x")).status, 405);
    // The right password still works through the form.
    let fresh = csrf_of(&jar.page(&url).text());
    assert_eq!(
        jar.post(
            &url,
            &[
                ("action", "password"),
                ("csrf", &fresh),
                ("password", "right-one")
            ]
        )
        .status,
        303
    );
}

#[test]
fn recipients_links_need_a_browser_and_pages_carry_strict_headers() {
    let (_origin, _smtp, gw) = setup();
    let v = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "recipient": {"email": "jane@example.org"}}));
    let url = v["url"].as_str().unwrap();
    let curl = get(url);
    assert_eq!(curl.status, 403);
    assert!(curl.text().contains("web browser"));
    let mut jar = Jar::default();
    let page = jar.page(url);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("form-action 'self'")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(page.header("cache-control"), Some("private, no-store"));
    assert!(
        !page.text().contains("<script"),
        "pages work without JavaScript"
    );
    let dev = page
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("lg_dev="))
        .unwrap()
        .to_string();
    assert!(dev.contains("HttpOnly") && dev.contains("SameSite=Lax") && dev.contains("Path=/"));
}

#[test]
fn a_recipient_without_an_email_may_only_view_inline() {
    let (_origin, _smtp, gw) = setup();
    let v = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "filename": "C.pdf", "recipient": {"email": null}, "rights": ["view", "download"]}));
    let url = v["url"].as_str().unwrap();
    let mut jar = Jar::default();
    let landing = jar.page(url);
    assert!(landing.text().contains(">View<"), "{}", landing.text());
    // View only: the gateway's viewer (this PDF is random bytes, so its page says it cannot be
    // shown), never the original's bytes.
    let file = jar.page(&format!("{url}?download"));
    assert_eq!(
        file.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(file.header("content-disposition"), None);
    assert_ne!(file.body, pseudo_random(300_000, 21));
}

#[test]
fn a_mail_failure_is_shown_to_the_recipient_and_recorded() {
    let origin = Origin::start();
    origin.put("contract.pdf", b"x");
    let dead = free_port();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!("[mail]\ndelivery = \"smtp\"\nhost = \"127.0.0.1\"\nport = {dead}\nsecurity = \"none\"\ntimeout_seconds = 2\n"),
        ..GatewayOptions::for_origin(&origin)
    });
    let v = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "recipient": {"email": "jane@example.org", "require_code": true}}));
    let (id, url) = (v["id"].as_str().unwrap(), v["url"].as_str().unwrap());
    let mut jar = Jar::default();
    let page = jar.page(url);
    assert!(
        page.text().contains("Send me a code"),
        "require_code asks even the first browser"
    );
    let sent = jar.post(
        url,
        &[("action", "send_code"), ("csrf", &csrf_of(&page.text()))],
    );
    assert_eq!(sent.status, 502);
    assert!(sent.text().contains("could not be mailed"));
    events_when(&gw, id, |e| {
        e.iter()
            .any(|e| e["kind"] == "code.sent" && e["outcome"] == "failed")
    });
}

#[test]
fn codes_are_throttled_and_work_in_any_browser_of_the_link_once() {
    let (_origin, smtp, gw) = setup();
    let v = gw.admin().create(json!({"store": "docs", "object": "contract.pdf", "recipient": {"email": "jane@example.org", "require_code": true}}));
    let url = v["url"].as_str().unwrap();
    let mut asker = Jar::default();
    let page = asker.page(url);
    assert_eq!(
        asker
            .post(
                url,
                &[("action", "send_code"), ("csrf", &csrf_of(&page.text()))]
            )
            .status,
        303
    );
    let code = smtp.code(1);
    let again = asker.page(url);
    let resend = asker.post(
        url,
        &[("action", "send_code"), ("csrf", &csrf_of(&again.text()))],
    );
    assert_eq!(resend.status, 429, "resends are throttled");
    assert!(
        resend.text().contains("id=\"code\""),
        "and the code box stays"
    );
    // The recipient reads the mail on another device: the code works in that browser too.
    let mut other = Jar::default();
    let theirs = other.page(url);
    assert!(theirs.text().contains("Enter your code"));
    let r = other.post(
        url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&theirs.text())),
            ("code", &code),
        ],
    );
    assert_eq!(r.status, 303);
    assert!(other.page(url).text().contains("id=\"download\""));
    // A code verifies one browser: the one that asked needs a new code now.
    let mine = asker.page(url);
    assert!(mine.text().contains("Send me a code"), "{}", mine.text());
    let r = asker.post(
        url,
        &[
            ("action", "verify_code"),
            ("csrf", &csrf_of(&mine.text())),
            ("code", &code),
        ],
    );
    assert_ne!(r.status, 303);
}

#[test]
fn the_page_rate_limit_answers_429() {
    let (_origin, _smtp, gw) = setup_with("[limits]\npage_requests_per_minute = 12\n");
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "contract.pdf", "password": "pw-pw-pw"}));
    let url = v["url"].as_str().unwrap();
    let mut jar = Jar::default();
    let statuses: Vec<u16> = (0..20).map(|_| jar.page(url).status).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
}
