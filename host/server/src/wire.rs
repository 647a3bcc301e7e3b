//! The API's request and response bodies, written once: the handlers
//! (`api`) take and give them, the client (`client`) sends and reads the
//! same types, and the OpenAPI document is derived from them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use wasmflow_workflow::model::GrantSpec;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// The OpenAPI schema of the API's `grants` object, which is
/// [`GrantSpec`]'s serde form (never made: requests deserialize straight
/// into `GrantSpec`; `the_grant_schema_matches_the_grant_spec` keeps the
/// two alike).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct GrantRequest {
    /// `HOST_DIR[::GUEST_DIR]`, read-only.
    read: Vec<String>,
    /// `HOST_DIR[::GUEST_DIR]`, read-write.
    write: Vec<String>,
    /// `NAME` or `NAME=VALUE`.
    env: Vec<String>,
    /// `HOST` or `HOST:PORT`.
    net: Vec<String>,
    /// Program names for `wasmflow:action/process`.
    exec: Vec<String>,
    /// Datastore key names or patterns (`system.vm.*`) the action may
    /// read (`wasmflow:action/keys`, and `((secret:NAME))` in its input).
    key: Vec<String>,
    /// `VAR=KEY`: a datastore key's value as an environment variable.
    secret_env: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// An action or workflow name from `GET /api/v1/actions`, or an
    /// `oci://` reference (pulled, and recorded pinned to its digest).
    pub action: String,
    /// The input object, keyed by parameter name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
    /// What the execution may touch; each entry must be within what the
    /// server allows. Actions default to nothing; workflows to the
    /// server's grants (their own `grants` narrow them).
    #[serde(default)]
    #[schema(value_type = Option<GrantRequest>)]
    pub grants: Option<GrantSpec>,
    /// `key=value` or `a.b=value` overrides of the input, typed by the
    /// action's WIT (like the CLI's `-p`).
    #[serde(default)]
    pub params: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: String,
    /// Where to follow it.
    pub url: String,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// pending, running, succeeded, failed, timed_out or canceled; several
    /// separated by commas (`failed,timed_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only executions of this action or workflow (its catalog name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Page size, 1-500 (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only executions older than this id: the `next_before` of the
    /// previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Include the executions that ran as workflow tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    /// Only executions created at or after this: an RFC 3339 time or an
    /// age (`1h`: an hour ago).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only executions created before this (same forms as `since`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecutionPage {
    #[schema(value_type = Vec<Object>)]
    pub executions: Vec<Value>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
    /// Records in this range that cannot be read (`ID: problem`), left
    /// out of `executions`; `wasmflow store check` names all damage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// Only names starting with this (listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Show a secret's value (a read-write token only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decrypt: Option<bool>,
}

/// `POST /api/v1/inquiries/{id}/respond`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// The answer, checked against the inquiry's JSON Schema.
    #[schema(value_type = Object)]
    pub response: Value,
}

/// `PUT /api/v1/keys/{name}`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetKey {
    pub value: String,
    /// Encrypt it at rest and mask it in every answer.
    #[serde(default)]
    pub secret: bool,
    /// It expires after this long (`30s`, `1h`, `7d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// With the task executions under it, recursively, as `children`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<bool>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReRun {
    /// Replace these top-level input fields.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Map<String, Value>>,
    /// `key=value` or `a.b=value` overrides, typed by the WIT (like `-p`).
    #[serde(default)]
    pub params: Vec<String>,
    /// Workflows only: reuse the recorded results of the tasks that do not
    /// follow this one.
    #[serde(default)]
    pub from: Option<String>,
    /// Grants added to the recorded ones (a re-run that fixes a missing
    /// grant), within this server's: 403 names the first beyond them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<GrantRequest>)]
    pub grants: Option<GrantSpec>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayResult {
    /// `reproduced: identical result`, `diverged at event N: …` or
    /// `different result: …`.
    pub verdict: String,
    /// The verdict as data.
    #[schema(value_type = Object)]
    pub detail: Value,
    /// Whether the replay reproduced the recording faithfully.
    pub passed: bool,
    /// The replay's own execution record (`replay_of` the original).
    #[schema(value_type = Object)]
    pub record: Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionSummary {
    pub name: String,
    pub kind: String,
    pub signature: String,
    pub docs: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub pending: usize,
    pub running: usize,
    pub draining: bool,
}
