//! The `[stores.NAME]` tables: parsed and checked once at start, naming the key of every problem.
//!
//! ```toml
//! [stores.docs]                 # an HTTP origin, or several serving the same files
//! kind = "http"
//! urls = ["http://10.0.0.1:8000/files/", "http://10.0.0.2:8000/files/"]   # or url = "…"
//! auth = { kind = "bearer", token = "…" }   # or basic (username, password) or header (name, value)
//! health_check_path = "/healthz"          # HTTP check; without it a TCP connect check
//! [stores.bucket]
//! kind = "s3"
//! endpoint = "https://s3.eu-west-1.amazonaws.com"
//! region = "eu-west-1"
//! bucket = "shares"
//! access_key_id = "…"               # or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment
//! [stores.local]
//! kind = "dir"
//! root = "/srv/files"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::config::error::{invalid, ConfigError};
use crate::docstore::settings::{
    DirStoreConfig, HttpStoreConfig, OriginConfig, S3Credentials, S3StoreConfig, StoreConfig,
};

/// One `[stores.NAME]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    kind: String,
    // http
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    urls: Option<Vec<String>>,
    /// Extra header sent with every upstream request, e.g. `{ name = "Authorization", value = "Bearer x" }`.
    #[serde(default)]
    auth_header: Option<RawHeader>,
    #[serde(default)]
    auth: Option<RawAuth>,
    #[serde(default)]
    health_check_path: Option<String>,
    #[serde(default)]
    health_check_interval_ms: Option<u64>,
    // http and s3
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    read_timeout_ms: Option<u64>,
    /// PEM bundle of the CAs that sign the store's https origins (instead of the system's).
    #[serde(default)]
    ca_file: Option<PathBuf>,
    // s3
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    bucket: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path_style: Option<bool>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    secret_access_key: Option<String>,
    #[serde(default)]
    session_token: Option<String>,
    // dir
    #[serde(default)]
    root: Option<PathBuf>,
    /// Legacy links in nginx `secure_link` formats (see `securelink`); taken out before the rest is checked.
    #[serde(default)]
    pub secure_link: Option<crate::model::secure_link::RawSecureLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: String,
    value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    kind: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

/// Checks one `[stores.NAME]` table; relative `root`s are relative to `base_dir`.
pub fn parse_store(
    name: &str,
    store: RawStore,
    base_dir: &Path,
) -> Result<StoreConfig, ConfigError> {
    let prefix = format!("stores.{name}");
    let only = |kind: &str, allowed: &[&str], store: &RawStore| -> Result<(), ConfigError> {
        let given: [(&str, bool); 19] = [
            ("url", store.url.is_some()),
            ("urls", store.urls.is_some()),
            ("auth_header", store.auth_header.is_some()),
            ("auth", store.auth.is_some()),
            ("health_check_path", store.health_check_path.is_some()),
            (
                "health_check_interval_ms",
                store.health_check_interval_ms.is_some(),
            ),
            ("connect_timeout_ms", store.connect_timeout_ms.is_some()),
            ("read_timeout_ms", store.read_timeout_ms.is_some()),
            ("ca_file", store.ca_file.is_some()),
            ("endpoint", store.endpoint.is_some()),
            ("region", store.region.is_some()),
            ("bucket", store.bucket.is_some()),
            ("prefix", store.prefix.is_some()),
            ("path_style", store.path_style.is_some()),
            ("access_key_id", store.access_key_id.is_some()),
            ("secret_access_key", store.secret_access_key.is_some()),
            ("session_token", store.session_token.is_some()),
            ("root", store.root.is_some()),
            ("kind", false),
        ];
        match given
            .iter()
            .find(|(key, set)| *set && !allowed.contains(key))
        {
            Some((key, _)) => Err(invalid(
                format!("{prefix}.{key}"),
                format!("is not a setting of `{kind}` stores"),
            )),
            None => Ok(()),
        }
    };
    match store.kind.as_str() {
        "http" => {
            only(
                "http",
                &[
                    "url",
                    "urls",
                    "auth_header",
                    "auth",
                    "health_check_path",
                    "health_check_interval_ms",
                    "connect_timeout_ms",
                    "read_timeout_ms",
                    "ca_file",
                ],
                &store,
            )?;
            let ca = ca_file(&prefix, &store, base_dir)?;
            let mut http = http_store(&prefix, name, store)?;
            if let Some(ca) = ca {
                trust_only(&prefix, &mut http.origins, ca)?;
            }
            Ok(StoreConfig::Http(http))
        }
        "s3" => {
            only(
                "s3",
                &[
                    "endpoint",
                    "region",
                    "bucket",
                    "prefix",
                    "path_style",
                    "access_key_id",
                    "secret_access_key",
                    "session_token",
                    "connect_timeout_ms",
                    "read_timeout_ms",
                    "ca_file",
                ],
                &store,
            )?;
            let ca = ca_file(&prefix, &store, base_dir)?;
            let mut s3 = s3_store(&prefix, name, store, &|k| std::env::var(k).ok())?;
            if let Some(ca) = ca {
                trust_only(&prefix, std::slice::from_mut(&mut s3.origin), ca)?;
            }
            Ok(StoreConfig::S3(s3))
        }
        "dir" => {
            only("dir", &["root"], &store)?;
            Ok(StoreConfig::Dir(dir_store(&prefix, name, store, base_dir)?))
        }
        other => Err(invalid(
            format!("{prefix}.kind"),
            format!("`{other}` is not one of \"http\", \"s3\", \"dir\""),
        )),
    }
}

