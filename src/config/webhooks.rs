//! `[webhooks]`: delivery of audit events to the document system (see docs/notifications.md).

use std::time::Duration;

use serde::Deserialize;

use super::error::{invalid, ConfigError};
use super::StateConfig;
use crate::model::webhook::{check_events, check_secret, check_url, Backoff, WebhookTarget};
use crate::state::redis::RedisTarget;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    /// The document system's endpoint for every link's events (optional: links may carry
    /// their own).
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    backoff_base_seconds: Option<u64>,
    #[serde(default)]
    backoff_max_seconds: Option<u64>,
    #[serde(default)]
    max_pending: Option<u64>,
    #[serde(default)]
    keep_failed: Option<usize>,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    per_link: Option<bool>,
    #[serde(default)]
    allowed_hosts: Option<Vec<String>>,
}

/// Validated `[webhooks]`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where every link's events go (with `events` as its subscription).
    pub target: Option<WebhookTarget>,
    /// Bound on one delivery: connect, send, and the answer's head.
    pub timeout: Duration,
    /// Attempts before an entry is given up (moved to the failed list).
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// Most entries waiting in the outbox; past it new notifications are not queued.
    pub max_pending: u64,
    /// Entries given up that are kept for `GET /v1/webhooks/failed`.
    pub keep_failed: usize,
    /// Deliveries in flight at once, per instance.
    pub concurrency: usize,
    /// Whether links may carry their own `webhook`.
    pub per_link: bool,
    /// When set, the hosts links' own webhooks may name: `dms.example.org` exactly, or
    /// `.example.org` for any host under it.
    pub allowed_hosts: Option<Vec<String>>,
}

impl WebhookConfig {
    /// How long a leased entry is kept from other instances: longer than any delivery can take
    /// (two targets, each bounded by `timeout`), with room to spare.
    pub fn lease(&self) -> Duration {
        self.timeout * 3 + Duration::from_secs(5)
    }

    /// Whether a link's own webhook may name `host` (see `allowed_hosts`).
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.as_ref().is_none_or(|list| {
            list.iter().any(|a| match a.strip_prefix('.') {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == *a,
            })
        })
    }
}

