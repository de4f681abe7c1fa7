//! ARM refuses at save time, with APIM's error shape, what a real instance refuses: each
//! documented rule of the gateway's table, the per-instance limits by SKU, and expressions
//! outside the allow-list or the evaluator; `POST /_emulator/rules {"enforce": false}` relaxes
//! exactly these refusals.

mod common;

use common::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

fn put(emu: &Emu, path: &str, body: &Value) -> (u16, Value) {
    let (s, _, v) = emu.arm(Method::PUT, &format!("{path}?{V}"), Some(body), &[]);
    (s, v)
}

fn fragment(emu: &Emu, svc: &str, id: &str, xml: &str) -> (u16, Value) {
    put(
        emu,
        &format!("{svc}/policyFragments/{id}"),
        &json!({"properties": {"format": "rawxml", "value": xml}}),
    )
}

fn api_policy(emu: &Emu, svc: &str, xml: &str) -> (u16, Value) {
    put(
        emu,
        &format!("{svc}/apis/echo/policies/policy"),
        &json!({"properties": {"format": "rawxml", "value": xml}}),
    )
}

/// Asserts APIM's ValidationError shape with a detail whose message contains `want`.
fn refused(r: (u16, Value), want: &str) -> Value {
    let (s, v) = r;
    assert_eq!(s, 400, "expected a refusal containing {want:?}: {v}");
    assert_eq!(v["error"]["code"], "ValidationError", "{v}");
    assert_eq!(
        v["error"]["message"], "One or more fields contain incorrect values:",
        "{v}"
    );
    let details = v["error"]["details"].as_array().expect("details");
    assert!(
        details.iter().any(|d| d["code"] == "ValidationError"
            && d["message"].as_str().is_some_and(|m| m.contains(want))),
        "no detail contains {want:?}: {v}"
    );
    v
}

fn created(r: (u16, Value)) {
    assert!(
        r.0 == 200 || r.0 == 201,
        "expected success: {} {}",
        r.0,
        r.1
    );
}

fn instance(emu: &Emu, name: &str, sku: &str) -> String {
    let rg = emu
        .apim()
        .split("/providers/")
        .next()
        .expect("rg")
        .to_string();
    let id = format!("{rg}/providers/Microsoft.ApiManagement/service/{name}");
    created(put(
        emu,
        &id,
        &json!({"location": "westeurope", "sku": {"name": sku, "capacity": 1}, "properties": {"publisherEmail": "a@b.c", "publisherName": "p"}}),
    ));
    id
}

