//! Timers: when a rule with a timer trigger (`wasmflow.interval`,
//! `wasmflow.cron`, `wasmflow.date`) fires, and what a server that was
//! down does about the firings it missed.
//!
//! An interval fires at the multiples of its period since the Unix epoch
//! (`every: 30s` at :00 and :30), so every server and every restart agrees
//! on the schedule; a firing is identified by its rule and scheduled time
//! ([`firing_id`]), so it is recorded once however many servers reach it.
//! `catchup` says what happens to firings missed while no server ran:
//! `skip` (the default: none of them), `once` (the last one), `all`.

use crate::rule::Rule;
use crate::trigger;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// At most this many missed firings are made up for (`catchup: all`).
pub const CATCHUP_MAX: usize = 1000;

#[derive(Clone, Debug)]
pub enum Schedule {
    Every(Duration),
    Cron(Box<croner::Cron>, chrono_tz::Tz),
    At(SystemTime),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Catchup {
    Skip,
    Once,
    All,
}

/// A timer rule's schedule and catch-up; `None` for a rule of another
/// trigger type; an error names the parameter.
pub fn of(
    rule_trigger: &str,
    parameters: &serde_json::Map<String, Value>,
) -> Option<Result<(Schedule, Catchup), (String, String)>> {
    let text = |name: &str| parameters.get(name).and_then(Value::as_str);
    let bad = |name: &str, why: String| Err((name.to_owned(), why));
    let schedule = match rule_trigger {
        trigger::INTERVAL => {
            let every = text("every").unwrap_or_default();
            match humantime::parse_duration(every) {
                Ok(d) if d >= Duration::from_secs(1) => Ok(Schedule::Every(d)),
                Ok(_) => bad("every", "an interval is at least 1s".into()),
                Err(e) => bad("every", format!("`{every}`: {e}")),
            }
        }
        trigger::CRON => {
            let expr = text("expression").unwrap_or_default();
            let zone = text("timezone").unwrap_or("UTC");
            match (
                croner::Cron::new(expr).with_seconds_optional().parse(),
                zone.parse::<chrono_tz::Tz>(),
            ) {
                (Ok(c), Ok(tz)) => Ok(Schedule::Cron(Box::new(c), tz)),
                (Err(e), _) => bad("expression", format!("`{expr}`: {e}")),
                (_, Err(_)) => bad(
                    "timezone",
                    format!("`{zone}` is not an IANA time zone (e.g. Europe/Paris)"),
                ),
            }
        }
        trigger::DATE => {
            let at = text("at").unwrap_or_default();
            match humantime::parse_rfc3339_weak(at) {
                Ok(t) => Ok(Schedule::At(t)),
                Err(e) => bad("at", format!("`{at}`: {e} (an RFC 3339 time)")),
            }
        }
        _ => return None,
    };
    let catchup = match text("catchup") {
        None | Some("skip") => Catchup::Skip,
        Some("once") => Catchup::Once,
        Some("all") => Catchup::All,
        Some(other) => {
            return Some(Err((
                "catchup".to_owned(),
                format!("`{other}`: skip, once or all"),
            )))
        }
    };
    Some(schedule.map(|s| (s, catchup)))
}

impl Schedule {
    /// The first firing strictly after `t`, if there is one.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        match self {
            Schedule::Every(every) => {
                let since = t.duration_since(UNIX_EPOCH).ok()?.as_nanos();
                let step = every.as_nanos();
                let next = (since / step + 1) * step;
                Some(UNIX_EPOCH + Duration::from_nanos(u64::try_from(next).ok()?))
            }
            Schedule::Cron(cron, tz) => {
                let utc: DateTime<Utc> = t.into();
                let local = tz.from_utc_datetime(&utc.naive_utc());
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(next.with_timezone(&Utc).into())
            }
            Schedule::At(at) => (*at > t).then_some(*at),
        }
    }

    /// The firings in `(after, until]`, oldest first: the newest `max`.
    pub fn between(&self, after: SystemTime, until: SystemTime, max: usize) -> Vec<SystemTime> {
        // An interval's last `max` firings start no earlier than this: a
        // long downtime is not walked a period at a time.
        let mut t = match self {
            Schedule::Every(every) => {
                let window = every.saturating_mul(max.min(u32::MAX as usize) as u32);
                until.checked_sub(window).map_or(after, |w| w.max(after))
            }
            _ => after,
        };
        let mut out = std::collections::VecDeque::with_capacity(max.min(1024));
        while let Some(next) = self.next_after(t).filter(|n| *n <= until) {
            if out.len() == max {
                out.pop_front();
            }
            out.push_back(next);
            t = next;
        }
        out.into()
    }
}

