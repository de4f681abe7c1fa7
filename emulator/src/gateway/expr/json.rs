//! JSON as Newtonsoft.Json's `JToken` family holds it: property order preserved, integers and
//! reals kept apart, and written the way `JToken.ToString()` (indented, CRLF, two spaces) and
//! `JsonConvert.SerializeObject` (compact) write it.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt::Write as _;

/// A JSON token.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    /// `null` (a `JValue` of type Null — not a C# null reference).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<J>),
    /// An object, properties in document order.
    Obj(Vec<(String, J)>),
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<J, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<J, E> {
        Ok(J::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<J, E> {
        Ok(i64::try_from(v).map_or(J::Float(v as f64), J::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<J, E> {
        Ok(J::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<J, E> {
        Ok(J::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<J>()? {
            out.push(v);
        }
        Ok(J::Arr(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
        let mut out: Vec<(String, J)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, J>()? {
            // Newtonsoft keeps the last of duplicate names, in the first one's place.
            match out.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        Ok(J::Obj(out))
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        d.deserialize_any(JVisitor)
    }
}

impl J {
    /// Parses JSON text.
    pub fn parse(text: &str) -> Result<J, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Newtonsoft's `JTokenType` name.
    pub fn kind(&self) -> &'static str {
        match self {
            J::Null => "Null",
            J::Bool(_) => "Boolean",
            J::Int(_) => "Integer",
            J::Float(_) => "Float",
            J::Str(_) => "String",
            J::Arr(_) => "Array",
            J::Obj(_) => "Object",
        }
    }

    /// A property of an object.
    pub fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(props) => props.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `JsonConvert.SerializeObject` / `ToString(Formatting.None)`.
    pub fn compact(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, None, 0);
        s
    }

    /// `JToken.ToString()` of a container: indented by two spaces, CRLF line ends.
    pub fn indented(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, Some("\r\n"), 0);
        s
    }

    fn write(&self, out: &mut String, nl: Option<&str>, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            if let Some(nl) = nl {
                out.push_str(nl);
                out.push_str(&"  ".repeat(d));
            }
        };
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Float(f) => out.push_str(&float_text(*f)),
            J::Str(s) => quote_into(out, s),
            J::Arr(items) if items.is_empty() => out.push_str("[]"),
            J::Obj(props) if props.is_empty() => out.push_str("{}"),
            J::Arr(items) => {
                out.push('[');
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    v.write(out, nl, depth + 1);
                }
                pad(out, depth);
                out.push(']');
            }
            J::Obj(props) => {
                out.push('{');
                for (n, (k, v)) in props.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    quote_into(out, k);
                    out.push(':');
                    if nl.is_some() {
                        out.push(' ');
                    }
                    v.write(out, nl, depth + 1);
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

/// A double as Newtonsoft writes it: always with a fraction or exponent.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let s = format!("{f}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A JSON string literal with Newtonsoft's default escaping.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_formats() {
        let j = J::parse(r#"{"z":1,"a":[true,null,1.0,"x\"y"],"e":{}}"#).expect("parse");
        assert_eq!(j.compact(), r#"{"z":1,"a":[true,null,1.0,"x\"y"],"e":{}}"#);
        assert_eq!(
            j.indented(),
            "{\r\n  \"z\": 1,\r\n  \"a\": [\r\n    true,\r\n    null,\r\n    1.0,\r\n    \"x\\\"y\"\r\n  ],\r\n  \"e\": {}\r\n}"
        );
        assert_eq!(j.get("z"), Some(&J::Int(1)));
        assert!(J::parse("{").is_err());
    }
}
