//! End-to-end tests: real actions built from source, driven through the
//! real `wasmflow` binary, each test in a fresh `WASMFLOW_HOME`.

#[path = "../support/mod.rs"]
mod support;

mod c_actions;
mod cli;
mod compile_limit;
mod component_cache;
mod confine;
mod core_pack;
mod devkit;
mod events;
mod grants_race;
mod hostile;
mod http;
mod inquiry;
mod inspect;
mod keys;
mod old_store;
mod postgres;
mod records;
mod registry;
mod replay;
mod replay_sockets;
mod rules;
mod sandbox;
mod secrets;
mod server;
mod store;
mod vm_clone;
mod vm_provision;
mod workers;
mod workflow;
mod workflow_crash;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Which backend a test's store is: the suites that must hold on both
/// take one and run once per kind ([`on_both_stores!`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// The home's own embedded store.
    Sled,
    /// A fresh database of this test binary's PostgreSQL cluster.
    Postgres,
}

/// For each `fn name(kind: StoreKind)`, the tests `name::sled` and
/// `name::postgres`: one body, run on both backends (not copied).
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sled() {
                super::$name($crate::StoreKind::Sled)
            }
            #[test]
            fn postgres() {
                super::$name($crate::StoreKind::Postgres)
            }
        }
    )*};
}

/// A fresh store for one test; compiled components are shared.
#[derive(Default)]
pub struct Home {
    pub dir: TempHome,
    /// `WASMFLOW_STORE` for every command: a database of the test
    /// binary's PostgreSQL cluster ([`Home::on_postgres`]); the home's
    /// sled store when `None`.
    pub store: Option<String>,
}

/// `tempfile::TempDir` with a `Default`, or a directory of the test's
/// choosing (on a file system it mounted), removed the same way.
pub enum TempHome {
    Temp(tempfile::TempDir),
    At(PathBuf),
}

impl Default for TempHome {
    fn default() -> Self {
        Self::Temp(tempfile::tempdir().unwrap())
    }
}

impl TempHome {
    pub fn at(dir: PathBuf) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        Self::At(dir)
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::At(p) => p,
        }
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        if let Self::At(p) = self {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl Home {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh home whose store is of `kind`.
    pub fn with_store(kind: StoreKind) -> Self {
        match kind {
            StoreKind::Sled => Self::new(),
            StoreKind::Postgres => Self::on_postgres(),
        }
    }

    /// A home whose store is a fresh PostgreSQL database.
    pub fn on_postgres() -> Self {
        Self {
            store: Some(wasmflow_testkit::PgCluster::shared().database()),
            ..Self::default()
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wasmflow"));
        c.env("WASMFLOW_HOME", self.dir.path())
            .env("WASMFLOW_CACHE_DIR", support::shared_cache())
            // Tests compile the same large components at once on a small
            // machine; the bound itself is tested with explicit flags.
            .env("WASMFLOW_COMPILE_TIMEOUT", "15m")
            .env_remove("WASMFLOW_LOG");
        match &self.store {
            Some(url) => c.env("WASMFLOW_STORE", url),
            None => c.env_remove("WASMFLOW_STORE"),
        };
        c
    }

    /// `wasmflow run` of the hostile fixture in `mode` against `target`,
    /// with `flags` (grants, limits) after it.
    pub fn hostile_cmd(&self, mode: &str, target: &str, flags: &[&str]) -> Command {
        let wasm = support::built("tests/fixtures/hostile");
        let mut c = self.cmd();
        c.arg("run")
            .arg(wasm)
            .args([
                "-p",
                &format!("mode={mode}"),
                "-p",
                &format!("target={target}"),
            ])
            .args(flags);
        c
    }

    pub fn hostile(&self, mode: &str, target: &str, flags: &[&str]) -> Run {
        Run::from(self.hostile_cmd(mode, target, flags).output().unwrap())
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().unwrap())
    }

    /// How many records this (sled) home's archive catalog says its parts
    /// hold: 0 before the first move.
    pub fn archived_records(&self) -> u64 {
        let Ok(bytes) = std::fs::read(self.path().join("store/archive/catalog.json")) else {
            return 0;
        };
        let catalog: Value = serde_json::from_slice(&bytes).unwrap();
        catalog["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["records"].as_u64().unwrap())
            .sum()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `execution get ID --tree --json`: the record with its children.
    pub fn tree(&self, id: &str) -> Value {
        self.run(&["execution", "get", id, "--tree", "--json"])
            .ok()
            .json()
    }

    /// The newest execution record, as JSON.
    pub fn last_record(&self) -> Value {
        let r = self.run(&["execution", "list", "-n", "1", "--json"]);
        r.ok();
        r.json()[0].clone()
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The ids of the records a `--json` listing printed, in its order.
    pub fn ids(&self) -> Vec<String> {
        self.json()
            .as_array()
            .unwrap_or_else(|| panic!("not a listing: {}", self.stdout))
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn wat(name: &str) -> PathBuf {
    support::fixture(&format!("wat/{name}.wat"))
}
