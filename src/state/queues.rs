//! Write-behind queues: what leaves the request path to be written to the link state later —
//! refunds whose write failed, usage of unlimited links, recipients' audit events. Each write
//! carries a [`WriteId`] that its retries repeat, so a write that timed out and still landed is
//! not applied twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::audit::Draft;
use crate::model::link::LinkId;
use crate::state::{LinkStore, StoreError, WriteId};

/// A refund for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: LinkId,
    pub generation: u64,
    pub part: String,
    pub bytes: u64,
    pub own: u64,
    /// Names this refund in the store: its retries carry the same id, so it is applied once.
    pub write: WriteId,
    /// Gives back a block take whose answer was lost: `write` is the take's id, and `bytes` and
    /// `own` are 0. The store gives back what the take reserved if it landed, and voids it if it
    /// lands later. A store whose draws never land after they failed (the embedded one) does
    /// nothing.
    pub take: bool,
}

/// Refunds whose write failed, written again off the request path until the store takes them.
/// They are not merged: a failed write may still have been applied (a timeout), and only its own
/// id lets the store tell.
#[derive(Default)]
pub struct Refunds {
    pending: Mutex<Vec<Refund>>,
}

impl Refunds {
    /// Most refunds waiting: past it new ones are given back to the caller (back-pressure).
    const MAX: usize = 100_000;

    /// Queues a refund to retry; `Err` gives it back when the queue is full.
    pub fn queue(&self, refund: Refund) -> Result<(), Refund> {
        let mut pending = self.pending.lock();
        if pending.len() >= Self::MAX {
            return Err(refund);
        }
        pending.push(refund);
        Ok(())
    }

    /// Writes what waits; what fails to write is kept for the next flush (never dropped).
    pub async fn flush(&self, store: &Arc<dyn LinkStore>) {
        let batch = std::mem::take(&mut *self.pending.lock());
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.refund(&batch).await {
            tracing::warn!(count = batch.len(), error = %e, "giving back unsent bytes failed; will retry");
            let mut pending = self.pending.lock();
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend(newer);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending.lock().is_empty()
    }
}

/// Usage of unlimited links, gathered in memory and written to the store in batches, so that a
/// download of an unlimited link costs no store round trip.
#[derive(Default)]
pub struct UsageBatcher {
    pending: Mutex<HashMap<(LinkId, u64), u64>>,
    /// Batches whose write failed, each retried under its own id (never merged with newer usage).
    failed: Mutex<Vec<(WriteId, LinkId, u64, u64)>>,
}

impl UsageBatcher {
    pub fn record(&self, id: LinkId, generation: u64) {
        *self.pending.lock().entry((id, generation)).or_default() += 1;
    }

    /// Writes what was gathered; what fails to write is kept for the next flush.
    pub async fn flush(&self, store: &Arc<dyn LinkStore>) {
        let retries = std::mem::take(&mut *self.failed.lock());
        let fresh = std::mem::take(&mut *self.pending.lock())
            .into_iter()
            .map(|((id, generation), n)| (WriteId::new(), id, generation, n));
        for (write, id, generation, n) in retries.into_iter().chain(fresh) {
            if let Err(e) = store.add_usage(write, id, generation, n).await {
                tracing::warn!(link = %id, error = %e, "usage flush failed; will retry");
                self.failed.lock().push((write, id, generation, n));
            }
        }
    }
}

/// Events of one link waiting to be written, in order. Once a write of them was tried, they keep
/// its [`WriteId`] and are never merged with newer events: the failed write may still have been
/// applied (a timeout), and only its id lets the store tell.
struct Batch {
    write: Option<WriteId>,
    drafts: Vec<Draft>,
}

/// Recipients' events waiting to be written, per link.
#[derive(Default)]
pub struct AuditQueue {
    pending: Mutex<HashMap<LinkId, Vec<Batch>>>,
    queued: AtomicU64,
    dropped: AtomicU64,
    /// With webhooks configured: the outbox's bound. Notifiable events then enter the outbox in
    /// the same store write as the events themselves.
    outbox: Option<u64>,
}

impl AuditQueue {
    /// Most events held while the store is unreachable; past it new events are dropped (and
    /// counted in the log) rather than memory growing without bound.
    const MAX: u64 = 200_000;

    /// A queue whose writes also fill the webhook outbox (bounded to `max_pending` entries).
    pub fn with_outbox(max_pending: u64) -> AuditQueue {
        AuditQueue {
            outbox: Some(max_pending),
            ..AuditQueue::default()
        }
    }

    pub fn push(&self, link: LinkId, draft: Draft) {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= Self::MAX {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut pending = self.pending.lock();
        let batches = pending.entry(link).or_default();
        match batches.last_mut() {
            Some(last) if last.write.is_none() => last.drafts.push(draft),
            _ => batches.push(Batch {
                write: None,
                drafts: vec![draft],
            }),
        }
    }

    /// Writes the link's queued events and then `now` (an admin event), in order; what is not
    /// written goes back to the queue, ahead of anything queued meanwhile, and is retried.
    pub async fn write_now(
        &self,
        store: &Arc<dyn LinkStore>,
        retention: Option<std::time::Duration>,
        link: LinkId,
        now: Draft,
    ) -> Result<(), StoreError> {
        let mut batches = self.pending.lock().remove(&link).unwrap_or_default();
        self.queued.fetch_add(1, Ordering::Relaxed);
        batches.push(Batch {
            write: None,
            drafts: vec![now],
        });
        self.write(store, retention, link, batches).await
    }

    /// Writes what is queued; a link whose write fails keeps its events for the next flush.
    pub async fn flush(&self, store: &Arc<dyn LinkStore>, retention: Option<std::time::Duration>) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::error!(
                dropped,
                "audit events dropped: the store was unreachable too long"
            );
        }
        let all = std::mem::take(&mut *self.pending.lock());
        for (link, batches) in all {
            if let Err(e) = self.write(store, retention, link, batches).await {
                tracing::warn!(link = %link, error = %e, "writing audit events failed; will retry");
            }
        }
    }

    /// Writes one link's batches in order, stopping at the first failure.
    async fn write(
        &self,
        store: &Arc<dyn LinkStore>,
        retention: Option<std::time::Duration>,
        link: LinkId,
        batches: Vec<Batch>,
    ) -> Result<(), StoreError> {
        let mut left = batches.into_iter();
        while let Some(mut batch) = left.next() {
            let write = *batch.write.get_or_insert_with(WriteId::new);
            let notify = self.outbox.filter(|_| {
                batch
                    .drafts
                    .iter()
                    .any(|d| crate::model::webhook::notifiable(&d.kind))
            });
            let written = match notify {
                // The same write: a durable event never lacks its notification.
                Some(max) => store
                    .append_events_notify(write, link, &batch.drafts, retention, max)
                    .await
                    .map(|left_out| {
                        if left_out > 0 {
                            crate::metrics::metrics().webhooks_left_out.inc_by(left_out);
                            tracing::error!(
                                link = %link,
                                left_out,
                                "webhook outbox full: notifications not queued"
                            );
                        }
                    }),
                None => {
                    store
                        .append_events(write, link, &batch.drafts, retention)
                        .await
                }
            };
            match written {
                Ok(()) => {
                    self.queued
                        .fetch_sub(batch.drafts.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    let mut pending = self.pending.lock();
                    let slot = pending.entry(link).or_default();
                    let newer = std::mem::take(slot);
                    slot.push(batch);
                    slot.extend(left);
                    slot.extend(newer);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
