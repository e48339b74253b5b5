//! Writing objects into a store (uploads through a link), streamed, for every store kind:
//! - HTTP: one `PUT` (sized, or chunked when the length is not known up front), with
//!   `If-None-Match: *` unless overwriting is allowed;
//! - S3: one signed `PUT` when the length is known; otherwise a multipart upload with parts of
//!   [`S3_PART`] bytes (only one part is held in memory), completed at the end, aborted on failure;
//! - folder: a temporary file beside the target, then a no-clobber hard link (or a rename when
//!   overwriting), so the name shows only complete files.
//!
//! An object that does not arrive whole is never visible under its name: the HTTP request is
//! abandoned before its body is complete (origins write PUT bodies to a temporary file and
//! rename), an S3 multipart upload is aborted, a temporary file is removed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{header, Method};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pingora::connectors::http::v1::Connector;
use pingora::http::RequestHeader;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::upstreams::peer::HttpPeer;
use tokio::io::AsyncWriteExt;

use super::dir::{DirError, DirStore};
use super::s3::S3Store;
use super::{Attempt, DocStore};
use crate::model::link::check_object_key;

/// Size of each part of an S3 multipart upload (S3 wants at least 5 MiB but the last).
pub const S3_PART: usize = 8 << 20;
/// Largest answer body read from an origin during an upload (XML of S3, error pages).
const MAX_ANSWER: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("an object of that name exists")]
    Exists,
    #[error("the store refused the object as too large")]
    TooLarge,
    #[error("the store answered with status {0}")]
    Status(u16),
    #[error("the store failed: {0}")]
    Failed(String),
    #[error("the object key leaves the store")]
    Escape,
}

fn failed(e: impl std::fmt::Display) -> WriteError {
    WriteError::Failed(e.to_string())
}

/// An object being written; dropped or aborted without `finish`, it never appears.
#[async_trait]
pub trait ObjectWriter: Send {
    async fn write(&mut self, data: Bytes) -> Result<(), WriteError>;
    async fn finish(self: Box<Self>) -> Result<(), WriteError>;
    async fn abort(self: Box<Self>);
}

/// Talks to stores for uploads; one per gateway (its own connection pool).
pub struct Writer {
    connector: Connector,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            connector: Connector::new(None),
        }
    }
}

/// A bare request header (no client headers are ever forwarded on a write).
fn blank() -> Result<RequestHeader, WriteError> {
    RequestHeader::build(Method::GET, b"/", Some(1)).map_err(failed)
}

fn status_of(session: &HttpSession) -> u16 {
    session.get_status().map(|s| s.as_u16()).unwrap_or(0)
}

/// Maps the answer to a finished write.
fn written(status: u16) -> Result<(), WriteError> {
    match status {
        200..=299 => Ok(()),
        412 => Err(WriteError::Exists),
        413 => Err(WriteError::TooLarge),
        other => Err(WriteError::Status(other)),
    }
}

impl Writer {
    async fn session(&self, peer: &HttpPeer) -> Result<HttpSession, WriteError> {
        let (session, _) = self
            .connector
            .get_http_session(peer)
            .await
            .map_err(failed)?;
        Ok(session)
    }

    /// Sends a whole small request and reads the answer (status, headers, body up to a bound).
    async fn exchange(
        &self,
        peer: &HttpPeer,
        req: RequestHeader,
        body: &[u8],
    ) -> Result<(u16, http::HeaderMap, Bytes), WriteError> {
        let mut session = self.session(peer).await?;
        let head = req.method == Method::HEAD;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(failed)?;
        if !body.is_empty() {
            session.write_body(body).await.map_err(failed)?;
        }
        session.finish_body().await.map_err(failed)?;
        session.read_response().await.map_err(failed)?;
        let status = status_of(&session);
        let headers = session
            .resp_header()
            .map(|h| h.headers.clone())
            .unwrap_or_default();
        let mut answer = BytesMut::new();
        if !head {
            while let Ok(Some(chunk)) = session.read_body_bytes().await {
                if answer.len() + chunk.len() > MAX_ANSWER {
                    break;
                }
                answer.extend_from_slice(&chunk);
            }
        }
        session.shutdown().await;
        Ok((status, headers, answer.freeze()))
    }

