//! One specification of the `LinkStore` behaviour, run against both backends: the embedded redb
//! file and a real Redis server. A behaviour is written once, as a function over
//! `Arc<dyn LinkStore>`, and the macro at the bottom runs it on each backend.

mod common;

use std::sync::Arc;
use std::time::Duration;

use linkgate::link::{Document, Link, LinkId, LinkState};
use linkgate::store::redis::{RedisOptions, RedisTarget};
use linkgate::store::{
    EmbeddedStore, LinkStore, RedisStore, Reservation, ReserveRequest, StoreError,
};

/// A store plus whatever keeps it alive (a temp folder or a redis-server process).
struct Backend {
    store: Arc<dyn LinkStore>,
    _keep: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("s.db")).unwrap();
    Backend {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

fn redis_store(url: String, ttl: Duration) -> RedisStore {
    RedisStore::new(RedisOptions {
        target: RedisTarget::Single(url),
        prefix: "t".into(),
        timeout: Duration::from_millis(500),
        reservation_ttl: ttl,
    })
    .unwrap()
}

fn redis() -> Backend {
    let server = common::RedisServer::start();
    Backend {
        store: Arc::new(redis_store(server.url(), Duration::from_secs(60))),
        _keep: Box::new(server),
    }
}

fn link(max: Option<u64>) -> Link {
    let doc = Document::new("a/b.pdf".into(), "b.pdf".into(), None);
    let mut l = Link::new(
        "docs",
        doc,
        "k1",
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap(),
    );
    l.max_downloads = max;
    l.created_by = Some("alice".into());
    l
}

fn ask(l: &Link, client: &str, continuation: bool) -> ReserveRequest {
    ReserveRequest {
        id: l.id,
        generation: l.generation,
        max: l.max_downloads.unwrap_or(u64::MAX),
        client: client.into(),
        continuation,
        window: Duration::from_secs(600),
    }
}

async fn created_links_read_back_and_ids_are_unique(s: Arc<dyn LinkStore>) {
    let l = link(Some(3));
    s.create(&l).await.unwrap();
    assert_eq!(s.get(l.id).await.unwrap(), Some(l.clone()));
    assert!(matches!(s.create(&l).await, Err(StoreError::Exists(_))));
    assert_eq!(s.get(LinkId::random()).await.unwrap(), None);
}

async fn updates_apply_atomically_or_not_at_all(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let updated = s
        .update(
            l.id,
            Arc::new(|l: &mut Link| {
                l.state = LinkState::Deactivated;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated.state, LinkState::Deactivated);
    assert_eq!(
        s.get(l.id).await.unwrap().unwrap().state,
        LinkState::Deactivated
    );
    let refused = s
        .update(
            l.id,
            Arc::new(|l: &mut Link| {
                l.state = LinkState::Cancelled;
                Err(StoreError::Refused("no".into()))
            }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Refused(_))));
    assert_eq!(
        s.get(l.id).await.unwrap().unwrap().state,
        LinkState::Deactivated,
        "a refused change leaves no trace"
    );
    let missing = s
        .update(LinkId::random(), Arc::new(|_: &mut Link| Ok(())))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

async fn concurrent_updates_are_not_lost(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                s.update(
                    l.id,
                    Arc::new(|l: &mut Link| {
                        l.generation += 1;
                        Ok(())
                    }),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.get(l.id).await.unwrap().unwrap().generation, 21);
}

async fn slots_are_granted_up_to_the_limit(s: Arc<dyn LinkStore>) {
    let l = link(Some(2));
    s.create(&l).await.unwrap();
    assert!(matches!(
        s.reserve(&ask(&l, "a", false)).await.unwrap(),
        Reservation::Granted { used: 1, .. }
    ));
    assert!(matches!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Granted { used: 2, .. }
    ));
    assert_eq!(
        s.reserve(&ask(&l, "c", false)).await.unwrap(),
        Reservation::Exhausted
    );
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 2);
}

async fn concurrent_reservations_never_over_grant(s: Arc<dyn LinkStore>) {
    let l = link(Some(10));
    s.create(&l).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (s, req) = (s.clone(), ask(&l, &format!("c{i}"), false));
            tokio::spawn(async move { s.reserve(&req).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Reservation::Granted { .. }) {
            granted += 1;
        }
    }
    assert_eq!(granted, 10);
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 10);
}

