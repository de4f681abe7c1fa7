//! Products (`{service}/products/{productId}`, models `ProductContract` /
//! `ProductContractProperties` / `ProductUpdateProperties` in definitions.json): a set of APIs
//! (`products/{productId}/apis/{apiId}`, `product_api.rs`) with its own policy and the
//! subscriptions scoped to it. PUT and PATCH are synchronous. APIM's automatic subscription for
//! the administrator on create is not emulated.

use super::body::{opt_str, req_str};
use super::error::ArmError;
use super::kind::{check_id, remove_children, string_values, Kind};
use crate::server::Req;
use crate::store::{Entity, State};
use serde_json::{json, Map, Value};

/// ARM type of a product.
pub const TYPE: &str = "Microsoft.ApiManagement/service/products";

/// The product kind.
pub struct Products;

fn opt_bool(p: &Map<String, Value>, k: &str) -> Result<Option<bool>, ArmError> {
    match p.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ArmError::validation(k, format!("'{k}' must be a boolean."))),
    }
}

fn normalise(p: &Map<String, Value>) -> Result<Value, ArmError> {
    let display = req_str(p, "displayName", 1, 300)?;
    let mut out = json!({"displayName": display});
    if let Some(d) = opt_str(p, "description", 0, 1000)? {
        out["description"] = json!(d);
    }
    if let Some(t) = opt_str(p, "terms", 0, usize::MAX)? {
        out["terms"] = json!(t);
    }
    let sub_required = opt_bool(p, "subscriptionRequired")?;
    // "If property is omitted when creating a new product it's value is assumed to be true."
    out["subscriptionRequired"] = json!(sub_required.unwrap_or(true));
    if let Some(a) = opt_bool(p, "approvalRequired")? {
        // "Can be present only if subscriptionRequired property is present and has a value of
        // false" reads inverted against the portal; APIM refuses approval on an open product.
        if a && sub_required == Some(false) {
            return Err(ArmError::validation(
                "approvalRequired",
                "approvalRequired can be true only for a product that requires a subscription.",
            ));
        }
        out["approvalRequired"] = json!(a);
    }
    match p.get("subscriptionsLimit") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_i64().is_some() => out["subscriptionsLimit"] = json!(n),
        Some(_) => {
            return Err(ArmError::validation(
                "subscriptionsLimit",
                "'subscriptionsLimit' must be an integer.",
            ))
        }
    }
    let state = opt_str(p, "state", 1, 20)?.unwrap_or_else(|| "notPublished".into());
    if state != "published" && state != "notPublished" {
        return Err(ArmError::validation(
            "state",
            format!("The state '{state}' is invalid; use 'published' or 'notPublished'."),
        ));
    }
    out["state"] = json!(state);
    Ok(out)
}

/// Whether any subscription of the instance is scoped to product `name`.
fn subscriptions_of(st: &State, service_key: &str, name: &str) -> Vec<String> {
    let scope = format!("/products/{name}").to_ascii_lowercase();
    st.entities
        .iter()
        .filter(|(_, e)| {
            e.service_key == service_key
                && e.type_name == super::subscription::TYPE
                && e.properties
                    .get("scope")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case(&scope))
        })
        .map(|(k, _)| k.clone())
        .collect()
}

impl Kind for Products {
    fn segment(&self) -> &'static str {
        "products"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Product"
    }
    fn normalise(&self, p: &Map<String, Value>) -> Result<Value, ArmError> {
        normalise(p)
    }
    fn patchable(&self) -> bool {
        true
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        check_id(name, 256, "productId", "product")
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "displayName" | "properties/displayName" => Some(s("displayName")),
            "description" | "properties/description" => Some(s("description")),
            "state" | "properties/state" => Some(s("state")),
            "terms" | "properties/terms" => Some(s("terms")),
            _ => None,
        }
    }
    /// As APIM: a product with subscriptions is deleted only with `deleteSubscriptions=true`
    /// (which deletes them too); its policy and API links go with it.
    fn before_delete(&self, st: &mut State, req: &Req, e: &Entity) -> Result<(), ArmError> {
        let subs = subscriptions_of(st, &e.service_key, &e.name);
        let delete_subs = req
            .q("deleteSubscriptions")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !subs.is_empty() && !delete_subs {
            return Err(ArmError::new(
                400,
                "ValidationError",
                "Product cannot be deleted since it has existing subscriptions. Delete subscriptions before deleting the product or pass in deleteSubscriptions=true as query param",
            ));
        }
        for k in subs {
            st.entities.remove(&k);
        }
        remove_children(st, e);
        Ok(())
    }
}
