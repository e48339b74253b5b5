//! Wiring: a validated config becomes a Pingora server with the recipients' proxy, the admin API
//! and the background usage flusher. No request logic lives here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};
use pingora::services::listening::Service;

use crate::admin::AdminApi;
use crate::config::Config;
use crate::gate::Gate;
use crate::origin::StaticOrigin;
use crate::proxy::Proxy;
use crate::store::StoreError;

/// Writes batched usage of unlimited links every second, and once more at shutdown.
struct UsageFlusher {
    gate: Arc<Gate>,
}

#[async_trait]
impl BackgroundService for UsageFlusher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => self.gate.usage.flush(&self.gate.store).await,
                _ = shutdown.changed() => {
                    self.gate.usage.flush(&self.gate.store).await;
                    return;
                }
            }
        }
    }
}

/// Sets up logging: text or JSON lines on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Builds the server for `config`; `extra_origin` adds the demo's static origin.
pub fn build(config: &Config, extra_origin: Option<(StaticOrigin, String)>) -> Result<(Server, Arc<Gate>), StoreError> {
    let gate = Arc::new(Gate::from_config(config)?);
    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.grace_period_seconds.min(10)),
        upstream_keepalive_pool_size: 256,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let proxy = Proxy {
        gate: gate.clone(),
        client_read_timeout: config.server.client_read_timeout,
        client_write_timeout: config.server.client_write_timeout,
    };
    let mut proxy = pingora::proxy::http_proxy_service_with_name(&server.configuration, proxy, "linkgate proxy");
    proxy.add_tcp(&config.server.listen.to_string());

    let admin = AdminApi { gate: gate.clone(), token: config.admin.token.clone(), body_limit: config.admin_body_limit };
    let mut admin = Service::new("linkgate admin".to_string(), admin);
    admin.add_tcp(&config.admin.listen.to_string());
    admin.threads = Some(1);

    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(background_service("usage flusher", UsageFlusher { gate: gate.clone() }));
    if let Some((origin, listen)) = extra_origin {
        let mut origin = Service::new("demo origin".to_string(), origin);
        origin.add_tcp(&listen);
        origin.threads = Some(1);
        server.add_service(origin);
    }
    Ok((server, gate))
}
