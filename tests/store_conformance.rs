//! One specification of the `LinkStore` behaviour, run against both backends: the embedded redb
//! file and a real Redis server. A behaviour is written once, as a function over
//! `Arc<dyn LinkStore>`, and the macro at the bottom runs it on each backend.

mod common;

use std::sync::Arc;
use std::time::Duration;

use linkgate::model::counting::{self, Account, Ask, Drawn};
use linkgate::model::link::{Document, Link, LinkId, LinkState};
use linkgate::model::share::{Delivery, DeliveryState, Sender, Share, ShareRecipient};
use linkgate::state::queues::Refund;
use linkgate::state::redis::{RedisOptions, RedisTarget};
use linkgate::state::{
    Draw, EmbeddedStore, LinkStore, MailJob, RedisStore, ShareQuery, StoreError, WriteId,
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

fn redis_store(url: String) -> RedisStore {
    RedisStore::new(RedisOptions {
        target: RedisTarget::Single(url),
        prefix: "t".into(),
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

fn redis() -> Backend {
    let server = common::RedisServer::start();
    Backend {
        store: Arc::new(redis_store(server.url())),
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

/// A draw of a whole copy of a 100-byte document.
fn whole(l: &Link) -> Draw {
    draw(
        l,
        "p",
        Ask {
            need: 100,
            bytes: 100,
            size: 100,
            ..Ask::default()
        },
    )
}

fn draw(l: &Link, part: &str, ask: Ask) -> Draw {
    Draw {
        id: l.id,
        generation: l.generation,
        max: l.max_downloads.unwrap_or(u64::MAX),
        part: part.into(),
        ask,
        take: (ask.block > 0).then(WriteId::new),
    }
}

fn refund(l: &Link, part: &str, bytes: u64, own: u64) -> Refund {
    Refund {
        id: l.id,
        generation: l.generation,
        part: part.into(),
        bytes,
        own,
        write: WriteId::new(),
        take: false,
    }
}

fn counted(d: Drawn) -> bool {
    matches!(d, Drawn::Granted { counted: true, .. })
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

async fn whole_copies_count_up_to_the_limit(s: Arc<dyn LinkStore>) {
    let l = link(Some(2));
    s.create(&l).await.unwrap();
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 100,
            counted: true,
            used: 1
        }
    );
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 100,
            counted: true,
            used: 2
        }
    );
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 50,
            counted: false,
            used: 2
        },
        "half a copy of slack"
    );
    assert_eq!(s.draw(&whole(&l)).await.unwrap(), Drawn::Exhausted);
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 2);
}

async fn concurrent_draws_never_over_grant(s: Arc<dyn LinkStore>) {
    let l = link(Some(10));
    s.create(&l).await.unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let (s, d) = (s.clone(), whole(&l));
            tokio::spawn(async move { s.draw(&d).await.unwrap() })
        })
        .collect();
    let (mut counts, mut bytes) = (0, 0);
    for t in tasks {
        if let Drawn::Granted {
            counted, bytes: b, ..
        } = t.await.unwrap()
        {
            counts += u64::from(counted);
            bytes += b;
        }
    }
    assert_eq!(counts, 10);
    assert_eq!(bytes, 1050, "ten copies and half a copy");
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 10);
}

async fn a_download_that_sent_nothing_is_uncounted(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 50,
            counted: false,
            used: 1
        }
    );
    s.refund(&[refund(&l, "p", 150, 0)]).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 0);
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
}

async fn a_resume_rides_on_what_the_broken_download_left(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
    s.refund(&[refund(&l, "p", 70, 0)]).await.unwrap(); // 30 bytes were sent
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1);
    let rest = draw(
        &l,
        "p",
        Ask {
            need: 70,
            bytes: 70,
            size: 100,
            ..Ask::default()
        },
    );
    assert_eq!(
        s.draw(&rest).await.unwrap(),
        Drawn::Granted {
            bytes: 70,
            counted: false,
            used: 1
        }
    );
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 50,
            counted: false,
            used: 1
        }
    );
    assert_eq!(s.draw(&whole(&l)).await.unwrap(), Drawn::Exhausted);
}

async fn parts_share_the_links_limit_but_not_their_bytes(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
    let other = draw(
        &l,
        "q",
        Ask {
            need: 100,
            bytes: 100,
            size: 100,
            ..Ask::default()
        },
    );
    assert_eq!(
        s.draw(&other).await.unwrap(),
        Drawn::Exhausted,
        "another document needs a download of its own"
    );
}

async fn probes_and_own_downloads(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    let probe = draw(
        &l,
        "p",
        Ask {
            probe: true,
            ..Ask::default()
        },
    );
    let own = draw(
        &l,
        "p",
        Ask {
            own: true,
            ..Ask::default()
        },
    );
    assert_eq!(
        s.draw(&probe).await.unwrap(),
        Drawn::Granted {
            bytes: 0,
            counted: false,
            used: 0
        }
    );
    assert_eq!(
        s.draw(&own).await.unwrap(),
        Drawn::Granted {
            bytes: 0,
            counted: true,
            used: 1
        }
    );
    assert_eq!(s.draw(&probe).await.unwrap(), Drawn::Exhausted);
    s.refund(&[refund(&l, "p", 0, 1)]).await.unwrap();
    assert_eq!(
        s.draw(&probe).await.unwrap(),
        Drawn::Granted {
            bytes: 0,
            counted: false,
            used: 0
        }
    );
}

