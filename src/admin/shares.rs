//! Shares: `POST /v1/shares` creates one link per recipient through the same code as
//! `POST /v1/links` and mails each recipient their own link; reading, history per document,
//! re-sending, revoking one recipient and cancelling the whole share.
//!
//! Creation writes, in order: the share record marked incomplete, each recipient's link, then the
//! record marked complete; only a complete share is mailed. If the link state fails midway, the
//! links already written are cancelled (best effort) and the share is marked cancelled by
//! `linkgate`; a record the store would not let us mark stays `incomplete` (shown so by the API;
//! `DELETE /v1/shares/{id}` cancels whatever links it got). Nothing of an unfinished share was
//! mailed or answered, so none of its links is known to anyone.
//!
//! Mail goes out in a task of its own (at most [`MAIL_PARALLEL`] at a time), so a slow relay
//! never holds the link state or other calls; the call waits for it up to [`MAIL_WAIT`] and
//! answers with each recipient's delivery as it then stands: `sent`, `pending` (being sent, or
//! waiting to be retried after a failure) or `failed` (given up, with the relay's reason).
//!
//! Delivery is durable: each recipient's mail is a job in the link state's mail queue
//! (`LinkStore::mail_hold`), held by the creating call while it sends and settled only once the
//! outcome is on the share. A [`MailSweeper`] in every gateway leases the jobs that fall due (a
//! retry after its backoff, or a job whose holder died), so nothing is lost across restarts, two
//! instances never mail the same job at once, and a crash between the relay's acceptance and
//! the write can cause one duplicate (at least once). See docs/shares.md.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http::StatusCode;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::link::{Link, LinkId, LinkState, Right};
use crate::model::share::{
    check_line, check_message, normalize_message, Delivery, Sender, Share, ShareRecipient,
    MAX_NAME_CHARS, MAX_RECIPIENTS, MAX_RESENDS_PER_HOUR, MAX_SUBJECT_CHARS,
};
use crate::share::gate::{Gate, Live};
use crate::share::mail::ShareMail;
use crate::state::{keys, MailJob, ShareChange, ShareQuery, StoreError};

use super::bodies::{check_identity, take_string, trim_blank, valid_email};
use super::error::ApiError;
use super::views::{link_view, opt_time, rfc3339};
use super::{AdminApi, Caller, RequestFacts};

/// How long a call waits for its mails before answering with what is still `pending`.
pub const MAIL_WAIT: Duration = Duration::from_secs(5);
/// Mails of one share sent at the same time.
pub const MAIL_PARALLEL: usize = 4;

/// Who cancels or revokes when the call names nobody.
const SYSTEM: &str = "linkgate";

fn no_such_share() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, None, "no such share")
}

/// An error about a recipient's `recipient.*` field, named as the share body names it.
fn at_recipient(e: ApiError, i: usize) -> ApiError {
    match e.field.as_deref() {
        Some(f) if f == "recipient" || f.starts_with("recipient.") => {
            let rest = f.trim_start_matches("recipient");
            ApiError::field(&format!("recipients[{i}]{rest}"), e.message)
        }
        _ => e,
    }
}

/// A mail address lettre will put in a header (stricter than the plausibility check).
fn mailable(email: &str) -> bool {
    valid_email(email) && email.parse::<lettre::Address>().is_ok()
}

/// `recipients`: 1 to [`MAX_RECIPIENTS`] objects, each with an `email`, none listed twice.
/// Each object is later read as a link's `recipient` by the links' own reader.
fn take_recipients(value: Option<Value>) -> Result<Vec<Map<String, Value>>, ApiError> {
    let Some(Value::Array(items)) = value else {
        return Err(ApiError::field(
            "recipients",
            "is required: a list like [{\"email\": \"jane@example.org\", \"name\": \"Jane\"}]",
        ));
    };
    if items.is_empty() || items.len() > MAX_RECIPIENTS {
        return Err(ApiError::field(
            "recipients",
            format!("must list 1 to {MAX_RECIPIENTS} recipients"),
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(r) = item else {
            return Err(ApiError::field(
                &format!("recipients[{i}]"),
                "must be an object like {\"email\": \"jane@example.org\"}",
            ));
        };
        let email = match r.get("email") {
            Some(Value::String(e)) if mailable(trim_blank(e)) => trim_blank(e).to_ascii_lowercase(),
            Some(Value::String(_)) => {
                return Err(ApiError::field(
                    &format!("recipients[{i}].email"),
                    "must be a mail address like jane@example.org (no spaces, line breaks or display names)",
                ))
            }
            _ => {
                return Err(ApiError::field(
                    &format!("recipients[{i}].email"),
                    "is required: a share is mailed to each recipient",
                ))
            }
        };
        if let Some(j) = seen.iter().position(|e| *e == email) {
            return Err(ApiError::field(
                &format!("recipients[{i}].email"),
                format!("is listed twice (also recipients[{j}])"),
            ));
        }
        seen.push(email);
        out.push(r);
    }
    Ok(out)
}

/// `sender`: `{"name": …, "email": …}`, both optional; the name defaults to `default_name`.
fn take_sender(value: Option<Value>, default_name: Option<&str>) -> Result<Sender, ApiError> {
    let mut sender = Sender::default();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(mut o)) => {
            match o.remove("name") {
                None | Some(Value::Null) => {}
                Some(Value::String(n)) => {
                    check_line(&n, MAX_NAME_CHARS)
                        .map_err(|m| ApiError::field("sender.name", m))?;
                    sender.name = Some(n.trim().to_string());
                }
                Some(_) => return Err(ApiError::field("sender.name", "must be a string")),
            }
            match o.remove("email") {
                None | Some(Value::Null) => {}
                Some(Value::String(e)) if mailable(trim_blank(&e)) => {
                    sender.email = Some(trim_blank(&e).to_string())
                }
                Some(_) => {
                    return Err(ApiError::field(
                        "sender.email",
                        "must be a mail address like jane@example.org",
                    ))
                }
            }
            if let Some(unknown) = o.keys().next() {
                return Err(ApiError::field(
                    &format!("sender.{unknown}"),
                    "is not a known field",
                ));
            }
        }
        Some(_) => {
            return Err(ApiError::field(
                "sender",
                "must be an object like {\"name\": \"Alice\", \"email\": \"alice@example.org\"}",
            ))
        }
    }
    if sender.name.is_none() {
        sender.name = default_name
            .filter(|n| check_line(n, MAX_NAME_CHARS).is_ok())
            .map(|n| n.trim().to_string());
    }
    Ok(sender)
}

