//! Products, product APIs, product policies, operations and operation policies over ARM: their
//! shapes (ProductContract, ApiContract, OperationContract, PolicyContract), the save-time rules
//! at the product and operation scopes, product-scoped subscriptions and what deleting a
//! product or an API takes with it.

mod common;

use common::scopes::{appending, arm, op, policy, put};
use common::Emu;
use reqwest::Method;
use serde_json::json;

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
