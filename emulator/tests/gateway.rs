//! The gateway end to end: requests to `{gateway_url}/{api path}/...` matched by path, checked
//! against subscriptions, run through the composed policies and forwarded to a loopback
//! backend; run-time failures through on-error; the request log.

mod common;

use common::echo::{body_json, Echo};
use common::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

fn put(emu: &Emu, path: &str, body: &Value) {
    let (s, _, v) = emu.arm(Method::PUT, &format!("{path}?{V}"), Some(body), &[]);
    assert!(s == 200 || s == 201, "PUT {path}: {s} {v}");
}

fn policy(emu: &Emu, path: &str, xml: &str) {
    put(
        emu,
        &format!("{path}/policies/policy"),
        &json!({"properties": {"format": "rawxml", "value": xml}}),
    );
}

fn get(emu: &Emu, url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut r = emu.http.get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().expect("gateway request");
    let status = resp.status().as_u16();
    let hs = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    (status, hs, resp.text().unwrap_or_default())
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn requests_run_through_the_policies_to_the_backend() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let echo = Echo::start();
    let svc = emu.apim();
    let gw = emu.s("gateway_url");
    assert!(gw.starts_with("http://127.0.0.1:"), "{}", emu.info);
    assert!(emu.s("gateway_https_url").starts_with("https://127.0.0.1:"));

    put(
        &emu,
        &format!("{svc}/apis/orders"),
        &json!({"properties": {"displayName": "Orders", "path": "orders", "serviceUrl": format!("{}/base", echo.url)}}),
    );
    put(
        &emu,
        &format!("{svc}/apis/open"),
        &json!({"properties": {"displayName": "Open", "path": "open/v1", "serviceUrl": echo.url, "subscriptionRequired": false}}),
    );
    put(
        &emu,
        &format!("{svc}/namedValues/greeting"),
        &json!({"properties": {"displayName": "greeting", "value": "hello"}}),
    );
    policy(&emu, &svc, "<policies><inbound><set-header name=\"X-Global\" exists-action=\"override\"><value>g</value></set-header></inbound><backend><forward-request timeout=\"10\" /></backend><outbound><set-header name=\"X-Out\" exists-action=\"override\"><value>@(context.Response.StatusCode.ToString())</value></set-header></outbound></policies>");
    policy(
        &emu,
        &format!("{svc}/apis/orders"),
        r#"<policies>
  <inbound>
    <base />
    <set-variable name="path" value="@(context.Request.Url.Path)" />
    <set-header name="X-Api" exists-action="override"><value>@("{{greeting}}:" + (string)context.Variables["path"] + ":" + context.Request.Url.Query.GetValueOrDefault("q", "-"))</value></set-header>
    <set-query-parameter name="added" exists-action="override"><value>1</value></set-query-parameter>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
</policies>"#,
    );

    // Subscriptions: none, a wrong key, then an active subscription's key.
    let (s, hs, body) = get(&emu, &format!("{gw}/orders/42?q=x"), &[]);
    assert_eq!(s, 401, "{body}");
    assert!(
        body_json(&body)["message"]
            .as_str()
            .expect("message")
            .contains("missing subscription key"),
        "{body}"
    );
    assert!(
        header(&hs, "www-authenticate").is_some_and(|h| h.contains("Ocp-Apim-Subscription-Key"))
    );
    let (s, _, body) = get(
        &emu,
        &format!("{gw}/orders/42"),
        &[("Ocp-Apim-Subscription-Key", "nope")],
    );
    assert_eq!(s, 401);
    assert!(body.contains("invalid subscription key"), "{body}");
    put(
        &emu,
        &format!("{svc}/subscriptions/pending"),
        &json!({"properties": {"scope": "/apis", "displayName": "Pending"}}),
    );
    put(
        &emu,
        &format!("{svc}/subscriptions/team-a"),
        &json!({"properties": {"scope": "/apis/orders", "displayName": "Team A", "state": "active"}}),
    );
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!("{svc}/subscriptions/team-a?{V}"),
        None,
        &[],
    );
    assert_eq!(s, 200);
    assert!(
        v["properties"].get("primaryKey").is_none(),
        "keys are not shown by GET: {v}"
    );
    let (_, _, pending) = emu.arm(
        Method::POST,
        &format!("{svc}/subscriptions/pending/listSecrets?{V}"),
        None,
        &[],
    );
    let (s, _, _) = get(
        &emu,
        &format!("{gw}/orders/42"),
        &[(
            "Ocp-Apim-Subscription-Key",
            pending["primaryKey"].as_str().expect("key"),
        )],
    );
    assert_eq!(
        s, 401,
        "a submitted (not active) subscription opens nothing"
    );
    let (_, _, keys) = emu.arm(
        Method::POST,
        &format!("{svc}/subscriptions/team-a/listSecrets?{V}"),
        None,
        &[],
    );
    let key = keys["secondaryKey"]
        .as_str()
        .expect("secondaryKey")
        .to_string();

    let (s, hs, body) = get(
        &emu,
        &format!("{gw}/orders/42?q=x&subscription-key={key}"),
        &[],
    );
    assert_eq!(s, 200, "{body}");
    let seen = echo.last();
    assert_eq!(seen.method, "GET");
    assert!(seen.target.starts_with("/base/42?"), "{}", seen.target);
    assert!(
        seen.target.contains("q=x")
            && seen.target.contains("added=1")
            && !seen.target.contains("subscription-key"),
        "{}",
        seen.target
    );
    assert_eq!(seen.header("x-global"), Some("g"));
    // context.Request.Url is the URL the request goes to: the backend's (OriginalUrl is the
    // gateway's).
    assert_eq!(
        seen.header("x-api"),
        Some("hello:/base/42:x"),
        "named value substituted, expressions evaluated"
    );
    assert_eq!(header(&hs, "x-out"), Some("200"));
    assert_eq!(header(&hs, "x-backend"), Some("echo"));
    let (s, _, _) = get(
        &emu,
        &format!("{gw}/orders/1"),
        &[("Ocp-Apim-Subscription-Key", &key)],
    );
    assert_eq!(s, 200);
    assert!(
        echo.last().header("ocp-apim-subscription-key").is_none(),
        "the key is not forwarded"
    );

    // subscriptionRequired: false needs no key; the path may have several segments.
    let (s, _, _) = get(&emu, &format!("{gw}/open/v1/x"), &[]);
    assert_eq!(s, 200);
    assert_eq!(echo.last().target, "/x");
    let (s, _, body) = get(&emu, &format!("{gw}/nothing-here"), &[]);
    assert_eq!(
        (s, body_json(&body)["statusCode"].clone()),
        (404, json!(404))
    );

    // A run-time failure without on-error: 500; with on-error: what on-error makes of it.
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        r#"<policies><inbound><base /><set-variable name="n" value="@(((string)context.Variables.GetValueOrDefault("missing")).Length)" /></inbound><backend><base /></backend><outbound><base /></outbound></policies>"#,
    );
    let before = echo.seen().len();
    let (s, _, body) = get(&emu, &format!("{gw}/open/v1/x"), &[]);
    assert_eq!(
        (s, body_json(&body)["message"].clone()),
        (500, json!("Internal server error"))
    );
    assert_eq!(echo.seen().len(), before, "nothing was forwarded");
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        r#"<policies><inbound><base /><set-variable name="n" value="@(((string)context.Variables.GetValueOrDefault("missing")).Length)" id="len" /></inbound><backend><base /></backend><outbound><base /></outbound>
  <on-error>
    <return-response>
      <set-status code="503" reason="Unavailable" />
      <set-header name="X-Error" exists-action="override"><value>@(context.LastError.Source + "|" + context.LastError.Reason + "|" + context.LastError.PolicyId + "|" + context.LastError.Section + "|" + context.LastError.Scope)</value></set-header>
    </return-response>
  </on-error>
