//! The bundled workflow, `workflows/vm-provision.yaml`, on real disks.

use crate::{s, support, Home};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn build_actions() {
    for a in [
        "actions/disk.checksum",
        "actions/vm.clone",
        "actions/vm.cloud-init",
        "actions/disk.create",
    ] {
        support::built(a);
    }
}

fn qemu_info(path: &Path) -> Value {
    let out = Command::new("qemu-img")
        .args(["info", "--output", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `wasmflow run` of the bundled workflow on `input`, `dir` granted for
/// writing, and qemu-img when `exec`.
fn provision(home: &Home, input: &Path, dir: &Path, exec: bool) -> crate::Run {
    let wf = support::root().join("workflows/vm-provision.yaml");
    let mut args = vec![
        "run",
        s(&wf),
        "--input",
        s(input),
        "--allow-write",
        s(dir),
        "--json",
    ];
    if exec {
        args.extend(["--allow-exec", "qemu-img"]);
    }
    home.run(&args)
}

/// The example input, pointed at a fresh directory with a template in it.
fn input(dir: &Path, name: &str) -> std::path::PathBuf {
    let example = support::root().join("workflows/vm-provision.example.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(dir.join("template.qcow2"))
        .arg("64M")
        .status()
        .unwrap();
    assert!(st.success());
    v["template"] = json!(dir.join("template.qcow2"));
    v["dir"] = json!(dir);
    v["name"] = json!(name);
    let path = dir.join("input.json");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

#[test]
fn vm_provision_clones_seeds_and_creates_data_disks() {
    build_actions();
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wf = support::root().join("workflows/vm-provision.yaml");
    home.run(&["workflow", "validate", s(&wf)]).ok();
    let input = input(dir, "web01");
    let rec = provision(&home, &input, dir, true).ok().json();
    let out = &rec["result"];
    // The C step checksummed the template before the clone used it.
    let template = dir.join("template.qcow2");
    assert_eq!(
        out["template"]["sha256"],
        crate::c_actions::sha256sum(&template)
    );
    assert_eq!(
        out["template"]["size-bytes"],
        std::fs::metadata(&template).unwrap().len()
    );
    let disk = dir.join("web01.qcow2");
    assert_eq!(out["vm"]["disk"], json!(disk));
    let info = qemu_info(&disk);
    assert_eq!(info["backing-filename"], json!(dir.join("template.qcow2")));
    let user_data = std::fs::read_to_string(dir.join("user-data")).unwrap();
    assert!(
        user_data.starts_with("#cloud-config\nhostname: web01\n"),
        "{user_data}"
    );
    assert!(user_data.contains("ssh-ed25519 "), "{user_data}");
    let sizes: Vec<u64> = out["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            qemu_info(Path::new(d["path"].as_str().unwrap()))["virtual-size"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, [10 << 30, 20 << 30, 5 << 30]);

    let tree = home.tree(rec["id"].as_str().unwrap());
    let tasks: Vec<&str> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks.len(), 6, "{tasks:?}");
    assert_eq!(tasks[..2], ["checksum", "clone"]);
    for t in ["seed", "disks[0]", "disks[1]", "disks[2]"] {
        assert!(tasks.contains(&t), "{t} in {tasks:?}");
    }
}

#[test]
fn vm_provision_fails_cleanly_on_a_bad_spec() {
    build_actions();
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = input(dir, "Bad_Name");
    let run = provision(&home, &input, dir, true);
    let rec = run.code(1).json();
    assert_eq!(rec["error"]["details"]["failed_on"], "clone");
    assert_eq!(rec["error"]["details"]["error"]["code"], "invalid-spec");
    assert!(
        rec["error"]["message"]
            .as_str()
            .unwrap()
            .contains("name 'Bad_Name' must be lowercase"),
        "{}",
        rec["error"]
    );
    // Nothing after the clone ran: only the template is there.
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["input.json", "template.qcow2"]);

    // Without --allow-exec the operator has not granted what `clone` asks.
    let input = input_again(dir);
    let rec = provision(&home, &input, dir, false).code(1).json();
    assert!(
        rec["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-exec qemu-img"),
        "{}",
        rec["error"]
    );
}

#[test]
fn vm_provision_stops_at_the_checksum_when_the_template_is_not_granted() {
    build_actions();
    let home = Home::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vms");
    std::fs::create_dir(&dir).unwrap();
    let templates = tmp.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    // The template is outside the one directory the workflow is granted.
    let input = input(&templates, "web01");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
    v["dir"] = json!(dir);
    std::fs::write(&input, v.to_string()).unwrap();
    let rec = provision(&home, &input, &dir, true).code(1).json();
    assert_eq!(rec["error"]["details"]["failed_on"], "checksum", "{rec}");
    assert_eq!(rec["error"]["details"]["error"]["code"], "denied");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing cloned"
    );
}

fn input_again(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("input.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["name"] = json!("web02");
    std::fs::write(&path, v.to_string()).unwrap();
    path
}
