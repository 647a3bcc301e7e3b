//! `wasmflow push`, `wasmflow pull`, and fetching `oci://` actions for `run`.

use crate::args::{PullArgs, PushArgs, RegistryArgs};
use crate::{CmdResult, Fail, Home};
use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use wasmflow_registry::{
    Auth, OciRef, Registry, ANNOTATION_DESCRIPTION, ANNOTATION_SIGNATURE, ANNOTATION_TITLE,
};

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
    // Load it as wasmflow would run it: a file that is not an action is
    // refused here, not by whoever pulls it.
    let loader = wasmflow_runtime::Loader::open(&home.dir, home.cache.as_deref())?;
    let action = loader.load(&args.component)?;
    let inspection = wasmflow_runtime::inspect::inspect(&action.bytes)
        .map_err(|e| Fail::usage(anyhow!("{}: {e}", args.component.display())))?;
    let mut annotations = BTreeMap::new();
    annotations.insert(ANNOTATION_SIGNATURE.to_owned(), inspection.wit.clone());
    annotations.insert(
        ANNOTATION_TITLE.to_owned(),
        r.repository
            .rsplit('/')
            .next()
            .unwrap_or(&r.repository)
            .to_owned(),
    );
    if let Some(d) = args.description.or(inspection.docs.clone()) {
        annotations.insert(ANNOTATION_DESCRIPTION.to_owned(), d);
    }
    let pushed = crate::tokio().block_on(registry(home).push(
        &r,
        action.bytes.to_vec(),
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

pub fn pull(home: &Home, args: PullArgs) -> CmdResult {
    let r = OciRef::parse(&args.reference).map_err(Fail::usage)?;
    let auth = auth(&args.registry)?;
    let bar = progress_bar();
    let report = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let cached = crate::tokio().block_on(registry(home).pull(
        &r,
        &auth,
        args.registry.insecure,
        Some(&report),
    ));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let cached = cached?;
    if let Some(out) = &args.output {
        std::fs::copy(&cached.path, out)
            .map_err(|e| Fail::usage(anyhow!("writing the component to {}: {e}", out.display())))?;
    }
    println!("{}", cached.manifest_digest);
    eprintln!(
        "pulled {} (component {})",
        cached.pinned(&r),
        cached.layer_digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `oci://` task actions for the workflow scheduler and checker: from the
/// cache, pulled on first use (credentials from the environment, as for
/// `run`).
pub struct RegistryComponents {
    registry: Registry,
    insecure: bool,
}

pub fn components(home: &Home, insecure: bool) -> std::sync::Arc<RegistryComponents> {
    std::sync::Arc::new(RegistryComponents {
        registry: registry(home),
        insecure,
    })
}

impl wasmflow_workflow::Components for RegistryComponents {
    fn oci(&self, reference: &str) -> Result<(String, Vec<u8>), String> {
        let r = OciRef::parse(reference).map_err(|e| e.to_string())?;
        let auth = env_auth().map_err(|f| format!("{:#}", f.error))?;
        // Called from inside the scheduler's tokio runtime as well as from
        // plain code: fetch on a thread with a runtime of its own.
        let cached = std::thread::scope(|s| {
            s.spawn(|| crate::tokio().block_on(self.registry.fetch(&r, &auth, self.insecure, None)))
                .join()
                .expect("fetching does not panic")
        })
        .map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&cached.path).map_err(|e| {
            format!(
                "reading the cached component {}: {e}",
                cached.path.display()
            )
        })?;
        Ok((cached.pinned(&r).to_string(), bytes))
    }
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
    let reg = registry(home);
    let bar = progress_bar();
    let report = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let cached = crate::tokio().block_on(reg.fetch(&r, &auth, insecure, Some(&report)));
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let cached = cached?;
    let bytes = std::fs::read(&cached.path)
        .map_err(|e| {
            anyhow!(
                "reading the cached component {}: {e}",
                cached.path.display()
            )
        })
        .map_err(|error| Fail { code: 1, error })?;
    Ok((cached.pinned(&r).to_string(), bytes))
}

/// A download bar for large layers, on a terminal only.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = ProgressBar::new(0);
    b.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(b)
}
