//! `apim_vault_rotate`, the action (Terraform 1.14+), end to end: a real `terraform apply`
//! writes bindings into two APIs' policies, requests through the emulator's gateway are
//! answered from its cache (`cache_ttl = 300`), then `terraform apply -invoke` writes the
//! secret's new version from an ephemeral variable and bumps the bindings' rotation
//! generation, and the very next requests carry the new value: only the generation can
//! explain it, as the cache would keep the old value for minutes. Nothing here imports the
//! provider's code; what is judged is what reached the backend, Vault's own answers, the
//! gateway's log, Terraform's output, state and trace.

use serde_json::json;

use crate::support::fixtures::{provider_from_env, trio_binding, vault_trio};

use crate::support::gateway::{
    clear_cache, create_api, get, last_entry, served_from_cache, steps_text, Echo,
};
use crate::support::{
    assert_absent, run_with, Bao, Emulator, Postgres, Step, TerraformBin, TestCase, Workdir,
};

const KEY: &str = "s3cr3t-orders-key";
const ROTATED: &str = "r0tated-by-the-action-key";
const OTHER: &str = "0ther-orders-secret";
const KV_PATH: &str = "secret/data/orders/backend";
const OTHER_PATH: &str = "secret/data/orders/other";

/// `apim_vault_binding.<label>` on `api` injecting `field` of `path` as header `header`,
/// cached for 300 s; `extra` adds settings.
fn binding(
    emu: &Emulator,
    label: &str,
    api: &str,
    path: &str,
    header: &str,
    extra: &str,
) -> String {
    trio_binding(
        label,
        &format!(
            "api_management_id = \"{}\"\napi_id            = \"{api}\"\nname              = \"{}\"\nsecret_path       = \"{path}\"\nsecret_field      = \"api_key\"\ncache_ttl         = 300\n{extra}inject {{\n  header = \"{header}\"\n}}",
            emu.api_management_id(),
            label.replace('_', "-"),
        ),
    )
}

/// The action block `label` rotating `path` from the ephemeral variable `new_key`.
fn kv_action(emu: &Emulator, label: &str, path: &str) -> String {
    format!(
        r#"action "apim_vault_rotate" "{label}" {{
  config {{
    api_management_id = "{}"
    kv {{
      path = "{path}"
      data = {{ api_key = var.new_key }}
    }}
  }}
}}
"#,
        emu.api_management_id()
    )
}

const NEW_KEY_VARIABLE: &str =
    "variable \"new_key\" {\n  type      = string\n  ephemeral = true\n  sensitive = true\n}\n";

/// A request through the gateway: the header `header` that reached the backend, and whether
/// the gateway's `cache-lookup-value` found the secrets.
#[track_caller]
fn request(emu: &Emulator, echo: &Echo, path: &str, header: &str) -> (Option<String>, bool) {
    let answer = get(emu, path);
    let entry = last_entry(emu);
    assert_eq!(
        answer.status,
        200,
        "GET {path}: {}\nsteps:\n{}",
        answer.text(),
        steps_text(&entry)
    );
    (echo.last().header(header), served_from_cache(&entry))
}

/// `terraform_data.rotation` (input `input`) whose updates run the action `orders`.
fn trigger(input: &str) -> String {
    format!(
        "resource \"terraform_data\" \"rotation\" {{\n  input = \"{input}\"\n  lifecycle {{\n    action_trigger {{\n      events  = [after_update]\n      actions = [action.apim_vault_rotate.orders]\n    }}\n  }}\n}}\n"
    )
}

