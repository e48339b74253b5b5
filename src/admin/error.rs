//! Errors of the admin API as RFC 9457 problem details (`application/problem+json`): a stable
//! `type` URI per kind of error (identifiers, not pages: see docs/admin-api.md), a `title` per
//! type, the `status`, a `detail` for this occurrence, and `field` naming the offending field or
//! query parameter where there is one.

use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use crate::state::StoreError;

/// The prefix of every problem `type`.
pub const PROBLEM_BASE: &str = "https://linkgate.dev/problems/";

/// Every problem type the API answers with: (`type` suffix, `title`).
pub const PROBLEMS: &[(&str, &str)] = &[
    ("malformed-request", "The request could not be read"),
    ("unauthorized", "Missing or wrong admin token"),
    ("forbidden", "Not allowed for this caller"),
    ("not-found", "No such resource"),
    ("method-not-allowed", "Method not allowed"),
    ("conflict", "The resource's state does not allow this"),
    (
        "idempotency-in-progress",
        "A request with this Idempotency-Key is still being processed",
    ),
    (
        "precondition-failed",
        "The resource changed since it was read (If-Match)",
    ),
    ("body-too-large", "Request body too large"),
    ("invalid-field", "A field breaks a rule"),
    (
        "idempotency-key-reused",
        "Idempotency-Key reused with another request",
    ),
    ("too-many-requests", "Too many requests"),
    ("unavailable", "Service unavailable"),
];

/// An API error: status, problem type, the field concerned (if any), a message, and extra
/// response headers (`Allow` on a 405, `Retry-After`).
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) field: Option<String>,
    pub(super) message: String,
    /// The problem type's suffix; `None`: the default for the status.
    pub(super) kind: Option<&'static str>,
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            field: field.map(str::to_string),
            message: message.into(),
            kind: None,
            headers: Vec::new(),
        }
    }
    pub(super) fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Some(field), message)
    }
    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, None, message)
    }
    pub(super) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, None, "no such link")
    }
    /// A 405 naming the methods the resource serves (`Allow`, RFC 9110 §15.5.6).
    pub(super) fn method_not_allowed(allow: &'static str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("method not allowed on this endpoint (allowed: {allow})"),
        )
        .with_header(http::header::ALLOW, HeaderValue::from_static(allow))
    }
    /// A 412: `If-Match` names a version that is no longer the stored one.
    pub(super) fn stale() -> ApiError {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            Some("If-Match"),
            "the resource changed since that ETag was read: read it again, then retry",
        )
    }
    pub(super) fn kind(mut self, kind: &'static str) -> ApiError {
        self.kind = Some(kind);
        self
    }
    pub(super) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The problem type's suffix (see [`PROBLEMS`]).
    pub fn problem_kind(&self) -> &'static str {
        if let Some(k) = self.kind {
            return k;
        }
        match self.status.as_u16() {
            400 => "malformed-request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            409 => "conflict",
            412 => "precondition-failed",
            413 => "body-too-large",
            429 => "too-many-requests",
            s if s >= 500 => "unavailable",
            _ => "invalid-field",
        }
    }

    /// The problem details document (RFC 9457).
    pub fn problem(&self, instance: Option<&str>) -> Value {
        let kind = self.problem_kind();
        let title = PROBLEMS
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, t)| *t)
            .unwrap_or("Error");
        let mut p = json!({
            "type": format!("{PROBLEM_BASE}{kind}"),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.message,
        });
        if let Some(i) = instance {
            p["instance"] = Value::String(i.to_string());
        }
        if let Some(f) = &self.field {
            p["field"] = Value::String(f.clone());
        }
        p
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(_) => ApiError::not_found(),
            StoreError::Refused(m) if m == STALE => ApiError::stale(),
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

/// What a change refuses with when the record is not the version `If-Match` named (a 412).
pub(super) const STALE: &str = "if-match: stale";

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes_response(status, "application/json", bytes)
}

pub(super) fn bytes_response(
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

pub(super) fn error_response(e: ApiError, instance: Option<&str>) -> Response<Vec<u8>> {
    let bytes = serde_json::to_vec_pretty(&e.problem(instance)).unwrap_or_default();
    let mut resp = bytes_response(e.status, "application/problem+json", bytes);
    for (name, value) in e.headers {
        resp.headers_mut().insert(name, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_documented_problem_type() {
        for s in [400, 401, 403, 404, 405, 409, 412, 413, 422, 429, 503] {
            let e = ApiError::new(StatusCode::from_u16(s).unwrap(), None, "x");
            let kind = e.problem_kind();
            assert!(PROBLEMS.iter().any(|(k, _)| *k == kind), "{s}: {kind}");
            let p = e.problem(None);
            assert_eq!(p["status"], s);
            assert!(p["type"].as_str().unwrap().starts_with(PROBLEM_BASE));
        }
        let e = ApiError::method_not_allowed("GET, POST");
        assert_eq!(e.headers[0].1, "GET, POST");
        assert_eq!(ApiError::stale().problem(None)["field"], "If-Match");
    }
}
