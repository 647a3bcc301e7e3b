//! The built-in `core` pack: StackStorm's core actions (`core.noop`,
//! `core.echo`, `core.error`, `core.http`, `core.local`, `core.pause`,
//! `core.uuid`) as components, so that `wasmflow run core.echo -p message=hi` works on a
//! fresh install with no files.
//!
//! Each action is C source in `actions/NAME/` (`app.c`, `wit/world.wit`,
//! test cases), built by `scripts/build-core.sh` with `wasmflow build`
//! into `components/NAME.wasm`, which this crate embeds. The build is
//! reproducible, and a test rebuilds them from source and compares the
//! bytes, so what is embedded is what the sources say.
//!
//! It owns the pack's contents and writing them out as an ordinary pack
//! directory ([`install`]); finding packs by name, and a local or
//! installed pack named `core` overriding this one, are the registry's
//! (`wasmflow_registry::pack`). It must not touch anything else of a home.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The pack's name: its actions are `core.NAME`.
pub const PACK: &str = "core";

/// Its version, as records name its actions (`core.echo@VERSION`):
/// wasmflow's own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One action of the pack.
pub struct Action {
    pub name: &'static str,
    pub description: &'static str,
    /// What it needs granted, in `pack.yaml`'s terms (shown by `pack list`;
    /// never granted by itself).
    pub grants: &'static str,
    pub component: &'static [u8],
}

macro_rules! action {
    ($name:literal, $description:literal, $grants:literal) => {
        Action {
            name: $name,
            description: $description,
            grants: $grants,
            component: include_bytes!(concat!("../components/", $name, ".wasm")),
        }
    };
}

/// Every action of the pack, by name.
pub const ACTIONS: &[Action] = &[
    action!("echo", "Give back the message", ""),
    action!("error", "Fail with the message", ""),
    action!(
        "http",
        "One HTTP request (wasi:http)",
        "{ net: [HOST:PORT] }"
    ),
    action!("local", "Run a shell command (sh -c CMD)", "{ exec: [sh] }"),
    action!("noop", "Do nothing", ""),
    action!("pause", "Wait max_pause seconds", ""),
    action!("uuid", "A random (version 4) UUID", ""),
];

/// The pack's `pack.yaml`.
fn manifest() -> String {
    let mut yaml = format!(
        "# wasmflow's built-in pack, written by wasmflow {VERSION}: a pack named `core`\n\
         # in packs/ (or above a workflow) takes its place.\n\
         name: {PACK}\nversion: {VERSION}\n\
         description: StackStorm's core actions, built in\nactions:\n"
    );
    for a in ACTIONS {
        yaml += &format!(
            "  {0}:\n    component: actions/{0}.wasm\n    description: {1}\n",
            a.name, a.description
        );
        if !a.grants.is_empty() {
            yaml += &format!("    grants: {}\n", a.grants);
        }
    }
    yaml
}

/// What this build embeds, as one sha256: the stamp of a written pack.
fn stamp() -> &'static str {
    static STAMP: OnceLock<String> = OnceLock::new();
    STAMP.get_or_init(|| {
        let mut h = Sha256::new();
        h.update(manifest());
        for a in ACTIONS {
            h.update(a.name);
            h.update(Sha256::digest(a.component));
        }
        hex::encode(h.finalize())
    })
}

const STAMP_FILE: &str = ".stamp";

/// The pack written out as `dir/core` (`pack.yaml`, `actions/NAME.wasm`),
/// unless it is there already as this build embeds it; its directory.
/// Written beside and renamed into place, so a reader never sees half of
/// it and processes doing it at once all end with the same pack.
pub fn install(dir: &Path) -> std::io::Result<PathBuf> {
    let target = dir.join(PACK);
    let current = std::fs::read_to_string(target.join(STAMP_FILE));
    if current.as_deref().ok() == Some(stamp()) {
        return Ok(target);
    }
    let unique = format!("{}.{}", std::process::id(), nanos());
    let partial = dir.join(format!(".{PACK}.partial-{unique}"));
    std::fs::create_dir_all(partial.join("actions"))?;
    let written = (|| {
        std::fs::write(partial.join("pack.yaml"), manifest())?;
        for a in ACTIONS {
            std::fs::write(
                partial.join(format!("actions/{}.wasm", a.name)),
                a.component,
            )?;
        }
        std::fs::write(partial.join(STAMP_FILE), stamp())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    // Another version's: moved aside first (a rename cannot replace a
    // directory that has files).
    let old = dir.join(format!(".{PACK}.old-{unique}"));
    if target.exists() && std::fs::rename(&target, &old).is_ok() {
        let _ = std::fs::remove_dir_all(&old);
    }
    if std::fs::rename(&partial, &target).is_err() {
        // Another process put it in place meanwhile.
        let _ = std::fs::remove_dir_all(&partial);
        if std::fs::read_to_string(target.join(STAMP_FILE))
            .as_deref()
            .ok()
            != Some(stamp())
        {
            return Err(std::io::Error::other(format!(
                "could not put the core pack in place at {}",
                target.display()
            )));
        }
    }
    Ok(target)
}

/// A name no other attempt of this process has: the time in nanoseconds.
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_once_and_replaces_another_versions_pack() {
        let dir = tempfile::tempdir().unwrap();
        let pack = install(dir.path()).unwrap();
        assert_eq!(pack, dir.path().join("core"));
        let yaml = std::fs::read_to_string(pack.join("pack.yaml")).unwrap();
        assert!(yaml.contains("name: core\n"), "{yaml}");
        for a in ACTIONS {
            let bytes = std::fs::read(pack.join(format!("actions/{}.wasm", a.name))).unwrap();
            assert_eq!(bytes, a.component);
            assert_eq!(&bytes[..4], b"\0asm");
        }
        // Up to date: left as it is.
        let before = std::fs::metadata(pack.join("pack.yaml"))
            .unwrap()
            .modified()
            .unwrap();
        install(dir.path()).unwrap();
        let after = std::fs::metadata(pack.join("pack.yaml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // Another build's (or a damaged one): written again, whole.
        std::fs::write(pack.join(STAMP_FILE), "other").unwrap();
        std::fs::remove_file(pack.join("actions/echo.wasm")).unwrap();
        install(dir.path()).unwrap();
        assert!(pack.join("actions/echo.wasm").is_file());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "nothing but the pack is left behind");
    }
}
