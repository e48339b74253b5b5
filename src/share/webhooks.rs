//! The webhook delivery worker: one per gateway, off the request path.
//!
//! It leases due entries from the outbox in the link store (a lease keeps an entry from every
//! other instance until it runs out, so a crashed instance's entries are retried by another),
//! POSTs each event, signed, to the `[webhooks]` endpoint and to the link's own webhook when
//! they subscribe to its kind, and then marks the entry done (every target answered 2xx), due
//! again after a backoff with jitter, or given up after `max_attempts` (kept in the failed list,
//! `GET /v1/webhooks/failed`). Deliveries are bounded in time (`timeout_seconds`) and in number
//! (`concurrency`); redirects are never followed. See docs/notifications.md.

use std::sync::Arc;
use std::time::Duration;

use pingora::connectors::http::v1::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use tokio::sync::Semaphore;

use crate::config::webhooks::WebhookConfig;
use crate::metrics::metrics;
use crate::model::webhook::{
    check_url, payload, sign, WebhookTarget, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use crate::state::OutboxEntry;

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("bad webhook URL: {0}")]
    Url(String),
    #[error("could not resolve {0}")]
    Resolve(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("answered {0}")]
    Status(u16),
}

/// Delivers the outbox's entries.
pub struct Deliverer {
    /// The gate in force (replaced by a configuration reload).
    gate: crate::share::gate::Live,
    config: Arc<WebhookConfig>,
    connector: Connector,
    slots: Arc<Semaphore>,
    /// The outbox could not be read at the last poll (logged once per outage).
    state: crate::state::outage::WorkerState,
}

impl Deliverer {
    pub fn new(gate: crate::share::gate::Live, config: Arc<WebhookConfig>) -> Arc<Deliverer> {
        let slots = Arc::new(Semaphore::new(config.concurrency));
        Arc::new(Deliverer {
            gate,
            config,
            connector: Connector::new(None),
            slots,
            state: crate::state::outage::WorkerState::new("webhooks"),
        })
    }

