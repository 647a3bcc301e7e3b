//! Answers fixed when a sandbox is built: the environment, the insecure
//! random seed, and what granted directories contain. Recorded when live,
//! taken from the tape in replay.
//!
//! Directories are snapshotted whole at start (content-addressed, so an
//! unchanged file costs nothing the second time), up to a budget. Replay
//! materializes the snapshot in a temporary directory and preopens that
//! instead, so a replay never reads or writes the operator's real files.

use crate::sandbox::SharedJournal;
use crate::world::{put_blob, World};
use std::path::Path;
use wasmflow_store::{Event, Grants, LogLevel, Question, Store};

/// Past this, a directory is snapshotted in part and the record says so.
const SNAPSHOT_MAX_BYTES: u64 = 64 << 20;
const SNAPSHOT_MAX_FILES: usize = 10_000;
/// Larger files (disk images, say) are left out of the snapshot, so a grant
/// over a directory of them does not copy gigabytes into the store per run.
const SNAPSHOT_MAX_FILE: u64 = 8 << 20;

fn replayed_setup(world: &World, what: &'static str) -> wasmtime::Result<Option<Event>> {
    match world.replayed(&Question::Setup(what)) {
        None => Ok(None),
        Some(Ok(e)) => Ok(Some(e)),
        Some(Err(d)) => Err(wasmtime::Error::new(d)),
    }
}

pub(crate) fn environment(
    world: &World,
    grants: &Grants,
) -> wasmtime::Result<Vec<(String, String)>> {
    if let Some(Event::Environment { vars }) = replayed_setup(world, "environment")? {
        return Ok(vars);
    }
    // A grant without a value passes the host's value, if it has one.
    let vars: Vec<(String, String)> = grants
        .env
        .iter()
        .filter_map(|e| {
            e.value
                .clone()
                .or_else(|| std::env::var(&e.name).ok())
                .map(|v| (e.name.clone(), v))
        })
        .collect();
    world.record(Event::Environment { vars: vars.clone() });
    Ok(vars)
}

pub(crate) fn insecure_seed(world: &World) -> wasmtime::Result<u128> {
    if let Some(Event::InsecureSeed { seed }) = replayed_setup(world, "insecure random seed")? {
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

/// Live: snapshot `host` and return `None` (preopen the real directory).
/// Replay: materialize the recorded snapshot and return it.
pub(crate) fn directory(
    world: &World,
    host: &str,
    guest: &str,
    journal: &SharedJournal,
) -> wasmtime::Result<Option<tempfile::TempDir>> {
    if let Some(Event::Directory {
        files, complete, ..
    }) = replayed_setup(world, "directory snapshot")?
    {
        let dir = tempfile::Builder::new()
            .prefix("wasmflow-replay-")
            .tempdir()?;
        for (rel, digest) in &files {
            let bytes = world.recorded_blob(digest).ok_or_else(|| {
                wasmtime::format_err!("recorded file {guest}/{rel} ({digest}) is missing")
            })?;
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, bytes)?;
        }
        if !complete {
            journal.note(
                LogLevel::Warn,
                format!("replay: the recording of {guest} was partial (over the snapshot budget); files it left out are absent"),
            );
        }
        return Ok(Some(dir));
    }
    // Only a recorded run needs the snapshot; otherwise the real
    // directory is preopened as it is.
    let Some(store) = world.recording_store() else {
        return Ok(None);
    };
    let mut files = Vec::new();
    let mut budget = (SNAPSHOT_MAX_BYTES, SNAPSHOT_MAX_FILES);
    let complete = snapshot(
        Path::new(host),
        Path::new(""),
        &store,
        &mut files,
        &mut budget,
    )?;
    if !complete {
        journal.note(
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
    world.record(Event::Directory {
        guest: guest.to_owned(),
        files,
        complete,
    });
    Ok(None)
}

/// Walk `root/rel` in name order, storing each regular file as a blob.
/// Symbolic links are not followed (the guest cannot follow them out of
/// the grant either). Returns whether everything was kept.
fn snapshot(
    root: &Path,
    rel: &Path,
    store: &Store,
    files: &mut Vec<(String, String)>,
    budget: &mut (u64, usize),
) -> std::io::Result<bool> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut complete = true;
    for entry in entries {
        let ty = entry.file_type()?;
        let rel = rel.join(entry.file_name());
        if ty.is_dir() {
            complete &= snapshot(root, &rel, store, files, budget)?;
        } else if ty.is_file() {
            let len = entry.metadata()?.len();
            if len > SNAPSHOT_MAX_FILE {
                complete = false;
                continue;
            }
            if len > budget.0 || budget.1 == 0 {
                return Ok(false);
            }
            budget.0 -= len;
            budget.1 -= 1;
            let bytes = std::fs::read(root.join(&rel))?;
            let digest = put_blob(store, &bytes);
            files.push((rel.to_string_lossy().into_owned(), digest));
        }
    }
    Ok(complete)
}
