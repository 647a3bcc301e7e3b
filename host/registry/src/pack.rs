//! Packs: a `pack.yaml` naming actions (components), workflows, trigger
//! types and sensors, with the rules of its `rules/`, published and
//! installed together, and referred to as `pack.action`.
//!
//! Published, a pack is one index artifact (config: the pack's metadata with
//! each action and sensor pinned to the digest it was pushed as; one layer
//! per workflow file and per rule file) plus one Wasm artifact per action
//! and per sensor, in sibling repositories: `ns/vm` (index), `ns/vm.clone`,
//! `ns/vm.cloud-init`, `ns/vm.sensor.inbox`. Installed, it is
//! `WASMFLOW_HOME/packs/NAME/` with `pack.yaml`, `actions/ACTION.wasm`,
//! `sensors/SENSOR.wasm`, `workflows/` and `rules/`.

use crate::{Auth, OciRef, Registry, RegistryError};
use oci_client::client::{Config, ImageLayer};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PACK_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasmflow.pack.v1+json";
pub const WORKFLOW_LAYER_MEDIA_TYPE: &str = "application/vnd.wasmflow.workflow.v1+yaml";
pub const RULE_LAYER_MEDIA_TYPE: &str = "application/vnd.wasmflow.rule.v1+yaml";
const TITLE: &str = "org.opencontainers.image.title";

/// `pack.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackManifest {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub actions: BTreeMap<String, PackAction>,
    /// Workflow name -> file, relative to `pack.yaml`.
    #[serde(default)]
    pub workflows: BTreeMap<String, String>,
    /// Trigger types the pack declares (`PACK.NAME` for the event bus):
    /// emitted by `POST /api/v1/triggers/PACK.NAME`, their payloads
    /// checked against `payload`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, PackTrigger>,
    /// Sensors: components of the `sensor` world that `serve` polls and
    /// whose events (of the pack's trigger types) go to the event bus.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sensors: BTreeMap<String, PackSensor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSensor {
    /// The component, relative to `pack.yaml`.
    pub component: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How often it is polled (`30s`, `5m`).
    pub interval: String,
    /// What each poll may touch, in the flags' terms; the server's grants
    /// bound it (a sensor asking beyond them is refused at start).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackTrigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The payload's JSON Schema (any JSON when absent).
    #[serde(default = "any_json")]
    pub payload: serde_json::Value,
}

