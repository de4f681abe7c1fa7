//! Logging to stderr in the JSON line format go-plugin understands (hclog), so that
//! Terraform shows provider logs at their level under `TF_LOG=debug` / `TF_LOG_PROVIDER`.
//! Stdout is never written: it belongs to the handshake.
//!
//! **Invariant:** nothing logs a secret. Callers pass names, paths and statuses, never
//! tokens, secret values or request bodies.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Log levels, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Notable events.
    Info,
    /// Something to look at.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "trace" | "json" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// The lowest level written, from `TF_LOG_PROVIDER` or `TF_LOG` (Terraform passes its
/// environment to providers); warnings and errors only when neither is set.
fn threshold() -> Level {
    static T: OnceLock<Level> = OnceLock::new();
    *T.get_or_init(|| {
        std::env::var("TF_LOG_PROVIDER")
            .ok()
            .and_then(|v| Level::parse(&v))
            .or_else(|| std::env::var("TF_LOG").ok().and_then(|v| Level::parse(&v)))
            .unwrap_or(Level::Warn)
    })
}

/// True when `level` would be written.
pub fn enabled(level: Level) -> bool {
    level >= threshold()
}

/// Writes one log line with extra key/value fields.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    if !enabled(level) {
        return;
    }
    let mut m = serde_json::Map::new();
    m.insert("@level".into(), level.name().into());
    m.insert("@message".into(), message.into());
    m.insert("@module".into(), "provider.terraform-provider-apim".into());
    m.insert("@timestamp".into(), rfc3339(SystemTime::now()).into());
    for (k, v) in fields {
        m.insert((*k).into(), (*v).into());
    }
    let line = serde_json::Value::Object(m).to_string();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Trace-level line.
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    log(Level::Trace, message, fields);
}
/// Debug-level line.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(Level::Debug, message, fields);
}
/// Info-level line.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Level::Info, message, fields);
}
/// Warn-level line.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, message, fields);
}

/// `2006-01-02T15:04:05.000000Z`, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, da) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{da:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_micros(42);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.000042Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    }
}
