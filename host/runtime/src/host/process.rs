//! `wasmflow:action/process`: a granted program run as a question. Live,
//! the program runs confined (see `program`) and its exit and output are
//! recorded (output as blobs); in replay the recorded answer is given back
//! and nothing runs.

use crate::bindings::wasmflow::action::process;
use crate::program;
use crate::sandbox::Sandbox;
use crate::world::World;
use wasmflow_store::{Event, ProcessOutcome, Question};

impl process::Host for Sandbox {
    async fn run(
        &mut self,
        program: String,
        args: Vec<String>,
        stdin: Option<Vec<u8>>,
    ) -> wasmtime::Result<Result<process::Output, process::ProcessError>> {
        let question = Question::Process {
            program: program.clone(),
            args: args.clone(),
        };
        // A divergence stops the guest here: nothing it does after a
        // different question can be compared with the recording.
        let world = self.world().clone();
        if let Some(outcome) = world.recorded(&question, |e| match e {
            Event::Process { outcome, .. } => Some(outcome),
            _ => None,
        })? {
            return from_outcome(outcome, &world);
        }
        let result = match program::resolve(&self.exec, &program) {
            None => {
                self.log_book.deny(
                    "exec",
                    &program,
                    &format!("not granted; use --allow-exec {program}"),
                );
                Err(process::ProcessError::Denied(format!(
                    "`{program}` is not granted to this execution (grant it with --allow-exec {program})"
                )))
            }
            Some(Err(missing)) => Err(process::ProcessError::NotFound(missing)),
            Some(Ok(path)) => {
                // A program that cannot be confined stops the execution
                // (`unconfined`): the guest gets no chance to carry on as
                // if it had run.
                program::run(
                    &path,
                    &program,
                    &args,
                    stdin,
                    self.output_limit,
                    &self.confinement,
                    &self.program_env,
                )
                .await
                .map_err(wasmtime::Error::new)?
            }
        };
        if let Some(store) = world.recording_store() {
            let outcome = match &result {
                Ok(o) => ProcessOutcome::Exited {
                    status: o.status,
                    stdout: world.put_payload(&store, &o.stdout),
                    stderr: world.put_payload(&store, &o.stderr),
                },
                Err(process::ProcessError::Denied(m)) => ProcessOutcome::Denied(m.clone()),
                Err(process::ProcessError::NotFound(m)) => ProcessOutcome::NotFound(m.clone()),
                Err(process::ProcessError::Failed(m)) => ProcessOutcome::Failed(m.clone()),
            };
            world.record(Event::Process {
                program,
                args,
                outcome,
            });
        }
        Ok(result)
    }
}

/// The recorded result of a `process.run`; a payload missing from the
/// recording stops the guest.
fn from_outcome(
    outcome: ProcessOutcome,
    world: &World,
) -> wasmtime::Result<Result<process::Output, process::ProcessError>> {
    let blob = |digest: String| {
        world
            .recorded_blob(&digest)
            .ok_or_else(|| wasmtime::format_err!("recorded output {digest} is missing"))
    };
    Ok(match outcome {
        ProcessOutcome::Exited {
            status,
            stdout,
            stderr,
        } => Ok(process::Output {
            status,
            stdout: blob(stdout)?,
            stderr: blob(stderr)?,
        }),
        ProcessOutcome::Denied(m) => Err(process::ProcessError::Denied(m)),
        ProcessOutcome::NotFound(m) => Err(process::ProcessError::NotFound(m)),
        ProcessOutcome::Failed(m) => Err(process::ProcessError::Failed(m)),
    })
}
