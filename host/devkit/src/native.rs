//! Building C, C++ and Zig actions: the world's C bindings (wit-bindgen's
//! C generator), a `wasm32-wasi` reactor module compiled by Zig (its
//! `cc`, `c++` and `build-exe`, with its bundled wasi-libc), then a
//! component made by wit-component with the WASI preview 1 adapter that
//! is embedded in wasmflow, so a build downloads nothing.
//!
//! Everything generated goes under `DIR/target/wasmflow/`, never beside
//! the user's source. The world is always generated as `action` (header
//! `action.h`, `exports_action_run`, `action_string_t`), whatever the WIT
//! calls it, so the SDK and every action's source read the same names.

use crate::build::{on_path, python_with, run_tool, Toolchain, World};
use crate::{io, DevkitError, Lang};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

/// The name the world's bindings are generated under.
const BINDINGS_WORLD: &str = "action";

/// Zig, as `zig` on PATH or as the `ziglang` Python package.
pub(crate) fn zig_toolchain(lang: Lang) -> Result<Toolchain, DevkitError> {
    if let Some(p) = on_path("zig") {
        return Ok(Toolchain {
            tool: "zig",
            program: p,
            prefix: vec![],
        });
    }
    if let Some(python) = python_with("ziglang") {
        return Ok(Toolchain {
            tool: "zig",
            program: python,
            prefix: vec!["-m".into(), "ziglang".into()],
        });
    }
    Err(DevkitError::ToolchainMissing {
        lang: lang.name(),
        tool: "Zig",
        hint: "pip install ziglang (or put `zig` on PATH)",
    })
}

/// Build the action in `dir` (C, C++ or Zig) into the component `out`.
pub(crate) fn build(
    dir: &Path,
    lang: Lang,
    world: &World,
    zig: &Toolchain,
    out: &Path,
) -> Result<(), DevkitError> {
    let work = dir.join("target/wasmflow");
    let bindings = work.join("bindings");
    // Stale bindings of an older world must not be compiled in.
    if bindings.exists() {
        std::fs::remove_dir_all(&bindings).map_err(io(&bindings))?;
    }
    std::fs::create_dir_all(&bindings).map_err(io(&bindings))?;
    write_bindings(world, &bindings)?;

    let core = work.join("core.wasm");
    let compile = Compile {
        dir,
        zig,
        bindings: &bindings,
        objects: work.join("obj"),
        cache: work.join("zig-cache"),
    };
    let objects = compile.c_objects()?;
    match lang {
        Lang::C => compile.link_c(&objects, &core)?,
        Lang::Cpp => compile.link_cpp(&objects, &core)?,
        Lang::Zig => compile.link_zig(&objects, &core)?,
        other => unreachable!("{} is not built by Zig", other.name()),
    }

    // The world's type information came in with the bindings' object.
    let module = std::fs::read(&core).map_err(io(&core))?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| {
            e.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(|e| DevkitError::BuildFailed {
            tool: "wit-component".into(),
            status: "componentizing the core module".into(),
            output: format!("{e:#}"),
        })?;
    std::fs::write(out, component).map_err(io(out))
}

/// `action.h`, `action.c` and `action_component_type.o` (the world's
/// types, as a custom section the linker carries into the module) for the
/// world, into `into`.
fn write_bindings(world: &World, into: &Path) -> Result<(), DevkitError> {
    let opts = wit_bindgen_c::Opts {
        rename_world: Some(BINDINGS_WORLD.into()),
        ..Default::default()
    };
    let mut files = wit_bindgen_core::Files::default();
    let mut resolve = world.resolve.clone();
    opts.build()
        .generate(&mut resolve, world.world, &mut files)
        .map_err(|e| DevkitError::BuildFailed {
            tool: "wit-bindgen-c".into(),
            status: "generating the C bindings".into(),
            output: format!("{e:#}"),
        })?;
    for (name, contents) in files.iter() {
        let path = into.join(name);
        std::fs::write(&path, contents).map_err(io(&path))?;
    }
    Ok(())
}

/// Zig builds wasi-libc with DWARF: ~900 KB in every module, holding the
/// paths of the Zig install (so bytes would differ between machines). The
/// `name` section stays, for function names in traps.
const STRIP_DEBUG: &str = "-Wl,--strip-debug";

/// One build's compiler invocations.
struct Compile<'a> {
    dir: &'a Path,
    zig: &'a Toolchain,
    bindings: &'a Path,
    objects: PathBuf,
    cache: PathBuf,
}

