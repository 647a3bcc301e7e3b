//! What one execution was: its input, grants, outcome, logs and timings.

pub use crate::failure::Failure;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// Time-sortable execution id (a ULID), printed in Crockford base32.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub ulid::Ulid);

impl ExecutionId {
    /// A new id, greater than every id this process made before: ids made
    /// in the same millisecond still sort in creation order.
    pub fn new() -> Self {
        static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
        let mut g = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
        let id = g
            .get_or_insert_with(ulid::Generator::new)
            .generate()
            // The random part overflowed within one millisecond (2^80 ids).
            .unwrap_or_else(|_| ulid::Ulid::new());
        Self(id)
    }

    /// The smallest id of time `t`: the ids of executions created before
    /// `t` sort below it (a time range is an id range).
    pub fn first_at(t: std::time::SystemTime) -> Self {
        let ms = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self(ulid::Ulid::from_parts(ms, 0))
    }

    /// Big-endian key bytes: sorting keys sorts by creation time.
    pub fn key(&self) -> [u8; 16] {
        self.0 .0.to_be_bytes()
    }

    pub fn from_key(key: &[u8]) -> Option<Self> {
        let bytes: [u8; 16] = key.try_into().ok()?;
        Some(Self(ulid::Ulid(u128::from_be_bytes(bytes))))
    }
}

impl Default for ExecutionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecutionId({})", self.0)
    }
}

impl FromStr for ExecutionId {
    type Err = ulid::DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ulid::Ulid::from_string(s).map(Self)
    }
}

/// Whether the execution ran one action or a workflow of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Action,
    Workflow,
}

/// Lifecycle of an execution. Terminal states never change again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
    /// A workflow stopped starting tasks when asked (`execution pause`),
    /// its running tasks finished; it goes on when resumed. Last, so the
    /// other statuses keep their index bytes.
    Paused,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Running,
        Status::Succeeded,
        Status::Failed,
        Status::TimedOut,
        Status::Canceled,
        Status::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Canceled => "canceled",
            Status::Paused => "paused",
        }
    }

    /// Succeeded, failed, timed out or canceled: the record is final.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Status::Pending | Status::Running | Status::Paused)
    }

    /// One byte per status, used as the prefix of `by_status` keys.
    pub(crate) fn tag(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.replace('-', "_");
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Status::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "unknown status `{s}` (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// A host directory made visible to the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute host path.
    pub host: String,
    /// Path the guest sees.
    pub guest: String,
}

/// One environment variable given to the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvGrant {
    pub name: String,
    /// Explicit value; `None` means "take the host's value at run time".
    /// A secret is a reference here, never its value: `((secret:KEY))`
    /// (`--secret-env`) or `((sealed:...))` (an `--allow-env NAME=VALUE`
    /// value, encrypted under the home's secret key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One host (and optionally one port) the guest may connect to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetGrant {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl fmt::Display for NetGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Everything a sandbox may touch. Empty means nothing (deny by default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvGrant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net: Vec<NetGrant>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<String>,
    /// Datastore keys the guest may read (`wasmflow:action/keys`) and
    /// its input may reference: patterns, `*` for any run of characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Programs may run without Landlock where the kernel has none
    /// (`--allow-unconfined-exec`); without it `process.run` refuses there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unconfined_exec: bool,
}

impl Grants {
    pub fn is_empty(&self) -> bool {
        *self == Grants::default()
    }
}

/// Resource limits of one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Total linear memory, all memories of the component together.
    pub memory_bytes: u64,
    /// Wall-clock time from instantiation to the end of `run`.
    pub timeout_ms: u64,
    /// Captured stdout and stderr, each.
    pub output_bytes: u64,
    /// Captured log lines, all together.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            timeout_ms: 60_000,
            output_bytes: 1 << 20,
            log_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line the action logged (or the host logged about it, e.g. a denial).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the execution started.
    pub at_ms: u64,
    pub level: LogLevel,
    pub message: String,
    /// Progress report, when the line is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// How an execution, or one attempt of a workflow task, ended: its
/// terminal status and what it produced. The one outcome type: records,
/// the runtime, the workflow journal's state and the scheduler's decisions
/// all hold it (a record keeps its three fields in place, so its JSON is
/// what it always was; [`ExecutionRecord::outcome`] and
/// [`ExecutionRecord::end`] convert).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub result: Option<Value>,
    pub error: Option<Failure>,
}

impl Outcome {
    /// Succeeded with `result`.
    pub fn succeeded(result: Option<Value>) -> Self {
        Self {
            status: Status::Succeeded,
            result,
            error: None,
        }
    }

    /// Failed with `failure`.
    pub fn failed(failure: Failure) -> Self {
        Self::stopped(Status::Failed, failure)
    }

    /// Ended as `status` (failed, canceled, timed out) with `failure`.
    pub fn stopped(status: Status, failure: Failure) -> Self {
        Self {
            status,
            result: None,
            error: Some(failure),
        }
    }
}

