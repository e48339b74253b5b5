//! What the API shows of a link.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::link::Link;
use crate::share::gate::Gate;

/// A strong entity tag of a stored record (a link or a share): a hash of the record as stored,
/// so any change to it, by any gateway, makes a new tag.
pub(crate) fn etag_of<T: serde::Serialize>(record: &T) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

pub(super) fn rfc3339(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

pub(super) fn opt_time(t: Option<OffsetDateTime>) -> Value {
    t.map(rfc3339).unwrap_or(Value::Null)
}

/// What the API shows of a link (never a password hash). `status_since` of an exhausted link
/// is not known here (see [`link_view_at`]).
pub(super) fn link_view(gate: &Gate, link: &Link, downloads_used: u64) -> Value {
    link_view_at(gate, link, downloads_used, None)
}

/// [`link_view`], with the moment the link's generation was first seen exhausted.
pub(super) fn link_view_at(
    gate: &Gate,
    link: &Link,
    downloads_used: u64,
    exhausted_at: Option<OffsetDateTime>,
) -> Value {
    let first = link.documents.first();
    let status = link.status(OffsetDateTime::now_utc(), downloads_used);
    json!({
        "id": link.id,
        "type": link.kind(),
        "has_password": link.password_hash.is_some(),
        "recipient": link.recipient,
        "trusted_devices": link.trusted_devices.len(),
        "url": gate.url_of(link),
        "token": gate.token_of(link),
        "store": link.store,
        "object": first.map(|d| d.object.as_str()),
        "filename": first.map(|d| d.filename.as_str()),
        "documents": link.documents,
        "rights": link.rights,
        "upload": link.upload,
        "uploads_received": link.uploads,
        "state": link.state,
        "status": status,
        "status_since": opt_time(link.status_since(status, exhausted_at)),
        "on_change": link.on_change,
        "watermark": link.watermark,
        "expires_at": opt_time(link.expires_at),
        "max_downloads": link.max_downloads,
        "downloads_used": downloads_used,
        "generation": link.generation,
        "created_by": link.created_by,
        "created_at": rfc3339(link.created_at),
        "cancelled_by": link.cancelled_by,
        "cancelled_at": opt_time(link.cancelled_at),
        "webhook": link.webhook.as_ref().map(|w| w.view()),
        "notify_sender": link.notify_sender,
        "decisions": link.decisions,
        "share": link.share,
        "etag": etag_of(link),
    })
}
