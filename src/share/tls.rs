//! TLS on the recipients' listener, and HTTP/2 over it; certificates that can be replaced while
//! the gateway runs; the plain-HTTP listener that only redirects to https; HSTS; custom CA
//! bundles for https stores.
//!
//! ```toml
//! [server.tls]
//! cert_file = "/etc/linkgate/fullchain.pem"   # the certificate chain, leaf first (PEM)
//! key_file = "/etc/linkgate/privkey.pem"      # PKCS#8, PKCS#1 or SEC1 (PEM)
//! reload_check_seconds = 5                    # how often the two files are checked for a change
//! hsts_max_age_seconds = 31536000             # 0: no Strict-Transport-Security header
//! redirect_listen = "0.0.0.0:80"              # optional plain-HTTP listener: redirects only
//! ```
//!
//! - rustls, TLS 1.2 and 1.3 only, ALPN `h2` then `http/1.1`.
//! - [`CertStore`] is the rustls certificate resolver: each handshake takes the certificate in
//!   force at that moment, so replacing it never touches established connections (a download
//!   started under the old certificate finishes on it). [`Reloader`] checks the files every
//!   `reload_check_seconds` and on `SIGHUP`; a new chain and key that do not load (unreadable,
//!   not PEM, key not matching the certificate) leave the old one in force, logged as an error.
//! - [`TlsEdge`] does the handshake itself rather than Pingora's listener, so that it is bounded
//!   by `client_head_timeout` (Pingora allows 60 s). One deadline, counted from the accept,
//!   covers the handshake and the first request: an HTTP/1.1 head (through
//!   [`crate::share::edge::accepted_at`]) or an HTTP/2 connection's first stream (Pingora's h2
//!   handshake waits for the client's preface for ever; once streams have run,
//!   `keepalive_timeout` closes an idle connection, see [`crate::share::edge`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue};
use parking_lot::{Mutex, RwLock};
use pingora::apps::ServerApp;
use pingora::http::ResponseHeader;
use pingora::listeners::tls::Acceptor;
use pingora::listeners::ALPN;
use pingora::modules::http::{HttpModule, HttpModuleBuilder, Module};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{GetSocketDigest, Ssl, Stream};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{version, CertificateDer, ClientHello, CryptoProvider, PrivateKeyDer};
use pingora::tls::{ResolvesServerCert, ServerConfig};
use pingora::utils::tls::WrappedX509;
use sha2::{Digest, Sha256};

/// Why a certificate, key or CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM file of certificates: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("certificate {index} of {path} cannot be parsed: {message}")]
    Certificate {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("the key in {key} cannot be used with the certificate in {cert}: {message}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("no TLS crypto provider is installed")]
    NoProvider,
    #[error("TLS settings refused: {0}")]
    Settings(String),
}

/// `[server.tls]`, checked: the chain and key were loaded once to check them.
#[derive(Clone)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// What the files held when the config was loaded.
    pub loaded: Arc<CertifiedKey>,
    pub reload_every: Duration,
    /// The `Strict-Transport-Security` value; `None` when `hsts_max_age_seconds = 0`.
    pub hsts: Option<HeaderValue>,
    /// The plain-HTTP listener that redirects to https.
    pub redirect_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("reload_every", &self.reload_every)
            .field("hsts", &self.hsts)
            .field("redirect_listen", &self.redirect_listen)
            .finish_non_exhaustive()
    }
}

fn provider() -> Result<Arc<CryptoProvider>, TlsError> {
    pingora::tls::install_default_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .ok_or(TlsError::NoProvider)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file, each checked to parse as X.509.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    for (index, cert) in certs.iter().enumerate() {
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| TlsError::Certificate {
            path: path.to_path_buf(),
            index,
            message: e.to_string(),
        })?;
    }
    Ok(certs)
}

/// Loads a certificate chain and its private key, checking that they belong together.
pub fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    certified_key(cert_file, &read(cert_file)?, key_file, &read(key_file)?)
}

