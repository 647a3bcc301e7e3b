//! `wasmflow new`: a working action to start from, with a test that passes.

use crate::{io, DevkitError, Lang};
use std::path::{Path, PathBuf};

/// The SDKs, vendored into each new action beside its source so that it
/// builds with nothing but the language's componentizer.
pub const SDK_PYTHON: &str = include_str!("../../../sdk/python/wasmflow_action.py");
pub const SDK_JS: &str = include_str!("../../../sdk/js/wasmflow_action.js");
/// The C SDK (C, C++ and Zig actions): its header and its source, which
/// the build compiles with the action.
pub const SDK_C: [(&str, &str); 2] = [
    ("wasmflow.h", include_str!("../../../sdk/c/wasmflow.h")),
    ("wasmflow.c", include_str!("../../../sdk/c/wasmflow.c")),
];
const CONTRACT: &str = include_str!("../../../wit/action.wit");

const WORLD: &str = include_str!("../templates/world.wit");
const CASE_OK: &str = include_str!("../templates/case-ok.json");
const CASE_ERR: &str = include_str!("../templates/case-err.json");
const BUILD_SH: &str = include_str!("../templates/build.sh");
const README: &str = include_str!("../templates/README.md");
const GITIGNORE: &str = include_str!("../templates/gitignore");
const PY_APP: &str = include_str!("../templates/python/app.py");
const JS_APP: &str = include_str!("../templates/js/app.js");
const RS_CARGO: &str = include_str!("../templates/rust/Cargo.toml");
const RS_LIB: &str = include_str!("../templates/rust/lib.rs");
const C_APP: &str = include_str!("../templates/c/app.c");
const CPP_APP: &str = include_str!("../templates/cpp/app.cpp");
const ZIG_APP: &str = include_str!("../templates/zig/app.zig");

/// Whether `name` can name an action: it becomes a directory, a file
/// (`NAME.wasm`), a WIT package and an OCI repository.
fn check_name(name: &str) -> Result<(), DevkitError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !name.contains("..")
        && !name.ends_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(DevkitError::BadName(name.to_owned()))
    }
}

/// Create `parent/NAME/` with a WIT world, source in `lang`, two test cases
/// and a build script. Refuses to touch an existing directory.
pub fn new_action(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf, DevkitError> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(DevkitError::Exists(dir));
    }
    // WIT identifiers are kebab-case words: `vm.clone` -> `vm-clone`.
    let package = name.replace('.', "-");
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{package}}", &package)
            .replace("{{crate}}", &package.replace('-', "_"))
            .replace("{{lang}}", lang.name())
    };
    let mut files: Vec<(&str, String)> = vec![
        ("wit/world.wit", fill(WORLD)),
        ("wit/deps/action/action.wit", CONTRACT.to_owned()),
        ("tests/greets.json", CASE_OK.to_owned()),
        ("tests/rejects-empty-name.json", CASE_ERR.to_owned()),
        ("build.sh", fill(BUILD_SH)),
        ("README.md", fill(README)),
        (".gitignore", GITIGNORE.to_owned()),
    ];
    match lang {
        Lang::Python => {
            files.push(("app.py", fill(PY_APP)));
            files.push(("wasmflow_action.py", SDK_PYTHON.to_owned()));
        }
        Lang::Js => {
            files.push(("app.js", fill(JS_APP)));
            files.push(("wasmflow_action.js", SDK_JS.to_owned()));
        }
        Lang::Rust => {
            files.push(("Cargo.toml", fill(RS_CARGO)));
            files.push(("src/lib.rs", fill(RS_LIB)));
        }
        Lang::C => {
            files.push(("app.c", fill(C_APP)));
            files.extend(SDK_C.map(|(f, text)| (f, text.to_owned())));
        }
        Lang::Cpp => {
            files.push(("app.cpp", fill(CPP_APP)));
            files.extend(SDK_C.map(|(f, text)| (f, text.to_owned())));
        }
        Lang::Zig => {
            files.push(("app.zig", fill(ZIG_APP)));
            files.extend(SDK_C.map(|(f, text)| (f, text.to_owned())));
        }
    }
    // Write into a sibling temporary directory and rename it into place, so
    // a failure half-way leaves nothing behind.
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempdir_in(parent)
        .map_err(io(parent))?;
    for (rel, text) in &files {
        let path = staging.path().join(rel);
        let d = path.parent().expect("scaffold files are in a directory");
        std::fs::create_dir_all(d).map_err(io(d))?;
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    make_executable(&staging.path().join("build.sh"))?;
    let staged = staging.keep();
    std::fs::rename(&staged, &dir).map_err(io(&dir))?;
    Ok(dir)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), DevkitError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io(path))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), DevkitError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["hello", "vm.clone", "disk-create2"] {
            check_name(good).unwrap();
        }
        for bad in ["", "Hello", "1x", "a/b", "a..b", "x.", "x_y", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scaffolds_each_language_and_refuses_existing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        for lang in Lang::ALL {
            let name = format!("greet.{}", lang.name());
            let dir = new_action(tmp.path(), &name, lang).unwrap();
            assert_eq!(Lang::detect(&dir).unwrap(), lang);
            let world = std::fs::read_to_string(dir.join("wit/world.wit")).unwrap();
            assert!(world.contains(&format!("package local:greet-{}@0.1.0;", lang.name())));
            assert!(!world.contains("{{"), "every placeholder is filled");
            assert!(dir.join("tests/greets.json").is_file());
            assert!(matches!(
                new_action(tmp.path(), &name, lang),
                Err(DevkitError::Exists(_))
            ));
        }
        // Nothing but the six actions: no staging directories left over.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 6);
    }
}
