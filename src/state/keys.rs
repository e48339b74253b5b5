//! Every key the recipients' checks keep in the link state (through `hit`, `once`, `tally` and
//! the `kv_*` calls), in one place: what each counts or holds, and for how long its caller keeps
//! it. A backend adds its own prefix (`lg:eph:` on Redis).
//!
//! `client` is the address as events record it (`unknown` without one); `device` a device id;
//! `nonce` the random part of a code or form token.

use std::fmt::Display;

use crate::model::link::LinkId;

/// Password checks of a link from one address (the per-address cap).
pub fn password_tries_from(link: LinkId, client: &str) -> String {
    format!("pwtry:{link}:{client}")
}

/// Password checks of a link from everyone (the budget past which a proof of work is needed).
pub fn password_tries(link: LinkId) -> String {
    format!("pwtry:{link}")
}

/// A proof-of-work challenge already spent.
pub fn proof_of_work(link: LinkId, nonce: impl Display) -> String {
    format!("pow:{link}:{nonce}")
}

/// The link's current mailed code (its hash and nonce; one code per link at a time).
pub fn code(link: LinkId) -> String {
    format!("code:{link}")
}

/// Code checks over the link's whole life (never expires).
pub fn code_checks(link: LinkId) -> String {
    format!("codechecks:{link}")
}

/// Code mails asked for by one browser (the resend gap).
pub fn code_sends_by(link: LinkId, device: &str) -> String {
    format!("codesend:{link}:{device}")
}

/// Code mails of a link (the per-window mail cap).
pub fn code_mails(link: LinkId) -> String {
    format!("codemail:{link}")
}

/// Checks of one code from everyone.
pub fn code_tries(link: LinkId, nonce: impl Display) -> String {
    format!("codetry:{link}:{nonce}")
}

/// Checks of one code from one address.
pub fn code_tries_from(link: LinkId, nonce: impl Display, client: &str) -> String {
    format!("codetry:{link}:{nonce}:a:{client}")
}

/// Checks of one code from one browser.
pub fn code_tries_by(link: LinkId, nonce: impl Display, device: &str) -> String {
    format!("codetry:{link}:{nonce}:d:{device}")
}

/// A single-use form token already spent.
pub fn form_token(nonce: impl Display) -> String {
    format!("csrf:{nonce}")
}

/// An upload's claim on a file name, while it is written.
pub fn upload_claim(link: LinkId, object: &str) -> String {
    format!("upload:{link}:{object}")
}

/// Re-sends of a share's mail to one recipient (their link), per hour.
pub fn share_resends(link: LinkId) -> String {
    format!("shareresend:{link}")
}

/// Whether `link.expired` was recorded for a generation (a tally: the first to add 1 records it).
pub fn status_expired(link: LinkId, generation: u64) -> String {
    format!("st:expired:{link}:{generation}")
}

/// Whether `link.exhausted` was recorded for a generation (a tally, as above).
pub fn status_exhausted(link: LinkId, generation: u64) -> String {
    format!("st:exhausted:{link}:{generation}")
}

/// The Unix second a generation was first seen exhausted (a tally written once, by whoever
/// recorded `link.exhausted`).
pub fn status_exhausted_at(link: LinkId, generation: u64) -> String {
    format!("st:exhausted-at:{link}:{generation}")
}

/// Whether `document.changed` was recorded for a version of an object served by a link (a
/// tally: the first to add 1 records it). `version` is the `ETag` or `Last-Modified` seen.
pub fn document_version(link: LinkId, object: &str, version: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{object}\n{version}").as_bytes());
    let mut hex = [0u8; 16];
    crate::model::hex::write(&digest[..8], &mut hex);
    format!("docver:{link}:{}", String::from_utf8_lossy(&hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_different_kinds_never_collide() {
        let id = LinkId::random();
        let keys = [
            password_tries_from(id, "1.2.3.4"),
            password_tries(id),
            proof_of_work(id, "n"),
            code(id),
            code_checks(id),
            code_sends_by(id, "d"),
            code_mails(id),
            code_tries(id, "n"),
            code_tries_from(id, "n", "1.2.3.4"),
            code_tries_by(id, "n", "d"),
            form_token("n"),
            upload_claim(id, "a/b"),
            status_expired(id, 1),
            status_exhausted(id, 1),
            status_exhausted_at(id, 1),
            document_version(id, "a/b", "\"e\""),
        ];
        let mut unique = keys.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        // An address and a device id never make the same per-code key.
        assert_ne!(code_tries_from(id, "n", "x"), code_tries_by(id, "n", "x"));
    }
}
