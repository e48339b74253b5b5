//! Uploads through a link: a recipient sends files into the link's folder on its store, with the
//! landing page's form (a multipart POST to `/s/{token}?upload`; drag-and-drop is an optional
//! enhancement) or a plain `PUT /s/{token}/{name}` from a script.
//!
//! Every file is streamed to the origin as it arrives, never buffered whole. The rules, in the
//! order they are checked:
//! - the name is sanitised like display names (`\ / : * ? " < > |` and controls become `_`);
//! - its type, from the name's extension, must be accepted (415);
//! - a declared or actual size above the cap is refused (413);
//! - the link's expected count (`max_files`) is claimed atomically in the link store (403 when
//!   all files have arrived), and given back if the upload fails;
//! - a name already present, or being uploaded by someone else right now, is refused (409) unless
//!   the link allows overwriting; the origin is also sent `If-None-Match: *` so an origin that
//!   supports conditional writes enforces it too.
//!
//! A file that does not arrive whole never becomes visible under its name: the origin request is
//! abandoned (its connection closed) before the body is complete, and origins write a PUT body
//! to a temporary file and rename it when it is complete (nginx's DAV module, S3, most WebDAV
//! servers).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use serde_json::json;

use crate::docstore::write::WriteError;
use crate::docstore::DocStore;
use crate::model::audit::Draft;
use crate::model::link::check_object_key;
use crate::model::link::{sanitize_filename, Link, LinkState};
use crate::model::policy::{Policy, DEFAULT_UPLOAD_MAX_BYTES};
use crate::share::gate::{FormToken, Gate};
use crate::share::i18n::{t, tr, Lang};
use crate::share::pages;
use crate::share::pages::Reply;
use crate::state::keys;
use crate::state::{Change, StoreError};

/// How long a name stays claimed by an upload in progress (cleared as soon as it ends).
const NAME_CLAIM: Duration = Duration::from_secs(6 * 3600);
/// After a refused upload, how much of the rest of the request body is read (and dropped) so that
/// the client sees the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// Form fields other than files (the CSRF token) are small.
const MAX_TEXT_FIELD: usize = 4096;

/// How slow an upload may be: once `grace` has passed, its average rate since its start must
/// stay at or above `min_bytes_per_second` (0 turns the check off). A file that falls behind is
/// refused (408), which gives back its slot of the link's expected files and its name claim, so
/// slow or stalled uploads cannot hold them for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub min_bytes_per_second: u64,
    pub grace: Duration,
}

impl Pace {
    /// When the next piece of a file that has sent `total` bytes since `started` must have
    /// arrived; `None` without a minimum rate.
    fn deadline(&self, started: tokio::time::Instant, total: u64) -> Option<tokio::time::Instant> {
        if self.min_bytes_per_second == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(total as f64 / self.min_bytes_per_second as f64);
        Some(started + earned.max(self.grace))
    }
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            min_bytes_per_second: 1024,
            grace: Duration::from_secs(30),
        }
    }
}

/// Whether a request is an upload: a `PUT`, or a `POST` to `?upload`.
pub fn is_upload(req: &RequestHeader) -> bool {
    req.method == Method::PUT
        || (req.method == Method::POST
            && req
                .uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "upload")))
}

/// The rules one link's uploads follow: the link's own settings within the operator's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub max_bytes: u64,
    pub allowed_types: Option<Vec<String>>,
    pub overwrite: bool,
    pub max_files: Option<u64>,
}

impl Rules {
    pub fn for_link(link: &Link, policy: &Policy) -> Rules {
        let spec = link.upload.as_ref();
        let policy_max = policy.upload_max_bytes.unwrap_or(DEFAULT_UPLOAD_MAX_BYTES);
        Rules {
            max_bytes: spec
                .and_then(|s| s.max_bytes)
                .map_or(policy_max, |m| m.min(policy_max)),
            allowed_types: spec
                .and_then(|s| s.allowed_types.clone())
                .or_else(|| policy.upload_allowed_types.clone()),
            overwrite: spec.is_some_and(|s| s.overwrite),
            max_files: spec.and_then(|s| s.max_files),
        }
    }

    pub fn accepts_type(&self, media_type: &str) -> bool {
        self.allowed_types
            .as_deref()
            .is_none_or(|allowed| type_matches(allowed, media_type))
    }
}

