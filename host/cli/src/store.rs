//! `wasmflow store check`, `wasmflow store copy` and `wasmflow execution purge`.

use crate::args::StoreCommand;
use crate::units::{parse_instant, size};
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use std::collections::HashSet;
use std::process::ExitCode;
use wasmflow_store::{Location, PurgeFilter, Status, Store};

pub fn store(home: &Home, command: StoreCommand) -> CmdResult {
    match command {
        StoreCommand::Check { json } => check(home, json),
        StoreCommand::Copy { from, to, json } => copy(home, from.as_deref(), &to, json),
    }
}

fn copy(home: &Home, from: Option<&str>, to: &str, json: bool) -> CmdResult {
    let from = from.map_or_else(|| home.store_location(), Location::home_or_store);
    let to = Location::home_or_store(to);
    let report = wasmflow_store::copy(&from, &to)?;
    if json {
        print::json(&report);
    } else {
        eprintln!(
            "copied {} record(s), {} event(s), {}, {} blob(s) ({}), {} queue entr{}, {} token(s), \
             {} key(s) and {} trigger instance(s) ({} enforcement(s)) from {from} to {to}; every \
             record read back the same",
            report.records,
            report.events,
            entries(report.journal_entries, "journal"),
            report.blobs,
            size(report.blob_bytes),
            report.queued,
            if report.queued == 1 { "y" } else { "ies" },
            report.tokens,
            report.keys,
            report.trigger_instances,
            report.enforcements,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(home: &Home, json: bool) -> CmdResult {
    // Read-only: no interrupted executions recorded here. It reads every
    // file, so it needs the store to itself (not through a holder).
    let store = Store::open_waiting(&home.store_location())?;
    let report = store.check()?;
    if json {
        print::json(&report);
    } else {
        for d in &report.damaged {
            println!("damaged: {}: {}", d.item, d.problem);
        }
        eprintln!(
            "store {}: {} record(s), {}, {}, {} blob(s) ({}) checked; {}",
            store.location(),
            report.records,
            entries(report.event_entries, "event"),
            entries(report.journal_entries, "journal"),
            report.blobs,
            size(report.blob_bytes),
            if report.is_clean() {
                "no damage".to_owned()
            } else {
                format!("{} damaged", report.damaged.len())
            }
        );
    }
    Ok(crate::exit_code(report.is_clean()))
}

/// `1 event entry`, `3 journal entries`.
fn entries(n: usize, what: &str) -> String {
    format!("{n} {what} entr{}", if n == 1 { "y" } else { "ies" })
}

pub fn purge(
    home: &Home,
    before: &str,
    statuses: &[String],
    action: Option<String>,
    dry_run: bool,
    json: bool,
) -> CmdResult {
    let before = parse_instant("--before", before).map_err(|e| Fail::usage(anyhow!(e)))?;
    let statuses = statuses
        .iter()
        .map(|s| {
            let status = s
                .parse::<Status>()
                .map_err(|e| Fail::usage(anyhow!("--status: {e}")))?;
            if !status.is_terminal() {
                return Err(Fail::usage(anyhow!(
                    "--status {s}: only ended executions are purged (succeeded, failed, timed_out, canceled)"
                )));
            }
            Ok(status)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = crate::store(home)?;
    let filter = PurgeFilter {
        before,
        statuses,
        action,
        dry_run,
        writers_running: false,
    };
    // Only this process has the store open (sled's lock): no component of
    // a running execution to keep besides what records refer to.
    let mut report = store.purge(&filter, &HashSet::new())?;
    // The event bus's past events go with a purge of everything before a
    // time (not with one of some statuses or one action).
    if filter.statuses.is_empty() && filter.action.is_none() {
        let (instances, enforcements) = store.purge_triggers(filter.before, dry_run)?;
        report.trigger_instances = instances;
        report.enforcements = enforcements;
    }
    if json {
        print::json(&report);
    } else {
        eprintln!(
            "{} {} execution(s) and {} task execution(s), {}, {}, {} blob(s), {} file(s), \
             {} trigger instance(s) and {} enforcement(s): {}",
            if dry_run { "would delete" } else { "deleted" },
            report.executions,
            report.descendants,
            entries(report.event_entries, "event"),
            entries(report.journal_entries, "journal"),
            report.blobs,
            report.files,
            report.trigger_instances,
            report.enforcements,
            size(report.bytes),
        );
    }
    Ok(ExitCode::SUCCESS)
}
