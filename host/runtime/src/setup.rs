//! Answers fixed when a sandbox is built: the environment, the insecure
//! random seed, and what granted directories contain. Recorded when live,
//! taken from the tape in replay.
//!
//! Directories are snapshotted whole at start (content-addressed, so an
//! unchanged file costs nothing the second time), up to a budget. Replay
//! materializes the snapshot in a temporary directory and preopens that
//! instead, so a replay never reads or writes the operator's real files.

use crate::granted::{open_at, proc_path, GrantedDir};
use crate::log_book::SharedLogBook;
use crate::secrets::Secrets;
use crate::world::{put_blob, World};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use wasmflow_datastore::reference::{self, Reference};
use wasmflow_store::{Event, Grants, LogLevel, Question, SecretUse, Store};

/// Past this, a directory is snapshotted in part and the record says so.
const SNAPSHOT_MAX_BYTES: u64 = 64 << 20;
const SNAPSHOT_MAX_FILES: usize = 10_000;
/// Larger files (disk images, say) are left out of the snapshot, so a grant
/// over a directory of them does not copy gigabytes into the store per run.
const SNAPSHOT_MAX_FILE: u64 = 8 << 20;

/// The environment a sandbox starts with.
pub(crate) struct Environment {
    /// The guest's variables.
    pub vars: Vec<(String, String)>,
    /// The `--secret-env` variables, which granted programs get too.
    pub for_programs: Vec<(String, String)>,
}

/// The guest's environment from the env grants. A value that is a secret
/// reference is resolved, live and in replay alike (the tape keeps its
/// digest, which a replay checks); the others are recorded as they are.
pub(crate) fn environment(
    world: &World,
    grants: &Grants,
    secrets: &Secrets,
) -> wasmtime::Result<Environment> {
    let masker = world.masker();
    let mut secret_vars = Vec::new();
    let mut for_programs = Vec::new();
    for e in &grants.env {
        let Some(v) = e.value.as_deref() else {
            continue;
        };
        let found = reference::find(v);
        if found.is_empty() {
            continue;
        }
        // The grant names the key itself: no --allow-key is needed.
        let value = secrets
            .resolve(v, &|_| true, &e.name, masker)
            .map_err(|err| wasmtime::format_err!("environment variable {}: {err}", e.name))?;
        if found.iter().any(|(_, r)| matches!(r, Reference::Key(_))) {
            for_programs.push((e.name.clone(), value.clone()));
        }
        secret_vars.push((e.name.clone(), value));
    }
    let uses: Vec<SecretUse> = secret_vars
        .iter()
        .map(|(name, value)| SecretUse {
            name: name.clone(),
            sha256: crate::secrets::digest(value),
        })
        .collect();
    if let Some(Event::Environment { mut vars, secrets }) =
        world.recorded(&Question::Setup("environment"), Some)?
    {
        if let Some(changed) = uses.iter().find(|u| !secrets.contains(u)) {
            return Err(wasmtime::format_err!(
                "secret environment variable {} differs from the one recorded (its sha256, or \
                 whether it was given at all): a replay needs the same secrets",
                changed.name
            ));
        }
        vars.extend(secret_vars);
        return Ok(Environment { vars, for_programs });
    }
    // A grant without a value passes the host's value, if it has one.
    let mut vars: Vec<(String, String)> = grants
        .env
        .iter()
        .filter(|e| !e.value.as_deref().is_some_and(reference::holds))
        .filter_map(|e| {
            e.value
                .clone()
                .or_else(|| std::env::var(&e.name).ok())
                .map(|v| (e.name.clone(), v))
        })
        .collect();
    world.record(Event::Environment {
        vars: vars.clone(),
        secrets: uses,
    });
    vars.extend(secret_vars);
    Ok(Environment { vars, for_programs })
}

pub(crate) fn insecure_seed(world: &World) -> wasmtime::Result<u128> {
    if let Some(Event::InsecureSeed { seed }) =
        world.recorded(&Question::Setup("insecure random seed"), Some)?
    {
        return seed
            .parse()
            .map_err(|_| wasmtime::format_err!("recorded insecure seed `{seed}` is not a number"));
    }
    let mut bytes = [0u8; 16];
    wasmtime_wasi::thread_rng().fill_bytes(&mut bytes);
    let seed = u128::from_le_bytes(bytes);
    world.record(Event::InsecureSeed {
        seed: seed.to_string(),
    });
    Ok(seed)
}

/// Replay: materialize the recorded snapshot of the next granted
/// directory and return it (the sandbox preopens it instead of the real
/// one). Live: `None`.
pub(crate) fn replayed_directory(
    world: &World,
    guest: &str,
    log_book: &SharedLogBook,
) -> wasmtime::Result<Option<tempfile::TempDir>> {
    let Some(Event::Directory {
        files, complete, ..
    }) = world.recorded(&Question::Setup("directory snapshot"), Some)?
    else {
        return Ok(None);
    };
    let dir = tempfile::Builder::new()
        .prefix("wasmflow-replay-")
        .tempdir()
        .map_err(|e| {
            wasmtime::format_err!("creating a directory for the snapshot of {guest}: {e}")
        })?;
    for (rel, digest) in &files {
        let bytes = world.recorded_blob(digest).ok_or_else(|| {
            wasmtime::format_err!("recorded file {guest}/{rel} ({digest}) is missing")
        })?;
        let path = dir.path().join(rel);
        let at = |e: std::io::Error| {
            wasmtime::format_err!("materializing {guest}/{rel} at {}: {e}", path.display())
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(at)?;
        }
        std::fs::write(&path, bytes).map_err(at)?;
    }
    if !complete {
        log_book.note(
            LogLevel::Warn,
            format!("replay: the recording of {guest} was partial (over the snapshot budget); files it left out are absent"),
        );
    }
    Ok(Some(dir))
}

