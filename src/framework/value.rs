//! Terraform values as the framework sees them: known, null or unknown, typed by [`Type`].
//!
//! The wire encodings (msgpack, JSON) live in `server::codec`; this module only knows the
//! shape of values and the type system, so resources never touch an encoding.

use std::collections::BTreeMap;
use std::fmt;

/// A Terraform type constraint (cty type). Serialises to the JSON form used in schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `"string"`
    String,
    /// `"number"`
    Number,
    /// `"bool"`
    Bool,
    /// `["list", T]`
    List(Box<Type>),
    /// `["set", T]`
    Set(Box<Type>),
    /// `["map", T]`
    Map(Box<Type>),
    /// `["object", {name: T}]`
    Object(BTreeMap<String, Type>),
    /// `["tuple", [T...]]`
    Tuple(Vec<Type>),
}

impl Type {
    /// `list(string)`
    pub fn list_of(t: Type) -> Type {
        Type::List(Box::new(t))
    }
    /// `set(string)`
    pub fn set_of(t: Type) -> Type {
        Type::Set(Box::new(t))
    }
    /// `map(string)`
    pub fn map_of(t: Type) -> Type {
        Type::Map(Box::new(t))
    }
    /// An object type from `(name, type)` pairs.
    pub fn object<I: IntoIterator<Item = (&'static str, Type)>>(fields: I) -> Type {
        Type::Object(
            fields
                .into_iter()
                .map(|(k, t)| (k.to_string(), t))
                .collect(),
        )
    }

