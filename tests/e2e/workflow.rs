//! Workflows end to end: the language features with a real action (the
//! `step` fixture, Python built with componentize-py), validation errors
//! with positions, crash and resume, re-run --from, cancel. What records
//! runs runs on both stores (`name::sled`, `name::postgres`).

use crate::{s, Home, Run, StoreKind};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A workflow file in `dir`; `STEP` stands for the step component's path.
pub fn workflow(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let step = crate::support::built("tests/fixtures/step");
    let path = dir.join(name);
    std::fs::write(&path, yaml.replace("STEP", s(&step))).unwrap();
    path
}

/// How many times the step called `name` ran (its marker files).
pub fn runs(marks: &Path, name: &str) -> usize {
    std::fs::read_dir(marks)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            let n = n.to_string_lossy();
            n.rsplit_once('.').is_some_and(|(base, _)| base == name)
        })
        .count()
}

pub struct Bench {
    pub home: Home,
    pub dir: tempfile::TempDir,
    pub marks: PathBuf,
}

impl Bench {
    pub fn new() -> Self {
        Self::on(StoreKind::Sled)
    }

    /// A bench whose store is of `kind`.
    pub fn on(kind: StoreKind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let marks = dir.path().join("marks");
        std::fs::create_dir(&marks).unwrap();
        Self {
            home: Home::with_store(kind),
            dir,
            marks,
        }
    }

    pub fn file(&self, name: &str, yaml: &str) -> PathBuf {
        workflow(self.dir.path(), name, yaml)
    }

    /// `wasmflow run FILE -p dir=MARKS --allow-write MARKS --json ARGS...`
    pub fn run(&self, file: &Path, args: &[&str]) -> Run {
        let dir = format!("dir={}", s(&self.marks));
        let mut all = vec![
            "run",
            s(file),
            "-p",
            &dir,
            "--allow-write",
            s(&self.marks),
            "--json",
        ];
        all.extend_from_slice(args);
        self.home.run(&all)
    }

    pub fn runs(&self, name: &str) -> usize {
        runs(&self.marks, name)
    }

    pub fn tree(&self, id: &str) -> Value {
        self.home.tree(id)
    }
}

/// Child records of a tree, by task name (with-items children `task[i]`).
pub fn children(tree: &Value) -> Vec<&Value> {
    tree["children"].as_array().unwrap().iter().collect()
}

pub(crate) const CHAIN: &str = r#"
version: 1
name: chain
input:
  - name: dir
    type: string
  - name: start
    type: s64
    default: 1
grants:
  write: ["{{ input.dir }}"]
tasks:
  a:
    action: STEP
    input:
      req: { name: a, dir: "{{ input.dir }}", value: "{{ input.start }}" }
    next:
      - when: "{{ succeeded() }}"
        publish: { a: "{{ result.value }}" }
        do: [b, c]
  b:
    action: STEP
    input:
      req: { name: b, dir: "{{ input.dir }}", value: "{{ ctx.a }}" }
    next:
      - when: "{{ succeeded() }}"
        publish: [{ b: "{{ result.value }}" }]
        do: d
  c:
    action: STEP
    input:
      req: { name: c, dir: "{{ input.dir }}", value: "{{ ctx.a * 100 }}" }
    next:
      - when: "{{ succeeded() }}"
        publish: { c: "{{ result.value }}" }
        do: d
      - when: "{{ result.value > 1000 }}"
        publish: { big: true }
  d:
    join: all
    action: STEP
    input:
      req: { name: d, dir: "{{ input.dir }}", value: "{{ ctx.b + ctx.c }}" }
    next:
      - when: "{{ succeeded() }}"
        publish: { d: "{{ result.value }}" }
output:
  a: "{{ ctx.a }}"
  d: "{{ ctx.d }}"
  big: "{{ ctx.big | default(false) }}"
  summary: "a={{ ctx.a }} d={{ ctx.d }}"
"#;

// What a workflow does holds whichever store records it.
crate::on_both_stores!(
    transitions_publish_and_parallel_branches_join_into_the_output,
    with_items_fans_out_within_its_concurrency,
    retry_waits_with_backoff_and_succeeds,
    a_handled_failure_routes_on_and_an_unhandled_one_fails_naming_the_task,
    join_on_a_number_starts_after_the_first_arrivals,
    a_nested_workflow_runs_as_a_child_and_shows_in_the_tree,
    bad_workflow_input_is_a_usage_error_naming_the_field,
    rerun_from_a_task_reuses_the_results_before_it
);

