//! The property checks behind every fuzz target, shared with `tests/fuzz_regressions.rs`, which
//! replays the stored inputs (`fuzz/regressions/<target>/`) through the same functions.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method};
use linkgate::admin::{parse_query, validate_link_body};
use linkgate::docstore::check_object_key;
use linkgate::model::counting::{
    classify, expected_length, is_multi_range, single_range, ByteRange, Kind,
};
use linkgate::model::link::{sanitize_filename, Document, Link, LinkId};
use linkgate::model::token::Keyring;
use linkgate::share::recipient::parse_form;
use linkgate::share::secure_link::{
    decoded_path, nginx_atotm, nginx_base64url_decode, RawSecureLink, Request, SecureLink,
};
use linkgate::share::verify::{cookies as cookie_values, Verifier};
use md5::{Digest, Md5};

/// Token parser/verifier and sealed values: never panic; a token verifies only if it is exactly
/// what `sign` produced; a sealed value opens only for its purpose.
pub fn token(data: &[u8]) {
    let ring = Keyring::new(
        "k2",
        vec![("k1".into(), vec![1u8; 32]), ("k2".into(), vec![2u8; 32])],
    )
    .with_retirements(vec![("k1".into(), 1_000)]);
    let text = String::from_utf8_lossy(data);
    if let Some(id) = ring.verify(&text) {
        // Only the exact signed text verifies (no second encoding of the same token).
        let kid = Keyring::key_id_of(&text).expect("a verified token has a key id");
        assert_eq!(ring.sign_with(&kid, &id).as_deref(), Some(text.as_ref()));
        assert_eq!(kid, "k2", "k1 is retired");
    }
    let _ = ring.verify_at(&text, 0);
    let _ = Keyring::key_id_of(&text);
    if let Some(payload) = ring.open("device", &text) {
        assert!(
            ring.open("pass", &text).is_none(),
            "bound to its purpose: {payload}"
        );
    }
    if data.len() >= 16 {
        let id = LinkId::from_slice(&data[..16]).expect("16 bytes");
        assert_eq!(ring.verify(&ring.sign(&id)), Some(id));
    }
}

/// Cookie parsing: device, password and CSRF values from arbitrary `Cookie` headers never panic
/// and never verify without the key.
pub fn cookies(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.append(http::header::COOKIE, value);
    for name in ["lg_dev", "lg_pw", ""] {
        for v in cookie_values(&headers, name) {
            assert!(!v.contains(';'), "a cookie value never spans pairs");
        }
    }
    let verifier = Verifier::new(Keyring::new("k", vec![("k".into(), vec![5u8; 32])]), true);
    if let Some(device) = verifier.device_of(&headers) {
        assert_eq!(device.len(), 32);
    }
    let doc = Document::new("a".into(), "a".into(), None);
    let link = Link::new("docs", doc, "k", time::OffsetDateTime::UNIX_EPOCH);
    let _ = verifier.passed(&headers, &link);
    let text = String::from_utf8_lossy(data);
    let _ = verifier.check_csrf(&text, &LinkId::random(), "d");
}

/// Range header handling: never panics; no request expects more than the whole document; a
/// multi-range is never read as one range; the classification names resumes.
pub fn range(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let single = single_range(&text);
    if is_multi_range(&text) {
        assert_eq!(single, None);
    }
    for size in [0u64, 1, 100, u64::MAX] {
        if let Some(n) = expected_length(Some(&text), Some(size)) {
            assert!(n <= size, "{n} > {size}");
        }
    }
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::RANGE, value);
    let kind = classify(&Method::GET, &headers);
    assert_ne!(kind, Kind::Head);
    match value_str(&headers).and_then(single_range) {
        Some(ByteRange::From(0)) | Some(ByteRange::Span(0, _)) | None => {
            assert_eq!(kind, Kind::Fresh)
        }
        Some(_) => assert_eq!(kind, Kind::Continuation),
    }
    assert_eq!(classify(&Method::HEAD, &headers), Kind::Head);
}

