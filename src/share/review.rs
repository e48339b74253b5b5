//! Reviews: the `review` right (view inline and comment) and the `approve` right (view inline and
//! record a decision, approve or reject, with a comment).
//!
//! The landing page carries the forms once the link's checks (password, device) are passed; each
//! POST spends a single-use CSRF token like every form of the recipients' pages, and is checked
//! again here (the checks, the right, the bounds), so holding the link alone does not get past
//! them. Who reviewed is the recipient's address when the link has one (every verified browser of
//! the recipient is the same reviewer), else the browser (a digest of its signed device cookie).
//!
//! A decision is final: one per reviewer, added to the link by one atomic change in the store
//! (two browsers or two instances racing cannot both record one), kept on the link
//! (`decisions`), recorded as a `review.decided` event and so delivered as a webhook. Comments are
//! `review.commented` events only, bounded per reviewer and per link.

use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::model::audit::Draft;
use crate::model::hex;
use crate::model::link::{Decision, Link, Right, MAX_DECISIONS};
use crate::model::markup::escape;
use crate::share::gate::Gate;
use crate::state::{Change, StoreError};

/// Longest comment kept (characters).
pub const MAX_COMMENT: usize = 2000;
/// Comments one reviewer may leave on a link per hour.
pub const COMMENTS_PER_HOUR: u64 = 20;
/// Comments a link takes over its whole life, from everyone.
pub const COMMENTS_PER_LINK: u64 = 500;

/// Who reviews: the link's recipient address, or a browser.
pub fn reviewer(link: &Link, device: &str) -> String {
    match link.recipient.as_ref().and_then(|r| r.email.as_deref()) {
        Some(email) => email.to_string(),
        None => {
            let digest = Sha256::digest(format!("reviewer:{}:{device}", link.id).as_bytes());
            format!("browser:{}", &hex::encode(&digest)[..16])
        }
    }
}

/// A comment as kept: control characters (but line breaks) removed, trimmed; `None` when too long.
pub fn clean_comment(raw: &str) -> Option<String> {
    let text: String = raw
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let text = text.trim().to_string();
    (text.chars().count() <= MAX_COMMENT).then_some(text)
}

/// What a review form asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Comment(String),
    Decide { approved: bool, comment: String },
}

/// Reads a review form's fields (`action` = `comment` or `decide`).
pub fn parse(action: &str, comment: Option<&str>, decision: Option<&str>) -> Result<Ask, Refused> {
    let comment = clean_comment(comment.unwrap_or("")).ok_or(Refused::TooLong)?;
    match action {
        "comment" if comment.is_empty() => Err(Refused::Empty),
        "comment" => Ok(Ask::Comment(comment)),
        "decide" => match decision {
            Some("approved") => Ok(Ask::Decide {
                approved: true,
                comment,
            }),
            Some("rejected") => Ok(Ask::Decide {
                approved: false,
                comment,
            }),
            _ => Err(Refused::Unreadable),
        },
        _ => Err(Refused::Unreadable),
    }
}

/// Why a review was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the link does not grant this")]
    NotGranted,
    #[error("the comment is empty")]
    Empty,
    #[error("the comment is too long")]
    TooLong,
    #[error("too many comments")]
    TooMany,
    #[error("a decision was recorded already")]
    Decided,
    #[error("the form could not be read")]
    Unreadable,
    #[error("the link store is unavailable")]
    Store,
}

