//! What a recipient's browser meets before the file, for links with a password or a recipient:
//! the password check, device verification (first browser trusted on a POST, others by a mailed
//! 6-digit code), and the landing page the download starts from.
//!
//! `decide` either lets the request through to the proxy (`Pass`) or answers it (`Reply`). A bare
//! GET never changes anything but the browser's own device cookie: trusting a device, sending a
//! code and checking a password all take a POST with a single-use CSRF token, so mail scanners that
//! open links first cannot claim the trusted-device slot. Attempts are capped in the store (so the
//! caps hold across instances) and counted before any hashing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method};
use pingora::proxy::Session;
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::link::{Link, LinkId, LinkState, Right, Variant};
use crate::share::client::{client_of, user_agent_of};
use crate::share::gate::{FormToken, Gate};
use crate::share::i18n::{t, tr, Lang};
use crate::share::mail::CodeMail;
use crate::share::pages::{self, Action, ActionKind, DocumentFacts, LandingDocument, UploadForm};
use crate::share::verify::{
    mask_email, new_code_nonce, new_device_id, ProofError, CHALLENGE_LIFETIME,
};
use crate::state::keys;
use crate::state::{Change, StoreError};

/// Header a non-browser client sends the link password in.
pub const PASSWORD_HEADER: &str = "x-link-password";
/// Header a non-browser client sends a solved proof of work in (`<challenge>:<n>`).
pub const PROOF_HEADER: &str = "x-link-proof";
/// Header of a `429` that asks for a proof of work: `<challenge>; bits=<n>`.
pub const CHALLENGE_HEADER: &str = "x-link-challenge";
const MAX_FORM_BYTES: usize = 16 * 1024;
const PASSWORD_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Checked passwords per link and client address in a window, proven or not. The attempt is
/// taken (one atomic increment in the store) before hashing, so no concurrency gets past it.
const PASSWORD_TRIES_PER_CLIENT: u64 = 5;
/// Checks per link in a window, from all addresses within their own cap, that need no proof of
/// work. Past it every check needs one: a distributed guesser is slowed, never the recipient
/// refused.
const PASSWORD_FREE_PER_LINK: u64 = 50;
/// Difficulty of the proof of work: the first bits past the budget, then one more per
/// [`POW_STEP`] checks past it in the window, up to [`POW_MAX_BITS`]. The page's pure-JS SHA-256
/// ran 0.36-0.49 M hashes/s in headless Chromium on a busy 2-core machine: 2^20 expected hashes
/// take 2-3 s there, some 15 s on a machine five times slower.
const POW_MIN_BITS: u32 = 16;
const POW_MAX_BITS: u32 = 20;
const POW_STEP: u64 = 50;
/// One current code per link. It lives as long as the mail window, so whenever the mail cap is
/// spent, the code in the latest mail still works.
const CODE_LIFETIME: Duration = Duration::from_secs(3600);
const MAIL_WINDOW: Duration = Duration::from_secs(3600);
const CODE_MAILS_PER_LINK: u64 = 10;
const CODE_RESEND_GAP: Duration = Duration::from_secs(30);
/// Checks of one code per browser and per client address; past them that browser or address
/// is refused for this code, and nobody else is affected.
const CODE_TRIES_PER_BROWSER: u64 = 5;
const CODE_TRIES_PER_CLIENT: u64 = 5;
/// Checks of one code from all browsers and addresses within their own caps; past it the code
/// is discarded.
const CODE_TRIES_PER_CODE: u64 = 20;
/// Code checks over a link's whole life: the chance a guesser ever hits is at most 1,000 in a
/// million (0.1 %). Past it no new browser is verified by code; trusted browsers keep working.
const CODE_CHECKS_PER_LINK: u64 = 1000;
const MAX_TRUSTED_DEVICES: usize = 20;

// The stated guessing bounds, checked when this compiles: a 6-digit code's lifetime cap keeps a
// guesser's chance at 0.1 %; one address can spend neither a link's free budget nor one code's
// tries alone; the code in the latest mail outlives the mail window's cap.
const _: () = assert!(CODE_CHECKS_PER_LINK * 1000 <= 1_000_000);
const _: () = assert!(PASSWORD_TRIES_PER_CLIENT < PASSWORD_FREE_PER_LINK);
const _: () = assert!(CODE_TRIES_PER_CLIENT < CODE_TRIES_PER_CODE);
const _: () = assert!(CODE_TRIES_PER_BROWSER < CODE_TRIES_PER_CODE);
const _: () = assert!(CODE_LIFETIME.as_secs() >= MAIL_WINDOW.as_secs());

use crate::share::pages::Reply;

pub enum Decision {
    /// Go on to the file; `view_only` sends it inline whatever the link's rights.
    Pass {
        view_only: bool,
    },
    Reply(Reply),
}

