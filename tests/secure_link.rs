//! Migrating from nginx `secure_link`: URLs that nginx's own module accepts work through linkgate
//! unchanged, and every URL nginx refuses (403 bad hash, 410 expired) gets linkgate's uniform 404.
//! Each case is sent to a real nginx configured with `secure_link`/`secure_link_md5` and
//! `secure_link_secret` and to linkgate configured with the same directive text.

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use md5::{Digest, Md5};

const MD5_EXPR: &str = "$secure_link_expires$uri$remote_addr s3cret";
const SECRET: &str = "word";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `md5=…&expires=…` as an application following nginx's documentation makes it.
fn md5_query(uri: &str, expires: &str) -> String {
    format!("md5={}&expires={expires}", md5_hash(uri, expires))
}

fn md5_hash(uri: &str, expires: &str) -> String {
    URL_SAFE_NO_PAD.encode(Md5::digest(
        format!("{expires}{uri}127.0.0.1 s3cret").as_bytes(),
    ))
}

fn secret_hex(link: &str) -> String {
    Md5::digest(format!("{link}{SECRET}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Setup {
    _origin: Origin,
    nginx: LegacyNginx,
    gw: Gateway,
}

fn setup(max_downloads: Option<u64>) -> Setup {
    setup_on(max_downloads, None)
}

/// The same on a given `[state]` (e.g. Redis).
fn setup_on(max_downloads: Option<u64>, state: Option<String>) -> Setup {
    let origin = Origin::start();
    origin.put("report.pdf", &pseudo_random(5000, 7));
    origin.put("sub/a b.txt", b"spaces in names");
    // secure_link_secret links name files as sent, undecoded.
    origin.put("sub/a%20b.txt", b"a percent sign in the name");
    origin.put("report.pdf?x=1", b"a question mark in the name");
    let nginx = LegacyNginx::start(&origin.root, MD5_EXPR, SECRET);
    let limit = max_downloads
        .map(|n| format!("max_downloads = {n}\n"))
        .unwrap_or_default();
    let extra = format!(
        "[stores.docs.secure_link]\nprefix = \"/dl/\"\nsecure_link = \"$arg_md5,$arg_expires\"\nsecure_link_md5 = \"{MD5_EXPR}\"\n\
         [stores.legacy]\nkind = \"http\"\nurl = \"{}\"\n[stores.legacy.secure_link]\nprefix = \"/p/\"\nsecure_link_secret = \"{SECRET}\"\n{limit}",
        origin.url()
    );
    let gw = Gateway::start_with(GatewayOptions {
        extra,
        state,
        ..GatewayOptions::for_origin(&origin)
    });
    Setup {
        _origin: origin,
        nginx,
        gw,
    }
}

/// Sends the same path and query to nginx and to linkgate and checks that they agree.
fn agree(s: &Setup, path_and_query: &str, nginx_expects: u16, what: &str) {
    let n = get(&s.nginx.url(path_and_query));
    let g = get(&s.gw.url(path_and_query));
    assert_eq!(n.status, nginx_expects, "nginx, {what}: {path_and_query}");
    if n.status == 200 {
        assert_eq!(
            g.status, 200,
            "linkgate must accept what nginx accepts, {what}: {path_and_query}"
        );
        assert_eq!(sha256(&g.body), sha256(&n.body), "{what}");
    } else {
        let unknown = get(&s.gw.url("/s/not-a-token"));
        assert_eq!(
            g.status, 404,
            "linkgate must refuse what nginx refuses, {what}: {path_and_query}"
        );
        assert_eq!(g.body, unknown.body, "the uniform 404, {what}");
    }
}

#[test]
fn linkgate_accepts_exactly_the_md5_links_nginx_accepts() {
    let s = setup(None);
    let e = (now() + 3600).to_string();
    let good = md5_query("/dl/report.pdf", &e);
    let hash = md5_hash("/dl/report.pdf", &e);
    agree(&s, &format!("/dl/report.pdf?{good}"), 200, "a good link");
    agree(
        &s,
        &format!("/dl/sub/a%20b.txt?{}", md5_query("/dl/sub/a b.txt", &e)),
        200,
        "$uri is the decoded path",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5={hash}==&expires={e}"),
        200,
        "base64 padding",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5={hash}=x&expires={e}"),
        200,
        "nginx stops decoding at =",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?MD5={hash}&Expires={e}"),
        200,
        "argument names ignore case",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?x=1&{good}&md5=AAAA"),
        200,
        "the first argument of a name counts",
    );
    // The last of 22 characters carries 2 bits; nginx ignores the other 4.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet
        .iter()
        .position(|&c| c == *hash.as_bytes().last().unwrap())
        .unwrap();
    let loose = format!("{}{}", &hash[..21], alphabet[last ^ 0b0101] as char);
    agree(
        &s,
        &format!("/dl/report.pdf?md5={loose}&expires={e}"),
        200,
        "unused trailing bits",
    );
    let leading = format!("0{e}");
    agree(
        &s,
        &format!("/dl/report.pdf?{}", md5_query("/dl/report.pdf", &leading)),
        200,
        "leading zeros in expires",
    );

    let mut tampered = hash.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    agree(
        &s,
        &format!("/dl/report.pdf?md5={tampered}&expires={e}"),
        403,
        "a tampered hash",
    );
    agree(
        &s,
        &format!("/dl/sub/a%20b.txt?{good}"),
        403,
        "another object with the same hash",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5={hash}&expires={}", now() + 7200),
        403,
        "a changed expiry",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5={hash}A&expires={e}"),
        403,
        "23 characters",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5={hash}AA&expires={e}"),
        403,
        "24 characters, 18 bytes",
    );
    agree(
        &s,
        &format!("/dl/report.pdf?md5=AAAA&{good}"),
        403,
        "a wrong first md5 argument",
    );
    agree(&s, &format!("/dl/report.pdf?md5={hash}"), 403, "no expires");
    agree(
        &s,
        &format!("/dl/report.pdf?{}", md5_query("/dl/report.pdf", "0")),
        403,
        "expires 0",
    );
    agree(
        &s,
        &format!(
            "/dl/report.pdf?{}",
            md5_query("/dl/report.pdf", &format!("+{e}"))
        ),
        403,
        "a signed expiry",
    );
    agree(
        &s,
        &format!(
            "/dl/report.pdf?{}",
            md5_query("/dl/report.pdf", "99999999999999999999")
        ),
        403,
        "expiry overflow",
    );
    agree(
        &s,
        &format!(
            "/dl/report.pdf?{}",
            md5_query("/dl/report.pdf", &(now() - 100).to_string())
        ),
        410,
        "expired",
    );
}

#[test]
fn a_link_is_good_through_its_expiry_second_and_dead_after_it() {
    let s = setup(None);
    let e = now() + 2;
    let url = format!(
        "/dl/report.pdf?{}",
        md5_query("/dl/report.pdf", &e.to_string())
    );
    agree(&s, &url, 200, "before expiry");
    let deadline = Instant::now() + Duration::from_secs(10);
    while now() <= e {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    agree(&s, &url, 410, "after expiry");
}

#[test]
fn linkgate_accepts_exactly_the_secure_link_secret_links_nginx_accepts() {
    let s = setup(None);
    let hex = secret_hex("report.pdf");
    agree(&s, &format!("/p/{hex}/report.pdf"), 200, "a good link");
    agree(
        &s,
        &format!("/p/{}/report.pdf", hex.to_uppercase()),
        200,
        "upper-case hex",
    );
    agree(
        &s,
        &format!("/p/{}/sub/a%20b.txt", secret_hex("sub/a%20b.txt")),
        200,
        "the link as sent is the file name",
    );
    agree(
        &s,
        &format!("/p/{}/sub/a b.txt", secret_hex("sub/a b.txt")).replace(' ', "%20"),
        403,
        "so its hash covers it as sent",
    );
    agree(
        &s,
        &format!("/p/{hex}/sub/a%20b.txt"),
        403,
        "another object",
    );
    agree(
        &s,
        &format!("/p/{}/report.pdf", &hex[..31]),
        403,
        "a short hash",
    );
    agree(
        &s,
        &format!("/p/{}0/report.pdf", &hex[..31]),
        403,
        "a wrong hash",
    );
    agree(
        &s,
        &format!("/p/{hex}/report.pdf?x=1"),
        403,
        "the query is part of the signed link",
    );
    agree(
        &s,
        &format!("/p/{}/report.pdf?x=1", secret_hex("report.pdf?x=1")),
        200,
        "a signed query",
    );
}

#[test]
fn legacy_links_are_counted_and_audited_like_native_links() {
    counted_and_audited(setup(Some(2)));
}

#[test]
fn legacy_links_are_counted_and_audited_on_redis_too() {
    let redis = RedisServer::start();
    counted_and_audited(setup_on(Some(2), Some(redis.state())));
}

fn counted_and_audited(s: Setup) {
    let hex = secret_hex("report.pdf");
    let url = s.gw.url(&format!("/p/{hex}/report.pdf"));
    let first = get(&url);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, pseudo_random(5000, 7));
    assert!(first
        .header("content-disposition")
        .is_some_and(|d| d.contains("report.pdf")));
    assert_eq!(get(&url).status, 200);
    assert_eq!(
        get(&url).status,
        404,
        "max_downloads = 2 holds for legacy links"
    );
    assert_eq!(
        get(&s.nginx.url(&format!("/p/{hex}/report.pdf"))).status,
        200,
        "(nginx never counted)"
    );

    let admin = s.gw.admin();
    let listed = admin
        .call("GET", "/v1/links?created_by=nginx:secure_link", None)
        .json();
    let links = listed["links"].as_array().cloned().unwrap_or_default();
    assert_eq!(links.len(), 1, "{listed}");
    let id = links[0]["id"].as_str().unwrap().to_string();
    assert_eq!(links[0]["store"], "legacy");
    assert_eq!(links[0]["downloads_used"], 2);
    let events = events_when(&s.gw, &id, |e| {
        e.iter().any(|e| e["kind"] == "download.refused")
    });
    let kinds: Vec<String> = events
        .iter()
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "download.completed").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"download.refused".to_string()), "{kinds:?}");

    // The operator can cut a legacy link off like any other.
    assert_eq!(
        admin
            .call("DELETE", &format!("/v1/links/{id}?cancelled_by=ops"), None)
            .status,
        200
    );
    let md5_url = format!(
        "/dl/report.pdf?{}",
        md5_query("/dl/report.pdf", &(now() + 60).to_string())
    );
    assert_eq!(
        get(&s.gw.url(&md5_url)).status,
        200,
        "other legacy links are separate records"
    );
}
