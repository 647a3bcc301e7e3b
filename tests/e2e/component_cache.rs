//! The compiled-component cache: an unchanged file runs from it unread; a
//! changed one, a damaged compiled artifact or a damaged index entry is
//! compiled again, never trusted; functions compiled once are reused by
//! the next component that has them.

use crate::Home;
use std::path::{Path, PathBuf};

const ADD: &str = include_str!("../fixtures/wat/add.wat");

/// The files of `dir` whose name ends with `suffix`, anywhere below it.
fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    crate::files_under(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

struct Case {
    home: Home,
    cache: tempfile::TempDir,
    component: PathBuf,
}

impl Case {
    fn new() -> Self {
        let home = Home::new();
        let component = home.path().join("calc.wat");
        std::fs::write(&component, ADD).unwrap();
        Self {
            home,
            cache: tempfile::tempdir().unwrap(),
            component,
        }
    }

    /// The index's entries: one per file ever loaded through this cache.
    fn index_entries(&self) -> Vec<PathBuf> {
        files_under(self.cache.path(), "")
            .into_iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("files")))
            .collect()
    }

    /// `run calc.wat -p a=5 -p b=3` on the case's own cache: the output
    /// and the record's component digest.
    fn run(&self) -> (String, String) {
        let cache = self.cache.path().to_str().unwrap();
        let r = self.home.run(&[
            "--cache-dir",
            cache,
            "run",
            self.component.to_str().unwrap(),
            "-p",
            "a=5",
            "-p",
            "b=3",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let digest = self.home.last_record()["component_digest"]
            .as_str()
            .unwrap()
            .to_owned();
        (r.stdout.trim().to_owned(), digest)
    }
}

#[test]
fn a_component_rewritten_in_place_with_its_size_and_mtime_kept_runs_as_the_new_one() {
    let case = Case::new();
    let (out, first) = case.run();
    assert_eq!(out, "8");
    // The file is indexed: the second run takes its digest from there.
    assert_eq!(case.index_entries().len(), 1);
    assert_eq!(case.run(), ("8".into(), first.clone()));

    // Same length, same modification time, other code: a - b.
    let before = std::fs::metadata(&case.component).unwrap();
    let sub = ADD.replace("i32.add", "i32.sub");
    assert_eq!(sub.len(), ADD.len());
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&case.component)
            .unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(sub.as_bytes()).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
    }
    let after = std::fs::metadata(&case.component).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());

    let (out, second) = case.run();
    assert_eq!(out, "2", "the new code ran");
    assert_ne!(second, first, "the record pins the new component");
    assert_eq!(
        files_under(case.cache.path(), ".cwasm").len(),
        2,
        "compiled again"
    );
}

#[test]
fn a_damaged_artifact_or_index_entry_is_compiled_again_not_trusted() {
    let case = Case::new();
    let (_, digest) = case.run();
    let artifact = files_under(case.cache.path(), ".cwasm").pop().unwrap();
    assert!(artifact
        .to_string_lossy()
        .contains(digest.trim_start_matches("sha256:")));

    // Not a compiled component at all, then one cut short.
    let whole = std::fs::read(&artifact).unwrap();
    for damaged in [
        b"not machine code".to_vec(),
        whole[..whole.len() / 2].to_vec(),
    ] {
        std::fs::write(&artifact, damaged).unwrap();
        assert_eq!(case.run(), ("8".into(), digest.clone()));
        assert_eq!(
            std::fs::read(&artifact).unwrap().len(),
            whole.len(),
            "written again whole"
        );
    }

    // An index entry that does not parse, then one naming a component
    // that is not compiled: the file is read and hashed again, and the
    // entry written again.
    let entry = case.index_entries().pop().unwrap();
    let good = std::fs::read_to_string(&entry).unwrap();
    let other = format!("sha256:{}", "0".repeat(64));
    for bad in ["garbage".to_owned(), good.replace(&digest, &other)] {
        std::fs::write(&entry, &bad).unwrap();
        assert_eq!(case.run(), ("8".into(), digest.clone()));
        assert_eq!(std::fs::read_to_string(&entry).unwrap(), good);
    }
}

