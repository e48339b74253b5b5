//! Pure values and rules: no I/O, no stores, no sessions. Links and object keys, tokens, the
//! operator's policy, what counts as a download, the audit chain, nginx `secure_link` formats.

pub mod audit;
pub mod counting;
pub mod disposition;
pub mod hex;
pub mod link;
pub mod markup;
pub mod outcome;
pub mod policy;
pub mod secure_link;
pub mod share;
pub mod status;
pub mod token;
pub mod urlencoded;
pub mod webhook;
