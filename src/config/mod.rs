//! Configuration: the TOML file an operator writes, parsed and validated once at start.
//!
//! The key names under `[server]`, `[admin]`, `[keys]`, `[state]` and `[stores.*]` are a contract
//! (see docs/configuration.md); every problem is reported naming the key it concerns.

pub mod docstores;
pub mod error;
pub mod otel;
pub mod render;
pub mod tls;
pub mod webhooks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use crate::docstore::settings::StoreConfig;
use crate::model::policy::Policy;
use crate::model::token::Keyring;
use crate::share::mail::{MailConfig, Mailer};
use crate::state::redis::{RedisOptions, RedisTarget};
use error::invalid;
pub use error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    admin: RawAdmin,
    keys: RawKeys,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    stores: BTreeMap<String, crate::config::docstores::RawStore>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    policy: Policy,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    mail: MailConfig,
    #[serde(default)]
    webhooks: Option<webhooks::RawWebhooks>,
    #[serde(default)]
    tracing: Option<otel::RawTracing>,
    #[serde(default)]
    render: render::RawRender,
    #[serde(default)]
    renditions: BTreeMap<String, render::RawRendition>,
    #[serde(default)]
    branding: RawBranding,
}

/// `[branding]`: what the recipient pages show of the operator.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBranding {
    #[serde(default)]
    name: Option<String>,
    /// A PNG, JPEG or SVG file (relative to the config file's folder), read at start and reload.
    #[serde(default)]
    logo: Option<PathBuf>,
    /// `#rrggbb`, dark enough for white text.
    #[serde(default)]
    accent: Option<String>,
    /// The operator's labels for renditions, by rendition name (every language).
    #[serde(default)]
    renditions: BTreeMap<String, String>,
}

/// The validated `[branding]`.
#[derive(Clone, Default)]
pub struct Branding {
    pub name: Option<String>,
    pub logo: Option<crate::share::pages::Logo>,
    pub accent: Option<String>,
    pub renditions: BTreeMap<String, String>,
}

impl std::fmt::Debug for Branding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Branding")
            .field("name", &self.name)
            .field(
                "logo",
                &self.logo.as_ref().map(|l| (l.content_type, l.bytes.len())),
            )
            .field("accent", &self.accent)
            .field("renditions", &self.renditions)
            .finish()
    }
}

impl Branding {
    /// The pages' theme this branding gives.
    pub fn theme(&self) -> crate::share::pages::Theme {
        crate::share::pages::Theme::new(
            self.name.clone(),
            self.logo.clone(),
            self.accent.as_deref(),
        )
        .with_rendition_labels(self.renditions.clone())
    }
}

