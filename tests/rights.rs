//! Rights and several documents per link, against the real nginx origin: what each right lets a
//! recipient fetch, how a request for something not granted is answered (the uniform 404 for the
//! unverified, a 403 with a reason on a verified browser), and how a link with several documents
//! lists them, serves each and spends one shared download limit.

mod common;

use common::*;
use serde_json::{json, Value};

const ORIGINAL: (usize, u64) = (120_000, 1);
const LOWRES: (usize, u64) = (9_000, 2);
const PREVIEW: (usize, u64) = (3_000, 3);

fn bytes((len, seed): (usize, u64)) -> Vec<u8> {
    pseudo_random(len, seed)
}

/// An origin holding a report, its low-resolution PDF and a JPEG preview.
fn report_origin() -> Origin {
    let origin = Origin::start();
    origin.put("reports/q3.pdf", &bytes(ORIGINAL));
    origin.put("reports/q3-low.pdf", &bytes(LOWRES));
    origin.put("reports/q3-preview.jpg", &bytes(PREVIEW));
    origin
}

fn report_link(gw: &Gateway, rights: &[&str], extra: Value) -> (String, String) {
    let mut body = json!({
        "store": "docs", "object": "reports/q3.pdf", "filename": "Q3 report.pdf", "max_downloads": 10,
        "renditions": {
            "lowres": {"object": "reports/q3-low.pdf", "filename": "Q3 report (small).pdf"},
            "preview": "reports/q3-preview.jpg"
        },
        "rights": rights,
    });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    let v = gw.admin().create(body);
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

/// A gateway with the renderer off: `view` then sends the original inline, the variant these
/// tests are about (with the renderer on, a PDF's view is the gateway's viewer: `tests/viewer.rs`).
fn inline_gateway(origin: &Origin) -> Gateway {
    Gateway::start_with(GatewayOptions {
        extra: "[render]\nenabled = false\n".to_string(),
        ..GatewayOptions::for_origin(origin)
    })
}

fn downloads(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "download.completed")
        .collect()
}

#[test]
fn each_right_serves_its_own_variant_and_nothing_else() {
    let origin = report_origin();
    let gw = inline_gateway(&origin);
    let uniform = get(&gw.url("/s/not-a-token")).text();
    let (id, url) = report_link(&gw, &["view", "download:lowres"], json!({}));

    // Without `download`, the plain link shows the document inline.
    let plain = get(&url);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-disposition"),
        Some("inline; filename=\"Q3 report.pdf\"")
    );
    assert_eq!(plain.body, bytes(ORIGINAL));
    let view = get(&format!("{url}?as=view"));
    assert_eq!(
        view.header("content-disposition"),
        Some("inline; filename=\"Q3 report.pdf\"")
    );
    assert_eq!(view.body, bytes(ORIGINAL));

    // The granted rendition is its own object, offered as an attachment under its own name.
    let low = get(&format!("{url}?as=lowres"));
    assert_eq!(low.status, 200);
    assert_eq!(
        low.header("content-disposition"),
        Some("attachment; filename=\"Q3 report (small).pdf\"")
    );
    assert_eq!(low.body, bytes(LOWRES));

    // What is not granted looks exactly like a link that does not exist.
    for refused in ["?as=original", "?as=download", "?as=preview", "?as=nosuch"] {
        let r = get(&format!("{url}{refused}"));
        assert_eq!(r.status, 404, "{refused}");
        assert_eq!(r.text(), uniform, "{refused}: the same uniform answer");
    }
    // Nor does the link accept uploads.
    let put = request("PUT", &format!("{url}/sneaky.txt"), &[], Some(b"x"));
    assert_eq!(put.status, 404);
    assert!(!origin.root.join("sneaky.txt").exists());

    // Every view counted, like every download; refusals counted nothing.
    assert_eq!(gw.used(&id), 3);
    let events = events_when(&gw, &id, |e| downloads(e).len() == 3);
    let variants: Vec<&Value> = downloads(&events)
        .iter()
        .map(|e| &e["detail"]["variant"])
        .collect();
    assert_eq!(
        variants,
        [&json!("view"), &json!("view"), &json!("download:lowres")],
        "{events:#?}"
    );
    assert!(downloads(&events)
        .iter()
        .all(|e| e["detail"]["document"] == 1));
    assert!(events
        .iter()
        .any(|e| e["outcome"] == "refused" && e["reason"] == "right not granted"));
}

