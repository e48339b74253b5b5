//! OpenTelemetry traces (`[tracing]`, off by default): one span per recipient and admin request,
//! with child spans for the link store and the document store, exported over OTLP/HTTP
//! (protobuf) to a collector.
//!
//! - Off: [`tracer`] is `None`, every request's trace context is `None` and the helpers here do
//!   nothing else — no span, no allocation, no lock per request.
//! - Export is off the request path: a finished span goes into a bounded queue (`try_send`,
//!   never waits); past [`crate::config::otel::TracingConfig::max_queue`] spans are dropped and
//!   counted (`linkgate_trace_spans_dropped_total`). One thread sends batches (up to
//!   [`BATCH`] spans, at least every [`DELAY`]); failed exports are counted
//!   (`linkgate_trace_exports_failed_total`) and not retried.
//! - Stop: [`shutdown`] sends what is queued, bounded by the export timeout.
//! - A client's `traceparent` is not honoured (recipients are untrusted: they could join our
//!   spans to their traces or pick trace ids); a well-formed one is recorded as a span link.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor, Tracer,
};
use opentelemetry_sdk::Resource;

use crate::config::otel::TracingConfig;

/// Most spans in one export request.
pub const BATCH: usize = 512;
/// Longest a finished span waits before it is sent.
pub const DELAY: Duration = Duration::from_millis(500);

static TRACER: OnceLock<Tracer> = OnceLock::new();
static PROVIDER: OnceLock<(SdkTracerProvider, Duration)> = OnceLock::new();

/// The tracer, when `[tracing]` is on.
#[inline]
pub fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// Starts the exporter thread and installs the tracer (once per process).
pub fn init(config: &TracingConfig) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(config.export_timeout)
        .build();
    let resource = Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(UreqClient(agent))
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|e| format!("tracing.endpoint: {e}"))?;
    exporter.set_resource(&resource);
    let queue = Queue::spawn(exporter, config.max_queue).map_err(|e| e.to_string())?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(queue)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sampling_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("linkgate");
    if PROVIDER.set((provider, config.export_timeout)).is_err() || TRACER.set(tracer).is_err() {
        return Err("tracing was already set up".into());
    }
    Ok(())
}

/// Sends what is queued and stops the exporter (at stop; bounded by the export timeout).
pub fn shutdown() {
    if let Some((provider, timeout)) = PROVIDER.get() {
        if let Err(e) = provider.shutdown_with_timeout(*timeout) {
            tracing::warn!(error = %e, "traces still queued at stop were not all sent");
        }
    }
}

/// A request's root span (a server span named `{method} {route}`), or `None` when tracing is
/// off. `route` never holds a token; `traceparent` is the client's header, recorded as a link.
#[inline]
pub fn request(method: &str, route: &'static str, traceparent: Option<&[u8]>) -> Option<Context> {
    let tracer = tracer()?;
    Some(start_request(
        tracer,
        known_method(method),
        route,
        traceparent,
    ))
}

/// The method as OpenTelemetry's conventions name it: an unknown one is `_OTHER` (a client picks
/// it, and span names must not take any value it likes).
fn known_method(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("_OTHER")
}

fn start_request(
    tracer: &Tracer,
    method: &'static str,
    route: &'static str,
    traceparent: Option<&[u8]>,
) -> Context {
    let mut builder = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
        ]);
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        builder = builder.with_links(vec![Link::with_context(remote)]);
    }
    // A new trace, whatever the client sent (the builder has no parent).
    Context::new().with_span(builder.start_with_context(tracer, &Context::new()))
}

/// A W3C `traceparent` (`00-{trace id}-{span id}-{flags}`), or `None` if malformed.
pub fn parse_traceparent(value: &[u8]) -> Option<SpanContext> {
    let value = std::str::from_utf8(value).ok()?;
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace)
        .ok()
        .filter(|t| *t != TraceId::INVALID)?;
    let span = SpanId::from_hex(span)
        .ok()
        .filter(|s| *s != SpanId::INVALID)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags & 1),
        true,
        TraceState::default(),
    ))
}

