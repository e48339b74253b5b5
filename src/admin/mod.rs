//! The admin HTTP API (v1) for document systems: create, read, change, list, deactivate/activate,
//! cancel links and read their audit trail.
//!
//! A separate listener with bearer-token auth; JSON in and out. Every error is an RFC 9457
//! problem (`application/problem+json`, a stable `type` per kind, `field` naming the offending
//! field: [`error`]); a method a path does not serve is a 405 with `Allow`, on every path, before
//! the token is looked at. Every change drops the link from this instance's cache (other
//! instances hear of it from the store), is recorded in the link's audit trail, and applies at
//! once; `If-Match` is compared inside the store's atomic change.
//!
//! Here: routing, auth (the bearer token and restricted callers), `If-Match` and reading bodies.
//! The rest: [`bodies`] (every field read and checked), [`handlers`] (what each call does),
//! [`bulk`] (one action on every link of an object, share or creator), [`idempotency`]
//! (`Idempotency-Key` on creates), [`views`] (what the API shows of a link, and ETags),
//! [`openapi`] (the served document), [`health`] (`/readyz`).

pub mod health;

pub mod bodies;
mod bulk;
pub mod error;
mod handlers;
mod idempotency;
mod openapi;
mod shares;
pub use shares::MailSweeper;
pub mod views;

use std::collections::HashMap;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use crate::model::audit::Draft;
use crate::model::link::{Link, LinkId, LinkState};
use crate::share::client::{client_of, user_agent_of};

use bodies::{json_object, parse_query};
use error::ApiError;
use error::{bytes_response, error_response, json_response};

/// The OpenAPI document of this API (checked in beside this file, served at `/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("openapi.json");

pub struct AdminApi {
    /// The gate in force (replaced by a configuration reload).
    pub gate: crate::share::gate::Live,
    pub body_limit: usize,
}

/// Who is calling: the operator's token (everything) or a caller limited to some creators.
#[derive(Debug, Clone)]
enum Caller {
    Full,
    Restricted { name: String, creators: Vec<String> },
}

impl Caller {
    fn sees(&self, link: &Link) -> bool {
        match self {
            Caller::Full => true,
            Caller::Restricted { creators, .. } => link
                .created_by
                .as_ref()
                .is_some_and(|c| creators.contains(c)),
        }
    }
}

/// The request's facts that events record.
struct RequestFacts {
    client: Option<String>,
    user_agent: Option<String>,
    query: HashMap<String, String>,
    /// The request's `If-Match`, checked in the same atomic step as the write.
    if_match: Option<IfMatch>,
}

impl RequestFacts {
    fn event(&self, kind: &str, outcome: &str, actor: Option<String>) -> Draft {
        let mut d = Draft::of_request(kind, outcome, self.client.clone(), self.user_agent.clone());
        d.actor = actor;
        d
    }
}

/// How much of a body over the limit is still read (and dropped) before the 413 goes out, and
/// for how long: a client that sends its whole body before reading the answer (ureq, curl
/// without `Expect: 100-continue`) got a reset connection instead of the 413 when the rest of
/// its body was left unread; past this the connection is closed anyway.
const DRAIN_LIMIT: usize = 1 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

