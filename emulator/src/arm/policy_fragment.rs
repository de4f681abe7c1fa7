//! Policy fragments (`{service}/policyFragments/{id}`, apimpolicyfragments.json). PUT is a
//! long-running operation. The stored value is the `<fragment>` element's inner content in the
//! `xml` format; see `crate::xml` for what is normalised.

use super::body::{opt_str, properties, req_str};
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::kind::{string_values, Kind, Render};
use super::policy_doc::{check_named_value_refs, check_rules, parse_document, DocKind};
use super::{Scope, MAX_PAGE};
use crate::gateway::rules::limits;
use crate::gateway::{document, instance};
use crate::server::{json_response, App, Req};
use crate::store::{Entity, State};
use crate::xml::{self, Format};
use serde_json::{json, Value};

/// ARM type of a policy fragment.
pub const TYPE: &str = "Microsoft.ApiManagement/service/policyFragments";

/// The policy-fragment kind.
pub struct PolicyFragments;

/// Reads the `format` query parameter (default `xml`).
pub fn query_format(req: &Req) -> Result<Format, ArmError> {
    match req.q("format") {
        None => Ok(Format::Xml),
        Some(f) => Format::parse(f).ok_or_else(|| {
            ArmError::validation(
                "format",
                format!("The format '{f}' is not supported; use 'xml' or 'rawxml'."),
            )
        }),
    }
}

fn body_format(p: &serde_json::Map<String, Value>) -> Result<Format, ArmError> {
    match p.get("format") {
        None | Some(Value::Null) => Ok(Format::Xml),
        Some(Value::String(f)) => Format::parse(f).ok_or_else(|| {
            ArmError::validation(
                "format",
                format!("The format '{f}' is not supported; use 'xml' or 'rawxml'."),
            )
        }),
        Some(_) => Err(ArmError::validation("format", "'format' must be a string.")),
    }
}

/// The policies (at any scope) of an instance that include fragment `id`.
pub fn references(st: &State, service_key: &str, id: &str) -> Vec<Entity> {
    st.entities
        .values()
        .filter(|e| e.service_key == service_key && super::policy::level(&e.type_name).is_some())
        .filter(|e| {
            e.properties
                .get("value")
                .and_then(Value::as_str)
                .and_then(|v| xml::parse(v).ok())
                .is_some_and(|root| {
                    xml::included_fragments(&root)
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(id))
                })
        })
        .cloned()
        .collect()
}

/// A fragment's new content must still be allowed where policies include it ("updates affect
/// all policy definitions in which the fragment is included").
fn recheck_including_policies(
    st: &State,
    scope: &Scope,
    req: &Req,
    stored: &str,
) -> Result<(), ArmError> {
    if !st.settings.enforce_rules {
        return Ok(());
    }
    let Some(id) = req.segs.last() else {
        return Ok(());
    };
    let node = document::parse(stored).map_err(|m| ArmError::validation("value", m))?;
    for r in references(st, &scope.service_key, id) {
        let doc = r
            .properties
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let at = Scope {
            service_key: scope.service_key.clone(),
            service_id: scope.service_id.clone(),
            parent_id: r.id.clone(),
        };
        let level = super::policy::level(&r.type_name).unwrap_or("api");
        check_rules(st, &at, doc, doc, DocKind::PolicyWith(level, id, &node))?;
    }
    Ok(())
}

impl Kind for PolicyFragments {
    fn segment(&self) -> &'static str {
        "policyFragments"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "PolicyFragment"
    }
    fn lro(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let ok = !name.is_empty()
            && name.len() <= 80
            && (name.chars().all(word)
                || (name.len() >= 3
                    && name.chars().next().is_some_and(word)
                    && name.chars().last().is_some_and(word)
                    && name.chars().all(|c| word(c) || c == '-')));
        if ok {
            Ok(())
        } else {
            Err(ArmError::validation("id", format!("The policy fragment id '{name}' is invalid: 1-80 letters, digits, underscores or inner dashes.")))
        }
    }
    fn before_create(&self, st: &State, scope: &Scope) -> Result<(), ArmError> {
        if !st.settings.enforce_rules {
            return Ok(());
        }
        let sku = instance::sku(st, &scope.service_key);
        let max = limits::fragments_per_instance(&sku);
        if instance::count(st, &scope.service_key, TYPE) >= max {
            return Err(ArmError::validation(
                "id",
                format!("The instance already has {max} policy fragments, the most an instance of SKU '{sku}' may have."),
            ));
        }
        Ok(())
    }
    fn create(
        &self,
        st: &State,
        scope: &Scope,
        req: &Req,
        body: &Value,
    ) -> Result<Value, ArmError> {
        let p = properties(body)?;
        let value = req_str(&p, "value", 1, usize::MAX)?;
        let description = opt_str(&p, "description", 0, 1000)?;
        let format = body_format(&p)?;
        let (stored, _) = parse_document(&value, format, "fragment", "policy fragment")?;
        check_named_value_refs(st, scope, &stored)?;
        check_rules(st, scope, &value, &stored, DocKind::Fragment)?;
        recheck_including_policies(st, scope, req, &stored)?;
        let inner = xml::inner_content(&stored).map_err(|m| ArmError::validation("value", m))?;
        let mut out = json!({"format": "xml", "value": inner});
        if let Some(d) = description {
            out["description"] = json!(d);
        }
        Ok(out)
    }
    fn render(&self, e: &Entity, req: &Req, mode: Render) -> Result<Value, ArmError> {
        let inner = e
            .properties
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (format, value) = match mode {
            // The PUT response shows the inner content, in the format the client wrote.
            Render::Write => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let f = body
                    .pointer("/properties/format")
                    .and_then(Value::as_str)
                    .and_then(Format::parse)
                    .unwrap_or(Format::Xml);
                (f, xml::render(inner, f))
            }
            Render::Get => {
                let f = query_format(req)?;
                (f, xml::render(&format!("<fragment>{inner}</fragment>"), f))
            }
            Render::List => (Format::Xml, format!("<fragment>{inner}</fragment>")),
        };
        let mut out = json!({"format": format.as_str()});
        if let Some(d) = e.properties.get("description") {
            out["description"] = d.clone();
        }
        out["value"] = json!(value);
        Ok(out)
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "description" | "properties/description" => Some(s("description")),
            "value" | "properties/value" => Some(s("value")),
            _ => None,
        }
    }
    fn action(&self, app: &App, req: &Req, scope: &Scope, e: &Entity, action: &str) -> ArmResult {
        if !action.eq_ignore_ascii_case("listReferences") {
            return Err(method_not_allowed(req));
        }
        let st = crate::faults::lock(&app.state);
        let refs = references(&st, &scope.service_key, &e.name);
        drop(st);
        let skip = req
            .q("$skip")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        let top = req
            .q("$top")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(MAX_PAGE);
        let items: Vec<Value> = refs
            .iter()
            .skip(skip)
            .take(top)
            .map(|r| json!({"id": r.id, "type": r.type_name, "name": r.name}))
            .collect();
        Ok(json_response(
            200,
            &json!({"value": items, "count": refs.len()}),
        ))
    }
    fn before_delete(&self, st: &mut State, _req: &Req, e: &Entity) -> Result<(), ArmError> {
        let refs = references(st, &e.service_key, &e.name);
        if let Some(r) = refs.first() {
            return Err(ArmError::validation(
                "id",
                format!("The policy fragment '{}' is referenced by '{}' and cannot be deleted; remove the include-fragment first.", e.name, r.id),
            ));
        }
        Ok(())
    }
}