    /// Whether the store has an object under `key`.
    pub async fn exists(&self, store: &DocStore, key: &str) -> Result<bool, WriteError> {
        let status = match store {
            DocStore::Dir(d) => return dir_exists(d, key).await,
            DocStore::Http(s) => {
                let mut attempt = Attempt::default();
                let peer = s.peer(&mut attempt);
                let req = s
                    .request(attempt.origin, &Method::HEAD, key, &blank()?)
                    .map_err(failed)?;
                self.exchange(&peer, req, b"").await?.0
            }
            DocStore::S3(s) => {
                let req = s3_request(s, Method::HEAD, &s.path_of(key), &[])?;
                self.exchange(&s.peer(), req, b"").await?.0
            }
        };
        match status {
            200..=299 => Ok(true),
            404 | 410 => Ok(false),
            other => Err(WriteError::Status(other)),
        }
    }

    /// Starts writing `key`; `length` is the exact size when known.
    pub async fn open<'a>(
        &'a self,
        store: &'a DocStore,
        key: &str,
        length: Option<u64>,
        media_type: &str,
        overwrite: bool,
    ) -> Result<Box<dyn ObjectWriter + 'a>, WriteError> {
        check_object_key(key).map_err(|_| WriteError::Escape)?;
        match store {
            DocStore::Dir(d) => Ok(Box::new(DirWrite::start(d, key, overwrite).await?)),
            DocStore::Http(s) => {
                let mut attempt = Attempt::default();
                let peer = s.peer(&mut attempt);
                let mut req = s
                    .request(attempt.origin, &Method::PUT, key, &blank()?)
                    .map_err(failed)?;
                req.insert_header(header::CONTENT_TYPE, media_type)
                    .map_err(failed)?;
                match length {
                    Some(n) => req
                        .insert_header(header::CONTENT_LENGTH, n)
                        .map_err(failed)?,
                    None => req
                        .insert_header(header::TRANSFER_ENCODING, "chunked")
                        .map_err(failed)?,
                }
                if !overwrite {
                    req.insert_header(header::IF_NONE_MATCH, "*")
                        .map_err(failed)?;
                }
                let mut session = self.session(&peer).await?;
                session
                    .write_request_header(Box::new(req))
                    .await
                    .map_err(failed)?;
                Ok(Box::new(StreamedPut { session }))
            }
            DocStore::S3(s) => match length {
                Some(n) => {
                    let req = s3_request(
                        s,
                        Method::PUT,
                        &s.path_of(key),
                        &[
                            (header::CONTENT_TYPE, media_type.to_string()),
                            (header::CONTENT_LENGTH, n.to_string()),
                        ],
                    )?;
                    let mut session = self.session(&s.peer()).await?;
                    session
                        .write_request_header(Box::new(req))
                        .await
                        .map_err(failed)?;
                    Ok(Box::new(StreamedPut { session }))
                }
                None => Ok(Box::new(S3Multipart {
                    writer: self,
                    store: s,
                    path: s.path_of(key),
                    media_type: media_type.to_string(),
                    upload_id: None,
                    parts: Vec::new(),
                    buffer: BytesMut::new(),
                })),
            },
        }
    }
}

/// A signed S3 request with `extra` headers and no body of its own.
fn s3_request(
    s: &S3Store,
    method: Method,
    path_and_query: &str,
    extra: &[(header::HeaderName, String)],
) -> Result<RequestHeader, WriteError> {
    let mut req =
        RequestHeader::build(method, path_and_query.as_bytes(), Some(8)).map_err(failed)?;
    req.insert_header(header::HOST, s.config.origin.host_header.as_str())
        .map_err(failed)?;
    for (name, value) in extra {
        req.insert_header(name.clone(), value.as_str())
            .map_err(failed)?;
    }
    s.sign(&mut req, SystemTime::now()).map_err(failed)?;
    Ok(req)
}

/// One HTTP request whose body is streamed (HTTP PUT, S3 PUT of a known length).
struct StreamedPut {
    session: HttpSession,
}

