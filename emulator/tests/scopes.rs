//! The gateway's composition global ← product ← API ← operation, operation matching by method
//! and URL template, and product-scoped keys.

mod common;

use common::echo::Echo;
use common::scopes::{appending, arm, key_of, op, policy, put, scopes_seen, send};
use common::Emu;
use reqwest::Method;
use serde_json::{json, Value};

#[test]
fn gateway_composes_four_scopes_and_matches_operations() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let echo = Echo::start();
    let svc = emu.apim();
    let api = format!("{svc}/apis/orders");
    put(
        &emu,
        &api,
        &json!({"properties": {"displayName": "Orders", "path": "shop", "serviceUrl": echo.url}}),
    );
    let other = format!("{svc}/apis/other");
    put(
        &emu,
        &other,
        &json!({"properties": {"displayName": "Other", "path": "other", "serviceUrl": echo.url}}),
    );
    let prod = format!("{svc}/products/gold");
    put(&emu, &prod, &json!({"properties": {"displayName": "Gold"}}));
    put(&emu, &format!("{prod}/apis/orders"), &json!({}));
    let sub = format!("{svc}/subscriptions/gold-sub");
    put(
        &emu,
        &sub,
        &json!({"properties": {"scope": "/products/gold", "displayName": "Gold", "state": "active"}}),
    );
    let key = key_of(&emu, &sub);

    // An API without operations: every path reaches it.
    let (s, _) = send(&emu, Method::DELETE, "/shop/anything/at/all", Some(&key));
    assert_eq!(s, 200);

    policy(&emu, &svc, &appending("global", true));
    policy(&emu, &prod, &appending("product", true));
    policy(&emu, &api, &appending("api", true));
    op(&emu, &api, "get-order", "GET", "/orders/{id}");
    op(&emu, &api, "latest", "GET", "/orders/latest");
    op(&emu, &api, "create-order", "POST", "/orders");
    policy(
        &emu,
        &format!("{api}/operations/get-order"),
        &appending("operation", true),
    );

    let (s, body) = send(&emu, Method::GET, "/shop/orders/42", Some(&key));
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        scopes_seen(&echo),
        ["global", "product", "api", "operation"]
    );
    let log = emu.ctl(Method::GET, "gateway/log", None);
    let last = log
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["operation"], "get-order");
    assert_eq!(last["product"], "gold");
    assert_eq!(
        last["scopes"],
        json!(["global", "product", "api", "operation"])
    );

    // The literal template wins over the parameter; POST /orders is another operation; an
    // operation without a policy behaves as <base/>.
    assert_eq!(
        send(&emu, Method::GET, "/shop/orders/latest", Some(&key)).0,
        200
    );
    assert_eq!(scopes_seen(&echo), ["global", "product", "api"]);
    let log = emu.ctl(Method::GET, "gateway/log", None);
    assert_eq!(
        log.as_array()
            .and_then(|a| a.last())
            .map(|e| e["operation"].clone()),
        Some(json!("latest"))
    );
    assert_eq!(send(&emu, Method::POST, "/shop/orders", Some(&key)).0, 200);
    assert_eq!(echo.last().method, "POST");

    // No operation matches: APIM's 404, and nothing reaches the backend.
    let before = echo.seen().len();
    let (s, body) = send(&emu, Method::DELETE, "/shop/orders/42", Some(&key));
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        (s, body),
        (
            404,
            json!({"statusCode": 404, "message": "Resource not found"})
        )
    );
    assert_eq!(
        send(&emu, Method::GET, "/shop/customers", Some(&key)).0,
        404
    );
    assert_eq!(echo.seen().len(), before);

    // A key of a product that does not hold the API: 401.
    let (s, body) = send(&emu, Method::GET, "/other/x", Some(&key));
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("invalid subscription key"), "{body}");

    // An API-scoped key composes without a product.
    let asub = format!("{svc}/subscriptions/api-sub");
    put(
        &emu,
        &asub,
        &json!({"properties": {"scope": "/apis/orders", "displayName": "A", "state": "active"}}),
    );
    let akey = key_of(&emu, &asub);
    assert_eq!(
        send(&emu, Method::GET, "/shop/orders/7", Some(&akey)).0,
        200
    );
    assert_eq!(scopes_seen(&echo), ["global", "api", "operation"]);

    // A scope without <base/> in inbound cuts its parents' inbound.
    policy(
        &emu,
        &format!("{api}/operations/get-order"),
        &appending("operation", false),
    );
    assert_eq!(send(&emu, Method::GET, "/shop/orders/1", Some(&key)).0, 200);
    assert_eq!(scopes_seen(&echo), ["operation"]);
    policy(&emu, &api, &appending("api", false));
    assert_eq!(
        send(&emu, Method::GET, "/shop/orders/latest", Some(&key)).0,
        200
    );
    assert_eq!(scopes_seen(&echo), ["api"]);
}

#[test]
fn protected_products_need_their_keys() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let echo = Echo::start();
    let svc = emu.apim();
    let api = format!("{svc}/apis/open");
    put(
        &emu,
        &api,
        &json!({"properties": {"displayName": "Open", "path": "open", "serviceUrl": echo.url, "subscriptionRequired": false}}),
    );
    assert_eq!(send(&emu, Method::GET, "/open/x", None).0, 200);
    let prod = format!("{svc}/products/gold");
    put(
        &emu,
        &prod,
        &json!({"properties": {"displayName": "Gold", "subscriptionRequired": true}}),
    );
    put(&emu, &format!("{prod}/apis/open"), &json!({}));
    let (s, body) = send(&emu, Method::GET, "/open/x", None);
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("missing subscription key"), "{body}");
    let sub = format!("{svc}/subscriptions/s");
    put(
        &emu,
        &sub,
        &json!({"properties": {"scope": "/products/gold", "displayName": "S", "state": "active"}}),
    );
    let key = key_of(&emu, &sub);
    assert_eq!(send(&emu, Method::GET, "/open/x", Some(&key)).0, 200);
    // Removed from the product, the API is open again.
    assert_eq!(
        arm(&emu, Method::DELETE, &format!("{prod}/apis/open"), None).0,
        200
    );
    assert_eq!(send(&emu, Method::GET, "/open/x", None).0, 200);
}
