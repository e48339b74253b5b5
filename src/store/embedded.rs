//! The embedded store: one redb file for a single gateway instance.
//!
//! Link records and counters persist in the file; every change is one write transaction, run on
//! the blocking pool so the async runtime never waits on disk. Reservations and resume grants
//! live in memory: a single instance is the only user, and a crash ends its downloads too (a
//! download in flight at a crash stays counted, the fail-safe side).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use parking_lot::Mutex;
use redb::{Database, ReadableTable, TableDefinition};

use super::{
    index_entries, list_by_index, Change, LinkStore, ListPage, ListQuery, OnChange, Reservation,
    ReserveRequest, StoreError, Ticket,
};
use crate::audit::{seal, Draft, Event};
use crate::link::{Link, LinkId};

const LINKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("links");
/// link id → (generation, used) as two little-endian u64.
const COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("counters");
/// index name, 0, member → nothing (see `index_entries`).
const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index");
/// link id ++ seq (big-endian u64) → event JSON.
const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");

fn index_key(name: &str, member: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + member.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k.extend_from_slice(member.as_bytes());
    k
}

fn event_key(id: &LinkId, seq: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(id.as_bytes());
    k[16..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn decode_counter(bytes: &[u8]) -> Result<(u64, u64), StoreError> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("counter record".into()))?;
    let (g, u) = arr.split_at(8);
    let g = u64::from_le_bytes(g.try_into().unwrap_or_default());
    let u = u64::from_le_bytes(u.try_into().unwrap_or_default());
    Ok((g, u))
}

fn encode_counter(generation: u64, used: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&generation.to_le_bytes());
    out[8..].copy_from_slice(&used.to_le_bytes());
    out
}

fn decode_link(bytes: &[u8]) -> Result<Link, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("link record: {e}")))
}

/// Grants kept in memory: an embedded store serves exactly one gateway process.
#[derive(Default)]
struct Grants {
    /// (link, generation, client) → (valid until, shared by parallel ranges).
    map: HashMap<(LinkId, u64, String), (Instant, bool)>,
}

impl Grants {
    const MAX: usize = 100_000;

    /// Whether a live grant covers a continuation; a covered grant is marked shared.
    fn covers(&mut self, key: &(LinkId, u64, String), now: Instant) -> bool {
        match self.map.get_mut(key) {
            Some((until, shared)) if *until > now => {
                *shared = true;
                true
            }
            _ => false,
        }
    }

    fn insert(&mut self, key: (LinkId, u64, String), until: Instant, now: Instant) {
        if self.map.len() >= Self::MAX {
            self.map.retain(|_, (t, _)| *t > now);
            if self.map.len() >= Self::MAX {
                // Still full of live grants: drop the oldest half rather than grow without bound.
                // A dropped grant only means a later resume counts as a new download.
                let mut times: Vec<Instant> = self.map.values().map(|(t, _)| *t).collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                self.map.retain(|_, (t, _)| *t > cut);
            }
        }
        self.map.insert(key, (until, false));
    }
}

/// The embedded store: one redb file, for a single gateway instance.
type ReserveJob = (
    ReserveRequest,
    tokio::sync::oneshot::Sender<Result<Reservation, StoreError>>,
);