/// The media type a file name's extension gives (`application/octet-stream` when none is known).
pub fn type_of(name: &str) -> &'static str {
    mime_guess::from_path(name)
        .first_raw()
        .unwrap_or("application/octet-stream")
}

use crate::model::policy::type_matches;

/// The file name a `PUT /s/{token}/{name}` names: exactly one percent-encoded segment after the
/// token, decoded and sanitised.
pub fn name_of_put_path(path: &str) -> Result<String, UploadError> {
    let usage = || {
        UploadError::BadRequest(
            "upload with PUT /s/TOKEN/FILENAME (one path segment, percent-encoded)".into(),
        )
    };
    let rest = path.strip_prefix("/s/").ok_or_else(usage)?;
    let mut parts = rest.splitn(2, '/');
    let (_token, name) = (parts.next(), parts.next().ok_or_else(usage)?);
    if name.is_empty() || name.contains('/') {
        return Err(usage());
    }
    let decoded = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .map_err(|_| UploadError::BadRequest("the file name is not valid UTF-8".into()))?;
    clean_name(&decoded)
}

/// A sanitised file name, or why there is none.
pub fn clean_name(raw: &str) -> Result<String, UploadError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        return Err(UploadError::BadRequest("the file needs a name".into()));
    }
    // Browsers on Windows used to send the whole path: keep its last part.
    let last = trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed);
    Ok(sanitize_filename(if last.trim().is_empty() {
        trimmed
    } else {
        last
    }))
}

/// Why a form upload without any file is refused.
const NO_FILE: &str = "no file was chosen";

/// Why an upload was refused or failed; each has the status and the message the client gets.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the file is larger than this link accepts (at most {} per file)", pages::human_size(*.0))]
    TooLarge(u64),
    #[error("files of type {0} are not accepted by this link")]
    Type(String),
    #[error("a file named \"{0}\" already exists; rename it and try again")]
    Exists(String),
    #[error("a file named \"{0}\" is being uploaded right now; try again later or rename it")]
    Busy(String),
    #[error("this link has received all the files it expects ({0})")]
    Full(u64),
    #[error("the form has expired; reload the page and try again")]
    Form,
    #[error("the upload broke off before the file was complete")]
    ClientGone,
    #[error("the upload was slower than {0} bytes per second")]
    TooSlow(u64),
    #[error("the document store refused the file (status {0})")]
    OriginStatus(u16),
    #[error("the document store could not be reached")]
    Origin(String),
    #[error("the service is temporarily unavailable")]
    Store(#[from] StoreError),
    #[error("this link is no longer valid")]
    Gone,
}

impl UploadError {
    /// What the upload form's result page says, in `lang`.
    pub fn page_text(&self, lang: Lang) -> String {
        use fluent_bundle::FluentValue;
        let one = |id: &str, key: &str, value: FluentValue| tr(lang, id, &[(key, value)]);
        match self {
            UploadError::BadRequest(why) if why == NO_FILE => t(lang, "upload-err-none"),
            UploadError::BadRequest(_) => t(lang, "upload-err-bad"),
            UploadError::TooLarge(max) => one(
                "upload-err-too-large",
                "size",
                FluentValue::from(pages::size_in(lang, *max)),
            ),
            UploadError::Type(ty) => one("upload-err-type", "type", FluentValue::from(ty.as_str())),
            UploadError::Exists(name) => one(
                "upload-err-exists",
                "name",
                FluentValue::from(name.as_str()),
            ),
            UploadError::Busy(name) => {
                one("upload-err-busy", "name", FluentValue::from(name.as_str()))
            }
            UploadError::Full(n) => one("upload-err-full", "expected", FluentValue::from(*n)),
            UploadError::Form => t(lang, "form-expired-text"),
            UploadError::ClientGone => t(lang, "upload-err-broken"),
            UploadError::TooSlow(_) => t(lang, "upload-err-slow"),
            UploadError::OriginStatus(_) | UploadError::Origin(_) => t(lang, "upload-err-store"),
            UploadError::Store(_) => t(lang, "status-503-text"),
            UploadError::Gone => t(lang, "notfound-text"),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            UploadError::BadRequest(_) | UploadError::ClientGone => 400,
            UploadError::TooLarge(_) => 413,
            UploadError::Type(_) => 415,
            UploadError::Exists(_) | UploadError::Busy(_) => 409,
            UploadError::Full(_) | UploadError::Form => 403,
            UploadError::TooSlow(_) => 408,
            UploadError::OriginStatus(_) | UploadError::Origin(_) => 502,
            UploadError::Store(_) => 503,
            UploadError::Gone => 404,
        }
    }

