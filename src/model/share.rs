//! A share: documents sent by mail to several people at once, each of them getting a link of
//! their own (own counter, own trusted devices, own audit trail). The share record groups those
//! links and keeps what was mailed and whether each mail was delivered.
//!
//! The texts that go into a mail (subject, message, names) are operator data put into headers
//! and HTML: the checks here refuse what could break out of a header (CR, LF and every other
//! control or line-separator character) and bound every length. HTML escaping is the mail
//! builder's job (`share::mail`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::link::LinkId;

/// Most recipients one share may have (each gets a link and a mail).
pub const MAX_RECIPIENTS: usize = 50;
/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 5_000;
/// Longest person's name (recipient or sender), in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Re-sends allowed per recipient per hour.
pub const MAX_RESENDS_PER_HOUR: u64 = 3;

/// Whether a recipient's mail was handed to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not tried yet, being tried, or waiting for its next attempt after a failed one
    /// (`error` then says why, `next_attempt_at` when).
    Pending,
    /// The relay accepted the message.
    Sent,
    /// Given up: the relay refused it or could not be reached on every attempt (`error` says
    /// why the last one failed).
    Failed,
}

/// Delivery of one recipient's mail: the last attempt's outcome and how many were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub state: DeliveryState,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Why the last attempt failed (the relay's answer), when it did.
    #[serde(default)]
    pub error: Option<String>,
    /// When the next attempt falls due, while a failed one is retried.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl Delivery {
    pub fn pending() -> Delivery {
        Delivery {
            state: DeliveryState::Pending,
            attempts: 0,
            last_attempt_at: None,
            sent_at: None,
            error: None,
            next_attempt_at: None,
        }
    }

    /// Records one attempt's outcome (`Err` holds the reason) as final: `sent` or `failed`.
    pub fn record(&mut self, outcome: Result<(), String>, at: OffsetDateTime) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_attempt_at = Some(at);
        self.next_attempt_at = None;
        match outcome {
            Ok(()) => {
                self.state = DeliveryState::Sent;
                self.sent_at = Some(at);
                self.error = None;
            }
            Err(reason) => {
                self.state = DeliveryState::Failed;
                self.error = Some(reason);
            }
        }
    }

    /// Records a failed attempt that will be tried again at `next`: the delivery stays
    /// `pending`, with the reason in `error`.
    pub fn retrying(&mut self, reason: String, at: OffsetDateTime, next: OffsetDateTime) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_attempt_at = Some(at);
        self.state = DeliveryState::Pending;
        self.error = Some(reason);
        self.next_attempt_at = Some(next);
    }
}

/// One person a share was sent to, and their link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecipient {
    pub link: LinkId,
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    pub delivery: Delivery,
    /// Set when this recipient's link was revoked through the share.
    #[serde(default)]
    pub revoked_by: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// Who the mail says the documents come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(default)]
    pub name: Option<String>,
    /// Set as `Reply-To`; the `From` address is always the relay's configured `mail.from`.
    #[serde(default)]
    pub email: Option<String>,
}

impl Sender {
    /// How the mail names the sender: the name, else the address.
    pub fn display(&self) -> Option<&str> {
        self.name.as_deref().or(self.email.as_deref())
    }
}

/// A share as stored. Its id has the form of a link id (32 lowercase hex characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub id: LinkId,
    pub store: String,
    /// The object keys shared (the `?object=` history index).
    pub objects: Vec<String>,
    pub subject: String,
    #[serde(default)]
    pub message: Option<String>,
    pub sender: Sender,
    /// Shared by (the links' `created_by`).
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// False from the moment the record is written until every recipient's link is stored. A
    /// share that stays incomplete was interrupted (the link state failed midway): nothing of it
    /// was mailed, and `DELETE` cancels whatever links it got.
    pub complete: bool,
    pub recipients: Vec<ShareRecipient>,
    #[serde(default)]
    pub cancelled_by: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
}

impl Share {
    /// `cancelled`, `incomplete`, `expired` or `active`.
    pub fn status(&self, now: OffsetDateTime) -> &'static str {
        if self.cancelled_at.is_some() {
            "cancelled"
        } else if !self.complete {
            "incomplete"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }

    pub fn recipient(&self, link: LinkId) -> Option<&ShareRecipient> {
        self.recipients.iter().find(|r| r.link == link)
    }

    pub fn recipient_mut(&mut self, link: LinkId) -> Option<&mut ShareRecipient> {
        self.recipients.iter_mut().find(|r| r.link == link)
    }
}

