//! The admin HTTP API (v1) for document systems: create, read, change, list, deactivate/activate,
//! cancel links and read their audit trail.
//!
//! A separate listener with bearer-token auth; JSON in and out. Bad input is answered with 400
//! (unreadable request) or 422 (a field breaks a rule, policy included) and a JSON error naming the
//! field; a missing or wrong token with 401; a state conflict with 409. Every change drops the
//! link from this instance's cache (other instances hear of it from the store), is recorded in
//! the link's audit trail, and applies at once.

pub mod health;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::docstore::check_object_key;
use crate::model::audit::Draft;
use crate::model::link::{
    sanitize_filename, valid_rendition_name, Document, Link, LinkId, LinkState, Recipient,
    Rendition, Right, UploadSpec,
};
use crate::model::policy::{valid_type_pattern, Policy, Proposed};
use crate::share::client::{client_of, user_agent_of};
use crate::share::gate::Gate;
use crate::share::verify::hash_password;
use crate::state::{Change, ListQuery, StoreError};

/// The OpenAPI document of this API (checked in beside this file, served at `/v1/openapi.json`).
pub const OPENAPI: &str = include_str!("openapi.json");

pub struct AdminApi {
    pub gate: Arc<Gate>,
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
        ApiError {
            status,
            field: field.map(str::to_string),
            message: message.into(),
        }
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
            StoreError::Rejected { field, message } => ApiError::field(field, message),
            StoreError::Exists(_) => ApiError::new(StatusCode::CONFLICT, Some("id"), "link exists"),
            other => {
                tracing::error!(error = %other, "admin: link store failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "link store unavailable",
                )
            }
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes_response(status, "application/json", bytes)
}

fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> Response<Vec<u8>> {
    let mut resp = Response::new(bytes);
    *resp.status_mut() = status;
    let len = resp.body().len();
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
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

/// An identity (`created_by`, `changed_by`, `?by=`): at most 256 characters, no control characters.
fn check_identity(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) => {
            Err(ApiError::field(
                field,
                "must be 1 to 256 characters without control characters",
            ))
        }
        other => Ok(other),
    }
}

fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ApiError> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ApiError::field(
            "expires_at",
            "must be an RFC 3339 time, e.g. 2030-01-31T17:00:00Z",
        )
    })?;
    if t <= now {
        return Err(ApiError::field("expires_at", "must be in the future"));
    }
    // A time whose UTC value falls outside years 1 to 9999 (`9999-12-31T23:59:59-23:59`) made
    // `to_offset` panic.
    t.checked_to_offset(time::UtcOffset::UTC)
        .ok_or_else(|| ApiError::field("expires_at", "must be a time before the year 10000"))
}

/// `expires_at`: absent → `None`; null → `Some(None)` (never expires); a time → `Some(Some(t))`.
fn take_expiry(
    body: &mut Map<String, Value>,
    now: OffsetDateTime,
) -> Result<Option<Option<OffsetDateTime>>, ApiError> {
    match body.remove("expires_at") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(parse_expiry(&s, now)?))),
        Some(_) => Err(ApiError::field(
            "expires_at",
            "must be an RFC 3339 time or null",
        )),
    }
}

/// `max_downloads`: absent → `None`; null → `Some(None)` (no limit); n ≥ 1 → `Some(Some(n))`.
fn take_limit(body: &mut Map<String, Value>) -> Result<Option<Option<u64>>, ApiError> {
    match body.remove("max_downloads") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(Some(n))),
            _ => Err(ApiError::field(
                "max_downloads",
                "must be a whole number of at least 1, or null for no limit",
            )),
        },
    }
}

