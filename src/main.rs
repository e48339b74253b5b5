//! The `linkgate` command: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use linkgate::cli::demo_origin::StaticOrigin;
use linkgate::cli::AdminClient;
use linkgate::config::{Config, StoreConfig};

/// mimalloc: less time in malloc on the request path, and freed stream buffers go back to the
/// system instead of fragmenting per-thread arenas (flat memory under many slow downloads).
/// `--features system-alloc` builds with the system allocator instead, for heap profilers
/// (heaptrack sees only malloc).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "linkgate",
    version,
    about = "Share-link gateway in front of document stores"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: recipients' proxy and admin API.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Take the listening sockets over from a running instance (send it SIGQUIT after
        /// starting this one); both must use the same `server.upgrade_sock`.
        #[arg(long, short = 'u')]
        upgrade: bool,
    },
    /// Validate a config file and exit (0 when good).
    CheckConfig { config: PathBuf },
    /// Manage links through a running gateway's admin API.
    Link {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        action: LinkAction,
    },
    /// Check audit trails.
    Audit {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Serve a folder as a plain HTTP origin (GET/HEAD/Range), for trying linkgate out.
    Origin {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
    },
    /// Run the gateway on the embedded store in front of a demo origin and print a working link.
    Demo {
        #[arg(long, short, default_value = "config/linkgate.toml")]
        config: PathBuf,
    },
}

#[derive(Args)]
struct AdminTarget {
    /// Admin API base URL (default: from --config, else http://127.0.0.1:9090).
    #[arg(long, env = "LINKGATE_ADMIN_URL", global = true)]
    admin_url: Option<String>,
    /// Admin bearer token (default: from --config).
    #[arg(
        long,
        env = "LINKGATE_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    token: Option<String>,
    /// Read the admin URL and token from this gateway config.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditAction {
    /// Fetch a link's events and check their hash chain; exits non-zero if it was tampered with.
    Verify { id: String },
}

#[derive(Subcommand)]
enum LinkAction {
    /// Create a link and print its URL.
    Create {
        #[arg(long)]
        store: String,
        #[arg(long)]
        object: String,
        #[arg(long)]
        filename: Option<String>,
        /// RFC 3339 time, e.g. 2030-01-31T17:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        max_downloads: Option<u64>,
        /// Comma-separated: view, download.
        #[arg(long, value_delimiter = ',')]
        rights: Option<Vec<String>>,
        #[arg(long)]
        created_by: Option<String>,
    },
    /// Show a link as JSON.
    Show { id: String },
    /// List links, newest first (one page; pass the printed `next` as --after for more).
    List {
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        store: Option<String>,
        #[arg(long)]
        created_by: Option<String>,
        /// active, deactivated or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        after: Option<String>,
    },
    /// Change expiry, limit or display name (expiry and limit changes restart the counter).
    Update {
        id: String,
        /// RFC 3339 time, or "never" to remove the expiry.
        #[arg(long)]
        expires_at: Option<String>,
        /// A number, or "none" to remove the limit.
        #[arg(long)]
        max_downloads: Option<String>,
        #[arg(long)]
        filename: Option<String>,
        #[arg(long)]
        changed_by: Option<String>,
    },
    /// Print a link's audit events.
    Events { id: String },
    /// Cancel a link for good.
    Cancel { id: String },
    /// Stop access to a link until it is activated again.
    Deactivate { id: String },
    /// Resume access to a deactivated link.
    Activate { id: String },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("linkgate: {message}");
    ExitCode::FAILURE
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(fail)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, upgrade } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let _logs = linkgate::app::init_logging(config.log_json);
            match linkgate::app::build_with(&config, None, upgrade) {
                Ok((server, _)) => {
                    tracing::info!(listen = %config.server.listen, admin = %config.admin.listen, upgrade, "linkgate serving");
                    server.run_forever()
                }
                Err(e) => fail(e),
            }
        }
        Command::CheckConfig { config } => match load(&config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} store(s), signing key `{}`)",
                    config.display(),
                    c.stores.len(),
                    c.keys.signing_key_id()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Link { target, action } => link(target, action),
        Command::Audit {
            target,
            action: AuditAction::Verify { id },
        } => {
            let client = match admin_client(target) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match client
                .all_events(&id)
                .map_err(|e| e.to_string())
                .and_then(|events| linkgate::cli::verify_chain(&id, &events))
            {
                Ok(n) => {
                    println!("link {id}: audit chain intact ({n} events)");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("link {id}: audit chain does not verify: {e}")),
            }
        }
        Command::Origin { dir, listen } => {
            let _logs = linkgate::app::init_logging(false);
            let origin = match StaticOrigin::new(&dir) {
                Ok(o) => o,
                Err(e) => return fail(format!("{}: {e}", dir.display())),
            };
            let mut server =
                pingora::server::Server::new_with_opt_and_conf(None, Default::default());
            server.bootstrap();
            let mut service =
                pingora::services::listening::Service::new("origin".to_string(), origin);
            service.add_tcp(&listen);
            server.add_service(service);
            eprintln!("serving {} on http://{listen}/", dir.display());
            server.run_forever()
        }
        Command::Demo { config } => demo(&config),
    }
}

