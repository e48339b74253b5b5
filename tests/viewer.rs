//! Renditions the gateway makes (issue 19): page images and thumbnails of PDFs and images
//! rendered by sandboxed workers, the view-only viewer, generated renditions (a low-resolution
//! PDF), bombs and the pool's limits. Documents are made at test time; page images are checked
//! by decoding them; the viewer is driven in headless Chromium.

mod common;

use std::time::{Duration, Instant};

use common::*;
use linkgate::render::sample;
use serde_json::json;

fn gateway(origin: &Origin, render: &str) -> Gateway {
    let cache = tempfile::tempdir().expect("cache").keep();
    Gateway::start_with(GatewayOptions {
        extra: format!(
            "[render]\ncache_dir = \"{}\"\n{render}\n[renditions.lowres]\nkind = \"pdf\"\ndpi = 72\n\
             [renditions.jpeg]\nkind = \"image\"\nwidth = 320\nformat = \"jpeg\"\n",
            cache.display()
        ),
        ..GatewayOptions::for_origin(origin)
    })
}

fn decode(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory(bytes)
        .expect("a decodable image")
        .into_rgba8()
}

fn not_blank(img: &image::RgbaImage) -> bool {
    let first = img.get_pixel(0, 0);
    img.pixels().any(|p| p != first)
}

fn link(gw: &Gateway, body: serde_json::Value) -> (String, String) {
    let link = gw.admin().create(body);
    (
        link["id"].as_str().expect("id").to_string(),
        link["url"].as_str().expect("url").to_string(),
    )
}

#[test]
fn page_images_and_thumbnails_are_rendered_decodable_and_cached() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(3, 612.0, 792.0));
    origin.put("photo.png", &sample::png(1200, 600));
    let gw = gateway(&origin, "");
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["view"]}),
    );
    let page = get(&format!("{url}?as=page&page=2&width=480"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.header("content-type"), Some("image/png"));
    assert_eq!(page.header("cache-control"), Some("private, no-store"));
    let img = decode(&page.body);
    assert_eq!((img.width(), img.height()), (480, 621));
    assert!(not_blank(&img));
    // Pages differ, and an odd width is rounded to an allowed one (the cache cannot be flooded).
    let other = get(&format!("{url}?as=page&page=3&width=481"));
    assert_eq!(other.status, 200);
    assert_eq!(decode(&other.body).width(), 480);
    assert_ne!(other.body, page.body);
    // Again: the same bytes, from the cache.
    let again = get(&format!("{url}?as=page&page=2&width=480"));
    assert_eq!(again.body, page.body);
    let thumb = get(&format!("{url}?doc=1&as=thumbnail"));
    assert_eq!(thumb.status, 200);
    assert_eq!(decode(&thumb.body).width(), 240);
    // No such page: a clear refusal.
    let missing = get(&format!("{url}?as=page&page=9"));
    assert_eq!(missing.status, 422);

    let (_, img_url) = link(
        &gw,
        json!({"store": "docs", "object": "photo.png", "filename": "Photo.png", "rights": ["view"]}),
    );
    let thumb = decode(&get(&format!("{img_url}?as=thumbnail")).body);
    assert_eq!((thumb.width(), thumb.height()), (240, 120));
    let metrics = get(&format!("http://127.0.0.1:{}/metrics", gw.admin_port)).text();
    assert!(
        metrics.contains("linkgate_renders_total{outcome=\"cached\"}"),
        "{metrics}"
    );
}

#[test]
fn view_only_gets_the_viewer_and_never_the_original_bytes() {
    let origin = Origin::start();
    let pdf = sample::pdf(3, 612.0, 792.0);
    origin.put("report.pdf", &pdf);
    origin.put("page.html", b"<script>alert(1)</script>");
    let gw = gateway(&origin, "");
    let (id, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["view"]}),
    );
    for ask in ["", "?as=view", "?download&as=view"] {
        let viewer = get(&format!("{url}{ask}"));
        assert_eq!(viewer.status, 200, "{ask}: {}", viewer.text());
        assert_eq!(
            viewer.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = viewer.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("img-src 'self'") && !csp.contains("script-src"),
            "{csp}"
        );
        let html = viewer.text();
        assert_eq!(html.matches("as=page&amp;page=").count(), 3, "{html}");
        assert!(
            !html.contains("%PDF") && !html.contains("as=original") && !html.contains("<script")
        );
    }
    // The original is not granted.
    assert_eq!(get(&format!("{url}?as=original")).status, 404);
    // Each viewer load is a counted view in the link's events.
    events_when(&gw, &id, |e| {
        e.iter()
            .filter(|e| {
                e["kind"] == "download.completed"
                    && e["detail"]["variant"] == "view"
                    && e["document"] == "report.pdf"
            })
            .count()
            >= 3
    });
    // An HTML original is never inline unsandboxed: plain text under a sandbox.
    let (_, html_url) = link(
        &gw,
        json!({"store": "docs", "object": "page.html", "filename": "page.html", "rights": ["view"]}),
    );
    let r = get(&html_url);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("content-security-policy"), Some("sandbox"));
}

