//! Showing a compilation while it runs: the first run of an 18 MB Python
//! component compiles for seconds, and a wait with nothing on the screen
//! reads as a hang. On a terminal a line with the component's size and the
//! time so far, replaced by the outcome; elsewhere (CI logs) one line at
//! the end. A compilation under a second (any WAT or C action) says
//! nothing when it ends.

use crate::units::size;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use wasmflow_runtime::{CompileEvent, CompileProgress};

/// The progress of every compilation of this invocation, on stderr.
pub fn on_stderr() -> CompileProgress {
    let terminal = std::io::stderr().is_terminal();
    let bar: Mutex<Option<ProgressBar>> = Mutex::new(None);
    CompileProgress(Arc::new(move |event: &CompileEvent| {
        let mut bar = bar.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            CompileEvent::Started { reference, bytes } if terminal => {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b.set_message(format!(
                    "compiling {reference} ({}); later runs load it from the cache",
                    size(*bytes)
                ));
                b.enable_steady_tick(std::time::Duration::from_millis(200));
                *bar = Some(b);
            }
            CompileEvent::Started { .. } => {}
            CompileEvent::Finished {
                reference,
                elapsed,
                functions,
            } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if *elapsed < std::time::Duration::from_secs(1) {
                    return;
                }
                let total = functions.reused + functions.compiled;
                let reused = if functions.reused > 0 {
                    format!(
                        " ({} of {total} functions reused from earlier compilations)",
                        functions.reused
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "compiled {reference} in {:.1} s{reused}; later runs load it from the cache",
                    elapsed.as_secs_f64()
                );
            }
        }
    }))
}
