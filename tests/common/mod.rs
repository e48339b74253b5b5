//! Test harness: real processes on free loopback ports, one file per role, all re-exported here
//! so that a test file's `mod common;` and `use common::*;` see every fixture.
//!
//! - `util.rs`: free ports, waiting for a port, hashes, pseudo-random data, shared constants.
//! - `origin.rs`: [`Origin`] (Debian's nginx serving a temporary folder: Range, conditionals,
//!   ETags for real, two locations used to observe what the gateway forwards, and a WebDAV `PUT`
//!   folder `/inbox/` that uploads through links are written to) and [`LegacyNginx`] (nginx
//!   with its own `secure_link` module, for migration tests).
//! - `gateway.rs`: [`Gateway`], the `linkgate` binary under test, started with `serve --config`
//!   on its own embedded store and killed when dropped; [`GatewayOptions`]; [`Admin`], a small
//!   client for the admin API; [`events_when`].
//! - `http.rs`: [`request`], [`try_request`], [`get`], [`raw`], [`Reply`]; [`Jar`] and
//!   [`csrf_of`] for browser-like form flows without a browser.
//! - `redis.rs`: [`RedisServer`] and [`RedisCluster`].
//! - `smtp.rs`: [`SmtpSink`].
//! - `browser.rs`: [`Browser`], a real headless Chromium over WebDriver.
//! - `recording.rs`: [`RecordingOrigin`], a raw-TCP HTTP/1.1 origin that records every byte it
//!   receives.
//! - `scripted.rs`: [`ScriptedOrigin`], an origin that answers as a test's script says.
//! - `clients.rs`: real download clients ([`aria2c`]).
//!
//! Not modules of this one: `s3.rs` (included with `#[path]` only by the test files that need
//! an S3 server) and `h2raw.py` (run by `tests/tls.rs`).
//!
//! Each test binary uses only some of the fixtures: `dead_code` is allowed here for every file
//! under it (each file also says so itself), and `unused_imports` for the re-exports below only.
#![allow(dead_code)]

mod browser;
mod clients;
mod gateway;
mod http;
mod origin;
mod recording;
mod redis;
mod scripted;
mod smtp;
mod util;

// One `use` so that one attribute covers it: a test binary that uses no fixture of a role would
// otherwise be told that role's re-export is unused.
#[allow(unused_imports)]
pub use self::{
    browser::*, clients::*, gateway::*, http::*, origin::*, recording::*, redis::*, scripted::*,
    smtp::*, util::*,
};
