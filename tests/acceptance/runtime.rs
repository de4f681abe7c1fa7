//! The `apim_vault_binding` block executed as the APIM gateway runs it: an API policy holding
//! the block of `vault_binding::render::with_block`, the emulator's managed-identity endpoint
//! for the APIM instance's identity, and a real OpenBao (JWT auth trusting the emulator, KV v2,
//! a leased KV v1 mount, a namespace).
//!
//! The executor of `tests/support/apim_runtime.rs` covers the C# subset of the first design's
//! fragment (named values, one secret per fragment); the block uses more of C# (`new JObject`,
//! `JObject.Parse`, `JsonConvert`, `Math.Min`, `?:`). The request tests below are ignored until
//! they are moved to the emulator's gateway (issue 16), and their assertions on variable names
//! and cache events still describe the first design; `vault_binding_runtime_through_the_gateway`
//! runs the block through that gateway already. What runs here: every variant's vocabulary, and
//! every variant saved by the emulator, which checks policies as APIM does at save time.

use std::collections::BTreeMap;
use std::time::Duration;

use apim_provider::resources::vault_binding::render::{with_block, BindingSpec, Block, Inject};
use serde_json::{json, Value};

use crate::support::apim_runtime::{CallKind, ManagedIdentity};
use crate::support::{check_policy_vocabulary, Bao, Emulator, Flow, Gateway, Outcome, Request};

const AUDIENCE: &str = "api://vault-apim";
const SECRET: &str = "s3cr3t-api-key";
const READ_ORDERS: &str = "path \"kv/data/orders/backend\" {\n  capabilities = [\"read\"]\n}\n";

/// A JWT auth mount at `<ns>jwt` that trusts the emulator's tokens (v1 issuer).
fn trust_emulator(bao: &Bao, emu: &Emulator, ns: &str) {
    let issuer = format!("{}/{}/", emu.url(), emu.tenant_id());
    let ca = std::fs::read_to_string(emu.ca_file()).unwrap();
    bao.api_ok(
        "POST",
        &format!("{ns}sys/auth/jwt"),
        Some(json!({"type": "jwt"})),
    );
    bao.api_ok(
        "POST",
        &format!("{ns}auth/jwt/config"),
        Some(json!({
            "oidc_discovery_url": issuer,
            "oidc_discovery_ca_pem": ca,
            "bound_issuer": issuer,
        })),
    );
}

/// A jwt role bound to the emulator APIM instance's system-assigned identity.
fn role(bao: &Bao, emu: &Emulator, ns: &str, name: &str, policies: &[&str]) {
    bao.api_ok(
        "POST",
        &format!("{ns}auth/jwt/role/{name}"),
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "oid",
            "bound_claims": {"oid": emu.principal_id(), "tid": emu.tenant_id()},
            "token_policies": policies,
            "token_ttl": "15m",
        })),
    );
}

/// KV v2 at `<ns>kv/` with `orders/backend` = {api_key}, and the policy `orders-read`.
fn orders_secret(bao: &Bao, ns: &str, api_key: &str) {
    bao.api_ok(
        "POST",
        &format!("{ns}sys/mounts/kv"),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    write_orders_secret(bao, ns, api_key);
    bao.api_ok(
        "PUT",
        &format!("{ns}sys/policies/acl/orders-read"),
        Some(json!({ "policy": READ_ORDERS })),
    );
}

fn write_orders_secret(bao: &Bao, ns: &str, api_key: &str) {
    bao.api_ok(
        "POST",
        &format!("{ns}kv/data/orders/backend"),
        Some(json!({"data": {"api_key": api_key, "port": 8443}})),
    );
}

fn spec() -> BindingSpec {
    BindingSpec {
        name: "orders".into(),
        vault_address: "http://127.0.0.1:8200".into(),
        vault_namespace: None,
        backend: "jwt".into(),
        role: "orders".into(),
        audience: AUDIENCE.into(),
        secret_path: "kv/data/orders/backend".into(),
        secret_field: "api_key".into(),
        kv_v2: true,
        leased: false,
        inject: Inject::Header("X-Api-Key".into()),
        cache_ttl: 300,
        rotation: 0,
        fail_on_error: true,
    }
}

/// `s` calling Vault at `addr` and logging in as `role` with a token for `audience` (the
/// first design's named values).
fn at(s: BindingSpec, addr: &str, role: &str, audience: &str) -> BindingSpec {
    BindingSpec {
        vault_address: addr.to_string(),
        role: role.to_string(),
        audience: audience.to_string(),
        ..s
    }
}

/// The API policy holding the block of `spec` alone.
fn render(spec: &BindingSpec) -> String {
    let block = Block {
        created_policy: false,
        bindings: vec![spec.clone()],
    };
    with_block(None, "orders", &block)
        .expect("the default policy has an inbound section")
        .expect("a block with a binding is a policy")
}

/// Renders the policy, checks its vocabulary and builds a gateway for it.
fn gateway(spec: &BindingSpec, emu: &Emulator) -> Gateway {
    let xml = render(spec);
    if let Err(problems) = check_policy_vocabulary(&xml) {
        panic!("{}\n{xml}", problems.join("\n"));
    }
    Gateway::with_emulator(&xml, &BTreeMap::new(), emu).unwrap_or_else(|e| panic!("{e}\n{xml}"))
}

#[track_caller]
fn run(gw: &Gateway, label: &str) -> Outcome {
    let out = gw
        .execute(&Request::get("/orders/42"))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    eprintln!("--- {label}\n{}", out.trace());
    out
}

#[track_caller]
fn assert_urls(out: &Outcome, expected: &[(&str, String)]) {
    let got: Vec<(String, String)> = out
        .sent()
        .iter()
        .map(|c| (c.method.clone(), c.url.clone()))
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(m, u)| (m.to_string(), u.clone()))
        .collect();
    assert_eq!(got, want, "{}", out.trace());
}

