//! Parsing the operator's grant flags into [`Grants`].
//!
//! Grants are deny-by-default capabilities: an execution can touch only
//! what is listed. Parsing checks what can be checked before anything runs
//! (directories exist, hosts and ports are well formed), so a typo is a
//! usage error, not a surprising denial at run time.

use serde::{Deserialize, Serialize};
use std::path::Path;
use wasmflow_store::{EnvGrant, Grants, Mount, NetGrant};

/// Grants as people write them, one list of flag values per kind: the
/// CLI's `--allow-*` flags, a workflow's `grants:`, a webhook's, the API's
/// `grants` object (this is its JSON form). Strings may be templates in a
/// workflow, rendered before [`GrantSpec::parse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSpec {
    /// `HOST_DIR[::GUEST_DIR]`, read-only.
    #[serde(default)]
    pub read: Vec<String>,
    /// `HOST_DIR[::GUEST_DIR]`, read-write.
    #[serde(default)]
    pub write: Vec<String>,
    /// `NAME` or `NAME=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `HOST` or `HOST:PORT`.
    #[serde(default)]
    pub net: Vec<String>,
    /// Program names (or absolute paths) for `wasmflow:action/process`.
    #[serde(default)]
    pub exec: Vec<String>,
    /// Datastore key names or patterns (`system.vm.*`) for
    /// `wasmflow:action/keys` and references in the input.
    #[serde(default)]
    pub key: Vec<String>,
    /// `VAR=KEY`: a datastore key's value as an environment variable.
    #[serde(default)]
    pub secret_env: Vec<String>,
}

impl GrantSpec {
    pub fn is_empty(&self) -> bool {
        *self == GrantSpec::default()
    }

