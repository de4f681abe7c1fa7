//! The bindings at request time: a real `terraform apply` writes the managed block into an
//! API's inbound policy, and requests go through the emulator's APIM gateway, which runs what
//! APIM holds (its own managed-identity tokens, real calls to a real OpenBao, its internal
//! cache) and forwards to a loopback echo backend. What the tests assert is what reached the
//! backend, what the gateway answered and what its request log shows; nothing here imports
//! the provider's code.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fixtures::{
    provider_from_env, read_policy, trio_binding, vault_trio, AUDIENCE,
};
use crate::support::gateway::{
    add_leftover_probe, api_policy_document, clear_cache, clear_log, create_api, get, last_entry,
    leftovers, log, logins, outcomes, reads, served_from_cache, steps_text, Answer, Blackhole,
    Echo, Received,
};
use crate::support::{
    assert_absent, jwts_in, run, Bao, Emulator, Postgres, Step, TerraformBin, TestCase, Workdir,
};

const KEY: &str = "s3cr3t-orders-key";
const ROTATED: &str = "r0tated-orders-key";
const BILLING_KEY: &str = "s3cr3t-billing-key";
const KV_PATH: &str = "secret/data/orders/backend";

/// A policy statement of the API's own, after the managed block: the variable binding's
/// value copied into a header, so that the backend shows what the variable held.
const COPY_VARIABLE: &str = "    <set-header name=\"X-From-Variable\" exists-action=\"override\">\n      <value>@(context.Variables.GetValueOrDefault<string>(\"backendKey\", \"unset\"))</value>\n    </set-header>\n";

/// `apim_vault_binding.<label>` (named `label` with dashes) on API `api`, logging in with the
/// trio's role; `settings` holds the secret, `inject` and the rest.
fn binding(emu: &Emulator, label: &str, api: &str, settings: &str) -> String {
    trio_binding(
        label,
        &format!(
            "api_management_id = \"{}\"\napi_id            = \"{api}\"\nname              = \"{}\"\n{settings}",
            emu.api_management_id(),
            label.replace('_', "-")
        ),
    )
}

/// `secret_path`/`secret_field` of the orders key, and `inject { <inject> }`.
fn orders_key(inject: &str) -> String {
    format!("secret_path  = \"{KV_PATH}\"\nsecret_field = \"api_key\"\ninject {{\n  {inject}\n}}")
}

/// Every variable of the block is empty (or was never set) once the block has run.
#[track_caller]
fn assert_no_leftovers(got: &Received) {
    let (held, seen) =
        leftovers(got).unwrap_or_else(|| panic!("the probe header did not arrive: {got:?}"));
    if let Some((name, len)) = held.first() {
        panic!("variable {name} still holds {len} characters after the block");
    }
    assert!(seen >= 3, "the probe listed {seen} variables");
}

/// A request through the gateway with its log entry; panics unless the status is `status`.
#[track_caller]
fn request(emu: &Emulator, path: &str, status: u16) -> (Answer, serde_json::Value) {
    let answer = get(emu, path);
    let entry = last_entry(emu);
    assert_eq!(
        answer.status,
        status,
        "GET {path}: {}\nsteps:\n{}",
        answer.text(),
        steps_text(&entry)
    );
    (answer, entry)
}

/// The `cache-store-value` outcomes of the entry.
fn stores(entry: &serde_json::Value) -> Vec<String> {
    outcomes(entry, "cache-store-value")
}

/// What a request stored after claiming the empty cache entry: its first store is the claim
/// (a `pending` entry for 3 s, after which another request may claim it), then the
/// secrets, or a `failed` entry for 1 s when the fetch failed.
#[track_caller]
fn stored_after_claim(entry: &serde_json::Value) -> Vec<String> {
    let all = stores(entry);
    assert!(
        all.first().is_some_and(|c| c.starts_with("stored for 3 s")),
        "the claim comes first:\n{}",
        steps_text(entry)
    );
    all.into_iter().skip(1).collect()
}

/// Neither the secrets nor any token is in the gateway's request log.
#[track_caller]
fn assert_log_clean(emu: &Emulator, secrets: &[(&str, &str)]) {
    let text = serde_json::to_string(&log(emu)).unwrap();
    assert_absent("the gateway's request log", &text, secrets);
    assert_eq!(jwts_in(&text), Vec::<String>::new(), "a token in the log");
}

