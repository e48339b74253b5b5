//! Webhooks to the document system: which audit events notify, the payload, how a delivery is
//! signed and verified, and how retries back off. Pure rules; the delivery worker is
//! [`crate::share::webhooks`] and the durable outbox lives in the link store.
//!
//! Every audit event whose kind is in [`KINDS`] becomes one outbox entry, written in the same store
//! write as the event itself. Its id, `LINK.SEQ`, is stable across retries and instances.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::model::audit::Event;
use crate::model::hex;

type HmacSha256 = Hmac<Sha256>;

/// The audit kinds that are delivered as webhooks, under the same names. A link "opened" is each
/// `page.viewed` (the landing page shown) and each `download.started` (a counted download began).
pub const KINDS: &[&str] = &[
    "page.viewed",
    "download.started",
    "download.completed",
    "link.exhausted",
    "link.expired",
    "upload.completed",
    "review.commented",
    "review.decided",
    "password.failed",
    "code.failed",
    "document.changed",
    "document.missing",
    "share.mailed",
];

/// Whether an event of `kind` goes to the outbox.
pub fn notifiable(kind: &str) -> bool {
    KINDS.contains(&kind)
}

/// The header naming the event (the same id as the payload's `id`).
pub const HEADER_ID: &str = "linkgate-webhook-id";
/// The header with the Unix time (seconds) the delivery was signed at.
pub const HEADER_TIMESTAMP: &str = "linkgate-webhook-timestamp";
/// The header with `v1=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`.
pub const HEADER_SIGNATURE: &str = "linkgate-webhook-signature";

/// Shortest secret accepted (bytes).
pub const MIN_SECRET: usize = 16;
/// Longest secret accepted (bytes).
pub const MAX_SECRET: usize = 256;
/// Longest URL accepted (bytes).
pub const MAX_URL: usize = 2048;

/// Where a link's events go: set per link with `webhook` in `POST /v1/links`. The secret is never
/// shown by the API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
    /// Kinds to deliver; absent = every kind in [`KINDS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<hidden>")
            .field("events", &self.events)
            .finish()
    }
}

impl WebhookTarget {
    /// Whether this target takes events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        wants(self.events.as_deref(), kind)
    }

    /// What the API shows: everything but the secret.
    pub fn view(&self) -> Value {
        json!({ "url": self.url, "events": self.events })
    }
}

/// Whether a subscription list (`None` = all) takes `kind`.
pub fn wants(events: Option<&[String]>, kind: &str) -> bool {
    notifiable(kind) && events.is_none_or(|list| list.iter().any(|k| k == kind))
}

/// A webhook URL: `http` or `https`, a host, no credentials, at most [`MAX_URL`] bytes.
pub fn check_url(url: &str) -> Result<http::Uri, String> {
    if url.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "must be an absolute http:// or https:// URL".to_string())?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err("must be an http:// or https:// URL".into()),
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host".into());
    };
    if authority.as_str().contains('@') {
        return Err("must not carry credentials (user@host)".into());
    }
    if authority.host().is_empty() {
        return Err("must name a host".into());
    }
    Ok(uri)
}

/// A signing secret: [`MIN_SECRET`] to [`MAX_SECRET`] bytes, no control characters.
pub fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET || secret.len() > MAX_SECRET {
        return Err(format!(
            "must be {MIN_SECRET} to {MAX_SECRET} bytes (a long random string)"
        ));
    }
    if secret.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// An event subscription list: known kinds only, at least one.
