//! Whether an action's component is the build of its sources as they are:
//! `wasmflow test` builds only when it is not (a Python build takes
//! seconds, and a test cycle should not).
//!
//! After each build, `target/wasmflow/build.stamp` records the sha256 of
//! the sources (every file of the action's directory by relative path and
//! content, but `target/`, `tests/`, caches and the built component), of
//! the toolchain that built it (its program's path, size and modification
//! time) and of this wasmflow, then the sha256 of the component. The
//! component is up to date when both still match; anything unreadable
//! means it is not.
//!
//! What it must not touch: the build itself (`build`).

use crate::build::Toolchain;
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const STAMP: &str = "target/wasmflow/build.stamp";

/// Directories and files of an action that are not what it is built from.
fn ignored(relative: &Path, component: &Path) -> bool {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    matches!(
        first.as_str(),
        "target" | "tests" | ".zig-cache" | "zig-out" | "node_modules"
    ) || name == "__pycache__"
        || name.ends_with(".wasm.partial")
        || relative == component
}

/// The sha256 of what `dir` builds from, with `toolchain`.
fn sources(dir: &Path, component: &Path, toolchain: &Toolchain) -> std::io::Result<String> {
    let component = component.strip_prefix(dir).unwrap_or(component);
    let mut files = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if ignored(&rel, component) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                todo.push(rel);
            } else {
                files.push(rel);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for rel in &files {
        let bytes = std::fs::read(dir.join(rel))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let program = std::fs::metadata(&toolchain.program)?;
    h.update(toolchain.tool.as_bytes());
    h.update(toolchain.program.to_string_lossy().as_bytes());
    h.update(program.size().to_le_bytes());
    h.update(program.mtime().to_le_bytes());
    h.update(program.mtime_nsec().to_le_bytes());
    for arg in &toolchain.prefix {
        h.update(arg.to_string_lossy().as_bytes());
    }
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    Ok(hex::encode(h.finalize()))
}

fn component_digest(component: &Path) -> std::io::Result<String> {
    Ok(hex::encode(Sha256::digest(std::fs::read(component)?)))
}

/// Whether `component` is the build of `dir`'s sources as they are now.
pub(crate) fn up_to_date(dir: &Path, component: &Path, toolchain: &Toolchain) -> bool {
    let Ok(stamp) = std::fs::read_to_string(dir.join(STAMP)) else {
        return false;
    };
    let Some((built_from, built)) = stamp.trim_end().split_once(' ') else {
        return false;
    };
    sources(dir, component, toolchain).is_ok_and(|s| s == built_from)
        && component_digest(component).is_ok_and(|c| c == built)
}

/// Remember that `component` was just built from `dir`'s sources. Best
/// effort: without a stamp the next test builds again.
pub(crate) fn record(dir: &Path, component: &Path, toolchain: &Toolchain) {
    let (Ok(from), Ok(built)) = (
        sources(dir, component, toolchain),
        component_digest(component),
    ) else {
        return;
    };
    let path = dir.join(STAMP);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, format!("{from} {built}\n"));
}
