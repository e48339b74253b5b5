//! `linkgate demo`: the example config's gateway on the embedded store, a static origin serving
//! generated sample files, and a freshly created link to try.

use std::path::PathBuf;
use std::process::ExitCode;

use super::commands::{fail, load};
use crate::app::demo_origin::StaticOrigin;
use crate::docstore::settings::StoreConfig;

/// The demo: the example config's gateway, plus a static origin on the first store's address
/// serving generated sample files, plus a freshly created link.
pub fn run(config_path: &std::path::Path) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let logs = crate::app::init_logging(config.log_json);
    let Some((store_name, StoreConfig::Http(store))) = config.stores.iter().next() else {
        return fail("the demo needs an http store first in the config");
    };
    let Some(store) = store.origins.first() else {
        return fail("the config names no origin");
    };
    let dir = PathBuf::from("data/demo-files");
    let sample = dir.join("welcome.txt");
    let big = dir.join("sample-8MiB.bin");
    let prepared = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&sample, "Hello from behind linkgate.\n"))
        .and_then(|_| {
            std::fs::write(
                &big,
                (0..8u32 * 1024 * 1024)
                    .map(|i| (i % 251) as u8)
                    .collect::<Vec<u8>>(),
            )
        });
    if let Err(e) = prepared {
        return fail(format!(
            "cannot write demo files under {}: {e}",
            dir.display()
        ));
    }
    let origin = match StaticOrigin::new(&dir) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    // The demo origin serves its files at `/`; the store's base path is stripped by serving the
    // files from a folder of that name.
    let nested = dir.join(store.base_path.trim_matches('/'));
    if !store.base_path.trim_matches('/').is_empty() {
        let moved = std::fs::create_dir_all(&nested)
            .and_then(|_| std::fs::copy(&sample, nested.join("welcome.txt")))
            .and_then(|_| std::fs::copy(&big, nested.join("sample-8MiB.bin")));
        if let Err(e) = moved {
            return fail(e);
        }
    }
    let mut listeners = crate::app::run::listen_addresses(&config);
    listeners.push(("the demo origin (the first store's url)", store.addr));
    if let Err(e) = crate::app::run::check_listeners(&listeners) {
        return fail(e);
    }
    let (server, gate) = match crate::app::build(&config, Some((origin, store.addr.to_string()))) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let doc = crate::model::link::Document::new(
        "welcome.txt".into(),
        "Welcome to linkgate.txt".into(),
        None,
    );
    let mut link = crate::model::link::Link::new(
        store_name,
        doc,
        gate.links.keys.signing_key_id(),
        time::OffsetDateTime::now_utc(),
    );
    link.expires_at = Some(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    link.max_downloads = Some(5);
    link.created_by = Some("demo".into());
    let created = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| crate::state::StoreError::Unavailable(e.to_string()))
        .and_then(|rt| rt.block_on(gate.links.store.create(&link)));
    if let Err(e) = created {
        return fail(e);
    }
    let url = gate.url_of(&link).unwrap_or_default();
    println!("\nlinkgate demo is running (Ctrl-C to stop).");
    println!(
        "  origin : http://{} (serving {})",
        store.addr,
        dir.display()
    );
    println!("  gateway: {}", config.server.public_url);
    println!(
        "  admin  : http://{} (token from {})",
        config.admin.listen,
        config_path.display()
    );
    println!("\nA link to welcome.txt, good for 5 downloads within 24 hours:\n\n  {url}\n");
    println!("Try:  curl -OJ '{url}'");
    println!("Mint another (in a second shell):");
    println!("  cargo run --release -- link --config {} create --store {store_name} --object sample-8MiB.bin --max-downloads 3\n", config_path.display());
    crate::app::run::run(server, logs)
}
