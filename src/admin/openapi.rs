//! The OpenAPI document as served: the checked-in one ([`super::OPENAPI`]) with what depends on
//! the configuration filled in, so that a client generated from it, or a validator, agrees with
//! this gateway: every schema marked `"x-linkgate-enum": "stores"` gets the configured store
//! names as its `enum`.

use std::sync::LazyLock;

use serde_json::Value;

use crate::share::gate::Gate;

static DOCUMENT: LazyLock<Option<Value>> =
    LazyLock::new(|| serde_json::from_str(super::OPENAPI).ok());

fn fill(v: &mut Value, stores: &[String]) {
    match v {
        Value::Object(o) => {
            if o.get("x-linkgate-enum").and_then(Value::as_str) == Some("stores") {
                o.insert(
                    "enum".into(),
                    Value::Array(stores.iter().cloned().map(Value::String).collect()),
                );
            }
            for child in o.values_mut() {
                fill(child, stores);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| fill(c, stores)),
        _ => {}
    }
}

/// The document this gateway serves at `/v1/openapi.json`.
pub(super) fn served(gate: &Gate) -> Vec<u8> {
    let Some(doc) = DOCUMENT.as_ref() else {
        return super::OPENAPI.as_bytes().to_vec();
    };
    let mut stores: Vec<String> = gate.docstores.keys().cloned().collect();
    stores.sort();
    let mut doc = doc.clone();
    fill(&mut doc, &stores);
    serde_json::to_vec_pretty(&doc).unwrap_or_else(|_| super::OPENAPI.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_document_is_json_and_store_enums_are_filled() {
        assert!(
            DOCUMENT.is_some(),
            "src/admin/openapi.json must be valid JSON"
        );
        let mut v = serde_json::json!({"a": {"type": "string", "x-linkgate-enum": "stores"}});
        fill(&mut v, &["docs".to_string()]);
        assert_eq!(v["a"]["enum"], serde_json::json!(["docs"]));
    }
}
