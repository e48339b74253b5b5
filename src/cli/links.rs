//! `linkgate link …`: the request bodies built from the command line (every field of
//! `POST /v1/links` and `PATCH /v1/links/{id}`) and the tables and records printed from the
//! answers.

use serde_json::{json, Map, Value};

use super::args::{CreateArgs, LinkFields, UpdateArgs};
use super::table::{cell, record, Table};

/// Why a command line cannot be turned into a request.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    #[error("{flag}: {message}")]
    Bad { flag: &'static str, message: String },
    #[error("{flag}: cannot read {path}: {source}")]
    Read {
        flag: &'static str,
        path: String,
        source: std::io::Error,
    },
}

fn bad(flag: &'static str, message: impl Into<String>) -> ArgError {
    ArgError::Bad {
        flag,
        message: message.into(),
    }
}

/// The first line of a file, or of standard input for `-`.
pub fn read_secret(flag: &'static str, path: &std::path::Path) -> Result<String, ArgError> {
    let text = if path.as_os_str() == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|source| ArgError::Read {
                flag,
                path: "standard input".into(),
                source,
            })?;
        line
    } else {
        std::fs::read_to_string(path).map_err(|source| ArgError::Read {
            flag,
            path: path.display().to_string(),
            source,
        })?
    };
    let line = text.lines().next().unwrap_or_default().to_string();
    if line.is_empty() {
        return Err(bad(flag, "the first line is empty"));
    }
    Ok(line)
}

/// The value of an environment variable named by a `--…-env` flag (never printed).
pub fn read_env(flag: &'static str, var: &str) -> Result<String, ArgError> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(bad(flag, format!("${var} is empty"))),
        Err(std::env::VarError::NotPresent) => Err(bad(flag, format!("${var} is not set"))),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(bad(flag, format!("${var} is not valid UTF-8")))
        }
    }
}

/// A secret given by a file flag or an environment flag (clap lets at most one through).
fn secret_from(
    file: (&'static str, Option<&std::path::Path>),
    env: (&'static str, Option<&str>),
) -> Result<Option<String>, ArgError> {
    match (file, env) {
        ((flag, Some(path)), _) => read_secret(flag, path).map(Some),
        (_, (flag, Some(var))) => read_env(flag, var).map(Some),
        _ => Ok(None),
    }
}

/// Whether a path flag means standard input.
pub fn is_stdin(path: Option<&std::path::Path>) -> bool {
    path.is_some_and(|p| p.as_os_str() == "-")
}

/// The secrets a command line names, read from files, standard input or the environment: they
/// go into the request body and nowhere else (never into an error or the output).
#[derive(Default)]
pub struct Secrets {
    pub password: Option<String>,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// Reads the password (`--password`, `--password-file`, `--password-env`) and the webhook
/// secret (`--webhook-secret-file`, `--webhook-secret-env`) of the shared link flags.
pub fn read_secrets(f: &LinkFields) -> Result<Secrets, ArgError> {
    if is_stdin(f.password_file.as_deref()) && is_stdin(f.webhook_secret_file.as_deref()) {
        return Err(bad(
            "--webhook-secret-file",
            "only one secret can come from standard input (--password-file - is given too)",
        ));
    }
    let password = match &f.password {
        Some(p) => Some(p.clone()),
        None => secret_from(
            ("--password-file", f.password_file.as_deref()),
            ("--password-env", f.password_env.as_deref()),
        )?,
    };
    let webhook_secret = secret_from(
        ("--webhook-secret-file", f.webhook_secret_file.as_deref()),
        ("--webhook-secret-env", f.webhook_secret_env.as_deref()),
    )?;
    Ok(Secrets {
        password,
        webhook_secret,
    })
}

/// The new password of `link update`: `Some(None)` removes it, `None` leaves it.
pub fn read_update_password(a: &UpdateArgs) -> Result<Option<Option<String>>, ArgError> {
    if a.remove_password {
        return Ok(Some(None));
    }
    if let Some(p) = &a.password {
        return Ok(Some(Some(p.clone())));
    }
    secret_from(
        ("--password-file", a.password_file.as_deref()),
        ("--password-env", a.password_env.as_deref()),
    )
    .map(|p| p.map(Some))
}

/// `NAME=OBJECT[=FILENAME]` → (name, rendition).
fn rendition(text: &str) -> Result<(String, Value), ArgError> {
    let mut parts = text.splitn(3, '=');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(object), filename) if !name.is_empty() && !object.is_empty() => {
            let mut r = Map::new();
            r.insert("object".into(), object.into());
            if let Some(f) = filename {
                r.insert("filename".into(), f.into());
            }
            Ok((name.to_string(), Value::Object(r)))
        }
        _ => Err(bad(
            "--rendition",
            format!("`{text}` is not NAME=OBJECT[=FILENAME]"),
        )),
    }
}

/// `OBJECT[=FILENAME]` or a JSON object → one entry of `documents`.
fn document(text: &str) -> Result<Value, ArgError> {
    if text.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(bad("--document", format!("`{text}` is not a JSON object"))),
        };
    }
    match text.split_once('=') {
        Some((object, filename)) if !object.is_empty() => {
            Ok(json!({"object": object, "filename": filename}))
        }
        None if !text.is_empty() => Ok(json!({ "object": text })),
        _ => Err(bad(
            "--document",
            format!("`{text}` is not OBJECT[=FILENAME]"),
        )),
    }
}

