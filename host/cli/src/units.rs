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
    fn durations() {
        assert_eq!(
            parse_duration("--timeout", "1500ms").unwrap().as_millis(),
            1500
        );
        assert!(parse_duration("--timeout", "soon").is_err());
    }
}
