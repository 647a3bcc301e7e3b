//! `wasmflow serve`, `wasmflow worker` and `wasmflow token`.

use crate::args::{LeaseArgs, ServeArgs, TokenCommand, WorkerArgs, WorkerCommand};
use crate::run::{grants_from, limits_from};
use crate::units::parse_duration;
use crate::{CmdResult, Fail, Home};
use anyhow::anyhow;
use std::process::ExitCode;
use wasmflow_server::queue::WorkerView;
use wasmflow_server::{tokens, Leasing, ServeConfig, WorkConfig};

pub fn serve(home: &Home, args: ServeArgs) -> CmdResult {
    // The secrets first, while this process has one thread: read once,
    // then overwritten and removed from the environment.
    let webhooks = args
        .webhooks
        .as_deref()
        .map(wasmflow_server::webhooks::Webhooks::read)
        .transpose()
        .map_err(|e| Fail::usage(anyhow!(e)))?;
    let components = crate::registry::components(home, args.insecure);
    let grants = grants_from(&args.grants).map_err(Fail::usage)?;
    let mut secrets: Vec<&str> = webhooks.iter().flat_map(|w| w.secret_vars()).collect();
    secrets.push("WASMFLOW_REGISTRY_PASSWORD");
    // A variable the operator grants to executions by name stays.
    secrets.retain(|s| !grants.env.iter().any(|g| g.name == *s && g.value.is_none()));
    // SAFETY: no thread has been started yet (the runtime, the store and
    // tokio start below).
    unsafe { wasmflow_server::environ::forget(&secrets) };
    let limits = limits_from(&args.limits)?;
    let shutdown_timeout = parse_duration("--shutdown-timeout", &args.shutdown_timeout)
        .map_err(|e| Fail::usage(anyhow!(e)))?;
    let retention =
        crate::units::parse_retention(&args.retain).map_err(|e| Fail::usage(anyhow!(e)))?;
    let retain_every = parse_duration("--retain-every", &args.retain_every)
        .map_err(|e| Fail::usage(anyhow!(e)))?;
    let workers = args.workers.unwrap_or_else(cores);
    let leasing = leasing_from(&args.leasing)?;
    let config = ServeConfig {
        listen: args.listen,
        workers,
        actions: args.actions,
        packs: Some(crate::registry::packs_dir(home)),
        allow_empty: args.allow_empty,
        webhooks: webhooks.map(std::sync::Arc::new),
        queue_capacity: args.queue_capacity.max(1),
        shutdown_timeout,
        grants,
        limits,
        tokens: wasmflow_store::token_book(&home.store_location())?,
        retention,
        retain_every,
        leasing,
        rules: args.rules,
        abandoned_after: parse_duration("--abandoned-after", &args.abandoned_after)
            .map_err(|e| Fail::usage(anyhow!(e)))?,
    };
    let shared = !home.store_location().is_exclusive();
    let rt = crate::runtime(home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    let listening = |addr| {
        eprintln!(
            "wasmflow listening on http://{addr}: loading its actions (/healthz says `warming` \
             until it serves)"
        )
    };
    let report = runtime.block_on(wasmflow_server::serve(rt, components, config, listening, |ready| {
        eprintln!(
            "wasmflow serving http://{} ({} action(s), {} queued execution(s) taken up, {} worker(s))",
            ready.addr,
            ready.actions.len(),
            ready.restored,
            workers
        );
        if !ready.actions.is_empty() {
            eprintln!("actions: {}", ready.actions.join(", "));
        }
        eprintln!(
            "granted programs: {}",
            wasmflow_runtime::confine::mode().describe()
        );
    }))?;
    eprintln!(
        "stopped: {} running execution(s) interrupted and {} pending left {}",
        report.interrupted,
        report.pending,
        if shared {
            "in the shared queue for any worker"
        } else {
            "to resume on the next start"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn leasing_from(args: &LeaseArgs) -> Result<Leasing, Fail> {
    let duration =
        |flag, text: &str| parse_duration(flag, text).map_err(|e| Fail::usage(anyhow!(e)));
    let leasing = Leasing {
        name: args
            .name
            .clone()
            .unwrap_or_else(wasmflow_server::default_name),
        lease: duration("--lease", &args.lease)?,
        heartbeat: duration("--heartbeat", &args.heartbeat)?,
        max_lost: args.max_lost,
    };
    if leasing.heartbeat >= leasing.lease {
        return Err(Fail::usage(anyhow!(
            "--heartbeat {} must be shorter than --lease {}: a lease would run out between heartbeats",
            args.heartbeat,
            args.lease
        )));
    }
    if leasing.max_lost == 0 {
        return Err(Fail::usage(anyhow!("--max-lost must be at least 1")));
    }
    Ok(leasing)
}

/// `wasmflow worker` (run work from a shared store) and `worker list`.
pub fn worker(home: &Home, command: Option<WorkerCommand>, args: WorkerArgs) -> CmdResult {
    if let Some(WorkerCommand::List { json }) = command {
        return list_workers(home, json);
    }
    let concurrency = args.concurrency.unwrap_or_else(cores);
    if concurrency == 0 {
        return Err(Fail::usage(anyhow!("--concurrency must be at least 1")));
    }
    let config = WorkConfig {
        concurrency,
        shutdown_timeout: parse_duration("--shutdown-timeout", &args.shutdown_timeout)
            .map_err(|e| Fail::usage(anyhow!(e)))?,
        leasing: leasing_from(&args.leasing)?,
    };
    let components = crate::registry::components(home, false);
    let tokens = wasmflow_store::token_book(&home.store_location())?;
    let rt = crate::runtime(home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    let report = runtime.block_on(wasmflow_server::work(
        rt,
        components,
        tokens,
        config,
        |name| {
            eprintln!(
                "wasmflow worker {name} running up to {concurrency} execution(s) from {}",
                home.store_location()
            );
        },
    ))?;
    eprintln!(
        "stopped: {} running execution(s) interrupted, left for another worker",
        report.interrupted
    );
    Ok(ExitCode::SUCCESS)
}

fn list_workers(home: &Home, json: bool) -> CmdResult {
    let store = crate::store(home)?;
    let Some(queue) = store.shared_queue() else {
        return Err(Fail::usage(anyhow!(
            "the store at {} has one opener and no workers of its own; `worker list` needs a \
             shared store (--store postgres://...)",
            store.location()
        )));
    };
    // Their lease settings are their own: judged by the default lease.
    let lease = Leasing::default().lease;
    let workers: Vec<WorkerView> = queue
        .workers()?
        .into_iter()
        .map(|w| WorkerView::of(w, lease))
        .collect();
    if json {
        crate::print::json(&workers);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(["NAME", "LAST HEARTBEAT", "CONCURRENCY", "RUNNING"]);
    for w in workers {
        table.add_row([
            w.name,
            format!(
                "{:.1}s ago{}",
                w.heartbeat_ms as f64 / 1000.0,
                if w.alive { "" } else { " (lost)" }
            ),
            w.concurrency.to_string(),
            w.running.join(" "),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub fn token(home: &Home, command: TokenCommand) -> CmdResult {
    let book = wasmflow_store::token_book(&home.store_location())?;
    let book = &*book;
    match command {
        TokenCommand::Create { name, read_only } => {
            let token = tokens::create(book, &name, read_only)?;
            eprintln!(
                "token `{name}`{} created; it is shown once, keep it now:",
                if read_only { " (read-only)" } else { "" }
            );
            println!("{token}");
        }
        TokenCommand::List { json: true } => {
            let listed: Vec<_> = tokens::list(book)?
                .into_iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "read_only": t.read_only,
                        "created_at": humantime::format_rfc3339_seconds(t.created_at).to_string(),
                    })
                })
                .collect();
            crate::print::json(&listed);
        }
        TokenCommand::List { json: false } => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["NAME", "ACCESS", "CREATED"]);
            for t in tokens::list(book)? {
                table.add_row([
                    t.name,
                    if t.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    }
                    .to_owned(),
                    humantime::format_rfc3339_seconds(t.created_at).to_string(),
                ]);
            }
            println!("{table}");
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(book, &name)?;
            eprintln!("token `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
