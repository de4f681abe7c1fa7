//! Products, product APIs, product policies, operations and operation policies: their ARM shapes
//! (ProductContract, ApiContract, OperationContract, PolicyContract), what deleting them takes
//! with it, product-scoped subscriptions, and the gateway's composition global ← product ← API ←
//! operation with operation matching by method and URL template.

mod common;

use common::echo::Echo;
use common::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

fn arm(emu: &Emu, m: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s, _, v) = emu.arm(m, &format!("{path}{sep}{V}"), body, &[("If-Match", "*")]);
    (s, v)
}

fn put(emu: &Emu, path: &str, body: &Value) -> Value {
    let (s, v) = arm(emu, Method::PUT, path, Some(body));
    assert!(s == 200 || s == 201, "PUT {path}: {s} {v}");
    v
}

fn policy(emu: &Emu, parent: &str, xml: &str) {
    put(
        emu,
        &format!("{parent}/policies/policy"),
        &json!({"properties": {"format": "rawxml", "value": xml}}),
    );
}

/// A policy whose inbound appends `v` to `X-Scopes` (after the parent's when `base`).
fn appending(v: &str, base: bool) -> String {
    let b = if base { "<base />" } else { "" };
    format!("<policies><inbound>{b}<set-header name=\"X-Scopes\" exists-action=\"append\"><value>{v}</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
}

fn op(emu: &Emu, api: &str, id: &str, method: &str, template: &str) {
    let params: Vec<Value> = template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split('}').next())
        .map(|n| json!({"name": n, "type": "string", "required": true}))
        .collect();
    put(
        emu,
        &format!("{api}/operations/{id}"),
        &json!({"properties": {"displayName": id, "method": method, "urlTemplate": template, "templateParameters": params}}),
    );
}

