//! The event bus in a server: each event (a webhook call, an execution's
//! end) is written as a trigger instance before any rule sees it; each
//! rule listening to it is enforced once, its enforcement written before
//! the execution it starts (whose id it names); the instance is marked
//! processed last. A restart after a crash at any point enforces what is
//! left ([`recover`]) and starts no execution twice: an enforcement found
//! is not made again, and its execution is started only if the store
//! does not have it.
//!
//! Timers ([`start_timers`]) fire the rules of the timer trigger types;
//! sensors (`sensors`) emit here as the API does. The rules decide
//! (`wasmflow_events`); starting is the API's `start`, as for any request.

use crate::api::{self, ApiError};
use crate::worker::App;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wasmflow_events::{rule::Decision, timer, trigger, Rule};
use wasmflow_store::{
    Enforcement, EnforcementOutcome, ExecutionId, ExecutionRecord, StartedBy, TriggerInstance,
};

/// Whether some rule listens to events of `kind` emitted with
/// `parameters`: nothing is written for an event no rule wants.
pub fn wanted(app: &App, kind: &str, parameters: &Map<String, Value>) -> bool {
    app.rules.iter().any(|r| r.listens_to(kind, parameters))
}

/// Record an event and enforce every rule listening to it; the instance
/// as recorded.
pub async fn emit(
    app: &Arc<App>,
    kind: &str,
    parameters: Map<String, Value>,
    payload: Value,
) -> Result<TriggerInstance, ApiError> {
    let instance = TriggerInstance {
        id: ExecutionId::new(),
        kind: kind.to_owned(),
        parameters,
        payload,
        received_at: wasmflow_store::now(),
        processed: false,
    };
    let store = app.rt.store().clone();
    let written = instance.clone();
    api::blocking(move || store.put_trigger(&written)).await?;
    crash_point("trigger-written");
    enforce(app, instance).await
}

