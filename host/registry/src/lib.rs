//! Action components in OCI registries.
//!
//! This crate owns `oci://` references, pushing a component in the standard
//! Wasm OCI artifact layout (`oci-wasm` over `oci-client`: config
//! `application/vnd.wasm.config.v0+json`, one `application/wasm` layer),
//! pulling one with its sha256 checked, and the content-addressed cache of
//! pulled components under `WASMFLOW_HOME/oci`, and packs ([`pack`]). It
//! does not run anything
//! and does not touch the execution store: the CLI hands the bytes it
//! returns to the runtime.

mod cache;
pub mod pack;
mod reference;

pub use cache::{Cache, Cached};
pub use reference::{OciRef, RefError};

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_wasm::{WasmClient, WasmConfig};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Annotation keys wasmflow sets on the manifest.
pub const ANNOTATION_SIGNATURE: &str = "dev.wasmflow.signature";
pub const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error("{reference}: the registry refused the credentials ({detail}); check --username and the password")]
    Unauthorized { reference: String, detail: String },
    #[error("{reference}: no such tag or digest in the registry")]
    NotFound { reference: String },
    #[error("{reference}: {what} does not match its digest: expected {expected}, got {actual}; nothing was cached")]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{reference}: not a Wasm component artifact: {detail}")]
    NotWasm { reference: String, detail: String },
    #[error("--insecure (plain HTTP) is only allowed for loopback registries, not {host}")]
    InsecureNotLoopback { host: String },
    #[error(
        "{reference}: the registry on this machine did not answer over HTTPS ({detail}); \
         if it serves plain HTTP, add --insecure"
    )]
    PlainHttp { reference: String, detail: String },
    #[error("{reference}: {detail}")]
    Registry { reference: String, detail: String },
    #[error("the component cache at {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// For `map_err`: an I/O error on `path` in the cache or a pack install.
    pub(crate) fn cache(path: &std::path::Path) -> impl Fn(std::io::Error) -> Self + '_ {
        move |source| RegistryError::Cache {
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the caller can fix it (exit status 2): a bad reference,
    /// credentials, a missing tag, a flag.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            RegistryError::Ref(_)
                | RegistryError::Unauthorized { .. }
                | RegistryError::NotFound { .. }
                | RegistryError::InsecureNotLoopback { .. }
                | RegistryError::PlainHttp { .. }
                | RegistryError::NotWasm { .. }
                | RegistryError::DigestMismatch { .. }
        )
    }
}

/// How to authenticate. Bearer tokens are negotiated from these by the
/// client when the registry asks for them.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
}