/// Reservations are written by one thread in group commits: every request waiting when a write
/// transaction starts joins it, so one disk sync serves many downloads (each still atomic, in
/// order, never beyond its limit).
fn reservation_writer(db: Arc<Database>, jobs: std::sync::mpsc::Receiver<ReserveJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = reserve_batch(&db, batch.iter().map(|(r, _)| r));
        match outcomes {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Runs reservations in one write transaction; nothing is granted unless it commits.
fn reserve_batch<'a>(
    db: &Database,
    requests: impl Iterator<Item = &'a ReserveRequest>,
) -> Result<Vec<Reservation>, StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let mut outcomes = Vec::new();
    {
        let links = tx.open_table(LINKS).map_err(unavailable)?;
        let mut counters = tx.open_table(COUNTERS).map_err(unavailable)?;
        for r in requests {
            let link = match links.get(r.id.as_bytes().as_slice()).map_err(unavailable)? {
                Some(v) => decode_link(v.value())?,
                None => {
                    outcomes.push(Reservation::Stale);
                    continue;
                }
            };
            if link.generation != r.generation || link.state != crate::link::LinkState::Active {
                outcomes.push(Reservation::Stale);
                continue;
            }
            let used = used_in(&counters, &r.id, r.generation)?;
            if used >= r.max {
                outcomes.push(Reservation::Exhausted);
                continue;
            }
            counters
                .insert(
                    r.id.as_bytes().as_slice(),
                    encode_counter(r.generation, used + 1).as_slice(),
                )
                .map_err(unavailable)?;
            outcomes.push(Reservation::Granted {
                used: used + 1,
                ticket: Ticket {
                    id: r.id,
                    generation: r.generation,
                    nonce: rand::random(),
                },
            });
        }
    }
    tx.commit().map_err(unavailable)?;
    Ok(outcomes)
}

pub struct EmbeddedStore {
    reservations: std::sync::mpsc::Sender<ReserveJob>,
    db: Arc<Database>,
    grants: Arc<Mutex<Grants>>,
    /// Attempt counters, single-use tokens and codes: in memory (one process uses this store).
    kv: super::MemoryKv,
}

/// redb's page cache. Its default (1 GiB) grew with the audit events a load test writes (a
/// gateway held ~85 MiB more after 130,000 counted downloads); links and counters are small and
/// hot, and events are read back rarely.
const CACHE_BYTES: usize = 4 << 20;

impl EmbeddedStore {
    /// Opens (or creates) the database file; parent folders are created.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| unavailable(format!("{}: {e}", dir.display())))?;
            }
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| unavailable(format!("{}: {e}", path.display())))?;
        let tx = db.begin_write().map_err(unavailable)?;
        tx.open_table(LINKS).map_err(unavailable)?;
        tx.open_table(COUNTERS).map_err(unavailable)?;
        tx.open_table(INDEX).map_err(unavailable)?;
        tx.open_table(EVENTS).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let (reservations, jobs) = std::sync::mpsc::channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("linkgate reservations".into())
            .spawn(move || reservation_writer(writer_db, jobs))
            .map_err(|e| unavailable(format!("cannot start the reservation writer: {e}")))?;
        Ok(EmbeddedStore {
            reservations,
            db,
            grants: Arc::default(),
            kv: super::MemoryKv::default(),
        })
    }

    /// Runs blocking database work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(unavailable)?
    }
}

fn used_in(
    counters: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &LinkId,
    generation: u64,
) -> Result<u64, StoreError> {
    Ok(
        match counters
            .get(id.as_bytes().as_slice())
            .map_err(unavailable)?
        {
            Some(v) => match decode_counter(v.value())? {
                (g, used) if g == generation => used,
                _ => 0,
            },
            None => 0,
        },
    )
}

