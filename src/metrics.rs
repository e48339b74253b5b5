//! Prometheus metrics, served as text on the admin listener at `/metrics`.
//!
//! Every series is registered once at start; the request path only bumps atomics (label values
//! are `&'static str` outcomes or store names looked up in a small pre-filled map), so counting
//! costs no allocation per request.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::model::outcome::Outcome;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Kinds of document-store errors.
pub const STORE_ERRORS: &[&str] = &["connect", "timeout", "status", "io", "not_found"];

/// One store's series, resolved once so the request path needs no label lookups.
pub struct StoreSeries {
    pub latency: Histogram,
    errors: Vec<IntCounter>,
}

impl StoreSeries {
    /// Counts one error of `kind` (one of [`STORE_ERRORS`]; anything else counts as `io`).
    pub fn error(&self, kind: &str) {
        let i = STORE_ERRORS.iter().position(|k| *k == kind).unwrap_or(3);
        self.errors[i].inc();
    }

    pub fn observe(&self, elapsed: Duration) {
        self.latency.observe(elapsed.as_secs_f64());
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Vec<IntCounter>,
    pub downloads_started: IntCounter,
    pub downloads_completed: IntCounter,
    pub downloads_aborted: IntCounter,
    pub bytes_sent: IntCounter,
    /// The part of `bytes_sent` moved from an origin's socket to the recipient's by the kernel
    /// (`splice(2)`, see `docstore::splice`).
    pub bytes_spliced: IntCounter,
    pub active_streams: IntGauge,
    /// Recipient requests between their head and their access line (see [`InFlight`]).
    pub in_flight: IntGauge,
    /// Webhooks delivered (2xx), attempts that failed, entries given up, and notifications not
    /// queued because the outbox was full.
    pub webhooks_delivered: IntCounter,
    pub webhooks_failed_attempts: IntCounter,
    pub webhooks_given_up: IntCounter,
    pub webhooks_left_out: IntCounter,
    /// Entries in the outbox (as last seen by this instance's delivery worker).
    pub webhooks_pending: IntGauge,
    /// Finished spans dropped because the export queue was full, and export requests that
    /// failed (`[tracing]`).
    pub trace_spans_dropped: IntCounter,
    pub trace_exports_failed: IntCounter,
    /// Renders by outcome: `cached`, `rendered`, `refused`, `limit`, `failed` (`src/render/`).
    pub renders: IntCounterVec,
    latency: HistogramVec,
    store_errors: IntCounterVec,
    stores: parking_lot::RwLock<HashMap<String, &'static StoreSeries>>,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics (created on first use).
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    let _ = registry.register(Box::new(c.clone()));
    c
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        // Names and label sets are constants; these constructors fail only on invalid names.
        let requests_vec = IntCounterVec::new(
            Opts::new("linkgate_requests_total", "Recipient requests by outcome"),
            &["outcome"],
        )
        .unwrap_or_else(|e| panic!("linkgate_requests_total: {e}"));
        let _ = registry.register(Box::new(requests_vec.clone()));
        let requests = Outcome::ALL
            .iter()
            .map(|o| requests_vec.with_label_values(&[o.as_str()]))
            .collect();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "linkgate_upstream_response_seconds",
                "Time from choosing the document store to its response header (dir stores: to the file being open)",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["store"],
        )
        .unwrap_or_else(|e| panic!("linkgate_upstream_response_seconds: {e}"));
        let _ = registry.register(Box::new(latency.clone()));
        let store_errors = IntCounterVec::new(
            Opts::new(
                "linkgate_store_errors_total",
                "Document store errors by store and kind",
            ),
            &["store", "kind"],
        )
        .unwrap_or_else(|e| panic!("linkgate_store_errors_total: {e}"));
        let _ = registry.register(Box::new(store_errors.clone()));
        let renders = IntCounterVec::new(
            Opts::new(
                "linkgate_renders_total",
                "Renditions made by the gateway, by outcome",
            ),
            &["outcome"],
        )
        .unwrap_or_else(|e| panic!("linkgate_renders_total: {e}"));
        let _ = registry.register(Box::new(renders.clone()));
        let active_streams = IntGauge::new(
            "linkgate_active_streams",
            "Downloads being streamed right now",
        )
        .unwrap_or_else(|e| panic!("linkgate_active_streams: {e}"));
        let _ = registry.register(Box::new(active_streams.clone()));
        let in_flight = IntGauge::new(
            "linkgate_requests_in_flight",
            "Recipient requests being answered right now (a stopping gateway waits for them)",
        )
        .unwrap_or_else(|e| panic!("linkgate_requests_in_flight: {e}"));
        let _ = registry.register(Box::new(in_flight.clone()));
        let webhooks_pending = IntGauge::new(
            "linkgate_webhooks_pending",
            "Webhook deliveries waiting in the outbox",
        )
        .unwrap_or_else(|e| panic!("linkgate_webhooks_pending: {e}"));
        let _ = registry.register(Box::new(webhooks_pending.clone()));
        let webhooks_delivered = counter(
            &registry,
            "linkgate_webhooks_delivered_total",
            "Webhook deliveries answered with 2xx",
        );
        let webhooks_failed_attempts = counter(
            &registry,
            "linkgate_webhook_attempts_failed_total",
            "Webhook attempts that failed (error, timeout or non-2xx)",
        );
        let webhooks_given_up = counter(
            &registry,
            "linkgate_webhooks_given_up_total",
            "Webhooks given up after the last retry (see GET /v1/webhooks/failed)",
        );
        let webhooks_left_out = counter(
            &registry,
            "linkgate_webhooks_left_out_total",
            "Notifications not queued because the outbox was full",
        );
        let trace_spans_dropped = counter(
            &registry,
            "linkgate_trace_spans_dropped_total",
            "Finished trace spans dropped because the export queue was full",
        );
        let trace_exports_failed = counter(
            &registry,
            "linkgate_trace_exports_failed_total",
            "Trace export requests to the OTLP collector that failed",
        );
        Metrics {
            renders,
            downloads_started: counter(
                &registry,
                "linkgate_downloads_started_total",
                "Downloads that went to the document store (GET, not HEAD or prefetch)",
            ),
            downloads_completed: counter(
                &registry,
                "linkgate_downloads_completed_total",
                "Downloads whose body was delivered",
            ),
            downloads_aborted: counter(
                &registry,
                "linkgate_downloads_aborted_total",
                "Downloads that failed or broke off",
            ),
            bytes_sent: counter(
                &registry,
                "linkgate_bytes_sent_total",
                "Response body bytes sent to recipients",
            ),
            bytes_spliced: counter(
                &registry,
                "linkgate_bytes_spliced_total",
                "Response body bytes moved from an origin's socket to the recipient's by splice(2) (included in linkgate_bytes_sent_total)",
            ),
            registry,
            requests,
            active_streams,
            in_flight,
            webhooks_delivered,
            webhooks_failed_attempts,
            webhooks_given_up,
            webhooks_left_out,
            webhooks_pending,
            trace_spans_dropped,
            trace_exports_failed,
            latency,
            store_errors,
            stores: parking_lot::RwLock::new(HashMap::new()),
        }
    }

    /// Counts one finished request.
    pub fn request(&self, outcome: Outcome) {
        if let Some(c) = self.requests.get(outcome as usize) {
            c.inc();
        }
    }

    /// The series of a configured store (registered on first call, at start).
    pub fn store(&self, name: &str) -> &'static StoreSeries {
        if let Some(s) = self.stores.read().get(name) {
            return s;
        }
        let mut stores = self.stores.write();
        if let Some(s) = stores.get(name) {
            return s;
        }
        // Stores are configured once per process, so the leak is bounded by the config.
        let series: &'static StoreSeries = Box::leak(Box::new(StoreSeries {
            latency: self.latency.with_label_values(&[name]),
            errors: STORE_ERRORS
                .iter()
                .map(|k| self.store_errors.with_label_values(&[name, k]))
                .collect(),
        }));
        stores.insert(name.to_string(), series);
        series
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

/// One recipient request being answered: counted in `linkgate_requests_in_flight` from its
/// creation to its drop. A stopping gateway exits as soon as none is left (see
/// `crate::app::stop`); idle kept-alive connections are not requests and do not hold it.
pub struct InFlight(());

impl InFlight {
    pub fn start() -> InFlight {
        metrics().in_flight.inc();
        InFlight(())
    }

    /// Requests being answered right now in this process.
    pub fn count() -> i64 {
        metrics().in_flight.get()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics().in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_rendered_with_their_labels() {
        let m = metrics();
        m.request(Outcome::Served);
        m.store("docs").error("timeout");
        m.store("docs").observe(Duration::from_millis(3));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains("linkgate_requests_total{outcome=\"served\"}"),
            "{text}"
        );
        for o in Outcome::ALL {
            assert!(
                text.contains(&format!("linkgate_requests_total{{outcome=\"{o}\"}}")),
                "every outcome is a series from the start: {text}"
            );
        }
        assert!(
            text.contains("linkgate_store_errors_total{kind=\"timeout\",store=\"docs\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "linkgate_upstream_response_seconds_bucket{store=\"docs\",le=\"0.005\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("linkgate_active_streams 0"), "{text}");
    }
}
