//! What recipients meet, looked at with their eyes: the landing page every browser visit gets
//! (plain links included), its facts (sender, message, type, size, downloads left, expiry), the
//! pages' languages, the uniform 404's hint, and the bugs of issue 21, each with the test that
//! failed before its fix.

mod common;

use common::*;
use serde_json::json;

fn page_in(url: &str, lang: &str) -> Reply {
    request(
        "GET",
        url,
        &[("accept", "text/html,*/*"), ("accept-language", lang)],
        None,
    )
}

#[test]
fn a_plain_link_in_a_browser_gets_a_landing_page_and_scripts_still_get_the_file() {
    let origin = Origin::start();
    let data = pseudo_random(3 * 1024 * 1024, 7);
    origin.put("q3.pdf", &data);
    let gw = Gateway::start(&origin);
    let link = gw.admin().create(
        json!({"store": "docs", "object": "q3.pdf", "filename": "Q3 report.pdf",
        "created_by": "Alice Sender", "expires_at": "2030-01-02T03:04:05Z"}),
    );
    let (id, url) = (link["id"].as_str().unwrap(), link["url"].as_str().unwrap());
    assert_eq!(link["type"], "link", "{link}");

    let page = Jar::default().page(url);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    for text in [
        "A document was shared with you",
        "Q3 report.pdf",
        "PDF document",
        "3 MiB",
        "id=\"sender\">Alice Sender<",
        "<time datetime=\"2030-01-02T03:04:05Z\">2030-01-02 03:04 UTC</time>",
        "id=\"download\" href=\"",
    ] {
        assert!(html.contains(text), "landing page lacks {text}: {html}");
    }
    assert!(
        !html.contains("downloads-left"),
        "an unlimited link has no count"
    );
    assert_eq!(
        gw.admin().link(id)["downloads_used"],
        0,
        "the page is no download"
    );

    // The button fetches the file (a browser's GET of `?download`).
    let file = Jar::default().page(&format!("{url}?download"));
    assert_eq!(file.status, 200);
    assert_eq!(sha256(&file.body), sha256(&data));
    // Scripts (no text/html in Accept) keep getting the file directly.
    let curl = request(
        "GET",
        url,
        &[("user-agent", "curl/8.5.0"), ("accept", "*/*")],
        None,
    );
    assert_eq!(curl.status, 200);
    assert_eq!(sha256(&curl.body), sha256(&data));
}

