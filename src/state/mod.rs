//! Link state: the `LinkStore` trait every backend implements.
//!
//! A store keeps link records and, per link and generation, the download count and the byte
//! accounts of the link's documents (see [`crate::model::counting`] for the rules). Counting is one
//! atomic operation, `draw`: bytes are paid for from a document's account, and a download is
//! counted only while `used < max`, so no amount of concurrency, on any number of gateways, can
//! over-grant. What a response drew and did not send goes back with `refund` (off the request
//! path); a draw never expires, so a gateway that dies mid-download leaves its lease drawn (the
//! fail-safe side).
//!
//! Unlimited links do not touch the store per request: their usage arrives in batches
//! (`add_usage`). Backends: [`embedded`] (one instance, a redb file) and [`redis`] (many instances).

pub mod cache;
pub mod embedded;
pub mod keys;
pub mod outage;
pub mod queues;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::model::audit::{Draft, Event};
use crate::model::counting::{Ask, Drawn};
use crate::model::link::{Link, LinkId, LinkState};
use crate::model::share::Share;
use queues::Refund;

pub use self::embedded::EmbeddedStore;
pub use self::redis::RedisStore;

/// A store failure. Requests that need the store fail closed (503) on any of these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("link store unavailable: {0}")]
    Unavailable(String),
    #[error("link store data is corrupt: {0}")]
    Corrupt(String),
    #[error("link {0} not found")]
    NotFound(LinkId),
    #[error("link {0} already exists")]
    Exists(LinkId),
    #[error("change refused: {0}")]
    Refused(String),
    /// The change would break a rule (policy, validation) about `field`.
    #[error("{field}: {message}")]
    Rejected {
        field: &'static str,
        message: String,
    },
}

/// Names one write to the link state, so that a write retried after an unclear failure (a timeout:
/// the store may have applied it after the caller gave up) is applied once. A backend whose
/// failures are never unclear may ignore it; the Redis backend remembers the last ids applied to
/// each account, event chain and usage counter, and skips a write it has already seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteId(u128);

impl WriteId {
    /// A fresh, random id (collisions are as likely as guessing a 128-bit key).
    pub fn new() -> WriteId {
        WriteId(rand::random())
    }
}

impl Default for WriteId {
    fn default() -> WriteId {
        WriteId::new()
    }
}

impl std::fmt::Display for WriteId {
    /// Always 32 lowercase hex digits (the Redis scripts rely on the fixed width).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A draw of bytes from one part (document and variant) of a link generation.
#[derive(Debug, Clone)]
pub struct Draw {
    pub id: LinkId,
    pub generation: u64,
    /// The link's download limit.
    pub max: u64,
    /// The part, as [`crate::model::counting::part_of`] names it.
    pub part: String,
    pub ask: Ask,
    /// Names a block take (an ask with `block`), so that if its answer is lost (a timeout, a
    /// broken connection) the refund of the take (see [`Refund::take`]) can give back what it
    /// reserved, or void it if it lands later.
    pub take: Option<WriteId>,
}

/// A change to a stored link, applied atomically; returning `Err` leaves the record untouched.
/// It may run more than once (optimistic retries), so it must depend only on the link it gets.
pub type Change = Arc<dyn Fn(&mut Link) -> Result<(), StoreError> + Send + Sync>;

/// Called for each changed link, or with `None` when every cached link must be dropped.
pub type OnChange = Arc<dyn Fn(Option<LinkId>) + Send + Sync>;

/// Which links to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub object: Option<String>,
    pub store: Option<String>,
    pub created_by: Option<String>,
    pub state: Option<LinkState>,
    /// Only links created by one of these (a restricted admin caller).
    pub creators: Option<Vec<String>>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: usize,
}

impl ListQuery {
    /// The index to walk: the most selective one the query names.
    pub fn index(&self) -> String {
        match (&self.object, &self.created_by) {
            (Some(o), _) => format!("o:{o}"),
            (None, Some(c)) => format!("c:{c}"),
            _ => "all".to_string(),
        }
    }

