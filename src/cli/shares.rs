//! `linkgate share …`: shares through a running gateway's admin API (`/v1/shares`). `share create`
//! takes the same link flags as `link create` ([`LinkFields`], one builder for both) and the
//! share's own. Each command prints a table for people by default and the API's JSON with
//! `--json` for scripts.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::args::{AdminTarget, LinkFields, Output};
use super::client::{encode, CliError};
use super::commands::{admin_client, fail};
use super::links::{is_stdin, link_fields_body, read_secrets, ArgError, Secrets};
use super::table::{cell, Table};

#[derive(Subcommand)]
pub enum ShareAction {
    /// Create a share: one link per recipient, each mailed by the gateway.
    Create(Box<CreateArgs>),
    /// Show a share: its recipients, their delivery and their links.
    Show { id: String },
    /// List shares, newest first: all, or the history of one document (`--object`).
    List {
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        after: Option<String>,
    },
    /// Mail a recipient their link again.
    Resend {
        id: String,
        /// The recipient's link id.
        link: String,
    },
    /// Revoke one recipient (their link is cancelled; the others keep working).
    Revoke {
        id: String,
        link: String,
        /// Recorded as who revoked it.
        #[arg(long)]
        by: Option<String>,
    },
    /// Cancel the whole share (every recipient's link).
    Cancel {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
}

/// What `share create` takes: the same link flags as `link create` ([`LinkFields`]) and the
/// share's own: recipients, subject, message and sender.
#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    #[command(flatten)]
    pub link: LinkFields,
    /// A recipient: `jane@example.org` or `"Jane Doe <jane@example.org>"`; repeat for more.
    #[arg(long = "to", value_name = "RECIPIENT", required = true)]
    pub to: Vec<String>,
    /// Ask every recipient's first browser for a mailed code too.
    #[arg(long)]
    pub require_code: bool,
    /// The mail's subject (default: "{sender} shared {document} with you").
    #[arg(long)]
    pub subject: Option<String>,
    /// The message in the mail (line breaks kept).
    #[arg(long)]
    pub message: Option<String>,
    /// Read the message from this file (`-` for standard input).
    #[arg(long, value_name = "PATH", conflicts_with = "message")]
    pub message_file: Option<std::path::PathBuf>,
    /// The sender's name shown in the mail (default: --created-by).
    #[arg(long)]
    pub sender_name: Option<String>,
    /// The sender's address (the mail's Reply-To).
    #[arg(long)]
    pub sender_email: Option<String>,
}

/// `"Jane Doe <jane@example.org>"` or `jane@example.org` as a recipient object.
pub fn recipient_arg(text: &str) -> Value {
    let text = text.trim();
    match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => {
            let name = text[..open].trim().trim_matches('"').trim();
            let email = text[open + 1..text.len() - 1].trim();
            if name.is_empty() {
                json!({ "email": email })
            } else {
                json!({ "email": email, "name": name })
            }
        }
        _ => json!({ "email": text }),
    }
}

fn by_query(by: Option<String>) -> String {
    by.map(|b| format!("?by={}", encode(&b)))
        .unwrap_or_default()
}

/// The message of `--message-file` (the whole file, or standard input for `-`).
fn read_message(path: &std::path::Path) -> Result<String, ArgError> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| ArgError::Read {
        flag: "--message-file",
        path: if path.as_os_str() == "-" {
            "standard input".into()
        } else {
            path.display().to_string()
        },
        source,
    })
}

/// The `POST /v1/shares` body: the link fields through the links' own builder
/// ([`link_fields_body`]), then the recipients, subject, message (already read from
/// `--message-file`) and sender.
pub fn share_body(
    a: &CreateArgs,
    secrets: &Secrets,
    message: Option<String>,
) -> Result<Value, ArgError> {
    let mut body = link_fields_body(&a.link, secrets)?;
    let mut recipients = Vec::with_capacity(a.to.len());
    for t in &a.to {
        if t.trim().is_empty() {
            return Err(ArgError::Bad {
                flag: "--to",
                message: "takes an address or \"Name <address>\", not an empty value".into(),
            });
        }
        let mut r = recipient_arg(t);
        if a.require_code {
            r["require_code"] = json!(true);
        }
        recipients.push(r);
    }
    body.insert("recipients".into(), Value::Array(recipients));
    if let Some(s) = &a.subject {
        body.insert("subject".into(), s.clone().into());
    }
    if let Some(m) = message.or_else(|| a.message.clone()) {
        body.insert("message".into(), m.into());
    }
    if a.sender_name.is_some() || a.sender_email.is_some() {
        let mut sender = Map::new();
        if let Some(n) = &a.sender_name {
            sender.insert("name".into(), n.clone().into());
        }
        if let Some(e) = &a.sender_email {
            sender.insert("email".into(), e.clone().into());
        }
        body.insert("sender".into(), Value::Object(sender));
    }
    Ok(Value::Object(body))
}

