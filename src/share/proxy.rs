//! The recipients' side: a Pingora `ProxyHttp` that turns a share URL into a streamed document.
//!
//! Every request is answered in `request_filter`, in this order:
//! - admit: verify the token, load the link, check state/expiry, classify the request
//!   (HEAD, prefetch, fresh, continuation) and, for a limited link, make the first draw from the
//!   document's byte account (see [`crate::model::counting`]). Anything not good is answered with the
//!   uniform 404.
//! - serve: a folder store's file is read by the gateway ([`crate::docstore::dir`]); an HTTP or S3
//!   store's answer is relayed ([`crate::docstore::relay`]): only whitelisted request headers reach
//!   the origin, our headers go on a success, and an origin error is replaced by our own page.
//! - `fail_to_proxy`: an origin that cannot be reached or breaks off gets the recipient a 502/504
//!   page (before the response started) or a broken-off connection (after).
//! - `logging`: give back what a limited link's response drew and did not send, batch usage of
//!   unlimited links, log one line.
//!
//! Pingora's own upstream phases are not used: the relay reads the origin's body itself so that
//! a stream holds one chunk sized to its recipient's pace (see [`crate::docstore::relay`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method};
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use time::OffsetDateTime;

use crate::docstore::dir::{DirError, ServeError};
use crate::docstore::relay::Relay;
use crate::docstore::{from_recipient, Attempt, DocStore};
use crate::metrics::metrics;
use crate::model::audit::Draft;
use crate::model::counting::{classify, expected_length, is_multi_range, part_of, Drawn, Kind};
use crate::model::disposition::content_disposition;
use crate::model::link::{
    ChangePolicy, Link, LinkId, Refusal, Right, Selection, Target, Watermark,
};
use crate::model::outcome::Outcome;
use crate::model::status::Status;
use crate::share::client::{client_of, user_agent_of};
use crate::share::count::Metered;
use crate::share::i18n::{t, Lang};
use crate::share::open::{self, Asks};
use crate::share::pages;
use crate::share::pages::Reply;
use crate::share::recipient::{self, Decision};
use crate::share::record;
use crate::share::throttle::gated_warn;
use crate::share::upload::{self, Rules, Upload};
use crate::share::viewer;
use crate::state::queues::Refund;
use crate::telemetry;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::KeyValue;

pub struct Proxy {
    /// The gate in force (replaced by a configuration reload).
    pub gate: crate::share::gate::Live,
    /// Connections to the HTTP and S3 stores' origins.
    pub relay: Relay,
    pub client_read_timeout: Duration,
    pub client_write_timeout: Duration,
    /// How slow an upload may be.
    pub upload_pace: upload::Pace,
    /// `Strict-Transport-Security` for every response (TLS listeners only).
    pub hsts: Option<http::HeaderValue>,
    /// The gateway's own renditions: worker pool, limits, cache (`[render]`).
    pub render: Arc<crate::render::Renderer>,
}

/// Per-request state.
pub struct Ctx {
    started: Instant,
    link: Option<Arc<Link>>,
    /// The link a verified token (or legacy URL) names, for the access line of a request that
    /// ends before `link` is set (pages, forms, refusals of a known link).
    link_id: Option<LinkId>,
    docstore: Option<Arc<DocStore>>,
    /// Which origin of the store this request is trying (failover), and since when.
    attempt: Attempt,
    /// Counted in the active-streams gauge until `logging`.
    streaming: bool,
    kind: Kind,
    /// The document and variant this request is served.
    target: Option<Target>,
    /// Made by the gateway (page image, thumbnail, viewer, generated rendition) instead of
    /// relayed.
    render: Option<viewer::Render>,
    /// A PUT or form upload (answered in `request_filter`).
    upload: bool,
    /// A limited link's response, metered against its document's byte account.
    metered: Option<Metered>,
    /// A draw of this response counted a download.
    counted: bool,
    client: String,
    /// Send the file inline whatever the link's rights (an unverified browser of a recipient
    /// without an email address).
    view_only: bool,
    /// The origin's answer was replaced by one of our pages.
    replaced: bool,
    /// The store was asked for the version the link recorded (`on_change: refuse`): a failed
    /// precondition means the document changed.
    conditional: bool,
    /// The link's download count as this response's last draw saw it.
    used: u64,
    /// Body bytes the relay moved past Pingora's session (`splice(2)`), which its count of bytes
    /// sent leaves out.
    spliced: u64,
    outcome: Outcome,
    /// The request's trace span (`None` when `[tracing]` is off or before `request_filter`).
    trace: Option<opentelemetry::Context>,
    /// Holds a stopping gateway until this request's access line is written.
    _in_flight: crate::metrics::InFlight,
}

/// `Ok` when something of a limited link may still be sent; `Err(None)` when nothing may,
/// `Err(Some(e))` when the link store could not say.
fn something_left(
    left: Result<bool, crate::state::StoreError>,
) -> Result<(), Option<crate::state::StoreError>> {
    match left {
        Ok(true) => Ok(()),
        Ok(false) => Err(None),
        Err(e) => Err(Some(e)),
    }
}

/// The token part of `/s/{token}` or `/s/{token}/{cosmetic name}` (a fuzzing entry point, with
/// [`crate::model::token::Keyring::verify`] after it).
pub fn token_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/s/")?;
    let token = rest.split('/').next()?;
    (!token.is_empty()).then_some(token)
}

/// The route a trace names a request by: never its token.
fn route_of(path: &str) -> &'static str {
    if token_of(path).is_some() {
        "/s/{token}"
    } else {
        "(other)"
    }
}

fn client_ip(session: &Session) -> String {
    match client_of(session) {
        Some(ip) => ip.to_string(),
        None => "unknown".to_string(),
    }
}

/// What `admit` refused a request with: a status page, or one of the recipients' pages.
enum Refused {
    Status(u16),
    Reply(Reply),
}

/// Writes what `admit` refused with: a status page (a `405` says which methods are allowed) or
/// one of the recipients' pages.
async fn write_refusal(session: &mut Session, refusal: Refused) -> Result<()> {
    match refusal {
        Refused::Status(405) => write_status(session, 405, &[("allow", "GET, HEAD")]).await,
        Refused::Status(status) => write_status(session, status, &[]).await,
        Refused::Reply(reply) => write_reply(session, reply).await,
    }
}

/// Writes a recipient page, form answer or redirect.
async fn write_reply(session: &mut Session, reply: Reply) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (k, v) in reply.headers {
        resp.append_header(k, v)?;
    }
    resp.insert_header(header::CONTENT_LENGTH, reply.body.len())?;
    let head = session.req_header().method == Method::HEAD || reply.body.is_empty();
    session
        .write_response_header(Box::new(resp), head)
        .await
        .map_err(from_recipient)?;
    if !head {
        session
            .write_response_body(Some(reply.body), true)
            .await
            .map_err(from_recipient)?;
    }
    Ok(())
}

/// Writes one of our pages and ends the response (keep-alive is preserved).
async fn write_status(
    session: &mut Session,
    status: u16,
    extra: &[(&'static str, &'static str)],
) -> Result<()> {
    let body = pages::for_status(Lang::of(&session.req_header().headers), status);
    let mut resp = ResponseHeader::build(status, Some(8))?;
    for (k, v) in pages::page_headers() {
        resp.insert_header(k, v)?;
    }
    for (k, v) in extra {
        resp.insert_header(*k, *v)?;
    }
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    let head = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(resp), head)
        .await
        .map_err(from_recipient)?;
    if !head {
        session
            .write_response_body(Some(body), true)
            .await
            .map_err(from_recipient)?;
    }
    Ok(())
}

/// The request's line in the access log (`target: linkgate::access`).
fn access_line(session: &Session, ctx: &Ctx, status: u16, sent: u64) {
    let req = session.req_header();
    tracing::info!(
        target: "linkgate::access",
        link = ctx.link.as_ref().map(|l| l.id).or(ctx.link_id).map(tracing::field::display),
        method = %req.method,
        path = %crate::share::client::loggable_path(&req.uri),
        status,
        outcome = ctx.outcome.as_str(),
        counted = ctx.counted,
        bytes = sent,
        client = %ctx.client,
        user_agent = req.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.get(..256).unwrap_or(v)),
        store = ctx.docstore.as_ref().map(|s| s.name()),
        duration_ms = ctx.started.elapsed().as_millis() as u64,
    );
}