pub fn check_events(events: &[String]) -> Result<(), String> {
    if events.is_empty() {
        return Err("must list at least one event (leave it out for all)".into());
    }
    for e in events {
        if !notifiable(e) {
            return Err(format!(
                "unknown event `{}`; known events: {}",
                e.escape_default(),
                KINDS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The event id: `LINK.SEQ`, the same on every retry and every instance.
pub fn event_id(event: &Event) -> String {
    format!("{}.{}", event.link, event.seq)
}

/// The JSON body delivered for an event (`share`: the share the link belongs to, if any).
pub fn payload(event: &Event, share: Option<&str>) -> Value {
    let d = &event.draft;
    let at =
        d.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    json!({
        "id": event_id(event),
        "type": d.kind,
        "link": event.link,
        "share": share,
        "seq": event.seq,
        "at": at,
        "outcome": d.outcome,
        "reason": d.reason,
        "actor": d.actor,
        "client": d.client,
        "document": d.document,
        "bytes": d.bytes,
        "detail": d.detail,
    })
}

/// The signature header's value: `v1=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(&mac.finalize().into_bytes()))
}

/// What a receiver does: true when one of the header's `v1=` signatures (space or comma
/// separated) is the HMAC of `TIMESTAMP.BODY` (compared in constant time) and the timestamp is
/// within `tolerance` seconds of `now`.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance: i64,
) -> bool {
    let Ok(ts) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now - ts).abs() > tolerance {
        return false;
    }
    let expected = sign(secret, ts, body);
    header
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .any(|candidate| {
            use subtle::ConstantTimeEq;
            candidate.len() == expected.len()
                && bool::from(candidate.as_bytes().ct_eq(expected.as_bytes()))
        })
}

/// How retries are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: std::time::Duration,
    /// No wait is longer.
    pub max: std::time::Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1 = the first): `base · 2^(attempt−1)`,
    /// capped at `max`, then "equal jitter": half of it fixed and half scaled by `jitter`
    /// (0 ≤ jitter < 1), so instances that failed together do not retry together.
    pub fn delay(&self, attempt: u32, jitter: f64) -> std::time::Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let full = self
            .base
            .saturating_mul(1u32.checked_shl(exp.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        full / 2 + (full / 2).mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{chain, Draft};
    use crate::model::link::LinkId;
    use std::time::Duration;

    #[test]
    fn signatures_verify_and_resist_tampering() {
        let secret = b"0123456789abcdef0123";
        let body = br#"{"id":"x.1"}"#;
        let sig = sign(secret, 1_700_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64);
        assert!(verify(secret, "1700000000", body, &sig, 1_700_000_100, 300));
        // Another secret, body or timestamp does not verify.
        assert!(!verify(
            b"another secret!!!",
            "1700000000",
            body,
            &sig,
            1_700_000_000,
            300
        ));
        assert!(!verify(
            secret,
            "1700000000",
            b"{}",
            &sig,
            1_700_000_000,
            300
        ));
        assert!(!verify(
            secret,
            "1700000001",
            body,
            &sig,
            1_700_000_000,
            300
        ));
        // Outside the replay window.
        assert!(!verify(
            secret,
            "1700000000",
            body,
            &sig,
            1_700_000_301,
            300
        ));
        // Several signatures (rotation): any one is enough.
        let both = format!("v1=00 {sig}");
        assert!(verify(
            secret,
            "1700000000",
            body,
            &both,
            1_700_000_000,
            300
        ));
        assert!(!verify(secret, "x", body, &sig, 0, 300));
    }

    #[test]
    fn a_known_vector_matches() {
        // HMAC-SHA256(key="key", "1.The quick brown fox jumps over the lazy dog") computed
        // independently (python hmac).
        let sig = sign(b"key", 1, b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            sig,
            "v1=3ff4d3cc115b639a16dc5b217aa5c89be41d1e4b54efc356d63d0cd2a65b30f1"
        );
    }

    #[test]
    fn backoff_doubles_caps_and_jitters() {
        let b = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(2, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(60));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(60));
        assert_eq!(b.delay(10, 0.0), Duration::from_secs(30));
        for j in [0.0, 0.3, 0.99, f64::NAN, -1.0, 7.0] {
            let d = b.delay(4, j);
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(16),
                "{j}: {d:?}"
            );
        }
    }

    #[test]
    fn urls_secrets_and_events_are_checked() {
        assert!(check_url("https://dms.example.org/hooks/linkgate?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:9000/h").is_ok());
        for bad in [
            "ftp://x.org/",
            "file:///etc/passwd",
            "gopher://x/",
            "/relative",
            "https://user:pw@x.org/",
            "https://x.org/a b",
            "javascript:alert(1)",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_secret("short").is_err());
        assert!(check_secret("a-long-enough-secret").is_ok());
        assert!(check_secret(&"x".repeat(300)).is_err());
        assert!(check_events(&["download.completed".into()]).is_ok());
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["link.created".into()]).is_err());
    }

    #[test]
    fn payloads_carry_a_stable_id_and_the_event() {
        let link = LinkId::random();
        let mut d = Draft::new("review.decided", "ok");
        d.detail = Some(json!({"decision": "approved", "comment": "<b>ok</b>"}));
        let events = chain(link, None, &[Draft::new("page.viewed", "ok"), d]);
        let p = payload(&events[1], Some("sh1"));
        assert_eq!(p["id"], format!("{link}.2"));
        assert_eq!(p["type"], "review.decided");
        assert_eq!(p["share"], "sh1");
        assert_eq!(p["detail"]["comment"], "<b>ok</b>");
        assert!(wants(None, "review.decided"));
        assert!(!wants(None, "link.created"));
        assert!(!wants(Some(&["page.viewed".to_string()]), "review.decided"));
    }
}