/// What one request brings, read once.
struct Visit {
    link: Arc<Link>,
    /// `/s/{token}`: where forms post and redirects go.
    base: String,
    html: bool,
    /// The pages' language, from `Accept-Language` only.
    lang: Lang,
    /// A form POST (password, trust, codes); an upload POST is not one.
    post: bool,
    download: bool,
    /// A PUT or `POST ?upload`: goes on to the upload once the checks are passed.
    upload: bool,
    /// The request carries a genuine download ticket (`go=`) from the landing page's button.
    ticket: bool,
    /// The request's path and query: where a download button's form posts.
    target: String,
    device: Option<String>,
    new_device: bool,
    client: Option<IpAddr>,
    user_agent: Option<String>,
    cookies: Vec<(&'static str, String)>,
}

impl Visit {
    fn facts(&self) -> DocumentFacts {
        let lang = self.lang;
        let (name, size, media_type) = match self.link.documents.as_slice() {
            [doc] => (
                doc.filename.clone(),
                doc.size,
                Some(crate::share::upload::type_of(&doc.filename)),
            ),
            [] => (t(lang, "file-upload"), None, None),
            docs => (
                tr(
                    lang,
                    "several-documents",
                    &[("count", fluent_bundle::FluentValue::from(docs.len()))],
                ),
                None,
                None,
            ),
        };
        DocumentFacts {
            name,
            size,
            media_type,
            expires: self.link.expires_at,
        }
    }

    /// A page of catalogue messages `{id}-title` and `{id}-text`.
    fn notice(&self, status: u16, id: &str) -> Decision {
        self.reply(status, pages::notice(self.lang, id))
    }

    /// The page for `status` (503 and the like).
    fn status(&self, status: u16) -> Decision {
        self.reply(status, pages::for_status(self.lang, status))
    }

    /// The landing page: who shared what, each document with a button per granted variant, and
    /// the upload form.
    fn landing(&self, gate: &Gate, view_only: bool, extras: &Extras) -> Bytes {
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
                        let kind = match (v, view_only) {
                            (_, true) | (Variant::View, _) => ActionKind::View,
                            (Variant::Original, _) => ActionKind::Download,
                            (Variant::Rendition(name), _) => ActionKind::Rendition(name.clone()),
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
                        Action { kind, href }
                    })
                    .collect();
                let media_type = crate::share::upload::type_of(&doc.filename);
                LandingDocument {
                    name: doc.filename.clone(),
                    size: doc.size,
                    media_type,
                    thumbnail: pages::thumbnail_url(&self.base, i + 1, media_type),
                    actions,
                }
            })
            .collect();
        let upload = (self.link.allows(&Right::Upload) && !view_only).then(|| UploadForm {
            action: format!("{}?upload", self.base),
            csrf: self.link.has_checks().then(|| {
                gate.checks
                    .verifier
                    .csrf_token(&self.link.id, self.device.as_deref().unwrap_or(""))
            }),
            rules: crate::share::upload::Rules::for_link(&self.link, &gate.policy),
            received: self.link.uploads,
        });
        // A limited link no check protects: downloads start only from a button press (a POST,
        // one single-use form token per button), so a scanner that follows the page's links uses
        // nothing up.
        let form_token = || {
            gate.checks
                .verifier
                .csrf_token(&self.link.id, self.form_device())
        };
        let button_csrf: Option<&dyn Fn() -> String> = if self.link.needs_button() {
            Some(&form_token)
        } else {
            None
        };
        let page = pages::landing(
            self.lang,
            &pages::Landing {
                expires: self.link.expires_at,
                sender: extras.sender.clone(),
                message: extras.message.clone(),
                downloads_left: extras.downloads_left,
                documents: &documents,
                upload: upload.as_ref(),
                view_only,
                button_csrf,
            },
        );
        let review_token = || {
            gate.checks
                .verifier
                .csrf_token(&self.link.id, self.form_device())
        };
        let device = self.device.as_deref().unwrap_or("");
        pages::with_section(
            page,
            &crate::share::review::section(
                self.lang,
                &self.link,
                device,
                &self.base,
                &review_token,
            ),
        )
    }

    /// The device a form's CSRF token is bound to: the browser's, on links that give browsers a
    /// device cookie (checks or reviews); none otherwise.
    fn form_device(&self) -> &str {
        if self.link.has_checks() || self.link.takes_comments() {
            self.device.as_deref().unwrap_or("")
        } else {
            ""
        }
    }

    fn event(&self, kind: &str, outcome: &str) -> Draft {
        let mut d = Draft::of_request(
            kind,
            outcome,
            self.client.map(|c| c.to_string()),
            self.user_agent.clone(),
        );
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
        self.see_other(self.base.clone())
    }

    /// A `303 See Other` to `location`, with the cookies this visit sets.
    fn see_other(&self, location: String) -> Decision {
        let mut headers = vec![
            ("location", location),
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

/// What the landing page shows beyond the link itself: the share's sender and message, and the
/// downloads left. Each is left out (and logged) when the store cannot say.
#[derive(Default)]
struct Extras {
    sender: Option<String>,
    message: Option<String>,
    downloads_left: Option<u64>,
}

async fn extras(gate: &Gate, link: &Link) -> Extras {
    let mut out = Extras {
        sender: link.created_by.clone(),
        ..Extras::default()
    };
    if let Some(share) = link.share.as_deref().and_then(LinkId::parse) {
        match gate.links.store.get_share(share).await {
            Ok(Some(share)) => {
                if let Some(name) = share.sender.display() {
                    out.sender = Some(name.to_string());
                }
                out.message = share.message.filter(|m| !m.trim().is_empty());
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(link = %link.id, error = %e, "could not read the link's share for its landing page")
            }
        }
    }
    if let Some(max) = link.max_downloads {
        match gate.downloads_used(link).await {
            Ok(used) => out.downloads_left = Some(max.saturating_sub(used)),
            Err(e) => {
                tracing::warn!(link = %link.id, error = %e, "could not read the link's downloads for its landing page")
            }
        }
    }
    out
}

/// Whether a query asks for the download itself (`?download`, the landing page's buttons).
pub fn is_download(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "download" || p.starts_with("download="))
    })
}