/// Loads a store's `ca_file` (relative to `base_dir`), if it has one.
fn ca_file(
    prefix: &str,
    store: &RawStore,
    base_dir: &Path,
) -> Result<Option<crate::docstore::settings::OriginCa>, ConfigError> {
    let Some(path) = &store.ca_file else {
        return Ok(None);
    };
    let path = if path.is_relative() {
        base_dir.join(path)
    } else {
        path.clone()
    };
    crate::share::tls::load_ca_file(&path)
        .map(Some)
        .map_err(|e| invalid(format!("{prefix}.ca_file"), e.to_string()))
}

/// Makes `ca` the only CAs trusted by a store's origins, which must then all be https.
fn trust_only(
    prefix: &str,
    origins: &mut [OriginConfig],
    ca: crate::docstore::settings::OriginCa,
) -> Result<(), ConfigError> {
    if origins.iter().any(|o| !o.tls) {
        return Err(invalid(
            format!("{prefix}.ca_file"),
            "is only for https origins, and this store has an http one",
        ));
    }
    for o in origins {
        o.ca = Some(ca.clone());
    }
    Ok(())
}

/// Parses an `http(s)://host[:port][/path]` URL into an origin, resolving the host once.
fn origin(key: &str, url: &str) -> Result<OriginConfig, ConfigError> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(invalid(key, "must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid(
            key,
            "must name a host (credentials in the URL are not accepted; use auth)",
        ));
    }
    if path.contains(['?', '#']) {
        return Err(invalid(key, "must not have a query or fragment"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = split_host_port(authority, default_port)
        .ok_or_else(|| invalid(key, "has an invalid host or port"))?;
    // Resolved once at start, off the request path (Pingora's HttpPeer must not resolve per request).
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .map_err(|e| invalid(key, format!("cannot resolve `{host}`: {e}")))?
        .next()
        .ok_or_else(|| invalid(key, format!("`{host}` resolves to no address")))?;
    let mut base_path = path.to_string();
    if !base_path.ends_with('/') {
        base_path.push('/');
    }
    let host_header = if port == default_port {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let sni = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(OriginConfig {
        tls,
        ca: None,
        host_header,
        sni,
        addr,
        base_path,
    })
}

fn timeouts(store: &RawStore) -> (Duration, Duration) {
    (
        Duration::from_millis(store.connect_timeout_ms.unwrap_or(2_000)),
        Duration::from_millis(store.read_timeout_ms.unwrap_or(30_000)),
    )
}

fn header_value(key: &str, value: &str) -> Result<http::HeaderValue, ConfigError> {
    let mut value = http::HeaderValue::from_str(value)
        .map_err(|_| invalid(key, "is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

fn auth(
    prefix: &str,
    store: &RawStore,
) -> Result<Option<(http::HeaderName, http::HeaderValue)>, ConfigError> {
    let header = |key: &str, name: &str, value: &str| -> Result<_, ConfigError> {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("{key}.name"), "is not a valid header name"))?;
        Ok(Some((name, header_value(&format!("{key}.value"), value)?)))
    };
    match (&store.auth_header, &store.auth) {
        (Some(_), Some(_)) => Err(invalid(
            format!("{prefix}.auth"),
            "give either auth or auth_header, not both",
        )),
        (None, None) => Ok(None),
        (Some(h), None) => header(&format!("{prefix}.auth_header"), &h.name, &h.value),
        (None, Some(a)) => {
            let key = format!("{prefix}.auth");
            let need = |v: &Option<String>, field: &str| {
                v.clone().ok_or_else(|| {
                    invalid(
                        format!("{key}.{field}"),
                        format!("is required for `{}` auth", a.kind),
                    )
                })
            };
            match a.kind.as_str() {
                "basic" => {
                    let user = need(&a.username, "username")?;
                    if user.contains(':') {
                        return Err(invalid(format!("{key}.username"), "must not contain `:`"));
                    }
                    let pair = format!("{user}:{}", need(&a.password, "password")?);
                    let value = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    );
                    Ok(Some((
                        http::header::AUTHORIZATION,
                        header_value(&key, &value)?,
                    )))
                }
                "bearer" => {
                    let value = format!("Bearer {}", need(&a.token, "token")?);
                    Ok(Some((
                        http::header::AUTHORIZATION,
                        header_value(&format!("{key}.token"), &value)?,
                    )))
                }
                "header" => header(&key, &need(&a.name, "name")?, &need(&a.value, "value")?),
                other => Err(invalid(
                    format!("{key}.kind"),
                    format!("`{other}` is not one of \"basic\", \"bearer\", \"header\""),
                )),
            }
        }
    }
}

fn http_store(prefix: &str, name: &str, store: RawStore) -> Result<HttpStoreConfig, ConfigError> {
    let urls: Vec<(String, String)> = match (&store.url, &store.urls) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                format!("{prefix}.urls"),
                "give either url or urls, not both",
            ))
        }
        (Some(u), None) => vec![(format!("{prefix}.url"), u.clone())],
        (None, Some(list)) if !list.is_empty() && list.len() <= 64 => list
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("{prefix}.urls[{i}]"), u.clone()))
            .collect(),
        (None, Some(_)) => {
            return Err(invalid(
                format!("{prefix}.urls"),
                "must list 1 to 64 origin URLs",
            ))
        }
        (None, None) => {
            return Err(invalid(
                format!("{prefix}.url"),
                "is required for an http store (or urls, a list)",
            ))
        }
    };
    let mut origins: Vec<OriginConfig> = Vec::with_capacity(urls.len());
    for (key, url) in &urls {
        let o = origin(key, url)?;
        if origins.iter().any(|p| p.addr == o.addr) {
            return Err(invalid(key, format!("{} is listed twice", o.addr)));
        }
        origins.push(o);
    }
    let health_check_path = match store.health_check_path.clone() {
        Some(p) if !p.starts_with('/') || p.contains(char::is_whitespace) => {
            return Err(invalid(
                format!("{prefix}.health_check_path"),
                "must be a path starting with `/`",
            ))
        }
        other => other,
    };
    let (connect_timeout, read_timeout) = timeouts(&store);
    Ok(HttpStoreConfig {
        name: name.to_string(),
        origins,
        auth_header: auth(prefix, &store)?,
        connect_timeout,
        read_timeout,
        health_check_path,
        health_check_interval: Duration::from_millis(
            store.health_check_interval_ms.unwrap_or(5_000).max(100),
        ),
    })
}

