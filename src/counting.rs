//! What counts as a download, and the batching of usage for unlimited links.
//!
//! The rules (README, "What counts as a download"): HEAD and prefetches never count; a GET that
//! delivers the body counts once; a Range that does not start at byte 0 is a continuation that
//! rides on the same client's grant within the grant window; a Range from byte 0 always counts.
//! A reserved slot is given back when the download fails before most of the body was delivered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use http::{HeaderMap, Method};
use parking_lot::Mutex;

use crate::link::LinkId;
use crate::store::{LinkStore, Ticket};

/// How a request relates to the download counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HEAD: headers only, never counts.
    Head,
    /// A browser prefetch: gets no document and never counts.
    Prefetch,
    /// A GET of the whole body or of a Range starting at byte 0.
    Fresh,
    /// A GET of a Range that does not start at byte 0.
    Continuation,
}

pub fn classify(method: &Method, headers: &HeaderMap) -> Kind {
    if method == Method::HEAD {
        return Kind::Head;
    }
    let is_prefetch = |name: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("prefetch"))
        })
    };
    if is_prefetch("sec-purpose") || is_prefetch("purpose") || is_prefetch("x-moz") {
        return Kind::Prefetch;
    }
    match headers
        .get(http::header::RANGE)
        .and_then(|v| v.to_str().ok())
    {
        Some(range) => match first_range_start(range) {
            Some(0) | None => Kind::Fresh,
            Some(_) => Kind::Continuation,
        },
        None => Kind::Fresh,
    }
}

/// The start of the first range in a `bytes=` Range header; a suffix range (`-N`) starts later
/// than 0 (`Some(u64::MAX)`); `None` when the header is not a valid bytes range (the origin then
/// ignores it and sends the whole body, which is a fresh download).
pub fn first_range_start(range: &str) -> Option<u64> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    if start.is_empty() {
        return if !end.is_empty() && end.bytes().all(|b| b.is_ascii_digit()) {
            Some(u64::MAX)
        } else {
            None
        };
    }
    if !start.bytes().all(|b| b.is_ascii_digit()) || !end.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    start.parse().ok()
}

/// Whether a reserved slot is kept: the response was a success carrying the body and either
/// finished, or broke off after more than half of the expected body was sent.
pub fn keeps_slot(status: u16, finished: bool, sent: u64, expected: Option<u64>) -> bool {
    if !(status == 200 || status == 206) {
        return false;
    }
    if finished {
        return true;
    }
    match expected {
        Some(total) if total > 0 => sent.saturating_mul(2) > total,
        _ => false,
    }
}

/// Usage of unlimited links, gathered in memory and written to the store in batches, so that a
/// download of an unlimited link costs no store round trip.
#[derive(Default)]
pub struct UsageBatcher {
    pending: Mutex<HashMap<(LinkId, u64), u64>>,
}

impl UsageBatcher {
    pub fn record(&self, id: LinkId, generation: u64) {
        *self.pending.lock().entry((id, generation)).or_default() += 1;
    }

    /// Writes what was gathered; what fails to write is kept for the next flush.
    pub async fn flush(&self, store: &Arc<dyn LinkStore>) {
        let batch = std::mem::take(&mut *self.pending.lock());
        for ((id, generation), n) in batch {
            if let Err(e) = store.add_usage(id, generation, n).await {
                tracing::warn!(link = %id, error = %e, "usage flush failed; will retry");
                *self.pending.lock().entry((id, generation)).or_default() += n;
            }
        }
    }
}

/// Reserved slots on their way to final: in flight (renewed so they do not expire while a long
/// download runs) and delivered (committed in batches, off the request path).
#[derive(Default)]
pub struct Settlements {
    in_flight: Mutex<HashSet<Ticket>>,
    delivered: Mutex<Vec<Ticket>>,
}

impl Settlements {
    /// Most delivered tickets kept for retry while the store is unreachable.
    const MAX_PENDING: usize = 100_000;

    pub fn started(&self, ticket: Ticket) {
        self.in_flight.lock().insert(ticket);
    }

    pub fn delivered(&self, ticket: Ticket) {
        self.in_flight.lock().remove(&ticket);
        let mut done = self.delivered.lock();
        if done.len() < Self::MAX_PENDING {
            done.push(ticket);
        }
    }

    pub fn released(&self, ticket: Ticket) {
        self.in_flight.lock().remove(&ticket);
    }

    /// Commits delivered tickets; on failure they are kept for the next flush.
    pub async fn flush(&self, store: &Arc<dyn LinkStore>) {
        let batch = std::mem::take(&mut *self.delivered.lock());
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.commit(&batch).await {
            tracing::warn!(count = batch.len(), error = %e, "committing downloads failed; will retry");
            let mut done = self.delivered.lock();
            let room = Self::MAX_PENDING.saturating_sub(done.len());
            done.extend(batch.into_iter().take(room));
        }
    }

    /// Renews the reservations of downloads still running.
    pub async fn renew(&self, store: &Arc<dyn LinkStore>) {
        let live: Vec<Ticket> = self.in_flight.lock().iter().copied().collect();
        if let Err(e) = store.keep_alive(&live).await {
            tracing::warn!(count = live.len(), error = %e, "renewing reservations failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: Method, headers: &[(&'static str, &'static str)]) -> Kind {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        classify(&method, &map)
    }

    #[test]
    fn classification() {
        assert_eq!(kind(Method::HEAD, &[]), Kind::Head);
        assert_eq!(kind(Method::GET, &[]), Kind::Fresh);
        assert_eq!(
            kind(Method::GET, &[("sec-purpose", "prefetch;prerender")]),
            Kind::Prefetch
        );
        assert_eq!(
            kind(Method::GET, &[("purpose", "prefetch")]),
            Kind::Prefetch
        );
        assert_eq!(kind(Method::GET, &[("range", "bytes=0-99")]), Kind::Fresh);
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=0-9, 50-60")]),
            Kind::Fresh
        );
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=100-")]),
            Kind::Continuation
        );
        assert_eq!(
            kind(Method::GET, &[("range", "bytes=-100")]),
            Kind::Continuation
        );
        assert_eq!(kind(Method::GET, &[("range", "items=5-")]), Kind::Fresh);
        assert_eq!(kind(Method::GET, &[("range", "bytes=x-")]), Kind::Fresh);
    }

    #[test]
    fn slot_keeping() {
        assert!(keeps_slot(200, true, 10, Some(10)));
        assert!(keeps_slot(206, false, 60, Some(100)));
        assert!(!keeps_slot(206, false, 50, Some(100)));
        assert!(!keeps_slot(200, false, 0, None));
        assert!(!keeps_slot(304, true, 0, None));
        assert!(!keeps_slot(502, true, 100, Some(100)));
    }
}
