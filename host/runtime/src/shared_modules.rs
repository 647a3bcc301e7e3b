//! Core modules that components share, compiled once.
//!
//! Every componentize-py component carries the same CPython: a 6 MB core
//! module of 10,625 functions, plus libc and friends, byte for byte the
//! same in every action built by one componentize-py version. What is
//! each action's own is small (the snapshot of its initialised heap, a
//! few hundred functions of glue). Compiled whole, each new Python action
//! compiles CPython again; even with every function found in the function
//! cache, translating them all to find their cache keys takes seconds.
//!
//! So before a component is compiled, [`split`] cuts its large core
//! modules out: each becomes an import of a core module (a component may
//! import one), named after the sha256 of the module's bytes, typed with
//! the module's imports and the exports the component uses. The modules
//! are compiled alone, once, and kept by that digest beside the compiled
//! components (`modules/<sha256>.cwasm`); linking gives each component its
//! modules back under those names ([`instantiate_pre`]). The machine code
//! is the same as compiled whole: a component's core modules are compiled
//! one by one either way, and instantiated the same way.
//!
//! The rewritten component exists only inside the compiler: records pin
//! the component as the user gave it, by its digest, and the cache keeps
//! the compiled parts under that digest.
//!
//! What it must not touch: the store; where the cache keeps files and when
//! it trusts them (`cache`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    ComponentImportSection, ComponentSection, ComponentTypeRef, CoreTypeSection, EntityType,
    ModuleType,
};
use wasmflow_store::Digest;
use wasmparser::{
    BinaryReader, ComponentAlias, ComponentAliasSectionReader, ComponentImportSectionReader,
    ComponentOuterAliasKind, ExternalKind, Instance, InstanceSectionReader, Parser, Payload,
    TypeRef,
};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Imports made by [`split`] are named this, then the module's sha256 in
/// hex, then `-m` and the module's position among the component's.
pub(crate) const IMPORT_PREFIX: &str = "wasmflow-module-h";

/// Modules with less code than this stay in their component: compiling
/// them is quick, and a module cut out costs every instantiation a little
/// (wasmtime 48 resolves an imported module's imports and the exports
/// taken from it by name when it instantiates it, where an embedded one's
/// were resolved at compile time). CPython (5.9 MB of code) is cut out;
/// libc (370 KB of code, 314 imports) stays, as does what is the action's
/// own (componentize-py's snapshot of the app's heap: 11 MB of data, 5 KB
/// of code). Cutting libc out too made a 40-task chain of Python tasks 11 %
/// slower; CPython alone, 1.5 % (`bench/RESULTS.md`).
const MIN_CODE_BYTES: u32 = 1 << 20;

/// A core module cut out of a component.
pub(crate) struct Cut<'a> {
    pub digest: Digest,
    pub bytes: &'a [u8],
    /// Functions it defines (for the counts a compilation reports).
    pub functions: u64,
}

/// A component with its large core modules replaced by imports of them.
pub(crate) struct Split<'a> {
    pub component: Vec<u8>,
    pub modules: Vec<Cut<'a>>,
}

/// The digest of the module an import made by [`split`] names; None for
/// any other import.
pub(crate) fn imported_digest(import: &str) -> Option<Digest> {
    let hex = import.strip_prefix(IMPORT_PREFIX)?.split('-').next()?;
    Digest::parse(&format!("sha256:{hex}"))
}

