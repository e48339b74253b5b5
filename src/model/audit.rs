//! The audit trail: append-only events per link, chained by SHA-256 so tampering is detectable.
//!
//! Each event carries the hash of the one before it (`prev`) and its own `hash`, computed over its
//! canonical JSON with `hash` empty. `verify` walks a chain and names the first event that does not
//! fit. Admin actions are written as they happen; recipients' events (downloads) are queued in
//! memory and written in batches, off the request path.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::model::hex;
use crate::model::link::LinkId;

/// The `prev` of a link's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is placed in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// e.g. `link.created`, `download.completed`.
    pub kind: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Draft {
    pub fn new(kind: &str, outcome: &str) -> Draft {
        Draft {
            kind: kind.to_string(),
            outcome: outcome.to_string(),
            reason: None,
            actor: None,
            client: None,
            user_agent: None,
            document: None,
            bytes: None,
            detail: None,
            at: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// An event of a request: who asked (address, user agent) as the request said.
    pub fn of_request(
        kind: &str,
        outcome: &str,
        client: Option<String>,
        user_agent: Option<String>,
    ) -> Draft {
        Draft {
            client,
            user_agent,
            ..Draft::new(kind, outcome)
        }
    }
}

/// One event in a link's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub link: LinkId,
    pub seq: u64,
    #[serde(flatten)]
    pub draft: Draft,
    pub prev: String,
    pub hash: String,
}

/// An event as it is hashed: the same JSON as [`Event`] with `hash` empty, without copying it.
#[derive(Serialize)]
struct Unsealed<'a> {
    link: &'a LinkId,
    seq: u64,
    #[serde(flatten)]
    draft: &'a Draft,
    prev: &'a str,
    hash: &'static str,
}

/// The hash of an event: SHA-256 (hex) of its canonical JSON with `hash` empty.
pub fn digest(event: &Event) -> String {
    let unsealed = Unsealed {
        link: &event.link,
        seq: event.seq,
        draft: &event.draft,
        prev: &event.prev,
        hash: "",
    };
    let bytes = serde_json::to_vec(&unsealed).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes))
}