    pub fn matches(&self, link: &Link) -> bool {
        self.object
            .as_ref()
            .is_none_or(|o| link.documents.iter().any(|d| &d.object == o))
            && self.store.as_ref().is_none_or(|s| &link.store == s)
            && self
                .created_by
                .as_ref()
                .is_none_or(|c| link.created_by.as_ref() == Some(c))
            && self.state.is_none_or(|s| link.state == s)
            && self
                .creators
                .as_ref()
                .is_none_or(|cs| link.created_by.as_ref().is_some_and(|c| cs.contains(c)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub links: Vec<Link>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<String>,
}

/// The indexes a link is listed in, and its sort key there (newest first, then by id).
pub fn index_entries(link: &Link) -> (Vec<String>, String) {
    let member = index_member(link.created_at, link.id);
    let mut names = vec!["all".to_string()];
    for d in &link.documents {
        names.push(format!("o:{}", d.object));
    }
    if let Some(c) = &link.created_by {
        names.push(format!("c:{c}"));
    }
    names.dedup();
    (names, member)
}

/// An index member: newest first (the creation millisecond, inverted), then by id.
fn index_member(created_at: time::OffsetDateTime, id: LinkId) -> String {
    let ms = (created_at.unix_timestamp_nanos() / 1_000_000).clamp(0, i64::MAX as i128) as u64;
    format!("{:020}:{}", u64::MAX - ms, id)
}

/// The id in an index member.
pub fn member_id(member: &str) -> Option<LinkId> {
    LinkId::parse(member.rsplit(':').next()?)
}

/// A change to a stored share, applied atomically (it may run more than once, like [`Change`]).
pub type ShareChange = Arc<dyn Fn(&mut Share) -> Result<(), StoreError> + Send + Sync>;

/// Which shares to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct ShareQuery {
    /// Only shares of this object key (the per-document history).
    pub object: Option<String>,
    /// Only shares created by one of these (a restricted admin caller).
    pub creators: Option<Vec<String>>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: usize,
}

impl ShareQuery {
    /// The index to walk.
    pub fn index(&self) -> String {
        match &self.object {
            Some(o) => format!("o:{o}"),
            None => "all".to_string(),
        }
    }

    pub fn matches(&self, share: &Share) -> bool {
        self.object
            .as_ref()
            .is_none_or(|o| share.objects.contains(o))
            && self
                .creators
                .as_ref()
                .is_none_or(|cs| share.created_by.as_ref().is_some_and(|c| cs.contains(c)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct SharePage {
    pub shares: Vec<Share>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<String>,
}

/// The share indexes a share is listed in, and its sort key there (as [`index_entries`]).
pub fn share_index_entries(share: &Share) -> (Vec<String>, String) {
    let member = index_member(share.created_at, share.id);
    let mut names = vec!["all".to_string()];
    for o in &share.objects {
        names.push(format!("o:{o}"));
    }
    names.sort();
    names.dedup();
    (names, member)
}

/// A page of the shares a query names (see [`walk_index`]).
pub(crate) async fn list_shares_by_index<S, F, Fut>(
    store: &S,
    q: &ShareQuery,
    scan: F,
) -> Result<SharePage, StoreError>
where
    S: LinkStore + ?Sized,
    F: Fn(String, Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
{
    let fetch = |id| store.get_share(id);
    let (shares, next) = walk_index(q.index(), q.after.clone(), q.limit, scan, fetch, |s| {
        q.matches(s)
    })
    .await?;
    Ok(SharePage { shares, next })
}

/// Short-lived values and counters in memory, for a store that serves one process.
#[derive(Default)]
pub(crate) struct MemoryKv {
    map: parking_lot::Mutex<std::collections::HashMap<String, (Vec<u8>, std::time::Instant)>>,
}

impl MemoryKv {
    const MAX: usize = 200_000;

    fn live(&self, key: &str) -> Option<Vec<u8>> {
        let now = std::time::Instant::now();
        let mut map = self.map.lock();
        match map.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: &str, value: Vec<u8>, until: std::time::Instant) {
        let mut map = self.map.lock();
        if map.len() >= Self::MAX {
            let now = std::time::Instant::now();
            map.retain(|_, (_, t)| *t > now);
        }
        if map.len() < Self::MAX || map.contains_key(key) {
            map.insert(key.to_string(), (value, until));
        }
    }

    pub(crate) fn hit(&self, key: &str, window: Duration, incr: u64) -> u64 {
        let now = std::time::Instant::now();
        let mut map = self.map.lock();
        let entry = map
            .entry(key.to_string())
            .or_insert_with(|| (0u64.to_le_bytes().to_vec(), now + window));
        if entry.1 <= now {
            *entry = (0u64.to_le_bytes().to_vec(), now + window);
        }
        let current = u64::from_le_bytes(entry.0.as_slice().try_into().unwrap_or([0; 8]))
            .saturating_add(incr);
        entry.0 = current.to_le_bytes().to_vec();
        current
    }

    pub(crate) fn once(&self, key: &str, ttl: Duration) -> bool {
        if self.live(key).is_some() {
            return false;
        }
        self.put(key, Vec::new(), std::time::Instant::now() + ttl);
        true
    }

    pub(crate) fn kv_put(&self, key: &str, value: &[u8], ttl: Duration) {
        self.put(key, value.to_vec(), std::time::Instant::now() + ttl);
    }

    pub(crate) fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.live(key)
    }

    pub(crate) fn kv_del(&self, key: &str) {
        self.map.lock().remove(key);
    }

    pub(crate) fn kv_put_new(&self, key: &str, value: &[u8], ttl: Duration) -> Option<Vec<u8>> {
        let now = std::time::Instant::now();
        let mut map = self.map.lock();
        if let Some((v, until)) = map.get(key) {
            if *until > now {
                return Some(v.clone());
            }
        }
        map.insert(key.to_string(), (value.to_vec(), now + ttl));
        None
    }
}

/// Walks an index page by page from `after`, keeping the records `keep` accepts, until `limit`
/// are found or the end; bounded work per call (50 × `limit` entries), the rest on the next page.
/// An index entry is written before its record, so a crash between the two leaves an entry
/// without a record, never a record that cannot be listed: such entries are skipped.
async fn walk_index<T, F, Fut, G, GFut>(
    index: String,
    after: Option<String>,
    limit: usize,
    scan: F,
    fetch: G,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, Option<String>), StoreError>
where
    F: Fn(String, Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
    G: Fn(LinkId) -> GFut,
    GFut: std::future::Future<Output = Result<Option<T>, StoreError>>,
{
    let limit = limit.clamp(1, 500);
    let mut after = after;
    let mut found = Vec::new();
    let mut scanned = 0usize;
    loop {
        let batch = scan(index.clone(), after.clone(), limit * 2).await?;
        if batch.is_empty() {
            return Ok((found, None));
        }
        for member in batch {
            scanned += 1;
            after = Some(member.clone());
            let Some(id) = member_id(&member) else {
                continue;
            };
            let Some(record) = fetch(id).await? else {
                continue;
            };
            if keep(&record) {
                found.push(record);
                if found.len() == limit {
                    return Ok((found, after));
                }
            }
        }
        if scanned >= limit * 50 {
            return Ok((found, after));
        }
    }
}

/// A page of the links a query names (see [`walk_index`]).
pub(crate) async fn list_by_index<S, F, Fut>(
    store: &S,
    q: &ListQuery,
    scan: F,
) -> Result<ListPage, StoreError>
where
    S: LinkStore + ?Sized,
    F: Fn(String, Option<String>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
{
    let fetch = |id| store.get(id);
    let (links, next) = walk_index(q.index(), q.after.clone(), q.limit, scan, fetch, |l| {
        q.matches(l)
    })
    .await?;
    Ok(ListPage { links, next })
}

#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    async fn create(&self, link: &Link) -> Result<(), StoreError>;
    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError>;
    /// Applies `change` to the stored link atomically and returns the new record. Other gateway
    /// instances learn of the change through `follow_changes`.
    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError>;
    /// Applies a draw atomically (see [`crate::model::counting::draw`]); `Drawn::Stale` when the
    /// link's generation or state is not the caller's.
    async fn draw(&self, draw: &Draw) -> Result<Drawn, StoreError>;
    /// Gives back unsent bytes and unused downloads (see [`crate::model::counting::refund`]); the
    /// caller batches them. Each refund carries its [`WriteId`]: a retried one is applied once.
    async fn refund(&self, refunds: &[Refund]) -> Result<(), StoreError>;
    /// Adds delivered downloads of an unlimited link (batched by the caller); a retry passes the
    /// same `write` as the attempt it repeats.
    async fn add_usage(
        &self,
        write: WriteId,
        id: LinkId,
        generation: u64,
        n: u64,
    ) -> Result<(), StoreError>;
    /// Downloads used in `generation`.
    async fn usage(&self, id: LinkId, generation: u64) -> Result<u64, StoreError>;
    /// Lists links, newest first (see [`ListQuery`]).
    async fn list(&self, query: &ListQuery) -> Result<ListPage, StoreError>;
    /// Appends events to the link's chain, atomically, and drops events older than `retention`;
    /// a retry passes the same `write` (and the same drafts) as the attempt it repeats.
    async fn append_events(
        &self,
        write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` events with `seq > after`, oldest first.
    async fn events(&self, id: LinkId, after: u64, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// Adds `incr` to a counter that lives for `window` from its first hit and returns its value
    /// (`incr` 0 reads it). Attempt caps use it, so they hold across instances.
    async fn hit(&self, key: &str, window: Duration, incr: u64) -> Result<u64, StoreError>;
    /// True the first time `key` is seen within `ttl` (single-use form tokens).
    async fn once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Short-lived values (mailed codes).
    async fn kv_put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn kv_del(&self, key: &str) -> Result<(), StoreError>;
    /// Reports changes made by other gateway instances until the process ends; returns at once
    /// for a backend that only one instance uses.
    async fn follow_changes(&self, on_change: OnChange);
    /// Stores `value` under `key` for `ttl` unless a live value is there already, atomically
    /// (across instances); returns the value found (`None`: `value` was stored). One current
    /// code per link uses it, so that two browsers asking at once mail the same code.
    async fn kv_put_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keeps `value` under `key` for `ttl` unless a live value is there already, atomically
    /// (across instances); returns the value found (`None`: `value` was kept). Unlike
    /// [`LinkStore::kv_put_new`], persistent on every backend: a restart keeps it (the admin
    /// API's idempotency keys).
    async fn keep_new(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replaces what `key` keeps, for `ttl` from now (persistent, as [`LinkStore::keep_new`]).
    async fn keep_put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    /// What `key` keeps, while it lives.
    async fn keep_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Forgets what `key` keeps.
    async fn keep_del(&self, key: &str) -> Result<(), StoreError>;
    /// Adds `incr` to a counter that never expires and returns its value (`incr` 0 reads it):
    /// bounds over a link's whole life (wrong codes). Persistent on every backend.
    async fn tally(&self, key: &str, incr: u64) -> Result<u64, StoreError>;

    // Shares (one mail-out, one link per recipient; see `crate::model::share`).

    /// Stores a new share record and its index entries; `Exists` if the id is taken.
    async fn create_share(&self, share: &Share) -> Result<(), StoreError>;
    async fn get_share(&self, id: LinkId) -> Result<Option<Share>, StoreError>;
    /// Applies `change` to the stored share atomically and returns the new record (`NotFound`
    /// when there is none).
    async fn update_share(&self, id: LinkId, change: ShareChange) -> Result<Share, StoreError>;
    /// Lists shares, newest first (see [`ShareQuery`]).
    async fn list_shares(&self, query: &ShareQuery) -> Result<SharePage, StoreError>;

    // Webhook outbox (see crate::model::webhook and crate::share::webhooks). Entries are named
    // by their event id (`LINK.SEQ`) and hold the sealed event.

    /// As [`LinkStore::append_events`], and in the same atomic write puts each event whose kind
    /// is notifiable ([`crate::model::webhook::notifiable`]) into the outbox, due at once, while
    /// the outbox holds fewer than `max_pending` entries. Returns how many notifiable events were
    /// left out because the outbox was full (their events are still written).
    async fn append_events_notify(
        &self,
        write: WriteId,
        id: LinkId,
        drafts: &[Draft],
        retention: Option<Duration>,
        max_pending: u64,
    ) -> Result<u64, StoreError>;
    /// Leases up to `limit` due entries for `lease`: until it runs out no other caller (on any
    /// instance) gets them. Each entry comes with a fresh lease token.
    async fn outbox_lease(
        &self,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Removes a delivered entry; false when `lease` no longer holds it (it ran out and another
    /// caller took the entry), and then nothing changes.
    async fn outbox_done(&self, id: &str, lease: &str) -> Result<bool, StoreError>;
    /// Counts a failed attempt and makes the entry due again after `delay`; false when `lease`
    /// no longer holds it.
    async fn outbox_retry(
        &self,
        id: &str,
        lease: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// Gives the entry up: it leaves the outbox for the failed list, which keeps the newest
    /// `keep`. False when `lease` no longer holds it.
    async fn outbox_fail(
        &self,
        id: &str,
        lease: &str,
        error: &str,
        keep: usize,
    ) -> Result<bool, StoreError>;
    /// Entries given up, newest first.
    async fn outbox_failed(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Entries waiting to be delivered (leased or not).
    async fn outbox_pending(&self) -> Result<u64, StoreError>;

    // Share mail queue (see `crate::admin::shares`): one job per recipient's mail, named
    // `SHARE.LINK`, either due at a time or held under a lease, so that a mail whose sender
    // stopped is sent again by whichever instance leases it next.

    /// Puts `jobs` in the queue held under `lease` (a fresh token) for `hold`, as attempt 1:
    /// the caller sends them now; if it dies, they fall due when the hold runs out. A job
    /// already queued is taken over (a re-send starts a new round of attempts).
    async fn mail_hold(
        &self,
        jobs: &[String],
        lease: &str,
        hold: Duration,
    ) -> Result<(), StoreError>;
    /// Leases up to `limit` due jobs for `hold`: until it runs out no other caller (on any
    /// instance) gets them. Each comes with a fresh lease token and its attempt number, counted
    /// at each lease (so an attempt whose sender died counts too).
    async fn mail_lease(&self, limit: usize, hold: Duration) -> Result<Vec<MailJob>, StoreError>;
    /// Settles a held job: `None` removes it (sent, or given up), `Some(delay)` makes it due
    /// again after `delay`. False when `lease` no longer holds it, and then nothing changes.
    async fn mail_settle(
        &self,
        job: &str,
        lease: &str,
        retry: Option<Duration>,
    ) -> Result<bool, StoreError>;

    // Expiry index (see `crate::share::status::ExpirySweeper`): for each link with an expiry,
    // a time at or before it (Unix ms) when a gateway should look at the link. `create` and
    // `update` write it (before or with the record) whenever a link gets an expiry, a new one,
    // or becomes active again; only the sweeper moves or removes entries.

    /// Links whose entry is at or before `now_ms`, earliest first, at most `limit`, each with
    /// its entry's time.
    async fn expiring(&self, now_ms: u64, limit: usize) -> Result<Vec<(LinkId, u64)>, StoreError>;
    /// Moves a link's entry to `next` (Unix ms), or removes it (`None`), if it is still at
    /// `seen`; false when it moved meanwhile (a change of expiry), and then nothing changes.
    async fn expiry_settle(
        &self,
        id: LinkId,
        seen: u64,
        next: Option<u64>,
    ) -> Result<bool, StoreError>;
}

/// The expiry index time a link written as `after` needs (Unix ms), where `before` is the
/// record it replaces (`None`: a new link): only a link that is active with an expiry, when
/// the expiry or the state changed. Backends write it with or before the record.
pub fn expiry_entry(before: Option<&Link>, after: &Link) -> Option<u64> {
    let at = after.expires_at?;
    if after.state != LinkState::Active {
        return None;
    }
    if let Some(b) = before {
        if b.expires_at == after.expires_at && b.state == after.state {
            return None;
        }
    }
    Some(unix_ms(at))
}

/// Unix milliseconds of `t` (0 before 1970).
pub fn unix_ms(t: time::OffsetDateTime) -> u64 {
    (t.unix_timestamp_nanos() / 1_000_000).clamp(0, i64::MAX as i128) as u64
}

/// One share mail handed out by [`LinkStore::mail_lease`] (or held by [`LinkStore::mail_hold`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailJob {
    /// `SHARE.LINK`: the share and the recipient's link.
    pub id: String,
    /// The lease token this job is held under.
    pub lease: String,
    /// Which attempt this is (1 = the first).
    pub attempt: u32,
}

impl MailJob {
    /// The job name of one recipient's mail.
    pub fn name(share: LinkId, link: LinkId) -> String {
        format!("{share}.{link}")
    }

    /// The share and the link this job mails.
    pub fn parts(&self) -> Option<(LinkId, LinkId)> {
        let (share, link) = self.id.split_once('.')?;
        Some((LinkId::parse(share)?, LinkId::parse(link)?))
    }
}

/// One webhook waiting in the outbox (or given up).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutboxEntry {
    /// The event id, `LINK.SEQ`.
    pub id: String,
    pub event: Event,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// The token of the lease this copy was handed out under (empty when not leased).
    #[serde(default)]
    pub lease: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was given up (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<u64>,
}

/// A fresh lease token.
pub fn lease_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::Document;
    use time::{Duration, OffsetDateTime};

    fn link() -> Link {
        Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k",
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn the_expiry_index_is_written_when_a_link_gets_an_expiry_a_new_one_or_becomes_active() {
        let t = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let plain = link();
        assert_eq!(expiry_entry(None, &plain), None, "no expiry, no entry");
        let mut expiring = link();
        expiring.expires_at = Some(t);
        assert_eq!(expiry_entry(None, &expiring), Some(86_400_000));
        assert_eq!(expiry_entry(Some(&plain), &expiring), Some(86_400_000));
        assert_eq!(
            expiry_entry(Some(&expiring), &expiring),
            None,
            "unchanged: no write (a recipient's device added, a comment)"
        );
        let mut moved = expiring.clone();
        moved.expires_at = Some(t + Duration::seconds(1));
        assert_eq!(expiry_entry(Some(&expiring), &moved), Some(86_401_000));
        let mut off = expiring.clone();
        off.state = LinkState::Deactivated;
        assert_eq!(expiry_entry(Some(&expiring), &off), None);
        assert_eq!(expiry_entry(Some(&off), &expiring), Some(86_400_000));
        assert_eq!(unix_ms(OffsetDateTime::UNIX_EPOCH - Duration::days(1)), 0);
    }
}
