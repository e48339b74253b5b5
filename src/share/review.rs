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

use crate::model::audit::Draft;
use crate::model::hex;
use crate::model::link::{Decision, Link, Right, MAX_DECISIONS};
use crate::model::markup::escape;
use crate::share::gate::Gate;
use crate::share::i18n::{t, tr, Lang};
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
    /// The recipient's page in `lang`: status, title and text.
    pub fn page(&self, lang: Lang) -> (u16, String, String) {
        let (status, id) = match self {
            Refused::NotGranted => (403, "review-not-granted"),
            Refused::Empty => (400, "review-empty"),
            Refused::TooLong => (400, "review-too-long"),
            Refused::TooMany => (429, "review-too-many"),
            Refused::Decided => (409, "review-decided"),
            Refused::Unreadable => (400, "form-unreadable"),
            Refused::Store => (503, "status-503"),
        };
        let args = [("max", fluent_bundle::FluentValue::from(MAX_COMMENT))];
        (
            status,
            tr(lang, &format!("{id}-title"), &args),
            tr(lang, &format!("{id}-text"), &args),
        )
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
pub fn section(
    lang: Lang,
    link: &Link,
    device: &str,
    action: &str,
    csrf: &dyn Fn() -> String,
) -> String {
    if !link.takes_comments() {
        return String::new();
    }
    let who = reviewer(link, device);
    let mine = link.decisions.iter().find(|d| d.by == who);
    let mut html = format!("<h2>{}</h2>", escape(&t(lang, "review-heading")));
    if let Some(d) = mine {
        let word = match d.decision.as_str() {
            "approved" => t(lang, "review-approved"),
            "rejected" => t(lang, "review-rejected"),
            other => other.to_string(),
        };
        html.push_str(&format!(
            "<p id=\"decision\" data-decision=\"{}\">{}: <strong>{}</strong> ({}).</p>",
            escape(&d.decision),
            escape(&t(lang, "review-your-decision")),
            escape(&word),
            crate::share::pages::time_element(d.at, false)
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
         <label for=\"comment\">{label}</label>\
         <textarea id=\"comment\" name=\"comment\" rows=\"4\" cols=\"40\" maxlength=\"{MAX_COMMENT}\" required></textarea><br>\
         <button type=\"submit\" id=\"send-comment\">{send}</button></form>",
        action = escape(action),
        csrf = escape(&csrf()),
        label = escape(&t(lang, "review-comment-label")),
        send = escape(&t(lang, "review-send-comment")),
    ));
    if link.allows(&Right::Approve) && mine.is_none() {
        html.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" id=\"decision-form\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"action\" value=\"decide\">\
             <label for=\"decision-text\">{label}</label>\
             <textarea id=\"decision-text\" name=\"comment\" rows=\"3\" cols=\"40\" maxlength=\"{MAX_COMMENT}\"></textarea><br>\
             <p class=\"note\">{final_note}</p>\
             <button type=\"submit\" name=\"decision\" value=\"approved\" id=\"approve\">{approve}</button> \
             <button type=\"submit\" name=\"decision\" value=\"rejected\" id=\"reject\">{reject}</button></form>",
            action = escape(action),
            csrf = escape(&csrf()),
            label = escape(&t(lang, "review-decision-label")),
            final_note = escape(&t(lang, "review-final")),
            approve = escape(&t(lang, "review-approve")),
            reject = escape(&t(lang, "review-reject")),
        ));
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::{Document, Recipient};
    use time::OffsetDateTime;

    #[test]
    fn the_review_section_and_its_refusals_render_in_every_language() {
        crate::share::i18n::take_problems();
        let mut l = link();
        let device = "00112233445566778899aabbccddeeff";
        for lang in Lang::ALL {
            let html = section(lang, &l, device, "/s/t", &|| "t".to_string());
            assert!(html.contains("id=\"decision-form\""));
            for refused in [
                Refused::NotGranted,
                Refused::Empty,
                Refused::TooLong,
                Refused::TooMany,
                Refused::Decided,
                Refused::Unreadable,
                Refused::Store,
            ] {
                let (_, title, text) = refused.page(lang);
                assert!(!title.is_empty() && !text.is_empty());
            }
        }
        l.decisions.push(Decision {
            decision: "approved".into(),
            comment: String::new(),
            by: reviewer(&l, device),
            client: None,
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let de = section(Lang::De, &l, device, "/s/t", &|| "t".to_string());
        assert!(
            de.contains("Ihre Entscheidung: <strong>Freigegeben</strong>"),
            "{de}"
        );
        assert!(de.contains("<time datetime=\"1970-01-01T00:00:00Z\">"));
        let (_, _, text) = Refused::TooLong.page(Lang::Fr);
        assert!(text.contains("2000"), "{text}");
        let problems = crate::share::i18n::take_problems();
        assert!(problems.is_empty(), "missing messages: {problems:?}");
    }

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
        let html = section(Lang::En, &l, device, "/s/t", &|| "tok\"en".to_string());
        assert!(html.contains("id=\"decision-form\"") && html.contains("tok&quot;en"));
        l.decisions.push(Decision {
            decision: "rejected".into(),
            comment: "<script>alert(1)</script>".into(),
            by: reviewer(&l, device),
            client: None,
            at: OffsetDateTime::UNIX_EPOCH,
        });
        let html = section(Lang::En, &l, device, "/s/t", &|| "t".to_string());
        assert!(!html.contains("decision-form"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        l.rights = vec![Right::View];
        assert!(section(Lang::En, &l, device, "/s/t", &|| "t".to_string()).is_empty());
    }
}
