//! DynamicValue codecs: Terraform's msgpack encoding (with unknowns as extensions) and the
//! JSON encoding (state), both driven by the schema's type.

use std::collections::BTreeMap;

use rmpv::Value as Mp;

use crate::framework::value::{Number, Type, Value};

/// msgpack extension code of a refined unknown; any other code is an unrefined unknown.
const EXT_REFINED_UNKNOWN: i8 = 12;

/// Why a value could not be decoded. Becomes a diagnostic, never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// Decodes msgpack bytes of type `ty`.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut rd = bytes;
    let mp = rmpv::decode::read_value(&mut rd)
        .map_err(|e| DecodeError(format!("malformed msgpack: {e}")))?;
    if !rd.is_empty() {
        return err(format!(
            "{} trailing bytes after the msgpack value",
            rd.len()
        ));
    }
    from_mp(&mp, ty, 0)
}

const MAX_DEPTH: usize = 64;

fn from_mp(mp: &Mp, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return err("value nested too deeply");
    }
    if let Mp::Ext(code, data) = mp {
        let refinement = if *code == EXT_REFINED_UNKNOWN {
            data.clone()
        } else {
            Vec::new()
        };
        return Ok(Value::Unknown { refinement });
    }
    if mp.is_nil() {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match mp {
            Mp::String(s) => s
                .as_str()
                .map(Value::string)
                .ok_or_else(|| DecodeError("string is not valid UTF-8".into())),
            Mp::Boolean(b) => Ok(Value::string(b.to_string())),
            Mp::Integer(i) => Ok(Value::string(i.to_string())),
            Mp::F64(f) => Ok(Value::string(f.to_string())),
            other => err(format!("expected a string, found {}", kind(other))),
        },
        Type::Number => match mp {
            Mp::Integer(i) => Number::parse(&i.to_string())
                .map(Value::Number)
                .ok_or_else(|| DecodeError("bad integer".into())),
            Mp::F64(f) if f.is_finite() => Ok(Value::Number(Number::from(*f))),
            Mp::F32(f) if f.is_finite() => Ok(Value::Number(Number::from(f64::from(*f)))),
            Mp::String(s) => s
                .as_str()
                .and_then(Number::parse)
                .map(Value::Number)
                .ok_or_else(|| DecodeError(format!("{:?} is not a number", s.as_str()))),
            other => err(format!("expected a number, found {}", kind(other))),
        },
        Type::Bool => match mp {
            Mp::Boolean(b) => Ok(Value::Bool(*b)),
            Mp::String(s) if s.as_str() == Some("true") => Ok(Value::Bool(true)),
            Mp::String(s) if s.as_str() == Some("false") => Ok(Value::Bool(false)),
            other => err(format!("expected a bool, found {}", kind(other))),
        },
        Type::List(et) | Type::Set(et) => match mp {
            Mp::Array(items) => items
                .iter()
                .map(|i| from_mp(i, et, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::List),
            other => err(format!("expected a list, found {}", kind(other))),
        },
        Type::Tuple(ts) => match mp {
            Mp::Array(items) if items.len() == ts.len() => items
                .iter()
                .zip(ts)
                .map(|(i, t)| from_mp(i, t, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::List),
            other => err(format!(
                "expected a tuple of {}, found {}",
                ts.len(),
                kind(other)
            )),
        },
        Type::Map(et) => match mp {
            Mp::Map(entries) => {
                let mut m = BTreeMap::new();
                for (k, v) in entries {
                    let key = k
                        .as_str()
                        .ok_or_else(|| DecodeError("map key is not a string".into()))?;
                    m.insert(key.to_string(), from_mp(v, et, depth + 1)?);
                }
                Ok(Value::Map(m))
            }
            other => err(format!("expected a map, found {}", kind(other))),
        },
        Type::Object(fields) => match mp {
            Mp::Map(entries) => {
                let mut m = BTreeMap::new();
                for (k, v) in entries {
                    let key = k
                        .as_str()
                        .ok_or_else(|| DecodeError("object key is not a string".into()))?;
                    let Some(ft) = fields.get(key) else {
                        return err(format!("unsupported attribute {key:?}"));
                    };
                    let fv = from_mp(v, ft, depth + 1)
                        .map_err(|e| DecodeError(format!("{key}: {}", e.0)))?;
                    m.insert(key.to_string(), fv);
                }
                for k in fields.keys() {
                    m.entry(k.clone()).or_insert(Value::Null);
                }
                Ok(Value::Map(m))
            }
            other => err(format!("expected an object, found {}", kind(other))),
        },
    }
}

fn kind(mp: &Mp) -> &'static str {
    match mp {
        Mp::Nil => "null",
        Mp::Boolean(_) => "a bool",
        Mp::Integer(_) | Mp::F32(_) | Mp::F64(_) => "a number",
        Mp::String(_) => "a string",
        Mp::Binary(_) => "binary data",
        Mp::Array(_) => "a list",
        Mp::Map(_) => "a map",
        Mp::Ext(..) => "an unknown value",
    }
}

