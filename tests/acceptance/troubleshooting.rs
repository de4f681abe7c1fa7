//! Why a binding failed at request time, as an operator reads it: after a real apply, the
//! classic causes are made out of band (a policy that no longer grants the read, a role that
//! is gone, an audience or identity the role does not accept, a managed-identity token that
//! has run out, no token at all), and each request through the emulator's gateway leaves the
//! records the managed block emits — a `trace` naming the binding, the step, Vault's status
//! and error text, and the metric or event of a binding's `logger_id` — while the API caller
//! gets a bare 502. What the records hold is read from the emulator's telemetry (what the
//! instance's Application Insights or Event Hubs would receive); none of it may hold the
//! secret, a Vault token or a JWT. Nothing here imports the provider's code.

use serde_json::{json, Value};

use crate::support::fixtures::{provider_from_env, trio_binding, vault_trio};
use crate::support::gateway::{
    clear_cache, clear_log, clear_telemetry, create_api, get, last_entry, log, steps_text,
    telemetry, Answer, Echo,
};
use crate::support::{
    assert_absent, jwts_in, run, Bao, Emulator, Step, TerraformBin, TestCase, Workdir,
};

const KEY: &str = "s3cr3t-orders-key";
const KV_PATH: &str = "secret/data/orders/backend";
/// The trio's role and its mount.
const ROLE_PATH: &str = "auth/apim-jwt/role/orders-apim";

/// Creates logger `name` of `logger_type` in the emulator's instance.
fn create_logger(emu: &Emulator, name: &str, logger_type: &str) {
    let credentials = match logger_type {
        "azureEventHub" => {
            json!({"name": "vault-failures", "connectionString": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=not-a-real-key"})
        }
        _ => json!({"instrumentationKey": "00000000-0000-0000-0000-000000000001"}),
    };
    emu.arm_ok(
        "PUT",
        &format!("{}/loggers/{name}", emu.api_management_id()),
        Some(json!({"properties": {"loggerType": logger_type, "credentials": credentials}})),
    );
}

/// `apim_vault_binding.<label>` (named `label` with dashes) on API `api`, reading the orders
/// key into `X-Api-Key`; `settings` adds attributes.
fn binding(emu: &Emulator, label: &str, api: &str, settings: &str) -> String {
    trio_binding(
        label,
        &format!(
            "api_management_id = \"{}\"\napi_id            = \"{api}\"\nname              = \"{}\"\nsecret_path       = \"{KV_PATH}\"\nsecret_field      = \"api_key\"\n{settings}\ninject {{\n  header = \"X-Api-Key\"\n}}",
            emu.api_management_id(),
            label.replace('_', "-")
        ),
    )
}

/// A request through the gateway, asserting its status.
#[track_caller]
fn request(emu: &Emulator, path: &str, status: u16) -> Answer {
    let answer = get(emu, path);
    assert_eq!(
        answer.status,
        status,
        "GET {path}: {}\nsteps:\n{}",
        answer.text(),
        steps_text(&last_entry(emu))
    );
    answer
}

/// The telemetry records of `kind` for API `api`.
fn records(all: &[Value], kind: &str, api: &str) -> Vec<Value> {
    all.iter()
        .filter(|r| r["kind"] == kind && r["api"] == api)
        .cloned()
        .collect()
}

/// The one trace of API `api` in `all`, which names `binding` and `step` and whose message
/// holds each of `said`.
#[track_caller]
fn assert_trace(all: &[Value], api: &str, binding: &str, step: &str, said: &[&str]) {
    let traces = records(all, "trace", api);
    assert_eq!(traces.len(), 1, "one trace for API {api}: {all:#?}");
    let t = &traces[0];
    assert_eq!(t["source"], "apim-vault-binding", "{t}");
    assert_eq!(t["severity"], "error", "{t}");
    assert_eq!(t["metadata"]["binding"], binding, "{t}");
    assert_eq!(t["metadata"]["step"], step, "{t}");
    let message = t["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{binding}: ")), "{t}");
    for s in said {
        assert!(message.contains(s), "the trace says {s:?}: {t}");
    }
}