fn certified_key(
    cert_file: &Path,
    cert_pem: &[u8],
    key_file: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(cert_file, cert_pem)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| TlsError::Pem {
            path: key_file.to_path_buf(),
            message: e.to_string(),
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: key_file.to_path_buf(),
        })?;
    let mismatch = |message: String| TlsError::KeyMismatch {
        cert: cert_file.to_path_buf(),
        key: key_file.to_path_buf(),
        message,
    };
    let signing = provider()?
        .key_provider
        .load_private_key(key)
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key whose public half rustls cannot tell is refused too: the handshake would fail later.
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(certified)
}

/// The leaf's subject and expiry, for log lines.
fn describe(key: &CertifiedKey) -> (String, String) {
    key.cert
        .first()
        .and_then(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .map(|(_, c)| (c.subject().to_string(), c.validity().not_after.to_string()))
        .unwrap_or_default()
}

/// The certificate in force, handed to every new handshake; replaced by [`CertStore::check`].
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    cert_file: PathBuf,
    key_file: PathBuf,
    /// Digest of the two files' bytes as last looked at (loaded or refused), so that an unchanged
    /// pair is not loaded (or complained about) again.
    seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

fn digest_of(cert: &[u8], key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((cert.len() as u64).to_le_bytes());
    h.update(cert);
    h.update(key);
    h.finalize().into()
}

/// What a [`CertStore::check`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Replaced,
    /// The files changed but do not load: the previous certificate stays in force.
    Refused,
}

impl CertStore {
    pub fn new(config: &TlsConfig) -> CertStore {
        let seen = match (read(&config.cert_file), read(&config.key_file)) {
            (Ok(c), Ok(k)) => digest_of(&c, &k),
            _ => [0; 32],
        };
        CertStore {
            current: RwLock::new(config.loaded.clone()),
            cert_file: config.cert_file.clone(),
            key_file: config.key_file.clone(),
            seen: Mutex::new(seen),
        }
    }

    /// Loads the files if they changed since last looked at (or, with `force`, in any case) and
    /// puts them in force if they load; logs what happened.
    pub async fn check(&self, force: bool) -> Reload {
        let files = async {
            let cert = tokio::fs::read(&self.cert_file)
                .await
                .map_err(|source| TlsError::Read {
                    path: self.cert_file.clone(),
                    source,
                })?;
            let key = tokio::fs::read(&self.key_file)
                .await
                .map_err(|source| TlsError::Read {
                    path: self.key_file.clone(),
                    source,
                })?;
            Ok::<_, TlsError>((cert, key))
        }
        .await;
        let loaded = files.and_then(|(cert, key)| {
            let digest = digest_of(&cert, &key);
            {
                let mut seen = self.seen.lock();
                if !force && *seen == digest {
                    return Ok(None);
                }
                *seen = digest;
            }
            certified_key(&self.cert_file, &cert, &self.key_file, &key).map(Some)
        });
        match loaded {
            Ok(None) => Reload::Unchanged,
            Ok(Some(key)) => {
                let (subject, not_after) = describe(&key);
                *self.current.write() = Arc::new(key);
                tracing::info!(cert_file = %self.cert_file.display(), %subject, %not_after, "TLS certificate reloaded; new connections use it");
                Reload::Replaced
            }
            Err(e) => {
                // A file that cannot be read is reported each time: it may be the one moment
                // between an operator's two renames, or the files may be gone for good.
                tracing::error!(cert_file = %self.cert_file.display(), key_file = %self.key_file.display(), error = %e, "TLS certificate not reloaded; the previous one stays in force");
                Reload::Refused
            }
        }
    }

