//! Policies at the four scopes: the service policy `{service}/policies/policy` (apimpolicies.json),
//! product policies `{service}/products/{productId}/policies/policy`, API policies
//! `{service}/apis/{apiId}/policies/policy` and operation policies
//! `{service}/apis/{apiId}/operations/{operationId}/policies/policy`, all with the same shapes.
//! PUT is synchronous (201/200). Documents are stored re-serialised in APIM's layout; see
//! `crate::xml`.

use super::body::{properties, req_str};
use super::error::ArmError;
use super::kind::{Kind, Render};
use super::policy_doc::{
    check_fragment_refs, check_named_value_refs, check_rules, parse_document, DocKind,
};
use super::policy_fragment::query_format;
use super::Scope;
use crate::server::Req;
use crate::store::{Entity, State};
use crate::xml::{self, Format};
use serde_json::{json, Value};

/// ARM type of the service policy.
pub const SERVICE_TYPE: &str = "Microsoft.ApiManagement/service/policies";
/// ARM type of a product policy.
pub const PRODUCT_TYPE: &str = "Microsoft.ApiManagement/service/products/policies";
/// ARM type of an API policy.
pub const API_TYPE: &str = "Microsoft.ApiManagement/service/apis/policies";
/// ARM type of an operation policy.
pub const OPERATION_TYPE: &str = "Microsoft.ApiManagement/service/apis/operations/policies";

/// The policy types with the scope name the save-time rules use for each.
pub const LEVELS: [(&str, &str); 4] = [
    (SERVICE_TYPE, "global"),
    (PRODUCT_TYPE, "product"),
    (API_TYPE, "api"),
    (OPERATION_TYPE, "operation"),
];

/// The scope (`global`, `product`, `api`, `operation`) of a policy type, if it is one.
pub fn level(type_name: &str) -> Option<&'static str> {
    LEVELS
        .iter()
        .find(|(t, _)| *t == type_name)
        .map(|(_, l)| *l)
}

/// The policy kind at one scope.
pub struct Policies {
    type_name: &'static str,
}

impl Policies {
    /// `{service}/policies/policy`.
    pub const SERVICE: Policies = Policies {
        type_name: SERVICE_TYPE,
    };
    /// `{service}/apis/{apiId}/policies/policy`.
    pub const API: Policies = Policies {
        type_name: API_TYPE,
    };
    /// `{service}/products/{productId}/policies/policy`.
    pub const PRODUCT: Policies = Policies {
        type_name: PRODUCT_TYPE,
    };
    /// `{service}/apis/{apiId}/operations/{operationId}/policies/policy`.
    pub const OPERATION: Policies = Policies {
        type_name: OPERATION_TYPE,
    };
}

impl Kind for Policies {
    fn segment(&self) -> &'static str {
        "policies"
    }
    fn type_name(&self) -> &'static str {
        self.type_name
    }
    fn noun(&self) -> &'static str {
        "Policy"
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        if name == "policy" {
            Ok(())
        } else {
            Err(ArmError::validation(
                "policyId",
                format!("The policy id '{name}' is invalid: the only policy id is 'policy'."),
            ))
        }
    }
    fn create(
        &self,
        st: &State,
        scope: &Scope,
        _req: &Req,
        body: &Value,
    ) -> Result<Value, ArmError> {
        let p = properties(body)?;
        let value = req_str(&p, "value", 1, usize::MAX)?;
        let format = match p.get("format") {
            None | Some(Value::Null) => Format::Xml,
            Some(Value::String(f)) if f == "xml-link" || f == "rawxml-link" => {
                return Err(ArmError::validation("format", format!("The format '{f}' (a policy fetched from a URL) is not supported by the emulator.")))
            }
            Some(Value::String(f)) => Format::parse(f).ok_or_else(|| ArmError::validation("format", format!("The format '{f}' is not supported.")))?,
            Some(_) => return Err(ArmError::validation("format", "'format' must be a string.")),
        };
        let (stored, root) = parse_document(&value, format, "policies", "policy")?;
        check_fragment_refs(st, scope, &root)?;
        let pretty = xml::pretty(&root);
        check_named_value_refs(st, scope, &pretty)?;
        let level = level(self.type_name).unwrap_or("api");
        check_rules(st, scope, &value, &stored, DocKind::Policy(level))?;
        Ok(json!({"value": pretty}))
    }
    fn render(&self, e: &Entity, req: &Req, mode: Render) -> Result<Value, ArmError> {
        let stored = e
            .properties
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(match mode {
            // The PUT response carries the value (in the format written) without `format`, as in
            // the spec examples.
            Render::Write => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let f = body
                    .pointer("/properties/format")
                    .and_then(Value::as_str)
                    .and_then(Format::parse)
                    .unwrap_or(Format::Xml);
                json!({"value": xml::render(stored, f)})
            }
            Render::Get => {
                let f = query_format(req)?;
                json!({"format": f.as_str(), "value": xml::render(stored, f)})
            }
            Render::List => json!({"format": "xml", "value": stored}),
        })
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        (field == "name").then(|| vec![e.name.clone()])
    }
}
