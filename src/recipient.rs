//! What a recipient's browser meets before the file, for links with a password or a recipient:
//! the password gate, device verification (first browser trusted on a POST, others by a mailed
//! 6-digit code), and the landing page the download starts from.
//!
//! `decide` either lets the request through to the proxy (`Pass`) or answers it (`Reply`). A bare
//! GET never changes anything but the browser's own device cookie: trusting a device, sending a
//! code and checking a password all take a POST with a single-use CSRF token, so mail scanners that
//! open links first cannot claim the trusted-device slot. Attempts are capped in the store (so the
//! caps hold across instances) and counted before any hashing.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{header, Method};
use pingora::proxy::Session;
use time::format_description::well_known::Rfc2822;

use crate::audit::{client_of, user_agent_of, Draft};
use crate::gate::{FormToken, Gate};
use crate::link::{Link, LinkState, Right, Variant};
use crate::mail::CodeMail;
use crate::pages::{self, DocumentFacts, LandingDocument, UploadForm};
use crate::store::{Change, StoreError};
use crate::verify::{mask_email, new_code, new_device_id};

/// Header a non-browser client sends the link password in.
pub const PASSWORD_HEADER: &str = "x-link-password";
const MAX_FORM_BYTES: usize = 16 * 1024;
const PASSWORD_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords per link and client address in a window.
const PASSWORD_FAILS_PER_CLIENT: u64 = 5;
/// Wrong passwords per link from everyone in a window: slows a distributed guesser; a window
/// ends, so the rightful recipient is never locked out for good.
const PASSWORD_FAILS_PER_LINK: u64 = 50;
const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
const CODE_ATTEMPTS: u64 = 5;
const CODE_RESEND_GAP: Duration = Duration::from_secs(30);
const CODES_PER_LINK_PER_HOUR: u64 = 10;
const MAX_TRUSTED_DEVICES: usize = 20;

/// An answer written by the gateway itself.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

pub enum Decision {
    /// Go on to the file; `view_only` sends it inline whatever the link's rights.
    Pass {
        view_only: bool,
    },
    Reply(Reply),
}

/// Per-address request rate on the recipients' pages.
pub struct PageLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PageLimiter {
    pub fn new(per_minute: u32) -> PageLimiter {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new((per_minute.get() / 3).max(5)).unwrap_or(NonZeroU32::MIN);
        PageLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&ip).is_ok()
    }
}

/// What one request brings, read once.
struct Visit {
    link: Arc<Link>,
    /// `/s/{token}`: where forms post and redirects go.
    base: String,
    html: bool,
    /// A form POST (password, trust, codes); an upload POST is not one.
    post: bool,
    download: bool,
    /// A PUT or `POST ?upload`: goes on to the upload once the gates are passed.
    upload: bool,
    device: Option<String>,
    new_device: bool,
    client: Option<IpAddr>,
    user_agent: Option<String>,
    cookies: Vec<(&'static str, String)>,
}

impl Visit {
    fn facts(&self) -> DocumentFacts {
        let (name, size) = match self.link.documents.as_slice() {
            [doc] => (doc.filename.clone(), doc.size),
            [] => ("File upload".to_string(), None),
            docs => (format!("{} documents", docs.len()), None),
        };
        DocumentFacts {
            name,
            size,
            expires: self.expires(),
        }
    }

    fn expires(&self) -> Option<String> {
        self.link
            .expires_at
            .and_then(|e| e.format(&Rfc2822).ok())
            .map(|e| e.replace("+0000", "UTC"))
    }