fn validate_branding(raw: RawBranding, base_dir: &Path) -> Result<Branding, ConfigError> {
    use crate::share::pages::{check_accent, check_logo};
    let name = match raw.name {
        Some(n) if n.chars().count() > 80 || n.chars().any(char::is_control) => {
            return Err(invalid(
                "branding.name",
                "must be at most 80 characters without control characters",
            ))
        }
        n => n.filter(|n| !n.trim().is_empty()),
    };
    let accent = raw
        .accent
        .map(|a| check_accent(&a).map_err(|e| invalid("branding.accent", e.to_string())))
        .transpose()?;
    let logo = match raw.logo {
        None => None,
        Some(path) => {
            let path = if path.is_absolute() {
                path
            } else {
                base_dir.join(path)
            };
            let bytes = std::fs::read(&path).map_err(|e| {
                invalid(
                    "branding.logo",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(check_logo(bytes).map_err(|e| invalid("branding.logo", e.to_string()))?)
        }
    };
    for (name, label) in &raw.renditions {
        if label.trim().is_empty()
            || label.chars().count() > 80
            || label.chars().any(char::is_control)
        {
            return Err(invalid(
                format!("branding.renditions.{name}"),
                "must be 1 to 80 characters without control characters",
            ));
        }
    }
    Ok(Branding {
        name,
        logo,
        accent,
        renditions: raw.renditions,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    /// Events older than this are dropped from each link's chain; absent = kept for ever.
    #[serde(default)]
    retention_days: Option<u32>,
    /// How often each gateway looks for links that have just expired (seconds, 1–3600).
    #[serde(default)]
    expiry_sweep_seconds: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    public_url: String,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    grace_period_seconds: Option<u64>,
    /// Unix socket over which a new process takes the listening sockets over (`serve --upgrade`).
    #[serde(default)]
    upgrade_sock: Option<PathBuf>,
    /// File `serve` writes its process id to, for `linkgate reload`.
    #[serde(default)]
    pid_file: Option<PathBuf>,
    /// Seconds a client may stall a response write before it is dropped.
    #[serde(default)]
    client_write_timeout_seconds: Option<u64>,
    /// Seconds a client may wait between two reads of its request (head or body).
    #[serde(default)]
    client_read_timeout_seconds: Option<u64>,
    /// Seconds a client may take to send a whole request head (from the connection's start, or
    /// from its first byte on a kept-alive connection).
    #[serde(default)]
    client_head_timeout_seconds: Option<u64>,
    /// Seconds an idle kept-alive connection waits for the next request.
    #[serde(default)]
    keepalive_timeout_seconds: Option<u64>,
    /// Mark cookies `Secure`; default: on when `public_url` is https (always with `[server.tls]`).
    #[serde(default)]
    cookie_secure: Option<bool>,
    /// TLS (and HTTP/2) on the listener itself.
    #[serde(default)]
    tls: Option<tls::RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
    token: String,
    /// How long a create's answer is kept for its `Idempotency-Key`, in hours.
    #[serde(default)]
    idempotency_hours: Option<u64>,
    /// Further callers, each limited to links created by the identities listed.
    #[serde(default)]
    callers: BTreeMap<String, RawCaller>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    token: String,
    created_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    signing: String,
    secrets: BTreeMap<String, String>,
    /// Key id → RFC 3339 time from which the key verifies nothing (quoted or a TOML date-time).
    #[serde(default)]
    retire: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    #[serde(default = "default_backend")]
    backend: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    redis_url: Option<RawRedisUrl>,
    #[serde(default)]
    redis_prefix: Option<String>,
    #[serde(default)]
    redis_timeout_ms: Option<u64>,
    /// No longer used (downloads are counted by bytes, nothing expires): accepted so that older
    /// files still load.
    #[serde(default, rename = "reservation_ttl_seconds")]
    _reservation_ttl_seconds: Option<u64>,
    #[serde(default)]
    cache_ttl_seconds: Option<u64>,
    #[serde(default)]
    cache_capacity: Option<usize>,
}

impl Default for RawState {
    fn default() -> Self {
        RawState {
            backend: default_backend(),
            path: None,
            redis_url: None,
            redis_prefix: None,
            redis_timeout_ms: None,
            _reservation_ttl_seconds: None,
            cache_ttl_seconds: None,
            cache_capacity: None,
        }
    }
}

/// `redis_url`: one URL, `redis+cluster://host:port,host:port`, or a list of cluster nodes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRedisUrl {
    One(String),
    Many(Vec<String>),
}

fn default_backend() -> String {
    "embedded".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    /// Largest admin request body accepted, in bytes.
    #[serde(default)]
    admin_body_bytes: Option<usize>,
    /// No longer used (a resume rides on the bytes a download left unsent, not on a time
    /// window): accepted so that older files still load.
    #[serde(default, rename = "grant_window_seconds")]
    _grant_window_seconds: Option<u64>,
    /// Requests per minute one client address may make to the recipients' pages.
    #[serde(default)]
    page_requests_per_minute: Option<u32>,
    /// The slowest average rate an upload may keep once its grace time is over.
    #[serde(default)]
    upload_min_bytes_per_second: Option<u64>,
    /// Seconds an upload may take before its average rate is checked.
    #[serde(default)]
    upload_grace_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default)]
    format: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub keys: Keyring,
    pub state: StateConfig,
    pub stores: BTreeMap<String, StoreConfig>,
    pub admin_body_limit: usize,
    pub log_json: bool,
    pub policy: Policy,
    pub audit_retention: Option<Duration>,
    /// How often each gateway records the expiries that came (`audit.expiry_sweep_seconds`).
    pub expiry_sweep: Duration,
    pub mail: MailConfig,
    pub page_requests_per_minute: u32,
    /// How slow an upload may be (see [`crate::share::upload::Pace`]).
    pub upload_pace: crate::share::upload::Pace,
    /// Stores' rules for legacy nginx `secure_link` URLs.
    pub secure_links: Vec<crate::model::secure_link::SecureLink>,
    /// `[webhooks]`: absent = no webhooks (and no outbox writes).
    pub webhooks: Option<webhooks::WebhookConfig>,
    /// `[tracing]`: absent or disabled = no traces (needs a restart to change).
    pub tracing: Option<otel::TracingConfig>,
    /// `[branding]`: the operator's name, logo and accent colour on the recipient pages.
    pub branding: Branding,
    /// `[render]` and `[renditions.*]`: renditions the gateway makes (needs a restart to change).
    pub render: crate::render::pool::RenderSettings,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Base of the URLs handed out, without a trailing slash.
    pub public_url: String,
    pub threads: usize,
    pub grace_period_seconds: u64,
    pub upgrade_sock: PathBuf,
    /// Where `serve` writes its process id (`server.pid_file`), read by `linkgate reload`.
    pub pid_file: Option<PathBuf>,
    pub client_write_timeout: Duration,
    pub client_read_timeout: Duration,
    /// The whole request head must arrive within this.
    pub client_head_timeout: Duration,
    /// An idle kept-alive connection is closed after this (whole seconds, at least 1).
    pub keepalive_timeout_seconds: u64,
    pub cookie_secure: bool,
    /// `[server.tls]`: the listener speaks TLS (HTTP/2 and HTTP/1.1) instead of plain HTTP.
    pub tls: Option<crate::share::tls::TlsConfig>,
}

#[derive(Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub token: String,
    pub callers: Vec<RestrictedCaller>,
    /// How long a create's answer is kept for its `Idempotency-Key` (`admin.idempotency_hours`).
    pub idempotency_keep: std::time::Duration,
}

use crate::model::policy::RestrictedCaller;

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let callers: Vec<&str> = self.callers.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .field("callers", &callers)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub enum StateConfig {
    Embedded {
        path: PathBuf,
        cache: CacheConfig,
    },
    Redis {
        options: RedisOptions,
        cache: CacheConfig,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub capacity: usize,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `origin` is used in messages and to resolve relative paths.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
        let base_dir = origin.parent().map(Path::to_path_buf).unwrap_or_default();
        validate(raw, &base_dir)
    }
}

fn redis_target(url: RawRedisUrl) -> Result<RedisTarget, ConfigError> {
    let key = "state.redis_url";
    let check = |u: &str| {
        if u.starts_with("redis://") || u.starts_with("rediss://") {
            Ok(u.to_string())
        } else {
            Err(invalid(
                key,
                format!("`{u}` must start with redis://, rediss:// or redis+cluster://"),
            ))
        }
    };
    match url {
        RawRedisUrl::One(u) => match u.strip_prefix("redis+cluster://") {
            Some(nodes) => {
                let nodes: Vec<String> = nodes
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("redis://{n}"))
                    .collect();
                if nodes.is_empty() {
                    return Err(invalid(
                        key,
                        "redis+cluster:// needs at least one host:port",
                    ));
                }
                Ok(RedisTarget::Cluster(nodes))
            }
            None => Ok(RedisTarget::Single(check(&u)?)),
        },
        RawRedisUrl::Many(list) if list.is_empty() => {
            Err(invalid(key, "the list of cluster nodes is empty"))
        }
        RawRedisUrl::Many(list) => Ok(RedisTarget::Cluster(
            list.iter().map(|u| check(u)).collect::<Result<_, _>>()?,
        )),
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("`{value}` is not an address like 127.0.0.1:8080"),
        )
    })
}