/// How many tokens OpenBao stores (`auth/token/accessors`): a login with a service token adds
/// one, a batch token none.
fn tokens(bao: &Bao) -> usize {
    let body = bao.api_ok("LIST", "auth/token/accessors", None);
    body["data"]["keys"].as_array().map_or(0, Vec::len)
}

/// KV v2 injected three ways (header, query, variable) by three bindings sharing one role: one
/// managed-identity token and one Vault login for the three reads; the next requests within
/// `cache_ttl` are answered from the cache (no login, and Vault's new value not seen); a
/// `rotation` bump makes the next request fetch the new value at once; and the block leaves
/// none of its variables behind.
#[test]
fn runtime_kv_v2_secret_reaches_the_backend_as_header_query_and_variable() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    create_api(
        &emu,
        "orders-api",
        "orders",
        echo.url(),
        Some(&api_policy_document(COPY_VARIABLE)),
    );
    let config = |rotation: i64| {
        format!(
            "{}{}{}{}{}",
            provider_from_env(),
            vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
            binding(
                &emu,
                "by_header",
                "orders-api",
                &format!(
                    "rotation     = {rotation}\n{}",
                    orders_key("header = \"X-Api-Key\"")
                )
            ),
            binding(
                &emu,
                "by_query",
                "orders-api",
                &orders_key("query = \"api-key\"")
            ),
            binding(
                &emu,
                "by_variable",
                "orders-api",
                &orders_key("variable = \"backendKey\"")
            ),
        )
    };
    let arrived = |got: &Received, key: &str| {
        assert_eq!(got.path, "/42", "{got:?}");
        assert_eq!(got.header("X-Api-Key").as_deref(), Some(key), "header");
        assert_eq!(got.query_param("api-key"), Some(key), "query");
        assert_eq!(
            got.header("X-From-Variable").as_deref(),
            Some(key),
            "variable"
        );
        assert_no_leftovers(got);
    };
    let case = TestCase::new(vec![
        Step::config(config(0)).check(|_| {
            bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
            clear_cache(&emu);
            clear_log(&emu);
            add_leftover_probe(&emu, "orders-api");
            let tokens_before = tokens(&bao);

            let (_, first) = request(&emu, "/orders/42", 200);
            arrived(&echo.last(), KEY);
            let steps = steps_text(&first);
            assert!(!served_from_cache(&first), "{steps}");
            assert_eq!(
                outcomes(&first, "authentication-managed-identity").len(),
                1,
                "{steps}"
            );
            assert_eq!(logins(&first).len(), 1, "one login for one role:\n{steps}");
            assert!(logins(&first)[0].ends_with("-> 200"), "{steps}");
            assert_eq!(
                reads(&first).len(),
                1,
                "one read per secret (the three bindings read one):\n{steps}"
            );
            let stored = stored_after_claim(&first);
            assert_eq!(stored.len(), 1, "{steps}");
            assert!(stored[0].starts_with("stored for 300 s"), "{steps}");

            // Within cache_ttl: from the cache, even after Vault's value changed.
            bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": ROTATED}})));
            for _ in 0..3 {
                let (_, e) = request(&emu, "/orders/42", 200);
                arrived(&echo.last(), KEY);
                assert!(served_from_cache(&e), "{}", steps_text(&e));
                assert!(logins(&e).is_empty() && reads(&e).is_empty());
                assert!(outcomes(&e, "authentication-managed-identity").is_empty());
                assert!(stores(&e).is_empty());
            }
            let total: usize = log(&emu).iter().map(|e| logins(e).len()).sum();
            assert_eq!(total, 1, "four requests, one Vault login");
            // The role's tokens are batch tokens (its default): the gateway's login leaves
            // nothing in OpenBao's token store.
            assert_eq!(
                tokens(&bao),
                tokens_before,
                "the gateway's batch token is not stored by OpenBao"
            );
            assert_log_clean(&emu, &[("the secret", KEY), ("the new secret", ROTATED)]);
        }),
        // rotation = 1: the next request fetches Vault's new value without waiting.
        Step::config(config(1)).check(|_| {
            let (_, e) = request(&emu, "/orders/42", 200);
            arrived(&echo.last(), ROTATED);
            assert!(!served_from_cache(&e), "{}", steps_text(&e));
            assert_eq!(logins(&e).len(), 1, "{}", steps_text(&e));
            let (_, e) = request(&emu, "/orders/42", 200);
            assert!(served_from_cache(&e));
            arrived(&echo.last(), ROTATED);
            assert_log_clean(&emu, &[("the secret", KEY), ("the new secret", ROTATED)]);
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        let policy = emu.api_policy("orders-api").unwrap();
        assert!(
            !policy.contains("apim-vault-bindings") && !policy.contains("cache-lookup-value"),
            "the block is gone: {policy}"
        );
        assert!(
            policy.contains("X-From-Variable"),
            "the API's own statements stay"
        );
    });
    run(case);
}

/// Two bindings of one API logging in with different roles (each role's policy reads only its
/// own secret): both secrets arrive, with two logins, and the next request makes none.
#[test]
fn runtime_two_roles_on_one_api_log_in_once_each() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
    bao.api_ok(
        "POST",
        "secret/data/billing/backend",
        Some(json!({"data": {"token": BILLING_KEY}})),
    );
    create_api(&emu, "orders-api", "orders", echo.url(), None);
    let config = format!(
        r#"{}{}{}{}resource "apim_vault_azure_role" "billing" {{
  name              = "billing-apim"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = "{apim}"
  audience          = "{AUDIENCE}"
  token_policies    = [apim_vault_policy.billing.name]
  token_ttl         = 600
}}
resource "apim_vault_binding" "billing" {{
  api_management_id = "{apim}"
  api_id            = "orders-api"
  name              = "billing"
  role              = apim_vault_azure_role.billing.name
  backend           = apim_vault_auth_backend.entra.path
  audience          = "{AUDIENCE}"
  secret_path       = "secret/data/billing/backend"
  secret_field      = "token"
  inject {{
    header = "X-Billing-Key"
  }}
}}
"#,
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
        read_policy("billing", "billing-reader", "secret/data/billing/*"),
        binding(
            &emu,
            "orders",
            "orders-api",
            &orders_key("header = \"X-Api-Key\"")
        ),
        apim = emu.api_management_id(),
    );
    run(TestCase::new(vec![Step::config(config).check(|_| {
        clear_cache(&emu);
        clear_log(&emu);
        let (_, e) = request(&emu, "/orders/1", 200);
        let got = echo.last();
        assert_eq!(got.header("X-Api-Key").as_deref(), Some(KEY));
        assert_eq!(got.header("X-Billing-Key").as_deref(), Some(BILLING_KEY));
        let steps = steps_text(&e);
        assert_eq!(logins(&e).len(), 2, "one login per role:\n{steps}");
        assert!(logins(&e).iter().all(|l| l.ends_with("-> 200")), "{steps}");
        assert_eq!(reads(&e).len(), 2, "{steps}");
        assert_eq!(
            stored_after_claim(&e).len(),
            1,
            "one store for both: {steps}"
        );
        let (_, e) = request(&emu, "/orders/2", 200);
        assert!(
            served_from_cache(&e) && logins(&e).is_empty(),
            "{}",
            steps_text(&e)
        );
        let got = echo.last();
        assert_eq!(got.header("X-Api-Key").as_deref(), Some(KEY));
        assert_eq!(got.header("X-Billing-Key").as_deref(), Some(BILLING_KEY));
        assert_log_clean(
            &emu,
            &[("the orders key", KEY), ("the billing key", BILLING_KEY)],
        );
    })])
    .envs(bao.env())
    .envs(emu.env()));
}

