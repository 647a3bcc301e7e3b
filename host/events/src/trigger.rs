//! Trigger types: what can happen, with the parameters a rule gives to
//! pick the events it wants and the payload each event carries (JSON
//! Schema), which a rule's criteria and input templates read as
//! `trigger.…`.

use serde::Serialize;
use serde_json::{json, Value};

/// One kind of event.
#[derive(Clone, Debug, Serialize)]
pub struct TriggerType {
    pub name: String,
    pub description: String,
    /// What a rule's `trigger.parameters` may hold.
    pub parameters: Value,
    /// What an event of this type carries.
    pub payload: Value,
}

/// The webhook trigger: a `POST /api/v1/webhooks/{name}`.
pub const WEBHOOK: &str = "wasmflow.webhook";
/// An execution ended.
pub const EXECUTION: &str = "wasmflow.execution";
pub const INTERVAL: &str = "wasmflow.interval";
pub const CRON: &str = "wasmflow.cron";
pub const DATE: &str = "wasmflow.date";
/// A workflow asks a person (`core.ask`).
pub const INQUIRY: &str = "wasmflow.inquiry";

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// What every timer event carries.
fn timer_payload() -> Value {
    object(
        json!({
            "scheduled_at": {"type": "string", "format": "date-time", "description": "When the firing was due"},
            "fired_at": {"type": "string", "format": "date-time", "description": "When it fired"},
            "missed": {"type": "boolean", "description": "Made up after no server ran at its time (catchup)"},
        }),
        &["scheduled_at", "fired_at"],
    )
}

fn catchup() -> Value {
    json!({"enum": ["skip", "once", "all"], "description": "Firings missed while no server ran: none (default), the last one, or each"})
}

/// The trigger types wasmflow has of its own.
pub fn built_in() -> Vec<TriggerType> {
    vec![
        TriggerType {
            name: WEBHOOK.into(),
            description: "A webhook was called (POST /api/v1/webhooks/{name})".into(),
            parameters: object(
                json!({"name": {"type": "string", "description": "The webhook's name"}}),
                &["name"],
            ),
            payload: object(
                json!({
                    "name": {"type": "string"},
                    "body": {"description": "The request's JSON body"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                }),
                &["name", "body"],
            ),
        },
        TriggerType {
            name: EXECUTION.into(),
            description: "An execution ended (st2's core.st2.generic.actiontrigger)".into(),
            parameters: object(
                json!({
                    "action": {"type": "string", "description": "Only executions of this action or workflow"},
                    "status": {"type": "string", "description": "Only executions that ended so"},
                }),
                &[],
            ),
            payload: object(
                json!({
                    "id": {"type": "string"},
                    "action": {"type": "string"},
                    "status": {"type": "string"},
                    "result": {"description": "What it returned, if it succeeded"},
                    "error": {"description": "How it failed: code, message, retryable, details"},
                    "parent": {"type": ["string", "null"]},
                }),
                &["id", "action", "status"],
            ),
        },
        TriggerType {
            name: INQUIRY.into(),
            description: "A workflow asks a person: a core.ask task's inquiry opened (st2's core.st2.generic.inquiry)".into(),
            parameters: object(
                json!({"route": {"type": "string", "description": "Only inquiries with this route"}}),
                &[],
            ),
            payload: object(
                json!({
                    "id": {"type": "string", "description": "The inquiry (answer it with this id)"},
                    "workflow": {"type": "string"},
                    "task": {"type": "string"},
                    "status": {"type": "string"},
                    "schema": {"description": "The answer's JSON Schema"},
                    "route": {"type": ["string", "null"]},
                    "users": {"description": "Who may answer"},
                    "expires_at": {"type": ["string", "null"]},
                    "response": {},
                }),
                &["id", "workflow", "schema"],
            ),
        },
        TriggerType {
            name: INTERVAL.into(),
            description: "A timer firing at a fixed interval".into(),
            parameters: object(
                json!({"every": {"type": "string", "description": "How often: 30s, 5m, 1h"}, "catchup": catchup()}),
                &["every"],
            ),
            payload: timer_payload(),
        },
        TriggerType {
            name: CRON.into(),
            description: "A timer firing on a cron schedule".into(),
            parameters: object(
                json!({
                    "expression": {"type": "string", "description": "Five or six fields (with seconds first)"},
                    "timezone": {"type": "string", "description": "An IANA zone; UTC by default"},
                    "catchup": catchup(),
                }),
                &["expression"],
            ),
            payload: timer_payload(),
        },
        TriggerType {
            name: DATE.into(),
            description: "A timer firing once, at a time".into(),
            parameters: object(
                json!({"at": {"type": "string", "format": "date-time"}, "catchup": catchup()}),
                &["at"],
            ),
            payload: timer_payload(),
        },
    ]
}

/// The trigger types of this server: the built-in ones, and those the
/// packs installed in `packs_dir` declare (`PACK.NAME`).
pub fn all(packs_dir: Option<&std::path::Path>) -> Vec<TriggerType> {
    let mut types = built_in();
    for pack in packs_dir
        .map(wasmflow_registry::pack::installed)
        .unwrap_or_default()
    {
        types.extend(of_pack(&pack.manifest));
    }
    types
}

/// The trigger types `pack` declares, named `PACK.NAME`.
pub fn of_pack(pack: &wasmflow_registry::pack::PackManifest) -> Vec<TriggerType> {
    pack.triggers
        .iter()
        .map(|(name, t)| TriggerType {
            name: format!("{}.{name}", pack.name),
            description: t.description.clone().unwrap_or_default(),
            parameters: object(json!({}), &[]),
            payload: t.payload.clone(),
        })
        .collect()
}

/// Whether events of `kind` are emitted by others (`POST
/// /api/v1/triggers/{type}`), not by wasmflow itself.
pub fn is_custom(kind: &str) -> bool {
    !kind.starts_with("wasmflow.")
}

/// Check an emitted payload against its type's schema; the problems, each
/// with its JSON path.
pub fn check_payload(t: &TriggerType, payload: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(&t.payload).map_err(|e| {
        format!(
            "the payload schema of `{}` is not a JSON Schema: {e}",
            t.name
        )
    })?;
    let problems: Vec<String> = validator
        .iter_errors(payload)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {e}", if at.is_empty() { "/".into() } else { at })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Whether `path` (below `trigger.`, e.g. `body.host`) can be in a payload
/// of `schema`: each word must be a property of a closed object schema;
/// below an open one (`body`: any JSON) anything can be.
pub fn has_path(schema: &Value, path: &str) -> bool {
    let mut at = schema;
    for word in path.split('.').filter(|w| !w.is_empty()) {
        let closed = at.get("additionalProperties") == Some(&Value::Bool(false));
        match at.get("properties").and_then(|p| p.get(word)) {
            Some(next) => at = next,
            None if closed => return false,
            None => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_paths_are_checked_where_the_schema_is_closed() {
        let webhook = built_in().into_iter().find(|t| t.name == WEBHOOK).unwrap();
        assert!(has_path(&webhook.payload, "body.anything.at.all"));
        assert!(has_path(&webhook.payload, "name"));
        assert!(!has_path(&webhook.payload, "bodyy"));
        assert!(has_path(&webhook.payload, ""));
    }
}