pub fn wants_html(session: &Session) -> bool {
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
    while let Some(chunk) = crate::share::guard::read_body(session).await? {
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
    crate::model::urlencoded::pairs(text).collect()
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
    let upload = crate::share::upload::is_upload(req);
    let mut visit = Visit {
        html: wants_html(session),
        lang: Lang::of(&req.headers),
        post: req.method == Method::POST && !upload,
        upload,
        download: is_download(req.uri.query()),
        ticket: false,
        target: req
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        device: gate.checks.verifier.device_of(&req.headers),
        new_device: false,
        client,
        user_agent: user_agent_of(session),
        cookies: Vec::new(),
        link,
        base,
    };
    if visit.download && visit.link.needs_button() {
        // A pressed button's download ticket, or the page ticket of a counted view (the viewer's
        // zoom links: the same view again, not a new download).
        visit.ticket = req.uri.query().is_some_and(|q| {
            q.split('&').any(|p| {
                p.strip_prefix("go=")
                    .is_some_and(|t| gate.checks.verifier.check_download_ticket(t, &visit.link))
                    || p.strip_prefix("pt=")
                        .is_some_and(|t| gate.checks.verifier.check_page_ticket(t, &visit.link))
            })
        });
    }
    // A browser's download of a limited link without a ticket gets the landing page: only the
    // button starts a download.
    let pressed = !visit.link.needs_button() || visit.ticket;
    let rendering = visit.post || (visit.html && !(visit.download && pressed) && !visit.upload);
    if rendering {
        if let Some(ip) = client {
            if !gate.checks.page_limiter.allows(ip) {
                let mut d = visit.status(429);
                if let Decision::Reply(r) = &mut d {
                    r.headers.push(("retry-after", "30".to_string()));
                }
                return Ok(d);
            }
        }
    }
    if visit.html
        && visit.device.is_none()
        && (visit.link.has_checks() || visit.link.takes_comments())
    {
        let id = new_device_id();
        visit
            .cookies
            .push(("set-cookie", gate.checks.verifier.device_cookie(&id)));
        visit.device = Some(id);
        visit.new_device = true;
    }
    if visit.post {
        let passed = checks_passed(gate, session, &visit);
        return Ok(match read_form(session).await? {
            Some(form) => post(gate, &visit, &form, passed).await,
            None => visit.notice(400, "form-unreadable"),
        });
    }
    if let Some(d) = password_gate(gate, session, &visit).await {
        return Ok(d);
    }
    let view_only = match device_gate(gate, &visit).await {
        Ok(view_only) => view_only,
        Err(d) => return Ok(d),
    };
    if visit.html && !(visit.download && pressed) && !visit.upload {
        gate.audit
            .push(visit.link.id, visit.event("page.viewed", "ok"));
        let extras = extras(gate, &visit.link).await;
        return Ok(visit.reply(200, visit.landing(gate, view_only, &extras)));
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
    if gate.checks.verifier.passed(headers, &visit.link) {
        return None;
    }
    if visit.html {
        let csrf = gate
            .checks
            .verifier
            .csrf_token(&visit.link.id, visit.device.as_deref().unwrap_or(""));
        return Some(match work_needed(gate, &visit.link).await {
            Ok(work) => visit.reply(200, password_page(visit, &csrf, None, work.as_ref())),
            Err(e) => {
                tracing::error!(link = %visit.link.id, error = %e, "link store failed while showing a password form");
                visit.status(503)
            }
        });
    }
    let Some(given) = headers.get(PASSWORD_HEADER).and_then(|v| v.to_str().ok()) else {
        return Some(visit.text(
            401,
            "This link is protected by a password. Open it in a browser, or send the password in the X-Link-Password header \
             (curl -H 'X-Link-Password: ...' URL).",
            &[],
        ));
    };
    let proof = headers.get(PROOF_HEADER).and_then(|v| v.to_str().ok());
    match check_password(gate, visit, hash, given, proof).await {
        PasswordOutcome::Passed => None,
        PasswordOutcome::Wrong => Some(visit.text(401, "Wrong password.", &[])),
        PasswordOutcome::Throttled => Some(visit.text(
            429,
            "Too many wrong passwords from your address. Try again later.",
            &[("retry-after", PASSWORD_WINDOW.as_secs().to_string())],
        )),
        PasswordOutcome::NeedsWork(work) => Some(visit.text(
            429,
            &format!(
                "Many wrong passwords were tried on this link lately, so a proof of work is needed before a password is checked.\n\
                 Find n such that SHA-256(\"<challenge>:<n>\") starts with {bits} zero bits, where the challenge is in the X-Link-Challenge \
                 header, then send the request again with X-Link-Proof: <challenge>:<n> (each challenge works once, for 10 minutes). \
                 For example:\n\n  python3 -c '{SOLVER}' '{challenge}' {bits}",
                bits = work.bits,
                challenge = work.challenge
            ),
            &[(CHALLENGE_HEADER, format!("{}; bits={}", work.challenge, work.bits))],
        )),
        PasswordOutcome::BadProof => Some(visit.text(400, "The X-Link-Proof header is not a solved challenge of this link.", &[])),
        PasswordOutcome::Unavailable => Some(visit.text(503, "The service is temporarily unavailable.", &[])),
    }
}

/// A Python one-liner that solves a challenge: `python3 -c '…' CHALLENGE BITS` prints the proof.
pub const SOLVER: &str = "import hashlib,itertools,sys;c,b=sys.argv[1],int(sys.argv[2]);\
print(next(f\"{c}:{n}\" for n in itertools.count() if int.from_bytes(hashlib.sha256(f\"{c}:{n}\".encode()).digest(),\"big\")>>(256-b)==0))";

/// A proof of work asked of the client.
struct Work {
    challenge: String,
    bits: u32,
}

enum PasswordOutcome {
    Passed,
    Wrong,
    /// This address used its tries in the window.
    Throttled,
    /// Past the link's budget: a proof of work is needed first (a fresh challenge).
    NeedsWork(Work),
    /// A proof that is not a solved challenge of this link.
    BadProof,
    Unavailable,
}

fn password_page(visit: &Visit, csrf: &str, error: Option<&str>, work: Option<&Work>) -> Bytes {
    let work = work.map(|w| pages::Work {
        challenge: &w.challenge,
        bits: w.bits,
    });
    pages::password_form(visit.lang, &visit.facts(), csrf, error, work.as_ref())
}

/// How hard the proof of work is once a link's checks in this window reached `checks`: the
/// first bits at the budget, one more per [`POW_STEP`] checks past it, never above the cap.
fn pow_bits(checks: u64) -> u32 {
    let past = checks.saturating_sub(PASSWORD_FREE_PER_LINK) / POW_STEP;
    POW_MIN_BITS
        .saturating_add(u32::try_from(past).unwrap_or(u32::MAX))
        .min(POW_MAX_BITS)
}

/// Whether a password check may run without a proof of work: while the link's free budget of
/// this window lasts (`checks` counts this one).
fn free_check(checks: u64) -> bool {
    checks <= PASSWORD_FREE_PER_LINK
}

/// The challenge for a link that `checks` checks (this window) have reached.
fn work_for(gate: &Gate, link: &Link, checks: u64) -> Work {
    let bits = pow_bits(checks);
    Work {
        challenge: gate.checks.verifier.challenge(link, bits),
        bits,
    }
}

/// `Some(work)` once the link's proof-free budget of this window is spent.
async fn work_needed(gate: &Gate, link: &Link) -> Result<Option<Work>, StoreError> {
    let checks = gate
        .links
        .store
        .hit(&keys::password_tries(link.id), PASSWORD_WINDOW, 0)
        .await?;
    // The next check would be `checks + 1`.
    Ok((!free_check(checks + 1)).then(|| work_for(gate, link, checks)))
}

/// Takes the attempt (atomically, before any hashing), then checks the password. Every store
/// failure answers `Unavailable` and checks nothing.
async fn check_password(
    gate: &Gate,
    visit: &Visit,
    hash: &str,
    given: &str,
    proof: Option<&str>,
) -> PasswordOutcome {
    let id = visit.link.id;
    if given.len() <= 1024 && gate.checks.verifier.remembered(&visit.link, given) {
        // The right password again (a script sends it with every request): nothing to guess.
        gate.audit.push(id, visit.event("password.passed", "ok"));
        return PasswordOutcome::Passed;
    }
    let refused = |reason: &str| {
        let mut d = visit.event("password.failed", "refused");
        d.reason = Some(reason.into());
        gate.audit.push(id, d);
    };
    let admitted = async {
        let per_client = keys::password_tries_from(id, &visit.client_key());
        let per_link = keys::password_tries(id);
        let proven = match proof.filter(|p| !p.is_empty()) {
            None => false,
            Some(proof) => {
                // A used or expired proof gets a fresh challenge; a forged one gets nothing.
                let stale = match gate.checks.verifier.check_proof(&visit.link, proof) {
                    Ok(nonce) => (!gate
                        .links
                        .store
                        .once(&keys::proof_of_work(id, nonce), CHALLENGE_LIFETIME)
                        .await?)
                        .then_some("proof of work used already"),
                    Err(ProofError::Expired) => Some("proof of work expired"),
                    Err(ProofError::Invalid) => {
                        refused("invalid proof of work");
                        return Ok(PasswordOutcome::BadProof);
                    }
                };
                if let Some(reason) = stale {
                    refused(reason);
                    let checks = gate.links.store.hit(&per_link, PASSWORD_WINDOW, 0).await?;
                    return Ok(PasswordOutcome::NeedsWork(work_for(
                        gate,
                        &visit.link,
                        checks,
                    )));
                }
                true
            }
        };
        if !proven {
            // Read first, so that asking for the challenge costs the recipient no try.
            if let Some(work) = work_needed(gate, &visit.link).await? {
                refused("proof of work needed");
                return Ok(PasswordOutcome::NeedsWork(work));
            }
        }
        // One atomic increment answers whether this attempt is within the address's cap:
        // of any number of parallel guesses, exactly the first five are checked.
        if gate
            .links
            .store
            .hit(&per_client, PASSWORD_WINDOW, 1)
            .await?
            > PASSWORD_TRIES_PER_CLIENT
        {
            refused("too many attempts");
            return Ok(PasswordOutcome::Throttled);
        }
        // Only an address within its own cap spends the link's budget: one address never
        // affects another.
        let checks = gate.links.store.hit(&per_link, PASSWORD_WINDOW, 1).await?;
        if !proven && !free_check(checks) {
            refused("proof of work needed");
            return Ok(PasswordOutcome::NeedsWork(work_for(
                gate,
                &visit.link,
                checks,
            )));
        }
        Ok::<_, StoreError>(PasswordOutcome::Passed)
    };
    match admitted.await {
        Ok(PasswordOutcome::Passed) => {}
        Ok(other) => return other,
        Err(e) => {
            tracing::error!(link = %id, error = %e, "link store failed while checking a password");
            return PasswordOutcome::Unavailable;
        }
    }
    if given.len() <= 1024 && gate.checks.verifier.check_password(hash, given).await {
        gate.checks.verifier.remember(&visit.link, given);
        gate.audit.push(id, visit.event("password.passed", "ok"));
        return PasswordOutcome::Passed;
    }
    gate.audit
        .push(id, visit.event("password.failed", "failed"));
    PasswordOutcome::Wrong
}

/// The link's current code: (nonce, unix second it expires); `None` when there is none.
async fn current_code(gate: &Gate, id: &LinkId) -> Result<Option<(String, i64)>, StoreError> {
    let Some(raw) = gate.links.store.kv_get(&keys::code(*id)).await? else {
        return Ok(None);
    };
    Ok(parse_code(&raw))
}

fn parse_code(raw: &[u8]) -> Option<(String, i64)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (nonce, until) = text.split_once(':')?;
    Some((nonce.to_string(), until.parse().ok()?))
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `14:05 UTC` for a code's expiry.
fn clock(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[hour]:[minute] UTC"))
                .ok()
        })
        .unwrap_or_else(|| "within the hour".to_string())
}

