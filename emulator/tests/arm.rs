//! ARM behaviours: LROs, ETags and If-Match, secrets, paging, errors, policies and fragments,
//! backends, APIs, and instance identities.

mod common;

use common::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

fn nv(display: &str, value: &str, secret: bool) -> Value {
    json!({"properties": {"displayName": display, "value": value, "secret": secret, "tags": ["t1"]}})
}

#[test]
fn named_value_lifecycle_with_lro_etag_and_secret() {
    let emu = Emu::start();
    emu.ctl(Method::POST, "lro", Some(&json!({"polls": 2})));
    let id = format!("{}/namedValues/vault-token", emu.apim());

    let resp = emu.arm_req(
        Method::PUT,
        &format!("{id}?{V}"),
        Some(&nv("vault-token", "s3cr3t", true)),
        &[],
    );
    assert_eq!(resp.status(), 201);
    let async_url = resp.headers()["azure-asyncoperation"]
        .to_str()
        .expect("hdr")
        .to_string();
    let location = resp.headers()["location"]
        .to_str()
        .expect("hdr")
        .to_string();
    assert!(resp.headers().get("etag").is_some());
    let body: Value = resp.json().expect("json");
    assert_eq!(body["properties"]["provisioningState"], "InProgress");
    assert!(
        body["properties"].get("value").is_none(),
        "secret value must not be echoed"
    );
    assert_eq!(body["type"], "Microsoft.ApiManagement/service/namedValues");

    // Two polls answer InProgress (one through Location, one through Azure-AsyncOperation), then Succeeded.
    let path = |u: &str| u.trim_start_matches(&emu.url).to_string();
    let (s, _, _) = emu.arm(Method::GET, &path(&location), None, &[]);
    assert_eq!(s, 202);
    let (s, _, v) = emu.arm(Method::GET, &path(&async_url), None, &[]);
    assert_eq!((s, v["status"].as_str()), (200, Some("InProgress")));
    let (s, _, v) = emu.arm(Method::GET, &path(&async_url), None, &[]);
    assert_eq!((s, v["status"].as_str()), (200, Some("Succeeded")));
    let (s, _, v) = emu.arm(Method::GET, &path(&location), None, &[]);
    assert_eq!(s, 200);
    assert_eq!(v["properties"]["displayName"], "vault-token");

    // GET never shows the secret; listValue does.
    let (s, etag1, v) = emu.arm(Method::GET, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 200);
    assert!(v["properties"].get("value").is_none());
    assert_eq!(v["properties"]["secret"], true);
    let etag1 = etag1.expect("etag");
    let (s, _, v) = emu.arm(Method::POST, &format!("{id}/listValue?{V}"), None, &[]);
    assert_eq!((s, v["value"].as_str()), (200, Some("s3cr3t")));

    // HEAD answers the ETag.
    let (s, etag_head, _) = emu.arm(Method::HEAD, &format!("{id}?{V}"), None, &[]);
    assert_eq!((s, etag_head.as_deref()), (200, Some(etag1.as_str())));

    // Synchronous mode: PUT of an existing entity answers 200 with Succeeded, and a new ETag.
    emu.ctl(Method::POST, "lro", Some(&json!({"polls": 0})));
    let resp = emu.arm_req(
        Method::PUT,
        &format!("{id}?{V}"),
        Some(&nv("vault-token", "other", true)),
        &[],
    );
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("azure-asyncoperation").is_none());
    let etag2 = resp.headers()["etag"].to_str().expect("etag").to_string();
    assert_ne!(etag1, etag2);
    let body: Value = resp.json().expect("json");
    assert_eq!(body["properties"]["provisioningState"], "Succeeded");

    // If-Match: stale → 412; missing on PATCH/DELETE → 400; current or * → accepted.
    let patch = json!({"properties": {"tags": ["t2"]}});
    let (s, _, v) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&patch),
        &[("If-Match", &etag1)],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (412, Some("PreconditionFailed"))
    );
    let (s, _, v) = emu.arm(Method::PATCH, &format!("{id}?{V}"), Some(&patch), &[]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}?{V}"),
        Some(&nv("vault-token", "x", true)),
        &[("If-Match", &etag1)],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (412, Some("PreconditionFailed"))
    );
    let (s, etag3, v) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&patch),
        &[("If-Match", &etag2)],
    );
    assert_eq!(s, 200);
    assert_eq!(v["properties"]["tags"], json!(["t2"]));
    let etag3 = etag3.expect("etag");
    emu.ctl(Method::POST, "lro", Some(&json!({"polls": 1})));
    let (s, _, _) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&patch),
        &[("If-Match", &format!("\"{etag3}\""))],
    );
    assert_eq!(s, 202);

    let (s, _, _) = emu.arm(Method::DELETE, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 400);
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}?{V}"),
        None,
        &[("If-Match", &etag1)],
    );
    assert_eq!(s, 412);
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 200);
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 204);
    let (s, _, v) = emu.arm(Method::GET, &format!("{id}?{V}"), None, &[]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let (s, _, _) = emu.arm(Method::HEAD, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 404);
}

