//! What each admin call does with the link state, once routing and auth let it through.

use std::sync::Arc;

use http::StatusCode;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::link::{Document, Link, LinkId, LinkState};
use crate::model::policy::Proposed;
use crate::share::verify::hash_password;
use crate::state::{Change, ListQuery, StoreError};

use super::bodies::{
    check_identity, check_policy, parse_link_body, parse_patch_body, LinkBody, PatchBody,
};
use super::error::ApiError;
use super::views::{link_view, opt_time};
use super::{AdminApi, Caller, RequestFacts};

impl AdminApi {
    pub(super) async fn view(&self, link: &Link) -> Result<Value, ApiError> {
        let used = self
            .gate
            .links
            .store
            .usage(link.id, link.generation)
            .await?;
        Ok(link_view(&self.gate, link, used))
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

    /// Sizes of every document and rendition, asked of the origin all at once.
    pub(super) async fn fill_sizes(&self, store: &str, documents: &mut [Document]) {
        let mut asks = Vec::new();
        for d in documents.iter() {
            asks.push(self.object_size(store, &d.object));
            for r in d.renditions.values() {
                asks.push(self.object_size(store, &r.object));
            }
        }
        let mut sizes = futures_util::future::join_all(asks).await.into_iter();
        for d in documents.iter_mut() {
            d.size = sizes.next().flatten();
            for r in d.renditions.values_mut() {
                r.size = sizes.next().flatten();
            }
        }
    }

    /// The object's size from the origin (a HEAD, bounded to two seconds); `None` when the origin
    /// does not say (the landing page then shows no size).
    pub(super) async fn object_size(&self, store: &str, object: &str) -> Option<u64> {
        self.gate.docstores.get(store)?.size_of(object).await
    }

    pub(super) async fn create(
        &self,
        session: &mut ServerSession,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let body = self.read_json_object(session).await?;
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
            _ => self.fill_sizes(&store, &mut documents).await,
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
        let change: Change = Arc::new(move |link: &mut Link| {
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
            check_policy(&policy, link, now)?;
            if bump {
                // The counter restarts at zero and old password cookies stop working.
                link.generation += 1;
            }
            Ok(())
        });
        let before = self
            .gate
            .links
            .store
            .get(id)
            .await?
            .map(|l| l.generation)
            .unwrap_or(0);
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
        match result {
            Ok(link) => {
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
        let change: Change = Arc::new(move |link: &mut Link| match (link.state, target) {
            (LinkState::Cancelled, LinkState::Cancelled) => Ok(()),
            (LinkState::Cancelled, LinkState::Active) => Err(StoreError::Refused(
                "a cancelled link can never be activated again".into(),
            )),
            (LinkState::Cancelled, _) => Err(StoreError::Refused(
                "a cancelled link cannot change state".into(),
            )),
            (_, LinkState::Cancelled) => {
                link.state = LinkState::Cancelled;
                link.cancelled_at = Some(OffsetDateTime::now_utc());
                link.cancelled_by = who.clone();
                Ok(())
            }
            (_, state) => {
                link.state = state;
                Ok(())
            }
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
            if !["object", "store", "created_by", "state", "limit", "after"].contains(&key.as_str())
            {
                return Err(ApiError::field(key, "is not a known query parameter (object, store, created_by, state, limit, after)"));
            }
        }
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
        let limit = match q.get("limit") {
            None => 50,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=500).contains(&n) => n,
                _ => {
                    return Err(ApiError::field(
                        "limit",
                        "must be a whole number from 1 to 500",
                    ))
                }
            },
        };
        let query = ListQuery {
            object: q.get("object").cloned(),
            store: q.get("store").cloned(),
            created_by: q.get("created_by").cloned(),
            state,
            creators: match caller {
                Caller::Full => None,
                Caller::Restricted { creators, .. } => Some(creators.clone()),
            },
            after: q.get("after").cloned(),
            limit,
        };
        let page = self.gate.links.store.list(&query).await?;
        let mut links = Vec::with_capacity(page.links.len());
        for link in &page.links {
            links.push(self.view(link).await?);
        }
        Ok((StatusCode::OK, json!({ "links": links, "next": page.next })))
    }

    pub(super) async fn events(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
        id: LinkId,
    ) -> Result<(StatusCode, Value), ApiError> {
        self.visible(caller, id).await?;
        let after = match origin.query.get("after") {
            None => 0,
            Some(a) => a
                .parse::<u64>()
                .map_err(|_| ApiError::field("after", "must be an event sequence number"))?,
        };
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
            json!({ "link": id, "events": events, "next": next }),
        ))
    }
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
                    "at": rfc3339_of(e.event.draft.at),
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                    "failed_at": e.failed_at.and_then(|ms| {
                        OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok()
                    }).map(rfc3339_of),
                })
            })
            .collect();
        Ok((
            StatusCode::OK,
            json!({ "enabled": true, "failed": failed, "pending": pending }),
        ))
    }
}

fn rfc3339_of(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