/// Reads what `share create` names (secrets, message file) and builds its body.
fn create_request(a: &CreateArgs) -> Result<Value, ArgError> {
    let stdin_readers = [
        is_stdin(a.link.password_file.as_deref()),
        is_stdin(a.link.webhook_secret_file.as_deref()),
    ];
    if is_stdin(a.message_file.as_deref()) && stdin_readers.contains(&true) {
        return Err(ArgError::Bad {
            flag: "--message-file",
            message: "cannot read standard input when a secret is read from it too".into(),
        });
    }
    let secrets = read_secrets(&a.link)?;
    let message = a.message_file.as_deref().map(read_message).transpose()?;
    share_body(a, &secrets, message)
}

pub fn run(target: AdminTarget, output: Output, action: ShareAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (result, list) = match action {
        ShareAction::Create(args) => match create_request(&args) {
            Ok(body) => (client.call("POST", "/v1/shares", Some(&body)), false),
            Err(e) => return fail(e),
        },
        ShareAction::Show { id } => (
            client.call("GET", &format!("/v1/shares/{}", encode(&id)), None),
            false,
        ),
        ShareAction::List {
            object,
            limit,
            after,
        } => {
            let query: Vec<String> = [
                ("object", object),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some(format!("{k}={}", encode(&v?))))
            .collect();
            (
                client.call("GET", &format!("/v1/shares?{}", query.join("&")), None),
                true,
            )
        }
        ShareAction::Resend { id, link } => (
            client.call(
                "POST",
                &format!(
                    "/v1/shares/{}/recipients/{}/resend",
                    encode(&id),
                    encode(&link)
                ),
                None,
            ),
            false,
        ),
        ShareAction::Revoke { id, link, by } => (
            client.call(
                "DELETE",
                &format!(
                    "/v1/shares/{}/recipients/{}{}",
                    encode(&id),
                    encode(&link),
                    by_query(by)
                ),
                None,
            ),
            false,
        ),
        ShareAction::Cancel { id, by } => (
            client.call(
                "DELETE",
                &format!("/v1/shares/{}{}", encode(&id), by_query(by)),
                None,
            ),
            false,
        ),
    };
    print_result(result, output.json, list)
}

