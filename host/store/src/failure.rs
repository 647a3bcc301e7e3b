//! Why an execution did not succeed: the [`Failure`] every record and
//! every front end shares, and the failure codes the host itself gives,
//! each with whether trying again may help. An action's own codes
//! (`invalid-spec`) are its own: it says whether they are retryable.
//!
//! What it must not touch: storage; this is data only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why an execution did not succeed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Stable code: the action's own (`invalid-spec`) or the host's (see
    /// [`code`]).
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl Failure {
    /// A failure with a host code; retryable as [`code::is_retryable`]
    /// says.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: code::is_retryable(code),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The failure codes wasmflow gives (as opposed to an action's own).
pub mod code {
    /// Ran past its `--timeout`.
    pub const TIMEOUT: &str = "timeout";
    /// The process running it stopped before it ended.
    pub const INTERRUPTED: &str = "interrupted";
    /// Canceled (before or while it ran).
    pub const CANCELED: &str = "canceled";
    /// The server could not run it (its action would not load, say).
    pub const SERVER: &str = "server";
    /// The workers that claimed it were lost (their leases ran out) too
    /// many times, on a store many workers share.
    pub const WORKER_LOST: &str = "worker-lost";
    /// Memory (or a table) past `--memory` or the table backstop.
    pub const MEMORY_LIMIT: &str = "memory-limit";
    pub const OUTPUT_LIMIT: &str = "output-limit";
    pub const LOG_LIMIT: &str = "log-limit";
    pub const RECORDING_LIMIT: &str = "recording-limit";
    pub const STACK_OVERFLOW: &str = "stack-overflow";
    pub const TRAP: &str = "trap";
    /// An error of the host that is not one of the above.
    pub const HOST_ERROR: &str = "host-error";
    /// The sandbox could not be built (a granted directory would not open).
    pub const SANDBOX: &str = "sandbox";
    /// A granted program could not be confined and the operator did not
    /// allow it unconfined.
    pub const UNCONFINED: &str = "unconfined";
    pub const REPLAY_DIVERGENCE: &str = "replay-divergence";
    pub const INVALID_INPUT: &str = "invalid-input";
    pub const GRANT_DENIED: &str = "grant-denied";
    /// A workflow expression did not evaluate.
    pub const EXPRESSION: &str = "expression";
    pub const TASK_FAILED: &str = "task-failed";
    /// A join some of whose inbound transitions arrived, too few, and no
    /// more can.
    pub const UNREACHABLE_JOIN: &str = "unreachable-join";
    /// A rehearsal ran more task runs than any should (a loop its mocks
    /// never end).
    pub const REHEARSAL_BOUND: &str = "rehearsal-bound";
    /// An action returned an error that is not its `error` record.
    pub const ACTION_ERROR: &str = "action-error";
    /// A workflow task's action would not load or check.
    pub const ACTION: &str = "action";
    /// A nested workflow would not load or check.
    pub const WORKFLOW: &str = "workflow";
    /// A workflow could not be resumed from its journal.
    pub const RESUME: &str = "resume";
    /// A `core.ask` inquiry nobody answered within its `ttl`.
    pub const INQUIRY_TIMEOUT: &str = "inquiry-timeout";
    /// A `core.ask` task's question that is not one (bad schema, ttl).
    pub const INQUIRY: &str = "inquiry";
    /// A with-items item that ended without a failure of its own.
    pub const FAILED: &str = "failed";

    /// Whether trying again may help: a timeout, an interruption, or the
    /// server's own trouble may pass; a limit, a trap or a bad input will
    /// not.
    pub fn is_retryable(code: &str) -> bool {
        matches!(code, TIMEOUT | INTERRUPTED | SERVER)
    }
}