/// The subject when the body gives none.
fn default_subject(sender: &Sender, links: &[Link]) -> String {
    let who = sender.display().unwrap_or("Someone");
    let docs = links.first().map(|l| l.documents.as_slice()).unwrap_or(&[]);
    let what = match docs {
        [] => "a folder for your files".to_string(),
        [one] => one.filename.clone(),
        [first, rest @ ..] => format!("{} and {} more", first.filename, rest.len()),
    };
    let subject = format!("{who} shared {what} with you");
    subject.chars().take(MAX_SUBJECT_CHARS).collect()
}

fn expiry_text(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| rfc3339(t).as_str().unwrap_or_default().to_string())
}

/// What the API shows of a share; with `links`, each recipient's link view as well.
fn share_view(share: &Share, links: Option<&[(Option<Link>, u64)]>, gate: &Gate) -> Value {
    let now = OffsetDateTime::now_utc();
    let recipients: Vec<Value> = share
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = json!({
                "link_id": r.link,
                "email": r.email,
                "name": r.name,
                "delivery": {
                    "state": r.delivery.state,
                    "attempts": r.delivery.attempts,
                    "last_attempt_at": opt_time(r.delivery.last_attempt_at),
                    "sent_at": opt_time(r.delivery.sent_at),
                    "error": r.delivery.error,
                    "next_attempt_at": opt_time(r.delivery.next_attempt_at),
                },
                "revoked_by": r.revoked_by,
                "revoked_at": opt_time(r.revoked_at),
            });
            if let Some(links) = links {
                v["link"] = match links.get(i) {
                    Some((Some(link), used)) => link_view(gate, link, *used),
                    _ => Value::Null,
                };
            }
            v
        })
        .collect();
    json!({
        "id": share.id,
        "type": "share",
        "status": share.status(now),
        "subject": share.subject,
        "message": share.message,
        "sender": share.sender,
        "shared_by": share.created_by,
        "created_by": share.created_by,
        "created_at": rfc3339(share.created_at),
        "expires_at": opt_time(share.expires_at),
        "cancelled_by": share.cancelled_by,
        "cancelled_at": opt_time(share.cancelled_at),
        "store": share.store,
        "objects": share.objects,
        "recipients": recipients,
        "etag": super::views::etag_of(share),
    })
}

/// Sends each recipient's mail (`links` are theirs, held in the mail queue under `lease` as
/// attempt 1), [`MAIL_PARALLEL`] at a time, recording each outcome on the share, as a
/// `share.mailed` event on the link, and in the queue.
async fn mail_recipients(gate: Live, share: Share, links: Vec<Link>, lease: String) {
    futures_util::stream::iter(links)
        .for_each_concurrent(MAIL_PARALLEL, |link| {
            let (gate, share) = (gate.clone(), &share);
            let job = MailJob {
                id: MailJob::name(share.id, link.id),
                lease: lease.clone(),
                attempt: 1,
            };
            async move { mail_one(&gate, share, &link, &job).await }
        })
        .await;
}

