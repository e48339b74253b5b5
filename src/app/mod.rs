//! Wiring: a validated config becomes a Pingora server with the recipients' proxy, the admin API
//! and the background usage flusher. No request logic lives here.

pub mod demo_origin;
pub mod logbridge;
pub mod logwriter;
pub mod reload;
pub mod run;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::ConnectorOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::admin::AdminApi;
use crate::app::logwriter::{BatchWriter, LogGuard};
use crate::config::{Config, StateConfig};
use crate::docstore::relay::Relay;
use crate::docstore::write::Writer;
use crate::docstore::DocStore;
use crate::model::secure_link::LegacyLinks;
use crate::share::gate::{AdminAccess, Audit, Checks, Gate, Links, Live};
use crate::share::mail::Mailer;
use crate::share::proxy::Proxy;
use crate::share::throttle::PageLimiter;
use crate::share::tls::{CertStore, Redirect, Reloader, TlsEdge};
use crate::share::verify::Verifier;
use crate::state::cache::LinkCache;
use crate::state::queues::AuditQueue;
use crate::state::{EmbeddedStore, LinkStore, RedisStore, StoreError};
use demo_origin::StaticOrigin;

/// Off the request path: retries refunds of unsent bytes that failed, and writes usage of
/// unlimited links and audit events, and gives back idle blocks of downloads (every 250 ms, and
/// once more at shutdown, then every block).
struct Housekeeper {
    gate: Live,
}

impl Housekeeper {
    /// `stopping`: every block goes back now, not only the idle ones.
    async fn flush(&self, stopping: bool) {
        let counting = &self.gate.counting;
        for refund in counting.blocks.due(stopping) {
            counting.queue_refund(refund);
        }
        self.gate
            .counting
            .refunds
            .flush(&self.gate.links.store)
            .await;
        self.gate.counting.usage.flush(&self.gate.links.store).await;
        self.gate
            .audit
            .queue
            .flush(&self.gate.links.store, self.gate.audit.retention)
            .await;
    }
}

#[async_trait]
impl BackgroundService for Housekeeper {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut flush = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = flush.tick() => self.flush(false).await,
                _ = shutdown.changed() => break,
                () = run::interrupted() => {
                    // SIGINT: no waiting for running requests (they are cut), but what is
                    // queued is written before the process ends.
                    self.flush(true).await;
                    run::Stop::get().drained("interrupted, the queues are written");
                    return;
                }
            }
        }
        // Stopping: the listeners accept no more, but running requests still queue refunds and
        // events until they end. Keep writing them; once none is left, write the rest and let
        // the process exit (see `run::Stop`).
        while crate::metrics::InFlight::count() > 0 {
            tokio::select! {
                _ = flush.tick() => self.flush(false).await,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        self.flush(true).await;
        run::Stop::get().drained("no request is running");
    }
}

/// Delivers the webhook outbox (see [`crate::share::webhooks`]).
struct WebhookWorker {
    deliverer: Arc<crate::share::webhooks::Deliverer>,
}

#[async_trait]
impl BackgroundService for WebhookWorker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut poll = tokio::time::interval(Duration::from_millis(250));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut gauge = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = poll.tick() => {
                    // While entries are due and slots free, lease more at once (a backlog after
                    // an outage drains at the deliveries' pace, not the poll's).
                    for _ in 0..64 {
                        if self.deliverer.poll().await == 0 {
                            break;
                        }
                    }
                }
                _ = gauge.tick() => self.deliverer.gauge().await,
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Follows link changes made by other instances and drops them from this instance's cache.
struct ChangeFollower {
    gate: Live,
}

