//! APIs (`{service}/apis/{apiId}`): enough of apimapis.json to create, read, update, list and
//! delete an HTTP API, so that API policies have something to hang on. PUT is synchronous.

use super::body::{opt_str, req_str};
use super::error::ArmError;
use super::kind::{string_values, Kind, Render};
use crate::server::Req;
use crate::store::{Entity, State};
use serde_json::{json, Map, Value};

/// ARM type of an API.
pub const TYPE: &str = "Microsoft.ApiManagement/service/apis";

/// The API kind.
pub struct Apis;

fn normalise(p: &Map<String, Value>) -> Result<Value, ArmError> {
    let path = req_str(p, "path", 0, 400)?;
    let display = req_str(p, "displayName", 1, 300)?;
    let mut out = Map::new();
    for (k, v) in p {
        // Read-only members are computed here, not taken from the client.
        if !matches!(k.as_str(), "isCurrent" | "isOnline" | "provisioningState") {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("path".into(), json!(path));
    out.insert("displayName".into(), json!(display));
    if let Some(url) = opt_str(p, "serviceUrl", 0, 2000)? {
        out.insert("serviceUrl".into(), json!(url));
    }
    out.entry("protocols").or_insert_with(|| json!(["https"]));
    out.entry("apiRevision").or_insert_with(|| json!("1"));
    out.entry("subscriptionRequired")
        .or_insert_with(|| json!(true));
    out.entry("type").or_insert_with(|| json!("http"));
    Ok(Value::Object(out))
}

impl Kind for Apis {
    fn segment(&self) -> &'static str {
        "apis"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Api"
    }
    fn normalise(&self, p: &Map<String, Value>) -> Result<Value, ArmError> {
        normalise(p)
    }
    fn patchable(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        let base = name.split(";rev=").next().unwrap_or(name);
        if base.is_empty()
            || base.chars().count() > 80
            || name.chars().count() > 256
            || name.contains(['*', '#', '&', '+', ':', '<', '>', '?'])
        {
            return Err(ArmError::validation(
                "apiId",
                format!("The API id '{name}' is invalid: 1-80 characters, none of '*#&+:<>?'."),
            ));
        }
        Ok(())
    }
    fn render(&self, e: &Entity, _req: &Req, _mode: Render) -> Result<Value, ArmError> {
        let mut p = e.properties.clone();
        p["isCurrent"] = json!(true);
        Ok(p)
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "displayName" | "properties/displayName" => Some(s("displayName")),
            "path" | "properties/path" => Some(s("path")),
            "serviceUrl" | "properties/serviceUrl" => Some(s("serviceUrl")),
            "description" | "properties/description" => Some(s("description")),
            _ => None,
        }
    }
    fn before_delete(&self, st: &mut State, _req: &Req, e: &Entity) -> Result<(), ArmError> {
        // An API's policy, operations and their policies go with it, and so do its places in
        // products.
        super::kind::remove_children(st, e);
        super::product_api::unlink_api(st, &e.service_key, &e.name);
        Ok(())
    }
}
