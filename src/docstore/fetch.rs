//! A whole object read into memory, bounded (the renderer's input): a folder store's file, or an
//! HTTP or S3 store's `GET` answer.

use std::io::Read;
use std::time::Duration;

use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use super::{Attempt, DocStore};

/// Why an object could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the object is not in the store")]
    NotFound,
    #[error("the object is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the store failed: {0}")]
    Store(String),
}

impl DocStore {
    /// The object's bytes, at most `max` of them (a larger object is `TooLarge`), within
    /// `timeout`.
    pub async fn fetch(
        &self,
        key: &str,
        max: u64,
        timeout: Duration,
    ) -> Result<Vec<u8>, FetchError> {
        let work = async {
            match self {
                DocStore::Dir(dir) => {
                    let (file, meta, _) = dir.open(key).await.map_err(|e| match e {
                        super::dir::DirError::NotFound | super::dir::DirError::NotAFile => {
                            FetchError::NotFound
                        }
                        e => FetchError::Store(e.to_string()),
                    })?;
                    if meta.size > max {
                        return Err(FetchError::TooLarge(max));
                    }
                    tokio::task::spawn_blocking(move || {
                        let mut out = Vec::new();
                        file.take(max.saturating_add(1))
                            .read_to_end(&mut out)
                            .map_err(|e| FetchError::Store(e.to_string()))?;
                        if out.len() as u64 > max {
                            return Err(FetchError::TooLarge(max));
                        }
                        Ok(out)
                    })
                    .await
                    .map_err(|e| FetchError::Store(e.to_string()))?
                }
                DocStore::Http(s) => {
                    let mut attempt = Attempt::default();
                    let peer = s.peer(&mut attempt);
                    let empty = RequestHeader::build(::http::Method::GET, b"/", None)
                        .map_err(|e| FetchError::Store(e.to_string()))?;
                    let req = s
                        .request(attempt.origin, &::http::Method::GET, key, &empty)
                        .map_err(|e| FetchError::Store(e.to_string()))?;
                    get(&peer, req, max).await
                }
                DocStore::S3(s) => {
                    let empty = RequestHeader::build(::http::Method::GET, b"/", None)
                        .map_err(|e| FetchError::Store(e.to_string()))?;
                    let req = s
                        .request(&::http::Method::GET, key, &empty)
                        .map_err(|e| FetchError::Store(e.to_string()))?;
                    get(&s.peer(), req, max).await
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Store(format!("no answer within {timeout:?}"))),
        }
    }
}

async fn get(peer: &HttpPeer, req: RequestHeader, max: u64) -> Result<Vec<u8>, FetchError> {
    let store = |e: pingora::BError| FetchError::Store(e.to_string());
    let connector = pingora::connectors::http::Connector::new(None);
    let (mut session, _) = connector.get_http_session(peer).await.map_err(store)?;
    session
        .write_request_header(Box::new(req))
        .await
        .map_err(store)?;
    session.finish_request_body().await.map_err(store)?;
    session.read_response_header().await.map_err(store)?;
    let status = session
        .response_header()
        .map(|r| r.status.as_u16())
        .unwrap_or(502);
    match status {
        200 => {}
        404 | 410 => return Err(FetchError::NotFound),
        s => return Err(FetchError::Store(format!("status {s}"))),
    }
    let mut out = Vec::new();
    while let Some(chunk) = session.read_response_body().await.map_err(store)? {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(FetchError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    session.shutdown().await;
    Ok(out)
}
