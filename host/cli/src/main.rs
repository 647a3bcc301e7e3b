//! The `wasmflow` command: parses arguments, calls the libraries, prints.
//!
//! No logic lives here beyond turning flags into library calls and records
//! into text. Exit status: 0 succeeded, 1 the action failed, 2 usage or
//! input error caught before anything ran.

mod action;
mod args;
mod devkit;
mod execution;
mod inquiry;
mod inspect;
mod key;
mod print;
mod progress;
mod registry;
mod remote;
mod rule;
mod run;
mod serve;
mod store;
mod tree;
mod units;
mod workflow;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// An error that stops the command, with the exit status it maps to.
pub(crate) struct Fail {
    code: u8,
    error: anyhow::Error,
}

impl Fail {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
        }
    }
}

impl From<wasmflow_store::BundleError> for Fail {
    fn from(e: wasmflow_store::BundleError) -> Self {
        Self::usage(e)
    }
}

/// The libraries' errors say whether the caller can fix them (`is_usage`,
/// exit 2) or the run itself failed (exit 1).
macro_rules! fail_from {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Fail {
            fn from(e: $error) -> Self {
                let code = if e.is_usage() { 2 } else { 1 };
                Self {
                    code,
                    error: e.into(),
                }
            }
        }
    )*};
}

fail_from!(
    wasmflow_runtime::RuntimeError,
    wasmflow_workflow::WorkflowError,
    wasmflow_registry::RegistryError,
    wasmflow_registry::pack::PackError,
    wasmflow_devkit::DevkitError,
    wasmflow_store::StoreError,
    wasmflow_store::CopyError,
    wasmflow_server::ServerError,
    wasmflow_server::tokens::TokenError,
    wasmflow_server::client::ClientError,
    wasmflow_datastore::DatastoreError,
    wasmflow_workflow::inquiry::InquiryError,
);

pub(crate) type CmdResult = Result<ExitCode, Fail>;

