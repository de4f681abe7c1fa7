//! Named values (`{service}/namedValues/{namedValueId}`, apimnamedvalues.json). PUT and PATCH are
//! long-running operations; a secret's value is never returned by GET or lists, only by
//! `POST .../listValue`.

use super::body::{opt_str, properties, req_str};
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::etag::with_etag;
use super::kind::{check_id, entity_json, not_found, string_values, Kind, Render};
use super::Scope;
use crate::gateway::instance;
use crate::gateway::rules::limits;
use crate::server::{json_response, App, Req};
use crate::store::{Entity, State};
use crate::util::now_rfc3339;
use serde_json::{json, Map, Value};

/// ARM type of a named value.
pub const TYPE: &str = "Microsoft.ApiManagement/service/namedValues";

/// The named-value kind.
pub struct NamedValues;

fn valid_display_name(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Validates the merged properties and returns what is stored.
fn normalise(p: &Map<String, Value>, patch: bool) -> Result<Value, ArmError> {
    let display = req_str(p, "displayName", 1, 256)?;
    if !valid_display_name(&display) {
        return Err(ArmError::validation(
            "displayName",
            "Display name may contain only letters, digits, periods, dashes and underscores.",
        ));
    }
    let value = opt_str(p, "value", usize::from(patch), 4096)?;
    let key_vault = match p.get("keyVault") {
        None | Some(Value::Null) => None,
        Some(Value::Object(kv)) => {
            let secret_id = req_str(kv, "secretIdentifier", 1, 2048).map_err(|_| {
                ArmError::validation(
                    "keyVault.secretIdentifier",
                    "'secretIdentifier' is required.",
                )
            })?;
            if !secret_id.starts_with("https://") {
                return Err(ArmError::validation(
                    "keyVault.secretIdentifier",
                    "'secretIdentifier' must be an https URL of a Key Vault secret.",
                ));
            }
            let client = opt_str(kv, "identityClientId", 0, 64)?;
            Some(json!({
                "secretIdentifier": secret_id,
                "identityClientId": client,
                "lastStatus": {"code": "Success", "timeStampUtc": now_rfc3339()},
            }))
        }
        Some(_) => {
            return Err(ArmError::validation(
                "keyVault",
                "'keyVault' must be an object.",
            ))
        }
    };
    if value.is_none() && key_vault.is_none() {
        return Err(ArmError::validation(
            "value",
            "Either 'value' or 'keyVault' must be provided.",
        ));
    }
    if value.is_some() && key_vault.is_some() {
        return Err(ArmError::validation(
            "value",
            "'value' and 'keyVault' are mutually exclusive.",
        ));
    }
    let secret = match p.get("secret") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ArmError::validation(
                "secret",
                "'secret' must be a boolean.",
            ))
        }
    };
    let mut out = json!({"displayName": display, "secret": secret});
    match p.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(tags)) if tags.len() <= 32 && tags.iter().all(Value::is_string) => {
            out["tags"] = Value::Array(tags.clone());
        }
        Some(_) => {
            return Err(ArmError::validation(
                "tags",
                "'tags' must be an array of at most 32 strings.",
            ))
        }
    }
    if let Some(v) = value {
        out["value"] = json!(v);
    }
    if let Some(kv) = key_vault {
        out["keyVault"] = kv;
    }
    Ok(out)
}

/// "It may not be empty or consist only of whitespace" (a documented rule, relaxed with the
/// rules switch).
fn not_blank(st: &State, props: Value) -> Result<Value, ArmError> {
    let blank = props
        .get("value")
        .and_then(Value::as_str)
        .is_some_and(|v| v.trim().is_empty());
    if blank && st.settings.enforce_rules {
        return Err(ArmError::validation(
            "value",
            "The value of a named value may not be empty or consist only of whitespace.",
        ));
    }
    Ok(props)
}

impl Kind for NamedValues {
    fn segment(&self) -> &'static str {
        "namedValues"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "NamedValue"
    }
    fn lro(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        check_id(name, 256, "namedValueId", "named value")
    }
    fn before_create(&self, st: &State, scope: &Scope) -> Result<(), ArmError> {
        let max = limits::NAMED_VALUES_PER_INSTANCE;
        if st.settings.enforce_rules && instance::count(st, &scope.service_key, TYPE) >= max {
            return Err(ArmError::validation(
                "namedValueId",
                format!(
                    "The instance already has {max} named values, the most an instance may have."
                ),
            ));
        }
        Ok(())
    }
    fn create(
        &self,
        st: &State,
        _scope: &Scope,
        _req: &Req,
        body: &Value,
    ) -> Result<Value, ArmError> {
        not_blank(st, normalise(&properties(body)?, false)?)
    }
    fn update(
        &self,
        st: &State,
        _scope: &Scope,
        _req: &Req,
        existing: &Entity,
        body: &Value,
    ) -> Result<Value, ArmError> {
        let patch = properties(body)?;
        let mut merged = existing.properties.as_object().cloned().unwrap_or_default();
        if let Some(kv) = merged.get_mut("keyVault").and_then(Value::as_object_mut) {
            kv.remove("lastStatus");
        }
        for (k, v) in patch {
            // Switching between an inline value and a Key Vault reference replaces the other.
            if k == "value" && !v.is_null() {
                merged.remove("keyVault");
            }
            if k == "keyVault" && !v.is_null() {
                merged.remove("value");
            }
            merged.insert(k, v);
        }
        not_blank(st, normalise(&merged, true)?)
    }
    fn render(&self, e: &Entity, _req: &Req, _mode: Render) -> Result<Value, ArmError> {
        let mut p = e.properties.clone();
        if p.get("secret").and_then(Value::as_bool) == Some(true) {
            if let Some(o) = p.as_object_mut() {
                o.remove("value");
            }
        }
        Ok(p)
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let p = &e.properties;
        let s = |k: &str| string_values(p, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "displayName" | "properties/displayName" => Some(s("displayName")),
            "tags" | "properties/tags" => Some(
                p.get("tags")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "value" | "properties/value"
                if p.get("secret").and_then(Value::as_bool) != Some(true) =>
            {
                Some(s("value"))
            }
            _ => None,
        }
    }
    fn action(&self, app: &App, req: &Req, _scope: &Scope, e: &Entity, action: &str) -> ArmResult {
        match action.to_ascii_lowercase().as_str() {
            "listvalue" => {
                // A Key Vault reference has no value here: the emulator does not talk to Key Vault.
                let v = e
                    .properties
                    .get("value")
                    .cloned()
                    .unwrap_or_else(|| json!(""));
                Ok(with_etag(json_response(200, &json!({"value": v})), &e.etag))
            }
            "refreshsecret" => {
                if e.properties.get("keyVault").is_none() {
                    return Err(ArmError::validation(
                        "keyVault",
                        "Only named values that reference Key Vault can be refreshed.",
                    ));
                }
                let mut st = crate::faults::lock(&app.state);
                let etag = st.next_etag();
                let key = e.id.to_ascii_lowercase();
                let Some(stored) = st.entities.get_mut(&key) else {
                    return Err(not_found(self));
                };
                stored.etag = etag.clone();
                stored.properties["keyVault"]["lastStatus"] =
                    json!({"code": "Success", "timeStampUtc": now_rfc3339()});
                let entity = stored.clone();
                app.persist(&st);
                drop(st);
                let body = entity_json(self, &entity, req, Render::Get)?;
                Ok(with_etag(json_response(200, &body), &etag))
            }
            _ => Err(method_not_allowed(req)),
        }
    }
}
