//! `wasmflow run`.

use crate::args::{GrantArgs, LimitArgs, LimitOverrides, RunArgs};
use crate::units::{parse_duration, parse_size};
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use wasmflow_runtime::{LogWatcher, RunOptions};
use wasmflow_store::{Grants, Limits};
use wasmflow_workflow::{PrepareError, Runnable};

pub fn run(home: &Home, args: RunArgs) -> CmdResult {
    // Everything the user typed is checked before the store is opened or
    // the component compiled.
    let mut input = match &args.input {
        Some(path) => read_input(path)?,
        None => Value::Object(Default::default()),
    };
    let grants = grants_from(&args.grants).map_err(Fail::usage)?;
    let limits = limits_from(&args.limits)?;

    let rt = crate::runtime(home)?;
    let mut action =
        crate::registry::load_named(home, rt.loader(), &args.component, args.insecure)?;
    // Named in its record as the user named it (its file is in the pack).
    if let Some(name) = &args.named {
        action.reference = name.clone();
    }
    Runnable::Action(action.clone())
        .apply_params(&mut input, &args.params)
        .map_err(params_error)?;
    use std::io::IsTerminal;
    let show_logs = args.logs || (!args.no_logs && std::io::stderr().is_terminal());
    let options = RunOptions {
        grants,
        limits,
        watch_logs: show_logs.then(|| LogWatcher(std::sync::Arc::new(print::log_line))),
        lineage: wasmflow_store::Lineage {
            id: args.id,
            started_by: Some(started_by()),
            ..Default::default()
        },
        ..Default::default()
    };
    let record = crate::tokio().block_on(rt.run(&action, input, options))?;

    let succeeded = print::outcome(&record, args.json);
    crate::archive_finished(&rt);
    crate::exit_now(succeeded)
}

/// Who starts what this process runs: the user at this terminal, by the
/// name the login set (`USER`, `LOGNAME`), else their uid.
pub fn started_by() -> wasmflow_store::StartedBy {
    let name = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|n| !n.is_empty()))
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
    wasmflow_store::StartedBy::User(name)
}

/// `run --async` here: the same command, without `--async`, in a process
/// of its own under an id chosen now; back once its record exists (it
/// compiled, its input fitted), printing the id. A run that fails before
/// that (a usage error) is reported as if run in the foreground.
pub fn detach(home: &Home, id: wasmflow_store::ExecutionId) -> CmdResult {
    use std::os::unix::process::CommandExt;
    let io = |what: &str, e: std::io::Error| Fail::usage(anyhow!("{what}: {e}"));
    // Its diagnostics, to show if it fails to start; deleted once it has.
    let errors = tempfile::NamedTempFile::new().map_err(|e| io("a temporary file", e))?;
    let stderr = errors.reopen().map_err(|e| io("a temporary file", e))?;
    let args = std::env::args_os().skip(1).filter(|a| a != "--async");
    let mut child = std::process::Command::new("/proc/self/exe")
        .args(args)
        .arg("--id")
        .arg(id.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        // Its own process group: the terminal's Ctrl-C is not for it.
        .process_group(0)
        .spawn()
        .map_err(|e| io("starting the background run", e))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| io("the background run", e))? {
            let said = std::fs::read_to_string(errors.path()).unwrap_or_default();
            eprint!("{said}");
            if status.code() == Some(2) {
                return Ok(std::process::ExitCode::from(2));
            }
            // It ended already: its record says how.
            break;
        }
        let recorded = wasmflow_store::Store::open_to_read(&home.store_location())
            .ok()
            .and_then(|opened| opened.store().get(id).ok().flatten());
        if recorded.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    println!("{id}");
    eprintln!(
        "execution {id} runs in the background (pid {}); `wasmflow execution tail {id}` follows it",
        child.id()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// A `-p` that names nothing or does not parse: the caller's to fix.
pub(crate) fn params_error(e: PrepareError) -> Fail {
    Fail::usage(anyhow!("-p {e}"))
}

pub(crate) fn limits_from(args: &LimitArgs) -> Result<Limits, Fail> {
    let every = LimitOverrides {
        timeout: Some(args.timeout.clone()),
        memory: Some(args.memory.clone()),
        max_output: Some(args.max_output.clone()),
        max_log: Some(args.max_log.clone()),
    };
    limits_over(Limits::default(), &every)
}

/// `base` with each limit `over` gives replaced.
pub(crate) fn limits_over(mut base: Limits, over: &LimitOverrides) -> Result<Limits, Fail> {
    let usage = |e: String| Fail::usage(anyhow!(e));
    if let Some(memory) = &over.memory {
        base.memory_bytes = parse_size("--memory", memory).map_err(usage)?;
    }
    if let Some(timeout) = &over.timeout {
        base.timeout_ms = parse_duration("--timeout", timeout)
            .map_err(usage)?
            .as_millis() as u64;
    }
    if let Some(output) = &over.max_output {
        base.output_bytes = parse_size("--max-output", output).map_err(usage)?;
    }
    if let Some(log) = &over.max_log {
        base.log_bytes = parse_size("--max-log", log).map_err(usage)?;
    }
    Ok(base)
}

pub(crate) fn read_input(path: &Path) -> Result<Value, Fail> {
    let (name, text) = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Fail::usage(anyhow!("reading input from stdin: {e}")))?;
        ("<stdin>".to_owned(), s)
    } else {
        let s = std::fs::read_to_string(path)
            .map_err(|e| Fail::usage(anyhow!("cannot read input file {}: {e}", path.display())))?;
        (path.display().to_string(), s)
    };
    serde_json::from_str(&text).map_err(|e| {
        Fail::usage(anyhow!(
            "{name}:{}:{}: invalid JSON: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })
}

/// serde_json appends " at line L column C"; we print it up front instead.
fn strip_position(msg: &str) -> &str {
    msg.rsplit_once(" at line ").map(|(m, _)| m).unwrap_or(msg)
}

pub(crate) fn grants_from(args: &GrantArgs) -> Result<Grants, wasmflow_runtime::GrantError> {
    let mut grants = args.spec().parse()?;
    grants.unconfined_exec = args.unconfined_exec;
    Ok(grants)
}
