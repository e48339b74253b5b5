//! The admin API used by someone who only read its document: the README's Python example, run
//! as printed, and a small typed Rust client written from `/v1/openapi.json` (its schemas as
//! serde structs: `Link`, `Problem`, the page of links) that creates with an Idempotency-Key,
//! reads, changes with If-Match, pages with a cursor and cancels.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::*;
use serde::{Deserialize, Serialize};

/// The Python block under the README's "Use the API" heading, exactly as printed.
fn readme_python() -> String {
    let readme = include_str!("../README.md");
    let section = readme
        .split("## Use the API")
        .nth(1)
        .expect("README has a \"Use the API\" section");
    let block = section
        .split("```python\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a ```python block in it");
    block.to_string()
}

#[test]
fn the_readme_python_example_runs_as_printed() {
    let origin = Origin::start();
    origin.put("reports/q3.pdf", b"%PDF-1.4 q3");
    let gw = Gateway::start(&origin);
    let code = readme_python();
    let out = Command::new("python3")
        .arg("-c")
        .arg(&code)
        .env("LINKGATE_ADMIN_URL", gw.admin().base)
        .env("LINKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("python3 (with python3-requests: bash .ci/deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README's example failed:\n{code}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout.trim();
    assert!(url.contains("/s/"), "it printed the link's URL: {stdout}");
    let listed = gw
        .admin()
        .call("GET", "/v1/links?object=reports/q3.pdf", None)
        .json();
    let link = &listed["links"][0];
    assert_eq!(link["url"], url);
    assert_eq!(link["max_downloads"], 5, "the PATCH with If-Match applied");
    assert_eq!(link["state"], "cancelled", "the bulk cancel applied");
}

// ---- A typed client, from the OpenAPI document's schemas ----

/// `#/components/schemas/Link` (the fields this client uses).
#[derive(Debug, Clone, Deserialize)]
struct Link {
    id: String,
    url: Option<String>,
    state: String,
    status: String,
    max_downloads: Option<u64>,
    created_by: Option<String>,
    etag: String,
}

/// `#/components/schemas/CreateLink` (the fields this client sets).
#[derive(Debug, Serialize)]
struct CreateLink<'a> {
    store: &'a str,
    object: &'a str,
    max_downloads: Option<u64>,
    created_by: &'a str,
}

/// `#/components/schemas/ChangeLink` (the fields this client sets).
#[derive(Debug, Serialize)]
struct ChangeLink {
    max_downloads: Option<u64>,
}

/// `#/components/schemas/Problem`: every error.
#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    field: Option<String>,
}

/// The `200` of `listLinks`.
#[derive(Debug, Deserialize)]
struct LinkPage {
    links: Vec<Link>,
    next_cursor: Option<String>,
}

#[derive(Debug)]
enum Error {
    Problem(Problem),
    // Read through `Debug` when a test fails.
    #[allow(dead_code)]
    Transport(String),
}

struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<(T, Option<String>), Error> {
        let mut req = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("authorization", &format!("Bearer {}", self.token));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match result {
            Ok(resp) => {
                let etag = resp.header("etag").map(str::to_string);
                let value = resp
                    .into_json()
                    .map_err(|e| Error::Transport(e.to_string()))?;
                Ok((value, etag))
            }
            Err(ureq::Error::Status(_, resp)) => {
                assert_eq!(resp.content_type(), "application/problem+json");
                Err(Error::Problem(
                    resp.into_json()
                        .map_err(|e| Error::Transport(e.to_string()))?,
                ))
            }
            Err(e) => Err(Error::Transport(e.to_string())),
        }
    }

    fn create(&self, key: &str, body: &CreateLink) -> Result<Link, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::Transport(e.to_string()))?;
        Ok(self
            .send("POST", "/v1/links", &[("idempotency-key", key)], Some(body))?
            .0)
    }

    fn get(&self, id: &str) -> Result<(Link, Option<String>), Error> {
        self.send("GET", &format!("/v1/links/{id}"), &[], None)
    }

    fn change(&self, id: &str, if_match: &str, change: &ChangeLink) -> Result<Link, Error> {
        let body = serde_json::to_value(change).map_err(|e| Error::Transport(e.to_string()))?;
        Ok(self
            .send(
                "PATCH",
                &format!("/v1/links/{id}"),
                &[("if-match", if_match)],
                Some(body),
            )?
            .0)
    }

    fn list(&self, created_by: &str, cursor: Option<&str>) -> Result<LinkPage, Error> {
        let mut path = format!("/v1/links?created_by={created_by}&limit=2");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        Ok(self.send("GET", &path, &[], None)?.0)
    }

    fn cancel(&self, id: &str, if_match: &str) -> Result<Link, Error> {
        Ok(self
            .send(
                "DELETE",
                &format!("/v1/links/{id}?by=dms"),
                &[("if-match", if_match)],
                None,
            )?
            .0)
    }
}

#[test]
fn a_typed_client_written_from_the_document_does_the_whole_lifecycle() {
    let origin = Origin::start();
    origin.put("reports/q3.pdf", b"%PDF-1.4 q3");
    let gw = Gateway::start(&origin);
    let client = Client {
        base: gw.admin().base,
        token: ADMIN_TOKEN.to_string(),
        agent: ureq::AgentBuilder::new().build(),
    };
    let body = CreateLink {
        store: "docs",
        object: "reports/q3.pdf",
        max_downloads: Some(3),
        created_by: "typed",
    };
    let created = client.create("typed-1", &body).expect("create");
    let again = client.create("typed-1", &body).expect("a retried create");
    assert_eq!(again.id, created.id, "one link for one key");
    assert!(created.url.as_deref().is_some_and(|u| u.contains("/s/")));
    assert_eq!(
        (created.state.as_str(), created.status.as_str()),
        ("active", "active")
    );
    assert_eq!(created.created_by.as_deref(), Some("typed"));

    let (read, etag) = client.get(&created.id).expect("read");
    assert_eq!(etag.as_deref(), Some(read.etag.as_str()));
    let changed = client
        .change(
            &read.id,
            &read.etag,
            &ChangeLink {
                max_downloads: Some(5),
            },
        )
        .expect("change with If-Match");
    assert_eq!(changed.max_downloads, Some(5));
    match client.change(
        &read.id,
        &read.etag,
        &ChangeLink {
            max_downloads: Some(9),
        },
    ) {
        Err(Error::Problem(p)) => {
            assert_eq!(p.kind, "https://linkgate.dev/problems/precondition-failed");
            assert_eq!((p.status, p.field.as_deref()), (412, Some("If-Match")));
            assert!(!p.title.is_empty() && !p.detail.is_empty());
        }
        other => panic!("a stale If-Match: {other:?}"),
    }

    for i in 2..=5 {
        client
            .create(&format!("typed-{i}"), &body)
            .expect("more links");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = client.list("typed", cursor.as_deref()).expect("a page");
        seen.extend(page.links.iter().map(|l| l.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    let cancelled = client.cancel(&changed.id, &changed.etag).expect("cancel");
    assert_eq!(cancelled.state, "cancelled");
    match client.get("0123") {
        Err(Error::Problem(p)) => assert_eq!(p.kind, "https://linkgate.dev/problems/not-found"),
        other => panic!("an unknown id: {other:?}"),
    }
}