/// The attack: a limited link counts its views, so someone holding it must not page through the
/// document by asking for page images straight from the link, without ever loading a counted
/// viewer. Page images of a limited link need the page ticket a counted viewer page hands out.
#[test]
fn page_images_of_a_limited_link_come_only_through_a_counted_view() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(3, 612.0, 792.0));
    let gw = gateway(&origin, "");
    let (id, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf",
               "rights": ["view"], "max_downloads": 2}),
    );
    let (_, other_url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf",
               "rights": ["view"], "max_downloads": 2}),
    );
    // Straight from the link, with no ticket or a forged one: refused, and nothing counted.
    for ask in [
        "?as=page&page=1",
        "?as=page&page=2&width=1600",
        "?download&as=page&page=1",
        "?as=page&page=1&pt=forged",
        "?as=page&page=1&pt=&pt=x",
    ] {
        let r = get(&format!("{url}{ask}"));
        assert_eq!(r.status, 404, "{ask}: {}", r.text());
        assert!(!r.body.starts_with(b"\x89PNG"), "{ask}");
    }
    assert_eq!(gw.admin().link(&id)["downloads_used"], 0);
    // A viewer page is a counted view; its page images carry a ticket that works.
    let viewer = get(&format!("{url}?as=view"));
    assert_eq!(viewer.status, 200, "{}", viewer.text());
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    let html = viewer.text();
    let srcs: Vec<String> = html
        .split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or("").replace("&amp;", "&"))
        .collect();
    assert_eq!(srcs.len(), 3, "{html}");
    for src in &srcs {
        assert!(src.contains("&pt="), "{src}");
        let page = get(&format!("{url}{src}"));
        assert_eq!(page.status, 200, "{src}: {}", page.text());
        assert!(not_blank(&decode(&page.body)));
    }
    // Fetching the pages again (scrolling back) counts nothing more.
    for src in &srcs {
        assert_eq!(get(&format!("{url}{src}")).status, 200);
    }
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    // Zooming is the same view again: the zoom links carry the ticket and count nothing, for a
    // script and for a browser (which is not sent back to the landing page either).
    let zooms: Vec<String> = html
        .split("<a ")
        .skip(1)
        .filter_map(|a| a.split("href=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or("").replace("&amp;", "&"))
        .collect();
    assert!(zooms.len() >= 2, "{html}");
    for zoom in &zooms {
        assert!(zoom.contains("as=view") && zoom.contains("&pt="), "{zoom}");
        let again = get(&format!("{url}{zoom}"));
        assert_eq!(again.status, 200, "{zoom}: {}", again.text());
        assert!(again.text().contains("as=page"), "{zoom}");
        let browser = request(
            "GET",
            &format!("{url}{zoom}"),
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
            None,
        );
        assert_eq!(browser.status, 200, "{zoom}");
        assert!(
            browser.text().contains("as=page"),
            "a browser's zoom shows the viewer"
        );
    }
    assert_eq!(gw.admin().link(&id)["downloads_used"], 1);
    // The ticket is the link's own: another link (same document, same limit) refuses it.
    let r = get(&format!("{other_url}{}", srcs[0]));
    assert_eq!(r.status, 404, "{}", r.text());
    // The thumbnail stays available to anyone who may open the link (one small first page).
    assert_eq!(get(&format!("{url}?as=thumbnail")).status, 200);
}

#[test]
fn a_link_without_the_right_gets_the_uniform_404() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(2, 612.0, 792.0));
    origin.put("report-small.pdf", b"%PDF-1.4 stored rendition");
    let gw = gateway(&origin, "");
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf",
               "renditions": {"small": "report-small.pdf"}, "rights": ["download:small"]}),
    );
    let uniform = get(&format!("http://127.0.0.1:{}/s/not-a-token", gw.port));
    let page = get(&format!("{url}?as=page&page=1"));
    assert_eq!(page.status, 404);
    assert_eq!(page.body, uniform.body);
    assert_eq!(get(&format!("{url}?as=lowres")).status, 404);
    // The stored rendition still works, byte for byte; its thumbnail too (any granted use).
    let stored = get(&format!("{url}?as=small"));
    assert_eq!(stored.status, 200);
    assert_eq!(stored.body, b"%PDF-1.4 stored rendition");
    assert_eq!(get(&format!("{url}?as=thumbnail")).status, 200);
    // Unreadable page requests are the uniform 404 too.
    assert_eq!(get(&format!("{url}?as=page&page=x")).body, uniform.body);
}