/// Checks every table; the first problem found is reported, naming its key.
fn validate(mut raw: RawConfig, base_dir: &Path) -> Result<Config, ConfigError> {
    let (listen, public_url, threads) = validate_listener(&raw.server)?;
    let admin = validate_admin(raw.admin, listen)?;
    raw.policy.validate().map_err(|(k, m)| invalid(k, m))?;
    let keys = validate_keys(&raw.keys)?;
    let state = validate_state(raw.state, base_dir)?;
    let webhooks = webhooks::validate(raw.webhooks.take(), &state)?;
    let tracing = otel::validate(raw.tracing.take())?;
    let render = render::validate(
        std::mem::take(&mut raw.render),
        std::mem::take(&mut raw.renditions),
        base_dir,
    )?;
    let (stores, secure_links) = validate_stores(raw.stores, base_dir)?;
    let log_json = validate_log(&raw.log)?;
    let branding = validate_branding(std::mem::take(&mut raw.branding), base_dir)?;
    let tls = validate_tls(
        raw.server.tls.take(),
        raw.server.cookie_secure,
        &public_url,
        base_dir,
        &[listen, admin.listen],
    )?;
    let server = validate_server(raw.server, listen, public_url, threads, tls, base_dir)?;
    Ok(Config {
        server,
        admin,
        keys,
        state,
        stores,
        admin_body_limit: raw.limits.admin_body_bytes.unwrap_or(64 * 1024),
        log_json,
        policy: raw.policy,
        mail: validate_mail(raw.mail)?,
        secure_links,
        upload_pace: crate::share::upload::Pace {
            min_bytes_per_second: raw.limits.upload_min_bytes_per_second.unwrap_or(1024),
            grace: Duration::from_secs(raw.limits.upload_grace_seconds.unwrap_or(30)),
        },
        page_requests_per_minute: validate_page_rate(&raw.limits)?,
        audit_retention: validate_audit(&raw.audit)?,
        expiry_sweep: match raw.audit.expiry_sweep_seconds {
            None => Duration::from_secs(30),
            Some(s) if (1..=3600).contains(&s) => Duration::from_secs(s),
            Some(_) => {
                return Err(invalid(
                    "audit.expiry_sweep_seconds",
                    "must be from 1 to 3600",
                ))
            }
        },
        webhooks,
        tracing,
        branding,
        render,
    })
}

