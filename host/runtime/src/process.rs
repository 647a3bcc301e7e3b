//! Running granted host programs for the `wasmflow:action/process` interface.
//!
//! The child gets a clean environment (only `PATH`), the host's working
//! directory, piped stdio, and is killed if the execution is dropped
//! (timeout or cancel).

use crate::sandbox::bindings::wasmflow::action::process::{Output, ProcessError};
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

pub(crate) async fn run(
    path: &Path,
    program: &str,
    args: &[String],
    stdin: Option<Vec<u8>>,
    output_limit: usize,
) -> Result<Output, ProcessError> {
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
        .kill_on_drop(true);
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ProcessError::Failed(format!("cannot start `{program}`: {e}")))?;
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
    let ((), stdout, stderr) = tokio::join!(feed, read_capped(out), read_capped(err));
    let status = child
        .wait()
        .await
        .map_err(|e| ProcessError::Failed(format!("waiting for `{program}`: {e}")))?;
    Ok(Output {
        status: status.code().unwrap_or(-1),
        stdout,
        stderr,
    })
}
