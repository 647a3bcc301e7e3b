//! The bundled example: vm.clone makes a real qcow2 linked clone.

use crate::{s, support, Home};
use serde_json::json;
use std::process::Command;

struct Disks {
    dir: tempfile::TempDir,
}

impl Disks {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tpl")).unwrap();
        std::fs::create_dir(dir.path().join("disks")).unwrap();
        let st = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(dir.path().join("tpl/base.qcow2"))
            .arg("32M")
            .status()
            .expect("qemu-img is installed (scripts/install-toolchains.sh)");
        assert!(st.success());
        Self { dir }
    }

    /// What vm.clone's qemu-img needs besides `--allow-exec`: the template
    /// to read, the disks directory to write (programs are confined to the
    /// execution's grants).
    fn grants(&self) -> Vec<String> {
        vec![
            "--allow-read".into(),
            s(&self.dir.path().join("tpl")).into(),
            "--allow-write".into(),
            s(&self.dir.path().join("disks")).into(),
        ]
    }

    fn spec(&self, name: &str) -> std::path::PathBuf {
        let spec = json!({ "spec": {
            "source": self.dir.path().join("tpl/base.qcow2"),
            "name": name,
            "dir": self.dir.path().join("disks"),
            "cpus": 2,
            "memory-mb": 2048,
            "linked": true,
        }});
        let path = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&path, spec.to_string()).unwrap();
        path
    }
}

#[test]
fn creates_a_linked_clone_backed_by_the_template() {
    let wasm = support::built("actions/vm.clone");
    let home = Home::new();
    let disks = Disks::new();
    let spec = disks.spec("web01");
    let grants = disks.grants();
    let mut args = vec![
        "run",
        s(&wasm),
        "--input",
        s(&spec),
        "--allow-exec",
        "qemu-img",
        "--logs",
    ];
    args.extend(grants.iter().map(String::as_str));
    let run = home.run(&args);
    run.ok()
        .stderr_has(" info [1/3] creating disk")
        .stderr_has(" info cloning ");
    let vm = run.json();
    let disk = disks.dir.path().join("disks/web01.qcow2");
    assert_eq!(vm["name"], "web01");
    assert_eq!(vm["disk"], s(&disk));
    assert_eq!(vm["size-bytes"], 32 << 20);

    let info = Command::new("qemu-img")
        .args(["info", "--output", "json"])
        .arg(&disk)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(
        info["backing-filename"],
        s(&disks.dir.path().join("tpl/base.qcow2"))
    );

    let rec = home.last_record();
    assert_eq!(rec["status"], "succeeded");
    assert_eq!(rec["grants"]["exec"], json!(["qemu-img"]));
    let logs: Vec<String> = rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(logs.iter().any(|m| m.starts_with("cloning ")), "{logs:?}");
    assert!(rec["logs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["progress"]["done"] == 3));
}

#[test]
fn without_the_exec_grant_it_is_denied_and_creates_nothing() {
    let wasm = support::built("actions/vm.clone");
    let home = Home::new();
    let disks = Disks::new();
    let spec = disks.spec("web02");
    let run = home.run(&["run", s(&wasm), "--input", s(&spec)]);
    run.code(1)
        .stderr_has("[qemu-img-denied]")
        .stderr_has("--allow-exec qemu-img");
    // Not a terminal and no --logs: only the summary line on stderr.
    assert!(
        !run.stderr.contains("[0/3] checking spec"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "no result on failure: {}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_dir(disks.dir.path().join("disks"))
            .unwrap()
            .count(),
        0
    );
    let rec = home.last_record();
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error"]["code"], "qemu-img-denied");
    assert!(
        rec["logs"].to_string().contains("denied: exec qemu-img"),
        "{}",
        rec["logs"]
    );
}

#[test]
fn params_override_input_fields_typed_by_wit() {
    let wasm = support::built("actions/vm.clone");
    let home = Home::new();
    let disks = Disks::new();
    let spec = disks.spec("web03");
    // A string field takes the text as is; a number field parses it.
    let grants = disks.grants();
    let mut args = vec![
        "run",
        s(&wasm),
        "--input",
        s(&spec),
        "-p",
        "spec.name=db01",
        "-p",
        "spec.cpus=8",
        "--allow-exec",
        "qemu-img",
    ];
    args.extend(grants.iter().map(String::as_str));
    home.run(&args).ok();
    let rec = home.last_record();
    assert_eq!(rec["input"]["spec"]["name"], "db01");
    assert_eq!(rec["input"]["spec"]["cpus"], 8);
    assert!(disks.dir.path().join("disks/db01.qcow2").exists());

    let bad = home.run(&["run", s(&wasm), "--input", s(&spec), "-p", "spec.cpus=four"]);
    bad.code(2)
        .stderr_has(r#"spec.cpus: expected u32, got "four""#);
    let bad = home.run(&["run", s(&wasm), "--input", s(&spec), "-p", "spec.cores=4"]);
    bad.code(2)
        .stderr_has("spec.cores: no such parameter or field");
}

#[test]
fn a_bad_spec_is_the_actions_own_error() {
    let wasm = support::built("actions/vm.clone");
    let home = Home::new();
    let disks = Disks::new();
    let spec = disks.spec("web04");
    let run = home.run(&[
        "run",
        s(&wasm),
        "--input",
        s(&spec),
        "-p",
        "spec.cpus=0",
        "--allow-exec",
        "qemu-img",
    ]);
    run.code(1)
        .stderr_has("[invalid-spec] cpus must be between 1 and 256, got 0");
    let rec = home.last_record();
    assert_eq!(rec["error"]["details"], json!({ "field": "cpus" }));
    assert_eq!(
        std::fs::read_dir(disks.dir.path().join("disks"))
            .unwrap()
            .count(),
        0
    );
}