async fn a_released_slot_can_be_taken_again(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    let Reservation::Granted { ticket, .. } = s.reserve(&ask(&l, "a", false)).await.unwrap() else {
        panic!("granted expected")
    };
    assert_eq!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Exhausted
    );
    s.release(ticket, "a").await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 0);
    assert!(matches!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Granted { .. }
    ));
}

async fn a_committed_slot_stays_taken(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    let Reservation::Granted { ticket, .. } = s.reserve(&ask(&l, "a", false)).await.unwrap() else {
        panic!("granted expected")
    };
    s.commit(&[ticket]).await.unwrap();
    assert_eq!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Exhausted
    );
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1);
}

async fn a_continuation_rides_on_the_same_clients_grant(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(matches!(
        s.reserve(&ask(&l, "10.0.0.1", false)).await.unwrap(),
        Reservation::Granted { .. }
    ));
    assert_eq!(
        s.reserve(&ask(&l, "10.0.0.1", true)).await.unwrap(),
        Reservation::Covered
    );
    assert_eq!(
        s.reserve(&ask(&l, "10.0.0.1", true)).await.unwrap(),
        Reservation::Covered
    );
    assert_eq!(
        s.reserve(&ask(&l, "10.0.0.2", true)).await.unwrap(),
        Reservation::Exhausted,
        "another client has no grant"
    );
    assert_eq!(
        s.reserve(&ask(&l, "10.0.0.1", false)).await.unwrap(),
        Reservation::Exhausted,
        "a fresh download always counts"
    );
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1);
}

async fn a_continuation_without_a_grant_counts(s: Arc<dyn LinkStore>) {
    let l = link(Some(2));
    s.create(&l).await.unwrap();
    assert!(matches!(
        s.reserve(&ask(&l, "a", true)).await.unwrap(),
        Reservation::Granted { used: 1, .. }
    ));
    assert_eq!(
        s.reserve(&ask(&l, "a", true)).await.unwrap(),
        Reservation::Covered
    );
}

async fn releasing_forgets_the_grant(s: Arc<dyn LinkStore>) {
    let l = link(Some(5));
    s.create(&l).await.unwrap();
    let Reservation::Granted { ticket, .. } = s.reserve(&ask(&l, "a", false)).await.unwrap() else {
        panic!("granted expected")
    };
    s.release(ticket, "a").await.unwrap();
    assert!(
        matches!(
            s.reserve(&ask(&l, "a", true)).await.unwrap(),
            Reservation::Granted { .. }
        ),
        "no free resume after a give-back"
    );
}

async fn a_slot_shared_by_parallel_ranges_stays_counted_when_one_part_breaks_off(
    s: Arc<dyn LinkStore>,
) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    let Reservation::Granted { ticket, .. } = s.reserve(&ask(&l, "a", false)).await.unwrap() else {
        panic!("granted expected")
    };
    assert_eq!(
        s.reserve(&ask(&l, "a", true)).await.unwrap(),
        Reservation::Covered
    );
    s.release(ticket, "a").await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1);
    assert_eq!(
        s.reserve(&ask(&l, "a", true)).await.unwrap(),
        Reservation::Covered,
        "the other parts may still resume"
    );
    assert_eq!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Exhausted
    );
}