fn parse_rights(value: Option<Value>) -> Result<Vec<Right>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(vec![Right::Download]);
    };
    let Value::Array(items) = value else {
        return Err(ApiError::field(
            "rights",
            "must be an array of strings, e.g. [\"download\"]",
        ));
    };
    let mut rights = Vec::new();
    for item in items {
        let text = item
            .as_str()
            .ok_or_else(|| ApiError::field("rights", "must contain only strings"))?;
        let right = Right::parse(text).ok_or_else(|| {
            ApiError::field("rights", format!("unknown right `{text}`; known rights: view, download, download:<rendition>, upload"))
        })?;
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

/// Most documents one link may share.
pub const MAX_DOCUMENTS: usize = 50;

/// An object key field: present, a string, and a key that stays inside the store.
fn object_key(value: Option<Value>, field: &str) -> Result<String, ApiError> {
    match value {
        Some(Value::String(key)) => {
            check_object_key(&key).map_err(|m| ApiError::field(field, m))?;
            Ok(key)
        }
        None | Some(Value::Null) => Err(ApiError::field(field, "is required")),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// A display name field, sanitised; the key's last segment when absent.
fn display_name(value: Option<Value>, field: &str, key: &str) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(sanitize_filename(key.rsplit('/').next().unwrap_or(key))),
        Some(Value::String(name)) => Ok(sanitize_filename(&name)),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// `renditions`: `{"lowres": {"object": "…", "filename": "…"}}` or `{"lowres": "key"}`.
fn parse_renditions(
    value: Option<Value>,
    field: &str,
) -> Result<BTreeMap<String, Rendition>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let Value::Object(map) = value else {
        return Err(ApiError::field(
            field,
            "must be an object like {\"lowres\": {\"object\": \"x-low.pdf\"}}",
        ));
    };
    for (name, spec) in map {
        let at = format!("{field}.{name}");
        if !valid_rendition_name(&name) {
            return Err(ApiError::field(&at, "a rendition name is 1 to 32 of a-z, 0-9, `_` and `-` (not original, view or download)"));
        }
        let (object, filename) = match spec {
            Value::String(key) => (Some(Value::String(key)), None),
            Value::Object(mut o) => {
                let parts = (o.remove("object"), o.remove("filename"));
                if let Some(unknown) = o.keys().next() {
                    return Err(ApiError::field(
                        &format!("{at}.{unknown}"),
                        "is not a known field",
                    ));
                }
                parts
            }
            _ => {
                return Err(ApiError::field(
                    &at,
                    "must be an object key or {\"object\": …, \"filename\": …}",
                ))
            }
        };
        let object = object_key(object, &format!("{at}.object"))?;
        let filename = display_name(filename, &format!("{at}.filename"), &object)?;
        out.insert(
            name,
            Rendition {
                object,
                filename,
                size: None,
            },
        );
    }
    Ok(out)
}

/// The documents of a new link: `object` (+ `filename`, `renditions`) for one, or `documents`.
fn take_documents(body: &mut Map<String, Value>) -> Result<Vec<Document>, ApiError> {
    let single = body.contains_key("object") && !body["object"].is_null();
    let several = body.get("documents").is_some_and(|v| !v.is_null());
    if single && several {
        return Err(ApiError::field(
            "documents",
            "give either `object` (one document) or `documents`, not both",
        ));
    }
    if !several {
        let (object, filename, renditions) = (
            body.remove("object"),
            body.remove("filename"),
            body.remove("renditions"),
        );
        body.remove("documents");
        if !single {
            if filename.as_ref().is_some_and(|v| !v.is_null())
                || renditions.as_ref().is_some_and(|v| !v.is_null())
            {
                return Err(ApiError::field(
                    "object",
                    "is required with filename or renditions",
                ));
            }
            return Ok(Vec::new());
        }
        let object = object_key(object, "object")?;
        let filename = display_name(filename, "filename", &object)?;
        let mut doc = Document::new(object, filename, None);
        doc.renditions = parse_renditions(renditions, "renditions")?;
        return Ok(vec![doc]);
    }
    for field in ["filename", "renditions"] {
        if body.get(field).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::field(
                field,
                "belongs inside each entry of `documents`",
            ));
        }
        body.remove(field);
    }
    body.remove("object");
    let Some(Value::Array(items)) = body.remove("documents") else {
        return Err(ApiError::field(
            "documents",
            "must be an array of {\"object\": …, \"filename\": …}",
        ));
    };
    if items.is_empty() || items.len() > MAX_DOCUMENTS {
        return Err(ApiError::field(
            "documents",
            format!("must list 1 to {MAX_DOCUMENTS} documents"),
        ));
    }
    let mut docs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("documents[{i}]");
        let Value::Object(mut d) = item else {
            return Err(ApiError::field(
                &at,
                "must be an object like {\"object\": \"a.pdf\", \"filename\": \"A.pdf\"}",
            ));
        };
        let object = object_key(d.remove("object"), &format!("{at}.object"))?;
        let filename = display_name(d.remove("filename"), &format!("{at}.filename"), &object)?;
        let renditions = parse_renditions(d.remove("renditions"), &format!("{at}.renditions"))?;
        if let Some(unknown) = d.keys().next() {
            return Err(ApiError::field(
                &format!("{at}.{unknown}"),
                "is not a known field",
            ));
        }
        let mut doc = Document::new(object, filename, None);
        doc.renditions = renditions;
        docs.push(doc);
    }
    Ok(docs)
}