fn transitions_publish_and_parallel_branches_join_into_the_output(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file("chain.yaml", CHAIN);
    let run = b.run(&wf, &["-p", "start=10"]);
    let rec = run.ok().json();
    // a: 11; b: 12; c: 1101; d: 12 + 1101 + 1.
    assert_eq!(
        rec["result"],
        json!({"a": 11, "d": 1114, "big": true, "summary": "a=11 d=1114"})
    );
    assert_eq!(rec["kind"], "workflow");
    for t in ["a", "b", "c", "d"] {
        assert_eq!(b.runs(t), 1, "task {t} ran once");
    }
    // b and c ran side by side: each started before the other ended.
    let tree = b.tree(rec["id"].as_str().unwrap());
    let kids = children(&tree);
    let task = |n: &str| *kids.iter().find(|c| c["task"] == n).unwrap();
    let (tb, tc) = (task("b"), task("c"));
    assert!(tb["started_at"].as_str() < tc["ended_at"].as_str());
    assert!(tc["started_at"].as_str() < tb["ended_at"].as_str());
    // Each task is a child execution with its own record.
    assert_eq!(kids.len(), 4);
    for k in &kids {
        assert_eq!(k["parent"], rec["id"]);
        assert_eq!(k["status"], "succeeded");
    }
    assert_eq!(task("d")["input"]["req"]["value"], json!(1113));
    // Children are hidden from the default list, shown with --all.
    let list = b.home.run(&["execution", "list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let all = b.home.run(&["execution", "list", "--all", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 5);
}

fn with_items_fans_out_within_its_concurrency(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file(
        "items.yaml",
        r#"
version: 1
input:
  - { name: dir, type: string }
  - { name: sizes, type: "list<s64>" }
grants: { write: ["{{ input.dir }}"] }
tasks:
  disks:
    action: STEP
    with-items: "{{ input.sizes }}"
    concurrency: 2
    input:
      req: { name: "disk{{ item }}", dir: "{{ input.dir }}", value: "{{ item }}", sleep-ms: 300 }
    next:
      - publish: { sizes: "{{ result | map(attribute='value') | list }}" }
output:
  sizes: "{{ ctx.sizes }}"
"#,
    );
    let rec = b.run(&wf, &["-p", "sizes=[5,1,4,2,3]"]).ok().json();
    assert_eq!(
        rec["result"]["sizes"],
        json!([6, 2, 5, 3, 4]),
        "results in item order"
    );
    let tree = b.tree(rec["id"].as_str().unwrap());
    let kids = children(&tree);
    assert_eq!(kids.len(), 5);
    // At no moment did more than two items run.
    let span = |k: &Value| {
        let t = |f: &str| humantime::parse_rfc3339(k[f].as_str().unwrap()).unwrap();
        (t("started_at"), t("ended_at"))
    };
    let spans: Vec<_> = kids.iter().map(|k| span(k)).collect();
    for (start, _) in &spans {
        let overlapping = spans
            .iter()
            .filter(|(s, e)| s <= start && start < e)
            .count();
        assert!(overlapping <= 2, "{overlapping} items ran at once");
    }
    let most = spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max();
    assert_eq!(most, Some(2), "items did run in parallel");
    assert_eq!(kids[0]["task"], "disks[0]");
}

fn retry_waits_with_backoff_and_succeeds(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file(
        "retry.yaml",
        r#"
version: 1
input: [{ name: dir, type: string }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  flaky:
    action: STEP
    input:
      req: { name: flaky, dir: "{{ input.dir }}", fail-times: 2 }
    retry: { count: 3, delay: 200ms, backoff: 2 }
    next:
      - publish: { runs: "{{ result.runs }}" }
output:
  runs: "{{ ctx.runs }}"
"#,
    );
    let rec = b.run(&wf, &[]).ok().json();
    assert_eq!(rec["result"]["runs"], 3);
    assert_eq!(b.runs("flaky"), 3);
    let tree = b.tree(rec["id"].as_str().unwrap());
    let kids = children(&tree);
    let status: Vec<&str> = kids.iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["failed", "failed", "succeeded"]);
    let t = |k: &Value, f: &str| humantime::parse_rfc3339(k[f].as_str().unwrap()).unwrap();
    let gap1 = t(kids[1], "started_at")
        .duration_since(t(kids[0], "ended_at"))
        .unwrap();
    let gap2 = t(kids[2], "started_at")
        .duration_since(t(kids[1], "ended_at"))
        .unwrap();
    assert!(gap1.as_millis() >= 200, "first retry waited {gap1:?}");
    assert!(
        gap2.as_millis() >= 400,
        "second retry waited {gap2:?} (backoff 2)"
    );
}

fn a_handled_failure_routes_on_and_an_unhandled_one_fails_naming_the_task(kind: StoreKind) {
    let b = Bench::on(kind);
    let yaml = r#"
version: 1
input: [{ name: dir, type: string }, { name: handle, type: bool, default: true }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  create:
    action: STEP
    input: { req: { name: create, dir: "{{ input.dir }}", fail: true } }
    next:
      - when: "{{ failed() and input.handle }}"
        publish: { why: "{{ error.message }}" }
        do: cleanup
      - when: "{{ succeeded() }}"
        do: after
  cleanup:
    action: STEP
    input: { req: { name: cleanup, dir: "{{ input.dir }}" } }
  after:
    action: STEP
    input: { req: { name: after, dir: "{{ input.dir }}" } }
output:
  why: "{{ ctx.why }}"
"#;
    let wf = b.file("fail.yaml", yaml);
    let rec = b.run(&wf, &[]).ok().json();
    assert_eq!(rec["result"]["why"], "create failed on run 1");
    assert_eq!((b.runs("cleanup"), b.runs("after")), (1, 0));

    let run = b.run(&wf, &["-p", "handle=false"]);
    let rec = run.code(1).json();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error"]["code"], "task-failed");
    assert_eq!(rec["error"]["details"]["failed_on"], "create");
    assert!(
        rec["error"]["message"]
            .as_str()
            .unwrap()
            .contains("task `create` failed: create failed on run 2"),
        "{}",
        rec["error"]
    );
    assert_eq!(
        (b.runs("cleanup"), b.runs("after")),
        (1, 0),
        "nothing ran after the failure"
    );
}

fn join_on_a_number_starts_after_the_first_arrivals(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file(
        "race.yaml",
        r#"
version: 1
input: [{ name: dir, type: string }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  fast:
    action: STEP
    input: { req: { name: fast, dir: "{{ input.dir }}" } }
    next: [{ do: first }]
  slow:
    action: STEP
    input: { req: { name: slow, dir: "{{ input.dir }}", sleep-ms: 400 } }
    next: [{ do: first }]
  first:
    join: 1
    action: STEP
    input: { req: { name: first, dir: "{{ input.dir }}" } }
"#,
    );
    let rec = b.run(&wf, &[]).ok().json();
    assert_eq!(b.runs("first"), 1, "join: 1 runs once, not per arrival");
    let tree = b.tree(rec["id"].as_str().unwrap());
    let kids = children(&tree);
    let task = |n: &str| *kids.iter().find(|c| c["task"] == n).unwrap();
    assert!(
        task("first")["ended_at"].as_str() < task("slow")["ended_at"].as_str(),
        "`first` did not wait for `slow`"
    );
}

fn a_nested_workflow_runs_as_a_child_and_shows_in_the_tree(kind: StoreKind) {
    let b = Bench::on(kind);
    b.file(
        "inner.yaml",
        r#"
version: 1
name: inner
input: [{ name: dir, type: string }, { name: n, type: s64 }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  one:
    action: STEP
    input: { req: { name: inner-one, dir: "{{ input.dir }}", value: "{{ input.n }}" } }
    next: [{ publish: { v: "{{ result.value }}" }, do: two }]
  two:
    action: STEP
    input: { req: { name: inner-two, dir: "{{ input.dir }}", value: "{{ ctx.v }}" } }
    next: [{ publish: { v: "{{ result.value }}" } }]
output: { v: "{{ ctx.v }}" }
"#,
    );
    let outer = b.file(
        "outer.yaml",
        r#"
version: 1
name: outer
input: [{ name: dir, type: string }]
grants: { write: ["{{ input.dir }}"] }
tasks:
  prepare:
    action: STEP
    input: { req: { name: prepare, dir: "{{ input.dir }}", value: 40 } }
    next: [{ publish: { n: "{{ result.value }}" }, do: nested }]
  nested:
    action: inner.yaml
    input: { dir: "{{ input.dir }}", n: "{{ ctx.n }}" }
    next: [{ publish: { v: "{{ result.v }}" } }]
output: { v: "{{ ctx.v }}" }
"#,
    );
    let rec = b.run(&outer, &[]).ok().json();
    assert_eq!(rec["result"], json!({"v": 43}));
    let id = rec["id"].as_str().unwrap();
    let tree = b.tree(id);
    let kids = children(&tree);
    assert_eq!(kids.len(), 2);
    let nested = kids.iter().find(|k| k["task"] == "nested").unwrap();
    assert_eq!(nested["kind"], "workflow");
    let grand: Vec<&str> = nested["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"].as_str().unwrap())
        .collect();
    assert_eq!(grand, ["one", "two"]);
    assert_eq!(nested["children"][0]["root"], json!(id));

    let text = b.home.run(&["execution", "get", id, "--tree"]);
    let out = &text.ok().stdout;
    assert!(out.contains("├─ prepare"), "{out}");
    assert!(out.contains("└─ nested"), "{out}");
    assert!(
        out.contains("   ├─ one"),
        "nested tasks are indented:\n{out}"
    );
}

/// An item whose input cannot be rendered fails at once; no item after
/// it starts (the ones before it run to their end), with a limit and
/// without one.
#[test]
fn a_failed_item_stops_the_items_after_it() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    for concurrency in ["", "\n    concurrency: 2"] {
        let wf = dir.path().join("stop.yaml");
        let yaml = format!(
            "version: 1\ntasks:\n  fan:\n    action: {}\n    with-items: \"{{{{ [1, 0, 2, 3] }}}}\"{concurrency}\n    input: {{ a: \"{{{{ 6 // item }}}}\", b: 1 }}\n",
            s(&crate::wat("add"))
        );
        std::fs::write(&wf, yaml).unwrap();
        let rec = home.run(&["run", s(&wf), "--json"]).code(1).json();
        assert!(
            rec["error"]["message"]
                .as_str()
                .unwrap()
                .contains("item 1: tasks.fan.input: invalid operation: unable to calculate 6 // 0"),
            "{rec}"
        );
        let tree = home.tree(rec["id"].as_str().unwrap());
        let ran: Vec<&str> = children(&tree)
            .iter()
            .map(|c| c["task"].as_str().unwrap())
            .collect();
        assert_eq!(ran, ["fan[0]"], "{concurrency:?}");
    }
}

#[test]
fn validation_reports_each_problem_with_its_position() {
    let b = Bench::new();
    // (file, text, the exact problems reported)
    let table: &[(&str, &str, &[&str])] = &[
        (
            "unknown_key.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n    inptu: {}\n",
            &["unknown_key.yaml:5:5: tasks.a: unknown field `inptu`, expected one of `action`, `input`, `grants`, `timeout`, `retry`, `delay`, `with-items`, `concurrency`, `with`, `join`, `next`"],
        ),
        (
            "unknown_do.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n    input: { req: { name: a } }\n    next:\n      - do: [b, nope]\n  b:\n    action: STEP\n    input: { req: { name: b } }\n",
            &["unknown_do.yaml:7:17: tasks.a.next[0].do[1]: unknown task `nope` (tasks are: a, b)"],
        ),
        (
            "cycle.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n    input: { req: { name: a } }\n  x:\n    action: STEP\n    input: { req: { name: x } }\n    next: [{ do: y }]\n  y:\n    action: STEP\n    input: { req: { name: y } }\n    next: [{ do: x }]\n",
            &[
                "cycle.yaml:6:3: tasks.x: task `x` can never run: only `y` leads to it, in a cycle that no start task (a) enters",
                "cycle.yaml:10:3: tasks.y: task `y` can never run: only `x` leads to it, in a cycle that no start task (a) enters",
            ],
        ),
        (
            "expr.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n    input:\n      req: { name: \"{{ input.name | }}\" }\n    next:\n      - when: \"{{ succeeded( }}\"\n",
            &[
                "expr.yaml:6:20: tasks.a.input.req.name: expression does not parse: syntax error: unexpected end of input, expected identifier",
                "expr.yaml:8:15: tasks.a.next[0].when: expression does not parse: syntax error: unexpected end of input, expected expression",
            ],
        ),
        (
            "wit.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n    input:\n      req: { name: a, value: four }\n  b:\n    action: STEP\n    input:\n      request: { name: b }\n",
            &[
                "wit.yaml:6:30: tasks.a.input.req.value: does not fit STEP's WIT: expected s64, got \"four\"",
                "wit.yaml:10:16: tasks.b.input.request: does not fit STEP's WIT: unknown field (expected one of: req)",
            ],
        ),
        (
            "misc.yaml",
            "version: 2\ninput:\n  - name: n\n    type: integr\ntasks:\n  a:\n    action: STEP\n    timeout: soon\n    input: { req: { name: a } }\n    next: [{ do: b }]\n  b:\n    action: STEP\n    join: 3\n    input: { req: { name: b } }\n",
            &[
                "misc.yaml:1:10: version: unsupported version 2 (this wasmflow reads version 1)",
                "misc.yaml:4:11: input[0].type: unknown type `integr` (expected a WIT type such as string, u32, bool, list<string>, option<u64>, or a JSON Schema type: integer, number, boolean, array, object; or any)",
                "misc.yaml:8:14: tasks.a.timeout: `soon` is not a duration (expected number at 0); write e.g. 30s, 2m, 500ms",
                "misc.yaml:13:11: tasks.b.join: joins 3 transitions but only 1 lead here",
            ],
        ),
        (
            "missing.yaml",
            "version: 1\ntasks:\n  a:\n    action: nowhere.wasm\n    input: {}\n",
            &["missing.yaml:4:13: tasks.a.action: DIR/nowhere.wasm does not exist"],
        ),
        (
            "yaml.yaml",
            "version: 1\ntasks:\n  a:\n    action: STEP\n   next: []\n",
            &["yaml.yaml:5:4: did not find expected key, while parsing a block mapping at line 3 column 3"],
        ),
    ];
    let step = crate::support::built("tests/fixtures/step");
    for (name, text, want) in table {
        let path = b.file(name, text);
        let r = b.home.run(&["workflow", "validate", s(&path)]);
        r.code(2);
        let dir = format!("{}/", s(b.dir.path()));
        let got: Vec<String> = r
            .stderr
            .lines()
            .filter(|l| !l.ends_with("found"))
            .map(|l| {
                l.trim_start_matches("error: ")
                    .replace(&dir, "")
                    .replace(s(&step), "STEP")
            })
            .collect();
        let want: Vec<String> = want.iter().map(|w| w.replace("DIR/", "")).collect();
        assert_eq!(got, want, "{name}:\n{}", r.stderr);
        // `run` refuses it the same way, before anything runs.
        let r = b.run(&path, &[]);
        r.code(2);
    }
    let listed = b.home.run(&["execution", "list", "--json"]).json();
    assert_eq!(listed, json!([]), "nothing ran");

    let good = b.file("chain.yaml", CHAIN);
    let r = b.home.run(&["workflow", "validate", s(&good)]);
    r.ok().stderr_has("ok (4 tasks, starts with a)");
    let r = b.home.run(&["workflow", "validate", s(&good), "--json"]);
    let checked = r.ok().json();
    assert_eq!(checked["ok"], true);
    assert_eq!(checked["starts_with"], json!(["a"]));
    assert_eq!(checked["tasks"].as_array().map(Vec::len), Some(4));
}

fn bad_workflow_input_is_a_usage_error_naming_the_field(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file("chain.yaml", CHAIN);
    b.run(&wf, &["-p", "start=ten"])
        .code(2)
        .stderr_has("start: expected s64, got \"ten\"");
    b.run(&wf, &["-p", "stat=1"])
        .code(2)
        .stderr_has("stat: unknown input (the workflow takes: dir, start)");
    // A task asking for more than the operator granted fails before it runs.
    let r = b.home.run(&[
        "run",
        s(&wf),
        "-p",
        &format!("dir={}", s(&b.marks)),
        "--json",
    ]);
    let rec = r.code(1).json();
    assert_eq!(rec["error"]["details"]["failed_on"], "a");
    assert!(
        rec["error"]["message"]
            .as_str()
            .unwrap()
            .contains("asks for --allow-write"),
        "{}",
        rec["error"]
    );
    assert_eq!(b.runs("a"), 0);
}

fn rerun_from_a_task_reuses_the_results_before_it(kind: StoreKind) {
    let b = Bench::on(kind);
    let wf = b.file("chain.yaml", CHAIN);
    let first = b.run(&wf, &["-p", "start=10"]).ok().json();
    let id = first["id"].as_str().unwrap();
    let again = b.home.run(&[
        "execution",
        "re-run",
        id,
        "--from",
        "c",
        "-p",
        "start=20",
        "--json",
    ]);
    let rec = again.ok().json();
    assert_eq!(rec["rerun_of"], json!(id));
    assert_eq!(rec["input"]["start"], 20, "-p changed the input");
    // a and b come before c's branch and are reused: their recorded
    // results (a = 11), no new runs. c and d run live.
    assert_eq!((b.runs("a"), b.runs("b")), (1, 1));
    assert_eq!((b.runs("c"), b.runs("d")), (2, 2));
    assert_eq!(rec["result"]["a"], 11);
    assert_eq!(rec["result"]["d"], 1114);
    let unknown = b.home.run(&["execution", "re-run", id, "--from", "zz"]);
    unknown
        .code(2)
        .stderr_has("unknown task `zz` (the workflow's tasks are: a, b, c, d)");
    // Replay is per action: a workflow points at its tasks.
    b.home
        .run(&["execution", "replay", id])
        .code(2)
        .stderr_has("is a workflow execution; replay one of its tasks");
}

/// `wasmflow workflow test`: Orquesta's rehearsal specs run with no action
/// (the workflow's pack is not even installed), the shipped ones pass; a
/// spec whose expectations do not hold fails naming each difference, exit
/// 1, with JUnit XML for CI; the user's history is left alone.
#[test]
fn rehearsals_run_no_action_and_say_what_differs() {
    let home = Home::new();
    let specs = crate::support::root().join("tests/fixtures/rehearsal/tests");
    let run = home.run(&["workflow", "test", s(&specs)]);
    run.ok();
    assert!(
        run.stdout.contains("2 rehearsal(s): 2 passed, 0 failed"),
        "{}",
        run.stdout
    );

    let dir = tempfile::tempdir().unwrap();
    let workflow = crate::support::root().join("tests/fixtures/rehearsal/deploy.yaml");
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        format!(
            "workflow: {}\ninputs: {{ hosts: [web1] }}\nmock_action_executions:\n  - {{ task_id: check, status: failed, result: boom }}\nexpected_task_sequence: [check, deploy, notify]\nexpected_workflow_status: failed\n",
            s(&workflow)
        ),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let run = home.run(&["workflow", "test", s(&wrong), "--junit", s(&junit)]);
    run.code(1);
    for line in [
        "FAILED  ",
        "task sequence: expected [check, deploy, notify], got [check, notify]",
        "status: expected failed, got succeeded",
        "1 rehearsal(s): 0 passed, 1 failed",
    ] {
        assert!(run.stdout.contains(line), "{line}:\n{}", run.stdout);
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"1\" failures=\"1\""), "{xml}");

    // A spec that is not one is named with its position.
    std::fs::write(&wrong, "workflow: x.yaml\nexpected_sequence: []\n").unwrap();
    home.run(&["workflow", "test", s(&wrong)])
        .code(2)
        .stderr_has("wrong.yaml:2:1: unknown field `expected_sequence`");
    // A pack's rehearsals, from `wasmflow test` of the pack.
    let pack = dir.path().join("ops");
    std::fs::create_dir_all(pack.join("tests")).unwrap();
    std::fs::copy(&workflow, pack.join("deploy.yaml")).unwrap();
    std::fs::copy(specs.join("healthy.yaml"), pack.join("tests/healthy.yaml")).unwrap();
    std::fs::write(
        pack.join("pack.yaml"),
        "name: ops\nversion: 1.0.0\nworkflows:\n  deploy: deploy.yaml\n",
    )
    .unwrap();
    let run = home.run(&["test", s(&pack)]);
    run.ok();
    assert!(
        run.stdout.contains("1 rehearsal(s): 1 passed, 0 failed"),
        "{}",
        run.stdout
    );

    // A loop the mocks never end is stopped, saying so, not left to spin.
    std::fs::write(
        dir.path().join("forever.yaml"),
        "version: 1.0\ntasks:\n  start:\n    action: core.noop\n    next: [{ do: poll }]\n  poll:\n    action: core.noop\n    next: [{ when: <% succeeded() %>, do: poll }]\n",
    )
    .unwrap();
    let forever = dir.path().join("forever_test.yaml");
    std::fs::write(
        &forever,
        "workflow: forever.yaml\nexpected_workflow_status: failed\nexpected_errors: [{ code: rehearsal-bound }]\n",
    )
    .unwrap();
    let run = home.run(&["workflow", "test", s(&forever)]);
    run.ok();

    // Rehearsals are not history.
    assert_eq!(
        home.run(&["execution", "list", "--json"]).ok().json(),
        json!([])
    );
}