#[test]
fn generated_renditions_are_made_from_the_original_and_counted() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(4, 612.0, 792.0));
    let gw = gateway(&origin, "");
    let (id, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf",
               "rights": ["download:lowres", "download:jpeg"], "max_downloads": 2}),
    );
    let created = gw.admin().link(&id);
    assert!(created.to_string().contains("download:lowres"), "{created}");
    let lowres = get(&format!("{url}?as=lowres"));
    assert_eq!(lowres.status, 200, "{}", lowres.text());
    assert_eq!(lowres.header("content-type"), Some("application/pdf"));
    assert!(lowres
        .header("content-disposition")
        .is_some_and(|d| d.starts_with("attachment") && d.contains("Report-lowres.pdf")));
    let caps = linkgate::render::Caps::default();
    assert_eq!(
        linkgate::render::pdf::page_count(&lowres.body, &caps).expect("a valid PDF"),
        4
    );
    let jpeg = get(&format!("{url}?as=jpeg"));
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode(&jpeg.body).width(), 320);
    assert_eq!(gw.admin().link(&id)["downloads_used"], 2);
    // The limit holds for generated renditions like for any download.
    assert_eq!(get(&format!("{url}?as=lowres")).status, 404);
}

#[test]
fn bombs_and_broken_files_get_a_clear_answer_fast_and_the_gateway_stays_healthy() {
    let origin = Origin::start();
    let mut png = sample::png(1, 1);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    origin.put("bomb.png", &png);
    origin.put("huge-page.pdf", &sample::pdf(1, 200_000.0, 200_000.0));
    origin.put("many.pdf", &sample::pdf(60, 100.0, 100.0));
    let good = sample::pdf(2, 612.0, 792.0);
    origin.put("cut.pdf", &good[..good.len() / 3]);
    origin.put("good.pdf", &good);
    let gw = gateway(&origin, "max_pages = 50");
    for (object, name) in [
        ("bomb.png", "bomb.png"),
        ("huge-page.pdf", "huge.pdf"),
        ("many.pdf", "many.pdf"),
        ("cut.pdf", "cut.pdf"),
    ] {
        let (_, url) = link(
            &gw,
            json!({"store": "docs", "object": object, "filename": name, "rights": ["view"]}),
        );
        let started = Instant::now();
        let r = get(&format!("{url}?as=page&page=1"));
        assert!(
            matches!(r.status, 422),
            "{object}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.text().contains("cannot be shown"), "{object}");
        assert!(started.elapsed() < Duration::from_secs(30), "{object}");
    }
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "good.pdf", "filename": "good.pdf", "rights": ["view"]}),
    );
    let r = get(&format!("{url}?as=page&page=2"));
    assert_eq!(r.status, 200);
    assert!(not_blank(&decode(&r.body)));
}

#[test]
fn a_full_pool_answers_503_with_retry_after_and_a_slow_render_is_stopped() {
    let origin = Origin::start();
    origin.put("heavy.pdf", &sample::heavy_pdf(150_000));
    let gw = gateway(
        &origin,
        "workers = 1\nqueue = 0\ntimeout_ms = 4000\ncache_max_bytes = 0\npage_widths = [1600, 2400, 3200, 4000]",
    );
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "heavy.pdf", "filename": "heavy.pdf", "rights": ["view"]}),
    );
    let slow_url = format!("{url}?as=page&page=1&width=4000");
    // The slow render asks again while the pool is busy with a poll below (queue = 0: whoever
    // comes second is refused), until it holds the worker and runs into the time limit.
    let slow = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let started = Instant::now();
            let r = get(&slow_url);
            if r.status != 503 || Instant::now() > deadline {
                return (r, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    // Once the one worker process runs the slow render, another render is refused at once.
    // (Waiting for the worker, not for a clock: on a busy machine the slow request may reach
    // the gateway late, and a probe sent before it would take the worker itself.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while render_workers_of(gw.pid()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow render never started a worker"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let busy = get(&format!("{url}?as=page&page=1&width=1600"));
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("5"));
    let (slow, took) = slow.join().expect("slow request");
    assert_eq!(slow.status, 422, "{}", slow.text());
    assert!(slow.text().contains("took longer"), "{}", slow.text());
    assert!(took < Duration::from_secs(30));
    // The gateway still answers.
    assert_eq!(get(&format!("{url}?as=thumbnail")).status, 422);
    assert!(gw.log().contains("render made nothing"));
}