/// `upload`: where and how a link with the `upload` right accepts files.
fn take_upload(body: &mut Map<String, Value>) -> Result<Option<UploadSpec>, ApiError> {
    let Some(value) = body.remove("upload").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Object(mut u) = value else {
        return Err(ApiError::field(
            "upload",
            "must be an object like {\"folder\": \"incoming/job-42\"}",
        ));
    };
    let folder = object_key(u.remove("folder"), "upload.folder")?;
    let folder = folder.trim_start_matches('/').to_string();
    let overwrite = match u.remove("overwrite") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::field("upload.overwrite", "must be true or false")),
    };
    let positive = |v: Option<Value>, field: &str| -> Result<Option<u64>, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(ApiError::field(
                    field,
                    "must be a whole number of at least 1",
                )),
            },
        }
    };
    let max_files = positive(u.remove("max_files"), "upload.max_files")?;
    let max_bytes = positive(u.remove("max_bytes"), "upload.max_bytes")?;
    let allowed_types = match u.remove("allowed_types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut types = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(t) if valid_type_pattern(t) => types.push(t.to_ascii_lowercase()),
                    _ => {
                        return Err(ApiError::field(
                            "upload.allowed_types",
                            "must list media types like \"application/pdf\" or \"image/*\"",
                        ))
                    }
                }
            }
            if types.is_empty() {
                return Err(ApiError::field(
                    "upload.allowed_types",
                    "must list at least one type (leave it out to accept any)",
                ));
            }
            Some(types)
        }
        Some(_) => {
            return Err(ApiError::field(
                "upload.allowed_types",
                "must be an array of media types",
            ))
        }
    };
    if let Some(unknown) = u.keys().next() {
        return Err(ApiError::field(
            &format!("upload.{unknown}"),
            "is not a known field",
        ));
    }
    Ok(Some(UploadSpec {
        folder,
        overwrite,
        max_files,
        max_bytes,
        allowed_types,
    }))
}