/// Why a queued mail is not sent at all, if it is not: `None` to send it, `Some(None)` to drop
/// it silently (a share that was never completed mailed nothing), `Some(Some(reason))` to give
/// it up with that reason shown on the share.
fn not_to_send(share: &Share, link: Option<&Link>, now: OffsetDateTime) -> Option<Option<String>> {
    if !share.complete {
        return Some(None);
    }
    if share.cancelled_at.is_some() {
        return Some(Some("not sent: the share was cancelled".into()));
    }
    let Some(link) = link else {
        return Some(Some("not sent: the recipient's link is gone".into()));
    };
    match share.recipient(link.id) {
        None => Some(None),
        Some(r) if r.revoked_at.is_some() => {
            Some(Some("not sent: the recipient was revoked".into()))
        }
        Some(_) if link.state != LinkState::Active => Some(Some(format!(
            "not sent: the link is {}",
            serde_json::to_value(link.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ))),
        Some(_) if !link.is_open(now) => Some(Some("not sent: the link has expired".into())),
        Some(_) => None,
    }
}

/// Sends one recipient's mail as attempt `job.attempt` and records the outcome: on the share
/// (`sent`; `pending` with the reason and the next attempt's time while retries are left;
/// `failed` after the last), as a `share.mailed` event, and in the mail queue (done, or due
/// again after the backoff). Settled last: a gateway that dies before leaves the job held, and
/// it is sent again when the hold runs out (at least once).
async fn mail_one(gate: &Gate, share: &Share, link: &Link, job: &MailJob) {
    let Some(recipient) = share.recipient(link.id) else {
        return;
    };
    let retry = gate.checks.mailer.share_retry();
    let outcome = match gate.url_of(link) {
        None => Err("the link's signing key is no longer configured".to_string()),
        Some(url) => {
            let documents: Vec<(String, Option<u64>)> = link
                .documents
                .iter()
                .map(|d| (d.filename.clone(), d.size))
                .collect();
            let expires = link.expires_at.map(expiry_text);
            let mail = ShareMail {
                to: &recipient.email,
                to_name: recipient.name.as_deref(),
                sender: share.sender.display(),
                reply_to: share.sender.email.as_deref(),
                subject: &share.subject,
                message: share.message.as_deref(),
                documents: &documents,
                expires: expires.as_deref(),
                upload: link.rights.contains(&Right::Upload),
                url: &url,
            };
            match tokio::time::timeout(retry.attempt_timeout, gate.checks.mailer.send_share(&mail))
                .await
            {
                Ok(sent) => sent.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "the mail server did not finish within {}s",
                    retry.attempt_timeout.as_secs()
                )),
            }
        }
    };
    let at = OffsetDateTime::now_utc();
    let again = match &outcome {
        Err(_) if job.attempt < retry.attempts => {
            Some(retry.backoff.delay(job.attempt, rand::random::<f64>()))
        }
        _ => None,
    };
    match (&outcome, again) {
        (Ok(()), _) => {
            tracing::info!(share = %share.id, link = %link.id, attempt = job.attempt, "share mail sent")
        }
        (Err(e), Some(delay)) => {
            tracing::warn!(share = %share.id, link = %link.id, attempt = job.attempt, retry_in_s = delay.as_secs(), error = %e, "share mail failed; will retry")
        }
        (Err(e), None) => {
            tracing::error!(share = %share.id, link = %link.id, attempt = job.attempt, error = %e, "share mail failed; given up")
        }
    }
    let next = again.map(|d| at + d);
    let recorded = record_delivery(gate, share.id, link.id, outcome.clone(), at, next).await;
    let mut event = Draft::new(
        "share.mailed",
        if outcome.is_ok() { "ok" } else { "failed" },
    );
    event.reason = outcome.err();
    event.actor = share.created_by.clone();
    event.detail = Some(json!({
        "share": share.id,
        "to": recipient.email,
        "attempt": recorded.or(Some(job.attempt)),
        "final": again.is_none(),
    }));
    if let Err(e) = gate
        .audit
        .queue
        .write_now(&gate.links.store, gate.audit.retention, link.id, event)
        .await
    {
        tracing::warn!(link = %link.id, error = %e, "audit events queued for retry");
    }
    if recorded.is_some() {
        settle(gate, job, again).await;
    }
}

/// Writes one attempt's outcome on the share; returns the recipient's attempt count, or `None`
/// when the store would not take it (the job then stays held and is tried again).
async fn record_delivery(
    gate: &Gate,
    share: LinkId,
    link: LinkId,
    outcome: Result<(), String>,
    at: OffsetDateTime,
    next: Option<OffsetDateTime>,
) -> Option<u32> {
    let change: ShareChange = Arc::new(move |s: &mut Share| {
        if let Some(r) = s.recipient_mut(link) {
            match (outcome.clone(), next) {
                (Err(reason), Some(next)) => r.delivery.retrying(reason, at, next),
                (outcome, _) => r.delivery.record(outcome, at),
            }
        }
        Ok(())
    });
    match gate.links.store.update_share(share, change).await {
        Ok(s) => s.recipient(link).map(|r| r.delivery.attempts),
        Err(e) => {
            tracing::error!(share = %share, link = %link, error = %e, "could not record a share mail's delivery; it is tried again when its hold runs out");
            None
        }
    }
}