#[test]
fn lists_page_with_next_link_and_filter() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    for i in 0..5 {
        let (s, _, _) = emu.arm(
            Method::PUT,
            &format!("{}/namedValues/nv{i}?{V}", emu.apim()),
            Some(&nv(&format!("name-{i}"), "v", false)),
            &[],
        );
        assert_eq!(s, 201);
    }
    let mut names = Vec::new();
    let mut next = Some(format!("{}/namedValues?{V}&$top=2", emu.apim()));
    let mut pages = 0;
    while let Some(url) = next {
        let (s, _, v) = emu.arm(Method::GET, url.trim_start_matches(&emu.url), None, &[]);
        assert_eq!(s, 200);
        assert_eq!(v["count"], 5);
        for item in v["value"].as_array().expect("value") {
            names.push(item["name"].as_str().expect("name").to_string());
            assert_eq!(
                item["properties"]["value"], "v",
                "non-secret values are listed"
            );
        }
        next = v["nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["nv0", "nv1", "nv2", "nv3", "nv4"]);

    let (s, _, v) = emu.arm(
        Method::GET,
        &format!(
            "{}/namedValues?{V}&$filter=properties/displayName eq 'name-3'",
            emu.apim()
        ),
        None,
        &[],
    );
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["value"][0]["name"], "nv3");
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!("{}/namedValues?{V}&$filter=bogus eq 'x'", emu.apim()),
        None,
        &[],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
}

#[test]
fn errors_follow_arm_conventions() {
    let emu = Emu::start();
    let id = emu.apim();
    let (s, _, v) = emu.arm(Method::GET, &id, None, &[]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!("{id}?api-version=2019-01-01"),
        None,
        &[],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("InvalidApiVersionParameter"))
    );

    // No token, a token for another audience, garbage: 401 with an ARM error body.
    let r = emu
        .http
        .get(format!("{}{id}?{V}", emu.url))
        .send()
        .expect("req");
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(
        r.json::<Value>().expect("json")["error"]["code"],
        "AuthenticationFailed"
    );
    let mi = emu.mi_token("api://vault", "");
    let r = emu
        .http
        .get(format!("{}{id}?{V}", emu.url))
        .bearer_auth(mi)
        .send()
        .expect("req");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().expect("json")["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
    let r = emu
        .http
        .get(format!("{}{id}?{V}", emu.url))
        .bearer_auth("a.b.c")
        .send()
        .expect("req");
    assert_eq!(r.status(), 401);
    // An MI token for ARM works (the provider may run with use_msi).
    let mi_arm = emu.mi_token("https://management.azure.com/", "");
    let r = emu
        .http
        .get(format!("{}{id}?{V}", emu.url))
        .bearer_auth(mi_arm)
        .send()
        .expect("req");
    assert_eq!(r.status(), 200);

    // Correlation and quota headers.
    let r = emu.arm_req(
        Method::GET,
        &format!("{id}?{V}"),
        None,
        &[("x-ms-correlation-request-id", "corr-123")],
    );
    assert_eq!(r.headers()["x-ms-correlation-request-id"], "corr-123");
    assert!(r.headers().get("x-ms-request-id").is_some());
    assert!(r
        .headers()
        .get("x-ms-ratelimit-remaining-subscription-reads")
        .is_some());

    // Missing parents and bad names.
    let (s, _, v) = emu.arm(Method::GET, &format!("{}x?{V}", id), None, &[]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    let sub = emu.s("subscription_id");
    let (s, _, v) = emu.arm(Method::GET, &format!("/subscriptions/{sub}/resourceGroups/nope/providers/Microsoft.ApiManagement/service/x?{V}"), None, &[]);
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/namedValues/bad*id?{V}"),
        Some(&nv("ok", "v", false)),
        &[],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
    assert!(v["error"]["details"][0]["target"].is_string());
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/namedValues/ok?{V}"),
        Some(&nv("bad name!", "v", false)),
        &[],
    );
    assert_eq!(
        (s, v["error"]["details"][0]["target"].as_str()),
        (400, Some("displayName"))
    );
    let r = emu.arm_req(
        Method::PUT,
        &format!("{id}/namedValues/ok?{V}"),
        None,
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status(), 400);
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/-bad-?{V}"),
        Some(&json!({"properties": {"value": "<fragment/>"}})),
        &[],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
}