/// Live leases under `prefix` (`sys/leases/lookup`).
fn leases(bao: &Bao, prefix: &str) -> usize {
    let (status, body) = bao.api("LIST", &format!("sys/leases/lookup/{prefix}"), None);
    match status {
        200 => body["data"]["keys"].as_array().map_or(0, Vec::len),
        404 => 0,
        other => panic!("listing leases under {prefix}: {other} {body}"),
    }
}

/// A database credential (PostgreSQL through OpenBao's database engine) whose lease is
/// shorter than `cache_ttl` (the role's TTL lowered after the plan checked it): the gateway
/// keeps it no longer than its lease, then logs in and reads a new one; within the lease,
/// requests take no new credential.
#[test]
fn runtime_leased_secret_is_cached_no_longer_than_its_lease() {
    let pg = Postgres::start();
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    bao.enable_database(&pg, &[("orders", "120s", "1h")]);
    create_api(&emu, "orders-api", "orders", echo.url(), None);
    let config = format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(&emu, "database/creds/orders", "token_ttl = 600"),
        binding(
            &emu,
            "db",
            "orders-api",
            "secret_path  = \"database/creds/orders\"\nsecret_field = \"password\"\ncache_ttl    = 120\ninject {\n  header = \"X-Db-Password\"\n}"
        ),
    );
    let role_ttl = |ttl: &str| {
        bao.api_ok(
            "POST",
            "database/roles/orders",
            Some(json!({"default_ttl": ttl})),
        );
    };
    run(TestCase::new(vec![Step::config(config).check(|_| {
        clear_cache(&emu);
        clear_log(&emu);
        // Someone shortens the role's TTL after the plan: leases now last 6 s.
        role_ttl("6s");
        let before = leases(&bao, "database/creds/orders/");

        let (_, e) = request(&emu, "/orders/1", 200);
        let fetched = Instant::now();
        let first = echo.last().header("X-Db-Password").expect("a password");
        assert!(!first.is_empty());
        let steps = steps_text(&e);
        assert_eq!(logins(&e).len(), 1, "{steps}");
        let stored = stored_after_claim(&e);
        assert_eq!(stored.len(), 1, "{steps}");
        // One second less than the lease: its clock ran from Vault's answer.
        assert!(
            stored[0].starts_with("stored for 5 s"),
            "min(cache_ttl, lease_duration - 1):\n{steps}"
        );
        assert_eq!(leases(&bao, "database/creds/orders/"), before + 1);

        // Within the lease: the same credential, no new one.
        let (_, e) = request(&emu, "/orders/2", 200);
        assert!(
            served_from_cache(&e) && logins(&e).is_empty(),
            "{}",
            steps_text(&e)
        );
        assert_eq!(
            echo.last().header("X-Db-Password").as_deref(),
            Some(first.as_str())
        );
        assert_eq!(leases(&bao, "database/creds/orders/"), before + 1);

        // The lease is over: a new login and a new credential.
        if let Some(left) = Duration::from_millis(6_500).checked_sub(fetched.elapsed()) {
            std::thread::sleep(left);
        }
        let (_, e) = request(&emu, "/orders/3", 200);
        assert!(!served_from_cache(&e), "{}", steps_text(&e));
        assert_eq!(logins(&e).len(), 1, "{}", steps_text(&e));
        let second = echo.last().header("X-Db-Password").expect("a password");
        assert_ne!(second, first, "a new credential after the lease");
        assert_log_clean(
            &emu,
            &[("the first password", &first), ("the second", &second)],
        );
        // For the next Terraform of the matrix, whose plan checks the TTL again.
        role_ttl("120s");
    })])
    .envs(bao.env())
    .envs(emu.env()));
}