impl Refused {
    /// The recipient's page: title and text.
    pub fn page(&self) -> (u16, &'static str, String) {
        match self {
            Refused::NotGranted => (403, "Not possible", "This link does not allow that.".into()),
            Refused::Empty => (
                400,
                "Nothing to send",
                "Please write a comment first.".into(),
            ),
            Refused::TooLong => (
                400,
                "Comment too long",
                format!("A comment may have at most {MAX_COMMENT} characters."),
            ),
            Refused::TooMany => (
                429,
                "Too many comments",
                "No more comments can be taken for now. Please try again later.".into(),
            ),
            Refused::Decided => (
                409,
                "Already decided",
                "A decision was recorded already and cannot be changed.".into(),
            ),
            Refused::Unreadable => (
                400,
                "The form could not be read",
                "Please go back, reload the page and try again.".into(),
            ),
            Refused::Store => (
                503,
                "Service unavailable",
                "The service is temporarily unavailable. Please try again shortly.".into(),
            ),
        }
    }
}

/// Records a review. `draft` is the request's event (client, user agent, document) to fill in.
pub async fn record(
    gate: &Gate,
    link: &Link,
    device: &str,
    ask: Ask,
    mut draft: Draft,
) -> Result<&'static str, Refused> {
    let who = reviewer(link, device);
    let store = &gate.links.store;
    match ask {
        Ask::Comment(comment) => {
            if !link.takes_comments() {
                return Err(Refused::NotGranted);
            }
            let hour = store
                .hit(
                    &format!("review:{}:{who}", link.id),
                    Duration::from_secs(3600),
                    1,
                )
                .await
                .map_err(|_| Refused::Store)?;
            if hour > COMMENTS_PER_HOUR {
                return Err(Refused::TooMany);
            }
            let life = store
                .tally(&format!("review-comments:{}", link.id), 1)
                .await
                .map_err(|_| Refused::Store)?;
            if life > COMMENTS_PER_LINK {
                return Err(Refused::TooMany);
            }
            draft.kind = "review.commented".into();
            draft.actor = Some(who.clone());
            draft.detail = Some(serde_json::json!({ "comment": comment, "by": who }));
            gate.audit.push(link.id, draft);
            tracing::info!(link = %link.id, "review comment recorded");
            Ok("comment")
        }
        Ask::Decide { approved, comment } => {
            if !link.allows(&Right::Approve) {
                return Err(Refused::NotGranted);
            }
            let decision = Decision {
                decision: if approved { "approved" } else { "rejected" }.to_string(),
                comment,
                by: who.clone(),
                client: draft.client.clone(),
                at: draft.at,
            };
            let added = decision.clone();
            let change: Change = std::sync::Arc::new(move |l: &mut Link| {
                if l.decisions.iter().any(|d| d.by == added.by) {
                    return Err(StoreError::Refused("decided".into()));
                }
                if l.decisions.len() >= MAX_DECISIONS {
                    return Err(StoreError::Refused("too many".into()));
                }
                l.decisions.push(added.clone());
                Ok(())
            });
            let updated = match store.update(link.id, change).await {
                Ok(l) => l,
                Err(StoreError::Refused(why)) if why == "decided" => return Err(Refused::Decided),
                Err(StoreError::Refused(_)) => return Err(Refused::TooMany),
                Err(_) => return Err(Refused::Store),
            };
            gate.links.cache.put(std::sync::Arc::new(updated));
            draft.kind = "review.decided".into();
            draft.actor = Some(who.clone());
            draft.detail = Some(serde_json::json!({
                "decision": decision.decision,
                "comment": decision.comment,
                "by": who,
            }));
            gate.audit.push(link.id, draft);
            tracing::info!(link = %link.id, decision = %decision.decision, "review decision recorded");
            Ok("decision")
        }
    }
}

