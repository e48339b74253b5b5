//! The recipients' listener, from the socket to the audit event.
//!
//! - [`edge`]: deadlines for request heads and idle connections.
//! - [`guard`]: request hygiene (smuggling shapes, oversized heads) before anything else.
//! - [`proxy`]: the request path (Pingora `ProxyHttp`): identify the link, check it, count,
//!   serve, record.
//! - [`secure_link`]: legacy links in nginx `secure_link` formats.
//! - [`recipient`]: password gate, device verification and landing page for browsers.
//! - [`verify`]: passwords (argon2id), codes, signed cookies and form tokens.
//! - [`mail`]: delivery of verification codes (SMTP or log).
//! - [`upload`]: uploads through a link (form and PUT), streamed to the store.
//! - [`pages`]: the uniform 404 and the recipients' pages.
//! - [`gate`]: the shared core used by the listener and the admin API.
//! - [`tls`]: TLS and HTTP/2 on the listener, certificate reloads, the https redirect, HSTS, CA
//!   bundles for https stores.

pub mod edge;
pub mod gate;
pub mod guard;
pub mod mail;
pub mod pages;
pub mod proxy;
pub mod recipient;
pub mod secure_link;
pub mod tls;
pub mod upload;
pub mod verify;