impl AdminApi {
    fn caller(&self, session: &ServerSession) -> Option<Caller> {
        let value = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)?;
        // `Bearer` in any case (RFC 9110 §11.1: schemes are case-insensitive), then one or more
        // spaces.
        let value = value.as_bytes();
        let (scheme, rest) = value.split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let presented = rest.trim_ascii_start();
        if bool::from(presented.ct_eq(self.gate.admin.token.as_bytes())) {
            return Some(Caller::Full);
        }
        self.gate
            .admin
            .callers
            .iter()
            .find(|c| bool::from(presented.ct_eq(c.token.as_bytes())))
            .map(|c| Caller::Restricted {
                name: c.name.clone(),
                creators: c.created_by.clone(),
            })
    }

    async fn read_body(&self, session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.body_limit {
                        crate::share::guard::drain(
                            session,
                            body.len() + chunk.len(),
                            DRAIN_LIMIT,
                            DRAIN_TIME,
                        )
                        .await;
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            None,
                            format!("request body is larger than {} bytes", self.body_limit),
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    // The framing is lost: nothing after this body may be read as a request.
                    session.set_keepalive(None);
                    return Err(ApiError::bad_request(format!(
                        "could not read the request body: {e}"
                    )));
                }
            }
        }
    }

    async fn read_json_object(
        &self,
        session: &mut ServerSession,
    ) -> Result<Map<String, Value>, ApiError> {
        let body = self.read_body(session).await?;
        json_object(&body)
    }

    async fn route(&self, session: &mut ServerSession) -> Result<(StatusCode, Value), ApiError> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        if path == "/healthz" {
            return Ok((StatusCode::OK, json!({ "status": "ok" })));
        }
        if path == "/readyz" {
            return Ok(health::readiness(&self.gate).await);
        }
        let Some(caller) = self.caller(session) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "missing or wrong admin token (Authorization: Bearer …)",
            ));
        };
        let origin = RequestFacts {
            client: client_of(session).map(|ip| ip.to_string()),
            user_agent: user_agent_of(session),
            query: parse_query(session.req_header().uri.query().unwrap_or("")),
            if_match: IfMatch::of(session)?,
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        check_query(&origin.query, &method, &segments)?;
        match (&method, segments.as_slice()) {
            (&Method::POST, ["v1", "links"]) => {
                self.idempotent(session, &caller, "links", |body| {
                    self.create(body, &caller, &origin)
                })
                .await
            }
            (&Method::GET, ["v1", "links"]) => self.list(&caller, &origin).await,
            (&Method::POST, ["v1", "links", "bulk"]) => {
                let body = self.read_json_object(session).await?;
                self.bulk(body, &caller, &origin).await
            }
            (&Method::GET, ["v1", "webhooks", "failed"]) => self.failed_webhooks(&caller).await,
            (&Method::POST, ["v1", "shares"]) => {
                self.idempotent(session, &caller, "shares", |body| {
                    self.create_share(body, &caller, &origin)
                })
                .await
            }
            (&Method::GET, ["v1", "shares"]) => self.list_shares(&caller, &origin).await,
            (&Method::GET, ["v1", "shares", id]) => self.show_share(&caller, id).await,
            (&Method::DELETE, ["v1", "shares", id]) => {
                self.cancel_share(&caller, &origin, id).await
            }
            (&Method::DELETE, ["v1", "shares", id, "recipients", link]) => {
                self.revoke_recipient(&caller, &origin, id, link).await
            }
            (&Method::POST, ["v1", "shares", id, "recipients", link, "resend"]) => {
                self.resend(&caller, id, link).await
            }
            (m, ["v1", "links", id, rest @ ..]) => {
                let id = LinkId::parse(id).ok_or_else(ApiError::not_found)?;
                match (m, rest) {
                    (&Method::GET, []) => {
                        let link = self.visible(&caller, id).await?;
                        Ok((StatusCode::OK, self.view(&link).await?))
                    }
                    (&Method::PATCH, []) => self.patch(session, &caller, &origin, id).await,
                    (&Method::DELETE, []) => {
                        self.set_state(&caller, &origin, id, LinkState::Cancelled)
                            .await
                    }
                    (&Method::POST, ["deactivate"]) => {
                        self.set_state(&caller, &origin, id, LinkState::Deactivated)
                            .await
                    }
                    (&Method::POST, ["activate"]) => {
                        self.set_state(&caller, &origin, id, LinkState::Active)
                            .await
                    }
                    (&Method::GET, ["events"]) => self.events(&caller, &origin, id).await,
                    _ => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        None,
                        "unknown endpoint",
                    )),
                }
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                None,
                "unknown endpoint",
            )),
        }
    }
}

/// The methods a path serves (its `Allow`), or `None` for a path the API does not have. Every
/// other method is refused with 405 and this `Allow`, before the token is looked at.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] | ["readyz"] | ["metrics"] | ["v1", "openapi.json"] => Some("GET"),
        ["v1", "links"] | ["v1", "shares"] => Some("GET, POST"),
        ["v1", "links", "bulk"] => Some("POST"),
        ["v1", "links", _] => Some("GET, PATCH, DELETE"),
        ["v1", "links", _, "deactivate" | "activate"] => Some("POST"),
        ["v1", "links", _, "events"] => Some("GET"),
        ["v1", "webhooks", "failed"] => Some("GET"),
        ["v1", "shares", _] => Some("GET, DELETE"),
        ["v1", "shares", _, "recipients", _] => Some("DELETE"),
        ["v1", "shares", _, "recipients", _, "resend"] => Some("POST"),
        _ => None,
    }
}

