//! `linkgate share …`: shares through a running gateway's admin API (`/v1/shares`). Each command
//! prints a table for people by default and the API's JSON with `--json` for scripts.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::args::AdminTarget;
use super::client::{encode, CliError};
use super::commands::{admin_client, fail};

#[derive(Subcommand)]
pub enum ShareAction {
    /// Create a share: one link per recipient, each mailed by the gateway.
    Create(Box<CreateArgs>),
    /// Show a share: its recipients, their delivery and their links.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// List shares, newest first: all, or the history of one document (`--object`).
    List {
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Mail a recipient their link again.
    Resend {
        id: String,
        /// The recipient's link id.
        link: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one recipient (their link is cancelled; the others keep working).
    Revoke {
        id: String,
        link: String,
        /// Recorded as who revoked it.
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel the whole share (every recipient's link).
    Cancel {
        id: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// What `share create` takes.
#[derive(Args)]
pub struct CreateArgs {
    #[arg(long)]
    store: String,
    /// An object key to share; repeat for several documents.
    #[arg(long = "object", required = true)]
    objects: Vec<String>,
    /// Display name of the (single) document.
    #[arg(long)]
    filename: Option<String>,
    /// A recipient: `jane@example.org` or `"Jane Doe <jane@example.org>"`; repeat for more.
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    #[arg(long)]
    subject: Option<String>,
    #[arg(long)]
    message: Option<String>,
    /// Read the message from this file (`-` for standard input).
    #[arg(long, conflicts_with = "message")]
    message_file: Option<std::path::PathBuf>,
    /// The sender's name shown in the mail (default: --created-by).
    #[arg(long)]
    sender_name: Option<String>,
    /// The sender's address (the mail's Reply-To).
    #[arg(long)]
    sender_email: Option<String>,
    /// RFC 3339 time, e.g. 2030-01-31T17:00:00Z.
    #[arg(long)]
    expires_at: Option<String>,
    #[arg(long)]
    max_downloads: Option<u64>,
    /// Comma-separated: view, download, download:<rendition>, upload.
    #[arg(long, value_delimiter = ',')]
    rights: Option<Vec<String>>,
    /// Read the password from this environment variable (never from the command line).
    #[arg(long)]
    password_env: Option<String>,
    /// Ask every recipient's first browser for a mailed code too.
    #[arg(long)]
    require_code: bool,
    #[arg(long)]
    created_by: Option<String>,
    /// Any other `POST /v1/links` field as KEY=JSON, e.g. `--set 'upload={"folder":"in"}'`.
    #[arg(long = "set", value_name = "KEY=JSON")]
    set: Vec<String>,
    #[arg(long)]
    json: bool,
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

pub fn run(target: AdminTarget, action: ShareAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (result, json, list) = match action {
        ShareAction::Create(args) => {
            let CreateArgs {
                store,
                objects,
                filename,
                to,
                subject,
                message,
                message_file,
                sender_name,
                sender_email,
                expires_at,
                max_downloads,
                rights,
                password_env,
                require_code,
                created_by,
                set,
                json,
            } = *args;
            let message = match message_file {
                Some(path) => {
                    let read = if path.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())
                    } else {
                        std::fs::read_to_string(&path)
                    };
                    match read {
                        Ok(m) => Some(m),
                        Err(e) => return fail(format!("{}: {e}", path.display())),
                    }
                }
                None => message,
            };
            let password = match password_env {
                Some(var) => match std::env::var(&var) {
                    Ok(p) => Some(p),
                    Err(_) => return fail(format!("--password-env: ${var} is not set")),
                },
                None => None,
            };
            let mut body = Map::new();
            body.insert("store".into(), json!(store));
            if let [one] = objects.as_slice() {
                body.insert("object".into(), json!(one));
                if let Some(f) = filename {
                    body.insert("filename".into(), json!(f));
                }
            } else {
                if filename.is_some() {
                    return fail("--filename names a single --object");
                }
                let docs: Vec<Value> = objects.iter().map(|o| json!({ "object": o })).collect();
                body.insert("documents".into(), Value::Array(docs));
            }
            let recipients: Vec<Value> = to
                .iter()
                .map(|t| {
                    let mut r = recipient_arg(t);
                    if require_code {
                        r["require_code"] = json!(true);
                    }
                    r
                })
                .collect();
            body.insert("recipients".into(), Value::Array(recipients));
            for (key, value) in [
                ("subject", subject.map(Value::from)),
                ("message", message.map(Value::from)),
                ("expires_at", expires_at.map(Value::from)),
                ("max_downloads", max_downloads.map(Value::from)),
                ("rights", rights.map(|r| json!(r))),
                ("password", password.map(Value::from)),
                ("created_by", created_by.map(Value::from)),
            ] {
                if let Some(v) = value {
                    body.insert(key.into(), v);
                }
            }
            if sender_name.is_some() || sender_email.is_some() {
                body.insert(
                    "sender".into(),
                    json!({ "name": sender_name, "email": sender_email }),
                );
            }
            for pair in set {
                let Some((key, raw)) = pair.split_once('=') else {
                    return fail(format!("--set {pair}: expected KEY=JSON"));
                };
                let value = match serde_json::from_str::<Value>(raw) {
                    Ok(v) => v,
                    // A bare word is taken as a string (`--set on_change=refuse`).
                    Err(_) => Value::String(raw.to_string()),
                };
                body.insert(key.to_string(), value);
            }
            (
                client.call("POST", "/v1/shares", Some(&Value::Object(body))),
                json,
                false,
            )
        }
        ShareAction::Show { id, json } => (
            client.call("GET", &format!("/v1/shares/{}", encode(&id)), None),
            json,
            false,
        ),
        ShareAction::List {
            object,
            limit,
            after,
            json,
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
                json,
                true,
            )
        }
        ShareAction::Resend { id, link, json } => (
            client.call(
                "POST",
                &format!(
                    "/v1/shares/{}/recipients/{}/resend",
                    encode(&id),
                    encode(&link)
                ),
                None,
            ),
            json,
            false,
        ),
        ShareAction::Revoke { id, link, by, json } => (
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
            json,
            false,
        ),
        ShareAction::Cancel { id, by, json } => (
            client.call(
                "DELETE",
                &format!("/v1/shares/{}{}", encode(&id), by_query(by)),
                None,
            ),
            json,
            false,
        ),
    };
    print_result(result, json, list)
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
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
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
    fn tables_align_columns_and_show_missing_values_as_dashes() {
        let t = table(
            &["A", "BB"],
            &[vec!["xyz".into(), "1".into()], vec!["é".into(), "-".into()]],
        );
        assert_eq!(t, "A    BB\nxyz  1\né    -\n");
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
