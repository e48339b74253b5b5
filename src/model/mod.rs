//! Pure values and rules: no I/O, no clocks they do not receive, no stores.

pub mod audit;
pub mod counting;
pub mod disposition;
pub mod hex;
pub mod link;
pub mod policy;
pub mod token;