/// Refuses a query parameter the operation does not take (422 naming it), so that a typo is not
/// silently ignored. The listings check their own parameters.
fn check_query(
    query: &HashMap<String, String>,
    method: &Method,
    segments: &[&str],
) -> Result<(), ApiError> {
    let allowed: &[&str] = match (method, segments) {
        (&Method::GET, ["v1", "links"] | ["v1", "shares"] | ["v1", "links", _, "events"]) => {
            return Ok(())
        }
        (&Method::DELETE, ["v1", "links", _] | ["v1", "shares", _]) => &["by", "cancelled_by"],
        (&Method::DELETE, ["v1", "shares", _, "recipients", _]) => &["by", "cancelled_by"],
        (&Method::POST, ["v1", "links", _, "deactivate" | "activate"]) => &["by"],
        _ => &[],
    };
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::field(
            unknown,
            if allowed.is_empty() {
                "is not a query parameter of this operation (it takes none)".to_string()
            } else {
                format!(
                    "is not a query parameter of this operation (it takes: {})",
                    allowed.join(", ")
                )
            },
        )),
        None => {
            // Both names of who acts are checked, whichever one is used.
            for name in ["by", "cancelled_by"] {
                if allowed.contains(&name) {
                    bodies::check_identity(name, query.get(name).cloned())?;
                }
            }
            Ok(())
        }
    }
}

/// An `If-Match` field value: `Some(None)` for `*`, `Some(Some(tags))` for a list of entity
/// tags (`"…"` or `W/"…"`, RFC 9110 §8.8.3; empty elements allowed, §5.6.1), `None` when it is
/// neither. Weak tags are kept with their `W/`, so they never match a strong one.
fn parse_tags(text: &str) -> Option<Option<Vec<String>>> {
    let trimmed = text.trim_matches(|c| c == ' ' || c == '\t');
    if trimmed == "*" {
        return Some(None);
    }
    let bytes = trimmed.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b',' => i += 1,
            _ => {
                let start = i;
                if bytes[i..].starts_with(b"W/") {
                    i += 2;
                }
                if bytes.get(i) != Some(&b'"') {
                    return None;
                }
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    let b = bytes[i];
                    if !(b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
                        return None;
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return None;
                }
                i += 1;
                tags.push(trimmed[start..i].to_string());
                // After a tag: only whitespace, then a comma or the end.
                while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] != b',' {
                    return None;
                }
            }
        }
    }
    Some(Some(tags))
}

/// A request's `If-Match` (RFC 9110 §13.1.1): `*` or a list of strong entity tags.
#[derive(Debug, Clone)]
pub(crate) enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    fn of(session: &ServerSession) -> Result<Option<IfMatch>, ApiError> {
        let values: Vec<&http::HeaderValue> = session
            .req_header()
            .headers
            .get_all(http::header::IF_MATCH)
            .iter()
            .collect();
        if values.is_empty() {
            return Ok(None);
        }
        let mut tags = Vec::new();
        for v in values {
            let bad = || {
                ApiError::field(
                    "If-Match",
                    "must be `*` or a list of entity tags like \"3f9a…\" (an ETag this API gave out)",
                )
            };
            let text = v.to_str().map_err(|_| bad())?;
            match parse_tags(text) {
                Some(None) => return Ok(Some(IfMatch::Any)),
                Some(Some(mut list)) => tags.append(&mut list),
                None => return Err(bad()),
            }
        }
        // An empty field value is an empty list (RFC 9110 §5.6.1): no precondition, as if absent.
        if tags.is_empty() {
            return Ok(None);
        }
        Ok(Some(IfMatch::Tags(tags)))
    }

    /// Whether the current version's `etag` matches.
    pub(crate) fn matches(&self, etag: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }
}

/// The record an admin call answered with, for its access line.
#[derive(Debug, Default)]
struct Subject {
    id: Option<String>,
    created_by: Option<String>,
}

impl Subject {
    /// A link's or share's `id` and `created_by` (other answers have neither at the top).
    fn of(body: &Value) -> Subject {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        Subject {
            id: text("id"),
            created_by: text("created_by"),
        }
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let started = std::time::Instant::now();
        let trace = crate::telemetry::tracer().and_then(|_| {
            let req = session.req_header();
            crate::telemetry::request(req.method.as_str(), admin_route(req.uri.path()), None)
        });
        let (response, subject) = self.answer(session).await;
        self.access_line(session, response.status(), started, subject);
        if let Some(cx) = trace {
            use opentelemetry::trace::TraceContextExt;
            let span = cx.span();
            let status = response.status().as_u16();
            span.set_attribute(opentelemetry::KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_status(opentelemetry::trace::Status::error(format!(
                    "status {status}"
                )));
            }
            span.end();
        }
        response
    }
}

