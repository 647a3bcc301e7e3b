//! `wasmflow push`, `wasmflow pull`, `pack ...`, and fetching `oci://`
//! actions for `run` (with a progress bar); workflows fetch theirs through
//! `wasmflow_workflow::RegistryComponents`.

use crate::args::{PackCommand, PullArgs, PushArgs, RegistryArgs};
use crate::{CmdResult, Fail, Home};
use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use wasmflow_registry::pack::LocalPack;
use wasmflow_registry::{
    Auth, OciRef, Registry, ANNOTATION_DESCRIPTION, ANNOTATION_SIGNATURE, ANNOTATION_TITLE,
};
use wasmflow_workflow::RegistryComponents;

fn registry(home: &Home) -> Registry {
    Registry::new(&home.dir.join("oci"))
}

fn auth(args: &RegistryArgs) -> Result<Auth, Fail> {
    let Some(username) = &args.username else {
        return Ok(Auth::Anonymous);
    };
    let password = if args.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Fail::usage(anyhow!("reading the password from stdin: {e}")))?;
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        std::env::var("WASMFLOW_REGISTRY_PASSWORD").map_err(|_| {
            Fail::usage(anyhow!(
                "--username {username} needs a password: --password-stdin or WASMFLOW_REGISTRY_PASSWORD"
            ))
        })?
    };
    Ok(Auth::Basic {
        username: username.clone(),
        password,
    })
}

pub fn push(home: &Home, args: PushArgs) -> CmdResult {
    let r = OciRef::parse(&args.reference).map_err(Fail::usage)?;
    if r.tag.is_none() {
        return Err(Fail::usage(anyhow!(
            "push needs a :TAG to publish under ({r})"
        )));
    }
    let auth = auth(&args.registry)?;
    let loader = home.loader()?;
    let title = r.repository.rsplit('/').next().unwrap_or(&r.repository);
    let (bytes, annotations) =
        annotated(&loader, &args.component, title, args.description.clone())?;
    let pushed = crate::tokio().block_on(registry(home).push(
        &r,
        bytes,
        annotations,
        &auth,
        args.registry.insecure,
    ))?;
    println!("{}", pushed.manifest_digest);
    eprintln!(
        "pushed {} as {r} (component {}); pin it with {}",
        args.component.display(),
        pushed.layer_digest,
        r.pinned(&pushed.manifest_digest)
    );
    Ok(ExitCode::SUCCESS)
}

/// The component at `path`, loaded as wasmflow would run it (a file that
/// is not an action is refused here, not by whoever pulls it), and the
/// annotations that describe it: its WIT signature, a title, a description.
fn annotated(
    loader: &wasmflow_runtime::Loader,
    path: &Path,
    title: &str,
    description: Option<String>,
) -> Result<(Vec<u8>, BTreeMap<String, String>), Fail> {
    let bytes = loader.load(path)?.bytes()?;
    let inspection = wasmflow_runtime::inspect::inspect(&bytes)
        .map_err(|e| Fail::usage(anyhow!("{}: {e}", path.display())))?;
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_SIGNATURE.to_owned(), inspection.wit.clone());
    annotations.insert(ANNOTATION_TITLE.to_owned(), title.to_owned());
    if let Some(d) = description.or(inspection.docs.clone()) {
        annotations.insert(ANNOTATION_DESCRIPTION.to_owned(), d);
    }
    Ok((bytes.to_vec(), annotations))
}