#[test]
#[ignore = "runs through the emulator's gateway once it lands (issue 16)"]
fn runtime_fragment_injects_the_secret_and_caches_it() {
    let bao = Bao::start();
    let emu = Emulator::start();
    trust_emulator(&bao, &emu, "");
    orders_secret(&bao, "", SECRET);
    role(&bao, &emu, "", "orders", &["orders-read"]);
    let on = |s| at(s, bao.addr(), "orders", AUDIENCE);
    let login = format!("{}/v1/auth/jwt/login", bao.addr());
    let read = format!("{}/v1/kv/data/orders/backend", bao.addr());

    let gw = gateway(&on(spec()), &emu);
    let first = run(&gw, "first request");
    assert_eq!(first.flow, Flow::Forwarded);
    assert_eq!(first.header("X-Api-Key"), Some(SECRET), "{}", first.trace());
    assert_eq!(
        first.header("Authorization"),
        None,
        "the token went to a variable"
    );
    // Managed identity → login → read, each answered 200.
    assert_eq!(first.calls.len(), 3, "{}", first.trace());
    let mi = &first.calls[0];
    assert_eq!(mi.kind, CallKind::ManagedIdentity);
    assert!(mi.url.starts_with(&format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2Fvault-apim&msi_res_id=",
        emu.url()
    )));
    assert_eq!(mi.header("Metadata"), Some("true"));
    assert_urls(&first, &[("POST", login.clone()), ("GET", read.clone())]);
    let sent = first.sent();
    assert!(first.calls.iter().all(|c| c.status == Some(200)));
    assert_eq!(sent[0].header("Content-Type"), Some("application/json"));
    let body: Value = serde_json::from_str(sent[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(body["role"], "orders");
    assert!(body["jwt"].as_str().unwrap().starts_with("<redacted "));
    assert_eq!(sent[1].header("X-Vault-Token"), Some("<redacted>"));
    assert_eq!(sent[1].header("X-Vault-Namespace"), None);
    // The cache key is the binding's name and a hash of the settings that decide the secret.
    assert_eq!(first.events.len(), 2, "{:?}", first.events);
    assert!(
        first.events[0].starts_with("cache-lookup-value vault-secret-orders-")
            && first.events[0].ends_with(": miss")
    );
    assert!(
        first.events[1].starts_with("cache-store-value vault-secret-orders-")
            && first.events[1].ends_with(": stored for 300 s")
    );

    // Rotated in Vault: the gateway keeps serving its cached copy for cache_ttl.
    write_orders_secret(&bao, "", "rotated-key");
    let second = run(&gw, "second request, within cache_ttl");
    assert!(second.calls.is_empty(), "{}", second.trace());
    assert_eq!(second.header("X-Api-Key"), Some(SECRET));
    assert_eq!(second.events.len(), 1, "{:?}", second.events);
    assert!(
        second.events[0].starts_with("cache-lookup-value vault-secret-orders-")
            && second.events[0].ends_with(": hit")
    );

    // After cache_ttl: Vault again (the managed-identity token is still cached by APIM).
    gw.advance(Duration::from_secs(301));
    let third = run(&gw, "after cache_ttl");
    assert_urls(&third, &[("POST", login.clone()), ("GET", read.clone())]);
    assert!(third.calls.iter().all(|c| c.kind == CallKind::SendRequest));
    assert_eq!(third.header("X-Api-Key"), Some("rotated-key"));

    // cache_ttl = 0: no cache policies, Vault on every request; injected as a query parameter.
    let mut s = spec();
    s.cache_ttl = 0;
    s.inject = Inject::Query("api-key".into());
    let gw = gateway(&on(s.clone()), &emu);
    for i in 1..=2 {
        let out = run(&gw, &format!("cache_ttl = 0, request {i}"));
        assert_eq!(out.flow, Flow::Forwarded);
        assert_urls(&out, &[("POST", login.clone()), ("GET", read.clone())]);
        assert_eq!(out.query_param("api-key"), Some("rotated-key"));
        assert_eq!(out.header("X-Api-Key"), None);
        assert!(out.events.iter().all(|e| !e.starts_with("cache-")));
    }

    // Injected as a context variable for other policies.
    let mut s = spec();
    s.inject = Inject::Variable("backendKey".into());
    let out = run(&gateway(&on(s.clone()), &emu), "inject into a variable");
    assert_eq!(out.variable("backendKey"), Some("rotated-key"));
    assert_eq!(out.header("X-Api-Key"), None);
}

#[test]
#[ignore = "runs through the emulator's gateway once it lands (issue 16)"]
fn runtime_fragment_failures_answer_502_or_go_on() {
    let bao = Bao::start();
    let emu = Emulator::start();
    trust_emulator(&bao, &emu, "");
    orders_secret(&bao, "", SECRET);
    role(&bao, &emu, "", "orders", &["orders-read"]);
    role(&bao, &emu, "", "no-read", &["default"]);
    let login = format!("{}/v1/auth/jwt/login", bao.addr());
    let read = format!("{}/v1/kv/data/orders/backend", bao.addr());

    // The role's policies do not grant read: Vault answers 403, the gateway 502.
    let on = |s| at(s, bao.addr(), "no-read", AUDIENCE);
    let out = run(&gateway(&on(spec()), &emu), "denied, on_error = fail");
    assert_eq!(
        out.flow,
        Flow::Returned {
            status: 502,
            reason: "Bad Gateway".into()
        }
    );
    assert_urls(&out, &[("POST", login.clone()), ("GET", read.clone())]);
    assert_eq!(out.sent()[1].status, Some(403));
    assert_eq!(out.header("X-Api-Key"), None);
    assert!(!out.variables.contains_key("vault-secret-orders"));
    assert!(
        out.events
            .iter()
            .all(|e| !e.starts_with("cache-store-value")),
        "nothing cached"
    );

    // on_error = continue: no header, no stop, the error flag set.
    let mut s = spec();
    s.fail_on_error = false;
    let out = run(
        &gateway(&on(s.clone()), &emu),
        "denied, on_error = continue",
    );
    assert_eq!(out.flow, Flow::Forwarded);
    assert_eq!(out.header("X-Api-Key"), None);
    assert_eq!(out.variable("vault-error-orders"), Some("true"));

    // A token for another audience: the login is refused, the secret never read.
    let on = |s| at(s, bao.addr(), "orders", "api://someone-else");
    let out = run(&gateway(&on(spec()), &emu), "wrong audience");
    assert!(matches!(out.flow, Flow::Returned { status: 502, .. }));
    assert_urls(&out, &[("POST", login.clone())]);
    assert_eq!(out.sent()[0].status, Some(400));
    assert_eq!(out.header("X-Api-Key"), None);

    // Vault unreachable: send-request's ignore-error leaves a null response → 502.
    let closed = format!("http://127.0.0.1:{}", closed_port());
    let on = |s| at(s, &closed, "orders", AUDIENCE);
    let out = run(&gateway(&on(spec()), &emu), "Vault unreachable");
    assert!(matches!(out.flow, Flow::Returned { status: 502, .. }));
    assert!(out.sent()[0].error.is_some() && out.sent()[0].status.is_none());
    assert!(matches!(
        out.variables.get("vault-login-orders"),
        Some(crate::support::apim_runtime::Value::Null)
    ));

    // An APIM instance the managed-identity endpoint does not know: APIM's
    // token request fails, ignored by the fragment; the empty JWT is refused by Vault.
    let gw = Gateway::new(
        &render(&at(spec(), bao.addr(), "orders", AUDIENCE)),
        &BTreeMap::new(),
        ManagedIdentity {
            api_management_id: format!("{}-missing", emu.api_management_id()),
            ..ManagedIdentity::from_emulator(&emu)
        },
        reqwest::blocking::Client::new(),
    )
    .unwrap();
    let out = run(&gw, "no managed identity");
    assert_eq!(out.calls[0].kind, CallKind::ManagedIdentity);
    assert_ne!(out.calls[0].status, Some(200));
    assert!(!out.variables.contains_key("vault-msi-orders"));
    assert!(matches!(out.flow, Flow::Returned { status: 502, .. }));
    assert_eq!(out.sent()[0].status, Some(400), "an empty jwt is refused");

    // `client-id` asks for a user-assigned identity; the instance has none with that ID, and
    // without ignore-error the policy fails.
    let gw = Gateway::with_emulator(
        "<fragment><authentication-managed-identity resource=\"api://vault-apim\" client-id=\"00000000-0000-0000-0000-00000000abcd\" output-token-variable-name=\"t\" /></fragment>",
        &BTreeMap::new(),
        &emu,
    )
    .unwrap();
    let out = run(&gw, "unknown user-assigned identity");
    assert!(out.calls[0]
        .url
        .ends_with("&client_id=00000000-0000-0000-0000-00000000abcd"));
    assert_eq!(out.calls[0].status, Some(400));
    assert!(matches!(&out.flow, Flow::Failed { error } if error.contains("Identity not found")));

    // A field the secret does not have: the read counts as failed, so on_error applies
    // (continue: forwarded without the secret; fail: 502), rather than a policy exception.
    let mut s = spec();
    s.secret_field = "nope".into();
    s.fail_on_error = false;
    let on = |s| at(s, bao.addr(), "orders", AUDIENCE);
    let out = run(&gateway(&on(s.clone()), &emu), "missing field, continue");
    assert!(matches!(out.flow, Flow::Forwarded), "{}", out.trace());
    assert_eq!(out.header("X-Api-Key"), None);
    assert_eq!(out.variable("vault-error-orders"), Some("true"));
    s.fail_on_error = true;
    let out = run(&gateway(&on(s.clone()), &emu), "missing field, fail");
    assert!(
        matches!(&out.flow, Flow::Returned { status: 502, .. }),
        "{}",
        out.trace()
    );
    assert_eq!(out.header("X-Api-Key"), None);
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
#[ignore = "runs through the emulator's gateway once it lands (issue 16)"]
fn runtime_fragment_leased_secret_and_namespace() {
    let bao = Bao::start();
    let emu = Emulator::start();
    trust_emulator(&bao, &emu, "");

    // A leased secret: KV v1 with leased passthrough (each read creates a lease); the field
    // is under `data`.
    bao.enable_leased_kv("apim-leased");
    bao.api_ok(
        "POST",
        "apim-leased/orders/db",
        Some(json!({"password": "leased-pw", "ttl": "10m"})),
    );
    bao.api_ok(
        "PUT",
        "sys/policies/acl/leased-read",
        Some(
            json!({"policy": "path \"apim-leased/orders/db\" {\n  capabilities = [\"read\"]\n}\n"}),
        ),
    );
    role(&bao, &emu, "", "leased", &["leased-read"]);
    let leases = || crate::vault_binding::leases_under(&bao, "apim-leased/orders/db/");
    assert_eq!(leases(), 0);
    let mut s = spec();
    s.secret_path = "apim-leased/orders/db".into();
    s.secret_field = "password".into();
    s.kv_v2 = false;
    s.inject = Inject::Header("X-Db-Password".into());
    s.cache_ttl = 60;
    let gw = gateway(&at(s.clone(), bao.addr(), "leased", AUDIENCE), &emu);
    let out = run(&gw, "leased secret");
    assert_eq!(out.header("X-Db-Password"), Some("leased-pw"));
    assert_eq!(leases(), 1, "the gateway's read took a lease");
    let out = run(&gw, "leased secret, cached");
    assert!(out.calls.is_empty());
    assert_eq!(out.header("X-Db-Password"), Some("leased-pw"));
    assert_eq!(leases(), 1, "no new lease while cached");

    // A namespace (OpenBao 2.x has them): the same JWT mount, role, KV and policy inside
    // `team-a`, holding another value. The header goes on both Vault calls.
    bao.api_ok("POST", "sys/namespaces/team-a", Some(json!({})));
    trust_emulator(&bao, &emu, "team-a/");
    orders_secret(&bao, "team-a/", "team-a-key");
    role(&bao, &emu, "team-a/", "orders", &["orders-read"]);
    let mut s = spec();
    s.vault_namespace = Some("team-a".into());
    let on = |s| at(s, bao.addr(), "orders", AUDIENCE);
    let out = run(&gateway(&on(s.clone()), &emu), "namespace team-a");
    assert_eq!(out.flow, Flow::Forwarded);
    assert_eq!(out.header("X-Api-Key"), Some("team-a-key"));
    let sent = out.sent();
    assert_eq!(sent.len(), 2);
    for call in &sent {
        assert_eq!(call.header("X-Vault-Namespace"), Some("team-a"), "{call}");
        assert_eq!(call.status, Some(200));
    }

    // A namespace that does not exist: OpenBao refuses the login, the gateway answers 502.
    s.vault_namespace = Some("no-such-team".into());
    let out = run(&gateway(&on(s.clone()), &emu), "unknown namespace");
    assert!(matches!(out.flow, Flow::Returned { status: 502, .. }));
    assert_eq!(out.sent().len(), 1);
    let status = out.sent()[0].status.unwrap_or(0);
    assert!((400..500).contains(&status), "{}", out.trace());
}

/// Every variant of the block, for each inject target, with and without the cache, failing or
/// going on, with and without a namespace, KV version 2 or not, leased or not.
fn variants() -> Vec<BindingSpec> {
    let mut out = Vec::new();
    for inject in [
        Inject::Header("X-Api-Key".into()),
        Inject::Query("key".into()),
        Inject::Variable("backendKey".into()),
    ] {
        for cache_ttl in [0, 300] {
            for fail_on_error in [true, false] {
                for vault_namespace in [None, Some("team-a/sub".to_string())] {
                    for (kv_v2, leased) in [(true, false), (false, false), (false, true)] {
                        out.push(BindingSpec {
                            inject: inject.clone(),
                            cache_ttl,
                            fail_on_error,
                            vault_namespace: vault_namespace.clone(),
                            kv_v2,
                            leased,
                            ..spec()
                        });
                    }
                }
            }
        }
    }
    out
}

/// Every rendered variant uses only policy elements and attributes that exist; the checker
/// catches a misspelt attribute, and the executor an unknown named value.
#[test]
fn runtime_block_variants_use_known_policy_vocabulary() {
    let all = variants();
    assert_eq!(all.len(), 72);
    for s in &all {
        let xml = render(s);
        if let Err(problems) = check_policy_vocabulary(&xml) {
            panic!("{}\n{xml}", problems.join("\n"));
        }
    }
    // Several bindings in one block, of two roles, cached and not.
    let mut two_roles = spec();
    two_roles.name = "billing".into();
    two_roles.role = "billing".into();
    let mut live = spec();
    live.name = "live".into();
    live.cache_ttl = 0;
    let block = Block {
        created_policy: false,
        bindings: vec![two_roles, spec(), live],
    };
    let xml = with_block(None, "orders", &block).unwrap().unwrap();
    if let Err(problems) = check_policy_vocabulary(&xml) {
        panic!("{}\n{xml}", problems.join("\n"));
    }
    // A misspelt attribute is caught.
    let bad = render(&spec()).replace("response-variable-name=", "response-variable=");
    let problems = check_policy_vocabulary(&bad).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("<send-request> has no attribute `response-variable`")),
        "{problems:?}"
    );
    // A named value the document references but that does not exist.
    let e = Gateway::new(
        "<fragment><set-variable name=\"role\" value=\"{{vault-orders-role}}\" /></fragment>",
        &BTreeMap::new(),
        identity(),
        reqwest::blocking::Client::new(),
    )
    .err()
    .unwrap_or_default();
    assert!(e.contains("{{vault-orders-role}}"), "{e}");
}