async fn a_new_generation_counts_from_zero_and_old_ones_are_stale(s: Arc<dyn LinkStore>) {
    let l = link(Some(1));
    s.create(&l).await.unwrap();
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
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
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Stale,
        "a caller with the old generation must refresh"
    );
    s.refund(&[refund(&l, "p", 100, 0)]).await.unwrap();
    assert_eq!(
        s.usage(l.id, 2).await.unwrap(),
        0,
        "a refund of an old generation changes nothing"
    );
    assert_eq!(
        s.draw(&whole(&bumped)).await.unwrap(),
        Drawn::Granted {
            bytes: 100,
            counted: true,
            used: 1
        }
    );
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
    assert_eq!(s.draw(&whole(&l)).await.unwrap(), Drawn::Stale);
    assert_eq!(s.draw(&whole(&link(Some(1)))).await.unwrap(), Drawn::Stale);
}

/// The store applies exactly the rules of `linkgate::model::counting` (the Redis script mirrors them):
/// a pseudo-random sequence of draws, blocks and refunds on a few parts gets the same answers
/// from the store as from the functions themselves, on a link with few downloads and on one with
/// enough to take blocks.
async fn the_store_counts_exactly_as_the_model_does(s: Arc<dyn LinkStore>) {
    for max in [3, 600] {
        counts_exactly_as_the_model_does(&s, max).await;
    }
}

async fn counts_exactly_as_the_model_does(s: &Arc<dyn LinkStore>, max: u64) {
    let l = link(Some(max));
    s.create(&l).await.unwrap();
    let (mut used, mut accounts) = (0u64, std::collections::HashMap::<String, Account>::new());
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut blocks = 0;
    for step in 0..2000 {
        let part = ["a", "b", "c"][next(3) as usize].to_string();
        let size = [0, 10, 1000, 999][next(4) as usize];
        let account = accounts.entry(part.clone()).or_default();
        if next(3) == 0 {
            let (bytes, own) = (next(600), u64::from(next(5) == 0));
            counting::refund(&mut used, account, bytes, own);
            s.refund(&[refund(&l, &part, bytes, own)]).await.unwrap();
        } else {
            let need = next(1200);
            let ask = Ask {
                need,
                bytes: need.min(next(1200)),
                size,
                probe: next(8) == 0,
                own: next(10) == 0,
                whole: next(2) == 0,
                block: if next(4) == 0 { next(80) } else { 0 },
            };
            let want = counting::draw(&mut used, max, account, &ask);
            blocks += u64::from(matches!(want, Drawn::Block { .. }));
            let got = s.draw(&draw(&l, &part, ask)).await.unwrap();
            assert_eq!(got, want, "step {step}: {ask:?} on {part}");
        }
        assert_eq!(s.usage(l.id, 1).await.unwrap(), used, "step {step}");
    }
    assert_eq!(blocks > 0, max > 100, "blocks taken with {max} downloads");
}

async fn usage_of_unlimited_links_adds_up(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    s.add_usage(WriteId::new(), l.id, 1, 3).await.unwrap();
    s.add_usage(WriteId::new(), l.id, 1, 4).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 7);
    assert_eq!(s.usage(l.id, 2).await.unwrap(), 0);
}

async fn events_chain_in_order_and_old_ones_are_pruned(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let mut old = linkgate::model::audit::Draft::new("link.created", "ok");
    old.at -= time::Duration::days(10);
    s.append_events(WriteId::new(), l.id, &[old], None)
        .await
        .unwrap();
    let drafts: Vec<_> = (0..5)
        .map(|i| linkgate::model::audit::Draft::new(&format!("e{i}"), "ok"))
        .collect();
    s.append_events(WriteId::new(), l.id, &drafts[..2], None)
        .await
        .unwrap();
    s.append_events(
        WriteId::new(),
        l.id,
        &drafts[2..],
        Some(Duration::from_secs(86_400)),
    )
    .await
    .unwrap();
    let events = s.events(l.id, 0, 100).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5, 6], "the 10-day-old event is gone");
    linkgate::model::audit::verify(l.id, &events).unwrap();
    assert_eq!(s.events(l.id, 4, 1).await.unwrap()[0].seq, 5);
    assert!(s.events(LinkId::random(), 0, 10).await.unwrap().is_empty());
}

