//! The command line: `serve`, `reload`, `check-config`, `link …`, `share …`, `webhooks failed`,
//! `audit verify`, `origin`, `demo`.

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
    /// Internal: one render in a sandboxed child process (started by the gateway itself; the
    /// document on stdin, the result on stdout).
    #[command(hide = true)]
    RenderWorker { spec: String },
    /// Validate a config file and exit (0 when good).
    CheckConfig { config: PathBuf },
    /// Manage links through a running gateway's admin API.
    Link {
        #[command(flatten)]
        target: AdminTarget,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        action: LinkAction,
    },
    /// Share documents by mail through a running gateway: one link per recipient.
    Share {
        #[command(flatten)]
        target: AdminTarget,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        action: super::shares::ShareAction,
    },
    /// Webhooks of a running gateway: those given up after their last retry.
    Webhooks {
        #[command(flatten)]
        target: AdminTarget,
        #[command(flatten)]
        output: Output,
        #[command(subcommand)]
        action: WebhooksAction,
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

/// How admin commands print what the API answered.
#[derive(Args, Clone, Copy, Debug, Default)]
pub struct Output {
    /// Print the API's raw JSON (for scripts) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum WebhooksAction {
    /// List webhooks given up after their last retry, newest first, and how many are pending
    /// (the full admin token only).
    Failed,
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Fetch a link's events and check their hash chain; exits non-zero if it was tampered with.
    Verify { id: String },
}

/// The fields a link and a share have in common: every field of `POST /v1/links` but
/// `recipient` (a link takes one recipient, a share a list). Flattened into `link create` and
/// `share create`; [`super::links::link_fields_body`] turns it into the JSON body, so each field
/// is written once for both.
#[derive(Args, Debug, Default)]
pub struct LinkFields {
    /// The configured store the documents are in.
    #[arg(long)]
    pub store: String,
    /// The document's object key; repeat for several documents (or use --document).
    #[arg(long = "object", value_name = "KEY", conflicts_with = "documents")]
    pub objects: Vec<String>,
    /// Display name of the one document.
    #[arg(long)]
    pub filename: Option<String>,
    /// A rendition of the one document: NAME=OBJECT or NAME=OBJECT=FILENAME (repeatable).
    #[arg(long = "rendition", value_name = "NAME=OBJECT[=FILENAME]")]
    pub renditions: Vec<String>,
    /// One document of several: OBJECT or OBJECT=FILENAME, or its JSON object
    /// ({"object": …, "filename": …, "renditions": {…}}) (repeatable).
    #[arg(long = "document", value_name = "OBJECT[=FILENAME]")]
    pub documents: Vec<String>,
    /// RFC 3339 time, e.g. 2030-01-31T17:00:00Z.
    #[arg(long)]
    pub expires_at: Option<String>,
    /// How many downloads the link allows in all.
    #[arg(long)]
    pub max_downloads: Option<u64>,
    /// Comma-separated: view, download, download:<rendition>, upload, review (view and
    /// comment), approve (view and approve or reject).
    #[arg(long, value_delimiter = ',')]
    pub rights: Option<Vec<String>>,
    /// Who shares it (recorded as created_by; a share's sender name defaults to it).
    #[arg(long)]
    pub created_by: Option<String>,
    /// The password (visible to other users of this machine in the process list: prefer
    /// --password-file or --password-env).
    #[arg(long, group = "password_source")]
    pub password: Option<String>,
    /// Read the password from the first line of this file ("-": standard input).
    #[arg(long, value_name = "PATH", group = "password_source")]
    pub password_file: Option<std::path::PathBuf>,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR", group = "password_source")]
    pub password_env: Option<String>,
    /// What a document changed at its store means: serve_latest or refuse.
    #[arg(long)]
    pub on_change: Option<String>,
    /// Folder uploads land in (with the `upload` right).
    #[arg(long)]
    pub upload_folder: Option<String>,
    /// Replace a file of the same name.
    #[arg(long, requires = "upload_folder")]
    pub upload_overwrite: bool,
    /// How many files the link accepts in all.
    #[arg(long, requires = "upload_folder")]
    pub upload_max_files: Option<u64>,
    /// Largest file accepted, in bytes.
    #[arg(long, requires = "upload_folder")]
    pub upload_max_bytes: Option<u64>,
    /// Comma-separated media types accepted (application/pdf, image/*).
    #[arg(long, value_delimiter = ',', requires = "upload_folder")]
    pub upload_types: Option<Vec<String>>,
    /// This link's events also go to this URL, signed with the secret (needs
    /// --webhook-secret-env or --webhook-secret-file; the gateway must allow per-link webhooks).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Read the webhook's signing secret from this environment variable (a secret is never
    /// taken on the command line).
    #[arg(
        long,
        value_name = "VAR",
        requires = "webhook_url",
        conflicts_with = "webhook_secret_file"
    )]
    pub webhook_secret_env: Option<String>,
    /// Read the webhook's signing secret from the first line of this file ("-": standard input).
    #[arg(long, value_name = "PATH", requires = "webhook_url")]
    pub webhook_secret_file: Option<std::path::PathBuf>,
    /// Comma-separated event kinds the webhook gets (default: all), e.g.
    /// download.completed,review.decided.
    #[arg(long, value_delimiter = ',', requires = "webhook_url")]
    pub webhook_events: Option<Vec<String>>,
    /// An address mailed once, on the first completed download.
    #[arg(long, value_name = "ADDRESS")]
    pub notify_sender: Option<String>,
}

