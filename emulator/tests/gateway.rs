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

    // HTTPS: the gateway's TLS listener, and an https backend trusted through the emulator's CA
    // (the emulator's own control plane serves as one).
    put(
        &emu,
        &format!("{svc}/apis/self"),
        &json!({"properties": {"displayName": "Self", "path": "self", "serviceUrl": format!("{}/_emulator", emu.url), "subscriptionRequired": false}}),
    );
    let (s, _, body) = get(
        &emu,
        &format!("{}/self/info", emu.s("gateway_https_url")),
        &[],
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(body_json(&body)["gateway_url"], json!(gw));

    // Managed identity failures: an identity the instance does not have, and the identity
    // endpoint failing (fault rules apply to it as to IMDS); ignore-error goes on.
    policy(
        &emu,
        &format!("{svc}/apis/self"),
        r#"<policies><inbound><base /><authentication-managed-identity resource="api://x" client-id="00000000-0000-0000-0000-000000000000" /></inbound><backend><base /></backend><outbound><base /></outbound></policies>"#,
    );
    let (s, _, _) = get(&emu, &format!("{gw}/self/info"), &[]);
    assert_eq!(s, 500);
    policy(
        &emu,
        &format!("{svc}/apis/self"),
        r#"<policies><inbound><base /><authentication-managed-identity resource="api://y" output-token-variable-name="t" ignore-error="true" /><set-header name="X-Has-Token" exists-action="override"><value>@(context.Variables.ContainsKey("t").ToString())</value></set-header></inbound><backend><base /></backend><outbound><set-header name="X-Had" exists-action="override"><value>@(context.Request.Headers.GetValueOrDefault("X-Has-Token", "?"))</value></set-header></outbound></policies>"#,
    );
    emu.ctl(
        Method::POST,
        "faults",
        Some(&json!({"path": "/metadata/identity/*", "status": 500})),
    );
    let (s, hs, _) = get(&emu, &format!("{gw}/self/info"), &[]);
    assert_eq!((s, header(&hs, "x-had")), (200, Some("False")));
    emu.ctl(Method::DELETE, "faults", None);
    let (_, hs, _) = get(&emu, &format!("{gw}/self/info"), &[]);
    assert_eq!(header(&hs, "x-had"), Some("True"));
    let log = emu.ctl(Method::GET, "gateway/log", None);
    let reasons: Vec<&Value> = log
        .as_array()
        .expect("log")
        .iter()
        .map(|e| &e["error"]["reason"])
        .collect();
    assert!(
        reasons.contains(&&json!("TokenAcquisitionFailure")),
        "{log}"
    );

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

/// The binding's shape, written for this test: managed identity → Vault login → read → cache →
/// header, with a 502 when Vault cannot be used.
const BINDING_POLICY: &str = r#"<policies>
  <inbound>
    <base />
    <cache-lookup-value key="vault-app-secret" variable-name="secret" caching-type="internal" />
    <choose>
      <when condition="@(!context.Variables.ContainsKey("secret"))">
        <authentication-managed-identity resource="api://vault-apim" output-token-variable-name="msi" />
        <send-request mode="new" response-variable-name="login" timeout="5" ignore-error="true">
          <set-url>{{vault-addr}}/v1/auth/jwt/login</set-url>
          <set-method>POST</set-method>
          <set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>
          <set-body>@(JsonConvert.SerializeObject(new JObject(new JProperty("role", "{{vault-role}}"), new JProperty("jwt", (string)context.Variables["msi"]))))</set-body>
        </send-request>
        <choose>
          <when condition="@(context.Variables["login"] == null || ((IResponse)context.Variables["login"]).StatusCode != 200)">
            <return-response><set-status code="502" reason="Bad Gateway" /></return-response>
          </when>
        </choose>
        <send-request mode="new" response-variable-name="read" timeout="5" ignore-error="true">
          <set-url>{{vault-addr}}/v1/secret/data/app</set-url>
          <set-method>GET</set-method>
          <set-header name="X-Vault-Token" exists-action="override">
            <value>@(((IResponse)context.Variables["login"]).Body.As<JObject>()["auth"]["client_token"].ToString())</value>
          </set-header>
        </send-request>
        <choose>
          <when condition="@(context.Variables["read"] == null || ((IResponse)context.Variables["read"]).StatusCode != 200)">
            <return-response><set-status code="502" reason="Bad Gateway" /></return-response>
          </when>
        </choose>
        <set-variable name="secret" value="@(((IResponse)context.Variables["read"]).Body.As<JObject>(preserveContent: true)["data"]["data"].Value<string>("api_key"))" />
        <cache-store-value key="vault-app-secret" value="@((string)context.Variables["secret"])" duration="{{cache-seconds}}" caching-type="internal" />
      </when>
    </choose>
    <set-header name="X-Api-Key" exists-action="override"><value>@((string)context.Variables["secret"])</value></set-header>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
</policies>"#;

fn logins(emu: &Emu) -> usize {
    let log = emu.ctl(Method::GET, "gateway/log", None);
    log.as_array()
        .expect("log")
        .iter()
        .flat_map(|e| e["steps"].as_array().cloned().unwrap_or_default())
        .filter(|s| {
            s["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("/v1/auth/jwt/login"))
        })
        .count()
}

fn token_count(bao: &common::bao::Bao) -> usize {
    let list = Method::from_bytes(b"LIST").expect("LIST");
    let (s, v) = bao.call(list, "auth/token/accessors", &json!({}), Some("root"));
    assert_eq!(s, 200, "{v}");
    v["data"]["keys"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_vault_secret_reaches_the_backend_through_openbao() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let mut bao = common::bao::Bao::start();
    let echo = Echo::start();
    let svc = emu.apim();
    let gw = emu.s("gateway_url");
    let issuer = format!("{}/{}/", emu.url, emu.s("tenant_id"));
    let ca = std::fs::read_to_string(emu.s("ca_file")).expect("ca");

    // OpenBao trusts the emulator's issuer; `apim` may read the secret, `noread` may not.
    bao.write("sys/auth/jwt", &json!({"type": "jwt"}));
    bao.write(
        "auth/jwt/config",
        &json!({"oidc_discovery_url": issuer, "oidc_discovery_ca_pem": ca, "bound_issuer": issuer}),
    );
    bao.write(
        "sys/policies/acl/app-read",
        &json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }"}),
    );
    for (role, policies) in [
        ("apim", json!(["app-read"])),
        ("noread", json!(["default"])),
    ] {
        bao.write(&format!("auth/jwt/role/{role}"), &json!({
            "role_type": "jwt", "bound_audiences": ["api://vault-apim"], "user_claim": "oid",
            "bound_claims": {"oid": emu.s("principal_id")}, "token_policies": policies, "token_ttl": "15m",
        }));
    }
    bao.write("secret/data/app", &json!({"data": {"api_key": "s3cret-1"}}));

    for (id, value) in [
        ("vault-addr", bao.addr.as_str()),
        ("vault-role", "apim"),
        ("cache-seconds", "3"),
    ] {
        put(
            &emu,
            &format!("{svc}/namedValues/{id}"),
            &json!({"properties": {"displayName": id, "value": value}}),
        );
    }
    put(
        &emu,
        &format!("{svc}/apis/app"),
        &json!({"properties": {"displayName": "App", "path": "app", "serviceUrl": echo.url, "subscriptionRequired": false}}),
    );
    policy(&emu, &format!("{svc}/apis/app"), BINDING_POLICY);

    // N requests inside the cache window: the secret arrives each time, one Vault login.
    let tokens_before = token_count(&bao);
    for _ in 0..5 {
        let (s, _, body) = get(&emu, &format!("{gw}/app/orders"), &[]);
        assert_eq!(s, 200, "{body}");
        assert_eq!(echo.last().header("x-api-key"), Some("s3cret-1"));
    }
    assert_eq!(logins(&emu), 1, "one login for five requests");
    assert_eq!(
        token_count(&bao),
        tokens_before + 1,
        "OpenBao issued one token"
    );

    // A rotated secret arrives once the cached one expires.
    bao.write("secret/data/app", &json!({"data": {"api_key": "s3cret-2"}}));
    get(&emu, &format!("{gw}/app/orders"), &[]);
    assert_eq!(
        echo.last().header("x-api-key"),
        Some("s3cret-1"),
        "still cached"
    );
    std::thread::sleep(std::time::Duration::from_millis(3_300));
    get(&emu, &format!("{gw}/app/orders"), &[]);
    assert_eq!(
        echo.last().header("x-api-key"),
        Some("s3cret-2"),
        "rotated after expiry"
    );
    assert_eq!(logins(&emu), 2);

    // A role without `read`: 502, and the secret is nowhere (answer, log, backend).
    put(
        &emu,
        &format!("{svc}/namedValues/vault-role"),
        &json!({"properties": {"displayName": "vault-role", "value": "noread"}}),
    );
    emu.ctl(Method::DELETE, "gateway/cache", None);
    let before = echo.seen().len();
    let (s, _, body) = get(&emu, &format!("{gw}/app/orders"), &[]);
    assert_eq!(s, 502, "{body}");
    assert!(!body.contains("s3cret"), "{body}");
    assert_eq!(echo.seen().len(), before, "nothing was forwarded");
    let log = emu.ctl(Method::GET, "gateway/log", None).to_string();
    assert!(!log.contains("s3cret"), "no secret in the log");
    assert!(
        log.contains("/v1/secret/data/app -> 403"),
        "the read was refused: {log}"
    );
    assert!(!log.contains("eyJ"), "no token in the log");

    // OpenBao stopped: the configured 502, within the send-request timeout.
    put(
        &emu,
        &format!("{svc}/namedValues/vault-role"),
        &json!({"properties": {"displayName": "vault-role", "value": "apim"}}),
    );
    emu.ctl(Method::DELETE, "gateway/cache", None);
    bao.stop();
    let started = std::time::Instant::now();
    let (s, _, body) = get(&emu, &format!("{gw}/app/orders"), &[]);
    assert_eq!(s, 502, "{body}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let log = emu.ctl(Method::GET, "gateway/log", None).to_string();
    assert!(
        log.contains("failed (BackendConnectionFailure); ignored"),
        "{log}"
    );
}

/// `trace`, `emit-metric` and `log-to-eventhub` leave their evaluated content in the telemetry
/// (and only their shape in the request log).
#[test]
fn trace_metric_and_event_contents_reach_the_telemetry() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let echo = Echo::start();
    let svc = emu.apim();
    put(
        &emu,
        &format!("{svc}/apis/orders"),
        &json!({"properties": {"displayName": "Orders", "path": "orders", "serviceUrl": echo.url, "subscriptionRequired": false}}),
    );
    put(
        &emu,
        &format!("{svc}/loggers/hub"),
        &json!({"properties": {"loggerType": "azureEventHub", "credentials": {"name": "h", "connectionString": "c"}}}),
    );
    policy(
        &emu,
        &format!("{svc}/apis/orders"),
        r#"<policies>
  <inbound>
    <base />
    <trace source="probe" severity="error">
      <message>@("path " + context.Request.Url.Path)</message>
      <metadata name="api" value="@(context.Api.Name)" />
      <metadata name="fixed" value="yes" />
    </trace>
    <emit-metric name="hits" namespace="probes" value="@(2 + 1)">
      <dimension name="api" value="@(context.Api.Name)" />
    </emit-metric>
    <log-to-eventhub logger-id="hub">@("event for " + context.Api.Name)</log-to-eventhub>
  </inbound>
  <backend><forward-request timeout="10" /></backend>
</policies>"#,
    );
    emu.ctl(Method::DELETE, "gateway/telemetry", None);
    let (s, _, body) = get(&emu, &format!("{}/orders/x", emu.s("gateway_url")), &[]);
    assert_eq!(s, 200, "{body}");
    let t = emu.ctl(Method::GET, "gateway/telemetry", None);
    let all = t.as_array().expect("an array");
    assert_eq!(all.len(), 3, "{t}");
    assert_eq!(all[0]["kind"], "trace");
    assert_eq!(all[0]["api"], "orders");
    assert_eq!(all[0]["source"], "probe");
    assert_eq!(all[0]["severity"], "error");
    assert_eq!(all[0]["message"], "path /x");
    assert_eq!(all[0]["metadata"], json!({"api": "Orders", "fixed": "yes"}));
    assert_eq!(all[1]["kind"], "metric");
    assert_eq!(all[1]["name"], "hits");
    assert_eq!(all[1]["namespace"], "probes");
    assert_eq!(all[1]["value"], "3");
    assert_eq!(all[1]["dimensions"], json!({"api": "Orders"}));
    assert_eq!(all[2]["kind"], "event");
    assert_eq!(all[2]["logger_id"], "hub");
    assert_eq!(all[2]["message"], "event for Orders");
    let log = emu.ctl(Method::GET, "gateway/log", None).to_string();
    assert!(
        !log.contains("path /x\"") && !log.contains("event for Orders"),
        "{log}"
    );
    emu.ctl(Method::DELETE, "gateway/telemetry", None);
    assert_eq!(emu.ctl(Method::GET, "gateway/telemetry", None), json!([]));
}

#[test]
fn retry_runs_its_children_again_while_its_condition_holds() {
    let emu = Emu::start();
    let echo = Echo::start();
    let svc = emu.apim();
    let gw = emu.s("gateway_url");
    put(
        &emu,
        &format!("{svc}/apis/open"),
        &json!({"properties": {"displayName": "Open", "path": "open", "serviceUrl": echo.url, "subscriptionRequired": false}}),
    );
    // The children run once, then again while the condition holds: three runs, the first
    // retry at once, the second after `interval`. A `cache-store-value` written once in the
    // section runs on each pass.
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        r#"<policies>
  <inbound>
    <base />
    <set-variable name="n" value="@(0)" />
    <retry condition="@((int)context.Variables["n"] < 3)" count="5" interval="1" first-fast-retry="true">
      <set-variable name="n" value="@((int)context.Variables["n"] + 1)" />
      <cache-store-value key="@("pass-" + context.Variables["n"])" value="stored" duration="60" caching-type="internal" />
    </retry>
    <cache-lookup-value key="pass-2" variable-name="second" caching-type="internal" />
    <set-header name="X-Runs" exists-action="override"><value>@(context.Variables["n"] + "," + context.Variables.GetValueOrDefault<string>("second", "none"))</value></set-header>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
</policies>"#,
    );
    let started = std::time::Instant::now();
    let (s, _, body) = get(&emu, &format!("{gw}/open/x"), &[]);
    let took = started.elapsed();
    assert_eq!(s, 200, "{body}");
    assert_eq!(echo.last().header("x-runs"), Some("3,stored"));
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(5),
        "one wait of 1 s (the first retry is at once): {took:?}"
    );
    // `count` bounds the retries: a condition that stays true runs 1 + count times.
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        r#"<policies>
  <inbound>
    <base />
    <set-variable name="n" value="@(0)" />
    <retry condition="true" count="1" interval="1" first-fast-retry="true">
      <set-variable name="n" value="@((int)context.Variables["n"] + 1)" />
    </retry>
    <set-header name="X-Runs" exists-action="override"><value>@(context.Variables["n"].ToString())</value></set-header>
  </inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
</policies>"#,
    );
    let (s, _, body) = get(&emu, &format!("{gw}/open/x"), &[]);
    assert_eq!(s, 200, "{body}");
    assert_eq!(echo.last().header("x-runs"), Some("2"));
    // A count outside 1 to 50 fails the request when it runs.
    policy(
        &emu,
        &format!("{svc}/apis/open"),
        "<policies><inbound><base /><retry condition=\"true\" count=\"@(51)\" interval=\"1\"><set-variable name=\"a\" value=\"b\" /></retry></inbound><backend><base /></backend><outbound><base /></outbound></policies>",
    );
    let (s, _, body) = get(&emu, &format!("{gw}/open/x"), &[]);
    assert_eq!(s, 500, "count 51: {body}");
}