    /// The JSON type constraint Terraform expects in `Schema.Attribute.type`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Set(t) => json!(["set", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(f) => {
                let m: serde_json::Map<String, serde_json::Value> =
                    f.iter().map(|(k, t)| (k.clone(), t.to_json())).collect();
                json!(["object", m])
            }
            Type::Tuple(ts) => json!(["tuple", ts.iter().map(Type::to_json).collect::<Vec<_>>()]),
        }
    }

    /// Parses a JSON type constraint; `dynamic` is not supported by this provider's schemas.
    pub fn from_json(v: &serde_json::Value) -> Result<Type, String> {
        use serde_json::Value as J;
        match v {
            J::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                other => Err(format!("unsupported type {other:?}")),
            },
            J::Array(a) if a.len() == 2 => {
                let kind = a[0].as_str().ok_or("type kind must be a string")?;
                match kind {
                    "list" => Ok(Type::list_of(Type::from_json(&a[1])?)),
                    "set" => Ok(Type::set_of(Type::from_json(&a[1])?)),
                    "map" => Ok(Type::map_of(Type::from_json(&a[1])?)),
                    "object" => {
                        let m = a[1].as_object().ok_or("object type needs a map")?;
                        let mut f = BTreeMap::new();
                        for (k, t) in m {
                            f.insert(k.clone(), Type::from_json(t)?);
                        }
                        Ok(Type::Object(f))
                    }
                    "tuple" => {
                        let items = a[1].as_array().ok_or("tuple type needs a list")?;
                        Ok(Type::Tuple(
                            items
                                .iter()
                                .map(Type::from_json)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    other => Err(format!("unsupported type kind {other:?}")),
                }
            }
            _ => Err(format!("malformed type constraint {v}")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Object(_) => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

/// A Terraform number. Kept as its decimal text so that no precision is lost in transit;
/// most numbers in this provider are whole seconds.
#[derive(Debug, Clone)]
pub struct Number(String);

impl Number {
    /// From a decimal string; `None` when it is not a number.
    pub fn parse(s: &str) -> Option<Number> {
        let t = s.trim();
        if t.parse::<f64>().is_ok_and(|f| f.is_finite()) {
            Some(Number(canonical(t)))
        } else {
            None
        }
    }
    /// The number as an `i64` when it is a whole number in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse::<i64>().ok()
    }
    /// The number as an `f64` (may round).
    pub fn as_f64(&self) -> f64 {
        self.0.parse::<f64>().unwrap_or(f64::NAN)
    }
    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Canonical decimal form, so that `1`, `1.0` and `1e0` compare equal. Decimals with more
/// significant digits than an `f64` holds keep their spelling, so no precision is lost.
fn canonical(s: &str) -> String {
    if let Ok(i) = s.parse::<i64>() {
        return i.to_string();
    }
    let significant = s
        .split(['e', 'E'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .skip_while(|c| *c == '0')
        .count();
    match s.parse::<f64>() {
        Ok(_) if significant > 17 => s.to_string(),
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
        Ok(f) => f.to_string(),
        Err(_) => s.to_string(),
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Self {
        Number(i.to_string())
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        Number(canonical(&f.to_string()))
    }
}

/// A value of some [`Type`]. Objects and maps are both `Map`; lists, sets and tuples are
/// `List`: the schema says which, and set semantics are applied by [`Value::equal_as`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Not known until apply. `refinement` carries Terraform's refinement payload (empty when
    /// unrefined) so that it survives a round trip.
    Unknown {
        /// The msgpack payload of a refined unknown; empty when unrefined.
        refinement: Vec<u8>,
    },
    /// Null.
    Null,
    /// A bool.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    String(String),
    /// A list, set or tuple.
    List(Vec<Value>),
    /// A map or object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// An unrefined unknown.
    pub const UNKNOWN: Value = Value::Unknown {
        refinement: Vec::new(),
    };

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    /// A number value from an integer.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::from(i))
    }
    /// A string or null.
    pub fn opt_string(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::String(s.into()))
    }
    /// A list of strings.
    pub fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::List(items.into_iter().map(|s| Value::String(s.into())).collect())
    }
    /// An object from `(name, value)` pairs.
    pub fn object<I: IntoIterator<Item = (K, Value)>, K: Into<String>>(fields: I) -> Value {
        Value::Map(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// True for `Unknown`.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown { .. })
    }
    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// True when neither this value nor anything inside it is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown { .. } => false,
            Value::List(l) => l.iter().all(Value::is_wholly_known),
            Value::Map(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// The attribute `name` of an object (`Null` when absent or when this is not an object).
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
    /// Mutable access to an object attribute, inserting `Null` when absent.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => Some(m.entry(name.to_string()).or_insert(Value::Null)),
            _ => None,
        }
    }
    /// Sets an object attribute (no-op on non-objects).
    pub fn set(&mut self, name: &str, v: Value) {
        if let Value::Map(m) = self {
            m.insert(name.to_string(), v);
        }
    }
    /// The string, when this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, when this is a known whole number.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }
    /// The bool, when known.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The elements of a known list/set (empty for null).
    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            _ => &[],
        }
    }
    /// The entries of a known map/object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// The known strings of a list or set of strings, in order.
    pub fn string_list(&self) -> Vec<String> {
        self.as_list()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// Equality under type `ty`: sets compare regardless of order.
    pub fn equal_as(&self, other: &Value, ty: &Type) -> bool {
        match (self, other, ty) {
            (Value::List(a), Value::List(b), Type::Set(et)) => {
                a.len() == b.len()
                    && a.iter().all(|x| b.iter().any(|y| x.equal_as(y, et)))
                    && b.iter().all(|y| a.iter().any(|x| x.equal_as(y, et)))
            }
            (Value::List(a), Value::List(b), Type::List(et)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equal_as(y, et))
            }
            (Value::List(a), Value::List(b), Type::Tuple(ts)) => {
                a.len() == b.len() && a.iter().zip(b).zip(ts).all(|((x, y), t)| x.equal_as(y, t))
            }
            (Value::Map(a), Value::Map(b), Type::Map(et)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, x)| b.get(k).is_some_and(|y| x.equal_as(y, et)))
            }
            (Value::Map(a), Value::Map(b), Type::Object(fs)) => fs.iter().all(|(k, t)| {
                let x = a.get(k).unwrap_or(&Value::Null);
                let y = b.get(k).unwrap_or(&Value::Null);
                x.equal_as(y, t)
            }),
            (Value::Unknown { .. }, Value::Unknown { .. }, _) => true,
            (a, b, _) => a == b,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::int(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_not_spelling() {
        assert_eq!(Number::parse("1.0"), Number::parse("1"));
        assert_eq!(Number::parse("300"), Some(Number::from(300)));
        assert_eq!(Number::parse("0.5").map(|n| n.as_f64()), Some(0.5));
        assert!(Number::parse("abc").is_none());
    }

    #[test]
    fn sets_compare_regardless_of_order_lists_do_not() {
        let a = Value::strings(["read", "list"]);
        let b = Value::strings(["list", "read"]);
        assert!(a.equal_as(&b, &Type::set_of(Type::String)));
        assert!(!a.equal_as(&b, &Type::list_of(Type::String)));
    }

    #[test]
    fn type_json_round_trips() {
        let t = Type::object([
            ("a", Type::list_of(Type::String)),
            ("b", Type::map_of(Type::set_of(Type::Number))),
            ("c", Type::Tuple(vec![Type::Bool, Type::String])),
        ]);
        assert_eq!(Type::from_json(&t.to_json()), Ok(t));
    }
}
