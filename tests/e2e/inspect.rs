//! `inspect` shows the signature as WIT, the input as JSON Schema, and imports.

use crate::{s, support, wat, Home};

#[test]
fn inspect_vm_clone() {
    let wasm = support::built("actions/vm.clone");
    let home = Home::new();
    let out = home.run(&["inspect", s(&wasm)]);
    out.ok();
    for needle in [
        "record clone-spec {",
        "  memory-mb: u32,",
        "record vm {",
        "run: func(spec: clone-spec) -> result<vm, error>;",
        "# Input (JSON Schema)",
        "wasmflow:action/process@0.1.0",
        "(exec: --allow-exec)",
    ] {
        assert!(
            out.stdout.contains(needle),
            "inspect lacks {needle:?}:\n{}",
            out.stdout
        );
    }
    let j = home.run(&["inspect", s(&wasm), "--json"]).json();
    let spec = &j["input_schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["cpus"]["maximum"], u32::MAX);
    assert_eq!(spec["required"].as_array().unwrap().len(), 6);
    assert_eq!(
        j["output_schema"]["properties"]["size-bytes"]["x-wit-type"],
        "u64"
    );
    assert!(j["digest"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn inspect_rejects_what_is_not_an_action() {
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wat");
    std::fs::write(&core, "(module)").unwrap();
    home.run(&["inspect", s(&core)])
        .code(2)
        .stderr_has("is not a component");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "hello").unwrap();
    home.run(&["run", s(&junk)])
        .code(2)
        .stderr_has("not a valid WebAssembly component");
    home.run(&["inspect", "/no/such/file.wasm"])
        .code(2)
        .stderr_has("cannot read /no/such/file.wasm");
    let no_run = dir.path().join("norun.wat");
    std::fs::write(&no_run, "(component)").unwrap();
    home.run(&["run", s(&no_run)])
        .code(2)
        .stderr_has("does not export a `run` function");
    // The WAT fixture has no WIT names, but still a signature.
    let add = home.run(&["inspect", s(&wat("add"))]);
    assert!(
        add.ok()
            .stdout
            .contains("run: func(a: u32, b: u32) -> u32;"),
        "{}",
        add.stdout
    );
}