/// `component` with each core module at its top level that has at least
/// [`MIN_CODE_BYTES`] of code imported instead of embedded. Each import's
/// type lists the module's imports and the exports the component uses
/// (so that linking checks no more than it must).
///
/// None when there is nothing to cut, or when the component is not one
/// this rewrites safely: one that defines core types of its own at its
/// top level (the module types added here would shift their indices), or
/// whose modules use types this does not describe. Such a component is
/// compiled whole, as before: this is an optimisation, never a condition
/// for running. Wasmtime validates what this writes; a type that left out
/// something the component needs fails that check, and `compile` then
/// compiles the component whole.
pub(crate) fn split(component: &[u8]) -> Option<Split<'_>> {
    let sections = sections(component, COMPONENT_LAYER)?;
    if sections.iter().any(|s| s.id == CORE_TYPE_SECTION) {
        return None;
    }
    // The top level's core modules, by index: its module sections in
    // order (`used_exports` gives up on a component that imports one,
    // which would come between them).
    let modules: Vec<&[u8]> = sections
        .iter()
        .filter(|s| s.id == CORE_MODULE_SECTION)
        .map(|s| &component[s.body..s.end])
        .collect();
    let cut: Vec<bool> = modules
        .iter()
        .map(|m| code_bytes(m).is_some_and(|n| n >= MIN_CODE_BYTES))
        .collect();
    if !cut.contains(&true) {
        return None;
    }
    let used = used_exports(component, &sections, &modules)?;
    let mut out = component[..8].to_vec();
    let mut cuts = Vec::new();
    let mut index = 0;
    for s in &sections {
        if s.id != CORE_MODULE_SECTION || !cut[index] {
            index += usize::from(s.id == CORE_MODULE_SECTION);
            out.extend_from_slice(&component[s.start..s.end]);
            continue;
        }
        let body = modules[index];
        let (ty, functions) = module_type(body, used[index].as_ref())?;
        let digest = Digest::of(body);
        let import = format!("{IMPORT_PREFIX}{}-m{index}", digest.hex());
        // No core types precede (checked above): the n-th module type
        // added is core type n.
        let mut types = CoreTypeSection::new();
        types.ty().module(&ty);
        types.append_to_component(&mut out);
        let mut imports = ComponentImportSection::new();
        imports.import(import.as_str(), ComponentTypeRef::Module(cuts.len() as u32));
        imports.append_to_component(&mut out);
        cuts.push(Cut {
            digest,
            bytes: body,
            functions,
        });
        index += 1;
    }
    Some(Split {
        component: out,
        modules: cuts,
    })
}

const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const MODULE_LAYER: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
// A component's section ids.
const CORE_MODULE_SECTION: u8 = 1;
const CORE_INSTANCE_SECTION: u8 = 2;
const CORE_TYPE_SECTION: u8 = 3;
const COMPONENT_SECTION: u8 = 4;
const ALIAS_SECTION: u8 = 6;
const IMPORT_SECTION: u8 = 10;
// A core module's.
const CODE_SECTION: u8 = 10;

/// One section of a binary: its id, where it starts, where its body
/// starts and where it ends.
struct Section {
    id: u8,
    start: usize,
    body: usize,
    end: usize,
}

/// The sections of a binary whose preamble is `\0asm` and then `layer`
/// (version and layer: a component's or a core module's); None if it is
/// not one or does not parse.
fn sections(bytes: &[u8], layer: [u8; 4]) -> Option<Vec<Section>> {
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" || bytes[4..8] != layer {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        let (size, body) = leb_u32(bytes, at + 1)?;
        let end = body.checked_add(size as usize)?;
        if end > bytes.len() {
            return None;
        }
        out.push(Section {
            id,
            start: at,
            body,
            end,
        });
        at = end;
    }
    Some(out)
}

/// An unsigned LEB128 u32 at `at`, and where what follows it starts.
fn leb_u32(bytes: &[u8], mut at: usize) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(at)?;
        at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).ok().map(|v| (v, at));
        }
    }
    None
}

/// The size of a core module's code section (0 without one).
fn code_bytes(module: &[u8]) -> Option<u32> {
    let sections = sections(module, MODULE_LAYER)?;
    let code = sections.iter().find(|s| s.id == CODE_SECTION);
    Some(code.map_or(0, |s| (s.end - s.body) as u32))
}