impl Compile<'_> {
    fn zig_cmd(&self, sub: &str) -> Command {
        let mut cmd = Command::new(&self.zig.program);
        cmd.args(&self.zig.prefix)
            .arg(sub)
            .current_dir(self.dir)
            // Zig's per-project cache would otherwise land in the source
            // directory (`.zig-cache`).
            .env("ZIG_LOCAL_CACHE_DIR", &self.cache);
        cmd
    }

    /// The flags every C and C++ compile shares. The source directory is
    /// mapped to `.` so that `__FILE__` (in `assert`, say) names no
    /// absolute path and the bytes do not depend on where it is built.
    fn c_flags(&self) -> Vec<OsString> {
        let mut map = OsString::from("-ffile-prefix-map=");
        map.push(self.dir);
        map.push("=.");
        let mut include = OsString::from("-I");
        include.push(self.bindings);
        vec![
            "--target=wasm32-wasi".into(),
            "-mexec-model=reactor".into(),
            "-O2".into(),
            map,
            include,
            "-I.".into(),
        ]
    }

    /// Every C file (the bindings, the SDK, the action's own) compiled as
    /// C, whatever the action's language, plus the world's type object.
    fn c_objects(&self) -> Result<Vec<PathBuf>, DevkitError> {
        if self.objects.exists() {
            std::fs::remove_dir_all(&self.objects).map_err(io(&self.objects))?;
        }
        std::fs::create_dir_all(&self.objects).map_err(io(&self.objects))?;
        let mut inputs = vec![("bindings".to_owned(), self.bindings.join("action.c"))];
        for src in sources(self.dir, "c")? {
            let stem = src.file_stem().unwrap_or_default().to_string_lossy();
            inputs.push((format!("src-{stem}"), src));
        }
        let mut objects = vec![self.bindings.join("action_component_type.o")];
        for (name, src) in inputs {
            let object = self.objects.join(format!("{name}.o"));
            let mut cmd = self.zig_cmd("cc");
            cmd.args(self.c_flags())
                .arg("-c")
                .arg(&src)
                .arg("-o")
                .arg(&object);
            run(cmd, "zig cc")?;
            objects.push(object);
        }
        Ok(objects)
    }

    fn link_c(&self, objects: &[PathBuf], core: &Path) -> Result<(), DevkitError> {
        let mut cmd = self.zig_cmd("cc");
        cmd.args(self.c_flags())
            .arg(STRIP_DEBUG)
            .args(objects)
            .arg("-o")
            .arg(core);
        run(cmd, "zig cc")
    }

    fn link_cpp(&self, objects: &[PathBuf], core: &Path) -> Result<(), DevkitError> {
        let mut cmd = self.zig_cmd("c++");
        cmd.args(self.c_flags())
            // wasm32-wasi has no exception unwinding.
            .args(["-fno-exceptions", "-std=c++20"])
            .arg(STRIP_DEBUG)
            .args(sources(self.dir, "cpp")?)
            .args(objects)
            .arg("-o")
            .arg(core);
        run(cmd, "zig c++")
    }

    /// Zig reads the SDK and the bindings as a module, `wasmflow`,
    /// translated from `wasmflow.h` (Zig has no `@cImport` any more).
    fn link_zig(&self, objects: &[PathBuf], core: &Path) -> Result<(), DevkitError> {
        let mut include = OsString::from("-I");
        include.push(self.bindings);
        let header = self.dir.join("wasmflow.h");
        let mut cmd = self.zig_cmd("translate-c");
        cmd.args(["-target", "wasm32-wasi", "-lc"])
            .arg(&include)
            .arg("-I.")
            .arg(&header);
        let translated = run_tool(cmd, "zig translate-c")?;
        let module = self.bindings.join("wasmflow.zig");
        std::fs::write(&module, translated).map_err(io(&module))?;

        let mut emit = OsString::from("-femit-bin=");
        emit.push(core);
        let mut sdk = OsString::from("-Mwasmflow=");
        sdk.push(&module);
        let mut cmd = self.zig_cmd("build-exe");
        cmd.args([
            "-target",
            "wasm32-wasi",
            "-mexec-model=reactor",
            "-fno-entry",
        ])
        .args(["-O", "ReleaseFast", "-lc", "-fstrip"])
        .arg("--cache-dir")
        .arg(&self.cache)
        .arg(emit)
        .args(["--dep", "wasmflow", "-Mroot=app.zig"])
        .arg(sdk)
        .args(objects);
        run(cmd, "zig build-exe")
    }
}

/// The action's own `*.EXT` files at the top of `dir`, in name order (the
/// same order on every machine: reproducible builds).
fn sources(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, DevkitError> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok())
        .map(|e| PathBuf::from(e.file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    Ok(found)
}

fn run(cmd: Command, tool: &str) -> Result<(), DevkitError> {
    run_tool(cmd, tool).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the world is called, the names the SDK and the sources use
    /// are the same.
    #[test]
    fn bindings_are_generated_as_the_action_world() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::new_action(tmp.path(), "vm.resize", Lang::C).unwrap();
        let wit = dir.join("wit/world.wit");
        let text = std::fs::read_to_string(&wit).unwrap();
        std::fs::write(&wit, text.replace("world action", "world resizer")).unwrap();
        let world = crate::build::world_of(&dir).unwrap();
        assert_eq!(world.name, "resizer");
        let out = tmp.path().join("bindings");
        std::fs::create_dir(&out).unwrap();
        write_bindings(&world, &out).unwrap();
        let header = std::fs::read_to_string(out.join("action.h")).unwrap();
        for name in [
            "bool exports_action_run(action_request_t *request, action_greeting_t *ret, action_error_t *err);",
            "typedef struct action_string_t {",
            "extern bool wasmflow_action_process_run(",
            "void action_request_free(action_request_t *ptr);",
        ] {
            assert!(header.contains(name), "{name}");
        }
        assert!(out.join("action.c").is_file());
        assert!(out.join("action_component_type.o").is_file());
    }
}
