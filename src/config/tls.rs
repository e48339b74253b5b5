//! The `[server.tls]` table: certificate and key files (checked by loading them), reloads, HSTS
//! and the plain-HTTP redirect listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use serde::Deserialize;

use crate::config::error::{invalid, ConfigError};
use crate::share::tls::{load_certified_key, TlsConfig, TlsError};

/// `[server.tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    reload_check_seconds: Option<u64>,
    #[serde(default)]
    hsts_max_age_seconds: Option<u64>,
    #[serde(default)]
    redirect_listen: Option<String>,
}

fn resolve(base_dir: &Path, path: PathBuf) -> PathBuf {
    if path.is_relative() {
        base_dir.join(path)
    } else {
        path
    }
}

/// Checks `[server.tls]`; relative paths are relative to `base_dir` (the config file's folder).
/// `taken` are the addresses already listened on, which `redirect_listen` must differ from.
pub fn parse(raw: RawTls, base_dir: &Path, taken: &[SocketAddr]) -> Result<TlsConfig, ConfigError> {
    let cert_file = resolve(base_dir, raw.cert_file);
    let key_file = resolve(base_dir, raw.key_file);
    let loaded = load_certified_key(&cert_file, &key_file).map_err(|e| {
        let key = match &e {
            TlsError::Read { path, .. }
            | TlsError::Pem { path, .. }
            | TlsError::NoKey { path }
            | TlsError::NoCertificate { path }
            | TlsError::Certificate { path, .. }
                if path == &key_file =>
            {
                "server.tls.key_file"
            }
            TlsError::KeyMismatch { .. } => "server.tls.key_file",
            _ => "server.tls.cert_file",
        };
        invalid(key, e.to_string())
    })?;
    let reload_every = match raw.reload_check_seconds {
        Some(0) => {
            return Err(invalid(
                "server.tls.reload_check_seconds",
                "must be at least 1",
            ))
        }
        n => Duration::from_secs(n.unwrap_or(5)),
    };
    let hsts = match raw.hsts_max_age_seconds.unwrap_or(31_536_000) {
        0 => None,
        age => Some(
            HeaderValue::from_str(&format!("max-age={age}")).map_err(|_| {
                invalid(
                    "server.tls.hsts_max_age_seconds",
                    "is not a number of seconds",
                )
            })?,
        ),
    };
    let redirect_listen = match raw.redirect_listen {
        None => None,
        Some(text) => {
            let addr: SocketAddr = text.parse().map_err(|_| {
                invalid(
                    "server.tls.redirect_listen",
                    format!("`{text}` is not an address like 0.0.0.0:80"),
                )
            })?;
            if taken.contains(&addr) {
                return Err(invalid(
                    "server.tls.redirect_listen",
                    "must differ from server.listen and admin.listen",
                ));
            }
            Some(addr)
        }
    };
    Ok(TlsConfig {
        cert_file,
        key_file,
        loaded: Arc::new(loaded),
        reload_every,
        hsts,
        redirect_listen,
    })
}