fn policies(inbound: &str) -> String {
    format!("<policies><inbound><base />{inbound}</inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
}

#[test]
fn policy_documents_are_judged_by_the_documented_rules() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let svc = emu.apim();
    created(put(
        &emu,
        &format!("{svc}/apis/echo"),
        &json!({"properties": {"displayName": "Echo", "path": "echo", "serviceUrl": "http://127.0.0.1:9"}}),
    ));

    // A cache policy in a fragment (cache-lookup-value is not supported within fragments).
    let v = refused(
        fragment(
            &emu,
            &svc,
            "f-cache",
            "<fragment><cache-lookup-value key=\"k\" variable-name=\"v\" /></fragment>",
        ),
        "not allowed in a policy fragment",
    );
    let detail = &v["error"]["details"][0];
    assert_eq!(detail["target"], "cache-lookup-value");
    assert!(
        detail["message"]
            .as_str()
            .expect("m")
            .starts_with("Error in element 'cache-lookup-value' on line 1, column 11:"),
        "{v}"
    );
    // <base/>, sections and nested fragments are not fragment content either.
    refused(
        fragment(&emu, &svc, "f-base", "<fragment><base /></fragment>"),
        "not allowed in a policy fragment",
    );
    refused(
        fragment(&emu, &svc, "f-section", "<fragment><inbound /></fragment>"),
        "section",
    );
    // Two cache-lookup-value in one section.
    refused(
        api_policy(&emu, &svc, &policies("<cache-lookup-value key=\"a\" variable-name=\"a\" /><choose><when condition=\"@(true)\"><cache-lookup-value key=\"b\" variable-name=\"b\" /></when></choose>")),
        "only be used once in a policy section",
    );
    // authentication-managed-identity outside inbound.
    refused(
        api_policy(&emu, &svc, "<policies><inbound><base /></inbound><outbound><authentication-managed-identity resource=\"api://x\" /></outbound></policies>"),
        "Policy is not allowed in 'outbound' section",
    );
    // Expressions where the attribute forbids them.
    for (xml, attr) in [
        ("<cache-lookup-value key=\"k\" variable-name=\"@(&quot;v&quot;)\" />", "variable-name"),
        ("<cache-lookup-value key=\"k\" variable-name=\"v\" caching-type=\"@(&quot;internal&quot;)\" />", "caching-type"),
        ("<authentication-managed-identity resource=\"r\" client-id=\"@(&quot;c&quot;)\" />", "client-id"),
        ("<authentication-managed-identity resource=\"r\" output-token-variable-name=\"@(&quot;t&quot;)\" />", "output-token-variable-name"),
        ("<send-request response-variable-name=\"@(&quot;r&quot;)\"><set-url>http://x</set-url><set-method>GET</set-method></send-request>", "response-variable-name"),
        ("<set-variable name=\"@(&quot;n&quot;)\" value=\"1\" />", "name"),
    ] {
        let doc = policies(xml).replace("&quot;", "\"");
        refused(api_policy(&emu, &svc, &doc), &format!("not allowed in attribute '{attr}'"));
    }
    refused(
        fragment(
            &emu,
            &svc,
            "f-id",
            "<fragment><include-fragment fragment-id=\"@(&quot;x&quot;)\" /></fragment>",
        ),
        "not allowed in a policy fragment",
    );
    // Required attributes, children and their order, literal values.
    refused(
        api_policy(&emu, &svc, &policies("<set-status code=\"200\" />")),
        "required attribute 'reason'",
    );
    refused(api_policy(&emu, &svc, &policies("<send-request response-variable-name=\"r\"><set-method>GET</set-method><set-url>http://x</set-url></send-request>")), "out of order");
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<cache-store-value key=\"k\" value=\"v\" duration=\"soon\" />"),
        ),
        "'duration' attribute is invalid",
    );
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<set-header name=\"a\">text</set-header>"),
        ),
        "cannot contain text",
    );
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<rate-limit calls=\"1\" renewal-period=\"1\" />"),
        ),
        "rules table knows",
    );
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<limit-concurrency key=\"k\" max-count=\"1\"><set-variable name=\"a\" value=\"b\" /></limit-concurrency>"),
        ),
        "does not execute 'limit-concurrency'",
    );
    // Expressions: types outside the allow-list, C# errors, and what the evaluator lacks.
    refused(api_policy(&emu, &svc, &policies("<set-variable name=\"a\" value=\"@(System.IO.File.ReadAllText(&quot;/etc/passwd&quot;))\" />").replace("&quot;", "\"")), "The type 'System.IO.File' is not allowed in policy expressions");
    refused(
        api_policy(
            &emu,
            &svc,
            &policies(
                "<set-variable name=\"a\" value=\"@(context.Variables[&quot;x&quot;].Length)\" />",
            )
            .replace("&quot;", "\""),
        ),
        "'object' does not contain a definition for 'Length'",
    );
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<set-variable name=\"a\" value=\"@(DateTime.UtcNow.ToString())\" />"),
        ),
        "does not implement",
    );
    refused(
        api_policy(
            &emu,
            &svc,
            &policies("<choose><when condition=\"@(&quot;yes&quot;)\" /></choose>")
                .replace("&quot;", "\""),
        ),
        "Cannot implicitly convert type 'string' to 'bool'",
    );

    // A fragment with a cache-store-value may be included in inbound once, not twice next to
    // another one, and a fragment's new content is checked where it is included.
    created(fragment(
        &emu,
        &svc,
        "store",
        "<fragment><cache-store-value key=\"k\" value=\"v\" duration=\"10\" /></fragment>",
    ));
    created(api_policy(
        &emu,
        &svc,
        &policies("<include-fragment fragment-id=\"store\" />"),
    ));
    refused(api_policy(&emu, &svc, &policies("<include-fragment fragment-id=\"store\" /><cache-store-value key=\"k2\" value=\"v\" duration=\"10\" />")), "only be used once in a policy section");
    created(api_policy(&emu, &svc, "<policies><inbound><base /></inbound><outbound><include-fragment fragment-id=\"store\" /></outbound></policies>"));
    refused(
        fragment(
            &emu,
            &svc,
            "store",
            "<fragment><authentication-managed-identity resource=\"r\" /></fragment>",
        ),
        "Policy is not allowed in 'outbound' section",
    );

    // The switch relaxes these refusals, and only them.
    emu.ctl(Method::POST, "rules", Some(&json!({"enforce": false})));
    created(fragment(
        &emu,
        &svc,
        "f-cache",
        "<fragment><cache-lookup-value key=\"k\" variable-name=\"v\" /></fragment>",
    ));
    let (s, _) = fragment(&emu, &svc, "f-broken", "<fragment><a></fragment>");
    assert_eq!(s, 400, "malformed XML is still refused");
    assert_eq!(
        emu.ctl(Method::GET, "rules", None),
        json!({"enforce": false})
    );
    emu.ctl(Method::POST, "rules", Some(&json!({"enforce": true})));
    refused(
        fragment(
            &emu,
            &svc,
            "f-cache2",
            "<fragment><cache-lookup-value key=\"k\" variable-name=\"v\" /></fragment>",
        ),
        "not allowed in a policy fragment",
    );
}