fn print_result(result: Result<Value, CliError>, json: bool, list: bool) -> ExitCode {
    match result {
        Ok(value) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else if list {
                print!("{}", list_table(&value));
            } else {
                print!("{}", share_table(&value));
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn text(v: &Value) -> String {
    cell(Some(v))
}

/// Rows under a header, through the commands' one table printer.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = Table::new(header);
    for row in rows {
        t.row(row.clone());
    }
    t.render()
}

/// One share: its facts, then a row per recipient.
pub fn share_table(share: &Value) -> String {
    let mut out = format!(
        "share {}  {}\nsubject: {}\nshared by {} at {}, expires {}\n",
        text(&share["id"]),
        text(&share["status"]),
        text(&share["subject"]),
        text(&share["shared_by"]),
        text(&share["created_at"]),
        text(&share["expires_at"]),
    );
    if !share["cancelled_at"].is_null() {
        out.push_str(&format!(
            "cancelled by {} at {}\n",
            text(&share["cancelled_by"]),
            text(&share["cancelled_at"])
        ));
    }
    let sender = match (
        share["sender"]["name"].as_str(),
        share["sender"]["email"].as_str(),
    ) {
        (Some(n), Some(e)) => format!("{} <{}>", text(&n.into()), text(&e.into())),
        (Some(n), None) => text(&n.into()),
        (None, Some(e)) => text(&e.into()),
        (None, None) => String::new(),
    };
    if !sender.is_empty() {
        out.push_str(&format!("sender: {sender}\n"));
    }
    if let Some(message) = share["message"].as_str() {
        out.push_str("message:\n");
        for line in message.lines() {
            out.push_str(format!("  {}", text(&line.into())).trim_end());
            out.push('\n');
        }
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = share["recipients"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let delivery = match (&r["delivery"]["state"], &r["delivery"]["error"]) {
                (state, Value::String(e)) => format!("{} ({e})", text(state)),
                (state, _) => text(state),
            };
            vec![
                text(&r["email"]),
                text(&r["name"]),
                delivery,
                text(&r["delivery"]["attempts"]),
                text(&r["link"]["state"]),
                text(&r["link"]["downloads_used"]),
                text(&r["link_id"]),
                text(&r["link"]["url"]),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "RECIPIENT",
            "NAME",
            "DELIVERY",
            "ATTEMPTS",
            "LINK",
            "DOWNLOADS",
            "LINK ID",
            "URL",
        ],
        &rows,
    ));
    out
}

/// A page of shares (the history of a document), newest first.
pub fn list_table(page: &Value) -> String {
    let rows: Vec<Vec<String>> = page["shares"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let recipients: Vec<String> = s["recipients"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|r| text(&r["email"]))
                .collect();
            vec![
                text(&s["id"]),
                text(&s["type"]),
                text(&s["shared_by"]),
                text(&s["created_at"]),
                text(&s["expires_at"]),
                text(&s["status"]),
                text(&s["cancelled_by"]),
                text(&s["cancelled_at"]),
                recipients.join(", "),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "TYPE",
            "SHARED BY",
            "CREATED",
            "EXPIRES",
            "STATUS",
            "CANCELLED BY",
            "CANCELLED AT",
            "RECIPIENTS",
        ],
        &rows,
    );
    if let Some(next) = page["next"].as_str() {
        out.push_str(&format!("more: --after {next}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_take_an_optional_display_name() {
        assert_eq!(
            recipient_arg("jane@example.org"),
            json!({"email": "jane@example.org"})
        );
        assert_eq!(
            recipient_arg("\"Jane Doe\" <jane@example.org>"),
            json!({"email": "jane@example.org", "name": "Jane Doe"})
        );
        assert_eq!(
            recipient_arg("<jane@example.org>"),
            json!({"email": "jane@example.org"})
        );
    }

    #[test]
    fn every_share_flag_reaches_the_body_beside_the_link_fields() {
        let a = CreateArgs {
            link: LinkFields {
                store: "docs".into(),
                objects: vec!["c.pdf".into()],
                filename: Some("C.pdf".into()),
                rights: Some(vec!["view".into(), "approve".into()]),
                max_downloads: Some(2),
                created_by: Some("alice".into()),
                webhook_url: Some("https://dms.example.org/h".into()),
                webhook_events: Some(vec!["review.decided".into()]),
                notify_sender: Some("alice@example.org".into()),
                ..LinkFields::default()
            },
            to: vec![
                "Jane Doe <jane@example.org>".into(),
                "bob@example.org".into(),
            ],
            require_code: true,
            subject: Some("Contract".into()),
            message: Some("not this one".into()),
            sender_name: Some("Alice Sender".into()),
            sender_email: Some("alice@example.org".into()),
            ..CreateArgs::default()
        };
        let secrets = Secrets {
            password: Some("pw".into()),
            webhook_secret: Some("a-long-webhook-secret".into()),
        };
        let b = share_body(&a, &secrets, Some("Hello,\nfrom the file".into())).unwrap();
        assert_eq!(
            b,
            json!({
                "store": "docs", "object": "c.pdf", "filename": "C.pdf",
                "rights": ["view", "approve"], "max_downloads": 2, "created_by": "alice",
                "password": "pw",
                "webhook": {"url": "https://dms.example.org/h", "secret": "a-long-webhook-secret",
                            "events": ["review.decided"]},
                "notify_sender": "alice@example.org",
                "recipients": [
                    {"email": "jane@example.org", "name": "Jane Doe", "require_code": true},
                    {"email": "bob@example.org", "require_code": true},
                ],
                "subject": "Contract",
                "message": "Hello,\nfrom the file",
                "sender": {"name": "Alice Sender", "email": "alice@example.org"},
            })
        );
        // The link fields are the links' own: the body is `link create`'s without `recipient`.
        let link = super::super::args::CreateArgs {
            link: a.link,
            ..Default::default()
        };
        let mut link_body = super::super::links::create_body(&link, &secrets).unwrap();
        let mut share_only = b.clone();
        for k in ["recipients", "subject", "message", "sender"] {
            share_only.as_object_mut().unwrap().remove(k);
        }
        link_body.as_object_mut().unwrap().remove("recipient");
        assert_eq!(share_only, link_body);

        let plain = CreateArgs {
            link: LinkFields {
                store: "docs".into(),
                objects: vec!["c.pdf".into()],
                ..LinkFields::default()
            },
            to: vec!["bob@example.org".into()],
            message: Some("Hi".into()),
            sender_email: Some("alice@example.org".into()),
            ..CreateArgs::default()
        };
        let b = share_body(&plain, &Secrets::default(), None).unwrap();
        assert_eq!(
            b,
            json!({"store": "docs", "object": "c.pdf", "message": "Hi",
                   "recipients": [{"email": "bob@example.org"}],
                   "sender": {"email": "alice@example.org"}})
        );
        let empty = CreateArgs {
            to: vec![" ".into()],
            ..CreateArgs::default()
        };
        assert!(share_body(&empty, &Secrets::default(), None)
            .unwrap_err()
            .to_string()
            .starts_with("--to:"));
    }

    #[test]
    fn the_message_file_is_read_whole_and_named_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let note = dir.path().join("note.txt");
        std::fs::write(&note, "Hello,\nplease sign.\n").unwrap();
        let a = CreateArgs {
            link: LinkFields {
                store: "docs".into(),
                objects: vec!["c.pdf".into()],
                ..LinkFields::default()
            },
            to: vec!["bob@example.org".into()],
            message_file: Some(note),
            ..CreateArgs::default()
        };
        let b = create_request(&a).unwrap();
        assert_eq!(b["message"], "Hello,\nplease sign.\n");
        let missing = CreateArgs {
            message_file: Some(dir.path().join("absent")),
            ..a
        };
        assert!(create_request(&missing)
            .unwrap_err()
            .to_string()
            .starts_with("--message-file: cannot read"));
        let both = CreateArgs {
            message_file: Some("-".into()),
            link: LinkFields {
                password_file: Some("-".into()),
                ..LinkFields::default()
            },
            ..CreateArgs::default()
        };
        assert!(create_request(&both)
            .unwrap_err()
            .to_string()
            .starts_with("--message-file:"));
    }

    #[test]
    fn a_share_shows_its_sender_and_message_line_by_line() {
        let share = json!({"id": "s1", "status": "active", "subject": "Contract",
            "shared_by": "alice", "created_at": "2030-01-01T00:00:00Z", "expires_at": null,
            "cancelled_at": null, "sender": {"name": "Alice", "email": "alice@example.org"},
            "message": "Hello,\n\nplease\tsign.", "recipients": [
                {"email": "jane@example.org", "name": "Jane", "link_id": "l1",
                 "delivery": {"state": "sent", "attempts": 1, "error": null},
                 "link": {"state": "active", "downloads_used": 0, "url": "https://x/s/t"}}]});
        let out = share_table(&share);
        assert!(
            out.starts_with(
                "share s1  active\nsubject: Contract\nshared by alice at 2030-01-01T00:00:00Z, \
                 expires -\nsender: Alice <alice@example.org>\nmessage:\n  Hello,\n\n  please sign.\n\n"
            ),
            "{out}"
        );
        assert!(out.contains("jane@example.org  Jane  sent"), "{out}");
    }

    #[test]
    fn the_history_table_shows_missing_values_as_dashes_and_the_next_page() {
        let page = json!({"shares": [{"id": "s1", "type": "share", "shared_by": "alice",
            "created_at": "2030-01-01T00:00:00Z", "expires_at": null, "status": "cancelled",
            "cancelled_by": "bob", "cancelled_at": "2030-01-02T00:00:00Z",
            "recipients": [{"email": "a@x.org"}, {"email": "b@x.org"}]}], "next": "n1"});
        let out = list_table(&page);
        assert!(out.contains("s1  share  alice"), "{out}");
        assert!(out.contains("a@x.org, b@x.org"));
        assert!(out.ends_with("more: --after n1\n"));
    }
}