/// `link create`: the shared link fields and the one recipient.
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    #[command(flatten)]
    pub link: LinkFields,
    /// A named recipient's address: their browsers are verified (first trusted, others by code).
    #[arg(long)]
    pub email: Option<String>,
    /// Ask even the first browser for a mailed code (needs --email).
    #[arg(long, requires = "email")]
    pub require_code: bool,
    /// A named recipient without an address: browsers may only view (add one later with
    /// `update --email`).
    #[arg(long, conflicts_with = "email")]
    pub recipient_without_email: bool,
}

/// Every field of `PATCH /v1/links/{id}`.
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    pub id: String,
    /// RFC 3339 time, or "never" to remove the expiry.
    #[arg(long)]
    pub expires_at: Option<String>,
    /// A number, or "none" to remove the limit.
    #[arg(long)]
    pub max_downloads: Option<String>,
    #[arg(long)]
    pub filename: Option<String>,
    #[arg(long)]
    pub changed_by: Option<String>,
    /// A new password (logs every browser out; visible in the process list: prefer
    /// --password-file or --password-env).
    #[arg(long, group = "new_password")]
    pub password: Option<String>,
    /// Read the new password from the first line of this file ("-": standard input).
    #[arg(long, value_name = "PATH", group = "new_password")]
    pub password_file: Option<std::path::PathBuf>,
    /// Read the new password from this environment variable.
    #[arg(long, value_name = "VAR", group = "new_password")]
    pub password_env: Option<String>,
    /// Remove the password.
    #[arg(long, group = "new_password")]
    pub remove_password: bool,
    /// serve_latest or refuse.
    #[arg(long)]
    pub on_change: Option<String>,
    /// Add or replace the recipient's address (makes a recipient without one verifiable).
    #[arg(long)]
    pub email: Option<String>,
    /// true or false (with --email; default: true when the recipient had no address).
    #[arg(long, requires = "email")]
    pub require_code: Option<bool>,
}