/// `[server]`: the listener's address, public URL and threads.
fn validate_listener(server: &RawServer) -> Result<(SocketAddr, String, usize), ConfigError> {
    let listen = parse_addr("server.listen", &server.listen)?;
    let public_url = server.public_url.trim_end_matches('/').to_string();
    if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
        || public_url.len() < 10
    {
        return Err(invalid(
            "server.public_url",
            "must be an absolute http:// or https:// URL",
        ));
    }
    let threads = server.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if threads == 0 || threads > 1024 {
        return Err(invalid("server.threads", "must be between 1 and 1024"));
    }
    Ok((listen, public_url, threads))
}

/// `[admin]`: its listener (apart from the recipients'), its token and the restricted callers.
fn validate_admin(admin: RawAdmin, listen: SocketAddr) -> Result<AdminConfig, ConfigError> {
    let admin_listen = parse_addr("admin.listen", &admin.listen)?;
    if admin_listen == listen {
        return Err(invalid("admin.listen", "must differ from server.listen"));
    }
    if admin.token.len() < 8 {
        return Err(invalid("admin.token", "must be at least 8 characters"));
    }
    let mut callers = Vec::new();
    for (name, c) in admin.callers {
        let key = format!("admin.callers.{name}");
        if c.token.len() < 8 {
            return Err(invalid(
                format!("{key}.token"),
                "must be at least 8 characters",
            ));
        }
        if c.token == admin.token
            || callers
                .iter()
                .any(|o: &RestrictedCaller| o.token == c.token)
        {
            return Err(invalid(
                format!("{key}.token"),
                "must differ from every other admin token",
            ));
        }
        if c.created_by.is_empty() {
            return Err(invalid(
                format!("{key}.created_by"),
                "must list at least one identity",
            ));
        }
        callers.push(RestrictedCaller {
            name,
            token: c.token,
            created_by: c.created_by,
        });
    }
    let hours = admin.idempotency_hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(invalid(
            "admin.idempotency_hours",
            "must be a whole number of hours from 1 to 720",
        ));
    }
    Ok(AdminConfig {
        listen: admin_listen,
        token: admin.token,
        callers,
        idempotency_keep: std::time::Duration::from_secs(hours * 3600),
    })
}