#[test]
fn functions_compiled_for_one_component_are_reused_by_the_next() {
    let home = Home::new();
    let cache = tempfile::tempdir().unwrap();
    let first = home.path().join("add.wat");
    std::fs::write(&first, ADD).unwrap();
    // Another component: the same function and one more, exported under
    // other names.
    let second = home.path().join("twice.wat");
    std::fs::write(
        &second,
        r#"(component
  (core module $m
    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))
    (func (export "run") (param i32) (result i32)
      (i32.mul (local.get 0) (i32.const 2))))
  (core instance $i (instantiate $m))
  (func (export "run") (param "a" u32) (result u32)
    (canon lift (core func $i "run"))))"#,
    )
    .unwrap();
    let compile = |path: &Path, cache: &Path| compile_counts(&home, path, cache);
    let (reused, compiled) = compile(&first, cache.path());
    assert_eq!(reused, 0, "an empty cache");
    assert!(compiled >= 1);
    // Alone, the second compiles everything it has (reusing only what it
    // holds twice, such as trampolines of one signature)...
    let alone = tempfile::tempdir().unwrap();
    let (reused_alone, compiled_alone) = compile(&second, alone.path());
    // ...after the first, it reuses the first one's `run` as its `add`.
    let (reused, compiled) = compile(&second, cache.path());
    assert!(
        reused > reused_alone,
        "{reused} reused, {reused_alone} alone"
    );
    assert_eq!(reused + compiled, reused_alone + compiled_alone);
    assert!(compiled >= 1, "`run` doubling is new");
    let packs = files_under(cache.path(), ".pack");
    assert_eq!(
        packs.len(),
        2,
        "one pack per compilation that compiled something: {packs:?}"
    );
}

/// `inspect PATH` on `cache`, compiling it if needed: how many functions
/// the compilation reused and compiled (0 and 0 if it found it compiled).
fn compile_counts(home: &Home, path: &Path, cache: &Path) -> (u64, u64) {
    let out = home
        .cmd()
        .env("WASMFLOW_LOG", "wasmflow_runtime=info")
        .args(["--cache-dir", cache.to_str().unwrap(), "inspect"])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let count = |field: &str| -> u64 {
        let Some(at) = stderr.find(&format!("{field}=")) else {
            return 0;
        };
        stderr[at + field.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (count("reused"), count("compiled"))
}

/// Functions in [`with_big_module`]'s shared module.
const BIG: u64 = 1000;

/// A component like a Python action: a large core module (as CPython is:
/// here 1.1 MB of code) that every such component holds byte for byte,
/// and a small module of its own; `run` returns the large module's `f7`
/// plus `own`.
fn with_big_module(own: u32) -> String {
    let filler = "i64.const 0x7fffffffffffffff drop ".repeat(100);
    let funcs: String = (0..BIG)
        .map(|i| format!("    (func (export \"f{i}\") (result i32) {filler}i32.const {i})\n"))
        .collect();
    format!(
        r#"(component
  (core module $big
{funcs}  )
  (core module $own
    (import "big" "f7" (func $f (result i32)))
    (func (export "run") (result i32) (i32.add (call $f) (i32.const {own}))))
  (core instance $b (instantiate $big))
  (core instance $o (instantiate $own (with "big" (instance $b))))
  (func (export "run") (result u32) (canon lift (core func $o "run"))))"#
    )
}

#[test]
fn a_core_module_two_components_share_is_compiled_once_and_a_damaged_one_again() {
    let home = Home::new();
    let cache = tempfile::tempdir().unwrap();
    let first = home.path().join("first.wat");
    let second = home.path().join("second.wat");
    std::fs::write(&first, with_big_module(100)).unwrap();
    std::fs::write(&second, with_big_module(200)).unwrap();
    let run = |path: &Path| {
        let r = home.run(&[
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "run",
            path.to_str().unwrap(),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.trim().to_owned()
    };
    // The compiled shared modules, kept apart from the components.
    let modules = || -> Vec<PathBuf> {
        files_under(cache.path(), ".cwasm")
            .into_iter()
            .filter(|p| p.parent().is_some_and(|d| d.ends_with("modules")))
            .collect()
    };

    let (_, compiled) = compile_counts(&home, &first, cache.path());
    assert!(
        compiled > BIG,
        "an empty cache compiles them all: {compiled}"
    );
    assert_eq!(modules().len(), 1, "the large module is kept apart");
    assert_eq!(run(&first), "107");

    // The second holds the same large module: found compiled, not
    // compiled again; only its own module and glue are.
    let (reused, compiled) = compile_counts(&home, &second, cache.path());
    assert!(reused >= BIG, "{reused} reused");
    assert!(compiled < 50, "{compiled} compiled");
    assert_eq!(modules().len(), 1);
    assert_eq!(run(&second), "207");

    // A damaged module is not trusted: whatever imports it is compiled
    // again, the module with it, whole.
    let module = modules().pop().unwrap();
    let whole = std::fs::read(&module).unwrap();
    for damaged in [
        b"not machine code".to_vec(),
        whole[..whole.len() / 2].to_vec(),
    ] {
        std::fs::write(&module, damaged).unwrap();
        assert_eq!(run(&first), "107");
        assert_eq!(
            std::fs::read(&module).unwrap().len(),
            whole.len(),
            "written again whole"
        );
    }
    std::fs::remove_file(&module).unwrap();
    assert_eq!(run(&second), "207");
    assert_eq!(modules().len(), 1);
}
