//! Routes below an API or a product: `apis/{apiId}/policies`, `apis/{apiId}/operations`,
//! `apis/{apiId}/operations/{operationId}/policies`, `products/{productId}/policies` and
//! `products/{productId}/apis`. Each level must exist (404 in APIM's words otherwise).

use super::error::{ArmError, ArmResult};
use super::{api, crud, operation, policy, product, product_api, Scope};
use crate::faults::lock;
use crate::server::{App, Req};

/// The scope of the entity `{parent}/{segment}/{name}` of `type_name`, or 404 `"{noun} not found."`.
fn child(
    app: &App,
    scope: &Scope,
    segment: &str,
    name: &str,
    type_name: &str,
    noun: &str,
) -> Result<Scope, ArmError> {
    let key = format!("{}/{segment}/{name}", scope.parent_id).to_ascii_lowercase();
    let st = lock(&app.state);
    match st.entities.get(&key).filter(|e| e.type_name == type_name) {
        Some(e) => Ok(Scope {
            service_key: scope.service_key.clone(),
            service_id: scope.service_id.clone(),
            parent_id: e.id.clone(),
        }),
        None => Err(ArmError::not_found(format!("{noun} not found."))),
    }
}

fn is(s: &str, lit: &str) -> bool {
    s.eq_ignore_ascii_case(lit)
}

/// `apis/...`: `rest` starts after `apis`.
pub(super) fn apis(app: &App, req: &Req, scope: &Scope, rest: &[String]) -> ArmResult {
    match rest {
        [id, p, more @ ..] if is(p, "policies") => {
            let at = child(app, scope, "apis", id, api::TYPE, "Api")?;
            crud::entity_routes(app, req, &policy::Policies::API, &at, more)
        }
        [id, o, op, p, more @ ..] if is(o, "operations") && is(p, "policies") => {
            let at = child(app, scope, "apis", id, api::TYPE, "Api")?;
            let at = child(app, &at, "operations", op, operation::TYPE, "Operation")?;
            crud::entity_routes(app, req, &policy::Policies::OPERATION, &at, more)
        }
        [id, o, more @ ..] if is(o, "operations") => {
            let at = child(app, scope, "apis", id, api::TYPE, "Api")?;
            crud::entity_routes(app, req, &operation::Operations, &at, more)
        }
        _ => crud::entity_routes(app, req, &api::Apis, scope, rest),
    }
}

/// `products/...`: `rest` starts after `products`.
pub(super) fn products(app: &App, req: &Req, scope: &Scope, rest: &[String]) -> ArmResult {
    match rest {
        [id, p, more @ ..] if is(p, "policies") => {
            let at = child(app, scope, "products", id, product::TYPE, "Product")?;
            crud::entity_routes(app, req, &policy::Policies::PRODUCT, &at, more)
        }
        [id, a, more @ ..] if is(a, "apis") => {
            let at = child(app, scope, "products", id, product::TYPE, "Product")?;
            product_api::routes(app, req, &at, more)
        }
        _ => crud::entity_routes(app, req, &product::Products, scope, rest),
    }
}
