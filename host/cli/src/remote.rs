//! `--server URL`: `run` and `execution list|get|re-run|replay|cancel`
//! through a running `wasmflow serve`, printed as the local commands print.

use crate::args::{Command, ExecutionCommand, RunArgs};
use crate::run::read_input;
use crate::{print, CmdResult, Fail};
use anyhow::anyhow;
use serde_json::{json, Value};
use std::process::ExitCode;
use wasmflow_server::client::Client;
use wasmflow_store::{ExecutionRecord, LogLine};

/// Run `command` against the server, or None when it is a local command
/// (new, build, inspect, serve, token, ...).
pub fn dispatch(server: &str, token: Option<String>, command: &mut Command) -> Option<CmdResult> {
    let client = Client::new(server, token);
    Some(match command {
        Command::Run(args) => crate::tokio().block_on(run(&client, args)),
        Command::Execution { command } => crate::tokio().block_on(execution(&client, command)),
        _ => return None,
    })
}

fn record(v: Value) -> Result<ExecutionRecord, Fail> {
    serde_json::from_value(v).map_err(|e| {
        Fail::usage(anyhow!(
            "the server sent a record this CLI cannot read: {e}"
        ))
    })
}

/// The grant flags as the API takes them; none given leaves the choice to
/// the server (nothing for an action, its grants for a workflow).
fn grants(args: &RunArgs) -> Value {
    let spec = args.grants.spec();
    if spec.is_empty() {
        return Value::Null;
    }
    serde_json::to_value(spec).expect("grant specs serialize")
}

async fn run(client: &Client, args: &RunArgs) -> CmdResult {
    let name = args.component.to_string_lossy().into_owned();
    let input = match &args.input {
        Some(path) => read_input(path)?,
        None => Value::Object(Default::default()),
    };
    let id = client
        .create(&name, &input, &args.params, &grants(args))
        .await?;
    eprintln!("execution {id} of {name} queued on {}", client.base());
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
    let rec = record(client.get(&format!("/executions/{id}")).await?)?;
    Ok(crate::exit_code(print::outcome(&rec, args.json)))
}

async fn execution(client: &Client, command: &ExecutionCommand) -> CmdResult {
    match command {
        ExecutionCommand::List {
            limit,
            status,
            json,
            all,
        } => {
            let mut q = format!("/executions?limit={}", (*limit).clamp(1, 500));
            if let Some(s) = status {
                q.push_str(&format!("&status={s}"));
            }
            if *all {
                q.push_str("&all=true");
            }
            let page = client.get(&q).await?;
            let records = page["executions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(record)
                .collect::<Result<Vec<_>, _>>()?;
            print::listing(&records, *json);
        }
        ExecutionCommand::Get {
            id,
            detail,
            json,
            tree,
        } => {
            if *tree {
                let v = client.get(&format!("/executions/{id}?tree=true")).await?;
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
                let rec = record(client.get(&format!("/executions/{id}")).await?)?;
                if *json {
                    print::json(&rec);
                } else {
                    print::record(&rec, *detail);
                }
            }
        }
        ExecutionCommand::ReRun {
            id,
            params,
            from,
            json,
        } => {
            let accepted = client
                .post(
                    &format!("/executions/{id}/re-run"),
                    &json!({"params": params, "from": from}),
                )
                .await?;
            let new = accepted["id"].as_str().unwrap_or_default().to_owned();
            eprintln!("execution {new} queued (re-run of {id})");
            client.follow(&new, |_, _| {}).await?;
            let rec = record(client.get(&format!("/executions/{new}")).await?)?;
            return Ok(crate::exit_code(print::outcome(&rec, *json)));
        }
        ExecutionCommand::Replay {
            id,
            bundle,
            component,
            json,
        } => {
            if bundle.is_some() || component.is_some() {
                return Err(Fail::usage(anyhow!(
                    "--bundle and --component replay files from this machine; run them \
                     without --server (against any WASMFLOW_HOME)"
                )));
            }
            let id = id.as_deref().unwrap_or_default();
            let v = client
                .post(&format!("/executions/{id}/replay"), &json!({}))
                .await?;
            let rec = record(v["record"].clone())?;
            if *json {
                print::json(&json!({"verdict": v["detail"], "record": rec}));
            } else {
                println!("{}", v["verdict"].as_str().unwrap_or_default());
            }
            print::summary(&rec);
            return Ok(crate::exit_code(v["passed"].as_bool() == Some(true)));
        }
        ExecutionCommand::Cancel { id } => {
            let v = client
                .post(&format!("/executions/{id}/cancel"), &json!({}))
                .await?;
            eprintln!(
                "cancel requested for {}",
                v["id"].as_str().unwrap_or(id.as_str())
            );
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