/// `[keys]`: the secrets (base64, at least 32 bytes), the signing key and retirements.
fn validate_keys(keys: &RawKeys) -> Result<Keyring, ConfigError> {
    let mut secrets = Vec::new();
    for (kid, value) in &keys.secrets {
        let key = format!("keys.secrets.{kid}");
        if !crate::model::token::valid_key_id(kid) {
            return Err(invalid(
                key,
                "key ids are 1 to 32 characters of A-Z a-z 0-9 _ -",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()))
            .map_err(|_| invalid(&key, "is not valid base64"))?;
        if bytes.len() < 32 {
            return Err(invalid(
                &key,
                format!("decodes to {} bytes; at least 32 are required", bytes.len()),
            ));
        }
        secrets.push((kid.clone(), bytes));
    }
    if !keys.secrets.contains_key(&keys.signing) {
        return Err(invalid(
            "keys.signing",
            format!("`{}` has no entry in [keys.secrets]", keys.signing),
        ));
    }
    let mut retire = Vec::new();
    for (kid, value) in &keys.retire {
        let key = format!("keys.retire.{kid}");
        if !keys.secrets.contains_key(kid) {
            return Err(invalid(
                key,
                format!("`{kid}` has no entry in [keys.secrets]"),
            ));
        }
        if *kid == keys.signing {
            return Err(invalid(
                key,
                "the signing key cannot be retired; switch keys.signing to another key first",
            ));
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(d) => d.to_string(),
            _ => {
                return Err(invalid(
                    key,
                    "must be an RFC 3339 time, e.g. \"2026-12-01T00:00:00Z\"",
                ))
            }
        };
        let at = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| invalid(&key, format!("`{text}` is not an RFC 3339 time with an offset, e.g. \"2026-12-01T00:00:00Z\"")))?;
        retire.push((kid.clone(), at.unix_timestamp()));
    }

    Ok(Keyring::new(&keys.signing, secrets).with_retirements(retire))
}

/// `[state]`: the embedded file or Redis, and the link cache.
fn validate_state(state: RawState, base_dir: &Path) -> Result<StateConfig, ConfigError> {
    let cache = CacheConfig {
        ttl: Duration::from_secs(state.cache_ttl_seconds.unwrap_or(30)),
        capacity: state.cache_capacity.unwrap_or(100_000),
    };
    Ok(match state.backend.as_str() {
        "embedded" => {
            let path = state
                .path
                .unwrap_or_else(|| PathBuf::from("data/linkgate.db"));
            let path = if path.is_relative() {
                base_dir.join(path)
            } else {
                path
            };
            StateConfig::Embedded { path, cache }
        }
        "redis" => {
            let url = state.redis_url.ok_or_else(|| {
                invalid(
                    "state.redis_url",
                    "is required when state.backend = \"redis\"",
                )
            })?;
            let target = redis_target(url)?;
            let prefix = state.redis_prefix.unwrap_or_else(|| "lg".to_string());
            if prefix.is_empty() || prefix.len() > 64 || prefix.contains(['{', '}', ' ']) {
                return Err(invalid(
                    "state.redis_prefix",
                    "must be 1 to 64 characters without braces or spaces",
                ));
            }
            let timeout = Duration::from_millis(state.redis_timeout_ms.unwrap_or(500));
            if timeout.is_zero() {
                return Err(invalid("state.redis_timeout_ms", "must be at least 1"));
            }
            StateConfig::Redis {
                options: RedisOptions {
                    target,
                    prefix,
                    timeout,
                },
                cache,
            }
        }
        other => {
            return Err(invalid(
                "state.backend",
                format!("`{other}` is not one of \"embedded\", \"redis\""),
            ))
        }
    })
}

/// `[stores.*]`: every document store, and the legacy nginx rules some of them carry.
#[allow(clippy::type_complexity)]
fn validate_stores(
    raw: BTreeMap<String, crate::config::docstores::RawStore>,
    base_dir: &Path,
) -> Result<
    (
        BTreeMap<String, StoreConfig>,
        Vec<crate::model::secure_link::SecureLink>,
    ),
    ConfigError,
> {
    if raw.is_empty() {
        return Err(invalid(
            "stores",
            "at least one [stores.NAME] table is required",
        ));
    }
    let mut stores = BTreeMap::new();
    let mut secure_links: Vec<crate::model::secure_link::SecureLink> = Vec::new();
    for (name, mut store) in raw {
        let prefix = format!("stores.{name}");
        if let Some(rule) = store.secure_link.take() {
            let key = format!("{prefix}.secure_link");
            let rule = crate::model::secure_link::SecureLink::from_raw(&key, &name, rule)?;
            if let Some(other) = secure_links
                .iter()
                .find(|o| o.prefix.starts_with(&rule.prefix) || rule.prefix.starts_with(&o.prefix))
            {
                return Err(invalid(
                    format!("{key}.prefix"),
                    format!("overlaps the prefix of store `{}`", other.store),
                ));
            }
            secure_links.push(rule);
        }
        let cfg = crate::config::docstores::parse_store(&name, store, base_dir)?;
        stores.insert(name, cfg);
    }

    Ok((stores, secure_links))
}