/// The value Vault holds now at `path`'s `api_key`, and its version.
fn vault_value(bao: &Bao, path: &str) -> (String, u64) {
    let body = bao.api_ok("GET", path, None);
    (
        body["data"]["data"]["api_key"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body["data"]["metadata"]["version"]
            .as_u64()
            .unwrap_or_default(),
    )
}

/// KV v2: two APIs' bindings read the secret, a third binding reads another. Before the
/// action, requests are answered from the cache with the old value even after Vault's value
/// changed; the action writes the new version and bumps the two bindings; the next request
/// on each API fetches the new value at once. The plan after it is empty, neither the output,
/// the state nor Terraform's trace holds the value, a later edit of a binding keeps the
/// generation (the new value, still from the cache), a secret no binding reads is a warning,
/// and a resource's `action_trigger` runs the action too.
#[test]
fn vault_rotate_kv_new_version_reaches_the_gateway_on_the_next_request() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    create_api(&emu, "orders-api", "orders", echo.url(), None);
    create_api(&emu, "billing-api", "billing", echo.url(), None);
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
    bao.api_ok(
        "POST",
        OTHER_PATH,
        Some(json!({"data": {"api_key": OTHER}})),
    );
    let trace_dir = tempfile::tempdir().unwrap();
    let trace = trace_dir.path().join("trace.log");

    let config = |orders_extra: &str, trigger: &str| {
        format!(
            "{}{}{}{}{}{NEW_KEY_VARIABLE}{}{}{trigger}",
            provider_from_env(),
            vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
            binding(
                &emu,
                "orders_key",
                "orders-api",
                KV_PATH,
                "X-Api-Key",
                orders_extra
            ),
            binding(
                &emu,
                "orders_other",
                "orders-api",
                OTHER_PATH,
                "X-Other",
                ""
            ),
            binding(&emu, "billing_key", "billing-api", KV_PATH, "X-Api-Key", ""),
            kv_action(&emu, "orders", KV_PATH),
            kv_action(&emu, "unread", "secret/data/orders/unread"),
        )
    };

    let invoke = |wd: &Workdir, action: &str| {
        let out = wd.run(&[
            "apply",
            "-auto-approve",
            &format!("-invoke=action.apim_vault_rotate.{action}"),
        ]);
        assert!(out.success(), "the action failed:\n{out}");
        out
    };

    let case = TestCase::new(vec![
        Step::config(config("", "")).check(|wd| {
            clear_cache(&emu);
            let (got, hit) = request(&emu, &echo, "/orders/1", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(KEY), false));
            assert_eq!(echo.last().header("X-Other").as_deref(), Some(OTHER));
            let (got, hit) = request(&emu, &echo, "/billing/1", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(KEY), false));

            // Vault's value changes behind the gateway's back: the cache still answers.
            bao.api_ok(
                "POST",
                KV_PATH,
                Some(json!({"data": {"api_key": "changed-by-hand"}})),
            );
            let (got, hit) = request(&emu, &echo, "/orders/2", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(KEY), true), "cached for 300 s");
            let (_, version_before) = vault_value(&bao, KV_PATH);

            let out = invoke(wd, "orders");
            let text = out.combined();
            assert!(
                text.contains(&format!(
                    "wrote version {} of {KV_PATH}",
                    version_before + 1
                )),
                "the action reports the version it wrote:\n{out}"
            );
            assert!(
                text.contains("bumped the rotation generation of 2 bindings on 2 APIs")
                    && text.contains("orders-api")
                    && text.contains("billing-api"),
                "the action reports what it bumped:\n{out}"
            );
            assert_eq!(
                vault_value(&bao, KV_PATH),
                (ROTATED.to_string(), version_before + 1),
                "Vault holds the ephemeral value as a new version"
            );

            // The next request on each API fetches the new value: no wait for the cache.
            let (got, hit) = request(&emu, &echo, "/orders/3", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(ROTATED), false));
            assert_eq!(echo.last().header("X-Other").as_deref(), Some(OTHER));
            let (got, hit) = request(&emu, &echo, "/billing/2", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(ROTATED), false));
            let (got, hit) = request(&emu, &echo, "/orders/4", "X-Api-Key");
            assert_eq!(
                (got.as_deref(), hit),
                (Some(ROTATED), true),
                "and cached again"
            );

            // The generation is no setting: the bindings plan nothing.
            assert_eq!(wd.plan(true), 0, "the plan after the action is empty");
            assert_eq!(wd.plan(false), 0, "and without refresh");

            // A secret that no binding reads: written, and a warning.
            bao.api_ok(
                "POST",
                "secret/data/orders/unread",
                Some(json!({"data": {"api_key": "x"}})),
            );
            let out = invoke(wd, "unread");
            let text = out.combined();
            assert!(
                text.contains("wrote version 2 of secret/data/orders/unread")
                    && text.contains("No binding reads the rotated secret"),
                "a warning, not an error:\n{out}"
            );

            let traced = std::fs::read_to_string(&trace).unwrap_or_default();
            assert!(traced.len() > 10_000, "TF_LOG=trace was in effect");
            for (what, text) in [
                ("the action's output", text.as_str()),
                ("the state", &wd.state_raw()),
                ("Terraform's trace", &traced),
            ] {
                assert_absent(what, text, &[("the new value", ROTATED)]);
            }
        }),
        // An edit of a binding that leaves its cache key alone (`on_error`) keeps the
        // generation: the request is still answered from the cache with the new value. Had
        // the edit lost it, the key would be the old one, whose cache entry holds the old
        // value.
        Step::config(config("on_error = \"continue\"\n", &trigger("v1"))).check(|_| {
            let (got, hit) = request(&emu, &echo, "/orders/5", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(ROTATED), true));
        }),
        // A resource's `action_trigger` runs the action in the apply that updates it: a new
        // version, and the next request misses the cache.
        Step::config(config("on_error = \"continue\"\n", &trigger("v2"))).check(|_| {
            assert_eq!(vault_value(&bao, KV_PATH), (ROTATED.to_string(), 4));
            let (got, hit) = request(&emu, &echo, "/orders/6", "X-Api-Key");
            assert_eq!((got.as_deref(), hit), (Some(ROTATED), false));
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .env("TF_VAR_new_key", ROTATED)
    .env("TF_LOG", "trace")
    .env("TF_LOG_PATH", trace.display().to_string());
    run_with(&TerraformBin::primary(), &case);
}

/// An ARM failure after the secret was written: the diagnostic says what was done (the
/// version written, the bindings bumped) and what was not (the API whose policy could not be
/// written, and why), and to run the action again; running it again once the cause is gone
/// bumps the rest, and that API's next request serves the new value.
#[test]
fn vault_rotate_arm_failure_after_the_write_says_what_was_done_and_to_run_again() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    create_api(&emu, "orders-api", "orders", echo.url(), None);
    create_api(&emu, "billing-api", "billing", echo.url(), None);
    bao.api_ok("POST", KV_PATH, Some(json!({"data": {"api_key": KEY}})));
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.envs(bao.env())
        .envs(emu.env())
        .env("TF_VAR_new_key", ROTATED);
    wd.write_config(&format!(
        "{}{}{}{}{NEW_KEY_VARIABLE}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600"),
        binding(&emu, "orders_key", "orders-api", KV_PATH, "X-Api-Key", ""),
        binding(&emu, "billing_key", "billing-api", KV_PATH, "X-Api-Key", ""),
        kv_action(&emu, "orders", KV_PATH),
    ));
    wd.run_ok(&["apply", "-auto-approve"]);
    clear_cache(&emu);
    let (got, _) = request(&emu, &echo, "/billing/1", "X-Api-Key");
    assert_eq!(got.as_deref(), Some(KEY));

    emu.fault(json!({"method": "PUT", "path": "*/apis/billing-api/policies/*", "status": 403}));
    let out = wd.run(&[
        "apply",
        "-auto-approve",
        "-invoke=action.apim_vault_rotate.orders",
    ]);
    assert!(!out.success(), "the action reports the failure:\n{out}");
    let text = crate::support::normalize_text(&out.combined());
    for expected in [
        "Unable to finish apim_vault_rotate",
        &format!("Done: wrote version 2 of {KV_PATH}"),
        "bumped the rotation generation of 1 binding on 1 API (orders-api)",
        "API \"billing-api\"",
        "run the action again",
    ] {
        assert!(text.contains(expected), "expected {expected:?}:\n{out}");
    }
    assert_absent("the action's output", &text, &[("the new value", ROTATED)]);
    let (got, hit) = request(&emu, &echo, "/orders/1", "X-Api-Key");
    assert_eq!(
        (got.as_deref(), hit),
        (Some(ROTATED), false),
        "orders was bumped"
    );
    let (got, hit) = request(&emu, &echo, "/billing/2", "X-Api-Key");
    assert_eq!((got.as_deref(), hit), (Some(KEY), true), "billing was not");

    emu.clear_faults();
    let out = wd.run_ok(&[
        "apply",
        "-auto-approve",
        "-invoke=action.apim_vault_rotate.orders",
    ]);
    assert!(
        out.combined()
            .contains("bumped the rotation generation of 2 bindings on 2 APIs"),
        "{out}"
    );
    let (got, hit) = request(&emu, &echo, "/billing/3", "X-Api-Key");
    assert_eq!((got.as_deref(), hit), (Some(ROTATED), false));
    assert_eq!(wd.plan(true), 0);
    wd.destroy().expect_success();
}

