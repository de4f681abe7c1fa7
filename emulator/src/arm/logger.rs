//! Loggers (`{service}/loggers/{loggerId}`, apimloggers.json): where `log-to-eventhub`
//! (`azureEventHub`) and `emit-metric`/`trace` (`applicationInsights`, `azureMonitor`) send
//! what a policy records. PUT (201/200) and PATCH (200) are synchronous. Credentials are
//! write-only: a read shows each credential's name with a `{{Logger-Credentials--<id>}}`
//! reference instead of its value, as APIM keeps them in a named value.

use super::body::opt_str;
use super::error::ArmError;
use super::kind::{check_id, string_values, Kind, Render};
use crate::server::Req;
use crate::store::Entity;
use serde_json::{json, Map, Value};

/// ARM type of a logger.
pub const TYPE: &str = "Microsoft.ApiManagement/service/loggers";

/// The `loggerType` values of `LoggerContractProperties`.
const TYPES: &[&str] = &["azureEventHub", "applicationInsights", "azureMonitor"];

/// The logger kind.
pub struct Loggers;

fn normalise(p: &Map<String, Value>) -> Result<Value, ArmError> {
    let Some(kind) = opt_str(p, "loggerType", 1, 40)? else {
        return Err(ArmError::validation(
            "loggerType",
            "'loggerType' is required: azureEventHub, applicationInsights or azureMonitor.",
        ));
    };
    if !TYPES.contains(&kind.as_str()) {
        return Err(ArmError::validation(
            "loggerType",
            format!("The logger type '{kind}' is invalid; use azureEventHub, applicationInsights or azureMonitor."),
        ));
    }
    opt_str(p, "description", 0, 256)?;
    opt_str(p, "resourceId", 0, 2000)?;
    if p.get("isBuffered")
        .is_some_and(|b| !b.is_boolean() && !b.is_null())
    {
        return Err(ArmError::validation(
            "isBuffered",
            "'isBuffered' must be a boolean.",
        ));
    }
    let creds = match p.get("credentials") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) if c.values().all(Value::is_string) => c.clone(),
        Some(_) => {
            return Err(ArmError::validation(
                "credentials",
                "'credentials' must map names to strings.",
            ))
        }
    };
    let needs: &[&[&str]] = match kind.as_str() {
        "azureEventHub" => &[&["name"], &["connectionString", "endpointAddress"]],
        "applicationInsights" => &[&["instrumentationKey", "connectionString"]],
        _ => &[],
    };
    for any_of in needs {
        if !any_of.iter().any(|k| creds.contains_key(*k)) {
            return Err(ArmError::validation(
                "credentials",
                format!(
                    "A logger of type '{kind}' needs the credential '{}'.",
                    any_of.join("' or '")
                ),
            ));
        }
    }
    let mut out = p.clone();
    out.insert("loggerType".into(), json!(kind));
    out.entry("isBuffered").or_insert(json!(true));
    if !creds.is_empty() {
        out.insert("credentials".into(), Value::Object(creds));
    }
    Ok(Value::Object(out))
}

impl Kind for Loggers {
    fn segment(&self) -> &'static str {
        "loggers"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Logger"
    }
    fn normalise(&self, p: &Map<String, Value>) -> Result<Value, ArmError> {
        normalise(p)
    }
    fn patchable(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        check_id(name, 256, "loggerId", "logger")
    }
    fn render(&self, e: &Entity, _req: &Req, _mode: Render) -> Result<Value, ArmError> {
        let mut p = e.properties.clone();
        if let Some(Value::Object(c)) = p.get_mut("credentials") {
            for (k, v) in c.iter_mut() {
                *v = json!(format!("{{{{Logger-Credentials--{}-{k}}}}}", e.name));
            }
        }
        Ok(p)
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "loggerType" | "properties/loggerType" => Some(s("loggerType")),
            "description" | "properties/description" => Some(s("description")),
            _ => None,
        }
    }
}