/// Characters that would end or fold a header line, or reorder text, in a one-line field.
fn breaks_a_line(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{200e}' | '\u{200f}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// A one-line text (subject, a person's name): not blank, at most `max` characters, and no
/// CR, LF or other control, line-separator or direction-override character (a header
/// injection, or a name that displays as something else).
pub fn check_line(text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text.chars().any(breaks_a_line) {
        return Err(
            "must be one line without control characters (CR, LF, tabs, direction overrides)"
                .into(),
        );
    }
    Ok(())
}

/// A message: at most [`MAX_MESSAGE_CHARS`] characters; line breaks and tabs are kept, every
/// other control or direction-override character is refused.
pub fn check_message(text: &str) -> Result<(), String> {
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!("must be at most {MAX_MESSAGE_CHARS} characters"));
    }
    if text
        .chars()
        .any(|c| !matches!(c, '\n' | '\r' | '\t') && breaks_a_line(c))
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    Ok(())
}

/// A message with every line break as `\n`: a lone CR never reaches the mail (the mail library
/// turns `\n` into CRLF, and a bare CR is what SMTP smuggling tricks are made of).
pub fn normalize_message(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_failure_stays_pending_and_the_last_one_is_final() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let later = t0 + time::Duration::minutes(1);
        let mut d = Delivery::pending();
        d.retrying("refused".into(), t0, later);
        assert_eq!(d.state, DeliveryState::Pending);
        assert_eq!(
            (d.attempts, d.error.as_deref(), d.next_attempt_at),
            (1, Some("refused"), Some(later))
        );
        d.record(Err("refused again".into()), later);
        assert_eq!(d.state, DeliveryState::Failed);
        assert_eq!((d.attempts, d.next_attempt_at), (2, None));
        d.record(Ok(()), later);
        assert_eq!((d.state, d.error.as_deref()), (DeliveryState::Sent, None));
        // Records from before the field existed still read.
        let old: Delivery = serde_json::from_str(r#"{"state":"pending","attempts":0}"#).unwrap();
        assert_eq!(old.next_attempt_at, None);
    }

    #[test]
    fn one_line_fields_refuse_header_injection() {
        assert!(check_line("Q3 report", 200).is_ok());
        assert!(check_line("Zoë Ångström 山田", 200).is_ok());
        for bad in [
            "Hi\r\nBcc: victim@example.org",
            "Hi\nBcc: x@y.z",
            "Hi\rX",
            "tab\there",
            "nul\0",
            "sep\u{2028}x",
            "evil\u{202e}fdp.exe",
            "",
            "   ",
        ] {
            assert!(check_line(bad, 200).is_err(), "{bad:?} must be refused");
        }
        assert!(check_line(&"x".repeat(201), 200).is_err());
        assert!(
            check_line(&"é".repeat(200), 200).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn messages_keep_line_breaks_and_refuse_other_controls() {
        assert!(check_message("Hello,\r\n\r\nplease review.\n\tThanks").is_ok());
        assert!(check_message("").is_ok());
        assert!(check_message("bell\u{7}").is_err());
        assert!(check_message("esc\u{1b}[31m").is_err());
        assert!(check_message(&"x".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
    }

    #[test]
    fn messages_have_only_lf_line_breaks() {
        assert_eq!(normalize_message("a\r\nb\rc\n.\r\n"), "a\nb\nc\n.\n");
    }

    #[test]
    fn delivery_records_attempts_and_the_last_reason() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let mut d = Delivery::pending();
        d.record(Err("connection refused".into()), now);
        assert_eq!((d.state, d.attempts), (DeliveryState::Failed, 1));
        assert_eq!(d.error.as_deref(), Some("connection refused"));
        d.record(Ok(()), now);
        assert_eq!((d.state, d.attempts), (DeliveryState::Sent, 2));
        assert_eq!((d.error, d.sent_at), (None, Some(now)));
    }

    #[test]
    fn status_follows_cancel_completion_and_expiry() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let mut s = Share {
            id: LinkId::random(),
            store: "docs".into(),
            objects: vec!["a.pdf".into()],
            subject: "s".into(),
            message: None,
            sender: Sender::default(),
            created_by: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            complete: false,
            recipients: Vec::new(),
            cancelled_by: None,
            cancelled_at: None,
        };
        assert_eq!(s.status(now), "incomplete");
        s.complete = true;
        assert_eq!(s.status(now), "active");
        s.expires_at = Some(now);
        assert_eq!(s.status(now), "expired");
        s.cancelled_at = Some(now);
        assert_eq!(s.status(now), "cancelled");
    }
}