    /// The landing page: each document with a button per granted variant, and the upload form.
    fn landing(&self, gate: &Gate, view_only: bool) -> Bytes {
        let several = self.link.documents.len() > 1;
        let documents: Vec<LandingDocument> = self
            .link
            .documents
            .iter()
            .enumerate()
            .map(|(i, doc)| {
                let mut variants = self.link.offered(doc);
                if view_only {
                    // An unverified browser gets one button that opens the original inline.
                    variants = vec![Variant::View];
                }
                let actions = variants
                    .iter()
                    .map(|v| {
                        let label = match (v, view_only) {
                            (_, true) | (Variant::View, _) => "View".to_string(),
                            (Variant::Original, _) => "Download".to_string(),
                            (Variant::Rendition(name), _) => format!("Download ({name})"),
                        };
                        let mut href = format!("{}?download", self.base);
                        if several {
                            href.push_str(&format!("&doc={}", i + 1));
                        }
                        if !view_only
                            && (several || variants.len() > 1 || !matches!(v, Variant::Original))
                        {
                            href.push_str(&format!("&as={}", v.query_value()));
                        }
                        (label, href)
                    })
                    .collect();
                LandingDocument {
                    name: doc.filename.clone(),
                    size: doc.size,
                    actions,
                }
            })
            .collect();
        let upload = (self.link.allows(&Right::Upload) && !view_only).then(|| UploadForm {
            action: format!("{}?upload", self.base),
            csrf: self.link.has_gate().then(|| {
                gate.verifier
                    .csrf_token(&self.link.id, self.device.as_deref().unwrap_or(""))
            }),
            limits: crate::upload::Rules::for_link(&self.link, &gate.policy).describe(),
        });
        pages::landing(
            self.expires().as_deref(),
            &documents,
            upload.as_ref(),
            view_only,
        )
    }

    fn event(&self, kind: &str, outcome: &str) -> Draft {
        let mut d = Draft::new(kind, outcome);
        d.client = self.client.map(|c| c.to_string());
        d.user_agent = self.user_agent.clone();
        d.document = self.link.documents.first().map(|doc| doc.object.clone());
        d
    }