/// `[log]`: text or JSON lines.
fn validate_log(log: &RawLog) -> Result<bool, ConfigError> {
    Ok(match log.format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(invalid(
                "log.format",
                format!("`{other}` is not one of \"text\", \"json\""),
            ))
        }
    })
}

/// `[server.tls]`, which also asks for an https public URL and Secure cookies.
fn validate_tls(
    tls: Option<tls::RawTls>,
    cookie_secure: Option<bool>,
    public_url: &str,
    base_dir: &Path,
    taken: &[SocketAddr],
) -> Result<Option<crate::share::tls::TlsConfig>, ConfigError> {
    let Some(t) = tls else { return Ok(None) };
    if !public_url.starts_with("https://") {
        return Err(invalid(
            "server.public_url",
            "must be an https:// URL when [server.tls] is set",
        ));
    }
    if cookie_secure == Some(false) {
        return Err(invalid(
            "server.cookie_secure",
            "cannot be false when [server.tls] is set",
        ));
    }
    Ok(Some(tls::parse(t, base_dir, taken)?))
}

/// The rest of `[server]`: timeouts, the upgrade socket, cookies.
fn validate_server(
    server: RawServer,
    listen: SocketAddr,
    public_url: String,
    threads: usize,
    tls: Option<crate::share::tls::TlsConfig>,
    base_dir: &Path,
) -> Result<ServerConfig, ConfigError> {
    let cookie_secure = tls.is_some()
        || server
            .cookie_secure
            .unwrap_or(public_url.starts_with("https://"));
    Ok(ServerConfig {
        listen,
        public_url,
        threads,
        grace_period_seconds: server.grace_period_seconds.unwrap_or(30),
        upgrade_sock: match server.upgrade_sock {
            Some(p) if p.is_relative() => base_dir.join(p),
            Some(p) => p,
            None => PathBuf::from("/tmp/linkgate-upgrade.sock"),
        },
        pid_file: server
            .pid_file
            .map(|p| if p.is_relative() { base_dir.join(p) } else { p }),
        client_write_timeout: Duration::from_secs(
            server.client_write_timeout_seconds.unwrap_or(60),
        ),
        client_read_timeout: Duration::from_secs(server.client_read_timeout_seconds.unwrap_or(30)),
        client_head_timeout: Duration::from_secs(match server.client_head_timeout_seconds {
            Some(0) => {
                return Err(invalid(
                    "server.client_head_timeout_seconds",
                    "must be at least 1",
                ))
            }
            n => n.unwrap_or(10),
        }),
        keepalive_timeout_seconds: match server.keepalive_timeout_seconds {
            Some(0) => {
                return Err(invalid(
                    "server.keepalive_timeout_seconds",
                    "must be at least 1",
                ))
            }
            n => n.unwrap_or(60),
        },
        cookie_secure,
        tls,
    })
}

/// `[mail]`: checked by building the mailer once.
fn validate_mail(mail: MailConfig) -> Result<MailConfig, ConfigError> {
    Mailer::from_config(&mail).map_err(|e| match e {
        crate::share::mail::MailError::Config { key, message } => invalid(key, message),
        other => invalid("mail", other.to_string()),
    })?;
    Ok(mail)
}

/// `[limits] page_requests_per_minute`.
fn validate_page_rate(limits: &RawLimits) -> Result<u32, ConfigError> {
    match limits.page_requests_per_minute {
        Some(0) => Err(invalid(
            "limits.page_requests_per_minute",
            "must be at least 1",
        )),
        Some(n) => Ok(n),
        None => Ok(120),
    }
}

