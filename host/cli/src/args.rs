//! Command-line arguments.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "wasmflow",
    version,
    about = "Run automation actions as sandboxed WebAssembly components, and see what ran.",
    after_help = "Exit status: 0 succeeded, 1 the action failed, 2 usage or input error.\n\
                  Docs: README.md (grant flags, the JSON <-> WIT mapping, writing actions)."
)]
pub struct Cli {
    /// Store directory [default: $XDG_DATA_HOME/wasmflow or ~/.local/share/wasmflow]
    #[arg(long, env = "WASMFLOW_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// The store: a `postgres://USER@HOST:PORT/DB` URL (shared by any
    /// number of processes) or a directory [default: <home>/store]
    #[arg(
        long,
        env = "WASMFLOW_STORE",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub store: Option<String>,

    /// Compiled-component cache [default: <home>/cache]
    #[arg(long, env = "WASMFLOW_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Talk to a running `wasmflow serve` at URL instead of opening the
    /// store (run, execution list/get/re-run/replay/cancel).
    #[arg(long, env = "WASMFLOW_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// API token for --server.
    #[arg(long, env = "WASMFLOW_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,

    /// Refuse components larger than this, unread [default: 64MiB].
    #[arg(
        long,
        env = "WASMFLOW_MAX_COMPONENT_SIZE",
        global = true,
        value_name = "SIZE"
    )]
    pub max_component_size: Option<String>,

    /// Stop compiling a component after this long (code `compile-limit`)
    /// [default: 5m].
    #[arg(
        long,
        env = "WASMFLOW_COMPILE_TIMEOUT",
        global = true,
        value_name = "DURATION"
    )]
    pub compile_timeout: Option<String>,

    /// Address space the compiler may use [default: 4GiB].
    #[arg(
        long,
        env = "WASMFLOW_COMPILE_MEMORY",
        global = true,
        value_name = "SIZE"
    )]
    pub compile_memory: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one action (a component) or a workflow (a .yaml file) with typed
    /// input, each action in a deny-by-default sandbox.
    Run(Box<RunArgs>),
    /// Check and run workflows.
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
    /// Publish a component to an OCI registry (Wasm OCI artifact layout).
    Push(PushArgs),
    /// Fetch a component from an OCI registry into the local cache.
    Pull(PullArgs),
    /// Publish and install packs (pack.yaml: actions and workflows used as pack.NAME).
    Pack {
        #[command(subcommand)]
        command: PackCommand,
    },
    /// Start a new action from a template: WIT world, source, tests, build script.
    New(NewArgs),
    /// Build the action in DIR into DIR/NAME.wasm with its language's toolchain.
    Build {
        /// The action's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Print what was built as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the action in DIR, then run its tests/ (cases and replay bundles).
    Test(TestArgs),
    /// Continue every workflow a stopped wasmflow process left running.
    Resume {
        /// Print the resumed executions' records as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show an action's signature (WIT), input JSON Schema and imports.
    Inspect(InspectArgs),
    /// List and look at recorded executions.
    Execution {
        #[command(subcommand)]
        command: ExecutionCommand,
    },
    /// Serve the HTTP API, the queue and its workers, webhooks and the web UI.
    Serve(Box<ServeArgs>),
    /// Only run work, from a store many processes share (--store
    /// postgres://...): claim executions from its queue under leases,
    /// `--concurrency` at a time. `worker list` shows every worker.
    #[command(args_conflicts_with_subcommands = true)]
    Worker {
        #[command(subcommand)]
        command: Option<WorkerCommand>,
        #[command(flatten)]
        args: WorkerArgs,
    },
    /// Rules of the event bus: check them, and try one on a payload.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Trigger types: what can happen, with each one's parameters and
    /// payload.
    Trigger {
        #[command(subcommand)]
        command: TriggerCommand,
    },
    /// Events the event bus recorded (webhook calls, executions' ends),
    /// with what the rules did about each.
    #[command(name = "trigger-instance")]
    TriggerInstance {
        #[command(subcommand)]
        command: TriggerInstanceCommand,
    },
    /// What rules did with events: the execution each started, or why it
    /// started none.
    #[command(name = "rule-enforcement")]
    RuleEnforcement {
        #[command(subcommand)]
        command: EnforcementCommand,
    },
    /// Questions `core.ask` workflow tasks wait on: list them, answer one
    /// (the workflow goes on).
    Inquiry {
        #[command(subcommand)]
        command: InquiryCommand,
    },
    /// The datastore: keys actions and workflows read, and secrets kept
    /// encrypted (`system.NAME`, `user.USER.NAME`).
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// API tokens for `wasmflow serve` (only their hashes are stored).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Look after the store: check it for damage.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The actions and workflows there are to run, and one in detail.
    Action {
        #[command(subcommand)]
        command: ActionCommand,
    },
    /// Print a shell completion script, e.g.
    /// `wasmflow completions bash > /etc/bash_completion.d/wasmflow`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum ActionCommand {
    /// Every action and workflow `run NAME` finds here: in DIR (components,
    /// workflows, built action directories) and in the installed packs;
    /// with --server, the server's catalog.
    List {
        /// Where to look [default: the current directory].
        #[arg(long, value_name = "DIR", default_value = ".")]
        actions: PathBuf,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One action: its WIT signature, docs, input JSON Schema and imports
    /// (as `inspect`, any name `run` takes); with --server, the server's
    /// description of its catalog entry.
    Get {
        /// The action, as `run` names it.
        name: PathBuf,
        /// Plain HTTP for an oci:// registry on this machine (loopback only).
        #[arg(long)]
        insecure: bool,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
        /// A pack item's recorded name, once resolved (see InspectArgs).
        #[arg(skip)]
        named: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Read every record, event, journal entry and blob (each blob against
    /// its sha256) and list what is damaged, by id. Exit 1 when anything is.
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy every record, event, journal, blob, queue entry and token of
    /// one store into another (a sled home into PostgreSQL, or back), then
    /// read every record back and compare. The source is not changed; the
    /// target must be empty or hold an earlier copy of the same source.
    Copy {
        /// The store to copy: a wasmflow home directory, a store
        /// directory or a postgres:// URL [default: this home's store]
        #[arg(long, value_name = "HOME|URL")]
        from: Option<String>,
        /// Where to copy it: a home directory (created if needed), a store
        /// directory or a postgres:// URL.
        #[arg(long, value_name = "HOME|URL")]
        to: String,
        /// Print what was copied as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Executions run at once [default: the number of cores]; 0 (on a
    /// shared store) serves only, leaving the work to `wasmflow worker`s.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Components (.wasm, .wat) and workflows (.yaml) to serve, named by
    /// file stem.
    #[arg(long, value_name = "DIR")]
    pub actions: Option<PathBuf>,
    /// Plain HTTP for oci:// registries on this machine (loopback only),
    /// for workflows' tasks and executions asked for by reference.
    #[arg(long)]
    pub insecure: bool,
    /// Serve even with no actions (the API over the history only).
    #[arg(long)]
    pub allow_empty: bool,
    /// Webhook definitions (YAML).
    #[arg(long, value_name = "FILE")]
    pub webhooks: Option<PathBuf>,
    /// The event bus's rules: every .yaml/.yml file there (see `wasmflow
    /// rule validate`).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// On a shared store: how old an event still unprocessed must be for
    /// this server to take it as a crashed server's (it looks at start and
    /// every half this).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub abandoned_after: String,
    /// Accepted executions not yet ended, at most; beyond it, 429.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub queue_capacity: usize,
    /// After SIGTERM, how long running executions get before they are left
    /// to resume on the next start.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub shutdown_timeout: String,
    /// Delete executions that ended longer ago than AGE (e.g. `30d`), as
    /// `execution purge` does, while serving. `STATUS=AGE` (e.g.
    /// `failed=90d`) sets the age for one status; repeat for several.
    #[arg(long, value_name = "[STATUS=]AGE")]
    pub retain: Vec<String>,
    /// How often retention looks for executions to delete.
    #[arg(long, default_value = "1m", value_name = "DURATION", hide = true)]
    pub retain_every: String,
    #[command(flatten)]
    pub leasing: LeaseArgs,
    /// The most an execution may be granted (requests ask within it).
    #[command(flatten)]
    pub grants: GrantArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// Executions run at once [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// After SIGTERM, how long running executions get before they are left
    /// for another worker.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub shutdown_timeout: String,
    #[command(flatten)]
    pub leasing: LeaseArgs,
}

/// How a process takes part in a shared store's queue.
#[derive(Args)]
pub struct LeaseArgs {
    /// This process's name among the workers [default: HOST-PID].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long a claim holds without a heartbeat; past it, another worker
    /// takes the execution over.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub lease: String,
    /// How often this process renews its leases (and hears of cancels).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub heartbeat: String,
    /// After this many workers lost while holding it, an execution fails
    /// with `worker-lost` instead of starting again.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub max_lost: u32,
}

#[derive(Subcommand)]
pub enum WorkerCommand {
    /// Every worker process: its last heartbeat and what it runs.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once: only its hash is kept).
    Create {
        /// What the token is for, e.g. `ci`.
        #[arg(long)]
        name: String,
        /// May list and read, not run, cancel or re-run.
        #[arg(long)]
        read_only: bool,
    },
    /// The tokens there are (names, not tokens).
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop accepting a token.
    Revoke { name: String },
}

#[derive(Subcommand)]
pub enum InquiryCommand {
    /// Inquiries waiting for an answer (past their ttl ones expire now).
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One inquiry: its question's schema, route, users, expiry, answer.
    Get {
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer an inquiry (checked against its schema); a paused workflow
    /// then goes on in this process until it ends (exit status as `run`'s).
    Respond {
        id: String,
        /// `key=value` in the answer (a value that reads as JSON is JSON).
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// The answer from a JSON file (`-p` adds to it).
        #[arg(long, value_name = "FILE")]
        response: Option<PathBuf>,
        /// Print the workflow's final record as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RuleCommand {
    /// The rules a running server enforces (--server URL), enabled or not.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One rule of a running server: trigger, criteria, action, input.
    Get {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Enable a rule of a running server (for every server on its store).
    Enable { name: String },
    /// Disable a rule of a running server: its events are recorded with a
    /// `disabled` enforcement, and nothing runs.
    Disable { name: String },
    /// Check rule files (or every .yaml/.yml of directories): trigger
    /// types and parameters, criteria paths, operators and patterns,
    /// templates, and with --actions the action and its input.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The catalog the rules' actions come from (`serve --actions DIR`,
        /// and the installed packs).
        #[arg(long, value_name = "DIR")]
        actions: Option<PathBuf>,
        /// Print the rules as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a rule makes of a payload (st2-rule-tester): each criterion
    /// held or not, and the input its action would get; nothing runs.
    /// Exit 0 when it would run its action, 1 when not.
    Test {
        rule: PathBuf,
        /// The trigger's payload, a JSON file.
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TriggerInstanceCommand {
    /// Trigger instances, newest first.
    List {
        /// At most this many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One trigger instance, its payload and its enforcements.
    Get {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum EnforcementCommand {
    /// Enforcements, newest event first.
    List {
        /// At most this many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TriggerCommand {
    /// The trigger types (built in, and declared by installed packs), with
    /// their parameters and payloads.
    List {
        /// Print them as JSON (with their JSON Schemas).
        #[arg(long)]
        json: bool,
    },
    /// Emit an event of a type a pack declares, to a running server
    /// (--server URL): its rules are enforced on it.
    Emit {
        /// `PACK.NAME`.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// The payload, a JSON file (checked against the type's schema).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Set a key (replacing its value).
    Set {
        /// `system.NAME` (shared) or `user.USER.NAME`.
        name: String,
        /// The value; `-` reads it from stdin (keeps a secret out of shell
        /// history and `ps`).
        value: String,
        /// It expires after this long (`30s`, `1h`, `7d`).
        #[arg(long)]
        ttl: Option<String>,
        /// Encrypt it at rest, mask it everywhere it is shown.
        #[arg(long)]
        secret: bool,
    },
    /// Print a key's value (a secret's masked unless --decrypt).
    Get {
        name: String,
        /// Show a secret's value.
        #[arg(long)]
        decrypt: bool,
        /// Print the key as JSON (name, value, secret, expires_at, updated_at).
        #[arg(long)]
        json: bool,
    },
    /// The keys there are, secrets masked.
    List {
        /// Only names starting with this (`system.vm.`).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a key.
    Delete { name: String },
    /// Set every key of a YAML or JSON map at once (`NAME: VALUE`, or
    /// `NAME: {value, secret, ttl}`); nothing is set if one is wrong.
    Load { file: PathBuf },
    /// Re-encrypt every secret under a new secret key, which replaces the
    /// old one.
    Rotate,
}

#[derive(Args)]
pub struct NewArgs {
    /// The action's name: lowercase letters, digits, '.' and '-' (e.g. vm.resize).
    pub name: String,
    /// The language to write it in.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(wasmflow_devkit::Lang::NAMES))]
    pub lang: String,
    /// Where to create NAME/ [default: the current directory]
    #[arg(long, value_name = "PARENT", default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Args)]
pub struct TestArgs {
    /// The action's directory (or a pack's: its workflows' rehearsals in
    /// tests/).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Test the component already built instead of building first.
    #[arg(long, conflicts_with = "rebuild")]
    pub no_build: bool,
    /// Build even when the sources did not change since the last build.
    #[arg(long)]
    pub rebuild: bool,
    /// Print the cases and their verdicts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How to reach a registry.
#[derive(Args, Clone, Default)]
pub struct RegistryArgs {
    /// User name for basic (or token) authentication; the password comes
    /// from --password-stdin or WASMFLOW_REGISTRY_PASSWORD.
    #[arg(long, env = "WASMFLOW_REGISTRY_USERNAME")]
    pub username: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Plain HTTP, for a registry on this machine (loopback) only.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Args)]
pub struct PushArgs {
    /// The component (.wasm or .wat).
    pub component: PathBuf,
    /// Where: oci://HOST[:PORT]/NAMESPACE/NAME:TAG
    pub reference: String,
    /// A description for the artifact's annotations.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand)]
pub enum PackCommand {
    /// Publish every action of the pack in DIR and its index under REF.
    Push {
        /// The pack's directory (with pack.yaml).
        dir: PathBuf,
        /// Where the index goes: oci://HOST[:PORT]/NAMESPACE/NAME:TAG (actions
        /// go beside it as NAME.ACTION:TAG).
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Install a pack from a registry into WASMFLOW_HOME/packs.
    Pull {
        /// oci://HOST[:PORT]/NAMESPACE/NAME:TAG or …@sha256:DIGEST
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The installed packs, their actions (and the grants they need) and workflows.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct PullArgs {
    /// oci://HOST[:PORT]/NAMESPACE/NAME:TAG or …@sha256:DIGEST
    pub reference: String,
    /// Also write the component to FILE (e.g. to refer to it from a workflow).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Check a workflow file without running it: structure, transitions,
    /// expressions, and task input against each action's WIT.
    Validate {
        /// The workflow file (.yaml).
        file: PathBuf,
        /// Plain HTTP for oci:// actions on a loopback registry.
        #[arg(long)]
        insecure: bool,
        /// Print what was checked as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a workflow (the same as `wasmflow run FILE.yaml`).
    Run(Box<RunArgs>),
    /// Rehearse workflows without running any action (Orquesta's workflow
    /// tests): each spec's mocks stand in for its tasks' actions, and the
    /// task sequence, status, output, errors and last tasks are compared
    /// with what it expects.
    Test {
        /// Spec files (.yaml, .yml, .json), or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also write the results as JUnit XML (for CI).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// The action: a component file (.wasm, or .wat text), an
    /// oci://HOST/NS/NAME:TAG (or @sha256:…) reference, or a workflow file
    /// (.yaml).
    pub component: PathBuf,

    /// Input fields as `KEY=VALUE` after the action, as `st2 run` takes
    /// them: the same as `-p KEY=VALUE` (and given before every `-p`).
    #[arg(value_name = "KEY=VALUE")]
    pub assignments: Vec<String>,

    /// Plain HTTP for an oci:// registry on this machine (loopback only).
    #[arg(long)]
    pub insecure: bool,

    /// Input JSON file (an object keyed by parameter name); `-` reads stdin.
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Set one input field: `-p spec.name=web01` (typed by the WIT).
    #[arg(short = 'p', long = "param", value_name = "PATH=VALUE")]
    pub params: Vec<String>,

    #[command(flatten)]
    pub grants: GrantArgs,

    #[command(flatten)]
    pub limits: LimitArgs,

    /// Print the whole execution record as JSON instead of the result.
    #[arg(long)]
    pub json: bool,

    /// Start it and return once it is recorded, printing its id (follow it
    /// with `execution tail ID`); it runs on in the background, or on the
    /// server with --server.
    #[arg(long = "async", conflicts_with = "json")]
    pub detach: bool,

    /// How a pack's action is named in its record (`pack.item@version`),
    /// when `component` was found as one.
    #[arg(skip)]
    pub named: Option<String>,

    /// Run under this id (the background process of `run --async`).
    #[arg(long, hide = true, value_name = "ID")]
    pub id: Option<wasmflow_store::ExecutionId>,

    /// Show the action's log lines on stderr as it writes them (the default
    /// when stderr is a terminal).
    #[arg(long, overrides_with = "no_logs")]
    pub logs: bool,

    /// Do not show the action's log lines while it runs.
    #[arg(long = "no-logs")]
    pub no_logs: bool,
}

/// `execution re-run`.
#[derive(Args)]
pub struct ReRunArgs {
    /// Execution id, or a unique prefix of it.
    pub id: String,
    /// Override one input field: `-p spec.name=web02` (typed by the WIT,
    /// or by the workflow's input types).
    #[arg(short = 'p', long = "param", value_name = "PATH=VALUE")]
    pub params: Vec<String>,
    /// For a workflow: reuse the recorded results of the tasks before
    /// TASK, and run TASK and everything after it live.
    #[arg(long, value_name = "TASK")]
    pub from: Option<String>,
    /// Grants added to the recorded ones (e.g. the `--allow-exec` the
    /// first run lacked); a server bounds them by its own.
    #[command(flatten)]
    pub grants: GrantArgs,
    /// Limits replacing the recorded ones (e.g. a longer `--timeout`
    /// for a run that timed out).
    #[command(flatten)]
    pub limits: LimitOverrides,
    /// Print the whole execution record as JSON instead of the result.
    #[arg(long)]
    pub json: bool,
}

/// Limits to change, each one given replacing the recorded one.
#[derive(Args, Default)]
pub struct LimitOverrides {
    /// Wall-time limit, e.g. `30s`, `2m`, `500ms`.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Memory limit for all of the action's memories, e.g. `128MiB`.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Limit on captured stdout and on captured stderr, each.
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<String>,
    /// Limit on the action's log lines, all together.
    #[arg(long, value_name = "SIZE")]
    pub max_log: Option<String>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none()
            && self.memory.is_none()
            && self.max_output.is_none()
            && self.max_log.is_none()
    }
}

/// Resource limits of each action.
#[derive(Args)]
pub struct LimitArgs {
    /// Wall-time limit, e.g. `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub timeout: String,

    /// Memory limit for all of the action's memories, e.g. `128MiB`.
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    pub memory: String,

    /// Limit on captured stdout and on captured stderr, each.
    #[arg(long, default_value = "1MiB", value_name = "SIZE")]
    pub max_output: String,

    /// Limit on the action's log lines, all together.
    #[arg(long, default_value = "1MiB", value_name = "SIZE")]
    pub max_log: String,
}

/// Capabilities. Nothing is granted unless named here.
#[derive(Args, Default)]
pub struct GrantArgs {
    /// Read-only directory: HOST_DIR[::GUEST_DIR] (guest path defaults to the host path).
    #[arg(long = "allow-read", value_name = "HOST_DIR[::GUEST_DIR]")]
    pub read: Vec<String>,

    /// Read-write directory: HOST_DIR[::GUEST_DIR].
    #[arg(long = "allow-write", value_name = "HOST_DIR[::GUEST_DIR]")]
    pub write: Vec<String>,

    /// One environment variable: NAME (the host's value) or NAME=VALUE.
    #[arg(long = "allow-env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Outgoing HTTP and sockets to one host: HOST or HOST:PORT.
    #[arg(long = "allow-net", value_name = "HOST[:PORT]")]
    pub net: Vec<String>,

    /// A host program the action may run through `wasmflow:action/process`.
    #[arg(long = "allow-exec", value_name = "PROGRAM")]
    pub exec: Vec<String>,

    /// Datastore keys the action may read through `wasmflow:action/keys`
    /// (and its input may reference): a name, or a pattern with `*`.
    #[arg(long = "allow-key", value_name = "PATTERN")]
    pub key: Vec<String>,

    /// A datastore key's value as an environment variable of the action and
    /// of the programs it runs: VAR=KEY (e.g. DB_PASSWORD=system.db_password).
    #[arg(long = "secret-env", value_name = "VAR=KEY")]
    pub secret_env: Vec<String>,
    /// Where the kernel has no Landlock, let granted programs run without
    /// confinement (they then reach everything this user can); without it
    /// `process.run` refuses there and the execution fails `unconfined`.
    #[arg(long = "allow-unconfined-exec")]
    pub unconfined_exec: bool,
}

impl GrantArgs {
    /// The flags as the one grant spec (the API's JSON form too).
    pub fn spec(&self) -> wasmflow_runtime::grants::GrantSpec {
        wasmflow_runtime::grants::GrantSpec {
            read: self.read.clone(),
            write: self.write.clone(),
            env: self.env.clone(),
            net: self.net.clone(),
            exec: self.exec.clone(),
            key: self.key.clone(),
            secret_env: self.secret_env.clone(),
        }
    }
}

#[derive(Args)]
pub struct InspectArgs {
    /// The action, named as `run` takes it: a component file (.wasm or
    /// .wat), an oci://HOST/NS/NAME:TAG (or @sha256:…) reference, or an
    /// installed pack's `pack.action`.
    pub component: PathBuf,

    /// Plain HTTP for an oci:// registry on this machine (loopback only).
    #[arg(long)]
    pub insecure: bool,

    /// Print everything as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// How a pack's item is named (`pack.item@version`), set when the
    /// name was resolved to its file.
    #[arg(skip)]
    pub named: Option<String>,
}

#[derive(Subcommand)]
pub enum ExecutionCommand {
    /// Recorded executions, newest first.
    List {
        /// How many to show.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
        /// Only executions with this status (pending, running, succeeded,
        /// failed, timed_out, canceled); repeat or separate with commas for
        /// several.
        #[arg(long, value_delimiter = ',')]
        status: Vec<String>,
        /// Only executions of this action or workflow (its name as listed).
        #[arg(long, value_name = "NAME")]
        action: Option<String>,
        /// Only executions created since this long ago (`1h`, `7d`) or this
        /// time (RFC 3339).
        #[arg(long, value_name = "AGE|TIME")]
        since: Option<String>,
        /// Print records as a JSON array.
        #[arg(long)]
        json: bool,
        /// Also list executions that ran as a workflow's tasks.
        #[arg(long, short = 'a')]
        all: bool,
        /// Every column (start time, error, worker), however wide the
        /// terminal.
        #[arg(long)]
        wide: bool,
    },
    /// The log lines of an execution and of its tasks; with --follow, until
    /// it ends (exit status as `run`'s).
    Logs {
        /// Execution id, or a unique prefix of it.
        id: String,
        /// Wait for new lines until the execution ends.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Follow an execution until it ends: `logs --follow`.
    Tail {
        /// Execution id, or a unique prefix of it.
        id: String,
    },
    /// Stop a running execution: a workflow stops its running actions and
    /// records `canceled`.
    Cancel {
        /// Execution id (a unique prefix is enough when no process runs it).
        id: String,
    },
    /// Pause a running workflow: no task starts after this, running ones
    /// finish, and it is recorded `paused` until `execution resume`.
    Pause {
        /// Execution id (a unique prefix is enough when no process runs it).
        id: String,
    },
    /// Go on with a paused workflow from where it stopped, in this process
    /// until it ends (exit status as `run`'s; with --server, on the server).
    Resume {
        /// Execution id, or a unique prefix of it.
        id: String,
        /// Print the final record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay a recorded execution against its recorded world, bit for bit.
    ///
    /// Exit 0 only for a faithful reproduction; with --component, exit 0 when
    /// the new build succeeds against the recorded world without diverging.
    Replay {
        /// Execution id, or a unique prefix of it (or use --bundle).
        #[arg(required_unless_present = "bundle", conflicts_with = "bundle")]
        id: Option<String>,
        /// Replay from a bundle written by `execution export`.
        #[arg(long, value_name = "FILE")]
        bundle: Option<PathBuf>,
        /// Run this build of the action instead of the recorded one.
        #[arg(long, value_name = "COMPONENT")]
        component: Option<PathBuf>,
        /// A secret the recording used, given again (a bundle from another
        /// machine lists the ones it needs): NAME=VALUE, NAME a key name or
        /// the variable of an `--allow-env NAME=VALUE`; VALUE `-` reads a
        /// line of stdin.
        #[arg(long, value_name = "NAME=VALUE")]
        secret: Vec<String>,
        /// Print the verdict and the replay's record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained replay bundle (record, events, blobs).
    Export {
        /// Execution id, or a unique prefix of it.
        id: String,
        /// Write to FILE instead of stdout.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Run a recorded execution again, live, with the same component,
    /// input and grants, and fields overridden with -p.
    ReRun(Box<ReRunArgs>),
    /// Delete old executions (with their tasks, events, journals and the
    /// blobs nothing else refers to) and say what was freed.
    Purge {
        /// Executions created longer ago than this (`30d`, `12h`) or before
        /// this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long, value_name = "AGE|TIME")]
        before: String,
        /// Only executions with this status; repeat for several.
        #[arg(long)]
        status: Vec<String>,
        /// Only executions of this action or workflow (as listed).
        #[arg(long, value_name = "NAME")]
        action: Option<String>,
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One execution: status, input, result or error.
    Get {
        /// Execution id, or a unique prefix of it.
        id: String,
        /// Also show grants, limits, digest, logs, output and timings.
        #[arg(long)]
        detail: bool,
        /// Show a workflow's task executions as a tree, nested workflows
        /// indented (with --json: each record with its `children`).
        #[arg(long)]
        tree: bool,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
}
