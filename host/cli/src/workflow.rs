//! `wasmflow run FILE.yaml`, `workflow validate|run`, `resume`,
//! `execution cancel`, and re-running a workflow execution.

use crate::args::RunArgs;
use crate::run::{grants_from, limits_from, read_input};
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmflow_runtime::{CancellationToken, Loader, Runtime};
use wasmflow_store::{ExecutionId, ExecutionRecord, Opened, Status, Store, StoreError};
use wasmflow_workflow::cancel::Requests;
use wasmflow_workflow::{
    Components, Definition, Observer, Problems, Request, Runnable, Scheduler, WorkflowError,
};

/// Read a workflow and check everything that can be known before it runs.
fn load_checked(
    path: &Path,
    loader: &Loader,
    components: &dyn Components,
) -> Result<Definition, Fail> {
    let def = Definition::load(path).map_err(problems)?;
    let found = crate::tokio().block_on(wasmflow_workflow::check(&def, loader, components));
    if !found.is_empty() {
        return Err(problems(Problems(found)));
    }
    Ok(def)
}

fn problems(p: Problems) -> Fail {
    let n = p.0.len();
    Fail::usage(anyhow!(
        "{p}\n{n} problem{} found",
        if n == 1 { "" } else { "s" }
    ))
}

pub fn validate(home: &Home, file: &Path, insecure: bool, json: bool) -> CmdResult {
    let loader = home.loader()?;
    let components = crate::registry::components(home, insecure);
    let def = load_checked(file, &loader, &*components)?;
    if json {
        crate::print::json(&serde_json::json!({
            "file": file,
            "ok": true,
            "tasks": def.workflow.tasks.keys().collect::<Vec<_>>(),
            "starts_with": def.workflow.start_tasks(),
        }));
    }
    eprintln!(
        "{}: ok ({} task{}, starts with {})",
        file.display(),
        def.workflow.tasks.len(),
        if def.workflow.tasks.len() == 1 {
            ""
        } else {
            "s"
        },
        def.workflow.start_tasks().join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(home: &Home, args: RunArgs) -> CmdResult {
    let mut input = match &args.input {
        Some(path) => read_input(path)?,
        None => Value::Object(Default::default()),
    };
    let grants = grants_from(&args.grants).map_err(Fail::usage)?;
    let limits = limits_from(&args.limits)?;
    let rt = crate::runtime(home)?;
    let components = crate::registry::components(home, args.insecure);
    let def = Arc::new(load_checked(&args.component, rt.loader(), &*components)?);
    Runnable::Workflow(def.clone())
        .apply_params(&mut input, &args.params)
        .map_err(crate::run::params_error)?;
    let mut req = Request::new(def, input);
    req.name = args.named.clone();
    req.grants = grants;
    req.limits = limits;
    req.lineage.id = args.id;
    req.lineage.started_by = Some(crate::run::started_by());
    let show = args.logs || (!args.no_logs && std::io::stderr().is_terminal());
    foreground(home, rt, components, req, show, args.json)
}

/// Run a request in this process until it ends, with progress on stderr,
/// Ctrl-C and `execution cancel` stopping it.
fn foreground(
    home: &Home,
    rt: Runtime,
    components: Arc<dyn Components>,
    mut req: Request,
    show: bool,
    json: bool,
) -> CmdResult {
    let id = req.lineage.id.unwrap_or_default();
    req.lineage.id = Some(id);
    let progress = show.then(|| Arc::new(Progress::new()));
    req.observer = progress.clone().map(|p| p as Arc<dyn Observer>);
    let (cancel, pause) = (req.cancel.clone(), req.pause.clone());
    let sched = Scheduler::with_components(rt.clone(), components);
    // The id as soon as it is recorded, so another terminal can `execution
    // cancel` it (not before: a rejected input records nothing).
    req.recorded = Some(Arc::new(|id| eprintln!("workflow execution {id} started")));
    let record = tokio_multi().block_on(async {
        watch_cancel(home, id, cancel.clone());
        Requests::pauses(&home.dir).watch(id, pause);
        sched.run(req).await
    });
    if let Some(p) = progress {
        p.bar.finish_and_clear();
    }
    let record = record?;
    let code = crate::exit_code(print::outcome(&record, json));
    crate::archive_finished(&rt);
    Ok(code)
}

/// Ctrl-C, or a request from `wasmflow execution cancel`, cancels.
fn watch_cancel(home: &Home, id: ExecutionId, cancel: CancellationToken) {
    let c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("canceling (Ctrl-C)…");
            c.cancel();
        }
    });
    Requests::cancels(&home.dir).watch(id, cancel);
}