/// A quarter second of a busy link's events arrives in one write: thousands, kept in order.
async fn a_large_batch_of_events_chains_in_order(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let drafts: Vec<_> = (0..2_345)
        .map(|i| linkgate::model::audit::Draft::new(&format!("e{i}"), "ok"))
        .collect();
    s.append_events(WriteId::new(), l.id, &drafts[..1], None)
        .await
        .unwrap();
    s.append_events(WriteId::new(), l.id, &drafts[1..], None)
        .await
        .unwrap();
    let events = s.events(l.id, 0, 10_000).await.unwrap();
    assert_eq!(events.len(), 2_345);
    assert!(events
        .iter()
        .enumerate()
        .all(|(i, e)| e.seq == i as u64 + 1 && e.draft.kind == format!("e{i}")));
    linkgate::model::audit::verify(l.id, &events).unwrap();
    // Pages start and end anywhere in what was written together.
    for (after, limit) in [(250, 10), (256, 3), (257, 300), (2_340, 100), (0, 1)] {
        let page = s.events(l.id, after, limit).await.unwrap();
        let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
        let want: Vec<u64> = (after + 1..=2_345).take(limit).collect();
        assert_eq!(seqs, want, "after {after}, limit {limit}");
    }
    assert!(s.events(l.id, 2_345, 10).await.unwrap().is_empty());
}

