//! What each admin call does with the link state, once routing and auth let it through.

use std::sync::Arc;

use http::StatusCode;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::link::{Document, Link, LinkId, LinkState};
use crate::model::policy::Proposed;
use crate::model::status::Status;
use crate::share::verify::hash_password;
use crate::state::{Change, ListQuery, StoreError};

use super::bodies::{
    check_identity, check_policy, parse_link_body, parse_patch_body, LinkBody, PatchBody,
};
use super::error::ApiError;
use super::views::{link_view, link_view_at, opt_time, rfc3339};
use super::{AdminApi, Caller, RequestFacts};

impl AdminApi {
    /// The link as the API shows it, with its status; an expired or exhausted link that nobody
    /// noticed yet gets its status event recorded now (once, see [`crate::share::status`]).
    pub(super) async fn view(&self, link: &Link) -> Result<Value, ApiError> {
        let used = self.gate.downloads_used(link).await?;
        let status = link.status(OffsetDateTime::now_utc(), used);
        let exhausted_at = match self.gate.note_status(link, status, used).await {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!(link = %link.id, status = %status, error = %e, "could not record the link's status event");
                None
            }
        };
        Ok(link_view_at(&self.gate, link, used, exhausted_at))
    }

    /// Records an admin event now, after the link's queued recipient events so the chain stays in
    /// order; if the store refuses, everything goes back to the queue and is retried.
    pub(super) async fn record(&self, id: LinkId, draft: Draft) {
        if let Err(e) = self
            .gate
            .audit
            .queue
            .write_now(&self.gate.links.store, self.gate.audit.retention, id, draft)
            .await
        {
            tracing::warn!(link = %id, error = %e, "audit events queued for retry");
        }
    }

    /// The link, if it exists and this caller may see it.
    pub(super) async fn visible(&self, caller: &Caller, id: LinkId) -> Result<Link, ApiError> {
        match self.gate.links.store.get(id).await? {
            Some(link) if caller.sees(&link) => Ok(link),
            _ => Err(ApiError::not_found()),
        }
    }

    /// Size, `ETag` and `Last-Modified` of every document and rendition, asked of the origin all
    /// at once (the validators let a `refuse` link serve only this version).
    pub(super) async fn fill_meta(&self, store: &str, documents: &mut [Document]) {
        let mut asks = Vec::new();
        for d in documents.iter() {
            asks.push(self.object_meta(store, &d.object));
            for r in d.renditions.values() {
                asks.push(self.object_meta(store, &r.object));
            }
        }
        let mut metas = futures_util::future::join_all(asks).await.into_iter();
        for d in documents.iter_mut() {
            let m = metas.next().flatten().unwrap_or_default();
            (d.size, d.etag, d.last_modified) = (m.size, m.etag, m.last_modified);
            for r in d.renditions.values_mut() {
                let m = metas.next().flatten().unwrap_or_default();
                (r.size, r.etag, r.last_modified) = (m.size, m.etag, m.last_modified);
            }
        }
    }

    /// The object's size and validators from the origin (a HEAD, bounded to two seconds); `None`
    /// when the origin does not say (the landing page then shows no size, and a `refuse` link
    /// has nothing to compare with).
    pub(super) async fn object_meta(
        &self,
        store: &str,
        object: &str,
    ) -> Option<crate::docstore::ObjectMeta> {
        self.gate.docstores.get(store)?.meta_of(object).await
    }

    pub(super) async fn create(
        &self,
        body: Vec<u8>,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let body = super::bodies::json_object(&body)?;
        let now = OffsetDateTime::now_utc();
        let link = self.new_link(body, caller, now, None).await?;
        self.store_new_link(&link, origin).await?;
        Ok((StatusCode::CREATED, link_view(&self.gate, &link, 0)))
    }

    /// A link built from a `POST /v1/links` body and checked (body, store, caller, policy), not
    /// stored yet: what `POST /v1/links` and each recipient of `POST /v1/shares` run. `like`, a
    /// link just built from the same body but for another recipient, lends its password hash
    /// and its documents (sizes as the origin told them), so a share hashes and asks once.
    pub(super) async fn new_link(
        &self,
        body: serde_json::Map<String, Value>,
        caller: &Caller,
        now: OffsetDateTime,
        like: Option<&Link>,
    ) -> Result<Link, ApiError> {
        let LinkBody {
            store,
            mut documents,
            upload,
            expires_at,
            max_downloads,
            rights,
            created_by,
            password,
            recipient,
            on_change,
            watermark,
            webhook,
            notify_sender,
        } = parse_link_body(body, now)?;
        if let Some(hook) = &webhook {
            let Some(config) = self.gate.webhooks.as_ref().filter(|w| w.per_link) else {
                return Err(ApiError::field(
                    "webhook",
                    "per-link webhooks are not enabled in this gateway's configuration ([webhooks] per_link)",
                ));
            };
            let host = hook
                .url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_default();
            if !config.host_allowed(host.trim_start_matches('[').trim_end_matches(']')) {
                return Err(ApiError::field(
                    "webhook.url",
                    "names a host that [webhooks] allowed_hosts does not list",
                ));
            }
        }
        if !self.gate.docstores.contains_key(&store) {
            return Err(ApiError::field(
                "store",
                format!("no store named `{store}` is configured"),
            ));
        }
        if let Caller::Restricted { creators, name } = caller {
            match &created_by {
                Some(c) if creators.contains(c) => {}
                _ => {
                    return Err(ApiError::field(
                        "created_by",
                        format!(
                            "caller `{name}` may create links only for: {}",
                            creators.join(", ")
                        ),
                    ))
                }
            }
        }
        let proposed = Proposed {
            password: password.as_deref(),
            has_password: password.is_some(),
            expires_at,
            max_downloads,
            rights: &rights,
            upload: upload.as_ref(),
        };
        self.gate
            .policy
            .check(&proposed, now)
            .map_err(|v| ApiError::field(v.field, v.message))?;
        let password_hash = match (&password, like) {
            (Some(_), Some(twin)) if twin.password_hash.is_some() => twin.password_hash.clone(),
            (Some(p), _) => Some(hash_password(p).await.map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, e.to_string())
            })?),
            (None, _) => None,
        };
        match like {
            Some(twin) if twin.documents.len() == documents.len() => {
                documents = twin.documents.clone()
            }
            _ => self.fill_meta(&store, &mut documents).await,
        }
        let mut link = Link::with_documents(
            &store,
            documents,
            self.gate.links.keys.signing_key_id(),
            now,
        );
        link.rights = rights;
        link.upload = upload;
        link.expires_at = expires_at;
        link.max_downloads = max_downloads;
        link.created_by = created_by.clone();
        link.password_hash = password_hash;
        link.recipient = recipient;
        link.on_change = on_change;
        link.watermark = watermark;
        link.webhook = webhook;
        link.notify_sender = notify_sender;
        Ok(link)
    }

    /// Stores a link [`Self::new_link`] built and records its `link.created` event.
    pub(super) async fn store_new_link(
        &self,
        link: &Link,
        origin: &RequestFacts,
    ) -> Result<(), ApiError> {
        self.gate.links.store.create(link).await?;
        tracing::info!(link = %link.id, store = %link.store, share = ?link.share, "link created");
        let mut event = origin.event("link.created", "ok", link.created_by.clone());
        event.document = link.documents.first().map(|d| d.object.clone());
        event.detail = Some(json!({
            "expires_at": opt_time(link.expires_at),
            "max_downloads": link.max_downloads,
            "rights": link.rights,
            "documents": link.documents.iter().map(|d| d.object.as_str()).collect::<Vec<_>>(),
            "upload_folder": link.upload.as_ref().map(|u| u.folder.as_str()),
            "share": link.share,
            "on_change": link.on_change,
            "watermark": link.watermark,
        }));
        self.record(link.id, event).await;
        Ok(())
    }

    pub(super) async fn patch(
        &self,
        session: &mut ServerSession,
        caller: &Caller,
        origin: &RequestFacts,
        id: LinkId,
    ) -> Result<(StatusCode, Value), ApiError> {
        let body = self.read_json_object(session).await?;
        let now = OffsetDateTime::now_utc();
        let PatchBody {
            expires_at,
            max_downloads,
            filename,
            changed_by,
            password,
            on_change,
            watermark,
            recipient,
        } = parse_patch_body(body, now)?;
        if let Some(Some(p)) = &password {
            let proposed = Proposed {
                password: Some(p),
                has_password: true,
                expires_at: None,
                max_downloads: None,
                rights: &[],
                upload: None,
            };
            if let Err(v) = self.gate.policy.check(&proposed, now) {
                if v.field == "password" {
                    return Err(ApiError::field(v.field, v.message));
                }
            }
        }
        // Hashed before the change is applied, off the runtime; `Some(None)` removes the password.
        let new_hash: Option<Option<String>> = match &password {
            Some(Some(p)) => Some(Some(hash_password(p).await.map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, e.to_string())
            })?)),
            Some(None) => Some(None),
            None => None,
        };
        self.visible(caller, id).await?;
        let policy = self.gate.policy.clone();
        let (exp, max, name, hash) = (expires_at, max_downloads, filename.clone(), new_hash);
        let new_recipient = recipient.clone();
        let if_match = origin.if_match.clone();
        let change: Change = Arc::new(move |link: &mut Link| {
            check_if_match(if_match.as_ref(), link)?;
            if link.state == LinkState::Cancelled {
                return Err(StoreError::Refused(
                    "a cancelled link cannot be changed".into(),
                ));
            }
            let mut bump = false;
            if let Some(e) = exp {
                bump |= link.expires_at != e;
                link.expires_at = e;
            }
            if let Some(m) = max {
                bump |= link.max_downloads != m;
                link.max_downloads = m;
            }
            let limits_changed = bump;
            if let Some(n) = &name {
                if let Some(d) = link.documents.first_mut() {
                    d.filename = n.clone();
                }
            }
            if let Some(h) = &hash {
                // Any password change logs every browser out (their cookies name the generation).
                bump = true;
                link.password_hash = h.clone();
            }
            if let Some(p) = on_change {
                link.on_change = p;
            }
            if let Some(w) = watermark {
                link.watermark = w;
            }
            if let Some(r) = &new_recipient {
                apply_recipient(link, r);
            }
            check_policy(&policy, link, now)?;
            if limits_changed {
                // An expiry or limit change may make the link active again (or not): its
                // status is dated from now.
                link.status_changed_at = Some(now);
            }
            if bump {
                // The counter restarts at zero and old password cookies stop working.
                link.generation += 1;
            }
            Ok(())
        });
        let (before, old_email) = self
            .gate
            .links
            .store
            .get(id)
            .await?
            .map(|l| (l.generation, l.recipient.and_then(|r| r.email)))
            .unwrap_or((0, None));
        let result = self.change(id, change).await;
        let mut fields = Vec::new();
        if expires_at.is_some() {
            fields.push("expires_at");
        }
        if max_downloads.is_some() {
            fields.push("max_downloads");
        }
        if filename.is_some() {
            fields.push("filename");
        }
        if password.is_some() {
            fields.push("password");
        }
        if on_change.is_some() {
            fields.push("on_change");
        }
        if watermark.is_some() {
            fields.push("watermark");
        }
        if recipient.is_some() {
            fields.push("recipient");
        }
        match result {
            Ok(link) => {
                let new_email = link.recipient.as_ref().and_then(|r| r.email.as_deref());
                if recipient.is_some() && old_email.is_some() && new_email != old_email.as_deref() {
                    // A code mailed to a previous address must not verify anyone any more.
                    if let Err(e) = self
                        .gate
                        .links
                        .store
                        .kv_del(&crate::state::keys::code(id))
                        .await
                    {
                        tracing::warn!(link = %id, error = %e, "could not drop the link's current code");
                    }
                }
                let mut event = origin.event("link.changed", "ok", changed_by);
                event.detail = Some(
                    json!({ "fields": fields, "generation": link.generation, "counter_reset": link.generation != before }),
                );
                self.record(id, event).await;
                Ok((StatusCode::OK, self.view(&link).await?))
            }
            Err(e) => {
                let mut event = origin.event("link.changed", "refused", changed_by);
                event.reason = Some(e.message.clone());
                event.detail = Some(json!({ "fields": fields }));
                self.record(id, event).await;
                Err(e)
            }
        }
    }

    pub(super) async fn change(&self, id: LinkId, change: Change) -> Result<Link, ApiError> {
        let result = self.gate.links.store.update(id, change).await;
        self.gate.links.cache.invalidate(&id);
        Ok(result?)
    }

    /// Deactivate, activate or cancel.
    pub(super) async fn set_state(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
        id: LinkId,
        target: LinkState,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.visible(caller, id).await?;
        let by = check_identity(
            "by",
            origin
                .query
                .get("by")
                .or_else(|| origin.query.get("cancelled_by"))
                .cloned(),
        )?;
        let kind = match target {
            LinkState::Active => "link.activated",
            LinkState::Deactivated => "link.deactivated",
            LinkState::Cancelled => "link.cancelled",
        };
        let who = by.clone();
        let if_match = origin.if_match.clone();
        let change: Change = Arc::new(move |link: &mut Link| {
            check_if_match(if_match.as_ref(), link)?;
            state_change(link, target, who.clone())
        });
        match self.change(id, change).await {
            Ok(link) => {
                self.record(id, origin.event(kind, "ok", by)).await;
                Ok((StatusCode::OK, self.view(&link).await?))
            }
            Err(e) => {
                let mut event = origin.event(kind, "refused", by);
                event.reason = Some(e.message.clone());
                self.record(id, event).await;
                Err(e)
            }
        }
    }

    pub(super) async fn list(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let q = &origin.query;
        for key in q.keys() {
            if ![
                "object",
                "store",
                "created_by",
                "state",
                "status",
                "limit",
                "after",
                "cursor",
            ]
            .contains(&key.as_str())
            {
                return Err(ApiError::field(key, "is not a known query parameter (object, store, created_by, state, status, limit, cursor, after)"));
            }
        }
        let status = match q.get("status").map(String::as_str) {
            None => None,
            Some(text) => Some(Status::parse(text).ok_or_else(|| {
                ApiError::field(
                    "status",
                    "must be one of active, expired, exhausted, deactivated, cancelled",
                )
            })?),
        };
        let state = match q.get("state").map(String::as_str) {
            None => None,
            Some("active") => Some(LinkState::Active),
            Some("deactivated") => Some(LinkState::Deactivated),
            Some("cancelled") => Some(LinkState::Cancelled),
            Some(_) => {
                return Err(ApiError::field(
                    "state",
                    "must be one of active, deactivated, cancelled",
                ))
            }
        };
        let limit = page_limit(q)?;
        if let (Some(state), Some(status)) = (state, status) {
            if state != status.state() {
                return Err(ApiError::field(
                    "status",
                    format!("no link is {status} with state {state:?}").to_lowercase(),
                ));
            }
        }
        let query = ListQuery {
            object: q.get("object").cloned(),
            store: q.get("store").cloned(),
            created_by: q.get("created_by").cloned(),
            // The stored state narrows the walk; the status needs the counters and the clock.
            state: state.or(status.map(|s| s.state())),
            creators: match caller {
                Caller::Full => None,
                Caller::Restricted { creators, .. } => Some(creators.clone()),
            },
            after: cursor_after(q)?,
            limit,
        };
        let page = self.gate.links.store.list(&query).await?;
        let mut links = Vec::with_capacity(page.links.len());
        for link in &page.links {
            let view = self.view(link).await?;
            if status.is_none_or(|s| view["status"] == s.as_str()) {
                links.push(view);
            }
        }
        Ok((
            StatusCode::OK,
            json!({ "links": links, "next_cursor": next_cursor(&page.next), "next": page.next }),
        ))
    }

    pub(super) async fn events(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
        id: LinkId,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.visible(caller, id).await?;
        for key in origin.query.keys() {
            if !["limit", "after", "cursor"].contains(&key.as_str()) {
                return Err(ApiError::field(
                    key,
                    "is not a known query parameter (limit, cursor, after)",
                ));
            }
        }
        // The events' cursor is the last sequence number seen, in decimal (as `after`); both
        // are checked, and the cursor wins.
        let mut after = 0;
        for name in ["after", "cursor"] {
            if let Some(a) = origin.query.get(name) {
                after = a
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= MAX_SEQ)
                    .ok_or_else(|| {
                        ApiError::field(
                            name,
                            "must be an event sequence number (the next_cursor of a previous page)",
                        )
                    })?;
            }
        }
        let limit = match origin.query.get("limit") {
            None => 200,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ApiError::field(
                        "limit",
                        "must be a whole number from 1 to 1000",
                    ))
                }
            },
        };
        let events = self.gate.links.store.events(id, after, limit).await?;
        let next = (events.len() == limit)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok((
            StatusCode::OK,
            json!({
                "link": id,
                "events": events,
                "next_cursor": next.map(|n| n.to_string()),
                "next": next,
            }),
        ))
    }
}