#[test]
fn policies_and_fragments_are_normalised_and_checked() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let id = emu.apim();
    // A fragment in rawxml with C# expressions, referencing a named value by display name.
    let raw = r#"<fragment>
	<set-variable name="x" value="@(context.Variables.ContainsKey("a") && 1 < 2)" />
	<set-header name="X-Vault" exists-action="override"><value>{{vault-addr}}</value></set-header>
</fragment>"#;
    let frag = json!({"properties": {"format": "rawxml", "description": "d", "value": raw}});
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/vault-binding?{V}"),
        Some(&frag),
        &[],
    );
    assert_eq!(
        (
            s,
            v["error"]["details"][0]["message"]
                .as_str()
                .map(|m| m.contains("vault-addr"))
        ),
        (400, Some(true)),
        "{v}"
    );
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/namedValues/nv-addr?{V}"),
        Some(&nv("vault-addr", "https://vault", false)),
        &[],
    );
    assert_eq!(s, 201);
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/vault-binding?{V}"),
        Some(&frag),
        &[],
    );
    assert_eq!(s, 201, "{v}");
    assert!(
        !v["properties"]["value"]
            .as_str()
            .expect("value")
            .starts_with("<fragment>"),
        "PUT echoes the inner content"
    );
    let (_, _, v) = emu.arm(
        Method::GET,
        &format!("{id}/policyFragments/vault-binding?{V}&format=rawxml"),
        None,
        &[],
    );
    assert_eq!(
        v["properties"]["value"], raw,
        "rawxml round-trips byte for byte"
    );
    assert_eq!(v["properties"]["format"], "rawxml");
    let (_, _, v) = emu.arm(
        Method::GET,
        &format!("{id}/policyFragments/vault-binding?{V}"),
        None,
        &[],
    );
    let xml = v["properties"]["value"].as_str().expect("value");
    assert!(xml.contains("&quot;a&quot;) &amp;&amp; 1 &lt; 2"), "{xml}");
    assert_eq!(v["properties"]["format"], "xml");

    // Malformed XML and a wrong root are validation errors.
    let bad = json!({"properties": {"value": "<fragment><a></fragment>"}});
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/broken?{V}"),
        Some(&bad),
        &[],
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError"))
    );
    let bad = json!({"properties": {"value": "<policies/>"}});
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/broken?{V}"),
        Some(&bad),
        &[],
    );
    assert_eq!(s, 400);

    // An API with a policy that includes the fragment.
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/apis/orders/policies/policy?{V}"),
        Some(&json!({"properties": {"value": "<policies/>"}})),
        &[],
    );
    assert_eq!(
        (s, v["error"]["message"].as_str()),
        (404, Some("Api not found."))
    );
    let api = json!({"properties": {"displayName": "Orders", "path": "orders", "serviceUrl": "https://backend", "protocols": ["https"]}});
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{id}/apis/orders?{V}"),
        Some(&api),
        &[],
    );
    assert_eq!(s, 201, "{v}");
    let policy = "<policies><inbound><base /><include-fragment fragment-id=\"missing\" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/apis/orders/policies/policy?{V}"),
        Some(&json!({"properties": {"format": "xml", "value": policy}})),
        &[],
    );
    assert_eq!(s, 400, "including a missing fragment is refused");
    let policy = policy.replace("missing", "vault-binding");
    let (s, etag, v) = emu.arm(
        Method::PUT,
        &format!("{id}/apis/orders/policies/policy?{V}"),
        Some(&json!({"properties": {"format": "xml", "value": policy}})),
        &[],
    );
    assert_eq!(s, 201);
    assert!(etag.is_some());
    assert_eq!(
        v["properties"]["value"],
        "<policies>\r\n  <inbound>\r\n    <base />\r\n    <include-fragment fragment-id=\"vault-binding\" />\r\n  </inbound>\r\n  <backend>\r\n    <base />\r\n  </backend>\r\n  <outbound>\r\n    <base />\r\n  </outbound>\r\n  <on-error>\r\n    <base />\r\n  </on-error>\r\n</policies>"
    );
    assert_eq!(v["type"], "Microsoft.ApiManagement/service/apis/policies");

    let (s, _, v) = emu.arm(
        Method::POST,
        &format!("{id}/policyFragments/vault-binding/listReferences?{V}"),
        None,
        &[],
    );
    assert_eq!(s, 200);
    assert_eq!(
        v["value"][0]["type"],
        "Microsoft.ApiManagement/service/apis/policies"
    );
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}/policyFragments/vault-binding?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 400, "a referenced fragment cannot be deleted");

    // Service policy: rawxml in, xml by default out.
    let sp = json!({"properties": {"format": "rawxml", "value": "<policies><inbound><set-variable name=\"a\" value=\"@(\"x\" + \"y\")\" /></inbound><backend><forward-request /></backend><outbound /></policies>"}});
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/policies/policy?{V}"),
        Some(&sp),
        &[],
    );
    assert_eq!(s, 201);
    let (_, _, v) = emu.arm(Method::GET, &format!("{id}/policies/policy?{V}"), None, &[]);
    assert!(v["properties"]["value"]
        .as_str()
        .expect("v")
        .contains("@(&quot;x&quot; + &quot;y&quot;)"));
    let (_, _, v) = emu.arm(
        Method::GET,
        &format!("{id}/policies/policy?{V}&format=rawxml"),
        None,
        &[],
    );
    assert!(v["properties"]["value"]
        .as_str()
        .expect("v")
        .contains("value=\"@(\"x\" + \"y\")\""));
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/policies/other?{V}"),
        Some(&sp),
        &[],
    );
    assert_eq!(s, 400);

    // Deleting the API removes its policy; then the fragment can go.
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}/apis/orders?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 200);
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}/policyFragments/vault-binding?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 200);
}