    fn client_key(&self) -> String {
        self.client
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    fn reply(&self, status: u16, body: Bytes) -> Decision {
        let mut headers = pages::page_headers_owned();
        headers.extend(self.cookies.iter().cloned());
        Decision::Reply(Reply {
            status,
            headers,
            body,
        })
    }

    fn text(&self, status: u16, text: &str, extra: &[(&'static str, String)]) -> Decision {
        let mut headers = pages::data_headers("text/plain; charset=utf-8");
        headers.extend(extra.iter().cloned());
        Decision::Reply(Reply {
            status,
            headers,
            body: Bytes::from(format!("{text}\n")),
        })
    }

    /// Post/redirect/get: back to the link after a form.
    fn back(&self) -> Decision {
        let mut headers = vec![
            ("location", self.base.clone()),
            ("cache-control", "private, no-store".to_string()),
        ];
        headers.extend(self.cookies.iter().cloned());
        Decision::Reply(Reply {
            status: 303,
            headers,
            body: Bytes::new(),
        })
    }
}

fn wants_html(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// Reads a urlencoded form (capped); `None` for anything unreadable.
async fn read_form(
    session: &mut Session,
) -> Result<Option<Vec<(String, String)>>, pingora::BError> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(parse_form(&body))
}

/// Parses a urlencoded form body; `None` for anything that is not UTF-8 once decoded.
pub fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut fields = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        fields.push((decode(k)?, decode(v)?));
    }
    Some(fields)
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decides what this request gets. `base` is `/s/{token}`.
pub async fn decide(
    gate: &Gate,
    session: &mut Session,
    link: Arc<Link>,
    base: String,
) -> pingora::Result<Decision> {
    let req = session.req_header();
    let client = client_of(session);
    let upload = crate::upload::is_upload(req);
    let mut visit = Visit {
        html: wants_html(session),
        post: req.method == Method::POST && !upload,
        upload,
        download: req.uri.query().is_some_and(|q| {
            q.split('&')
                .any(|p| p == "download" || p.starts_with("download="))
        }),
        device: gate.verifier.device_of(&req.headers),
        new_device: false,
        client,
        user_agent: user_agent_of(session),
        cookies: Vec::new(),
        link,
        base,
    };
    let rendering = visit.post || (visit.html && !visit.download && !visit.upload);
    if rendering {
        if let Some(ip) = client {
            if !gate.page_limiter.allows(ip) {
                let mut d = visit.reply(429, pages::for_status(429));
                if let Decision::Reply(r) = &mut d {
                    r.headers.push(("retry-after", "30".to_string()));
                }
                return Ok(d);
            }
        }
    }
    if visit.html && visit.device.is_none() && visit.link.has_gate() {
        let id = new_device_id();
        visit
            .cookies
            .push(("set-cookie", gate.verifier.device_cookie(&id)));
        visit.device = Some(id);
        visit.new_device = true;
    }
    if visit.post {
        return Ok(match read_form(session).await? {
            Some(form) => post(gate, &visit, &form).await,
            None => visit.reply(
                400,
                pages::message(
                    "The form could not be read",
                    "Please go back, reload the page and try again.",
                ),
            ),
        });
    }
    if let Some(d) = password_gate(gate, session, &visit).await {
        return Ok(d);
    }
    let view_only = match device_gate(gate, &visit).await {
        Ok(view_only) => view_only,
        Err(d) => return Ok(d),
    };
    if visit.html && !visit.download && !visit.upload {
        gate.audit
            .push(visit.link.id, visit.event("page.viewed", "ok"));
        return Ok(visit.reply(200, visit.landing(gate, view_only)));
    }
    if !visit.cookies.is_empty() {
        // A new device cookie on a download request: set it, then come back for the file.
        return Ok(visit.back());
    }
    Ok(Decision::Pass { view_only })
}

/// `Some(answer)` while the password is not proven.
async fn password_gate(gate: &Gate, session: &Session, visit: &Visit) -> Option<Decision> {
    let hash = visit.link.password_hash.as_ref()?;
    let headers = &session.req_header().headers;
    if gate.verifier.passed(headers, &visit.link) {
        return None;
    }
    if visit.html {
        let csrf = gate
            .verifier
            .csrf_token(&visit.link.id, visit.device.as_deref().unwrap_or(""));
        return Some(visit.reply(200, pages::password_form(&visit.facts(), &csrf, None)));
    }
    let Some(given) = headers.get(PASSWORD_HEADER).and_then(|v| v.to_str().ok()) else {
        return Some(visit.text(
            401,
            "This link is protected by a password. Open it in a browser, or send the password in the X-Link-Password header \
             (curl -H 'X-Link-Password: ...' URL).",
            &[],
        ));
    };
    match check_password(gate, visit, hash, given).await {
        PasswordOutcome::Passed => None,
        PasswordOutcome::Wrong => Some(visit.text(401, "Wrong password.", &[])),
        PasswordOutcome::Throttled => Some(visit.text(
            429,
            "Too many wrong passwords. Try again later.",
            &[("retry-after", PASSWORD_WINDOW.as_secs().to_string())],
        )),
        PasswordOutcome::Unavailable => {
            Some(visit.text(503, "The service is temporarily unavailable.", &[]))
        }
    }
}

enum PasswordOutcome {
    Passed,
    Wrong,
    Throttled,
    Unavailable,
}

async fn check_password(gate: &Gate, visit: &Visit, hash: &str, given: &str) -> PasswordOutcome {
    let id = visit.link.id;
    let per_client = format!("pwfail:{id}:{}", visit.client_key());
    let per_link = format!("pwfail:{id}");
    // Count before hashing: a throttled guesser costs no argon2 work.
    let counts = async {
        Ok::<_, StoreError>((
            gate.store.hit(&per_client, PASSWORD_WINDOW, 0).await?,
            gate.store.hit(&per_link, PASSWORD_WINDOW, 0).await?,
        ))
    };
    match counts.await {
        Ok((c, l)) if c >= PASSWORD_FAILS_PER_CLIENT || l >= PASSWORD_FAILS_PER_LINK => {
            let mut d = visit.event("password.failed", "refused");
            d.reason = Some("too many attempts".into());
            gate.audit.push(id, d);
            return PasswordOutcome::Throttled;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!(link = %id, error = %e, "link store failed while checking a password");
            return PasswordOutcome::Unavailable;
        }
    }
    if given.len() <= 1024 && gate.verifier.check_password(hash, given).await {
        gate.audit.push(id, visit.event("password.passed", "ok"));
        return PasswordOutcome::Passed;
    }
    let _ = gate.store.hit(&per_client, PASSWORD_WINDOW, 1).await;
    let _ = gate.store.hit(&per_link, PASSWORD_WINDOW, 1).await;
    gate.audit
        .push(id, visit.event("password.failed", "failed"));
    PasswordOutcome::Wrong
}

/// `Ok(view_only)` when the browser may go on; `Err(answer)` otherwise.
async fn device_gate(gate: &Gate, visit: &Visit) -> Result<bool, Decision> {
    let Some(recipient) = &visit.link.recipient else {
        return Ok(false);
    };
    if !visit.html {
        return Err(visit.text(
            403,
            "This link is for a named recipient and must be opened in a web browser.",
            &[],
        ));
    }
    let Some(email) = &recipient.email else {
        // No address to verify against: every browser may view, none may download.
        return Ok(true);
    };
    let device = visit.device.as_deref().unwrap_or("");
    if visit.link.trusted_devices.iter().any(|d| d == device) {
        return Ok(false);
    }
    let csrf = gate.verifier.csrf_token(&visit.link.id, device);
    if visit.link.trusted_devices.is_empty() && !recipient.require_code {
        return Err(visit.reply(200, pages::confirm_device(&visit.facts(), &csrf)));
    }
    let pending = gate
        .store
        .kv_get(&format!("code:{}:{device}", visit.link.id))
        .await
        .ok()
        .flatten()
        .is_some();
    let masked = mask_email(email);
    if pending && !visit.new_device {
        let resend = gate.verifier.csrf_token(&visit.link.id, device);
        return Err(visit.reply(
            200,
            pages::enter_code(&visit.facts(), &csrf, &resend, &masked, None),
        ));
    }
    Err(visit.reply(200, pages::send_code(&visit.facts(), &csrf, &masked, None)))
}

/// A form: checked for its CSRF token (single use), then its action.
async fn post(gate: &Gate, visit: &Visit, form: &[(String, String)]) -> Decision {
    let id = visit.link.id;
    let device = visit.device.clone().unwrap_or_default();
    let spent = match (field(form, "csrf"), visit.new_device) {
        (Some(token), false) => gate.spend_csrf(token, &id, &device).await,
        _ => Ok(FormToken::Invalid),
    };
    match spent {
        Ok(FormToken::Fresh) => {}
        Ok(FormToken::Invalid) => {
            return visit.reply(
                403,
                pages::message(
                    "This form has expired",
                    "Please reload the page and try again.",
                ),
            )
        }
        Ok(FormToken::Spent) => {
            return visit.reply(
                403,
                pages::message(
                    "This form was already sent",
                    "Please reload the page and try again.",
                ),
            )
        }
        Err(_) => return visit.reply(503, pages::for_status(503)),
    }
    match field(form, "action") {
        Some("password") => post_password(gate, visit, form).await,
        Some("trust") => post_trust(gate, visit, &device).await,
        Some("send_code") => post_send_code(gate, visit, &device).await,
        Some("verify_code") => {
            post_verify_code(gate, visit, &device, field(form, "code").unwrap_or("")).await
        }
        _ => visit.reply(
            400,
            pages::message(
                "The form could not be read",
                "Please go back, reload the page and try again.",
            ),
        ),
    }
}

async fn post_password(gate: &Gate, visit: &Visit, form: &[(String, String)]) -> Decision {
    let Some(hash) = &visit.link.password_hash else {
        return visit.back();
    };
    let given = field(form, "password").unwrap_or("");
    let csrf = gate
        .verifier
        .csrf_token(&visit.link.id, visit.device.as_deref().unwrap_or(""));
    match check_password(gate, visit, hash, given).await {
        PasswordOutcome::Passed => {
            let mut v = visit.cookies.clone();
            v.push((
                "set-cookie",
                gate.verifier.pass_cookie(&visit.link, &visit.base),
            ));
            let mut headers = vec![
                ("location", visit.base.clone()),
                ("cache-control", "private, no-store".to_string()),
            ];
            headers.extend(v);
            Decision::Reply(Reply {
                status: 303,
                headers,
                body: Bytes::new(),
            })
        }
        PasswordOutcome::Wrong => visit.reply(
            401,
            pages::password_form(
                &visit.facts(),
                &csrf,
                Some("That password is not right. Please try again."),
            ),
        ),
        PasswordOutcome::Throttled => visit.reply(
            429,
            pages::password_form(
                &visit.facts(),
                &csrf,
                Some("Too many wrong passwords were tried. Please wait 15 minutes and try again."),
            ),
        ),
        PasswordOutcome::Unavailable => visit.reply(503, pages::for_status(503)),
    }
}

/// Adds `device` to the link's trusted browsers; `first_only` refuses when one is trusted already.
async fn trust(
    gate: &Gate,
    visit: &Visit,
    device: &str,
    first_only: bool,
) -> Result<(), StoreError> {
    let device = device.to_string();
    let generation = visit.link.generation;
    let change: Change = Arc::new(move |link: &mut Link| {
        if link.state != LinkState::Active || link.generation != generation {
            return Err(StoreError::Refused("the link changed".into()));
        }
        if link.trusted_devices.contains(&device) {
            return Ok(());
        }
        if first_only && !link.trusted_devices.is_empty() {
            return Err(StoreError::Refused(
                "another browser was verified first".into(),
            ));
        }
        if link.trusted_devices.len() >= MAX_TRUSTED_DEVICES {
            link.trusted_devices.remove(0);
        }
        link.trusted_devices.push(device.clone());
        Ok(())
    });
    let result = gate.store.update(visit.link.id, change).await;
    gate.cache.invalidate(&visit.link.id);
    result.map(|_| ())
}

async fn post_trust(gate: &Gate, visit: &Visit, device: &str) -> Decision {
    let Some(recipient) = &visit.link.recipient else {
        return visit.back();
    };
    if recipient.require_code || recipient.email.is_none() {
        return visit.back();
    }
    match trust(gate, visit, device, true).await {
        Ok(()) => {
            let mut d = visit.event("device.trusted", "ok");
            d.detail = Some(serde_json::json!({ "how": "first browser" }));
            gate.audit.push(visit.link.id, d);
        }
        Err(StoreError::Refused(reason)) => {
            let mut d = visit.event("device.trusted", "refused");
            d.reason = Some(reason);
            gate.audit.push(visit.link.id, d);
        }
        Err(_) => return visit.reply(503, pages::for_status(503)),
    }
    // Either trusted now, or another browser won the race: the link page says which.
    visit.back()
}

async fn post_send_code(gate: &Gate, visit: &Visit, device: &str) -> Decision {
    let Some(email) = visit.link.recipient.as_ref().and_then(|r| r.email.clone()) else {
        return visit.back();
    };
    let id = visit.link.id;
    let csrf = gate.verifier.csrf_token(&id, device);
    let masked = mask_email(&email);
    let throttled = async {
        Ok::<_, StoreError>(
            gate.store
                .hit(&format!("codesend:{id}:{device}"), CODE_RESEND_GAP, 1)
                .await?
                > 1
                || gate
                    .store
                    .hit(&format!("codesend:{id}"), Duration::from_secs(3600), 1)
                    .await?
                    > CODES_PER_LINK_PER_HOUR,
        )
    };
    match throttled.await {
        Ok(false) => {}
        Ok(true) => {
            let mut d = visit.event("code.sent", "refused");
            d.reason = Some("resend throttled".into());
            gate.audit.push(id, d);
            return visit.reply(429, pages::send_code(&visit.facts(), &csrf, &masked, Some("A code was sent moments ago. Please wait a little before asking for another.")));
        }
        Err(_) => return visit.reply(503, pages::for_status(503)),
    }
    let code = new_code();
    let stored = gate.verifier.code_hash(&id, device, &code);
    if gate
        .store
        .kv_put(
            &format!("code:{id}:{device}"),
            stored.as_bytes(),
            CODE_LIFETIME,
        )
        .await
        .is_err()
    {
        return visit.reply(503, pages::for_status(503));
    }
    let facts = visit.facts();
    let mail = CodeMail {
        to: &email,
        document: &facts.name,
        sender: visit.link.created_by.as_deref(),
        code: &code,
    };
    match gate.mailer.send_code(&mail).await {
        Ok(()) => {
            gate.audit.push(id, visit.event("code.sent", "ok"));
            visit.back()
        }
        Err(e) => {
            tracing::error!(link = %id, error = %e, "could not mail a verification code");
            let _ = gate.store.kv_del(&format!("code:{id}:{device}")).await;
            let mut d = visit.event("code.sent", "failed");
            d.reason = Some(e.to_string());
            gate.audit.push(id, d);
            visit.reply(
                502,
                pages::send_code(
                    &visit.facts(),
                    &csrf,
                    &masked,
                    Some(
                        "The code could not be mailed just now. Please try again in a few minutes.",
                    ),
                ),
            )
        }
    }
}

async fn post_verify_code(gate: &Gate, visit: &Visit, device: &str, given: &str) -> Decision {
    let id = visit.link.id;
    let Some(email) = visit.link.recipient.as_ref().and_then(|r| r.email.clone()) else {
        return visit.back();
    };
    let masked = mask_email(&email);
    let key = format!("code:{id}:{device}");
    let csrf = gate.verifier.csrf_token(&id, device);
    let resend = gate.verifier.csrf_token(&id, device);
    let stored = match gate.store.kv_get(&key).await {
        Ok(Some(s)) => String::from_utf8(s).unwrap_or_default(),
        Ok(None) => {
            return visit.reply(
                200,
                pages::send_code(
                    &visit.facts(),
                    &csrf,
                    &masked,
                    Some("That code has expired or was used up. Please ask for a new one."),
                ),
            )
        }
        Err(_) => return visit.reply(503, pages::for_status(503)),
    };
    let attempts = match gate
        .store
        .hit(
            &format!("codetry:{id}:{device}:{}", &stored[..stored.len().min(16)]),
            CODE_LIFETIME,
            1,
        )
        .await
    {
        Ok(n) => n,
        Err(_) => return visit.reply(503, pages::for_status(503)),
    };
    let well_formed = given.len() == 6 && given.bytes().all(|b| b.is_ascii_digit());
    let expected = gate.verifier.code_hash(&id, device, given);
    let matches = well_formed
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            stored.as_bytes(),
        ));
    if attempts > CODE_ATTEMPTS || !matches {
        let mut d = visit.event("code.failed", "failed");
        d.reason = Some(if attempts > CODE_ATTEMPTS {
            "too many attempts".into()
        } else {
            "wrong code".into()
        });
        gate.audit.push(id, d);
        if attempts >= CODE_ATTEMPTS {
            let _ = gate.store.kv_del(&key).await;
            return visit.reply(
                401,
                pages::send_code(&visit.facts(), &csrf, &masked, Some("Too many wrong codes: that code no longer works. Please ask for a new one.")),
            );
        }
        return visit.reply(
            401,
            pages::enter_code(
                &visit.facts(),
                &csrf,
                &resend,
                &masked,
                Some("That code is not right. Please check it and try again."),
            ),
        );
    }
    let _ = gate.store.kv_del(&key).await;
    gate.audit.push(id, visit.event("code.passed", "ok"));
    match trust(gate, visit, device, false).await {
        Ok(()) => {
            let mut d = visit.event("device.trusted", "ok");
            d.detail = Some(serde_json::json!({ "how": "code" }));
            gate.audit.push(id, d);
            visit.back()
        }
        Err(_) => visit.reply(503, pages::for_status(503)),
    }
}
