//! The embedded store: one redb file for a single gateway instance.
//!
//! Link records and counters persist in the file; every change is one write transaction, run on
//! the blocking pool so the async runtime never waits on disk. Download counts persist; the byte
//! accounts of documents (see [`crate::model::counting`]) live in memory with the one thread that
//! counts: a single instance is the only user, and after a restart every document starts with
//! no allowance left over (a resume then counts as a new download: the fail-safe side).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::{
    index_entries, list_by_index, list_shares_by_index, share_index_entries, Change, Draw,
    LinkStore, ListPage, ListQuery, MailJob, OnChange, OutboxEntry, ShareChange, SharePage,
    ShareQuery, StoreError, WriteId,
};
use crate::model::audit::{seal, Draft, Event};
use crate::model::counting::{self, Account, Drawn};
use crate::model::link::{Link, LinkId};
use crate::model::share::Share;
use crate::state::queues::Refund;

const LINKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("links");
/// link id → (generation, used) as two little-endian u64.
const COUNTERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("counters");
/// link id ++ generation ++ part → (downloads counted for the part, its size), two little-endian
/// u64: what of a document's account survives a restart (see `load_part`).
const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");
/// index name, 0, member → nothing (see `index_entries`).
const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index");
/// link id ++ seq (big-endian u64) → a record of events: their JSON separated by `\n`, the last
/// of them event `seq` and the others the ones just before it (see [`record_events`]). One write
/// stores up to [`EVENTS_PER_RECORD`] events per record: redb rebuilds a leaf page for each
/// insert, which cost about 50,000 instructions per event stored alone. A record of one event is
/// the format of the events written before records held several, so both read the same way.
const EVENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events");
/// At most this many events per record of `EVENTS` (a record stays near 100 KiB).
const EVENTS_PER_RECORD: usize = 256;

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
    decode("link", bytes)
}

/// A table of records (links, shares) or of their index entries.
type Records = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Link and share records: JSON under their id, listed in an index table (`index_key` entries).
/// One write transaction holds the record and its entries, so neither is ever half-written.
/// `expiry`: the link's expiry index time (links only; see [`super::expiry_entry`]), written in
/// the same transaction.
fn create_record(
    db: &Database,
    (table, index): (Records, Records),
    id: LinkId,
    bytes: &[u8],
    (names, member): (Vec<String>, String),
    expiry: Option<u64>,
) -> Result<(), StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    {
        let mut records = tx.open_table(table).map_err(unavailable)?;
        if records
            .get(id.as_bytes().as_slice())
            .map_err(unavailable)?
            .is_some()
        {
            return Err(StoreError::Exists(id));
        }
        records
            .insert(id.as_bytes().as_slice(), bytes)
            .map_err(unavailable)?;
        let mut entries = tx.open_table(index).map_err(unavailable)?;
        for name in names {
            entries
                .insert(index_key(&name, &member).as_slice(), [].as_slice())
                .map_err(unavailable)?;
        }
    }
    if expiry.is_some() {
        index_expiry(&tx, &id, expiry)?;
    }
    tx.commit().map_err(unavailable)
}

/// Up to `n` members of an index after `after` (exclusive), in order.
fn scan_index(
    db: &Database,
    table: Records,
    index: &str,
    after: Option<&str>,
    n: usize,
) -> Result<Vec<String>, StoreError> {
    let tx = db.begin_read().map_err(unavailable)?;
    let table = tx.open_table(table).map_err(unavailable)?;
    let prefix = index_key(index, "");
    let start = index_key(index, after.unwrap_or(""));
    let mut out = Vec::with_capacity(n);
    for entry in table.range(start.as_slice()..).map_err(unavailable)? {
        let (key, _) = entry.map_err(unavailable)?;
        let key = key.value();
        if !key.starts_with(&prefix) {
            break;
        }
        let member = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
        if after == Some(member.as_str()) {
            continue;
        }
        out.push(member);
        if out.len() == n {
            break;
        }
    }
    Ok(out)
}

fn read_record<T: serde::de::DeserializeOwned>(
    db: &Database,
    table: Records,
    what: &str,
    id: LinkId,
) -> Result<Option<T>, StoreError> {
    let tx = db.begin_read().map_err(unavailable)?;
    let records = tx.open_table(table).map_err(unavailable)?;
    let found = records.get(id.as_bytes().as_slice()).map_err(unavailable)?;
    found.map(|v| decode(what, v.value())).transpose()
}

/// Read, change and write back in redb's single write transaction (atomic).
/// `expiry` names the expiry index time a change needs (links; see [`super::expiry_entry`]),
/// written in the same transaction.
fn change_record<T: serde::de::DeserializeOwned + serde::Serialize + Clone>(
    db: &Database,
    table: Records,
    what: &str,
    id: LinkId,
    change: &(dyn Fn(&mut T) -> Result<(), StoreError> + Send + Sync),
    expiry: fn(&T, &T) -> Option<u64>,
) -> Result<T, StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let record = {
        let mut records = tx.open_table(table).map_err(unavailable)?;
        let mut record: T = match records.get(id.as_bytes().as_slice()).map_err(unavailable)? {
            Some(v) => decode(what, v.value())?,
            None => return Err(StoreError::NotFound(id)),
        };
        let before = record.clone();
        change(&mut record)?;
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        records
            .insert(id.as_bytes().as_slice(), bytes.as_slice())
            .map_err(unavailable)?;
        if let Some(at) = expiry(&before, &record) {
            index_expiry(&tx, &id, Some(at))?;
        }
        record
    };
    tx.commit().map_err(unavailable)?;
    Ok(record)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what} record: {e}")))
}

