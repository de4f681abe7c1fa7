//! What the gateway and the save-time rules read from the store about one instance: its SKU,
//! named values, fragments, APIs and the policies at every scope, subscriptions. A request takes a snapshot
//! under the store lock and runs without it.

use super::compose::{effective, prepare, Sections, Sources};
use super::document::{parse, Node};
use crate::arm::{api, named_value, policy, policy_fragment};
use crate::store::State;
use serde_json::Value;

/// The SKU name of an instance (`Developer` when unknown).
pub fn sku(st: &State, service_key: &str) -> String {
    st.services
        .get(service_key)
        .and_then(|s| s.sku.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Developer")
        .to_string()
}

/// How many entities of an ARM type an instance has.
pub fn count(st: &State, service_key: &str, type_name: &str) -> usize {
    st.entities
        .values()
        .filter(|e| e.service_key == service_key && e.type_name == type_name)
        .count()
}

/// A named value's value by display name (a Key Vault one reads as "": no vault here).
pub fn named_value(st: &State, service_key: &str, display: &str) -> Option<String> {
    st.entities
        .values()
        .find(|e| {
            e.service_key == service_key
                && e.type_name == named_value::TYPE
                && e.properties
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.eq_ignore_ascii_case(display))
        })
        .map(|e| {
            e.properties
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
}

/// A fragment's content as a `<fragment>` element.
pub fn fragment(st: &State, service_id: &str, id: &str) -> Option<Node> {
    let key = format!("{service_id}/policyFragments/{id}").to_ascii_lowercase();
    let e = st
        .entities
        .get(&key)
        .filter(|e| e.type_name == policy_fragment::TYPE)?;
    let inner = e
        .properties
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    parse(&format!("<fragment>{inner}</fragment>")).ok()
}

fn policy_doc(st: &State, parent_id: &str, type_name: &str) -> Option<Node> {
    let key = format!("{parent_id}/policies/policy").to_ascii_lowercase();
    let e = st.entities.get(&key).filter(|e| e.type_name == type_name)?;
    parse(e.properties.get("value").and_then(Value::as_str)?).ok()
}

/// The API a request path addresses.
#[derive(Debug, Clone)]
pub struct MatchedApi {
    /// ARM id.
    pub id: String,
    /// API id (name).
    pub name: String,
    /// Display name.
    pub display: String,
    /// Path (without slashes around it).
    pub path: String,
    /// Backend base URL.
    pub service_url: Option<String>,
    /// Whether a subscription key is required.
    pub subscription_required: bool,
    /// The request path after the API's path.
    pub rest: String,
}

/// Finds the API whose `path` is the longest prefix (by whole segments, ignoring case) of
/// `request_path`.
pub fn match_api(st: &State, service_key: &str, request_path: &str) -> Option<MatchedApi> {
    let req: Vec<&str> = request_path.split('/').filter(|s| !s.is_empty()).collect();
    let mut best: Option<(usize, MatchedApi)> = None;
    for e in st
        .entities
        .values()
        .filter(|e| e.service_key == service_key && e.type_name == api::TYPE)
    {
        let path = e
            .properties
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let fits = segs.len() <= req.len()
            && segs
                .iter()
                .zip(&req)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        if !fits || best.as_ref().is_some_and(|(n, _)| *n >= segs.len()) {
            continue;
        }
        let rest = req[segs.len()..].join("/");
        let trailing = request_path.ends_with('/') && !rest.is_empty();
        best = Some((
            segs.len(),
            MatchedApi {
                id: e.id.clone(),
                name: e.name.clone(),
                display: e
                    .properties
                    .get("displayName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                path: segs.join("/"),
                service_url: e
                    .properties
                    .get("serviceUrl")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                subscription_required: e
                    .properties
                    .get("subscriptionRequired")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                rest: if trailing { format!("{rest}/") } else { rest },
            },
        ));
    }
    best.map(|(_, m)| m)
}

/// The effective policy of a request to an API of an instance, with the product (ARM id) its
/// subscription named and the operation (ARM id) it matched, if any: global ← product ← API ←
/// operation. Returns the sections and the scopes composed.
pub fn effective_policy(
    st: &State,
    service_key: &str,
    service_id: &str,
    product_id: Option<&str>,
    api_id: &str,
    operation_id: Option<&str>,
) -> (Sections, Vec<&'static str>) {
    let nv = |n: &str| named_value(st, service_key, n);
    let frag = |id: &str| fragment(st, service_id, id);
    let src = Sources {
        named_value: &nv,
        fragment: &frag,
    };
    let doc = |parent: &str, ty: &str| policy_doc(st, parent, ty).map(|d| prepare(&d, &src, false));
    let mut docs = vec![("global", doc(service_id, policy::SERVICE_TYPE))];
    if let Some(p) = product_id {
        docs.push(("product", doc(p, policy::PRODUCT_TYPE)));
    }
    docs.push(("api", doc(api_id, policy::API_TYPE)));
    if let Some(o) = operation_id {
        docs.push(("operation", doc(o, policy::OPERATION_TYPE)));
    }
    let levels: Vec<(&'static str, Option<&Node>)> =
        docs.iter().map(|(s, d)| (*s, d.as_ref())).collect();
    (effective(&levels), docs.iter().map(|(s, _)| *s).collect())
}
