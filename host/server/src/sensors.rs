//! Sensors: components of the `sensor` world that installed packs declare
//! (`sensors:` in `pack.yaml`), polled by `serve` at their interval under
//! their grants (within the server's), each poll an execution recorded
//! (and replayable) like any other, started by `sensor PACK.NAME`. A poll
//! gets back the state the last successful one kept (read from its record
//! after a restart) and returns events of the pack's trigger types, which
//! go to the event bus as any emitted event does.

use crate::bus;
use crate::worker::App;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmflow_runtime::{Action, RunOptions};
use wasmflow_store::{ExecutionRecord, Lineage, ListFilter, StartedBy, Status};

/// A sensor ready to poll.
struct Sensor {
    /// `PACK.NAME`.
    name: String,
    pack: String,
    action: Action,
    interval: Duration,
    grants: wasmflow_store::Grants,
}

/// Load every installed pack's sensors, checked: their components load
/// and have a sensor's `run`, their grants are within the server's. The
/// first problem is the error, named.
fn load(app: &App, packs_dir: &Path) -> Result<Vec<Sensor>, String> {
    let mut out = Vec::new();
    for pack in wasmflow_registry::pack::installed(packs_dir) {
        let m = &pack.manifest;
        for (name, s) in &m.sensors {
            let full = format!("{}.{name}", m.name);
            let at = |e: String| format!("sensor {full}: {e}");
            let mut action = app
                .rt
                .load(&pack.dir.join(&s.component))
                .map_err(|e| at(e.to_string()))?;
            action.reference = format!("{full}@{}", m.version);
            action.check_input(&json!({"state": null})).map_err(|e| {
                at(format!(
                    "not a sensor (its run takes `state: option<string>`): {e}"
                ))
            })?;
            let interval = humantime::parse_duration(&s.interval).map_err(|e| at(e.to_string()))?;
            let spec: wasmflow_workflow::model::GrantSpec =
                serde_json::from_value(json!(s.grants)).map_err(|e| at(format!("grants: {e}")))?;
            let asked = wasmflow_workflow::grants::parse(&spec).map_err(at)?;
            let grants = wasmflow_workflow::grants::bound(asked, &app.grants).map_err(at)?;
            app.rt
                .keep_component(&action)
                .map_err(|e| at(e.to_string()))?;
            out.push(Sensor {
                name: full,
                pack: m.name.clone(),
                action,
                interval,
                grants,
            });
        }
    }
    Ok(out)
}

/// Load the installed packs' sensors and start polling them.
pub fn start(app: &Arc<App>, packs_dir: Option<&Path>) -> Result<usize, String> {
    let Some(dir) = packs_dir else { return Ok(0) };
    let sensors = load(app, dir)?;
    let n = sensors.len();
    for s in sensors {
        tokio::spawn(poll_forever(app.clone(), s));
    }
    Ok(n)
}

async fn poll_forever(app: Arc<App>, sensor: Sensor) {
    let mut state = last_state(&app, &sensor).await;
    let mut ticks = tokio::time::interval(sensor.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let options = RunOptions {
            grants: sensor.grants.clone(),
            limits: app.limits,
            lineage: Lineage {
                started_by: Some(StartedBy::Sensor(sensor.name.clone())),
                ..Lineage::default()
            },
            ..RunOptions::default()
        };
        let record = match app
            .rt
            .run(&sensor.action, json!({"state": state}), options)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(sensor = %sensor.name, "polling: {e}");
                continue;
            }
        };
        if record.status != Status::Succeeded {
            // Its record says why; the next poll tries again.
            tracing::warn!(sensor = %sensor.name, id = %record.id, "poll {}", record.status);
            continue;
        }
        let (events, kept) = polled(&record);
        state = kept;
        for (kind, payload) in events {
            emit(&app, &sensor, &kind, payload).await;
        }
    }
}

/// A successful poll's events (`(trigger, payload text)`) and the state
/// it kept.
fn polled(record: &ExecutionRecord) -> (Vec<(String, String)>, Option<String>) {
    let result = record.result.clone().unwrap_or(Value::Null);
    let events = result["events"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                    (text("trigger"), text("payload"))
                })
                .collect()
        })
        .unwrap_or_default();
    let state = result["state"].as_str().map(str::to_owned);
    (events, state)
}

/// What the last successful poll before this process kept.
async fn last_state(app: &Arc<App>, sensor: &Sensor) -> Option<String> {
    let store = app.rt.store().clone();
    let filter = ListFilter {
        status: Some(Status::Succeeded),
        limit: 1,
        action: Some(sensor.action.reference.clone()),
        ..ListFilter::default()
    };
    let listing = tokio::task::spawn_blocking(move || store.scan(&filter))
        .await
        .ok()?
        .ok()?;
    listing.records.first().and_then(|r| polled(r).1)
}

async fn emit(app: &Arc<App>, sensor: &Sensor, kind: &str, payload: String) {
    // A sensor names its pack's types by their own name or in full.
    let kind = if kind.contains('.') {
        kind.to_owned()
    } else {
        format!("{}.{kind}", sensor.pack)
    };
    let problem = |why: String| {
        tracing::warn!(sensor = %sensor.name, "dropped an event of `{kind}`: {why}");
    };
    let Some(t) = app.trigger_types.iter().find(|t| t.name == kind) else {
        return problem("no such trigger type".into());
    };
    if !kind.starts_with(&format!("{}.", sensor.pack)) {
        return problem("a sensor emits its own pack's trigger types".into());
    }
    let payload: Value = match serde_json::from_str(&payload) {
        Ok(v) => v,
        Err(e) => return problem(format!("the payload is not JSON: {e}")),
    };
    if let Err(e) = wasmflow_events::trigger::check_payload(t, &payload) {
        return problem(e);
    }
    let mut parameters = Map::new();
    parameters.insert("sensor".into(), json!(sensor.name));
    if let Err(e) = bus::emit(app, &kind, parameters, payload).await {
        tracing::error!(sensor = %sensor.name, "recording an event: {}", e.message);
    }
}
