//! Record: how a request ended, as plain values — the outcome an error maps to, whether a
//! served response was in fact aborted, and which audit event a download leaves.

use crate::model::counting::Kind;
use crate::model::outcome::Outcome;

/// The outcome of a request that failed with HTTP `code` (0: the client went away).
pub fn error_outcome(code: u16, limit_reached: bool) -> Outcome {
    match code {
        _ if limit_reached => Outcome::LimitReached,
        504 => Outcome::OriginTimeout,
        502 => Outcome::OriginDown,
        503 => Outcome::StoreError,
        0 => Outcome::ClientGone,
        _ => Outcome::Error,
    }
}

/// What the recipient sees instead of an origin's answer with `status`, and why: `None` passes
/// it on (success, `304`, `412`, `416`); the origin's "no" (401/403/404/410) becomes the uniform
/// 404, anything else our 502.
pub fn replace_origin_status(status: u16) -> Option<(u16, Outcome)> {
    match status {
        200..=299 | 304 | 412 | 416 => None,
        401 | 403 | 404 | 410 => Some((404, Outcome::OriginNotFound)),
        _ => Some((502, Outcome::OriginError)),
    }
}

/// A response that was on its way (`Served`) but did not deliver its body is an abort.
pub fn settled(outcome: Outcome, delivered: bool, kind: Kind) -> Outcome {
    if !delivered && outcome == Outcome::Served && matches!(kind, Kind::Fresh | Kind::Continuation)
    {
        Outcome::Aborted
    } else {
        outcome
    }
}

/// The audit event (kind, outcome) a download leaves, or `None` for requests that are not
/// downloads (HEAD, prefetches).
pub fn download_event(
    kind: Kind,
    outcome: Outcome,
    delivered: bool,
    counted: bool,
) -> Option<(&'static str, &'static str)> {
    if !matches!(kind, Kind::Fresh | Kind::Continuation) || outcome == Outcome::Prefetch {
        return None;
    }
    Some(match (delivered, counted, kind) {
        (true, false, Kind::Continuation) => ("download.resumed", "ok"),
        (true, _, _) => ("download.completed", "ok"),
        (false, _, _) => ("download.aborted", "failed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_outcomes() {
        assert_eq!(error_outcome(502, true), Outcome::LimitReached);
        assert_eq!(error_outcome(504, false), Outcome::OriginTimeout);
        assert_eq!(error_outcome(502, false), Outcome::OriginDown);
        assert_eq!(error_outcome(503, false), Outcome::StoreError);
        assert_eq!(error_outcome(0, false), Outcome::ClientGone);
        assert_eq!(error_outcome(500, false), Outcome::Error);
    }

    #[test]
    fn origin_errors_never_reach_recipients() {
        for pass in [200, 206, 304, 412, 416] {
            assert_eq!(replace_origin_status(pass), None, "{pass}");
        }
        for no in [401, 403, 404, 410] {
            assert_eq!(
                replace_origin_status(no),
                Some((404, Outcome::OriginNotFound))
            );
        }
        for bad in [100, 301, 302, 400, 405, 429, 500, 503] {
            assert_eq!(
                replace_origin_status(bad),
                Some((502, Outcome::OriginError))
            );
        }
    }

    #[test]
    fn only_undelivered_downloads_are_aborts() {
        assert_eq!(
            settled(Outcome::Served, false, Kind::Fresh),
            Outcome::Aborted
        );
        assert_eq!(
            settled(Outcome::Served, false, Kind::Continuation),
            Outcome::Aborted
        );
        assert_eq!(settled(Outcome::Served, true, Kind::Fresh), Outcome::Served);
        assert_eq!(settled(Outcome::Served, false, Kind::Head), Outcome::Served);
        assert_eq!(
            settled(Outcome::OriginDown, false, Kind::Fresh),
            Outcome::OriginDown
        );
    }

    #[test]
    fn downloads_leave_one_event_and_heads_none() {
        let ev = |k, d, c| download_event(k, Outcome::Served, d, c);
        assert_eq!(ev(Kind::Head, true, false), None);
        assert_eq!(ev(Kind::Prefetch, true, false), None);
        assert_eq!(
            download_event(Kind::Fresh, Outcome::Prefetch, true, false),
            None
        );
        assert_eq!(
            ev(Kind::Fresh, true, true),
            Some(("download.completed", "ok"))
        );
        assert_eq!(
            ev(Kind::Continuation, true, false),
            Some(("download.resumed", "ok"))
        );
        assert_eq!(
            ev(Kind::Continuation, true, true),
            Some(("download.completed", "ok")),
            "a resume that had to count a download completes one"
        );
        assert_eq!(
            ev(Kind::Fresh, false, true),
            Some(("download.aborted", "failed"))
        );
    }
}