/// Where `WASMFLOW_CRASH_AT` (read once) names this step, the process
/// kills itself with SIGKILL, as `kill -9` would: how the tests check
/// that a restart after a crash between any two steps starts each
/// execution once. Unset, as in every real deployment, it does nothing.
fn crash_point(step: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("WASMFLOW_CRASH_AT").ok());
    if at.as_deref() == Some(step) {
        // SAFETY: kill(2) on this very process; nothing here runs after.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Enforce every rule listening to `instance` that has not been yet, start
/// what an enforcement names and the store lacks, then mark it processed.
/// The new enforcements are written together, durable before any of their
/// executions is submitted: one disk flush an event, however many rules.
pub async fn enforce(
    app: &Arc<App>,
    mut instance: TriggerInstance,
) -> Result<TriggerInstance, ApiError> {
    let store = app.rt.store().clone();
    let id = instance.id;
    let done = {
        let store = store.clone();
        api::blocking(move || store.enforcements(Some(id), usize::MAX)).await?
    };
    let mut decided = Vec::new();
    let mut fresh = Vec::new();
    for rule in app
        .rules
        .iter()
        .filter(|r| r.listens_to(&instance.kind, &instance.parameters))
    {
        let verdict = rule.evaluate_as(
            &instance.payload,
            app.sched.expressions(),
            app.rule_enabled(rule),
        );
        let enforcement = match done.iter().find(|e| e.rule == rule.name) {
            Some(e) => e.clone(),
            None => {
                let e = enforcement_of(id, rule, &verdict);
                fresh.push(e.clone());
                e
            }
        };
        decided.push((rule, enforcement, verdict.decision));
    }
    if !fresh.is_empty() {
        let store = store.clone();
        api::blocking(move || store.put_enforcements(&fresh)).await?;
        crash_point("enforcement-written");
    }
    for (rule, enforcement, decision) in decided {
        let (EnforcementOutcome::Started, Some(execution), Decision::Run { input }) =
            (enforcement.outcome, enforcement.execution, decision)
        else {
            continue;
        };
        let store2 = store.clone();
        if api::blocking(move || store2.get(execution))
            .await?
            .is_some()
        {
            continue;
        }
        if let Err(e) = start(app, rule, &instance, execution, input).await {
            tracing::warn!(rule = %rule.name, "rule could not start {}: {}", rule.action, e.message);
            let failed = Enforcement {
                outcome: EnforcementOutcome::Failed,
                execution: None,
                message: Some(e.message),
                ..enforcement
            };
            let store = store.clone();
            api::blocking(move || store.put_enforcements(&[failed])).await?;
        }
    }
    instance.processed = true;
    let written = instance.clone();
    api::blocking(move || store.put_trigger(&written)).await?;
    Ok(instance)
}

/// What `rule` does with the instance `id`, as its verdict says; one that
/// starts an execution names its id now.
fn enforcement_of(
    id: ExecutionId,
    rule: &Rule,
    verdict: &wasmflow_events::Evaluation,
) -> Enforcement {
    let (outcome, execution, message) = match &verdict.decision {
        Decision::Run { .. } => (EnforcementOutcome::Started, Some(ExecutionId::new()), None),
        Decision::CriteriaFalse => {
            let failed = verdict
                .checks
                .iter()
                .find(|c| !c.held)
                .map(|c| format!("{} {} {} did not hold", c.path, c.operator, c.pattern));
            (EnforcementOutcome::CriteriaFalse, None, failed)
        }
        Decision::Disabled => (EnforcementOutcome::Disabled, None, None),
        Decision::InputError(m) => (EnforcementOutcome::Failed, None, Some(m.clone())),
    };
    Enforcement {
        instance: id,
        rule: rule.name.clone(),
        outcome,
        execution,
        message,
        at: wasmflow_store::now(),
    }
}

async fn start(
    app: &Arc<App>,
    rule: &Rule,
    instance: &TriggerInstance,
    id: ExecutionId,
    input: Value,
) -> Result<ExecutionRecord, ApiError> {
    let by = StartedBy::Rule {
        rule: rule.name.clone(),
        trigger: instance.id,
    };
    api::start_as(
        app,
        &rule.action,
        input,
        &[],
        rule.grants.clone(),
        by,
        Some(id),
    )
    .await
}

/// Enforce what a crash left undone: every instance not yet processed,
/// oldest first. On a store other servers share, only those older than
/// `abandoned` (`serve --abandoned-after`: a younger one may be another
/// live server's, in hand), each claimed first so that servers sweeping
/// at once enforce it once ([`SharedQueue::claim_trigger`]).
///
/// [`SharedQueue::claim_trigger`]: wasmflow_store::SharedQueue::claim_trigger
pub async fn recover(app: &Arc<App>, abandoned: Duration) -> Result<usize, ApiError> {
    let store = app.rt.store().clone();
    let open = {
        let store = store.clone();
        api::blocking(move || store.triggers(true, usize::MAX)).await?
    };
    let Some(leasing) = app.queue.leasing() else {
        let n = open.len();
        for instance in open {
            enforce(app, instance).await?;
        }
        return Ok(n);
    };
    let cutoff = SystemTime::now() - abandoned;
    let mut n = 0;
    for instance in open.into_iter().filter(|t| t.received_at < cutoff) {
        let (store, id, me) = (store.clone(), instance.id, leasing.name.clone());
        let won = api::blocking(move || {
            let shared = store.shared_queue().expect("leasing means a shared store");
            shared.claim_trigger(id, &me, abandoned)
        })
        .await?;
        if won {
            tracing::warn!(instance = %id, "enforcing the rules on an event another server left");
            enforce(app, instance).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// On a shared store, [`recover`] every half `abandoned` for as long as
/// the server runs: a server that dies mid-event has its event enforced
/// by the others without waiting for any of them to restart.
pub fn sweep_abandoned(app: &Arc<App>, abandoned: Duration) {
    if app.queue.leasing().is_none() {
        return;
    }
    let app = app.clone();
    let every = (abandoned / 2).max(Duration::from_millis(250));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            match recover(&app, abandoned).await {
                Ok(0) => {}
                Ok(n) => tracing::info!("enforced the rules on {n} event(s) another server left"),
                Err(e) => tracing::error!("sweeping for events another server left: {}", e.message),
            }
        }
    });
}

/// An execution the server ran ended (its record durable): the
/// `wasmflow.execution` event, for the rules listening to it.
pub fn execution_ended(app: &Arc<App>, record: &ExecutionRecord, name: &str) {
    let mut parameters = Map::new();
    parameters.insert("action".into(), json!(name));
    parameters.insert("status".into(), json!(record.status.as_str()));
    // A rule names the action, the status, both or neither.
    if !wanted(app, trigger::EXECUTION, &parameters) {
        return;
    }
    let payload = json!({
        "id": record.id.to_string(),
        "action": name,
        "status": record.status.as_str(),
        "result": record.result,
        "error": record.error,
        "parent": record.parent.map(|p| p.to_string()),
    });
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(e) = emit(&app, trigger::EXECUTION, parameters, payload).await {
            tracing::error!(
                "recording the end of an execution for the rules: {}",
                e.message
            );
        }
    });
}

