//! `oci://HOST[:PORT]/NAMESPACE/NAME:TAG` and `oci://…@sha256:DIGEST`.

use std::fmt;

#[derive(Debug, thiserror::Error)]
#[error("`{reference}` is not an OCI reference: {problem} (expected oci://HOST[:PORT]/NAMESPACE/NAME:TAG or oci://HOST[:PORT]/NAMESPACE/NAME@sha256:DIGEST)")]
pub struct RefError {
    pub reference: String,
    pub problem: String,
}

/// A parsed `oci://` reference. A tag, a digest, or both (the digest wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciRef {
    /// `host` or `host:port`.
    pub registry: String,
    /// `namespace/name` (one or more path segments).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>` of the manifest.
    pub digest: Option<String>,
}

impl OciRef {
    pub fn parse(s: &str) -> Result<Self, RefError> {
        let bad = |problem: &str| RefError {
            reference: s.to_owned(),
            problem: problem.to_owned(),
        };
        let rest = s
            .strip_prefix("oci://")
            .ok_or_else(|| bad("it does not start with oci://"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the host"))?;
        if registry.is_empty() {
            return Err(bad("the host is empty"));
        }
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("the digest must be sha256:<hex>"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(bad(
                        "the digest must be sha256: and 64 lowercase hex digits",
                    ));
                }
                (p, Some(d.to_owned()))
            }
            None => (path, None),
        };
        // A tag follows the last ':' of the last path segment.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (path, None),
        };
        if repository.is_empty()
            || repository.split('/').any(|seg| {
                seg.is_empty()
                    || !seg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(bad(
                "the repository must be lowercase path segments (a-z, 0-9, '.', '_', '-')",
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                return Err(bad("the tag must be 1-128 of [A-Za-z0-9._-]"));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad("give a :TAG or an @sha256:DIGEST"));
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// The same repository pinned to `digest`.
    pub fn pinned(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the host is this machine (where plain HTTP may be allowed).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    pub(crate) fn oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (Some(t), None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
            ),
            (None, None) => unreachable!("parse requires a tag or a digest"),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = OciRef::parse("oci://127.0.0.1:5000/ops/vm.clone:1.0.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "ops/vm.clone");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/ops/vm.clone:1.0.0");
        let d = format!("sha256:{}", "a".repeat(64));
        let p = OciRef::parse(&format!("oci://ghcr.io/ops/vm.clone@{d}")).unwrap();
        assert_eq!(p.digest.as_deref(), Some(d.as_str()));
        assert!(!p.is_loopback());
        assert!(OciRef::parse("oci://ghcr.io/ops/vm.clone").is_err());
        assert!(OciRef::parse("ghcr.io/ops/x:1").is_err());
        assert!(OciRef::parse("oci://ghcr.io/Ops/x:1").is_err());
        assert!(OciRef::parse("oci://ghcr.io/ops/x@sha256:zz").is_err());
        assert!(OciRef::parse("oci://localhost:5000/x:1")
            .unwrap()
            .is_loopback());
    }
}