#[test]
fn backends_crud() {
    let emu = Emu::start();
    let id = format!("{}/backends/vault", emu.apim());
    let b = json!({"properties": {"url": "https://vault:8200", "protocol": "http", "credentials": {"header": {"X-Vault-Token": ["{{vault-token}}"]}}}});
    let (s, etag, v) = emu.arm(Method::PUT, &format!("{id}?{V}"), Some(&b), &[]);
    assert_eq!(s, 201, "{v}");
    let (s, _, v) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&json!({"properties": {"description": "d"}})),
        &[("If-Match", &etag.expect("etag"))],
    );
    assert_eq!(s, 200);
    assert_eq!(v["properties"]["url"], "https://vault:8200");
    assert_eq!(v["properties"]["description"], "d");
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!("{}/backends?{V}", emu.apim()),
        None,
        &[],
    );
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)));
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}?{V}"),
        Some(&json!({"properties": {"protocol": "http"}})),
        &[],
    );
    assert_eq!(s, 400);
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 200);
}

#[test]
fn loggers_crud_with_write_only_credentials() {
    let emu = Emu::start();
    let id = format!("{}/loggers/vault-events", emu.apim());
    let b = json!({"properties": {"loggerType": "azureEventHub", "credentials": {"name": "hub", "connectionString": "Endpoint=sb://x/;SharedAccessKey=k3y"}}});
    let (s, etag, v) = emu.arm(Method::PUT, &format!("{id}?{V}"), Some(&b), &[]);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["type"], "Microsoft.ApiManagement/service/loggers");
    let (s, _, v) = emu.arm(Method::GET, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 200);
    assert_eq!(v["properties"]["loggerType"], "azureEventHub");
    assert_eq!(v["properties"]["isBuffered"], true);
    assert!(
        !v.to_string().contains("k3y"),
        "credentials are write-only: {v}"
    );
    assert_eq!(
        v["properties"]["credentials"]["connectionString"],
        "{{Logger-Credentials--vault-events-connectionString}}"
    );
    let inventory = emu.ctl(Method::GET, "inventory", None);
    assert!(!inventory.to_string().contains("k3y"), "{inventory}");
    let (s, _, v) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&json!({"properties": {"description": "d"}})),
        &[("If-Match", &etag.expect("etag"))],
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["properties"]["description"], "d");
    for (body, target) in [
        (
            json!({"properties": {"loggerType": "splunk"}}),
            "loggerType",
        ),
        (json!({"properties": {}}), "loggerType"),
        (
            json!({"properties": {"loggerType": "applicationInsights"}}),
            "credentials",
        ),
        (
            json!({"properties": {"loggerType": "azureEventHub", "credentials": {"name": "hub"}}}),
            "credentials",
        ),
    ] {
        let (s, _, v) = emu.arm(
            Method::PUT,
            &format!("{}/loggers/bad?{V}", emu.apim()),
            Some(&body),
            &[],
        );
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["error"]["details"][0]["target"], target, "{v}");
    }
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{}/loggers/metrics?{V}", emu.apim()),
        Some(&json!({"properties": {"loggerType": "azureMonitor"}})),
        &[],
    );
    assert_eq!(s, 201);
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!(
            "{}/loggers?{V}&$filter=properties/loggerType eq 'azureMonitor'",
            emu.apim()
        ),
        None,
        &[],
    );
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
    let (s, _, _) = emu.arm(
        Method::DELETE,
        &format!("{id}?{V}"),
        None,
        &[("If-Match", "*")],
    );
    assert_eq!(s, 200);
    let (s, _, _) = emu.arm(Method::GET, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 404);
}

