//! `wasmflow execution list|get`.

use crate::args::ExecutionCommand;
use crate::{print, CmdResult, Fail};
use anyhow::anyhow;
use std::path::Path;
use std::process::ExitCode;
use wasmflow_store::{ListFilter, Status, Store};

pub fn execution(home: &Path, command: ExecutionCommand) -> CmdResult {
    let store = Store::open(&home.join("store"))?;
    match command {
        ExecutionCommand::List {
            limit,
            status,
            json,
        } => {
            let status = status
                .map(|s| {
                    s.parse::<Status>()
                        .map_err(|e| Fail::usage(anyhow!("--status: {e}")))
                })
                .transpose()?;
            let records = store.list(&ListFilter { status, limit })?;
            if json {
                print::json(&records);
            } else {
                print::table(&records);
            }
        }
        ExecutionCommand::Get { id, detail, json } => {
            let record = store.find(&id)?;
            if json {
                print::json(&record);
            } else {
                print::record(&record, detail);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
