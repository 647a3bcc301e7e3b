//! Turning records into text: JSON for scripts, tables and summaries for people.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, ContentArrangement, Table};
use serde::Serialize;
use std::time::{Duration, SystemTime};
use wasmflow_store::{ExecutionRecord, Status};

pub fn json<T: Serialize + ?Sized>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("values serialize")
    );
}

/// What a run prints: the result (or with `json` the whole record) on
/// stdout, the summary on stderr. Returns whether it succeeded.
pub fn outcome(r: &ExecutionRecord, json: bool) -> bool {
    if json {
        self::json(r);
    } else if let Some(result) = &r.result {
        self::json(result);
    }
    summary(r);
    r.status == Status::Succeeded
}

/// One line on stderr after a run: what happened, and the id to look it up.
pub fn summary(r: &ExecutionRecord) {
    let took = r.elapsed().map(elapsed).unwrap_or_default();
    match &r.error {
        None => eprintln!("execution {} {} in {took}", r.id, r.status),
        Some(e) => eprintln!(
            "execution {} {} in {took}: [{}] {}",
            r.id, r.status, e.code, e.message
        ),
    }
}

/// `execution list`: JSON for scripts, a table for people.
pub fn listing(records: &[ExecutionRecord], json: bool) {
    if json {
        self::json(records);
    } else {
        table(records);
    }
}

pub fn table(records: &[ExecutionRecord]) {
    if records.is_empty() {
        eprintln!("no executions");
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["ID", "STATUS", "ACTION", "STARTED", "ELAPSED"]);
    for r in records {
        t.add_row([
            Cell::new(r.id),
            Cell::new(r.status),
            Cell::new(&r.action),
            Cell::new(timestamp(r.started_at.unwrap_or(r.created_at))),
            Cell::new(r.elapsed().map(elapsed).unwrap_or_else(|| "-".into())),
        ]);
    }
    println!("{t}");
}

pub fn record(r: &ExecutionRecord, detail: bool) {
    let field = |k: &str, v: &dyn std::fmt::Display| println!("{k:<10} {v}");
    field("id", &r.id);
    field("status", &r.status);
    field("action", &r.action);
    if let Some(p) = r.parent {
        field("parent", &p);
    }
    if let Some(p) = r.rerun_of {
        field("rerun of", &p);
    }
    if let Some(p) = r.replay_of {
        field("replay of", &p);
    }
    field("started", &timestamp(r.started_at.unwrap_or(r.created_at)));
    if let Some(d) = r.elapsed() {
        field("elapsed", &elapsed(d));
    }
    println!("input");
    indent(&serde_json::to_string_pretty(&r.input).unwrap_or_default());
    if let Some(res) = &r.result {
        println!("result");
        indent(&serde_json::to_string_pretty(res).unwrap_or_default());
    }
    if let Some(e) = &r.error {
        println!(
            "error      [{}] {}{}",
            e.code,
            e.message,
            if e.retryable { " (retryable)" } else { "" }
        );
        if let Some(d) = e.details.as_ref().filter(|_| detail) {
            indent(&serde_json::to_string_pretty(d).unwrap_or_default());
        }
    }
    if r.status == Status::Running {
        println!("(still running, or the host stopped before recording an outcome)");
    }
    if !detail {
        if !r.logs.is_empty() {
            println!("logs       {} lines (--detail shows them)", r.logs.len());
        }
        return;
    }
    field("digest", &r.component_digest);
    println!("grants");
    if r.grants.is_empty() {
        indent("none (deny by default)");
    } else {
        indent(&serde_json::to_string_pretty(&r.grants).unwrap_or_default());
    }
    println!("limits");
    indent(&format!(
        "memory {}  timeout {}  output {}  log {}",
        bytes(r.limits.memory_bytes),
        humantime::format_duration(Duration::from_millis(r.limits.timeout_ms)),
        bytes(r.limits.output_bytes),
        bytes(r.limits.log_bytes)
    ));
    println!("timings");
    indent(&format!("created  {}", timestamp(r.created_at)));
    if let Some(t) = r.started_at {
        indent(&format!("started  {}", timestamp(t)));
    }
    if let Some(t) = r.ended_at {
        indent(&format!("ended    {}", timestamp(t)));
    }
    println!("logs");
    if r.logs.is_empty() {
        indent("(none)");
    }
    for l in &r.logs {
        let progress = l
            .progress
            .map(|p| format!(" [{}/{}]", p.done, p.total))
            .unwrap_or_default();
        indent(&format!(
            "+{:>6}ms {:<5}{progress} {}",
            l.at_ms,
            l.level.as_str(),
            l.message
        ));
    }
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if !text.is_empty() {
            println!("{name}");
            indent(text.trim_end());
        }
    }
}

/// One log line as the action writes it, on stderr.
pub fn log_line(l: &wasmflow_store::LogLine) {
    let progress = l
        .progress
        .map(|p| format!("[{}/{}] ", p.done, p.total))
        .unwrap_or_default();
    eprintln!("{:>5} {progress}{}", l.level.as_str(), l.message);
}

/// What the execution was answered, for replay: counts by kind.
pub fn events(events: &[wasmflow_store::Event]) {
    println!("recorded");
    if events.is_empty() {
        indent("nothing (replay has nothing to answer from)");
        return;
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for e in events {
        let kind = serde_json::to_value(e)
            .ok()
            .and_then(|v| v["kind"].as_str().map(str::to_owned))
            .unwrap_or_default();
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    indent(&format!("{} events: {}", events.len(), parts.join(", ")));
}

fn indent(text: &str) {
    for line in text.lines() {
        println!("  {line}");
    }
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn elapsed(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(120) {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}
