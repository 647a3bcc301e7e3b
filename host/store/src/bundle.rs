//! Replay bundles: one execution's record, events and blobs in one file,
//! so a failure in production becomes a test fixture anywhere.
//!
//! The format is JSON (readable, diffable, versioned):
//! `{ "format": "wasmflow-replay-bundle", "version": 1, "record": {...},
//!    "events": [...], "blobs": { "sha256:...": "<base64>" } }`.

use crate::error::StoreError;
use crate::event::{Event, HttpOutcome, ProcessOutcome, ReadOutcome};
use crate::record::ExecutionRecord;
use crate::store::{Digest, Store};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const BUNDLE_FORMAT: &str = "wasmflow-replay-bundle";
pub const BUNDLE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a replay bundle: {0}")]
    Corrupt(String),
    #[error("bundle format version {found} is newer than this wasmflow reads (up to {supported}); upgrade wasmflow")]
    TooNew { found: u32, supported: u32 },
    #[error("bundle blob {digest} does not match its content")]
    BlobMismatch { digest: String },
    #[error("bundle is missing blob {0}")]
    MissingBlob(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayBundle {
    pub format: String,
    pub version: u32,
    pub record: ExecutionRecord,
    pub events: Vec<Event>,
    /// Base64 content by `sha256:` digest.
    pub blobs: BTreeMap<String, String>,
    /// The secrets a replay needs given again (never their values): key
    /// names, or the variable of an env value given in clear. Another
    /// machine replays with `--secret NAME=VALUE` for each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

impl ReplayBundle {
    /// Gather everything replaying `record` needs from `store`.
    pub fn export(store: &Store, record: ExecutionRecord) -> Result<Self, BundleError> {
        let events = store.events(record.id)?;
        let mut blobs = BTreeMap::new();
        for digest in referenced(&record, &events) {
            let bytes = store
                .get_blob_str(&digest)?
                .ok_or_else(|| BundleError::MissingBlob(digest.clone()))?;
            blobs.insert(
                digest,
                base64::engine::general_purpose::STANDARD.encode(bytes),
            );
        }
        Ok(Self {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            record,
            events,
            blobs,
            secrets: Vec::new(),
        })
    }

    /// Parse and verify a bundle: format, version, and every blob's digest.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        // Read the header first, so a newer version is reported as such
        // rather than as whatever field it renamed.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_str(text).map_err(|e| {
            BundleError::Corrupt(format!("line {} column {}: {e}", e.line(), e.column()))
        })?;
        if header.format.as_deref() != Some(BUNDLE_FORMAT) {
            return Err(BundleError::Corrupt(format!(
                "`format` is not \"{BUNDLE_FORMAT}\""
            )));
        }
        match header.version {
            Some(v) if v > BUNDLE_VERSION => {
                return Err(BundleError::TooNew {
                    found: v,
                    supported: BUNDLE_VERSION,
                })
            }
            Some(_) => {}
            None => return Err(BundleError::Corrupt("`version` is missing".into())),
        }
        let bundle: ReplayBundle = serde_json::from_str(text).map_err(|e| {
            BundleError::Corrupt(format!("line {} column {}: {e}", e.line(), e.column()))
        })?;
        for (digest, b64) in &bundle.blobs {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| BundleError::BlobMismatch {
                    digest: digest.clone(),
                })?;
            if Digest::of(&bytes).to_string() != *digest {
                return Err(BundleError::BlobMismatch {
                    digest: digest.clone(),
                });
            }
        }
        for digest in referenced(&bundle.record, &bundle.events) {
            if !bundle.blobs.contains_key(&digest) {
                return Err(BundleError::MissingBlob(digest));
            }
        }
        Ok(bundle)
    }

    pub fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.blobs
            .get(digest)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    }
}

/// Every blob a replay of `record` reads: the component and the payloads
/// of its events.
pub(crate) fn referenced(record: &ExecutionRecord, events: &[Event]) -> Vec<String> {
    let mut out = payloads(events);
    out.push(record.component_digest.clone());
    out.sort();
    out.dedup();
    out
}

/// The blobs that hold events' payloads (file snapshots, program output,
/// HTTP bodies, large socket reads).
pub(crate) fn payloads(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Event::Directory { files, .. } => out.extend(files.iter().map(|(_, d)| d.clone())),
            Event::Process {
                outcome: ProcessOutcome::Exited { stdout, stderr, .. },
                ..
            } => {
                out.push(stdout.clone());
                out.push(stderr.clone());
            }
            Event::Http {
                outcome: HttpOutcome::Response { body, .. },
                ..
            } => out.push(body.clone()),
            Event::TcpRead {
                outcome: ReadOutcome::Blob { digest },
                ..
            } => out.push(digest.clone()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}