/// Live and recorded: snapshot the granted directory `dir` (seen by the
/// guest at `guest`) onto the tape.
pub(crate) fn snapshot_directory(
    world: &World,
    dir: &GrantedDir,
    guest: &str,
    log_book: &SharedLogBook,
) -> wasmtime::Result<()> {
    // Only a recorded run needs the snapshot.
    let Some(store) = world.recording_store() else {
        return Ok(());
    };
    let mut walk = Walk {
        store: &store,
        files: Vec::new(),
        budget: (SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_FILES),
        churn: Vec::new(),
    };
    let complete = walk.dir(dir.fd(), Path::new(""), &dir.host)?;
    if !complete {
        log_book.note(
            LogLevel::Warn,
            format!(
                "snapshot of {guest} is partial (files over {} MiB, or past {} files / {} MiB in all, \
                 are left out): a replay will not see them",
                SNAPSHOT_MAX_FILE >> 20,
                SNAPSHOT_MAX_FILES,
                SNAPSHOT_MAX_BYTES >> 20
            ),
        );
    }
    const SHOWN: usize = 10;
    for line in walk.churn.iter().take(SHOWN) {
        log_book.note(LogLevel::Warn, format!("snapshot of {guest}: {line}"));
    }
    if walk.churn.len() > SHOWN {
        log_book.note(
            LogLevel::Warn,
            format!(
                "snapshot of {guest}: {} more files changed while it was taken",
                walk.churn.len() - SHOWN
            ),
        );
    }
    world.record(Event::Directory {
        guest: guest.to_owned(),
        files: walk.files,
        complete,
    });
    Ok(())
}

/// A walk of a granted directory by descriptor, in name order, storing
/// each regular file as a blob. Nothing is opened by a path from the
/// grant's root: each entry is opened relative to its parent's descriptor
/// without following symbolic links (the guest cannot follow them out of
/// the grant either, and a directory swapped for a link mid-walk is not
/// entered). Other processes may change the directory meanwhile: an entry
/// that vanishes, or turns into something else, is left out; a file that
/// changes while it is read is kept as read; both are noted in `churn`.
struct Walk<'a> {
    store: &'a Store,
    files: Vec<(String, String)>,
    budget: (u64, usize),
    churn: Vec<String>,
}

impl Walk<'_> {
    /// Returns whether everything was kept. Errors name the path.
    fn dir(&mut self, dir: BorrowedFd<'_>, rel: &Path, host: &str) -> wasmtime::Result<bool> {
        let at = |rel: &Path, e: std::io::Error| {
            wasmtime::format_err!("snapshot of {host}/{}: {e}", rel.display())
        };
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in std::fs::read_dir(proc_path(dir)).map_err(|e| at(rel, e))? {
            let entry = entry.map_err(|e| at(rel, e))?;
            // Only directories and regular files are kept; the type is
            // checked again on the opened descriptor.
            match entry.file_type() {
                Ok(t) if t.is_dir() || t.is_file() => names.push(entry.file_name()),
                Ok(_) => {}
                Err(e) if vanished(&e) => {}
                Err(e) => return Err(at(&rel.join(entry.file_name()), e)),
            }
        }
        names.sort();
        let mut complete = true;
        for name in names {
            let rel = rel.join(&name);
            let fd = match open_at(dir, &name, 0) {
                Ok(fd) => fd,
                Err(e) if vanished(&e) => {
                    self.churn.push(format!(
                        "{} vanished or changed type while the snapshot was taken; a replay will not see it",
                        rel.display()
                    ));
                    continue;
                }
                Err(e) => return Err(at(&rel, e)),
            };
            let file = std::fs::File::from(fd);
            let before = file.metadata().map_err(|e| at(&rel, e))?;
            if before.is_dir() {
                complete &= self.dir(file.as_fd(), &rel, host)?;
            } else if before.is_file() {
                let len = before.len();
                if len > SNAPSHOT_MAX_FILE {
                    complete = false;
                    continue;
                }
                if len > self.budget.0 || self.budget.1 == 0 {
                    return Ok(false);
                }
                self.budget.0 -= len;
                self.budget.1 -= 1;
                let mut bytes = Vec::with_capacity(len as usize);
                // Read no more than was budgeted, even if it grows.
                (&file)
                    .take(len)
                    .read_to_end(&mut bytes)
                    .map_err(|e| at(&rel, e))?;
                let after = file.metadata().map_err(|e| at(&rel, e))?;
                if bytes.len() as u64 != after.len()
                    || after.modified().ok() != before.modified().ok()
                {
                    self.churn.push(format!(
                        "{} changed while it was read; the snapshot (and a replay) has the {} bytes read",
                        rel.display(),
                        bytes.len()
                    ));
                }
                let digest = put_blob(self.store, &bytes);
                self.files
                    .push((rel.to_string_lossy().into_owned(), digest));
            }
        }
        Ok(complete)
    }
}

/// An entry that is gone (or became a symbolic link, or a file where a
/// directory was) by the time it was opened.
fn vanished(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR | libc::ENXIO)
    )
}
