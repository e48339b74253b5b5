//! The recipients' side: a Pingora `ProxyHttp` that turns a share URL into a streamed object.
//!
//! Phases, in order:
//! - `request_filter`: verify the token, load the link, check state/expiry, classify the request
//!   (HEAD, prefetch, fresh, continuation) and, for a limited link, reserve a download slot.
//!   Anything not good is answered here with the uniform 404.
//! - `upstream_peer` / `upstream_request_filter`: the link's store and object path; only
//!   whitelisted request headers reach the origin.
//! - `response_filter` / `response_body_filter`: our headers on success; an origin error is
//!   replaced by our own page.
//! - `logging`: keep or give back the reserved slot, batch usage of unlimited links, log one line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use time::OffsetDateTime;

use crate::counting::{classify, keeps_slot, Kind};
use crate::disposition::content_disposition;
use crate::gate::Gate;
use crate::audit::{client_of, user_agent_of, Draft};
use crate::link::{Link, LinkState, Right};
use crate::pages;
use crate::recipient::{self, Decision, Reply};
use crate::store::{ReserveRequest, Reservation, Ticket};
use crate::upstream::{HttpUpstream, FORWARDED_REQUEST_HEADERS};

pub struct Proxy {
    pub gate: Arc<Gate>,
    pub client_read_timeout: Duration,
    pub client_write_timeout: Duration,
}

/// Per-request state.
pub struct Ctx {
    started: Instant,
    link: Option<Arc<Link>>,
    upstream: Option<Arc<HttpUpstream>>,
    kind: Kind,
    /// The slot reserved for this request, to be committed or given back.
    ticket: Option<Ticket>,
    client: String,
    /// Send the file inline whatever the link's rights (an unverified browser of a recipient
    /// without an email address).
    view_only: bool,
    /// The origin's answer was replaced by this page.
    replacement: Option<Bytes>,
    outcome: &'static str,
}

/// The token part of `/s/{token}` or `/s/{token}/{cosmetic name}`.
fn token_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/s/")?;
    let token = rest.split('/').next()?;
    (!token.is_empty()).then_some(token)
}

fn client_ip(session: &Session) -> String {
    match client_of(session) {
        Some(ip) => ip.to_string(),
        None => "unknown".to_string(),
    }
}

/// What to answer instead of proxying.
enum Answer {
    Status(u16),
    Reply(Reply),
}