/// `Ok(view_only)` when the browser may go on; `Err(answer)` otherwise.
async fn device_gate(gate: &Gate, visit: &Visit) -> Result<bool, Decision> {
    let Some(recipient) = &visit.link.recipient else {
        return Ok(false);
    };
    if !visit.html {
        return Err(visit.text(403, &t(visit.lang, "recipient-browser-only"), &[]));
    }
    let Some(email) = &recipient.email else {
        // No address to verify against: every browser may view, none may download.
        return Ok(true);
    };
    let device = visit.device.as_deref().unwrap_or("");
    if visit.link.trusted_devices.iter().any(|d| d == device) {
        return Ok(false);
    }
    let csrf = gate.checks.verifier.csrf_token(&visit.link.id, device);
    if visit.link.trusted_devices.is_empty() && !recipient.require_code {
        return Err(visit.reply(
            200,
            pages::confirm_device(visit.lang, &visit.facts(), &csrf),
        ));
    }
    // Fail closed: a store that cannot say whether codes may still be tried or which code is
    // current answers 503, never a guess.
    let state = async {
        let checks = gate
            .links
            .store
            .tally(&keys::code_checks(visit.link.id), 0)
            .await?;
        Ok::<_, StoreError>((checks, current_code(gate, &visit.link.id).await?))
    };
    let (checks, current) = match state.await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(link = %visit.link.id, error = %e, "link store failed while showing a device check");
            return Err(visit.status(503));
        }
    };
    if checks >= CODE_CHECKS_PER_LINK {
        return Err(visit.reply(
            403,
            pages::no_more_codes(visit.lang, &visit.facts(), visit.link.created_by.as_deref()),
        ));
    }
    let masked = mask_email(email);
    if let Some((_, until)) = current {
        let resend = gate.checks.verifier.csrf_token(&visit.link.id, device);
        return Err(visit.reply(
            200,
            pages::enter_code(
                visit.lang,
                &visit.facts(),
                &csrf,
                &resend,
                &masked,
                until,
                None,
            ),
        ));
    }
    let first = visit.link.trusted_devices.is_empty();
    Err(visit.reply(
        200,
        pages::send_code(visit.lang, &visit.facts(), &csrf, &masked, first, None),
    ))
}

