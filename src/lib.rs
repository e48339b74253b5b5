//! linkgate: a Pingora reverse proxy that enforces signed share links in front of document stores.
//!
//! The folders follow a download's story and the layers under it (each depends only on those
//! listed before it):
//! - [`model`]: pure values and rules, no I/O: links and object keys, tokens, the operator's
//!   policy, what counts as a download, the audit chain.
//! - [`metrics`]: Prometheus metrics (a leaf every layer may count into).
//! - [`state`]: link state — the `LinkStore` trait, its embedded and Redis backends, the link
//!   cache and the write-behind queues.
//! - [`docstore`]: document stores (HTTP origins with failover, S3, local folders), the relay
//!   that streams their answers, paced writes for uploads.
//! - [`share`]: the recipients' listener: edge deadlines and request hygiene, then the steps of
//!   a download (identify the link, password, device, rights, count, serve, record), the pages
//!   and uploads.
//! - [`render`]: renditions the gateway makes itself and identity watermarks.
//! - [`admin`]: the admin HTTP API.
//! - [`config`]: the operator's TOML file, validated into the runtime model.
//! - [`app`]: building the server from a config, background services, logging, the demo origin.
//! - [`cli`]: the command line: arguments, commands, the demo, the admin API client.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod docstore;
pub mod metrics;
pub mod model;
pub mod render;
pub mod share;
pub mod state;
pub mod telemetry;