#[derive(Subcommand)]
pub enum LinkAction {
    /// Create a link and print it (its URL also goes to standard error).
    Create(Box<CreateArgs>),
    /// Show a link.
    Show { id: String },
    /// List links, newest first (one page; pass the printed `next` as --after for more).
    List {
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        store: Option<String>,
        #[arg(long)]
        created_by: Option<String>,
        /// Stored state: active, deactivated or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// active, expired, exhausted, deactivated or cancelled.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        after: Option<String>,
    },
    /// Change expiry, limit, name, password, change policy or recipient address (expiry, limit
    /// and password changes restart the counter).
    Update(Box<UpdateArgs>),
    /// Print a link's audit events.
    Events { id: String },
    /// Cancel a link for good.
    Cancel {
        id: String,
        /// Who cancels it (recorded as cancelled_by and on the event).
        #[arg(long)]
        by: Option<String>,
    },
    /// Stop access to a link until it is activated again.
    Deactivate {
        id: String,
        /// Who does it (recorded on the event).
        #[arg(long)]
        by: Option<String>,
    },
    /// Resume access to a deactivated link.
    Activate {
        id: String,
        /// Who does it (recorded on the event).
        #[arg(long)]
        by: Option<String>,
    },
    /// Deactivate or cancel every link of an object, a share or a creator, in one call
    /// (`POST /v1/links/bulk`; each link gets its own event).
    #[command(group(clap::ArgGroup::new("selector").required(true).args(["object", "share", "created_by"])))]
    Bulk {
        /// deactivate or cancel.
        #[arg(value_parser = ["deactivate", "cancel"])]
        action: String,
        /// Every link to this object key.
        #[arg(long)]
        object: Option<String>,
        /// Every recipient's link of this share.
        #[arg(long)]
        share: Option<String>,
        /// Every link this creator made.
        #[arg(long)]
        created_by: Option<String>,
        /// Who does it (recorded as cancelled_by and on the events).
        #[arg(long)]
        by: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bulk_takes_exactly_one_selector() {
        let ok = [
            "linkgate", "link", "bulk", "cancel", "--object", "a.pdf", "--by", "dms",
        ];
        assert!(Cli::try_parse_from(ok).is_ok());
        for bad in [
            vec!["linkgate", "link", "bulk", "cancel"],
            vec![
                "linkgate", "link", "bulk", "cancel", "--object", "a", "--share", "b",
            ],
            vec!["linkgate", "link", "bulk", "erase", "--object", "a"],
        ] {
            assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn link_and_share_create_take_the_same_link_flags() {
        let link = Cli::try_parse_from([
            "linkgate",
            "link",
            "create",
            "--store",
            "docs",
            "--object",
            "a.pdf",
            "--rights",
            "view,review,approve",
            "--webhook-url",
            "https://dms.example.org/h",
            "--webhook-secret-env",
            "HOOK_SECRET",
            "--webhook-events",
            "download.completed,review.decided",
            "--notify-sender",
            "alice@example.org",
        ])
        .map_err(|e| e.to_string());
        let Ok(Cli {
            command:
                Command::Link {
                    action: LinkAction::Create(link),
                    ..
                },
        }) = link
        else {
            panic!("link create did not parse: {:?}", link.err())
        };
        let share = Cli::try_parse_from([
            "linkgate",
            "share",
            "create",
            "--store",
            "docs",
            "--object",
            "a.pdf",
            "--rights",
            "view,review,approve",
            "--webhook-url",
            "https://dms.example.org/h",
            "--webhook-secret-env",
            "HOOK_SECRET",
            "--webhook-events",
            "download.completed,review.decided",
            "--notify-sender",
            "alice@example.org",
            "--to",
            "jane@example.org",
        ])
        .map_err(|e| e.to_string());
        let Ok(Cli {
            command:
                Command::Share {
                    action: super::super::shares::ShareAction::Create(share),
                    ..
                },
        }) = share
        else {
            panic!("share create did not parse: {:?}", share.err())
        };
        assert_eq!(format!("{:?}", link.link), format!("{:?}", share.link));
    }

    #[test]
    fn secrets_are_never_taken_on_the_command_line_and_sources_exclude_each_other() {
        for args in [
            &["--webhook-url", "https://x.org/h", "--webhook-secret", "s"][..],
            &["--webhook-secret-env", "S"][..],
            &[
                "--webhook-url",
                "https://x.org/h",
                "--webhook-secret-env",
                "S",
                "--webhook-secret-file",
                "f",
            ][..],
            &["--password", "p", "--password-env", "P"][..],
            &["--password-file", "f", "--password-env", "P"][..],
        ] {
            let mut line = vec!["linkgate", "link", "create", "--store", "docs"];
            line.extend_from_slice(args);
            assert!(Cli::try_parse_from(&line).is_err(), "{args:?} was accepted");
        }
    }
}