#[async_trait]
impl LinkStore for EmbeddedStore {
    async fn create(&self, link: &Link) -> Result<(), StoreError> {
        let link = link.clone();
        let bytes = serde_json::to_vec(&link).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut links = tx.open_table(LINKS).map_err(unavailable)?;
                if links
                    .get(link.id.as_bytes().as_slice())
                    .map_err(unavailable)?
                    .is_some()
                {
                    return Err(StoreError::Exists(link.id));
                }
                links
                    .insert(link.id.as_bytes().as_slice(), bytes.as_slice())
                    .map_err(unavailable)?;
                let mut index = tx.open_table(INDEX).map_err(unavailable)?;
                let (names, member) = index_entries(&link);
                for name in names {
                    index
                        .insert(index_key(&name, &member).as_slice(), [].as_slice())
                        .map_err(unavailable)?;
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let links = tx.open_table(LINKS).map_err(unavailable)?;
            let found = links.get(id.as_bytes().as_slice()).map_err(unavailable)?;
            found.map(|v| decode_link(v.value())).transpose()
        })
        .await
    }

    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError> {
        // redb's single write transaction makes the read-modify-write atomic.
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            let link = {
                let mut links = tx.open_table(LINKS).map_err(unavailable)?;
                let mut link = match links.get(id.as_bytes().as_slice()).map_err(unavailable)? {
                    Some(v) => decode_link(v.value())?,
                    None => return Err(StoreError::NotFound(id)),
                };
                change(&mut link)?;
                let bytes =
                    serde_json::to_vec(&link).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                links
                    .insert(id.as_bytes().as_slice(), bytes.as_slice())
                    .map_err(unavailable)?;
                link
            };
            tx.commit().map_err(unavailable)?;
            Ok(link)
        })
        .await
    }

    async fn reserve(&self, req: &ReserveRequest) -> Result<Reservation, StoreError> {
        let now = Instant::now();
        let grant_key = (req.id, req.generation, req.client.clone());
        if req.continuation && self.grants.lock().covers(&grant_key, now) {
            return Ok(Reservation::Covered);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.reservations
            .send((req.clone(), reply))
            .map_err(|_| StoreError::Unavailable("the reservation writer stopped".into()))?;
        let outcome = answer
            .await
            .map_err(|_| StoreError::Unavailable("the reservation writer stopped".into()))?;
        let outcome = outcome?;
        if let Reservation::Granted { .. } = outcome {
            self.grants.lock().insert(grant_key, now + req.window, now);
        }
        Ok(outcome)
    }

    async fn commit(&self, _tickets: &[Ticket]) -> Result<(), StoreError> {
        Ok(()) // the slot was counted when it was reserved
    }

    async fn release(&self, ticket: Ticket, client: &str) -> Result<(), StoreError> {
        let Ticket { id, generation, .. } = ticket;
        let key = (id, generation, client.to_string());
        {
            let mut grants = self.grants.lock();
            if grants.map.get(&key).is_some_and(|(_, shared)| *shared) {
                return Ok(()); // other ranges of this download rode on the slot: it stays counted
            }
            grants.map.remove(&key);
        }
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut counters = tx.open_table(COUNTERS).map_err(unavailable)?;
                let used = used_in(&counters, &id, generation)?;
                if used > 0 {
                    counters
                        .insert(
                            id.as_bytes().as_slice(),
                            encode_counter(generation, used - 1).as_slice(),
                        )
                        .map_err(unavailable)?;
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn keep_alive(&self, _tickets: &[Ticket]) -> Result<(), StoreError> {
        Ok(()) // reservations live as long as this process
    }

    async fn add_usage(&self, id: LinkId, generation: u64, n: u64) -> Result<(), StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut counters = tx.open_table(COUNTERS).map_err(unavailable)?;
                let used = used_in(&counters, &id, generation)?;
                counters
                    .insert(
                        id.as_bytes().as_slice(),
                        encode_counter(generation, used.saturating_add(n)).as_slice(),
                    )
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn usage(&self, id: LinkId, generation: u64) -> Result<u64, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let counters = tx.open_table(COUNTERS).map_err(unavailable)?;
            used_in(&counters, &id, generation)
        })
        .await
    }

    async fn follow_changes(&self, _on_change: OnChange) {
        // Only this process changes an embedded store, and it invalidates its cache directly.
    }

    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        list_by_index(self, query, |index, after, n| {
            self.blocking(move |db| {
                let tx = db.begin_read().map_err(unavailable)?;
                let table = tx.open_table(INDEX).map_err(unavailable)?;
                let prefix = index_key(&index, "");
                let start = index_key(&index, after.as_deref().unwrap_or(""));
                let mut out = Vec::with_capacity(n);
                for entry in table.range(start.as_slice()..).map_err(unavailable)? {
                    let (key, _) = entry.map_err(unavailable)?;
                    let key = key.value();
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    let member = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                    if after.as_deref() == Some(member.as_str()) {
                        continue;
                    }
                    out.push(member);
                    if out.len() == n {
                        break;
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    async fn append_events(
        &self,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<std::time::Duration>,
    ) -> Result<(), StoreError> {
        let drafts = drafts.to_vec();
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut events = tx.open_table(EVENTS).map_err(unavailable)?;
                let first = event_key(&id, 0);
                let last = event_key(&id, u64::MAX);
                let tail = match events
                    .range(first.as_slice()..=last.as_slice())
                    .map_err(unavailable)?
                    .next_back()
                {
                    Some(entry) => {
                        let (_, v) = entry.map_err(unavailable)?;
                        Some(decode_event(v.value())?)
                    }
                    None => None,
                };
                for (seq, json) in seal(id, tail.as_ref(), &drafts)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                {
                    events
                        .insert(event_key(&id, seq).as_slice(), json.as_slice())
                        .map_err(unavailable)?;
                }
                if let Some(keep) = retention {
                    let cutoff = time::OffsetDateTime::now_utc() - keep;
                    let mut old = Vec::new();
                    for entry in events
                        .range(first.as_slice()..=last.as_slice())
                        .map_err(unavailable)?
                    {
                        let (k, v) = entry.map_err(unavailable)?;
                        if decode_event(v.value())?.draft.at >= cutoff {
                            break;
                        }
                        old.push(k.value().to_vec());
                    }
                    for k in old {
                        events.remove(k.as_slice()).map_err(unavailable)?;
                    }
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn events(&self, id: LinkId, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let events = tx.open_table(EVENTS).map_err(unavailable)?;
            let from = event_key(&id, after.saturating_add(1));
            let to = event_key(&id, u64::MAX);
            let mut out = Vec::new();
            for entry in events
                .range(from.as_slice()..=to.as_slice())
                .map_err(unavailable)?
            {
                let (_, v) = entry.map_err(unavailable)?;
                out.push(decode_event(v.value())?);
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn hit(
        &self,
        key: &str,
        window: std::time::Duration,
        incr: u64,
    ) -> Result<u64, StoreError> {
        Ok(self.kv.hit(key, window, incr))
    }

    async fn once(&self, key: &str, ttl: std::time::Duration) -> Result<bool, StoreError> {
        Ok(self.kv.once(key, ttl))
    }

    async fn kv_put(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.kv.kv_put(key, value, ttl);
        Ok(())
    }

    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv.kv_get(key))
    }

    async fn kv_del(&self, key: &str) -> Result<(), StoreError> {
        self.kv.kv_del(key);
        Ok(())
    }

    async fn kv_put_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv.kv_put_new(key, value, ttl))
    }

    async fn tally(&self, key: &str, incr: u64) -> Result<u64, StoreError> {
        let key = key.as_bytes().to_vec();
        self.blocking(move |db| {
            if incr == 0 {
                let tx = db.begin_read().map_err(unavailable)?;
                let table = match tx.open_table(TALLIES) {
                    Ok(t) => t,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
                    Err(e) => return Err(unavailable(e)),
                };
                let value = table
                    .get(key.as_slice())
                    .map_err(unavailable)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                return Ok(value);
            }
            let tx = db.begin_write().map_err(unavailable)?;
            let value = {
                let mut table = tx.open_table(TALLIES).map_err(unavailable)?;
                let value = table
                    .get(key.as_slice())
                    .map_err(unavailable)?
                    .map(|v| v.value())
                    .unwrap_or(0)
                    .saturating_add(incr);
                table.insert(key.as_slice(), value).map_err(unavailable)?;
                value
            };
            tx.commit().map_err(unavailable)?;
            Ok(value)
        })
        .await
    }
}

fn decode_event(bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
}

/// Counters that never expire (`LinkStore::tally`): key → value.
const TALLIES: TableDefinition<&[u8], u64> = TableDefinition::new("tallies");
