//! Which files of a directory are actions and workflows, and their names:
//! one rule for `serve --actions DIR`, `action list` and `run NAME`.
//!
//! A component (`.wasm`, `.wat`) or workflow (`.yaml`, `.yml`) in the
//! directory is named by its file stem (`vm.clone.wasm` is `vm.clone`);
//! an action directory one level down, as `wasmflow new` and `build` lay
//! it out, by the directory (`vm.clone/vm.clone.wasm` is `vm.clone`). A
//! directory with nothing built yet is not an action. An installed pack's
//! items are `pack.item`, recorded as `pack.item@version`.
//!
//! What it must not touch: loading or checking what it finds (the caller
//! does, and says what does not load).

use crate::definition::is_workflow_path;
use std::path::{Path, PathBuf};

/// An action or workflow found in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub path: PathBuf,
    /// A workflow file, not a component.
    pub workflow: bool,
    /// How records name it: `name`, or a pack's `pack.item@version`.
    pub recorded_as: String,
}

/// Every action and workflow in `dir`, by name (sorted by path).
pub fn discover(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| match p.is_dir() {
            true => built_in(&p),
            false => Some(p).filter(|p| p.is_file()),
        })
        .collect();
    files.sort();
    Ok(files.into_iter().filter_map(found).collect())
}

/// Every action and workflow of the packs installed in `packs_dir`, as
/// `pack.item`, by name.
pub fn installed(packs_dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    for pack in wasmflow_registry::pack::installed(packs_dir) {
        let m = &pack.manifest;
        let items = m.actions.keys().chain(m.workflows.keys());
        for item in items {
            let Some(path) = pack.item(item) else {
                continue;
            };
            out.push(Found {
                name: format!("{}.{item}", m.name),
                workflow: is_workflow_path(&path),
                recorded_as: format!("{}.{item}@{}", m.name, m.version),
                path,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The component `wasmflow build` made in the action directory `dir`
/// (`DIR/NAME.wasm`), if there is one.
pub fn built_in(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    Some(dir.join(format!("{name}.wasm"))).filter(|p| p.is_file())
}

fn found(path: PathBuf) -> Option<Found> {
    let workflow = is_workflow_path(&path);
    let component = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wasm" | "wat")
    );
    if !workflow && !component {
        return None;
    }
    let name = path.file_stem()?.to_str()?.to_owned();
    Some(Found {
        recorded_as: name.clone(),
        name,
        path,
        workflow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_built_action_directories_are_found_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("add.wat"), "").unwrap();
        std::fs::write(d.join("chain.yaml"), "").unwrap();
        std::fs::write(d.join("README.md"), "").unwrap();
        std::fs::create_dir_all(d.join("vm.clone")).unwrap();
        std::fs::write(d.join("vm.clone/vm.clone.wasm"), "").unwrap();
        std::fs::create_dir_all(d.join("unbuilt/wit")).unwrap();
        let found = discover(d).unwrap();
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.workflow))
            .collect();
        assert_eq!(
            names,
            [("add", false), ("chain", true), ("vm.clone", false)]
        );
        assert_eq!(found[2].path, d.join("vm.clone/vm.clone.wasm"));
        assert_eq!(built_in(&d.join("unbuilt")), None);
    }
}
