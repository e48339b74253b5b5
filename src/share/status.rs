//! The moments a link became `expired` or `exhausted` (see [`crate::model::status`]), recorded
//! as audit events exactly once per link generation, across instances and restarts.
//!
//! Nothing writes the link record for them: the first instance to notice adds 1 to a tally in
//! the link state (`LinkStore::tally`, atomic and persistent on both backends) and only the one
//! that got 1 queues the event. Expiry is noticed by the [`ExpirySweeper`] every gateway runs
//! (within one `audit.expiry_sweep_seconds` of the instant, from an index by expiry time kept by
//! the link state), or earlier by a recipient's request of the expired link (off the request
//! path: the request is answered first) or an admin read or list of it; its event carries the
//! expiry instant as its time. Exhaustion is noticed when a download that saw
//! the last one counted is delivered (after the response, where the refund is settled) or by an
//! admin read; its time is kept in a second tally and shown as `status_since`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::link::{Link, LinkId, LinkState};
use crate::model::status::Status;
use crate::share::gate::{Gate, Live};
use crate::state::{keys, unix_ms, StoreError};

/// What this instance already knows was recorded (so a link hammered after it expired costs the
/// link state nothing more): tally key → Unix second (0 when only known done).
#[derive(Default)]
pub struct Noted(parking_lot::Mutex<HashMap<String, i64>>);

impl Noted {
    const MAX: usize = 10_000;

    pub(crate) fn get(&self, key: &str) -> Option<i64> {
        self.0.lock().get(key).copied()
    }

    pub(crate) fn put(&self, key: String, at: i64) {
        let mut map = self.0.lock();
        if map.len() >= Noted::MAX {
            map.clear();
        }
        map.insert(key, at);
    }
}

fn at_second(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

impl Gate {
    /// Records `link.expired` or `link.exhausted` if `status` is one of them and nobody recorded
    /// it for this generation yet. Returns when the link became so (`None` for other statuses, or
    /// while another instance is still writing the moment down).
    pub async fn note_status(
        &self,
        link: &Link,
        status: Status,
        downloads_used: u64,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let store = &self.links.store;
        match status {
            Status::Expired => {
                let key = keys::status_expired(link.id, link.generation);
                if self.audit.noted.get(&key).is_none() {
                    if store.tally(&key, 0).await? == 0 && store.tally(&key, 1).await? == 1 {
                        let mut d = Draft::new("link.expired", "ok");
                        if let Some(e) = link.expires_at {
                            d.at = at_second(e);
                        }
                        d.detail = Some(json!({
                            "generation": link.generation,
                            "downloads_used": downloads_used,
                        }));
                        tracing::info!(link = %link.id, generation = link.generation, "link expired");
                        self.audit.push(link.id, d);
                    }
                    self.audit.noted.put(key, 0);
                }
                Ok(link.expires_at)
            }
            Status::Exhausted => {
                let at_key = keys::status_exhausted_at(link.id, link.generation);
                if let Some(at) = self.audit.noted.get(&at_key) {
                    return Ok(OffsetDateTime::from_unix_timestamp(at).ok());
                }
                let mut secs = store.tally(&at_key, 0).await?;
                if secs == 0 {
                    let once = keys::status_exhausted(link.id, link.generation);
                    if store.tally(&once, 1).await? == 1 {
                        let now = at_second(OffsetDateTime::now_utc());
                        secs = store
                            .tally(&at_key, now.unix_timestamp().max(1) as u64)
                            .await?;
                        let mut d = Draft::new("link.exhausted", "ok");
                        d.at = now;
                        d.detail = Some(json!({
                            "generation": link.generation,
                            "downloads_used": downloads_used,
                            "max_downloads": link.max_downloads,
                        }));
                        tracing::info!(link = %link.id, generation = link.generation, downloads_used, "link exhausted");
                        self.audit.push(link.id, d);
                    } else {
                        secs = store.tally(&at_key, 0).await?;
                    }
                }
                let secs = i64::try_from(secs).unwrap_or(0);
                if secs == 0 {
                    return Ok(None);
                }
                self.audit.noted.put(at_key, secs);
                Ok(OffsetDateTime::from_unix_timestamp(secs).ok())
            }
            Status::Active | Status::Deactivated | Status::Cancelled => Ok(None),
        }
    }
}

/// Records expiries as they come, in every gateway: each sweep reads the link state's expiry
/// index up to now (one store call when nothing expired), and for each link found reads the
/// record and either notes `link.expired` through [`Gate::note_status`] (once per generation
/// across instances, by its tally) or moves the entry to the link's real expiry (a link
/// extended since). Instances sweeping together do the same work and record one event.
pub struct ExpirySweeper {
    /// The gate in force.
    gate: Live,
    every: Duration,
    /// The index could not be read at the last sweep (logged once per outage).
    state: crate::state::outage::WorkerState,
}

/// Entries read per store call; a sweep goes on while pages come back full.
const PAGE: usize = 200;
/// Most pages per sweep (the rest waits for the next one).
const PAGES: usize = 50;

impl ExpirySweeper {
    pub fn new(gate: Live, every: Duration) -> ExpirySweeper {
        ExpirySweeper {
            gate,
            every,
            state: crate::state::outage::WorkerState::new("expiry sweep"),
        }
    }

    /// One sweep; returns how many expired links it looked at.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let mut seen = 0;
        for _ in 0..PAGES {
            let now = OffsetDateTime::now_utc();
            let due = self.gate.links.store.expiring(unix_ms(now), PAGE).await?;
            let full = due.len() >= PAGE;
            for (id, at) in due {
                self.one(id, at, now).await?;
                seen += 1;
            }
            if !full {
                break;
            }
        }
        Ok(seen)
    }

    async fn one(&self, id: LinkId, at: u64, now: OffsetDateTime) -> Result<(), StoreError> {
        let store = &self.gate.links.store;
        let link = match store.get(id).await {
            Ok(link) => link,
            Err(StoreError::Corrupt(e)) => {
                tracing::error!(link = %id, error = %e, "expiry sweep: unreadable link record; dropped from the expiry index");
                None
            }
            Err(e) => return Err(e),
        };
        let next = match link {
            None => None,
            Some(link) => match link.expires_at {
                None => None,
                Some(e) if e > now => Some(unix_ms(e)),
                // A deactivated or cancelled link is not expired; reactivating it puts it back.
                Some(_) if link.state != LinkState::Active => None,
                Some(_) => {
                    let used = self.gate.downloads_used(&link).await?;
                    self.gate
                        .note_status(&link, link.status(now, used), used)
                        .await?;
                    None
                }
            },
        };
        if !store.expiry_settle(id, at, next).await? {
            tracing::debug!(link = %id, "expiry index entry moved meanwhile");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for ExpirySweeper {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => match self.sweep().await {
                    Ok(n) => {
                        self.state.worked();
                        if n > 0 {
                            tracing::debug!(links = n, "expiry sweep");
                        }
                    }
                    Err(e) => {
                        self.state.failed(&e);
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
