//! What each command does: the gateway commands run the library in this process; `link` and
//! `audit` are calls to a running gateway's admin API.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::args::{AdminTarget, AuditAction, Command, LinkAction};
use super::client::AdminClient;
use crate::app::demo_origin::StaticOrigin;
use crate::config::Config;

pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("linkgate: {message}");
    ExitCode::FAILURE
}

pub fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(fail)
}

/// Runs one command (all but `demo`).
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve {
            config: path,
            upgrade,
        } => {
            let config = match load(&path) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let logs = crate::app::init_logging(config.log_json);
            crate::app::run::serve(&path, &config, upgrade, logs)
        }
        Command::Reload { config, pid } => match crate::app::reload::send(&config, pid) {
            Ok(pid) => {
                println!(
                    "{}: ok; SIGHUP sent to process {pid} (its log says \"configuration reloaded\" or why not)",
                    config.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::CheckConfig { config } => match load(&config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} store(s), signing key `{}`)",
                    config.display(),
                    c.stores.len(),
                    c.keys.signing_key_id()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Link { target, action } => link(target, action),
        Command::Share { target, action } => super::shares::run(target, action),
        Command::Audit {
            target,
            action: AuditAction::Verify { id },
        } => {
            let client = match admin_client(target) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match client
                .all_events(&id)
                .map_err(|e| e.to_string())
                .and_then(|events| super::client::verify_chain(&id, &events))
            {
                Ok(n) => {
                    println!("link {id}: audit chain intact ({n} events)");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("link {id}: audit chain does not verify: {e}")),
            }
        }
        Command::Origin { dir, listen } => {
            let _logs = crate::app::init_logging(false);
            let origin = match StaticOrigin::new(&dir) {
                Ok(o) => o,
                Err(e) => return fail(format!("{}: {e}", dir.display())),
            };
            let mut server =
                pingora::server::Server::new_with_opt_and_conf(None, Default::default());
            server.bootstrap();
            let mut service =
                pingora::services::listening::Service::new("origin".to_string(), origin);
            service.add_tcp(&listen);
            server.add_service(service);
            eprintln!("serving {} on http://{listen}/", dir.display());
            server.run_forever()
        }
        // `demo` is dispatched by `cli::run` before this.
        Command::Demo { .. } => fail("demo is run by cli::run"),
    }
}

pub fn admin_client(target: AdminTarget) -> Result<AdminClient, ExitCode> {
    let from_config = match &target.config {
        Some(path) => Some(load(path)?),
        None => None,
    };
    let url = target
        .admin_url
        .or_else(|| {
            from_config
                .as_ref()
                .map(|c| format!("http://{}", c.admin.listen))
        })
        .unwrap_or_else(|| "http://127.0.0.1:9090".to_string());
    let Some(token) = target
        .token
        .or_else(|| from_config.as_ref().map(|c| c.admin.token.clone()))
    else {
        return Err(fail(
            "an admin token is needed: --token, LINKGATE_ADMIN_TOKEN or --config",
        ));
    };
    Ok(AdminClient::new(&url, &token))
}

fn link(target: AdminTarget, action: LinkAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match action {
        LinkAction::Create {
            store,
            object,
            filename,
            expires_at,
            max_downloads,
            rights,
            created_by,
        } => client.create(&json!({
            "store": store, "object": object, "filename": filename, "expires_at": expires_at,
            "max_downloads": max_downloads, "rights": rights, "created_by": created_by,
        })),
        LinkAction::Show { id } => client.show(&id),
        LinkAction::List {
            object,
            store,
            created_by,
            state,
            limit,
            after,
        } => {
            let params: Vec<(&str, String)> = [
                ("object", object),
                ("store", store),
                ("created_by", created_by),
                ("state", state),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
            client.list(&params)
        }
        LinkAction::Update {
            id,
            expires_at,
            max_downloads,
            filename,
            changed_by,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(e) = expires_at {
                body.insert(
                    "expires_at".into(),
                    if e == "never" {
                        Value::Null
                    } else {
                        Value::String(e)
                    },
                );
            }
            if let Some(m) = max_downloads {
                let value = match m.as_str() {
                    "none" => Value::Null,
                    n => match n.parse::<u64>() {
                        Ok(n) => Value::from(n),
                        Err(_) => return fail("--max-downloads takes a number or \"none\""),
                    },
                };
                body.insert("max_downloads".into(), value);
            }
            if let Some(f) = filename {
                body.insert("filename".into(), Value::String(f));
            }
            if let Some(c) = changed_by {
                body.insert("changed_by".into(), Value::String(c));
            }
            client.update(&id, &Value::Object(body))
        }
        LinkAction::Events { id } => client
            .all_events(&id)
            .map(|events| json!({ "link": id, "events": events })),
        LinkAction::Cancel { id } => client.cancel(&id),
        LinkAction::Deactivate { id } => client.set_active(&id, false),
        LinkAction::Activate { id } => client.set_active(&id, true),
    };
    match result {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
            if let Some(url) = value.get("url").and_then(Value::as_str) {
                eprintln!("link: {url}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