pub fn pull(home: &Home, args: PullArgs) -> CmdResult {
    let r = OciRef::parse(&args.reference).map_err(Fail::usage)?;
    let auth = auth(&args.registry)?;
    let cached = with_progress(|report| {
        crate::tokio().block_on(registry(home).pull(
            &r,
            &auth,
            args.registry.insecure,
            Some(report),
        ))
    })?;
    if let Some(out) = &args.output {
        std::fs::write(out, &cached.bytes)
            .map_err(|e| Fail::usage(anyhow!("writing the component to {}: {e}", out.display())))?;
    }
    // Compiled now, so the first `run` of it starts at once.
    home.loader()?
        .load_bytes(&args.reference, cached.bytes.clone())?;
    println!("{}", cached.manifest_digest);
    eprintln!(
        "pulled {} (component {})",
        cached.pinned(&r),
        cached.layer_digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `oci://` task actions for the workflow scheduler and checker: from the
/// cache, pulled on first use (credentials from the environment, read now,
/// as for `run`), and the installed packs.
pub fn components(home: &Home, insecure: bool) -> Arc<RegistryComponents> {
    Arc::new(RegistryComponents::new(
        registry(home),
        packs_dir(home),
        insecure,
        env_auth().map_err(|f| crate::report(&f.error)),
    ))
}

/// Installed packs: `WASMFLOW_HOME/packs/NAME`.
pub fn packs_dir(home: &Home) -> PathBuf {
    home.dir.join("packs")
}

/// Credentials from WASMFLOW_REGISTRY_USERNAME / _PASSWORD, else anonymous.
fn env_auth() -> Result<Auth, Fail> {
    auth(&RegistryArgs {
        username: std::env::var("WASMFLOW_REGISTRY_USERNAME").ok(),
        ..RegistryArgs::default()
    })
}

/// The component an `oci://` run names, from the cache or pulled on first
/// use, and the reference pinned to the digest it resolved to (what the
/// record keeps). Credentials come from WASMFLOW_REGISTRY_USERNAME and
/// WASMFLOW_REGISTRY_PASSWORD.
pub fn fetch_for_run(
    home: &Home,
    reference: &str,
    insecure: bool,
) -> Result<(String, Vec<u8>), Fail> {
    let r = OciRef::parse(reference).map_err(Fail::usage)?;
    let auth = env_auth()?;
    let cached = with_progress(|report| {
        crate::tokio().block_on(registry(home).fetch(&r, &auth, insecure, Some(report)))
    })?;
    Ok((cached.pinned(&r).to_string(), cached.bytes))
}

/// The action a user named on the command line: a component file, or an
/// `oci://` reference (pulled on first use, pinned to its digest). `run`
/// and `inspect` take the same names (pack actions are resolved to their
/// files before, by [`resolve_run_target`]).
pub fn load_named(
    home: &Home,
    loader: &wasmflow_runtime::Loader,
    component: &Path,
    insecure: bool,
) -> Result<wasmflow_runtime::Action, Fail> {
    Ok(
        match component.to_str().filter(|c| c.starts_with("oci://")) {
            Some(reference) => {
                let (pinned, bytes) = fetch_for_run(home, reference, insecure)?;
                loader.load_bytes(&pinned, bytes)?
            }
            None => loader.load(component)?,
        },
    )
}

/// Run `download` with a progress callback that drives a bar for large
/// layers, on a terminal only.
fn with_progress<T>(download: impl FnOnce(&(dyn Fn(u64, u64) + Sync)) -> T) -> T {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let report = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let out = download(&report);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out
}

pub fn pack(home: &Home, command: PackCommand) -> CmdResult {
    match command {
        PackCommand::Push {
            dir,
            reference,
            registry: reg,
        } => pack_push(home, &dir, &reference, &reg),
        PackCommand::Pull {
            reference,
            registry: reg,
        } => {
            let r = OciRef::parse(&reference).map_err(Fail::usage)?;
            let auth = auth(&reg)?;
            let installed = crate::tokio().block_on(registry(home).pull_pack(
                &r,
                &auth,
                reg.insecure,
                &packs_dir(home),
            ))?;
            println!("{}", installed.dir.display());
            let pack = LocalPack::load(&installed.dir)?;
            eprintln!(
                "installed pack {} {} (index {}; {}): run its actions and workflows as {}.NAME",
                installed.name,
                installed.version,
                installed.index_digest,
                contents(&pack.manifest, pack.rule_files()?.len()),
                installed.name
            );
            Ok(ExitCode::SUCCESS)
        }
        PackCommand::List { json } => pack_list(home, json),
    }
}

fn pack_push(home: &Home, dir: &Path, reference: &str, reg: &RegistryArgs) -> CmdResult {
    let r = OciRef::parse(reference).map_err(Fail::usage)?;
    let pack = LocalPack::load(dir)?;
    // A pack is installed somewhere else: its workflows must name actions
    // as pack.action or oci://, never by a path next to the source.
    for (name, file) in &pack.manifest.workflows {
        let path = pack.dir.join(file);
        let def = wasmflow_workflow::Definition::load(&path)
            .map_err(|p| Fail::usage(anyhow!("workflow {name}:\n{p}")))?;
        for (task_name, task) in &def.workflow.tasks {
            if matches!(
                def.action_ref(task),
                Ok(wasmflow_workflow::ActionRef::Component(_)
                    | wasmflow_workflow::ActionRef::Workflow(_))
            ) {
                let at = format!("tasks.{task_name}.action");
                return Err(Fail::usage(anyhow!(
                    "{}",
                    def.source.problem(
                        &at,
                        format!(
                            "`{}` is a path; a pack's workflows name actions as {}.ACTION (or oci://) so they work where the pack is installed",
                            task.action, pack.manifest.name
                        )
                    )
                )));
            }
        }
    }
    // Its rules, checked as `rule validate` would: against the trigger
    // types of this pack and the installed ones (their actions are the
    // serving server's to check).
    let rules = pack.rule_files()?;
    if !rules.is_empty() {
        let mut types = wasmflow_events::trigger::all(Some(&packs_dir(home)));
        let own = wasmflow_events::trigger::of_pack(&pack.manifest);
        types.retain(|t| !own.iter().any(|o| o.name == t.name));
        types.extend(own);
        wasmflow_events::rule::load_files(&rules, &types, None)
            .map_err(|p| Fail::usage(anyhow!("{p}")))?;
    }
    let auth = auth(reg)?;
    let loader = home.loader()?;
    let prepare = |path: &Path| -> Result<(Vec<u8>, BTreeMap<String, String>), String> {
        let title = format!(
            "{}.{}",
            pack.manifest.name,
            path.file_stem().unwrap_or_default().to_string_lossy()
        );
        annotated(&loader, path, &title, None).map_err(|f| crate::report(&f.error))
    };
    let pushed = crate::tokio().block_on(registry(home).push_pack(
        &pack,
        &r,
        &auth,
        reg.insecure,
        &prepare,
    ))?;
    println!("{}", pushed.index_digest);
    for (action, reference) in &pushed.actions {
        eprintln!("pushed {}.{action} as {reference}", pack.manifest.name);
    }
    for (sensor, reference) in &pushed.sensors {
        eprintln!(
            "pushed sensor {}.{sensor} as {reference}",
            pack.manifest.name
        );
    }
    eprintln!(
        "pushed pack {} {} as {r} ({})",
        pack.manifest.name,
        pack.manifest.version,
        contents(&pack.manifest, pushed.rules)
    );
    Ok(ExitCode::SUCCESS)
}

/// `2 actions, 1 workflow, 1 sensor, 3 rules`: what a pack holds (what
/// it has none of is left out).
fn contents(m: &wasmflow_registry::pack::PackManifest, rules: usize) -> String {
    let counts = [
        (m.actions.len(), "action"),
        (m.workflows.len(), "workflow"),
        (m.triggers.len(), "trigger type"),
        (m.sensors.len(), "sensor"),
        (rules, "rule"),
    ];
    let said: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if said.is_empty() {
        "empty".into()
    } else {
        said.join(", ")
    }
}

/// The packs installed in this home, by name.
pub fn installed_packs(home: &Home) -> Vec<LocalPack> {
    wasmflow_registry::pack::installed(&packs_dir(home))
}

fn pack_list(home: &Home, json: bool) -> CmdResult {
    let packs = installed_packs(home);
    if json {
        let all: Vec<_> = packs.iter().map(|p| &p.manifest).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("packs serialize")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if packs.is_empty() {
        eprintln!("no packs installed (wasmflow pack pull oci://…)");
    }
    for p in &packs {
        let m = &p.manifest;
        println!(
            "{} {}{}",
            m.name,
            m.version,
            m.description
                .as_ref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
        for (name, a) in &m.actions {
            let grants: Vec<String> = a
                .grants
                .iter()
                .map(|(k, v)| format!("--allow-{k} {}", v.join(",")))
                .collect();
            println!(
                "  action   {}.{name}{}{}",
                m.name,
                a.description
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
                if grants.is_empty() {
                    String::new()
                } else {
                    format!(" (needs {})", grants.join(" "))
                }
            );
        }
        for name in m.workflows.keys() {
            println!("  workflow {}.{name}", m.name);
        }
        for (name, t) in &m.triggers {
            let about = t.description.as_deref().map(|d| format!(": {d}"));
            println!("  trigger  {}.{name}{}", m.name, about.unwrap_or_default());
        }
        for (name, sensor) in &m.sensors {
            println!("  sensor   {}.{name} (every {})", m.name, sensor.interval);
        }
        for file in p.rule_files().unwrap_or_default() {
            let file = file.file_name().unwrap_or_default().to_string_lossy();
            println!("  rule     rules/{file}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `wasmflow run pack.item`: when ITEM is not a file here, the action or
/// workflow of that name in the pack above the current directory or the
/// installed pack.
pub fn resolve_run_target(
    home: &Home,
    target: &Path,
) -> Result<Option<wasmflow_registry::pack::Resolved>, Fail> {
    // A built action directory (`wasmflow new` and `build` lay them out):
    // its component, named as the directory.
    if let Some(path) = wasmflow_workflow::catalog::built_in(target) {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Some(wasmflow_registry::pack::Resolved { path, name }));
    }
    let Some(name) = target.to_str() else {
        return Ok(None);
    };
    if target.exists() || name.starts_with("oci://") || name.contains('/') {
        return Ok(None);
    }
    let Some((pack, item)) = name.split_once('.') else {
        return Ok(None);
    };
    if matches!(item, "wasm" | "wat" | "yaml" | "yml") || pack.is_empty() {
        return Ok(None);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    wasmflow_registry::pack::resolve(&packs_dir(home), &cwd, name)
        .map(Some)
        .map_err(|e| Fail::usage(anyhow!("`{name}` is not a file here, nor a pack's: {e}")))
}