/// Refuses the change (a 412) when `If-Match` names another version of the link than the one
/// the store holds now: checked inside the store's atomic change, so no write can come between.
pub(super) fn check_if_match(
    if_match: Option<&super::IfMatch>,
    link: &Link,
) -> Result<(), StoreError> {
    match if_match {
        Some(m) if !m.matches(&super::views::etag_of(link)) => {
            Err(StoreError::Refused(super::error::STALE.into()))
        }
        _ => Ok(()),
    }
}

/// Moves a link to `target` (deactivate, activate, cancel); a cancelled link stays cancelled.
pub(super) fn state_change(
    link: &mut Link,
    target: LinkState,
    who: Option<String>,
) -> Result<(), StoreError> {
    match (link.state, target) {
        (LinkState::Cancelled, LinkState::Cancelled) => Ok(()),
        (LinkState::Cancelled, LinkState::Active) => Err(StoreError::Refused(
            "a cancelled link can never be activated again".into(),
        )),
        (LinkState::Cancelled, _) => Err(StoreError::Refused(
            "a cancelled link cannot change state".into(),
        )),
        (_, LinkState::Cancelled) => {
            let now = OffsetDateTime::now_utc();
            link.state = LinkState::Cancelled;
            link.cancelled_at = Some(now);
            link.cancelled_by = who;
            link.status_changed_at = Some(now);
            Ok(())
        }
        (old, state) => {
            if old != state {
                link.status_changed_at = Some(OffsetDateTime::now_utc());
            }
            link.state = state;
            Ok(())
        }
    }
}

