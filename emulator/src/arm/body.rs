//! Reading a request body the way APIM validates it: a JSON object with a `properties` object,
//! whose string members have length limits. Failures are the `InvalidRequestContent` and
//! `ValidationError` answers APIM gives, naming the offending member.

use super::error::ArmError;
use crate::server::Req;
use crate::store::Entity;
use serde_json::{Map, Value};

/// Parses a JSON request body that must be an object.
pub fn body_object(req: &Req) -> Result<Value, ArmError> {
    if req.body.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: the body is empty.",
        ));
    }
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ArmError::new(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: expected a JSON object."))
    }
}

/// The `properties` object of a request body (required).
pub fn properties(body: &Value) -> Result<Map<String, Value>, ArmError> {
    match body.get("properties") {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ArmError::validation(
            "properties",
            "The 'properties' member must be an object.",
        )),
        None => Err(ArmError::validation(
            "properties",
            "The 'properties' member is required.",
        )),
    }
}

/// A PATCH body's `properties` laid over the stored ones: members it gives replace theirs,
/// members it leaves out keep their stored value.
pub(super) fn merged_properties(
    existing: &Entity,
    body: &Value,
) -> Result<Map<String, Value>, ArmError> {
    let mut merged = existing.properties.as_object().cloned().unwrap_or_default();
    for (k, v) in properties(body)? {
        merged.insert(k, v);
    }
    Ok(merged)
}

/// An optional string property with a length limit.
pub fn opt_str(
    p: &Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, ArmError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                Err(ArmError::validation(
                    key,
                    format!("The length of '{key}' must be between {min} and {max} characters."),
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(ArmError::validation(
            key,
            format!("'{key}' must be a string."),
        )),
    }
}

/// A required string property with a length limit.
pub fn req_str(
    p: &Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<String, ArmError> {
    opt_str(p, key, min, max)?
        .ok_or_else(|| ArmError::validation(key, format!("'{key}' is required.")))
}
