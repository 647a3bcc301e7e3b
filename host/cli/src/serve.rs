//! `wasmflow serve` and `wasmflow token`.

use crate::args::{ServeArgs, TokenCommand};
use crate::run::{grants_from, limits_from};
use crate::units::parse_duration;
use crate::{CmdResult, Fail, Home};
use anyhow::anyhow;
use std::process::ExitCode;
use wasmflow_server::{tokens, ServeConfig};

pub fn serve(home: &Home, args: ServeArgs) -> CmdResult {
    // The secrets first, while this process has one thread: read once,
    // then overwritten and removed from the environment.
    let webhooks = args
        .webhooks
        .as_deref()
        .map(wasmflow_server::webhooks::Webhooks::read)
        .transpose()
        .map_err(|e| Fail::usage(anyhow!(e)))?;
    let components = crate::registry::components(home, false);
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
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    if workers == 0 {
        return Err(Fail::usage(anyhow!("--workers must be at least 1")));
    }
    let config = ServeConfig {
        listen: args.listen,
        workers,
        actions: args.actions,
        webhooks: webhooks.map(std::sync::Arc::new),
        queue_capacity: args.queue_capacity.max(1),
        shutdown_timeout,
        grants,
        limits,
        tokens: wasmflow_store::token_book(&home.store_location())?,
        retention,
        retain_every,
    };
    let rt = crate::runtime(home)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    let report = runtime.block_on(wasmflow_server::serve(rt, components, config, |ready| {
        eprintln!(
            "wasmflow serving http://{} ({} action(s), {} queued execution(s) taken up, {} worker(s))",
            ready.addr, ready.actions, ready.restored, workers
        );
        eprintln!(
            "granted programs: {}",
            wasmflow_runtime::confine::mode().describe()
        );
    }))?;
    eprintln!(
        "stopped: {} running execution(s) interrupted and {} pending left to resume on the next start",
        report.interrupted, report.pending
    );
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
        TokenCommand::List => {
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