/// A document's account: link, generation, part.
type AccountKey = (LinkId, u64, String);

/// Work for the counting thread.
enum Job {
    Draw(
        Draw,
        tokio::sync::oneshot::Sender<Result<Drawn, StoreError>>,
    ),
    Refund(
        Vec<Refund>,
        tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ),
}

/// What one job came to.
enum Outcome {
    Drawn(Drawn),
    Refunded,
}

/// Most accounts kept in memory; past it, empty ones are dropped, then all (a dropped account is
/// read back from the file as spent: the next request of that document counts a new download).
const MAX_ACCOUNTS: usize = 200_000;

/// Draws and refunds are applied by one thread that owns the accounts, in group commits: every
/// job waiting when a write transaction starts joins it, so one disk sync serves many downloads
/// (each still atomic, in order, never beyond its limit), and a batch that changes no count
/// writes nothing.
fn counting_thread(db: Arc<Database>, jobs: std::sync::mpsc::Receiver<Job>) {
    let mut accounts: HashMap<AccountKey, Account> = HashMap::new();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut undo = Vec::new();
        match count_batch(&db, &mut accounts, &batch, &mut undo) {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    match (job, outcome) {
                        (Job::Draw(_, reply), Outcome::Drawn(d)) => {
                            let _ = reply.send(Ok(d));
                        }
                        (Job::Refund(_, reply), _) => {
                            let _ = reply.send(Ok(()));
                        }
                        (Job::Draw(_, reply), Outcome::Refunded) => {
                            let _ = reply
                                .send(Err(StoreError::Unavailable("counting went wrong".into())));
                        }
                    }
                }
            }
            Err(e) => {
                // Nothing was written: the accounts go back to what they were.
                for (key, before) in undo.into_iter().rev() {
                    match before {
                        Some(account) => accounts.insert(key, account),
                        None => accounts.remove(&key),
                    };
                }
                let message = e.to_string();
                for job in batch {
                    match job {
                        Job::Draw(_, reply) => {
                            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                        }
                        Job::Refund(_, reply) => {
                            let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                        }
                    }
                }
            }
        }
        if accounts.len() > MAX_ACCOUNTS {
            accounts.retain(|_, a| a.slots > 0 || a.charged > 0);
            if accounts.len() > MAX_ACCOUNTS {
                accounts.clear();
            }
        }
    }
}

/// The stored count of a link: `(generation, used)`.
fn counter_of(
    counters: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &LinkId,
) -> Result<Option<(u64, u64)>, StoreError> {
    counters
        .get(id.as_bytes().as_slice())
        .map_err(unavailable)?
        .map(|v| decode_counter(v.value()))
        .transpose()
}

/// Runs a batch of jobs in one write transaction; nothing is granted unless it commits. `undo`
/// collects each account's state before the batch touched it.
fn count_batch(
    db: &Database,
    accounts: &mut HashMap<AccountKey, Account>,
    batch: &[Job],
    undo: &mut Vec<(AccountKey, Option<Account>)>,
) -> Result<Vec<Outcome>, StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changed = false;
    {
        let links = tx.open_table(LINKS).map_err(unavailable)?;
        let mut books = Books {
            counters: tx.open_table(COUNTERS).map_err(unavailable)?,
            parts: tx.open_table(PARTS).map_err(unavailable)?,
            accounts,
            undo,
        };
        for job in batch {
            match job {
                Job::Draw(d, _) => {
                    let link = match links.get(d.id.as_bytes().as_slice()).map_err(unavailable)? {
                        Some(v) => decode_link(v.value())?,
                        None => {
                            outcomes.push(Outcome::Drawn(Drawn::Stale));
                            continue;
                        }
                    };
                    if link.generation != d.generation
                        || link.state != crate::model::link::LinkState::Active
                    {
                        outcomes.push(Outcome::Drawn(Drawn::Stale));
                        continue;
                    }
                    let mut drawn = Drawn::Stale;
                    changed |=
                        books.apply((d.id, d.generation, d.part.clone()), |used, account| {
                            drawn = counting::draw(used, d.max, account, &d.ask);
                        })?;
                    outcomes.push(Outcome::Drawn(drawn));
                }
                Job::Refund(refunds, _) => {
                    for r in refunds {
                        // A take's answer is never lost here: it is applied before it answers,
                        // or not at all.
                        if r.take {
                            continue;
                        }
                        // A refund for a generation that is over changes nothing.
                        match counter_of(&books.counters, &r.id)? {
                            Some((g, _)) if g == r.generation => {}
                            _ => continue,
                        }
                        changed |= books.apply(
                            (r.id, r.generation, r.part.clone()),
                            |used, account| {
                                counting::refund(used, account, r.bytes, r.own);
                            },
                        )?;
                    }
                    outcomes.push(Outcome::Refunded);
                }
            }
        }
    }
    if changed {
        tx.commit().map_err(unavailable)?;
    } else {
        tx.abort().map_err(unavailable)?;
    }
    Ok(outcomes)
}

