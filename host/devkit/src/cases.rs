//! `wasmflow test`: an action's `tests/` against a fresh build.
//!
//! Two kinds of test live there. A case (`*.json`) gives an input and the
//! expected result or error. A replay bundle (`*.wfreplay`, from
//! `wasmflow execution export`) passes when the build succeeds against the
//! world the bundle recorded: a production failure, exported once, stays a
//! regression test of its fix.

use crate::{io, DevkitError};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmflow_runtime::{Recording, Runtime};
use wasmflow_store::{Grants, Limits, ReplayBundle, Status};

/// One `tests/*.json` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(default)]
    #[allow(dead_code)] // documentation for the reader of the file
    description: Option<String>,
    input: serde_json::Map<String, Value>,
    #[serde(default)]
    grants: Grants,
    #[serde(default)]
    limits: Option<Limits>,
    /// The result; `null` for an action that returns none.
    #[serde(default, deserialize_with = "given")]
    expect: Option<Value>,
    #[serde(default)]
    expect_error: Option<ExpectedError>,
}

/// A field that is present, even as `null` (which `Option` alone takes for
/// absent).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The fields of the action's error a case checks; those left out may be
/// anything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    code: Option<String>,
    message: Option<String>,
    retryable: Option<bool>,
}

enum Test {
    Case(Box<Case>),
    Bundle(Box<ReplayBundle>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseKind {
    Case,
    Bundle,
}

/// How one test went.
#[derive(Debug)]
pub struct CaseReport {
    /// The file's name without its extension.
    pub name: String,
    pub kind: CaseKind,
    pub passed: bool,
    /// Why it failed (or, for a bundle, the replay's verdict).
    pub detail: Option<String>,
    pub took: Duration,
}

#[derive(Debug, Default)]
pub struct TestReport {
    pub cases: Vec<CaseReport>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }
}

/// Every test file in `dir/tests`, sorted by name, each read and checked
/// before anything runs: a malformed file is an error naming its line.
fn load(dir: &Path) -> Result<Vec<(String, PathBuf, Test)>, DevkitError> {
    let tests = dir.join("tests");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&tests) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("json" | "wfreplay")
                )
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&tests)(e)),
    };
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let test = if path.extension().is_some_and(|e| e == "wfreplay") {
            let bundle = ReplayBundle::parse(&text).map_err(|e| DevkitError::BadBundle {
                path: path.clone(),
                detail: e.to_string(),
            })?;
            Test::Bundle(Box::new(bundle))
        } else {
            let case: Case = serde_json::from_str(&text).map_err(|e| DevkitError::BadCase {
                path: path.clone(),
                line: e.line(),
                column: e.column(),
                detail: e.to_string(),
            })?;
            if case.expect.is_some() == case.expect_error.is_some() {
                return Err(DevkitError::BadCase {
                    path: path.clone(),
                    line: 1,
                    column: 1,
                    detail: "a case needs exactly one of `expect` (the result) and `expect_error`"
                        .into(),
                });
            }
            Test::Case(Box::new(case))
        };
        out.push((name, path, test));
    }
    Ok(out)
}

/// Run every test in `dir/tests` against `component`. The runtime it gets
/// should have a store of its own (replays are recorded there).
pub async fn run_tests(
    rt: &Runtime,
    dir: &Path,
    component: &Path,
) -> Result<TestReport, DevkitError> {
    let tests = load(dir)?;
    let action = rt.load(component)?;
    let mut report = TestReport::default();
    for (name, _path, test) in tests {
        let started = Instant::now();
        let (kind, failure) = match test {
            Test::Case(case) => (CaseKind::Case, run_case(rt, &action, *case).await),
            Test::Bundle(bundle) => {
                let recording = Recording::from_bundle(*bundle);
                let replay = rt.replay(&recording, Some(&action)).await?;
                let verdict = replay.verdict.to_string();
                let failure = if replay.passed() {
                    None
                } else if replay.record.status != Status::Succeeded
                    && replay.verdict.is_reproduced()
                {
                    Some(format!(
                        "still fails against the recorded world: {}",
                        error_text(&replay.record.error)
                    ))
                } else {
                    Some(verdict)
                };
                (CaseKind::Bundle, failure)
            }
        };
        report.cases.push(CaseReport {
            name,
            kind,
            passed: failure.is_none(),
            detail: failure,
            took: started.elapsed(),
        });
    }
    Ok(report)
}

fn error_text(e: &Option<wasmflow_store::Failure>) -> String {
    match e {
        Some(f) => format!("{}: {}", f.code, f.message),
        None => "no error".into(),
    }
}

/// `None` when the case passed, else what differed.
async fn run_case(rt: &Runtime, action: &wasmflow_runtime::Action, case: Case) -> Option<String> {
    let input = Value::Object(case.input);
    let limits = case.limits.unwrap_or_default();
    let outcome = match rt.execute(action, &input, &case.grants, &limits).await {
        Ok(produced) => produced.outcome,
        Err(e) => return Some(format!("the input does not match the action's WIT: {e}")),
    };
    match (case.expect, case.expect_error) {
        (Some(expected), _) => {
            if outcome.status != Status::Succeeded {
                Some(format!(
                    "expected a result, the action failed: {}",
                    error_text(&outcome.error)
                ))
            } else if *outcome.result.as_ref().unwrap_or(&Value::Null) != expected {
                Some(format!(
                    "result differs:\n  expected: {expected}\n  got:      {}",
                    outcome.result.unwrap_or(Value::Null)
                ))
            } else {
                None
            }
        }
        (None, Some(want)) => {
            let Some(got) = outcome
                .error
                .filter(|_| outcome.status != Status::Succeeded)
            else {
                return Some(format!(
                    "expected an error, the action succeeded with {}",
                    outcome.result.unwrap_or(Value::Null)
                ));
            };
            let mut diffs = Vec::new();
            if want.code.as_ref().is_some_and(|c| *c != got.code) {
                diffs.push(format!(
                    "code: expected {:?}, got {:?}",
                    want.code.unwrap(),
                    got.code
                ));
            }
            if want.message.as_ref().is_some_and(|m| *m != got.message) {
                diffs.push(format!(
                    "message: expected {:?}, got {:?}",
                    want.message.unwrap(),
                    got.message
                ));
            }
            if want.retryable.is_some_and(|r| r != got.retryable) {
                diffs.push(format!(
                    "retryable: expected {}, got {}",
                    want.retryable.unwrap(),
                    got.retryable
                ));
            }
            (!diffs.is_empty()).then(|| format!("error differs: {}", diffs.join("; ")))
        }
        (None, None) => unreachable!("load requires expect or expect_error"),
    }
}
