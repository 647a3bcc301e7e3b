//! `wasmflow inquiry list|get|respond`: the questions `core.ask` tasks
//! ask (`wasmflow_workflow::inquiry`), answered here; a paused workflow
//! goes on in this process once answered.

use crate::args::InquiryCommand;
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use serde_json::{Map, Value};
use std::process::ExitCode;
use wasmflow_store::Status;
use wasmflow_workflow::inquiry::{self, view};

pub fn inquiry(home: &Home, command: InquiryCommand) -> CmdResult {
    match command {
        InquiryCommand::List { json } => {
            let store = crate::store(home)?;
            let open = inquiry::pending(&store)?;
            if json {
                print::json(&open.iter().map(view).collect::<Vec<_>>());
                return Ok(ExitCode::SUCCESS);
            }
            if open.is_empty() {
                eprintln!("no inquiry waits for an answer");
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["ID", "WORKFLOW", "TASK", "ROUTE", "EXPIRES"]);
            for r in &open {
                let v = view(r);
                table.add_row([
                    r.id.to_string(),
                    r.parent.map(|p| p.to_string()).unwrap_or_default(),
                    r.task.clone().unwrap_or_default(),
                    v["route"].as_str().unwrap_or_default().to_owned(),
                    v["expires_at"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{table}");
        }
        InquiryCommand::Get { id, json } => {
            let store = crate::store_for_reading(home)?;
            let r = store.find(&id)?;
            if r.action != inquiry::ASK {
                return Err(Fail::usage(anyhow!("execution {} is not an inquiry", r.id)));
            }
            if json {
                print::json(&view(&r));
            } else {
                print::record(&r, false);
                println!("schema");
                print::json(&r.input["schema"]);
            }
        }
        InquiryCommand::Respond {
            id,
            params,
            response,
            json,
        } => return respond(home, &id, &params, response.as_deref(), json),
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer: `--response FILE` (JSON), then each `-p key=value`
/// (a value that reads as JSON is that JSON: `true`, `3`; else a string).
fn answer(params: &[String], file: Option<&std::path::Path>) -> Result<Value, Fail> {
    let mut out = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Fail::usage(anyhow!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str::<Value>(&text)
                .map_err(|e| Fail::usage(anyhow!("{}: {e}", path.display())))?
        }
        None => Value::Object(Map::new()),
    };
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Fail::usage(anyhow!("-p {p}: expected key=value")))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
        match &mut out {
            Value::Object(m) => {
                m.insert(k.to_owned(), v);
            }
            _ => {
                return Err(Fail::usage(anyhow!(
                    "-p {p}: the response file is not a map"
                )))
            }
        }
    }
    Ok(out)
}

fn respond(
    home: &Home,
    id: &str,
    params: &[String],
    file: Option<&std::path::Path>,
    json: bool,
) -> CmdResult {
    let response = answer(params, file)?;
    let store = crate::store(home)?;
    let answered = inquiry::respond(&store, id, response, &crate::run::started_by())?;
    eprintln!("inquiry {} answered", answered.id);
    let workflow = inquiry::waiting_on(&store, &answered)?;
    drop(store);
    match workflow {
        // Nothing runs it: go on with it here.
        Some(w) if w.status == Status::Paused => {
            crate::workflow::resume_paused(home, &w.id.to_string(), json)
        }
        Some(w) => {
            eprintln!(
                "workflow {} is {}: it takes the answer when its running tasks end",
                w.id, w.status
            );
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