/// Retention drops exactly the events older than it, also from among events written together
/// with newer ones, and the chain that remains verifies.
async fn retention_drops_old_events_from_the_middle_of_a_write(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let draft = |i: usize, days: i64| {
        let mut d = linkgate::model::audit::Draft::new(&format!("e{i}"), "ok");
        d.at -= time::Duration::days(days);
        d
    };
    let mut drafts: Vec<_> = (0..600).map(|i| draft(i, 10)).collect();
    drafts.extend((600..605).map(|i| draft(i, 0)));
    s.append_events(WriteId::new(), l.id, &drafts, None)
        .await
        .unwrap();
    assert_eq!(s.events(l.id, 0, 1_000).await.unwrap().len(), 605);
    let more: Vec<_> = (605..607).map(|i| draft(i, 0)).collect();
    s.append_events(
        WriteId::new(),
        l.id,
        &more,
        Some(Duration::from_secs(86_400)),
    )
    .await
    .unwrap();
    let events = s.events(l.id, 0, 1_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (601..=607).collect::<Vec<u64>>());
    linkgate::model::audit::verify(l.id, &events).unwrap();
    assert_eq!(s.events(l.id, 603, 2).await.unwrap()[0].seq, 604);
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
    let q = |object: Option<&str>, after: Option<String>| linkgate::state::ListQuery {
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
        .list(&linkgate::state::ListQuery {
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

async fn kept_values_are_claimed_once_replaced_and_forgotten(s: Arc<dyn LinkStore>) {
    let key = format!("idem:{}", LinkId::random());
    let tasks: Vec<_> = (0..20u8)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                let found = s
                    .keep_new(&key, &[i], Duration::from_secs(60))
                    .await
                    .unwrap();
                (i, found)
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
    assert_eq!(winners.len(), 1, "exactly one claim wins: {outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|(_, found)| found.as_ref().is_none_or(|v| v == &vec![winners[0]])));
    assert_eq!(s.keep_get(&key).await.unwrap(), Some(vec![winners[0]]));
    s.keep_put(&key, b"done", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(s.keep_get(&key).await.unwrap(), Some(b"done".to_vec()));
    assert_eq!(
        s.keep_new(&key, b"again", Duration::from_secs(60))
            .await
            .unwrap(),
        Some(b"done".to_vec()),
        "a live value is never replaced by a claim"
    );
    s.keep_del(&key).await.unwrap();
    assert_eq!(s.keep_get(&key).await.unwrap(), None);
    assert_eq!(
        s.keep_new(&key, b"fresh", Duration::from_millis(300))
            .await
            .unwrap(),
        None,
        "a forgotten key can be claimed again"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.keep_get(&key).await.unwrap(), None, "expired");
    assert_eq!(
        s.keep_new(&key, b"later", Duration::from_secs(60))
            .await
            .unwrap(),
        None,
        "an expired value is replaced"
    );
    assert_eq!(s.keep_get(&key).await.unwrap(), Some(b"later".to_vec()));
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

fn share(objects: &[&str], created_by: &str, at_s: i64) -> Share {
    Share {
        id: LinkId::random(),
        store: "docs".into(),
        objects: objects.iter().map(|o| o.to_string()).collect(),
        subject: "Q3".into(),
        message: Some("Hello".into()),
        sender: Sender::default(),
        created_by: Some(created_by.into()),
        created_at: time::OffsetDateTime::from_unix_timestamp(1_900_000_000 + at_s).unwrap(),
        expires_at: None,
        complete: false,
        recipients: vec![ShareRecipient {
            link: LinkId::random(),
            email: "jane@example.org".into(),
            name: Some("Jane".into()),
            delivery: Delivery::pending(),
            revoked_by: None,
            revoked_at: None,
        }],
        cancelled_by: None,
        cancelled_at: None,
    }
}

async fn shares_read_back_update_atomically_and_ids_are_unique(s: Arc<dyn LinkStore>) {
    let sh = share(&["a.pdf"], "alice", 0);
    s.create_share(&sh).await.unwrap();
    assert_eq!(s.get_share(sh.id).await.unwrap(), Some(sh.clone()));
    assert!(matches!(
        s.create_share(&sh).await,
        Err(StoreError::Exists(_))
    ));
    assert_eq!(s.get_share(LinkId::random()).await.unwrap(), None);
    assert!(matches!(
        s.update_share(LinkId::random(), Arc::new(|_| Ok(()))).await,
        Err(StoreError::NotFound(_))
    ));
    // A refused change leaves the record untouched.
    let refused = s
        .update_share(
            sh.id,
            Arc::new(|x: &mut Share| {
                x.complete = true;
                Err(StoreError::Refused("no".into()))
            }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Refused(_))));
    assert!(!s.get_share(sh.id).await.unwrap().unwrap().complete);
    // Concurrent delivery outcomes on the same record are all kept.
    let mut many = sh.clone();
    many.id = LinkId::random();
    many.recipients = (0..8)
        .map(|i| ShareRecipient {
            link: LinkId::random(),
            email: format!("r{i}@example.org"),
            name: None,
            delivery: Delivery::pending(),
            revoked_by: None,
            revoked_at: None,
        })
        .collect();
    s.create_share(&many).await.unwrap();
    let tasks: Vec<_> = many
        .recipients
        .iter()
        .map(|r| {
            let (s, id, link) = (s.clone(), many.id, r.link);
            tokio::spawn(async move {
                s.update_share(
                    id,
                    Arc::new(move |x: &mut Share| {
                        if let Some(r) = x.recipient_mut(link) {
                            r.delivery.record(Ok(()), time::OffsetDateTime::now_utc());
                        }
                        Ok(())
                    }),
                )
                .await
                .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let back = s.get_share(many.id).await.unwrap().unwrap();
    assert!(back
        .recipients
        .iter()
        .all(|r| r.delivery.state == DeliveryState::Sent && r.delivery.attempts == 1));
}

async fn shares_are_listed_newest_first_per_object(s: Arc<dyn LinkStore>) {
    let mut made = Vec::new();
    for i in 0..5 {
        let object = if i % 2 == 0 { "x.pdf" } else { "y.pdf" };
        let by = if i < 3 { "alice" } else { "bob" };
        let sh = share(&[object, "common.pdf"], by, i);
        s.create_share(&sh).await.unwrap();
        made.push(sh);
    }
    let q = |object: Option<&str>, after: Option<String>, limit| ShareQuery {
        object: object.map(str::to_string),
        after,
        limit,
        ..Default::default()
    };
    let first = s.list_shares(&q(Some("x.pdf"), None, 2)).await.unwrap();
    assert_eq!(
        first.shares.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![made[4].id, made[2].id]
    );
    let second = s
        .list_shares(&q(Some("x.pdf"), first.next.clone(), 2))
        .await
        .unwrap();
    assert_eq!(
        second.shares.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![made[0].id]
    );
    assert!(second.next.is_none());
    let all = s.list_shares(&q(None, None, 50)).await.unwrap();
    assert_eq!(
        all.shares.iter().map(|x| x.id).collect::<Vec<_>>(),
        made.iter().rev().map(|x| x.id).collect::<Vec<_>>()
    );
    let common = s
        .list_shares(&q(Some("common.pdf"), None, 50))
        .await
        .unwrap();
    assert_eq!(common.shares.len(), 5);
    let bobs = s
        .list_shares(&ShareQuery {
            creators: Some(vec!["bob".into()]),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bobs.shares.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![made[4].id, made[3].id]
    );
    // Shares and links keep separate indexes.
    assert!(s
        .list(&linkgate::state::ListQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .links
        .is_empty());
}

fn drafts(kinds: &[&str]) -> Vec<linkgate::model::audit::Draft> {
    kinds
        .iter()
        .map(|k| linkgate::model::audit::Draft::new(k, "ok"))
        .collect()
}

/// Notifiable events enter the outbox with the events' own write, under their event ids; a lease
/// keeps an entry from other callers, and only the lease's holder settles it.
async fn outbox_entries_ride_on_the_events_write(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let left_out = s
        .append_events_notify(
            WriteId::new(),
            l.id,
            &drafts(&["page.viewed", "link.created", "download.completed"]),
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(left_out, 0);
    assert_eq!(s.events(l.id, 0, 10).await.unwrap().len(), 3);
    assert_eq!(s.outbox_pending().await.unwrap(), 2);
    let mut leased = s.outbox_lease(10, Duration::from_secs(60)).await.unwrap();
    leased.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = leased.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [format!("{}.1", l.id), format!("{}.3", l.id)]);
    assert_eq!(leased[0].event.draft.kind, "page.viewed");
    assert_eq!(leased[1].event.seq, 3);
    assert!(leased
        .iter()
        .all(|e| e.attempts == 0 && !e.lease.is_empty()));
    // Leased entries are nobody else's.
    assert!(s
        .outbox_lease(10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    assert!(!s.outbox_done(&leased[0].id, "not-the-lease").await.unwrap());
    assert!(s
        .outbox_done(&leased[0].id, &leased[0].lease)
        .await
        .unwrap());
    assert!(!s
        .outbox_done(&leased[0].id, &leased[0].lease)
        .await
        .unwrap());
    assert_eq!(s.outbox_pending().await.unwrap(), 1);

    // A failed attempt: due again (here at once), counted, with its error.
    assert!(s
        .outbox_retry(
            &leased[1].id,
            &leased[1].lease,
            Duration::ZERO,
            "answered 500"
        )
        .await
        .unwrap());
    let again = s.outbox_lease(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, leased[1].id);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("answered 500"));
    assert_ne!(again[0].lease, leased[1].lease);
    assert!(!s
        .outbox_retry(&leased[1].id, &leased[1].lease, Duration::ZERO, "stale")
        .await
        .unwrap());

    // Given up: out of the outbox, into the failed list.
    assert!(s
        .outbox_fail(&again[0].id, &again[0].lease, "answered 500", 10)
        .await
        .unwrap());
    assert_eq!(s.outbox_pending().await.unwrap(), 0);
    assert!(s.outbox_lease(10, Duration::ZERO).await.unwrap().is_empty());
    let failed = s.outbox_failed(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, again[0].id);
    assert_eq!(failed[0].attempts, 2);
    assert_eq!(failed[0].event.draft.kind, "download.completed");
    assert!(failed[0].failed_at.is_some());
}

/// A lease that ran out lets another caller take the entry; the first holder can no longer
/// settle it.
async fn an_expired_lease_passes_the_entry_on(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    s.append_events_notify(WriteId::new(), l.id, &drafts(&["code.failed"]), None, 100)
        .await
        .unwrap();
    let first = s.outbox_lease(1, Duration::from_millis(20)).await.unwrap();
    assert_eq!(first.len(), 1);
    // Wait for the lease to run out by the store's own clock (Redis counts in whole
    // milliseconds from its TIME), not for a fixed sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let second = loop {
        let got = s.outbox_lease(1, Duration::from_secs(60)).await.unwrap();
        if !got.is_empty() {
            break got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the expired lease was never passed on"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert!(!s.outbox_done(&first[0].id, &first[0].lease).await.unwrap());
    assert!(s
        .outbox_done(&second[0].id, &second[0].lease)
        .await
        .unwrap());
    assert_eq!(s.outbox_pending().await.unwrap(), 0);
}

/// The outbox is bounded: past `max_pending` notifications are left out (and counted), while
/// their events are written all the same; the failed list keeps the newest `keep`.
async fn the_outbox_and_its_failed_list_are_bounded(s: Arc<dyn LinkStore>) {
    let l = link(None);
    s.create(&l).await.unwrap();
    let left_out = s
        .append_events_notify(
            WriteId::new(),
            l.id,
            &drafts(&["page.viewed", "page.viewed", "page.viewed"]),
            None,
            2,
        )
        .await
        .unwrap();
    assert_eq!(left_out, 1);
    assert_eq!(s.events(l.id, 0, 10).await.unwrap().len(), 3);
    assert_eq!(s.outbox_pending().await.unwrap(), 2);
    // Events that notify nothing do not touch the outbox.
    let none = s
        .append_events_notify(WriteId::new(), l.id, &drafts(&["link.changed"]), None, 2)
        .await
        .unwrap();
    assert_eq!(none, 0);
    let mut given_up = Vec::new();
    for e in s.outbox_lease(10, Duration::from_secs(60)).await.unwrap() {
        assert!(s.outbox_fail(&e.id, &e.lease, "down", 1).await.unwrap());
        given_up.push(e.id);
    }
    assert_eq!(given_up.len(), 2);
    let failed = s.outbox_failed(10).await.unwrap();
    assert_eq!(failed.len(), 1, "the failed list keeps the newest one");
    assert_eq!(s.outbox_pending().await.unwrap(), 0);
}

/// Blocks mail jobs until one comes (waiting for a hold to run out by the store's own clock).
async fn lease_mail_when_due(s: &Arc<dyn LinkStore>, hold: Duration) -> Vec<MailJob> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = s.mail_lease(10, hold).await.unwrap();
        if !got.is_empty() {
            return got;
        }
        assert!(std::time::Instant::now() < deadline, "no mail job fell due");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A mail held by its sender is nobody else's until the hold runs out; then it is leased (as
/// the next attempt) by one caller at a time, only the lease's holder settles it, a retry makes
/// it due again later, and done removes it. A re-send takes a job over as a new round.
async fn mail_jobs_are_held_leased_and_settled_once(s: Arc<dyn LinkStore>) {
    let (share, a, b) = (LinkId::random(), LinkId::random(), LinkId::random());
    let jobs = [MailJob::name(share, a), MailJob::name(share, b)];
    assert_eq!(
        MailJob {
            id: jobs[0].clone(),
            lease: String::new(),
            attempt: 1
        }
        .parts(),
        Some((share, a))
    );
    s.mail_hold(&jobs, "creator", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        s.mail_lease(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "held by the creator"
    );
    assert!(s.mail_settle(&jobs[0], "creator", None).await.unwrap());
    assert!(
        !s.mail_settle(&jobs[0], "creator", None).await.unwrap(),
        "gone"
    );
    assert!(!s.mail_settle(&jobs[1], "someone else", None).await.unwrap());

    // The creator "dies" holding the second one: a short hold runs out.
    s.mail_hold(&jobs[1..], "creator", Duration::from_millis(20))
        .await
        .unwrap();
    let first = lease_mail_when_due(&s, Duration::from_millis(20)).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].id.as_str(), first[0].attempt),
        (jobs[1].as_str(), 2)
    );
    assert!(!s.mail_settle(&jobs[1], "creator", None).await.unwrap());
    // That lease runs out too; the next caller gets attempt 3 and the old lease is void.
    let second = lease_mail_when_due(&s, Duration::from_secs(60)).await;
    assert_eq!(
        (second[0].id.as_str(), second[0].attempt),
        (jobs[1].as_str(), 3)
    );
    assert!(!s
        .mail_settle(&jobs[1], &first[0].lease, None)
        .await
        .unwrap());
    assert!(s
        .mail_lease(10, Duration::from_secs(60))
        .await
        .unwrap()
        .is_empty());
    // A retry: due again after its delay, under a new lease.
    assert!(s
        .mail_settle(&jobs[1], &second[0].lease, Some(Duration::from_millis(20)))
        .await
        .unwrap());
    assert!(!s
        .mail_settle(&jobs[1], &second[0].lease, None)
        .await
        .unwrap());
    let third = lease_mail_when_due(&s, Duration::from_secs(60)).await;
    assert_eq!(third[0].attempt, 4);
    // A re-send takes it over as a new round.
    s.mail_hold(&jobs[1..], "resend", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!s
        .mail_settle(&jobs[1], &third[0].lease, None)
        .await
        .unwrap());
    assert!(s.mail_settle(&jobs[1], "resend", None).await.unwrap());
    assert!(s
        .mail_lease(10, Duration::from_millis(1))
        .await
        .unwrap()
        .is_empty());
}

/// The expiry index: a link with an expiry is found once its time has come (not before), a
/// link without one never; a change that brings the expiry forward or reactivates the link
/// puts it (back) at or before its expiry; settling moves or removes an entry only if it is
/// still where the sweeper saw it.
async fn the_expiry_index_finds_links_when_their_time_comes(s: Arc<dyn LinkStore>) {
    use linkgate::state::unix_ms;
    let t = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::days(1);
    let ms = unix_ms(t);
    let ours = |got: &[(LinkId, u64)], id: LinkId| got.iter().find(|(i, _)| *i == id).map(|e| e.1);
    let mut expiring = link(None);
    expiring.expires_at = Some(t);
    let forever = link(None);
    s.create(&expiring).await.unwrap();
    s.create(&forever).await.unwrap();
    let id = expiring.id;
    assert_eq!(ours(&s.expiring(ms - 1, 100).await.unwrap(), id), None);
    let due = s.expiring(ms + 10_000, 100).await.unwrap();
    assert_eq!(ours(&due, id), Some(ms));
    assert_eq!(ours(&due, forever.id), None);

    // Brought forward by a change: found at the new time.
    let earlier = t - time::Duration::hours(1);
    s.update(
        id,
        Arc::new(move |l: &mut Link| {
            l.expires_at = Some(earlier);
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        ours(&s.expiring(unix_ms(earlier), 100).await.unwrap(), id),
        Some(unix_ms(earlier))
    );
    // A settle from a stale look changes nothing; a current one moves the entry.
    assert!(!s.expiry_settle(id, ms + 1, None).await.unwrap());
    assert!(s
        .expiry_settle(id, unix_ms(earlier), Some(ms))
        .await
        .unwrap());
    assert_eq!(
        ours(&s.expiring(unix_ms(earlier), 100).await.unwrap(), id),
        None
    );
    assert_eq!(ours(&s.expiring(ms, 100).await.unwrap(), id), Some(ms));
    // Removed; a change of something else leaves it out, a reactivation puts it back.
    assert!(s.expiry_settle(id, ms, None).await.unwrap());
    assert_eq!(
        ours(&s.expiring(u64::MAX / 2, 100).await.unwrap(), id),
        None
    );
    s.update(
        id,
        Arc::new(|l: &mut Link| {
            l.created_by = Some("bob".into());
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        ours(&s.expiring(u64::MAX / 2, 100).await.unwrap(), id),
        None
    );
    for state in [LinkState::Deactivated, LinkState::Active] {
        s.update(
            id,
            Arc::new(move |l: &mut Link| {
                l.state = state;
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
    let back = ours(&s.expiring(u64::MAX / 2, 100).await.unwrap(), id);
    assert!(back.is_some_and(|at| at <= ms), "{back:?}");
    // Earliest first, bounded.
    assert!(s.expiring(u64::MAX / 2, 1).await.unwrap().len() <= 1);
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
    whole_copies_count_up_to_the_limit,
    concurrent_draws_never_over_grant,
    a_download_that_sent_nothing_is_uncounted,
    a_resume_rides_on_what_the_broken_download_left,
    parts_share_the_links_limit_but_not_their_bytes,
    probes_and_own_downloads,
    the_store_counts_exactly_as_the_model_does,
    a_new_generation_counts_from_zero_and_old_ones_are_stale,
    closed_or_unknown_links_are_stale,
    usage_of_unlimited_links_adds_up,
    events_chain_in_order_and_old_ones_are_pruned,
    a_large_batch_of_events_chains_in_order,
    retention_drops_old_events_from_the_middle_of_a_write,
    links_are_listed_newest_first_by_index,
    hits_are_exact_under_concurrency,
    put_new_keeps_the_first_value_until_it_expires,
    kept_values_are_claimed_once_replaced_and_forgotten,
    tallies_add_up_and_never_expire,
    shares_read_back_update_atomically_and_ids_are_unique,
    shares_are_listed_newest_first_per_object,
    outbox_entries_ride_on_the_events_write,
    an_expired_lease_passes_the_entry_on,
    the_outbox_and_its_failed_list_are_bounded,
    mail_jobs_are_held_leased_and_settled_once,
    the_expiry_index_finds_links_when_their_time_comes,
);

/// Reopens an embedded store file (its counting thread lets go of the file a moment after the
/// store is dropped).
async fn reopen(path: &std::path::Path) -> EmbeddedStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match EmbeddedStore::open(path) {
            Ok(s) => return s,
            Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kept values (idempotency keys) are in the embedded store's file: a restart keeps them, and
/// expired ones are swept by later writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_kept_values_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        for i in 0..100u8 {
            s.keep_put(&format!("old{i}"), &[i], Duration::from_millis(1))
                .await
                .unwrap();
        }
        assert_eq!(
            s.keep_new("k", b"first", Duration::from_secs(60))
                .await
                .unwrap(),
            None
        );
    }
    let s = reopen(&path).await;
    assert_eq!(s.keep_get("k").await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(
        s.keep_new("k", b"second", Duration::from_secs(60))
            .await
            .unwrap(),
        Some(b"first".to_vec())
    );
    for i in 0..100u8 {
        assert_eq!(s.keep_get(&format!("old{i}")).await.unwrap(), None);
    }
}

/// The embedded store keeps accounts in memory and downloads in its file: after a restart, what
/// the counted downloads allowed counts as drawn, so the half copy of slack is never granted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_accounts_come_back_spent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let l = link(Some(2));
    {
        let s = EmbeddedStore::open(&path).unwrap();
        s.create(&l).await.unwrap();
        assert!(counted(s.draw(&whole(&l)).await.unwrap()));
        s.refund(&[refund(&l, "p", 60, 0)]).await.unwrap(); // 40 bytes were sent
    }
    let s = reopen(&path).await;
    let rest = draw(
        &l,
        "p",
        Ask {
            need: 60,
            bytes: 60,
            size: 100,
            ..Ask::default()
        },
    );
    assert_eq!(
        s.draw(&rest).await.unwrap(),
        Drawn::Granted {
            bytes: 60,
            counted: true,
            used: 2
        },
        "the resume after a restart is a second download"
    );
    // 150 (the first download, spent) + 60 + at most the rest of 250.
    assert_eq!(
        s.draw(&whole(&l)).await.unwrap(),
        Drawn::Granted {
            bytes: 40,
            counted: false,
            used: 2
        }
    );
    assert_eq!(s.draw(&whole(&l)).await.unwrap(), Drawn::Exhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_tallies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        assert_eq!(s.tally("codechecks:x", 7).await.unwrap(), 7);
    }
    let s = reopen(&path).await;
    assert_eq!(s.tally("codechecks:x", 0).await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fails_fast_and_recovers() {
    let mut server = common::RedisServer::start();
    let s = redis_store(server.url());
    let l = link(Some(3));
    s.create(&l).await.unwrap();
    server.kill();
    let started = std::time::Instant::now();
    assert!(matches!(
        s.draw(&whole(&l)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a dead redis must not hang a request"
    );
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match s.draw(&whole(&l)).await {
            Ok(r) => {
                assert!(matches!(r, Drawn::Granted { used: 1, .. }), "{r:?}");
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The ambiguous failure: Redis holds a write past the client's timeout and applies it later. The
/// caller saw an error and retries with the same write id; each write must land exactly once (a
/// refund applied twice would free bytes that were sent; events or usage twice would falsify the
/// record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_applies_a_retried_write_once_even_when_the_timed_out_attempt_landed() {
    let server = common::RedisServer::start();
    let s = redis_store(server.url());
    let limited = link(Some(2));
    let unlimited = link(None);
    s.create(&limited).await.unwrap();
    s.create(&unlimited).await.unwrap();
    assert!(counted(s.draw(&whole(&limited)).await.unwrap()));
    assert!(counted(s.draw(&whole(&limited)).await.unwrap()));
    let give_back = refund(&limited, "p", 100, 0);
    let (usage_write, events_write) = (WriteId::new(), WriteId::new());
    let drafts: Vec<_> = (0..2)
        .map(|i| linkgate::model::audit::Draft::new(&format!("e{i}"), "ok"))
        .collect();

    // Load the scripts (a held EVALSHA of an unknown script would only fail with NOSCRIPT).
    let other = link(None);
    s.create(&other).await.unwrap();
    s.refund(&[refund(&other, "p", 0, 0)]).await.unwrap();
    s.add_usage(WriteId::new(), other.id, 1, 1).await.unwrap();
    s.append_events(WriteId::new(), other.id, &drafts, None)
        .await
        .unwrap();
    // Scripts wait while writes are paused; reads (the chain's tail) go through while
    // nothing is held ahead of them on the connection.
    server.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert!(s
        .append_events(events_write, unlimited.id, &drafts, None)
        .await
        .is_err());
    assert!(s.refund(std::slice::from_ref(&give_back)).await.is_err());
    assert!(s.add_usage(usage_write, unlimited.id, 1, 5).await.is_err());
    // A write of our own returns once the pause is over; then wait until the held writes landed.
    server.cli(&["SET", "probe", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.usage(unlimited.id, 1).await.unwrap() != 5
        || s.events(unlimited.id, 0, 10).await.unwrap().len() != 2
        || s.usage(limited.id, 1).await.unwrap() != 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the held writes never landed: the test proves nothing ({}, {}, {})",
            s.usage(unlimited.id, 1).await.unwrap(),
            s.events(unlimited.id, 0, 10).await.unwrap().len(),
            s.usage(limited.id, 1).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    s.refund(std::slice::from_ref(&give_back)).await.unwrap();
    s.add_usage(usage_write, unlimited.id, 1, 5).await.unwrap();
    s.append_events(events_write, unlimited.id, &drafts, None)
        .await
        .unwrap();
    assert_eq!(
        s.usage(limited.id, 1).await.unwrap(),
        1,
        "the refund was applied twice"
    );
    assert_eq!(
        s.usage(unlimited.id, 1).await.unwrap(),
        5,
        "usage added twice"
    );
    let events = s.events(unlimited.id, 0, 10).await.unwrap();
    assert_eq!(events.len(), 2, "events appended twice");
    // A fresh write with the same content is a new write and lands.
    s.add_usage(WriteId::new(), unlimited.id, 1, 5)
        .await
        .unwrap();
    assert_eq!(s.usage(unlimited.id, 1).await.unwrap(), 10);
}

/// A block take whose answer was lost (Redis held it past the client's timeout and applied it
/// later) must not keep its downloads counted for nobody: the refund of the take gives back what
/// it reserved, once however often it is retried; and a take whose refund reached Redis first
/// lands as nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_gives_back_a_block_whose_answer_was_lost_and_voids_one_that_lands_late() {
    let server = common::RedisServer::start();
    let s = redis_store(server.url());
    let l = link(Some(1000));
    s.create(&l).await.unwrap();
    assert!(counted(s.draw(&whole(&l)).await.unwrap()));
    let take = |id: WriteId| Draw {
        take: Some(id),
        ..draw(
            &l,
            "p",
            Ask {
                need: 100,
                bytes: 100,
                size: 100,
                block: counting::BLOCK_DOWNLOADS,
                ..Ask::default()
            },
        )
    };
    let lost = |id: WriteId| Refund {
        take: true,
        write: id,
        ..refund(&l, "p", 0, 0)
    };
    // Load the scripts on another link (a held EVALSHA of an unknown script would only fail
    // with NOSCRIPT).
    let other = link(Some(1000));
    s.create(&other).await.unwrap();
    s.refund(&[refund(&other, "p", 0, 0)]).await.unwrap();

    // The take times out while writes are paused, and lands once they resume: 62 downloads
    // (a sixteenth of the 999 left) counted for a block nobody holds.
    let first = WriteId::new();
    server.cli(&["CLIENT", "PAUSE", "3000", "WRITE"]);
    assert!(s.draw(&take(first)).await.is_err());
    server.cli(&["SET", "probe", "1"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.usage(l.id, 1).await.unwrap() != 63 {
        assert!(
            std::time::Instant::now() < deadline,
            "the held take never landed: the test proves nothing ({})",
            s.usage(l.id, 1).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.refund(&[lost(first)]).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1, "the block went back");
    s.refund(&[lost(first)]).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1, "and only once");

    // A take whose refund came first lands as nothing.
    let late = WriteId::new();
    s.refund(&[lost(late)]).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), 1);
    assert_eq!(s.draw(&take(late)).await.unwrap(), Drawn::Stale);
    assert_eq!(
        s.usage(l.id, 1).await.unwrap(),
        1,
        "a voided take counts nothing"
    );

    // Other takes are untouched, and the whole copies drawn around them still count.
    assert_eq!(
        s.draw(&take(WriteId::new())).await.unwrap(),
        Drawn::Block {
            slots: 62,
            used: 63
        }
    );
    let (a, b) = (WriteId::new(), WriteId::new());
    assert!(matches!(
        s.draw(&take(a)).await.unwrap(),
        Drawn::Block { .. }
    ));
    assert!(matches!(
        s.draw(&take(b)).await.unwrap(),
        Drawn::Block { .. }
    ));
    let before = s.usage(l.id, 1).await.unwrap();
    s.refund(&[lost(a)]).await.unwrap();
    let after_a = s.usage(l.id, 1).await.unwrap();
    assert!(
        after_a < before,
        "the named take goes back: {before} → {after_a}"
    );
    s.refund(&[lost(a)]).await.unwrap();
    assert_eq!(s.usage(l.id, 1).await.unwrap(), after_a);
}
