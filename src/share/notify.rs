//! The sender's first-download notice (`notify_sender` on a link): one mail, on the link's first
//! completed download, once across every instance and restart.
//!
//! Off the request path: the download's response is already sent when this runs. The store's
//! persistent `tally` decides which completed download is the first (its counter never expires,
//! on either backend), so two instances never both mail; a notice whose mail fails three times is
//! logged and not sent (at most once, never twice).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::model::link::{Link, LinkId};
use crate::share::mail::FirstDownloadMail;

/// Links this process knows were notified already: their later downloads cost no store call.
static NOTIFIED: LazyLock<Mutex<HashSet<LinkId>>> = LazyLock::new(Default::default);

/// Most links remembered in [`NOTIFIED`] (it is cleared when full; the store still decides).
const REMEMBERED: usize = 100_000;

/// The tally that marks a link's notice as taken.
pub fn notice_key(id: &LinkId) -> String {
    format!("notify-sender:{id}")
}

/// Starts the notice for a completed download of `link` (which has `notify_sender`).
pub fn first_download(gate: crate::share::gate::Live, link: Arc<Link>, at: OffsetDateTime) {
    let Some(to) = link.notify_sender.clone() else {
        return;
    };
    if NOTIFIED.lock().contains(&link.id) {
        return;
    }
    tokio::spawn(async move {
        let first = match gate.links.store.tally(&notice_key(&link.id), 1).await {
            Ok(n) => n == 1,
            Err(e) => {
                // The next completed download tries again.
                tracing::warn!(link = %link.id, error = %e, "first-download notice: store unreachable");
                return;
            }
        };
        {
            let mut seen = NOTIFIED.lock();
            if seen.len() >= REMEMBERED {
                seen.clear();
            }
            seen.insert(link.id);
        }
        if !first {
            tracing::info!(link = %link.id, "first-download notice: another download was first");
            return;
        }
        let documents: Vec<String> = link.documents.iter().map(|d| d.filename.clone()).collect();
        let at = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let link_id = link.id.to_string();
        let recipient = link.recipient.as_ref().and_then(|r| r.email.as_deref());
        let mail = FirstDownloadMail {
            to: &to,
            link: &link_id,
            documents: &documents,
            recipient,
            at: &at,
        };
        for attempt in 1..=3u32 {
            match gate.checks.mailer.send_first_download(&mail).await {
                Ok(()) => {
                    tracing::info!(link = %link.id, "first-download notice mailed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(link = %link.id, attempt, error = %e, "first-download notice not mailed");
                    tokio::time::sleep(Duration::from_secs(5 * u64::from(attempt))).await;
                }
            }
        }
        tracing::error!(link = %link.id, "first-download notice given up after three attempts");
    });
}
