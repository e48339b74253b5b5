//! Identify a legacy link: a URL in one of nginx's `secure_link` formats (the rules are
//! [`crate::model::secure_link`]) becomes the link record it stands for, created on first use.

use time::OffsetDateTime;

use crate::model::link::LinkId;
use crate::model::secure_link::Request;
use crate::share::gate::Gate;
use crate::state::StoreError;

/// The proxy's hook: `None` when the request is not a legacy URL; otherwise the link id to admit
/// (its record created on first use) or the status to answer (404 uniform, 503 store down).
pub async fn resolve(
    gate: &Gate,
    path: &str,
    query: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Option<Result<LinkId, u16>> {
    // Native links never pay for this: no prefix may lie under /s/.
    if gate.links.legacy.is_empty() || path.starts_with("/s/") {
        return None;
    }
    let client = client.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    let req = Request {
        path,
        query,
        remote_addr: &client,
    };
    let (rule, verdict) = gate.links.legacy.check(&req)?;
    let legacy = match verdict {
        Ok(legacy) => legacy,
        Err(refusal) => {
            tracing::info!(store = %rule.store, ?refusal, "legacy secure_link refused");
            return Some(Err(404));
        }
    };
    let now = OffsetDateTime::now_utc();
    if legacy.expires.is_some_and(|e| e < now.unix_timestamp()) {
        // Expired: a record made earlier records the refusal; none is made now.
        return Some(Ok(legacy.id));
    }
    match gate.link(legacy.id).await {
        Ok(Some(_)) => Some(Ok(legacy.id)),
        Ok(None) => match gate.links.store.create(&rule.record(&legacy, now)).await {
            Ok(()) | Err(StoreError::Exists(_)) => {
                tracing::info!(link = %legacy.id, store = %rule.store, "legacy secure_link seen first");
                Some(Ok(legacy.id))
            }
            Err(e) => {
                tracing::error!(link = %legacy.id, error = %e, "link store failed creating a legacy link");
                Some(Err(503))
            }
        },
        Err(e) => {
            tracing::error!(link = %legacy.id, error = %e, "link store failed");
            Some(Err(503))
        }
    }
}
