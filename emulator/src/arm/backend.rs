//! Backends (`{service}/backends/{backendId}`, apimbackends.json). PUT (201/200) and PATCH (200)
//! are synchronous.

use super::body::opt_str;
use super::error::ArmError;
use super::kind::{check_id, string_values, Kind};
use crate::store::Entity;
use serde_json::{json, Map, Value};

/// ARM type of a backend.
pub const TYPE: &str = "Microsoft.ApiManagement/service/backends";

/// The backend kind.
pub struct Backends;

fn normalise(p: &Map<String, Value>) -> Result<Value, ArmError> {
    let kind = opt_str(p, "type", 1, 20)?.unwrap_or_else(|| "Single".into());
    if kind != "Single" && kind != "Pool" {
        return Err(ArmError::validation(
            "type",
            format!("The backend type '{kind}' is invalid; use 'Single' or 'Pool'."),
        ));
    }
    let url = opt_str(p, "url", 1, 2000)?;
    let protocol = opt_str(p, "protocol", 1, 10)?;
    if kind == "Single" {
        if url.is_none() {
            return Err(ArmError::validation(
                "url",
                "'url' is required for a backend of type 'Single'.",
            ));
        }
        match protocol.as_deref() {
            Some("http" | "soap") => {}
            Some(other) => {
                return Err(ArmError::validation(
                    "protocol",
                    format!("The protocol '{other}' is invalid; use 'http' or 'soap'."),
                ))
            }
            None => {
                return Err(ArmError::validation(
                    "protocol",
                    "'protocol' is required for a backend of type 'Single'.",
                ))
            }
        }
    }
    opt_str(p, "title", 1, 300)?;
    opt_str(p, "description", 1, 2000)?;
    if let Some(Value::Object(c)) = p.get("credentials") {
        for section in ["header", "query"] {
            if let Some(m) = c.get(section) {
                let ok = m.as_object().is_some_and(|m| {
                    m.values()
                        .all(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
                });
                if !ok {
                    return Err(ArmError::validation(
                        &format!("credentials.{section}"),
                        format!("'credentials.{section}' must map names to arrays of strings."),
                    ));
                }
            }
        }
    }
    let mut out = p.clone();
    out.remove("provisioningState");
    if kind == "Pool" {
        out.insert("type".into(), json!("Pool"));
    }
    Ok(Value::Object(out))
}

impl Kind for Backends {
    fn segment(&self) -> &'static str {
        "backends"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Backend"
    }
    fn normalise(&self, p: &Map<String, Value>) -> Result<Value, ArmError> {
        normalise(p)
    }
    fn patchable(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        check_id(name, 80, "backendId", "backend")
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "title" | "properties/title" => Some(s("title")),
            "url" | "properties/url" => Some(s("url")),
            "description" | "properties/description" => Some(s("description")),
            _ => None,
        }
    }
}