fn admin_client(target: AdminTarget) -> Result<AdminClient, ExitCode> {
    let from_config = match &target.config {
        Some(path) => Some(load(path)?),
        None => None,
    };
    let url = target
        .admin_url
        .or_else(|| {
            from_config
                .as_ref()
                .map(|c| format!("http://{}", c.admin.listen))
        })
        .unwrap_or_else(|| "http://127.0.0.1:9090".to_string());
    let Some(token) = target
        .token
        .or_else(|| from_config.as_ref().map(|c| c.admin.token.clone()))
    else {
        return Err(fail(
            "an admin token is needed: --token, LINKGATE_ADMIN_TOKEN or --config",
        ));
    };
    Ok(AdminClient::new(&url, &token))
}

fn link(target: AdminTarget, action: LinkAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match action {
        LinkAction::Create {
            store,
            object,
            filename,
            expires_at,
            max_downloads,
            rights,
            created_by,
        } => client.create(&json!({
            "store": store, "object": object, "filename": filename, "expires_at": expires_at,
            "max_downloads": max_downloads, "rights": rights, "created_by": created_by,
        })),
        LinkAction::Show { id } => client.show(&id),
        LinkAction::List {
            object,
            store,
            created_by,
            state,
            limit,
            after,
        } => {
            let params: Vec<(&str, String)> = [
                ("object", object),
                ("store", store),
                ("created_by", created_by),
                ("state", state),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
            client.list(&params)
        }
        LinkAction::Update {
            id,
            expires_at,
            max_downloads,
            filename,
            changed_by,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(e) = expires_at {
                body.insert(
                    "expires_at".into(),
                    if e == "never" {
                        Value::Null
                    } else {
                        Value::String(e)
                    },
                );
            }
            if let Some(m) = max_downloads {
                let value = match m.as_str() {
                    "none" => Value::Null,
                    n => match n.parse::<u64>() {
                        Ok(n) => Value::from(n),
                        Err(_) => return fail("--max-downloads takes a number or \"none\""),
                    },
                };
                body.insert("max_downloads".into(), value);
            }
            if let Some(f) = filename {
                body.insert("filename".into(), Value::String(f));
            }
            if let Some(c) = changed_by {
                body.insert("changed_by".into(), Value::String(c));
            }
            client.update(&id, &Value::Object(body))
        }
        LinkAction::Events { id } => client
            .all_events(&id)
            .map(|events| json!({ "link": id, "events": events })),
        LinkAction::Cancel { id } => client.cancel(&id),
        LinkAction::Deactivate { id } => client.set_active(&id, false),
        LinkAction::Activate { id } => client.set_active(&id, true),
    };
    match result {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            if let Some(url) = value.get("url").and_then(Value::as_str) {
                eprintln!("link: {url}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The demo: the example config's gateway, plus a static origin on the first store's address
/// serving generated sample files, plus a freshly created link.
fn demo(config_path: &std::path::Path) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _logs = linkgate::app::init_logging(config.log_json);
    let Some((store_name, StoreConfig::Http(store))) = config.stores.iter().next() else {
        return fail("the demo needs an http store first in the config");
    };
    let Some(store) = store.origins.first() else {
        return fail("the config names no origin");
    };
    let dir = PathBuf::from("data/demo-files");
    let sample = dir.join("welcome.txt");
    let big = dir.join("sample-8MiB.bin");
    let prepared = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&sample, "Hello from behind linkgate.\n"))
        .and_then(|_| {
            std::fs::write(
                &big,
                (0..8u32 * 1024 * 1024)
                    .map(|i| (i % 251) as u8)
                    .collect::<Vec<u8>>(),
            )
        });
    if let Err(e) = prepared {
        return fail(format!(
            "cannot write demo files under {}: {e}",
            dir.display()
        ));
    }
    let origin = match StaticOrigin::new(&dir) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    // The demo origin serves its files at `/`; the store's base path is stripped by serving the
    // files from a folder of that name.
    let nested = dir.join(store.base_path.trim_matches('/'));
    if !store.base_path.trim_matches('/').is_empty() {
        let moved = std::fs::create_dir_all(&nested)
            .and_then(|_| std::fs::copy(&sample, nested.join("welcome.txt")))
            .and_then(|_| std::fs::copy(&big, nested.join("sample-8MiB.bin")));
        if let Err(e) = moved {
            return fail(e);
        }
    }
    let (server, gate) = match linkgate::app::build(&config, Some((origin, store.addr.to_string())))
    {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let doc = linkgate::model::link::Document::new(
        "welcome.txt".into(),
        "Welcome to linkgate.txt".into(),
        None,
    );
    let mut link = linkgate::model::link::Link::new(
        store_name,
        doc,
        gate.keys.signing_key_id(),
        time::OffsetDateTime::now_utc(),
    );
    link.expires_at = Some(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    link.max_downloads = Some(5);
    link.created_by = Some("demo".into());
    let created = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| linkgate::state::StoreError::Unavailable(e.to_string()))
        .and_then(|rt| rt.block_on(gate.store.create(&link)));
    if let Err(e) = created {
        return fail(e);
    }
    let url = gate.url_of(&link).unwrap_or_default();
    println!("\nlinkgate demo is running (Ctrl-C to stop).");
    println!(
        "  origin : http://{} (serving {})",
        store.addr,
        dir.display()
    );
    println!("  gateway: {}", config.server.public_url);
    println!(
        "  admin  : http://{} (token from {})",
        config.admin.listen,
        config_path.display()
    );
    println!("\nA link to welcome.txt, good for 5 downloads within 24 hours:\n\n  {url}\n");
    println!("Try:  curl -OJ '{url}'");
    println!("Mint another (in a second shell):");
    println!("  cargo run --release -- link --config {} create --store {store_name} --object sample-8MiB.bin --max-downloads 3\n", config_path.display());
    server.run_forever()
}
