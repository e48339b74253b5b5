//! linkgate: a Pingora reverse proxy that enforces signed share links in front of document stores.
//!
//! Modules, one concern each:
//! - [`config`]: the operator's TOML file, validated at start.
//! - [`token`]: signed link tokens (HMAC-SHA256, key rotation).
//! - [`link`]: the link record and its rules; display-name sanitising.
//! - [`store`]: the `LinkStore` trait and the embedded (redb) backend.
//! - [`cache`]: the in-process link cache.
//! - [`counting`]: what counts as a download; usage batching.
//! - [`stores`]: document stores (HTTP origins with failover, S3, local folders).
//! - [`metrics`]: Prometheus metrics.
//! - [`health`]: readiness of the link store and the document stores.
//! - [`disposition`]: `Content-Disposition` building.
//! - [`pages`]: the uniform 404 and error pages.
//! - [`policy`]: the operator's rules for links.
//! - [`gate`]: the shared core used by proxy and admin API.
//! - [`edge`]: deadlines for request heads and idle connections on the recipients' listener.
//! - [`tls`]: TLS and HTTP/2 on that listener, certificate reloads, the https redirect, HSTS,
//!   CA bundles for https stores.
//! - [`guard`]: request hygiene (smuggling shapes, oversized heads) before anything else.
//! - [`proxy`]: the recipients' request path (Pingora `ProxyHttp`).
//! - [`recipient`]: password gate, device verification and landing page for browsers.
//! - [`upload`]: uploads through a link (form and PUT), streamed to the store.
//! - [`verify`]: passwords (argon2id), codes, signed cookies and form tokens.
//! - [`mail`]: delivery of verification codes (SMTP or log).
//! - [`admin`]: the admin HTTP API.
//! - [`audit`]: the hash-chained audit trail.
//! - [`origin`]: a small static origin for the demo.
//! - [`securelink`]: legacy links in nginx `secure_link` formats.
//! - [`serve`]: config → Pingora services wiring.
//! - [`cli`]: the admin API client used by `linkgate link …`.
//! - [`logwriter`]: log lines written to stderr in batches by one thread.
//! - [`hex`]: lower-case hexadecimal.

pub mod admin;
pub mod audit;
pub mod cache;
pub mod cli;
pub mod config;
pub mod counting;
pub mod disposition;
pub mod edge;
pub mod gate;
pub mod guard;
pub mod health;
pub mod hex;
pub mod link;
pub mod logwriter;
pub mod mail;
pub mod metrics;
pub mod origin;
pub mod pages;
pub mod policy;
pub mod proxy;
pub mod recipient;
pub mod securelink;
pub mod serve;
pub mod store;
pub mod stores;
pub mod tls;
pub mod token;
pub mod upload;
/// The former name of [`stores`].
pub use stores as upstream;
pub mod verify;
