//! Subscriptions (`{service}/subscriptions/{sid}`, apimsubscriptions.json; models
//! `SubscriptionCreateParameters` / `SubscriptionContract` in definitions.json): the keys the
//! gateway accepts in `Ocp-Apim-Subscription-Key`. PUT and PATCH are synchronous; keys never
//! appear in GET, list or PUT answers, only in `POST .../listSecrets`. A subscription's scope is
//! all APIs, one API or one product.

use super::body::{merged_properties, opt_str, properties, req_str};
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::etag::with_etag;
use super::kind::{string_values, Kind, Render};
use super::response::empty;
use super::Scope;
use crate::server::{json_response, App, Req};
use crate::store::{Entity, State};
use crate::util::{hex, now_rfc3339, random_bytes};
use serde_json::{json, Map, Value};

/// ARM type of a subscription.
pub const TYPE: &str = "Microsoft.ApiManagement/service/subscriptions";

/// States a subscription can be in (only `active` ones open the gateway).
const STATES: &[&str] = &[
    "suspended",
    "active",
    "expired",
    "submitted",
    "rejected",
    "cancelled",
];

/// The subscription kind.
pub struct Subscriptions;

fn new_key() -> String {
    hex(&random_bytes::<16>())
}

/// `/apis`, `/apis/{apiId}`, `/products/{productId}` (relative, or as a full ARM id of the
/// instance's API or product).
fn normalise_scope(st: &State, scope: &Scope, raw: &str) -> Result<String, ArmError> {
    let lower = raw.to_ascii_lowercase();
    let svc = scope.service_id.to_ascii_lowercase();
    let rel = if lower.starts_with(&svc) {
        &raw[svc.len()..]
    } else {
        raw
    };
    let segs: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [a] if a.eq_ignore_ascii_case("apis") => Ok("/apis".into()),
        [a, id] if a.eq_ignore_ascii_case("apis") => {
            let key = format!("{}/apis/{id}", scope.service_id).to_ascii_lowercase();
            if st.entities.get(&key).is_some_and(|e| e.type_name == super::api::TYPE) {
                Ok(format!("/apis/{id}"))
            } else {
                Err(ArmError::validation("scope", format!("The API '{id}' of scope '{raw}' does not exist.")))
            }
        }
        [p, id] if p.eq_ignore_ascii_case("products") => {
            let key = format!("{}/products/{id}", scope.service_id).to_ascii_lowercase();
            match st.entities.get(&key).filter(|e| e.type_name == super::product::TYPE) {
                Some(e) => Ok(format!("/products/{}", e.name)),
                None => Err(ArmError::validation("scope", format!("The product '{id}' of scope '{raw}' does not exist."))),
            }
        }
        _ => Err(ArmError::validation("scope", format!("The scope '{raw}' is invalid: use '/apis', '/apis/{{apiId}}' or '/products/{{productId}}'."))),
    }
}