/// A child span of `parent` (internal, or a client span for `SpanKind::Client`).
pub fn child(parent: &Context, name: &'static str, kind: SpanKind) -> Context {
    let Some(tracer) = tracer() else {
        return parent.clone();
    };
    let span = tracer
        .span_builder(name)
        .with_kind(kind)
        .start_with_context(tracer, parent);
    parent.with_span(span)
}

/// Runs `call` (a link store call) in a child span named `name` of the request's span; with
/// tracing off this is `call.await`.
#[inline]
pub async fn store_call<T, E, F>(
    parent: Option<&Context>,
    name: &'static str,
    call: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let Some(parent) = parent else {
        return call.await;
    };
    let cx = child(parent, name, SpanKind::Client);
    cx.span()
        .set_attribute(KeyValue::new("db.system.name", "linkgate.link_store"));
    let result = call.await;
    let span = cx.span();
    if let Err(e) = &result {
        span.set_status(Status::error(e.to_string()));
    }
    span.end();
    result
}

/// Sets `attributes` on the context's span.
pub fn set(cx: Option<&Context>, attributes: impl FnOnce() -> Vec<KeyValue>) {
    if let Some(cx) = cx {
        cx.span().set_attributes(attributes());
    }
}

/// Adds an event to the context's span.
pub fn event(cx: Option<&Context>, name: &'static str, attributes: impl FnOnce() -> Vec<KeyValue>) {
    if let Some(cx) = cx {
        cx.span().add_event(name, attributes());
    }
}

/// Ends the context's span (an error status for `error`).
pub fn end(cx: Option<&Context>, error: Option<String>) {
    if let Some(cx) = cx {
        let span = cx.span();
        if let Some(e) = error {
            span.set_status(Status::error(e));
        }
        span.end();
    }
}

/// The OTLP exporter's HTTP client: ureq (already used for webhooks), plain HTTP, blocking —
/// it runs on the exporter thread only.
struct UreqClient(ureq::Agent);

impl std::fmt::Debug for UreqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UreqClient")
    }
}

/// Most bytes of a collector's answer read (it is only logged by the exporter).
const ANSWER_LIMIT: u64 = 64 * 1024;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for UreqClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let mut call = self
            .0
            .request(parts.method.as_str(), &parts.uri.to_string());
        for (name, value) in &parts.headers {
            if let Ok(value) = value.to_str() {
                call = call.set(name.as_str(), value);
            }
        }
        let answer = match call.send_bytes(&body) {
            Ok(answer) | Err(ureq::Error::Status(_, answer)) => answer,
            Err(e) => return Err(Box::new(e)),
        };
        let status = answer.status();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(answer.into_reader(), ANSWER_LIMIT),
            &mut bytes,
        )?;
        Ok(http::Response::builder()
            .status(status)
            .body(Bytes::from(bytes))?)
    }
}

enum Message {
    Span(Box<SpanData>),
    /// Send what is queued, then acknowledge.
    Flush(SyncSender<()>),
}

/// The span processor: a bounded queue to one exporter thread (see the module doc).
struct Queue {
    sender: SyncSender<Message>,
    stopping: AtomicBool,
    done: Mutex<Option<Receiver<()>>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("linkgate trace queue")
    }
}