fn s3_store(
    prefix: &str,
    name: &str,
    store: RawStore,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<S3StoreConfig, ConfigError> {
    let region = store
        .region
        .clone()
        .unwrap_or_else(|| "us-east-1".to_string());
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(invalid(
            format!("{prefix}.region"),
            "must be a region name like eu-west-1",
        ));
    }
    let bucket = store
        .bucket
        .clone()
        .ok_or_else(|| invalid(format!("{prefix}.bucket"), "is required for an s3 store"))?;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(invalid(
            format!("{prefix}.bucket"),
            "must be a bucket name (3 to 63 of a-z, 0-9, `-`, `.`)",
        ));
    }
    let path_style = store.path_style.unwrap_or(true);
    let endpoint = store
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let key = format!("{prefix}.endpoint");
    let mut origin = origin(&key, &endpoint)?;
    if origin.base_path != "/" {
        return Err(invalid(
            key,
            "must not have a path (the bucket is given by `bucket`)",
        ));
    }
    if path_style {
        origin.base_path = format!("/{bucket}/");
    } else {
        origin.host_header = format!("{bucket}.{}", origin.host_header);
        origin.sni = format!("{bucket}.{}", origin.sni);
    }
    let object_prefix = store.prefix.clone().unwrap_or_default();
    if !object_prefix.is_empty()
        && (object_prefix.starts_with('/')
            || crate::model::link::check_object_key(&object_prefix.replace('/', "/x")).is_err())
    {
        return Err(invalid(
            format!("{prefix}.prefix"),
            "must be a key prefix like `shares/` (no leading `/`, no `..`)",
        ));
    }
    let from_env = |var: &str, given: &Option<String>| {
        given.clone().or_else(|| env(var)).filter(|v| !v.is_empty())
    };
    let access_key_id = from_env("AWS_ACCESS_KEY_ID", &store.access_key_id);
    let secret_access_key = from_env("AWS_SECRET_ACCESS_KEY", &store.secret_access_key);
    let (access_key_id, secret_access_key) = match (access_key_id, secret_access_key) {
        (Some(a), Some(s)) => (a, s),
        (None, _) => {
            return Err(invalid(
                format!("{prefix}.access_key_id"),
                "is required (or AWS_ACCESS_KEY_ID in the environment)",
            ))
        }
        (_, None) => {
            return Err(invalid(
                format!("{prefix}.secret_access_key"),
                "is required (or AWS_SECRET_ACCESS_KEY in the environment)",
            ))
        }
    };
    let session_token = match store.session_token.clone() {
        Some(t) => Some(t),
        None if store.access_key_id.is_none() => env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
        None => None,
    };
    let (connect_timeout, read_timeout) = timeouts(&store);
    Ok(S3StoreConfig {
        name: name.to_string(),
        origin,
        region,
        bucket,
        prefix: object_prefix,
        credentials: S3Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        },
        connect_timeout,
        read_timeout,
    })
}