#[test]
fn a_link_with_download_gets_the_original_by_default_and_renditions_by_name() {
    let origin = report_origin();
    let gw = Gateway::start(&origin);
    let (_, url) = report_link(&gw, &["download", "download:preview"], json!({}));
    let plain = get(&url);
    assert_eq!(
        plain.header("content-disposition"),
        Some("attachment; filename=\"Q3 report.pdf\"")
    );
    assert_eq!(plain.body, bytes(ORIGINAL));
    let preview = get(&format!("{url}?as=preview"));
    assert_eq!(preview.status, 200);
    assert_eq!(preview.body, bytes(PREVIEW));
    assert!(preview
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment; filename="));
    assert_eq!(
        get(&format!("{url}?as=view")).status,
        404,
        "view is not granted"
    );
    assert_eq!(get(&format!("{url}?as=lowres")).status, 404);
    // A range of a granted variant is the rendition's bytes, not the original's.
    let part = request(
        "GET",
        &format!("{url}?as=preview"),
        &[("range", "bytes=10-19")],
        None,
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, bytes(PREVIEW)[10..20]);
}

#[test]
fn a_verified_browser_is_told_why_a_variant_is_refused() {
    let origin = report_origin();
    let gw = inline_gateway(&origin);
    let (_, url) = report_link(&gw, &["view"], json!({"password": "open sesame"}));
    let mut browser = Jar::default();
    let form = browser.page(&url);
    assert!(form.text().contains("protected by a password"));
    let entered = browser.post(
        &url,
        &[
            ("action", "password"),
            ("csrf", &csrf_of(&form.text())),
            ("password", "open sesame"),
        ],
    );
    assert_eq!(entered.status, 303, "{}", entered.text());
    let landing = browser.page(&url);
    assert!(
        landing.text().contains(">View<"),
        "only the granted variant is offered: {}",
        landing.text()
    );
    assert!(!landing.text().contains(">Download<"));

    // The landing page's buttons fetch with `?download`; without it a browser gets the page.
    let refused = browser.page(&format!("{url}?download&as=original"));
    assert_eq!(
        refused.status,
        403,
        "{:?} {}",
        refused.headers,
        refused.text()
    );
    assert!(refused.text().contains("Not allowed"), "{}", refused.text());
    let viewed = browser.page(&format!("{url}?download&as=view"));
    assert_eq!(viewed.status, 200);
    assert_eq!(
        viewed.header("content-disposition"),
        Some("inline; filename=\"Q3 report.pdf\"")
    );

    // Someone without the password learns nothing about which variants are granted: a granted
    // and a refused one get the same answer (the password is needed).
    let (granted, refused) = (
        get(&format!("{url}?download&as=view")),
        get(&format!("{url}?download&as=original")),
    );
    assert_eq!((granted.status, refused.status), (401, 401));
    assert_eq!(granted.text(), refused.text());
}

/// Three documents, one with a rendition; `max` downloads for the whole link.
fn three_documents(gw: &Gateway, max: u64) -> (String, String) {
    let v = gw.admin().create(json!({
        "store": "docs", "max_downloads": max, "rights": ["download", "download:lowres"],
        "documents": [
            {"object": "reports/q3.pdf", "filename": "Q3 report.pdf", "renditions": {"lowres": "reports/q3-low.pdf"}},
            {"object": "reports/q3-preview.jpg", "filename": "Cover.jpg"},
            {"object": "notes/minutes.txt", "filename": "Minutes 12 März.txt"},
        ],
    }));
    assert_eq!(v["documents"].as_array().unwrap().len(), 3);
    (
        v["id"].as_str().unwrap().to_string(),
        v["url"].as_str().unwrap().to_string(),
    )
}

#[test]
fn several_documents_are_listed_served_one_by_one_and_share_the_limit() {
    let origin = report_origin();
    origin.put("notes/minutes.txt", b"minutes of the meeting\n");
    let gw = Gateway::start(&origin);
    let (id, url) = three_documents(&gw, 4);

    // A script that names no document gets a listing with one URL each.
    let listing = get(&url);
    assert_eq!(listing.status, 300);
    for n in 1..=3 {
        assert!(
            listing.text().contains(&format!("{url}?doc={n}")),
            "{}",
            listing.text()
        );
    }
    // A browser gets a page listing each with its size and buttons.
    let page = Jar::default().page(&url);
    assert_eq!(page.status, 200);
    let html = page.text();
    for text in [
        "Q3 report.pdf",
        "Cover.jpg",
        "Minutes 12 März.txt",
        "117.2 KiB",
        "2.9 KiB",
        "id=\"action-1-2\"",
    ] {
        assert!(html.contains(text), "landing page lacks {text}: {html}");
    }
    assert_eq!(gw.used(&id), 0, "pages never count");

    let first = get(&format!("{url}?doc=1"));
    assert_eq!(first.body, bytes(ORIGINAL));
    assert_eq!(
        first.header("content-disposition"),
        Some("attachment; filename=\"Q3 report.pdf\"")
    );
    let low = get(&format!("{url}?doc=1&as=lowres"));
    assert_eq!(low.body, bytes(LOWRES));
    let cover = get(&format!("{url}?doc=2"));
    assert_eq!(cover.body, bytes(PREVIEW));
    assert_eq!(
        get(&format!("{url}?doc=2&as=lowres")).status,
        404,
        "document 2 has no such rendition"
    );
    assert_eq!(get(&format!("{url}?doc=4")).status, 404);
    assert_eq!(get(&format!("{url}?doc=0")).status, 404);
    let minutes = get(&format!("{url}?doc=3"));
    assert_eq!(minutes.body, b"minutes of the meeting\n");
    assert!(minutes
        .header("content-disposition")
        .unwrap()
        .contains("filename*=UTF-8''Minutes%2012%20M%C3%A4rz.txt"));

    // Four downloads of any documents used up the link as a whole.
    assert_eq!(gw.used(&id), 4);
    for n in 1..=3 {
        assert_eq!(
            get(&format!("{url}?doc={n}")).status,
            404,
            "document {n} after the limit"
        );
    }
    let events = events_when(&gw, &id, |e| downloads(e).len() == 4);
    let named: Vec<(String, i64)> = downloads(&events)
        .iter()
        .map(|e| {
            (
                e["document"].as_str().unwrap_or("").to_string(),
                e["detail"]["document"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("reports/q3.pdf".to_string(), 1),
            ("reports/q3-low.pdf".to_string(), 1),
            ("reports/q3-preview.jpg".to_string(), 2),
            ("notes/minutes.txt".to_string(), 3)
        ],
        "each event names its document"
    );
}

#[test]
fn a_browser_downloads_one_of_several_documents_from_the_landing_page() {
    let origin = report_origin();
    origin.put("notes/minutes.txt", b"minutes of the meeting\n");
    let gw = Gateway::start(&origin);
    let (id, url) = three_documents(&gw, 10);
    let browser = Browser::start();
    browser.goto(&url);
    browser.wait_for("Documents were shared with you");
    browser.click("#action-2-1");
    assert_eq!(browser.downloaded("Cover.jpg"), bytes(PREVIEW));
    browser.click("#action-1-2");
    assert_eq!(browser.downloaded("q3-low.pdf"), bytes(LOWRES));
    assert_eq!(gw.used(&id), 2);
}

#[test]
fn rights_are_checked_when_the_link_is_made() {
    let origin = report_origin();
    let gw = Gateway::start(&origin);
    let admin = gw.admin();
    for (body, field) in [
        (
            json!({"store": "docs", "object": "a.pdf", "rights": ["download:"]}),
            "rights",
        ),
        (
            json!({"store": "docs", "object": "a.pdf", "rights": ["download:lowres"]}),
            "rights",
        ),
        (
            json!({"store": "docs", "object": "a.pdf", "rights": ["upload"]}),
            "upload",
        ),
        (
            json!({"store": "docs", "object": "a.pdf", "rights": ["edit"]}),
            "rights",
        ),
        (json!({"store": "docs", "rights": ["download"]}), "object"),
        (
            json!({"store": "docs", "object": "a.pdf", "documents": [{"object": "b.pdf"}]}),
            "documents",
        ),
        (json!({"store": "docs", "documents": []}), "documents"),
        (
            json!({"store": "docs", "documents": [{"object": "../x"}]}),
            "documents[0].object",
        ),
    ] {
        let r = admin.call("POST", "/v1/links", Some(body.clone()));
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{body}: {}", r.text());
    }
}