#[test]
fn service_identity_changes_and_managed_identity_tokens() {
    let emu = Emu::start();
    let id = emu.apim();
    let (s, etag, v) = emu.arm(Method::GET, &format!("{id}?{V}"), None, &[]);
    assert_eq!(s, 200);
    assert_eq!(v["identity"]["type"], "SystemAssigned");
    assert_eq!(v["identity"]["principalId"], json!(emu.s("principal_id")));
    assert_eq!(v["identity"]["tenantId"], json!(emu.s("tenant_id")));
    assert_eq!(v["etag"], json!(etag.expect("etag").trim_matches('"')));

    // MI token claims.
    let t = emu.mi_token("api://vault", &format!("msi_res_id={id}"));
    let c = common::jwt_claims(&t);
    assert_eq!(c["aud"], "api://vault");
    assert_eq!(c["oid"], json!(emu.s("principal_id")));
    assert_eq!(c["sub"], c["oid"]);
    assert_eq!(c["tid"], json!(emu.s("tenant_id")));
    assert_eq!(
        c["iss"],
        json!(format!("{}/{}/", emu.url, emu.s("tenant_id")))
    );
    assert_eq!(c["ver"], "1.0");
    assert_eq!(
        c["xms_mirid"],
        json!(id.replace("/resourceGroups/", "/resourcegroups/"))
    );
    assert!(c["appid"].is_string() && c["exp"].is_i64() && c["iat"].is_i64() && c["nbf"].is_i64());

    // IMDS errors: no Metadata header; unknown identity.
    let r = emu
        .http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
            emu.url
        ))
        .send()
        .expect("req");
    assert_eq!(r.status(), 400);
    let r = emu
        .http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2019-08-01&resource=x&object_id=nope",
            emu.url
        ))
        .header("Metadata", "true")
        .send()
        .expect("req");
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().expect("json")["error_description"].is_string());

    // Turning the identity off and on again yields a new principal; user-assigned identities work.
    let uai = format!("/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/apim-uai", emu.s("subscription_id"), emu.s("resource_group"));
    let (s, _, v) = emu.arm(
        Method::PATCH,
        &format!("{id}?{V}"),
        Some(&json!({"identity": {"type": "None"}})),
        &[],
    );
    assert_eq!(s, 200);
    assert!(v.get("identity").is_none());
    let r = emu
        .http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x&msi_res_id={id}",
            emu.url
        ))
        .header("Metadata", "true")
        .send()
        .expect("req");
    assert_eq!(
        r.status(),
        400,
        "an instance without identity gets no token"
    );
    let body = json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai.clone(): {}}}});
    let (s, _, v) = emu.arm(Method::PATCH, &format!("{id}?{V}"), Some(&body), &[]);
    assert_eq!(s, 200);
    assert_ne!(v["identity"]["principalId"], json!(emu.s("principal_id")));
    let u = &v["identity"]["userAssignedIdentities"][&uai];
    let (upid, ucid) = (
        u["principalId"].as_str().expect("pid"),
        u["clientId"].as_str().expect("cid"),
    );
    let t = emu.mi_token("api://vault", &format!("client_id={ucid}"));
    let c = common::jwt_claims(&t);
    assert_eq!(c["oid"], upid);
    assert_eq!(c["appid"], ucid);
    assert!(c["xms_mirid"]
        .as_str()
        .expect("mirid")
        .ends_with("/userAssignedIdentities/apim-uai"));
    let t = emu.mi_token("api://vault", &format!("object_id={upid}"));
    assert_eq!(common::jwt_claims(&t)["oid"], upid);

    // Listing by resource group and by subscription.
    let sub = emu.s("subscription_id");
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!("/subscriptions/{sub}/providers/Microsoft.ApiManagement/service?{V}"),
        None,
        &[],
    );
    assert_eq!((s, v["value"][0]["id"].as_str()), (200, Some(id.as_str())));
    let (s, _, v) = emu.arm(
        Method::GET,
        &format!(
            "/subscriptions/{sub}/resourceGroups/{}/providers/Microsoft.ApiManagement/service?{V}",
            emu.s("resource_group")
        ),
        None,
        &[],
    );
    assert_eq!((s, v["value"].as_array().map(Vec::len)), (200, Some(1)));

    // Inventory lists every object by id.
    let inv = emu.ctl(Method::GET, "inventory", None);
    assert_eq!(inv[&id]["type"], "Microsoft.ApiManagement/service");
    assert_eq!(inv[&uai]["properties"]["principalId"], upid);

    // A new instance via PUT; DELETE removes it.
    let new_id = format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ApiManagement/service/apim-two",
        emu.s("subscription_id"),
        emu.s("resource_group")
    );
    let body = json!({"location": "West Europe", "sku": {"name": "Developer", "capacity": 1}, "properties": {"publisherEmail": "a@b.c", "publisherName": "P"}, "identity": {"type": "SystemAssigned"}});
    let (s, _, v) = emu.arm(Method::PUT, &format!("{new_id}?{V}"), Some(&body), &[]);
    assert_eq!(s, 201, "{v}");
    assert!(v["identity"]["principalId"].is_string());
    let (s, _, _) = emu.arm(Method::DELETE, &format!("{new_id}?{V}"), None, &[]);
    assert_eq!(s, 200);
    let (s, _, _) = emu.arm(Method::GET, &format!("{new_id}?{V}"), None, &[]);
    assert_eq!(s, 404);
}