/// Ends a request's span with what its access line says (never its token or path).
fn end_request_span(
    cx: &opentelemetry::Context,
    ctx: &Ctx,
    status: u16,
    sent: u64,
    e: Option<&Error>,
) {
    let span = cx.span();
    let mut attributes = vec![
        KeyValue::new("http.response.status_code", i64::from(status)),
        KeyValue::new("linkgate.outcome", ctx.outcome.as_str()),
        KeyValue::new("linkgate.bytes_sent", sent as i64),
        KeyValue::new("linkgate.counted", ctx.counted),
    ];
    if let Some(id) = ctx.link.as_ref().map(|l| l.id).or(ctx.link_id) {
        attributes.push(KeyValue::new("linkgate.link_id", id.to_string()));
    }
    if let Some(store) = &ctx.docstore {
        attributes.push(KeyValue::new("linkgate.store", store.name().to_string()));
    }
    span.set_attributes(attributes);
    if status >= 500 || e.is_some() {
        span.set_status(opentelemetry::trace::Status::error(e.map_or_else(
            || format!("status {status}"),
            |e| e.etype().as_str().to_string(),
        )));
    }
    span.end();
}

/// An audit event for this request (client address and user agent filled in), naming the
/// document and variant when one was chosen. `client` is the address `admit` formatted into the
/// request's context (empty before that); events carry no address for "unknown".
fn event(
    session: &Session,
    client: &str,
    target: Option<&Target>,
    kind: &str,
    outcome: &str,
) -> Draft {
    let client = match client {
        "" => client_of(session).map(|ip| ip.to_string()),
        "unknown" => None,
        known => Some(known.to_string()),
    };
    let mut d = Draft::of_request(kind, outcome, client, user_agent_of(session));
    name_document(&mut d, target);
    d
}

fn name_document(d: &mut Draft, target: Option<&Target>) {
    if let Some(t) = target {
        d.document = Some(t.object.clone());
        d.detail = Some(serde_json::json!({ "document": t.index + 1, "variant": t.variant }));
    }
}

/// The page a recipient who passed the link's checks gets when the document changed (and the
/// link refuses changes) or is gone from its store: `410 Gone`, the same page for both.
fn gone_page(lang: Lang) -> Reply {
    let mut headers = pages::page_headers_owned();
    headers.push(("vary", "cookie".to_string()));
    Reply {
        status: 410,
        headers,
        body: pages::notice(lang, "gone"),
    }
}

/// The precondition that asks a store for the version a link recorded: `If-Match` with a strong
/// `ETag` (a weak one never matches `If-Match`), else `If-Unmodified-Since`; `None` when the
/// link recorded neither.
pub fn version_condition(target: &Target) -> Option<(header::HeaderName, String)> {
    match (&target.etag, &target.last_modified) {
        (Some(etag), _) if etag.starts_with('"') => Some((header::IF_MATCH, etag.clone())),
        (_, Some(date)) => Some((header::IF_UNMODIFIED_SINCE, date.clone())),
        _ => None,
    }
}

/// Whether an answer's validators show a version other than the recorded one (the `ETag`
/// compared weakly; `Last-Modified` only where no `ETag` was recorded or sent).
pub fn version_differs(target: &Target, etag: Option<&str>, modified: Option<&str>) -> bool {
    let weak = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_string();
    match (&target.etag, etag) {
        (Some(recorded), Some(now)) => weak(recorded) != weak(now),
        _ => match (&target.last_modified, modified) {
            (Some(recorded), Some(now)) => recorded != now,
            _ => false,
        },
    }
}

/// What a script gets from a link with several documents that names none: where each one is.
fn listing(link: &Link, url: &str) -> Reply {
    let mut text = format!(
        "This link shares {} documents; fetch each one with ?doc=N:\n",
        link.documents.len()
    );
    for (i, d) in link.documents.iter().enumerate() {
        let size = d.size.map(|s| format!(" ({s} bytes)")).unwrap_or_default();
        text.push_str(&format!(
            "{n}. {name}{size}  {url}?doc={n}\n",
            n = i + 1,
            name = d.filename
        ));
    }
    Reply {
        status: 300,
        headers: pages::data_headers("text/plain; charset=utf-8"),
        body: Bytes::from(text),
    }
}

/// The body length of an origin's answer and the document's size, where the answer states them:
/// a 200's `Content-Length`, a 206's `Content-Range`; nothing is sent for other answers.
fn body_and_size(resp: &ResponseHeader, empty: bool) -> (Option<u64>, Option<u64>) {
    let number = |name: header::HeaderName| {
        resp.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if empty {
        return (Some(0), None);
    }
    match resp.status.as_u16() {
        200 => {
            let length = number(header::CONTENT_LENGTH);
            (length, length)
        }
        206 => {
            let range = resp
                .headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match range {
                Some((first, last, total)) => (Some(last - first + 1), total),
                None => (number(header::CONTENT_LENGTH), None),
            }
        }
        _ => (Some(0), None),
    }
}

/// `bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    if last < first {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((first, last, total))
}

/// The gateway's own headers on a document: disposition (attachment or inline, with the
/// document's display name), no caching, no sniffing, and (but for PDFs) a sandbox: a document never runs
/// script on the gateway's origin. Inline, a type that a browser would run (HTML, SVG, XML,
/// script) is served as `text/plain`, and so is a document without a type.
fn decorate(resp: &mut ResponseHeader, target: &Target) -> Result<()> {
    resp.insert_header(header::CACHE_CONTROL, "private, no-store")?;
    resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
    resp.insert_header(
        header::CONTENT_DISPOSITION,
        content_disposition(target.inline, &target.filename),
    )?;
    if target.inline {
        let active = match resp.headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
            Some(Ok(value)) => is_active_type(value),
            _ => true,
        };
        if active {
            resp.insert_header(header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
        }
    }
    // Chromium refuses to run its PDF viewer in a sandboxed document (the recipient sees "This
    // page has been blocked"), and a PDF's own scripts run inside that viewer, never with the
    // gateway's origin: PDFs are the one type without the sandbox.
    let pdf = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/pdf")
        });
    if !pdf {
        resp.insert_header(header::CONTENT_SECURITY_POLICY, "sandbox")?;
    }
    Ok(())
}

/// Whether a browser shown a document of this media type inline could run script or markup in it.
fn is_active_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return true;
    };
    sub.ends_with("+xml")
        || sub.ends_with("html")
        || sub.ends_with("javascript")
        || sub.ends_with("ecmascript")
        || matches!(
            sub,
            "xml" | "xsl" | "xslt" | "x-xsl" | "x-shockwave-flash" | "futuresplash"
        )
        || matches!(kind, "multipart" | "message")
}

impl Proxy {
    /// Records the moment a link became expired or exhausted, once (see
    /// [`crate::share::status`]), off the request path.
    fn notice(&self, link: &Link, status: Status, used: u64) {
        let (gate, link) = (self.gate.clone(), link.clone());
        tokio::spawn(async move {
            if let Err(e) = gate.note_status(&link, status, used).await {
                tracing::warn!(link = %link.id, status = %status, error = %e, "could not record the link's status event");
            }
        });
    }

    /// `on_change: refuse`: the store is asked for the recorded version only, so a changed object
    /// is never sent and nothing can change between a check and the answer. The client's own
    /// `If-Match`/`If-Unmodified-Since` are replaced (so a failed precondition is always ours);
    /// its `If-None-Match`, `If-Range` and `Range` are evaluated after ours (RFC 9110 order).
    fn condition(&self, session: &mut Session, ctx: &mut Ctx) {
        let (Some(link), Some(target)) = (&ctx.link, &ctx.target) else {
            return;
        };
        if link.on_change != ChangePolicy::Refuse {
            return;
        }
        let Some((name, value)) = version_condition(target) else {
            tracing::debug!(link = %link.id, "no validator recorded: the document cannot be checked for changes");
            return;
        };
        let req = session.req_header_mut();
        req.remove_header(&header::IF_MATCH);
        req.remove_header(&header::IF_UNMODIFIED_SINCE);
        if req.insert_header(name, value).is_ok() {
            ctx.conditional = true;
        }
    }

    /// The store says the document is not the version the link was made for (a precondition of
    /// ours failed) or is gone: the recipient, who passed the link's checks to get here, is told
    /// so, nothing is counted, and the document system hears of it through the audit trail.
    /// An object the link never saw (nothing recorded at creation: it did not exist or the
    /// store did not answer) was not "removed": that stays the uniform 404 (still recorded).
    async fn gone(&self, session: &mut Session, ctx: &mut Ctx, changed: bool) -> Result<()> {
        ctx.replaced = true;
        let seen = ctx
            .target
            .as_ref()
            .is_some_and(|t| t.size.is_some() || t.etag.is_some() || t.last_modified.is_some());
        ctx.outcome = match (changed, seen) {
            (true, _) => Outcome::DocumentChanged,
            (false, true) => Outcome::DocumentMissing,
            (false, false) => Outcome::OriginNotFound,
        };
        self.give_back(ctx).await;
        if let Some(link) = &ctx.link {
            let (kind, outcome) = if changed {
                ("document.changed", "refused")
            } else {
                ("document.missing", "failed")
            };
            let mut d = event(session, &ctx.client, ctx.target.as_ref(), kind, outcome);
            if let (Some(serde_json::Value::Object(detail)), Some(t)) =
                (&mut d.detail, ctx.target.as_ref())
            {
                detail.insert("recorded_etag".into(), t.etag.clone().into());
                detail.insert(
                    "recorded_last_modified".into(),
                    t.last_modified.clone().into(),
                );
            }
            // Every request for it finds the same (and records its event): one warning a
            // minute at most, so that a link holder cannot flood the operator's warnings.
            let document = ctx.target.as_ref().map(|t| t.object.as_str());
            gated_warn!(link = %link.id, ?document, changed, "document changed or removed at its store");
            self.gate.audit.push(link.id, d);
        }
        if changed || seen {
            write_reply(session, gone_page(Lang::of(&session.req_header().headers))).await
        } else {
            write_status(session, 404, &[]).await
        }
    }