    /// The rustls configuration of the recipients' listener: TLS 1.2 and 1.3, ALPN `h2` then
    /// `http/1.1`, certificates from this store.
    pub fn server_config(self: &Arc<Self>) -> Result<ServerConfig, TlsError> {
        let provider = provider()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .map_err(|e| TlsError::Settings(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// Checks the certificate files every `every`, and at once on `SIGHUP`.
pub struct Reloader {
    pub certs: Arc<CertStore>,
    pub every: Duration,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; certificates are reloaded on file change only");
                None
            }
        };
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(cert_file = %self.certs.cert_file.display(), every_seconds = self.every.as_secs(), "TLS certificate reload: checking the files, and on SIGHUP");
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.certs.check(false).await;
                }
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(h) => h.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!("SIGHUP: reloading the TLS certificate");
                    self.certs.check(true).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// The recipients' app behind TLS: the handshake, then `inner` ([`crate::share::edge::Edge`]) on
/// the decrypted stream, HTTP/2 or HTTP/1.1 as ALPN chose; the handshake and the first request
/// together are bounded by `head_timeout` from the accept.
pub struct TlsEdge<A> {
    inner: Arc<A>,
    acceptor: Acceptor,
    head_timeout: Duration,
}

impl<A> TlsEdge<A> {
    pub fn new(
        inner: A,
        certs: &Arc<CertStore>,
        head_timeout: Duration,
    ) -> Result<TlsEdge<A>, TlsError> {
        Ok(TlsEdge {
            inner: Arc::new(inner),
            acceptor: Acceptor::from_server_config(Arc::new(certs.server_config()?)),
            head_timeout,
        })
    }
}

#[async_trait]
impl<A> ServerApp for TlsEdge<A>
where
    A: ServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Pingora's listener hands over the TCP stream itself (no TLS is set on the listener).
        let tcp = match stream
            .into_any()
            .downcast::<pingora::protocols::l4::stream::Stream>()
        {
            Ok(tcp) => *tcp,
            Err(_) => {
                tracing::error!("the TLS listener got a stream that is not TCP; closed");
                return None;
            }
        };
        // The head deadline runs from here: the handshake spends part of it.
        let accepted = tokio::time::Instant::now();
        let due = crate::share::edge::later(accepted, self.head_timeout);
        let digest = tcp.get_socket_digest();
        let client = digest.as_ref().and_then(|d| d.peer_addr().cloned());
        let tls = match tokio::time::timeout_at(due, self.acceptor.tls_handshake(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(client = ?client, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(client = ?client, "no TLS handshake in time; connection closed");
                return None;
            }
        };
        let h2 = matches!(tls.selected_alpn_proto(), Some(ALPN::H2));
        let stream: Stream = Box::new(tls);
        let Some(digest) = digest.filter(|_| h2) else {
            // HTTP/1.1: the edge bounds each request head, the first one from the accept.
            return crate::share::edge::accepted_at(
                accepted,
                self.inner.process_new(stream, shutdown),
            )
            .await;
        };
        // HTTP/2: the first request must arrive by the same deadline.
        let (started, _waiting) = crate::share::edge::h2_waiting(digest);
        tokio::select! {
            biased;
            done = self.inner.process_new(stream, shutdown) => done,
            () = async {
                tokio::time::sleep_until(due).await;
                if started.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::debug!(client = ?client, "no HTTP/2 request in time; connection closed");
                None
            }
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// The plain-HTTP listener of a TLS gateway: every request is answered with a redirect to the
/// same path on `public_url` (301 for GET and HEAD, 308 otherwise), and the connection closed.
/// The client's `Host` never goes into the answer, so it cannot redirect anywhere else.
pub struct Redirect {
    /// `https://host[:port]` of `server.public_url`.
    pub origin: String,
    pub head_timeout: Duration,
}

impl Redirect {
    pub fn new(public_url: &str, head_timeout: Duration) -> Redirect {
        let rest = public_url.strip_prefix("https://").unwrap_or(public_url);
        let host = rest.split('/').next().unwrap_or(rest);
        Redirect {
            origin: format!("https://{host}"),
            head_timeout,
        }
    }

    /// Where a request for `path_and_query` is sent.
    pub fn location(&self, path_and_query: Option<&str>) -> HeaderValue {
        let path = path_and_query.filter(|p| p.starts_with('/')).unwrap_or("/");
        HeaderValue::from_str(&format!("{}{path}", self.origin))
            .or_else(|_| HeaderValue::from_str(&format!("{}/", self.origin)))
            .unwrap_or_else(|_| HeaderValue::from_static("/"))
    }

    async fn redirect(&self, session: &mut ServerSession) -> pingora::Result<()> {
        let req = session.req_header();
        let status = if req.method == http::Method::GET || req.method == http::Method::HEAD {
            301
        } else {
            308
        };
        let location = self.location(req.uri.path_and_query().map(|p| p.as_str()));
        let mut resp = ResponseHeader::build(status, Some(4))?;
        resp.insert_header(header::LOCATION, location)?;
        resp.insert_header(header::CONTENT_LENGTH, "0")?;
        resp.insert_header(header::CACHE_CONTROL, "no-store")?;
        session.write_response_header(Box::new(resp)).await?;
        session.write_response_body(Bytes::new(), true).await?;
        session.finish_body().await
    }
}

#[async_trait]
impl ServerApp for Redirect {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut session = ServerSession::new_http1(stream);
        session.set_keepalive(None);
        let work = async {
            if !session.read_request().await? {
                return Ok(());
            }
            // One answer per connection (reading the request may have turned keep-alive on).
            session.set_keepalive(None);
            self.redirect(&mut session).await
        };
        match tokio::time::timeout(self.head_timeout, work).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "redirect listener: no answer"),
            Err(_) => tracing::debug!("redirect listener: no request in time; connection closed"),
        }
        None
    }
}

/// Adds `Strict-Transport-Security` to every response of the recipients' listener (pages,
/// refusals and documents alike; an origin's own value was dropped by the relay).
pub struct Hsts(pub HeaderValue);

struct HstsModule(HeaderValue);

#[async_trait]
impl HttpModule for HstsModule {
    async fn response_header_filter(
        &mut self,
        resp: &mut ResponseHeader,
        _end_of_stream: bool,
    ) -> pingora::Result<()> {
        resp.insert_header(header::STRICT_TRANSPORT_SECURITY, self.0.clone())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl HttpModuleBuilder for Hsts {
    fn init(&self) -> Module {
        Box::new(HstsModule(self.0.clone()))
    }
}

use crate::docstore::settings::OriginCa;

/// Loads a PEM bundle of CA certificates.
pub fn load_ca_file(path: &Path) -> Result<OriginCa, TlsError> {
    let certs = certificates(path, &read(path)?)?;
    let mut wrapped = Vec::with_capacity(certs.len());
    for (index, cert) in certs.into_iter().enumerate() {
        let der = cert.as_ref().to_vec();
        let w = WrappedX509::try_new(der, |raw| {
            x509_parser::parse_x509_certificate(raw).map(|(_, c)| c)
        })
        .map_err(|e| TlsError::Certificate {
            path: path.to_path_buf(),
            index,
            message: e.to_string(),
        })?;
        // rustls must accept it as a trust anchor too (checked here, not at the first connect).
        let mut roots = pingora::tls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(&w))
            .map_err(|e| TlsError::Certificate {
                path: path.to_path_buf(),
                index,
                message: e.to_string(),
            })?;
        wrapped.push(w);
    }
    Ok(OriginCa(wrapped.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_location_uses_the_configured_host_only() {
        let r = Redirect::new("https://files.example:8443/base", Duration::from_secs(1));
        assert_eq!(r.origin, "https://files.example:8443");
        assert_eq!(
            r.location(Some("/s/abc?x=1")),
            "https://files.example:8443/s/abc?x=1"
        );
        // A protocol-relative or absolute path stays a path on the configured host.
        assert_eq!(
            r.location(Some("//evil.example/x")),
            "https://files.example:8443//evil.example/x"
        );
        assert_eq!(r.location(Some("*")), "https://files.example:8443/");
        assert_eq!(r.location(None), "https://files.example:8443/");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let e = certified_key(
            Path::new("c.pem"),
            b"not pem",
            Path::new("k.pem"),
            b"not pem",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("c.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