/// A database static role: the action has Vault rotate its password and bumps the binding
/// reading `database/static-creds/<role>`, which serves the new password on the next request;
/// the new password logs in to PostgreSQL, the old one no longer does. The password is
/// cached (static credentials come without a lease; the block keeps them until shortly before
/// Vault's next rotation, `data.ttl`), so only the bump explains the new one.
#[test]
fn vault_rotate_database_static_role_reaches_the_gateway_on_the_next_request() {
    if !Postgres::available() {
        eprintln!("skipped: PostgreSQL is not installed (scripts/setup)");
        return;
    }
    let pg = Postgres::start();
    let bao = Bao::start();
    let emu = Emulator::start();
    let echo = Echo::start();
    create_api(&emu, "orders-api", "orders", echo.url(), None);
    bao.enable_database(&pg, &[]);
    pg.psql("CREATE ROLE orders_app WITH LOGIN PASSWORD 'initial-password';");
    bao.api_ok(
        "POST",
        "database/static-roles/orders",
        Some(json!({
            "db_name": "pg",
            "username": "orders_app",
            "rotation_period": "24h",
        })),
    );
    let creds = |bao: &Bao| {
        let body = bao.api_ok("GET", "database/static-creds/orders", None);
        body["data"]["password"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let config = format!(
        r#"{}{}{}action "apim_vault_rotate" "orders" {{
  config {{
    api_management_id = "{}"
    api_ids           = ["orders-api"]
    database_static_role {{
      mount = "database"
      name  = "orders"
    }}
  }}
}}
"#,
        provider_from_env(),
        vault_trio(&emu, "database/static-creds/*", "token_ttl = 600"),
        trio_binding(
            "orders_db",
            &format!(
                "api_management_id = \"{}\"\napi_id            = \"orders-api\"\nname              = \"orders-db\"\nsecret_path       = \"database/static-creds/orders\"\nsecret_field      = \"password\"\ncache_ttl         = 300\ninject {{\n  header = \"X-Db-Password\"\n}}",
                emu.api_management_id()
            )
        ),
        emu.api_management_id(),
    );
    let case = TestCase::new(vec![Step::config(config).check(|wd| {
        clear_cache(&emu);
        let before = creds(&bao);
        let (got, hit) = request(&emu, &echo, "/orders/1", "X-Db-Password");
        assert_eq!((got.as_deref(), hit), (Some(before.as_str()), false));
        let (got, hit) = request(&emu, &echo, "/orders/2", "X-Db-Password");
        assert_eq!(
            (got.as_deref(), hit),
            (Some(before.as_str()), true),
            "the static credentials are cached"
        );

        let out = wd.run(&[
            "apply",
            "-auto-approve",
            "-invoke=action.apim_vault_rotate.orders",
        ]);
        assert!(out.success(), "the action failed:\n{out}");
        let text = out.combined();
        assert!(
            text.contains("rotated the password of database static role \"orders\" on database")
                && text
                    .contains("bumped the rotation generation of 1 binding on 1 API (orders-api)"),
            "{out}"
        );
        let after = creds(&bao);
        assert_ne!(after, before, "Vault rotated the password");
        let (got, _) = request(&emu, &echo, "/orders/3", "X-Db-Password");
        assert_eq!(got.as_deref(), Some(after.as_str()));
        assert!(
            pg.psql_as("orders_app", &after, "SELECT 1").is_ok(),
            "the new password logs in"
        );
        assert!(
            pg.psql_as("orders_app", &before, "SELECT 1").is_err(),
            "the old one no longer does"
        );
        assert_absent(
            "the action's output",
            &text,
            &[("the new password", &after)],
        );
        assert_eq!(wd.plan(true), 0, "the plan after the action is empty");
    })])
    .envs(bao.env())
    .envs(emu.env());
    run_with(&TerraformBin::primary(), &case);
}

