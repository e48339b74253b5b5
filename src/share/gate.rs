//! The shared core that the recipients' listener and the admin API both use, grouped by concern:
//! links (keys, link state, cache), document stores, counting's and the audit trail's
//! write-behind, the recipients' checks, the policy and admin access.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::docstore::write::Writer;
use crate::docstore::DocStore;
use crate::model::link::{Link, LinkId};
use crate::model::policy::{Policy, RestrictedCaller};
use crate::model::token::Keyring;
use crate::share::mail::Mailer;
use crate::share::throttle::PageLimiter;
use crate::share::verify::Verifier;
use crate::state::cache::LinkCache;
use crate::state::keys;
use crate::state::queues::{AuditQueue, Refund, Refunds, UsageBatcher};
use crate::state::{LinkStore, StoreError};

/// What every step of a request shares, grouped by concern.
pub struct Gate {
    /// How tokens name links and where links live.
    pub links: Links,
    /// The configured document stores by name.
    pub docstores: BTreeMap<String, Arc<DocStore>>,
    /// Uploads' writes to document stores.
    pub writer: Writer,
    /// Counting's writes that leave the request path (shared by every gate a reload builds).
    pub counting: Arc<Counting>,
    /// The recipients' audit events waiting to be written, and how long events are kept.
    pub audit: Audit,
    /// The checks that stand between a recipient and a document.
    pub checks: Checks,
    /// The operator's rules for links.
    pub policy: Policy,
    /// Who may call the admin API.
    pub admin: AdminAccess,
    /// `[webhooks]`, when configured (the delivery worker and per-link webhooks need it).
    pub webhooks: Option<Arc<crate::config::webhooks::WebhookConfig>>,
}

/// Links: the keys that sign and verify tokens, the link state, its in-process cache, the legacy
/// nginx URLs the stores accept, and the public URL links are sent under.
pub struct Links {
    pub keys: Keyring,
    pub store: Arc<dyn LinkStore>,
    pub cache: LinkCache,
    pub legacy: crate::model::secure_link::LegacyLinks,
    pub public_url: String,
}

/// Write-behind of counting: usage of unlimited links, refunds whose write failed; and this
/// instance's blocks of downloads.
#[derive(Default)]
pub struct Counting {
    pub usage: UsageBatcher,
    pub refunds: Refunds,
    pub blocks: crate::share::count::Blocks,
}

impl Counting {
    /// Queues a refund for the housekeeper to write (off the request path).
    pub fn queue_refund(&self, refund: Refund) {
        if let Err(refund) = self.refunds.queue(refund) {
            // Forgetting it only leaves the bytes drawn: the link gives out less, never more.
            tracing::error!(link = %refund.id, bytes = refund.bytes, "refund queue full; unsent bytes stay drawn");
        }
    }
}

/// The audit trail's queue and retention.
pub struct Audit {
    /// Shared by every gate a reload builds.
    pub queue: Arc<AuditQueue>,
    pub retention: Option<Duration>,
    /// Status events this instance knows were recorded (see [`crate::share::status`]).
    pub noted: crate::share::status::Noted,
}

impl Audit {
    /// Queues a recipient's event (written in order, off the request path).
    pub fn push(&self, link: LinkId, draft: crate::model::audit::Draft) {
        self.queue.push(link, draft);
    }
}

/// Passwords, codes, cookies and form tokens; code mail; the pages' rate limit.
pub struct Checks {
    pub verifier: Verifier,
    pub mailer: Mailer,
    pub page_limiter: PageLimiter,
}

/// The admin API's bearer token and the callers restricted to some creators.
pub struct AdminAccess {
    pub token: String,
    pub callers: Vec<RestrictedCaller>,
    /// How long a create's answer is kept for its `Idempotency-Key`.
    pub idempotency_keep: std::time::Duration,
}

