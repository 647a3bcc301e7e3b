//! A loaded action: its digest, compiled component, and `run` signature.

use crate::cache::{CompiledComponent, ComponentCache};
use crate::compile::{self, CompileError, CompileLimit, CompileOptions};
use crate::sandbox::Sandbox;
use crate::value::{self, InputError, Path};
use crate::RuntimeError;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use wasmflow_store::Digest;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Type, Val};
use wasmtime::Engine;

/// The parameter and result types of an action's exported `run`.
#[derive(Clone)]
pub struct RunSignature {
    pub params: Vec<(String, Type)>,
    pub result: Option<Type>,
}

/// A component ready to run: compiled, linked, its signature known.
#[derive(Clone)]
pub struct Action {
    /// How the user named it (a path, later a registry reference).
    pub reference: String,
    pub digest: Digest,
    /// The component binary (after `.wat` conversion), read when first
    /// asked for: an unchanged file loads from the cache unread.
    bytes: Bytes,
    pub signature: RunSignature,
    pub(crate) pre: InstancePre<Sandbox>,
    /// Where `run` is in the component, resolved once so calls skip the
    /// name lookup.
    pub(crate) run_export: ComponentExportIndex,
}

/// A loaded component's bytes: in hand, in a file known (by the cache's
/// index) to hold them, or where a recorded execution's component is kept
/// (the store, a bundle), fetched when first asked for.
#[derive(Clone)]
pub(crate) enum Bytes {
    Read(Arc<Vec<u8>>),
    InFile(Arc<(PathBuf, OnceLock<Arc<Vec<u8>>>)>),
    Kept(Arc<(crate::world::Blobs, OnceLock<Arc<Vec<u8>>>)>),
}

impl Bytes {
    pub fn in_file(path: &std::path::Path) -> Self {
        Bytes::InFile(Arc::new((path.to_owned(), OnceLock::new())))
    }
}