/// The body fields of the shared link flags ([`LinkFields`]): every field of `POST /v1/links`
/// but `recipient`, for `link create` and `share create` alike (`secrets` already read).
pub fn link_fields_body(f: &LinkFields, secrets: &Secrets) -> Result<Map<String, Value>, ArgError> {
    let mut b = Map::new();
    b.insert("store".into(), f.store.clone().into());
    match f.objects.as_slice() {
        [] => {}
        [one] => {
            b.insert("object".into(), one.clone().into());
        }
        several => {
            for (given, flag) in [
                (f.filename.is_some(), "--filename"),
                (!f.renditions.is_empty(), "--rendition"),
            ] {
                if given {
                    return Err(bad(
                        flag,
                        "belongs to a single --object; give several documents as \
                         --document OBJECT=FILENAME or as JSON with renditions",
                    ));
                }
            }
            let docs = several.iter().map(|o| json!({ "object": o })).collect();
            b.insert("documents".into(), Value::Array(docs));
        }
    }
    if let Some(name) = &f.filename {
        b.insert("filename".into(), name.clone().into());
    }
    if !f.renditions.is_empty() {
        let mut r = Map::new();
        for text in &f.renditions {
            let (name, value) = rendition(text)?;
            r.insert(name, value);
        }
        b.insert("renditions".into(), Value::Object(r));
    }
    if !f.documents.is_empty() {
        let docs = f
            .documents
            .iter()
            .map(|d| document(d))
            .collect::<Result<Vec<_>, _>>()?;
        b.insert("documents".into(), Value::Array(docs));
    }
    if let Some(e) = &f.expires_at {
        b.insert("expires_at".into(), e.clone().into());
    }
    if let Some(m) = f.max_downloads {
        b.insert("max_downloads".into(), m.into());
    }
    if let Some(r) = &f.rights {
        b.insert("rights".into(), json!(r));
    }
    if let Some(c) = &f.created_by {
        b.insert("created_by".into(), c.clone().into());
    }
    if let Some(p) = &secrets.password {
        b.insert("password".into(), p.clone().into());
    }
    if let Some(p) = &f.on_change {
        b.insert("on_change".into(), p.clone().into());
    }
    if let Some(folder) = &f.upload_folder {
        let mut u = Map::new();
        u.insert("folder".into(), folder.clone().into());
        u.insert("overwrite".into(), f.upload_overwrite.into());
        if let Some(n) = f.upload_max_files {
            u.insert("max_files".into(), n.into());
        }
        if let Some(n) = f.upload_max_bytes {
            u.insert("max_bytes".into(), n.into());
        }
        if let Some(t) = &f.upload_types {
            u.insert("allowed_types".into(), json!(t));
        }
        b.insert("upload".into(), Value::Object(u));
    }
    if let Some(url) = &f.webhook_url {
        let Some(secret) = &secrets.webhook_secret else {
            return Err(bad(
                "--webhook-url",
                "needs --webhook-secret-env VAR or --webhook-secret-file PATH (a secret is \
                 never taken on the command line)",
            ));
        };
        let mut w = Map::new();
        w.insert("url".into(), url.clone().into());
        w.insert("secret".into(), secret.clone().into());
        if let Some(events) = &f.webhook_events {
            w.insert("events".into(), json!(events));
        }
        b.insert("webhook".into(), Value::Object(w));
    }
    if let Some(n) = &f.notify_sender {
        b.insert("notify_sender".into(), n.clone().into());
    }
    Ok(b)
}