pub(super) fn validate(
    raw: Option<RawWebhooks>,
    state: &StateConfig,
) -> Result<Option<WebhookConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if let StateConfig::Redis { options, .. } = state {
        if matches!(options.target, RedisTarget::Cluster(_)) {
            return Err(invalid(
                "webhooks",
                "the webhook outbox needs the embedded store or a single Redis server; Redis Cluster is not supported",
            ));
        }
    }
    let target = match (raw.url, raw.secret) {
        (None, None) => {
            if raw.events.is_some() {
                return Err(invalid("webhooks.events", "needs webhooks.url"));
            }
            None
        }
        (Some(_), None) => return Err(invalid("webhooks.secret", "is required with webhooks.url")),
        (None, Some(_)) => return Err(invalid("webhooks.url", "is required with webhooks.secret")),
        (Some(url), Some(secret)) => {
            check_url(&url).map_err(|m| invalid("webhooks.url", m))?;
            check_secret(&secret).map_err(|m| invalid("webhooks.secret", m))?;
            if let Some(events) = &raw.events {
                check_events(events).map_err(|m| invalid("webhooks.events", m))?;
            }
            Some(WebhookTarget {
                url,
                secret,
                events: raw.events,
            })
        }
    };
    let positive = |key: &'static str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(invalid(key, "must be at least 1")),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    let timeout = positive("webhooks.timeout_seconds", raw.timeout_seconds, 10)?;
    if timeout > 300 {
        return Err(invalid("webhooks.timeout_seconds", "must be at most 300"));
    }
    let base = positive(
        "webhooks.backoff_base_seconds",
        raw.backoff_base_seconds,
        10,
    )?;
    let max = positive(
        "webhooks.backoff_max_seconds",
        raw.backoff_max_seconds,
        3600,
    )?;
    if max < base {
        return Err(invalid(
            "webhooks.backoff_max_seconds",
            "must not be below webhooks.backoff_base_seconds",
        ));
    }
    let max_attempts = positive("webhooks.max_attempts", raw.max_attempts.map(u64::from), 48)?;
    if max_attempts > 1000 {
        return Err(invalid("webhooks.max_attempts", "must be at most 1000"));
    }
    let concurrency = positive("webhooks.concurrency", raw.concurrency.map(|n| n as u64), 8)?;
    if concurrency > 256 {
        return Err(invalid("webhooks.concurrency", "must be at most 256"));
    }
    Ok(Some(WebhookConfig {
        target,
        timeout: Duration::from_secs(timeout),
        max_attempts: max_attempts as u32,
        backoff: Backoff {
            base: Duration::from_secs(base),
            max: Duration::from_secs(max),
        },
        max_pending: positive("webhooks.max_pending", raw.max_pending, 100_000)?,
        keep_failed: raw.keep_failed.unwrap_or(1000).min(100_000),
        concurrency: concurrency as usize,
        per_link: raw.per_link.unwrap_or(true),
        allowed_hosts: match raw.allowed_hosts {
            None => None,
            Some(list) => {
                let mut hosts = Vec::new();
                for h in list {
                    let bare = h.trim_start_matches('.');
                    if bare.is_empty()
                        || !bare
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                    {
                        return Err(invalid(
                            "webhooks.allowed_hosts",
                            format!(
                                "`{}` is not a host name like dms.example.org or .example.org",
                                h.escape_default()
                            ),
                        ));
                    }
                    hosts.push(h.to_ascii_lowercase());
                }
                Some(hosts)
            }
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Result<Option<WebhookConfig>, ConfigError> {
        let raw: RawWebhooks =
            toml::from_str(toml_text).map_err(|e| invalid("webhooks", e.to_string()))?;
        validate(
            Some(raw),
            &StateConfig::Embedded {
                path: "x.db".into(),
                cache: crate::config::CacheConfig {
                    ttl: Duration::from_secs(1),
                    capacity: 10,
                },
            },
        )
    }

    fn refused_key(toml_text: &str) -> String {
        match config(toml_text) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_each_bad_key_is_named() {
        let c = config("").unwrap().unwrap();
        assert!(c.target.is_none() && c.per_link);
        assert_eq!((c.max_attempts, c.concurrency), (48, 8));
        let c = config("url = \"https://dms.example.org/h\"\nsecret = \"0123456789abcdef\"\nevents = [\"review.decided\"]")
            .unwrap()
            .unwrap();
        assert!(c.target.as_ref().unwrap().wants("review.decided"));
        assert!(!c.target.as_ref().unwrap().wants("page.viewed"));
        assert_eq!(refused_key("url = \"https://x.org/\""), "webhooks.secret");
        assert_eq!(refused_key("secret = \"0123456789abcdef\""), "webhooks.url");
        assert_eq!(
            refused_key("url = \"ftp://x.org/\"\nsecret = \"0123456789abcdef\""),
            "webhooks.url"
        );
        assert_eq!(
            refused_key("url = \"https://x.org/\"\nsecret = \"short\""),
            "webhooks.secret"
        );
        assert_eq!(
            refused_key(
                "url = \"https://x.org/\"\nsecret = \"0123456789abcdef\"\nevents = [\"nope\"]"
            ),
            "webhooks.events"
        );
        assert_eq!(
            refused_key("timeout_seconds = 0"),
            "webhooks.timeout_seconds"
        );
        assert_eq!(
            refused_key("backoff_base_seconds = 10\nbackoff_max_seconds = 5"),
            "webhooks.backoff_max_seconds"
        );
        assert_eq!(
            refused_key("allowed_hosts = [\"a b\"]"),
            "webhooks.allowed_hosts"
        );
        assert!(config("bogus = 1").is_err());
    }

    #[test]
    fn allowed_hosts_match_exactly_or_below_a_domain() {
        let c = config("allowed_hosts = [\"dms.example.org\", \".hooks.example.net\"]")
            .unwrap()
            .unwrap();
        assert!(c.host_allowed("dms.example.org"));
        assert!(c.host_allowed("DMS.example.org"));
        assert!(c.host_allowed("a.hooks.example.net"));
        assert!(!c.host_allowed("hooks.example.net.evil.org"));
        assert!(!c.host_allowed("evil-dms.example.org"));
        assert!(!c.host_allowed("169.254.169.254"));
        assert!(config("").unwrap().unwrap().host_allowed("anything"));
    }

    #[test]
    fn redis_cluster_is_refused() {
        let state = StateConfig::Redis {
            options: crate::state::redis::RedisOptions {
                target: RedisTarget::Cluster(vec!["redis://a:1".into()]),
                prefix: "lg".into(),
                timeout: Duration::from_secs(1),
            },
            cache: crate::config::CacheConfig {
                ttl: Duration::from_secs(1),
                capacity: 10,
            },
        };
        assert!(validate(Some(RawWebhooks::default()), &state).is_err());
    }
}
