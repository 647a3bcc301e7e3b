//! `wasmflow new`, `build` and `test`: the action developer's loop.

use crate::args::{NewArgs, TestArgs};
use crate::{CmdResult, Fail, Home};
use std::path::Path;
use std::process::ExitCode;
use wasmflow_devkit::{CaseKind, Lang};

pub fn new(args: NewArgs) -> CmdResult {
    let lang = Lang::parse(&args.lang)?;
    let dir = wasmflow_devkit::new_action(&args.dir, &args.name, lang)?;
    println!("{}", dir.display());
    eprintln!(
        "created {} ({}): edit wit/world.wit and the source, then\n  cd {} && wasmflow test",
        args.name,
        lang.name(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn build(home: &Home, dir: &Path, json: bool) -> CmdResult {
    let built = wasmflow_devkit::build(dir)?;
    if json {
        crate::print::json(&serde_json::json!({
            "component": built.component,
            "lang": built.lang.name(),
            "tool": built.toolchain.tool,
            "seconds": built.took.as_secs_f64(),
        }));
    } else {
        println!("{}", built.component.display());
    }
    eprintln!(
        "built {} ({}, {} in {:.1}s)",
        built.component.display(),
        built.lang.name(),
        built.toolchain.tool,
        built.took.as_secs_f64()
    );
    precompile(home, &built.component)?;
    Ok(ExitCode::SUCCESS)
}

/// Compile `component` into the cache now, so the first `run` after a
/// build or a pull starts at once; a component that cannot run fails here.
pub(crate) fn precompile(home: &Home, component: &Path) -> Result<(), Fail> {
    home.loader()?.load(component)?;
    Ok(())
}

pub fn test(home: &Home, args: TestArgs) -> CmdResult {
    // A pack: its workflows' rehearsals, in tests/ beside pack.yaml.
    if args.dir.join("pack.yaml").is_file() {
        let rehearsals = args.dir.join("tests");
        if !rehearsals.is_dir() {
            return Err(Fail::usage(anyhow::anyhow!(
                "{}: a pack's tests are rehearsals of its workflows, in tests/ (see `wasmflow workflow test`)",
                args.dir.display()
            )));
        }
        return crate::workflow::test(home, &[rehearsals], None);
    }
    let unchanged = || match args.rebuild {
        true => Ok(None),
        false => wasmflow_devkit::unchanged(&args.dir),
    };
    let component = if args.no_build {
        wasmflow_devkit::component_path(&args.dir)?
    } else if let Some(component) = unchanged()? {
        eprintln!(
            "{} is up to date: its sources have not changed since the last build (--rebuild \
             builds anyway)",
            component.display()
        );
        component
    } else {
        let built = wasmflow_devkit::build(&args.dir)?;
        eprintln!(
            "built {} in {:.1}s",
            built.component.display(),
            built.took.as_secs_f64()
        );
        built.component
    };
    // A throwaway store: tests and the replays of bundles are not the
    // user's history. Compiled components are shared with the real home.
    let scratch =
        tempfile::tempdir().map_err(|e| Fail::usage(anyhow::anyhow!("a temporary store: {e}")))?;
    let cache = home.cache.clone().unwrap_or_else(|| home.dir.join("cache"));
    let rt =
        wasmflow_runtime::Runtime::open_with(scratch.path(), Some(&cache), home.engine.clone())?;
    let report = crate::tokio().block_on(wasmflow_devkit::run_tests(&rt, &args.dir, &component))?;
    if report.cases.is_empty() {
        eprintln!("no tests: add input/expected-output cases as tests/*.json (see README.md)");
    }
    let kind = |case: &wasmflow_devkit::CaseReport| match case.kind {
        CaseKind::Case => "case",
        CaseKind::Bundle => "replay",
    };
    let failed = report.failed();
    if args.json {
        let cases: Vec<_> = report
            .cases
            .iter()
            .map(|case| {
                serde_json::json!({
                    "name": case.name,
                    "kind": kind(case),
                    "passed": case.passed,
                    "detail": case.detail,
                    "ms": case.took.as_millis() as u64,
                })
            })
            .collect();
        crate::print::json(&serde_json::json!({
            "component": component,
            "cases": cases,
            "passed": report.passed(),
            "failed": failed,
        }));
        return Ok(crate::exit_code(failed == 0));
    }
    for case in &report.cases {
        let kind = kind(case);
        let verdict = if case.passed { "ok" } else { "FAILED" };
        println!(
            "{kind} {} ... {verdict} ({} ms)",
            case.name,
            case.took.as_millis()
        );
        if let Some(detail) = case.detail.as_ref().filter(|_| !case.passed) {
            for line in detail.lines() {
                println!("    {line}");
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        report.passed()
    );
    Ok(crate::exit_code(failed == 0))
}
