//! The admin API client behind `linkgate link …`: every command is one HTTP call to a running
//! gateway's admin listener, so the CLI never touches the link store directly.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("admin API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("cannot reach the admin API at {url}: {message}")]
    Transport { url: String, message: String },
}

pub struct AdminClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl AdminClient {
    pub fn new(base: &str, token: &str) -> AdminClient {
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(30))
            .build();
        AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            agent,
        }
    }

    /// One admin API call; the JSON answer, or the API's problem as `field: detail`.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let url = format!("{}{}", self.base, path);
        let req = self
            .agent
            .request(method, &url)
            .set("authorization", &format!("Bearer {}", self.token));
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match result {
            Ok(resp) => resp.into_json().map_err(|e| CliError::Transport {
                url,
                message: e.to_string(),
            }),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| {
                        // RFC 9457 problem details: `detail`, and `field` where there is one.
                        let msg = v.get("detail")?.as_str()?.to_string();
                        Some(match v.get("field").and_then(Value::as_str) {
                            Some(f) => format!("{f}: {msg}"),
                            None => msg,
                        })
                    })
                    .unwrap_or(text);
                Err(CliError::Api { status, message })
            }
            Err(e) => Err(CliError::Transport {
                url,
                message: e.to_string(),
            }),
        }
    }

    pub fn create(&self, body: &Value) -> Result<Value, CliError> {
        self.call("POST", "/v1/links", Some(body))
    }

    pub fn show(&self, id: &str) -> Result<Value, CliError> {
        self.call("GET", &format!("/v1/links/{}", encode(id)), None)
    }

    /// Cancels a link for good; `by` is recorded as `cancelled_by` and on the event.
    pub fn cancel(&self, id: &str, by: Option<&str>) -> Result<Value, CliError> {
        let query = by
            .map(|b| format!("?cancelled_by={}", encode(b)))
            .unwrap_or_default();
        self.call("DELETE", &format!("/v1/links/{}{query}", encode(id)), None)
    }

    /// Activates or deactivates a link; `by` is recorded on the event.
    pub fn set_active(&self, id: &str, active: bool, by: Option<&str>) -> Result<Value, CliError> {
        let verb = if active { "activate" } else { "deactivate" };
        let query = by.map(|b| format!("?by={}", encode(b))).unwrap_or_default();
        self.call(
            "POST",
            &format!("/v1/links/{}/{verb}{query}", encode(id)),
            None,
        )
    }

    pub fn update(&self, id: &str, body: &Value) -> Result<Value, CliError> {
        self.call("PATCH", &format!("/v1/links/{}", encode(id)), Some(body))
    }

    /// One page of links; `params` are query parameters (object, store, created_by, state, limit, after).
    pub fn list(&self, params: &[(&str, String)]) -> Result<Value, CliError> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        self.call("GET", &format!("/v1/links?{}", query.join("&")), None)
    }

    /// Every event of a link, following the pages.
    pub fn all_events(&self, id: &str) -> Result<Vec<Value>, CliError> {
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let page = self.call(
                "GET",
                &format!("/v1/links/{}/events?after={after}&limit=1000", encode(id)),
                None,
            )?;
            if let Some(events) = page.get("events").and_then(Value::as_array) {
                out.extend(events.iter().cloned());
            }
            match page.get("next").and_then(Value::as_u64) {
                Some(next) => after = next,
                None => return Ok(out),
            }
        }
    }
}

/// Checks a link's audit chain as served by the admin API: `Ok(count)` when it is intact.
pub fn verify_chain(id: &str, events: &[Value]) -> Result<usize, String> {
    let link =
        crate::model::link::LinkId::parse(id).ok_or_else(|| format!("`{id}` is not a link id"))?;
    let events: Vec<crate::model::audit::Event> = events
        .iter()
        .map(|e| {
            serde_json::from_value(e.clone()).map_err(|err| format!("unreadable event: {err}"))
        })
        .collect::<Result<_, _>>()?;
    crate::model::audit::verify(link, &events).map_err(|e| e.to_string())?;
    Ok(events.len())
}

/// A path segment or query value, percent-encoded.
pub fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