/// Configuration mistakes are diagnostics naming the attribute, before anything is done.
#[test]
fn vault_rotate_config_mistakes_are_diagnostics() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let tf = TerraformBin::primary();
    let mut wd = Workdir::new(&tf);
    wd.envs(bao.env()).envs(emu.env());
    for (config, expected) in [
        (
            format!("action \"apim_vault_rotate\" \"x\" {{\n  config {{\n    api_management_id = \"{}\"\n  }}\n}}\n", emu.api_management_id()),
            "Exactly one of `kv`, `database_static_role` must be set",
        ),
        (
            format!("action \"apim_vault_rotate\" \"x\" {{\n  config {{\n    api_management_id = \"{}\"\n    api_ids = []\n    database_static_role {{\n      mount = \"database\"\n      name  = \"orders\"\n    }}\n  }}\n}}\n", emu.api_management_id()),
            "`api_ids` is empty",
        ),
        (
            "action \"apim_vault_rotate\" \"x\" {\n  config {\n    api_management_id = \"not-an-id\"\n    database_static_role {\n      mount = \"/database/\"\n      name  = \"orders\"\n    }\n  }\n}\n".to_string(),
            "Invalid mount path",
        ),
        (
            // A non-ephemeral value in `data` is welcome too (write-only takes both).
            format!("action \"apim_vault_rotate\" \"x\" {{\n  config {{\n    api_management_id = \"{}\"\n    kv {{\n      path = \"v1/secret/data/x\"\n      data = {{ a = \"b\" }}\n    }}\n  }}\n}}\n", emu.api_management_id()),
            "Invalid secret path",
        ),
    ] {
        wd.write_config(&format!("{}{config}", provider_from_env()));
        let out = wd.run(&["validate"]);
        assert!(!out.success(), "validate accepted:\n{config}\n{out}");
        assert!(
            crate::support::contains_normalized(&out.combined(), expected),
            "expected {expected:?}:\n{out}"
        );
    }
}

