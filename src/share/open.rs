//! Open: after the token named a link, is the link open, and is the request's method one it
//! answers? Plain values in, a decision out; the proxy turns a refusal into the uniform 404 (or
//! 405) and records its [`Outcome`].

use http::Method;
use time::OffsetDateTime;

use crate::model::link::{Link, LinkState};
use crate::model::outcome::Outcome;

/// `Err` with why when the link may not be used at `now`: cancelled, deactivated or expired
/// links all answer like an unknown one; only the record says which.
pub fn open_at(link: &Link, now: OffsetDateTime) -> Result<(), Outcome> {
    if link.is_open(now) {
        return Ok(());
    }
    Err(match link.state {
        LinkState::Active => Outcome::Expired,
        LinkState::Deactivated => Outcome::Deactivated,
        LinkState::Cancelled => Outcome::Cancelled,
    })
}

/// What a request asks of an open link, by its method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    /// `GET` or `HEAD` of a document or a page.
    Read,
    /// A form `POST` to one of the link's pages (password, device check, download button).
    Form,
    /// An upload (`PUT`, or `POST ?upload`).
    Upload,
}

/// `Err(Outcome::Method)` (answered 405) for a method the link does not answer: only links with
/// pages take form posts, and only upload requests (which the link's rights then check) write.
pub fn asks(method: &Method, link: &Link, uploading: bool) -> Result<Asks, Outcome> {
    if uploading {
        Ok(Asks::Upload)
    } else if method == Method::GET || method == Method::HEAD {
        Ok(Asks::Read)
    } else if method == Method::POST && link.has_pages() {
        Ok(Asks::Form)
    } else {
        Err(Outcome::Method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::Document;

    fn link() -> Link {
        Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), None),
            "k1",
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn closed_links_say_why_only_to_the_record() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let mut l = link();
        assert_eq!(open_at(&l, now), Ok(()));
        l.expires_at = Some(now);
        assert_eq!(
            open_at(&l, now),
            Err(Outcome::Expired),
            "expiry is exclusive"
        );
        assert_eq!(open_at(&l, now - time::Duration::seconds(1)), Ok(()));
        l.expires_at = None;
        l.state = LinkState::Deactivated;
        assert_eq!(open_at(&l, now), Err(Outcome::Deactivated));
        l.state = LinkState::Cancelled;
        l.expires_at = Some(now - time::Duration::days(1));
        assert_eq!(
            open_at(&l, now),
            Err(Outcome::Cancelled),
            "cancelled outranks expired"
        );
    }

    #[test]
    fn only_links_with_pages_take_form_posts() {
        let mut plain = link();
        assert_eq!(asks(&Method::GET, &plain, false), Ok(Asks::Read));
        assert_eq!(asks(&Method::HEAD, &plain, false), Ok(Asks::Read));
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(asks(&m, &plain, false), Err(Outcome::Method), "{m}");
        }
        plain.max_downloads = Some(1);
        assert_eq!(asks(&Method::POST, &plain, false), Ok(Asks::Form));
        assert_eq!(asks(&Method::PUT, &plain, false), Err(Outcome::Method));
        assert_eq!(asks(&Method::PUT, &plain, true), Ok(Asks::Upload));
    }
}
