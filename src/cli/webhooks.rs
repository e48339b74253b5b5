//! `linkgate webhooks …`: the webhook outbox of a running gateway through its admin API.
//! `webhooks failed` is `GET /v1/webhooks/failed`: the deliveries given up after their last
//! retry, newest first, and how many are still pending; a table by default, the API's JSON with
//! `--json`.

use std::process::ExitCode;

use serde_json::Value;

use super::args::{AdminTarget, Output, WebhooksAction};
use super::commands::{admin_client, fail};
use super::table::{cell, Table};

pub fn run(target: AdminTarget, output: Output, action: WebhooksAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match action {
        WebhooksAction::Failed => match client.call("GET", "/v1/webhooks/failed", None) {
            Ok(v) if output.json => {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(v) => {
                print!("{}", failed_table(&v));
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

/// The answer of `GET /v1/webhooks/failed` for people: a row per given-up delivery, then how
/// many are pending (or that the gateway has no webhooks configured).
pub fn failed_table(answer: &Value) -> String {
    if answer.get("enabled") == Some(&Value::Bool(false)) {
        return "webhooks are not configured on this gateway ([webhooks])\n".to_string();
    }
    let mut t = Table::new(&[
        "ID",
        "TYPE",
        "LINK",
        "AT",
        "ATTEMPTS",
        "FAILED AT",
        "LAST ERROR",
    ]);
    for f in answer
        .get("failed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.row(vec![
            cell(f.get("id")),
            cell(f.get("type")),
            cell(f.get("link")),
            cell(f.get("at")),
            cell(f.get("attempts")),
            cell(f.get("failed_at")),
            cell(f.get("last_error")),
        ]);
    }
    let mut out = if t.is_empty() {
        "no failed webhooks\n".to_string()
    } else {
        t.render()
    };
    out.push_str(&format!("pending: {}\n", cell(answer.get("pending"))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_webhooks_are_a_table_with_the_pending_count() {
        let answer = json!({"enabled": true, "pending": 3, "failed": [
            {"id": "abc.4", "type": "download.completed", "link": "abc",
             "at": "2030-01-01T00:00:00Z", "attempts": 2, "last_error": "answered 500\nagain",
             "failed_at": "2030-01-01T00:00:09Z"}]});
        assert_eq!(
            failed_table(&answer),
            "ID     TYPE                LINK  AT                    ATTEMPTS  FAILED AT             LAST ERROR\n\
             abc.4  download.completed  abc   2030-01-01T00:00:00Z  2         2030-01-01T00:00:09Z  answered 500 again\n\
             pending: 3\n"
        );
        assert_eq!(
            failed_table(&json!({"enabled": true, "failed": [], "pending": 0})),
            "no failed webhooks\npending: 0\n"
        );
        assert!(
            failed_table(&json!({"enabled": false, "failed": [], "pending": 0}))
                .contains("not configured")
        );
    }
}
