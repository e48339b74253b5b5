//! `[tracing]`: OpenTelemetry traces exported over OTLP/HTTP (protobuf). Absent or
//! `enabled = false`: no exporter, no spans (see docs/operations.md, "Traces").

use std::time::Duration;

use serde::Deserialize;

use super::error::{invalid, ConfigError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTracing {
    #[serde(default)]
    enabled: Option<bool>,
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
    /// Share of requests traced, 0.0–1.0.
    #[serde(default)]
    sampling_ratio: Option<f64>,
    #[serde(default)]
    export_timeout_ms: Option<u64>,
    /// Most finished spans waiting for export; past it spans are dropped (and counted).
    #[serde(default)]
    max_queue: Option<usize>,
}

/// Validated `[tracing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub endpoint: String,
    pub service_name: String,
    pub sampling_ratio: f64,
    pub export_timeout: Duration,
    pub max_queue: usize,
}

pub(super) fn validate(raw: Option<RawTracing>) -> Result<Option<TracingConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let Some(endpoint) = raw.endpoint else {
        return Err(invalid(
            "tracing.endpoint",
            "is required (the collector's OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces), or set tracing.enabled = false",
        ));
    };
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| invalid("tracing.endpoint", format!("`{endpoint}` is not a URL")))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(invalid(
            "tracing.endpoint",
            "must be an http:// URL with a host (a collector next to the gateway; https is not supported)",
        ));
    }
    let service_name = raw.service_name.unwrap_or_else(|| "linkgate".to_string());
    if service_name.trim().is_empty() || service_name.len() > 128 {
        return Err(invalid(
            "tracing.service_name",
            "must be 1 to 128 characters",
        ));
    }
    let sampling_ratio = raw.sampling_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling_ratio) {
        return Err(invalid(
            "tracing.sampling_ratio",
            "must be between 0.0 and 1.0",
        ));
    }
    let timeout = raw.export_timeout_ms.unwrap_or(5_000);
    if !(1..=60_000).contains(&timeout) {
        return Err(invalid(
            "tracing.export_timeout_ms",
            "must be between 1 and 60000",
        ));
    }
    let max_queue = raw.max_queue.unwrap_or(4096);
    if !(1..=1_000_000).contains(&max_queue) {
        return Err(invalid(
            "tracing.max_queue",
            "must be between 1 and 1000000",
        ));
    }
    Ok(Some(TracingConfig {
        endpoint,
        service_name,
        sampling_ratio,
        export_timeout: Duration::from_millis(timeout),
        max_queue,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Option<RawTracing> {
        Some(toml::from_str(text).unwrap())
    }

    fn key_of(text: &str) -> String {
        match validate(raw(text)) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn off_unless_configured() {
        assert_eq!(validate(None).unwrap(), None);
        assert_eq!(validate(raw("enabled = false")).unwrap(), None);
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = validate(raw(r#"endpoint = "http://127.0.0.1:4318/v1/traces""#))
            .unwrap()
            .unwrap();
        assert_eq!(c.service_name, "linkgate");
        assert_eq!(c.sampling_ratio, 1.0);
        assert_eq!(c.export_timeout, Duration::from_secs(5));
        assert_eq!(key_of("enabled = true"), "tracing.endpoint");
        assert_eq!(
            key_of(r#"endpoint = "https://x/v1/traces""#),
            "tracing.endpoint"
        );
        assert_eq!(key_of(r#"endpoint = "not a url""#), "tracing.endpoint");
        assert_eq!(
            key_of("endpoint = \"http://c:4318/v1/traces\"\nsampling_ratio = 1.5"),
            "tracing.sampling_ratio"
        );
        assert_eq!(
            key_of("endpoint = \"http://c:4318/v1/traces\"\nexport_timeout_ms = 0"),
            "tracing.export_timeout_ms"
        );
        assert_eq!(
            key_of("endpoint = \"http://c:4318/v1/traces\"\nservice_name = \"\""),
            "tracing.service_name"
        );
    }
}
