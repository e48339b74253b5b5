//! The command line: `serve`, `reload`, `check-config`, `link …`, `share …`, `audit verify`, `origin`,
//! `demo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "linkgate",
    version,
    about = "Share-link gateway in front of document stores"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway: recipients' proxy and admin API.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// Take the listening sockets over from a running instance (send it SIGQUIT after
        /// starting this one); both must use the same `server.upgrade_sock`.
        #[arg(long, short = 'u')]
        upgrade: bool,
    },
    /// Check a config file, then have the running gateway reload it (SIGHUP to the process in
    /// `server.pid_file`, or --pid); the outcome is in the gateway's log.
    Reload {
        #[arg(long, short)]
        config: PathBuf,
        /// The gateway's process id (default: read from `server.pid_file`).
        #[arg(long)]
        pid: Option<i32>,
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
    /// Share documents by mail through a running gateway: one link per recipient.
    Share {
        #[command(flatten)]
        target: AdminTarget,
        #[command(subcommand)]
        action: super::shares::ShareAction,
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
pub struct AdminTarget {
    /// Admin API base URL (default: from --config, else http://127.0.0.1:9090).
    #[arg(long, env = "LINKGATE_ADMIN_URL", global = true)]
    pub admin_url: Option<String>,
    /// Admin bearer token (default: from --config).
    #[arg(
        long,
        env = "LINKGATE_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Read the admin URL and token from this gateway config.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Fetch a link's events and check their hash chain; exits non-zero if it was tampered with.
    Verify { id: String },
}

#[derive(Subcommand)]
pub enum LinkAction {
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