/// A form: checked for its CSRF token (single use), then its action.
async fn post(gate: &Gate, visit: &Visit, form: &[(String, String)], passed: bool) -> Decision {
    let id = visit.link.id;
    let device = visit.device.clone().unwrap_or_default();
    let spent = match (field(form, "csrf"), visit.new_device) {
        (Some(token), false) => gate.spend_csrf(token, &id, visit.form_device()).await,
        _ => Ok(FormToken::Invalid),
    };
    match spent {
        Ok(FormToken::Fresh) => {}
        Ok(FormToken::Invalid) => return visit.notice(403, "form-expired"),
        Ok(FormToken::Spent) => return visit.notice(403, "form-spent"),
        Err(_) => return visit.status(503),
    }
    match field(form, "action") {
        Some("download") => post_download(gate, visit),
        Some("password") => post_password(gate, visit, form).await,
        Some("trust") => post_trust(gate, visit, &device).await,
        Some("send_code") => post_send_code(gate, visit, &device).await,
        Some("verify_code") => {
            post_verify_code(gate, visit, &device, field(form, "code").unwrap_or("")).await
        }
        Some(action @ ("comment" | "decide")) => {
            post_review(gate, visit, form, action, &device, passed).await
        }
        _ => visit.notice(400, "form-unreadable"),
    }
}