/// What a server starting at `now` fires for firings it missed since the
/// `last` one recorded (none recorded: a new timer, nothing missed).
pub fn missed(
    schedule: &Schedule,
    catchup: Catchup,
    last: Option<SystemTime>,
    now: SystemTime,
) -> Vec<SystemTime> {
    let Some(last) = last else {
        // A date timer that was never fired and is past is a miss too.
        return match (schedule, catchup) {
            (Schedule::At(at), Catchup::Once | Catchup::All) if *at <= now => vec![*at],
            _ => Vec::new(),
        };
    };
    match catchup {
        Catchup::Skip => Vec::new(),
        Catchup::Once => schedule.between(last, now, 1),
        Catchup::All => schedule.between(last, now, CATCHUP_MAX),
    }
}

/// The id of `rule`'s firing at `scheduled`: the same on every server and
/// every restart (its time part is the scheduled time, the rest comes from
/// the rule's name), so a firing is recorded once.
pub fn firing_id(rule: &Rule, scheduled: SystemTime) -> [u8; 16] {
    let ms = scheduled
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    let h = Sha256::digest(rule.name.as_bytes());
    id[6..].copy_from_slice(&h[..10]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn intervals_are_aligned_and_catch_up_as_asked() {
        let every = Schedule::Every(Duration::from_secs(30));
        assert_eq!(
            every.next_after(at("2026-12-06T10:00:05Z")),
            Some(at("2026-12-06T10:00:30Z"))
        );
        assert_eq!(
            every.next_after(at("2026-12-06T10:00:30Z")),
            Some(at("2026-12-06T10:01:00Z"))
        );
        let last = Some(at("2026-12-06T10:00:00Z"));
        let now = at("2026-12-06T10:02:10Z");
        assert_eq!(
            missed(&every, Catchup::Skip, last, now),
            Vec::<SystemTime>::new()
        );
        assert_eq!(
            missed(&every, Catchup::Once, last, now),
            [at("2026-12-06T10:02:00Z")]
        );
        assert_eq!(missed(&every, Catchup::All, last, now).len(), 4);
        assert!(missed(&every, Catchup::All, None, now).is_empty());
        // A long downtime: the newest firings, found without walking it.
        let month = at("2027-01-06T10:00:00Z");
        let all = missed(&every, Catchup::All, last, month);
        assert_eq!((all.len(), all.last()), (CATCHUP_MAX, Some(&month)));
    }

    #[test]
    fn cron_in_a_time_zone_and_dates() {
        let p = |v: serde_json::Value| v.as_object().unwrap().clone();
        let (cron, _) = of(
            trigger::CRON,
            &p(serde_json::json!({"expression": "0 9 * * *", "timezone": "Europe/Paris"})),
        )
        .unwrap()
        .unwrap();
        // 09:00 in Paris in winter is 08:00 UTC.
        assert_eq!(
            cron.next_after(at("2026-12-06T10:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        let (secs, _) = of(
            trigger::CRON,
            &p(serde_json::json!({"expression": "*/2 * * * * *"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            secs.next_after(at("2026-12-06T10:00:01Z")),
            Some(at("2026-12-06T10:00:02Z"))
        );
        let bad = of(
            trigger::CRON,
            &p(serde_json::json!({"expression": "61 * * * *"})),
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(bad.0, "expression");
        let zone = of(
            trigger::CRON,
            &p(serde_json::json!({"expression": "* * * * *", "timezone": "Mars/Olympus"})),
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(zone.0, "timezone");
        let (date, catchup) = of(
            trigger::DATE,
            &p(serde_json::json!({"at": "2026-12-06T12:00:00Z", "catchup": "once"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(catchup, Catchup::Once);
        assert_eq!(
            date.next_after(at("2026-12-06T11:00:00Z")),
            Some(at("2026-12-06T12:00:00Z"))
        );
        assert_eq!(date.next_after(at("2026-12-06T12:00:00Z")), None);
        assert_eq!(
            missed(&date, Catchup::Once, None, at("2026-12-06T13:00:00Z")),
            [at("2026-12-06T12:00:00Z")]
        );
        assert_eq!(
            of(trigger::INTERVAL, &p(serde_json::json!({"every": "0s"})))
                .unwrap()
                .unwrap_err()
                .0,
            "every"
        );
        assert!(of(trigger::WEBHOOK, &p(serde_json::json!({}))).is_none());
    }
}