/// Rights, documents and upload settings must fit together.
fn check_shape(
    rights: &[Right],
    documents: &[Document],
    upload: Option<&UploadSpec>,
) -> Result<(), ApiError> {
    let uploads = rights.contains(&Right::Upload);
    match (uploads, upload) {
        (true, None) => {
            return Err(ApiError::field(
                "upload",
                "is required with the `upload` right (at least {\"folder\": …})",
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::field(
                "upload",
                "needs the `upload` right in `rights`",
            ))
        }
        _ => {}
    }
    if documents.is_empty() && rights.iter().any(|r| *r != Right::Upload) {
        return Err(ApiError::field(
            "object",
            "is required (or `documents`), unless the link only grants `upload`",
        ));
    }
    for r in rights {
        if let Right::Rendition(name) = r {
            if !documents.iter().any(|d| d.renditions.contains_key(name)) {
                return Err(ApiError::field(
                    "rights",
                    format!("`{r}` names a rendition no document has"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the operator's policy against a link as it would be stored (the password's length was
/// checked when it arrived; here only its presence counts).
fn check_policy(policy: &Policy, link: &Link, now: OffsetDateTime) -> Result<(), StoreError> {
    let proposed = Proposed {
        password: None,
        has_password: link.password_hash.is_some(),
        expires_at: link.expires_at,
        max_downloads: link.max_downloads,
        rights: &link.rights,
        upload: link.upload.as_ref(),
    };
    policy
        .check(&proposed, now)
        .map_err(|v| StoreError::Rejected {
            field: v.field,
            message: v.message,
        })
}

/// `password`: absent → `None`; null → `Some(None)` (remove); a string → `Some(Some(p))`.
fn take_password(body: &mut Map<String, Value>) -> Result<Option<Option<String>>, ApiError> {
    match body.remove("password") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(p)) if p.is_empty() => Err(ApiError::field(
            "password",
            "must not be empty (null removes it)",
        )),
        Some(Value::String(p)) if p.len() > 1024 => {
            Err(ApiError::field("password", "must be at most 1024 bytes"))
        }
        Some(Value::String(p)) => Ok(Some(Some(p))),
        Some(_) => Err(ApiError::field("password", "must be a string or null")),
    }
}

/// A plausible mail address: one `@`, something on both sides, no spaces or controls.
fn valid_email(email: &str) -> bool {
    let Some((user, domain)) = email.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !domain.contains('@')
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"\\()[]".contains(c))
}

fn take_recipient(body: &mut Map<String, Value>) -> Result<Option<Recipient>, ApiError> {
    let Some(value) = body.remove("recipient").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Object(mut r) = value else {
        return Err(ApiError::field(
            "recipient",
            "must be an object like {\"email\": \"jane@example.org\"}",
        ));
    };
    let email = match r.remove("email") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if valid_email(e.trim()) => Some(e.trim().to_string()),
        Some(_) => {
            return Err(ApiError::field(
                "recipient.email",
                "must be a mail address like jane@example.org, or null",
            ))
        }
    };
    let require_code = match r.remove("require_code") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::field(
                "recipient.require_code",
                "must be true or false",
            ))
        }
    };
    if require_code && email.is_none() {
        return Err(ApiError::field(
            "recipient.require_code",
            "needs recipient.email to send codes to",
        ));
    }
    if let Some(unknown) = r.keys().next() {
        return Err(ApiError::field(
            &format!("recipient.{unknown}"),
            "is not a known field",
        ));
    }
    Ok(Some(Recipient {
        email,
        require_code,
    }))
}

fn refuse_unknown(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.keys().next() {
        Some(unknown) => Err(ApiError::field(unknown, "is not a known field")),
        None => Ok(()),
    }
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
}

impl RequestFacts {
    fn event(&self, kind: &str, outcome: &str, actor: Option<String>) -> Draft {
        let mut d = Draft::new(kind, outcome);
        d.actor = actor;
        d.client = self.client.clone();
        d.user_agent = self.user_agent.clone();
        d
    }
}

/// Query parameters, percent-decoded; pairs that are not UTF-8 are dropped.
pub fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((dec(k)?, dec(v)?))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// How much of a body over the limit is still read (and dropped) before the 413 goes out.
///
/// A client that sends its whole body before reading the answer (ureq, curl without
/// `Expect: 100-continue`) got a reset connection instead of the 413 when the rest of its body
/// was left unread; past this many bytes the connection is closed anyway.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads and drops the rest of a request body, up to [`DRAIN_LIMIT`] bytes in all.
async fn drain(session: &mut ServerSession, mut seen: usize) {
    while seen <= DRAIN_LIMIT {
        match session.read_request_body().await {
            Ok(Some(chunk)) => seen += chunk.len(),
            _ => return,
        }
    }
}

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
        if bool::from(presented.ct_eq(self.gate.admin_token.as_bytes())) {
            return Some(Caller::Full);
        }
        self.gate
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
                        drain(session, body.len() + chunk.len()).await;
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

    async fn view(&self, link: &Link) -> Result<Value, ApiError> {
        let used = self.gate.store.usage(link.id, link.generation).await?;
        Ok(link_view(&self.gate, link, used))
    }

    /// Records an admin event now, after the link's queued recipient events so the chain stays in
    /// order; if the store refuses, everything goes back to the queue and is retried.
    async fn record(&self, id: LinkId, draft: Draft) {
        if let Err(e) = self
            .gate
            .audit
            .write_now(&self.gate.store, self.gate.audit_retention, id, draft)
            .await
        {
            tracing::warn!(link = %id, error = %e, "audit events queued for retry");
        }
    }

    /// The link, if it exists and this caller may see it.
    async fn visible(&self, caller: &Caller, id: LinkId) -> Result<Link, ApiError> {
        match self.gate.store.get(id).await? {
            Some(link) if caller.sees(&link) => Ok(link),
            _ => Err(ApiError::not_found()),
        }
    }

    /// Sizes of every document and rendition, asked of the origin all at once.
    async fn fill_sizes(&self, store: &str, documents: &mut [Document]) {
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
    async fn object_size(&self, store: &str, object: &str) -> Option<u64> {
        self.gate.upstreams.get(store)?.size_of(object).await
    }

    async fn create(
        &self,
        session: &mut ServerSession,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let body = self.read_json_object(session).await?;
        let now = OffsetDateTime::now_utc();
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
        } = parse_link_body(body, now)?;
        if !self.gate.upstreams.contains_key(&store) {
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
        let password_hash = match &password {
            Some(p) => Some(hash_password(p).await.map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, e.to_string())
            })?),
            None => None,
        };
        self.fill_sizes(&store, &mut documents).await;
        let mut link =
            Link::with_documents(&store, documents, self.gate.keys.signing_key_id(), now);
        link.rights = rights;
        link.upload = upload;
        link.expires_at = expires_at;
        link.max_downloads = max_downloads;
        link.created_by = created_by.clone();
        link.password_hash = password_hash;
        link.recipient = recipient;
        self.gate.store.create(&link).await?;
        tracing::info!(link = %link.id, store = %link.store, "link created");
        let mut event = origin.event("link.created", "ok", created_by);
        event.document = link.documents.first().map(|d| d.object.clone());
        event.detail = Some(json!({
            "expires_at": opt_time(link.expires_at),
            "max_downloads": link.max_downloads,
            "rights": link.rights,
            "documents": link.documents.iter().map(|d| d.object.as_str()).collect::<Vec<_>>(),
            "upload_folder": link.upload.as_ref().map(|u| u.folder.as_str()),
        }));
        self.record(link.id, event).await;
        Ok((StatusCode::CREATED, link_view(&self.gate, &link, 0)))
    }

    async fn patch(
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

    async fn change(&self, id: LinkId, change: Change) -> Result<Link, ApiError> {
        let result = self.gate.store.update(id, change).await;
        self.gate.cache.invalidate(&id);
        Ok(result?)
    }

    /// Deactivate, activate or cancel.
    async fn set_state(
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

    async fn list(
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
        let page = self.gate.store.list(&query).await?;
        let mut links = Vec::with_capacity(page.links.len());
        for link in &page.links {
            links.push(self.view(link).await?);
        }
        Ok((StatusCode::OK, json!({ "links": links, "next": page.next })))
    }

    async fn events(
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
        let events = self.gate.store.events(id, after, limit).await?;
        let next = (events.len() == limit)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok((
            StatusCode::OK,
            json!({ "link": id, "events": events, "next": next }),
        ))
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
        };
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::POST, ["v1", "links"]) => self.create(session, &caller, &origin).await,
            (&Method::GET, ["v1", "links"]) => self.list(&caller, &origin).await,
            (_, ["v1", "links"]) => Err(method_not_allowed()),
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
                    (_, [] | ["deactivate"] | ["activate"] | ["events"]) => {
                        Err(method_not_allowed())
                    }
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

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        None,
        "method not allowed on this endpoint",
    )
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if session.req_header().method == Method::GET
            && session.req_header().uri.path() == "/v1/openapi.json"
        {
            return bytes_response(
                StatusCode::OK,
                "application/json",
                OPENAPI.as_bytes().to_vec(),
            );
        }
        if session.req_header().method == Method::GET
            && session.req_header().uri.path() == "/metrics"
        {
            return bytes_response(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                crate::metrics::metrics().render(),
            );
        }
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