fn main() -> ExitCode {
    // Other processes of this user may not read this one's memory or
    // /proc/PID/environ (secrets, tokens), nor ptrace it: a granted program
    // runs as the same user. Programs it starts are dumpable again after
    // their exec.
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    // Like other Unix filters: `wasmflow inspect x.wasm | head` ends quietly.
    // SAFETY: restoring the default disposition of one signal before any
    // thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // The compiler child of bounded compilation (see
    // `wasmflow_runtime::compile`): before anything else is set up.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            wasmflow_runtime::compile::CHILD_COMMAND,
        ))
    {
        return wasmflow_runtime::compile::child_main();
    }
    let mut cli = args::Cli::parse();
    // `run NAME k=v`: the positional fields are `-p` fields given first.
    if let args::Command::Run(a)
    | args::Command::Workflow {
        command: args::WorkflowCommand::Run(a),
    } = &mut cli.command
    {
        let params = std::mem::take(&mut a.params);
        a.params = std::mem::take(&mut a.assignments);
        a.params.extend(params);
    }
    // An EnvFilter costs milliseconds to build (it compiles its directives);
    // most runs only need warnings, so build one only when asked. Colour
    // only on a terminal, never under NO_COLOR: log files and CI logs get
    // plain `key=value` fields that grep finds.
    let colour = {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal() && print::colour_allowed()
    };
    let logs = tracing_subscriber::fmt()
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match std::env::var("WASMFLOW_LOG") {
        Ok(filter) if !filter.is_empty() => logs
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init(),
        _ => logs.with_max_level(tracing::Level::WARN).init(),
    }
    let compile = match compile_limits(&cli) {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let home = Home {
        dir: cli.home.clone().unwrap_or_else(default_home),
        cache: cli.cache_dir.clone(),
        store: cli.store.as_deref().map(wasmflow_store::Location::parse),
        engine: wasmflow_runtime::EngineOptions {
            compile: wasmflow_runtime::CompileOptions::in_child(compile)
                .with_progress(progress::on_stderr()),
            ..Default::default()
        },
    };
    let mut command = cli.command;
    // With --server, the server's store is the one that counts.
    if let Some(server) = cli.server.as_deref().filter(|s| !s.is_empty()) {
        if let Some(result) = remote::dispatch(server, cli.token.clone(), &mut command) {
            return finish(result);
        }
    }
    // What `run`, `inspect` and `action get` were given by name: a built
    // action directory or a pack's item (when no such file is here), as
    // its file; a run's record names it as the user did.
    let named = match &mut command {
        args::Command::Run(a) => Some((&mut a.component, Some(&mut a.named))),
        args::Command::Inspect(a) => Some((&mut a.component, Some(&mut a.named))),
        args::Command::Action {
            command: args::ActionCommand::Get { name, named, .. },
        } => Some((name, Some(named))),
        _ => None,
    };
    if let Some((component, name)) = named {
        match registry::resolve_run_target(&home, component) {
            Ok(Some(found)) => {
                *component = found.path;
                if let Some(name) = name {
                    *name = Some(found.name);
                }
            }
            Ok(None) => {}
            Err(Fail { code, error }) => {
                eprintln!("error: {}", report(&error));
                return ExitCode::from(code);
            }
        }
    }
    let result = match command {
        args::Command::Run(a)
        | args::Command::Workflow {
            command: args::WorkflowCommand::Run(a),
        } if a.detach => run::detach(&home, wasmflow_store::ExecutionId::new()),
        args::Command::Run(a) if wasmflow_workflow::is_workflow_path(&a.component) => {
            workflow::run(&home, *a)
        }
        args::Command::Run(a) => run::run(&home, *a),
        args::Command::Workflow { command } => match command {
            args::WorkflowCommand::Validate {
                file,
                insecure,
                json,
            } => workflow::validate(&home, &file, insecure, json),
            args::WorkflowCommand::Run(a) => workflow::run(&home, *a),
            args::WorkflowCommand::Test { paths, junit } => {
                workflow::test(&home, &paths, junit.as_deref())
            }
        },
        args::Command::Resume { json } => workflow::resume(&home, json),
        args::Command::New(a) => devkit::new(a),
        args::Command::Build { dir, json } => devkit::build(&home, &dir, json),
        args::Command::Test(a) => devkit::test(&home, a),
        args::Command::Push(a) => registry::push(&home, a),
        args::Command::Pull(a) => registry::pull(&home, a),
        args::Command::Pack { command } => registry::pack(&home, command),
        args::Command::Inspect(a) => inspect::inspect(&home, a),
        args::Command::Execution { command } => execution::execution(&home, command),
        args::Command::Serve(a) => serve::serve(&home, *a),
        args::Command::Key { command } => key::key(&home, command),
        args::Command::Inquiry { command } => inquiry::inquiry(&home, command),
        args::Command::Rule { command } => rule::rule(&home, command),
        args::Command::Trigger { command } => rule::trigger(&home, command),
        args::Command::TriggerInstance { command } => rule::instances(&home, command),
        args::Command::RuleEnforcement { command } => rule::enforcements(&home, command),
        args::Command::Token { command } => serve::token(&home, command),
        args::Command::Worker { command, args } => serve::worker(&home, command, args),
        args::Command::Store { command } => store::store(&home, command),
        args::Command::Action { command } => action::action(&home, command),
        args::Command::Completions { shell } => {
            let mut command = <args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "wasmflow", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    finish(result)
}

fn finish(result: CmdResult) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(Fail { code, error }) => {
            eprintln!("error: {}", report(&error));
            ExitCode::from(code)
        }
    }
}

/// An error and its causes on one line, each said once: library errors
/// often already include their source in their own message
/// (`cannot read X: <io error>`), which `{:#}` would repeat.
pub(crate) fn report(error: &anyhow::Error) -> String {
    let mut out = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !out.contains(&cause) {
            out.push_str(": ");
            out.push_str(&cause);
        }
    }
    out
}

/// Leave without running destructors. Only for after every record this
/// command wrote has been flushed (`Store::put` flushes): tearing down the
/// store and the engine would only repeat that flush and join idle threads,
/// which is a third of a short `wasmflow run`.
pub(crate) fn exit_now(succeeded: bool) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(if succeeded { 0 } else { 1 })
}

/// 0 when the execution succeeded, 1 when it did not.
pub(crate) fn exit_code(succeeded: bool) -> ExitCode {
    if succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `$XDG_DATA_HOME/wasmflow`, else `~/.local/share/wasmflow`.
fn default_home() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("wasmflow");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/wasmflow")
}