/// A workflow the server ran paused on questions: each open inquiry of it
/// is a `wasmflow.inquiry` event, once (the instance has the inquiry's id).
pub fn inquiries_opened(app: &Arc<App>, record: &ExecutionRecord) {
    let asks = record.kind == wasmflow_store::Kind::Workflow
        && record.status == wasmflow_store::Status::Paused
        && app.rules.iter().any(|r| r.trigger == trigger::INQUIRY);
    if !asks {
        return;
    }
    let (app, workflow) = (app.clone(), record.id);
    tokio::spawn(async move {
        let store = app.rt.store().clone();
        let children = match api::blocking(move || store.children(workflow)).await {
            Ok(c) => c,
            Err(e) => return tracing::error!("reading the inquiries of {workflow}: {}", e.message),
        };
        let open = children.into_iter().filter(|c| {
            c.action == wasmflow_workflow::inquiry::ASK
                && c.status == wasmflow_store::Status::Pending
        });
        for q in open {
            let payload = wasmflow_workflow::inquiry::view(&q);
            let mut parameters = Map::new();
            if let Some(route) = payload["route"].as_str() {
                parameters.insert("route".into(), json!(route));
            }
            let instance = TriggerInstance {
                id: q.id,
                kind: trigger::INQUIRY.into(),
                parameters,
                payload,
                received_at: wasmflow_store::now(),
                processed: false,
            };
            let (store, written) = (app.rt.store().clone(), instance.clone());
            let kept = api::blocking(move || store.put_trigger_new(&written)).await;
            let done = match kept {
                Ok(true) => enforce(&app, instance).await.map(drop),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::error!("recording inquiry {} for the rules: {}", q.id, e.message);
            }
        }
    });
}

/// The rules of `serve --rules DIR` and of the installed packs' `rules/`
/// directories, checked against the catalog and the trigger types (two
/// rules may not share a name).
pub fn load(
    dir: Option<&std::path::Path>,
    packs_dir: Option<&std::path::Path>,
    catalog: &crate::catalog::Catalog,
    types: &[wasmflow_events::TriggerType],
) -> Result<Vec<Rule>, String> {
    let known = |name: &str| {
        catalog
            .get(name)
            .map(|e| Some(e.description.input_schema.clone()))
    };
    let packs = packs_dir
        .map(wasmflow_registry::pack::installed)
        .unwrap_or_default();
    let mut files = match dir {
        Some(d) => wasmflow_events::rule::files_in(d).map_err(|p| p.to_string())?,
        None => Vec::new(),
    };
    for pack in &packs {
        files.extend(pack.rule_files().map_err(|e| e.to_string())?);
    }
    wasmflow_events::rule::load_files(&files, types, Some(&known)).map_err(|p| p.to_string())
}

