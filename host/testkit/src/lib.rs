//! Test support for wasmflow's own tests (a dev-dependency only; nothing
//! here ships in the binary).
//!
//! [`PgCluster`]: a private PostgreSQL cluster, one per test binary, made
//! with Debian's server binaries the way an operator would: `initdb` into
//! a temporary directory (as the `postgres` user via `runuser` when the
//! tests run as root, since PostgreSQL refuses root), `pg_ctl start` on a
//! free loopback port with its socket in that directory. Nothing
//! system-wide is touched, and a watchdog stops the cluster and removes
//! its directory when the test process exits, however it exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// A running private cluster. Each test takes a database of its own
/// ([`PgCluster::database`]).
pub struct PgCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    databases: AtomicU32,
}

/// The superuser the cluster is made with (trust auth on loopback only).
const USER: &str = "wasmflow";

impl PgCluster {
    /// The cluster of this test binary, started on first use.
    pub fn shared() -> &'static PgCluster {
        static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| PgCluster::start().unwrap_or_else(|e| panic!("{e}")))
    }

    fn start() -> Result<Self, String> {
        let bin = server_bin()?;
        // Not under /tmp's sticky bit trouble: a directory of our own,
        // handed to the user the server runs as.
        let dir = tempfile::Builder::new()
            .prefix("wasmflow-pg-")
            .tempdir()
            .map_err(|e| format!("a directory for the test cluster: {e}"))?
            .keep();
        let as_root = unsafe { libc::geteuid() } == 0;
        if as_root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!("chown postgres {} failed", dir.display()));
            }
        }
        let data = dir.join("data");
        run(
            as_root,
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
                .arg("--locale=C"),
        )?;
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            dir.display()
        );
        run(
            as_root,
            Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "start"]),
        )?;
        watchdog(as_root, &bin, &dir);
        Ok(Self {
            dir,
            port,
            bin,
            databases: AtomicU32::new(0),
        })
    }

    /// A new empty database in the cluster, as a `postgres://` URL.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of database `name` in this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Run `sql` in database `name` as the superuser; its output.
    pub fn psql(&self, name: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", name, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every file of the cluster (data, WAL), for tests that search what
    /// reached the disk.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

/// Debian's server binaries: `/usr/lib/postgresql/VERSION/bin`, the
/// newest installed (scripts/install-toolchains.sh installs them).
fn server_bin() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!(
                "no PostgreSQL server in /usr/lib/postgresql ({e}): \
                 scripts/install-toolchains.sh installs Debian's postgresql"
            )
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a free port: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Run `cmd`, as the `postgres` user when the tests run as root.
fn run(as_root: bool, cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = if as_root {
        let mut r = Command::new("runuser");
        r.args(["-u", "postgres", "--"]).arg(cmd.get_program());
        r.args(cmd.get_args());
        r.output()
    } else {
        cmd.output()
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Stop the cluster and remove its directory once this process is gone,
/// whether it returned, panicked or was killed: a detached shell polls for
/// it.
fn watchdog(as_root: bool, bin: &Path, dir: &Path) {
    let stop = format!(
        "{} -D {} stop -m immediate",
        bin.join("pg_ctl").display(),
        dir.join("data").display()
    );
    let stop = if as_root {
        format!("runuser -u postgres -- {stop}")
    } else {
        stop
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Its own session: a test harness killing its process group does not
    // take the watchdog with it.
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let _ = cmd.spawn();
}
