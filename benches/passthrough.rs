//! The framework's floor for the load bench: a bare Pingora 0.9 proxy that only picks the origin.
//!
//! `benches/load/run.sh` starts it beside the origin, nginx `secure_link` and linkgate, with the
//! same worker threads and the same keep-alive pool size as linkgate, so every figure shows how much
//! of a gap to nginx is Pingora's and how much is linkgate's. It checks nothing, counts nothing and
//! logs nothing: whatever linkgate does beyond this is the price of its features.
//!
//! Run by the load script as `passthrough --listen 127.0.0.1:PORT --origin 127.0.0.1:PORT
//! --threads N`. Under `cargo bench` (no `--listen`), it says what it is and exits, so the
//! criterion benches can run beside it.

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};

struct Passthrough {
    origin: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.origin, false, String::new())))
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(origin)) = (arg(&args, "--listen"), arg(&args, "--origin")) else {
        println!(
            "passthrough: the load bench's bare Pingora proxy (benches/load/run.sh starts it)"
        );
        return;
    };
    let Ok(origin) = origin.parse() else {
        eprintln!("passthrough: --origin must be an IP address and port, got {origin}");
        std::process::exit(2);
    };
    let threads = arg(&args, "--threads")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let conf = ServerConf {
        threads,
        // The same pool size as linkgate's (src/app/mod.rs).
        upstream_keepalive_pool_size: 1024,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: false,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Passthrough { origin });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
