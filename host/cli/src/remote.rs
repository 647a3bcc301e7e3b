//! `--server URL`: `run` and `execution list|get|re-run|replay|cancel`
//! through a running `wasmflow serve`, printed as the local commands print.

use crate::args::{Command, ExecutionCommand, RunArgs};
use crate::run::read_input;
use crate::{print, CmdResult, Fail};
use anyhow::anyhow;
use serde_json::{json, Value};
use std::process::ExitCode;
use wasmflow_server::client::Client;
use wasmflow_server::wire::{CreateExecution, ListQuery, ReRun};
use wasmflow_store::LogLine;

/// Run `command` against the server, or None when it is a local command
/// (new, build, inspect, serve, token, ...).
pub fn dispatch(server: &str, token: Option<String>, command: &mut Command) -> Option<CmdResult> {
    let client = Client::new(server, token);
    Some(match command {
        Command::Run(args) => crate::tokio().block_on(run(&client, args)),
        Command::Execution { command } => crate::tokio().block_on(execution(&client, command)),
        Command::Action { command } => crate::tokio().block_on(action(&client, command)),
        Command::Trigger {
            command: crate::args::TriggerCommand::Emit { kind, payload },
        } => crate::tokio().block_on(emit(&client, kind, payload)),
        Command::Rule { command }
            if !matches!(
                command,
                crate::args::RuleCommand::Validate { .. } | crate::args::RuleCommand::Test { .. }
            ) =>
        {
            crate::tokio().block_on(rules(&client, command))
        }
        _ => return None,
    })
}