#[test]
fn per_instance_limits_by_sku() {
    let emu = Emu::start_with(&["--lro-polls", "0"]);
    let svc = emu.apim();
    // 100 named values per instance; the 101st is refused.
    for i in 0..100 {
        created(put(
            &emu,
            &format!("{svc}/namedValues/nv{i}"),
            &json!({"properties": {"displayName": format!("nv{i}"), "value": "v"}}),
        ));
    }
    refused(
        put(
            &emu,
            &format!("{svc}/namedValues/nv100"),
            &json!({"properties": {"displayName": "nv100", "value": "v"}}),
        ),
        "already has 100 named values",
    );
    // Replacing an existing one is not a new one.
    created(put(
        &emu,
        &format!("{svc}/namedValues/nv5"),
        &json!({"properties": {"displayName": "nv5", "value": "w"}}),
    ));
    // A value over 4,096 characters, and a blank one.
    let (s, v) = put(
        &emu,
        &format!("{svc}/namedValues/nv5"),
        &json!({"properties": {"displayName": "nv5", "value": "x".repeat(4097)}}),
    );
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("ValidationError")),
        "{v}"
    );
    assert_eq!(v["error"]["details"][0]["target"], "value");
    refused(
        put(
            &emu,
            &format!("{svc}/namedValues/nv5"),
            &json!({"properties": {"displayName": "nv5", "value": "   "}}),
        ),
        "may not be empty",
    );

    // 50 fragments on a Basic (and a Standard) instance; the 51st is refused. 100 on Premium.
    for (name, sku, max) in [
        ("apim-basic", "Basic", 50),
        ("apim-standard", "Standard", 50),
        ("apim-premium", "Premium", 100),
    ] {
        let id = instance(&emu, name, sku);
        for i in 0..max {
            created(fragment(
                &emu,
                &id,
                &format!("f{i}"),
                "<fragment><set-variable name=\"a\" value=\"1\" /></fragment>",
            ));
        }
        refused(
            fragment(
                &emu,
                &id,
                "one-more",
                "<fragment><set-variable name=\"a\" value=\"1\" /></fragment>",
            ),
            &format!("already has {max} policy fragments"),
        );
    }

    // A policy document over the SKU's size: 16 KiB on Consumption, 256 KiB elsewhere.
    let cons = instance(&emu, "apim-cons", "Consumption");
    let pad = |n: usize| {
        format!(
            "<policies><inbound><set-variable name=\"a\" value=\"{}\" /></inbound></policies>",
            "x".repeat(n)
        )
    };
    created(put(
        &emu,
        &format!("{cons}/policies/policy"),
        &json!({"properties": {"value": pad(16_000)}}),
    ));
    refused(
        put(
            &emu,
            &format!("{cons}/policies/policy"),
            &json!({"properties": {"value": pad(16_400)}}),
        ),
        "SKU 'Consumption'",
    );
    created(put(
        &emu,
        &format!("{svc}/policies/policy"),
        &json!({"properties": {"value": pad(16_400)}}),
    ));
    refused(
        put(
            &emu,
            &format!("{svc}/policies/policy"),
            &json!({"properties": {"value": pad(262_200)}}),
        ),
        "262144 bytes",
    );
    // A fragment over 32 KB.
    refused(
        fragment(
            &emu,
            &svc,
            "big",
            &format!(
                "<fragment><set-variable name=\"a\" value=\"{}\" /></fragment>",
                "x".repeat(32_100)
            ),
        ),
        "32000 bytes",
    );
}