/// The operator's enable/disable of each rule, as kept in the datastore.
pub fn load_rule_states(app: &App) {
    let Some(keys) = app.rt.keys() else { return };
    let mut states = app.rule_states.write().unwrap_or_else(|e| e.into_inner());
    for rule in &app.rules {
        match keys.setting(&format!("rules.{}.enabled", rule.name)) {
            Ok(Some(v)) => {
                states.insert(rule.name.clone(), v == "true");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(rule = %rule.name, "reading whether it is enabled: {e}"),
        }
    }
}

/// Enable or disable the rule `name`, for every server on this store
/// (kept in the datastore) from their next start, and for this one now.
pub fn set_rule_enabled(app: &App, name: &str, enabled: bool) -> Result<(), ApiError> {
    if !app.rules.iter().any(|r| r.name == name) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no rule `{name}` (GET /api/v1/rules lists them)"),
        ));
    }
    if let Some(keys) = app.rt.keys() {
        keys.set_setting(&format!("rules.{name}.enabled"), &enabled.to_string())?;
    }
    app.rule_states
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_owned(), enabled);
    Ok(())
}

/// Start the timer of every rule with a timer trigger: firings
/// missed while no server ran first (as the rule's `catchup` says), then
/// each firing as it comes. A firing is kept under an id of its rule and
/// scheduled time, so it is enforced once however many servers reach it.
pub fn start_timers(app: &Arc<App>) {
    // Disabled ones too: a firing of a disabled rule is recorded as such,
    // and `rule enable` takes effect without a restart.
    for rule in &app.rules {
        let Some(Ok((schedule, catchup))) = timer::of(&rule.trigger, &rule.parameters) else {
            continue;
        };
        tokio::spawn(run_timer(app.clone(), rule.clone(), schedule, catchup));
    }
}

async fn run_timer(app: Arc<App>, rule: Rule, schedule: timer::Schedule, catchup: timer::Catchup) {
    let last = match last_firing(&app, &rule).await {
        Ok(last) => last,
        Err(e) => {
            tracing::error!(rule = %rule.name, "reading the timer's last firing: {}", e.message);
            return;
        }
    };
    let now = SystemTime::now();
    for missed in timer::missed(&schedule, catchup, last, now) {
        fire(&app, &rule, missed, true).await;
    }
    let mut after = last.map_or(now, |l| l.max(now));
    while let Some(next) = schedule.next_after(after) {
        let wait = next.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        if app.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        fire(&app, &rule, next, false).await;
        after = next;
    }
}

/// The scheduled time of `rule`'s latest recorded firing.
async fn last_firing(app: &Arc<App>, rule: &Rule) -> Result<Option<SystemTime>, ApiError> {
    let store = app.rt.store().clone();
    let recent = api::blocking(move || store.triggers(false, 10_000)).await?;
    Ok(recent
        .iter()
        .find(|t| t.parameters.get("rule").and_then(Value::as_str) == Some(rule.name.as_str()))
        .and_then(|t| t.payload.get("scheduled_at")?.as_str().map(str::to_owned))
        .and_then(|s| humantime::parse_rfc3339_weak(&s).ok()))
}

/// Fire `rule`'s timer for `scheduled`; `missed`: a firing made up after
/// the server was down (its payload says so).
async fn fire(app: &Arc<App>, rule: &Rule, scheduled: SystemTime, missed: bool) {
    let id = ExecutionId::from_key(&timer::firing_id(rule, scheduled)).expect("16 bytes");
    let mut parameters = rule.parameters.clone();
    parameters.insert("rule".into(), json!(rule.name));
    let stamp = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let instance = TriggerInstance {
        id,
        kind: rule.trigger.clone(),
        parameters,
        payload: json!({
            "scheduled_at": stamp(scheduled),
            "fired_at": stamp(SystemTime::now()),
            "missed": missed,
        }),
        received_at: wasmflow_store::now(),
        processed: false,
    };
    let store = app.rt.store().clone();
    let written = instance.clone();
    let fired = async {
        if api::blocking(move || store.put_trigger_new(&written)).await? {
            crash_point("trigger-written");
            enforce(app, instance).await?;
        }
        Ok::<_, ApiError>(())
    };
    if let Err(e) = fired.await {
        tracing::error!(rule = %rule.name, "firing its timer: {}", e.message);
    }
}