fn identity() -> ManagedIdentity {
    ManagedIdentity {
        endpoint: "https://127.0.0.1:9".into(),
        api_management_id:
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.ApiManagement/service/a".into(),
        http: reqwest::blocking::Client::new(),
    }
}

/// Every rendered variant is saved by the emulator, which refuses what APIM refuses at save
/// time (placement, counts, attributes, children, and expressions compiled against APIM's type
/// allow-list); an expression that does not compile is refused.
#[test]
fn runtime_block_variants_are_accepted_where_apim_checks_policies() {
    let emu = Emulator::start();
    emu.create_api("orders");
    for s in variants() {
        let xml = render(&s);
        let (status, body) = emu.arm(
            "PUT",
            &format!("{}/apis/orders/policies/policy", emu.api_management_id()),
            Some(json!({"properties": {"format": "rawxml", "value": xml}})),
        );
        assert!((200..300).contains(&status), "{status} {body}\n{xml}");
    }
    let bad = render(&spec()).replace(
        "[\"client_token\"].ToString()",
        "[\"client_token\"].ToStrin()",
    );
    let (status, body) = emu.arm(
        "PUT",
        &format!("{}/apis/orders/policies/policy", emu.api_management_id()),
        Some(json!({"properties": {"format": "rawxml", "value": bad}})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("ToStrin"), "{body}");
}
