//! `wasmflow:action/keys`: the datastore's keys, as granted by
//! `--allow-key`. A plain key's value is recorded; a secret's only by its
//! sha256: a replay reads it from the datastore again and checks it, and
//! the value joins the execution's masked secrets either way.

use crate::bindings::wasmflow::action::keys::{self, KeyError};
use crate::sandbox::Sandbox;
use crate::secrets::digest;
use wasmflow_datastore::reference;
use wasmflow_store::{Event, KeyOutcome, Question};

impl keys::Host for Sandbox {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<Option<String>, KeyError>> {
        let world = self.world().clone();
        let question = Question::Key { name: name.clone() };
        if let Some(outcome) = world.recorded(&question, |e| match e {
            Event::Key { outcome, .. } => Some(outcome),
            _ => None,
        })? {
            return Ok(match outcome {
                KeyOutcome::Value(v) => Ok(Some(v)),
                KeyOutcome::Absent => Ok(None),
                KeyOutcome::Denied(m) => Err(KeyError::Denied(m)),
                KeyOutcome::Unavailable(m) => Err(KeyError::Unavailable(m)),
                KeyOutcome::Secret(sha256) => {
                    let value = match self.secrets.key(&name) {
                        Ok(Some((v, _))) if digest(&v) == sha256 => v,
                        Ok(_) => {
                            return Err(wasmtime::format_err!(
                                "secret `{name}` is missing, or not the one recorded (its sha256 differs): \
                                 a replay needs the same secrets"
                            ))
                        }
                        Err(e) => return Err(wasmtime::format_err!("{e}")),
                    };
                    world.masker().add(&value);
                    Ok(Some(value))
                }
            });
        }
        let (answer, outcome) = if !reference::granted(&self.key_grants, &name) {
            self.log_book.deny(
                "key",
                &name,
                &format!("not granted; use --allow-key {name}"),
            );
            let m = format!(
                "key `{name}` is not granted to this execution (grant it with --allow-key {name})"
            );
            (Err(KeyError::Denied(m.clone())), KeyOutcome::Denied(m))
        } else {
            match self.secrets.key(&name) {
                Ok(Some((v, true))) => {
                    world.masker().add(&v);
                    let sha = digest(&v);
                    (Ok(Some(v)), KeyOutcome::Secret(sha))
                }
                Ok(Some((v, false))) => (Ok(Some(v.clone())), KeyOutcome::Value(v)),
                Ok(None) => (Ok(None), KeyOutcome::Absent),
                Err(e) => {
                    let m = e.to_string();
                    (
                        Err(KeyError::Unavailable(m.clone())),
                        KeyOutcome::Unavailable(m),
                    )
                }
            }
        };
        world.record(Event::Key { name, outcome });
        Ok(answer)
    }
}
