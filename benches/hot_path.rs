//! Micro-benchmarks of the per-request work on the recipients' path (criterion).
//! Run: `cargo bench --bench hot_path`. The counting-script bench starts its own `redis-server` on
//! a free loopback port (it is skipped, with a note, when redis-server is not installed).

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use linkgate::model::counting::classify;
use linkgate::model::disposition::content_disposition;
use linkgate::model::link::{Document, Link, LinkId};
use linkgate::model::token::Keyring;
use linkgate::state::cache::LinkCache;

fn keyring() -> Keyring {
    Keyring::new(
        "k1",
        vec![("k1".into(), vec![7u8; 32]), ("k0".into(), vec![8u8; 32])],
    )
}

fn tokens(c: &mut Criterion) {
    let ring = keyring();
    let id = LinkId::random();
    let token = ring.sign(&id);
    c.bench_function("token sign", |b| b.iter(|| ring.sign(black_box(&id))));
    c.bench_function("token verify (good)", |b| {
        b.iter(|| ring.verify(black_box(&token)))
    });
    let mut forged = token.clone().into_bytes();
    forged[30] ^= 1;
    let forged = String::from_utf8(forged).unwrap_or_default();
    c.bench_function("token verify (forged)", |b| {
        b.iter(|| ring.verify(black_box(&forged)))
    });
}

fn headers(c: &mut Criterion) {
    c.bench_function("content-disposition ascii", |b| {
        b.iter(|| content_disposition(false, black_box("Quarterly report 2026.pdf")))
    });
    c.bench_function("content-disposition utf-8", |b| {
        b.iter(|| content_disposition(false, black_box("Überweisung €.pdf")))
    });
    let mut h = HeaderMap::new();
    h.insert("range", "bytes=1000-".parse().unwrap());
    h.insert("user-agent", "curl/8".parse().unwrap());
    c.bench_function("classify request", |b| {
        b.iter(|| classify(black_box(&Method::GET), black_box(&h)))
    });
}

fn cache(c: &mut Criterion) {
    let cache = LinkCache::new(Duration::from_secs(60), 100_000);
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let link = sample_link();
        ids.push(link.id);
        cache.put(Arc::new(link));
    }
    let id = ids[4242];
    c.bench_function("link cache hit", |b| b.iter(|| cache.get(black_box(&id))));
}

fn sample_link() -> Link {
    let doc = Document::new("a/b.pdf".into(), "b.pdf".into(), None);
    Link::new("docs", doc, "k1", time::OffsetDateTime::now_utc())
}

fn cookies(c: &mut Criterion) {
    let verifier = linkgate::share::verify::Verifier::new(keyring(), true);
    let set = verifier.device_cookie(&linkgate::share::verify::new_device_id());
    let mut h = HeaderMap::new();
    h.insert(
        "cookie",
        format!("other=1; {}", set.split(';').next().unwrap_or(""))
            .parse()
            .unwrap(),
    );
    c.bench_function("device cookie verify", |b| {
        b.iter(|| verifier.device_of(black_box(&h)))
    });
}

fn counting(c: &mut Criterion) {
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return;
    };
    let Ok(port) = listener.local_addr().map(|a| a.port()) else {
        return;
    };
    drop(listener);
    let dir = std::env::temp_dir().join(format!("linkgate-bench-redis-{port}"));
    let _ = std::fs::create_dir_all(&dir);
    let child = std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("redis-server not installed: skipping the counting-script bench");
        return;
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        return;
    };
    let store = linkgate::state::RedisStore::new(linkgate::state::redis::RedisOptions {
        target: linkgate::state::redis::RedisTarget::Single(format!("redis://127.0.0.1:{port}")),
        prefix: "bench".into(),
        timeout: Duration::from_secs(2),
    });
    if let Ok(store) = store {
        use linkgate::state::LinkStore;
        let mut link = sample_link();
        link.max_downloads = Some(1_000_000_000_000);
        if rt.block_on(store.create(&link)).is_ok() {
            // A counted download of a 4 KiB document: its one draw.
            let ask = linkgate::model::counting::Ask {
                need: 4096,
                bytes: 4096,
                size: 4096,
                ..Default::default()
            };
            let req = linkgate::state::Draw {
                id: link.id,
                generation: 1,
                max: 1_000_000_000_000,
                part: "p".into(),
                ask,
                take: None,
            };
            c.bench_function("counting script round trip (redis, loopback)", |b| {
                b.iter(|| rt.block_on(store.draw(black_box(&req))))
            });
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, tokens, headers, cache, cookies, counting);
criterion_main!(benches);
