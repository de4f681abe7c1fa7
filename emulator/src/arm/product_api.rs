//! The APIs of a product (`{service}/products/{productId}/apis/{apiId}`, apimproducts.json's
//! ProductApi operations): PUT adds an existing API to the product (201, or 200 when it is
//! already there) and answers with the API (`ApiContract`); HEAD answers 204 when the API is in
//! the product; DELETE removes it from the product (200, or 204 when it was not there); GET of
//! the collection lists the product's APIs as `ApiCollection`. The link is stored as an entity
//! of type `LINK_TYPE` named after the API.

use super::error::{method_not_allowed, ArmError, ArmResult};
use super::kind::{entity_json, Render};
use super::response::empty;
use super::{api, unknown_route, Scope};
use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::{Entity, State};
use axum::http::Method;
use serde_json::{json, Value};

/// Internal type of a product–API link.
pub const LINK_TYPE: &str = "Microsoft.ApiManagement/service/products/apis";

fn api_of(st: &State, scope: &Scope, name: &str) -> Option<Entity> {
    let key = format!("{}/apis/{name}", scope.service_id).to_ascii_lowercase();
    st.entities
        .get(&key)
        .filter(|e| e.type_name == api::TYPE)
        .cloned()
}

/// Routes under `products/{productId}/apis`; `scope.parent_id` is the product.
pub(super) fn routes(app: &App, req: &Req, scope: &Scope, rest: &[String]) -> ArmResult {
    match rest {
        [] if req.method == Method::GET => list(app, req, scope),
        [] => Err(method_not_allowed(req)),
        [name] => {
            let key = format!("{}/apis/{name}", scope.parent_id).to_ascii_lowercase();
            match req.method.as_str() {
                "PUT" => put(app, req, scope, name, &key),
                "HEAD" => {
                    let st = lock(&app.state);
                    let there = st
                        .entities
                        .get(&key)
                        .is_some_and(|e| e.type_name == LINK_TYPE);
                    Ok(empty(if there { 204 } else { 404 }))
                }
                "DELETE" => {
                    let mut st = lock(&app.state);
                    if st.entities.remove(&key).is_none() {
                        return Ok(empty(204));
                    }
                    app.persist(&st);
                    Ok(empty(200))
                }
                _ => Err(method_not_allowed(req)),
            }
        }
        _ => Err(unknown_route(req)),
    }
}

fn put(app: &App, req: &Req, scope: &Scope, name: &str, key: &str) -> ArmResult {
    let mut st = lock(&app.state);
    let Some(api) = api_of(&st, scope, name) else {
        return Err(ArmError::not_found("Api not found."));
    };
    let existed = st.entities.contains_key(key);
    if !existed {
        let etag = st.next_etag();
        st.entities.insert(
            key.to_string(),
            Entity {
                id: format!("{}/apis/{}", scope.parent_id, api.name),
                type_name: LINK_TYPE.into(),
                name: api.name.clone(),
                service_key: scope.service_key.clone(),
                etag,
                properties: json!({"apiId": api.id}),
            },
        );
        app.persist(&st);
    }
    drop(st);
    let body = entity_json(&api::Apis, &api, req, Render::Write)?;
    Ok(json_response(if existed { 200 } else { 201 }, &body))
}

fn list(app: &App, req: &Req, scope: &Scope) -> ArmResult {
    let prefix = format!("{}/apis/", scope.parent_id).to_ascii_lowercase();
    let st = lock(&app.state);
    let apis: Vec<Entity> = st
        .entities
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, e)| e.type_name == LINK_TYPE)
        .filter_map(|(_, e)| api_of(&st, scope, &e.name))
        .collect();
    drop(st);
    let skip = req.q("$skip").and_then(|s| s.parse().ok()).unwrap_or(0);
    let top = req
        .q("$top")
        .and_then(|s| s.parse().ok())
        .unwrap_or(super::MAX_PAGE);
    let items: Vec<Value> = apis
        .iter()
        .skip(skip)
        .take(top.min(super::MAX_PAGE))
        .map(|e| entity_json(&api::Apis, e, req, Render::List))
        .collect::<Result<_, _>>()?;
    Ok(json_response(
        200,
        &json!({"value": items, "count": apis.len()}),
    ))
}

/// Removes API `name` from every product of the instance (when the API is deleted).
pub fn unlink_api(st: &mut State, service_key: &str, name: &str) {
    st.entities.retain(|_, e| {
        !(e.service_key == service_key
            && e.type_name == LINK_TYPE
            && e.name.eq_ignore_ascii_case(name))
    });
}

/// The products of an instance that hold API `name`: their ids (names).
pub fn products_of(st: &State, service_key: &str, name: &str) -> Vec<String> {
    st.entities
        .values()
        .filter(|e| {
            e.service_key == service_key
                && e.type_name == LINK_TYPE
                && e.name.eq_ignore_ascii_case(name)
        })
        .filter_map(|e| e.id.rsplit('/').nth(2).map(str::to_string))
        .collect()
}