/// The fields of a `POST /v1/links` body, each checked: everything that needs no store, policy
/// or caller.
struct LinkBody {
    store: String,
    documents: Vec<Document>,
    upload: Option<UploadSpec>,
    expires_at: Option<OffsetDateTime>,
    max_downloads: Option<u64>,
    rights: Vec<Right>,
    created_by: Option<String>,
    password: Option<String>,
    recipient: Option<Recipient>,
}

/// Reads a `POST /v1/links` body: what `create` runs on every body before it looks at the store,
/// the caller and the policy, and what [`validate_link_body`] (the fuzzing entry point) runs.
fn parse_link_body(
    mut body: Map<String, Value>,
    now: OffsetDateTime,
) -> Result<LinkBody, ApiError> {
    let store =
        take_string(&mut body, "store")?.ok_or_else(|| ApiError::field("store", "is required"))?;
    let documents = take_documents(&mut body)?;
    let upload = take_upload(&mut body)?;
    let expires_at = take_expiry(&mut body, now)?.flatten();
    let max_downloads = take_limit(&mut body)?.flatten();
    let rights = parse_rights(body.remove("rights"))?;
    check_shape(&rights, &documents, upload.as_ref())?;
    let created_by = check_identity("created_by", take_string(&mut body, "created_by")?)?;
    let password = take_password(&mut body)?.flatten();
    let recipient = take_recipient(&mut body)?;
    refuse_unknown(&body)?;
    Ok(LinkBody {
        store,
        documents,
        upload,
        expires_at,
        max_downloads,
        rights,
        created_by,
        password,
        recipient,
    })
}