/// Encodes `v` of type `ty` as msgpack.
pub fn to_msgpack(v: &Value, ty: &Type) -> Result<Vec<u8>, DecodeError> {
    let mp = to_mp(v, ty)?;
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &mp)
        .map_err(|e| DecodeError(format!("msgpack encoding failed: {e}")))?;
    Ok(out)
}

fn to_mp(v: &Value, ty: &Type) -> Result<Mp, DecodeError> {
    Ok(match (v, ty) {
        (Value::Unknown { refinement }, _) if refinement.is_empty() => Mp::Ext(0, vec![0]),
        (Value::Unknown { refinement }, _) => Mp::Ext(EXT_REFINED_UNKNOWN, refinement.clone()),
        (Value::Null, _) => Mp::Nil,
        (Value::String(s), Type::String) => Mp::String(s.as_str().into()),
        (Value::Bool(b), Type::Bool) => Mp::Boolean(*b),
        (Value::Number(n), Type::Number) => number_mp(n),
        (Value::List(items), Type::List(et) | Type::Set(et)) => Mp::Array(
            items
                .iter()
                .map(|i| to_mp(i, et))
                .collect::<Result<_, _>>()?,
        ),
        (Value::List(items), Type::Tuple(ts)) if items.len() == ts.len() => Mp::Array(
            items
                .iter()
                .zip(ts)
                .map(|(i, t)| to_mp(i, t))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(m), Type::Map(et)) => Mp::Map(
            m.iter()
                .map(|(k, v)| Ok((Mp::String(k.as_str().into()), to_mp(v, et)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (Value::Map(m), Type::Object(fields)) => Mp::Map(
            fields
                .iter()
                .map(|(k, ft)| {
                    let fv = m.get(k).unwrap_or(&Value::Null);
                    Ok((Mp::String(k.as_str().into()), to_mp(fv, ft)?))
                })
                .collect::<Result<_, DecodeError>>()?,
        ),
        (v, t) => return err(format!("value {v:?} does not match type {t}")),
    })
}

fn number_mp(n: &Number) -> Mp {
    if let Some(i) = n.as_i64() {
        return Mp::Integer(i.into());
    }
    let f = n.as_f64();
    if Number::from(f) == *n {
        Mp::F64(f)
    } else {
        // Precision beyond f64 travels as a string, which Terraform accepts.
        Mp::String(n.as_str().into())
    }
}

/// Decodes JSON (as Terraform stores state) of type `ty`.
pub fn from_json(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let j: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DecodeError(format!("malformed JSON: {e}")))?;
    from_j(&j, ty, 0)
}

fn from_j(j: &serde_json::Value, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return err("value nested too deeply");
    }
    Ok(match (j, ty) {
        (J::Null, _) => Value::Null,
        (J::String(s), Type::String) => Value::String(s.clone()),
        (J::Bool(b), Type::String) => Value::string(b.to_string()),
        (J::Number(n), Type::String) => Value::string(n.to_string()),
        (J::Number(n), Type::Number) => Value::Number(
            Number::parse(&n.to_string()).ok_or_else(|| DecodeError("bad number".into()))?,
        ),
        (J::String(s), Type::Number) => Value::Number(
            Number::parse(s).ok_or_else(|| DecodeError(format!("{s:?} is not a number")))?,
        ),
        (J::Bool(b), Type::Bool) => Value::Bool(*b),
        (J::Array(a), Type::List(et) | Type::Set(et)) => Value::List(
            a.iter()
                .map(|i| from_j(i, et, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        (J::Array(a), Type::Tuple(ts)) if a.len() == ts.len() => Value::List(
            a.iter()
                .zip(ts)
                .map(|(i, t)| from_j(i, t, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        (J::Object(o), Type::Map(et)) => Value::Map(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), from_j(v, et, depth + 1)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (J::Object(o), Type::Object(fields)) => {
            let mut m = BTreeMap::new();
            for (k, ft) in fields {
                let fv = o
                    .get(k)
                    .map_or(Ok(Value::Null), |v| from_j(v, ft, depth + 1))?;
                m.insert(k.clone(), fv);
            }
            // Attributes no longer in the schema are dropped, as Terraform does on upgrade.
            Value::Map(m)
        }
        (j, t) => return err(format!("JSON {j} does not match type {t}")),
    })
}

/// Encodes a wholly known value as JSON.
pub fn to_json(v: &Value, ty: &Type) -> Result<serde_json::Value, DecodeError> {
    use serde_json::Value as J;
    Ok(match (v, ty) {
        (Value::Unknown { .. }, _) => return err("unknown values have no JSON encoding"),
        (Value::Null, _) => J::Null,
        (Value::String(s), Type::String) => J::String(s.clone()),
        (Value::Bool(b), Type::Bool) => J::Bool(*b),
        (Value::Number(n), Type::Number) => match n.as_i64() {
            Some(i) => J::from(i),
            None => serde_json::from_str(n.as_str()).unwrap_or(J::String(n.as_str().into())),
        },
        (Value::List(items), Type::List(et) | Type::Set(et)) => J::Array(
            items
                .iter()
                .map(|i| to_json(i, et))
                .collect::<Result<_, _>>()?,
        ),
        (Value::List(items), Type::Tuple(ts)) if items.len() == ts.len() => J::Array(
            items
                .iter()
                .zip(ts)
                .map(|(i, t)| to_json(i, t))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(m), Type::Map(et)) => J::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v, et)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (Value::Map(m), Type::Object(fields)) => J::Object(
            fields
                .iter()
                .map(|(k, ft)| Ok((k.clone(), to_json(m.get(k).unwrap_or(&Value::Null), ft)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (v, t) => return err(format!("value {v:?} does not match type {t}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_type() -> impl Strategy<Value = Type> {
        let leaf = prop_oneof![Just(Type::String), Just(Type::Number), Just(Type::Bool)];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(Type::list_of),
                inner.clone().prop_map(Type::set_of),
                inner.clone().prop_map(Type::map_of),
                prop::collection::btree_map("[a-z_]{1,6}", inner.clone(), 0..4)
                    .prop_map(Type::Object),
                prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
            ]
        })
    }

    fn arb_value(ty: Type, allow_unknown: bool) -> BoxedStrategy<Value> {
        let special = if allow_unknown {
            prop_oneof![
                Just(Value::Null),
                Just(Value::UNKNOWN),
                prop::collection::vec(any::<u8>(), 1..6)
                    .prop_map(|refinement| Value::Unknown { refinement }),
            ]
            .boxed()
        } else {
            Just(Value::Null).boxed()
        };
        let known: BoxedStrategy<Value> = match ty {
            Type::String => ".*".prop_map(Value::String).boxed(),
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::Number => prop_oneof![
                any::<i64>().prop_map(Value::int),
                (-1e12f64..1e12f64).prop_map(|f| Value::Number(Number::from(f))),
            ]
            .boxed(),
            Type::List(et) | Type::Set(et) => {
                prop::collection::vec(arb_value(*et, allow_unknown), 0..4)
                    .prop_map(Value::List)
                    .boxed()
            }
            Type::Map(et) => {
                prop::collection::btree_map(".{0,5}", arb_value(*et, allow_unknown), 0..4)
                    .prop_map(Value::Map)
                    .boxed()
            }
            Type::Object(fields) => {
                let strategies: Vec<_> = fields
                    .into_iter()
                    .map(|(k, t)| arb_value(t, allow_unknown).prop_map(move |v| (k.clone(), v)))
                    .collect();
                strategies
                    .prop_map(|pairs| Value::Map(pairs.into_iter().collect()))
                    .boxed()
            }
            Type::Tuple(ts) => {
                let strategies: Vec<_> = ts
                    .into_iter()
                    .map(|t| arb_value(t, allow_unknown))
                    .collect();
                strategies.prop_map(Value::List).boxed()
            }
        };
        prop_oneof![1 => special, 4 => known].boxed()
    }

    proptest! {
        #[test]
        fn msgpack_round_trips_with_null_and_unknown(
            (ty, v) in arb_type().prop_flat_map(|t| (Just(t.clone()), arb_value(t, true)))
        ) {
            let bytes = to_msgpack(&v, &ty).expect("encode");
            prop_assert_eq!(from_msgpack(&bytes, &ty).expect("decode"), v);
        }

        #[test]
        fn json_round_trips_known_values(
            (ty, v) in arb_type().prop_flat_map(|t| (Just(t.clone()), arb_value(t, false)))
        ) {
            let j = to_json(&v, &ty).expect("encode");
            let bytes = serde_json::to_vec(&j).expect("bytes");
            prop_assert_eq!(from_json(&bytes, &ty).expect("decode"), v);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), ty in arb_type()) {
            let _ = from_msgpack(&bytes, &ty);
            let _ = from_json(&bytes, &ty);
        }
    }

    #[test]
    fn unknown_encodes_like_terraform() {
        assert_eq!(
            to_msgpack(&Value::UNKNOWN, &Type::String).unwrap(),
            vec![0xd4, 0, 0]
        );
        // Any extension code decodes as unknown.
        assert!(from_msgpack(&[0xd4, 5, 0], &Type::Number)
            .unwrap()
            .is_unknown());
    }

    #[test]
    fn numbers_may_arrive_as_strings() {
        let mut b = Vec::new();
        rmpv::encode::write_value(&mut b, &Mp::String("12345678901234567890123".into())).unwrap();
        let v = from_msgpack(&b, &Type::Number).unwrap();
        assert_eq!(to_msgpack(&v, &Type::Number).unwrap(), b);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let t = Type::object([("name", Type::String)]);
        assert!(from_msgpack(&[0x81, 0xa4, b'n'], &t).is_err());
        assert!(from_msgpack(&[0x81, 0xa3, b'b', b'a', b'd', 0xc0], &t).is_err());
        assert!(from_json(b"{\"name\": [1]}", &t).is_err());
    }
}