fn send(emu: &Emu, m: Method, path: &str, key: Option<&str>) -> (u16, String) {
    let mut r = emu
        .http
        .request(m, format!("{}{path}", emu.s("gateway_url")));
    if let Some(k) = key {
        r = r.header("Ocp-Apim-Subscription-Key", k);
    }
    let resp = r.send().expect("gateway request");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

fn key_of(emu: &Emu, sub: &str) -> String {
    let (s, v) = arm(emu, Method::POST, &format!("{sub}/listSecrets"), None);
    assert_eq!(s, 200, "{v}");
    v["primaryKey"].as_str().expect("key").to_string()
}

fn scopes_seen(echo: &Echo) -> Vec<String> {
    echo.last()
        .headers
        .iter()
        .filter(|(k, _)| k == "x-scopes")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn arm_shapes_and_deletes() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let svc = emu.apim();
    let api = format!("{svc}/apis/orders");
    put(
        &emu,
        &api,
        &json!({"properties": {"displayName": "Orders", "path": "orders"}}),
    );

    // Product: PUT 201 then 200, GET, HEAD, PATCH, list.
    let prod = format!("{svc}/products/gold");
    let body = json!({"properties": {"displayName": "Gold", "description": "d", "subscriptionRequired": true, "approvalRequired": false, "state": "published"}});
    let (s, v) = arm(&emu, Method::PUT, &prod, Some(&body));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["type"], "Microsoft.ApiManagement/service/products");
    assert_eq!(v["name"], "gold");
    assert_eq!(v["properties"]["state"], "published");
    assert_eq!(arm(&emu, Method::PUT, &prod, Some(&body)).0, 200);
    let (s, _) = arm(
        &emu,
        Method::PATCH,
        &prod,
        Some(&json!({"properties": {"state": "notPublished"}})),
    );
    assert_eq!(s, 200);
    let (_, v) = arm(&emu, Method::GET, &prod, None);
    assert_eq!(v["properties"]["state"], "notPublished");
    assert_eq!(v["properties"]["displayName"], "Gold");
    assert_eq!(arm(&emu, Method::HEAD, &prod, None).0, 200);
    let (_, v) = arm(&emu, Method::GET, &format!("{svc}/products"), None);
    assert_eq!(v["count"], 1);
    let bad = json!({"properties": {"displayName": "X", "state": "live"}});
    assert_eq!(
        arm(&emu, Method::PUT, &format!("{svc}/products/x"), Some(&bad)).0,
        400
    );

    // Product APIs: the API must exist; PUT answers with the ApiContract.
    let (s, v) = arm(&emu, Method::PUT, &format!("{prod}/apis/nope"), None);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let (s, v) = arm(&emu, Method::PUT, &format!("{prod}/apis/orders"), None);
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["type"].as_str(), v["properties"]["path"].as_str()),
        (Some("Microsoft.ApiManagement/service/apis"), Some("orders"))
    );
    assert_eq!(
        arm(&emu, Method::PUT, &format!("{prod}/apis/orders"), None).0,
        200
    );
    assert_eq!(
        arm(&emu, Method::HEAD, &format!("{prod}/apis/orders"), None).0,
        204
    );
    let (_, v) = arm(&emu, Method::GET, &format!("{prod}/apis"), None);
    assert_eq!(v["value"][0]["name"], "orders");

    // Product policy: PUT, GET in rawxml; save-time rules apply at the product scope.
    policy(&emu, &prod, &appending("p", true));
    let (s, v) = arm(
        &emu,
        Method::GET,
        &format!("{prod}/policies/policy?format=rawxml"),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        v["type"],
        "Microsoft.ApiManagement/service/products/policies"
    );
    assert!(v["properties"]["value"]
        .as_str()
        .unwrap_or_default()
        .contains("X-Scopes"));
    let wrong = json!({"properties": {"value": "<policies><outbound><set-method>GET</set-method></outbound></policies>"}});
    let (s, v) = arm(
        &emu,
        Method::PUT,
        &format!("{prod}/policies/policy"),
        Some(&wrong),
    );
    assert_eq!(s, 400, "set-method is not allowed in outbound: {v}");

    // Operations: PUT, GET, PATCH, list; template parameters must be defined.
    op(&emu, &api, "get-order", "get", "/orders/{id}");
    let (s, v) = arm(
        &emu,
        Method::GET,
        &format!("{api}/operations/get-order"),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(v["type"], "Microsoft.ApiManagement/service/apis/operations");
    assert_eq!(v["properties"]["method"], "GET");
    assert_eq!(v["properties"]["templateParameters"][0]["name"], "id");
    let (s, _) = arm(
        &emu,
        Method::PATCH,
        &format!("{api}/operations/get-order"),
        Some(&json!({"properties": {"displayName": "Get order"}})),
    );
    assert_eq!(s, 200);
    let (_, v) = arm(&emu, Method::GET, &format!("{api}/operations"), None);
    assert_eq!(v["value"][0]["properties"]["displayName"], "Get order");
    let undefined =
        json!({"properties": {"displayName": "x", "method": "GET", "urlTemplate": "/x/{y}"}});
    assert_eq!(
        arm(
            &emu,
            Method::PUT,
            &format!("{api}/operations/x"),
            Some(&undefined)
        )
        .0,
        400
    );
    let (s, v) = arm(
        &emu,
        Method::GET,
        &format!("{api}/operations/none/policies/policy"),
        None,
    );
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (404, Some("Operation not found."))
    );

    // Operation policy.
    policy(
        &emu,
        &format!("{api}/operations/get-order"),
        &appending("o", true),
    );
    let (_, v) = arm(
        &emu,
        Method::GET,
        &format!("{api}/operations/get-order/policies/policy"),
        None,
    );
    assert_eq!(
        v["type"],
        "Microsoft.ApiManagement/service/apis/operations/policies"
    );
    let (s, _) = arm(
        &emu,
        Method::PUT,
        &format!("{api}/operations/get-order/policies/policy"),
        Some(&wrong),
    );
    assert_eq!(s, 400, "rules apply at the operation scope");

    // Product subscriptions; deleting the product needs deleteSubscriptions=true.
    let sub = format!("{svc}/subscriptions/s1");
    put(
        &emu,
        &sub,
        &json!({"properties": {"scope": format!("{prod}"), "displayName": "S1"}}),
    );
    let (_, v) = arm(&emu, Method::GET, &sub, None);
    assert_eq!(v["properties"]["scope"], "/products/gold");
    let missing = json!({"properties": {"scope": "/products/none", "displayName": "S2"}});
    assert_eq!(
        arm(
            &emu,
            Method::PUT,
            &format!("{svc}/subscriptions/s2"),
            Some(&missing)
        )
        .0,
        400
    );
    let (s, v) = arm(&emu, Method::DELETE, &prod, None);
    assert_eq!(s, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("deleteSubscriptions=true"));
    assert_eq!(
        arm(
            &emu,
            Method::DELETE,
            &format!("{prod}?deleteSubscriptions=true"),
            None
        )
        .0,
        200
    );
    assert_eq!(arm(&emu, Method::GET, &sub, None).0, 404);
    assert_eq!(
        arm(&emu, Method::GET, &format!("{prod}/policies/policy"), None).0,
        404
    );

    // Deleting an API deletes its operations, their policies and its product links.
    put(&emu, &prod, &body);
    put(&emu, &format!("{prod}/apis/orders"), &json!({}));
    assert_eq!(arm(&emu, Method::DELETE, &api, None).0, 200);
    put(
        &emu,
        &api,
        &json!({"properties": {"displayName": "Orders", "path": "orders"}}),
    );
    assert_eq!(
        arm(
            &emu,
            Method::GET,
            &format!("{api}/operations/get-order"),
            None
        )
        .0,
        404
    );
    let (_, v) = arm(&emu, Method::GET, &format!("{api}/operations"), None);
    assert_eq!(v["count"], 0);
    let (_, v) = arm(&emu, Method::GET, &format!("{prod}/apis"), None);
    assert_eq!(v["count"], 0, "{v}");
}

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