#[async_trait]
impl ObjectWriter for StreamedPut {
    async fn write(&mut self, data: Bytes) -> Result<(), WriteError> {
        // With chunked encoding an empty write is the terminating chunk: it would end the
        // origin's body early and store a truncated file. Pingora's request-body reader does
        // hand out empty chunks (e.g. while a chunk head is split between two reads).
        if data.is_empty() {
            return Ok(());
        }
        self.session
            .write_body(&data)
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        self.session.finish_body().await.map_err(failed)?;
        self.session.read_response().await.map_err(failed)?;
        let status = status_of(&self.session);
        self.session.shutdown().await;
        written(status)
    }

    async fn abort(mut self: Box<Self>) {
        // The body stops short: the origin discards what it received.
        self.session.shutdown().await;
    }
}

/// An S3 upload of unknown length: parts of [`S3_PART`] bytes; a file smaller than one part is a
/// single PUT.
struct S3Multipart<'a> {
    writer: &'a Writer,
    store: &'a S3Store,
    path: String,
    media_type: String,
    upload_id: Option<String>,
    /// ETags of the parts sent, in order.
    parts: Vec<String>,
    buffer: BytesMut,
}

/// The text of the first `<tag>…</tag>` in an XML answer.
fn xml_text<'t>(xml: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

impl S3Multipart<'_> {
    fn query_id(&self) -> Result<String, WriteError> {
        let id = self
            .upload_id
            .as_deref()
            .ok_or_else(|| failed("no multipart upload started"))?;
        Ok(utf8_percent_encode(id, NON_ALPHANUMERIC).to_string())
    }

    async fn send_part(&mut self) -> Result<(), WriteError> {
        if self.upload_id.is_none() {
            let req = s3_request(
                self.store,
                Method::POST,
                &format!("{}?uploads", self.path),
                &[(header::CONTENT_TYPE, self.media_type.clone())],
            )?;
            let (status, _, body) = self.writer.exchange(&self.store.peer(), req, b"").await?;
            written(status)?;
            let text = String::from_utf8_lossy(&body);
            let id = xml_text(&text, "UploadId").ok_or_else(|| failed("S3 gave no UploadId"))?;
            self.upload_id = Some(id.to_string());
        }
        let part = self.buffer.split().freeze();
        let number = self.parts.len() + 1;
        let target = format!(
            "{}?partNumber={number}&uploadId={}",
            self.path,
            self.query_id()?
        );
        let req = s3_request(
            self.store,
            Method::PUT,
            &target,
            &[(header::CONTENT_LENGTH, part.len().to_string())],
        )?;
        let (status, headers, _) = self.writer.exchange(&self.store.peer(), req, &part).await?;
        written(status)?;
        let etag = headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| failed("S3 gave no ETag for a part"))?;
        self.parts.push(etag.to_string());
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Multipart<'_> {
    async fn write(&mut self, data: Bytes) -> Result<(), WriteError> {
        self.buffer.extend_from_slice(&data);
        while self.buffer.len() >= S3_PART {
            let rest = self.buffer.split_off(S3_PART);
            let result = self.send_part().await;
            self.buffer = rest;
            result?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        if self.upload_id.is_none() {
            let body = self.buffer.split().freeze();
            let headers = [
                (header::CONTENT_TYPE, self.media_type.clone()),
                (header::CONTENT_LENGTH, body.len().to_string()),
            ];
            let req = s3_request(self.store, Method::PUT, &self.path, &headers)?;
            return written(
                self.writer
                    .exchange(&self.store.peer(), req, &body)
                    .await?
                    .0,
            );
        }
        if !self.buffer.is_empty() {
            if let Err(e) = self.send_part().await {
                self.abort().await;
                return Err(e);
            }
        }
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, etag) in self.parts.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                crate::model::markup::escape(etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let target = format!("{}?uploadId={}", self.path, self.query_id()?);
        let req = s3_request(
            self.store,
            Method::POST,
            &target,
            &[(header::CONTENT_LENGTH, xml.len().to_string())],
        )?;
        let outcome = self
            .writer
            .exchange(&self.store.peer(), req, xml.as_bytes())
            .await;
        match outcome {
            // S3 may report a failed completion inside a 200.
            Ok((200..=299, _, body)) if !String::from_utf8_lossy(&body).contains("<Error>") => {
                Ok(())
            }
            Ok((status, _, _)) => {
                self.abort().await;
                Err(WriteError::Status(if status < 300 { 500 } else { status }))
            }
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let Ok(query) = self.query_id() else { return };
        let target = format!("{}?uploadId={query}", self.path);
        if let Ok(req) = s3_request(self.store, Method::DELETE, &target, &[]) {
            if let Err(e) = self.writer.exchange(&self.store.peer(), req, b"").await {
                tracing::warn!(error = %e, "could not abort an S3 multipart upload (the bucket's lifecycle rule cleans it up)");
            }
        }
    }
}

async fn dir_exists(store: &DirStore, key: &str) -> Result<bool, WriteError> {
    let root = store.config.root.clone();
    let key = key.to_string();
    let found = tokio::task::spawn_blocking(move || DirStore::resolve_blocking(&root, &key))
        .await
        .map_err(failed)?;
    match found {
        Ok(_) => Ok(true),
        Err(DirError::NotFound) => Ok(false),
        Err(DirError::Escape) => Err(WriteError::Escape),
        Err(e) => Err(failed(e)),
    }
}

/// A folder-store upload: a temporary file in the target's folder, linked into place at the end.
struct DirWrite {
    file: tokio::fs::File,
    temp: PathBuf,
    target: PathBuf,
    overwrite: bool,
}

/// Creates the folder of `key` under `root` (refusing any step that leaves the root) and gives
/// the target's path.
fn prepare_target(root: &Path, key: &str) -> Result<PathBuf, WriteError> {
    let key = key.strip_prefix('/').unwrap_or(key);
    let (folder, name) = key.rsplit_once('/').unwrap_or(("", key));
    let mut dir = root.to_path_buf();
    for segment in folder.split('/').filter(|s| !s.is_empty()) {
        dir.push(segment);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(e)),
        }
        // A segment that is a symlink out of the root is refused.
        let canonical = std::fs::canonicalize(&dir).map_err(failed)?;
        if !canonical.starts_with(root) || !canonical.is_dir() {
            return Err(WriteError::Escape);
        }
        dir = canonical;
    }
    Ok(dir.join(name))
}