/// What one counting transaction reads and writes: download counts and parts' records in the
/// file, accounts in memory, and how to undo the accounts if the transaction fails.
struct Books<'t, 'a> {
    counters: redb::Table<'t, &'static [u8], &'static [u8]>,
    parts: redb::Table<'t, &'static [u8], &'static [u8]>,
    accounts: &'a mut HashMap<AccountKey, Account>,
    undo: &'a mut Vec<(AccountKey, Option<Account>)>,
}

impl Books<'_, '_> {
    /// Runs `f` on the link's count and the part's account; writes what changed. `Ok(true)`
    /// when the file must be committed.
    fn apply(
        &mut self,
        key: AccountKey,
        f: impl FnOnce(&mut u64, &mut Account),
    ) -> Result<bool, StoreError> {
        let (id, generation) = (key.0, key.1);
        let used = match counter_of(&self.counters, &id)? {
            Some((g, used)) if g == generation => used,
            _ => 0,
        };
        let in_memory = self.accounts.get(&key).copied();
        let before = match in_memory {
            Some(a) => Some(a),
            None => load_part(&self.parts, &key)?,
        };
        self.undo.push((key.clone(), in_memory));
        let mut account = before.unwrap_or_default();
        let mut now_used = used;
        f(&mut now_used, &mut account);
        let mut write = false;
        if now_used != used {
            self.counters
                .insert(
                    id.as_bytes().as_slice(),
                    encode_counter(generation, now_used).as_slice(),
                )
                .map_err(unavailable)?;
            write = true;
        }
        if before.map_or(0, |a| a.slots) != account.slots {
            self.parts
                .insert(
                    part_key(&key).as_slice(),
                    encode_counter(account.slots, account.size).as_slice(),
                )
                .map_err(unavailable)?;
            write = true;
        }
        self.accounts.insert(key, account);
        Ok(write)
    }
}

/// The key of a part's record: link id, generation (big-endian), part.
fn part_key((id, generation, part): &AccountKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(24 + part.len());
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(&generation.to_be_bytes());
    k.extend_from_slice(part.as_bytes());
    k
}

/// A part's account as the file knows it (after a restart, or once evicted from memory): its
/// downloads and size persist, its bytes do not, so everything those downloads allow counts as
/// drawn ([`Account::spent`]).
fn load_part(
    parts: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &AccountKey,
) -> Result<Option<Account>, StoreError> {
    let Some(v) = parts.get(part_key(key).as_slice()).map_err(unavailable)? else {
        return Ok(None);
    };
    let (slots, size) = decode_counter(v.value())?;
    Ok(Some(Account::spent(slots, size)))
}

