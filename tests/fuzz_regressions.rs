//! Fuzzing regressions: every input kept under `fuzz/regressions/<target>/` (crashes found by
//! `cargo fuzz`, plus hand-picked edge cases) replayed through the same property checks the fuzz
//! targets run (`fuzz/checks.rs`), as ordinary tests.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    inputs.sort();
    assert!(!inputs.is_empty(), "no stored inputs in {}", dir.display());
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check again", path.display());
    }
}

#[test]
fn token_inputs() {
    replay("token", checks::token);
}

#[test]
fn cookie_inputs() {
    replay("cookies", checks::cookies);
}

#[test]
fn range_inputs() {
    replay("range", checks::range);
}

#[test]
fn form_inputs() {
    replay("form", checks::form);
}

#[test]
fn admin_json_inputs() {
    replay("admin_json", checks::admin_json);
}

#[test]
fn secure_link_inputs() {
    replay("secure_link", checks::secure_link);
}

#[test]
fn multipart_inputs() {
    replay("multipart", checks::multipart);
}

#[test]
fn origin_head_inputs() {
    replay("origin_head", checks::origin_head);
}

#[test]
fn chunked_inputs() {
    replay("chunked", checks::chunked);
}

#[test]
fn render_inputs() {
    replay("render", checks::render);
}