fn normalise(
    st: &State,
    scope: &Scope,
    p: &Map<String, Value>,
    existing: Option<&Entity>,
) -> Result<Value, ArmError> {
    let raw_scope = req_str(p, "scope", 1, 2000)?;
    let display = req_str(p, "displayName", 1, 100)?;
    let state = opt_str(p, "state", 1, 20)?.unwrap_or_else(|| "submitted".into());
    if !STATES.contains(&state.as_str()) {
        return Err(ArmError::validation(
            "state",
            format!(
                "The state '{state}' is invalid; use one of {}.",
                STATES.join(", ")
            ),
        ));
    }
    let old = |k: &str| {
        existing
            .and_then(|e| e.properties.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let primary = opt_str(p, "primaryKey", 1, 256)?
        .or_else(|| old("primaryKey"))
        .unwrap_or_else(new_key);
    let secondary = opt_str(p, "secondaryKey", 1, 256)?
        .or_else(|| old("secondaryKey"))
        .unwrap_or_else(new_key);
    let mut out = json!({
        "scope": normalise_scope(st, scope, &raw_scope)?,
        "displayName": display,
        "state": state,
        "primaryKey": primary,
        "secondaryKey": secondary,
        "createdDate": old("createdDate").unwrap_or_else(now_rfc3339),
    });
    for k in [
        "ownerId",
        "stateComment",
        "expirationDate",
        "startDate",
        "endDate",
        "notificationDate",
    ] {
        if let Some(v) = opt_str(p, k, 0, 2000)? {
            out[k] = json!(v);
        }
    }
    match p.get("allowTracing") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => out["allowTracing"] = json!(b),
        Some(_) => {
            return Err(ArmError::validation(
                "allowTracing",
                "'allowTracing' must be a boolean.",
            ))
        }
    }
    Ok(out)
}

impl Kind for Subscriptions {
    fn segment(&self) -> &'static str {
        "subscriptions"
    }
    fn type_name(&self) -> &'static str {
        TYPE
    }
    fn noun(&self) -> &'static str {
        "Subscription"
    }
    fn validate_name(&self, name: &str) -> Result<(), ArmError> {
        if name.is_empty()
            || name.chars().count() > 256
            || name.contains(['*', '#', '&', '+', ':', '<', '>', '?'])
        {
            return Err(ArmError::validation("sid", format!("The subscription id '{name}' is invalid: 1-256 characters, none of '*#&+:<>?'.")));
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
        // A replace keeps the keys it does not give.
        let existing = st
            .entities
            .get(&req.path.to_ascii_lowercase())
            .filter(|e| e.type_name == TYPE);
        normalise(st, scope, &properties(body)?, existing)
    }
    fn update(
        &self,
        st: &State,
        scope: &Scope,
        _req: &Req,
        existing: &Entity,
        body: &Value,
    ) -> Result<Value, ArmError> {
        normalise(
            st,
            scope,
            &merged_properties(existing, body)?,
            Some(existing),
        )
    }
    fn render(&self, e: &Entity, _req: &Req, _mode: Render) -> Result<Value, ArmError> {
        let mut p = e.properties.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("primaryKey");
            o.remove("secondaryKey");
        }
        Ok(p)
    }
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>> {
        let s = |k: &str| string_values(&e.properties, k);
        match field {
            "name" => Some(vec![e.name.clone()]),
            "displayName" | "properties/displayName" => Some(s("displayName")),
            "state" | "properties/state" => Some(s("state")),
            "scope" | "properties/scope" => Some(s("scope")),
            "ownerId" | "properties/ownerId" => Some(s("ownerId")),
            _ => None,
        }
    }
    fn action(&self, app: &App, req: &Req, _scope: &Scope, e: &Entity, action: &str) -> ArmResult {
        let slot = match action.to_ascii_lowercase().as_str() {
            "listsecrets" => {
                let k = |n: &str| e.properties.get(n).cloned().unwrap_or(Value::Null);
                return Ok(with_etag(
                    json_response(
                        200,
                        &json!({"primaryKey": k("primaryKey"), "secondaryKey": k("secondaryKey")}),
                    ),
                    &e.etag,
                ));
            }
            "regenerateprimarykey" => "primaryKey",
            "regeneratesecondarykey" => "secondaryKey",
            _ => return Err(method_not_allowed(req)),
        };
        let mut st = crate::faults::lock(&app.state);
        let etag = st.next_etag();
        if let Some(stored) = st.entities.get_mut(&e.id.to_ascii_lowercase()) {
            stored.properties[slot] = json!(new_key());
            stored.etag = etag;
        }
        app.persist(&st);
        Ok(empty(204))
    }
}

/// The active subscription of an instance with this key (primary or secondary) whose scope
/// covers API `api_name`: `(id, display name, primary, secondary)` and, for a product-scoped
/// one, the product (which must hold the API).
pub fn find_by_key(
    st: &State,
    service_key: &str,
    key: &str,
    api_name: &str,
) -> Option<([String; 4], Option<String>)> {
    st.entities.values().find_map(|e| {
        if e.service_key != service_key || e.type_name != TYPE {
            return None;
        }
        let p = &e.properties;
        let get = |k: &str| {
            p.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let matches_key =
            !key.is_empty() && (get("primaryKey") == key || get("secondaryKey") == key);
        if !matches_key || get("state") != "active" {
            return None;
        }
        let scope = get("scope");
        let product = scope.strip_prefix("/products/").map(str::to_string);
        let covers = match &product {
            Some(pid) => super::product_api::products_of(st, service_key, api_name)
                .iter()
                .any(|x| x.eq_ignore_ascii_case(pid)),
            None => {
                scope == "/apis"
                    || scope
                        .strip_prefix("/apis/")
                        .is_some_and(|id| id.eq_ignore_ascii_case(api_name))
            }
        };
        covers.then(|| {
            (
                [
                    e.name.clone(),
                    get("displayName"),
                    get("primaryKey"),
                    get("secondaryKey"),
                ],
                product,
            )
        })
    })
}