#[test]
fn a_render_past_its_memory_limit_is_stopped_and_the_gateway_keeps_serving() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(1, 612.0, 792.0));
    // A 4000-pixel-wide page needs an 80 MiB raster: more than the worker may have.
    let gw = gateway(
        &origin,
        "memory_mb = 64
page_widths = [400, 4000]",
    );
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "report.pdf", "rights": ["view"]}),
    );
    let r = get(&format!("{url}?as=page&page=1&width=4000"));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("more memory"), "{}", r.text());
    let small = get(&format!("{url}?as=page&page=1&width=400"));
    assert_eq!(small.status, 200);
    assert_eq!(decode(&small.body).width(), 400);
}

#[test]
fn the_viewer_in_chromium_shows_page_images_and_no_way_to_the_original() {
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(3, 612.0, 792.0));
    let gw = gateway(&origin, "");
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Quarterly report.pdf", "rights": ["view"]}),
    );
    let browser = Browser::start();
    // A browser meets the landing page first: its thumbnail is the gateway's drawing of the
    // first page, and its one button opens the viewer.
    browser.goto(&url);
    browser.wait_for("img class=\"thumb\"");
    let deadline = Instant::now() + Duration::from_secs(30);
    while browser.execute(
        "const t = document.querySelector('img.thumb'); return !!t && t.complete && t.naturalWidth > 0;",
    ) != json!(true)
    {
        assert!(Instant::now() < deadline, "the thumbnail never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.click_and_load("#download");
    let html = browser.wait_for("Page 1 of 3");
    assert!(html.contains("Quarterly report.pdf"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let loaded = browser.execute(
            "return Array.from(document.images).slice(0,2).every(i => i.complete && i.naturalWidth > 0);",
        );
        if loaded == json!(true) {
            break;
        }
        assert!(Instant::now() < deadline, "the page images never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let links = browser.execute(
        "return Array.from(document.querySelectorAll('a,button,form,embed,object,iframe')).map(e => e.outerHTML).join('\\n');",
    );
    let links = links.as_str().unwrap_or("");
    assert!(
        !links.contains("original")
            && !links.contains("<button")
            && !links.contains("<embed")
            && !links.contains("<iframe"),
        "{links}"
    );
    let shot = decode(&browser.screenshot());
    assert!(not_blank(&shot));
    // The same page of a link with a watermark: the screenshot shows the stamp.
    let (_, marked) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Quarterly report.pdf",
               "rights": ["view"], "watermark": "viewer"}),
    );
    let other = Browser::start();
    other.goto(&marked);
    other.click_and_load("#download");
    other.wait_for("Page 1 of 3");
    let deadline = Instant::now() + Duration::from_secs(30);
    while other.execute("return Array.from(document.images).slice(0,1).every(i => i.complete && i.naturalWidth > 0);") != json!(true) {
        assert!(Instant::now() < deadline, "the stamped page images never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stamped = decode(&other.screenshot());
    let dir = std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| "/tmp".into());
    let _ = stamped.save(format!("{dir}/viewer-watermark.png"));
    assert!(
        differing_pixels(&shot, &stamped) > 1000,
        "the watermark shows"
    );
    // The browser never received a PDF.
    let types = browser
        .execute("return performance.getEntriesByType('resource').map(e => e.name).join(' ');");
    assert!(types.as_str().unwrap_or("").contains("as=page"));
}

fn differing_pixels(a: &image::RgbaImage, b: &image::RgbaImage) -> usize {
    assert_eq!(a.dimensions(), b.dimensions());
    a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count()
}

#[test]
fn watermarks_stamp_viewer_pages_and_with_all_the_downloads_too() {
    let origin = Origin::start();
    let pdf = sample::pdf(2, 612.0, 792.0);
    origin.put("report.pdf", &pdf);
    origin.put("photo.png", &sample::png(800, 400));
    let gw = gateway(&origin, "");
    let (_, plain) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["view"]}),
    );
    let (id, marked) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["view"],
               "watermark": "viewer"}),
    );
    assert_eq!(gw.admin().link(&id)["watermark"], "viewer");
    let ask = "?as=page&page=1&width=800";
    let a = decode(&get(&format!("{plain}{ask}")).body);
    let b = decode(&get(&format!("{marked}{ask}")).body);
    assert!(
        differing_pixels(&a, &b) > 1000,
        "the stamped page differs from the plain render"
    );
    // Rendered once (cached), stamped per request: the plain link still gets the plain page.
    assert_eq!(decode(&get(&format!("{plain}{ask}")).body), a);
    let viewer = get(&format!("{marked}?as=view")).text();
    assert!(viewer.contains(&format!("link {id}")), "{viewer}");
    assert!(viewer.contains("127.0.0.1"));

    // `all`: the original PDF keeps its bytes and gains an overlay; an image is stamped.
    let (pdf_id, all) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["download"]}),
    );
    let patched = gw.admin().call(
        "PATCH",
        &format!("/v1/links/{pdf_id}"),
        Some(json!({"watermark": "all"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(gw.admin().link(&pdf_id)["watermark"], "all");
    let got = get(&all);
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(
        got.body.len() > pdf.len() && got.body.starts_with(&pdf),
        "an incremental update"
    );
    let caps = linkgate::render::Caps::default();
    assert_eq!(
        linkgate::render::pdf::page_count(&got.body, &caps).expect("valid"),
        2
    );
    let (_, img) = link(
        &gw,
        json!({"store": "docs", "object": "photo.png", "filename": "Photo.png", "rights": ["download"],
               "watermark": "all"}),
    );
    let got = get(&img);
    assert_eq!(got.header("content-type"), Some("image/png"));
    let stamped = decode(&got.body);
    let original = decode(&sample::png(800, 400));
    assert!(differing_pixels(&stamped, &original) > 1000);
    // A bad value is named.
    let bad = gw.admin().call(
        "PATCH",
        &format!("/v1/links/{pdf_id}"),
        Some(json!({"watermark": "sometimes"})),
    );
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("watermark"));
}

/// Load measurement, not a check (run by `benches/load/viewers.sh`): 50 recipients open the
/// viewer of a 20-page PDF at once and fetch every page image; prints the gateway's peak RSS
/// (and the largest sum over its render workers), the time to the last image, and how many
/// answers were 503 (pool full) and retried.
#[test]
#[ignore]
fn fifty_viewers_at_once() {
    let viewers: usize = std::env::var("VIEWERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let origin = Origin::start();
    origin.put("report.pdf", &sample::pdf(20, 612.0, 792.0));
    let gw = gateway(&origin, "workers = 2\nqueue = 64\nmax_pages = 500");
    let (_, url) = link(
        &gw,
        json!({"store": "docs", "object": "report.pdf", "filename": "Report.pdf", "rights": ["view"]}),
    );
    let before = gw.rss_kib();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pid = gw.pid();
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let rss = |p: u32| {
                std::fs::read_to_string(format!("/proc/{p}/status"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (mut peak, mut workers_peak) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                peak = peak.max(rss(pid));
                // Workers are children of whichever thread started them.
                let children: u64 = std::fs::read_dir(format!("/proc/{pid}/task"))
                    .map(|tasks| {
                        tasks
                            .filter_map(|t| t.ok())
                            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
                            .flat_map(|c| {
                                c.split_whitespace()
                                    .filter_map(|c| c.parse().ok())
                                    .collect::<Vec<u32>>()
                            })
                            .map(rss)
                            .sum()
                    })
                    .unwrap_or(0);
                workers_peak = workers_peak.max(children);
                std::thread::sleep(Duration::from_millis(20));
            }
            (peak, workers_peak)
        })
    };
    let started = Instant::now();
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..viewers)
        .map(|i| {
            let (url, busy) = (url.clone(), busy.clone());
            std::thread::spawn(move || {
                let page = get(&format!("{url}?as=view"));
                assert_eq!(page.status, 200);
                // Two widths in use, as phones and desktops would.
                let width = if i % 2 == 0 { 800 } else { 1200 };
                for p in 1..=20 {
                    loop {
                        let r = get(&format!("{url}?as=page&page={p}&width={width}"));
                        if r.status == 503 {
                            busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        assert_eq!(r.status, 200);
                        break;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("viewer");
    }
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Release);
    let (peak, workers) = sampler.join().expect("sampler");
    println!(
        "viewers={viewers} pages=20 images={} took={:.1}s gateway_rss_before={}KiB gateway_rss_peak={}KiB workers_rss_peak_sum={}KiB busy_retries={}",
        viewers * 20,
        took.as_secs_f64(),
        before,
        peak,
        workers,
        busy.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// How many render workers (children running `render-worker`) the gateway process has now.
fn render_workers_of(gateway: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // Field 4 (after the parenthesised name) is the parent's pid.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            parent == Some(gateway) && String::from_utf8_lossy(&cmdline).contains("render-worker")
        })
        .count()
}