/// The gate in force. A configuration reload builds a new [`Gate`] (sharing the link store and
/// the write-behind queues with the old one) and puts it in place: requests that start later
/// use it. A running request keeps the link, document-store connection and draw it was admitted
/// with; its later phases (logging, refunds, events) read the gate in force, which shares the
/// link store and queues, so nothing it still has to write is lost.
///
/// A replaced gate is never freed: it is leaked on purpose (one per reload, a few kilobytes plus
/// its stores' connection pools), so that a `&Gate` taken from here stays valid for as long as
/// any request holds it, with one atomic load per use and no reference count on the hot path.
#[derive(Clone)]
pub struct Live(Arc<std::sync::atomic::AtomicPtr<Gate>>);

impl Live {
    pub fn new(gate: Gate) -> Live {
        Live(Arc::new(std::sync::atomic::AtomicPtr::new(Box::into_raw(
            Box::new(gate),
        ))))
    }

    /// The gate in force now.
    pub fn current(&self) -> &'static Gate {
        let gate = self.0.load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: every pointer stored here comes from `Box::into_raw` (in `new` and `replace`)
        // and is never freed or written through, so it stays valid and immutable for the life
        // of the process.
        unsafe { &*gate }
    }

    /// Puts `gate` in force for the requests that start from now on.
    pub fn replace(&self, gate: Gate) {
        let gate = Box::into_raw(Box::new(gate));
        // The old gate is leaked, not freed: see the type's doc.
        self.0.store(gate, std::sync::atomic::Ordering::Release);
    }
}

impl std::ops::Deref for Live {
    type Target = Gate;

    fn deref(&self) -> &Gate {
        self.current()
    }
}

impl Gate {
    /// The link, from the cache or the store (and then cached). `Ok(None)` for an unknown id.
    pub async fn link(&self, id: LinkId) -> Result<Option<Arc<Link>>, StoreError> {
        if let Some(link) = self.links.cache.get(&id) {
            return Ok(Some(link));
        }
        self.refresh(id).await
    }

    /// The link's downloads as shown (admin API, landing pages, status): the store's count less
    /// the downloads this instance's blocks reserved and did not hand out yet.
    pub async fn downloads_used(&self, link: &Link) -> Result<u64, StoreError> {
        let used = self.links.store.usage(link.id, link.generation).await?;
        Ok(used.saturating_sub(self.counting.blocks.reserved(link.id, link.generation)))
    }

    /// Reads the link from the store, bypassing and then refilling the cache.
    pub async fn refresh(&self, id: LinkId) -> Result<Option<Arc<Link>>, StoreError> {
        match self.links.store.get(id).await? {
            Some(link) => {
                let link = Arc::new(link);
                self.links.cache.put(link.clone());
                Ok(Some(link))
            }
            None => Ok(None),
        }
    }

    /// The token of a link (under the key that signed it, if still configured).
    pub fn token_of(&self, link: &Link) -> Option<String> {
        self.links.keys.sign_with(&link.key_id, &link.id)
    }

    /// The URL to send for a link.
    pub fn url_of(&self, link: &Link) -> Option<String> {
        let token = self.token_of(link)?;
        Some(format!("{}/s/{}", self.links.public_url, token))
    }

    /// Checks a form's CSRF token (genuine, unexpired, bound to this link and browser) and
    /// spends it: each token is good for one submission, across every instance.
    pub async fn spend_csrf(
        &self,
        token: &str,
        link: &LinkId,
        device: &str,
    ) -> Result<FormToken, StoreError> {
        let Some(nonce) = self.checks.verifier.check_csrf(token, link, device) else {
            return Ok(FormToken::Invalid);
        };
        Ok(
            if self
                .links
                .store
                .once(&keys::form_token(nonce), CSRF_MEMORY)
                .await?
            {
                FormToken::Fresh
            } else {
                FormToken::Spent
            },
        )
    }
}

/// How long a spent form token is remembered (longer than a token lives).
const CSRF_MEMORY: Duration = Duration::from_secs(3600);

/// What a form's CSRF token turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormToken {
    /// Genuine and used now for the first time.
    Fresh,
    /// Forged, expired, or for another link or browser.
    Invalid,
    /// Genuine but already used.
    Spent,
}
