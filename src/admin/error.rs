//! Errors of the admin API: status, the field concerned and a message, as JSON.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::state::StoreError;

/// An API error: status, the field concerned (if any) and a message.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) field: Option<String>,
    pub(super) message: String,
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

pub(super) fn error_response(e: ApiError) -> Response<Vec<u8>> {
    let mut err = json!({ "message": e.message });
    if let Some(f) = e.field {
        err["field"] = Value::String(f);
    }
    json_response(e.status, &json!({ "error": err }))
}
