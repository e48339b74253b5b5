//! Link state: the `LinkStore` trait every backend implements.
//!
//! A store keeps link records and, per link and generation, the download counter. Counting is a
//! single atomic operation (`reserve`): a slot is granted only while `used < max`, so no amount of
//! concurrency, on any number of gateways, can over-grant. A granted slot carries a ticket:
//! - `commit` (batched by the caller, off the request path) makes it final;
//! - `release` gives it back (the download failed or broke off early);
//! - a ticket neither committed nor released (its gateway died) expires by itself after the
//!   reservation TTL, unless `keep_alive` renews it (long downloads).
//!
//! Unlimited links do not touch the store per request: their usage arrives in batches
//! (`add_usage`). Backends: [`embedded`] (one instance, a redb file) and [`redis`] (many instances).

pub mod embedded;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::link::{Link, LinkId};

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
}

/// A request for one download slot.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    pub id: LinkId,
    pub generation: u64,
    pub max: u64,
    /// Who asks (client address); grants for resumes are kept per client.
    pub client: String,
    /// A Range that does not start at byte 0: it rides on a grant of the same client, if any.
    pub continuation: bool,
    /// How long a grant covers resumes and parallel ranges.
    pub window: Duration,
}

/// Identifies one reserved slot until it is committed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    pub id: LinkId,
    pub generation: u64,
    pub nonce: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A new slot was taken; `used` counts it.
    Granted { used: u64, ticket: Ticket },
    /// A continuation covered by an earlier grant of the same client: nothing was taken.
    Covered,
    /// The limit is reached.
    Exhausted,
    /// The caller's copy of the link is stale (generation or state changed, or it is gone).
    Stale,
}

/// A change to a stored link, applied atomically; returning `Err` leaves the record untouched.
/// It may run more than once (optimistic retries), so it must depend only on the link it gets.
pub type Change = Arc<dyn Fn(&mut Link) -> Result<(), StoreError> + Send + Sync>;

/// Called for each changed link, or with `None` when every cached link must be dropped.
pub type OnChange = Arc<dyn Fn(Option<LinkId>) + Send + Sync>;

#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    async fn create(&self, link: &Link) -> Result<(), StoreError>;
    async fn get(&self, id: LinkId) -> Result<Option<Link>, StoreError>;
    /// Applies `change` to the stored link atomically and returns the new record. Other gateway
    /// instances learn of the change through `follow_changes`.
    async fn update(&self, id: LinkId, change: Change) -> Result<Link, StoreError>;
    async fn reserve(&self, req: &ReserveRequest) -> Result<Reservation, StoreError>;
    /// Makes delivered downloads final (the caller batches them).
    async fn commit(&self, tickets: &[Ticket]) -> Result<(), StoreError>;
    /// Gives a reserved slot back and forgets the client's grant, so a resume counts again —
    /// unless continuations already rode on that grant (a download manager's parallel ranges):
    /// then the slot stays counted, since the download goes on over the other connections.
    async fn release(&self, ticket: Ticket, client: &str) -> Result<(), StoreError>;
    /// Renews reservations of downloads still in flight.
    async fn keep_alive(&self, tickets: &[Ticket]) -> Result<(), StoreError>;
    /// Adds delivered downloads of an unlimited link (batched by the caller).
    async fn add_usage(&self, id: LinkId, generation: u64, n: u64) -> Result<(), StoreError>;
    /// Downloads used in `generation` (reserved slots included).
    async fn usage(&self, id: LinkId, generation: u64) -> Result<u64, StoreError>;
    /// Reports changes made by other gateway instances until the process ends; returns at once
    /// for a backend that only one instance uses.
    async fn follow_changes(&self, on_change: OnChange);
}
