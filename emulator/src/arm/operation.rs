//! API operations (`{service}/apis/{apiId}/operations/{operationId}`, models `OperationContract`
//! / `OperationContractProperties` / `OperationEntityBaseContract` in definitions.json): what the
//! gateway matches a request to, by method and `urlTemplate`, and where operation policies hang.
//! PUT and PATCH are synchronous.

use super::body::{opt_str, req_str};
use super::error::ArmError;
use super::kind::{check_id, remove_children, string_values, Kind};
use crate::server::Req;
use crate::store::{Entity, State};
use serde_json::{Map, Value};

/// ARM type of an operation.
pub const TYPE: &str = "Microsoft.ApiManagement/service/apis/operations";

/// The operation kind.
pub struct Operations;

/// The `{name}` parameters of a URL template's path (before any `?`), in order.
pub fn template_params(template: &str) -> Vec<String> {
    let path = template.split('?').next().unwrap_or(template);
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        out.push(after[..close].trim_start_matches('*').to_string());
        rest = &after[close + 1..];
    }
    out
}

fn normalise(p: &Map<String, Value>) -> Result<Value, ArmError> {
    let display = req_str(p, "displayName", 1, 300)?;
    let method = req_str(p, "method", 1, 100)?;
    if !method.chars().all(|c| c.is_ascii_alphabetic() || c == '*') {
        return Err(ArmError::validation(
            "method",
            format!("'{method}' is not an HTTP method."),
        ));
    }
    let template = req_str(p, "urlTemplate", 1, 1000)?;
    let params = match p.get("templateParameters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(ArmError::validation(
                "templateParameters",
                "'templateParameters' must be an array.",
            ))
        }
    };
    let mut names = Vec::new();
    for tp in &params {
        let name = tp.get("name").and_then(Value::as_str);
        let ty = tp.get("type").and_then(Value::as_str);
        match (name, ty) {
            (Some(n), Some(_)) if !n.is_empty() => names.push(n.to_ascii_lowercase()),
            _ => {
                return Err(ArmError::validation(
                    "templateParameters",
                    "Each template parameter needs 'name' and 'type'.",
                ))
            }
        }
    }
    for used in template_params(&template) {
        if !names.contains(&used.to_ascii_lowercase()) {
            return Err(ArmError::validation(
                "templateParameters",
                format!("All template parameters used in the UriTemplate must be defined in the Operation, but '{used}' is not."),
            ));
        }
    }
    let mut out = Map::new();
    for (k, v) in p {
        out.insert(k.clone(), v.clone());
    }
    out.insert("displayName".into(), Value::String(display));
    out.insert("method".into(), Value::String(method.to_ascii_uppercase()));
    out.insert("urlTemplate".into(), Value::String(template));
    out.insert("templateParameters".into(), Value::Array(params));
    if let Some(d) = opt_str(p, "description", 0, 1000)? {
        out.insert("description".into(), Value::String(d));
    }
    out.entry("responses")
        .or_insert_with(|| Value::Array(Vec::new()));
    Ok(Value::Object(out))
}

impl Kind for Operations {
    fn segment(&self) -> &'static str {
        "operations"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Operation"
    }
    fn normalise(&self, p: &Map<String, Value>) -> Result<Value, ArmError> {
        normalise(p)
    }
    fn patchable(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        check_id(name, 80, "operationId", "operation")
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "displayName" | "properties/displayName" => Some(s("displayName")),
            "method" | "properties/method" => Some(s("method")),
            "urlTemplate" | "properties/urlTemplate" => Some(s("urlTemplate")),
            "description" | "properties/description" => Some(s("description")),
            _ => None,
        }
    }
    fn before_delete(&self, st: &mut State, _req: &Req, e: &Entity) -> Result<(), ArmError> {
        // The operation's policy goes with it.
        remove_children(st, e);
        Ok(())
    }
}