impl DirWrite {
    async fn start(store: &DirStore, key: &str, overwrite: bool) -> Result<DirWrite, WriteError> {
        let root = store.config.root.clone();
        let key = key.to_string();
        let target = tokio::task::spawn_blocking(move || prepare_target(&root, &key))
            .await
            .map_err(failed)??;
        let parent = target.parent().ok_or(WriteError::Escape)?;
        let temp = parent.join(format!(".linkgate-upload-{:016x}", rand::random::<u64>()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(failed)?;
        Ok(DirWrite {
            file,
            temp,
            target,
            overwrite,
        })
    }
}

#[async_trait]
impl ObjectWriter for DirWrite {
    async fn write(&mut self, data: Bytes) -> Result<(), WriteError> {
        self.file.write_all(&data).await.map_err(failed)
    }

    async fn finish(mut self: Box<Self>) -> Result<(), WriteError> {
        let synced = async {
            self.file.flush().await?;
            self.file.sync_all().await
        }
        .await;
        if let Err(e) = synced {
            let _ = tokio::fs::remove_file(&self.temp).await;
            return Err(failed(e));
        }
        let placed = if self.overwrite {
            tokio::fs::rename(&self.temp, &self.target).await
        } else {
            // A hard link never replaces an existing name: the no-clobber step.
            let linked = tokio::fs::hard_link(&self.temp, &self.target).await;
            let _ = tokio::fs::remove_file(&self.temp).await;
            linked
        };
        match placed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(WriteError::Exists),
            Err(e) => {
                let _ = tokio::fs::remove_file(&self.temp).await;
                Err(failed(e))
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_fields_are_found() {
        let xml = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>abc-123</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_text(xml, "UploadId"), Some("abc-123"));
        assert_eq!(xml_text(xml, "Missing"), None);
    }

    #[test]
    fn folders_are_made_inside_the_root_only() {
        let root = tempfile::tempdir().unwrap();
        let root_path = std::fs::canonicalize(root.path()).unwrap();
        let target = prepare_target(&root_path, "in/job-1/a.pdf").unwrap();
        assert_eq!(target, root_path.join("in/job-1/a.pdf"));
        assert!(root_path.join("in/job-1").is_dir());
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root_path.join("out")).unwrap();
        assert!(matches!(
            prepare_target(&root_path, "out/a.pdf"),
            Err(WriteError::Escape)
        ));
    }
}
