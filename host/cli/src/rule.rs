//! `wasmflow rule validate|test` and `wasmflow trigger list`: the event
//! bus's rules checked and tried out (`wasmflow_events`), printed.

use crate::args::{EnforcementCommand, RuleCommand, TriggerCommand, TriggerInstanceCommand};
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wasmflow_events::{rule, trigger, Decision, Rule};
use wasmflow_workflow::expr::Expressions;

pub fn rule(home: &Home, command: RuleCommand) -> CmdResult {
    match command {
        RuleCommand::Validate {
            paths,
            actions,
            json,
        } => validate(home, &paths, actions.as_deref(), json),
        RuleCommand::Test {
            rule,
            payload,
            json,
        } => test(&rule, &payload, json),
        RuleCommand::List { .. }
        | RuleCommand::Get { .. }
        | RuleCommand::Enable { .. }
        | RuleCommand::Disable { .. } => Err(Fail::usage(anyhow!(
            "the rules are a running server's: add --server URL (and --token)"
        ))),
    }
}

/// Rule files: those named, and the `.yaml`/`.yml` files of directories.
fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Fail> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(rule::files_in(p).map_err(|e| Fail::usage(anyhow!(e)))?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The input schemas of what `serve --actions DIR` would serve (and the
/// installed packs), for checking rules' actions: `None` for a workflow
/// (its fields are checked when it starts).
fn catalog(home: &Home, dir: &Path) -> Result<HashMap<String, Option<Value>>, Fail> {
    let found = wasmflow_workflow::catalog::discover(dir)
        .map_err(|e| Fail::usage(anyhow!("cannot read {}: {e}", dir.display())))?;
    let installed = wasmflow_workflow::catalog::installed(&crate::registry::packs_dir(home));
    let loader = home.loader()?;
    let mut out = HashMap::new();
    for f in found.into_iter().chain(installed) {
        let schema = match f.workflow {
            true => None,
            false => {
                let action = loader.load(&f.path)?;
                let info = wasmflow_runtime::inspect::inspect(&action.bytes()?)
                    .map_err(|e| Fail::usage(anyhow!("{}: {e}", f.path.display())))?;
                Some(info.input_schema)
            }
        };
        out.insert(f.name, schema);
    }
    Ok(out)
}

fn validate(home: &Home, paths: &[PathBuf], actions: Option<&Path>, json: bool) -> CmdResult {
    let files = files(paths)?;
    if files.is_empty() {
        return Err(Fail::usage(anyhow!("no rule files (.yaml, .yml) there")));
    }
    let known = actions.map(|dir| catalog(home, dir)).transpose()?;
    let lookup = |name: &str| known.as_ref().and_then(|k| k.get(name).cloned());
    let known: Option<rule::Known<'_>> = known.as_ref().map(|_| &lookup as rule::Known<'_>);
    let types = trigger::all(Some(&crate::registry::packs_dir(home)));
    let rules = rule::load_files(&files, &types, known).map_err(|p| Fail::usage(anyhow!(p)))?;
    if json {
        let all: Vec<Value> = rules.iter().map(summary).collect();
        print::json(&all);
    }
    for r in &rules {
        eprintln!(
            "{}: ok (`{}`: {} -> {}{})",
            r.file.display(),
            r.name,
            r.trigger,
            r.action,
            if r.enabled { "" } else { ", disabled" }
        );
    }
    if actions.is_none() {
        eprintln!("(actions and their inputs not checked: give the catalog with --actions DIR)");
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(r: &Rule) -> Value {
    serde_json::json!({
        "name": r.name,
        "file": r.file,
        "enabled": r.enabled,
        "trigger": {"type": r.trigger, "parameters": r.parameters},
        "action": r.action,
    })
}

/// st2-rule-tester: the rule's verdict on one payload, nothing run. Exit
/// 0 when it would run its action, 1 when not.
fn test(path: &Path, payload: &Path, json: bool) -> CmdResult {
    let rule = Rule::load(path, &trigger::built_in(), None).map_err(|p| Fail::usage(anyhow!(p)))?;
    let text = std::fs::read_to_string(payload)
        .map_err(|e| Fail::usage(anyhow!("cannot read {}: {e}", payload.display())))?;
    let payload: Value = serde_json::from_str(&text).map_err(|e| {
        Fail::usage(anyhow!(
            "{}:{}:{}: not JSON: {e}",
            payload.display(),
            e.line(),
            e.column()
        ))
    })?;
    let verdict = rule.evaluate(&payload, &Expressions::new());
    let runs = matches!(verdict.decision, Decision::Run { .. });
    if json {
        print::json(&verdict);
        return Ok(crate::exit_code(runs));
    }
    for c in &verdict.checks {
        let value = c
            .value
            .as_ref()
            .map_or_else(|| "(absent)".to_owned(), Value::to_string);
        println!(
            "{} {} {} {}  (value: {value})",
            if c.held { "held  " } else { "failed" },
            c.path,
            c.operator,
            c.pattern
        );
    }
    match &verdict.decision {
        Decision::Run { input } => println!("would run {} with {input}", rule.action),
        Decision::CriteriaFalse => println!("would not run {}: a criterion failed", rule.action),
        Decision::Disabled => println!("would not run {}: the rule is disabled", rule.action),
        Decision::InputError(e) => println!("would not run {}: {e}", rule.action),
    }
    Ok(crate::exit_code(runs))
}

pub fn trigger(home: &Home, command: TriggerCommand) -> CmdResult {
    match command {
        TriggerCommand::Emit { .. } => Err(Fail::usage(anyhow!(
            "an event is emitted to a running server: add --server URL (and --token)"
        ))),
        TriggerCommand::List { json } => {
            let types = trigger::all(Some(&crate::registry::packs_dir(home)));
            if json {
                print::json(&types);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["TYPE", "PARAMETERS", "PAYLOAD", "DESCRIPTION"]);
            let keys = |schema: &Value| {
                schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            };
            for t in types {
                table.add_row([
                    t.name.clone(),
                    keys(&t.parameters),
                    keys(&t.payload),
                    t.description.clone(),
                ]);
            }
            println!("{table}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn instances(home: &Home, command: TriggerInstanceCommand) -> CmdResult {
    let store = crate::store_for_reading(home)?;
    match command {
        TriggerInstanceCommand::List { limit, json } => {
            let found = store.triggers(false, limit)?;
            if json {
                print::json(&found);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["ID", "TYPE", "PARAMETERS", "RECEIVED", "PROCESSED"]);
            for t in found {
                table.add_row([
                    t.id.to_string(),
                    t.kind.clone(),
                    Value::Object(t.parameters.clone()).to_string(),
                    humantime::format_rfc3339_seconds(t.received_at).to_string(),
                    if t.processed { "yes" } else { "no" }.to_owned(),
                ]);
            }
            println!("{table}");
        }
        TriggerInstanceCommand::Get { id, json } => {
            let id: wasmflow_store::ExecutionId = id
                .parse()
                .map_err(|_| Fail::usage(anyhow!("`{id}` is not a trigger instance id")))?;
            let instance = store
                .trigger(id)?
                .ok_or_else(|| Fail::usage(anyhow!("no trigger instance {id}")))?;
            let enforcements = store.enforcements(Some(id), usize::MAX)?;
            if json {
                print::json(
                    &serde_json::json!({"instance": instance, "enforcements": enforcements}),
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{}  {}  {}",
                instance.id,
                instance.kind,
                Value::Object(instance.parameters.clone())
            );
            println!("payload: {}", instance.payload);
            for e in enforcements {
                println!("{}", enforcement_line(&e));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn enforcement_line(e: &wasmflow_store::Enforcement) -> String {
    let mut line = format!("rule {}: {}", e.rule, e.outcome.as_str());
    if let Some(x) = e.execution {
        line.push_str(&format!(" execution {x}"));
    }
    if let Some(m) = &e.message {
        line.push_str(&format!(" ({m})"));
    }
    line
}

pub fn enforcements(home: &Home, command: EnforcementCommand) -> CmdResult {
    let store = crate::store_for_reading(home)?;
    match command {
        EnforcementCommand::List { limit, json } => {
            let found = store.enforcements(None, limit)?;
            if json {
                print::json(&found);
                return Ok(ExitCode::SUCCESS);
            }
            for e in found {
                println!("{}  {}", e.instance, enforcement_line(&e));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