async fn post_password(gate: &Gate, visit: &Visit, form: &[(String, String)]) -> Decision {
    let Some(hash) = &visit.link.password_hash else {
        return visit.back();
    };
    let given = field(form, "password").unwrap_or("");
    let csrf = gate
        .checks
        .verifier
        .csrf_token(&visit.link.id, visit.device.as_deref().unwrap_or(""));
    match check_password(gate, visit, hash, given, field(form, "proof")).await {
        PasswordOutcome::Passed => {
            let mut v = visit.cookies.clone();
            v.push((
                "set-cookie",
                gate.checks.verifier.pass_cookie(&visit.link, &visit.base),
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
        PasswordOutcome::Wrong => {
            // The next form needs work too once the budget is spent meanwhile.
            let work = match work_needed(gate, &visit.link).await {
                Ok(work) => work,
                Err(_) => return visit.status(503),
            };
            visit.reply(
                401,
                password_page(
                    visit,
                    &csrf,
                    Some(&t(visit.lang, "password-wrong")),
                    work.as_ref(),
                ),
            )
        }
        PasswordOutcome::Throttled => visit.reply(
            429,
            password_page(
                visit,
                &csrf,
                Some(&t(visit.lang, "password-throttled")),
                None,
            ),
        ),
        PasswordOutcome::NeedsWork(work) => visit.reply(
            429,
            password_page(
                visit,
                &csrf,
                Some(&t(visit.lang, "password-needs-work")),
                Some(&work),
            ),
        ),
        PasswordOutcome::BadProof => match work_needed(gate, &visit.link).await {
            Ok(work) => visit.reply(
                400,
                password_page(
                    visit,
                    &csrf,
                    Some(&t(visit.lang, "password-bad-proof")),
                    work.as_ref(),
                ),
            ),
            Err(_) => visit.status(503),
        },
        PasswordOutcome::Unavailable => visit.status(503),
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
    let result = gate.links.store.update(visit.link.id, change).await;
    gate.links.cache.invalidate(&visit.link.id);
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
        Err(_) => return visit.status(503),
    }
    // Either trusted now, or another browser won the race: the link page says which.
    visit.back()
}

async fn post_send_code(gate: &Gate, visit: &Visit, device: &str) -> Decision {
    let Some(email) = visit.link.recipient.as_ref().and_then(|r| r.email.clone()) else {
        return visit.back();
    };
    let id = visit.link.id;
    let csrf = gate.checks.verifier.csrf_token(&id, device);
    let masked = mask_email(&email);
    // No browser verified yet (a `require_code` link opened for the first time): the pages do
    // not speak of another browser.
    let first = visit.link.trusted_devices.is_empty();
    let refused = |reason: &str| {
        let mut d = visit.event("code.sent", "refused");
        d.reason = Some(reason.into());
        gate.audit.push(id, d);
    };
    // The code box when a code is current, otherwise the button; `status` and `notice` either way.
    let page = |status: u16, current: Option<i64>, notice: &str| match current {
        Some(until) => {
            let resend = gate.checks.verifier.csrf_token(&id, device);
            visit.reply(
                status,
                pages::enter_code(
                    visit.lang,
                    &visit.facts(),
                    &csrf,
                    &resend,
                    &masked,
                    until,
                    Some(notice),
                ),
            )
        }
        None => visit.reply(
            status,
            pages::send_code(
                visit.lang,
                &visit.facts(),
                &csrf,
                &masked,
                first,
                Some(notice),
            ),
        ),
    };
    let state = async {
        let checks = gate.links.store.tally(&keys::code_checks(id), 0).await?;
        Ok::<_, StoreError>((checks, current_code(gate, &id).await?))
    };
    let (checks, current) = match state.await {
        Ok(s) => s,
        Err(_) => return visit.status(503),
    };
    if checks >= CODE_CHECKS_PER_LINK {
        refused("the link's lifetime limit of code checks is used up: no new browser can be verified by code");
        return visit.reply(
            403,
            pages::no_more_codes(visit.lang, &visit.facts(), visit.link.created_by.as_deref()),
        );
    }
    let current_until = current.as_ref().map(|(_, until)| *until);
    match gate
        .links
        .store
        .hit(&keys::code_sends_by(id, device), CODE_RESEND_GAP, 1)
        .await
    {
        Ok(1) => {}
        Ok(_) => {
            refused("resend throttled");
            // The code this browser asked for moments ago may have been stored after the read
            // above (two presses in flight): read it again, so the code box is always offered
            // while a code is current.
            let current_until = match current_until {
                Some(until) => Some(until),
                None => match current_code(gate, &id).await {
                    Ok(current) => current.map(|(_, until)| until),
                    Err(_) => return visit.status(503),
                },
            };
            return page(429, current_until, &t(visit.lang, "code-resend-throttled"));
        }
        Err(_) => return visit.status(503),
    }
    match gate
        .links
        .store
        .hit(&keys::code_mails(id), MAIL_WINDOW, 1)
        .await
    {
        Ok(n) if n <= CODE_MAILS_PER_LINK => {}
        Ok(_) => {
            refused("mail cap reached");
            return page(
                429,
                current_until,
                &format!(
                    "{} {}",
                    tr(
                        visit.lang,
                        "code-mail-cap",
                        &[
                            (
                                "count",
                                fluent_bundle::FluentValue::from(CODE_MAILS_PER_LINK)
                            ),
                            ("email", fluent_bundle::FluentValue::from(masked.as_str())),
                        ]
                    ),
                    t(
                        visit.lang,
                        if current_until.is_some() {
                            "code-mail-cap-current"
                        } else {
                            "code-mail-cap-later"
                        }
                    )
                ),
            );
        }
        Err(_) => return visit.status(503),
    }
    // One current code per link: a browser asking while a code is valid gets the same code
    // again, so a flood of requests cannot use up the recipient's chances.
    let minted = format!(
        "{}:{}",
        new_code_nonce(),
        now_secs() + CODE_LIFETIME.as_secs() as i64
    );
    let (stored, fresh) = match gate
        .links
        .store
        .kv_put_new(&keys::code(id), minted.as_bytes(), CODE_LIFETIME)
        .await
    {
        Ok(Some(existing)) => (existing, false),
        Ok(None) => (minted.into_bytes(), true),
        Err(_) => return visit.status(503),
    };
    let Some((nonce, until)) = parse_code(&stored) else {
        tracing::error!(link = %id, "the stored code is unreadable");
        return visit.status(503);
    };
    let Some(code) = gate.checks.verifier.code_of(&id, &nonce) else {
        return visit.status(503);
    };
    let facts = visit.facts();
    let valid_until = clock(until);
    let mail = CodeMail {
        to: &email,
        document: &facts.name,
        sender: visit.link.created_by.as_deref(),
        code: &code,
        valid_until: &valid_until,
    };
    match gate.checks.mailer.send_code(&mail).await {
        Ok(()) => {
            let mut d = visit.event("code.sent", "ok");
            d.detail =
                Some(serde_json::json!({ "code": if fresh { "new" } else { "sent again" } }));
            gate.audit.push(id, d);
            visit.back()
        }
        Err(e) => {
            tracing::error!(link = %id, error = %e, "could not mail a verification code");
            if fresh {
                // Nobody got this code: the next request mints and mails one again.
                if let Err(e) = gate.links.store.kv_del(&keys::code(id)).await {
                    tracing::warn!(link = %id, error = %e, "could not drop a code that was never mailed");
                }
            }
            let mut d = visit.event("code.sent", "failed");
            d.reason = Some(e.to_string());
            gate.audit.push(id, d);
            visit.reply(
                502,
                pages::send_code(
                    visit.lang,
                    &visit.facts(),
                    &csrf,
                    &masked,
                    first,
                    Some(&t(visit.lang, "code-mail-failed")),
                ),
            )
        }
    }
}

/// What a code check came to before the comparison.
enum CodeTry {
    Check {
        nonce: String,
        until: i64,
        last_for_browser: bool,
    },
    NoCode,
    /// This browser or address used its tries for the current code.
    Refused(&'static str),
    /// The code took its last try from everyone: it is discarded.
    Discarded,
    /// The link's lifetime bound is reached.
    Exhausted,
}

/// Takes one try at the current code, atomically and before comparing: per address, per
/// browser, per code (only tries within the first two caps count) and over the link's life.
async fn take_code_try(gate: &Gate, visit: &Visit, device: &str) -> Result<CodeTry, StoreError> {
    let id = visit.link.id;
    let Some((nonce, until)) = current_code(gate, &id).await? else {
        return Ok(CodeTry::NoCode);
    };
    let per_client = keys::code_tries_from(id, &nonce, &visit.client_key());
    if gate.links.store.hit(&per_client, CODE_LIFETIME, 1).await? > CODE_TRIES_PER_CLIENT {
        return Ok(CodeTry::Refused("too many attempts from this address"));
    }
    let per_browser = gate
        .links
        .store
        .hit(&keys::code_tries_by(id, &nonce, device), CODE_LIFETIME, 1)
        .await?;
    if per_browser > CODE_TRIES_PER_BROWSER {
        return Ok(CodeTry::Refused("too many attempts in this browser"));
    }
    let per_code = gate
        .links
        .store
        .hit(&keys::code_tries(id, &nonce), CODE_LIFETIME, 1)
        .await?;
    if per_code > CODE_TRIES_PER_CODE {
        if per_code == CODE_TRIES_PER_CODE + 1 {
            gate.links.store.kv_del(&keys::code(id)).await?;
        }
        return Ok(CodeTry::Discarded);
    }
    if gate.links.store.tally(&keys::code_checks(id), 1).await? > CODE_CHECKS_PER_LINK {
        return Ok(CodeTry::Exhausted);
    }
    Ok(CodeTry::Check {
        nonce,
        until,
        last_for_browser: per_browser == CODE_TRIES_PER_BROWSER,
    })
}

async fn post_verify_code(gate: &Gate, visit: &Visit, device: &str, given: &str) -> Decision {
    let id = visit.link.id;
    let Some(email) = visit.link.recipient.as_ref().and_then(|r| r.email.clone()) else {
        return visit.back();
    };
    let masked = mask_email(&email);
    let csrf = gate.checks.verifier.csrf_token(&id, device);
    let failed = |outcome: &str, reason: &str| {
        let mut d = visit.event("code.failed", outcome);
        d.reason = Some(reason.into());
        gate.audit.push(id, d);
    };
    let (nonce, until, last_for_browser) = match take_code_try(gate, visit, device).await {
        Ok(CodeTry::Check {
            nonce,
            until,
            last_for_browser,
        }) => (nonce, until, last_for_browser),
        Ok(CodeTry::NoCode) => {
            return visit.reply(
                200,
                pages::send_code(
                    visit.lang,
                    &visit.facts(),
                    &csrf,
                    &masked,
                    visit.link.trusted_devices.is_empty(),
                    Some(&t(visit.lang, "code-expired")),
                ),
            )
        }
        Ok(CodeTry::Refused(reason)) => {
            failed("refused", reason);
            return visit.notice(429, "code-too-many");
        }
        Ok(CodeTry::Discarded) => {
            failed("refused", "code discarded after too many attempts");
            return visit.reply(
                401,
                pages::send_code(
                    visit.lang,
                    &visit.facts(),
                    &csrf,
                    &masked,
                    visit.link.trusted_devices.is_empty(),
                    Some(&t(visit.lang, "code-discarded")),
                ),
            );
        }
        Ok(CodeTry::Exhausted) => {
            failed("refused", "the link's lifetime limit of code checks is used up: no new browser can be verified by code");
            return visit.reply(
                403,
                pages::no_more_codes(visit.lang, &visit.facts(), visit.link.created_by.as_deref()),
            );
        }
        Err(e) => {
            tracing::error!(link = %id, error = %e, "link store failed while checking a code");
            return visit.status(503);
        }
    };
    let Some(expected) = gate.checks.verifier.code_of(&id, &nonce) else {
        return visit.status(503);
    };
    let well_formed = given.len() == 6 && given.bytes().all(|b| b.is_ascii_digit());
    if !(well_formed
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )))
    {
        failed("failed", "wrong code");
        if last_for_browser {
            return visit.notice(401, "code-last-try");
        }
        let resend = gate.checks.verifier.csrf_token(&id, device);
        return visit.reply(
            401,
            pages::enter_code(
                visit.lang,
                &visit.facts(),
                &csrf,
                &resend,
                &masked,
                until,
                Some(&t(visit.lang, "code-wrong")),
            ),
        );
    }
    // A code verifies one browser: spend it before trusting (a failure leaves it unspent and
    // trusts nothing).
    if gate.links.store.kv_del(&keys::code(id)).await.is_err() {
        return visit.status(503);
    }
    gate.audit.push(id, visit.event("code.passed", "ok"));
    match trust(gate, visit, device, false).await {
        Ok(()) => {
            let mut d = visit.event("device.trusted", "ok");
            d.detail = Some(serde_json::json!({ "how": "code" }));
            gate.audit.push(id, d);
            visit.back()
        }
        Err(_) => visit.status(503),
    }
}

/// Whether this browser passed the link's checks (password proven, device trusted where the
/// recipient has an address): the review forms are taken only then.
fn checks_passed(gate: &Gate, session: &Session, visit: &Visit) -> bool {
    let link = &visit.link;
    let password = link.password_hash.is_none()
        || gate
            .checks
            .verifier
            .passed(&session.req_header().headers, link);
    let device = match link.recipient.as_ref().and_then(|r| r.email.as_ref()) {
        None => true,
        Some(_) => visit
            .device
            .as_deref()
            .is_some_and(|d| link.trusted_devices.iter().any(|t| t == d)),
    };
    password && device && !visit.new_device
}

/// A review form (comment or decision), after its CSRF token was spent.
async fn post_review(
    gate: &Gate,
    visit: &Visit,
    form: &[(String, String)],
    action: &str,
    device: &str,
    passed: bool,
) -> Decision {
    use crate::share::review;
    if !passed {
        return visit.notice(403, "review-closed");
    }
    let outcome = match review::parse(action, field(form, "comment"), field(form, "decision")) {
        Ok(ask) => {
            review::record(gate, &visit.link, device, ask, visit.event("review", "ok")).await
        }
        Err(refused) => Err(refused),
    };
    match outcome {
        Ok("decision") => visit.reply(
            200,
            pages::notice_with_back(
                visit.lang,
                &t(visit.lang, "decision-recorded-title"),
                &t(visit.lang, "decision-recorded-text"),
                &visit.base,
            ),
        ),
        Ok(_) => visit.reply(
            200,
            pages::notice_with_back(
                visit.lang,
                &t(visit.lang, "comment-sent-title"),
                &t(visit.lang, "comment-sent-text"),
                &visit.base,
            ),
        ),
        Err(refused) => {
            let (status, title, text) = refused.page(visit.lang);
            visit.reply(
                status,
                pages::notice_with_back(visit.lang, &title, &text, &visit.base),
            )
        }
    }
}

/// The landing page's download button of a limited link: back to the same address with a
/// download ticket, which the browser then fetches (and may resume) with a GET.
fn post_download(gate: &Gate, visit: &Visit) -> Decision {
    if !visit.link.needs_button() || !visit.download {
        return visit.back();
    }
    let kept: Vec<&str> = visit
        .target
        .split_once('?')
        .map(|(_, q)| {
            q.split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("go="))
                .collect()
        })
        .unwrap_or_default();
    let location = format!(
        "{}?{}&go={}",
        visit.base,
        kept.join("&"),
        gate.checks.verifier.download_ticket(&visit.link)
    );
    visit.see_other(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_of_work_starts_at_the_budget_and_grows_to_a_cap() {
        assert!(free_check(PASSWORD_FREE_PER_LINK));
        assert!(!free_check(PASSWORD_FREE_PER_LINK + 1));
        assert_eq!(pow_bits(PASSWORD_FREE_PER_LINK + 1), POW_MIN_BITS);
        assert_eq!(
            pow_bits(PASSWORD_FREE_PER_LINK + POW_STEP),
            POW_MIN_BITS + 1
        );
        assert_eq!(pow_bits(u64::MAX), POW_MAX_BITS, "capped, never overflows");
        let mut last = 0;
        for checks in (0..10_000).step_by(7) {
            let bits = pow_bits(checks);
            assert!(bits >= last && (POW_MIN_BITS..=POW_MAX_BITS).contains(&bits));
            last = bits;
        }
    }

    #[test]
    fn form_bodies_decode_or_are_refused_whole() {
        assert_eq!(
            parse_form(b"password=a+b%26c&csrf=x"),
            Some(vec![
                ("password".into(), "a b&c".into()),
                ("csrf".into(), "x".into())
            ])
        );
        assert_eq!(parse_form(b"a=%FF"), None);
        assert_eq!(parse_form(&[0xff]), None, "not UTF-8");
        assert_eq!(parse_form(b""), Some(vec![]));
    }
}