/// The `POST /v1/links` body for `link create`: the shared link fields and the one recipient.
pub fn create_body(a: &CreateArgs, secrets: &Secrets) -> Result<Value, ArgError> {
    let mut b = link_fields_body(&a.link, secrets)?;
    if let Some(e) = &a.email {
        b.insert(
            "recipient".into(),
            json!({"email": e, "require_code": a.require_code}),
        );
    } else if a.recipient_without_email {
        b.insert("recipient".into(), json!({ "email": null }));
    }
    Ok(Value::Object(b))
}

/// The `PATCH /v1/links/{id}` body for `link update` (`password`: `Some(None)` removes it).
pub fn update_body(a: &UpdateArgs, password: Option<Option<String>>) -> Result<Value, ArgError> {
    let mut b = Map::new();
    if let Some(e) = &a.expires_at {
        let value = if e == "never" {
            Value::Null
        } else {
            e.clone().into()
        };
        b.insert("expires_at".into(), value);
    }
    if let Some(m) = &a.max_downloads {
        let value = match m.as_str() {
            "none" => Value::Null,
            n => Value::from(
                n.parse::<u64>()
                    .map_err(|_| bad("--max-downloads", "takes a number or \"none\""))?,
            ),
        };
        b.insert("max_downloads".into(), value);
    }
    if let Some(f) = &a.filename {
        b.insert("filename".into(), f.clone().into());
    }
    if let Some(c) = &a.changed_by {
        b.insert("changed_by".into(), c.clone().into());
    }
    if let Some(p) = password {
        b.insert("password".into(), p.map(Value::from).unwrap_or(Value::Null));
    }
    if let Some(p) = &a.on_change {
        b.insert("on_change".into(), p.clone().into());
    }
    if let Some(e) = &a.email {
        let mut r = Map::new();
        r.insert("email".into(), e.clone().into());
        if let Some(rc) = a.require_code {
            r.insert("require_code".into(), rc.into());
        }
        b.insert("recipient".into(), Value::Object(r));
    }
    if b.is_empty() {
        return Err(bad(
            "update",
            "name something to change (--expires-at, --max-downloads, --filename, \
             --password-file, --password-env, --password, --remove-password, --on-change, --email)",
        ));
    }
    Ok(Value::Object(b))
}

/// `3/5`, `3` (no limit).
fn downloads(link: &Value) -> String {
    let used = cell(link.get("downloads_used"));
    match link.get("max_downloads").and_then(Value::as_u64) {
        Some(max) => format!("{used}/{max}"),
        None => used,
    }
}