    /// Leases what is due, as many as there are free delivery slots, and starts delivering each.
    /// Returns how many it leased.
    pub async fn poll(self: &Arc<Self>) -> usize {
        let free = self.slots.available_permits();
        if free == 0 {
            return 0;
        }
        let entries = match self
            .gate
            .links
            .store
            .outbox_lease(free, self.config.lease())
            .await
        {
            Ok(entries) => {
                self.state.worked();
                entries
            }
            Err(e) => {
                self.state.failed(&e);
                return 0;
            }
        };
        let n = entries.len();
        for entry in entries {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                // Not delivered now: its lease runs out and it is leased again.
                break;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.deliver(entry).await;
                drop(permit);
            });
        }
        n
    }

    /// Refreshes the pending gauge.
    pub async fn gauge(&self) {
        if let Ok(n) = self.gate.links.store.outbox_pending().await {
            metrics()
                .webhooks_pending
                .set(n.min(i64::MAX as u64) as i64);
        }
    }

    /// The targets that take this entry's event, and the share its link belongs to; `Err` when
    /// the link could not be read.
    async fn targets(
        &self,
        entry: &OutboxEntry,
    ) -> Result<(Vec<WebhookTarget>, Option<String>), String> {
        let kind = entry.event.draft.kind.as_str();
        let mut targets = Vec::new();
        if let Some(t) = self.config.target.as_ref().filter(|t| t.wants(kind)) {
            targets.push(t.clone());
        }
        let link = match self.gate.link(entry.event.link).await {
            Ok(link) => link,
            Err(e) => return Err(e.to_string()),
        };
        let share = link.as_ref().and_then(|l| l.share.clone());
        if let Some(t) = link
            .as_ref()
            .filter(|_| self.config.per_link)
            .and_then(|l| l.webhook.as_ref())
            .filter(|t| t.wants(kind))
        {
            targets.push(t.clone());
        }
        Ok((targets, share))
    }

    async fn deliver(&self, entry: OutboxEntry) {
        let store = &self.gate.links.store;
        let failure = match self.targets(&entry).await {
            Err(e) => Some(format!("link unreadable: {e}")),
            Ok((targets, share)) => {
                let body = serde_json::to_vec(&payload(&entry.event, share.as_deref()))
                    .unwrap_or_default();
                let mut failure = None;
                for target in &targets {
                    if let Err(e) = self.post(target, &entry.id, &body).await {
                        let host = target_host(&target.url);
                        tracing::warn!(event = %entry.id, kind = %entry.event.draft.kind, host = %host, attempt = entry.attempts + 1, error = %e, "webhook delivery failed");
                        failure = Some(format!("{host}: {e}"));
                    }
                }
                failure
            }
        };
        // Metrics count what the store took: a test or an operator that sees a count sees it in
        // the store too.
        let m = metrics();
        let (settled, counters): (_, &[&prometheus::IntCounter]) = match failure {
            None => {
                tracing::debug!(event = %entry.id, "webhook delivered");
                (
                    store.outbox_done(&entry.id, &entry.lease).await,
                    &[&m.webhooks_delivered],
                )
            }
            Some(error) => {
                let attempts = entry.attempts.saturating_add(1);
                if attempts >= self.config.max_attempts {
                    tracing::error!(event = %entry.id, kind = %entry.event.draft.kind, attempts, error = %error, "webhook given up");
                    (
                        store
                            .outbox_fail(&entry.id, &entry.lease, &error, self.config.keep_failed)
                            .await,
                        &[&m.webhooks_failed_attempts, &m.webhooks_given_up],
                    )
                } else {
                    let delay = self.config.backoff.delay(attempts, rand::random::<f64>());
                    (
                        store
                            .outbox_retry(&entry.id, &entry.lease, delay, &error)
                            .await,
                        &[&m.webhooks_failed_attempts],
                    )
                }
            }
        };
        match settled {
            Ok(true) => counters.iter().for_each(|c| c.inc()),
            Ok(false) => {
                tracing::warn!(event = %entry.id, "webhook lease ran out before the delivery settled; another attempt follows")
            }
            // The lease runs out and the entry is delivered again (at least once).
            Err(e) => {
                tracing::warn!(event = %entry.id, error = %e, "could not settle a webhook delivery")
            }
        }
    }

    /// One signed POST, bounded by the configured timeout; `Ok` on a 2xx answer.
    pub async fn post(
        &self,
        target: &WebhookTarget,
        id: &str,
        body: &[u8],
    ) -> Result<(), DeliveryError> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.exchange(target, id, body)).await {
            Ok(result) => result,
            Err(_) => Err(DeliveryError::Timeout(timeout)),
        }
    }

    async fn exchange(
        &self,
        target: &WebhookTarget,
        id: &str,
        body: &[u8],
    ) -> Result<(), DeliveryError> {
        let uri = check_url(&target.url).map_err(DeliveryError::Url)?;
        let tls = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addr = tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|_| DeliveryError::Resolve(host.clone()))?
            .next()
            .ok_or_else(|| DeliveryError::Resolve(host.clone()))?;
        let mut peer = HttpPeer::new(addr, tls, bare);
        peer.options.connection_timeout = Some(self.config.timeout);
        peer.options.total_connection_timeout = Some(self.config.timeout);
        peer.options.read_timeout = Some(self.config.timeout);
        peer.options.write_timeout = Some(self.config.timeout);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature = sign(target.secret.as_bytes(), timestamp, body);
        let connect = |e: Box<pingora::Error>| DeliveryError::Connect(e.to_string());
        let mut req = RequestHeader::build("POST", path.as_bytes(), Some(8)).map_err(connect)?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        for (name, value) in [
            ("host", authority),
            ("content-type", "application/json".to_string()),
            ("content-length", body.len().to_string()),
            ("user-agent", "linkgate-webhooks/1".to_string()),
            (HEADER_ID, id.to_string()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_SIGNATURE, signature),
        ] {
            req.insert_header(name, value).map_err(connect)?;
        }
        let (mut session, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(connect)?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(connect)?;
        session.write_body(body).await.map_err(connect)?;
        session.finish_body().await.map_err(connect)?;
        session.read_response().await.map_err(connect)?;
        let status = session.get_status().map(|s| s.as_u16()).unwrap_or(0);
        // The answer's body is not read: the connection is closed, not reused.
        session.shutdown().await;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(DeliveryError::Status(status))
        }
    }
}

/// The host of a URL, for logs (never the path or query, which may carry credentials).
fn target_host(url: &str) -> String {
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string))
        .unwrap_or_default()
}
