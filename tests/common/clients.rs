//! Real download clients driven against the gateway: [`aria2c`].
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Downloads `url` into `dir/name` with aria2c (a real download manager) over `connections`
/// parallel ranges of at least 1 MiB, trying each part once; panics if aria2c fails.
pub fn aria2c(url: &str, dir: &Path, name: &str, connections: u32) {
    let n = connections.to_string();
    let out = Command::new("aria2c")
        .args([
            "-x",
            &n,
            "-s",
            &n,
            "-k1M",
            "--max-tries=1",
            "--console-log-level=warn",
            "--summary-interval=0",
            "-d",
        ])
        .arg(dir)
        .args(["-o", name, url])
        .output()
        .expect("aria2c must be installed (apt-get install aria2)");
    assert!(
        out.status.success(),
        "aria2c failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