/// Where a page starts: the opaque `cursor` (a `next_cursor` of the previous page: the
/// base64url of the last sort key it held), else the older `after` (the same key in clear). Any
/// string is a position (a cursor this API did not give out starts somewhere in the order, as
/// `after` always did), so no cursor is refused.
pub(super) fn cursor_after(
    q: &std::collections::HashMap<String, String>,
) -> Result<Option<String>, ApiError> {
    use base64::Engine;
    if q.get("cursor").is_some_and(|c| c.len() > 2048) {
        return Err(ApiError::field(
            "cursor",
            "is longer than any cursor this API gives out",
        ));
    }
    Ok(match q.get("cursor") {
        Some(c) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_else(|| c.clone()),
        ),
        None => q.get("after").cloned(),
    })
}

/// The `next_cursor` of a page whose next page starts after `next` (`null` at the end).
pub(super) fn next_cursor(next: &Option<String>) -> Value {
    use base64::Engine;
    match next {
        Some(n) => Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)),
        None => Value::Null,
    }
}

/// The largest event sequence number a query may name (2^53 - 1: exact in every JSON client).
const MAX_SEQ: u64 = (1 << 53) - 1;

/// A listing's `limit` query parameter: 1 to 500, 50 when absent.
pub(super) fn page_limit(q: &std::collections::HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(50),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => Ok(n),
            _ => Err(ApiError::field(
                "limit",
                "must be a whole number from 1 to 500",
            )),
        },
    }
}