/// `--max-component-size`, `--compile-timeout`, `--compile-memory`.
fn compile_limits(cli: &args::Cli) -> Result<wasmflow_runtime::CompileLimits, String> {
    let mut limits = wasmflow_runtime::CompileLimits::default();
    if let Some(s) = &cli.max_component_size {
        limits.max_component_bytes = units::parse_size("--max-component-size", s)?;
    }
    if let Some(s) = &cli.compile_timeout {
        limits.timeout = units::parse_duration("--compile-timeout", s)?;
    }
    if let Some(s) = &cli.compile_memory {
        limits.memory_bytes = units::parse_size("--compile-memory", s)?;
    }
    Ok(limits)
}

/// Where this invocation keeps its store and its compiled components, and
/// how it compiles them.
pub(crate) struct Home {
    pub dir: PathBuf,
    pub cache: Option<PathBuf>,
    /// `--store`: where the store is, when not in the home.
    pub store: Option<wasmflow_store::Location>,
    pub engine: wasmflow_runtime::EngineOptions,
}

impl Home {
    /// The loader of this invocation (compiled-component cache, limits).
    pub(crate) fn loader(&self) -> Result<wasmflow_runtime::Loader, Fail> {
        Ok(wasmflow_runtime::Loader::open_with(
            &self.dir,
            self.cache.as_deref(),
            self.engine.clone(),
        )?)
    }

    /// Where this invocation's store is (the home's own).
    pub(crate) fn store_location(&self) -> wasmflow_store::Location {
        self.store
            .clone()
            .unwrap_or_else(|| wasmflow_store::Location::in_home(&self.dir))
    }
}

pub(crate) fn runtime(home: &Home) -> Result<wasmflow_runtime::Runtime, Fail> {
    let rt = wasmflow_runtime::Runtime::open_at(
        home.store_location(),
        &home.dir,
        home.cache.as_deref(),
        home.engine.clone(),
    )?;
    // Keys and secrets for actions (`--allow-key`, `--secret-env`, input
    // references) and workflows (`kv()`, `secret()`).
    rt.use_keys(crate::key::datastore(home)?);
    if home.store_location().is_exclusive() {
        settle_interrupted(rt.store());
    }
    Ok(rt)
}

/// After a command that wrote executions: a batch of finished history
/// past the store's bound moves out of the way of the next command
/// (rarely: a quarter of the bound at a time). A failure to move loses
/// nothing and is said once.
pub(crate) fn archive_finished(rt: &wasmflow_runtime::Runtime) {
    if let Err(e) = rt.store().archive_finished() {
        eprintln!("wasmflow: warning: moving finished history to the archive: {e}");
    }
}

/// The store of this invocation's home (for commands without a runtime).
pub(crate) fn store(home: &Home) -> Result<wasmflow_store::Store, Fail> {
    let store = wasmflow_store::Store::open_waiting(&home.store_location())?;
    Ok(settled(home, store))
}

/// The store, for a command that only reads it: while another process
/// holds the embedded store (a run, `serve`), read through that process.
pub(crate) fn store_for_reading(home: &Home) -> Result<wasmflow_store::Store, Fail> {
    Ok(opened_for_reading(home)?.store().clone())
}

/// [`store_for_reading`], saying whether it reads through another process.
pub(crate) fn opened_for_reading(home: &Home) -> Result<wasmflow_store::Opened, Fail> {
    use wasmflow_store::Opened;
    Ok(
        match wasmflow_store::Store::open_to_read(&home.store_location())? {
            Opened::Own(store) => Opened::Own(settled(home, store)),
            through => through,
        },
    )
}

/// `store`, with what a stopped process left running settled, when this
/// process is its only opener.
fn settled(home: &Home, store: wasmflow_store::Store) -> wasmflow_store::Store {
    if home.store_location().is_exclusive() {
        settle_interrupted(&store);
    }
    store
}

/// An action left `running` by a process that stopped has nobody to finish
/// it: record it as interrupted. Best effort, so that reading a store on a
/// full disk still works.
fn settle_interrupted(store: &wasmflow_store::Store) {
    match store.mark_interrupted_actions() {
        Ok(0) => {}
        Ok(n) => eprintln!(
            "note: {n} action execution(s) left running by a stopped wasmflow process recorded as failed [interrupted]"
        ),
        Err(e) => tracing::warn!("cannot record interrupted executions: {e}"),
    }
}

/// One action at a time needs no worker threads: the guest runs on the
/// calling thread, and host I/O (HTTP, programs) is driven there too.
pub(crate) fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime")
}