/// For each core module of the component's top level, the names of its
/// exports the component uses: aliased from an instance of it, or given
/// through such an instance to another module's imports. None for a
/// module all of whose exports count (a nested component may alias the
/// module and instantiate it itself).
type Used<'a> = Vec<Option<HashSet<&'a str>>>;

fn used_exports<'a>(
    component: &'a [u8],
    sections: &[Section],
    modules: &[&'a [u8]],
) -> Option<Used<'a>> {
    let mut used: Used<'a> = vec![Some(HashSet::new()); modules.len()];
    // Each core instance's module, if it instantiates one.
    let mut instances: Vec<Option<usize>> = Vec::new();
    for s in sections {
        let body = &component[s.body..s.end];
        let reader = || BinaryReader::new(body, s.body);
        match s.id {
            CORE_INSTANCE_SECTION => {
                for instance in InstanceSectionReader::new(reader()).ok()? {
                    let Instance::Instantiate { module_index, args } = instance.ok()? else {
                        instances.push(None);
                        continue;
                    };
                    let module = *modules.get(module_index as usize)?;
                    for arg in args.iter() {
                        let Some(source) = *instances.get(arg.index as usize)? else {
                            continue;
                        };
                        let wanted = imports_from(module, arg.name)?;
                        if let Some(names) = &mut used[source] {
                            names.extend(wanted);
                        }
                    }
                    instances.push(Some(module_index as usize));
                }
            }
            ALIAS_SECTION => {
                for alias in ComponentAliasSectionReader::new(reader()).ok()? {
                    let ComponentAlias::CoreInstanceExport {
                        instance_index,
                        name,
                        ..
                    } = alias.ok()?
                    else {
                        continue;
                    };
                    if let Some(module) = *instances.get(instance_index as usize)? {
                        if let Some(names) = &mut used[module] {
                            names.insert(name);
                        }
                    }
                }
            }
            COMPONENT_SECTION if aliases_outer_modules(body) => used.fill(None),
            IMPORT_SECTION => {
                for import in ComponentImportSectionReader::new(reader()).ok()? {
                    if let wasmparser::ComponentTypeRef::Module(_) = import.ok()?.ty {
                        return None;
                    }
                }
            }
            _ => {}
        }
    }
    Some(used)
}

/// The names `module` imports from the module named `from`.
fn imports_from<'a>(module: &'a [u8], from: &str) -> Option<Vec<&'a str>> {
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.ok()? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    if import.module == from {
                        names.push(import.name);
                    }
                }
            }
            // Imports come before any code.
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Some(names)
}

