//! The shared core that the recipients' proxy and the admin API both use: keys, link store,
//! link cache, usage batching and the configured upstream stores.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::docstore::write::Writer;
use crate::docstore::Store;
use crate::model::link::{Link, LinkId};
use crate::model::policy::{Policy, RestrictedCaller};
use crate::model::token::Keyring;
use crate::share::mail::Mailer;
use crate::share::throttle::PageLimiter;
use crate::share::verify::Verifier;
use crate::state::cache::LinkCache;
use crate::state::keys;
use crate::state::queues::{AuditQueue, Refunds, UsageBatcher};
use crate::state::{LinkStore, StoreError};

pub struct Gate {
    pub keys: Keyring,
    pub store: Arc<dyn LinkStore>,
    pub cache: LinkCache,
    pub usage: UsageBatcher,
    /// Unsent bytes whose refund failed, kept for the next flush.
    pub refunds: Refunds,
    /// The configured document stores by name.
    pub upstreams: BTreeMap<String, Arc<Store>>,
    pub public_url: String,
    pub audit: AuditQueue,
    pub audit_retention: Option<Duration>,
    pub policy: Policy,
    pub admin_token: String,
    pub callers: Vec<RestrictedCaller>,
    pub verifier: Verifier,
    pub mailer: Mailer,
    pub page_limiter: PageLimiter,
    pub writer: Writer,
    /// Legacy nginx `secure_link` URLs the stores accept.
    pub legacy: crate::model::secure_link::LegacyLinks,
}

impl Gate {
    /// The link, from the cache or the store (and then cached). `Ok(None)` for an unknown id.
    pub async fn link(&self, id: LinkId) -> Result<Option<Arc<Link>>, StoreError> {
        if let Some(link) = self.cache.get(&id) {
            return Ok(Some(link));
        }
        self.refresh(id).await
    }

    /// Reads the link from the store, bypassing and then refilling the cache.
    pub async fn refresh(&self, id: LinkId) -> Result<Option<Arc<Link>>, StoreError> {
        match self.store.get(id).await? {
            Some(link) => {
                let link = Arc::new(link);
                self.cache.put(link.clone());
                Ok(Some(link))
            }
            None => Ok(None),
        }
    }

    /// The token of a link (under the key that signed it, if still configured).
    pub fn token_of(&self, link: &Link) -> Option<String> {
        self.keys.sign_with(&link.key_id, &link.id)
    }

    /// The URL to send for a link.
    pub fn url_of(&self, link: &Link) -> Option<String> {
        let token = self.token_of(link)?;
        Some(format!("{}/s/{}", self.public_url, token))
    }

    /// Checks a form's CSRF token (genuine, unexpired, bound to this link and browser) and
    /// spends it: each token is good for one submission, across every instance.
    pub async fn spend_csrf(
        &self,
        token: &str,
        link: &LinkId,
        device: &str,
    ) -> Result<FormToken, StoreError> {
        let Some(nonce) = self.verifier.check_csrf(token, link, device) else {
            return Ok(FormToken::Invalid);
        };
        Ok(
            if self
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
