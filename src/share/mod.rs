//! The recipients' listener, from the socket to the audit event, in the order a request meets it:
//!
//! - [`tls`], [`edge`]: TLS and HTTP/2; deadlines for request heads and idle connections.
//! - [`guard`]: request hygiene (smuggling shapes, oversized heads) before anything else.
//! - [`proxy`]: the request path (Pingora `ProxyHttp`), whose phases call the steps below.
//! - identify: the token ([`crate::model::token`]) or a legacy nginx URL ([`secure_link`]);
//!   [`client`] says who is asking; [`open`]: is the link open, does it answer the method.
//! - password and device: [`recipient`] (the checks and the landing page), [`verify`]
//!   (argon2id, codes, signed cookies, form tokens), [`mail`] (codes by SMTP), [`throttle`].
//! - rights: [`crate::model::link`].
//! - [`count`]: every byte drawn from the document's account before it is written.
//! - serve: [`crate::docstore`], streamed by the relay.
//! - [`record`]: how the request ended, the download's event (queued in
//!   [`crate::state::queues`]).
//! - [`upload`]: uploads through a link (form and PUT), streamed to the store.
//! - [`pages`]: the uniform 404 and the recipients' pages, in the language [`i18n`] picks.
//! - [`gate`]: what every step shares (keys, link state, cache, queues, document stores).

pub mod client;
pub mod count;
pub mod edge;
pub mod gate;
pub mod guard;
pub mod i18n;
pub mod mail;
pub mod notify;
pub mod open;
pub mod pages;
pub mod proxy;
pub mod recipient;
pub mod record;
pub mod review;
pub mod secure_link;
pub mod status;
pub mod throttle;
pub mod tls;
pub mod upload;
pub mod verify;
pub mod viewer;
pub mod webhooks;