/// The documented example (examples/actions/apim_vault_rotate/action.tf) is valid
/// configuration for Terraform: both forms, the ephemeral variable and the `action_trigger`.
#[test]
fn vault_rotate_example_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example =
        std::fs::read_to_string(root.join("examples/actions/apim_vault_rotate/action.tf")).unwrap();
    let wd = Workdir::new(&TerraformBin::primary());
    wd.write_config(&format!("{}{example}", provider_from_env()));
    let out = wd.run_ok(&["validate"]);
    assert!(
        out.combined().contains("The configuration is valid"),
        "{out}"
    );
}

/// Terraform 1.11 has no actions: the provider's action schema is ignored, everything else
/// works (a resource applies and plans empty), and an `action` block is Terraform's own
/// error, not the provider's.
#[test]
fn vault_rotate_terraform_1_11_ignores_the_action_and_nothing_else_breaks() {
    let Some(old) = crate::support::terraform_versions()
        .iter()
        .find(|t| t.version_tuple() < (1, 14, 0))
    else {
        eprintln!("skipped: no Terraform older than 1.14 on PATH");
        return;
    };
    let bao = Bao::start();
    let emu = Emulator::start();
    let mut wd = Workdir::new(old);
    wd.envs(bao.env()).envs(emu.env());
    let policy = format!(
        "{}resource \"apim_vault_policy\" \"p\" {{\n  name = \"p\"\n  rule {{\n    path         = \"secret/data/*\"\n    capabilities = [\"read\"]\n  }}\n}}\n",
        provider_from_env()
    );
    wd.write_config(&policy);
    wd.run_ok(&["apply", "-auto-approve"]);
    assert_eq!(wd.plan(true), 0);
    let schema = wd.run_ok(&["providers", "schema", "-json"]);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).unwrap();
    let ours = schema["provider_schemas"]
        .as_object()
        .and_then(|p| p.values().next())
        .expect("the provider's schemas");
    assert!(ours["resource_schemas"].get("apim_vault_binding").is_some());
    assert!(
        ours.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("action")),
        "Terraform {} lists no action: {:?}",
        old.version,
        ours.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    wd.write_config(&format!(
        "{}{}",
        provider_from_env(),
        kv_action(&emu, "orders", KV_PATH)
    ));
    let out = wd.run(&["validate"]);
    assert!(!out.success());
    assert!(
        out.combined().contains("Unsupported block type"),
        "Terraform's own message:\n{out}"
    );
    wd.write_config(&policy);
    wd.destroy().expect_success();
}