#[test]
fn a_limited_link_shows_the_downloads_left_and_a_shares_sender_and_message() {
    let origin = Origin::start();
    origin.put("c.pdf", &pseudo_random(2000, 3));
    let smtp = SmtpSink::start();
    let gw = Gateway::start_with(GatewayOptions {
        extra: smtp.config(),
        ..GatewayOptions::for_origin(&origin)
    });
    let reply = gw.admin().call(
        "POST",
        "/v1/shares",
        Some(json!({
            "store": "docs", "object": "c.pdf", "filename": "Contract.pdf", "max_downloads": 2,
            "recipients": [{"email": "jane@example.org"}],
            "subject": "Contract", "message": "Please sign <b>page 3</b>.\nThanks!",
            "sender": {"name": "Alice Sender", "email": "alice@example.org"}
        })),
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let share = reply.json();
    let link_id = share["recipients"][0]["link_id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = share["recipients"][0]["link"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut jar = Jar::default();
    let first = jar.page(&url);
    // A recipient link: the first browser confirms, then meets the landing page.
    let trusted = jar.post(
        &url,
        &[("action", "trust"), ("csrf", &csrf_of(&first.text()))],
    );
    assert_eq!(trusted.status, 303);
    let html = jar.page(&url).text();
    for text in [
        "id=\"sender\">Alice Sender<",
        "id=\"message\">Please sign &lt;b&gt;page 3&lt;/b&gt;.\nThanks!<",
        "id=\"downloads-left\">2<",
    ] {
        assert!(html.contains(text), "landing page lacks {text}: {html}");
    }
    let file = jar.page(&format!("{url}?download"));
    assert_eq!(file.status, 200);
    events_when(&gw, &link_id, |e| {
        e.iter().any(|e| e["kind"] == "download.completed")
    });
    let html = jar.page(&url).text();
    assert!(html.contains("id=\"downloads-left\">1<"), "{html}");
}

#[test]
fn a_require_code_link_opened_first_does_not_speak_of_another_browser() {
    let origin = Origin::start();
    origin.put("c.pdf", b"x");
    let gw = Gateway::start(&origin);
    let v = gw.admin().create(json!({"store": "docs", "object": "c.pdf",
        "recipient": {"email": "jane@example.org", "require_code": true}}));
    let html = Jar::default().page(v["url"].as_str().unwrap()).text();
    assert!(html.contains("Send me a code"), "{html}");
    assert!(
        !html.contains("already opened in another browser"),
        "nobody opened it before: {html}"
    );
    assert!(html.contains("To open this document, we will send a 6-digit code to j***@example.org"));
}

#[test]
fn the_upload_form_goes_once_every_expected_file_arrived() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let v = gw
        .admin()
        .create(json!({"store": "docs", "rights": ["upload"],
        "upload": {"folder": "inbox/landing", "max_files": 2, "max_bytes": 2147483648u64}}));
    let url = v["url"].as_str().unwrap();
    let html = Jar::default().page(url).text();
    assert!(html.contains("id=\"upload-form\""), "{html}");
    assert!(
        html.contains("Expected files: 2. Still to send: 2."),
        "{html}"
    );
    assert!(
        html.contains("webkitdirectory"),
        "a whole folder can be chosen"
    );
    for name in ["a.txt", "b.txt"] {
        let put = request(
            "PUT",
            &format!("{url}/{name}"),
            &[("content-type", "application/octet-stream")],
            Some(b"hello"),
        );
        assert_eq!(put.status, 201, "{}", put.text());
    }
    let html = Jar::default().page(url).text();
    assert!(
        !html.contains("id=\"upload-form\""),
        "no form once all arrived: {html}"
    );
    assert!(
        html.contains("All 2 expected files were received"),
        "{html}"
    );
}

#[test]
fn pages_speak_german_and_french_and_the_404_stays_uniform_per_language() {
    let origin = Origin::start();
    origin.put("c.pdf", b"x");
    let gw = Gateway::start(&origin);
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "c.pdf", "max_downloads": 1}));
    let url = v["url"].as_str().unwrap();
    let de = page_in(url, "de-CH, en;q=0.5").text();
    assert!(
        de.contains("<html lang=\"de\">") && de.contains("Ein Dokument wurde mit Ihnen geteilt"),
        "{de}"
    );
    assert!(
        de.contains("Herunterladen") && de.contains("PDF-Dokument"),
        "{de}"
    );
    let fr = page_in(url, "fr-FR,fr;q=0.9").text();
    assert!(
        fr.contains("<html lang=\"fr\">") && fr.contains("Un document a été partagé avec vous"),
        "{fr}"
    );
    let en = page_in(url, "it, es;q=0.8").text();
    assert!(
        en.contains("<html lang=\"en\">"),
        "English when nothing fits: {en}"
    );

    // The 404: the same bytes for a forged link and a cancelled one, in each language.
    let forged = format!("{}x", &url[..url.len() - 1]);
    let id = v["id"].as_str().unwrap();
    let cancel = gw.admin().call("DELETE", &format!("/v1/links/{id}"), None);
    assert!(cancel.status < 300, "{}", cancel.text());
    for lang in ["en", "de", "fr"] {
        let a = page_in(&forged, lang);
        let b = page_in(url, lang);
        let c = request(
            "GET",
            &gw.url("/s/nothing-here"),
            &[("accept", "text/html"), ("accept-language", lang)],
            None,
        );
        assert_eq!((a.status, b.status), (404, 404));
        assert_eq!(a.body, b.body, "{lang}: uniform");
        assert_eq!(a.body, c.body, "{lang}: uniform");
    }
    let en = page_in(url, "en").text();
    assert!(
        en.contains("ask the person who sent it to you for a new link"),
        "{en}"
    );
    let de = page_in(url, "de").text();
    assert!(de.contains("um einen neuen Link"), "{de}");
}

#[test]
fn error_pages_say_what_happened_in_plain_words() {
    // A store that does not answer: no "Bad gateway".
    let gw = Gateway::start_with(GatewayOptions::for_url(&format!(
        "http://127.0.0.1:{}",
        free_port()
    )));
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "gone.pdf"}));
    let url = v["url"].as_str().unwrap().to_string();
    let r = Jar::default().page(&format!("{url}?download"));
    assert!(r.status >= 500, "{}", r.status);
    let html = r.text();
    assert!(
        !html.contains("Bad gateway") && !html.contains("Gateway timeout"),
        "{html}"
    );
    assert!(html.contains("Please try again in a few minutes"), "{html}");
}

