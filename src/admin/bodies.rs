//! Request bodies of the admin API: every field read and checked, naming the field when it is
//! wrong. `create` and `patch` run these first; the fuzz targets run the same functions.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::model::link::{
    check_object_key, sanitize_filename, valid_rendition_name, ChangePolicy, Document, Link,
    Recipient, Rendition, Right, UploadSpec, Watermark,
};
use crate::model::policy::{valid_type_pattern, Policy, Proposed};
use crate::model::webhook::{self, WebhookTarget};
use crate::state::StoreError;

use super::error::ApiError;

pub(super) fn take_string(
    body: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    match body.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// An identity (`created_by`, `changed_by`, `?by=`): at most 256 characters, no control characters.
pub(super) fn check_identity(
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
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

pub(super) fn parse_expiry(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, ApiError> {
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
pub(super) fn take_expiry(
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
pub(super) fn take_limit(body: &mut Map<String, Value>) -> Result<Option<Option<u64>>, ApiError> {
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

pub(super) fn parse_rights(value: Option<Value>) -> Result<Vec<Right>, ApiError> {
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
            ApiError::field("rights", format!("unknown right `{text}`; known rights: view, download, download:<rendition>, upload, review, approve"))
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
pub(super) fn object_key(value: Option<Value>, field: &str) -> Result<String, ApiError> {
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
pub(super) fn display_name(
    value: Option<Value>,
    field: &str,
    key: &str,
) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(sanitize_filename(key.rsplit('/').next().unwrap_or(key))),
        Some(Value::String(name)) => Ok(sanitize_filename(&name)),
        Some(_) => Err(ApiError::field(field, "must be a string")),
    }
}

/// `renditions`: `{"lowres": {"object": "…", "filename": "…"}}` or `{"lowres": "key"}`.
pub(super) fn parse_renditions(
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
            return Err(ApiError::field(&at, "a rendition name is 1 to 32 of a-z, 0-9, `_` and `-` (not original, view, download, page or thumbnail)"));
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
                etag: None,
                last_modified: None,
            },
        );
    }
    Ok(out)
}

/// The documents of a new link: `object` (+ `filename`, `renditions`) for one, or `documents`.
pub(super) fn take_documents(body: &mut Map<String, Value>) -> Result<Vec<Document>, ApiError> {
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
pub(super) fn take_upload(body: &mut Map<String, Value>) -> Result<Option<UploadSpec>, ApiError> {
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
pub(super) fn check_shape(
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
            if !documents.iter().any(|d| d.has_rendition(name)) {
                return Err(ApiError::field(
                    "rights",
                    format!(
                        "`{r}` names a rendition no document has and the gateway does not make"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the operator's policy against a link as it would be stored (the password's length was
/// checked when it arrived; here only its presence counts).
pub(super) fn check_policy(
    policy: &Policy,
    link: &Link,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
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
pub(super) fn take_password(
    body: &mut Map<String, Value>,
) -> Result<Option<Option<String>>, ApiError> {
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
/// An address as given, without the spaces and tabs around it (nothing else is trimmed, so the
/// document's pattern says exactly what is taken).
pub(super) fn trim_blank(text: &str) -> &str {
    text.trim_matches(|c| c == ' ' || c == '\t')
}

/// The address forms the API takes (the OpenAPI document's pattern for every address): a
/// dot-atom local part (RFC 5322 `atext`, no leading, trailing or doubled dots) and a domain of
/// two or more DNS labels (letters, digits, inner hyphens; 1 to 63 characters each).
fn address_form(email: &str) -> bool {
    const ATEXT: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let atom = |a: &str| {
        !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || ATEXT.contains(&b))
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        (1..=63).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    local.split('.').all(atom) && domain.split('.').count() >= 2 && domain.split('.').all(label)
}

pub(super) fn valid_email(email: &str) -> bool {
    if !address_form(email) {
        return false;
    }
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

pub(super) fn take_recipient(body: &mut Map<String, Value>) -> Result<Option<Recipient>, ApiError> {
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
        Some(Value::String(e)) if valid_email(trim_blank(&e)) => Some(trim_blank(&e).to_string()),
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
    let name = match r.remove("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => {
            crate::model::share::check_line(&n, crate::model::share::MAX_NAME_CHARS)
                .map_err(|m| ApiError::field("recipient.name", m))?;
            Some(n.trim().to_string())
        }
        Some(_) => return Err(ApiError::field("recipient.name", "must be a string")),
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
        name,
    }))
}

/// `watermark`: `"off"`, `"viewer"` or `"all"`; absent or null is `None`.
pub(super) fn take_watermark(body: &mut Map<String, Value>) -> Result<Option<Watermark>, ApiError> {
    match body.remove("watermark") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if Watermark::parse(&s).is_some() => Ok(Watermark::parse(&s)),
        Some(_) => Err(ApiError::field(
            "watermark",
            "must be \"off\", \"viewer\" or \"all\"",
        )),
    }
}

/// `on_change`: `"serve_latest"` or `"refuse"`; absent or null is `None`.
pub(super) fn take_on_change(
    body: &mut Map<String, Value>,
) -> Result<Option<ChangePolicy>, ApiError> {
    match body.remove("on_change") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if ChangePolicy::parse(&s).is_some() => Ok(ChangePolicy::parse(&s)),
        Some(_) => Err(ApiError::field(
            "on_change",
            "must be \"serve_latest\" or \"refuse\"",
        )),
    }
}

/// A `PATCH`'s `recipient`: `{"email": …, "require_code": …}` where `email` is required (an
/// address is added or replaced; it cannot be removed) and `require_code` may be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientPatch {
    pub email: String,
    pub require_code: Option<bool>,
}

pub(super) fn take_recipient_patch(
    body: &mut Map<String, Value>,
) -> Result<Option<RecipientPatch>, ApiError> {
    let Some(value) = body.remove("recipient") else {
        return Ok(None);
    };
    let Value::Object(mut r) = value else {
        return Err(ApiError::field(
            "recipient",
            "must be an object like {\"email\": \"jane@example.org\"} (a recipient cannot be removed)",
        ));
    };
    let email = match r.remove("email") {
        Some(Value::String(e)) if valid_email(trim_blank(&e)) => trim_blank(&e).to_string(),
        _ => {
            return Err(ApiError::field(
                "recipient.email",
                "is required: a mail address like jane@example.org",
            ))
        }
    };
    let require_code = match r.remove("require_code") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(ApiError::field(
                "recipient.require_code",
                "must be true or false",
            ))
        }
    };
    if let Some(unknown) = r.keys().next() {
        return Err(ApiError::field(
            &format!("recipient.{unknown}"),
            "is not a known field",
        ));
    }
    Ok(Some(RecipientPatch {
        email,
        require_code,
    }))
}

pub(super) fn refuse_unknown(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.keys().next() {
        Some(unknown) => Err(ApiError::field(unknown, "is not a known field")),
        None => Ok(()),
    }
}

/// Query parameters, percent-decoded; pairs that are not UTF-8 are dropped.
pub fn parse_query(query: &str) -> HashMap<String, String> {
    crate::model::urlencoded::pairs(query)
        .flatten()
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// The fields of a `POST /v1/links` body, each checked: everything that needs no store, policy
/// or caller.
pub(super) struct LinkBody {
    pub(super) store: String,
    pub(super) documents: Vec<Document>,
    pub(super) upload: Option<UploadSpec>,
    pub(super) expires_at: Option<OffsetDateTime>,
    pub(super) max_downloads: Option<u64>,
    pub(super) rights: Vec<Right>,
    pub(super) created_by: Option<String>,
    pub(super) password: Option<String>,
    pub(super) recipient: Option<Recipient>,
    pub(super) on_change: ChangePolicy,
    pub(super) watermark: Watermark,
    pub(super) webhook: Option<WebhookTarget>,
    pub(super) notify_sender: Option<String>,
}

/// Reads a `POST /v1/links` body: what `create` runs on every body before it looks at the store,
/// the caller and the policy, and what [`validate_link_body`] (the fuzzing entry point) runs.
pub(super) fn parse_link_body(
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
    let on_change = take_on_change(&mut body)?.unwrap_or_default();
    let watermark = take_watermark(&mut body)?.unwrap_or_default();
    let webhook = take_webhook(&mut body)?;
    let notify_sender = take_notify_sender(&mut body)?;
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
        on_change,
        watermark,
        webhook,
        notify_sender,
    })
}

/// `webhook`: `{"url": "https://…", "secret": "…", "events": ["download.completed"]}`.
pub(super) fn take_webhook(
    body: &mut Map<String, Value>,
) -> Result<Option<WebhookTarget>, ApiError> {
    let Some(value) = body.remove("webhook").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Object(mut w) = value else {
        return Err(ApiError::field(
            "webhook",
            "must be an object like {\"url\": \"https://dms.example.org/hooks\", \"secret\": \"…\"}",
        ));
    };
    let url = match w.remove("url") {
        Some(Value::String(u)) => {
            webhook::check_url(&u).map_err(|m| ApiError::field("webhook.url", m))?;
            u
        }
        None | Some(Value::Null) => return Err(ApiError::field("webhook.url", "is required")),
        Some(_) => return Err(ApiError::field("webhook.url", "must be a string")),
    };
    let secret = match w.remove("secret") {
        Some(Value::String(s)) => {
            webhook::check_secret(&s).map_err(|m| ApiError::field("webhook.secret", m))?;
            s
        }
        None | Some(Value::Null) => return Err(ApiError::field("webhook.secret", "is required")),
        Some(_) => return Err(ApiError::field("webhook.secret", "must be a string")),
    };
    let events = match w.remove("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut events = Vec::new();
            for item in items {
                let Value::String(e) = item else {
                    return Err(ApiError::field(
                        "webhook.events",
                        "must contain only strings",
                    ));
                };
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            webhook::check_events(&events).map_err(|m| ApiError::field("webhook.events", m))?;
            Some(events)
        }
        Some(_) => {
            return Err(ApiError::field(
                "webhook.events",
                "must be an array of event names",
            ))
        }
    };
    if let Some(unknown) = w.keys().next() {
        return Err(ApiError::field(
            &format!("webhook.{unknown}"),
            "is not a known field",
        ));
    }
    Ok(Some(WebhookTarget {
        url,
        secret,
        events,
    }))
}

/// `notify_sender`: an address mailed once, on the link's first completed download.
pub(super) fn take_notify_sender(
    body: &mut Map<String, Value>,
) -> Result<Option<String>, ApiError> {
    match body.remove("notify_sender") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(e)) if valid_email(trim_blank(&e)) => {
            Ok(Some(trim_blank(&e).to_string()))
        }
        Some(_) => Err(ApiError::field(
            "notify_sender",
            "must be a mail address like sender@example.org, or null",
        )),
    }
}

/// A request body that must be a JSON object (`POST /v1/links`, `PATCH /v1/links/{id}`).
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
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
    pub on_change: Option<ChangePolicy>,
    pub watermark: Option<Watermark>,
    pub recipient: Option<RecipientPatch>,
}

/// Reads a `PATCH /v1/links/{id}` body: what `patch` runs on every body before it looks at the
/// policy, the caller and the link.
pub(super) fn parse_patch_body(
    mut body: Map<String, Value>,
    now: OffsetDateTime,
) -> Result<PatchBody, ApiError> {
    let expires_at = take_expiry(&mut body, now)?;
    let max_downloads = take_limit(&mut body)?;
    let filename = take_string(&mut body, "filename")?.map(|f| sanitize_filename(&f));
    let changed_by = check_identity("changed_by", take_string(&mut body, "changed_by")?)?;
    let password = take_password(&mut body)?;
    let on_change = take_on_change(&mut body)?;
    let watermark = take_watermark(&mut body)?;
    let recipient = take_recipient_patch(&mut body)?;
    refuse_unknown(&body)?;
    if expires_at.is_none()
        && max_downloads.is_none()
        && filename.is_none()
        && password.is_none()
        && on_change.is_none()
        && watermark.is_none()
        && recipient.is_none()
    {
        return Err(ApiError::field(
            "body",
            "names nothing to change (expires_at, max_downloads, filename, password, on_change, watermark, recipient)",
        ));
    }
    Ok(PatchBody {
        expires_at,
        max_downloads,
        filename,
        changed_by,
        password,
        on_change,
        watermark,
        recipient,
    })
}

pub(super) fn api_message(e: ApiError) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    /// The field a create body is refused for (`None` when accepted).
    fn refused_field(body: Value) -> Option<String> {
        let Value::Object(map) = body else {
            panic!("test bodies are objects")
        };
        match parse_link_body(map, now()) {
            Ok(_) => None,
            Err(e) => Some(e.field.unwrap_or_default()),
        }
    }

    fn patch(body: Value) -> Result<PatchBody, String> {
        validate_patch_body(body.to_string().as_bytes(), now())
    }

    #[test]
    fn a_minimal_create_body_gets_the_defaults() {
        let Value::Object(map) = json!({"store": "docs", "object": "a/b.pdf"}) else {
            unreachable!()
        };
        let b = parse_link_body(map, now()).map_err(api_message).unwrap();
        assert_eq!(b.store, "docs");
        assert_eq!(b.documents.len(), 1);
        assert_eq!(b.documents[0].object, "a/b.pdf");
        assert_eq!(b.documents[0].filename, "b.pdf");
        assert_eq!(b.rights, vec![Right::Download]);
        assert_eq!((b.expires_at, b.max_downloads), (None, None));
        assert!(b.password.is_none() && b.recipient.is_none() && b.upload.is_none());
    }

    #[test]
    fn each_bad_create_field_is_named() {
        let base = || json!({"store": "docs", "object": "a.pdf"});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert_eq!(
            refused_field(json!({"object": "a.pdf"})).as_deref(),
            Some("store")
        );
        assert_eq!(
            refused_field(with("store", json!(1))).as_deref(),
            Some("store")
        );
        for bad in [
            json!("../x"),
            json!("a//b"),
            json!(""),
            json!("a\u{1}b"),
            json!(7),
        ] {
            assert!(
                refused_field(with("object", bad.clone())).is_some(),
                "{bad}"
            );
        }
        for bad in [
            json!("yesterday"),
            json!("1970-01-01T00:00:00Z"),
            json!("9999-12-31T23:59:59-23:59"),
            json!(5),
        ] {
            assert_eq!(
                refused_field(with("expires_at", bad.clone())).as_deref(),
                Some("expires_at"),
                "{bad}"
            );
        }
        for bad in [json!(0), json!(-1), json!(1.5), json!("3")] {
            assert_eq!(
                refused_field(with("max_downloads", bad.clone())).as_deref(),
                Some("max_downloads"),
                "{bad}"
            );
        }
        for bad in [json!("download"), json!([]), json!(["fly"]), json!([1])] {
            assert_eq!(
                refused_field(with("rights", bad.clone())).as_deref(),
                Some("rights"),
                "{bad}"
            );
        }
        assert_eq!(
            refused_field(with("created_by", json!(""))).as_deref(),
            Some("created_by")
        );
        assert_eq!(
            refused_field(with("recipient", json!({"email": "not-an-address"}))).as_deref(),
            Some("recipient.email")
        );
        assert_eq!(
            refused_field(with("recipient", json!({"require_code": true}))).as_deref(),
            Some("recipient.require_code"),
            "codes need an address to go to"
        );
        assert_eq!(
            refused_field(with("recipient", json!({"email": "a@b.org", "cc": "x"}))).as_deref(),
            Some("recipient.cc")
        );
        assert_eq!(
            refused_field(with("colour", json!("blue"))).as_deref(),
            Some("colour"),
            "unknown fields are refused, not ignored"
        );
    }

    #[test]
    fn good_optional_create_fields_are_taken() {
        let Value::Object(map) = json!({
            "store": "docs", "object": "a.pdf", "max_downloads": 3,
            "expires_at": "2030-01-01T10:00:00+02:00", "rights": ["view", "download", "view"],
            "created_by": "alice", "recipient": {"email": " jane@example.org "}
        }) else {
            unreachable!()
        };
        let b = parse_link_body(map, now()).map_err(api_message).unwrap();
        assert_eq!(b.max_downloads, Some(3));
        assert_eq!(
            b.expires_at.map(|t| t.offset()),
            Some(time::UtcOffset::UTC),
            "stored in UTC"
        );
        assert_eq!(b.rights.len(), 2, "duplicates dropped");
        assert_eq!(b.created_by.as_deref(), Some("alice"));
        assert_eq!(
            b.recipient.and_then(|r| r.email).as_deref(),
            Some("jane@example.org")
        );
    }

    #[test]
    fn patch_bodies_distinguish_absent_from_cleared() {
        let p = patch(json!({"max_downloads": null})).unwrap();
        assert_eq!(p.max_downloads, Some(None), "null clears the limit");
        assert_eq!(p.expires_at, None, "absent leaves the expiry");
        let p = patch(json!({"expires_at": null, "filename": "a/b:c.pdf"})).unwrap();
        assert_eq!(p.expires_at, Some(None));
        assert_eq!(
            p.filename.as_deref(),
            Some("a_b_c.pdf"),
            "display names are sanitised"
        );
        assert!(patch(json!({})).unwrap_err().starts_with("body:"));
        assert!(patch(json!({"changed_by": "bob"}))
            .unwrap_err()
            .starts_with("body:"));
        assert!(patch(json!({"store": "other", "max_downloads": 2}))
            .unwrap_err()
            .starts_with("store:"));
        assert!(patch(json!({"max_downloads": 0}))
            .unwrap_err()
            .starts_with("max_downloads:"));
        assert!(validate_patch_body(b"[1]", now()).is_err());
        assert!(validate_patch_body(b"", now()).is_err());
    }

    #[test]
    fn on_change_and_a_recipient_address_are_read_and_named_when_wrong() {
        let p = patch(json!({"on_change": "refuse"})).unwrap();
        assert_eq!(p.on_change, Some(ChangePolicy::Refuse));
        for bad in [json!("latest"), json!(1), json!(true)] {
            assert!(patch(json!({ "on_change": bad }))
                .unwrap_err()
                .starts_with("on_change:"));
            assert_eq!(
                refused_field(json!({"store": "docs", "object": "a.pdf", "on_change": bad}))
                    .as_deref(),
                Some("on_change")
            );
        }
        let p = patch(json!({"recipient": {"email": " jane@example.org "}})).unwrap();
        assert_eq!(
            p.recipient,
            Some(RecipientPatch {
                email: "jane@example.org".into(),
                require_code: None
            })
        );
        for (body, field) in [
            (json!({"recipient": null}), "recipient:"),
            (json!({"recipient": {}}), "recipient.email:"),
            (json!({"recipient": {"email": "nope"}}), "recipient.email:"),
            (
                json!({"recipient": {"email": "a@b.org", "require_code": "yes"}}),
                "recipient.require_code:",
            ),
            (
                json!({"recipient": {"email": "a@b.org", "name": "A"}}),
                "recipient.name:",
            ),
        ] {
            let e = patch(body.clone()).unwrap_err();
            assert!(e.starts_with(field), "{body}: {e}");
        }
    }

    #[test]
    fn query_strings_decode_like_forms() {
        let q = parse_query("object=a%2Fb+c.pdf&&=x&state=active&bad=%FF");
        assert_eq!(q.get("object").map(String::as_str), Some("a/b c.pdf"));
        assert_eq!(q.get("state").map(String::as_str), Some("active"));
        assert!(!q.contains_key(""), "empty names are dropped");
        assert!(
            !q.contains_key("bad"),
            "pairs that are not UTF-8 are dropped"
        );
    }
}