</policies>"#,
    );
    let (s, hs, _) = get(&emu, &format!("{gw}/open/v1/x"), &[]);
    assert_eq!(s, 503);
    assert_eq!(
        header(&hs, "x-error"),
        Some("set-variable|ExpressionValueEvaluationFailure|len|inbound|api")
    );

    // return-response ends the pipeline before the backend.
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        r#"<policies><inbound><base /><return-response><set-status code="418" reason="Teapot" /><set-body>@(new JObject(new JProperty("ok", true)).ToString())</set-body></return-response></inbound><backend><base /></backend><outbound><base /></outbound></policies>"#,
    );
    let before = echo.seen().len();
    let (s, _, body) = get(&emu, &format!("{gw}/open/v1/x"), &[]);
    assert_eq!((s, body_json(&body)), (418, json!({"ok": true})));
    assert_eq!(echo.seen().len(), before);

    // The log: API, status and steps, never the key or header values.
    let log = emu.ctl(Method::GET, "gateway/log", None);
    let text = log.to_string();
    assert!(!text.contains(&key), "the subscription key is not logged");
    assert!(
        !text.contains("hello:/base"),
        "header values are not logged"
    );
    let entries = log.as_array().expect("entries");
    let ok = entries
        .iter()
        .find(|e| e["api"] == "orders" && e["status"] == 200)
        .expect("an orders entry");
    assert_eq!(ok["subscription"], "team-a");
    let steps: Vec<&str> = ok["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["policy"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        steps,
        [
            "set-header",
            "set-variable",
            "set-header",
            "set-query-parameter",
            "forward-request",
            "set-header"
        ]
    );
    let failed = entries
        .iter()
        .find(|e| e["status"] == 503)
        .expect("the 503");
    assert_eq!(
        failed["error"]["reason"],
        "ExpressionValueEvaluationFailure"
    );
    emu.ctl(Method::DELETE, "gateway/log", None);
    assert_eq!(emu.ctl(Method::GET, "gateway/log", None), json!([]));
}