    /// The short reason recorded in events and logs.
    fn reason(&self) -> &'static str {
        match self {
            UploadError::BadRequest(_) => "bad request",
            UploadError::TooLarge(_) => "too large",
            UploadError::Type(_) => "type not accepted",
            UploadError::Exists(_) => "name taken",
            UploadError::Busy(_) => "name being uploaded",
            UploadError::Full(_) => "expected count reached",
            UploadError::Form => "form expired",
            UploadError::ClientGone => "client broke off",
            UploadError::TooSlow(_) => "too slow",
            UploadError::OriginStatus(_) | UploadError::Origin(_) => "origin failed",
            UploadError::Store(_) => "link store unavailable",
            UploadError::Gone => "link gone",
        }
    }
}

impl UploadError {
    fn from_store(e: WriteError, name: &str, max_bytes: u64) -> UploadError {
        match e {
            WriteError::Exists => UploadError::Exists(name.to_string()),
            WriteError::TooLarge => UploadError::TooLarge(max_bytes),
            WriteError::Status(status) => UploadError::OriginStatus(status),
            WriteError::Failed(why) => UploadError::Origin(why),
            WriteError::Escape => UploadError::BadRequest("the file name is not usable".into()),
        }
    }
}

/// Where a file's bytes come from: the request body of a PUT, or one part of a form.
#[async_trait]
trait Chunks: Send {
    /// Called once every check has passed, before the first chunk is asked for.
    async fn ready(&mut self) -> Result<(), UploadError> {
        Ok(())
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, UploadError>;
}

struct RequestBody<'a> {
    session: &'a mut Session,
    /// The client sent `Expect: 100-continue` and waits for the go-ahead.
    expects_continue: bool,
}

#[async_trait]
impl Chunks for RequestBody<'_> {
    async fn ready(&mut self) -> Result<(), UploadError> {
        if self.expects_continue {
            self.session
                .write_continue_response()
                .await
                .map_err(|_| UploadError::ClientGone)?;
        }
        Ok(())
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>, UploadError> {
        crate::share::guard::read_body(self.session)
            .await
            .map_err(|_| UploadError::ClientGone)
    }
}

fn form_error(e: multer::Error) -> UploadError {
    match e {
        multer::Error::StreamReadFailed(_)
        | multer::Error::IncompleteStream
        | multer::Error::IncompleteFieldData { .. } => UploadError::ClientGone,
        other => UploadError::BadRequest(format!("the form could not be read: {other}")),
    }
}

/// The boundary of an upload form's `Content-Type` (`multipart/form-data; boundary=…`).
pub fn form_boundary(content_type: &str) -> Result<String, UploadError> {
    multer::parse_boundary(content_type)
        .map_err(|_| UploadError::BadRequest("send the files as multipart/form-data".into()))
}

/// The parts of a `multipart/form-data` upload form, as [`Upload::form`] reads them from the
/// request body: the `csrf` field's text, and `file` parts with their data still to be read;
/// every other field is read and dropped (bounded). A fuzzing entry point.
pub struct UploadForm<'r> {
    form: multer::Multipart<'r>,
}

/// One part of an upload form that matters.
pub enum FormPart<'r> {
    /// The `csrf` field (at most 4 KiB of UTF-8).
    Csrf(String),
    /// A `file` part; its file name is empty for an empty file input.
    File(Box<FilePart<'r>>),
}

/// A `file` part of an upload form, its data read with [`FilePart::chunk`].
pub struct FilePart<'r>(multer::Field<'r>);

impl FilePart<'_> {
    /// The file name as the client sent it (not sanitised), or empty.
    pub fn name(&self) -> &str {
        self.0.file_name().unwrap_or("")
    }

    /// The next piece of the file's data; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UploadError> {
        self.0.chunk().await.map_err(form_error)
    }

    /// Reads and drops the part (bounded, like any other field).
    pub async fn skip(&mut self) -> Result<(), UploadError> {
        skip(&mut self.0).await
    }
}