impl Auth {
    pub(crate) fn registry_auth(&self) -> RegistryAuth {
        match self {
            Auth::Anonymous => RegistryAuth::Anonymous,
            Auth::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

/// What a push published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// The manifest's digest: `oci://…@<this>` pins exactly this push.
    pub manifest_digest: String,
    /// The component layer's digest (the sha256 of the component bytes).
    pub layer_digest: String,
}

/// Talks to registries and keeps what it pulled.
pub struct Registry {
    cache: Cache,
}

impl Registry {
    /// A registry client whose cache lives in `cache_dir`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            cache: Cache::new(cache_dir),
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub(crate) fn client(r: &OciRef, insecure: bool) -> Result<WasmClient, RegistryError> {
        let protocol = if insecure {
            if !r.is_loopback() {
                return Err(RegistryError::InsecureNotLoopback {
                    host: r.registry.clone(),
                });
            }
            ClientProtocol::HttpsExcept(vec![r.registry.clone()])
        } else {
            ClientProtocol::Https
        };
        // reqwest is built without a crypto provider of its own (see the
        // workspace Cargo.toml); a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(WasmClient::new(Client::new(ClientConfig {
            protocol,
            ..Default::default()
        })))
    }

    /// Publish `component` under `r` (a tag). `annotations` go on the
    /// manifest and in the config.
    pub async fn push(
        &self,
        r: &OciRef,
        component: Vec<u8>,
        annotations: BTreeMap<String, String>,
        auth: &Auth,
        insecure: bool,
    ) -> Result<Pushed, RegistryError> {
        let client = Self::client(r, insecure)?;
        let layer_digest = sha256(&component);
        let (mut config, layer) = WasmConfig::from_raw_component(component, None).map_err(|e| {
            RegistryError::NotWasm {
                reference: r.to_string(),
                detail: format!("{e:#}"),
            }
        })?;
        // The same component pushed twice is the same artifact, with the
        // same manifest digest: its creation time is the reproducible-builds
        // epoch, not the push's.
        config.created = source_date();
        // oci-client writes manifests as canonical JSON (OLPC), which leaves
        // control characters unescaped; registries then reject the manifest
        // as invalid JSON. WIT and prose read the same on one line.
        let annotations: BTreeMap<String, String> = annotations
            .into_iter()
            .map(|(k, v)| (k, one_line(&v)))
            .collect();
        let annotated = config.with_annotations(annotations.clone());
        let response = client
            .push(
                &r.oci(),
                &auth.registry_auth(),
                layer,
                annotated,
                Some(annotations),
            )
            .await
            .map_err(|e| classify(r, e))?;
        let manifest_digest = pushed_digest(&client, r, auth, &response.manifest_url).await?;
        Ok(Pushed {
            manifest_digest,
            layer_digest,
        })
    }

    /// The component `r` names, from the cache when it is there (a tag is
    /// resolved to a digest once), else pulled, checked and cached.
    /// `progress` is told (bytes done, bytes total) while a layer downloads.
    pub async fn fetch(
        &self,
        r: &OciRef,
        auth: &Auth,
        insecure: bool,
        progress: Option<&(dyn Fn(u64, u64) + Sync)>,
    ) -> Result<Cached, RegistryError> {
        if let Some(hit) = self.cache.lookup(r)? {
            return Ok(hit);
        }
        self.pull(r, auth, insecure, progress).await
    }

    /// Pull `r` from the registry (even when cached), check every digest,
    /// and cache it.
    pub async fn pull(
        &self,
        r: &OciRef,
        auth: &Auth,
        insecure: bool,
        progress: Option<&(dyn Fn(u64, u64) + Sync)>,
    ) -> Result<Cached, RegistryError> {
        let client = Self::client(r, insecure)?;
        let reference = r.oci();
        let (manifest, _config, manifest_digest) = client
            .pull_manifest_and_config(&reference, &auth.registry_auth())
            .await
            .map_err(|e| classify(r, e))?;
        if let Some(pinned) = &r.digest {
            if *pinned != manifest_digest {
                return Err(RegistryError::DigestMismatch {
                    reference: r.to_string(),
                    what: "the manifest".into(),
                    expected: pinned.clone(),
                    actual: manifest_digest,
                });
            }
        }
        // The Wasm layout has exactly one layer, the component.
        let layer = match manifest.layers.as_slice() {
            [one] if one.media_type == oci_wasm::WASM_LAYER_MEDIA_TYPE => one,
            layers => {
                return Err(RegistryError::NotWasm {
                    reference: r.to_string(),
                    detail: format!(
                        "expected one {} layer, found {}",
                        oci_wasm::WASM_LAYER_MEDIA_TYPE,
                        layers
                            .iter()
                            .map(|l| l.media_type.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
        };
        let mut stream = client
            .pull_blob_stream(&reference, layer)
            .await
            .map_err(|e| classify_oci(r, e))?;
        let total = stream.content_length.unwrap_or(layer.size.max(0) as u64);
        let mut bytes = Vec::with_capacity(total as usize);
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.stream.next().await {
            // oci-client checks the digest as the stream ends, too.
            let chunk = chunk.map_err(|e| {
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<DigestError>())
                {
                    Some(DigestError::VerificationError { expected, actual }) => {
                        RegistryError::DigestMismatch {
                            reference: r.to_string(),
                            what: "the component layer".into(),
                            expected: expected.clone(),
                            actual: actual.clone(),
                        }
                    }
                    _ => RegistryError::Registry {
                        reference: r.to_string(),
                        detail: format!("downloading the component: {e}"),
                    },
                }
            })?;
            hasher.update(&chunk);
            bytes.extend_from_slice(&chunk);
            if let Some(p) = progress {
                p(bytes.len() as u64, total);
            }
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != layer.digest {
            return Err(RegistryError::DigestMismatch {
                reference: r.to_string(),
                what: "the component layer".into(),
                expected: layer.digest.clone(),
                actual,
            });
        }
        self.cache.store(r, &manifest_digest, &layer.digest, bytes)
    }
}

/// `text` with every run of whitespace (newlines, tabs) made one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest of the manifest just pushed to `r`: from the URL the
/// registry answered with (`…/manifests/sha256:…`) when it names one, else
/// asked of the registry.
pub(crate) async fn pushed_digest(
    client: &Client,
    r: &OciRef,
    auth: &Auth,
    manifest_url: &str,
) -> Result<String, RegistryError> {
    let last = manifest_url.rsplit('/').next().unwrap_or_default();
    if last.starts_with("sha256:") {
        return Ok(last.to_owned());
    }
    client
        .fetch_manifest_digest(&r.oci(), &auth.registry_auth())
        .await
        .map_err(|e| classify_oci(r, e))
}

/// oci-wasm reports through anyhow; find the registry's own error in it.
/// `SOURCE_DATE_EPOCH` (reproducible-builds.org) when set, else the Unix
/// epoch.
fn source_date() -> chrono::DateTime<chrono::Utc> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

fn classify(r: &OciRef, e: anyhow::Error) -> RegistryError {
    match e.downcast::<OciDistributionError>() {
        Ok(oci) => classify_oci(r, oci),
        Err(e) => {
            let detail = format!("{e:#}");
            if detail.contains("Wasm components must") {
                RegistryError::NotWasm {
                    reference: r.to_string(),
                    detail,
                }
            } else {
                unanswered(r, detail)
            }
        }
    }
}

/// A request that got no answer. A loopback registry reached over HTTPS
/// that does not answer is most often one serving plain HTTP (the
/// distribution registry's default): say so, with the flag.
fn unanswered(r: &OciRef, detail: String) -> RegistryError {
    let reference = r.to_string();
    if r.is_loopback() && detail.contains("error sending request") && detail.contains("https://") {
        RegistryError::PlainHttp { reference, detail }
    } else {
        RegistryError::Registry { reference, detail }
    }
}

pub(crate) fn classify_oci(r: &OciRef, e: OciDistributionError) -> RegistryError {
    let reference = r.to_string();
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => RegistryError::Unauthorized {
            reference,
            detail: e.to_string(),
        },
        OciDistributionError::ImageManifestNotFoundError(_) => {
            RegistryError::NotFound { reference }
        }
        OciDistributionError::RegistryError { ref envelope, .. }
            if envelope.errors.iter().any(|x| {
                let code = format!("{:?}", x.code);
                code.contains("Unknown") || code.contains("NotFound")
            }) =>
        {
            RegistryError::NotFound { reference }
        }
        OciDistributionError::ServerError { code: 401, .. } => RegistryError::Unauthorized {
            reference,
            detail: e.to_string(),
        },
        OciDistributionError::ServerError { code: 404, .. } => {
            RegistryError::NotFound { reference }
        }
        other => unanswered(r, other.to_string()),
    }
}