fn any_json() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackAction {
    /// The component: a path relative to `pack.yaml` (or, in a published
    /// index, a pinned `oci://` reference).
    pub component: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The grants the action needs, in the flags' terms (`exec: [qemu-img]`,
    /// `write: [DIR]`, ...). Documentation for the operator: nothing is
    /// granted because a pack asks for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{}:{line}:{column}: {message}", file.display())]
    Manifest {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl PackError {
    pub fn is_usage(&self) -> bool {
        match self {
            PackError::Registry(e) => e.is_usage(),
            _ => true,
        }
    }
}

/// A pack name or action name: it becomes half of `pack.action` and part
/// of a repository name.
fn valid_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.len() <= 64
}

/// A pack on disk: its manifest and where it lives.
#[derive(Clone, Debug)]
pub struct LocalPack {
    pub manifest: PackManifest,
    pub dir: PathBuf,
}

impl LocalPack {
    /// Read and check `dir/pack.yaml` (or a `pack.yaml` path).
    pub fn load(path: &Path) -> Result<Self, PackError> {
        let file = if path.is_dir() {
            path.join("pack.yaml")
        } else {
            path.to_owned()
        };
        let invalid = |message: String| PackError::Invalid {
            file: file.clone(),
            message,
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| invalid(format!("cannot read: {e}")))?;
        let manifest: PackManifest = serde_yaml::from_str(&text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            PackError::Manifest {
                file: file.clone(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        if !valid_name(&manifest.name) {
            return Err(invalid(format!(
                "name `{}`: use lowercase letters, digits and '-', starting with a letter",
                manifest.name
            )));
        }
        if manifest.version.trim().is_empty() {
            return Err(invalid("version must not be empty".into()));
        }
        let dir = file.parent().unwrap_or(Path::new(".")).to_owned();
        for (name, action) in &manifest.actions {
            if !valid_name(name) {
                return Err(invalid(format!(
                    "actions.{name}: use lowercase letters, digits and '-', starting with a letter"
                )));
            }
            for key in action.grants.keys() {
                let kinds = [
                    "read",
                    "write",
                    "env",
                    "net",
                    "exec",
                    "key",
                    "secret_env",
                    "secret",
                ];
                if !kinds.contains(&key.as_str()) {
                    return Err(invalid(format!(
                        "actions.{name}.grants.{key}: unknown grant (expected one of {})",
                        kinds.join(", ")
                    )));
                }
            }
            if !action.component.starts_with("oci://") && !dir.join(&action.component).is_file() {
                return Err(invalid(format!(
                    "actions.{name}.component: {} does not exist",
                    dir.join(&action.component).display()
                )));
            }
        }
        for (name, wf) in &manifest.workflows {
            if !valid_name(name) || manifest.actions.contains_key(name) {
                return Err(invalid(format!(
                    "workflows.{name}: use lowercase letters, digits and '-', and a name no action has"
                )));
            }
            if !dir.join(wf).is_file() {
                return Err(invalid(format!(
                    "workflows.{name}: {} does not exist",
                    dir.join(wf).display()
                )));
            }
        }
        for (name, sensor) in &manifest.sensors {
            if !valid_name(name) {
                return Err(invalid(format!(
                    "sensors.{name}: use lowercase letters, digits and '-', starting with a letter"
                )));
            }
            if humantime::parse_duration(&sensor.interval).is_err() {
                return Err(invalid(format!(
                    "sensors.{name}.interval: `{}` is not a duration like 30s",
                    sensor.interval
                )));
            }
            if !dir.join(&sensor.component).is_file() {
                return Err(invalid(format!(
                    "sensors.{name}.component: {} does not exist",
                    dir.join(&sensor.component).display()
                )));
            }
        }
        for (name, t) in &manifest.triggers {
            if !valid_name(name) {
                return Err(invalid(format!(
                    "triggers.{name}: use lowercase letters, digits and '-', starting with a letter"
                )));
            }
            if !t.payload.is_object() {
                return Err(invalid(format!(
                    "triggers.{name}.payload: expected a JSON Schema (a map)"
                )));
            }
        }
        Ok(Self { manifest, dir })
    }

    /// The pack's rule files: the `.yaml` and `.yml` files of its `rules/`,
    /// by name (none without one).
    pub fn rule_files(&self) -> Result<Vec<PathBuf>, PackError> {
        let dir = self.dir.join("rules");
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        yaml_files(&dir).map_err(|e| PackError::Invalid {
            file: dir,
            message: format!("cannot read the rules: {e}"),
        })
    }

    /// The file `pack.item` names in this pack: an action's component or
    /// a workflow.
    pub fn item(&self, item: &str) -> Option<PathBuf> {
        if let Some(a) = self.manifest.actions.get(item) {
            return Some(self.dir.join(&a.component));
        }
        self.manifest.workflows.get(item).map(|w| self.dir.join(w))
    }
}

/// The `.yaml` and `.yml` files of `dir`, by name: where rules are kept.
pub fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    files_with(dir, &["yaml", "yml"])
}

/// The files of `dir` whose extension is one of `extensions`, by name.
pub fn files_with(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The packs installed in `packs_dir` (`PACKS/NAME/pack.yaml`), by name,
/// and the built-in `core` pack unless one installed has its name; what
/// is not a readable pack there is passed over (`pack list` shows what is
/// installed).
pub fn installed(packs_dir: &Path) -> Vec<LocalPack> {
    let mut packs: Vec<LocalPack> = std::fs::read_dir(packs_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| LocalPack::load(&e.path()).ok())
        .collect();
    if !packs.iter().any(|p| p.manifest.name == wasmflow_core::PACK) {
        packs.extend(built_in(packs_dir));
    }
    packs.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
    packs
}

/// Where the built-in packs of `packs_dir` are written out: what is under
/// it is wasmflow's, not the operator's.
pub fn built_in_dir(packs_dir: &Path) -> PathBuf {
    packs_dir.join(".builtin")
}

/// The built-in `core` pack, written out under `packs_dir/.builtin` (once
/// per wasmflow build) so that it is a pack like any other; `None`, with
/// a warning, when it cannot be.
fn built_in(packs_dir: &Path) -> Option<LocalPack> {
    let dir = built_in_dir(packs_dir);
    match wasmflow_core::install(&dir).map(|d| LocalPack::load(&d)) {
        Ok(Ok(pack)) => Some(pack),
        Ok(Err(e)) => {
            tracing::warn!("the built-in core pack: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("writing the built-in core pack into {}: {e}", dir.display());
            None
        }
    }
}

/// A pack's action or workflow, found by its name.
#[derive(Debug)]
pub struct Resolved {
    /// Its file.
    pub path: PathBuf,
    /// How records name it: `pack.item@version`.
    pub name: String,
}

/// Where `pack.item` comes from: the nearest `pack.yaml` above `from` (a
/// pack under development) when it has that name, else the installed pack
/// in `packs_dir`, else, for `core.item`, the built-in core pack.
pub fn resolve(packs_dir: &Path, from: &Path, name: &str) -> Result<Resolved, String> {
    let Some((pack, item)) = name.split_once('.') else {
        return Err(format!("`{name}` is not pack.item"));
    };
    let local = from
        .ancestors()
        .map(|d| d.join("pack.yaml"))
        .find(|p| p.is_file())
        .and_then(|p| LocalPack::load(&p).ok())
        .filter(|p| p.manifest.name == pack);
    let installed = || LocalPack::load(&packs_dir.join(pack)).ok();
    let built_in = || {
        (pack == wasmflow_core::PACK)
            .then(|| built_in(packs_dir))
            .flatten()
    };
    let found = local.or_else(installed).or_else(built_in).ok_or_else(|| {
        format!("no pack `{pack}`: it is not installed (wasmflow pack pull REF) and no pack.yaml above {} has that name", from.display())
    })?;
    let path = found.item(item).ok_or_else(|| {
        let mut known: Vec<&String> = found.manifest.actions.keys().collect();
        known.extend(found.manifest.workflows.keys());
        format!(
            "pack `{pack}` has no action or workflow `{item}` (it has: {})",
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok(Resolved {
        path,
        name: format!("{pack}.{item}@{}", found.manifest.version),
    })
}

/// A component file -> the bytes to publish and their annotations.
pub type Prepare<'a> = dyn Fn(&Path) -> Result<(Vec<u8>, BTreeMap<String, String>), String> + 'a;

/// What `pack push` published.
#[derive(Debug)]
pub struct PushedPack {
    /// The index manifest's digest.
    pub index_digest: String,
    /// Each action and the pinned reference it was pushed as.
    pub actions: BTreeMap<String, String>,
    /// Each sensor and the pinned reference it was pushed as.
    pub sensors: BTreeMap<String, String>,
    /// How many rule files went with the index.
    pub rules: usize,
}

/// What `pack pull` installed.
#[derive(Debug)]
pub struct InstalledPack {
    pub name: String,
    pub version: String,
    pub dir: PathBuf,
    pub index_digest: String,
}

impl Registry {
    /// Publish every action of `pack` (each as a Wasm artifact beside the
    /// index: `REPO.ACTION:TAG`), then the index under `r`. `prepare`
    /// turns each component file into the bytes to publish and their
    /// annotations (the CLI loads it as an action and reads its WIT).
    pub async fn push_pack(
        &self,
        pack: &LocalPack,
        r: &OciRef,
        auth: &Auth,
        insecure: bool,
        prepare: &Prepare<'_>,
    ) -> Result<PushedPack, PackError> {
        let tag = r.tag.clone().ok_or_else(|| PackError::Invalid {
            file: pack.dir.join("pack.yaml"),
            message: format!("pack push needs a :TAG to publish under ({r})"),
        })?;
        let mut index = pack.manifest.clone();
        let mut actions = BTreeMap::new();
        for (name, action) in &mut index.actions {
            let (at, pinned) = self
                .push_component(
                    pack,
                    r,
                    &tag,
                    name,
                    &action.component,
                    auth,
                    insecure,
                    prepare,
                )
                .await?;
            action.component = at;
            actions.insert(name.clone(), pinned);
        }
        // `sensor.NAME`: no action's name has a dot, so no sensor's
        // repository is an action's.
        let mut sensors = BTreeMap::new();
        for (name, sensor) in &mut index.sensors {
            let item = format!("sensor.{name}");
            let (at, pinned) = self
                .push_component(
                    pack,
                    r,
                    &tag,
                    &item,
                    &sensor.component,
                    auth,
                    insecure,
                    prepare,
                )
                .await?;
            sensor.component = at;
            sensors.insert(name.clone(), pinned);
        }
        let mut layers = Vec::new();
        for (name, file) in &mut index.workflows {
            let path = pack.dir.join(&*file);
            let text = std::fs::read(&path).map_err(|e| PackError::Invalid {
                file: path.clone(),
                message: format!("cannot read: {e}"),
            })?;
            let title = format!("{name}.yaml");
            *file = format!("workflows/{title}");
            layers.push(ImageLayer::new(
                text,
                WORKFLOW_LAYER_MEDIA_TYPE.to_owned(),
                Some(BTreeMap::from([(TITLE.to_owned(), title)])),
            ));
        }
        let rules = pack.rule_files()?;
        for path in &rules {
            let text = std::fs::read(path).map_err(|e| PackError::Invalid {
                file: path.clone(),
                message: format!("cannot read: {e}"),
            })?;
            let title = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            layers.push(ImageLayer::new(
                text,
                RULE_LAYER_MEDIA_TYPE.to_owned(),
                Some(BTreeMap::from([(TITLE.to_owned(), title)])),
            ));
        }
        let config = Config::new(
            serde_json::to_vec(&index).expect("a pack serializes"),
            PACK_CONFIG_MEDIA_TYPE.to_owned(),
            None,
        );
        let wasm = Self::client(r, insecure)?;
        // The plain client: this artifact is not a Wasm component.
        let client: &oci_client::Client = wasm.as_ref();
        let mut manifest = oci_client::manifest::OciImageManifest::build(&layers, &config, None);
        manifest.media_type = Some(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.to_owned());
        let response = client
            .push(
                &r.oci(),
                &layers,
                config,
                &auth.registry_auth(),
                Some(manifest),
            )
            .await
            .map_err(|e| crate::classify_oci(r, e))?;
        let index_digest = crate::pushed_digest(client, r, auth, &response.manifest_url).await?;
        Ok(PushedPack {
            index_digest,
            actions,
            sensors,
            rules: rules.len(),
        })
    }

    /// Publish the pack's component `component` (an action's or a
    /// sensor's) as `REPO.ITEM:TAG`: where the index pins it (a sibling
    /// repository and a digest, so that a copy of the pack on a mirror
    /// finds it on that mirror), and the pinned reference.
    #[allow(clippy::too_many_arguments)]
    async fn push_component(
        &self,
        pack: &LocalPack,
        r: &OciRef,
        tag: &str,
        item: &str,
        component: &str,
        auth: &Auth,
        insecure: bool,
        prepare: &Prepare<'_>,
    ) -> Result<(String, String), PackError> {
        let path = pack.dir.join(component);
        let (bytes, annotations) = prepare(&path).map_err(|message| PackError::Invalid {
            file: path.clone(),
            message,
        })?;
        let target = OciRef {
            registry: r.registry.clone(),
            repository: format!("{}.{item}", r.repository),
            tag: Some(tag.to_owned()),
            digest: None,
        };
        let pushed = self
            .push(&target, bytes, annotations, auth, insecure)
            .await?;
        Ok((
            format!(
                "{}@{}",
                sibling(&r.repository, item),
                pushed.manifest_digest
            ),
            target.pinned(&pushed.manifest_digest).to_string(),
        ))
    }

    /// Fetch the pack index `r`, every action it pins (sha256 checked), and
    /// install it as `packs_dir/NAME`, replacing an installed version only
    /// once everything arrived.
    pub async fn pull_pack(
        &self,
        r: &OciRef,
        auth: &Auth,
        insecure: bool,
        packs_dir: &Path,
    ) -> Result<InstalledPack, PackError> {
        let wasm = Self::client(r, insecure)?;
        let client: &oci_client::Client = wasm.as_ref();
        let image = client
            .pull(
                &r.oci(),
                &auth.registry_auth(),
                vec![WORKFLOW_LAYER_MEDIA_TYPE, RULE_LAYER_MEDIA_TYPE],
            )
            .await
            .map_err(|e| crate::classify_oci(r, e))?;
        let not_a_pack = |detail: String| {
            PackError::Registry(RegistryError::NotWasm {
                reference: r.to_string(),
                detail,
            })
        };
        if image.config.media_type != PACK_CONFIG_MEDIA_TYPE {
            return Err(not_a_pack(format!(
                "not a wasmflow pack: config media type {} (expected {PACK_CONFIG_MEDIA_TYPE})",
                image.config.media_type
            )));
        }
        let index_digest = image.digest.clone().unwrap_or_default();
        if let Some(pinned) = &r.digest {
            if *pinned != index_digest {
                return Err(RegistryError::DigestMismatch {
                    reference: r.to_string(),
                    what: "the pack index".into(),
                    expected: pinned.clone(),
                    actual: index_digest,
                }
                .into());
            }
        }
        let mut index: PackManifest = serde_json::from_slice(&image.config.data)
            .map_err(|e| not_a_pack(format!("the pack index does not parse: {e}")))?;
        if !valid_name(&index.name) {
            return Err(not_a_pack(format!("bad pack name `{}`", index.name)));
        }
        // Layers arrive in any order: match each to its descriptor by digest,
        // which also checks the bytes.
        let manifest = image.manifest.clone().unwrap_or_default();
        let mut workflows: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut rules: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for descriptor in &manifest.layers {
            let files = match descriptor.media_type.as_str() {
                WORKFLOW_LAYER_MEDIA_TYPE => &mut workflows,
                RULE_LAYER_MEDIA_TYPE => &mut rules,
                other => return Err(not_a_pack(format!("a layer of media type {other}"))),
            };
            let layer = image
                .layers
                .iter()
                .find(|l| sha256(&l.data) == descriptor.digest)
                .ok_or_else(|| RegistryError::DigestMismatch {
                    reference: r.to_string(),
                    what: "a workflow layer".into(),
                    expected: descriptor.digest.clone(),
                    actual: "no layer with that digest".into(),
                })?;
            let title = descriptor
                .annotations
                .as_ref()
                .and_then(|a| a.get(TITLE))
                .filter(|t| {
                    (t.ends_with(".yaml") || t.ends_with(".yml"))
                        && !t.contains('/')
                        && !t.contains("..")
                        && !t.starts_with('.')
                })
                .ok_or_else(|| not_a_pack("a layer without a plain file name".into()))?;
            files.insert(title.clone(), layer.data.to_vec());
        }

        let staging = packs_dir.join(format!(".{}.partial", index.name));
        let io = RegistryError::cache;
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(staging.join("actions")).map_err(io(&staging))?;
        std::fs::create_dir_all(staging.join("workflows")).map_err(io(&staging))?;
        for (name, action) in &mut index.actions {
            action.component = self
                .fetch_component(
                    r,
                    &action.component,
                    &staging,
                    &format!("actions/{name}.wasm"),
                    auth,
                    insecure,
                )
                .await?;
        }
        if !index.sensors.is_empty() {
            std::fs::create_dir_all(staging.join("sensors")).map_err(io(&staging))?;
        }
        for (name, sensor) in &mut index.sensors {
            sensor.component = self
                .fetch_component(
                    r,
                    &sensor.component,
                    &staging,
                    &format!("sensors/{name}.wasm"),
                    auth,
                    insecure,
                )
                .await?;
        }
        if !rules.is_empty() {
            std::fs::create_dir_all(staging.join("rules")).map_err(io(&staging))?;
        }
        for (title, text) in &rules {
            let dest = staging.join("rules").join(title);
            std::fs::write(&dest, text).map_err(io(&dest))?;
        }
        for (name, file) in &mut index.workflows {
            let title = format!("{name}.yaml");
            let text = workflows
                .get(&title)
                .ok_or_else(|| not_a_pack(format!("workflow {name} has no layer")))?;
            let dest = staging.join("workflows").join(&title);
            std::fs::write(&dest, text).map_err(io(&dest))?;
            *file = format!("workflows/{title}");
        }
        let yaml = format!(
            "# Installed by `wasmflow pack pull {r}` (index {index_digest}).\n{}",
            serde_yaml::to_string(&index).expect("a pack serializes")
        );
        let file = staging.join("pack.yaml");
        std::fs::write(&file, yaml).map_err(io(&file))?;
        let dir = packs_dir.join(&index.name);
        let old = packs_dir.join(format!(".{}.old", index.name));
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(&dir, &old).map_err(io(&dir))?;
        }
        std::fs::rename(&staging, &dir).map_err(io(&dir))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(InstalledPack {
            name: index.name,
            version: index.version,
            dir,
            index_digest,
        })
    }
}

impl Registry {
    /// Fetch the component an index pulled from `index` pins as `pinned`
    /// (sha256 checked) into `staging/file`; `file`, as the installed
    /// `pack.yaml` names it.
    async fn fetch_component(
        &self,
        index: &OciRef,
        pinned: &str,
        staging: &Path,
        file: &str,
        auth: &Auth,
        insecure: bool,
    ) -> Result<String, PackError> {
        let reference = pinned_in(index, pinned)?;
        let cached = self.fetch(&reference, auth, insecure, None).await?;
        let dest = staging.join(file);
        std::fs::write(&dest, &cached.bytes).map_err(RegistryError::cache(&dest))?;
        Ok(file.to_owned())
    }
}

/// The repository of the pack's action `name` beside the index's
/// repository `index` (`ns/vm` -> `vm.clone`): its last path segment.
fn sibling(index: &str, name: &str) -> String {
    let last = index.rsplit('/').next().unwrap_or(index);
    format!("{last}.{name}")
}

/// Where an index pulled from `index` says an action is: `NAME@DIGEST` in
/// the index's registry and namespace (how `push_pack` pins them), or an
/// `oci://` reference (as indexes pushed before it did).
fn pinned_in(index: &OciRef, component: &str) -> Result<OciRef, RegistryError> {
    if component.starts_with("oci://") {
        return Ok(OciRef::parse(component)?);
    }
    let (name, digest) = component
        .split_once('@')
        .ok_or_else(|| RegistryError::NotWasm {
            reference: index.to_string(),
            detail: format!(
                "the pack index pins an action as `{component}`, not NAME@sha256:DIGEST"
            ),
        })?;
    let namespace = index.repository.rsplit_once('/').map(|(ns, _)| ns);
    let repository = match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };
    Ok(OciRef::parse(&format!(
        "oci://{}/{repository}@{digest}",
        index.registry
    ))?)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod pin_tests {
    use super::*;

    #[test]
    fn actions_are_pinned_beside_whichever_index_names_them() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let pinned = format!("{}@{digest}", sibling("tests/math", "add"));
        assert_eq!(pinned, format!("math.add@{digest}"));
        let at = |index: &str| {
            pinned_in(&OciRef::parse(index).unwrap(), &pinned)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            at("oci://127.0.0.1:5000/tests/math:1.0.0"),
            format!("oci://127.0.0.1:5000/tests/math.add@{digest}")
        );
        // A copy on a mirror, under another namespace: the mirror's action.
        assert_eq!(
            at("oci://mirror.example/ops/packs/math:1.0.0"),
            format!("oci://mirror.example/ops/packs/math.add@{digest}")
        );
        // Indexes that pinned absolute references still pull.
        let absolute = format!("oci://old.example/tests/math.add@{digest}");
        let index = OciRef::parse("oci://127.0.0.1:5000/tests/math:1.0.0").unwrap();
        assert_eq!(pinned_in(&index, &absolute).unwrap().to_string(), absolute);
        assert!(pinned_in(&index, "math.add").is_err());
    }
}
