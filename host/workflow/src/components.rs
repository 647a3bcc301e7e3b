//! Where a workflow's `oci://` and `pack.item` actions come from: the
//! [`Components`] trait, and its two implementations, [`RegistryComponents`]
//! (an OCI registry through `wasmflow-registry`'s verified pull cache, and
//! the installed packs) and [`NoRegistry`]. Front ends (the CLI, the
//! server) pick one; nothing here prints or reads the environment.

use crate::definition::{is_workflow_path, ActionRef};
use std::path::{Path, PathBuf};
use wasmflow_registry::pack::Resolved;
use wasmflow_registry::{Auth, OciRef, Registry};

/// Where `oci://` task actions and `pack.item` files come from.
///
/// Fetching is async: the scheduler and the server ask from inside their
/// tokio runtime, and a pull must not hold a worker thread while it waits
/// for the network.
#[async_trait::async_trait]
pub trait Components: Send + Sync {
    /// The component `reference` names, and the reference pinned to the
    /// digest it resolved to (what the task's record keeps).
    async fn oci(&self, reference: &str) -> Result<(String, Vec<u8>), String>;

    /// The file (component or workflow) `pack.item` names, for a workflow
    /// in `from`, and how records name it (`pack.item@version`).
    fn pack(&self, name: &str, from: &Path) -> Result<Resolved, String>;
}

/// `pack.item` resolved to what it names, and how records name it.
pub fn resolve_pack(
    components: &dyn Components,
    name: &str,
    from: &Path,
) -> Result<(ActionRef, String), String> {
    let Resolved { path, name } = components.pack(name, from)?;
    let action = if is_workflow_path(&path) {
        ActionRef::Workflow(path)
    } else {
        ActionRef::Component(path)
    };
    Ok((action, name))
}

/// For front ends without registry access: every `oci://` and
/// `pack.action` action fails.
pub struct NoRegistry;

#[async_trait::async_trait]
impl Components for NoRegistry {
    async fn oci(&self, reference: &str) -> Result<(String, Vec<u8>), String> {
        Err(format!(
            "{reference}: this front end cannot fetch oci:// actions"
        ))
    }

    fn pack(&self, name: &str, _from: &Path) -> Result<Resolved, String> {
        Err(format!("{name}: this front end cannot find packs"))
    }
}

/// Components from an OCI registry (from the cache, pulled on first use)
/// and packs installed in a directory.
pub struct RegistryComponents {
    registry: Registry,
    packs: PathBuf,
    insecure: bool,
    /// Credentials, or why there are none (every fetch then fails with
    /// it): read once by the front end, so a server can forget them.
    auth: Result<Auth, String>,
}

impl RegistryComponents {
    /// `registry` holds the pull cache; `packs` the installed packs
    /// (`PACKS/NAME`); `insecure` allows plain HTTP registries.
    pub fn new(
        registry: Registry,
        packs: PathBuf,
        insecure: bool,
        auth: Result<Auth, String>,
    ) -> Self {
        Self {
            registry,
            packs,
            insecure,
            auth,
        }
    }
}

#[async_trait::async_trait]
impl Components for RegistryComponents {
    async fn oci(&self, reference: &str) -> Result<(String, Vec<u8>), String> {
        let r = OciRef::parse(reference).map_err(|e| e.to_string())?;
        let auth = self.auth.clone()?;
        let cached = self
            .registry
            .fetch(&r, &auth, self.insecure, None)
            .await
            .map_err(|e| e.to_string())?;
        Ok((cached.pinned(&r).to_string(), cached.bytes))
    }

    fn pack(&self, name: &str, from: &Path) -> Result<Resolved, String> {
        wasmflow_registry::pack::resolve(&self.packs, from, name)
    }
}