    /// `serve_latest`: a success whose validator differs from the recorded one is a new version;
    /// `document.changed` (`ok`) is recorded once per version, off the request path.
    fn served_version(
        &self,
        session: &Session,
        ctx: &Ctx,
        etag: Option<&str>,
        modified: Option<&str>,
    ) {
        let (Some(link), Some(target)) = (&ctx.link, &ctx.target) else {
            return;
        };
        if !version_differs(target, etag, modified) {
            return;
        }
        let version = etag.or(modified).unwrap_or_default().to_string();
        let key = crate::state::keys::document_version(link.id, &target.object, &version);
        if self.gate.audit.noted.get(&key).is_some() {
            // This instance already knows the version was recorded: no store round trip.
            return;
        }
        let mut d = event(session, &ctx.client, Some(target), "document.changed", "ok");
        if let Some(serde_json::Value::Object(detail)) = &mut d.detail {
            detail.insert("recorded_etag".into(), target.etag.clone().into());
            detail.insert("etag".into(), etag.into());
            detail.insert("last_modified".into(), modified.into());
        }
        let (gate, id) = (self.gate.clone(), link.id);
        tokio::spawn(async move {
            match gate.links.store.tally(&key, 1).await {
                Ok(n) => {
                    if n == 1 {
                        tracing::info!(link = %id, "document served in a new version");
                        gate.audit.push(id, d);
                    }
                    gate.audit.noted.put(key, 0);
                }
                Err(e) => {
                    tracing::warn!(link = %id, error = %e, "could not record a document's new version")
                }
            }
        });
    }

    /// A download is about to go to its store (metrics).
    fn stream_started(&self, ctx: &mut Ctx) {
        let m = metrics();
        if matches!(ctx.kind, Kind::Fresh | Kind::Continuation) {
            m.downloads_started.inc();
        }
        m.active_streams.inc();
        ctx.streaming = true;
    }

    /// Record: an unlimited link's delivered download adds to its usage; every download that
    /// reached the document store leaves one event (HEAD and prefetches none).
    fn record_download(
        &self,
        session: &Session,
        ctx: &Ctx,
        delivered: bool,
        status: u16,
        sent: u64,
    ) {
        let (Some(link), false) = (&ctx.link, ctx.upload) else {
            return;
        };
        if delivered && link.max_downloads.is_none() && ctx.kind == Kind::Fresh {
            self.gate.counting.usage.record(link.id, link.generation);
        }
        let Some((kind, outcome)) =
            record::download_event(ctx.kind, ctx.outcome, delivered, ctx.counted)
        else {
            return;
        };
        let mut d = event(session, &ctx.client, ctx.target.as_ref(), kind, outcome);
        d.bytes = Some(sent);
        if !delivered {
            d.reason = Some(ctx.outcome.to_string());
        }
        if let Some(serde_json::Value::Object(detail)) = &mut d.detail {
            detail.insert("status".into(), status.into());
            detail.insert("counted".into(), ctx.counted.into());
        }
        if kind == "download.completed" && link.notify_sender.is_some() {
            crate::share::notify::first_download(self.gate.clone(), link.clone(), d.at);
        }
        self.gate.audit.push(link.id, d);
    }

    /// The request is over (metrics).
    fn stream_ended(&self, ctx: &mut Ctx, delivered: bool, sent: u64) {
        let m = metrics();
        m.request(ctx.outcome);
        // The part first: whoever sees the whole has seen its part.
        m.bytes_spliced.inc_by(ctx.spliced);
        m.bytes_sent.inc_by(sent);
        if ctx.streaming {
            ctx.streaming = false;
            m.active_streams.dec();
            if matches!(ctx.kind, Kind::Fresh | Kind::Continuation) {
                if delivered {
                    m.downloads_completed.inc();
                } else {
                    m.downloads_aborted.inc();
                }
            }
        }
    }

    /// Queues a `download.refused` event for a known link.
    fn refused(
        &self,
        session: &Session,
        ctx: &Ctx,
        link: &Link,
        target: Option<&Target>,
        reason: &str,
    ) {
        let mut d = event(session, &ctx.client, target, "download.refused", "refused");
        d.reason = Some(reason.to_string());
        self.gate.audit.push(link.id, d);
    }

    /// A use the link does not grant: the uniform 404, or, for a browser that passed the link's
    /// password or device check, a 403 page that says why.
    fn not_granted(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        link: &Link,
        reason: &'static str,
    ) -> Refused {
        ctx.outcome = Outcome::NotGranted;
        self.refused(session, ctx, link, None, "right not granted");
        // Only a browser that passed the link's password or device check may learn why.
        let verified = link.has_checks() && !ctx.view_only;
        if !verified {
            return Refused::Status(404);
        }
        let mut headers = pages::page_headers_owned();
        headers.push(("vary", "cookie".to_string()));
        Refused::Reply(Reply {
            status: 403,
            headers,
            body: {
                let lang = Lang::of(&session.req_header().headers);
                // The rights' reasons (written in English where rights are resolved) in the
                // page's language, with what to do next.
                let id = match reason {
                    "This link does not accept uploads." => Some("not-granted-upload"),
                    "This link does not allow opening its documents." => Some("not-granted-open"),
                    "This link does not allow downloading the original." => {
                        Some("not-granted-original")
                    }
                    "This link does not allow viewing documents in the browser." => {
                        Some("not-granted-view")
                    }
                    "This link does not allow downloading that version of the document." => {
                        Some("not-granted-rendition")
                    }
                    _ => None,
                };
                let text = match id {
                    Some(id) => format!("{} {}", t(lang, id), t(lang, "not-granted-next")),
                    None => reason.to_string(),
                };
                pages::message(lang, &t(lang, "not-allowed-title"), &text)
            },
        })
    }

    /// Gives back what the response drew and did not send (once). Called before an error answer
    /// goes out, so that the allowance is back by the time the client sees the error, and when
    /// the request is over.
    async fn give_back(&self, ctx: &mut Ctx) {
        let Some(metered) = ctx.metered.take() else {
            return;
        };
        ctx.counted |= metered.meter.counted();
        ctx.used = ctx.used.max(metered.used);
        if let Some(refund) = metered.refund() {
            self.settle(ctx.trace.as_ref(), refund).await;
        }
    }

    /// Writes a refund now; one that fails is kept and written again by the housekeeper.
    async fn settle(&self, trace: Option<&opentelemetry::Context>, refund: Refund) {
        let store = &self.gate.links.store;
        if let Err(e) = telemetry::store_call(
            trace,
            "link_store.refund",
            store.refund(std::slice::from_ref(&refund)),
        )
        .await
        {
            tracing::warn!(link = %refund.id, error = %e, "giving back unsent bytes failed; will retry");
            self.gate.counting.queue_refund(refund);
        }
    }

    /// Makes the first draw of a limited link's GET; refreshes a stale cached link once.
    async fn admit_draw(
        &self,
        ctx: &mut Ctx,
        link: Arc<Link>,
        expected: Option<u64>,
    ) -> Result<Option<Arc<Link>>, crate::state::StoreError> {
        let Some((part, size)) = ctx.target.as_ref().map(|t| (part_of(&t.object), t.size)) else {
            return Ok(None);
        };
        let mut link = link;
        for _ in 0..2 {
            let Some(max) = link.max_downloads else {
                return Ok(Some(link));
            };
            let (metered, got) = telemetry::store_call(
                ctx.trace.as_ref(),
                "link_store.draw",
                Metered::admit(
                    self.gate.links.store.clone(),
                    self.gate.counting.clone(),
                    link.clone(),
                    max,
                    part.clone(),
                    expected,
                    size,
                ),
            )
            .await?;
            match got {
                Drawn::Granted { counted, used, .. } => {
                    if counted {
                        let mut d = Draft::new("download.started", "ok");
                        d.client = Some(ctx.client.clone());
                        name_document(&mut d, ctx.target.as_ref());
                        if let Some(serde_json::Value::Object(detail)) = &mut d.detail {
                            detail.insert("downloads_used".into(), used.into());
                            detail.insert("max_downloads".into(), max.into());
                        }
                        self.gate.audit.push(link.id, d);
                    }
                    ctx.metered = Some(metered);
                    return Ok(Some(link));
                }
                // `Block` never comes out of `Metered` (it turns blocks into draws); refusing is
                // the safe answer if it ever did.
                Drawn::Exhausted | Drawn::Block { .. } => {
                    // A draw that gave only part of what the request needs refuses it: that part
                    // goes back.
                    if let Some(refund) = metered.refund() {
                        self.settle(ctx.trace.as_ref(), refund).await;
                    }
                    return Ok(None);
                }
                Drawn::Stale => match telemetry::store_call(
                    ctx.trace.as_ref(),
                    "link_store.get",
                    self.gate.refresh(link.id),
                )
                .await?
                {
                    Some(fresh) if fresh.is_open(OffsetDateTime::now_utc()) => link = fresh,
                    _ => return Ok(None),
                },
            }
        }
        Ok(None)
    }