/// Whether a nested component (at any depth) aliases a core module from
/// outside itself; true also if it does not parse.
fn aliases_outer_modules(component: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(component) {
        let Ok(payload) = payload else {
            return true;
        };
        if let Payload::ComponentAliasSection(reader) = payload {
            for alias in reader {
                match alias {
                    Ok(ComponentAlias::Outer {
                        kind: ComponentOuterAliasKind::CoreModule,
                        ..
                    })
                    | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        }
    }
    false
}

/// The type of a core module (its types, its imports, and its exports
/// named in `used` or all of them) and how many functions it defines.
/// None for what this does not describe (explicit recursion groups, exact
/// function imports) or a module that does not parse.
fn module_type(module: &[u8], used: Option<&HashSet<&str>>) -> Option<(ModuleType, u64)> {
    let mut ty = ModuleType::new();
    let mut re = RoundtripReencoder;
    // Each index space's entity types, imports first, as the module has
    // them, to give its exports their types.
    let mut funcs: Vec<u32> = Vec::new();
    let (mut tables, mut memories, mut globals, mut tags) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut defined = 0u64;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.ok()? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group.ok()?;
                    if group.is_explicit_rec_group() {
                        return None;
                    }
                    for sub in group.into_types() {
                        ty.ty().subtype(&re.sub_type(sub).ok()?);
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.ok()?;
                    let entity = re.entity_type(import.ty).ok()?;
                    match import.ty {
                        TypeRef::Func(t) => funcs.push(t),
                        TypeRef::Table(_) => tables.push(entity),
                        TypeRef::Memory(_) => memories.push(entity),
                        TypeRef::Global(_) => globals.push(entity),
                        TypeRef::Tag(_) => tags.push(entity),
                        TypeRef::FuncExact(_) => return None,
                    }
                    ty.import(import.module, import.name, entity);
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    funcs.push(t.ok()?);
                    defined += 1;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    tables.push(EntityType::Table(re.table_type(table.ok()?.ty).ok()?));
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories.push(EntityType::Memory(re.memory_type(memory.ok()?).ok()?));
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader {
                    globals.push(EntityType::Global(re.global_type(global.ok()?.ty).ok()?));
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    tags.push(EntityType::Tag(re.tag_type(tag.ok()?).ok()?));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.ok()?;
                    if used.is_none_or(|names| names.contains(export.name)) {
                        exports.push((export.name, export.kind, export.index as usize));
                    }
                }
            }
            // What a module's type needs comes before its code (CPython's
            // 10,625 function bodies and what follows them are not read).
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    for (name, kind, index) in exports {
        let entity = match kind {
            ExternalKind::Func => EntityType::Function(*funcs.get(index)?),
            ExternalKind::Table => *tables.get(index)?,
            ExternalKind::Memory => *memories.get(index)?,
            ExternalKind::Global => *globals.get(index)?,
            ExternalKind::Tag => *tags.get(index)?,
            ExternalKind::FuncExact => return None,
        };
        ty.export(name, entity);
    }
    Some((ty, defined))
}

/// Where the compiled module `digest` is kept in `dir`.
fn module_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(format!("{}.cwasm", digest.hex()))
}

/// The compiled module at `path`, if it is there and loads.
fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: files in a modules directory are written only by `compile`,
    // whole, with `Engine::precompile_module`'s output for an engine of
    // these settings (the cache's directory name pins them).
    unsafe { Module::deserialize_file(engine, path) }
}

/// Compile `component` to `Engine::precompile_component`'s format, its
/// large core modules cut out (see [`split`]) and compiled into `dir`, or
/// found there compiled by an earlier compilation. Returns the machine
/// code and how many functions were found compiled.
///
/// Whatever fails on the way (a module `dir` cannot keep, a rewritten
/// component that does not compile) compiles the component whole, so its
/// errors are the component's own.
pub(crate) fn compile(
    engine: &Engine,
    component: &[u8],
    dir: &Path,
) -> wasmtime::Result<(Vec<u8>, u64)> {
    let whole = || Ok((engine.precompile_component(component)?, 0));
    let Some(split) = split(component) else {
        return whole();
    };
    let mut reused = 0;
    for cut in &split.modules {
        let path = module_path(dir, &cut.digest);
        if load(engine, &path).is_ok() {
            reused += cut.functions;
            continue;
        }
        let kept = engine.precompile_module(cut.bytes).map(|code| {
            std::fs::create_dir_all(dir).and_then(|()| crate::files::write_whole(&path, &code))
        });
        if !matches!(kept, Ok(Ok(()))) {
            return whole();
        }
    }
    match engine.precompile_component(&split.component) {
        Ok(code) => Ok((code, reused)),
        Err(e) => {
            tracing::warn!(
                "compiling the component whole: cut into parts, it did not compile: {e:#}"
            );
            whole()
        }
    }
}

/// The modules a compiled `component` imports from `dir` (by the names
/// [`split`] gave them), loaded. A module that is missing or does not load
/// is an error naming it, and is deleted, so that the next compilation
/// compiles it again.
pub(crate) fn imported(
    engine: &Engine,
    component: &Component,
    dir: &Path,
) -> Result<Vec<(String, Module)>, String> {
    let mut modules = Vec::new();
    for (name, item) in component.component_type().imports(engine) {
        let (Some(digest), ComponentItem::Module(_)) = (imported_digest(name), item.ty) else {
            continue;
        };
        let path = module_path(dir, &digest);
        let module = load(engine, &path).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!("its module {digest} is unusable: {e:#}")
        })?;
        modules.push((name.to_owned(), module));
    }
    Ok(modules)
}