#[async_trait]
impl Chunks for FilePart<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, UploadError> {
        self.chunk().await
    }
}

impl<'r> UploadForm<'r> {
    /// The form in `body` (the request body's chunks), its parts separated by `boundary`.
    pub fn new<S, E>(body: S, boundary: String) -> UploadForm<'r>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'r,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'r,
    {
        UploadForm {
            form: multer::Multipart::new(body, boundary),
        }
    }

    /// The next `csrf` or `file` part; `None` at the end of the form. A `file` part must be
    /// read to its end (or skipped) before the next part is asked for.
    pub async fn next_part(&mut self) -> Result<Option<FormPart<'r>>, UploadError> {
        loop {
            let Some(mut field) = self.form.next_field().await.map_err(form_error)? else {
                return Ok(None);
            };
            match field.name() {
                Some("csrf") => {
                    return read_text(&mut field).await.map(|t| Some(FormPart::Csrf(t)))
                }
                Some("file") => return Ok(Some(FormPart::File(Box::new(FilePart(field))))),
                _ => skip(&mut field).await?,
            }
        }
    }
}

/// A file that arrived whole.
#[derive(Debug, Clone)]
pub struct Stored {
    pub name: String,
    pub bytes: u64,
    pub media_type: &'static str,
}

/// One upload request of a link that grants `upload`.
pub struct Upload<'a> {
    pub gate: &'a Gate,
    pub link: &'a Link,
    pub store: &'a DocStore,
    pub rules: Rules,
    pub pace: Pace,
    /// The request's client address and user agent, for events.
    pub client: Option<String>,
    pub user_agent: Option<String>,
}

