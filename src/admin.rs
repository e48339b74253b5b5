//! The admin HTTP API (v1) for document systems: create, read, deactivate/activate and cancel links.
//!
//! A separate listener with bearer-token auth; JSON in and out. Bad input is answered with 400
//! (unreadable request) or 422 (a field breaks a rule) and a JSON error naming the field; a missing
//! or wrong token with 401. Every change drops the link from the cache, so it applies at once.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::gate::Gate;
use crate::link::{sanitize_filename, Document, Link, LinkId, LinkState, Right};
use crate::store::{Change, StoreError};
use crate::upstream::check_object_key;

pub struct AdminApi {
    pub gate: Arc<Gate>,
    pub token: String,
    pub body_limit: usize,
}

/// An API error: status, the field concerned (if any) and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError { status, field: field.map(str::to_string), message: message.into() }
    }
    fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Some(field), message)
    }
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, None, message)
    }
    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, None, "no such link")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::Refused(m) => ApiError::new(StatusCode::CONFLICT, Some("state"), m),
            StoreError::Exists(_) => ApiError::new(StatusCode::CONFLICT, Some("id"), "link exists"),
            other => {
                tracing::error!(error = %other, "admin: link store failed");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, "link store unavailable")
            }
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    let mut resp = Response::new(bytes);
    *resp.status_mut() = status;
    let len = resp.body().len();
    let headers = resp.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

fn error_response(e: ApiError) -> Response<Vec<u8>> {
    let mut err = json!({ "message": e.message });
    if let Some(f) = e.field {
        err["field"] = Value::String(f);
    }
    json_response(e.status, &json!({ "error": err }))
}

fn rfc3339(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

fn opt_time(t: Option<OffsetDateTime>) -> Value {
    t.map(rfc3339).unwrap_or(Value::Null)
}

/// What the API shows of a link (never a password hash).
fn link_view(gate: &Gate, link: &Link, downloads_used: u64) -> Value {
    let first = link.documents.first();
    json!({
        "id": link.id,
        "url": gate.url_of(link),
        "token": gate.token_of(link),
        "store": link.store,
        "object": first.map(|d| d.object.as_str()),
        "filename": first.map(|d| d.filename.as_str()),
        "documents": link.documents,
        "rights": link.rights,
        "state": link.state,
        "expires_at": opt_time(link.expires_at),
        "max_downloads": link.max_downloads,
        "downloads_used": downloads_used,
        "generation": link.generation,
        "created_by": link.created_by,
        "created_at": rfc3339(link.created_at),
        "cancelled_by": link.cancelled_by,
        "cancelled_at": opt_time(link.cancelled_at),
    })
}

fn take_string(body: &mut Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ApiError> {
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| ApiError::field("expires_at", "must be an RFC 3339 time, e.g. 2030-01-31T17:00:00Z"))?;
    if t <= now {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    Ok(t.to_offset(time::UtcOffset::UTC))
}

fn parse_rights(value: Option<Value>) -> Result<Vec<Right>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(vec![Right::Download]);
    };
    let Value::Array(items) = value else {
        return Err(ApiError::field("rights", "must be an array of strings, e.g. [\"download\"]"));
    };
    let mut rights = Vec::new();
    for item in items {
        let text = item.as_str().ok_or_else(|| ApiError::field("rights", "must contain only strings"))?;
        let right = Right::parse(text)
            .ok_or_else(|| ApiError::field("rights", format!("unknown right `{text}`; known rights: view, download")))?;
        if !rights.contains(&right) {
            rights.push(right);
        }
    }
    if rights.is_empty() {
        return Err(ApiError::field("rights", "must grant at least one right"));
    }
    rights.sort();
    Ok(rights)
}

