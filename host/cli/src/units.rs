//! Sizes (`128MiB`) and durations (`30s`) on the command line.

/// `1024`, `512KiB`, `128MiB`, `1GiB`; `k`/`KB`/`M`/`MB`/`G`/`GB` are
/// powers of 1000, the `i` forms powers of 1024.
pub fn parse_size(flag: &str, s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{flag} {s}: expected a size like 128MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "{flag} {s}: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{flag} {s}: must be greater than zero and fit in 64 bits"))
}

pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{flag} {s}: {e} (e.g. 30s, 2m, 500ms)"))?;
    if d.is_zero() {
        return Err(format!("{flag} {s}: must be greater than zero"));
    }
    Ok(d)
}

/// `--before`, `--since`: an age (`30d`: that long ago) or an RFC 3339 time.
pub fn parse_instant(flag: &str, s: &str) -> Result<std::time::SystemTime, String> {
    wasmflow_store::parse_instant(s).map_err(|e| format!("{flag} {s}: {e}"))
}

/// `--retain`: `AGE` for every ended status, or `STATUS=AGE` for one.
pub fn parse_retention(specs: &[String]) -> Result<wasmflow_store::Retention, String> {
    let mut out = wasmflow_store::Retention::default();
    for spec in specs {
        let (status, age) = match spec.split_once('=') {
            Some((status, age)) => {
                let status: wasmflow_store::Status = status
                    .parse()
                    .map_err(|e| format!("--retain {spec}: {e}"))?;
                if !status.is_terminal() {
                    return Err(format!(
                        "--retain {spec}: only ended executions are deleted (succeeded, failed, timed_out, canceled)"
                    ));
                }
                (Some(status), age)
            }
            None => (None, spec.as_str()),
        };
        let age = parse_duration("--retain", age)?;
        match status {
            Some(s) => out.by_status.push((s, age)),
            None => out.all = Some(age),
        }
    }
    Ok(out)
}

/// Bytes for people: `512 B`, `3.2 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--memory", "128MiB").unwrap(), 128 << 20);
        assert_eq!(parse_size("--memory", "1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("--memory", "4096").unwrap(), 4096);
        assert!(parse_size("--memory", "lots")
            .unwrap_err()
            .contains("--memory lots"));
        assert!(parse_size("--memory", "12XB").is_err());
        assert!(parse_size("--memory", "0").is_err());
    }

    #[test]
    fn retention_and_before() {
        let r = parse_retention(&["30d".into(), "failed=90d".into()]).unwrap();
        assert_eq!(
            r.age(wasmflow_store::Status::Succeeded).unwrap().as_secs(),
            30 * 86400
        );
        assert_eq!(
            r.age(wasmflow_store::Status::Failed).unwrap().as_secs(),
            90 * 86400
        );
        assert!(parse_retention(&["running=1d".into()])
            .unwrap_err()
            .contains("only ended"));
        assert!(parse_retention(&["soon".into()]).is_err());
        assert!(parse_instant("--before", "2026-11-01T00:00:00Z").is_ok());
        assert!(parse_instant("--before", "30d").unwrap() < std::time::SystemTime::now());
        assert!(parse_instant("--before", "last week")
            .unwrap_err()
            .contains("--before last week: expected an age"));
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("--timeout", "1500ms").unwrap().as_millis(),
            1500
        );
        assert!(parse_duration("--timeout", "soon").is_err());
    }
}