/// A request body that must be a JSON object (`POST /v1/links`, `PATCH /v1/links/{id}`).
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("a JSON object body is required"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// The fields of a `PATCH /v1/links/{id}` body, each checked; absent fields are `None`, and
/// `Some(None)` clears (`expires_at`, `max_downloads`, `password` set to null).
#[derive(Debug)]
pub struct PatchBody {
    pub expires_at: Option<Option<OffsetDateTime>>,
    pub max_downloads: Option<Option<u64>>,
    /// Already sanitised.
    pub filename: Option<String>,
    pub changed_by: Option<String>,
    pub password: Option<Option<String>>,
}

/// Reads a `PATCH /v1/links/{id}` body: what `patch` runs on every body before it looks at the
/// policy, the caller and the link.
fn parse_patch_body(
    mut body: Map<String, Value>,
    now: OffsetDateTime,
) -> Result<PatchBody, ApiError> {
    let expires_at = take_expiry(&mut body, now)?;
    let max_downloads = take_limit(&mut body)?;
    let filename = take_string(&mut body, "filename")?.map(|f| sanitize_filename(&f));
    let changed_by = check_identity("changed_by", take_string(&mut body, "changed_by")?)?;
    let password = take_password(&mut body)?;
    refuse_unknown(&body)?;
    if expires_at.is_none() && max_downloads.is_none() && filename.is_none() && password.is_none() {
        return Err(ApiError::field(
            "body",
            "names nothing to change (expires_at, max_downloads, filename, password)",
        ));
    }
    Ok(PatchBody {
        expires_at,
        max_downloads,
        filename,
        changed_by,
        password,
    })
}

fn api_message(e: ApiError) -> String {
    format!("{}: {}", e.field.unwrap_or_default(), e.message)
}

/// The request-only part of `POST /v1/links` validation, through the same functions `create`
/// uses ([`json_object`], [`parse_link_body`]) from the same bytes: the entry point for fuzzing,
/// and what an integrator's body must pass before anything else is looked at.
pub fn validate_link_body(body: &[u8], now: OffsetDateTime) -> Result<(), String> {
    let body = json_object(body).map_err(api_message)?;
    parse_link_body(body, now).map(|_| ()).map_err(api_message)
}

/// The request-only part of `PATCH /v1/links/{id}` validation, through the same functions
/// `patch` uses ([`json_object`], [`parse_patch_body`]) from the same bytes: the entry point
/// for fuzzing.
pub fn validate_patch_body(body: &[u8], now: OffsetDateTime) -> Result<PatchBody, String> {
    let body = json_object(body).map_err(api_message)?;
    parse_patch_body(body, now).map_err(api_message)
}