fn dir_store(
    prefix: &str,
    name: &str,
    store: RawStore,
    base_dir: &Path,
) -> Result<DirStoreConfig, ConfigError> {
    let key = format!("{prefix}.root");
    let root = store
        .root
        .ok_or_else(|| invalid(&key, "is required for a dir store"))?;
    let root = if root.is_relative() {
        base_dir.join(root)
    } else {
        root
    };
    let root = std::fs::canonicalize(&root)
        .map_err(|e| invalid(&key, format!("{}: {e}", root.display())))?;
    if !root.is_dir() {
        return Err(invalid(&key, format!("{} is not a folder", root.display())));
    }
    Ok(DirStoreConfig {
        name: name.to_string(),
        root,
    })
}

pub fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((authority.to_string(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawStore {
        toml::from_str(text).unwrap()
    }

    fn err(text: &str) -> String {
        parse_store("s", raw(text), Path::new("/"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn several_origins_and_auth_kinds() {
        let StoreConfig::Http(h) = parse_store(
            "s",
            raw("kind = \"http\"\nurls = [\"http://127.0.0.1:81/a\", \"http://127.0.0.1:82/b/\"]\nauth = { kind = \"basic\", username = \"u\", password = \"p\" }"),
            Path::new("/"),
        )
        .unwrap() else {
            panic!("http expected")
        };
        assert_eq!(h.origins.len(), 2);
        assert_eq!(h.origins[0].base_path, "/a/");
        assert_eq!(h.origins[1].host_header, "127.0.0.1:82");
        let (name, value) = h.auth_header.unwrap();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value.to_str().unwrap(), "Basic dTpw");
        let StoreConfig::Http(h) =
            parse_store("s", raw("kind = \"http\"\nurl = \"http://127.0.0.1:81\"\nauth = { kind = \"bearer\", token = \"t0k\" }"), Path::new("/")).unwrap()
        else {
            panic!("http expected")
        };
        assert_eq!(h.auth_header.unwrap().1.to_str().unwrap(), "Bearer t0k");
    }

    #[test]
    fn bad_store_settings_are_named() {
        assert!(err(
            "kind = \"http\"\nurls = [\"http://127.0.0.1:81\", \"http://127.0.0.1:81/x\"]"
        )
        .contains("stores.s.urls[1]"));
        assert!(err("kind = \"http\"\nurls = []").contains("stores.s.urls"));
        assert!(err(
            "kind = \"http\"\nurl = \"http://127.0.0.1:81\"\nauth = { kind = \"digest\" }"
        )
        .contains("stores.s.auth.kind"));
        assert!(err("kind = \"http\"\nurl = \"http://127.0.0.1:81\"\nauth = { kind = \"basic\", username = \"u\" }").contains("stores.s.auth.password"));
        assert!(
            err("kind = \"http\"\nurl = \"http://127.0.0.1:81\"\nbucket = \"b\"")
                .contains("stores.s.bucket")
        );
        assert!(
            err("kind = \"dir\"\nroot = \"/nonexistent-linkgate-root\"").contains("stores.s.root")
        );
        assert!(err("kind = \"dir\"").contains("stores.s.root"));
        assert!(err("kind = \"s3\"\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"B!\"\naccess_key_id = \"a\"\nsecret_access_key = \"s\"").contains("stores.s.bucket"));
    }

    #[test]
    fn s3_credentials_come_from_config_or_environment() {
        let text = "kind = \"s3\"\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"docs\"\nregion = \"eu-west-1\"";
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("SECRET".to_string()),
            "AWS_SESSION_TOKEN" => Some("TOKEN".to_string()),
            _ => None,
        };
        let c = s3_store("stores.s", "s", raw(text), &env).unwrap();
        assert_eq!(c.credentials.access_key_id, "AKID");
        assert_eq!(c.credentials.session_token.as_deref(), Some("TOKEN"));
        assert_eq!(c.origin.base_path, "/docs/");
        let e = s3_store("stores.s", "s", raw(text), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("stores.s.access_key_id"), "{e}");
        let hosted = s3_store(
            "stores.s",
            "s",
            raw(&format!(
                "{text}\npath_style = false\naccess_key_id = \"a\"\nsecret_access_key = \"b\""
            )),
            &|_| None,
        )
        .unwrap();
        assert_eq!(hosted.origin.host_header, "docs.127.0.0.1:9000");
        assert_eq!(hosted.origin.base_path, "/");
        assert!(hosted.credentials.session_token.is_none());
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("[::1]:81", 80), Some(("::1".into(), 81)));
        assert_eq!(
            split_host_port("example.org", 443),
            Some(("example.org".into(), 443))
        );
        assert_eq!(split_host_port("a:b", 80), None);
    }
}