async fn grants_end_with_their_window(s: Arc<dyn LinkStore>) {
    let l = link(Some(5));
    s.create(&l).await.unwrap();
    let mut req = ask(&l, "a", false);
    req.window = Duration::from_millis(300);
    assert!(matches!(
        s.reserve(&req).await.unwrap(),
        Reservation::Granted { .. }
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    req.continuation = true;
    assert!(matches!(
        s.reserve(&req).await.unwrap(),
        Reservation::Granted { used: 2, .. }
    ));
}

async fn a_new_generation_counts_from_zero_and_old_ones_are_stale(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(matches!(
        s.reserve(&ask(&l, "a", false)).await.unwrap(),
        Reservation::Granted { .. }
    ));
    let bumped = s
        .update(
            l.id,
            Arc::new(|l: &mut Link| {
                l.generation += 1;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        s.reserve(&ask(&l, "a", false)).await.unwrap(),
        Reservation::Stale,
        "a caller with the old generation must refresh"
    );
    assert_eq!(s.usage(l.id, 2).await.unwrap(), 0);
    assert!(matches!(
        s.reserve(&ask(&bumped, "a", false)).await.unwrap(),
        Reservation::Granted { used: 1, .. }
    ));
}

async fn closed_or_unknown_links_are_stale(s: Arc<dyn LinkStore>) {
    let l = link(Some(5));
    s.create(&l).await.unwrap();
    s.update(
        l.id,
        Arc::new(|l: &mut Link| {
            l.state = LinkState::Deactivated;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        s.reserve(&ask(&l, "a", false)).await.unwrap(),
        Reservation::Stale
    );
    assert_eq!(
        s.reserve(&ask(&link(Some(1)), "a", false)).await.unwrap(),
        Reservation::Stale
    );
}

async fn usage_of_unlimited_links_adds_up(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    s.add_usage(l.id, 1, 3).await.unwrap();
    s.add_usage(l.id, 1, 4).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 7);
    assert_eq!(s.usage(l.id, 2).await.unwrap(), 0);
}

async fn events_chain_in_order_and_old_ones_are_pruned(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let mut old = linkgate::audit::Draft::new("link.created", "ok");
    old.at -= time::Duration::days(10);
    s.append_events(l.id, &[old], None).await.unwrap();
    let drafts: Vec<_> = (0..5)
        .map(|i| linkgate::audit::Draft::new(&format!("e{i}"), "ok"))
        .collect();
    s.append_events(l.id, &drafts[..2], None).await.unwrap();
    s.append_events(l.id, &drafts[2..], Some(Duration::from_secs(86_400)))
        .await
        .unwrap();
    let events = s.events(l.id, 0, 100).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6], "the 10-day-old event is gone");
    linkgate::audit::verify(l.id, &events).unwrap();
    assert_eq!(s.events(l.id, 4, 1).await.unwrap()[0].seq, 5);
    assert!(s.events(LinkId::random(), 0, 10).await.unwrap().is_empty());
}

async fn links_are_listed_newest_first_by_index(s: Arc<dyn LinkStore>) {
    let mut made = Vec::new();
    for i in 0..5 {
        let mut l = link(None);
        l.created_at += time::Duration::seconds(i);
        l.documents[0].object = if i % 2 == 0 { "x".into() } else { "y".into() };
        s.create(&l).await.unwrap();
        made.push(l);
    }
    let q = |object: Option<&str>, after: Option<String>| linkgate::store::ListQuery {
        object: object.map(str::to_string),
        after,
        limit: 2,
        ..Default::default()
    };
    let first = s.list(&q(Some("x"), None)).await.unwrap();
    assert_eq!(
        first.links.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![made[4].id, made[2].id]
    );
    let second = s.list(&q(Some("x"), first.next.clone())).await.unwrap();
    assert_eq!(
        second.links.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![made[0].id]
    );
    assert!(second.next.is_none());
    let all = s
        .list(&linkgate::store::ListQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.links.len(), 5);
}

async fn hits_are_exact_under_concurrency(s: Arc<dyn LinkStore>) {
    let key = format!("t:{}", LinkId::random());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.hit(&key, Duration::from_secs(60), 1).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=100).collect::<Vec<u64>>(),
        "each increment answers its own place: exactly five are <= 5"
    );
    assert_eq!(s.hit(&key, Duration::from_secs(60), 0).await.unwrap(), 100);
}

async fn put_new_keeps_the_first_value_until_it_expires(s: Arc<dyn LinkStore>) {
    let key = format!("t:{}", LinkId::random());
    let tasks: Vec<_> = (0..20u8)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                (
                    i,
                    s.kv_put_new(&key, &[i], Duration::from_millis(700))
                        .await
                        .unwrap(),
                )
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let winners: Vec<u8> = outcomes
        .iter()
        .filter(|(_, found)| found.is_none())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one value is stored: {outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|(_, found)| found.as_ref().is_none_or(|v| v == &vec![winners[0]])),
        "the others see it"
    );
    assert_eq!(s.kv_get(&key).await.unwrap(), Some(vec![winners[0]]));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        s.kv_put_new(&key, b"next", Duration::from_secs(5))
            .await
            .unwrap(),
        None,
        "an expired value is replaced"
    );
    assert_eq!(s.kv_get(&key).await.unwrap(), Some(b"next".to_vec()));
}

