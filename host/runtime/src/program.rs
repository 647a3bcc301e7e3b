//! Running granted host programs for the `wasmflow:action/process` interface.
//!
//! The child gets an empty environment but `PATH` (and the execution's
//! `--secret-env` variables), the host's working
//! directory, piped stdio, the confinement of [`crate::confine`], and a
//! process group of its own. When it exits, or the execution is dropped
//! (timeout, cancel), the whole group is killed: nothing it started is
//! left running.

use crate::bindings::wasmflow::action::process::{Output, ProcessError};
use crate::confine::{self, Policy};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host path to run for `program`, if a grant covers it.
///
/// A grant is a bare name (`qemu-img`, looked up on `PATH` now) or an
/// absolute path; the guest may ask for either spelling of a granted program.
pub(crate) fn resolve(grants: &[String], program: &str) -> Option<Result<PathBuf, String>> {
    let grant = grants
        .iter()
        .find(|g| *g == program || (g.starts_with('/') && g.rsplit('/').next() == Some(program)))?;
    if grant.starts_with('/') {
        return Some(Ok(PathBuf::from(grant)));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    Some(
        std::env::split_paths(&path)
            .map(|dir| dir.join(grant))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("`{grant}` is granted but was not found on PATH")),
    )
}

/// Kills the child's process group when dropped. The leader is not reaped
/// before this runs (see `run`), so its id cannot name another group yet.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: a plain signal to a process group this code created.
        unsafe {
            libc::killpg(self.0, libc::SIGKILL);
        }
    }
}

/// Why a program could not be run at all (the host's refusal, not the
/// program's failure).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
}

pub(crate) async fn run(
    path: &Path,
    program: &str,
    args: &[String],
    stdin: Option<Vec<u8>>,
    output_limit: usize,
    policy: &Policy,
    env: &[(String, String)],
) -> Result<Result<Output, ProcessError>, Refused> {
    let confinement = match confine::prepare(policy, path) {
        Ok(c) => c,
        Err(e @ confine::ConfineError::Unconfined(_)) => return Err(e.into()),
        Err(e) => return Ok(Err(ProcessError::Failed(e.to_string()))),
    };
    let mut cmd = tokio::process::Command::new(path);
    cmd.args(args)
        .env_clear()
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    confinement.install(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Ok(Err(ProcessError::Failed(format!(
                "cannot start `{program}`: {e}"
            ))))
        }
    };
    let pid = child.id().expect("a child just spawned has an id") as i32;
    let group = Group(pid);
    let feed = {
        let pipe = child.stdin.take();
        async move {
            if let (Some(mut pipe), Some(bytes)) = (pipe, stdin) {
                // A child that exits without reading its input is not an error.
                let _ = pipe.write_all(&bytes).await;
            }
        }
    };
    let limit = output_limit as u64;
    let read_capped = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = (&mut pipe).take(limit).read_to_end(&mut buf).await;
            // Keep draining past the cap so the child never blocks on a full pipe.
            let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
        }
        buf
    };
    let out = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    let err = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
    // When the program itself exits, what it started in the background
    // goes with it: that also closes the pipes they inherited, so the
    // reads below end. The leader stays a zombie (not reaped) until then,
    // so its id still names this group only.
    let leader_exit = async move {
        let _ = tokio::task::spawn_blocking(move || wait_exited(pid)).await;
        drop(group);
    };
    let ((), stdout, stderr, ()) =
        tokio::join!(feed, read_capped(out), read_capped(err), leader_exit);
    let status = match child.wait().await {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(ProcessError::Failed(format!(
                "waiting for `{program}`: {e}"
            ))))
        }
    };
    Ok(Ok(Output {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }))
}

/// Block until `pid` has exited, without reaping it.
fn wait_exited(pid: i32) {
    loop {
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: waitid fills `info`; WNOWAIT leaves the child waitable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}
