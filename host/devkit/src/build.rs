//! `wasmflow build`: find the language's toolchain and turn an action
//! directory into `DIR/NAME.wasm`.
//!
//! The world to build comes from `wit/` itself (the root package's one
//! world), so the build needs no configuration file that could drift from
//! the WIT.

use crate::{io, DevkitError, Lang};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wit_parser::{PackageMetadata, Resolve, WorldId};

/// A successful build.
#[derive(Debug)]
pub struct Built {
    pub component: PathBuf,
    pub lang: Lang,
    /// The tool that built it, as found (`componentize-py`, a path, …).
    pub toolchain: Toolchain,
    pub took: Duration,
}

/// How a language's componentizer is invoked.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// What it is: `componentize-py`, `componentize-js`, `cargo`, `zig`.
    pub tool: &'static str,
    pub program: PathBuf,
    /// Arguments before the build's own (e.g. `-m componentize_py`).
    pub prefix: Vec<OsString>,
}

/// The world an action's `wit/` declares: `ns:pkg/world@version`, the
/// plain world name, its doc comments encoded for the component, and the
/// resolved WIT (which the C family's bindings and component are made
/// from).
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) docs: Vec<u8>,
    pub(crate) resolve: Resolve,
    pub(crate) world: WorldId,
}

pub(crate) fn world_of(dir: &Path) -> Result<World, DevkitError> {
    let wit = dir.join("wit");
    if !wit.is_dir() {
        return Err(DevkitError::NotAnAction {
            dir: dir.to_owned(),
            detail: "no wit/ directory with the action's world".into(),
        });
    }
    let mut resolve = Resolve::default();
    // render_error puts file:line:column and the offending line in.
    let (pkg, _) = resolve.push_dir(&wit).map_err(|e| DevkitError::Wit {
        path: wit.clone(),
        detail: resolve.render_error(&e),
    })?;
    let package = &resolve.packages[pkg];
    let worlds: Vec<&String> = package.worlds.keys().collect();
    let name = match worlds.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(DevkitError::Wit {
                path: wit,
                detail: format!("package {} declares no world", package.name),
            })
        }
        many => {
            return Err(DevkitError::Wit {
                path: wit,
                detail: format!(
                    "package {} declares {} worlds ({}); an action has one",
                    package.name,
                    many.len(),
                    many.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    };
    let n = &package.name;
    let id = match &n.version {
        Some(v) => format!("{}:{}/{name}@{v}", n.namespace, n.name),
        None => format!("{}:{}/{name}", n.namespace, n.name),
    };
    let world = resolve.packages[pkg].worlds[&name];
    // The docs section describes the component's own decoded world, which
    // is always `root:component/root`: the world goes in under that name.
    let mut renamed = resolve.clone();
    renamed.packages[pkg].worlds = [("root".to_owned(), world)].into_iter().collect();
    let docs = PackageMetadata::extract(&renamed, pkg)
        .encode()
        .map_err(|e| DevkitError::Wit {
            path: wit,
            detail: format!("encoding the docs: {e:#}"),
        })?;
    Ok(World {
        id,
        name,
        docs,
        resolve,
        world,
    })
}

/// Put the world's doc comments into the component as a `package-docs`
/// section, the way wit-component does, so `wasmflow inspect`, `push` and
/// the JSON Schema show them. componentize-py and componentize-js leave
/// them out; a component that has them already is left as it is.
fn embed_docs(docs: &[u8], component: &Path) -> Result<(), DevkitError> {
    let mut bytes = std::fs::read(component).map_err(io(component))?;
    if has_section_named(&bytes, PackageMetadata::SECTION_NAME) {
        return Ok(());
    }
    wasmflow_runtime::inspect::append_package_docs(&mut bytes, docs);
    std::fs::write(component, bytes).map_err(io(component))
}

/// Whether a custom section called `name` is in `wasm` (a byte search: a
/// false positive only skips adding docs).
fn has_section_named(wasm: &[u8], name: &str) -> bool {
    wasm.windows(name.len()).any(|w| w == name.as_bytes())
}

/// `PROGRAM` on `PATH`.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `python3` on PATH, if `import MODULE` works with it (a pip-installed
/// toolchain: componentize-py, ziglang).
pub(crate) fn python_with(module: &str) -> Option<PathBuf> {
    let python = on_path("python3")?;
    Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
        .then_some(python)
}

/// Run a build tool; what it printed on stdout, or a failure carrying
/// everything it printed.
pub(crate) fn run_tool(mut cmd: Command, tool: &str) -> Result<Vec<u8>, DevkitError> {
    let out = cmd.output().map_err(|e| DevkitError::BuildFailed {
        tool: tool.into(),
        status: "could not start".into(),
        output: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(DevkitError::BuildFailed {
        tool: tool.into(),
        status: out.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim_end()
        .to_owned(),
    })
}

fn python_toolchain() -> Result<Toolchain, DevkitError> {
    if let Some(p) = on_path("componentize-py") {
        return Ok(Toolchain {
            tool: "componentize-py",
            program: p,
            prefix: vec![],
        });
    }
    // pip puts the console script on PATH only through a pyenv shim or a
    // venv's bin; the module itself is importable whenever it is installed.
    if let Some(python) = python_with("componentize_py") {
        return Ok(Toolchain {
            tool: "componentize-py",
            program: python,
            prefix: vec![
                "-c".into(),
                "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())".into(),
            ],
        });
    }
    Err(DevkitError::ToolchainMissing {
        lang: "python",
        tool: "componentize-py",
        hint: "pip install componentize-py",
    })
}

fn js_toolchain(dir: &Path) -> Result<Toolchain, DevkitError> {
    // The action's own node_modules first, then any enclosing project's,
    // then PATH (a global install).
    let local = dir
        .ancestors()
        .map(|d| d.join("node_modules/.bin/componentize-js"))
        .find(|p| p.is_file());
    match local.or_else(|| on_path("componentize-js")) {
        Some(p) => Ok(Toolchain {
            tool: "componentize-js",
            program: p,
            prefix: vec![],
        }),
        None => Err(DevkitError::ToolchainMissing {
            lang: "js",
            tool: "componentize-js",
            hint: "npm install @bytecodealliance/componentize-js (in the action's directory or a parent)",
        }),
    }
}

fn rust_toolchain() -> Result<Toolchain, DevkitError> {
    let cargo = on_path("cargo").ok_or(DevkitError::ToolchainMissing {
        lang: "rust",
        tool: "cargo",
        hint: "install Rust with rustup (https://rustup.rs)",
    })?;
    // The target's standard library must be installed; cargo would only
    // say "can't find crate for `core`" after a while.
    let libdir = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if !libdir.is_some_and(|d| d.is_dir()) {
        return Err(DevkitError::ToolchainMissing {
            lang: "rust",
            tool: "the wasm32-wasip2 standard library",
            hint: "rustup target add wasm32-wasip2",
        });
    }
    Ok(Toolchain {
        tool: "cargo",
        program: cargo,
        prefix: vec![],
    })
}

/// The toolchain that builds `lang`, or what to install.
pub fn toolchain(lang: Lang, dir: &Path) -> Result<Toolchain, DevkitError> {
    match lang {
        Lang::Python => python_toolchain(),
        Lang::Js => js_toolchain(dir),
        Lang::Rust => rust_toolchain(),
        Lang::C | Lang::Cpp | Lang::Zig => crate::native::zig_toolchain(lang),
    }
}

/// Where the action in `dir` is built to: `dir/NAME.wasm`, NAME being the
/// directory's name.
pub fn component_path(dir: &Path) -> Result<PathBuf, DevkitError> {
    let dir = dir.canonicalize().map_err(io(dir))?;
    let name =
        dir.file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| DevkitError::NotAnAction {
                dir: dir.clone(),
                detail: "the directory name is not UTF-8".into(),
            })?;
    Ok(dir.join(format!("{name}.wasm")))
}

/// Build the action in `dir` into `dir/NAME.wasm` (NAME: the directory's
/// name).
pub fn build(dir: &Path) -> Result<Built, DevkitError> {
    let dir = dir.canonicalize().map_err(io(dir))?;
    let built = build_in(&dir)?;
    crate::stamp::record(&dir, &built.component, &built.toolchain);
    Ok(built)
}

/// The action's component, when it is the build of its sources as they
/// are now (built by [`build`] since they last changed, with the same
/// toolchain): what `wasmflow test` runs without building again.
pub fn unchanged(dir: &Path) -> Result<Option<PathBuf>, DevkitError> {
    let dir = dir.canonicalize().map_err(io(dir))?;
    let lang = Lang::detect(&dir)?;
    let toolchain = toolchain(lang, &dir)?;
    let component = component_path(&dir)?;
    Ok(crate::stamp::up_to_date(&dir, &component, &toolchain).then_some(component))
}

fn build_in(dir: &Path) -> Result<Built, DevkitError> {
    let dir = dir.to_owned();
    let lang = Lang::detect(&dir)?;
    let world = world_of(&dir)?;
    let toolchain = toolchain(lang, &dir)?;
    let component = component_path(&dir)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    // Build next to the target and rename: a failed build leaves the last
    // good component in place, never a truncated one.
    let partial = dir.join(format!(".{name}.wasm.partial"));
    let started = Instant::now();
    if lang.is_native() {
        let built = crate::native::build(&dir, lang, &world, &toolchain, &partial);
        if built.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        built?;
        return finish(world, partial, component, lang, toolchain, started);
    }
    let mut cmd = Command::new(&toolchain.program);
    cmd.args(&toolchain.prefix).current_dir(&dir);
    match lang {
        Lang::Python => {
            cmd.args(["-d", "wit", "-w", &world.id, "componentize", "app", "-o"])
                .arg(&partial);
        }
        Lang::Js => {
            cmd.args(["--wit", "wit", "--world-name", &world.name, "-o"])
                .arg(&partial)
                .arg("app.js");
        }
        Lang::Rust => {
            cmd.args(["build", "--release", "--target", "wasm32-wasip2"]);
        }
        Lang::C | Lang::Cpp | Lang::Zig => unreachable!("built above"),
    }
    if let Err(e) = run_tool(cmd, toolchain.tool) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    if lang == Lang::Rust {
        let krate = name.replace(['.', '-'], "_");
        let built = dir.join(format!("target/wasm32-wasip2/release/{krate}.wasm"));
        std::fs::copy(&built, &partial).map_err(io(&built))?;
    }
    finish(world, partial, component, lang, toolchain, started)
}

/// The docs in, and the finished component moved into place.
fn finish(
    world: World,
    partial: PathBuf,
    component: PathBuf,
    lang: Lang,
    toolchain: Toolchain,
    started: Instant,
) -> Result<Built, DevkitError> {
    embed_docs(&world.docs, &partial)?;
    std::fs::rename(&partial, &component).map_err(io(&component))?;
    Ok(Built {
        component,
        lang,
        toolchain,
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_comes_from_the_wit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::new_action(tmp.path(), "vm.resize", Lang::Python).unwrap();
        let w = world_of(&dir).unwrap();
        assert_eq!(w.id, "local:vm-resize/action@0.1.0");
        assert_eq!(w.name, "action");

        // Two worlds: which one is meant cannot be guessed.
        let world = dir.join("wit/world.wit");
        let text = std::fs::read_to_string(&world).unwrap();
        std::fs::write(&world, format!("{text}\nworld other {{}}\n")).unwrap();
        let e = world_of(&dir).unwrap_err().to_string();
        assert!(e.contains("declares 2 worlds (action, other)"), "{e}");

        // A WIT syntax error names the file and line.
        std::fs::write(
            &world,
            "package local:x@0.1.0;\nworld action {\n  export run: func(;\n}\n",
        )
        .unwrap();
        let e = world_of(&dir).unwrap_err().to_string();
        assert!(e.contains("world.wit:3"), "{e}");
    }
}
