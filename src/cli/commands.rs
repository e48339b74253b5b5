//! What each command does: the gateway commands run the library in this process; `link`,
//! `share`, `webhooks` and `audit` are calls to a running gateway's admin API.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::args::{AdminTarget, AuditAction, Command, LinkAction, Output};
use super::client::AdminClient;
use super::links::{
    create_body, events_table, link_record, list_table, read_secrets, read_update_password,
    update_body,
};
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
        Command::Link {
            target,
            output,
            action,
        } => link(target, output, action),
        Command::Share {
            target,
            output,
            action,
        } => super::shares::run(target, output, action),
        Command::Webhooks {
            target,
            output,
            action,
        } => super::webhooks::run(target, output, action),
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
        Command::RenderWorker { .. } => fail("render-worker is run by cli::run"),
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

/// What a `link` command printed from: one link, a page of links, or events.
enum Answer {
    Link(Value),
    Page(Value),
    Events(String, Vec<Value>),
    Bulk(Value),
}

/// A bulk action's answer: how many links changed, then each id, then those skipped.
fn bulk_text(v: &Value) -> String {
    let ids = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (changed, skipped) = (ids("ids"), ids("skipped"));
    let mut out = format!(
        "{} {} link(s), {} skipped (already done)\n",
        v["action"].as_str().unwrap_or("changed"),
        changed.len(),
        skipped.len()
    );
    for id in changed {
        out.push_str(&format!("  {id}\n"));
    }
    if v["complete"] == Value::Bool(false) {
        out.push_str("more links remain: run the same command again\n");
    }
    out
}

fn link(target: AdminTarget, output: Output, action: LinkAction) -> ExitCode {
    let client = match admin_client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match action {
        LinkAction::Create(args) => {
            let body = read_secrets(&args.link).and_then(|secrets| create_body(&args, &secrets));
            match body {
                Ok(body) => client.create(&body).map(Answer::Link),
                Err(e) => return fail(e),
            }
        }
        LinkAction::Show { id } => client.show(&id).map(Answer::Link),
        LinkAction::List {
            object,
            store,
            created_by,
            state,
            status,
            limit,
            after,
        } => {
            let params: Vec<(&str, String)> = [
                ("object", object),
                ("store", store),
                ("created_by", created_by),
                ("state", state),
                ("status", status),
                ("limit", limit.map(|l| l.to_string())),
                ("after", after),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
            client.list(&params).map(Answer::Page)
        }
        LinkAction::Update(args) => {
            match read_update_password(&args).and_then(|p| update_body(&args, p)) {
                Ok(body) => client.update(&args.id, &body).map(Answer::Link),
                Err(e) => return fail(e),
            }
        }
        LinkAction::Events { id } => client
            .all_events(&id)
            .map(|events| Answer::Events(id, events)),
        LinkAction::Cancel { id, by } => client.cancel(&id, by.as_deref()).map(Answer::Link),
        LinkAction::Deactivate { id, by } => client
            .set_active(&id, false, by.as_deref())
            .map(Answer::Link),
        LinkAction::Activate { id, by } => client
            .set_active(&id, true, by.as_deref())
            .map(Answer::Link),
        LinkAction::Bulk {
            action,
            object,
            share,
            created_by,
            by,
        } => {
            let mut body = json!({ "action": action, "by": by });
            for (k, v) in [
                ("object", object),
                ("share", share),
                ("created_by", created_by),
            ] {
                if let Some(v) = v {
                    body[k] = Value::String(v);
                }
            }
            client
                .call("POST", "/v1/links/bulk", Some(&body))
                .map(Answer::Bulk)
        }
    };
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => return fail(e),
    };
    let text = match (&answer, output.json) {
        (Answer::Link(v) | Answer::Page(v) | Answer::Bulk(v), true) => {
            serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
        }
        (Answer::Events(id, events), true) => {
            serde_json::to_string_pretty(&json!({ "link": id, "events": events }))
                .unwrap_or_default()
                + "\n"
        }
        (Answer::Link(v), false) => link_record(v),
        (Answer::Page(v), false) => list_table(v),
        (Answer::Events(_, events), false) => events_table(events),
        (Answer::Bulk(v), false) => bulk_text(v),
    };
    print!("{text}");
    if let Answer::Link(v) = &answer {
        if let Some(url) = v.get("url").and_then(Value::as_str) {
            eprintln!("link: {url}");
        }
    }
    ExitCode::SUCCESS
}