/// Marks a job done (`again` = `None`) or due again after `again`.
async fn settle(gate: &Gate, job: &MailJob, again: Option<Duration>) {
    match gate
        .links
        .store
        .mail_settle(&job.id, &job.lease, again)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job = %job.id, "share mail's hold ran out before it was settled; another attempt may follow")
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "could not settle a share mail; it is tried again when its hold runs out")
        }
    }
}

/// Retries share mails in every gateway: leases the queued mails that are due (a retry after a
/// backoff, or a mail whose sender stopped before settling it and whose hold ran out) and sends
/// each, at most [`MAIL_PARALLEL`] at a time. See docs/shares.md ("Delivery").
pub struct MailSweeper {
    /// The gate in force (a reload's mail settings apply to the next attempt).
    gate: Live,
    slots: Arc<tokio::sync::Semaphore>,
    /// The queue could not be read at the last poll (logged once per outage).
    state: crate::state::outage::WorkerState,
}

/// How often each gateway looks for due share mails.
pub const MAIL_POLL: Duration = Duration::from_secs(1);

impl MailSweeper {
    pub fn new(gate: Live) -> MailSweeper {
        MailSweeper {
            gate,
            slots: Arc::new(tokio::sync::Semaphore::new(MAIL_PARALLEL)),
            state: crate::state::outage::WorkerState::new("share mail"),
        }
    }