/// Places drafts after `last` (the chain's current tail), sealing each.
pub fn chain(link: LinkId, last: Option<&Event>, drafts: &[Draft]) -> Vec<Event> {
    let (mut seq, mut prev) = match last {
        Some(e) => (e.seq + 1, e.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    drafts
        .iter()
        .map(|d| {
            let mut e = Event {
                link,
                seq,
                draft: d.clone(),
                prev: prev.clone(),
                hash: String::new(),
            };
            e.hash = digest(&e);
            prev = e.hash.clone();
            seq += 1;
            e
        })
        .collect()
}

/// As [`chain`], but straight to each event's stored JSON (with its sequence number): the
/// same bytes as `serde_json::to_vec` of the sealed [`Event`], from one serialization per
/// event and without copying the drafts. (The hashed JSON ends in `"hash":""}`; the stored
/// JSON is the same with the hash filled in.)
pub fn seal(
    link: LinkId,
    last: Option<&Event>,
    drafts: &[Draft],
) -> Result<Vec<(u64, Vec<u8>)>, serde_json::Error> {
    const EMPTY_HASH: &[u8] = b"\"hash\":\"\"}";
    let (mut seq, mut prev) = match last {
        Some(e) => (e.seq + 1, e.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let mut out = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let mut json = serde_json::to_vec(&Unsealed {
            link: &link,
            seq,
            draft,
            prev: &prev,
            hash: "",
        })?;
        let hash = hex::encode(&Sha256::digest(&json));
        if json.ends_with(EMPTY_HASH) {
            json.truncate(json.len() - 2);
            json.extend_from_slice(hash.as_bytes());
            json.extend_from_slice(b"\"}");
        } else {
            json = serde_json::to_vec(&Event {
                link,
                seq,
                draft: draft.clone(),
                prev: prev.clone(),
                hash: hash.clone(),
            })?;
        }
        out.push((seq, json));
        prev = hash;
        seq += 1;
    }
    Ok(out)
}

/// Why a chain does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    #[error("event {seq}: its hash does not match its content")]
    Altered { seq: u64 },
    #[error("event {seq}: it does not follow the event before it")]
    Broken { seq: u64 },
    #[error("event {seq}: sequence gap or reordering")]
    Sequence { seq: u64 },
    #[error("event {seq}: belongs to another link")]
    Foreign { seq: u64 },
}

/// Verifies a chain (possibly with its oldest events removed by retention: then the first event's
/// `prev` is taken as the anchor).
pub fn verify(link: LinkId, events: &[Event]) -> Result<(), ChainError> {
    let mut before: Option<&Event> = None;
    for e in events {
        if e.link != link {
            return Err(ChainError::Foreign { seq: e.seq });
        }
        if digest(e) != e.hash {
            return Err(ChainError::Altered { seq: e.seq });
        }
        match before {
            Some(b) if e.seq != b.seq + 1 => return Err(ChainError::Sequence { seq: e.seq }),
            Some(b) if e.prev != b.hash => return Err(ChainError::Broken { seq: e.seq }),
            None if e.seq == 1 && e.prev != GENESIS => {
                return Err(ChainError::Broken { seq: e.seq })
            }
            _ => {}
        }
        before = Some(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drafts(n: usize) -> Vec<Draft> {
        (0..n)
            .map(|i| Draft {
                kind: format!("k{i}"),
                outcome: "ok".into(),
                ..Draft::new("x", "ok")
            })
            .collect()
    }

    #[test]
    fn a_chain_verifies_and_continues() {
        let id = LinkId::random();
        let first = chain(id, None, &drafts(3));
        assert_eq!(first[0].prev, GENESIS);
        let more = chain(id, first.last(), &drafts(2));
        assert_eq!(more[0].seq, 4);
        let all: Vec<Event> = first.into_iter().chain(more).collect();
        assert_eq!(verify(id, &all), Ok(()));
        assert_eq!(
            verify(id, &all[2..]),
            Ok(()),
            "a pruned head still verifies"
        );
    }

    #[test]
    fn the_hash_covers_exactly_the_event_as_stored() {
        let id = LinkId::random();
        let e = chain(id, None, &drafts(1)).remove(0);
        let mut unsealed = e.clone();
        unsealed.hash.clear();
        let bytes = serde_json::to_vec(&unsealed).unwrap();
        let expected: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(e.hash, expected);
    }

    #[test]
    fn sealed_json_is_exactly_the_stored_event() {
        let id = LinkId::random();
        let mut rich = Draft::new("download.completed", "ok");
        rich.client = Some("192.0.2.1".into());
        rich.user_agent = Some("agent \"quoted\" \u{e9}".into());
        rich.document = Some("a/b.pdf".into());
        rich.bytes = Some(42);
        rich.detail =
            Some(serde_json::json!({ "document": 1, "variant": "original", "status": 200 }));
        let mut drafts = drafts(2);
        drafts.push(rich);
        let first = chain(id, None, &drafts[..1]);
        let events = chain(id, first.last(), &drafts);
        let sealed = seal(id, first.last(), &drafts).unwrap();
        assert_eq!(sealed.len(), events.len());
        for ((seq, json), e) in sealed.iter().zip(&events) {
            assert_eq!(*seq, e.seq);
            assert_eq!(json, &serde_json::to_vec(e).unwrap());
        }
    }

    #[test]
    fn tampering_is_detected() {
        let id = LinkId::random();
        let good = chain(id, None, &drafts(4));
        let mut altered = good.clone();
        altered[1].draft.bytes = Some(1);
        assert_eq!(verify(id, &altered), Err(ChainError::Altered { seq: 2 }));
        let mut removed = good.clone();
        removed.remove(2);
        assert_eq!(verify(id, &removed), Err(ChainError::Sequence { seq: 4 }));
        let mut resealed = good.clone();
        resealed[1].draft.reason = Some("x".into());
        resealed[1].hash = digest(&resealed[1]);
        assert_eq!(verify(id, &resealed), Err(ChainError::Broken { seq: 3 }));
        assert_eq!(
            verify(LinkId::random(), &good),
            Err(ChainError::Foreign { seq: 1 })
        );
    }
}
