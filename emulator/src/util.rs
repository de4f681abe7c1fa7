//! Small helpers shared by every module: randomness, identifiers, time and encodings.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `N` bytes from the operating system's CSPRNG (through aws-lc-rs).
///
/// A failing system RNG leaves nothing sensible to do: identifiers and keys would no longer be
/// unique, so this aborts loudly instead of handing out predictable values.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(
        clippy::expect_used,
        reason = "no safe fallback exists when the system RNG fails"
    )]
    aws_lc_rs::rand::fill(&mut buf).expect("system random number generator failed");
    buf
}

/// A random (version 4) UUID in its lower-case hyphenated form, as Azure prints object ids.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A random 24-hex-digit id, the shape APIM uses for its own generated ids (e.g. async operation ids).
pub fn short_id() -> String {
    hex(&random_bytes::<12>())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The current time as an RFC 3339 UTC timestamp with 7 fractional digits, like ARM prints.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    rfc3339(secs, d.subsec_nanos() / 100)
}

/// Formats Unix seconds plus 100-ns ticks as `YYYY-MM-DDTHH:MM:SS.fffffffZ`.
pub fn rfc3339(secs: i64, ticks: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Base64url without padding (JWT segments, JWKS members).
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url, tolerating trailing padding that some encoders add.
pub fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')).ok()
}

/// Standard base64 with padding (ETags, persisted keys).
pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64.
pub fn b64_decode(data: &str) -> Option<Vec<u8>> {
    STANDARD.decode(data).ok()
}

/// Matches `text` against a glob where `*` spans any run of characters (slashes included) and `?`
/// exactly one, ignoring ASCII case because ARM paths are case-insensitive.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.0000005Z");
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "*/namedValues/*",
            "/subscriptions/x/a/namedvalues/b"
        ));
        assert!(!glob_match(
            "*/namedValues/*",
            "/subscriptions/x/a/backends/b"
        ));
        assert!(glob_match("*", "/"));
        assert!(glob_match("/a?c", "/abc"));
    }

    #[test]
    fn uuids_look_right() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
