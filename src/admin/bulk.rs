//! `POST /v1/links/bulk`: deactivate or cancel every link of an object, of a share, or of a
//! creator in one call (a document deleted or made confidential at the document system).
//!
//! Each link is changed on its own, atomically (the store's change of that one record), and gets
//! its own audit event; links already in the target state (or cancelled, for `deactivate`) are
//! skipped and listed as such. At most [`MAX_BULK`] links are looked at per call: `complete`
//! says whether every link was; the same call again goes on (what was done is skipped).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::model::link::{LinkId, LinkState};
use crate::state::{Change, ListQuery};

use super::bodies::check_identity;
use super::error::ApiError;
use super::handlers::state_change;
use super::{AdminApi, Caller, RequestFacts};

/// Links looked at per call.
pub const MAX_BULK: usize = 10_000;

/// The one selector a bulk call names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Object(String),
    Share(String),
    CreatedBy(String),
}

#[derive(Debug)]
struct BulkBody {
    target: LinkState,
    selector: Selector,
    by: Option<String>,
}

fn parse(mut body: Map<String, Value>) -> Result<BulkBody, ApiError> {
    let target = match body.remove("action") {
        Some(Value::String(a)) if a == "deactivate" => LinkState::Deactivated,
        Some(Value::String(a)) if a == "cancel" => LinkState::Cancelled,
        _ => {
            return Err(ApiError::field(
                "action",
                "is required: \"deactivate\" or \"cancel\"",
            ))
        }
    };
    let mut selectors = Vec::new();
    for name in ["object", "share", "created_by"] {
        match body.remove(name) {
            None => {}
            Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {
                selectors.push(match name {
                    "object" => Selector::Object(v),
                    "share" => Selector::Share(v),
                    _ => Selector::CreatedBy(v),
                })
            }
            Some(_) => {
                return Err(ApiError::field(
                    name,
                    "must be a non-empty string of at most 1024 bytes",
                ))
            }
        }
    }
    let by = match body.remove("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => check_identity("by", Some(b))?,
        Some(_) => return Err(ApiError::field("by", "must be a string")),
    };
    if let Some(unknown) = body.keys().next() {
        return Err(ApiError::field(unknown, "is not a known field"));
    }
    let selector = match <[Selector; 1]>::try_from(selectors) {
        Ok([one]) => one,
        Err(_) => {
            return Err(ApiError::field(
                "object",
                "name exactly one of object, share, created_by",
            ))
        }
    };
    Ok(BulkBody {
        target,
        selector,
        by,
    })
}

impl AdminApi {
    /// The ids of the links a selector names that this caller may see (at most `MAX_BULK + 1`).
    async fn selected(
        &self,
        caller: &Caller,
        selector: &Selector,
    ) -> Result<Vec<LinkId>, ApiError> {
        let creators = match caller {
            Caller::Full => None,
            Caller::Restricted { creators, .. } => Some(creators.clone()),
        };
        if let Selector::Share(id) = selector {
            let share = self.visible_share(caller, id).await?;
            return Ok(share.recipients.iter().map(|r| r.link).collect());
        }
        let mut query = ListQuery {
            creators,
            limit: 500,
            ..ListQuery::default()
        };
        match selector {
            Selector::Object(o) => query.object = Some(o.clone()),
            Selector::CreatedBy(c) => query.created_by = Some(c.clone()),
            Selector::Share(_) => {}
        }
        let mut ids = Vec::new();
        loop {
            let page = self.gate.links.store.list(&query).await?;
            ids.extend(page.links.iter().map(|l| l.id));
            match page.next {
                Some(next) if ids.len() <= MAX_BULK => query.after = Some(next),
                _ => return Ok(ids),
            }
        }
    }

    pub(super) async fn bulk(
        &self,
        body: Map<String, Value>,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let BulkBody {
            target,
            selector,
            by,
        } = parse(body)?;
        let mut ids = self.selected(caller, &selector).await?;
        let complete = ids.len() <= MAX_BULK;
        ids.truncate(MAX_BULK);
        let (kind, action) = match target {
            LinkState::Cancelled => ("link.cancelled", "cancel"),
            _ => ("link.deactivated", "deactivate"),
        };
        let selected = match &selector {
            Selector::Object(o) => json!({ "object": o }),
            Selector::Share(s) => json!({ "share": s }),
            Selector::CreatedBy(c) => json!({ "created_by": c }),
        };
        let (mut changed, mut skipped) = (Vec::new(), Vec::new());
        for id in ids {
            let did = Arc::new(AtomicBool::new(false));
            let (flag, who, creators) = (did.clone(), by.clone(), caller.clone());
            let change: Change = Arc::new(move |link| {
                // The selection was read before; the link is checked again as it is now.
                let wanted = creators.sees(link)
                    && match target {
                        LinkState::Cancelled => link.state != LinkState::Cancelled,
                        _ => link.state == LinkState::Active,
                    };
                flag.store(wanted, Ordering::SeqCst);
                if wanted {
                    state_change(link, target, who.clone())?;
                }
                Ok(())
            });
            match self.change(id, change).await {
                Ok(_) if did.load(Ordering::SeqCst) => {
                    let mut event = origin.event(kind, "ok", by.clone());
                    event.detail = Some(json!({ "bulk": selected }));
                    self.record(id, event).await;
                    changed.push(id);
                }
                Ok(_) => skipped.push(id),
                // A share's link that was never written (an incomplete share).
                Err(e) if e.status == StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(action, selector = %selected, count = changed.len(), skipped = skipped.len(), complete, "admin: bulk action");
        Ok((
            StatusCode::OK,
            json!({
                "action": action,
                "selector": selected,
                "count": changed.len(),
                "ids": changed,
                "skipped": skipped,
                "complete": complete,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn exactly_one_selector_and_a_known_action() {
        let ok = parse(body(
            json!({"action": "cancel", "object": "a.pdf", "by": "dms"}),
        ))
        .unwrap();
        assert_eq!(ok.selector, Selector::Object("a.pdf".into()));
        assert_eq!(ok.target, LinkState::Cancelled);
        for bad in [
            json!({"action": "cancel"}),
            json!({"action": "cancel", "object": "a", "share": "b"}),
            json!({"action": "delete", "object": "a"}),
            json!({"object": "a"}),
            json!({"action": "cancel", "object": ""}),
            json!({"action": "cancel", "object": "a", "extra": 1}),
        ] {
            let e = parse(body(bad.clone())).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
    }
}