pub struct EmbeddedStore {
    counting: std::sync::mpsc::Sender<Job>,
    db: Arc<Database>,
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
        tx.open_table(PARTS).map_err(unavailable)?;
        tx.open_table(SHARES).map_err(unavailable)?;
        tx.open_table(SHARE_INDEX).map_err(unavailable)?;
        tx.open_table(OUTBOX).map_err(unavailable)?;
        tx.open_table(OUTBOX_DUE).map_err(unavailable)?;
        tx.open_table(OUTBOX_FAILED).map_err(unavailable)?;
        tx.open_table(MAIL_JOBS).map_err(unavailable)?;
        tx.open_table(MAIL_DUE).map_err(unavailable)?;
        tx.open_table(EXPIRY_AT).map_err(unavailable)?;
        tx.open_table(EXPIRY_DUE).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let (counting, jobs) = std::sync::mpsc::channel();
        let writer_db = db.clone();
        std::thread::Builder::new()
            .name("linkgate counting".into())
            .spawn(move || counting_thread(writer_db, jobs))
            .map_err(|e| unavailable(format!("cannot start the counting thread: {e}")))?;
        Ok(EmbeddedStore {
            counting,
            db,
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
        let (id, entries) = (link.id, index_entries(link));
        let bytes = serde_json::to_vec(link).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let expiry = super::expiry_entry(None, link);
        self.blocking(move |db| create_record(db, (LINKS, INDEX), id, &bytes, entries, expiry))
            .await
    }

    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError> {
        self.blocking(move |db| read_record(db, LINKS, "link", id))
            .await
    }

    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError> {
        self.blocking(move |db| {
            change_record(db, LINKS, "link", id, change.as_ref(), |before, after| {
                super::expiry_entry(Some(before), after)
            })
        })
        .await
    }

    async fn draw(&self, draw: &Draw) -> Result<Drawn, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the counting thread stopped".into());
        self.counting
            .send(Job::Draw(draw.clone(), reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn refund(&self, refunds: &[Refund]) -> Result<(), StoreError> {
        if refunds.is_empty() {
            return Ok(());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the counting thread stopped".into());
        self.counting
            .send(Job::Refund(refunds.to_vec(), reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Embedded writes are never unclear (a failure means nothing was committed), so `write`
    /// is not needed here.
    async fn add_usage(
        &self,
        _write: WriteId,
        id: LinkId,
        generation: u64,
        n: u64,
    ) -> Result<(), StoreError> {
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
            self.blocking(move |db| scan_index(db, INDEX, &index, after.as_deref(), n))
        })
        .await
    }

    async fn append_events(
        &self,
        _write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<std::time::Duration>,
    ) -> Result<(), StoreError> {
        let drafts = drafts.to_vec();
        self.blocking(move |db| append(db, id, &drafts, retention, None))
            .await
            .map(|_| ())
    }

    async fn events(&self, id: LinkId, after: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let events = tx.open_table(EVENTS).map_err(unavailable)?;
            // A record is keyed by its last event, so the first record holding an event after
            // `after` is the first whose key is past it.
            let from = event_key(&id, after.saturating_add(1));
            let to = event_key(&id, u64::MAX);
            let mut out = Vec::new();
            for entry in events
                .range(from.as_slice()..=to.as_slice())
                .map_err(unavailable)?
            {
                let (k, v) = entry.map_err(unavailable)?;
                for (seq, json) in record_events(k.value(), v.value())? {
                    if seq <= after {
                        continue;
                    }
                    out.push(decode_event(json)?);
                    if out.len() >= limit {
                        return Ok(out);
                    }
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

    async fn keep_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (key, value) = (key.as_bytes().to_vec(), value.to_vec());
        let until = super::now_ms().saturating_add(ttl.as_millis() as u64);
        self.blocking(move |db| keep_write(db, &key, Some((&value, until)), true))
            .await
    }

    async fn keep_put(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let (key, value) = (key.as_bytes().to_vec(), value.to_vec());
        let until = super::now_ms().saturating_add(ttl.as_millis() as u64);
        self.blocking(move |db| keep_write(db, &key, Some((&value, until)), false))
            .await
            .map(|_| ())
    }

    async fn keep_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.as_bytes().to_vec();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let table = match tx.open_table(KEPT) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(unavailable(e)),
            };
            let found = table.get(key.as_slice()).map_err(unavailable)?;
            Ok(found.and_then(|v| live_kept(v.value(), super::now_ms())))
        })
        .await
    }

    async fn keep_del(&self, key: &str) -> Result<(), StoreError> {
        let key = key.as_bytes().to_vec();
        self.blocking(move |db| keep_write(db, &key, None, false))
            .await
            .map(|_| ())
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

    async fn create_share(&self, share: &Share) -> Result<(), StoreError> {
        let (id, entries) = (share.id, share_index_entries(share));
        let bytes = serde_json::to_vec(share).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.blocking(move |db| create_record(db, (SHARES, SHARE_INDEX), id, &bytes, entries, None))
            .await
    }

    async fn get_share(&self, id: LinkId) -> Result<Option<Share>, StoreError> {
        self.blocking(move |db| read_record(db, SHARES, "share", id))
            .await
    }

    async fn update_share(&self, id: LinkId, change: ShareChange) -> Result<Share, StoreError> {
        self.blocking(move |db| {
            change_record(db, SHARES, "share", id, change.as_ref(), |_, _| None)
        })
        .await
    }

    async fn list_shares(&self, query: &ShareQuery) -> Result<SharePage, StoreError> {
        list_shares_by_index(self, query, |index, after, n| {
            self.blocking(move |db| scan_index(db, SHARE_INDEX, &index, after.as_deref(), n))
        })
        .await
    }

    async fn append_events_notify(
        &self,
        _write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<std::time::Duration>,
        max_pending: u64,
    ) -> Result<u64, StoreError> {
        let drafts = drafts.to_vec();
        self.blocking(move |db| append(db, id, &drafts, retention, Some(max_pending)))
            .await
    }

    async fn outbox_lease(
        &self,
        limit: usize,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.blocking(move |db| {
            let now = super::now_ms();
            let until = now.saturating_add(lease.as_millis() as u64);
            let tx = db.begin_write().map_err(unavailable)?;
            let mut out = Vec::new();
            {
                let mut outbox = tx.open_table(OUTBOX).map_err(unavailable)?;
                let mut due = tx.open_table(OUTBOX_DUE).map_err(unavailable)?;
                let end = (now.saturating_add(1)).to_be_bytes();
                let mut ids = Vec::new();
                for entry in due.range(..end.as_slice()).map_err(unavailable)? {
                    let (k, _) = entry.map_err(unavailable)?;
                    let key = k.value();
                    ids.push(
                        String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned(),
                    );
                    if ids.len() >= limit {
                        break;
                    }
                }
                for id in ids {
                    let mut parked: Parked = match outbox.get(id.as_bytes()).map_err(unavailable)? {
                        Some(v) => serde_json::from_slice(v.value())
                            .map_err(|e| StoreError::Corrupt(format!("outbox entry: {e}")))?,
                        None => continue,
                    };
                    due.remove(timed_key(parked.due, &id).as_slice())
                        .map_err(unavailable)?;
                    parked.due = until;
                    parked.entry.lease = super::lease_token();
                    put_entry(&mut outbox, &mut due, &parked)?;
                    out.push(parked.entry);
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    async fn outbox_done(&self, id: &str, lease: &str) -> Result<bool, StoreError> {
        let (id, lease) = (id.to_string(), lease.to_string());
        self.blocking(move |db| with_leased(db, &id, &lease, |_, _, _, _| Ok(())))
            .await
    }

    async fn outbox_retry(
        &self,
        id: &str,
        lease: &str,
        delay: std::time::Duration,
        error: &str,
    ) -> Result<bool, StoreError> {
        let (id, lease, error) = (id.to_string(), lease.to_string(), error.to_string());
        self.blocking(move |db| {
            with_leased(db, &id, &lease, |mut parked, outbox, due, _| {
                parked.due = super::now_ms().saturating_add(delay.as_millis() as u64);
                parked.entry.attempts = parked.entry.attempts.saturating_add(1);
                parked.entry.lease = String::new();
                parked.entry.last_error = Some(error);
                put_entry(outbox, due, &parked)
            })
        })
        .await
    }

    async fn outbox_fail(
        &self,
        id: &str,
        lease: &str,
        error: &str,
        keep: usize,
    ) -> Result<bool, StoreError> {
        let (id, lease, error) = (id.to_string(), lease.to_string(), error.to_string());
        self.blocking(move |db| {
            with_leased(db, &id, &lease, |parked, _, _, tx| {
                let mut entry = parked.entry;
                let now = super::now_ms();
                entry.attempts = entry.attempts.saturating_add(1);
                entry.lease = String::new();
                entry.last_error = Some(error);
                entry.failed_at = Some(now);
                let json =
                    serde_json::to_vec(&entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let mut failed = tx.open_table(OUTBOX_FAILED).map_err(unavailable)?;
                failed
                    .insert(timed_key(now, &entry.id).as_slice(), json.as_slice())
                    .map_err(unavailable)?;
                while failed.len().map_err(unavailable)? > keep as u64 {
                    if failed.pop_first().map_err(unavailable)?.is_none() {
                        break;
                    }
                }
                Ok(())
            })
        })
        .await
    }

    async fn outbox_failed(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let failed = tx.open_table(OUTBOX_FAILED).map_err(unavailable)?;
            let mut out = Vec::new();
            for entry in failed.iter().map_err(unavailable)?.rev() {
                let (_, v) = entry.map_err(unavailable)?;
                out.push(
                    serde_json::from_slice(v.value())
                        .map_err(|e| StoreError::Corrupt(format!("failed webhook: {e}")))?,
                );
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_pending(&self) -> Result<u64, StoreError> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let outbox = tx.open_table(OUTBOX).map_err(unavailable)?;
            outbox.len().map_err(unavailable)
        })
        .await
    }

    async fn mail_hold(
        &self,
        jobs: &[String],
        lease: &str,
        hold: std::time::Duration,
    ) -> Result<(), StoreError> {
        let (jobs, lease) = (jobs.to_vec(), lease.to_string());
        self.blocking(move |db| {
            let until = super::now_ms().saturating_add(hold.as_millis() as u64);
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(MAIL_JOBS).map_err(unavailable)?;
                let mut due = tx.open_table(MAIL_DUE).map_err(unavailable)?;
                for id in jobs {
                    if let Some(old) = get_mail_job(&table, &id)? {
                        due.remove(timed_key(old.due, &id).as_slice())
                            .map_err(unavailable)?;
                    }
                    let job = QueuedMail {
                        due: until,
                        lease: lease.clone(),
                        attempt: 1,
                    };
                    put_mail_job(&mut table, &mut due, &id, &job)?;
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn mail_lease(
        &self,
        limit: usize,
        hold: std::time::Duration,
    ) -> Result<Vec<MailJob>, StoreError> {
        self.blocking(move |db| {
            let now = super::now_ms();
            let until = now.saturating_add(hold.as_millis() as u64);
            let tx = db.begin_write().map_err(unavailable)?;
            let mut out = Vec::new();
            {
                let mut table = tx.open_table(MAIL_JOBS).map_err(unavailable)?;
                let mut due = tx.open_table(MAIL_DUE).map_err(unavailable)?;
                let end = now.saturating_add(1).to_be_bytes();
                let mut ids = Vec::new();
                for entry in due.range(..end.as_slice()).map_err(unavailable)? {
                    let (k, _) = entry.map_err(unavailable)?;
                    let key = k.value();
                    ids.push(
                        String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned(),
                    );
                    if ids.len() >= limit {
                        break;
                    }
                }
                for id in ids {
                    let Some(mut job) = get_mail_job(&table, &id)? else {
                        continue;
                    };
                    due.remove(timed_key(job.due, &id).as_slice())
                        .map_err(unavailable)?;
                    job.due = until;
                    job.lease = super::lease_token();
                    job.attempt = job.attempt.saturating_add(1);
                    put_mail_job(&mut table, &mut due, &id, &job)?;
                    out.push(MailJob {
                        id,
                        lease: job.lease,
                        attempt: job.attempt,
                    });
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(out)
        })
        .await
    }

    async fn mail_settle(
        &self,
        job: &str,
        lease: &str,
        retry: Option<std::time::Duration>,
    ) -> Result<bool, StoreError> {
        let (id, lease) = (job.to_string(), lease.to_string());
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let mut table = tx.open_table(MAIL_JOBS).map_err(unavailable)?;
                let mut due = tx.open_table(MAIL_DUE).map_err(unavailable)?;
                let Some(mut job) = get_mail_job(&table, &id)? else {
                    return Ok(false);
                };
                use subtle::ConstantTimeEq;
                if lease.is_empty() || !bool::from(job.lease.as_bytes().ct_eq(lease.as_bytes())) {
                    return Ok(false);
                }
                due.remove(timed_key(job.due, &id).as_slice())
                    .map_err(unavailable)?;
                match retry {
                    None => {
                        table.remove(id.as_bytes()).map_err(unavailable)?;
                    }
                    Some(delay) => {
                        job.due = super::now_ms().saturating_add(delay.as_millis() as u64);
                        job.lease = String::new();
                        put_mail_job(&mut table, &mut due, &id, &job)?;
                    }
                }
            }
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn expiring(&self, now_ms: u64, limit: usize) -> Result<Vec<(LinkId, u64)>, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(unavailable)?;
            let due = tx.open_table(EXPIRY_DUE).map_err(unavailable)?;
            let end = now_ms.saturating_add(1).to_be_bytes();
            let mut out = Vec::new();
            for entry in due.range(..end.as_slice()).map_err(unavailable)? {
                let (k, _) = entry.map_err(unavailable)?;
                let key = k.value();
                let (Some(at), Some(id)) = (key.get(..8), key.get(8..)) else {
                    continue;
                };
                let Some(id) = std::str::from_utf8(id).ok().and_then(LinkId::parse) else {
                    continue;
                };
                out.push((id, u64::from_be_bytes(at.try_into().unwrap_or_default())));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
    }

    async fn expiry_settle(
        &self,
        id: LinkId,
        seen: u64,
        next: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(unavailable)?;
            {
                let at = tx.open_table(EXPIRY_AT).map_err(unavailable)?;
                let current = at
                    .get(id.as_bytes().as_slice())
                    .map_err(unavailable)?
                    .map(|v| v.value());
                if current != Some(seen) {
                    return Ok(false);
                }
            }
            index_expiry(&tx, &id, next)?;
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }
}

/// link id → the Unix ms of its expiry index entry.
const EXPIRY_AT: TableDefinition<&[u8], u64> = TableDefinition::new("expiry_at");
/// at (big-endian u64) ++ link id (hex) → nothing: the expiry index in time order.
const EXPIRY_DUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("expiry_due");

/// Sets (or, with `None`, removes) a link's expiry index entry, in `tx`.
fn index_expiry(
    tx: &redb::WriteTransaction,
    id: &LinkId,
    at: Option<u64>,
) -> Result<(), StoreError> {
    let mut by_link = tx.open_table(EXPIRY_AT).map_err(unavailable)?;
    let mut due = tx.open_table(EXPIRY_DUE).map_err(unavailable)?;
    let name = id.to_string();
    let old = by_link
        .get(id.as_bytes().as_slice())
        .map_err(unavailable)?
        .map(|v| v.value());
    if let Some(old) = old {
        due.remove(timed_key(old, &name).as_slice())
            .map_err(unavailable)?;
    }
    match at {
        Some(at) => {
            by_link
                .insert(id.as_bytes().as_slice(), at)
                .map_err(unavailable)?;
            due.insert(timed_key(at, &name).as_slice(), [].as_slice())
                .map_err(unavailable)?;
        }
        None => {
            by_link
                .remove(id.as_bytes().as_slice())
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// A share mail job as the embedded store keeps it (see `LinkStore::mail_hold`).
#[derive(serde::Serialize, serde::Deserialize)]
struct QueuedMail {
    /// When it falls due, or its hold runs out (Unix ms).
    due: u64,
    /// The token of the lease holding it (empty when none).
    lease: String,
    /// Attempts made or being made.
    attempt: u32,
}

/// Share mail jobs: `SHARE.LINK` → `QueuedMail` JSON.
const MAIL_JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("mail_jobs");
/// due (big-endian u64) ++ job → nothing: the jobs in the order they fall due.
const MAIL_DUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("mail_due");

fn get_mail_job(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &str,
) -> Result<Option<QueuedMail>, StoreError> {
    match table.get(id.as_bytes()).map_err(unavailable)? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("mail job: {e}"))),
        None => Ok(None),
    }
}

fn put_mail_job(
    table: &mut redb::Table<&[u8], &[u8]>,
    due: &mut redb::Table<&[u8], &[u8]>,
    id: &str,
    job: &QueuedMail,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    table
        .insert(id.as_bytes(), json.as_slice())
        .map_err(unavailable)?;
    due.insert(timed_key(job.due, id).as_slice(), [].as_slice())
        .map_err(unavailable)?;
    Ok(())
}

/// share id → share JSON.
const SHARES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("shares");
/// index name, 0, member → nothing (see `share_index_entries`).
const SHARE_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("share_index");

fn decode_event(bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("event record: {e}")))
}

/// The events of a record of `EVENTS` (its key and value), oldest first, each with its seq: the
/// key names the last one and the others come just before it (a chain starts at seq 1).
fn record_events<'a>(key: &[u8], record: &'a [u8]) -> Result<Vec<(u64, &'a [u8])>, StoreError> {
    let last = key
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("event key".into()))?;
    let lines: Vec<&[u8]> = record.split(|b| *b == b'\n').collect();
    let first = last
        .checked_add(1)
        .and_then(|end| end.checked_sub(lines.len() as u64))
        .filter(|first| *first >= 1)
        .ok_or_else(|| StoreError::Corrupt("event record: more events than its seq".into()))?;
    Ok((first..=last).zip(lines).collect())
}

/// The JSON of a record's last event (a record's events are compact JSON, which never holds a
/// raw newline).
fn last_event(record: &[u8]) -> &[u8] {
    record.rsplit(|b| *b == b'\n').next().unwrap_or(record)
}

/// Drops the link's events older than `cutoff` from the head of its chain: whole records while
/// their last event is older, then the older events of the record that straddles the cutoff.
fn drop_older(
    events: &mut redb::Table<&[u8], &[u8]>,
    id: &LinkId,
    cutoff: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let first = event_key(id, 0);
    let last = event_key(id, u64::MAX);
    let newer = |json: &[u8]| Ok::<_, StoreError>(decode_event(json)?.draft.at >= cutoff);
    loop {
        // What to do with the head record, decided while it is borrowed from the table.
        let (key, rest) = {
            let mut head = events
                .range(first.as_slice()..=last.as_slice())
                .map_err(unavailable)?;
            let Some(entry) = head.next() else {
                return Ok(());
            };
            let (k, v) = entry.map_err(unavailable)?;
            let lines = record_events(k.value(), v.value())?;
            match (lines.first(), lines.last()) {
                (Some((_, oldest)), _) if newer(oldest)? => return Ok(()),
                (_, Some((_, newest))) if newer(newest)? => {
                    // The cutoff falls inside this record: keep its newer events.
                    let mut rest = Vec::new();
                    for (_, json) in &lines {
                        if rest.is_empty() && !newer(json)? {
                            continue;
                        }
                        if !rest.is_empty() {
                            rest.push(b'\n');
                        }
                        rest.extend_from_slice(json);
                    }
                    (k.value().to_vec(), Some(rest))
                }
                _ => (k.value().to_vec(), None),
            }
        };
        match rest {
            Some(rest) => {
                events
                    .insert(key.as_slice(), rest.as_slice())
                    .map_err(unavailable)?;
                return Ok(());
            }
            None => {
                events.remove(key.as_slice()).map_err(unavailable)?;
            }
        }
    }
}

/// Counters that never expire (`LinkStore::tally`): key → value.
const TALLIES: TableDefinition<&[u8], u64> = TableDefinition::new("tallies");

/// Kept values ([`LinkStore::keep_new`]): key → expiry (Unix ms, 8 bytes big-endian) and value.
const KEPT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kept");
/// Kept values by expiry: expiry (8 bytes big-endian) and key → nothing; swept as they fall due.
const KEPT_DUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kept_due");
/// Expired kept values dropped per write (so the table never grows with dead entries).
const KEPT_SWEEP: usize = 64;

/// The value of a stored kept entry, if it is still live at `now`.
fn live_kept(stored: &[u8], now: u64) -> Option<Vec<u8>> {
    let (until, value) = stored.split_at_checked(8)?;
    let until = u64::from_be_bytes(until.try_into().ok()?);
    (until > now).then(|| value.to_vec())
}

/// One write of the kept values, in one transaction: drops up to [`KEPT_SWEEP`] expired
/// entries, then puts `entry` (`Some((value, until))`) or removes the key (`None`). With
/// `only_new`, a live value already there is left alone and returned.
fn keep_write(
    db: &Database,
    key: &[u8],
    entry: Option<(&[u8], u64)>,
    only_new: bool,
) -> Result<Option<Vec<u8>>, StoreError> {
    let now = super::now_ms();
    let tx = db.begin_write().map_err(unavailable)?;
    let found = {
        let mut kept = tx.open_table(KEPT).map_err(unavailable)?;
        let mut due = tx.open_table(KEPT_DUE).map_err(unavailable)?;
        let expired: Vec<Vec<u8>> = due
            .range(..now.to_be_bytes().as_slice())
            .map_err(unavailable)?
            .take(KEPT_SWEEP)
            .filter_map(|e| e.ok().map(|(k, _)| k.value().to_vec()))
            .collect();
        for d in expired {
            due.remove(d.as_slice()).map_err(unavailable)?;
            let Some(k) = d.get(8..) else { continue };
            let stale = kept
                .get(k)
                .map_err(unavailable)?
                .is_some_and(|v| live_kept(v.value(), now).is_none());
            if stale {
                kept.remove(k).map_err(unavailable)?;
            }
        }
        let before = kept
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.value().to_vec());
        let live = before.as_deref().and_then(|v| live_kept(v, now));
        if only_new && live.is_some() {
            live
        } else {
            if let Some(old) = before.as_deref().and_then(|v| v.get(..8)) {
                let mut d = old.to_vec();
                d.extend_from_slice(key);
                due.remove(d.as_slice()).map_err(unavailable)?;
            }
            match entry {
                Some((value, until)) => {
                    let mut stored = until.to_be_bytes().to_vec();
                    stored.extend_from_slice(value);
                    kept.insert(key, stored.as_slice()).map_err(unavailable)?;
                    let mut d = until.to_be_bytes().to_vec();
                    d.extend_from_slice(key);
                    due.insert(d.as_slice(), [].as_slice())
                        .map_err(unavailable)?;
                }
                None => {
                    kept.remove(key).map_err(unavailable)?;
                }
            }
            None
        }
    };
    tx.commit().map_err(unavailable)?;
    Ok(found)
}

/// Appends events (see `LinkStore::append_events`) and, with `notify` (the outbox's bound), puts
/// the notifiable ones into the outbox in the same transaction. Returns how many were left out.
fn append(
    db: &Database,
    id: LinkId,
    drafts: &[Draft],
    retention: Option<std::time::Duration>,
    notify: Option<u64>,
) -> Result<u64, StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let sealed = {
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
                Some(decode_event(last_event(v.value()))?)
            }
            None => None,
        };
        let sealed =
            seal(id, tail.as_ref(), drafts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut record = Vec::new();
        for chunk in sealed.chunks(EVENTS_PER_RECORD) {
            let Some((seq, _)) = chunk.last() else {
                continue;
            };
            record.clear();
            for (i, (_, json)) in chunk.iter().enumerate() {
                if i > 0 {
                    record.push(b'\n');
                }
                record.extend_from_slice(json);
            }
            events
                .insert(event_key(&id, *seq).as_slice(), record.as_slice())
                .map_err(unavailable)?;
        }
        if let Some(keep) = retention {
            drop_older(&mut events, &id, time::OffsetDateTime::now_utc() - keep)?;
        }
        sealed
    };
    let mut left_out = 0;
    if let Some(max) = notify {
        let mut outbox = tx.open_table(OUTBOX).map_err(unavailable)?;
        let mut due = tx.open_table(OUTBOX_DUE).map_err(unavailable)?;
        let now = super::now_ms();
        for (_, json) in sealed {
            let event = decode_event(&json)?;
            if !crate::model::webhook::notifiable(&event.draft.kind) {
                continue;
            }
            if outbox.len().map_err(unavailable)? >= max {
                left_out += 1;
                continue;
            }
            let entry = OutboxEntry {
                id: crate::model::webhook::event_id(&event),
                event,
                attempts: 0,
                lease: String::new(),
                last_error: None,
                failed_at: None,
            };
            put_entry(&mut outbox, &mut due, &Parked { due: now, entry })?;
        }
    }
    tx.commit().map_err(unavailable)?;
    Ok(left_out)
}

/// An outbox entry as the embedded store keeps it: with the time it is due (or its lease ends).
#[derive(serde::Serialize, serde::Deserialize)]
struct Parked {
    due: u64,
    entry: OutboxEntry,
}

/// Outbox entries: event id → `Parked` JSON.
const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox");
/// due (big-endian u64) ++ event id → nothing: the outbox in the order entries fall due.
const OUTBOX_DUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox_due");
/// failed at (big-endian u64) ++ event id → entry JSON: webhooks given up.
const OUTBOX_FAILED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("outbox_failed");

fn timed_key(at: u64, id: &str) -> Vec<u8> {
    let mut k = at.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn put_entry(
    outbox: &mut redb::Table<&[u8], &[u8]>,
    due: &mut redb::Table<&[u8], &[u8]>,
    parked: &Parked,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(parked).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    outbox
        .insert(parked.entry.id.as_bytes(), json.as_slice())
        .map_err(unavailable)?;
    due.insert(
        timed_key(parked.due, &parked.entry.id).as_slice(),
        [].as_slice(),
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Takes an entry out of the outbox if `lease` holds it; `None` otherwise.
fn take_leased(
    outbox: &mut redb::Table<&[u8], &[u8]>,
    due: &mut redb::Table<&[u8], &[u8]>,
    id: &str,
    lease: &str,
) -> Result<Option<Parked>, StoreError> {
    let parked: Parked = match outbox.get(id.as_bytes()).map_err(unavailable)? {
        Some(v) => serde_json::from_slice(v.value())
            .map_err(|e| StoreError::Corrupt(format!("outbox entry: {e}")))?,
        None => return Ok(None),
    };
    use subtle::ConstantTimeEq;
    if lease.is_empty() || !bool::from(parked.entry.lease.as_bytes().ct_eq(lease.as_bytes())) {
        return Ok(None);
    }
    outbox.remove(id.as_bytes()).map_err(unavailable)?;
    due.remove(timed_key(parked.due, id).as_slice())
        .map_err(unavailable)?;
    Ok(Some(parked))
}

/// Runs `f` on the entry `lease` holds, in one write transaction; false when it holds none.
fn with_leased(
    db: &Database,
    id: &str,
    lease: &str,
    f: impl FnOnce(
        Parked,
        &mut redb::Table<&[u8], &[u8]>,
        &mut redb::Table<&[u8], &[u8]>,
        &redb::WriteTransaction,
    ) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    let tx = db.begin_write().map_err(unavailable)?;
    let found = {
        let mut outbox = tx.open_table(OUTBOX).map_err(unavailable)?;
        let mut due = tx.open_table(OUTBOX_DUE).map_err(unavailable)?;
        match take_leased(&mut outbox, &mut due, id, lease)? {
            Some(parked) => {
                f(parked, &mut outbox, &mut due, &tx)?;
                true
            }
            None => false,
        }
    };
    if found {
        tx.commit().map_err(unavailable)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_events_is_keyed_by_its_last_event() {
        let id = LinkId::random();
        let events =
            record_events(&event_key(&id, 10), b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}").unwrap();
        let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [8, 9, 10]);
        assert_eq!(events[2].1, b"{\"c\":3}");
        assert_eq!(last_event(b"{\"a\":1}\n{\"b\":2}"), b"{\"b\":2}");
        // A record written before records held several events is a record of one.
        let one = record_events(&event_key(&id, 7), b"{\"a\":1}").unwrap();
        assert_eq!(one, [(7, b"{\"a\":1}".as_slice())]);
        assert_eq!(last_event(b"{\"a\":1}"), b"{\"a\":1}");
    }

    #[test]
    fn a_record_that_cannot_hold_its_events_is_corrupt_not_a_panic() {
        let id = LinkId::random();
        assert!(matches!(
            record_events(&event_key(&id, 1), b"{}\n{}"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            record_events(&[0u8; 20], b"{}"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            record_events(&event_key(&id, u64::MAX), b"{}"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
