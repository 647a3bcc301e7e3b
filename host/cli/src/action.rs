//! `wasmflow action list|get`: what there is to run from here, found as
//! `run` and `serve` find it.

use crate::args::{ActionCommand, InspectArgs};
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use std::path::Path;
use std::process::ExitCode;

pub fn action(home: &Home, command: ActionCommand) -> CmdResult {
    match command {
        ActionCommand::List { actions, json } => list(home, &actions, json),
        ActionCommand::Get {
            name,
            insecure,
            json,
            named,
        } => crate::inspect::inspect(
            home,
            InspectArgs {
                component: name,
                insecure,
                json,
                named,
            },
        ),
    }
}

fn list(home: &Home, dir: &Path, json: bool) -> CmdResult {
    let found = wasmflow_workflow::catalog::discover(dir)
        .map_err(|e| Fail::usage(anyhow!("cannot read {}: {e}", dir.display())))?;
    let kind = |workflow: bool| if workflow { "workflow" } else { "action" };
    // Name, kind, where it comes from.
    let mut rows: Vec<(String, &str, String)> = found
        .into_iter()
        .map(|f| (f.name, kind(f.workflow), f.path.display().to_string()))
        .collect();
    for f in wasmflow_workflow::catalog::installed(&crate::registry::packs_dir(home)) {
        // Where it comes from: the pack, at its version.
        let from = format!("pack {}", f.recorded_as);
        rows.push((f.name, kind(f.workflow), from));
    }
    if json {
        let all: Vec<_> = rows
            .iter()
            .map(|(name, kind, from)| serde_json::json!({"name": name, "kind": kind, "from": from}))
            .collect();
        print::json(&all);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!(
            "nothing to run in {} (components, workflows, NAME/NAME.wasm) and no packs installed",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAME", "KIND", "FROM"]);
    for (name, kind, from) in rows {
        table.add_row([name, kind.to_owned(), from]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
