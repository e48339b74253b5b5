//! `Idempotency-Key` on `POST /v1/links` and `POST /v1/shares`: a create retried after a timeout
//! answers with the first attempt's result instead of making a second link.
//!
//! The key is kept in the link state (so every gateway on one Redis sees it), namespaced by the
//! caller and the endpoint, as a fingerprint of the body (SHA-256) and either `pending` (the first
//! request is being processed) or `done` with the first answer's status and body. The claim is
//! one atomic "store unless present" ([`crate::state::LinkStore::keep_new`], persistent on both
//! backends, so a restart keeps the keys too), so two gateways
//! racing on one key create one link. A request that fails releases the key (nothing was
//! created, and a corrected retry may use it again); a successful answer is kept for
//! `admin.idempotency_hours` (24 by default). See docs/admin-api.md.

use std::future::Future;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use pingora::protocols::http::ServerSession;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::{AdminApi, Caller};

/// How long a claim lasts while its request is processed (a gateway that dies mid-create frees
/// the key after this).
pub const PENDING: Duration = Duration::from_secs(120);
/// Longest key accepted.
pub const MAX_KEY: usize = 255;

/// A body member marking a replayed answer (removed before it is sent; the answer gets
/// `Idempotency-Replayed: true`).
pub(super) const REPLAYED: &str = "\u{0}idempotency-replayed";
pub(super) const REPLAYED_HEADER: &str = "idempotency-replayed";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The link-state key a caller's key is kept under: its own per caller and endpoint.
fn store_key(caller: &Caller, endpoint: &str, key: &str) -> String {
    let who = match caller {
        Caller::Full => "admin".to_string(),
        Caller::Restricted { name, .. } => format!("caller:{name}"),
    };
    let mut h = Sha256::new();
    for part in [who.as_str(), endpoint, key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("idem:{}", hex(&h.finalize()))
}

/// What the link state holds for a key.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    /// SHA-256 of the request body.
    fp: String,
    /// `None` while the first request is processed.
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<Value>,
}

/// The `Idempotency-Key` header: 1 to [`MAX_KEY`] visible ASCII characters.
fn key_of(session: &ServerSession) -> Result<Option<String>, ApiError> {
    let Some(v) = session.req_header().headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY} visible ASCII characters (a UUID is a good key)"),
        )
    };
    let text = v.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() || text.len() > MAX_KEY || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

impl AdminApi {
    /// Reads the body and runs `create` on it once per `Idempotency-Key` (without the header,
    /// every call creates).
    pub(super) async fn idempotent<F, Fut>(
        &self,
        session: &mut ServerSession,
        caller: &Caller,
        endpoint: &str,
        create: F,
    ) -> Result<(StatusCode, Value), ApiError>
    where
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: Future<Output = Result<(StatusCode, Value), ApiError>>,
    {
        let key = key_of(session)?;
        let body = self.read_body(session).await?;
        let Some(key) = key else {
            return create(body).await;
        };
        let store = &self.gate.links.store;
        let slot = store_key(caller, endpoint, &key);
        let fp = hex(&Sha256::digest(&body));
        let claim = serde_json::to_vec(&Entry {
            fp: fp.clone(),
            status: None,
            body: None,
        })
        .unwrap_or_default();
        if let Some(found) = store.keep_new(&slot, &claim, PENDING).await? {
            let entry: Entry = serde_json::from_slice(&found).map_err(|e| {
                tracing::error!(error = %e, "admin: unreadable idempotency entry");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "link store unavailable",
                )
            })?;
            if entry.fp != fp {
                return Err(ApiError::field(
                    "Idempotency-Key",
                    "was used with a different request body: use a new key for a new request",
                )
                .kind("idempotency-key-reused"));
            }
            return match (entry.status, entry.body) {
                (Some(status), Some(Value::Object(mut body))) => {
                    body.insert(REPLAYED.into(), Value::Bool(true));
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                    tracing::info!(endpoint, "admin: idempotent create replayed");
                    Ok((status, Value::Object(body)))
                }
                _ => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    Some("Idempotency-Key"),
                    "a request with this key is still being processed: retry after a moment",
                )
                .kind("idempotency-in-progress")
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))),
            };
        }
        let result = create(body).await;
        match &result {
            Ok((status, body)) => {
                let done = serde_json::to_vec(&Entry {
                    fp,
                    status: Some(status.as_u16()),
                    body: Some(body.clone()),
                })
                .unwrap_or_default();
                if let Err(e) = store
                    .keep_put(&slot, &done, self.gate.admin.idempotency_keep)
                    .await
                {
                    // The link exists; a retry within the pending time gets a 409, after it a
                    // second link. Logged so an operator can tell.
                    tracing::warn!(endpoint, error = %e, "admin: could not keep the idempotent answer");
                }
            }
            Err(_) => {
                // Nothing was created: the key is free again.
                if let Err(e) = store.keep_del(&slot).await {
                    tracing::warn!(endpoint, error = %e, "admin: could not release an idempotency key");
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_per_caller_and_endpoint() {
        let other = Caller::Restricted {
            name: "dms".into(),
            creators: vec![],
        };
        let a = store_key(&Caller::Full, "links", "k1");
        assert_ne!(a, store_key(&other, "links", "k1"));
        assert_ne!(a, store_key(&Caller::Full, "shares", "k1"));
        assert_ne!(a, store_key(&Caller::Full, "links", "k2"));
        assert_eq!(a, store_key(&Caller::Full, "links", "k1"));
    }
}
