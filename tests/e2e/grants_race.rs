//! Grants are held by handle: while another process keeps swapping a
//! granted directory for a symbolic link to outside (an atomic
//! `RENAME_EXCHANGE`, as fast as it can), no workflow task, no server
//! request and no replay snapshot ever reaches outside. Each is tried at
//! least 200 times.

use crate::s;
use crate::server::Site;
use crate::workflow::Bench;
use serde_json::{json, Value};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const ATTEMPTS: usize = 200;

/// Swaps `path` (a directory) with a symbolic link to `outside` until
/// dropped.
struct Flipper {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flipper {
    fn start(path: &Path, outside: &Path) -> Self {
        let other = path.with_extension("swap");
        std::os::unix::fs::symlink(outside, &other).unwrap();
        let (a, b) = (cstr(path), cstr(&other));
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), flips.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: two NUL-terminated paths.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
                count.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
        });
        Self {
            stop,
            flips,
            thread: Some(thread),
        }
    }
}

impl Flipper {
    /// Wait until it has swapped again since called (so every attempt
    /// meets a flipping grant, however loaded the machine is).
    fn moved_on(&self) {
        let seen = self.flips.load(Ordering::Relaxed);
        let start = std::time::Instant::now();
        while self.flips.load(Ordering::Relaxed) < seen + 2 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "the flipper stopped"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Drop for Flipper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        assert!(
            self.flips.load(Ordering::Relaxed) > 100,
            "the flipper hardly ran"
        );
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Everything under `dir`, recursively (the escape target must stay empty).
fn contents(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(contents(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_swapped_grant_never_leads_a_workflow_task_outside() {
    let b = Bench::new();
    let outside = tempfile::tempdir().unwrap();
    let sub = b.marks.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let wf = b.file(
        "race.yaml",
        r#"
version: 1
input:
  - { name: dir, type: string }
  - { name: items, type: "list<s64>" }
tasks:
  write:
    action: STEP
    with-items: "{{ input.items }}"
    concurrency: 50
    grants: { write: ["{{ input.dir }}/sub"] }
    input:
      req: { name: "w{{ item }}", dir: "{{ input.dir }}/sub" }
"#,
    );
    let items = format!(
        "items={}",
        serde_json::to_string(&(0..50).collect::<Vec<_>>()).unwrap()
    );
    let flipper = Flipper::start(&sub, outside.path());
    let (mut attempts, mut ran) = (0, 0);
    for _ in 0..ATTEMPTS {
        flipper.moved_on();
        let r = b.run(&wf, &["-p", &items]);
        let record = b.home.last_record();
        let tree = b.tree(record["id"].as_str().unwrap());
        let children = crate::workflow::children(&tree);
        // A run refused at its first item's grant check tried once.
        attempts += children.len().max(1);
        ran += children
            .iter()
            .filter(|c| c["status"] == "succeeded")
            .count();
        // A run fails only as a grant refused (the swapped path resolves
        // outside) or a sandbox not built (the directory was swapped
        // between the check and the open).
        if r.code != 0 {
            assert!(
                r.stderr.contains("(grant-denied)") || r.stderr.contains("(sandbox)"),
                "{}",
                r.stderr
            );
        }
        if attempts >= ATTEMPTS {
            break;
        }
    }
    drop(flipper);
    assert!(attempts >= ATTEMPTS, "only {attempts} tasks were tried");
    assert!(ran > 0, "no task ever ran: the test proves nothing");
    assert_eq!(contents(outside.path()), Vec::<PathBuf>::new(), "escaped");
}

#[test]
fn a_swapped_grant_never_leads_a_server_request_or_a_snapshot_outside() {
    let site = Site::new();
    let server = site.serve(&[]);
    let outside = tempfile::tempdir().unwrap();
    let marker = format!("SECRET-{}-{}", std::process::id(), rand_suffix());
    std::fs::write(outside.path().join("secret.txt"), marker.repeat(3)).unwrap();

    // Writes: the step leaves a marker file in `sub`, granted narrower
    // than the server's `--allow-write marks`.
    let sub = site.marks.join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Snapshots: a read grant whose `a` flips between a directory and a
    // link to the secret's directory.
    let snap = site.marks.join("snap");
    std::fs::create_dir_all(snap.join("a")).unwrap();
    std::fs::write(snap.join("a/inside.txt"), "inside").unwrap();

    let writes = Flipper::start(&sub, outside.path());
    let reads = Flipper::start(&snap.join("a"), outside.path());
    // And files come and go in the read grant meanwhile: never a failure.
    let churning = Arc::new(AtomicBool::new(true));
    let churner = {
        let (flag, snap) = (churning.clone(), snap.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while flag.load(Ordering::Relaxed) {
                let f = snap.join(format!("churn-{}", n % 8));
                if n % 16 < 8 {
                    let _ = std::fs::write(&f, n.to_string().repeat(100));
                } else {
                    let _ = std::fs::remove_file(&f);
                }
                n += 1;
            }
        })
    };
    let mut ids = Vec::new();
    let mut refused = 0;
    for i in 0..ATTEMPTS {
        writes.moved_on();
        reads.moved_on();
        let body = json!({
            "action": "step",
            "input": {"req": {"name": format!("r{i}"), "dir": s(&sub)}},
            "grants": {"write": [s(&sub)], "read": [s(&snap)]},
        });
        match server.post("/api/v1/executions", body) {
            (202, v) => ids.push(v["id"].as_str().unwrap().to_owned()),
            (403, v) => {
                // Refused at the check: the swapped path is outside.
                assert!(v.to_string().contains("did not grant"), "{v}");
                refused += 1;
            }
            (status, v) => panic!("{status}: {v}"),
        }
    }
    let done: Vec<Value> = ids.iter().map(|id| server.wait_done(id)).collect();
    drop(writes);
    drop(reads);
    churning.store(false, Ordering::Relaxed);
    churner.join().unwrap();
    let succeeded = done.iter().filter(|r| r["status"] == "succeeded").count();
    assert!(
        succeeded > 0,
        "none ran ({refused} refused): {:?}",
        done.first()
    );
    for r in &done {
        if r["status"] != "succeeded" {
            // Only the swapped write grant can stop a run (at its open);
            // the snapshot of the churning read grant never does.
            assert_eq!(r["error"]["code"], "sandbox", "{r}");
            let message = r["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("{}:", s(&sub))), "{message}");
        }
    }

    // No snapshot copied the secret into the store.
    let mut hits = Vec::new();
    for f in contents(&site.home.path().join("store")) {
        if f.is_file()
            && std::fs::read(&f)
                .unwrap()
                .windows(marker.len())
                .any(|w| w == marker.as_bytes())
        {
            hits.push(f);
        }
    }
    assert!(hits.is_empty(), "the secret reached the store: {hits:?}");

    // No step wrote outside.
    assert_eq!(
        contents(outside.path()).len(),
        1,
        "escaped: {:?}",
        contents(outside.path())
    );
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
