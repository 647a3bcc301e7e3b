//! The action developer kit behind `wasmflow new`, `build` and `test`.
//!
//! This crate owns the action project layout (a WIT world in `wit/`, the
//! source, `tests/` cases), the scaffolds for each language, finding and
//! driving each language's toolchain, and running an action's test cases
//! and replay bundles against a fresh build. It runs actions only through
//! `wasmflow-runtime`, in a throwaway store: testing an action never
//! touches the user's execution history. It does not talk to registries.

mod build;
mod cases;
mod native;
mod scaffold;
mod stamp;

pub use build::{build, component_path, unchanged, Built, Toolchain};
pub use cases::{run_tests, CaseKind, CaseReport, TestReport};
pub use scaffold::{new_action, SDK_C, SDK_JS, SDK_PYTHON};

use std::path::{Path, PathBuf};

/// The languages wasmflow can scaffold and build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Python,
    Js,
    Rust,
    C,
    Cpp,
    Zig,
}

impl Lang {
    /// Every language, in the order `wasmflow new --help` lists them.
    pub const ALL: [Lang; 6] = [
        Lang::Python,
        Lang::Js,
        Lang::Rust,
        Lang::C,
        Lang::Cpp,
        Lang::Zig,
    ];
    /// Their names, as `--lang` takes them (derived from [`Lang::name`]).
    pub const NAMES: [&'static str; 6] = {
        let mut names = [""; 6];
        let mut i = 0;
        while i < Lang::ALL.len() {
            names[i] = Lang::ALL[i].name();
            i += 1;
        }
        names
    };

    pub fn parse(s: &str) -> Result<Self, DevkitError> {
        match s {
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            "rust" | "rs" => Ok(Lang::Rust),
            "c" => Ok(Lang::C),
            "cpp" | "c++" | "cxx" => Ok(Lang::Cpp),
            "zig" => Ok(Lang::Zig),
            other => Err(DevkitError::UnknownLang(other.to_owned())),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Js => "js",
            Lang::Rust => "rust",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Zig => "zig",
        }
    }

    /// The languages a build compiles with Zig to a core module and
    /// componentizes in-process.
    pub fn is_native(self) -> bool {
        matches!(self, Lang::C | Lang::Cpp | Lang::Zig)
    }

    /// The language of the action in `dir`, from its source file.
    pub fn detect(dir: &Path) -> Result<Self, DevkitError> {
        let found: Vec<Lang> = [
            ("app.py", Lang::Python),
            ("app.js", Lang::Js),
            ("Cargo.toml", Lang::Rust),
            ("app.c", Lang::C),
            ("app.cpp", Lang::Cpp),
            ("app.zig", Lang::Zig),
        ]
        .into_iter()
        .filter(|(f, _)| dir.join(f).is_file())
        .map(|(_, l)| l)
        .collect();
        match found.as_slice() {
            [one] => Ok(*one),
            [] => Err(DevkitError::NotAnAction {
                dir: dir.to_owned(),
                detail: "no app.py, app.js, Cargo.toml, app.c, app.cpp or app.zig".into(),
            }),
            _ => Err(DevkitError::NotAnAction {
                dir: dir.to_owned(),
                detail: "more than one of app.py, app.js, Cargo.toml, app.c, app.cpp and app.zig; keep one"
                    .into(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevkitError {
    #[error("unknown language `{0}` (expected python, js, rust, c, cpp or zig)")]
    UnknownLang(String),
    #[error("`{0}` is not a valid action name: use lowercase letters, digits, '.' and '-', starting with a letter")]
    BadName(String),
    #[error("{} already exists; choose another name or remove it", .0.display())]
    Exists(PathBuf),
    #[error("{}: not an action directory: {detail}", dir.display())]
    NotAnAction { dir: PathBuf, detail: String },
    #[error("{}: {detail}", path.display())]
    Wit { path: PathBuf, detail: String },
    #[error("building a {lang} action needs {tool}, which is not installed: {hint}")]
    ToolchainMissing {
        lang: &'static str,
        tool: &'static str,
        hint: &'static str,
    },
    #[error("{tool} failed ({status}):\n{output}")]
    BuildFailed {
        tool: String,
        status: String,
        output: String,
    },
    #[error("{}:{line}:{column}: {detail}", path.display())]
    BadCase {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("{}: {detail}", path.display())]
    BadBundle { path: PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] wasmflow_runtime::RuntimeError),
}

impl DevkitError {
    /// Whether the caller can fix it (exit status 2) rather than the
    /// action's build or run having failed.
    pub fn is_usage(&self) -> bool {
        match self {
            DevkitError::BuildFailed { .. } | DevkitError::Io { .. } => false,
            DevkitError::Runtime(e) => e.is_usage(),
            _ => true,
        }
    }
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> DevkitError + '_ {
    move |source| DevkitError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn every_language_is_named_once() {
        for (lang, name) in Lang::ALL.into_iter().zip(Lang::NAMES) {
            assert_eq!(lang.name(), name);
            assert_eq!(Lang::parse(name).unwrap(), lang);
        }
    }
}