/// Writes a recipient page, form answer or redirect.
async fn write_reply(session: &mut Session, reply: Reply) -> Result<()> {
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 1))?;
    for (k, v) in reply.headers {
        resp.append_header(k, v)?;
    }
    resp.insert_header(header::CONTENT_LENGTH, reply.body.len())?;
    let head = session.req_header().method == Method::HEAD || reply.body.is_empty();
    session.write_response_header(Box::new(resp), head).await?;
    if !head {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

/// Writes one of our pages and ends the response (keep-alive is preserved).
async fn answer(session: &mut Session, status: u16, extra: &[(&'static str, &'static str)]) -> Result<()> {
    let body = pages::for_status(status);
    let mut resp = ResponseHeader::build(status, Some(8))?;
    for (k, v) in pages::page_headers().iter().chain(extra) {
        resp.insert_header(*k, *v)?;
    }
    resp.insert_header(header::CONTENT_LENGTH, body.len())?;
    let head = session.req_header().method == Method::HEAD;
    session.write_response_header(Box::new(resp), head).await?;
    if !head {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// An audit event about `link` for this request (client address and user agent filled in).
fn event(session: &Session, link: &Link, kind: &str, outcome: &str) -> Draft {
    let mut d = Draft::new(kind, outcome);
    d.client = client_of(session).map(|ip| ip.to_string());
    d.user_agent = user_agent_of(session);
    d.document = link.documents.first().map(|doc| doc.object.clone());
    d
}

impl Proxy {
    /// Queues a `download.refused` event for a known link.
    fn refused(&self, session: &Session, link: &Link, reason: &str) {
        let mut d = event(session, link, "download.refused", "refused");
        d.reason = Some(reason.to_string());
        self.gate.audit.push(link.id, d);
    }

    /// Gives a reserved slot back (once). Called before an error answer goes out, so that the
    /// slot is free again by the time the client sees the error.
    async fn give_back(&self, ctx: &mut Ctx) {
        let Some(ticket) = ctx.ticket.take() else { return };
        self.gate.settlements.released(ticket);
        if let Err(err) = self.gate.store.release(ticket, &ctx.client).await {
            // The reservation then expires by itself after the reservation TTL.
            tracing::error!(link = %ticket.id, error = %err, "could not give back a download slot");
        }
    }

    /// Reserves a slot for a limited link; refreshes a stale cached link once.
    async fn reserve(&self, ctx: &mut Ctx, link: Arc<Link>, max: u64) -> Result<Option<Arc<Link>>, crate::store::StoreError> {
        let mut link = link;
        for _ in 0..2 {
            let req = ReserveRequest {
                id: link.id,
                generation: link.generation,
                max,
                client: ctx.client.clone(),
                continuation: ctx.kind == Kind::Continuation,
                window: self.gate.grant_window,
            };
            match self.gate.store.reserve(&req).await? {
                Reservation::Granted { ticket, used } => {
                    self.gate.settlements.started(ticket);
                    let mut d = Draft::new("download.started", "ok");
                    d.client = Some(ctx.client.clone());
                    d.document = link.documents.first().map(|doc| doc.object.clone());
                    d.detail = Some(serde_json::json!({ "downloads_used": used, "max_downloads": max }));
                    self.gate.audit.push(link.id, d);
                    ctx.ticket = Some(ticket);
                    return Ok(Some(link));
                }
                Reservation::Covered => return Ok(Some(link)),
                Reservation::Exhausted => return Ok(None),
                Reservation::Stale => match self.gate.refresh(link.id).await? {
                    Some(fresh) if fresh.is_open(OffsetDateTime::now_utc()) => link = fresh,
                    _ => return Ok(None),
                },
            }
        }
        Ok(None)
    }

    /// Decides whether the request may proceed; `Err(answer)` is what to answer instead.
    async fn admit(&self, session: &mut Session, ctx: &mut Ctx) -> Result<(), Answer> {
        let req = session.req_header();
        // Legacy nginx secure_link URLs (see `securelink`) name their link by a keyed hash.
        let legacy = match crate::securelink::resolve(&self.gate, req.uri.path(), req.uri.query(), client_of(session)).await {
            Some(Ok(id)) => Some(id),
            Some(Err(status)) => {
                ctx.outcome = "bad_legacy_link";
                return Err(Answer::Status(status));
            }
            None => None,
        };
        let Some(id) = legacy.or_else(|| token_of(req.uri.path()).and_then(|t| self.gate.keys.verify(t))) else {
            ctx.outcome = "bad_token";
            return Err(Answer::Status(404));
        };
        let link = match self.gate.link(id).await {
            Ok(Some(link)) => link,
            Ok(None) => {
                ctx.outcome = "unknown_link";
                return Err(Answer::Status(404));
            }
            Err(e) => {
                tracing::error!(link = %id, error = %e, "link store failed");
                ctx.outcome = "store_error";
                return Err(Answer::Status(503));
            }
        };
        if !link.is_open(OffsetDateTime::now_utc()) {
            ctx.outcome = match link.state {
                LinkState::Active => "expired",
                LinkState::Deactivated => "deactivated",
                LinkState::Cancelled => "cancelled",
            };
            self.refused(session, &link, ctx.outcome);
            return Err(Answer::Status(404));
        }
        let req = session.req_header();
        let form_post = req.method == Method::POST && link.has_pages();
        if req.method != Method::GET && req.method != Method::HEAD && !form_post {
            ctx.outcome = "method";
            self.refused(session, &link, "method not allowed");
            return Err(Answer::Status(405));
        }
        if link.has_pages() {
            let base = format!("/s/{}", token_of(session.req_header().uri.path()).unwrap_or_default());
            match recipient::decide(&self.gate, session, link.clone(), base).await {
                Ok(Decision::Pass { view_only }) => ctx.view_only = view_only,
                Ok(Decision::Reply(reply)) => {
                    ctx.outcome = "page";
                    return Err(Answer::Reply(reply));
                }
                Err(e) => {
                    tracing::warn!(link = %id, error = %e, "reading a recipient's request failed");
                    ctx.outcome = "bad_request";
                    return Err(Answer::Status(400));
                }
            }
        }
        if !link.allows(Right::Download) && !link.allows(Right::View) {
            ctx.outcome = "no_right";
            return Err(Answer::Status(404));
        }
        let Some(upstream) = link.documents.first().and_then(|_| self.gate.upstreams.get(&link.store)) else {
            tracing::error!(link = %id, store = %link.store, "link names a store that is not configured");
            ctx.outcome = "no_store";
            return Err(Answer::Status(404));
        };
        ctx.upstream = Some(upstream.clone());
        let req = session.req_header();
        ctx.kind = classify(&req.method, &req.headers);
        ctx.client = client_ip(session);
        let link_for_events = link.clone();
        if let (Kind::Head | Kind::Prefetch, Some(max)) = (ctx.kind, link.max_downloads) {
            // Uncounted requests on a used-up link must look like any dead link too.
            match self.gate.store.usage(link.id, link.generation).await {
                Ok(used) if used >= max => {
                    ctx.outcome = "exhausted";
                    self.refused(session, &link, "download limit reached");
                    return Err(Answer::Status(404));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(link = %id, error = %e, "link store failed");
                    ctx.outcome = "store_error";
                    return Err(Answer::Status(503));
                }
            }
        }
        let link = match (ctx.kind, link.max_downloads) {
            (Kind::Fresh | Kind::Continuation, Some(max)) => match self.reserve(ctx, link, max).await {
                Ok(Some(link)) => link,
                Ok(None) => {
                    ctx.outcome = "exhausted";
                    self.refused(session, &link_for_events, "download limit reached");
                    return Err(Answer::Status(404));
                }
                Err(e) => {
                    tracing::error!(link = %id, error = %e, "link store failed while counting");
                    ctx.outcome = "store_error";
                    return Err(Answer::Status(503));
                }
            },
            _ => link,
        };
        ctx.link = Some(link);
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            link: None,
            upstream: None,
            kind: Kind::Head,
            ticket: None,
            client: String::new(),
            view_only: false,
            replacement: None,
            outcome: "served",
        }
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        let downstream = session.as_downstream_mut();
        downstream.set_read_timeout(Some(self.client_read_timeout));
        downstream.set_write_timeout(Some(self.client_write_timeout));
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        if let Err(why) = crate::guard::check_session(session) {
            ctx.outcome = "malformed";
            crate::guard::refuse(session, why).await?;
            return Ok(true);
        }
        match self.admit(session, ctx).await {
            Ok(()) => {}
            Err(Answer::Status(status)) => {
                let allow: &[(&'static str, &'static str)] = if status == 405 { &[("allow", "GET, HEAD")] } else { &[] };
                answer(session, status, allow).await?;
                return Ok(true);
            }
            Err(Answer::Reply(reply)) => {
                write_reply(session, reply).await?;
                return Ok(true);
            }
        }
        if ctx.kind == Kind::Prefetch {
            // A prefetch never receives the document, so it can never use up a download.
            ctx.outcome = "prefetch";
            let mut resp = ResponseHeader::build(204, Some(2))?;
            resp.insert_header(header::CACHE_CONTROL, "no-store")?;
            session.write_response_header(Box::new(resp), true).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        match &ctx.upstream {
            Some(u) => Ok(u.peer()),
            None => Error::e_explain(ErrorType::InternalError, "no upstream chosen"),
        }
    }

    async fn upstream_request_filter(&self, session: &mut Session, upstream_request: &mut RequestHeader, ctx: &mut Ctx) -> Result<()> {
        let (Some(link), Some(upstream)) = (&ctx.link, &ctx.upstream) else {
            return Error::e_explain(ErrorType::InternalError, "no link admitted");
        };
        let Some(doc) = link.documents.first() else {
            return Error::e_explain(ErrorType::InternalError, "link has no document");
        };
        let path = upstream.path_of(&doc.object);
        let mut out = RequestHeader::build(session.req_header().method.clone(), path.as_bytes(), Some(8))?;
        out.insert_header(header::HOST, upstream.config.host_header.as_str())?;
        for name in FORWARDED_REQUEST_HEADERS {
            for value in session.req_header().headers.get_all(name) {
                out.append_header(name, value.clone())?;
            }
        }
        if let Some((name, value)) = &upstream.config.auth_header {
            out.insert_header(name.clone(), value.clone())?;
        }
        *upstream_request = out;
        Ok(())
    }

    async fn response_filter(&self, _session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        let status = resp.status.as_u16();
        let replace_with = match status {
            200..=299 | 304 | 412 | 416 => None,
            401 | 403 | 404 | 410 => Some(404),
            400..=499 => Some(502),
            _ => Some(502),
        };
        if let Some(code) = replace_with {
            // The origin's own error page never reaches the recipient.
            tracing::warn!(status, link = ?ctx.link.as_ref().map(|l| l.id), "origin answered with an error");
            ctx.outcome = if code == 404 { "origin_not_found" } else { "origin_error" };
            self.give_back(ctx).await;
            let body = pages::for_status(code);
            let mut page = ResponseHeader::build(code, Some(8))?;
            for (k, v) in pages::page_headers() {
                page.insert_header(k, v)?;
            }
            page.insert_header(header::CONTENT_LENGTH, body.len())?;
            *resp = page;
            ctx.replacement = Some(body);
            return Ok(());
        }
        for name in ["set-cookie", "set-cookie2", "content-disposition", "x-powered-by"] {
            resp.remove_header(name);
        }
        resp.insert_header(header::CACHE_CONTROL, "private, no-store")?;
        resp.insert_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")?;
        if let Some(link) = &ctx.link {
            let inline = ctx.view_only || !link.allows(Right::Download);
            let name = link.documents.first().map(|d| d.filename.as_str()).unwrap_or("download");
            resp.insert_header(header::CONTENT_DISPOSITION, content_disposition(inline, name))?;
        }
        Ok(())
    }

    fn response_body_filter(&self, _session: &mut Session, body: &mut Option<Bytes>, _end: bool, ctx: &mut Ctx) -> Result<Option<Duration>> {
        if let Some(page) = &mut ctx.replacement {
            // The page goes out with the first chunk; the origin's body is dropped.
            *body = (!page.is_empty()).then(|| std::mem::take(page));
        }
        Ok(None)
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
        ctx.outcome = match code {
            504 => "origin_timeout",
            502 => "origin_down",
            0 => "client_gone",
            _ => "error",
        };
        if session.response_written().is_none() {
            self.give_back(ctx).await;
        }
        if code > 0 && session.response_written().is_none() {
            if let Err(e) = answer(session, code, &[]).await {
                tracing::debug!(error = %e, "could not write error page");
            }
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    /// Pingora's error lines name the request this way: never with its token (see `guard`).
    fn request_summary(&self, session: &Session, ctx: &Ctx) -> String {
        crate::guard::request_summary(session.req_header(), ctx.link.as_ref().map(|l| l.id))
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let (status, expected) = match session.response_written() {
            Some(r) => (
                r.status.as_u16(),
                r.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()),
            ),
            None => (0, None),
        };
        let sent = session.as_downstream().body_bytes_sent() as u64;
        let delivered = ctx.replacement.is_none() && keeps_slot(status, e.is_none(), sent, expected);
        let counted = ctx.ticket.is_some() && delivered;
        match ctx.ticket {
            Some(ticket) if delivered => self.gate.settlements.delivered(ticket),
            Some(_) => {
                self.give_back(ctx).await;
                if ctx.outcome == "served" {
                    ctx.outcome = "aborted";
                }
            }
            None => {}
        }
        if let Some(link) = &ctx.link {
            if delivered && link.max_downloads.is_none() && ctx.kind == Kind::Fresh {
                self.gate.usage.record(link.id, link.generation);
            }
            // One event per download that reached the origin (HEAD and prefetches excluded).
            if matches!(ctx.kind, Kind::Fresh | Kind::Continuation) && ctx.outcome != "prefetch" {
                let (kind, outcome) = match (delivered, counted, ctx.kind) {
                    (true, true, _) => ("download.completed", "ok"),
                    (true, false, Kind::Continuation) => ("download.resumed", "ok"),
                    (true, false, _) => ("download.completed", "ok"),
                    (false, _, _) => ("download.aborted", "failed"),
                };
                let mut d = event(session, link, kind, outcome);
                d.bytes = Some(sent);
                if !delivered {
                    d.reason = Some(ctx.outcome.to_string());
                }
                d.detail = Some(serde_json::json!({ "status": status, "counted": counted }));
                self.gate.audit.push(link.id, d);
            }
        }
        tracing::info!(
            target: "linkgate::access",
            link = ?ctx.link.as_ref().map(|l| l.id),
            method = %session.req_header().method,
            status,
            outcome = ctx.outcome,
            counted,
            bytes = sent,
            client = %ctx.client,
            ms = ctx.started.elapsed().as_millis() as u64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn token_extraction() {
        assert_eq!(token_of("/s/abc"), Some("abc"));
        assert_eq!(token_of("/s/abc/report.pdf"), Some("abc"));
        assert_eq!(token_of("/s/"), None);
        assert_eq!(token_of("/x/abc"), None);
    }
}
