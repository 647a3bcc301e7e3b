//! A task's grants: what the workflow asks for, bounded by the operator.
//!
//! The operator's flags on `wasmflow run wf.yaml` are the upper bound. A
//! task gets what its own `grants` (or else the workflow's) list, and only
//! if each entry is within what the operator granted: a workflow file can
//! narrow a sandbox, never widen it.

use crate::model::GrantSpec;
use std::path::Path;
use wasmflow_store::{Grants, Mount};

/// Parse a rendered grant spec (templates already filled in). Only the
/// operator can allow unconfined programs (see `bound`).
pub fn parse(spec: &GrantSpec) -> Result<Grants, String> {
    spec.parse().map_err(|e| e.to_string())
}

/// Check that every entry of `asked` is within `operator`, naming the first
/// that is not and the flag that would allow it. Environment variables the
/// operator gave a value for take the operator's value.
pub fn bound(mut asked: Grants, operator: &Grants) -> Result<Grants, String> {
    let missing = |flag: &str, what: &str| {
        format!("asks for {flag} {what}, which the operator did not grant (add {flag} {what} to the command)")
    };
    for m in &asked.read {
        let ok = operator
            .read
            .iter()
            .chain(&operator.write)
            .any(|o| within(m, o));
        if !ok {
            return Err(missing("--allow-read", &m.host));
        }
    }
    for m in &asked.write {
        if !operator.write.iter().any(|o| within(m, o)) {
            return Err(missing("--allow-write", &m.host));
        }
    }
    for env in &mut asked.env {
        match operator.env.iter().find(|o| o.name == env.name) {
            Some(o) => {
                if o.value.is_some() {
                    env.value = o.value.clone();
                }
            }
            None => return Err(missing("--allow-env", &env.name)),
        }
    }
    for n in &asked.net {
        let ok = operator
            .net
            .iter()
            .any(|o| o.host == n.host && (o.port.is_none() || o.port == n.port));
        if !ok {
            return Err(missing("--allow-net", &n.to_string()));
        }
    }
    for p in &asked.exec {
        if !operator.exec.contains(p) {
            return Err(missing("--allow-exec", p));
        }
    }
    for k in &asked.keys {
        if !key_granted(operator, k) {
            return Err(missing("--allow-key", k));
        }
    }
    asked.unconfined_exec = operator.unconfined_exec && !asked.exec.is_empty();
    Ok(asked)
}

/// `recorded` with every entry of `added` it lacks: what a re-run with
/// grant flags runs under (the fix for a run that failed for want of a
/// grant). Still bounded by the operator where one applies (`bound`).
pub fn extend(recorded: &Grants, added: Grants) -> Grants {
    fn union<T: PartialEq>(into: &mut Vec<T>, more: Vec<T>) {
        for item in more {
            if !into.contains(&item) {
                into.push(item);
            }
        }
    }
    let mut out = recorded.clone();
    union(&mut out.read, added.read);
    union(&mut out.write, added.write);
    // A variable granted again with another value takes the new one.
    out.env
        .retain(|e| !added.env.iter().any(|a| a.name == e.name));
    union(&mut out.env, added.env);
    union(&mut out.net, added.net);
    union(&mut out.exec, added.exec);
    union(&mut out.keys, added.keys);
    out.unconfined_exec |= added.unconfined_exec;
    out
}

/// `task` with the keys its rendered `input` references (`secret()`)
/// added, each of which the operator must have granted.
pub fn with_referenced_keys(
    mut task: Grants,
    input: &serde_json::Value,
    operator: &Grants,
) -> Result<Grants, String> {
    for name in wasmflow_datastore::reference::key_names(input) {
        if key_granted(&task, &name) {
            continue;
        }
        if !key_granted(operator, &name) {
            return Err(format!(
                "reads secret(\"{name}\"), which the operator did not grant (add --allow-key {name} to the command)"
            ));
        }
        task.keys.push(name);
    }
    Ok(task)
}

/// Whether `operator` grants the key (or pattern) `key`.
pub fn key_granted(operator: &Grants, key: &str) -> bool {
    wasmflow_datastore::reference::granted(&operator.keys, key)
}

/// Whether the host side of `inner` lies inside that of `outer`.
fn within(inner: &Mount, outer: &Mount) -> bool {
    Path::new(&inner.host).starts_with(Path::new(&outer.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(f: impl FnOnce(&mut GrantSpec)) -> GrantSpec {
        let mut s = GrantSpec::default();
        f(&mut s);
        s
    }

    #[test]
    fn a_rerun_adds_grants_without_doubling_any() {
        let recorded = parse(&spec(|g| {
            g.exec.push("qemu-img".into());
            g.env.push("REGION=eu".into());
        }))
        .unwrap();
        let added = parse(&spec(|g| {
            g.exec.push("qemu-img".into());
            g.exec.push("virsh".into());
            g.env.push("REGION=us".into());
            g.net.push("localhost:8080".into());
        }))
        .unwrap();
        let both = extend(&recorded, added);
        assert_eq!(both.exec, ["qemu-img", "virsh"]);
        assert_eq!(both.env.len(), 1);
        assert_eq!(both.env[0].value.as_deref(), Some("us"));
        assert_eq!(both.net.len(), 1);
        assert_eq!(extend(&recorded, Grants::default()), recorded);
    }

    #[test]
    fn tasks_get_only_what_the_operator_granted() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("disks");
        std::fs::create_dir(&sub).unwrap();
        let d = dir.path().to_str().unwrap().to_owned();
        let s = sub.to_str().unwrap().to_owned();
        let operator = parse(&spec(|g| {
            g.write.push(d.clone());
            g.exec.push("qemu-img".into());
            g.env.push("TOKEN=abc".into());
            g.net.push("localhost".into());
        }))
        .unwrap();

        let narrow = parse(&spec(|g| {
            g.read.push(s.clone());
            g.write.push(s.clone());
            g.exec.push("qemu-img".into());
            g.env.push("TOKEN".into());
            g.net.push("localhost:8080".into());
        }))
        .unwrap();
        let bounded = bound(narrow, &operator).unwrap();
        assert_eq!(bounded.env[0].value.as_deref(), Some("abc"));

        let wider = parse(&spec(|g| g.exec.push("rm".into()))).unwrap();
        let e = bound(wider, &operator).unwrap_err();
        assert!(e.contains("--allow-exec rm"), "{e}");

        let outside = parse(&spec(|g| g.read.push("/".into()))).unwrap();
        assert!(bound(outside, &operator)
            .unwrap_err()
            .contains("--allow-read /"));
    }
}
