//! The admin API against its own OpenAPI document: schemathesis (pinned; `.ci/deps` installs it)
//! generates requests from the document a real gateway serves and runs every check on the
//! answers — server errors, statuses, content types, headers and bodies the document does not
//! list, schema-valid requests refused, schema-invalid ones accepted, missing auth honoured —
//! in all four phases, the stateful one following the document's links from the links and
//! shares it creates. Any finding fails this test, so document and server cannot drift apart.
//!
//! Settings that are ours: tests/schemathesis.toml (why a create may answer 422 to a body the
//! schema accepts, and why `use_after_free` does not apply: DELETE cancels, and a cancelled link
//! stays readable). The run is bounded: `--max-examples`, one worker, a fixed seed (another with
//! `LINKGATE_ST_SEED`), and a deadline.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const VERSION: &str = "4.32.5";

/// The `st` that `.ci/deps` installs (or `LINKGATE_SCHEMATHESIS`).
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("LINKGATE_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    cache
        .join("linkgate")
        .join(format!("schemathesis-{VERSION}"))
        .join("bin")
        .join("st")
}

#[test]
fn the_admin_api_keeps_every_promise_its_openapi_document_makes() {
    let st = schemathesis();
    let version = Command::new(&st).arg("--version").output();
    match version {
        Ok(out) if String::from_utf8_lossy(&out.stdout).contains(VERSION) => {}
        _ => panic!(
            "schemathesis {VERSION} is not installed at {}: run `bash .ci/deps` (it installs it \
             into a virtual environment there), or point LINKGATE_SCHEMATHESIS at its `st`",
            st.display()
        ),
    }
    let origin = Origin::start();
    origin.put("reports/q3.pdf", b"%PDF-1.4 q3");
    let smtp = SmtpSink::start();
    let mut opts = GatewayOptions::for_origin(&origin);
    opts.extra = smtp.config();
    let gw = Gateway::start_with(opts);
    let base = gw.admin().base;
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let seed = std::env::var("LINKGATE_ST_SEED").unwrap_or_else(|_| "1".into());
    let report = gw.dir.path().join("schemathesis");
    let mut child = Command::new(&st)
        .args(["--config-file", config, "run"])
        .arg(format!("{base}/v1/openapi.json"))
        .args(["--checks", "all", "--exclude-checks", "use_after_free"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "25", "--workers", "1", "--seed", &seed])
        .args(["--request-timeout", "30", "--no-color"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {ADMIN_TOKEN}"))
        .arg("--report-dir")
        .arg(&report)
        // Its cache stays in the gateway's temporary folder, not in the repository.
        .current_dir(gw.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run schemathesis");
    // Read both pipes in threads so a full pipe never stalls the run.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let tail = |s: &str| {
        s.chars()
            .rev()
            .take(20_000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    match status {
        Some(s) if s.success() => {
            assert!(
                stdout.contains("Stateful"),
                "the stateful phase ran:\n{}",
                tail(&stdout)
            );
        }
        Some(s) => panic!(
            "schemathesis found the API and its document disagreeing ({s}):\n{}\n{}",
            tail(&stdout),
            tail(&stderr)
        ),
        None => panic!(
            "schemathesis did not finish within 10 minutes:\n{}",
            tail(&stdout)
        ),
    }
}
