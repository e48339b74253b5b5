//! `linkgate link …`: the request bodies built from the command line (every field of
//! `POST /v1/links` and `PATCH /v1/links/{id}`) and the tables and records printed from the
//! answers.

use serde_json::{json, Map, Value};

use super::args::{CreateArgs, UpdateArgs};
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

/// The `POST /v1/links` body for `link create` (`password` already read from its file).
pub fn create_body(a: &CreateArgs, password: Option<String>) -> Result<Value, ArgError> {
    let mut b = Map::new();
    b.insert("store".into(), a.store.clone().into());
    if let Some(o) = &a.object {
        b.insert("object".into(), o.clone().into());
    }
    if let Some(f) = &a.filename {
        b.insert("filename".into(), f.clone().into());
    }
    if !a.renditions.is_empty() {
        let mut r = Map::new();
        for text in &a.renditions {
            let (name, value) = rendition(text)?;
            r.insert(name, value);
        }
        b.insert("renditions".into(), Value::Object(r));
    }
    if !a.documents.is_empty() {
        let docs = a
            .documents
            .iter()
            .map(|d| document(d))
            .collect::<Result<Vec<_>, _>>()?;
        b.insert("documents".into(), Value::Array(docs));
    }
    if let Some(e) = &a.expires_at {
        b.insert("expires_at".into(), e.clone().into());
    }
    if let Some(m) = a.max_downloads {
        b.insert("max_downloads".into(), m.into());
    }
    if let Some(r) = &a.rights {
        b.insert("rights".into(), json!(r));
    }
    if let Some(c) = &a.created_by {
        b.insert("created_by".into(), c.clone().into());
    }
    if let Some(p) = password {
        b.insert("password".into(), p.into());
    }
    if let Some(e) = &a.email {
        b.insert(
            "recipient".into(),
            json!({"email": e, "require_code": a.require_code}),
        );
    } else if a.recipient_without_email {
        b.insert("recipient".into(), json!({ "email": null }));
    }
    if let Some(p) = &a.on_change {
        b.insert("on_change".into(), p.clone().into());
    }
    if let Some(folder) = &a.upload_folder {
        let mut u = Map::new();
        u.insert("folder".into(), folder.clone().into());
        u.insert("overwrite".into(), a.upload_overwrite.into());
        if let Some(n) = a.upload_max_files {
            u.insert("max_files".into(), n.into());
        }
        if let Some(n) = a.upload_max_bytes {
            u.insert("max_bytes".into(), n.into());
        }
        if let Some(t) = &a.upload_types {
            u.insert("allowed_types".into(), json!(t));
        }
        b.insert("upload".into(), Value::Object(u));
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
            "name something to change (--expires-at, --max-downloads, --filename, --password, \
             --remove-password, --on-change, --email)",
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

    #[test]
    fn every_create_field_reaches_the_body() {
        let a = CreateArgs {
            store: "docs".into(),
            documents: vec![
                "a.pdf=A.pdf".into(),
                "b.pdf".into(),
                r#"{"object": "c.pdf", "renditions": {"low": "c-low.pdf"}}"#.into(),
            ],
            expires_at: Some("2030-01-01T00:00:00Z".into()),
            max_downloads: Some(3),
            rights: Some(vec!["view".into(), "upload".into()]),
            created_by: Some("alice".into()),
            email: Some("jane@example.org".into()),
            require_code: true,
            on_change: Some("refuse".into()),
            upload_folder: Some("in".into()),
            upload_max_files: Some(2),
            upload_types: Some(vec!["application/pdf".into()]),
            ..CreateArgs::default()
        };
        let b = create_body(&a, Some("pw".into())).unwrap();
        assert_eq!(
            b["documents"][0],
            json!({"object": "a.pdf", "filename": "A.pdf"})
        );
        assert_eq!(b["documents"][1], json!({"object": "b.pdf"}));
        assert_eq!(b["documents"][2]["renditions"]["low"], "c-low.pdf");
        assert_eq!(
            b["recipient"],
            json!({"email": "jane@example.org", "require_code": true})
        );
        assert_eq!(b["upload"]["max_files"], 2);
        assert_eq!(b["upload"]["overwrite"], false);
        assert_eq!(
            (b["password"].as_str(), b["on_change"].as_str()),
            (Some("pw"), Some("refuse"))
        );
        assert!(b.get("object").is_none() && b.get("renditions").is_none());

        let one = CreateArgs {
            store: "docs".into(),
            object: Some("a.pdf".into()),
            renditions: vec!["low=a-low.pdf=A low.pdf".into(), "jpg=a.jpg".into()],
            recipient_without_email: true,
            ..CreateArgs::default()
        };
        let b = create_body(&one, None).unwrap();
        assert_eq!(
            b["renditions"]["low"],
            json!({"object": "a-low.pdf", "filename": "A low.pdf"})
        );
        assert_eq!(b["renditions"]["jpg"], json!({"object": "a.jpg"}));
        assert_eq!(b["recipient"], json!({"email": null}));
        let broken = CreateArgs {
            renditions: vec!["low".into()],
            ..CreateArgs::default()
        };
        assert!(create_body(&broken, None)
            .unwrap_err()
            .to_string()
            .starts_with("--rendition"));
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
