//! What a document store needs to run: the runtime model the `[stores.*]` tables are turned
//! into (see `crate::config::docstores`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pingora::utils::tls::WrappedX509;

/// One upstream store.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Http(HttpStoreConfig),
    S3(S3StoreConfig),
    Dir(DirStoreConfig),
}

impl StoreConfig {
    pub fn name(&self) -> &str {
        match self {
            StoreConfig::Http(c) => &c.name,
            StoreConfig::S3(c) => &c.name,
            StoreConfig::Dir(c) => &c.name,
        }
    }
}

/// Where one HTTP(S) server is and how requests to it are addressed.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    pub tls: bool,
    /// The store's `ca_file`: the only CAs trusted for this origin (https only).
    pub ca: Option<OriginCa>,
    /// Host name (for SNI and the `Host` header), with the port when it is not the default.
    pub host_header: String,
    pub sni: String,
    pub addr: SocketAddr,
    /// Base path, always starting and ending with `/`.
    pub base_path: String,
}

#[derive(Clone)]
pub struct HttpStoreConfig {
    pub name: String,
    /// One or more origins serving the same objects; requests fail over between them.
    pub origins: Vec<OriginConfig>,
    /// The store's own credential, sent with every upstream request.
    pub auth_header: Option<(http::HeaderName, http::HeaderValue)>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Path probed with a GET by the health check (any answer below 500 is healthy); `None`
    /// checks that a TCP connection opens.
    pub health_check_path: Option<String>,
    pub health_check_interval: Duration,
}

impl std::fmt::Debug for HttpStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStoreConfig")
            .field("name", &self.name)
            .field("origins", &self.origins)
            .field(
                "auth_header",
                &self.auth_header.as_ref().map(|(n, _)| n.as_str()),
            )
            .field("health_check_path", &self.health_check_path)
            .finish()
    }
}

#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

#[derive(Clone)]
pub struct S3StoreConfig {
    pub name: String,
    /// The endpoint; its base path is `/{bucket}/` (path style) or `/` (virtual-hosted style).
    pub origin: OriginConfig,
    pub region: String,
    pub bucket: String,
    /// Prepended to every object key (e.g. `shares/`).
    pub prefix: String,
    pub credentials: S3Credentials,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl std::fmt::Debug for S3StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3StoreConfig")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.credentials.access_key_id)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct DirStoreConfig {
    pub name: String,
    /// The folder, canonical (symlinks resolved) so that served paths can be checked against it.
    pub root: PathBuf,
}

/// A store's `ca_file`: the certificates its https origins must be signed by (instead of the
/// system's).
#[derive(Clone)]
pub struct OriginCa(pub Arc<[WrappedX509]>);

impl std::fmt::Debug for OriginCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OriginCa({} certificate(s))", self.0.len())
    }
}