fn value_str(h: &HeaderMap) -> Option<&str> {
    h.get(http::header::RANGE)?.to_str().ok()
}

/// Form bodies (recipients' pages) and admin query strings never panic; decoded fields are text.
pub fn form(data: &[u8]) {
    if let Some(fields) = parse_form(data) {
        // Every pair came from one `&`-separated piece of the body.
        assert!(fields.len() <= data.iter().filter(|&&b| b == b'&').count() + 1);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for key in parse_query(text).keys() {
            assert!(!key.is_empty());
        }
    }
}

/// Admin JSON bodies: `POST /v1/links` validation never panics on any bytes, and display names
/// always come out safe.
pub fn admin_json(data: &[u8]) {
    let _ = validate_link_body(data, time::OffsetDateTime::UNIX_EPOCH);
    if let Ok(text) = std::str::from_utf8(data) {
        let name = sanitize_filename(text);
        assert!(!name.is_empty());
        assert!(
            !name
                .chars()
                .any(|c| c.is_control() || "\\/:*?\"<>|".contains(c)),
            "{name:?}"
        );
        assert!(name != "." && name != "..");
        if check_object_key(text).is_ok() {
            assert!(!text.split('/').any(|s| s == ".."));
        }
    }
}

/// Legacy nginx secure_link URLs: arbitrary paths and queries never panic, and anything accepted
/// names an object key that cannot leave the store.
pub fn secure_link(data: &[u8]) {
    let _ = nginx_base64url_decode(data);
    let _ = nginx_atotm(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    let md5 = RawSecureLink {
        prefix: "/dl/".into(),
        secure_link: Some("$arg_md5,$arg_expires".into()),
        secure_link_md5: Some("$secure_link_expires$uri$remote_addr k".into()),
        secure_link_secret: None,
        max_downloads: None,
    };
    let secret = RawSecureLink {
        prefix: "/p/".into(),
        secure_link: None,
        secure_link_md5: None,
        secure_link_secret: Some("w".into()),
        max_downloads: None,
    };
    let md5_rule = SecureLink::from_raw("fuzz", "docs", md5).expect("valid rule");
    for raw in [secret] {
        let rule = SecureLink::from_raw("fuzz", "docs", raw).expect("valid rule");
        for rule in [&rule, &md5_rule] {
            let req = Request {
                path,
                query,
                remote_addr: "127.0.0.1",
            };
            if let Some(Ok(legacy)) = rule.check(&req) {
                assert!(
                    check_object_key(&legacy.object).is_ok(),
                    "{:?}",
                    legacy.object
                );
            }
        }
    }
    // A link signed the way nginx documents it is accepted whenever its path is one linkgate
    // serves, and names exactly that path; anything else is refused.
    let raw_path = format!("/dl/{}", path.trim_start_matches('/'));
    let expires = "2000000000";
    let served = decoded_path(&raw_path).filter(|uri| check_object_key(&uri[4..]).is_ok());
    let uri_bytes: Vec<u8> = percent_encoding::percent_decode_str(&raw_path).collect();
    let mut signed = expires.as_bytes().to_vec();
    signed.extend_from_slice(&uri_bytes);
    signed.extend_from_slice(b"127.0.0.1 k");
    let hash = URL_SAFE_NO_PAD.encode(Md5::digest(&signed));
    let query = format!("md5={hash}&expires={expires}");
    let verdict = md5_rule.check(&Request {
        path: &raw_path,
        query: Some(&query),
        remote_addr: "127.0.0.1",
    });
    match served {
        Some(uri) => assert_eq!(
            verdict.map(|v| v.map(|l| l.object)),
            Some(Ok(uri[4..].to_string())),
            "{raw_path:?}"
        ),
        None => assert!(matches!(verdict, Some(Err(_))), "{raw_path:?}: {verdict:?}"),
    }
}