async fn run(client: &Client, args: &RunArgs) -> CmdResult {
    let name = args.component.to_string_lossy().into_owned();
    let input = match &args.input {
        Some(path) => read_input(path)?,
        None => Value::Object(Default::default()),
    };
    // No grant flags leave the choice to the server (nothing for an action,
    // its grants for a workflow).
    let grants = Some(args.grants.spec()).filter(|g| !g.is_empty());
    let id = client
        .create(&CreateExecution {
            action: name.clone(),
            input: Some(input),
            grants,
            params: args.params.clone(),
        })
        .await?
        .id;
    eprintln!("execution {id} of {name} queued on {}", client.base());
    if args.detach {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    use std::io::IsTerminal;
    let show = args.logs || (!args.no_logs && std::io::stderr().is_terminal());
    client
        .follow(&id, |event, data| {
            if show && event == "log" {
                if let Ok(line) = serde_json::from_value::<LogLine>(data.clone()) {
                    print::log_line(&line);
                }
            }
        })
        .await?;
    let rec = client.execution(&id).await?;
    Ok(crate::exit_code(print::outcome(&rec, args.json)))
}

/// `action list|get` of the server's catalog.
async fn action(client: &Client, command: &crate::args::ActionCommand) -> CmdResult {
    match command {
        crate::args::ActionCommand::List { json, .. } => {
            let actions = client.actions().await?;
            if *json {
                print::json(&actions);
            } else {
                for a in &actions {
                    println!("{:<32} {}", a.name, a.kind);
                }
            }
        }
        crate::args::ActionCommand::Get { name, json, .. } => {
            let described = client.action(&name.to_string_lossy()).await?;
            if *json {
                print::json(&described);
            } else {
                if let Some(docs) = described["docs"].as_str() {
                    println!("{}\n", docs.trim());
                }
                println!(
                    "# Signature\n\n{}",
                    described["signature"].as_str().unwrap_or("")
                );
                println!("\n# Input (JSON Schema)\n");
                print::json(&described["input_schema"]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn execution(client: &Client, command: &ExecutionCommand) -> CmdResult {
    match command {
        ExecutionCommand::List {
            limit,
            status,
            action,
            since,
            json,
            all,
            wide,
        } => {
            let (statuses, oldest) = crate::execution::list_scope(status, since.as_deref())?;
            let mut listings = Vec::new();
            for status in statuses {
                let query = ListQuery {
                    status: status.map(|s| s.to_string()),
                    action: action.clone(),
                    limit: Some((*limit).clamp(1, 500)),
                    all: all.then_some(true),
                    since: since.clone(),
                    ..ListQuery::default()
                };
                let (records, _) = client.list(&query).await?;
                listings.push(wasmflow_store::Listing {
                    records,
                    unreadable: Vec::new(),
                });
            }
            let listing = wasmflow_store::Listing::merged(listings, *limit, oldest);
            print::listing(&listing.records, *json, *wide);
        }
        ExecutionCommand::Get {
            id,
            detail,
            json,
            tree,
        } => {
            if *tree {
                let v = client.tree(id).await?;
                if *json {
                    print::json(&v);
                } else {
                    crate::tree::Node::from_json(v)
                        .map_err(|e| {
                            Fail::usage(anyhow!("the server sent a tree this CLI cannot read: {e}"))
                        })?
                        .print();
                }
            } else {
                let rec = client.execution(id).await?;
                if *json {
                    print::json(&rec);
                } else {
                    print::record(&rec, *detail);
                }
            }
        }
        ExecutionCommand::Logs { id, follow: false } => {
            let rec = client.execution(id).await?;
            for line in &rec.logs {
                println!("{}", print::log_text(None, line));
            }
            if !rec.is_finished() {
                eprintln!(
                    "execution {} is {}: --follow waits for its end",
                    rec.id, rec.status
                );
            }
        }
        ExecutionCommand::Logs { id, follow: true } | ExecutionCommand::Tail { id } => {
            client
                .follow(id, |event, data| match event {
                    "log" => {
                        if let Ok(line) = serde_json::from_value::<LogLine>(data.clone()) {
                            println!("{}", print::log_text(None, &line));
                        }
                    }
                    "task" => {
                        if let (Some(task), Some(status)) =
                            (data["task"].as_str(), data["status"].as_str())
                        {
                            eprintln!("task {task} {status}");
                        }
                    }
                    _ => {}
                })
                .await?;
            let rec = client.execution(id).await?;
            print::summary(&rec);
            return Ok(crate::exit_code(
                rec.status == wasmflow_store::Status::Succeeded,
            ));
        }
        ExecutionCommand::ReRun(args) => {
            let crate::args::ReRunArgs {
                id,
                params,
                from,
                grants,
                limits,
                json,
            } = &**args;
            if !limits.is_empty() {
                return Err(Fail::usage(anyhow!(
                    "a server sets the limits of what it runs (`wasmflow serve --timeout ...`): \
                     limit flags apply to a re-run without --server"
                )));
            }
            let req = ReRun {
                params: params.clone(),
                from: from.clone(),
                grants: Some(grants.spec()).filter(|g| !g.is_empty()),
                ..ReRun::default()
            };
            let new = client.rerun(id, &req).await?.id;
            eprintln!("execution {new} queued (re-run of {id})");
            client.follow(&new, |_, _| {}).await?;
            let rec = client.execution(&new).await?;
            return Ok(crate::exit_code(print::outcome(&rec, *json)));
        }
        ExecutionCommand::Replay {
            id,
            bundle,
            component,
            secret,
            json,
        } => {
            if bundle.is_some() || component.is_some() || !secret.is_empty() {
                return Err(Fail::usage(anyhow!(
                    "--bundle, --component and --secret replay with what this machine has; \
                     run them without --server (against any WASMFLOW_HOME)"
                )));
            }
            let id = id.as_deref().unwrap_or_default();
            let (result, rec) = client.replay(id).await?;
            if *json {
                print::json(&json!({"verdict": result.detail, "record": rec}));
            } else {
                println!("{}", result.verdict);
            }
            print::summary(&rec);
            return Ok(crate::exit_code(result.passed));
        }
        ExecutionCommand::Cancel { id } => {
            let accepted = client.cancel(id).await?;
            eprintln!("cancel requested for {}", accepted.id);
        }
        ExecutionCommand::Pause { id } => {
            let accepted = client.pause(id).await?;
            eprintln!(
                "pause requested for {}: no task starts now, running ones finish",
                accepted.id
            );
        }
        ExecutionCommand::Resume { id, json } => {
            let id = client.resume(id).await?.id;
            eprintln!("execution {id} resumed on {}", client.base());
            client.follow(&id, |_, _| {}).await?;
            let rec = client.execution(&id).await?;
            return Ok(crate::exit_code(print::outcome(&rec, *json)));
        }
        ExecutionCommand::Export { .. } => {
            return Err(Fail::usage(anyhow!(
                "export reads the store, which the server holds: stop the server (or copy its \
                 WASMFLOW_HOME) and export without --server"
            )))
        }
        ExecutionCommand::Purge { .. } => {
            return Err(Fail::usage(anyhow!(
                "purge changes the store, which the server holds: start the server with \
                 --retain AGE to delete old executions while it serves, or stop it and purge \
                 without --server"
            )))
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trigger emit TYPE --payload FILE`: the event, to the server.
async fn emit(client: &Client, kind: &str, payload: &std::path::Path) -> CmdResult {
    let payload = read_input(payload)?;
    let id = client.emit(kind, &payload).await?;
    eprintln!("trigger instance {id} recorded on {}", client.base());
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// `rule list|get|enable|disable` on the server.
async fn rules(client: &Client, command: &crate::args::RuleCommand) -> CmdResult {
    use crate::args::RuleCommand as R;
    let show = |r: &Value| {
        println!(
            "{}  {}  {} -> {}",
            r["name"].as_str().unwrap_or_default(),
            if r["enabled"] == true {
                "enabled "
            } else {
                "disabled"
            },
            r["trigger"]["type"].as_str().unwrap_or_default(),
            r["action"].as_str().unwrap_or_default()
        )
    };
    match command {
        R::List { json } => {
            let all = client.rules().await?;
            if *json {
                print::json(&all);
            } else {
                all.as_array().into_iter().flatten().for_each(show);
            }
        }
        R::Get { name, json } => {
            let r = client.rule(name, None).await?;
            if *json {
                print::json(&r);
            } else {
                show(&r);
                println!("criteria: {}", r["criteria"]);
                println!("input: {}", r["input"]);
            }
        }
        R::Enable { name } => show(&client.rule(name, Some("enable")).await?),
        R::Disable { name } => show(&client.rule(name, Some("disable")).await?),
        R::Validate { .. } | R::Test { .. } => unreachable!("run locally"),
    }
    Ok(ExitCode::SUCCESS)
}