#[test]
fn the_operators_name_logo_and_accent_are_on_every_page() {
    let origin = Origin::start();
    origin.put("c.pdf", b"x");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("logo.svg");
    std::fs::write(
        &svg,
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"40\"><script>alert(1)</script><rect width=\"40\" height=\"40\" fill=\"#1a4d2e\"/></svg>",
    )
    .unwrap();
    let gw = Gateway::start_with(GatewayOptions {
        extra: format!(
            "[branding]\nname = \"Acme <Legal>\"\nlogo = \"{}\"\naccent = \"#1A4D2E\"\n",
            svg.display()
        ),
        ..GatewayOptions::for_origin(&origin)
    });
    let v = gw
        .admin()
        .create(json!({"store": "docs", "object": "c.pdf"}));
    let page = Jar::default().page(v["url"].as_str().unwrap());
    let html = page.text();
    assert!(
        html.contains(
            "<header class=\"brand\"><img src=\"/_linkgate/logo\" alt=\"Acme &lt;Legal&gt;\">"
        ),
        "{html}"
    );
    assert!(
        html.contains("background:#1a4d2e"),
        "the accent is in the stylesheet"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("img-src 'self'"), "{csp}");
    // The stylesheet with the accent is the one the CSP allows.
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .unwrap();
    use base64::Engine;
    use sha2::Digest;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style.as_bytes()));
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    // The 404 carries the branding too (the same bytes for every bad link).
    let missing = request("GET", &gw.url("/s/AAAA"), &[("accept", "text/html")], None);
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("/_linkgate/logo"));

    let logo = get(&gw.url("/_linkgate/logo"));
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("content-type"), Some("image/svg+xml"));
    assert_eq!(logo.header("x-content-type-options"), Some("nosniff"));
    assert!(logo.header("cache-control").unwrap().contains("max-age="));
    assert_eq!(
        logo.header("content-security-policy"),
        Some("sandbox"),
        "an SVG opened on its own runs nothing"
    );
    assert_eq!(logo.body, std::fs::read(&svg).unwrap());
}

#[test]
fn renditions_have_human_labels_from_the_catalogue_or_the_operator() {
    let origin = Origin::start();
    origin.put("q3.pdf", b"original");
    origin.put("q3-low.pdf", b"low");
    origin.put("q3-board.pdf", b"board");
    let gw = Gateway::start_with(GatewayOptions {
        extra: "[branding.renditions]\nboard_pack = \"Board pack (printable)\"\n".into(),
        ..GatewayOptions::for_origin(&origin)
    });
    let v = gw.admin().create(json!({
        "store": "docs", "rights": ["download", "download:lowres", "download:board_pack"],
        "object": "q3.pdf", "filename": "Q3.pdf",
        "renditions": {"lowres": "q3-low.pdf", "board_pack": "q3-board.pdf"},
    }));
    let url = v["url"].as_str().unwrap();
    let html = page_in(url, "en").text();
    assert!(html.contains(">Download: Low resolution<"), "{html}");
    assert!(
        html.contains(">Download: Board pack (printable)<"),
        "{html}"
    );
    assert!(!html.contains("(lowres)"), "no raw rendition keys: {html}");
    let de = page_in(url, "de").text();
    assert!(de.contains(">Herunterladen: Niedrige Auflösung<"), "{de}");
}

#[test]
fn a_browser_sends_several_files_at_once_with_progress_and_then_the_form_is_gone() {
    let origin = Origin::start();
    let gw = Gateway::start(&origin);
    let v = gw
        .admin()
        .create(json!({"store": "docs", "rights": ["upload"],
        "upload": {"folder": "inbox/several", "max_files": 2}}));
    let url = v["url"].as_str().unwrap();
    let local = tempfile::tempdir().unwrap();
    let a = local.path().join("first.txt");
    let b = local.path().join("second.txt");
    std::fs::write(&a, vec![b'a'; 200_000]).unwrap();
    std::fs::write(&b, b"second\n").unwrap();
    let browser = Browser::start_with(BrowserOptions {
        accept_language: Some("fr".into()),
        ..BrowserOptions::default()
    });
    browser.goto(url);
    browser.wait_for("Fichiers attendus : 2. Encore à envoyer : 2.");
    // Two files in one choice (WebDriver takes them one per line).
    browser.choose_file(
        "#files",
        std::path::Path::new(&format!("{}\n{}", a.display(), b.display())),
    );
    // The script shows one progress bar per file while the one request is sent.
    browser.execute(
        "window.__bars = 0; new MutationObserver(function () {\
           var n = document.querySelectorAll('#progress progress').length;\
           if (n > window.__bars) { window.__bars = n; sessionStorage.setItem('bars', n); }\
         }).observe(document.body, {childList: true, subtree: true}); return 1;",
    );
    browser.click("#upload");
    let result = browser.wait_for("id=\"stored\"");
    assert!(
        result.contains("first.txt") && result.contains("second.txt"),
        "{result}"
    );
    assert!(result.contains("Envoi terminé"), "{result}");
    assert_eq!(
        browser.execute("return sessionStorage.getItem('bars');"),
        json!("2"),
        "a progress bar per file"
    );
    browser.goto(url);
    let page = browser.wait_for("Les 2 fichiers attendus ont tous été reçus");
    assert!(!page.contains("id=\"upload-form\""), "{page}");
}