/// One cause, seen through both APIs: `orders` (`on_error = "fail"`, an Event Hubs logger)
/// answers a bare 502 and leaves its trace and event; `billing` (`continue`, an Application
/// Insights logger) forwards without the secret and leaves its trace and metric.
#[track_caller]
fn assert_cause(
    emu: &Emulator,
    echo: &Echo,
    step: &str,
    outcome: &str,
    said: &[&str],
) -> Vec<Value> {
    clear_cache(emu);
    clear_telemetry(emu);
    let forwarded = echo.received().len();
    let answer = request(emu, "/orders/1", 502);
    assert_eq!(answer.body, "", "the 502 tells the caller nothing");
    assert!(
        answer
            .headers
            .iter()
            .all(|(k, _)| ["content-length", "date"].contains(&k.as_str())),
        "no header tells the caller anything: {:?}",
        answer.headers
    );
    assert_eq!(
        echo.received().len(),
        forwarded,
        "nothing reached the backend"
    );
    request(emu, "/billing/1", 200);
    assert_eq!(
        echo.last().header("X-Api-Key"),
        None,
        "billing forwarded without the secret"
    );
    let all = telemetry(emu);
    assert_trace(&all, "orders", "orders-key", step, said);
    assert_trace(&all, "billing", "billing-key", step, said);

    let events = records(&all, "event", "orders");
    assert_eq!(
        events.len(),
        1,
        "one event for the orders binding: {all:#?}"
    );
    assert_eq!(events[0]["logger_id"], "vault-events");
    let event: Value = serde_json::from_str(events[0]["message"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the event is JSON ({e}): {}", events[0]));
    assert_eq!(event["binding"], "orders-key", "{event}");
    assert_eq!(event["api"], "orders", "{event}");
    assert_eq!(event["step"], step, "{event}");
    assert_eq!(event["outcome"], outcome, "{event}");
    for s in said {
        assert!(
            event["detail"].as_str().unwrap_or_default().contains(s),
            "the event says {s:?}: {event}"
        );
    }
    assert!(records(&all, "metric", "orders").is_empty(), "{all:#?}");

    let metrics = records(&all, "metric", "billing");
    assert_eq!(
        metrics.len(),
        1,
        "one metric for the billing binding: {all:#?}"
    );
    let m = &metrics[0];
    assert_eq!(m["name"], "apim-vault-binding-failures", "{m}");
    assert_eq!(m["namespace"], "apim-vault", "{m}");
    assert_eq!(m["value"], "1", "{m}");
    assert_eq!(
        m["dimensions"],
        json!({"binding": "billing-key", "outcome": outcome}),
        "{m}"
    );
    assert!(records(&all, "event", "billing").is_empty(), "{all:#?}");
    all
}

/// Neither the secret, a Vault token nor a JWT in what the gateway recorded.
#[track_caller]
fn assert_nothing_secret(emu: &Emulator, bao: &Bao, seen: &[Value]) {
    let text = format!(
        "{}\n{}",
        serde_json::to_string(seen).unwrap(),
        serde_json::to_string(&log(emu)).unwrap()
    );
    assert_absent(
        "the gateway's telemetry and request log",
        &text,
        &[("the secret", KEY), ("the root token", bao.token())],
    );
    assert_eq!(jwts_in(&text), Vec::<String>::new(), "a JWT was recorded");
    for field in ["client_token", "accessor", "\"data\""] {
        assert!(
            !text.contains(field),
            "a Vault answer beyond its errors was recorded ({field}): {text}"
        );
    }
}

/// Every classic cause of a failed fetch, one after the other on one apply, each leaving the
/// record that names it: the secret lacks the binding's field (field), the role's policy no longer grants the read (read, 403 permission
/// denied), the role is gone (login, 400, not found), the role expects another audience or
/// another identity (login, 400, Vault's validation error), the managed-identity token has run
/// out as Vault's clock sees it (login, 400, expired), the instance gets no token at all
/// (managed-identity). A working request leaves nothing.
#[test]
fn runtime_each_failure_leaves_a_trace_and_its_loggers_record_and_no_secret() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
    create_api(&emu, "orders", "orders", echo.url(), None);
    create_api(&emu, "billing", "billing", echo.url(), None);
    create_logger(&emu, "vault-events", "azureEventHub");
    create_logger(&emu, "vault-metrics", "applicationInsights");
    let metrics_id = format!("{}/loggers/vault-metrics", emu.api_management_id());
    let config = format!(
        "{}{}{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
        binding(
            &emu,
            "orders_key",
            "orders",
            "logger_id         = \"vault-events\""
        ),
        binding(
            &emu,
            "billing_key",
            "billing",
            &format!("on_error          = \"continue\"\nlogger_id         = \"{metrics_id}\"")
        ),
    );
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd.write_config(&config);
    wd.apply();
    assert_eq!(wd.plan(true), 0, "empty plan after apply");
    let mut seen = Vec::new();

    // Working: the secret arrives, and nothing is recorded.
    clear_log(&emu);
    clear_telemetry(&emu);
    request(&emu, "/orders/1", 200);
    assert_eq!(echo.last().header("X-Api-Key").as_deref(), Some(KEY));
    request(&emu, "/billing/1", 200);
    assert_eq!(echo.last().header("X-Api-Key").as_deref(), Some(KEY));
    assert_eq!(
        telemetry(&emu),
        Vec::<Value>::new(),
        "a working fetch records nothing"
    );

    // A secret without the binding's field: the read succeeds, the field is missing.
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"other_key": KEY}})));
    let all = assert_cause(
        &emu,
        &echo,
        "field",
        "field-missing",
        &["Vault read of secret/data/orders/backend succeeded, without the field"],
    );
    for api in ["orders", "billing"] {
        let trace = &records(&all, "trace", api)[0];
        assert!(
            trace["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("succeeded, without the field api_key"),
            "the field trace names the field: {trace}"
        );
    }
    seen.extend(all);
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));

    // A missing policy: the role's policy no longer grants the read.
    let granted = bao.policy("orders-reader").expect("the trio's policy");
    bao.write_policy(
        "orders-reader",
        "path \"secret/data/elsewhere/*\" { capabilities = [\"read\"] }",
    );
    seen.extend(assert_cause(
        &emu,
        &echo,
        "read",
        "read-failed",
        &[
            "Vault read of secret/data/orders/backend failed: HTTP 403",
            "permission denied",
        ],
    ));
    bao.write_policy("orders-reader", &granted);

    // A missing role: deleted in Vault after the apply.
    bao.api_ok("DELETE", ROLE_PATH, None);
    seen.extend(assert_cause(
        &emu,
        &echo,
        "login",
        "login-failed",
        &[
            "Vault login as role orders-apim at auth/apim-jwt failed: HTTP 400",
            "could not be found",
        ],
    ));
    // Terraform puts it back.
    wd.apply();
    clear_cache(&emu);
    request(&emu, "/orders/2", 200);

    // An audience mismatch: the role now expects tokens for another audience.
    bao.api_ok(
        "POST",
        ROLE_PATH,
        Some(json!({"role_type": "jwt", "bound_audiences": ["api://another-vault"]})),
    );
    seen.extend(assert_cause(
        &emu,
        &echo,
        "login",
        "login-failed",
        &[
            "HTTP 400",
            "audience claim does not match any expected audience",
        ],
    ));
    wd.apply();
    clear_cache(&emu);
    request(&emu, "/orders/3", 200);

    // A TTL mismatch: the managed-identity token has run out as Vault's clock sees it.
    let (status, body) = emu.call(
        "POST",
        "/_emulator/entra",
        Some(json!({"mi_token_lifetime": -600})),
    );
    assert_eq!(status, 200, "{body}");
    seen.extend(assert_cause(
        &emu,
        &echo,
        "login",
        "login-failed",
        &["HTTP 400", "token is expired"],
    ));

    // No managed-identity token at all: the identity endpoint fails.
    emu.fault(json!({"path": "/metadata/identity/oauth2/token", "status": 500}));
    seen.extend(assert_cause(
        &emu,
        &echo,
        "managed-identity",
        "managed-identity-failed",
        &["no managed-identity token for audience api://apim-vault"],
    ));
    emu.clear_faults();
    let (status, body) = emu.call(
        "POST",
        "/_emulator/entra",
        Some(json!({"mi_token_lifetime": null})),
    );
    assert_eq!(status, 200, "{body}");
    clear_cache(&emu);
    request(&emu, "/orders/4", 200);

    // An identity mismatch: the instance's identity was re-created, the role is bound to the
    // old one.
    let (status, body) = emu.call(
        "POST",
        "/_emulator/identity",
        Some(json!({"recreate": true})),
    );
    assert_eq!(status, 200, "{body}");
    seen.extend(assert_cause(
        &emu,
        &echo,
        "login",
        "login-failed",
        &[
            "HTTP 400",
            "oid",
            "does not match any associated bound claim values",
        ],
    ));

    assert_nothing_secret(&emu, &bao, &seen);
}

/// `logger_id` naming a logger the instance does not have, or a logger of another instance,
/// is refused at plan, naming the attribute and the fix.
#[test]
fn binding_with_a_logger_it_cannot_use_is_refused_at_plan() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    create_api(&emu, "orders", "orders", echo.url(), None);
    let config = format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
        binding(
            &emu,
            "orders_key",
            "orders",
            "logger_id         = \"no-such-logger\""
        ),
    );
    let elsewhere = emu
        .api_management_id()
        .rsplit_once('/')
        .map(|(rg, _)| format!("{rg}/another-apim/loggers/vault-events"))
        .expect("an ARM ID");
    let other_instance = config.replace("no-such-logger", &elsewhere);
    run(TestCase::new(vec![
        Step::config(config).expect_error("has no logger \"no-such-logger\". Check `logger_id`"),
        Step::config(other_instance).expect_error("a logger of another API Management instance"),
    ])
    .envs(bao.env())
    .envs(emu.env()));
}