#[test]
fn odd_requests_get_answers_not_panics() {
    let emu = Emu::start();
    let id = emu.apim();
    let sub = emu.s("subscription_id");
    let paths = [
        format!("/subscriptions?{V}"),
        format!("/subscriptions/{sub}?{V}"),
        format!("/subscriptions/{sub}/resourceGroups?{V}"),
        format!("/subscriptions/{sub}/resourceGroups/rg-apim-emulator/providers?{V}"),
        format!("/subscriptions/{sub}/resourceGroups/rg-apim-emulator/providers/Microsoft.ApiManagement/service?{V}"),
        format!("{id}/namedValues/%C3%A9t%C3%A9?{V}"),
        format!("{id}/namedValues/a/b/c/d?{V}"),
        format!("{id}/apis/x/policies/policy/extra?{V}"),
        format!("{id}/tenant/operationResults/nope?{V}"),
        format!("{id}/unknown?{V}"),
        format!("{id}/namedValues?{V}&$top=abc"),
        format!("{id}/namedValues?{V}&$filter=(((("),
        format!("{id}/policyFragments/x?{V}&format=bogus"),
        "/nothing/here".to_string(),
        "/_emulator/nope".to_string(),
        "/metadata/identity/oauth2/token".to_string(),
    ];
    let bodies = [
        None,
        Some(json!("string")),
        Some(json!({"properties": 5})),
        Some(json!({"properties": {"value": "<\u{e9}<"}})),
    ];
    for p in &paths {
        for m in [
            Method::GET,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::POST,
        ] {
            for b in &bodies {
                let r = emu.arm_req(m.clone(), p, b.as_ref(), &[("If-Match", "*")]);
                assert!(r.status().as_u16() < 500, "{m} {p}: {}", r.status());
            }
        }
    }
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/policyFragments/f?{V}"),
        Some(
            &json!({"properties": {"format": "rawxml", "value": "<fragment><a b=\"@(\u{e9}\"/>"}}),
        ),
        &[],
    );
    assert_eq!(s, 400);
    let (s, _, _) = emu.arm(
        Method::PUT,
        &format!("{id}/policies/policy?{V}"),
        Some(&json!({"properties": {"value": "<policies>\u{e9}<a></policies>"}})),
        &[],
    );
    assert_eq!(s, 400);
}