impl AdminApi {
    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(value) = session.req_header().headers.get(http::header::AUTHORIZATION) else {
            return false;
        };
        let Some(presented) = value.as_bytes().strip_prefix(b"Bearer ") else {
            return false;
        };
        bool::from(presented.ct_eq(self.token.as_bytes()))
    }

    async fn read_body(&self, session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.body_limit {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            None,
                            format!("request body is larger than {} bytes", self.body_limit),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(ApiError::bad_request(format!("could not read the request body: {e}"))),
            }
        }
    }

    async fn read_json_object(&self, session: &mut ServerSession) -> Result<Map<String, Value>, ApiError> {
        let body = self.read_body(session).await?;
        if body.is_empty() {
            return Err(ApiError::bad_request("a JSON object body is required"));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!("the body is not valid JSON: {e}"))),
        }
    }

    async fn view(&self, link: &Link) -> Result<Value, ApiError> {
        let used = self.gate.store.usage(link.id, link.generation).await?;
        Ok(link_view(&self.gate, link, used))
    }

    async fn create(&self, session: &mut ServerSession) -> Result<(StatusCode, Value), ApiError> {
        let mut body = self.read_json_object(session).await?;
        let now = OffsetDateTime::now_utc();
        let store = take_string(&mut body, "store")?.ok_or_else(|| ApiError::field("store", "is required"))?;
        if !self.gate.upstreams.contains_key(&store) {
            return Err(ApiError::field("store", format!("no store named `{store}` is configured")));
        }
        let object = take_string(&mut body, "object")?;
        let filename = take_string(&mut body, "filename")?;
        if body.get("documents").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::field("documents", "links with several documents are not supported yet; use `object`"));
        }
        body.remove("documents");
        let object = object.ok_or_else(|| ApiError::field("object", "is required"))?;
        check_object_key(&object).map_err(|m| ApiError::field("object", m))?;
        let default_name = object.rsplit('/').next().unwrap_or(&object).to_string();
        let filename = sanitize_filename(filename.as_deref().unwrap_or(&default_name));
        let expires_at = take_string(&mut body, "expires_at")?.map(|t| parse_expiry(&t, now)).transpose()?;
        let max_downloads = match body.remove("max_downloads") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n),
                _ => return Err(ApiError::field("max_downloads", "must be a whole number of at least 1, or null for no limit")),
            },
        };
        let rights = parse_rights(body.remove("rights"))?;
        let created_by = take_string(&mut body, "created_by")?;
        if created_by.as_ref().is_some_and(|c| c.len() > 256 || c.chars().any(char::is_control)) {
            return Err(ApiError::field("created_by", "must be at most 256 characters without control characters"));
        }
        for field in ["password", "recipient"] {
            if body.get(field).is_some_and(|v| !v.is_null()) {
                return Err(ApiError::field(field, format!("`{field}` links are not supported by this version of linkgate")));
            }
            body.remove(field);
        }
        if let Some(unknown) = body.keys().next() {
            return Err(ApiError::field(unknown, "is not a known field"));
        }
        let link = Link {
            id: LinkId::random(),
            store,
            documents: vec![Document { object, filename }],
            rights,
            expires_at,
            max_downloads,
            state: LinkState::Active,
            generation: 1,
            key_id: self.gate.keys.signing_key_id().to_string(),
            created_by,
            created_at: now,
            cancelled_by: None,
            cancelled_at: None,
        };
        self.gate.store.create(&link).await?;
        tracing::info!(link = %link.id, store = %link.store, "link created");
        Ok((StatusCode::CREATED, link_view(&self.gate, &link, 0)))
    }

    async fn change(&self, id: LinkId, change: Change) -> Result<(StatusCode, Value), ApiError> {
        let result = self.gate.store.update(id, change).await;
        self.gate.cache.invalidate(&id);
        let link = result?;
        Ok((StatusCode::OK, self.view(&link).await?))
    }

    async fn route(&self, session: &mut ServerSession) -> Result<(StatusCode, Value), ApiError> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        if path == "/healthz" {
            return Ok((StatusCode::OK, json!({ "status": "ok" })));
        }
        if !self.authorized(session) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, None, "missing or wrong admin token (Authorization: Bearer …)"));
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::POST, ["v1", "links"]) => self.create(session).await,
            (_, ["v1", "links"]) => Err(method_not_allowed()),
            (m, ["v1", "links", id, rest @ ..]) => {
                let id = LinkId::parse(id).ok_or_else(ApiError::not_found)?;
                match (m, rest) {
                    (&Method::GET, []) => {
                        let link = self.gate.store.get(id).await?.ok_or_else(ApiError::not_found)?;
                        Ok((StatusCode::OK, self.view(&link).await?))
                    }
                    (&Method::DELETE, []) => {
                        let by = query_param(&query, "cancelled_by");
                        self.change(id, Arc::new(move |link: &mut Link| {
                            if link.state != LinkState::Cancelled {
                                link.state = LinkState::Cancelled;
                                link.cancelled_at = Some(OffsetDateTime::now_utc());
                                link.cancelled_by = by.clone();
                            }
                            Ok(())
                        }))
                        .await
                    }
                    (&Method::POST, ["deactivate"]) => {
                        self.change(id, Arc::new(|link: &mut Link| match link.state {
                            LinkState::Cancelled => Err(StoreError::Refused("a cancelled link cannot change state".into())),
                            _ => {
                                link.state = LinkState::Deactivated;
                                Ok(())
                            }
                        }))
                        .await
                    }
                    (&Method::POST, ["activate"]) => {
                        self.change(id, Arc::new(|link: &mut Link| match link.state {
                            LinkState::Cancelled => Err(StoreError::Refused("a cancelled link can never be activated again".into())),
                            _ => {
                                link.state = LinkState::Active;
                                Ok(())
                            }
                        }))
                        .await
                    }
                    (_, [] | ["deactivate"] | ["activate"]) => Err(method_not_allowed()),
                    _ => Err(ApiError::new(StatusCode::NOT_FOUND, None, "unknown endpoint")),
                }
            }
            _ => Err(ApiError::new(StatusCode::NOT_FOUND, None, "unknown endpoint")),
        }
    }
}

fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, None, "method not allowed on this endpoint")
}

/// One query parameter, percent-decoded; `None` when absent, empty or not UTF-8.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k != name {
            return None;
        }
        let v = v.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&v).decode_utf8().ok()?;
        let decoded = decoded.trim();
        (!decoded.is_empty() && !decoded.chars().any(char::is_control)).then(|| decoded.chars().take(256).collect())
    })
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match self.route(session).await {
            Ok((status, body)) => json_response(status, &body),
            Err(e) => {
                // An unread body would break keep-alive: drain what is left, within the limit.
                let _ = self.read_body(session).await;
                error_response(e)
            }
        }
    }
}
