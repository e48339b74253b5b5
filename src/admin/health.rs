//! Readiness (`/readyz` on the admin listener): the link store and every document store are
//! checked live, each bounded in time. `/healthz` only says the process answers.

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Map, Value};

use crate::model::link::LinkId;
use crate::share::gate::Gate;

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn bounded<F: std::future::Future<Output = Result<(), String>>>(
    check: F,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// `200` with every check `ok`, or `503` naming what is not reachable.
pub async fn readiness(gate: &Gate) -> (StatusCode, Value) {
    let mut ready = true;
    let probe = LinkId::from_slice(&[0u8; LinkId::LEN]);
    let state = bounded(async {
        match probe {
            Some(id) => gate
                .links
                .store
                .get(id)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    })
    .await;
    let mut stores = Map::new();
    for (name, store) in &gate.docstores {
        let result = bounded(store.ready()).await;
        if let Err(e) = &result {
            tracing::warn!(store = %name, kind = store.kind(), error = %e, "store is not ready");
        }
        ready &= result.is_ok();
        stores.insert(
            name.clone(),
            json!(result.err().unwrap_or_else(|| "ok".to_string())),
        );
    }
    if let Err(e) = &state {
        tracing::warn!(error = %e, "link store is not ready");
        ready = false;
    }
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "state": state.err().unwrap_or_else(|| "ok".to_string()),
        "stores": stores,
    });
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        body,
    )
}