/// The landing page's review section (already-escaped HTML): the reviewer's decision if there is
/// one, the comment form, and the decision form while none is recorded.
pub fn section(link: &Link, device: &str, action: &str, csrf: &dyn Fn() -> String) -> String {
    if !link.takes_comments() {
        return String::new();
    }
    let who = reviewer(link, device);
    let mine = link.decisions.iter().find(|d| d.by == who);
    let mut html = String::from("<h2>Review</h2>");
    if let Some(d) = mine {
        html.push_str(&format!(
            "<p id=\"decision\">Your decision: <strong>{}</strong> ({}).</p>",
            escape(&d.decision),
            escape(&rfc3339(d.at))
        ));
        if !d.comment.is_empty() {
            html.push_str(&format!(
                "<blockquote id=\"decision-comment\">{}</blockquote>",
                escape(&d.comment)
            ));
        }
    }
    html.push_str(&format!(
        "<form method=\"post\" action=\"{action}\" id=\"comment-form\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"action\" value=\"comment\">\
         <label for=\"comment\">Comment</label><br>\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" cols=\"50\" maxlength=\"{MAX_COMMENT}\" required></textarea><br>\
         <button type=\"submit\" id=\"send-comment\">Send comment</button></form>",
        action = escape(action),
        csrf = escape(&csrf()),
    ));
    if link.allows(&Right::Approve) && mine.is_none() {
        html.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" id=\"decision-form\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"action\" value=\"decide\">\
             <label for=\"decision-text\">Decision comment</label><br>\
             <textarea id=\"decision-text\" name=\"comment\" rows=\"3\" cols=\"50\" maxlength=\"{MAX_COMMENT}\"></textarea><br>\
             <p class=\"note\">A decision is final.</p>\
             <button type=\"submit\" name=\"decision\" value=\"approved\" id=\"approve\">Approve</button> \
             <button type=\"submit\" name=\"decision\" value=\"rejected\" id=\"reject\">Reject</button></form>",
            action = escape(action),
            csrf = escape(&csrf()),
        ));
    }
    html
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::{Document, Recipient};

    fn link() -> Link {
        let mut l = Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k1",
            OffsetDateTime::UNIX_EPOCH,
        );
        l.rights = vec![Right::Approve];
        l
    }

    #[test]
    fn comments_are_cleaned_and_bounded() {
        assert_eq!(
            clean_comment("  hi\r\nthere\u{0}  ").as_deref(),
            Some("hi\nthere")
        );
        assert!(clean_comment(&"x".repeat(MAX_COMMENT)).is_some());
        assert!(clean_comment(&"x".repeat(MAX_COMMENT + 1)).is_none());
        assert_eq!(parse("comment", Some("  "), None), Err(Refused::Empty));
        assert_eq!(
            parse("decide", Some(""), Some("approved")),
            Ok(Ask::Decide {
                approved: true,
                comment: String::new()
            })
        );
        assert_eq!(
            parse("decide", None, Some("maybe")),
            Err(Refused::Unreadable)
        );
        assert_eq!(parse("other", Some("x"), None), Err(Refused::Unreadable));
    }

    #[test]
    fn reviewers_are_the_recipient_or_a_digest_of_the_browser() {
        let mut l = link();
        let a = reviewer(&l, "00112233445566778899aabbccddeeff");
        assert!(a.starts_with("browser:") && !a.contains("0011223344"));
        assert_ne!(a, reviewer(&l, "ffeeddccbbaa99887766554433221100"));
        l.recipient = Some(Recipient {
            email: Some("jane@example.org".into()),
            require_code: false,
            name: None,
        });
        assert_eq!(reviewer(&l, "anything"), "jane@example.org");
    }

    #[test]
    fn the_section_escapes_and_hides_the_decision_form_once_decided() {
        let mut l = link();
        let device = "00112233445566778899aabbccddeeff";
        let html = section(&l, device, "/s/t", &|| "tok\"en".to_string());
        assert!(html.contains("id=\"decision-form\"") && html.contains("tok&quot;en"));
        l.decisions.push(Decision {
            decision: "rejected".into(),
            comment: "<script>alert(1)</script>".into(),
            by: reviewer(&l, device),
            client: None,
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let html = section(&l, device, "/s/t", &|| "t".to_string());
        assert!(!html.contains("decision-form"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        l.rights = vec![Right::View];
        assert!(section(&l, device, "/s/t", &|| "t".to_string()).is_empty());
    }
}
