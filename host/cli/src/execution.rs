//! `wasmflow execution list|get|replay|export|re-run`.

use crate::args::ExecutionCommand;
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use wasmflow_runtime::{Recording, RunOptions};
use wasmflow_store::{ListFilter, Listing, ReplayBundle, Status, Store, Unreadable};
use wasmflow_workflow::Runnable;

pub fn execution(home: &Home, command: ExecutionCommand) -> CmdResult {
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
            let (statuses, since) = list_scope(&status, since.as_deref())?;
            let store = open(home)?;
            let listings = statuses
                .into_iter()
                .map(|status| {
                    store.scan(&ListFilter {
                        status,
                        limit,
                        children: all,
                        action: action.clone(),
                        ..Default::default()
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let listing = Listing::merged(listings, limit, since);
            print::listing(&listing.records, json, wide);
            unreadable(&store, &listing.unreadable)?;
        }
        ExecutionCommand::Get {
            id,
            detail,
            json,
            tree,
        } => {
            let store = open(home)?;
            let record = store.find(&id)?;
            let (rid, missing) = (record.id, store.missing_blobs(&record)?);
            if tree {
                let tree = crate::tree::Node::build(&store, record)?;
                if json {
                    print::json(&tree.to_json());
                } else {
                    tree.print();
                }
            } else if json {
                print::json(&record);
            } else {
                print::record(&record, detail);
                if detail {
                    print::events(&store.events(record.id)?);
                }
            }
            for digest in missing {
                eprintln!(
                    "warning: {rid} refers to blob {digest}, which the store does not hold \
                     (`wasmflow store check` says more); replay and re-run need it"
                );
            }
        }
        ExecutionCommand::Export { id, output } => {
            let store = open(home)?;
            let record = store.find(&id)?;
            action_only(&record, "export")?;
            let mut bundle = ReplayBundle::export(&store, record)?;
            bundle.secrets = wasmflow_runtime::secrets_needed(&bundle.record, &bundle.events);
            if !bundle.secrets.is_empty() {
                eprintln!(
                    "the bundle holds no secret values: replaying it on another machine needs \
                     --secret NAME=VALUE for {}",
                    bundle.secrets.join(", ")
                );
            }
            let text = serde_json::to_string(&bundle).expect("bundles serialize");
            match output {
                Some(path) => std::fs::write(&path, text)
                    .map_err(|e| Fail::usage(anyhow!("cannot write {}: {e}", path.display())))?,
                None => {
                    let mut out = std::io::stdout().lock();
                    let _ = out
                        .write_all(text.as_bytes())
                        .and_then(|()| out.write_all(b"\n"));
                }
            }
        }
        ExecutionCommand::Replay {
            id,
            bundle,
            component,
            secret,
            json,
        } => {
            let given = given_secrets(&secret)?;
            return replay(
                home,
                id,
                bundle.as_deref(),
                component.as_deref(),
                given,
                json,
            );
        }
        ExecutionCommand::ReRun(args) => return rerun(home, &args),
        ExecutionCommand::Cancel { id } => return crate::workflow::cancel(home, &id),
        ExecutionCommand::Pause { id } => return crate::workflow::pause(home, &id),
        ExecutionCommand::Resume { id, json } => {
            return crate::workflow::resume_paused(home, &id, json)
        }
        ExecutionCommand::Logs { id, follow } => return logs(home, &id, follow),
        ExecutionCommand::Tail { id } => return logs(home, &id, true),
        ExecutionCommand::Purge {
            before,
            status,
            action,
            dry_run,
            json,
        } => return crate::store::purge(home, &before, &status, action, dry_run, json),
    }
    Ok(ExitCode::SUCCESS)
}

/// Replay works on one action's recorded world; a workflow's tasks each
/// have one.
fn action_only(record: &wasmflow_store::ExecutionRecord, what: &str) -> Result<(), Fail> {
    if record.kind == wasmflow_store::Kind::Workflow {
        return Err(Fail::usage(anyhow!(
            "{} is a workflow execution; {what} one of its tasks' executions \
             (`wasmflow execution get {} --tree` lists them)",
            record.id,
            record.id
        )));
    }
    Ok(())
}

/// What `execution list --status ... --since ...` asks for: the statuses to
/// list (each its own indexed scan; `None`: any) and the oldest creation
/// time.
pub(crate) fn list_scope(
    statuses: &[String],
    since: Option<&str>,
) -> Result<(Vec<Option<Status>>, Option<std::time::SystemTime>), Fail> {
    let mut scan: Vec<Option<Status>> = statuses
        .iter()
        .map(|s| {
            s.trim()
                .parse::<Status>()
                .map(Some)
                .map_err(|e| Fail::usage(anyhow!("--status: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if scan.is_empty() {
        scan.push(None);
    }
    scan.dedup();
    let since = since
        .map(|s| crate::units::parse_instant("--since", s).map_err(|e| Fail::usage(anyhow!(e))))
        .transpose()?;
    Ok((scan, since))
}

/// `list`, `get` and `export` only read: they work while another process
/// holds the home.
fn open(home: &Home) -> Result<Store, Fail> {
    crate::store_for_reading(home)
}

/// `--secret NAME=VALUE` flags as a map (`VALUE` `-`: a line of stdin).
fn given_secrets(flags: &[String]) -> Result<std::collections::HashMap<String, String>, Fail> {
    let mut given = std::collections::HashMap::new();
    for flag in flags {
        let (name, value) = flag.split_once('=').ok_or_else(|| {
            Fail::usage(anyhow!(
                "--secret {flag}: expected NAME=VALUE (a key name, or a variable)"
            ))
        })?;
        let value = match value {
            "-" => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| Fail::usage(anyhow!("--secret {name}=-: reading stdin: {e}")))?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            }
            v => v.to_owned(),
        };
        given.insert(name.to_owned(), value);
    }
    Ok(given)
}

fn replay(
    home: &Home,
    id: Option<String>,
    bundle: Option<&Path>,
    component: Option<&Path>,
    given: std::collections::HashMap<String, String>,
    json: bool,
) -> CmdResult {
    // Read and verify everything before the store is touched: a bad bundle
    // or component changes nothing.
    let bundle = bundle
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Fail::usage(anyhow!("cannot read bundle {}: {e}", path.display())))?;
            ReplayBundle::parse(&text).map_err(|e| Fail::usage(anyhow!("{}: {e}", path.display())))
        })
        .transpose()?;
    let rt = crate::runtime(home)?;
    rt.give_secrets(given);
    let recording = match (bundle, id) {
        (Some(b), _) => Recording::from_bundle(b),
        (None, Some(id)) => {
            let record = rt.store().find(&id)?;
            action_only(&record, "replay")?;
            Recording::from_store(rt.store(), record)?
        }
        (None, None) => unreachable!("clap requires an id or --bundle"),
    };
    let other = component.map(|c| rt.load(c)).transpose()?;
    let report = crate::tokio().block_on(rt.replay(&recording, other.as_ref()))?;
    if json {
        print::json(&serde_json::json!({ "verdict": report.verdict, "record": report.record }));
    } else {
        println!("{}", report.verdict);
    }
    print::summary(&report.record);
    Ok(crate::exit_code(report.passed()))
}

fn rerun(home: &Home, args: &crate::args::ReRunArgs) -> CmdResult {
    // The flags are checked before anything is opened.
    let added = crate::run::grants_from(&args.grants).map_err(Fail::usage)?;
    crate::run::limits_over(Default::default(), &args.limits)?;
    let rt = crate::runtime(home)?;
    let original = rt.store().find(&args.id)?;
    let grants = wasmflow_workflow::grants::extend(&original.grants, added);
    let limits = crate::run::limits_over(original.limits, &args.limits)?;
    let (params, json) = (&args.params, args.json);
    if original.kind == wasmflow_store::Kind::Workflow {
        return crate::workflow::rerun(home, rt, original, args, grants, limits);
    }
    if args.from.is_some() {
        return Err(Fail::usage(anyhow!(
            "--from TASK applies to workflow executions; {} ran the action {}",
            original.id,
            original.action
        )));
    }
    let action = rt.load_executed(&original)?;
    let mut input = original.input.clone();
    Runnable::Action(action.clone())
        .apply_params(&mut input, params)
        .map_err(crate::run::params_error)?;
    let options = RunOptions {
        grants,
        limits,
        lineage: wasmflow_store::Lineage {
            started_by: Some(crate::run::started_by()),
            ..wasmflow_store::Lineage::rerun_of(&original)
        },
        ..Default::default()
    };
    let record = crate::tokio().block_on(rt.run(&action, input, options))?;
    Ok(crate::exit_code(print::outcome(&record, json)))
}

/// `execution logs ID [--follow]` (and `tail ID`): the log lines of an
/// execution and its tasks on stdout, tasks' ends on stderr; following, as
/// their records carry them, until it ends.
fn logs(home: &Home, id: &str, follow: bool) -> CmdResult {
    use wasmflow_store::{Followed, Opened};
    let mut opened = crate::opened_for_reading(home)?;
    let record = opened.store().find(id)?;
    let mut follower = wasmflow_store::Follower::new(record.id);
    let mut reopened = false;
    loop {
        let news = match follower.poll(opened.store()) {
            Ok(news) => news,
            // The process it was read through has closed the store: open
            // it again (now ours, or the next holder's), once.
            Err(_) if matches!(opened, Opened::ThroughHolder(_)) && !reopened => {
                opened = crate::opened_for_reading(home)?;
                reopened = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        reopened = false;
        for news in news {
            match news {
                Followed::Log { task, line } => {
                    println!("{}", print::log_text(task.as_deref(), &line))
                }
                Followed::TaskEnded { task, status } => eprintln!("task {task} {status}"),
                Followed::End(r) => {
                    print::summary(&r);
                    return Ok(crate::exit_code(r.status == Status::Succeeded));
                }
            }
        }
        if !follow {
            eprintln!(
                "execution {} is {}: the lines above are what its records hold so far \
                 (--follow waits for its end)",
                record.id, record.status
            );
            return Ok(ExitCode::SUCCESS);
        }
        if matches!(opened, Opened::Own(_)) && home.store_location().is_exclusive() {
            // Nobody else holds the embedded store, so nothing runs it.
            return Err(Fail::usage(anyhow!(
                "execution {} is {} but no wasmflow process runs it (`wasmflow resume` \
                 continues workflows a stopped process left running)",
                record.id,
                record.status
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Records a listing passed over, after the readable ones were printed:
/// one error naming them and the store, exit 2.
fn unreadable(store: &Store, unreadable: &[Unreadable]) -> Result<(), Fail> {
    const SHOWN: usize = 5;
    if unreadable.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unreadable
        .iter()
        .take(SHOWN)
        .map(|u| format!("{} ({})", u.id, u.problem()))
        .collect();
    let more = unreadable.len().saturating_sub(SHOWN);
    Err(Fail::usage(anyhow!(
        "the store at {} is damaged: {} execution record(s) cannot be read ({}{}); the others \
         are listed; `wasmflow store check` lists all damage",
        store.location(),
        unreadable.len(),
        named.join("; "),
        if more > 0 {
            format!("; {more} more")
        } else {
            String::new()
        }
    )))
}