/// The failure modes, on three APIs: `strict` (`on_error = "fail"`), `lenient`
/// (`"continue"`) and `stalled` (its binding's Vault accepts connections and never answers).
/// A Vault that hangs: 502 once the send-request timeout (10 s) is over. A role whose policy
/// no longer grants `read` (edited in Vault after the apply): 502 with nothing of the secret
/// in the answer or the log, or the request forwarded without it, every variable of the block
/// emptied. OpenBao stopped: the cache still serves; once it is empty, 502 at once, or the
/// request forwarded without the secret.
#[test]
fn runtime_failures_answer_502_or_go_on_without_the_secret() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    let hole = Blackhole::start();
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
    for api in ["strict", "lenient", "stalled"] {
        create_api(&emu, api, api, echo.url(), Some(&api_policy_document("")));
    }
    let header = orders_key("header = \"X-Api-Key\"");
    let config = format!(
        "{}{}{}{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
        binding(&emu, "strict", "strict", &header),
        binding(
            &emu,
            "lenient",
            "lenient",
            &format!("on_error     = \"continue\"\n{header}")
        ),
        binding(
            &emu,
            "stalled",
            "stalled",
            &format!("vault_address = \"{}\"\n{header}", hole.url())
        ),
    );
    // A workdir of its own rather than a TestCase: OpenBao is stopped at the end, so there is
    // nothing to destroy against; the services go with the test.
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd.write_config(&config);
    wd.apply();
    assert_eq!(wd.plan(true), 0, "empty plan after apply");
    add_leftover_probe(&emu, "lenient");
    let secrets = [("the secret", KEY)];

    // Working.
    request(&emu, "/strict/1", 200);
    assert_eq!(echo.last().header("X-Api-Key").as_deref(), Some(KEY));
    request(&emu, "/lenient/1", 200);
    assert_eq!(echo.last().header("X-Api-Key").as_deref(), Some(KEY));
    assert_no_leftovers(&echo.last());

    // A Vault that never answers: 502 after the login's 10 s timeout, not later.
    let forwarded = echo.received().len();
    let (answer, e) = request(&emu, "/stalled/1", 502);
    assert!(
        answer.elapsed >= Duration::from_secs(9) && answer.elapsed < Duration::from_secs(20),
        "answered after {:?}",
        answer.elapsed
    );
    let steps = steps_text(&e);
    assert!(
        logins(&e).len() == 1 && logins(&e)[0].contains("failed (Timeout); ignored"),
        "{steps}"
    );
    // No secrets cached: the failed claim is marked for a second.
    assert!(reads(&e).is_empty(), "{steps}");
    assert!(
        stored_after_claim(&e)[0].starts_with("stored for 1 s"),
        "{steps}"
    );
    assert_eq!(
        echo.received().len(),
        forwarded,
        "nothing reached the backend"
    );

    // The role's policy no longer grants read (edited in Vault after the apply).
    let granted = bao.policy("orders-reader").expect("the trio's policy");
    bao.write_policy(
        "orders-reader",
        "path \"secret/data/elsewhere/*\" { capabilities = [\"read\"] }",
    );
    clear_cache(&emu);
    let (answer, e) = request(&emu, "/strict/2", 502);
    let steps = steps_text(&e);
    assert!(
        logins(&e).len() == 1 && logins(&e)[0].ends_with("-> 200"),
        "{steps}"
    );
    assert!(
        reads(&e).len() == 1 && reads(&e)[0].ends_with("-> 403"),
        "{steps}"
    );
    assert!(
        stored_after_claim(&e)[0].starts_with("stored for 1 s"),
        "nothing cached, the failed claim marked for a second: {steps}"
    );
    assert_eq!(
        echo.received().len(),
        forwarded,
        "nothing reached the backend"
    );
    assert_absent("the 502 answer", &answer.text(), &secrets);
    let (answer, e) = request(&emu, "/lenient/2", 200);
    assert!(
        stored_after_claim(&e)[0].starts_with("stored for 1 s"),
        "{}",
        steps_text(&e)
    );
    let got = echo.last();
    assert_eq!(
        got.header("X-Api-Key"),
        None,
        "forwarded without the secret"
    );
    assert_no_leftovers(&got);
    assert_absent("the backend's request", &got.text(), &secrets);
    assert_absent("the answer", &answer.text(), &secrets);

    // OpenBao stopped: the cached secret still serves; once the cache is empty, 502 at once
    // (the connection is refused), or forwarded without the secret.
    bao.write_policy("orders-reader", &granted);
    clear_cache(&emu);
    request(&emu, "/strict/3", 200);
    drop(bao);
    let (_, e) = request(&emu, "/strict/4", 200);
    assert!(
        served_from_cache(&e) && logins(&e).is_empty(),
        "{}",
        steps_text(&e)
    );
    assert_eq!(echo.last().header("X-Api-Key").as_deref(), Some(KEY));
    clear_cache(&emu);
    let (answer, e) = request(&emu, "/strict/5", 502);
    assert!(
        answer.elapsed < Duration::from_secs(10),
        "{:?}",
        answer.elapsed
    );
    let steps = steps_text(&e);
    assert!(
        logins(&e).len() == 1 && logins(&e)[0].contains("failed (BackendConnectionFailure)"),
        "{steps}"
    );
    assert_absent("the 502 answer", &answer.text(), &secrets);
    let (_, e) = request(&emu, "/lenient/3", 200);
    assert!(logins(&e)[0].contains("failed"), "{}", steps_text(&e));
    let got = echo.last();
    assert_eq!(got.header("X-Api-Key"), None);
    assert_no_leftovers(&got);

    assert_log_clean(&emu, &secrets);
}
