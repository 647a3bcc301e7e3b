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
    if r.status == Status::Paused {
        eprintln!(
            "execution {} paused (asked to, or waiting for an answer: `wasmflow inquiry list`); \
             `wasmflow execution resume {}` goes on with it",
            r.id, r.id
        );
        return;
    }
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
pub fn listing(records: &[ExecutionRecord], json: bool, wide: bool) {
    if json {
        self::json(records);
    } else {
        table(records, wide);
    }
}

/// Terminals narrower than this get no error column (unless `--wide`).
const ERROR_COLUMN_FROM: u16 = 120;

/// The executions as a table that fits the terminal: ids are never
/// wrapped or cut (they are what a user copies), other cells are cut to
/// one line. `--wide` shows every column, uncut.
fn table(records: &[ExecutionRecord], wide: bool) {
    use comfy_table::{ColumnConstraint, Row};
    if records.is_empty() {
        eprintln!("no executions");
        return;
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_truncation_indicator("…");
    // `COLUMNS` first (as `ls` does), else the terminal's own width; a
    // pipe gets whole cells.
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w > 0)
        .or_else(|| t.width());
    match width {
        Some(w) if !wide => {
            t.set_width(w)
                .set_content_arrangement(ContentArrangement::Dynamic);
        }
        _ => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let with_error = wide || width.is_none_or(|w| w >= ERROR_COLUMN_FROM);
    let mut header = vec!["ID", "STATUS", "ACTION", "STARTED", "ELAPSED"];
    if wide {
        header.push("WORKER");
    }
    if with_error {
        header.push("ERROR");
    }
    t.set_header(header);
    let colour = colour_on_stdout();
    let now = SystemTime::now();
    for r in records {
        let started = r.started_at.unwrap_or(r.created_at);
        let mut row = vec![
            Cell::new(r.id),
            status_cell(r.status, colour),
            Cell::new(&r.action),
            Cell::new(if wide {
                timestamp(started)
            } else {
                ago(now, started)
            }),
            Cell::new(r.elapsed().map(elapsed).unwrap_or_else(|| "-".into())),
        ];
        if wide {
            row.push(Cell::new(r.worker.as_deref().unwrap_or("-")));
        }
        if with_error {
            row.push(Cell::new(
                r.error
                    .as_ref()
                    .map(|e| format!("[{}] {}", e.code, e.message))
                    .unwrap_or_default(),
            ));
        }
        let mut row = Row::from(row);
        if !wide {
            row.max_height(1);
        }
        t.add_row(row);
    }
    if let Some(id) = t.column_mut(0) {
        id.set_constraint(ColumnConstraint::ContentWidth);
    }
    println!("{t}");
}

/// Colours on stdout: only on a terminal, and never under `NO_COLOR`.
fn colour_on_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && colour_allowed()
}

/// Whether the user allows colour: not when `NO_COLOR` is set and not
/// empty (no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn status_cell(status: Status, colour: bool) -> Cell {
    use comfy_table::Color;
    let cell = Cell::new(status);
    if !colour {
        return cell;
    }
    match status {
        Status::Succeeded => cell.fg(Color::Green),
        Status::Failed | Status::TimedOut => cell.fg(Color::Red),
        Status::Running | Status::Pending => cell.fg(Color::Yellow),
        Status::Canceled => cell.fg(Color::DarkGrey),
        Status::Paused => cell.fg(Color::Cyan),
    }
}

/// How long before `now` `t` was, in the largest whole unit: `42s ago`,
/// `5m ago`, `3h ago`, `12d ago`.
fn ago(now: SystemTime, t: SystemTime) -> String {
    let s = now.duration_since(t).unwrap_or_default().as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3_600 => format!("{}m ago", s / 60),
        3_600..86_400 => format!("{}h ago", s / 3_600),
        _ => format!("{}d ago", s / 86_400),
    }
}

pub fn record(r: &ExecutionRecord, detail: bool) {
    let field = |k: &str, v: &dyn std::fmt::Display| println!("{k:<10} {v}");
    field("id", &r.id);
    field("status", &r.status);
    field("action", &r.action);
    if let Some(source) = r.source.as_ref().filter(|s| **s != r.action) {
        field("source", source);
    }
    if let Some(by) = &r.started_by {
        field("by", by);
    }
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
    eprintln!("{}", log_text(None, l));
}

/// A log line as text, after the task that wrote it, if any.
pub fn log_text(task: Option<&str>, l: &wasmflow_store::LogLine) -> String {
    let progress = l
        .progress
        .map(|p| format!("[{}/{}] ", p.done, p.total))
        .unwrap_or_default();
    let task = task.map(|t| format!("[{t}] ")).unwrap_or_default();
    format!("{:>5} {task}{progress}{}", l.level.as_str(), l.message)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_says_the_largest_whole_unit() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        let at = |secs: u64| ago(now, now - Duration::from_secs(secs));
        assert_eq!(at(0), "0s ago");
        assert_eq!(at(59), "59s ago");
        assert_eq!(at(60), "1m ago");
        assert_eq!(at(3_599), "59m ago");
        assert_eq!(at(7_200), "2h ago");
        assert_eq!(at(86_400 * 3 + 5), "3d ago");
        // A clock that went back: not a negative age.
        assert_eq!(ago(now, now + Duration::from_secs(5)), "0s ago");
    }
}