/// Everything wasmflow knows about one execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ExecutionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<ExecutionId>,
    /// The workflow task this execution ran for, when it is a child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub kind: Kind,
    /// The action as the user named it (path or reference).
    pub action: String,
    /// `sha256:<hex>` of the component bytes that ran.
    pub component_digest: String,
    pub input: Value,
    pub grants: Grants,
    pub limits: Limits,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    #[serde(default)]
    pub logs: Vec<LogLine>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(with = "humantime_serde_compat")]
    pub created_at: SystemTime,
    #[serde(default, with = "humantime_serde_compat::option")]
    pub started_at: Option<SystemTime>,
    #[serde(default, with = "humantime_serde_compat::option")]
    pub ended_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<ExecutionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<ExecutionId>,
    /// Which start of this work the record is: 1, or more when a workflow
    /// task is started again after an interruption or a retry (at least
    /// once: an interrupted attempt may have done part of its work).
    /// Stored only when it is not 1, so records of first attempts read as
    /// they always did.
    #[serde(default = "first_attempt", skip_serializing_if = "is_first_attempt")]
    pub attempt: u32,
    /// The file what ran came from, when `action` names it otherwise (a
    /// served workflow is `chain`, a pack's `vm.clone@1.0.0`): a workflow's
    /// relative task actions resolve from its file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who or what started it; workflow tasks have their `parent` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<StartedBy>,
}

/// Who or what started an execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartedBy {
    /// A person at the command line: their user name on that machine.
    User(String),
    /// An API call, by the name of the token it carried.
    Token(String),
    /// The webhook of this name.
    Webhook(String),
    /// A rule of the event bus, enforced on a trigger instance.
    Rule { rule: String, trigger: ExecutionId },
    /// A sensor's poll (`PACK.SENSOR`).
    Sensor(String),
}

impl std::fmt::Display for StartedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartedBy::User(n) => write!(f, "user {n}"),
            StartedBy::Token(n) => write!(f, "token {n}"),
            StartedBy::Webhook(n) => write!(f, "webhook {n}"),
            StartedBy::Rule { rule, trigger } => {
                write!(f, "rule {rule} (trigger instance {trigger})")
            }
            StartedBy::Sensor(n) => write!(f, "sensor {n}"),
        }
    }
}

fn first_attempt() -> u32 {
    1
}

fn is_first_attempt(n: &u32) -> bool {
    *n == 1
}

impl ExecutionRecord {
    /// End the record with `outcome` (a terminal status), now.
    pub fn end(&mut self, outcome: Outcome) {
        let Outcome {
            status,
            result,
            error,
        } = outcome;
        debug_assert!(status.is_terminal(), "ending a record as {status}");
        self.status = status;
        self.result = result;
        self.error = error;
        self.ended_at = Some(now());
    }

    /// End the record as `status` (failed, canceled, ...) with `failure`.
    pub fn fail(&mut self, status: Status, failure: Failure) {
        self.end(Outcome::stopped(status, failure));
    }

    /// How it ended (or its status so far, with nothing produced yet).
    pub fn outcome(&self) -> Outcome {
        Outcome {
            status: self.status,
            result: self.result.clone(),
            error: self.error.clone(),
        }
    }

    /// A fresh, pending record for one action.
    pub fn new_action(action: String, component_digest: String, input: Value) -> Self {
        Self {
            id: ExecutionId::new(),
            parent: None,
            root: None,
            task: None,
            kind: Kind::Action,
            action,
            component_digest,
            input,
            grants: Grants::default(),
            limits: Limits::default(),
            status: Status::Pending,
            result: None,
            error: None,
            logs: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            created_at: now(),
            started_at: None,
            ended_at: None,
            worker: None,
            replay_of: None,
            rerun_of: None,
            attempt: 1,
            source: None,
            started_by: None,
        }
    }

    /// A fresh, pending record for one workflow run; `source_digest` names
    /// the workflow file's bytes, kept in the blobs.
    pub fn new_workflow(workflow: String, source_digest: String, input: Value) -> Self {
        Self {
            kind: Kind::Workflow,
            ..Self::new_action(workflow, source_digest, input)
        }
    }

    /// Whether the status is final (the record will not change again).
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }

    /// The file it ran from: `source`, else `action` (records written
    /// before `source` existed name the file there).
    pub fn source_path(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.action)
    }

    /// Wall time from start to end, when both are known.
    pub fn elapsed(&self) -> Option<std::time::Duration> {
        self.ended_at?.duration_since(self.started_at?).ok()
    }
}

/// The current time at the precision records keep (microseconds), so a
/// record read back compares equal to the one written.
pub fn now() -> SystemTime {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(since.as_micros() as u64)
}

/// RFC 3339 timestamps in JSON, so records read well with `jq`.
/// `SystemTime` as records write it: RFC 3339 with microseconds (and
/// `option` for an optional one). Shared by every stored type that keeps
/// a time, and by views that show one.
pub mod humantime_serde_compat {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_rfc3339(&s).map_err(D::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| humantime::parse_rfc3339(&s).map_err(D::Error::custom))
                .transpose()
        }
    }
}
