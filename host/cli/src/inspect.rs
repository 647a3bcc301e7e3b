//! `wasmflow inspect`.

use crate::args::InspectArgs;
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use std::process::ExitCode;

pub fn inspect(home: &Home, args: InspectArgs) -> CmdResult {
    // Loading validates and links the component the same way `run` does, so
    // `inspect` says no to exactly what `run` would refuse. It needs no
    // store, so it works while another process holds it.
    let loader = home.loader()?;
    let action = crate::registry::load_named(home, &loader, &args.component, args.insecure)?;
    let info = wasmflow_runtime::inspect::inspect(&action.bytes()?)
        .map_err(|e| Fail::usage(anyhow!("{}: {e}", args.component.display())))?;
    let runs_programs = info
        .imports
        .iter()
        .any(|i| i.starts_with("wasmflow:action/process"));
    let confinement = wasmflow_runtime::confine::mode();
    // As the user named it, its version (a pack's), and where it was found.
    let shown = args
        .named
        .clone()
        .unwrap_or_else(|| args.component.display().to_string());
    let (name, version) = match (&args.named, shown.split_once('@')) {
        (Some(_), Some((name, version))) => (name, Some(version)),
        _ => (shown.as_str(), None),
    };
    let from = &action.reference;
    if args.json {
        let mut v = serde_json::to_value(&info).expect("inspection serializes");
        v["digest"] = action.digest.to_string().into();
        v["name"] = name.into();
        v["version"] = version.into();
        v["from"] = from.as_str().into();
        if runs_programs {
            v["programs"] = confinement.describe().into();
        }
        print::json(&v);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{name}  {}", action.digest);
    if let Some(v) = version {
        println!("version  {v}");
    }
    if from != name {
        println!("from     {from}");
    }
    if let Some(d) = &info.docs {
        println!("\n{}", d.trim());
    }
    println!("\n# Signature (WIT)\n");
    print!("{}", info.wit);
    println!("\n# Input (JSON Schema)\n");
    print::json(&info.input_schema);
    println!("\n# Imports\n");
    for i in &info.imports {
        let note = capability_note(i);
        if note.is_empty() {
            println!("  {i}");
        } else {
            println!("  {i:<44} {note}");
        }
    }
    if runs_programs {
        println!("\nPrograms it runs here: {}", confinement.describe());
    }
    Ok(ExitCode::SUCCESS)
}

/// Which grant flag makes an import do anything.
fn capability_note(import: &str) -> &'static str {
    let name = import.split('@').next().unwrap_or(import);
    match name {
        "wasi:filesystem/preopens" => "(files: --allow-read / --allow-write)",
        "wasi:cli/environment" => "(env: --allow-env, --secret-env)",
        "wasi:http/outgoing-handler" => "(net: --allow-net)",
        "wasi:sockets/tcp" | "wasi:sockets/udp" | "wasi:sockets/ip-name-lookup" => {
            "(net: --allow-net)"
        }
        "wasmflow:action/process" => "(exec: --allow-exec)",
        "wasmflow:action/keys" => "(key: --allow-key)",
        _ => "",
    }
}
