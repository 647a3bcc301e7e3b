//! What the event bus keeps: each trigger instance (an event, written
//! before any rule sees it) and each rule's enforcement on it (what the
//! rule did with it: the execution it started, or why it started none).
//!
//! Exactly once rests on these: an instance is `processed` only after
//! every enforcement it caused is written, an enforcement that starts an
//! execution names that execution's id before the execution is submitted,
//! and there is one enforcement per instance and rule; so a restart after
//! a crash at any step finds what was done and does only the rest.

use crate::record::{humantime_serde_compat, ExecutionId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::SystemTime;

/// One event: its type, what emitted it (the webhook's name, say), and
/// its payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerInstance {
    /// Time-sortable, like execution ids.
    pub id: ExecutionId,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    pub payload: Value,
    #[serde(with = "humantime_serde_compat")]
    pub received_at: SystemTime,
    /// Every rule listening to it has its enforcement.
    #[serde(default)]
    pub processed: bool,
}

/// What one rule did with one trigger instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enforcement {
    pub instance: ExecutionId,
    pub rule: String,
    pub outcome: EnforcementOutcome,
    /// The execution it started (named before it is submitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    /// Why it started none, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(with = "humantime_serde_compat")]
    pub at: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnforcementOutcome {
    /// Every criterion held: its action was started.
    Started,
    /// A criterion did not hold.
    CriteriaFalse,
    /// The rule is disabled.
    Disabled,
    /// Its input could not be made from the payload, or the execution was
    /// refused (a grant beyond the server's, an input that does not fit).
    Failed,
}

impl EnforcementOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementOutcome::Started => "started",
            EnforcementOutcome::CriteriaFalse => "criteria-false",
            EnforcementOutcome::Disabled => "disabled",
            EnforcementOutcome::Failed => "failed",
        }
    }
}
