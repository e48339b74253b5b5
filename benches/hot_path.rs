//! Micro-benchmarks of the per-request work on the recipients' path (criterion).
//! Run: `cargo bench --bench hot_path`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use linkgate::cache::LinkCache;
use linkgate::counting::classify;
use linkgate::disposition::content_disposition;
use linkgate::link::{Document, Link, LinkId, LinkState, Right};
use linkgate::token::Keyring;

fn keyring() -> Keyring {
    Keyring::new("k1", vec![("k1".into(), vec![7u8; 32]), ("k0".into(), vec![8u8; 32])])
}

fn tokens(c: &mut Criterion) {
    let ring = keyring();
    let id = LinkId::random();
    let token = ring.sign(&id);
    c.bench_function("token sign", |b| b.iter(|| ring.sign(black_box(&id))));
    c.bench_function("token verify (good)", |b| b.iter(|| ring.verify(black_box(&token))));
    let mut forged = token.clone().into_bytes();
    forged[30] ^= 1;
    let forged = String::from_utf8(forged).unwrap_or_default();
    c.bench_function("token verify (forged)", |b| b.iter(|| ring.verify(black_box(&forged))));
}

fn headers(c: &mut Criterion) {
    c.bench_function("content-disposition ascii", |b| b.iter(|| content_disposition(false, black_box("Quarterly report 2026.pdf"))));
    c.bench_function("content-disposition utf-8", |b| b.iter(|| content_disposition(false, black_box("Überweisung €.pdf"))));
    let mut h = HeaderMap::new();
    h.insert("range", "bytes=1000-".parse().unwrap());
    h.insert("user-agent", "curl/8".parse().unwrap());
    c.bench_function("classify request", |b| b.iter(|| classify(black_box(&Method::GET), black_box(&h))));
}

fn cache(c: &mut Criterion) {
    let cache = LinkCache::new(Duration::from_secs(60), 100_000);
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let id = LinkId::random();
        ids.push(id);
        cache.put(Arc::new(Link {
            id,
            store: "docs".into(),
            documents: vec![Document { object: "a/b.pdf".into(), filename: "b.pdf".into(), size: None }],
            rights: vec![Right::Download],
            expires_at: None,
            max_downloads: None,
            state: LinkState::Active,
            generation: 1,
            key_id: "k1".into(),
            created_by: None,
            created_at: time::OffsetDateTime::now_utc(),
            cancelled_by: None,
            cancelled_at: None,
            password_hash: None,
            recipient: None,
            trusted_devices: Vec::new(),
        }));
    }
    let id = ids[4242];
    c.bench_function("link cache hit", |b| b.iter(|| cache.get(black_box(&id))));
}

criterion_group!(benches, tokens, headers, cache);
criterion_main!(benches);