    /// The answer when a limited link may send nothing more (the uniform 404, as for any dead
    /// link), or when the link store could not say (`503`).
    fn limit_refusal(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        link: &Link,
        failed: Option<crate::state::StoreError>,
    ) -> Refused {
        if let Some(e) = failed {
            tracing::error!(link = %link.id, error = %e, "link store failed while counting");
            ctx.outcome = Outcome::StoreError;
            return Refused::Status(503);
        }
        ctx.outcome = Outcome::Exhausted;
        self.refused(
            session,
            ctx,
            link,
            ctx.target.as_ref(),
            "download limit reached",
        );
        Refused::Status(404)
    }

    /// Whether anything of a limited link may still be sent (its landing page is shown only then).
    async fn any_left(
        &self,
        trace: Option<&opentelemetry::Context>,
        link: &Link,
    ) -> Result<bool, crate::state::StoreError> {
        let Some(max) = link.max_downloads else {
            return Ok(true);
        };
        for doc in &link.documents {
            let objects = std::iter::once((&doc.object, doc.size))
                .chain(doc.renditions.values().map(|r| (&r.object, r.size)));
            for (object, size) in objects {
                if self.may_send(trace, link, max, object, size).await? {
                    return Ok(true);
                }
            }
        }
        Ok(link.documents.is_empty())
    }

    /// Whether a HEAD or prefetch of a limited link may be answered: anything may still be sent.
    async fn may_send(
        &self,
        trace: Option<&opentelemetry::Context>,
        link: &Link,
        max: u64,
        object: &str,
        size: Option<u64>,
    ) -> Result<bool, crate::state::StoreError> {
        let ask = crate::model::counting::Ask {
            probe: true,
            size: size.unwrap_or(0),
            ..Default::default()
        };
        let draw = crate::state::Draw {
            id: link.id,
            generation: link.generation,
            max,
            part: part_of(object),
            ask,
            take: None,
        };
        let drawn =
            telemetry::store_call(trace, "link_store.draw", self.gate.links.store.draw(&draw))
                .await?;
        Ok(matches!(drawn, Drawn::Granted { .. }))
    }

    /// Takes an upload the link admitted: a PUT or the landing page's form.
    async fn upload(&self, session: &mut Session, ctx: &Ctx) -> Reply {
        let (Some(link), Some(store)) = (&ctx.link, &ctx.docstore) else {
            let headers = pages::page_headers_owned();
            return Reply {
                status: 404,
                headers,
                body: pages::for_status(Lang::of(&session.req_header().headers), 404),
            };
        };
        let up = Upload {
            gate: &self.gate,
            link,
            store,
            rules: Rules::for_link(link, &self.gate.policy),
            pace: self.upload_pace,
            client: Some(ctx.client.clone()),
            user_agent: user_agent_of(session),
        };
        if session.req_header().method == Method::PUT {
            up.put(session).await
        } else {
            let back = format!(
                "/s/{}",
                token_of(session.req_header().uri.path()).unwrap_or_default()
            );
            up.form(session, &back).await
        }
    }

