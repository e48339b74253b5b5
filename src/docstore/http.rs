//! HTTP stores: one or more origins serving the same files.
//!
//! Origins are health-checked in the background (pingora-load-balancing: a GET of
//! `health_check_path`, any answer below 500 being healthy, or else a TCP connect) and chosen
//! round-robin among the healthy ones. A request whose connection to its origin fails is retried
//! on an origin it has not tried yet; once the request has reached an origin it is never repeated.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, LoadBalancer};
use pingora::upstreams::peer::HttpPeer;

use super::{encoded_path, probe, Attempt, FORWARDED_REQUEST_HEADERS};
use crate::docstore::settings::{HttpStoreConfig, OriginConfig};
use crate::metrics::{metrics, StoreSeries};

pub struct HttpStore {
    pub config: HttpStoreConfig,
    pub metrics: &'static StoreSeries,
    peers: Vec<HttpPeer>,
    lb: LoadBalancer<RoundRobin>,
}

/// A peer with the store's timeouts (keep-alive connections are pooled by Pingora per peer).
pub(crate) fn peer_for(
    origin: &OriginConfig,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> HttpPeer {
    let mut peer = HttpPeer::new(origin.addr, origin.tls, origin.sni.clone());
    peer.options.connection_timeout = Some(connect_timeout);
    peer.options.total_connection_timeout = Some(connect_timeout * 2);
    peer.options.read_timeout = Some(read_timeout);
    peer.options.write_timeout = Some(read_timeout);
    peer.options.idle_timeout = Some(Duration::from_secs(60));
    peer.options.ca = origin.ca.as_ref().map(|ca| ca.0.clone());
    peer
}

/// One health check per origin (they may differ in host, TLS and base path).
enum Check {
    Tcp(Box<TcpHealthCheck>),
    Http(Box<HttpHealthCheck>),
}

struct OriginChecks {
    store: String,
    checks: Vec<(SocketAddr, Check)>,
}

#[async_trait]
impl HealthCheck for OriginChecks {
    async fn check(&self, target: &Backend) -> pingora::Result<()> {
        let check = target
            .addr
            .as_inet()
            .and_then(|addr| self.checks.iter().find(|(a, _)| a == addr))
            .map(|(_, c)| c);
        match check {
            Some(Check::Tcp(c)) => c.check(target).await,
            Some(Check::Http(c)) => c.check(target).await,
            None => pingora::Error::e_explain(pingora::ErrorType::InternalError, "unknown origin"),
        }
    }

    async fn health_status_change(&self, target: &Backend, healthy: bool) {
        if healthy {
            tracing::info!(store = %self.store, origin = %target.addr, "origin is healthy again");
        } else {
            metrics().store(&self.store).error("connect");
            tracing::warn!(store = %self.store, origin = %target.addr, "origin failed its health check");
        }
    }

    fn health_threshold(&self, _success: bool) -> usize {
        1
    }
}

impl HttpStore {
    pub fn new(config: HttpStoreConfig) -> HttpStore {
        let peers: Vec<HttpPeer> = config
            .origins
            .iter()
            .map(|o| peer_for(o, config.connect_timeout, config.read_timeout))
            .collect();
        let checks = config
            .origins
            .iter()
            .map(|o| {
                let check = match &config.health_check_path {
                    None => {
                        let mut c = if o.tls {
                            TcpHealthCheck::new_tls(&o.sni)
                        } else {
                            TcpHealthCheck::new()
                        };
                        c.peer_template.options.connection_timeout = Some(config.connect_timeout);
                        c.peer_template.options.ca = o.ca.as_ref().map(|ca| ca.0.clone());
                        Check::Tcp(c)
                    }
                    Some(path) => {
                        let mut c = HttpHealthCheck::new(&o.host_header, o.tls);
                        c.peer_template = peer_for(
                            o,
                            config.connect_timeout,
                            config.connect_timeout.max(Duration::from_secs(1)),
                        );
                        let mut req = RequestHeader::build("GET", path.as_bytes(), Some(3))
                            .unwrap_or_else(|_| c.req.clone());
                        let _ = req.insert_header(::http::header::HOST, o.host_header.as_str());
                        if let Some((name, value)) = &config.auth_header {
                            let _ = req.insert_header(name.clone(), value.clone());
                        }
                        c.req = req;
                        c.validator = Some(Box::new(|resp: &ResponseHeader| {
                            if resp.status.as_u16() < 500 {
                                Ok(())
                            } else {
                                pingora::Error::e_explain(
                                    pingora::ErrorType::HTTPStatus(resp.status.as_u16()),
                                    "health check",
                                )
                            }
                        }));
                        Check::Http(Box::new(c))
                    }
                };
                (o.addr, check)
            })
            .collect();
        let mut lb =
            LoadBalancer::<RoundRobin>::try_from_iter(config.origins.iter().map(|o| o.addr))
                .unwrap_or_else(|e| panic!("static backends from resolved addresses: {e}"));
        lb.set_health_check(Box::new(OriginChecks {
            store: config.name.clone(),
            checks,
        }));
        let metrics = metrics().store(&config.name);
        HttpStore {
            config,
            metrics,
            peers,
            lb,
        }
    }

    pub fn origin_count(&self) -> usize {
        self.peers.len()
    }

    fn index_of(&self, backend: &Backend) -> Option<usize> {
        let addr = backend.addr.as_inet()?;
        self.config.origins.iter().position(|o| &o.addr == addr)
    }

    /// The next origin to try: a healthy one not tried yet, else any not tried yet, else the first.
    pub fn peer(&self, attempt: &mut Attempt) -> Box<HttpPeer> {
        let chosen = if self.peers.len() == 1 {
            0
        } else {
            let untried = |b: &Backend| self.index_of(b).is_some_and(|i| !attempt.tried(i));
            self.lb
                .select_with(b"", 256, |b, healthy| healthy && untried(b))
                .or_else(|| self.lb.select_with(b"", 256, |b, _| untried(b)))
                .and_then(|b| self.index_of(&b))
                .unwrap_or(0)
        };
        attempt.mark(chosen);
        Box::new(self.peers[chosen].clone())
    }

    pub fn request(
        &self,
        origin: usize,
        method: &::http::Method,
        key: &str,
        client: &RequestHeader,
    ) -> pingora::Result<RequestHeader> {
        let o = &self.config.origins[origin.min(self.config.origins.len() - 1)];
        let path = encoded_path(&o.base_path, key);
        let mut out = RequestHeader::build(method.clone(), path.as_bytes(), Some(8))?;
        out.insert_header(::http::header::HOST, o.host_header.as_str())?;
        for name in FORWARDED_REQUEST_HEADERS {
            for value in client.headers.get_all(name) {
                out.append_header(name, value.clone())?;
            }
        }
        if let Some((name, value)) = &self.config.auth_header {
            out.insert_header(name.clone(), value.clone())?;
        }
        Ok(out)
    }

    pub async fn meta_of(&self, key: &str) -> Option<super::ObjectMeta> {
        let mut attempt = Attempt::default();
        let peer = self.peer(&mut attempt);
        let empty = RequestHeader::build(::http::Method::HEAD, b"/", None).ok()?;
        let req = self
            .request(attempt.origin, &::http::Method::HEAD, key, &empty)
            .ok()?;
        let resp = probe(&peer, req, Duration::from_secs(2)).await.ok()?;
        resp.status
            .is_success()
            .then(|| super::ObjectMeta::of_response(&resp))
    }

    /// Runs the health check now; ready when at least one origin passes.
    pub async fn ready(&self) -> Result<(), String> {
        self.lb.backends().run_health_check(true).await;
        let backends = self.lb.backends().get_backend();
        if backends.iter().any(|b| self.lb.backends().ready(b)) {
            Ok(())
        } else {
            Err(format!(
                "none of its {} origin(s) is reachable",
                self.peers.len()
            ))
        }
    }

    /// One background health-check pass; returns how long to wait for the next.
    pub async fn check_health(&self) -> Option<Duration> {
        if self.peers.len() < 2 {
            return None; // one origin: nothing to choose between
        }
        self.lb.backends().run_health_check(true).await;
        Some(self.config.health_check_interval)
    }
}
