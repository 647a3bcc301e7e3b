//! wasmflow's Rust SDK.
//!
//! Owns the guest side of the `wasmflow:action` contract for Rust actions:
//! bindings to its imports (logging, progress, granted host programs), the
//! `error` type with short constructors, and `#[wasmflow::action]`, which
//! exports a plain `fn run` through the action's own bindings. It does not
//! generate the action's world: each action runs `wit_bindgen::generate!`
//! on its `wit/` and points the shared interfaces here.
//!
//! ```text
//! wit_bindgen::generate!({
//!     world: "action",
//!     path: "wit",
//!     with: {
//!         "wasmflow:action/types@0.1.0": wasmflow::types,
//!         "wasmflow:action/log@0.1.0": wasmflow::log,
//!         "wasmflow:action/process@0.1.0": wasmflow::process,
//!     },
//! });
//!
//! #[wasmflow::action]
//! fn run(request: Request) -> Result<Greeting, wasmflow::Error> {
//!     if request.name.is_empty() {
//!         return Err(wasmflow::fail("invalid-input", "name must not be empty"));
//!     }
//!     let out = wasmflow::run("echo", &["hello", &request.name])?;
//!     wasmflow::info(&format!("greeted {}", request.name));
//!     Ok(Greeting { message: String::from_utf8_lossy(&out.stdout).trim().into(), length: 0 })
//! }
//! ```

#[allow(clippy::all, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        world: "imports",
        path: "wit",
        // `error` is used by the actions' `run`, not by these imports.
        generate_unused_types: true,
    });
}

pub use bindings::wasmflow::action::{log, process, types};
pub use types::Error;
pub use wasmflow_macros::action;
pub use wit_bindgen;

use process::{Output, ProcessError};

/// The action's `err` case: a stable code and a sentence for the operator.
pub fn fail(code: impl Into<String>, message: impl Into<String>) -> Error {
    Error {
        code: code.into(),
        message: message.into(),
        retryable: false,
        details: None,
    }
}

/// Builders on [`Error`].
pub trait ErrorExt {
    /// Running the same input again may succeed.
    fn retryable(self) -> Self;
    /// Structured details, as JSON text.
    fn details_json(self, json: impl Into<String>) -> Self;
}

impl ErrorExt for Error {
    fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    fn details_json(mut self, json: impl Into<String>) -> Self {
        self.details = Some(json.into());
        self
    }
}

pub fn debug(message: &str) {
    log::write(log::Level::Debug, message)
}

pub fn info(message: &str) {
    log::write(log::Level::Info, message)
}

pub fn warn(message: &str) {
    log::write(log::Level::Warn, message)
}

pub fn error(message: &str) {
    log::write(log::Level::Error, message)
}

/// Report progress: `done` of `total` units.
pub fn progress(done: u64, total: u64, message: &str) {
    log::progress(done, total, message)
}

/// Run a granted host program (`--allow-exec PROGRAM`) and wait for it; a
/// non-zero exit is an error. See [`run_with`].
pub fn run(program: &str, args: &[&str]) -> Result<Output, Error> {
    run_with(program, args, None, true)
}

/// Run a granted host program with `stdin`. A program that is not granted,
/// not installed, or cannot start is the error `PROGRAM-denied`,
/// `PROGRAM-not-found` or `PROGRAM-failed` (retryable); with `check`, a
/// non-zero exit is `PROGRAM-exit` carrying its stderr. The same codes as
/// the Python and JavaScript SDKs.
pub fn run_with(
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    check: bool,
) -> Result<Output, Error> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    judge(program, process::run(program, &args, stdin), check)
}

/// A program's result as the action sees it.
fn judge(
    program: &str,
    result: Result<Output, ProcessError>,
    check: bool,
) -> Result<Output, Error> {
    match result {
        Err(ProcessError::Denied(m)) => Err(fail(
            format!("{program}-denied"),
            format!("cannot run {program}: {m}"),
        )),
        Err(ProcessError::NotFound(m)) => Err(fail(
            format!("{program}-not-found"),
            format!("cannot run {program}: {m}"),
        )),
        Err(ProcessError::Failed(m)) => Err(fail(
            format!("{program}-failed"),
            format!("cannot run {program}: {m}"),
        )
        .retryable()),
        Ok(out) if check && out.status != 0 => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(fail(
                format!("{program}-exit"),
                format!(
                    "{program} exited with status {}: {}",
                    out.status,
                    stderr.trim()
                ),
            ))
        }
        Ok(out) => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_built_short() {
        let e = fail("invalid-spec", "cpus must be at least 1")
            .retryable()
            .details_json(r#"{"field":"cpus"}"#);
        assert_eq!(e.code, "invalid-spec");
        assert_eq!(e.message, "cpus must be at least 1");
        assert!(e.retryable);
        assert_eq!(e.details.as_deref(), Some(r#"{"field":"cpus"}"#));
    }

    #[test]
    fn program_results_become_the_same_codes_as_the_other_sdks() {
        let denied = judge(
            "qemu-img",
            Err(ProcessError::Denied("not granted".into())),
            true,
        );
        assert_eq!(denied.unwrap_err().code, "qemu-img-denied");
        let missing = judge("qemu-img", Err(ProcessError::NotFound("no".into())), true);
        assert_eq!(missing.unwrap_err().code, "qemu-img-not-found");
        let failed = judge("qemu-img", Err(ProcessError::Failed("fork".into())), true).unwrap_err();
        assert!(failed.retryable);
        let out = |status| Output {
            status,
            stdout: b"out".to_vec(),
            stderr: b"boom\n".to_vec(),
        };
        let exit = judge("false", Ok(out(1)), true).unwrap_err();
        assert_eq!(exit.code, "false-exit");
        assert_eq!(exit.message, "false exited with status 1: boom");
        assert_eq!(judge("false", Ok(out(1)), false).unwrap().status, 1);
        assert_eq!(judge("true", Ok(out(0)), true).unwrap().stdout, b"out");
    }

    #[test]
    fn the_contract_is_the_repository_s() {
        assert_eq!(
            include_str!("../wit/action.wit"),
            include_str!("../../../../wit/action.wit"),
            "sdk/rust/wasmflow/wit/action.wit must be a copy of wit/action.wit"
        );
    }
}
