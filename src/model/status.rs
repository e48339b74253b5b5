//! A link's status as integrators see it: one of five words, computed from the record and its
//! download count, with the moment it became so.
//!
//! Precedence, when several hold at once: `cancelled` > `deactivated` > `expired` > `exhausted` >
//! `active`. A cancelled link is final whatever else is true; an admin's deactivation is said
//! before what time or use did; a link past its expiry is `expired` even if its downloads are also
//! used up (expiry is the stronger, permanent fact: a PATCH of the limit cannot reopen it).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::link::{Link, LinkState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Expired,
    Exhausted,
    Deactivated,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Active,
        Status::Expired,
        Status::Exhausted,
        Status::Deactivated,
        Status::Cancelled,
    ];

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Exhausted => "exhausted",
            Status::Deactivated => "deactivated",
            Status::Cancelled => "cancelled",
        }
    }

    /// The stored state every link of this status has (a list narrows by it first).
    pub fn state(&self) -> LinkState {
        match self {
            Status::Cancelled => LinkState::Cancelled,
            Status::Deactivated => LinkState::Deactivated,
            Status::Active | Status::Expired | Status::Exhausted => LinkState::Active,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Link {
    /// The link's status at `now` with `downloads_used` downloads counted in its generation
    /// (as `GET /v1/links/{id}` reports them). Exhausted: a limited link whose downloads are all
    /// counted (the byte-counting rule of `docs/counting.md` decides what counts).
    pub fn status(&self, now: OffsetDateTime, downloads_used: u64) -> Status {
        match self.state {
            LinkState::Cancelled => Status::Cancelled,
            LinkState::Deactivated => Status::Deactivated,
            LinkState::Active if self.expires_at.is_some_and(|e| now >= e) => Status::Expired,
            LinkState::Active if self.max_downloads.is_some_and(|m| downloads_used >= m) => {
                Status::Exhausted
            }
            LinkState::Active => Status::Active,
        }
    }

    /// Since when the link has had `status`, where the record says: cancelled at, the expiry
    /// instant, the last admin change of state/expiry/limit for `active` and `deactivated`
    /// (else the creation). `exhausted` is not in the record (the moment the last download was
    /// counted is kept beside the counters): `exhausted_at` is passed in.
    pub fn status_since(
        &self,
        status: Status,
        exhausted_at: Option<OffsetDateTime>,
    ) -> Option<OffsetDateTime> {
        match status {
            Status::Cancelled => self.cancelled_at,
            Status::Expired => self.expires_at,
            Status::Exhausted => exhausted_at,
            Status::Active | Status::Deactivated => {
                Some(self.status_changed_at.unwrap_or(self.created_at))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::link::Document;
    use time::Duration;

    fn link() -> Link {
        Link::new(
            "docs",
            Document::new("a.pdf".into(), "a.pdf".into(), Some(10)),
            "k",
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn each_status_is_reached() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10);
        let mut l = link();
        assert_eq!(l.status(now, 0), Status::Active);
        l.max_downloads = Some(2);
        assert_eq!(l.status(now, 1), Status::Active);
        assert_eq!(l.status(now, 2), Status::Exhausted);
        l.expires_at = Some(now);
        assert_eq!(l.status(now, 0), Status::Expired, "expiry is exclusive");
        assert_eq!(l.status(now - Duration::seconds(1), 0), Status::Active);
        l.state = LinkState::Deactivated;
        assert_eq!(l.status(now, 2), Status::Deactivated);
        l.state = LinkState::Cancelled;
        assert_eq!(l.status(now, 2), Status::Cancelled);
    }

    #[test]
    fn precedence_is_cancelled_deactivated_expired_exhausted_active() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10);
        let mut l = link();
        l.max_downloads = Some(1);
        l.expires_at = Some(now - Duration::days(1));
        assert_eq!(l.status(now, 1), Status::Expired, "expired over exhausted");
        l.state = LinkState::Deactivated;
        assert_eq!(l.status(now, 1), Status::Deactivated);
        l.state = LinkState::Cancelled;
        assert_eq!(l.status(now, 1), Status::Cancelled);
        l.max_downloads = None;
        l.expires_at = None;
        l.state = LinkState::Active;
        assert_eq!(l.status(now, 1_000_000), Status::Active, "no limit");
    }

    #[test]
    fn since_comes_from_the_record() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(10);
        let mut l = link();
        assert_eq!(l.status_since(Status::Active, None), Some(l.created_at));
        l.status_changed_at = Some(now);
        assert_eq!(l.status_since(Status::Deactivated, None), Some(now));
        l.expires_at = Some(now + Duration::hours(1));
        assert_eq!(l.status_since(Status::Expired, None), l.expires_at);
        assert_eq!(l.status_since(Status::Exhausted, Some(now)), Some(now));
        l.cancelled_at = Some(now);
        assert_eq!(l.status_since(Status::Cancelled, None), Some(now));
    }

    #[test]
    fn words_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Status::parse("Active"), None);
        assert_eq!(Status::parse("used"), None);
    }
}