/// The route an admin request's span is named by: a fixed name, never a path's ids or values.
fn admin_route(path: &str) -> &'static str {
    const ROUTES: [&str; 7] = [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/links",
        "/v1/shares",
        "/v1/webhooks",
    ];
    ROUTES
        .into_iter()
        .find(|r| {
            path == *r
                || path
                    .strip_prefix(r)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .unwrap_or("(admin)")
}

impl AdminApi {
    /// The admin request's line in the access log (`target: linkgate::admin_access`): who called
    /// (`caller`: `admin` for the operator's token, a restricted caller's name, none without a
    /// valid token; never the token) and, for a restricted caller, the `created_by` identities it
    /// is limited to; and the record the call answered with (`id` and its `created_by`: a link or
    /// a share, when the answer is one). Successful probes and scrapes (`/healthz`, `/readyz`, `/metrics`, every
    /// few seconds from an orchestrator) are logged only with `linkgate::admin_access=debug`.
    fn access_line(
        &self,
        session: &ServerSession,
        status: StatusCode,
        started: std::time::Instant,
        subject: Subject,
    ) {
        let req = session.req_header();
        let probe = status == StatusCode::OK
            && matches!(req.uri.path(), "/healthz" | "/readyz" | "/metrics");
        if probe && !tracing::enabled!(target: "linkgate::admin_access", tracing::Level::DEBUG) {
            return;
        }
        let (caller, creators) = match self.caller(session) {
            Some(Caller::Full) => (Some("admin".to_string()), None),
            Some(Caller::Restricted { name, creators }) => (Some(name), Some(creators.join(","))),
            None => (None, None),
        };
        tracing::info!(
            target: "linkgate::admin_access",
            method = %req.method,
            path = %crate::share::client::loggable_path(&req.uri),
            status = status.as_u16(),
            caller,
            creators,
            id = subject.id,
            created_by = subject.created_by,
            client = client_of(session).map(tracing::field::display),
            user_agent = req.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.get(..256).unwrap_or(v)),
            duration_ms = started.elapsed().as_millis() as u64,
        );
    }

    async fn answer(&self, session: &mut ServerSession) -> (Response<Vec<u8>>, Subject) {
        let mut subject = Subject::default();
        let response = self.answer_with(session, &mut subject).await;
        (response, subject)
    }

    async fn answer_with(
        &self,
        session: &mut ServerSession,
        subject: &mut Subject,
    ) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        let method = session.req_header().method.clone();
        if let Some(allow) = allowed_methods(&path) {
            if !allow.split(", ").any(|m| m == method.as_str()) {
                let _ = self.read_body(session).await;
                return error_response(ApiError::method_not_allowed(allow), Some(&path));
            }
        }
        if path == "/v1/openapi.json" {
            return bytes_response(
                StatusCode::OK,
                "application/json",
                openapi::served(&self.gate),
            );
        }
        if path == "/metrics" {
            return bytes_response(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                crate::metrics::metrics().render(),
            );
        }
        match self.route(session).await {
            Ok((status, body)) => {
                *subject = Subject::of(&body);
                let replayed = body.get(idempotency::REPLAYED).is_some();
                let body = match body {
                    Value::Object(mut o) if replayed => {
                        o.remove(idempotency::REPLAYED);
                        Value::Object(o)
                    }
                    other => other,
                };
                let mut resp = json_response(status, &body);
                // A single link or share carries its version (`etag` in the body and the header).
                if let Some(tag) = body.get("etag").and_then(Value::as_str) {
                    if let Ok(v) = http::HeaderValue::from_str(tag) {
                        resp.headers_mut().insert(http::header::ETAG, v);
                    }
                }
                if replayed {
                    resp.headers_mut().insert(
                        idempotency::REPLAYED_HEADER,
                        http::HeaderValue::from_static("true"),
                    );
                }
                resp
            }
            Err(e) => {
                // An unread body would break keep-alive: drain what is left, within the limit.
                let _ = self.read_body(session).await;
                error_response(e, Some(&path))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_lists_are_read_with_quoted_commas_and_odd_spacing() {
        assert_eq!(parse_tags("*"), Some(None));
        assert_eq!(
            parse_tags("\"a,b\" ,\tW/\"c\", ,\"d\""),
            Some(Some(vec![
                "\"a,b\"".into(),
                "W/\"c\"".into(),
                "\"d\"".into()
            ]))
        );
        assert_eq!(parse_tags(""), Some(Some(vec![])));
        for bad in ["abc", "\"open", "\"a\"b", "W/x", "\"a b\"", "*, \"a\""] {
            assert_eq!(parse_tags(bad), None, "{bad}");
        }
    }
}