async fn tallies_add_up_and_never_expire(s: Arc<dyn LinkStore>) {
    let key = format!("t:{}", LinkId::random());
    assert_eq!(s.tally(&key, 0).await.unwrap(), 0);
    assert_eq!(s.tally(&key, 3).await.unwrap(), 3);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move { s.tally(&key, 1).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.tally(&key, 0).await.unwrap(), 53);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let b = super::embedded();
                super::$name(b.store.clone()).await;
            })*
        }
        mod redis_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let b = super::redis();
                super::$name(b.store.clone()).await;
            })*
        }
    };
}

conformance!(
    created_links_read_back_and_ids_are_unique,
    updates_apply_atomically_or_not_at_all,
    concurrent_updates_are_not_lost,
    slots_are_granted_up_to_the_limit,
    concurrent_reservations_never_over_grant,
    a_released_slot_can_be_taken_again,
    a_committed_slot_stays_taken,
    a_continuation_rides_on_the_same_clients_grant,
    a_continuation_without_a_grant_counts,
    releasing_forgets_the_grant,
    a_slot_shared_by_parallel_ranges_stays_counted_when_one_part_breaks_off,
    grants_end_with_their_window,
    a_new_generation_counts_from_zero_and_old_ones_are_stale,
    closed_or_unknown_links_are_stale,
    usage_of_unlimited_links_adds_up,
    events_chain_in_order_and_old_ones_are_pruned,
    links_are_listed_newest_first_by_index,
    hits_are_exact_under_concurrency,
    put_new_keeps_the_first_value_until_it_expires,
    tallies_add_up_and_never_expire,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_tallies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        assert_eq!(s.tally("codechecks:x", 7).await.unwrap(), 7);
    }
    // The store's writer thread lets go of the file a moment after the store is dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let s = loop {
        match EmbeddedStore::open(&path) {
            Ok(s) => break s,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s.tally("codechecks:x", 0).await.unwrap(), 7);
}

// Reservations outliving their gateway matter only where several gateways share state.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_reservation_whose_gateway_died_expires_by_itself() {
    let server = common::RedisServer::start();
    let s = redis_store(server.url(), Duration::from_secs(2));
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(matches!(
        s.reserve(&ask(&l, "a", false)).await.unwrap(),
        Reservation::Granted { .. }
    ));
    assert_eq!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Exhausted
    );
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert!(matches!(
        s.reserve(&ask(&l, "b", false)).await.unwrap(),
        Reservation::Granted { used: 1, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_renewed_or_committed_reservation_does_not_expire() {
    let server = common::RedisServer::start();
    let s = redis_store(server.url(), Duration::from_secs(2));
    let l = link(Some(2));
    s.create(&l).await.unwrap();
    let Reservation::Granted {
        ticket: running, ..
    } = s.reserve(&ask(&l, "a", false)).await.unwrap()
    else {
        panic!()
    };
    let Reservation::Granted { ticket: done, .. } = s.reserve(&ask(&l, "b", false)).await.unwrap()
    else {
        panic!()
    };
    s.commit(&[done]).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        s.keep_alive(&[running]).await.unwrap();
    }
    assert_eq!(
        s.reserve(&ask(&l, "c", false)).await.unwrap(),
        Reservation::Exhausted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fails_fast_and_recovers() {
    let mut server = common::RedisServer::start();
    let s = redis_store(server.url(), Duration::from_secs(60));
    let l = link(Some(3));
    s.create(&l).await.unwrap();
    server.kill();
    let started = std::time::Instant::now();
    assert!(matches!(
        s.reserve(&ask(&l, "a", false)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead redis must not hang a request"
    );
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match s.reserve(&ask(&l, "a", false)).await {
            Ok(r) => {
                assert!(matches!(r, Reservation::Granted { used: 1, .. }), "{r:?}");
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