/// One link as a record.
pub fn link_record(link: &Value) -> String {
    let get = |k: &str| cell(link.get(k));
    let status = match link.get("status_since").and_then(Value::as_str) {
        Some(since) => format!("{} since {since}", get("status")),
        None => get("status"),
    };
    let documents = link
        .get("documents")
        .and_then(Value::as_array)
        .map(|docs| {
            docs.iter()
                .map(|d| {
                    let mut s = format!("{} ({})", cell(d.get("object")), cell(d.get("filename")));
                    if let Some(size) = d.get("size").and_then(Value::as_u64) {
                        s.push_str(&format!(", {size} bytes"));
                    }
                    if let Some(etag) = d.get("etag").and_then(Value::as_str) {
                        s.push_str(&format!(", etag {etag}"));
                    }
                    if let Some(Value::Object(r)) = d.get("renditions") {
                        if !r.is_empty() {
                            let names: Vec<&str> = r.keys().map(String::as_str).collect();
                            s.push_str(&format!(", renditions {}", names.join(" ")));
                        }
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let recipient = match link.get("recipient") {
        Some(Value::Object(r)) => {
            let email = cell(r.get("email"));
            let email = if email == "-" {
                "(no address: view only)".to_string()
            } else {
                email
            };
            if r.get("require_code") == Some(&Value::Bool(true)) {
                format!("{email}, code always required")
            } else {
                email
            }
        }
        _ => String::new(),
    };
    let upload = match link.get("upload") {
        Some(u @ Value::Object(_)) => u.to_string(),
        _ => String::new(),
    };
    // The API never shows a webhook's secret; the record shows where events go and which.
    let webhook = match link.get("webhook") {
        Some(Value::Object(w)) => match w.get("events") {
            Some(Value::Array(e)) if !e.is_empty() => {
                format!("{} ({})", cell(w.get("url")), cell(w.get("events")))
            }
            _ => format!("{} (all events)", cell(w.get("url"))),
        },
        _ => String::new(),
    };
    let notify = match link.get("notify_sender") {
        Some(n @ Value::String(_)) => format!("{} on the first download", cell(Some(n))),
        _ => String::new(),
    };
    let cancelled = match link.get("cancelled_at").and_then(Value::as_str) {
        Some(at) => format!("{at} by {}", get("cancelled_by")),
        None => String::new(),
    };
    record(&[
        ("id", get("id")),
        ("url", get("url")),
        ("type", get("type")),
        ("status", status),
        ("state", get("state")),
        ("store", get("store")),
        ("documents", documents),
        ("rights", get("rights")),
        ("downloads", downloads(link)),
        ("expires", get("expires_at")),
        (
            "password",
            if link.get("has_password") == Some(&Value::Bool(true)) {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        ("recipient", recipient),
        ("on change", get("on_change")),
        ("upload", upload),
        ("webhook", webhook),
        ("notify", notify),
        (
            "share",
            link.get("share")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        ("generation", get("generation")),
        (
            "created",
            format!("{} by {}", get("created_at"), get("created_by")),
        ),
        ("cancelled", cancelled),
    ])
}

/// A page of links as a table (id, type, status, downloads, expires, created by), then where
/// the next page starts.
pub fn list_table(page: &Value) -> String {
    let mut t = Table::new(&["ID", "TYPE", "STATUS", "DOWNLOADS", "EXPIRES", "CREATED BY"]);
    for l in page
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.row(vec![
            cell(l.get("id")),
            cell(l.get("type")),
            cell(l.get("status")),
            downloads(l),
            cell(l.get("expires_at")),
            cell(l.get("created_by")),
        ]);
    }
    let mut out = if t.is_empty() {
        "no links\n".to_string()
    } else {
        t.render()
    };
    if let Some(next) = page.get("next").and_then(Value::as_str) {
        out.push_str(&format!("more: --after {next}\n"));
    }
    out
}

/// A link's events as a table.
pub fn events_table(events: &[Value]) -> String {
    let mut t = Table::new(&["SEQ", "AT", "KIND", "OUTCOME", "WHO", "DETAIL"]);
    for e in events {
        let who = match (e.get("actor"), e.get("client")) {
            (Some(a @ Value::String(_)), _) => cell(Some(a)),
            (_, c) => cell(c),
        };
        let mut detail = Vec::new();
        for k in ["document", "reason"] {
            if let Some(Value::String(v)) = e.get(k) {
                detail.push(v.clone());
            }
        }
        if let Some(Value::Number(n)) = e.get("bytes") {
            detail.push(format!("{n} bytes"));
        }
        t.row(vec![
            cell(e.get("seq")),
            cell(e.get("at")),
            cell(e.get("kind")),
            cell(e.get("outcome")),
            who,
            cell(Some(&Value::String(detail.join(", ")))),
        ]);
    }
    if t.is_empty() {
        "no events\n".to_string()
    } else {
        t.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(password: Option<&str>, webhook: Option<&str>) -> Secrets {
        Secrets {
            password: password.map(str::to_string),
            webhook_secret: webhook.map(str::to_string),
        }
    }

    #[test]
    fn every_create_field_reaches_the_body() {
        let a = CreateArgs {
            link: LinkFields {
                store: "docs".into(),
                documents: vec![
                    "a.pdf=A.pdf".into(),
                    "b.pdf".into(),
                    r#"{"object": "c.pdf", "renditions": {"low": "c-low.pdf"}}"#.into(),
                ],
                expires_at: Some("2030-01-01T00:00:00Z".into()),
                max_downloads: Some(3),
                rights: Some(vec!["view".into(), "upload".into(), "review".into()]),
                created_by: Some("alice".into()),
                on_change: Some("refuse".into()),
                upload_folder: Some("in".into()),
                upload_overwrite: true,
                upload_max_files: Some(2),
                upload_max_bytes: Some(1000),
                upload_types: Some(vec!["application/pdf".into()]),
                webhook_url: Some("https://dms.example.org/hooks".into()),
                webhook_secret_env: Some("UNUSED_HERE".into()),
                webhook_events: Some(vec!["download.completed".into(), "review.decided".into()]),
                notify_sender: Some("alice@example.org".into()),
                ..LinkFields::default()
            },
            email: Some("jane@example.org".into()),
            require_code: true,
            ..CreateArgs::default()
        };
        let b = create_body(&a, &secrets(Some("pw"), Some("s3cret-s3cret-s3cret"))).unwrap();
        assert_eq!(
            b,
            json!({
                "store": "docs",
                "documents": [
                    {"object": "a.pdf", "filename": "A.pdf"},
                    {"object": "b.pdf"},
                    {"object": "c.pdf", "renditions": {"low": "c-low.pdf"}},
                ],
                "expires_at": "2030-01-01T00:00:00Z",
                "max_downloads": 3,
                "rights": ["view", "upload", "review"],
                "created_by": "alice",
                "password": "pw",
                "on_change": "refuse",
                "upload": {"folder": "in", "overwrite": true, "max_files": 2, "max_bytes": 1000,
                           "allowed_types": ["application/pdf"]},
                "webhook": {"url": "https://dms.example.org/hooks",
                            "secret": "s3cret-s3cret-s3cret",
                            "events": ["download.completed", "review.decided"]},
                "notify_sender": "alice@example.org",
                "recipient": {"email": "jane@example.org", "require_code": true},
            })
        );

        let one = CreateArgs {
            link: LinkFields {
                store: "docs".into(),
                objects: vec!["a.pdf".into()],
                filename: Some("A.pdf".into()),
                renditions: vec!["low=a-low.pdf=A low.pdf".into(), "jpg=a.jpg".into()],
                rights: Some(vec!["approve".into()]),
                ..LinkFields::default()
            },
            recipient_without_email: true,
            ..CreateArgs::default()
        };
        let b = create_body(&one, &Secrets::default()).unwrap();
        assert_eq!(
            b,
            json!({
                "store": "docs", "object": "a.pdf", "filename": "A.pdf",
                "renditions": {"low": {"object": "a-low.pdf", "filename": "A low.pdf"},
                               "jpg": {"object": "a.jpg"}},
                "rights": ["approve"],
                "recipient": {"email": null},
            })
        );
        // A webhook without events subscribes to every kind: `events` is left out.
        let all = LinkFields {
            store: "docs".into(),
            objects: vec!["a.pdf".into()],
            webhook_url: Some("https://dms.example.org/hooks".into()),
            ..LinkFields::default()
        };
        let b = link_fields_body(&all, &secrets(None, Some("s3cret-s3cret-s3cret"))).unwrap();
        assert_eq!(
            Value::Object(b)["webhook"],
            json!({"url": "https://dms.example.org/hooks", "secret": "s3cret-s3cret-s3cret"})
        );
    }

    #[test]
    fn several_objects_are_documents_and_bad_flags_are_named() {
        let several = LinkFields {
            store: "docs".into(),
            objects: vec!["a.pdf".into(), "b.pdf".into()],
            ..LinkFields::default()
        };
        let b = link_fields_body(&several, &Secrets::default()).unwrap();
        assert_eq!(
            Value::Object(b),
            json!({"store": "docs", "documents": [{"object": "a.pdf"}, {"object": "b.pdf"}]})
        );
        let error = |f: LinkFields, s: Secrets| link_fields_body(&f, &s).unwrap_err().to_string();
        let named = LinkFields {
            filename: Some("A.pdf".into()),
            ..several
        };
        assert!(error(named, Secrets::default()).starts_with("--filename:"));
        let broken = LinkFields {
            renditions: vec!["low".into()],
            ..LinkFields::default()
        };
        assert!(error(broken, Secrets::default()).starts_with("--rendition:"));
        let broken = LinkFields {
            documents: vec!["=A.pdf".into()],
            ..LinkFields::default()
        };
        assert!(error(broken, Secrets::default()).starts_with("--document:"));
        let no_secret = LinkFields {
            webhook_url: Some("https://dms.example.org/hooks".into()),
            ..LinkFields::default()
        };
        let e = error(no_secret, Secrets::default());
        assert!(
            e.starts_with("--webhook-url:") && e.contains("--webhook-secret-env"),
            "{e}"
        );
    }

    #[test]
    fn secrets_come_from_files_and_the_environment_and_errors_never_show_them() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "correct horse\nsecond line\n").unwrap();
        // A name no other test uses: tests run in parallel in one process.
        let var = "LINKGATE_CLI_TEST_WEBHOOK_SECRET";
        std::env::set_var(var, "a-long-webhook-secret");
        let f = LinkFields {
            password_file: Some(pw.clone()),
            webhook_url: Some("https://dms.example.org/hooks".into()),
            webhook_secret_env: Some(var.into()),
            ..LinkFields::default()
        };
        let s = read_secrets(&f).unwrap();
        assert_eq!(s.password.as_deref(), Some("correct horse"));
        assert_eq!(s.webhook_secret.as_deref(), Some("a-long-webhook-secret"));
        assert!(!format!("{s:?}").contains("horse"), "{s:?}");

        let f = LinkFields {
            password_env: Some(var.into()),
            webhook_secret_file: Some(pw.clone()),
            ..LinkFields::default()
        };
        let s = read_secrets(&f).unwrap();
        assert_eq!(s.password.as_deref(), Some("a-long-webhook-secret"));
        assert_eq!(s.webhook_secret.as_deref(), Some("correct horse"));

        let unset = LinkFields {
            webhook_secret_env: Some("LINKGATE_CLI_TEST_NEVER_SET".into()),
            ..LinkFields::default()
        };
        let e = read_secrets(&unset).unwrap_err().to_string();
        assert_eq!(
            e,
            "--webhook-secret-env: $LINKGATE_CLI_TEST_NEVER_SET is not set"
        );
        let missing = LinkFields {
            password_file: Some(dir.path().join("absent")),
            ..LinkFields::default()
        };
        assert!(read_secrets(&missing)
            .unwrap_err()
            .to_string()
            .starts_with("--password-file: cannot read"));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let blank = LinkFields {
            webhook_secret_file: Some(empty),
            ..LinkFields::default()
        };
        assert_eq!(
            read_secrets(&blank).unwrap_err().to_string(),
            "--webhook-secret-file: the first line is empty"
        );
        let both_stdin = LinkFields {
            password_file: Some("-".into()),
            webhook_secret_file: Some("-".into()),
            ..LinkFields::default()
        };
        assert!(read_secrets(&both_stdin)
            .unwrap_err()
            .to_string()
            .starts_with("--webhook-secret-file:"));

        let update = UpdateArgs {
            password_env: Some(var.into()),
            ..UpdateArgs::default()
        };
        assert_eq!(
            read_update_password(&update).unwrap(),
            Some(Some("a-long-webhook-secret".into()))
        );
        let remove = UpdateArgs {
            remove_password: true,
            ..UpdateArgs::default()
        };
        assert_eq!(read_update_password(&remove).unwrap(), Some(None));
        assert_eq!(read_update_password(&UpdateArgs::default()).unwrap(), None);
    }

    #[test]
    fn a_link_record_shows_the_webhook_without_a_secret_and_who_is_notified() {
        let link = json!({"id": "abc", "status": "active", "downloads_used": 0,
            "webhook": {"url": "https://dms.example.org/h", "events": ["download.completed"]},
            "notify_sender": "alice@example.org", "share": "s1"});
        let out = link_record(&link);
        assert!(
            out.contains("webhook     https://dms.example.org/h (download.completed)\n"),
            "{out}"
        );
        assert!(
            out.contains("notify      alice@example.org on the first download\n"),
            "{out}"
        );
        assert!(out.contains("share       s1\n"), "{out}");
        let all = json!({"id": "abc", "webhook": {"url": "https://x.org/h", "events": null},
            "share": null});
        let out = link_record(&all);
        assert!(out.contains("https://x.org/h (all events)"), "{out}");
        assert!(!out.contains("share"), "{out}");
    }

    #[test]
    fn update_bodies_say_only_what_changes() {
        let a = UpdateArgs {
            id: "x".into(),
            expires_at: Some("never".into()),
            max_downloads: Some("none".into()),
            email: Some("a@b.org".into()),
            require_code: Some(false),
            ..UpdateArgs::default()
        };
        let b = update_body(&a, Some(None)).unwrap();
        assert_eq!(
            b,
            json!({"expires_at": null, "max_downloads": null, "password": null,
                "recipient": {"email": "a@b.org", "require_code": false}})
        );
        let nothing = UpdateArgs::default();
        assert!(update_body(&nothing, None).is_err());
        let bad_limit = UpdateArgs {
            max_downloads: Some("lots".into()),
            ..UpdateArgs::default()
        };
        assert!(update_body(&bad_limit, None)
            .unwrap_err()
            .to_string()
            .starts_with("--max-downloads"));
    }

    #[test]
    fn lists_show_status_and_downloads() {
        let page = json!({"links": [
            {"id": "abc", "type": "guest", "status": "exhausted", "downloads_used": 2,
             "max_downloads": 2, "expires_at": null, "created_by": "alice"},
            {"id": "def", "type": "link", "status": "active", "downloads_used": 7,
             "max_downloads": null, "expires_at": "2030-01-01T00:00:00Z", "created_by": null}],
            "next": "n1"});
        assert_eq!(
            list_table(&page),
            "ID   TYPE   STATUS     DOWNLOADS  EXPIRES               CREATED BY\n\
             abc  guest  exhausted  2/2        -                     alice\n\
             def  link   active     7          2030-01-01T00:00:00Z  -\n\
             more: --after n1\n"
        );
        assert_eq!(
            list_table(&json!({"links": [], "next": null})),
            "no links\n"
        );
    }
}