impl Queue {
    fn spawn<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
        exporter: E,
        bound: usize,
    ) -> std::io::Result<Queue> {
        let (sender, receiver) = sync_channel(bound);
        let (done_tx, done_rx) = sync_channel(1);
        std::thread::Builder::new()
            .name("trace exporter".into())
            .spawn(move || {
                export_batches(&exporter, &receiver);
                let _ = done_tx.send(());
            })?;
        Ok(Queue {
            sender,
            stopping: AtomicBool::new(false),
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Waits (at most `timeout` in all) for the queue to be sent.
    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (ack, acked) = sync_channel(1);
        match self
            .sender
            .send_timeout_compat(Message::Flush(ack), timeout)
        {
            Ok(()) => acked
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| OTelSdkError::Timeout(timeout)),
            Err(()) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

/// `SyncSender::send_timeout` is unstable: retry `try_send` until the deadline.
trait SendTimeout {
    fn send_timeout_compat(&self, message: Message, timeout: Duration) -> Result<(), ()>;
}

impl SendTimeout for SyncSender<Message> {
    fn send_timeout_compat(&self, mut message: Message, timeout: Duration) -> Result<(), ()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(()),
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return Err(());
                    }
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        if self.sender.try_send(Message::Span(Box::new(span))).is_err() {
            crate::metrics::metrics().trace_spans_dropped.inc();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.stopping.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let result = self.flush(timeout);
        if let Ok(mut done) = self.done.lock() {
            done.take();
        }
        result
    }
}

fn export_batches<E: opentelemetry_sdk::trace::SpanExporter>(
    exporter: &E,
    receiver: &Receiver<Message>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "trace exporter cannot start; no traces are sent");
            return;
        }
    };
    let send = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = runtime.block_on(exporter.export(std::mem::take(batch))) {
            crate::metrics::metrics().trace_exports_failed.inc();
            tracing::debug!(error = %e, "trace export failed");
        }
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut due = Instant::now() + DELAY;
    loop {
        let wait = due.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(wait) {
            Ok(Message::Span(span)) => {
                if batch.is_empty() {
                    due = Instant::now() + DELAY;
                }
                batch.push(*span);
                if batch.len() >= BATCH {
                    send(&mut batch);
                }
            }
            Ok(Message::Flush(ack)) => {
                send(&mut batch);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                send(&mut batch);
                due = Instant::now() + DELAY;
            }
            Err(RecvTimeoutError::Disconnected) => {
                send(&mut batch);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::Span as _;

    /// An exporter that holds its first export until the test lets it go.
    #[derive(Debug)]
    struct Stuck {
        release: Mutex<Receiver<()>>,
        exported: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl opentelemetry_sdk::trace::SpanExporter for Stuck {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if let Ok(release) = self.release.lock() {
                let _ = release.recv_timeout(Duration::from_secs(10));
            }
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_spans_and_never_blocks_the_request() {
        let (release, held) = sync_channel(1);
        let exported = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queue = Queue::spawn(
            Stuck {
                release: Mutex::new(held),
                exported: exported.clone(),
            },
            4,
        )
        .unwrap();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("test");
        let dropped = crate::metrics::metrics().trace_spans_dropped.get();
        let started = Instant::now();
        for _ in 0..2_000 {
            tracer.start("request").end();
        }
        // The exporter is stuck on its first batch: at most that batch and the queue's 4 are
        // held, the rest were dropped at once.
        assert!(started.elapsed() < Duration::from_secs(5));
        let now_dropped = crate::metrics::metrics().trace_spans_dropped.get() - dropped;
        assert!(now_dropped >= 2_000 - 4 - BATCH as u64, "{now_dropped}");
        let _ = release.send(());
        drop(release);
        provider
            .shutdown_with_timeout(Duration::from_secs(10))
            .unwrap();
        assert_eq!(
            exported.load(Ordering::SeqCst) as u64 + now_dropped,
            2_000,
            "every span was either exported at shutdown or counted as dropped"
        );
    }

    #[test]
    fn a_method_a_client_made_up_is_other() {
        assert_eq!(known_method("GET"), "GET");
        assert_eq!(known_method("PROPFIND"), "_OTHER");
    }

    #[test]
    fn off_by_default_no_span_is_made() {
        assert!(request("GET", "/s/{token}", None).is_none());
    }

    #[test]
    fn traceparent_is_parsed_strictly() {
        let ok =
            parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            ok.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert!(ok.is_sampled() && ok.is_remote());
        for bad in [
            &b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00-zz-00f067aa0ba902b7-01",
            b"\xff",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
    }
}