impl Upload<'_> {
    fn folder(&self) -> Result<&str, UploadError> {
        self.link
            .upload
            .as_ref()
            .map(|u| u.folder.as_str())
            .ok_or(UploadError::Gone)
    }

    fn event(&self, kind: &str, outcome: &str, name: Option<&str>, key: Option<&str>) -> Draft {
        let mut d = Draft::of_request(kind, outcome, self.client.clone(), self.user_agent.clone());
        d.document = key.map(str::to_string);
        if let Some(name) = name {
            d.detail = Some(json!({ "name": name }));
        }
        d
    }

    fn refused(&self, name: Option<&str>, key: Option<&str>, error: &UploadError) {
        let (kind, outcome) = match error {
            UploadError::ClientGone
            | UploadError::TooSlow(_)
            | UploadError::Origin(_)
            | UploadError::OriginStatus(_)
            | UploadError::Store(_) => ("upload.failed", "failed"),
            _ => ("upload.refused", "refused"),
        };
        let mut d = self.event(kind, outcome, name, key);
        d.reason = Some(error.reason().to_string());
        self.gate.audit.push(self.link.id, d);
        tracing::info!(link = %self.link.id, reason = error.reason(), status = error.status(), "upload not stored");
    }

    /// Claims one of the link's expected files (or just counts the upload when there is no limit).
    async fn claim(&self) -> Result<(), UploadError> {
        let (generation, max) = (self.link.generation, self.rules.max_files);
        let change: Change = std::sync::Arc::new(move |link: &mut Link| {
            if link.state != LinkState::Active || link.generation != generation {
                return Err(StoreError::Refused("gone".into()));
            }
            if max.is_some_and(|m| link.uploads >= m) {
                return Err(StoreError::Refused("full".into()));
            }
            link.uploads += 1;
            Ok(())
        });
        let result = self.gate.links.store.update(self.link.id, change).await;
        self.gate.links.cache.invalidate(&self.link.id);
        match result {
            Ok(_) => Ok(()),
            Err(StoreError::Refused(why)) if why == "full" => {
                Err(UploadError::Full(max.unwrap_or(0)))
            }
            Err(StoreError::Refused(_)) | Err(StoreError::NotFound(_)) => Err(UploadError::Gone),
            Err(e) => Err(e.into()),
        }
    }

    async fn unclaim(&self) {
        let change: Change = std::sync::Arc::new(|link: &mut Link| {
            link.uploads = link.uploads.saturating_sub(1);
            Ok(())
        });
        if let Err(e) = self.gate.links.store.update(self.link.id, change).await {
            tracing::error!(link = %self.link.id, error = %e, "could not give back an upload slot");
        }
        self.gate.links.cache.invalidate(&self.link.id);
    }

    /// Checks, claims and streams one file.
    async fn store_file(
        &self,
        raw_name: &str,
        declared: Option<u64>,
        body: &mut dyn Chunks,
    ) -> Result<Stored, (Option<String>, Option<String>, UploadError)> {
        let name = clean_name(raw_name).map_err(|e| (None, None, e))?;
        let fail =
            |key: Option<&str>, e: UploadError| (Some(name.clone()), key.map(str::to_string), e);
        let media_type = type_of(&name);
        if !self.rules.accepts_type(media_type) {
            return Err(fail(None, UploadError::Type(media_type.to_string())));
        }
        if declared.is_some_and(|n| n > self.rules.max_bytes) {
            return Err(fail(None, UploadError::TooLarge(self.rules.max_bytes)));
        }
        let folder = self.folder().map_err(|e| fail(None, e))?;
        let key = format!("{folder}/{name}");
        check_object_key(&key).map_err(|m| {
            fail(
                None,
                UploadError::BadRequest(format!("the file name is not usable: it {m}")),
            )
        })?;
        self.claim().await.map_err(|e| fail(Some(&key), e))?;
        let claim_key = keys::upload_claim(self.link.id, &key);
        let outcome = async {
            if !self.gate.links.store.once(&claim_key, NAME_CLAIM).await? {
                return Err(UploadError::Busy(name.clone()));
            }
            let result = self.stream(&name, &key, media_type, declared, body).await;
            let _ = self.gate.links.store.kv_del(&claim_key).await;
            result
        }
        .await;
        match outcome {
            Ok(bytes) => {
                let mut d = self.event("upload.completed", "ok", Some(&name), Some(&key));
                d.bytes = Some(bytes);
                self.gate.audit.push(self.link.id, d);
                tracing::info!(link = %self.link.id, bytes, "upload stored");
                Ok(Stored {
                    name,
                    bytes,
                    media_type,
                })
            }
            Err(e) => {
                self.unclaim().await;
                Err(fail(Some(&key), e))
            }
        }
    }

    async fn stream(
        &self,
        name: &str,
        key: &str,
        media_type: &str,
        declared: Option<u64>,
        body: &mut dyn Chunks,
    ) -> Result<u64, UploadError> {
        let store_error = |e| UploadError::from_store(e, name, self.rules.max_bytes);
        let writer = &self.gate.writer;
        if !self.rules.overwrite && writer.exists(self.store, key).await.map_err(store_error)? {
            return Err(UploadError::Exists(name.to_string()));
        }
        body.ready().await?;
        let mut out = writer
            .open(self.store, key, declared, media_type, self.rules.overwrite)
            .await
            .map_err(store_error)?;
        let mut total: u64 = 0;
        let started = tokio::time::Instant::now();
        loop {
            let next = body.next_chunk();
            let chunk = match self.pace.deadline(started, total) {
                Some(at) => tokio::time::timeout_at(at, next)
                    .await
                    .unwrap_or(Err(UploadError::TooSlow(self.pace.min_bytes_per_second))),
                None => next.await,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    out.abort().await;
                    return Err(e);
                }
            };
            total += chunk.len() as u64;
            if total > self.rules.max_bytes {
                out.abort().await;
                return Err(UploadError::TooLarge(self.rules.max_bytes));
            }
            if let Err(e) = out.write(chunk).await {
                out.abort().await;
                return Err(store_error(e));
            }
        }
        if declared.is_some_and(|n| n != total) {
            out.abort().await;
            return Err(UploadError::ClientGone);
        }
        out.finish().await.map_err(store_error)?;
        Ok(total)
    }

    /// `PUT /s/{token}/{name}`: one file, the whole request body. Answers JSON.
    pub async fn put(&self, session: &mut Session) -> Reply {
        let result = async {
            let name =
                name_of_put_path(session.req_header().uri.path()).map_err(|e| (None, None, e))?;
            let headers = &session.req_header().headers;
            // HTTP/2 has no chunked coding: a body without Content-Length ends with its stream.
            let chunked = headers.get(header::TRANSFER_ENCODING).is_some()
                || (session.as_downstream().is_http2()
                    && !headers.contains_key(header::CONTENT_LENGTH));
            let declared = if chunked {
                None
            } else {
                headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .or(Some(0))
            };
            let expects_continue = headers
                .get(header::EXPECT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
            let mut body = RequestBody {
                session: &mut *session,
                expects_continue,
            };
            self.store_file(&name, declared, &mut body).await
        }
        .await;
        match result {
            Ok(stored) => json_reply(
                201,
                &json!({ "name": stored.name, "bytes": stored.bytes, "type": stored.media_type }),
            ),
            Err((name, key, e)) => {
                self.refused(name.as_deref(), key.as_deref(), &e);
                drain(session, &e).await;
                json_reply(e.status(), &json!({ "error": e.to_string() }))
            }
        }
    }

    /// `POST /s/{token}?upload` with `multipart/form-data`: every `file` part in order, after the
    /// CSRF token for links behind a password or device check. Answers a page.
    pub async fn form(&self, session: &mut Session, back: &str) -> Reply {
        let content_type = session
            .req_header()
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let device = self
            .gate
            .checks
            .verifier
            .device_of(&session.req_header().headers)
            .unwrap_or_default();
        let mut stored: Vec<(String, u64)> = Vec::new();
        let mut error: Option<UploadError> = None;
        match form_boundary(&content_type) {
            Err(e) => error = Some(e),
            Ok(boundary) => {
                let stream = futures_util::stream::unfold(&mut *session, |s| async move {
                    match crate::share::guard::read_body(s).await {
                        Ok(Some(chunk)) => Some((Ok::<Bytes, pingora::BError>(chunk), s)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), s)),
                    }
                });
                let mut form = UploadForm::new(stream, boundary);
                let mut csrf_ok = !self.link.has_checks();
                loop {
                    let part = match form.next_part().await {
                        Ok(Some(part)) => part,
                        Ok(None) => break,
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    };
                    match part {
                        FormPart::Csrf(token) => {
                            let spent = self
                                .gate
                                .spend_csrf(&token, &self.link.id, &device)
                                .await
                                .map_err(UploadError::from);
                            match spent {
                                Ok(token) => csrf_ok = csrf_ok || token == FormToken::Fresh,
                                Err(e) => {
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                        FormPart::File(mut file) => {
                            if !csrf_ok {
                                error = Some(UploadError::Form);
                                break;
                            }
                            let raw = file.name().to_string();
                            if raw.is_empty() {
                                // An empty file input sends a nameless, empty part.
                                if let Err(e) = file.skip().await {
                                    error = Some(e);
                                    break;
                                }
                                continue;
                            }
                            match self.store_file(&raw, None, &mut *file).await {
                                Ok(s) => stored.push((s.name, s.bytes)),
                                Err((name, key, e)) => {
                                    self.refused(name.as_deref(), key.as_deref(), &e);
                                    error = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        if stored.is_empty() && error.is_none() {
            error = Some(UploadError::BadRequest(NO_FILE.into()));
        }
        let status = match &error {
            None => 200,
            Some(e) => {
                drain(session, e).await;
                e.status()
            }
        };
        let lang = Lang::of(&session.req_header().headers);
        let message = error.map(|e| e.page_text(lang));
        let mut headers = pages::page_headers_owned();
        if status >= 400 && !session.is_body_done() {
            headers.push(("connection", "close".to_string()));
        }
        Reply {
            status,
            headers,
            body: pages::upload_result(lang, &stored, message.as_deref(), back),
        }
    }
}

async fn read_text(field: &mut multer::Field<'_>) -> Result<String, UploadError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if out.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(UploadError::BadRequest("a form field is too long".into()));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| UploadError::BadRequest("a form field is not UTF-8".into()))
}

async fn skip(field: &mut multer::Field<'_>) -> Result<(), UploadError> {
    let mut seen = 0usize;
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        seen += chunk.len();
        if seen > MAX_TEXT_FIELD {
            return Err(UploadError::BadRequest(
                "the form has an unexpected large field".into(),
            ));
        }
    }
    Ok(())
}

/// Reads and drops what is left of a refused request's body (bounded), so the client gets to
/// read the answer; a client refused for being too slow, or whose body could not be read (a
/// read timed out, the body broke off), is not waited for (its connection closes after the
/// answer): waiting again would only double the read timeout.
async fn drain(session: &mut Session, why: &UploadError) {
    if matches!(why, UploadError::TooSlow(_) | UploadError::ClientGone) {
        session.set_keepalive(None);
        return;
    }
    crate::share::guard::drain(session, 0, DRAIN_LIMIT, DRAIN_TIME).await;
}

fn json_reply(status: u16, body: &serde_json::Value) -> Reply {
    Reply {
        status,
        headers: pages::data_headers("application/json"),
        body: Bytes::from(format!("{body}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_in_every_language() {
        crate::share::i18n::take_problems();
        for lang in Lang::ALL {
            for e in [
                UploadError::BadRequest(NO_FILE.into()),
                UploadError::BadRequest("x".into()),
                UploadError::TooLarge(1024),
                UploadError::Type("application/x-msdownload".into()),
                UploadError::Exists("a.pdf".into()),
                UploadError::Busy("a.pdf".into()),
                UploadError::Full(3),
                UploadError::Form,
                UploadError::ClientGone,
                UploadError::TooSlow(1024),
                UploadError::OriginStatus(500),
                UploadError::Origin("x".into()),
                UploadError::Gone,
            ] {
                assert!(!e.page_text(lang).is_empty());
            }
        }
        assert_eq!(
            UploadError::TooLarge(2 << 30).page_text(Lang::En),
            "The file is larger than this link accepts (at most 2 GiB per file)."
        );
        let problems = crate::share::i18n::take_problems();
        assert!(problems.is_empty(), "missing messages: {problems:?}");
    }

    #[test]
    fn types_come_from_the_extension_and_match_patterns() {
        assert_eq!(type_of("a.pdf"), "application/pdf");
        assert_eq!(type_of("noext"), "application/octet-stream");
        let allowed = vec!["application/pdf".to_string(), "image/*".to_string()];
        assert!(type_matches(&allowed, "image/png"));
        assert!(type_matches(&allowed, "APPLICATION/PDF"));
        assert!(type_matches(&allowed, "image/*"), "a narrower pattern fits");
        assert!(!type_matches(&allowed, "text/html"));
        assert!(!type_matches(&allowed, "*/*"));
        assert!(!type_matches(&["image/*".to_string()], "imagex/png"));
        assert!(type_matches(&["*/*".to_string()], "text/html"));
    }

    #[test]
    fn put_paths_name_one_sanitised_file() {
        assert_eq!(name_of_put_path("/s/tok/report.pdf").unwrap(), "report.pdf");
        assert_eq!(name_of_put_path("/s/tok/a%20b%3F.pdf").unwrap(), "a b_.pdf");
        assert_eq!(
            name_of_put_path("/s/tok/..%2F..%2Fetc%2Fpasswd").unwrap(),
            "passwd"
        );
        assert_eq!(
            name_of_put_path("/s/tok/%0d%0aSet-Cookie:x").unwrap(),
            "Set-Cookie_x"
        );
        assert_eq!(name_of_put_path("/s/tok/a%0d%0ab").unwrap(), "a__b");
        for bad in ["/s/tok", "/s/tok/", "/s/tok/a/b", "/s/tok/..", "/s/tok/%ff"] {
            assert!(name_of_put_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_settings_stay_within_the_policy() {
        let mut link = Link::with_documents("s", vec![], "k", time::OffsetDateTime::now_utc());
        link.upload = Some(crate::model::link::UploadSpec {
            folder: "in".into(),
            overwrite: false,
            max_files: Some(2),
            max_bytes: Some(10 << 30),
            allowed_types: None,
        });
        let policy = Policy {
            upload_max_bytes: Some(1 << 20),
            upload_allowed_types: Some(vec!["image/*".into()]),
            ..Policy::default()
        };
        let rules = Rules::for_link(&link, &policy);
        assert_eq!(rules.max_bytes, 1 << 20);
        assert!(rules.accepts_type("image/png") && !rules.accepts_type("application/pdf"));
        assert_eq!(
            Rules::for_link(&link, &Policy::default()).max_bytes,
            DEFAULT_UPLOAD_MAX_BYTES,
            "the default cap holds without a policy"
        );
    }
}