    /// Each list with its key (`read`, ...), in the order they are written.
    pub fn lists(&self) -> [(&'static str, &Vec<String>); 7] {
        [
            ("read", &self.read),
            ("write", &self.write),
            ("env", &self.env),
            ("net", &self.net),
            ("exec", &self.exec),
            ("key", &self.key),
            ("secret_env", &self.secret_env),
        ]
    }

    /// The one parser of grants: every entry checked (directories exist,
    /// hosts and ports are well formed), errors named by the flag that
    /// takes the value. `unconfined_exec` is the operator's alone to give.
    pub fn parse(&self) -> Result<Grants, GrantError> {
        let mounts = |flag, values: &[String]| {
            values
                .iter()
                .map(|v| parse_mount(flag, v))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Grants {
            read: mounts("--allow-read", &self.read)?,
            write: mounts("--allow-write", &self.write)?,
            env: self
                .env
                .iter()
                .map(|v| parse_env(v))
                .chain(self.secret_env.iter().map(|v| parse_secret_env(v)))
                .collect::<Result<_, _>>()?,
            net: self
                .net
                .iter()
                .map(|v| parse_net(v))
                .collect::<Result<_, _>>()?,
            exec: self
                .exec
                .iter()
                .map(|v| parse_exec(v))
                .collect::<Result<_, _>>()?,
            keys: self
                .key
                .iter()
                .map(|v| parse_key(v))
                .collect::<Result<_, _>>()?,
            unconfined_exec: false,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{flag} {value}: {problem}")]
pub struct GrantError {
    pub flag: &'static str,
    pub value: String,
    pub problem: String,
}

fn err(flag: &'static str, value: &str, problem: impl Into<String>) -> GrantError {
    GrantError {
        flag,
        value: value.to_owned(),
        problem: problem.into(),
    }
}

/// `HOST_DIR[::GUEST_DIR]`. Without `GUEST_DIR` the guest sees the directory
/// at its absolute host path, so paths an action hands to a granted host
/// program (`--allow-exec`) mean the same thing on both sides.
pub fn parse_mount(flag: &'static str, value: &str) -> Result<Mount, GrantError> {
    let (host, guest) = match value.split_once("::") {
        Some((h, g)) => (h, Some(g)),
        None => (value, None),
    };
    if host.is_empty() {
        return Err(err(flag, value, "the host directory is empty"));
    }
    let canonical = Path::new(host).canonicalize().map_err(|e| {
        err(
            flag,
            value,
            format!("cannot use host directory `{host}`: {e}"),
        )
    })?;
    if !canonical.is_dir() {
        return Err(err(flag, value, format!("`{host}` is not a directory")));
    }
    let host = canonical
        .to_str()
        .ok_or_else(|| err(flag, value, "the host path is not UTF-8"))?
        .to_owned();
    let guest = match guest {
        Some("") => return Err(err(flag, value, "the guest directory after `::` is empty")),
        Some(g) => g.to_owned(),
        None => host.clone(),
    };
    Ok(Mount { host, guest })
}

/// `NAME[=VALUE]`; without a value the host's value is passed at run time.
pub fn parse_env(value: &str) -> Result<EnvGrant, GrantError> {
    let (name, val) = match value.split_once('=') {
        Some((n, v)) => (n, Some(v.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || name.contains('\0') {
        return Err(err("--allow-env", value, "expected NAME or NAME=VALUE"));
    }
    Ok(EnvGrant {
        name: name.to_owned(),
        value: val,
    })
}

/// `VAR=KEY`: the env grant whose value is a reference to the key.
pub fn parse_secret_env(value: &str) -> Result<EnvGrant, GrantError> {
    let bad = |p: String| err("--secret-env", value, p);
    let (name, key) = value
        .split_once('=')
        .ok_or_else(|| bad("expected VAR=KEY (e.g. DB_PASSWORD=system.db_password)".into()))?;
    if name.is_empty() || name.contains('\0') {
        return Err(bad("the variable name is empty".into()));
    }
    wasmflow_datastore::check_name(key).map_err(|e| bad(e.to_string()))?;
    Ok(EnvGrant {
        name: name.to_owned(),
        value: Some(wasmflow_datastore::reference::to_key(key)),
    })
}

/// A key name, or a pattern with `*` (`system.vm.*`).
pub fn parse_key(value: &str) -> Result<String, GrantError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-*".contains(&b));
    if !ok {
        return Err(err(
            "--allow-key",
            value,
            "expected a key name or a pattern: letters, digits, `.`, `_`, `-` and `*`",
        ));
    }
    Ok(value.to_owned())
}

/// `HOST[:PORT]`, with IPv6 addresses in brackets (`[::1]:8080`).
pub fn parse_net(value: &str) -> Result<NetGrant, GrantError> {
    let bad = |p: &str| err("--allow-net", value, p.to_owned());
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("unclosed `[` in IPv6 address"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected `:PORT` after `]`"))?,
            ),
        };
        (h, port)
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if host.is_empty() || host.contains('/') || host.contains(char::is_whitespace) {
        return Err(bad("expected HOST or HOST:PORT (no scheme, no path)"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be 1-65535"))
        })
        .transpose()?;
    Ok(NetGrant {
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `PROGRAM`: a bare name (found on `PATH` when the action runs it) or an
/// absolute path.
pub fn parse_exec(value: &str) -> Result<String, GrantError> {
    if value.is_empty() {
        return Err(err("--allow-exec", value, "the program name is empty"));
    }
    if value.contains('/') && !value.starts_with('/') {
        return Err(err(
            "--allow-exec",
            value,
            "give a bare program name (looked up on PATH) or an absolute path",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_grants() {
        assert_eq!(
            parse_net("example.com").unwrap(),
            NetGrant {
                host: "example.com".into(),
                port: None
            }
        );
        assert_eq!(parse_net("127.0.0.1:8080").unwrap().port, Some(8080));
        assert_eq!(
            parse_net("[::1]:80").unwrap(),
            NetGrant {
                host: "::1".into(),
                port: Some(80)
            }
        );
        assert!(parse_net("http://x").is_err());
        assert!(parse_net("x:0").is_err());
        assert!(parse_net("x:99999").is_err());
    }

    #[test]
    fn mounts_default_to_the_host_path() {
        let dir = tempfile::tempdir().unwrap();
        let m = parse_mount("--allow-read", dir.path().to_str().unwrap()).unwrap();
        assert_eq!(m.host, m.guest);
        let m = parse_mount("--allow-write", &format!("{}::/data", dir.path().display())).unwrap();
        assert_eq!(m.guest, "/data");
        let e = parse_mount("--allow-read", "/definitely/not/here").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--allow-read /definitely/not/here: cannot use host directory"),
            "{e}"
        );
    }

    #[test]
    fn env_and_exec() {
        assert_eq!(parse_env("A=b=c").unwrap().value.as_deref(), Some("b=c"));
        assert_eq!(parse_env("HOME").unwrap().value, None);
        assert!(parse_env("=x").is_err());
        assert!(parse_exec("bin/sh").is_err());
        assert_eq!(
            parse_exec("/usr/bin/qemu-img").unwrap(),
            "/usr/bin/qemu-img"
        );
    }
}