    /// Relays the document from its HTTP or S3 store: the origin's answer with our headers, or
    /// one of our pages in place of an origin error.
    async fn relay_from_origin(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        let (Some(store), Some(target)) = (ctx.docstore.clone(), ctx.target.clone()) else {
            return Error::e_explain(ErrorType::InternalError, "no document admitted");
        };
        let req = session.req_header();
        // The document store's span: connected, response head (first byte), body sent.
        let origin = ctx.trace.as_ref().map(|cx| {
            let origin = telemetry::child(cx, "document_store.request", SpanKind::Client);
            origin.span().set_attributes([
                KeyValue::new("linkgate.store", store.name().to_string()),
                KeyValue::new("http.request.method", req.method.to_string()),
            ]);
            origin
        });
        // Not boxed: the relay boxes a new connection's future itself, so a warm download
        // carries no connect state (and no 9 KiB copy into a box).
        let opened = self
            .relay
            .open(
                &store,
                &mut ctx.attempt,
                &req.method,
                &target.object,
                req,
                origin.as_ref(),
            )
            .await;
        let (mut resp, mut body) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                telemetry::end(origin.as_ref(), Some(e.to_string()));
                return Err(e);
            }
        };
        let status = resp.status.as_u16();
        telemetry::event(origin.as_ref(), "response head", || {
            vec![KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            )]
        });
        if (status == 412 && ctx.conditional) || status == 404 || status == 410 {
            if let Some(started) = ctx.attempt.started {
                store.metrics().observe(started.elapsed());
            }
            if status != 412 {
                store.metrics().error("not_found");
            }
            return self.gone(session, ctx, status == 412).await;
        }
        let mut validators = (None, None);
        if (200..300).contains(&status) {
            let text = |name| {
                resp.headers
                    .get(name)
                    .and_then(|v: &http::HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let (etag, modified) = (text(header::ETAG), text(header::LAST_MODIFIED));
            let refuses = ctx
                .link
                .as_ref()
                .is_some_and(|l| l.on_change == ChangePolicy::Refuse);
            if refuses
                && ctx
                    .target
                    .as_ref()
                    .is_some_and(|t| version_differs(t, etag.as_deref(), modified.as_deref()))
            {
                // A store that ignored the condition (some S3-compatible servers do on GET):
                // the answer's own validators show another version, and its head is not written
                // yet, so nothing of it goes out.
                return self.gone(session, ctx, true).await;
            }
            validators = (etag, modified);
        }
        if let Some(code) = self
            .origin_response(&store, &mut resp, ctx, &target)
            .await?
        {
            // The origin's own error page never reaches the recipient (its connection is closed).
            ctx.replaced = true;
            return write_status(session, code, &[]).await;
        }
        let (length, size) = body_and_size(&resp, body.is_empty());
        if !crate::docstore::Allowance::begin(&mut ctx.metered, length, size).await? {
            // The limit leaves nothing for this answer: the uniform 404 (the origin's connection
            // is closed with its body unread).
            ctx.replaced = true;
            ctx.outcome = Outcome::Exhausted;
            self.give_back(ctx).await;
            return write_status(session, 404, &[]).await;
        }
        self.served_version(
            session,
            ctx,
            validators.0.as_deref(),
            validators.1.as_deref(),
        );
        let empty = body.is_empty();
        if body.may_splice(session) {
            // Pingora's session does not see spliced bytes: no keep-alive after such a body.
            session.set_keepalive(None);
        }
        session
            .write_response_header(Box::new(resp), empty)
            .await
            .map_err(from_recipient)?;
        if empty {
            body.finish();
            return Ok(());
        }
        let before = session.as_downstream().body_bytes_sent() as u64;
        let sent = body
            .send_to(session, &mut ctx.metered, &mut ctx.spliced)
            .await;
        let bytes =
            (session.as_downstream().body_bytes_sent() as u64).saturating_sub(before) + ctx.spliced;
        telemetry::event(origin.as_ref(), "body sent", || {
            vec![KeyValue::new("linkgate.bytes_sent", bytes as i64)]
        });
        telemetry::end(origin.as_ref(), sent.as_ref().err().map(|e| e.to_string()));
        sent
    }

    /// Checks the origin's answer: our headers on a success (`None`), or the status of the page
    /// that replaces an error, whose slot is given back first.
    async fn origin_response(
        &self,
        store: &DocStore,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
        target: &Target,
    ) -> Result<Option<u16>> {
        let status = resp.status.as_u16();
        if let Some(started) = ctx.attempt.started {
            store.metrics().observe(started.elapsed());
        }
        match status {
            404 | 410 => store.metrics().error("not_found"),
            401 | 403 | 500..=599 => store.metrics().error("status"),
            _ => {}
        }
        store.clean_response(resp);
        if let Some((code, outcome)) = record::replace_origin_status(status) {
            // Anyone holding a link to a missing document can repeat this: one warning a
            // minute at most (each request is on its access line and in the store's metrics).
            let link = ctx.link.as_ref().map(|l| l.id);
            gated_warn!(
                status,
                ?link,
                store = store.name(),
                "origin answered with an error"
            );
            ctx.outcome = outcome;
            self.give_back(ctx).await;
            return Ok(Some(code));
        }
        for name in [
            "set-cookie",
            "set-cookie2",
            "content-disposition",
            "x-powered-by",
        ] {
            resp.remove_header(name);
        }
        decorate(resp, target)?;
        Ok(None)
    }

    /// Serve: an upload is written to the store; a prefetch gets no document; a folder store's
    /// file is sent by the gateway; anything else is relayed from the origin.
    async fn serve(&self, session: &mut Session, ctx: &mut Ctx) -> Result<()> {
        if ctx.upload {
            // Boxed, like the relay's connect below: the request's future stays small while a
            // download streams (1,000 of them held ~8 KiB each of connect and upload state).
            let reply = Box::pin(self.upload(session, ctx)).await;
            ctx.outcome = if reply.status < 300 {
                Outcome::Uploaded
            } else {
                Outcome::UploadRefused
            };
            return write_reply(session, reply).await;
        }
        if ctx.kind == Kind::Prefetch {
            // A prefetch never receives the document, so it can never use up a download.
            ctx.outcome = Outcome::Prefetch;
            let mut resp = ResponseHeader::build(204, Some(2))?;
            resp.insert_header(header::CACHE_CONTROL, "no-store")?;
            return session
                .write_response_header(Box::new(resp), true)
                .await
                .map_err(from_recipient);
        }
        if let Some(render) = ctx.render.clone() {
            // Boxed too: rendering holds a store's metadata request (~11 KiB of future), which
            // made every request's future 12.8 KiB where a download needs 2.5.
            return Box::pin(self.serve_render(session, ctx, render)).await;
        }
        self.condition(session, ctx);
        self.stream_started(ctx);
        let dir = ctx.docstore.clone().filter(|s| s.as_dir().is_some());
        match (dir, ctx.link.clone(), ctx.target.clone()) {
            (Some(store), Some(link), Some(target)) => {
                self.serve_from_dir(session, ctx, &store, &link, &target)
                    .await
            }
            _ => self.relay_from_origin(session, ctx).await,
        }
    }

    /// Serve, for what the gateway makes itself: the document is read whole from its store and
    /// rendered by a worker (or found in the render cache), then sent; a viewer page and a
    /// generated rendition draw from the link's count like any download, page images do not.
    async fn serve_render(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        render: viewer::Render,
    ) -> Result<()> {
        use crate::render::{Format, Job, RenderError};
        let (Some(link), Some(store), Some(target)) =
            (ctx.link.clone(), ctx.docstore.clone(), ctx.target.clone())
        else {
            return Error::e_explain(ErrorType::InternalError, "no document admitted");
        };
        let settings = &self.render.settings;
        let job = match &render {
            viewer::Render::Page { page, width } => Job::Page {
                page: *page,
                width: *width,
                format: Format::Png,
            },
            viewer::Render::Thumbnail => Job::Page {
                page: 1,
                width: settings.thumbnail_width,
                format: Format::Png,
            },
            viewer::Render::Viewer { .. } => Job::Info,
            viewer::Render::Generated(name) => match settings.generated.get(name) {
                Some(g) => g.job(),
                None => {
                    ctx.outcome = Outcome::NoDocument;
                    return write_status(session, 404, &[]).await;
                }
            },
            viewer::Render::Stamped(_) => Job::Stamp {
                text: viewer::mark_for(&link, &ctx.client).unwrap_or_default(),
            },
        };
        let mark = viewer::mark_for(&link, &ctx.client);
        // The object's version now: the cache key, and `on_change: refuse` keeps its promise.
        let meta = store.meta_of(&target.object).await.unwrap_or_default();
        if link.on_change == ChangePolicy::Refuse
            && (meta.etag.is_some() || meta.last_modified.is_some())
            && version_differs(&target, meta.etag.as_deref(), meta.last_modified.as_deref())
        {
            return self.gone(session, ctx, true).await;
        }
        let version = meta.etag.clone().or_else(|| {
            meta.last_modified
                .as_ref()
                .map(|m| format!("{m}/{}", meta.size.unwrap_or(0)))
        });
        // A stamped download is one recipient's: never cached (page images are stamped after
        // the cache).
        let key = version
            .filter(|_| !matches!(job, Job::Stamp { .. }))
            .map(|v| crate::render::cache::key(store.name(), &target.object, &v, &job.key_text()));
        let object = target.object.clone();
        let timeout = settings.timeout;
        let made = self
            .render
            .render(&job, key, |max| {
                let store = store.clone();
                async move {
                    store
                        .fetch(&object, max, timeout)
                        .await
                        .map_err(|e| match e {
                            crate::docstore::fetch::FetchError::NotFound => RenderError::Missing,
                            crate::docstore::fetch::FetchError::TooLarge(max) => {
                                RenderError::Refused(format!(
                                    "the document is larger than the {max} bytes the gateway renders"
                                ))
                            }
                            crate::docstore::fetch::FetchError::Store(e) => RenderError::Failed(e),
                        })
                }
            })
            .await;
        let mut out = match made {
            Ok(out) => out,
            Err(RenderError::Missing) => return self.gone(session, ctx, false).await,
            Err(e) => return self.render_failed(session, ctx, &link, e).await,
        };
        // The identity stamp goes on after the cache: what is cached is never one recipient's.
        let stamped = match (&render, &mark) {
            (viewer::Render::Page { .. } | viewer::Render::Thumbnail, Some(text)) => {
                Some(viewer::stamp_page(std::mem::take(&mut out.bytes), text.clone()).await)
            }
            (viewer::Render::Generated(_), Some(text)) if link.watermark == Watermark::All => {
                Some(viewer::stamp_made(std::mem::take(&mut out.bytes), text.clone()).await)
            }
            _ => None,
        };
        match stamped {
            None => {}
            Some(Ok(bytes)) => out.bytes = bytes,
            Some(Err(e)) => return self.render_failed(session, ctx, &link, e).await,
        }
        let (body, headers) = match &render {
            viewer::Render::Viewer { width, again } => {
                let pages = serde_json::from_slice::<serde_json::Value>(&out.bytes)
                    .ok()
                    .and_then(|v| v["pages"].as_u64())
                    .unwrap_or(1)
                    .min(u64::from(settings.caps.max_pages)) as u32;
                // On a limited link, page images come only through this counted view; the same
                // view at another zoom keeps its ticket (and so its hours), never a new one.
                let ticket = match (link.max_downloads.is_some(), again) {
                    (false, _) => None,
                    (true, true) => {
                        viewer::ticket_of(session.req_header().uri.query()).map(str::to_string)
                    }
                    (true, false) => Some(self.gate.checks.verifier.page_ticket(&link)),
                };
                let body = viewer::page(
                    Lang::of(&session.req_header().headers),
                    &viewer::Shown {
                        name: &target.filename,
                        doc: target.index + 1,
                        pages,
                        width: *width,
                        widths: &settings.page_widths,
                        mark: mark.as_deref(),
                        ticket: ticket.as_deref(),
                    },
                );
                (body, viewer::headers())
            }
            viewer::Render::Generated(_) | viewer::Render::Stamped(_) => {
                let content_type = match render {
                    viewer::Render::Stamped(_) => viewer::stamped_type(&out.bytes).to_string(),
                    _ => out.content_type.clone(),
                };
                let mut h = pages::data_headers(&content_type);
                h.push((
                    "content-disposition",
                    content_disposition(false, &target.filename),
                ));
                h.push(("content-security-policy", "sandbox".to_string()));
                (Bytes::from(out.bytes), h)
            }
            viewer::Render::Page { .. } | viewer::Render::Thumbnail => {
                let mut h = pages::data_headers(&out.content_type);
                h.push(("content-security-policy", "sandbox".to_string()));
                (Bytes::from(out.bytes), h)
            }
        };
        self.send_made(session, ctx, link, &render, body, headers)
            .await
    }

    /// Sends what the gateway made; a counted one first draws its length from the link's count
    /// (its own account: the document's object and the variant).
    async fn send_made(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        link: Arc<Link>,
        render: &viewer::Render,
        body: Bytes,
        headers: Vec<(&'static str, String)>,
    ) -> Result<()> {
        let len = body.len() as u64;
        if render.counted() {
            // The whole answer every time: a range of a made document is not offered.
            session.req_header_mut().remove_header(&header::RANGE);
            if link.max_downloads.is_some() {
                // Its own account (the original's object and the variant), of its own size.
                let original = ctx.target.as_ref().map(|t| t.object.clone());
                if let Some(target) = ctx.target.as_mut() {
                    target.object = format!("{}#{}", target.object, render.variant());
                    target.size = Some(len);
                }
                let counted = self.count(session, ctx, link).await;
                if let (Some(target), Some(original)) = (ctx.target.as_mut(), original) {
                    target.object = original;
                }
                match counted {
                    Ok(link) => ctx.link = Some(link),
                    Err(refusal) => return write_refusal(session, refusal).await,
                }
            }
            if !crate::docstore::Allowance::begin(&mut ctx.metered, Some(len), Some(len)).await? {
                ctx.replaced = true;
                ctx.outcome = Outcome::Exhausted;
                self.give_back(ctx).await;
                return write_status(session, 404, &[]).await;
            }
            self.stream_started(ctx);
        }
        let mut resp = ResponseHeader::build(200, Some(headers.len() + 1))?;
        for (name, value) in headers {
            resp.insert_header(name, value)?;
        }
        resp.insert_header(header::CONTENT_LENGTH, len.to_string())?;
        let head = session.req_header().method == Method::HEAD;
        session
            .write_response_header(Box::new(resp), head)
            .await
            .map_err(from_recipient)?;
        if head {
            return Ok(());
        }
        crate::docstore::write_body(session, body, true, &mut ctx.metered).await
    }

    /// A render that made nothing: busy (503 with `Retry-After`), refused or stopped (a page
    /// that says the document cannot be shown), or failed.
    async fn render_failed(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        link: &Link,
        e: crate::render::RenderError,
    ) -> Result<()> {
        use crate::render::RenderError;
        ctx.replaced = true;
        tracing::warn!(link = %link.id, error = %e, variant = ?ctx.render.as_ref().map(|r| r.variant()), "render made nothing");
        let (status, outcome, id) = match &e {
            RenderError::Busy => (503, Outcome::RenderBusy, "render-busy"),
            RenderError::Refused(_) => (422, Outcome::RenderRefused, "render-refused"),
            RenderError::Limit(_) => (422, Outcome::RenderLimit, "render-limit"),
            RenderError::Missing | RenderError::Failed(_) => {
                (502, Outcome::OriginError, "render-failed")
            }
        };
        ctx.outcome = outcome;
        let mut headers = pages::page_headers_owned();
        if status == 503 {
            headers.push(("retry-after", "5".to_string()));
        }
        write_reply(
            session,
            Reply {
                status,
                headers,
                body: pages::notice(Lang::of(&session.req_header().headers), id),
            },
        )
        .await
    }

    /// A folder store's file, read and sent by the gateway itself.
    async fn serve_from_dir(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        store: &DocStore,
        link: &Link,
        target: &Target,
    ) -> Result<()> {
        let Some(dir) = store.as_dir() else {
            return self.relay_from_origin(session, ctx).await;
        };
        let mut validators = (None, None);
        let read = ctx.trace.as_ref().map(|cx| {
            let read = telemetry::child(cx, "document_store.read", SpanKind::Internal);
            read.span()
                .set_attribute(KeyValue::new("linkgate.store", store.name().to_string()));
            read
        });
        let served = dir
            .serve(
                session,
                &target.object,
                |resp| {
                    let text = |name| {
                        resp.headers
                            .get(name)
                            .and_then(|v: &http::HeaderValue| v.to_str().ok())
                            .map(str::to_string)
                    };
                    validators = (text(header::ETAG), text(header::LAST_MODIFIED));
                    decorate(resp, target)
                },
                &mut ctx.metered,
                &mut ctx.spliced,
            )
            .await;
        telemetry::end(
            read.as_ref(),
            match &served {
                Ok(()) => None,
                Err(e) => Some(format!("{e:?}")),
            },
        );
        if served.is_ok() && validators.0.is_some() {
            self.served_version(
                session,
                ctx,
                validators.0.as_deref(),
                validators.1.as_deref(),
            );
        }
        match served {
            Ok(()) => Ok(()),
            Err(ServeError::Refused(DirError::NotFound | DirError::NotAFile)) => {
                self.gone(session, ctx, false).await
            }
            Err(ServeError::PreconditionFailed) if ctx.conditional => {
                self.gone(session, ctx, true).await
            }
            Err(ServeError::PreconditionFailed) => {
                ctx.replaced = true;
                self.give_back(ctx).await;
                write_status(session, 412, &[]).await
            }
            Err(ServeError::Refused(e)) => {
                tracing::warn!(link = %link.id, store = %link.store, error = %e, "dir store cannot serve the object");
                ctx.outcome = Outcome::OriginNotFound;
                self.give_back(ctx).await;
                write_status(session, 404, &[]).await
            }
            Err(ServeError::Exhausted) => {
                ctx.outcome = Outcome::Exhausted;
                ctx.replaced = true;
                self.give_back(ctx).await;
                write_status(session, 404, &[]).await
            }
            Err(ServeError::Broken(e)) => Err(e),
        }
    }

    /// Decides whether the request may proceed, step by step; `Err(answer)` is what to answer
    /// instead. Each step records its outcome in `ctx` when it refuses.
    async fn admit(&self, session: &mut Session, ctx: &mut Ctx) -> Result<(), Refused> {
        let id = self.identify(session, ctx).await?;
        ctx.link_id = Some(id);
        telemetry::set(ctx.trace.as_ref(), || {
            vec![KeyValue::new("linkgate.link_id", id.to_string())]
        });
        let (link, uploading) = self.open(session, ctx, id).await?;
        let base = format!(
            "/s/{}",
            token_of(session.req_header().uri.path()).unwrap_or_default()
        );
        self.require_checks(session, ctx, &link, &base).await?;
        self.docstore(session, ctx, &link)?;
        if uploading {
            self.allow_upload(session, ctx, &link)?;
            ctx.upload = true;
            ctx.link = Some(link);
            return Ok(());
        }
        self.select(session, ctx, &link, &base)?;
        if let Some(render) = &ctx.render {
            // Made by the gateway: a counted one draws once its size is known (in `serve`); a
            // page image or thumbnail is no download at all (no event, no usage).
            let req = session.req_header();
            ctx.kind = match classify(&req.method, &req.headers) {
                Kind::Fresh | Kind::Continuation if !render.counted() => Kind::Head,
                Kind::Continuation => Kind::Fresh,
                kind => kind,
            };
            ctx.link = Some(link);
            return Ok(());
        }
        let link = self.count(session, ctx, link).await?;
        ctx.link = Some(link);
        Ok(())
    }

    /// Identify: the link a legacy nginx URL or a native token names (forgeries stop here).
    async fn identify(&self, session: &Session, ctx: &mut Ctx) -> Result<LinkId, Refused> {
        let req = session.req_header();
        // Legacy nginx secure_link URLs (see `securelink`) name their link by a keyed hash.
        let legacy = match crate::share::secure_link::resolve(
            &self.gate,
            req.uri.path(),
            req.uri.query(),
            client_of(session),
        )
        .await
        {
            Some(Ok(id)) => Some(id),
            Some(Err(status)) => {
                ctx.outcome = Outcome::BadLegacyLink;
                return Err(Refused::Status(status));
            }
            None => None,
        };
        let Some(id) = legacy
            .or_else(|| token_of(req.uri.path()).and_then(|t| self.gate.links.keys.verify(t)))
        else {
            ctx.outcome = Outcome::BadToken;
            return Err(Refused::Status(404));
        };
        Ok(id)
    }

    /// Open: the link, if it exists and is open, and whether the request is an upload (a method
    /// the link does not answer is refused here).
    async fn open(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        id: LinkId,
    ) -> Result<(Arc<Link>, bool), Refused> {
        let found = match self.gate.links.cache.get(&id) {
            Some(link) => {
                telemetry::event(ctx.trace.as_ref(), "link cache hit", Vec::new);
                Ok(Some(link))
            }
            None => {
                telemetry::store_call(ctx.trace.as_ref(), "link_store.get", self.gate.refresh(id))
                    .await
            }
        };
        let link = match found {
            Ok(Some(link)) => link,
            Ok(None) => {
                ctx.outcome = Outcome::UnknownLink;
                return Err(Refused::Status(404));
            }
            Err(e) => {
                tracing::error!(link = %id, error = %e, "link store failed");
                ctx.outcome = Outcome::StoreError;
                return Err(Refused::Status(503));
            }
        };
        if let Err(closed) = open::open_at(&link, OffsetDateTime::now_utc()) {
            if closed == Outcome::Expired {
                self.notice(&link, Status::Expired, 0);
            }
            ctx.outcome = closed;
            self.refused(session, ctx, &link, None, closed.as_str());
            return Err(Refused::Status(404));
        }
        let req = session.req_header();
        let uploading = match open::asks(&req.method, &link, upload::is_upload(req)) {
            Ok(asks) => asks == Asks::Upload,
            Err(refused) => {
                ctx.outcome = refused;
                self.refused(session, ctx, &link, None, "method not allowed");
                return Err(Refused::Status(405));
            }
        };
        Ok((link, uploading))
    }

    /// Password and device: a used-up limited link's page is the uniform 404; a link with pages
    /// lets its checks decide (a page to show, or go on, perhaps view-only).
    async fn require_checks(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        link: &Arc<Link>,
        base: &str,
    ) -> Result<(), Refused> {
        let id = link.id;
        let req = session.req_header();
        if link.max_downloads.is_some()
            && recipient::wants_html(session)
            && !recipient::is_download(req.uri.query())
        {
            // A used-up link's page is the uniform 404 too.
            if let Err(failed) = something_left(self.any_left(ctx.trace.as_ref(), link).await) {
                return Err(self.limit_refusal(session, ctx, link, failed));
            }
        }
        // Every browser visit gets the landing page first (plain links too: it says what the
        // document is, from whom, until when); its Download button (`?download`) fetches.
        // Scripts (no `text/html` in `Accept`) still get the file directly.
        let browser_visit = recipient::wants_html(session)
            && !recipient::is_download(req.uri.query())
            && !upload::is_upload(req)
            && matches!(req.method, Method::GET | Method::HEAD);
        // A link whose store is no longer configured is dead: no page, the uniform 404 below.
        let live = self.gate.docstores.contains_key(&link.store);
        if live && (link.has_pages() || browser_visit) {
            match recipient::decide(&self.gate, session, link.clone(), base.to_string()).await {
                Ok(Decision::Pass { view_only }) => ctx.view_only = view_only,
                Ok(Decision::Reply(reply)) => {
                    ctx.outcome = Outcome::Page;
                    return Err(Refused::Reply(reply));
                }
                Err(e) => {
                    // The client's doing (a malformed or cut body): anyone holding the link can
                    // send one, so it is no warning for the operator (its access line says 400).
                    tracing::debug!(link = %id, error = %e, "reading a recipient's request failed");
                    ctx.outcome = Outcome::BadRequest;
                    return Err(Refused::Status(400));
                }
            }
        }
        Ok(())
    }

    /// The link's document store (a link naming a store no longer configured is a dead link).
    fn docstore(&self, session: &Session, ctx: &mut Ctx, link: &Link) -> Result<(), Refused> {
        let Some(docstore) = self.gate.docstores.get(&link.store) else {
            tracing::error!(link = %link.id, store = %link.store, "link names a store that is not configured");
            ctx.outcome = Outcome::NoStore;
            return Err(Refused::Status(404));
        };
        ctx.docstore = Some(docstore.clone());
        ctx.client = client_ip(session);
        Ok(())
    }

    /// Rights, for an upload: the link must accept them, and a view-only visit never does.
    fn allow_upload(&self, session: &Session, ctx: &mut Ctx, link: &Link) -> Result<(), Refused> {
        if !link.allows(&Right::Upload) || ctx.view_only {
            return Err(self.not_granted(session, ctx, link, "This link does not accept uploads."));
        }
        Ok(())
    }

    /// Select and rights: the document (or rendition) the query names, if the link grants it; a
    /// link of several documents without a choice answers its listing.
    fn select(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        link: &Link,
        base: &str,
    ) -> Result<(), Refused> {
        let query = session.req_header().uri.query();
        let Ok(ask) = viewer::ask_of(query) else {
            ctx.outcome = Outcome::NoDocument;
            return Err(Refused::Status(404));
        };
        if let Some(ask) = ask {
            return self.select_pages(session, ctx, link, base, ask);
        }
        let Some(selection) = Selection::from_query(query) else {
            ctx.outcome = Outcome::NoDocument;
            return Err(Refused::Status(404));
        };
        let mut target = self.resolve(session, ctx, link, base, &selection)?;
        if ctx.view_only {
            target.inline = true;
        }
        let settings = &self.render.settings;
        if target.inline && viewer::viewable(settings, &target) {
            // A PDF or image is viewed in the gateway's viewer: page images, never its bytes.
            let Ok(width) = viewer::width_of(query) else {
                ctx.outcome = Outcome::NoDocument;
                return Err(Refused::Status(404));
            };
            // The same view at another zoom carries its page ticket: not counted again.
            let again = link.max_downloads.is_some()
                && viewer::ticket_of(query)
                    .is_some_and(|t| self.gate.checks.verifier.check_page_ticket(t, link));
            ctx.render = Some(viewer::Render::Viewer {
                width: settings.clamp_width(width),
                again,
            });
        } else if let Some(name) = target.variant.strip_prefix("download:").filter(|name| {
            !link
                .documents
                .get(target.index)
                .is_some_and(|d| d.renditions.contains_key(*name))
        }) {
            if !settings.enabled || !settings.generated.contains_key(name) {
                ctx.outcome = Outcome::NoDocument;
                return Err(Refused::Status(404));
            }
            ctx.render = Some(viewer::Render::Generated(name.to_string()));
        } else if link.watermark == Watermark::All
            && !target.inline
            && crate::render::renderable_name(&target.filename)
        {
            if !settings.enabled {
                // The promise is a stamped copy: without the renderer there is none to give.
                ctx.outcome = Outcome::NoDocument;
                return Err(Refused::Status(404));
            }
            ctx.render = Some(viewer::Render::Stamped(target.variant.clone()));
        }
        ctx.target = Some(target);
        Ok(())
    }

    /// The document (or rendition) a selection names, if the link grants it; a link of several
    /// documents without a choice answers its listing.
    fn resolve(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        link: &Link,
        base: &str,
        selection: &Selection,
    ) -> Result<Target, Refused> {
        match link.resolve(selection) {
            Ok(target) => Ok(target),
            Err(Refusal::NoSuchDocument) => {
                ctx.outcome = Outcome::NoDocument;
                Err(Refused::Status(404))
            }
            Err(Refusal::Several) => {
                ctx.outcome = Outcome::Listing;
                Err(Refused::Reply(listing(
                    link,
                    &format!("{}{base}", self.gate.links.public_url),
                )))
            }
            Err(Refusal::NotGranted(reason)) => Err(self.not_granted(session, ctx, link, reason)),
        }
    }

    /// Select and rights for a page image or a thumbnail: a page image needs a link that may
    /// view or download the document, a thumbnail one that may open it in any way.
    fn select_pages(
        &self,
        session: &Session,
        ctx: &mut Ctx,
        link: &Link,
        base: &str,
        ask: viewer::Ask,
    ) -> Result<(), Refused> {
        let query = viewer::doc_query(session.req_header().uri.query());
        let Some(selection) = Selection::from_query(query.as_deref()) else {
            ctx.outcome = Outcome::NoDocument;
            return Err(Refused::Status(404));
        };
        let settings = &self.render.settings;
        if !settings.enabled {
            ctx.outcome = Outcome::NoDocument;
            return Err(Refused::Status(404));
        }
        let mut target = self.resolve(session, ctx, link, base, &selection)?;
        // Pages are made from the original whichever variant the link's default is.
        if let Some(doc) = link.documents.get(target.index) {
            target.object = doc.object.clone();
            target.filename = doc.filename.clone();
            target.etag = doc.etag.clone();
            target.last_modified = doc.last_modified.clone();
            target.size = doc.size;
        }
        target.inline = true;
        let render = match ask {
            viewer::Ask::Page { page, width } => {
                if !viewer::may_see_pages(link, ctx.view_only) {
                    return Err(self.not_granted(
                        session,
                        ctx,
                        link,
                        "This link does not allow viewing documents in the browser.",
                    ));
                }
                // A limited link counts its views: its page images come only with the ticket of
                // a viewer page that was counted, never straight from the link.
                if link.max_downloads.is_some()
                    && !viewer::ticket_of(session.req_header().uri.query())
                        .is_some_and(|t| self.gate.checks.verifier.check_page_ticket(t, link))
                {
                    return Err(self.not_granted(
                        session,
                        ctx,
                        link,
                        "Page images of this link are shown only in its viewer: open the document from the link's page.",
                    ));
                }
                viewer::Render::Page {
                    page,
                    width: settings.clamp_width(width),
                }
            }
            viewer::Ask::Thumbnail => viewer::Render::Thumbnail,
        };
        target.variant = render.variant();
        ctx.render = Some(render);
        ctx.target = Some(target);
        Ok(())
    }

    /// Count: HEAD and prefetches of a used-up link answer like a dead link; a GET of a limited
    /// link makes its first draw (the one link-state round trip on the request path).
    async fn count(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        link: Arc<Link>,
    ) -> Result<Arc<Link>, Refused> {
        let req = session.req_header();
        ctx.kind = classify(&req.method, &req.headers);
        let link_for_events = link.clone();
        if let (Kind::Head | Kind::Prefetch, Some(max), Some(target)) =
            (ctx.kind, link.max_downloads, ctx.target.as_ref())
        {
            // Uncounted requests on a used-up link must look like any dead link too.
            if let Err(failed) = something_left(
                self.may_send(ctx.trace.as_ref(), &link, max, &target.object, target.size)
                    .await,
            ) {
                return Err(self.limit_refusal(session, ctx, &link, failed));
            }
        }
        let link = match (ctx.kind, link.max_downloads) {
            (Kind::Fresh | Kind::Continuation, Some(_)) => {
                let req = session.req_header_mut();
                let range = req
                    .headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if range.as_deref().is_some_and(is_multi_range) {
                    // Several ranges of a counted download get the whole document (RFC 9110 lets a
                    // server ignore Range): no answer is ever larger than one copy.
                    req.remove_header(&header::RANGE);
                }
                let size = ctx.target.as_ref().and_then(|t| t.size);
                let expected =
                    expected_length(range.as_deref().filter(|r| !is_multi_range(r)), size);
                match self.admit_draw(ctx, link, expected).await {
                    Ok(Some(link)) => link,
                    Ok(None) => {
                        return Err(self.limit_refusal(session, ctx, &link_for_events, None))
                    }
                    Err(e) => {
                        return Err(self.limit_refusal(session, ctx, &link_for_events, Some(e)))
                    }
                }
            }
            _ => link,
        };
        Ok(link)
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            link: None,
            link_id: None,
            docstore: None,
            attempt: Attempt::default(),
            streaming: false,
            kind: Kind::Head,
            target: None,
            render: None,
            upload: false,
            metered: None,
            counted: false,
            client: String::new(),
            view_only: false,
            replaced: false,
            conditional: false,
            used: 0,
            outcome: Outcome::Served,
            trace: None,
            spliced: 0,
            _in_flight: crate::metrics::InFlight::start(),
        }
    }

    fn init_downstream_modules(&self, modules: &mut pingora::modules::http::HttpModules) {
        // Pingora's default: its compression module, disabled.
        modules
            .add_module(pingora::modules::http::compression::ResponseCompressionBuilder::enable(0));
        if let Some(value) = &self.hsts {
            modules.add_module(Box::new(crate::share::tls::Hsts(value.clone())));
        }
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        crate::share::edge::head_read();
        let downstream = session.as_downstream_mut();
        downstream.set_read_timeout(Some(self.client_read_timeout));
        downstream.set_write_timeout(Some(self.client_write_timeout));
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        if telemetry::tracer().is_some() {
            let req = session.req_header();
            ctx.trace = telemetry::request(
                req.method.as_str(),
                route_of(req.uri.path()),
                req.headers.get("traceparent").map(|v| v.as_bytes()),
            );
        }
        // Every access line names the client, refusals before any link is known included (token
        // scanning must be traceable).
        ctx.client = client_ip(session);
        if let Err(why) = crate::share::guard::check_session(session) {
            ctx.outcome = Outcome::Malformed;
            crate::share::guard::refuse(session, why).await?;
            return Ok(true);
        }
        let req = session.req_header();
        if req.uri.path() == pages::LOGO_PATH && matches!(req.method, Method::GET | Method::HEAD) {
            // The operator's logo (branding); without one, like any unknown path.
            ctx.outcome = Outcome::Page;
            match pages::logo_reply() {
                Some(reply) => write_reply(session, reply).await?,
                None => write_status(session, 404, &[]).await?,
            }
            return Ok(true);
        }
        match self.admit(session, ctx).await {
            Ok(()) => self.serve(session, ctx).await?,
            Err(refusal) => write_refusal(session, refusal).await?,
        }
        Ok(true)
    }

    /// Never called: `request_filter` answers every request (see the module doc).
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "every request is answered in request_filter",
        )
    }

    /// A recipient that went away is routine (the access log records it as `client_gone`):
    /// Pingora's error line for it is left out, so that error lines are the gateway's faults.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, e: &Error) -> bool {
        let theirs = e.esource() == &ErrorSource::Downstream;
        if theirs {
            tracing::debug!(error = %e, "the recipient went away");
        }
        theirs
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => 0,
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        // Failed connections were counted per attempt by the relay.
        let connect = matches!(
            e.etype(),
            ErrorType::ConnectTimedout
                | ErrorType::ConnectRefused
                | ErrorType::ConnectNoRoute
                | ErrorType::ConnectError
                | ErrorType::TLSHandshakeFailure
        );
        if let (Some(store), 502 | 504, false) = (&ctx.docstore, code, connect) {
            store
                .metrics()
                .error(if code == 504 { "timeout" } else { "io" });
        }
        ctx.outcome = record::error_outcome(code, e.etype() == &crate::docstore::LIMIT_REACHED);
        if session.response_written().is_none() {
            self.give_back(ctx).await;
        }
        if code > 0 && session.response_written().is_none() {
            if let Err(e) = write_status(session, code, &[]).await {
                tracing::debug!(error = %e, "could not write error page");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Tells the next request of a kept-alive connection that it was reused (its head deadline
    /// includes the idle time, see [`crate::share::edge`]).
    fn persist_connection_context(
        &self,
        _session: &Session,
        _ctx: &Ctx,
    ) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        Some(Box::new(crate::share::edge::Reused))
    }

    /// Pingora's error lines name the request this way: never with its token (see `guard`).
    fn request_summary(&self, session: &Session, ctx: &Ctx) -> String {
        crate::share::guard::request_summary(session.req_header(), ctx.link.as_ref().map(|l| l.id))
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let sent = session.as_downstream().body_bytes_sent() as u64 + ctx.spliced;
        let delivered = !ctx.replaced && e.is_none() && (status == 200 || status == 206);
        // Unsent bytes go back before the event is queued, so whoever waits for the event finds
        // the allowance restored.
        self.give_back(ctx).await;
        ctx.outcome = record::settled(ctx.outcome, delivered, ctx.kind);
        self.record_download(session, ctx, delivered, status, sent);
        if let (true, Some(link)) = (delivered, &ctx.link) {
            if link.max_downloads.is_some_and(|max| ctx.used >= max) {
                self.notice(link, Status::Exhausted, ctx.used);
            }
        }
        self.stream_ended(ctx, delivered, sent);
        access_line(session, ctx, status, sent);
        if let Some(cx) = ctx.trace.take() {
            end_request_span(&cx, ctx, status, sent, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{token_of, version_condition, version_differs};
    use crate::model::link::Target;

    fn target(etag: Option<&str>, modified: Option<&str>) -> Target {
        Target {
            index: 0,
            object: "a.pdf".into(),
            filename: "a.pdf".into(),
            inline: false,
            variant: "download".into(),
            size: Some(3),
            etag: etag.map(str::to_string),
            last_modified: modified.map(str::to_string),
        }
    }

    #[test]
    fn a_refusing_link_asks_for_its_version_with_the_strongest_validator() {
        let date = "Wed, 02 Dec 2026 03:00:00 GMT";
        let c = version_condition(&target(Some("\"abc\""), Some(date))).unwrap();
        assert_eq!((c.0.as_str(), c.1.as_str()), ("if-match", "\"abc\""));
        let c = version_condition(&target(Some("W/\"abc\""), Some(date))).unwrap();
        assert_eq!(
            (c.0.as_str(), c.1.as_str()),
            ("if-unmodified-since", date),
            "a weak ETag never matches If-Match"
        );
        assert!(version_condition(&target(Some("W/\"abc\""), None)).is_none());
        assert!(version_condition(&target(None, None)).is_none());
    }

    #[test]
    fn a_new_version_is_told_by_its_validators() {
        let t = target(Some("\"abc\""), Some("d1"));
        assert!(
            !version_differs(&t, Some("\"abc\""), Some("d2")),
            "ETag decides"
        );
        assert!(
            !version_differs(&t, Some("W/\"abc\""), None),
            "compared weakly"
        );
        assert!(version_differs(&t, Some("\"abd\""), Some("d1")));
        let t = target(None, Some("d1"));
        assert!(version_differs(&t, None, Some("d2")));
        assert!(!version_differs(&t, None, Some("d1")));
        assert!(!version_differs(
            &target(None, None),
            Some("\"x\""),
            Some("d")
        ));
    }

    #[test]
    fn active_types_are_recognised() {
        for t in [
            "text/html",
            "Text/HTML; charset=utf-8",
            "application/xhtml+xml",
            "image/svg+xml",
            "text/xml",
            "application/xml",
            "application/javascript",
            "text/xsl",
            "multipart/x-mixed-replace; boundary=x",
            "message/rfc822",
            "nonsense",
            "",
        ] {
            assert!(super::is_active_type(t), "{t}");
        }
        for t in [
            "application/pdf",
            "image/png",
            "text/plain; charset=utf-8",
            "video/mp4",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ] {
            assert!(!super::is_active_type(t), "{t}");
        }
    }

    #[test]
    fn token_extraction() {
        assert_eq!(token_of("/s/abc"), Some("abc"));
        assert_eq!(token_of("/s/abc/report.pdf"), Some("abc"));
        assert_eq!(token_of("/s/"), None);
        assert_eq!(token_of("/x/abc"), None);
    }
}
