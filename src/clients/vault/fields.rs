//! How Vault (and OpenBao) write values in their answers, for the typed responses: durations
//! as whole seconds or as strings (`"900"`, `"15m"`, `"1h30m"`, `"2d"`), lists as arrays or
//! as one comma-separated string, and `null` where a field has no value.
//!
//! Used with `#[serde(default, deserialize_with = "...")]`, so that an absent field takes the
//! same value as a `null` one.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// The envelope of a read: the object is under `data`.
#[derive(Debug, Deserialize)]
pub(super) struct Data<T> {
    pub(super) data: T,
}

/// A duration in whole seconds: a number, or a string of seconds or of Go-style units
/// (`h`, `m`, `s`, `ms`, …, and `d` for days, as Vault's parser accepts). `null` is 0.
pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration: seconds, or a string such as \"15m\"")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} seconds is too long")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            Ok(v as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            parse_duration(v).ok_or_else(|| E::custom(format!("{v:?} is not a duration")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
        fn visit_none<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
    }
    d.deserialize_any(Seconds)
}

/// Vault's duration strings, in whole seconds (fractions rounded down).
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "d" => 86_400.0,
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * unit;
    }
    Some(total as i64)
}

/// A list of strings: an array, or one comma-separated string (as older servers answer
/// some list fields); `null` and `""` are empty.
pub(super) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct List;
    impl<'de> Visitor<'de> for List {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings, or a comma-separated string")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            Ok(v.split(',').map(|x| x.trim().to_string()).collect())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
    }
    d.deserialize_any(List)
}

/// The value, or its default when `null`.
pub(super) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(default, deserialize_with = "seconds")]
        ttl: i64,
        #[serde(default, deserialize_with = "string_list")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "or_default")]
        flag: bool,
    }

    fn probe(json: &str) -> Result<Probe, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_as_seconds_or_strings() {
        for (json, want) in [
            (r#"{"ttl": 900}"#, 900),
            (r#"{"ttl": 900.7}"#, 900),
            (r#"{"ttl": "900"}"#, 900),
            (r#"{"ttl": "900s"}"#, 900),
            (r#"{"ttl": "15m"}"#, 900),
            (r#"{"ttl": "1h30m"}"#, 5400),
            (r#"{"ttl": "1.5h"}"#, 5400),
            (r#"{"ttl": "2d"}"#, 172_800),
            (r#"{"ttl": "1500ms"}"#, 1),
            (r#"{"ttl": ""}"#, 0),
            (r#"{"ttl": null}"#, 0),
            (r#"{}"#, 0),
        ] {
            assert_eq!(probe(json).map(|p| p.ttl), Ok(want), "{json}");
        }
        for bad in [
            r#"{"ttl": "soon"}"#,
            r#"{"ttl": "15x"}"#,
            r#"{"ttl": true}"#,
        ] {
            let e = probe(bad).unwrap_err();
            assert!(e.contains("duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn lists_as_arrays_or_comma_separated() {
        let l = |json: &str| probe(json).map(|p| p.list);
        assert_eq!(
            l(r#"{"list": ["a", "b"]}"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(l(r#"{"list": "a, b"}"#), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(l(r#"{"list": ""}"#), Ok(vec![]));
        assert_eq!(l(r#"{"list": []}"#), Ok(vec![]));
        assert_eq!(l(r#"{"list": null}"#), Ok(vec![]));
        assert_eq!(l(r#"{}"#), Ok(vec![]));
        assert!(l(r#"{"list": 3}"#).is_err());
    }

    #[test]
    fn null_is_the_default() {
        assert_eq!(probe(r#"{"flag": null}"#).map(|p| p.flag), Ok(false));
        assert_eq!(probe(r#"{"flag": true}"#).map(|p| p.flag), Ok(true));
        assert_eq!(probe(r#"{}"#).map(|p| p.flag), Ok(false));
    }
}