#[async_trait]
impl BackgroundService for ChangeFollower {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gate = self.gate.clone();
        let on_change: crate::state::OnChange = Arc::new(move |id| match id {
            Some(id) => gate.links.cache.invalidate(&id),
            None => gate.links.cache.clear(),
        });
        tokio::select! {
            // Returns at once on the embedded store (nothing to follow): wait for the shutdown
            // then, so that Pingora's "service … exited" line does not read like a failure.
            _ = self.gate.links.store.follow_changes(on_change) => {
                let _ = shutdown.changed().await;
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Health checks of HTTP stores with several origins (pingora-load-balancing), so that requests
/// go to origins that answer.
struct StoreHealth {
    gate: Live,
}

#[async_trait]
impl BackgroundService for StoreHealth {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let mut wait: Option<Duration> = None;
            for store in self.gate.docstores.values() {
                if let Some(every) = store.check_health().await {
                    wait = Some(wait.map_or(every, |w| w.min(every)));
                }
            }
            // No store with several origins: nothing to check now. Look again later (a reload
            // may add one), and run until the shutdown, so that Pingora's "service … exited"
            // line does not read like a failure.
            let wait = wait.unwrap_or(Duration::from_secs(5));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// Sets up logging: text or JSON lines on stderr, filtered by `RUST_LOG` (default `info`).
///
/// Lines are written by a background thread in batches (see [`crate::app::logwriter`]), so a slow
/// stderr never blocks a request; if it falls more than 16 MiB behind, lines are dropped rather
/// than requests slowed. Keep the returned guard alive: dropping it writes what is queued.
pub fn init_logging(json: bool) -> Option<LogGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let max = filter.max_level_hint();
    let (writer, guard) = match BatchWriter::spawn(std::io::stderr()) {
        Ok((writer, guard)) => (BoxMakeWriter::new(writer), Some(guard)),
        Err(e) => {
            eprintln!("linkgate: no log writer thread ({e}); logging straight to stderr");
            (BoxMakeWriter::new(std::io::stderr), None)
        }
    };
    // Colour codes only for a terminal: in a log file they were noise, and formatting them was
    // ~1% of the proxy thread's CPU under load.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let set = if json {
        tracing::subscriber::set_global_default(builder.json().finish())
    } else {
        tracing::subscriber::set_global_default(builder.finish())
    };
    if set.is_ok() {
        logbridge::install(max);
    }
    guard
}

/// Threads of each service's blocking pool (dir store reads, embedded store transactions).
const BLOCKING_THREADS: usize = 32;

/// User-space buffers of a recipient's connection (Pingora's defaults: 64 KiB read, 1,460 B
/// write).
///
/// - Read: none. Requests are a header (Pingora reads it into its own buffer, which a read
///   buffer of ours only sat in front of) and at most an upload body (read in 64 KiB chunks,
///   which bypass it too), so the default 64 KiB buffer, allocated zeroed per connection, was
///   ~64 MiB of resident memory for 1,000 open downloads and saved no system call; 4 KiB was
///   still 4 MiB per 1,000 (heaptrack).
/// - Write 8 KiB: Pingora buffers a response with a `Content-Length` until it is complete, so a
///   header and a small body (our own pages, small documents) leave in one `sendto` instead of
///   two; body chunks larger than the buffer still go straight to the socket.
fn recipient_buffers() -> L4BufferSettings {
    L4BufferSettings::new(0, 8 * 1024)
}

/// Builds the server for `config`; `extra_origin` adds the demo's static origin.
pub fn build(
    config: &Config,
    extra_origin: Option<(StaticOrigin, String)>,
) -> Result<(Server, Live), StoreError> {
    build_with(config, extra_origin, false)
}

/// As [`build`]; with `upgrade`, the listening sockets are taken over from a running instance
/// (which was sent `SIGQUIT` and hands them over on `server.upgrade_sock`), so no connection is
/// refused while the old process finishes its downloads.
pub fn build_with(
    config: &Config,
    extra_origin: Option<(StaticOrigin, String)>,
    upgrade: bool,
) -> Result<(Server, Live), StoreError> {
    if upgrade && matches!(config.state, crate::config::StateConfig::Embedded { .. }) {
        return Err(StoreError::Unavailable(
            "serve --upgrade needs state.backend = \"redis\": the embedded store's file stays locked by the running instance until it exits".into(),
        ));
    }
    crate::model::link::set_generated(crate::render::pool::generated_names(&config.render));
    crate::share::pages::set_thumbnails(config.render.enabled);
    let gate = Live::new(build_gate(config, None)?);
    let conf = ServerConf {
        upgrade_sock: config.server.upgrade_sock.display().to_string(),
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.grace_period_seconds.min(10)),
        // Each origin connection waits out the relay's quarantine before it is pooled again, so
        // a busy gateway holds more of them than it has requests in flight.
        upstream_keepalive_pool_size: 1024,
        // Each slow download on a dir store waits on a positional read now and then; without a
        // cap tokio grew the pool to 512 threads for 1,000 of them (their stacks and heaps were
        // ~30 MiB, measured) while a read from the page cache takes microseconds.
        max_blocking_threads: Some(BLOCKING_THREADS),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let proxy = Proxy {
        gate: gate.clone(),
        relay: Relay::new(Some(ConnectorOptions::from_server_conf(
            &server.configuration,
        ))),
        client_read_timeout: config.server.client_read_timeout,
        client_write_timeout: config.server.client_write_timeout,
        upload_pace: config.upload_pace,
        hsts: config.server.tls.as_ref().and_then(|t| t.hsts.clone()),
        render: Arc::new(crate::render::Renderer::new(config.render.clone())),
    };
    let edge = crate::share::edge::Edge::new(
        pingora::proxy::http_proxy(&server.configuration, proxy),
        config.server.client_head_timeout,
        config.server.keepalive_timeout_seconds,
        config.server.client_read_timeout,
    );
    let listener =
        ListenerConfig::tcp(config.server.listen.to_string()).l4_buffer(recipient_buffers());
    match &config.server.tls {
        None => {
            let mut proxy = Service::new("linkgate proxy".to_string(), edge);
            proxy.add_listener(listener);
            server.add_service(proxy);
        }
        Some(tls) => {
            // The TLS handshake is done by the app (bounded by the head deadline), not by
            // Pingora's listener: see `crate::share::tls`.
            let certs = Arc::new(CertStore::new(tls));
            let app = TlsEdge::new(edge, &certs, config.server.client_head_timeout)
                .map_err(|e| StoreError::Unavailable(format!("server.tls: {e}")))?;
            let mut proxy = Service::new("linkgate proxy (TLS)".to_string(), app);
            proxy.add_listener(listener);
            server.add_service(proxy);
            server.add_service(background_service(
                "certificate reload",
                Reloader {
                    certs,
                    every: tls.reload_every,
                },
            ));
            if let Some(listen) = tls.redirect_listen {
                let redirect =
                    Redirect::new(&config.server.public_url, config.server.client_head_timeout);
                let mut redirect = Service::new("linkgate https redirect".to_string(), redirect);
                redirect.add_tcp(&listen.to_string());
                redirect.threads = Some(1);
                server.add_service(redirect);
            }
        }
    }

    let admin = AdminApi {
        gate: gate.clone(),
        body_limit: config.admin_body_limit,
    };
    let mut admin = Service::new("linkgate admin".to_string(), admin);
    admin.add_tcp(&config.admin.listen.to_string());
    admin.threads = Some(1);

    server.add_service(admin);
    server.add_service(background_service(
        "housekeeper",
        Housekeeper { gate: gate.clone() },
    ));
    server.add_service(background_service(
        "change follower",
        ChangeFollower { gate: gate.clone() },
    ));
    if let Some(webhooks) = &gate.webhooks {
        server.add_service(background_service(
            "webhooks",
            WebhookWorker {
                deliverer: crate::share::webhooks::Deliverer::new(gate.clone(), webhooks.clone()),
            },
        ));
    }
    server.add_service(background_service(
        "share mail",
        crate::admin::MailSweeper::new(gate.clone()),
    ));
    server.add_service(background_service(
        "expiry sweep",
        crate::share::status::ExpirySweeper::new(gate.clone(), config.expiry_sweep),
    ));
    server.add_service(background_service(
        "store health",
        StoreHealth { gate: gate.clone() },
    ));
    if let Some((origin, listen)) = extra_origin {
        let mut origin = Service::new("demo origin".to_string(), origin);
        origin.add_tcp(&listen);
        origin.threads = Some(1);
        server.add_service(origin);
    }
    Ok((server, gate))
}

/// Builds the core from a validated config. The first time (`previous` is `None`) this opens the
/// configured link store; a reload (`previous` is the gate in force) keeps its link store and
/// write-behind queues, so nothing queued is lost and running requests see the same counters,
/// and builds everything the config decides afresh (keys, stores, policy, mail, admin access;
/// an empty link cache).
pub fn build_gate(config: &Config, previous: Option<&Gate>) -> Result<Gate, StoreError> {
    let cache = match &config.state {
        StateConfig::Embedded { cache, .. } | StateConfig::Redis { cache, .. } => cache,
    };
    let store: Arc<dyn LinkStore> = match (previous, &config.state) {
        (Some(previous), _) => previous.links.store.clone(),
        (None, StateConfig::Embedded { path, .. }) => Arc::new(EmbeddedStore::open(path)?),
        (None, StateConfig::Redis { options, .. }) => Arc::new(RedisStore::new(options.clone())?),
    };
    // The pages' branding follows the config in force (start and reload).
    crate::share::pages::set_theme(config.branding.theme());
    let docstores = config
        .stores
        .iter()
        .map(|(name, s)| (name.clone(), Arc::new(DocStore::new(s))))
        .collect();
    Ok(Gate {
        links: Links {
            keys: config.keys.clone(),
            store,
            cache: LinkCache::new(cache.ttl, cache.capacity),
            legacy: LegacyLinks::new(config.secure_links.clone()),
            public_url: config.server.public_url.clone(),
        },
        docstores,
        writer: Writer::default(),
        counting: previous.map_or_else(Default::default, |p| p.counting.clone()),
        audit: Audit {
            // A reload keeps the queue (and its outbox bound: `[webhooks]` needs a restart).
            queue: match previous {
                Some(p) => p.audit.queue.clone(),
                None => Arc::new(match &config.webhooks {
                    Some(w) => AuditQueue::with_outbox(w.max_pending),
                    None => AuditQueue::default(),
                }),
            },
            retention: config.audit_retention,
            noted: Default::default(),
        },
        checks: Checks {
            verifier: Verifier::new(config.keys.clone(), config.server.cookie_secure),
            mailer: Mailer::from_config(&config.mail)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            page_limiter: PageLimiter::new(config.page_requests_per_minute),
        },
        policy: config.policy.clone(),
        admin: AdminAccess {
            token: config.admin.token.clone(),
            callers: config.admin.callers.clone(),
            idempotency_keep: config.admin.idempotency_keep,
        },
        webhooks: config.webhooks.clone().map(Arc::new),
    })
}