/// Several tasks run at once: give them the machine's cores.
fn tokio_multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime")
}

pub fn resume(home: &Home, json: bool) -> CmdResult {
    let rt = crate::runtime(home)?;
    // oci:// actions were pulled when the workflow started: the cache has them.
    let sched = Scheduler::with_components(rt.clone(), crate::registry::components(home, false));
    let interrupted = sched.interrupted()?;
    if interrupted.is_empty() {
        eprintln!("nothing to resume");
        if json {
            print::json(&Vec::<ExecutionRecord>::new());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut done = Vec::new();
    let all_ok = tokio_multi().block_on(async {
        let mut ok = true;
        for r in interrupted {
            eprintln!("resuming {} ({})", r.id, r.action);
            let (cancel, pause) = (CancellationToken::new(), CancellationToken::new());
            watch_cancel(home, r.id, cancel.clone());
            Requests::pauses(&home.dir).watch(r.id, pause.clone());
            let rec = sched.resume(r.id, cancel, pause, None).await?;
            print::summary(&rec);
            ok &= rec.status == Status::Succeeded;
            done.push(rec);
        }
        Ok::<_, WorkflowError>(ok)
    })?;
    if json {
        print::json(&done);
    }
    Ok(crate::exit_code(all_ok))
}

pub fn cancel(home: &Home, id: &str) -> CmdResult {
    // A process holds the store: it is running the execution (or some
    // other one); leave it a request it polls for.
    let request = |id: &str| -> CmdResult {
        Requests::cancels(&home.dir)
            .request(id)
            .map_err(|e| Fail::usage(anyhow!("cannot write the cancel request: {e}")))?;
        eprintln!("cancel requested: the wasmflow process running {id} will stop it");
        Ok(ExitCode::SUCCESS)
    };
    let ended = |record: &ExecutionRecord| {
        Fail::usage(anyhow!(
            "execution {} already ended ({})",
            record.id,
            record.status
        ))
    };
    match Store::open_to_read(&home.store_location()) {
        Ok(Opened::ThroughHolder(store)) => {
            let record = store.find(id)?;
            if record.is_finished() {
                return Err(ended(&record));
            }
            request(&record.id.to_string())
        }
        // A holder that answers no reads (an older wasmflow).
        Err(StoreError::Locked { .. }) => request(id),
        Err(e) => Err(e.into()),
        Ok(Opened::Own(store)) => {
            let record = store.find(id)?;
            if record.is_finished() {
                return Err(ended(&record));
            }
            // On a shared store a worker may hold it: it stops it at its
            // next heartbeat; one nobody claimed yet leaves the queue.
            if let Some(queue) = store.shared_queue() {
                match queue.cancel(record.id)? {
                    wasmflow_store::Cancel::Requested { worker } => {
                        eprintln!(
                            "cancel requested: worker {worker} stops {} at its next heartbeat",
                            record.id
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    wasmflow_store::Cancel::Withdrawn | wasmflow_store::Cancel::NotQueued => {}
                }
            }
            // Nothing runs it: an interrupted execution (or one withdrawn
            // from the queue). Cancel it and its unfinished children so
            // `resume` leaves them alone.
            let n = wasmflow_workflow::cancel::cancel_tree(&store, record.clone())?;
            eprintln!("canceled {} ({n} execution(s))", record.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `execution pause ID`: ask the process running a workflow to pause it
/// (a request file beside a holder of the home's store, a mark in a
/// shared store's queue), or pause one nothing runs (interrupted) in the
/// store.
pub fn pause(home: &Home, id: &str) -> CmdResult {
    let request = |id: &str| -> CmdResult {
        Requests::pauses(&home.dir)
            .request(id)
            .map_err(|e| Fail::usage(anyhow!("cannot write the pause request: {e}")))?;
        eprintln!(
            "pause requested: the wasmflow process running {id} starts no more tasks, lets the \
             running ones finish, and records it `paused`"
        );
        Ok(ExitCode::SUCCESS)
    };
    let pausable = |record: &ExecutionRecord| match (record.kind, record.status) {
        (wasmflow_store::Kind::Workflow, Status::Running) => Ok(()),
        (wasmflow_store::Kind::Workflow, status) => Err(Fail::usage(anyhow!(
            "workflow execution {} is {status}: only a running workflow pauses",
            record.id
        ))),
        _ => Err(Fail::usage(anyhow!(
            "execution {} ran an action: only workflows pause (cancel stops an action)",
            record.id
        ))),
    };
    match Store::open_to_read(&home.store_location()) {
        Ok(Opened::ThroughHolder(store)) => {
            let record = store.find(id)?;
            pausable(&record)?;
            request(&record.id.to_string())
        }
        Err(StoreError::Locked { .. }) => request(id),
        Err(e) => Err(e.into()),
        Ok(Opened::Own(store)) => {
            let record = store.find(id)?;
            pausable(&record)?;
            let rid = record.id;
            // On a shared store a worker may run it: it pauses it at its
            // next heartbeat.
            if let Some(worker) = store
                .shared_queue()
                .map(|q| q.pause(rid))
                .transpose()?
                .flatten()
            {
                eprintln!(
                    "pause requested: worker {worker} starts no more of {rid}'s tasks from its next \
                     heartbeat, lets the running ones finish, and records it `paused`"
                );
                return Ok(ExitCode::SUCCESS);
            }
            wasmflow_workflow::cancel::pause_stopped(&store, record)?;
            eprintln!(
                "paused {rid} (nothing was running it); `wasmflow execution resume {rid}` goes on"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `execution resume ID`: a paused workflow, on from where it stopped, in
/// this process.
pub fn resume_paused(home: &Home, id: &str, json: bool) -> CmdResult {
    let rt = crate::runtime(home)?;
    let sched = Scheduler::with_components(rt.clone(), crate::registry::components(home, false));
    let record = rt.store().find(id)?;
    let (cancel, pause) = (CancellationToken::new(), CancellationToken::new());
    let show = std::io::stderr().is_terminal();
    let progress = show.then(|| Arc::new(Progress::new()));
    let observer = progress.clone().map(|p| p as Arc<dyn Observer>);
    eprintln!("resuming {} ({})", record.id, record.action);
    let rec = tokio_multi().block_on(async {
        watch_cancel(home, record.id, cancel.clone());
        Requests::pauses(&home.dir).watch(record.id, pause.clone());
        sched
            .resume_paused(record.id, cancel, pause, observer)
            .await
    });
    if let Some(p) = progress {
        p.bar.finish_and_clear();
    }
    Ok(crate::exit_code(print::outcome(&rec?, json)))
}

/// `execution re-run` of a workflow execution: the same workflow (the copy
/// kept in the store), its input with `-p` overrides, its grants (the
/// recorded ones with any added).
pub fn rerun(
    home: &Home,
    rt: Runtime,
    original: ExecutionRecord,
    args: &crate::args::ReRunArgs,
    grants: wasmflow_store::Grants,
    limits: wasmflow_store::Limits,
) -> CmdResult {
    let (params, from, json) = (&args.params, args.from.as_deref(), args.json);
    let sched = Scheduler::with_components(rt.clone(), crate::registry::components(home, false));
    let def = Arc::new(sched.recorded_definition(&original)?);
    let mut input = original.input.clone();
    Runnable::Workflow(def.clone())
        .apply_params(&mut input, params)
        .map_err(crate::run::params_error)?;
    let mut req = Request::new(def, input);
    req.name = Some(original.action.clone());
    req.grants = grants;
    req.limits = limits;
    req.lineage = wasmflow_store::Lineage::rerun_of(&original);
    req.lineage.started_by = Some(crate::run::started_by());
    req.from = from.map(|t| (original.id, t.to_owned()));
    let show = std::io::stderr().is_terminal();
    let progress = show.then(|| Arc::new(Progress::new()));
    req.observer = progress.clone().map(|p| p as Arc<dyn Observer>);
    let record = tokio_multi().block_on(sched.run(req));
    if let Some(p) = progress {
        p.bar.finish_and_clear();
    }
    Ok(crate::exit_code(print::outcome(&record?, json)))
}

/// Task progress on a terminal: a spinner naming what runs, and a line per
/// finished task above it.
struct Progress {
    bar: ProgressBar,
    state: Mutex<(usize, Vec<String>)>,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Self {
            bar,
            state: Mutex::new((0, Vec::new())),
        }
    }

    fn refresh(&self, state: &(usize, Vec<String>)) {
        self.bar.set_message(format!(
            "{} done; running: {}",
            state.0,
            if state.1.is_empty() {
                "-".to_owned()
            } else {
                state.1.join(", ")
            }
        ));
    }
}

impl Observer for Progress {
    fn task_started(&self, _workflow: &str, task: &str, item: Option<usize>) {
        let mut s = self.state.lock().expect("not poisoned");
        s.1.push(match item {
            Some(i) => format!("{task}[{i}]"),
            None => task.to_owned(),
        });
        self.refresh(&s);
    }

    fn task_finished(&self, workflow: &str, task: &str, status: Status, elapsed: Duration) {
        let mut s = self.state.lock().expect("not poisoned");
        s.0 += 1;
        if let Some(i) =
            s.1.iter()
                .position(|t| t == task || t.starts_with(&format!("{task}[")))
        {
            s.1.remove(i);
        }
        self.bar.println(format!(
            "{} {workflow}.{task} {status} in {}",
            if status == Status::Succeeded {
                "✓"
            } else {
                "✗"
            },
            print::elapsed(elapsed)
        ));
        self.refresh(&s);
    }
}

/// `wasmflow workflow test`: every spec rehearsed on a store of its own
/// (thrown away: a rehearsal is not history), each printed `ok` or
/// `FAILED` with its differences; exit 1 if any failed.
pub fn test(home: &Home, paths: &[PathBuf], junit: Option<&Path>) -> CmdResult {
    use wasmflow_workflow::rehearsal;
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let found = wasmflow_registry::pack::files_with(p, &["yaml", "yml", "json"])
                .map_err(|e| Fail::usage(anyhow!("{}: {e}", p.display())))?;
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(Fail::usage(anyhow!(
            "no rehearsal specs (.yaml, .yml, .json) there"
        )));
    }
    let specs = files
        .iter()
        .map(|f| rehearsal::load(f).map(|s| (f, s)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Fail::usage(anyhow!(e)))?;
    let scratch = tempfile::tempdir().map_err(|e| Fail::usage(anyhow!("a scratch store: {e}")))?;
    let rt = Runtime::open_at(
        wasmflow_store::Location::in_home(scratch.path()),
        scratch.path(),
        home.cache.as_deref(),
        home.engine.clone(),
    )?;
    let sched = Scheduler::new(rt);
    let tokio = tokio_multi();
    let mut cases = Vec::new();
    for (file, spec) in &specs {
        let name = file.display().to_string();
        let started = std::time::Instant::now();
        let report = tokio.block_on(rehearsal::rehearse(&sched, file, spec));
        let took = format!("({:.1} ms)", started.elapsed().as_secs_f64() * 1000.0);
        let problems = match report {
            Ok(r) if r.passed() => {
                println!("ok      {name} {took}");
                Vec::new()
            }
            Ok(r) => {
                println!("FAILED  {name} {took}");
                r.differences
            }
            Err(e) => {
                println!("FAILED  {name} {took}");
                vec![e]
            }
        };
        for p in &problems {
            println!("        {p}");
        }
        cases.push((name, problems));
    }
    let failed = cases.iter().filter(|(_, p)| !p.is_empty()).count();
    println!(
        "{} rehearsal(s): {} passed, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    if let Some(path) = junit {
        std::fs::write(path, junit_xml(&cases))
            .map_err(|e| Fail::usage(anyhow!("writing {}: {e}", path.display())))?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The results as JUnit XML: a test case per spec, a failure per failed one.
fn junit_xml(cases: &[(String, Vec<String>)]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failed = cases.iter().filter(|(_, p)| !p.is_empty()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"wasmflow workflow test\" tests=\"{}\" failures=\"{failed}\">\n",
        cases.len()
    );
    for (name, problems) in cases {
        xml += &format!("  <testcase classname=\"rehearsal\" name=\"{}\"", esc(name));
        if problems.is_empty() {
            xml += "/>\n";
        } else {
            xml += &format!(
                ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                esc(&problems[0]),
                esc(&problems.join("\n"))
            );
        }
    }
    xml + "</testsuite>\n"
}