    /// Leases due mails, as many as there are free slots, and starts each; returns how many.
    pub async fn poll(&self) -> usize {
        let free = self.slots.available_permits();
        if free == 0 {
            return 0;
        }
        let hold = self.gate.checks.mailer.share_retry().hold();
        let jobs = match self.gate.links.store.mail_lease(free, hold).await {
            Ok(jobs) => {
                self.state.worked();
                jobs
            }
            Err(e) => {
                self.state.failed(&e);
                return 0;
            }
        };
        let n = jobs.len();
        for job in jobs {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                // Not sent now: its hold runs out and it is leased again.
                break;
            };
            let gate = self.gate.clone();
            tokio::spawn(async move {
                retry_one(&gate, &job).await;
                drop(permit);
            });
        }
        n
    }
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for MailSweeper {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        let mut poll = tokio::time::interval(MAIL_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    // A backlog (after an outage) drains at the mails' pace, not the poll's.
                    for _ in 0..64 {
                        if self.poll().await == 0 {
                            break;
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// One leased job: the share and link are read again, and the mail sent unless it no longer
/// should be, or its attempts are spent (a gateway that kept dying mid-send).
async fn retry_one(gate: &Gate, job: &MailJob) {
    let Some((share_id, link_id)) = job.parts() else {
        tracing::warn!(job = %job.id, "share mail job with a malformed name dropped");
        settle(gate, job, None).await;
        return;
    };
    let store = &gate.links.store;
    let (share, link) = match (store.get_share(share_id).await, store.get(link_id).await) {
        (Ok(Some(share)), Ok(link)) => (share, link),
        (Ok(None), _) => {
            settle(gate, job, None).await;
            return;
        }
        (Err(e), _) | (_, Err(e)) => {
            // Left held: leased again when the hold runs out.
            tracing::warn!(job = %job.id, error = %e, "share mail postponed: link state unreachable");
            return;
        }
    };
    let now = OffsetDateTime::now_utc();
    let delivery = share.recipient(link_id).map(|r| r.delivery.clone());
    if delivery
        .as_ref()
        .is_some_and(|d| d.state != crate::model::share::DeliveryState::Pending)
    {
        // Recorded already (the gateway stopped between recording and settling).
        settle(gate, job, None).await;
        return;
    }
    if let Some(why) = not_to_send(&share, link.as_ref(), now) {
        if let Some(reason) = why {
            tracing::info!(share = %share.id, link = %link_id, reason = %reason, "share mail given up");
            if record_delivery(gate, share.id, link_id, Err(reason), now, None)
                .await
                .is_none()
            {
                return;
            }
        }
        settle(gate, job, None).await;
        return;
    }
    let Some(link) = link else { return };
    let retry = gate.checks.mailer.share_retry();
    if job.attempt > retry.attempts {
        let last = delivery
            .and_then(|d| d.error)
            .unwrap_or_else(|| "interrupted".to_string());
        let reason = format!("given up after {} attempts: {last}", retry.attempts);
        tracing::error!(share = %share.id, link = %link_id, reason = %reason, "share mail given up");
        if record_delivery(gate, share.id, link_id, Err(reason), now, None)
            .await
            .is_some()
        {
            settle(gate, job, None).await;
        }
        return;
    }
    mail_one(gate, &share, &link, job).await;
}

impl AdminApi {
    /// The share, if it exists and this caller may see it.
    pub(super) async fn visible_share(&self, caller: &Caller, id: &str) -> Result<Share, ApiError> {
        let id = LinkId::parse(id).ok_or_else(no_such_share)?;
        let share = self
            .gate
            .links
            .store
            .get_share(id)
            .await?
            .ok_or_else(no_such_share)?;
        let sees = match caller {
            Caller::Full => true,
            Caller::Restricted { creators, .. } => share
                .created_by
                .as_ref()
                .is_some_and(|c| creators.contains(c)),
        };
        if sees {
            Ok(share)
        } else {
            Err(no_such_share())
        }
    }

    /// The share with each recipient's link view.
    async fn full_view(&self, share: &Share) -> Result<Value, ApiError> {
        let mut links = Vec::with_capacity(share.recipients.len());
        for r in &share.recipients {
            match self.gate.links.store.get(r.link).await? {
                Some(link) => {
                    let used = self.gate.downloads_used(&link).await?;
                    links.push((Some(link), used));
                }
                None => links.push((None, 0)),
            }
        }
        Ok(share_view(share, Some(&links), &self.gate))
    }

    /// Puts `links`' mails in the mail queue, held by this call (so nothing is lost if the
    /// gateway stops while sending: the sweeper of any instance sends them when the hold runs
    /// out); returns the lease.
    async fn hold_mails(&self, share: LinkId, links: &[Link]) -> Result<String, StoreError> {
        let lease = crate::state::lease_token();
        let jobs: Vec<String> = links.iter().map(|l| MailJob::name(share, l.id)).collect();
        // Long enough for every mail of the batch, sent MAIL_PARALLEL at a time.
        let rounds = links.len().div_ceil(MAIL_PARALLEL).max(1) as u32;
        let hold = self.gate.checks.mailer.share_retry().hold() * rounds;
        self.gate.links.store.mail_hold(&jobs, &lease, hold).await?;
        Ok(lease)
    }

    /// Mails `links` (held under `lease`) in a task of their own and waits for it up to
    /// [`MAIL_WAIT`]; returns the share as it then stands.
    async fn deliver(
        &self,
        share: &Share,
        links: Vec<Link>,
        lease: String,
    ) -> Result<Share, ApiError> {
        let task = tokio::spawn(mail_recipients(
            self.gate.clone(),
            share.clone(),
            links,
            lease,
        ));
        if tokio::time::timeout(MAIL_WAIT, task).await.is_err() {
            tracing::info!(share = %share.id, "share mails still being sent; answering with them pending");
        }
        self.gate
            .links
            .store
            .get_share(share.id)
            .await?
            .ok_or_else(no_such_share)
    }

    /// Who a cancel or revoke is recorded as: `?by=` (or `?cancelled_by=`), else the restricted
    /// caller's name, else `admin`.
    fn by(caller: &Caller, origin: &RequestFacts) -> Result<String, ApiError> {
        let named = check_identity(
            "by",
            origin
                .query
                .get("by")
                .or_else(|| origin.query.get("cancelled_by"))
                .cloned(),
        )?;
        Ok(named.unwrap_or_else(|| match caller {
            Caller::Restricted { name, .. } => name.clone(),
            Caller::Full => "admin".to_string(),
        }))
    }

    pub(super) async fn create_share(
        &self,
        body: Vec<u8>,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let mut body = super::bodies::json_object(&body)?;
        let now = OffsetDateTime::now_utc();
        if body.get("recipient").is_some_and(|v| !v.is_null()) {
            return Err(ApiError::field(
                "recipient",
                "a share takes `recipients` (a list); `recipient` belongs to POST /v1/links",
            ));
        }
        body.remove("recipient");
        let recipients = take_recipients(body.remove("recipients"))?;
        let subject = take_string(&mut body, "subject")?;
        if let Some(s) = &subject {
            check_line(s, MAX_SUBJECT_CHARS).map_err(|m| ApiError::field("subject", m))?;
        }
        let message = take_string(&mut body, "message")?;
        if let Some(m) = &message {
            check_message(m).map_err(|m| ApiError::field("message", m))?;
        }
        let message = message.map(|m| normalize_message(&m));
        let default_sender = match (body.get("created_by").and_then(Value::as_str), caller) {
            (Some(c), _) => Some(c.to_string()),
            (None, Caller::Restricted { name, .. }) => Some(name.clone()),
            (None, Caller::Full) => None,
        };
        let sender = take_sender(body.remove("sender"), default_sender.as_deref())?;

        // Every recipient's link, built and checked by the links' own code before anything is
        // written: a body that fails for one recipient creates nothing.
        let mut links: Vec<Link> = Vec::with_capacity(recipients.len());
        for (i, r) in recipients.into_iter().enumerate() {
            let mut one = body.clone();
            one.insert("recipient".into(), Value::Object(r));
            let link = self
                .new_link(one, caller, now, links.first())
                .await
                .map_err(|e| at_recipient(e, i))?;
            links.push(link);
        }
        let id = LinkId::random();
        for link in &mut links {
            link.share = Some(id.to_string());
        }
        let first = links.first().ok_or_else(|| {
            ApiError::field(
                "recipients",
                format!("must list 1 to {MAX_RECIPIENTS} recipients"),
            )
        })?;
        let mut objects: Vec<String> = first.documents.iter().map(|d| d.object.clone()).collect();
        objects.dedup();
        let subject = subject
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| default_subject(&sender, &links));
        let share = Share {
            id,
            store: first.store.clone(),
            objects,
            subject,
            message,
            sender,
            created_by: first.created_by.clone(),
            created_at: now,
            expires_at: first.expires_at,
            complete: false,
            recipients: links
                .iter()
                .map(|l| {
                    let r = l.recipient.as_ref();
                    ShareRecipient {
                        link: l.id,
                        email: r.and_then(|r| r.email.clone()).unwrap_or_default(),
                        name: r.and_then(|r| r.name.clone()),
                        delivery: Delivery::pending(),
                        revoked_by: None,
                        revoked_at: None,
                    }
                })
                .collect(),
            cancelled_by: None,
            cancelled_at: None,
        };
        self.gate.links.store.create_share(&share).await?;
        let mut stored: Vec<LinkId> = Vec::with_capacity(links.len());
        for link in &links {
            if let Err(e) = self.store_new_link(link, origin).await {
                self.abandon(&share, &stored, origin).await;
                return Err(e);
            }
            stored.push(link.id);
        }
        // Held before the share is complete: a gateway that stops from here on leaves mails
        // that some instance sends (a share left incomplete drops them unsent).
        let lease = match self.hold_mails(id, &links).await {
            Ok(lease) => lease,
            Err(e) => {
                self.abandon(&share, &stored, origin).await;
                return Err(e.into());
            }
        };
        let completed = self
            .gate
            .links
            .store
            .update_share(
                id,
                Arc::new(|s: &mut Share| {
                    s.complete = true;
                    Ok(())
                }),
            )
            .await;
        let share = match completed {
            Ok(s) => s,
            Err(e) => {
                self.abandon(&share, &stored, origin).await;
                return Err(e.into());
            }
        };
        tracing::info!(share = %id, recipients = links.len(), "share created");
        let share = self.deliver(&share, links, lease).await?;
        Ok((StatusCode::CREATED, self.full_view(&share).await?))
    }

    /// Undoes a share whose creation failed midway, as far as the store lets us: its stored
    /// links are cancelled and the record marked cancelled by `linkgate`.
    async fn abandon(&self, share: &Share, stored: &[LinkId], origin: &RequestFacts) {
        tracing::error!(share = %share.id, links = stored.len(), "share creation failed midway; cancelling what was written");
        let now = OffsetDateTime::now_utc();
        for id in stored {
            let change: crate::state::Change = Arc::new(move |l: &mut Link| {
                if l.state != LinkState::Cancelled {
                    l.state = LinkState::Cancelled;
                    l.cancelled_at = Some(now);
                    l.cancelled_by = Some(SYSTEM.to_string());
                }
                Ok(())
            });
            if self.change(*id, change).await.is_ok() {
                let mut event = origin.event("link.cancelled", "ok", Some(SYSTEM.to_string()));
                event.reason = Some("the share it belonged to could not be completed".into());
                self.record(*id, event).await;
            }
        }
        let _ = self
            .gate
            .links
            .store
            .update_share(
                share.id,
                Arc::new(move |s: &mut Share| {
                    s.cancelled_at = Some(now);
                    s.cancelled_by = Some(SYSTEM.to_string());
                    Ok(())
                }),
            )
            .await;
    }

    pub(super) async fn show_share(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        let share = self.visible_share(caller, id).await?;
        Ok((StatusCode::OK, self.full_view(&share).await?))
    }

    pub(super) async fn list_shares(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
    ) -> Result<(StatusCode, Value), ApiError> {
        let q = &origin.query;
        for key in q.keys() {
            if !["object", "limit", "after", "cursor"].contains(&key.as_str()) {
                return Err(ApiError::field(
                    key,
                    "is not a known query parameter (object, limit, cursor, after)",
                ));
            }
        }
        let limit = super::handlers::page_limit(q)?;
        let query = ShareQuery {
            object: q.get("object").cloned(),
            creators: match caller {
                Caller::Full => None,
                Caller::Restricted { creators, .. } => Some(creators.clone()),
            },
            after: super::handlers::cursor_after(q)?,
            limit,
        };
        let page = self.gate.links.store.list_shares(&query).await?;
        let shares: Vec<Value> = page
            .shares
            .iter()
            .map(|s| share_view(s, None, &self.gate))
            .collect();
        Ok((
            StatusCode::OK,
            json!({ "shares": shares, "next_cursor": super::handlers::next_cursor(&page.next), "next": page.next }),
        ))
    }

    /// `DELETE /v1/shares/{id}`: every recipient's link is cancelled, then the share.
    pub(super) async fn cancel_share(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
        id: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        let share = self.visible_share(caller, id).await?;
        // `If-Match` is compared with the share as read here, before its links are cancelled
        // (each cancel is idempotent). It is not compared again in the share's own change
        // below: by then the links are cancelled, and refusing would leave half a cancel. A
        // change to the share between this read and that write goes undetected.
        if let Some(m) = &origin.if_match {
            if !m.matches(&super::views::etag_of(&share)) {
                return Err(ApiError::stale());
            }
        }
        let by = Self::by(caller, origin)?;
        for r in &share.recipients {
            match self.cancel_link(origin, r.link, &by).await {
                // An incomplete share may lack some of its links.
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = OffsetDateTime::now_utc();
        let who = by.clone();
        let share = self
            .gate
            .links
            .store
            .update_share(
                share.id,
                Arc::new(move |s: &mut Share| {
                    if s.cancelled_at.is_none() {
                        s.cancelled_at = Some(now);
                        s.cancelled_by = Some(who.clone());
                    }
                    Ok(())
                }),
            )
            .await?;
        tracing::info!(share = %share.id, by = %by, "share cancelled");
        Ok((StatusCode::OK, self.full_view(&share).await?))
    }

    /// Cancels one link of a share (idempotent), recording `link.cancelled` with `by`.
    async fn cancel_link(
        &self,
        origin: &RequestFacts,
        id: LinkId,
        by: &str,
    ) -> Result<(), StoreError> {
        let who = by.to_string();
        let now = OffsetDateTime::now_utc();
        let change: crate::state::Change = Arc::new(move |l: &mut Link| {
            if l.state != LinkState::Cancelled {
                l.state = LinkState::Cancelled;
                l.cancelled_at = Some(now);
                l.cancelled_by = Some(who.clone());
            }
            Ok(())
        });
        let result = self.gate.links.store.update(id, change).await;
        self.gate.links.cache.invalidate(&id);
        // A link cancelled before (revoked, or cancelled on its own) keeps who did it and gets
        // no second event.
        if result?.cancelled_at == Some(now) {
            self.record(
                id,
                origin.event("link.cancelled", "ok", Some(by.to_string())),
            )
            .await;
        }
        Ok(())
    }

    /// `DELETE /v1/shares/{id}/recipients/{link}`: that recipient's link is cancelled; the
    /// others keep working.
    pub(super) async fn revoke_recipient(
        &self,
        caller: &Caller,
        origin: &RequestFacts,
        id: &str,
        link: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        let share = self.visible_share(caller, id).await?;
        let link = LinkId::parse(link)
            .filter(|l| share.recipient(*l).is_some())
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, None, "no such recipient"))?;
        let by = Self::by(caller, origin)?;
        self.cancel_link(origin, link, &by).await?;
        let now = OffsetDateTime::now_utc();
        let who = by.clone();
        let share = self
            .gate
            .links
            .store
            .update_share(
                share.id,
                Arc::new(move |s: &mut Share| {
                    if let Some(r) = s.recipient_mut(link) {
                        if r.revoked_at.is_none() {
                            r.revoked_at = Some(now);
                            r.revoked_by = Some(who.clone());
                        }
                    }
                    Ok(())
                }),
            )
            .await?;
        tracing::info!(share = %share.id, link = %link, by = %by, "share recipient revoked");
        Ok((StatusCode::OK, self.full_view(&share).await?))
    }

    /// `POST /v1/shares/{id}/recipients/{link}/resend`: the same link, mailed again; at most
    /// [`MAX_RESENDS_PER_HOUR`] per recipient per hour (429 past it).
    pub(super) async fn resend(
        &self,
        caller: &Caller,
        id: &str,
        link: &str,
    ) -> Result<(StatusCode, Value), ApiError> {
        let share = self.visible_share(caller, id).await?;
        let link_id = LinkId::parse(link)
            .filter(|l| share.recipient(*l).is_some())
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, None, "no such recipient"))?;
        if share.cancelled_at.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Some("state"),
                "the share is cancelled",
            ));
        }
        if !share.complete {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Some("state"),
                "the share was never completed; cancel it and create it again",
            ));
        }
        let link = self
            .gate
            .links
            .store
            .get(link_id)
            .await?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, None, "no such recipient"))?;
        if link.state == LinkState::Active && !link.is_open(OffsetDateTime::now_utc()) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Some("state"),
                "this recipient's link has expired; nothing to re-send",
            ));
        }
        if link.state != LinkState::Active {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Some("state"),
                format!(
                    "this recipient's link is {}; nothing to re-send",
                    serde_json::to_value(link.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
            ));
        }
        let sends = self
            .gate
            .links
            .store
            .hit(&keys::share_resends(link_id), Duration::from_secs(3600), 1)
            .await?;
        if sends > MAX_RESENDS_PER_HOUR {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Some("recipient"),
                format!(
                    "this recipient's mail was re-sent {MAX_RESENDS_PER_HOUR} times in the last hour; try again later"
                ),
            ));
        }
        // A new round: held first, then pending again (a gateway that stops mid-send leaves it
        // to the sweeper, which skips deliveries already settled; a hold whose delivery could
        // not be marked pending is dropped by it, and the call answers 503).
        let lease = self
            .hold_mails(share.id, std::slice::from_ref(&link))
            .await?;
        self.gate
            .links
            .store
            .update_share(
                share.id,
                Arc::new(move |s: &mut Share| {
                    if let Some(r) = s.recipient_mut(link_id) {
                        r.delivery.state = crate::model::share::DeliveryState::Pending;
                        r.delivery.next_attempt_at = None;
                    }
                    Ok(())
                }),
            )
            .await?;
        let share = self.deliver(&share, vec![link], lease).await?;
        Ok((StatusCode::OK, self.full_view(&share).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: Value) -> Option<Value> {
        Some(v)
    }

    #[test]
    fn recipients_are_checked_before_anything_is_built() {
        assert!(take_recipients(None).is_err());
        assert!(take_recipients(list(json!([]))).is_err());
        let many: Vec<Value> = (0..=MAX_RECIPIENTS)
            .map(|i| json!({"email": format!("r{i}@example.org")}))
            .collect();
        assert_eq!(
            take_recipients(list(Value::Array(many)))
                .unwrap_err()
                .field
                .as_deref(),
            Some("recipients")
        );
        let dup = take_recipients(list(json!([
            {"email": "jane@example.org"}, {"email": "JANE@example.org "}
        ])))
        .unwrap_err();
        assert_eq!(dup.field.as_deref(), Some("recipients[1].email"));
        assert!(dup.message.contains("twice"));
        for bad in [
            json!([{"name": "no address"}]),
            json!([{"email": "jane@example.org\r\nBcc: x@evil.example"}]),
            json!([{"email": "Jane <jane@example.org>"}]),
            json!([{"email": "jane@example.org, x@evil.example"}]),
            json!(["jane@example.org"]),
        ] {
            assert!(take_recipients(list(bad.clone())).is_err(), "{bad}");
        }
        let ok = take_recipients(list(json!([
            {"email": "jane@example.org", "name": "Jane"}, {"email": "bob@example.org"}
        ])))
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn the_sender_is_checked_and_defaults_to_the_creator() {
        let s = take_sender(None, Some("Alice")).unwrap();
        assert_eq!(s.name.as_deref(), Some("Alice"));
        let s = take_sender(
            Some(json!({"name": "Bob", "email": "bob@example.org"})),
            Some("Alice"),
        )
        .unwrap();
        assert_eq!(
            (s.name.as_deref(), s.email.as_deref()),
            (Some("Bob"), Some("bob@example.org"))
        );
        assert!(take_sender(Some(json!({"name": "Bob\r\nBcc: x@y.z"})), None).is_err());
        assert!(take_sender(Some(json!({"email": "bob@example.org\nx"})), None).is_err());
        assert!(take_sender(Some(json!({"phone": "1"})), None).is_err());
        assert!(take_sender(Some(json!("Bob")), None).is_err());
        // A creator name that could not go in a header is simply not used.
        assert_eq!(take_sender(None, Some("a\u{202e}b")).unwrap().name, None);
    }

    #[test]
    fn a_queued_mail_is_sent_only_while_its_share_and_link_still_want_it() {
        use crate::model::link::Document;
        let now = OffsetDateTime::now_utc();
        let mut link = Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k",
            now,
        );
        let mut share = Share {
            id: LinkId::random(),
            store: "docs".into(),
            objects: vec!["a.pdf".into()],
            subject: "s".into(),
            message: None,
            sender: Sender::default(),
            created_by: None,
            created_at: now,
            expires_at: None,
            complete: true,
            recipients: vec![ShareRecipient {
                link: link.id,
                email: "jane@example.org".into(),
                name: None,
                delivery: Delivery::pending(),
                revoked_by: None,
                revoked_at: None,
            }],
            cancelled_by: None,
            cancelled_at: None,
        };
        assert_eq!(not_to_send(&share, Some(&link), now), None, "send it");
        let reason = |share: &Share, link: Option<&Link>| {
            not_to_send(share, link, now).flatten().unwrap_or_default()
        };
        assert!(reason(&share, None).contains("gone"));
        link.expires_at = Some(now - time::Duration::seconds(1));
        assert!(reason(&share, Some(&link)).contains("expired"));
        link.expires_at = None;
        link.state = LinkState::Deactivated;
        assert!(reason(&share, Some(&link)).contains("deactivated"));
        link.state = LinkState::Active;
        share.recipients[0].revoked_at = Some(now);
        assert!(reason(&share, Some(&link)).contains("revoked"));
        share.cancelled_at = Some(now);
        assert!(reason(&share, Some(&link)).contains("cancelled"));
        share.complete = false;
        assert_eq!(
            not_to_send(&share, Some(&link), now),
            Some(None),
            "an incomplete share mails nothing and says nothing"
        );
    }

    #[test]
    fn recipient_field_errors_name_the_recipient() {
        let e = at_recipient(ApiError::field("recipient.email", "bad"), 2);
        assert_eq!(e.field.as_deref(), Some("recipients[2].email"));
        let e = at_recipient(ApiError::field("expires_at", "bad"), 2);
        assert_eq!(e.field.as_deref(), Some("expires_at"));
    }
}
