//! Azure Resource Manager for `Microsoft.ApiManagement`, api-version 2024-05-01: the entry point
//! (authentication, then routing) and the routes down to an instance's child collections.
//!
//! The ARM conventions live one concern per file: `error` (error bodies, fault answers),
//! `response` (correlation and quota headers), `auth` (bearer tokens), `api_version`, `body`
//! (request bodies), `etag` (`If-Match`), `kind` and `crud` (the generic child-entity CRUD each
//! entity module plugs into), `lro` (long-running operations) and `policy_doc` (what a policy
//! document must be to be saved). The other files are one entity each, plus the `$filter`
//! language.

mod api_version;
mod auth;
mod body;
mod crud;
pub(crate) mod error;
mod etag;
mod kind;
mod lro;
mod nested;
mod policy_doc;
pub(crate) mod response;

pub mod api;
pub mod backend;
pub mod filter;
pub mod logger;
pub mod named_value;
pub mod operation;
pub mod policy;
pub mod policy_fragment;
pub mod product;
pub mod product_api;
pub mod service;
pub mod subscription;

use crate::faults::lock;
use crate::server::{json_response, App, Req};
use axum::body::Body;
use axum::http::{Method, Response};
use error::{method_not_allowed, ArmError, ArmResult};
use serde_json::json;

/// The only api-version the APIM resource provider here implements.
pub const API_VERSION: &str = "2024-05-01";

/// Most items one page of a list holds when the client gives no `$top`.
pub const MAX_PAGE: usize = 100;

/// Where a request lands inside an APIM instance.
pub struct Scope {
    /// Lower-cased id of the instance.
    pub service_key: String,
    /// Canonical id of the instance.
    pub service_id: String,
    /// Canonical id of the parent of the addressed collection (the instance, an API, an
    /// operation or a product).
    pub parent_id: String,
}

/// Serves one ARM request.
pub fn handle(app: &App, req: &Req) -> Response<Body> {
    let result = auth::authenticate(app, req).and_then(|()| route(app, req));
    let mut resp = result.unwrap_or_else(ArmError::into_response);
    response::add_arm_headers(
        app,
        req.header("x-ms-correlation-request-id"),
        &req.method,
        &mut resp,
    );
    resp
}

/// Walks the path from the subscription down, answering for the first level that does not exist
/// (subscription, resource group, instance) as ARM does, then hands the rest to a collection.
fn route(app: &App, req: &Req) -> ArmResult {
    let s = &req.segs;
    let eq = |i: usize, lit: &str| s.get(i).is_some_and(|x| x.eq_ignore_ascii_case(lit));
    let by_subscription =
        s.len() == 5 && eq(2, "providers") && eq(3, "Microsoft.ApiManagement") && eq(4, "service");
    let is_rp = by_subscription
        || (s.len() >= 7
            && eq(2, "resourceGroups")
            && eq(4, "providers")
            && eq(5, "Microsoft.ApiManagement")
            && eq(6, "service"));
    api_version::check_api_version(req, is_rp)?;
    let Some(sub) = s.get(1) else {
        return Err(unknown_route(req));
    };
    {
        let st = lock(&app.state);
        if !st.subscriptions.contains_key(&sub.to_ascii_lowercase()) {
            return Err(ArmError::new(
                404,
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            ));
        }
    }
    if s.len() == 2 {
        return subscription(app, req, sub);
    }
    if by_subscription {
        return service::list_subscription(app, req, sub);
    }
    if !eq(2, "resourceGroups") || s.len() < 4 {
        return Err(unknown_route(req));
    }
    if s.len() == 4 {
        return service::resource_group(app, req, sub, &s[3]);
    }
    {
        let st = lock(&app.state);
        let rg_key = crate::store::resource_group_id(sub, &s[3]).to_ascii_lowercase();
        if !st.resource_groups.contains_key(&rg_key) {
            return Err(ArmError::new(
                404,
                "ResourceGroupNotFound",
                format!("Resource group '{}' could not be found.", s[3]),
            ));
        }
    }
    if !is_rp {
        return Err(unknown_route(req));
    }
    if s.len() == 7 {
        return service::list(app, req, sub, &s[3]);
    }
    let rest: Vec<String> = s[8..].to_vec();
    if rest.is_empty() {
        return service::handle(app, req, sub, &s[3], &s[7]);
    }
    let scope = {
        let st = lock(&app.state);
        let key = crate::store::service_id(sub, &s[3], &s[7]).to_ascii_lowercase();
        match st.services.get(&key) {
            Some(svc) => Scope {
                service_key: key,
                service_id: svc.id.clone(),
                parent_id: svc.id.clone(),
            },
            None => return Err(service::not_found(&s[3], &s[7])),
        }
    };
    let head = rest[0].to_ascii_lowercase();
    match head.as_str() {
        "namedvalues" => {
            crud::entity_routes(app, req, &named_value::NamedValues, &scope, &rest[1..])
        }
        "policyfragments" => crud::entity_routes(
            app,
            req,
            &policy_fragment::PolicyFragments,
            &scope,
            &rest[1..],
        ),
        "backends" => crud::entity_routes(app, req, &backend::Backends, &scope, &rest[1..]),
        "loggers" => crud::entity_routes(app, req, &logger::Loggers, &scope, &rest[1..]),
        "subscriptions" => {
            crud::entity_routes(app, req, &subscription::Subscriptions, &scope, &rest[1..])
        }
        "policies" => crud::entity_routes(app, req, &policy::Policies::SERVICE, &scope, &rest[1..]),
        "apis" => nested::apis(app, req, &scope, &rest[1..]),
        "products" => nested::products(app, req, &scope, &rest[1..]),
        "tenant" if rest.len() == 3 && rest[1].eq_ignore_ascii_case("operationResults") => {
            lro::operation_status(app, req, &scope, &rest[2])
        }
        _ => Err(unknown_route(req)),
    }
}

/// 404 for a path no route matches.
fn unknown_route(req: &Req) -> ArmError {
    ArmError::new(
        404,
        "InvalidResourceType",
        format!("The resource type for '{}' could not be found in the namespace 'Microsoft.ApiManagement' for api version '{API_VERSION}'.", req.path),
    )
}

/// GET of a subscription, which clients read for the tenant it belongs to.
fn subscription(app: &App, req: &Req, sub: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let st = lock(&app.state);
    Ok(json_response(
        200,
        &json!({
            "id": format!("/subscriptions/{sub}"),
            "subscriptionId": sub,
            "tenantId": st.tenant_id,
            "displayName": "apim-emulator subscription",
            "state": "Enabled",
        }),
    ))
}