/// `linker` instantiating `component`, its cut-out `modules` defined
/// under the names it imports them by.
pub(crate) fn instantiate_pre<T: 'static>(
    linker: &wasmtime::component::Linker<T>,
    component: &wasmtime::component::Component,
    modules: &[(String, wasmtime::Module)],
) -> wasmtime::Result<wasmtime::component::InstancePre<T>> {
    if modules.is_empty() {
        return linker.instantiate_pre(component);
    }
    let mut linker = linker.clone();
    for (name, module) in modules {
        linker.root().module(name, module)?;
    }
    linker.instantiate_pre(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component of one core module of `n` functions of 1.1 KB of code,
    /// each returning its own number, and a `run` export lifting the last
    /// one.
    fn component(n: usize) -> Vec<u8> {
        wat::parse_str(component_wat(n)).unwrap()
    }

    fn component_wat(n: usize) -> String {
        let filler = "i64.const 0x7fffffffffffffff drop ".repeat(100);
        let funcs: String = (0..n)
            .map(|i| format!("(func (export \"f{i}\") (result i32) {filler} i32.const {i})\n"))
            .collect();
        format!(
            r#"(component
  (core module $m (memory (export "mem") 1) (global (export "g") i32 (i32.const 7)) {funcs})
  (core instance $i (instantiate $m))
  (func (export "run") (result u32) (canon lift (core func $i "f{last}"))))"#,
            last = n - 1
        )
    }

    #[test]
    fn small_modules_stay_and_large_ones_are_imported_by_digest() {
        assert!(split(&component(10)).is_none(), "too small to cut");
        let whole = component(1000);
        let split = split(&whole).expect("cut");
        assert_eq!(split.modules.len(), 1);
        assert_eq!(split.modules[0].functions, 1000);
        assert_eq!(split.modules[0].digest, Digest::of(split.modules[0].bytes));
        assert!(split.component.len() < 1000, "{}", split.component.len());
    }

    #[test]
    fn a_component_that_imports_a_core_module_is_left_whole() {
        // Its imported module would come before the embedded ones in the
        // module index space: not rewritten rather than guessed at.
        let whole = component_wat(1000).replacen(
            "(component",
            "(component (import \"m\" (core module (export \"f\" (func (result i32)))))",
            1,
        );
        assert!(split(&wat::parse_str(whole).unwrap()).is_none());
    }

    #[test]
    fn the_rewritten_component_runs_with_its_module_linked_back() {
        let whole = component(1000);
        let split = split(&whole).unwrap();
        let engine = wasmtime::Engine::default();
        let component =
            wasmtime::component::Component::new(&engine, &split.component).expect("valid");
        let module = wasmtime::Module::new(&engine, split.modules[0].bytes).unwrap();
        // It imports the module by its digest.
        let ty = component.component_type();
        let imports: Vec<_> = ty.imports(&engine).map(|(name, _)| name).collect();
        assert_eq!(imports.len(), 1);
        assert_eq!(
            imported_digest(imports[0]),
            Some(split.modules[0].digest.clone())
        );
        assert!(imported_digest("wasi:cli/stdout@0.2.0").is_none());
        let linker = wasmtime::component::Linker::<()>::new(&engine);
        let mut store = wasmtime::Store::new(&engine, ());
        // Unlinked, it does not instantiate; linked, it runs as the whole.
        assert!(linker.instantiate(&mut store, &component).is_err());
        let pre = instantiate_pre(&linker, &component, &[(imports[0].to_owned(), module)]).unwrap();
        let instance = pre.instantiate(&mut store).unwrap();
        let run = instance
            .get_typed_func::<(), (u32,)>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call(&mut store, ()).unwrap(), (999,));
    }
}