/// `[audit] retention_days`.
fn validate_audit(audit: &RawAudit) -> Result<Option<Duration>, ConfigError> {
    match audit.retention_days {
        Some(0) => Err(invalid(
            "audit.retention_days",
            "must be at least 1 (leave it out to keep events for ever)",
        )),
        Some(days) => Ok(Some(Duration::from_secs(u64::from(days) * 86_400))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080/"
[admin]
listen = "127.0.0.1:9090"
token = "change-me-please"
[keys]
signing = "k1"
[keys.secrets]
k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
[stores.docs]
kind = "http"
url = "http://127.0.0.1:8000/files"
"#;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("test.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn branding_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("linkgate.toml");
        std::fs::write(dir.path().join("logo.png"), b"\x89PNG\r\n\x1a\nrest").unwrap();
        std::fs::write(
            dir.path().join("logo.html"),
            b"<html><script>alert(1)</script>",
        )
        .unwrap();
        let parse = |extra: &str| Config::parse(&format!("{GOOD}\n[branding]\n{extra}"), &config);
        let c = parse("name = \"Acme Legal\"\nlogo = \"logo.png\"\naccent = \"#1A4D2E\"\n[branding.renditions]\nlowres = \"Small\"").unwrap();
        assert_eq!(c.branding.renditions["lowres"], "Small");
        assert_eq!(c.branding.name.as_deref(), Some("Acme Legal"));
        assert_eq!(c.branding.accent.as_deref(), Some("#1a4d2e"));
        assert_eq!(
            c.branding.logo.as_ref().map(|l| l.content_type),
            Some("image/png")
        );
        for (bad, key) in [
            ("accent = \"red\"", "branding.accent"),
            ("accent = \"#fff;}body{x\"", "branding.accent"),
            ("accent = \"#ffee00\"", "branding.accent"),
            ("logo = \"logo.html\"", "branding.logo"),
            ("logo = \"missing.png\"", "branding.logo"),
            ("colour = \"#000000\"", "colour"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn good_config_parses() {
        let c = Config::parse(GOOD, Path::new("/etc/linkgate/x.toml")).unwrap();
        assert_eq!(c.server.public_url, "http://127.0.0.1:8080");
        let StoreConfig::Http(h) = &c.stores["docs"] else {
            panic!("http store expected")
        };
        assert_eq!(h.origins[0].base_path, "/files/");
        assert_eq!(h.origins[0].host_header, "127.0.0.1:8000");
        match c.state {
            StateConfig::Embedded { path, .. } => {
                assert_eq!(path, Path::new("/etc/linkgate/data/linkgate.db"))
            }
            _ => panic!("embedded expected"),
        }
    }

    #[test]
    fn sweeps_and_share_mail_retries_are_bounded_and_named() {
        let c = Config::parse(GOOD, Path::new("t.toml")).unwrap();
        assert_eq!(c.expiry_sweep, Duration::from_secs(30));
        let with = |extra: &str| format!("{GOOD}{extra}");
        let c = Config::parse(
            &with("[audit]\nexpiry_sweep_seconds = 1\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.expiry_sweep, Duration::from_secs(1));
        let e = err(&with("[audit]\nexpiry_sweep_seconds = 0\n"));
        assert!(e.contains("audit.expiry_sweep_seconds"), "{e}");
        let e = err(&with("[mail]\nshare_attempts = 0\n"));
        assert!(e.contains("mail.share_attempts"), "{e}");
        let e = err(&with("[mail]\nshare_retry_seconds = 0\n"));
        assert!(e.contains("mail.share_retry_seconds"), "{e}");
        let c = Config::parse(
            &with("[mail]\nshare_attempts = 3\nshare_retry_seconds = 2\ntimeout_seconds = 4\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        let retry = Mailer::from_config(&c.mail).unwrap().share_retry();
        assert_eq!(retry.attempts, 3);
        assert_eq!(retry.backoff.base, Duration::from_secs(2));
        assert_eq!(retry.attempt_timeout, Duration::from_secs(17));
        assert!(retry.hold() > retry.attempt_timeout);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = err(&GOOD.replace("listen = \"127.0.0.1:8080\"", "lisen = \"127.0.0.1:8080\""));
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn short_secret_is_named() {
        let e = err(&GOOD.replace("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "c2hvcnQ="));
        assert!(e.contains("keys.secrets.k1") && e.contains("32"), "{e}");
    }

    #[test]
    fn signing_key_must_exist() {
        let e = err(&GOOD.replace("signing = \"k1\"", "signing = \"k2\""));
        assert!(e.contains("keys.signing"), "{e}");
    }

    #[test]
    fn key_retirement_is_checked_at_load() {
        let with_k2 = GOOD.replace("[stores.docs]", "k2 = \"ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\"\n[keys.retire]\nRETIRE\n[stores.docs]");
        let parse =
            |retire: &str| Config::parse(&with_k2.replace("RETIRE", retire), Path::new("t.toml"));
        let quoted = parse("k2 = \"2026-12-01T00:00:00Z\"").unwrap();
        assert_eq!(quoted.keys.retires_at("k2"), Some(1_796_083_200));
        let native = parse("k2 = 2026-12-01T01:00:00+01:00").unwrap();
        assert_eq!(
            native.keys.retires_at("k2"),
            Some(1_796_083_200),
            "a TOML date-time with an offset"
        );
        let e = parse("k1 = \"2026-12-01T00:00:00Z\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("keys.retire.k1") && e.contains("signing"), "{e}");
        let e = parse("k9 = \"2026-12-01T00:00:00Z\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("keys.retire.k9"), "{e}");
        let e = parse("k2 = \"next tuesday\"").unwrap_err().to_string();
        assert!(e.contains("keys.retire.k2"), "{e}");
        let e = parse("k2 = 2026-12-01").unwrap_err().to_string();
        assert!(
            e.contains("keys.retire.k2"),
            "a date without a time or offset: {e}"
        );
    }

    #[test]
    fn bad_store_kind_and_url_are_named() {
        assert!(
            err(&GOOD.replace("kind = \"http\"", "kind = \"ftp\"")).contains("stores.docs.kind")
        );
        assert!(err(&GOOD.replace("http://127.0.0.1:8000/files", "ftp://x"))
            .contains("stores.docs.url"));
        assert!(
            err(&GOOD.replace("http://127.0.0.1:8000/files", "http://u:p@127.0.0.1/"))
                .contains("stores.docs.url")
        );
    }

    #[test]
    fn tls_problems_are_named() {
        let with_tls = |url: &str, extra: &str| {
            GOOD.replace("http://127.0.0.1:8080/", url).replace(
                "[admin]",
                &format!("[server.tls]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"\n{extra}[admin]"),
            )
        };
        let e = err(&with_tls("http://127.0.0.1:8080/", ""));
        assert!(
            e.contains("server.public_url") && e.contains("https"),
            "{e}"
        );
        let e = err(&with_tls("https://files.example/", "")
            .replace("[server.tls]", "cookie_secure = false\n[server.tls]"));
        assert!(e.contains("server.cookie_secure"), "{e}");
        let e = err(&with_tls("https://files.example/", ""));
        assert!(
            e.contains("server.tls.cert_file") && e.contains("/nonexistent/c.pem"),
            "{e}"
        );
        let e = err(&with_tls("https://files.example/", "tls_cert = \"x\"\n"));
        assert!(e.contains("tls_cert"), "{e}");
        let e = err(&GOOD.replace(
            "url = \"http://127.0.0.1:8000/files\"",
            "url = \"http://127.0.0.1:8000/files\"\nca_file = \"/nonexistent/ca.pem\"",
        ));
        assert!(e.contains("stores.docs.ca_file"), "{e}");
    }

    #[test]
    fn bad_listen_is_named() {
        assert!(err(&GOOD.replace("127.0.0.1:9090", "nowhere")).contains("admin.listen"));
        for hours in ["0", "721"] {
            let bad = GOOD.replace(
                "[admin]\n",
                &format!("[admin]\nidempotency_hours = {hours}\n"),
            );
            assert!(err(&bad).contains("admin.idempotency_hours"), "{hours}");
        }
    }

    #[test]
    fn redis_targets() {
        let redis = |url: &str| {
            let text = GOOD.replace(
                "[stores.docs]",
                &format!("[state]\nbackend = \"redis\"\nredis_url = {url}\n[stores.docs]"),
            );
            Config::parse(&text, Path::new("t.toml")).map(|c| match c.state {
                StateConfig::Redis { options, .. } => options.target,
                _ => panic!("redis expected"),
            })
        };
        assert_eq!(
            redis("\"redis://127.0.0.1:6379\"").unwrap(),
            RedisTarget::Single("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            redis("\"redis+cluster://127.0.0.1:7000,127.0.0.1:7001\"").unwrap(),
            RedisTarget::Cluster(vec![
                "redis://127.0.0.1:7000".into(),
                "redis://127.0.0.1:7001".into()
            ])
        );
        assert_eq!(
            redis("[\"redis://a:1\", \"redis://b:2\"]").unwrap(),
            RedisTarget::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert!(redis("\"http://x\"")
            .unwrap_err()
            .to_string()
            .contains("state.redis_url"));
        assert!(redis("[]")
            .unwrap_err()
            .to_string()
            .contains("state.redis_url"));
    }
}