impl Action {
    /// The component binary (after `.wat` conversion). Read from its file
    /// on the first call when the action was loaded unread; a file that no
    /// longer holds the bytes of [`Action::digest`] is an error, never
    /// other bytes under this digest.
    pub fn bytes(&self) -> Result<Arc<Vec<u8>>, RuntimeError> {
        let (path, once) = match &self.bytes {
            Bytes::Read(bytes) => return Ok(bytes.clone()),
            Bytes::InFile(file) => (&file.0, &file.1),
            Bytes::Kept(kept) => return self.kept_bytes(&kept.0, &kept.1),
        };
        if let Some(bytes) = once.get() {
            return Ok(bytes.clone());
        }
        let read = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.clone(),
            source,
        })?;
        // By the file's name, not the reference (a server renames it).
        let bytes = binary(&path.display().to_string(), read)?;
        if Digest::of(&bytes) != self.digest {
            return Err(RuntimeError::Changed {
                path: path.clone(),
                digest: self.digest.to_string(),
            });
        }
        Ok(once.get_or_init(|| Arc::new(bytes)).clone())
    }

    /// The bytes of [`Action::digest`] from where they are kept: checked
    /// against the digest, so no other bytes pass for them.
    fn kept_bytes(
        &self,
        blobs: &crate::world::Blobs,
        once: &OnceLock<Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>, RuntimeError> {
        if let Some(bytes) = once.get() {
            return Ok(bytes.clone());
        }
        let digest = self.digest.to_string();
        let bytes = blobs
            .get(&digest)
            .filter(|b| Digest::of(b) == self.digest)
            .ok_or_else(|| RuntimeError::MissingBlob {
                what: format!("component {digest} ({})", self.reference),
            })?;
        Ok(once.get_or_init(|| Arc::new(bytes)).clone())
    }

    /// Check `input` against the signature and convert it, naming the JSON
    /// path and WIT type of the first problem.
    pub fn check_input(&self, input: &Value) -> Result<Vec<Val>, InputError> {
        let obj = input.as_object().ok_or_else(|| InputError {
            path: "input".into(),
            problem: format!(
                "expected a JSON object keyed by parameter name ({}), got {}",
                self.param_names().join(", "),
                value::describe(input)
            ),
        })?;
        let values =
            value::named_values(&self.signature.params, obj, &Path::default(), "parameter")?;
        Ok(values.into_iter().map(|(_, v)| v).collect())
    }

    /// Check the parts of an input that are known before it is complete
    /// (see [`value::check_known`]): every parameter is named, no unknown
    /// one is, and literal values fit their types.
    pub fn check_known_input(
        &self,
        input: &serde_json::Map<String, Value>,
        is_open: &dyn Fn(&Value) -> bool,
    ) -> Result<(), InputError> {
        value::check_known_fields(
            &self.signature.params,
            input,
            &Path::default(),
            is_open,
            "parameter",
        )
    }

    pub fn param_names(&self) -> Vec<&str> {
        self.signature
            .params
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// `bytes` as a component binary: `.wat` text converted, anything that is
/// not a component refused.
fn binary(reference: &str, bytes: Vec<u8>) -> Result<Vec<u8>, RuntimeError> {
    let invalid = |message: String| RuntimeError::InvalidComponent {
        path: reference.to_owned(),
        message,
    };
    let bytes = if reference.ends_with(".wat") {
        wat::parse_bytes(&bytes)
            .map_err(|e| invalid(e.to_string()))?
            .into_owned()
    } else {
        bytes
    };
    if !is_component(&bytes) {
        return Err(invalid(
            "it is not a component (a core module or another file); build it with componentize-py, \
             componentize-js or `wasm-tools component new`"
                .into(),
        ));
    }
    Ok(bytes)
}

pub(crate) fn load(
    engine: &Engine,
    linker: &Linker<Sandbox>,
    cache: &ComponentCache,
    compile: &CompileOptions,
    reference: &str,
    bytes: Vec<u8>,
) -> Result<Action, RuntimeError> {
    let invalid = |message: String| RuntimeError::InvalidComponent {
        path: reference.to_owned(),
        message,
    };
    let bytes = binary(reference, bytes)?;
    let limit = |e: CompileLimit| RuntimeError::CompileLimit {
        path: reference.to_owned(),
        message: e.0,
    };
    compile::check_size(&compile.limits, bytes.len() as u64).map_err(limit)?;
    let digest = Digest::of(&bytes);
    let compiled = cache
        .get_or_compile(engine, &digest, reference, &bytes, compile)
        .map_err(|e| match e {
            CompileError::Limit(l) => limit(l),
            CompileError::Invalid(m) => invalid(m),
            e @ CompileError::Spawn { .. } => RuntimeError::Setup {
                path: reference.into(),
                message: e.to_string(),
            },
        })?;
    link(
        engine,
        linker,
        reference,
        digest,
        Bytes::Read(Arc::new(bytes)),
        &compiled,
    )
}

/// An action of a `compiled` component: its signature read, linked (with
/// the shared modules it imports).
pub(crate) fn link(
    engine: &Engine,
    linker: &Linker<Sandbox>,
    reference: &str,
    digest: Digest,
    bytes: Bytes,
    compiled: &CompiledComponent,
) -> Result<Action, RuntimeError> {
    let component = &compiled.component;
    let no_run = || RuntimeError::NoRunExport {
        path: reference.to_owned(),
    };
    let signature = signature(engine, component).ok_or_else(no_run)?;
    let run_export = component.get_export_index(None, "run").ok_or_else(no_run)?;
    let pre = crate::shared_modules::instantiate_pre(linker, component, &compiled.modules)
        .map_err(|e| RuntimeError::Unlinkable {
            path: reference.to_owned(),
            message: format!("{e:#}"),
        })?;
    Ok(Action {
        reference: reference.to_owned(),
        digest,
        bytes,
        signature,
        pre,
        run_export,
    })
}

/// A component's preamble: magic, then the component-model layer tag.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [0x01, 0x00]
}

fn signature(engine: &Engine, component: &Component) -> Option<RunSignature> {
    let ty = component.component_type();
    let run = ty.get_export(engine, "run")?;
    let ComponentItem::ComponentFunc(func) = run.ty else {
        return None;
    };
    let params = func.params().map(|(n, t)| (n.to_owned(), t)).collect();
    let result = func.results().next();
    Some(RunSignature { params, result })
}