/// A `PATCH`'s recipient: the address is added or replaced. A recipient who had no address was
/// given the link as view-only, so anyone may hold it by now: unless the body says otherwise,
/// adding an address asks every browser for a mailed code (no first-browser trust). A new
/// address is a new person: the browsers verified for the old one are forgotten.
pub(super) fn apply_recipient(link: &mut Link, patch: &super::bodies::RecipientPatch) {
    let before = link.recipient.clone();
    let had_email = before.as_ref().is_some_and(|r| r.email.is_some());
    let require_code = patch
        .require_code
        .unwrap_or_else(|| !had_email || before.as_ref().is_some_and(|r| r.require_code));
    let old_email = before.as_ref().and_then(|r| r.email.as_deref());
    if old_email != Some(patch.email.as_str()) {
        link.trusted_devices.clear();
    }
    // The name stays with the person: kept when an address is added or unchanged, dropped when
    // the address is replaced by someone else's.
    let name = match old_email {
        Some(old) if old != patch.email => None,
        _ => before.as_ref().and_then(|r| r.name.clone()),
    };
    link.recipient = Some(crate::model::link::Recipient {
        email: Some(patch.email.clone()),
        name,
        require_code,
    });
}

impl AdminApi {
    /// `GET /v1/webhooks/failed`: webhooks given up after their last retry, newest first (the
    /// full admin token only: entries of every creator's links are listed).
    pub(super) async fn failed_webhooks(
        &self,
        caller: &Caller,
    ) -> Result<(StatusCode, Value), ApiError> {
        if !matches!(caller, Caller::Full) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                None,
                "only the full admin token may list failed webhooks",
            ));
        }
        let Some(config) = &self.gate.webhooks else {
            return Ok((
                StatusCode::OK,
                json!({ "enabled": false, "failed": [], "pending": 0 }),
            ));
        };
        let failed = self
            .gate
            .links
            .store
            .outbox_failed(config.keep_failed.clamp(1, 1000))
            .await?;
        let pending = self.gate.links.store.outbox_pending().await?;
        let failed: Vec<Value> = failed
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "type": e.event.draft.kind,
                    "link": e.event.link,
                    "at": rfc3339(e.event.draft.at),
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                    "failed_at": opt_time(e.failed_at.and_then(|ms| {
                        OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()
                    })),
                })
            })
            .collect();
        Ok((
            StatusCode::OK,
            json!({ "enabled": true, "failed": failed, "pending": pending }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::bodies::RecipientPatch;
    use crate::model::link::Recipient;

    fn guest(email: Option<&str>, require_code: bool) -> Link {
        let mut l = Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k",
            OffsetDateTime::UNIX_EPOCH,
        );
        l.recipient = Some(Recipient {
            email: email.map(str::to_string),
            name: None,
            require_code,
        });
        l.trusted_devices = vec!["d1".into()];
        l
    }

    fn patch(email: &str, require_code: Option<bool>) -> RecipientPatch {
        RecipientPatch {
            email: email.into(),
            require_code,
        }
    }

    #[test]
    fn an_added_address_asks_every_browser_for_a_code_unless_told_otherwise() {
        let mut l = guest(None, false);
        apply_recipient(&mut l, &patch("a@b.org", None));
        let r = l.recipient.clone().unwrap();
        assert_eq!(
            (r.email.as_deref(), r.require_code),
            (Some("a@b.org"), true)
        );
        assert!(l.trusted_devices.is_empty());
        let mut l = guest(None, false);
        apply_recipient(&mut l, &patch("a@b.org", Some(false)));
        assert!(!l.recipient.unwrap().require_code);
    }

    #[test]
    fn the_same_address_keeps_its_browsers_and_a_new_one_forgets_them() {
        let mut l = guest(Some("a@b.org"), false);
        apply_recipient(&mut l, &patch("a@b.org", None));
        assert_eq!(l.trusted_devices, vec!["d1".to_string()]);
        assert!(!l.recipient.clone().unwrap().require_code, "unchanged");
        apply_recipient(&mut l, &patch("c@d.org", None));
        assert!(l.trusted_devices.is_empty());
        assert!(!l.recipient.unwrap().require_code);
    }
}
