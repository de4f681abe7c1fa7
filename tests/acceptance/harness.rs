//! Self-tests of the acceptance harness. Apart from one check that the provider binary
//! answers through `dev_overrides`, they use only Terraform's built-in `terraform_data`
//! resource, HashiCorp's null provider, OpenBao, PostgreSQL and the emulator, so they hold
//! independently of what the provider implements.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::json;

use crate::support::fixtures::{hcl_file, REQUIRED_PROVIDERS};
use crate::support::{
    contains_normalized, panic_message, run, terraform_versions, Bao, Emulator, Postgres, Step,
    TerraformBin, TestCase, Tools, Workdir, PROVIDER_SOURCE,
};

/// Runs `f`, which must panic; answers the panic message.
fn expect_panic(f: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected the harness to report a failure, but everything passed"),
        Err(payload) => panic_message(&*payload),
    }
}

#[test]
fn launcher_is_terraform_1_15_5() {
    let tools = Tools::get();
    let out = std::process::Command::new(&tools.terraform)
        .arg("version")
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Terraform v1.15.5\n"),
        "unexpected `terraform version` output: {stdout}"
    );

    let versions = terraform_versions();
    assert_eq!(versions[0].version, "1.15.5");
    assert_eq!(TerraformBin::primary().path, tools.terraform);
    for tf in versions {
        eprintln!("matrix: Terraform {} at {}", tf.version, tf.path.display());
    }
    if std::env::var("APIM_TEST_TF_MATRIX").as_deref() == Ok("0") {
        assert_eq!(versions.len(), 1);
    }
}

#[test]
fn terraform_data_lifecycle_with_import() {
    let destroyed = Cell::new(0);
    let config =
        |input: &str| format!("resource \"terraform_data\" \"x\" {{\n  input = \"{input}\"\n}}\n");
    run(TestCase::new(vec![
        Step::config(config("one")).check(|wd| {
            let x = wd.resource("terraform_data.x");
            assert_eq!(x["input"], "one");
            assert_eq!(x["output"], "one");
            assert!(wd.state_raw().contains("\"one\""));
        }),
        Step::config(config("two")).check(|wd| {
            assert_eq!(wd.resource("terraform_data.x")["output"], "two");
        }),
        // terraform_data imports with an ID only: input/output come back null.
        Step::import("terraform_data.x")
            .verify_ignore(&["input", "output"])
            .check(|iwd| {
                let x = iwd.resource("terraform_data.x");
                assert!(x["input"].is_null());
                assert!(!x["id"].as_str().unwrap().is_empty());
            }),
    ])
    .check_destroy(|| destroyed.set(destroyed.get() + 1)));
    assert_eq!(
        destroyed.get(),
        terraform_versions().len(),
        "check_destroy runs once per Terraform version"
    );
}

#[test]
fn import_verify_reports_differing_attributes() {
    let message = expect_panic(|| {
        run(TestCase::new(vec![
            Step::config("resource \"terraform_data\" \"x\" {\n  input = \"kept\"\n}\n"),
            Step::import("terraform_data.x"),
        ]))
    });
    assert!(message.contains("ImportStateVerify"), "{message}");
    assert!(
        message.contains("input: applied = \"kept\", imported = <absent>"),
        "{message}"
    );
}

#[test]
fn drift_step_detects_a_changed_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value.txt");
    let config = format!(
        "resource \"terraform_data\" \"x\" {{\n  input = trimspace({})\n}}\n",
        hcl_file(&file)
    );
    run(TestCase::new(vec![
        Step::config(config.clone())
            .pre_config(|| std::fs::write(&file, "one\n").unwrap())
            .check(|wd| assert_eq!(wd.resource("terraform_data.x")["output"], "one")),
        Step::drift(|| std::fs::write(&file, "two\n").unwrap())
            .plan_contains("terraform_data.x will be updated in-place")
            .plan_contains(r#"~ input = "one" -> "two""#),
        // applying again repairs the drift, and the plans are empty afterwards
        Step::config(config)
            .check(|wd| assert_eq!(wd.resource("terraform_data.x")["output"], "two")),
    ]));
}

#[test]
fn drift_step_without_a_change_fails() {
    let message = expect_panic(|| {
        run(TestCase::new(vec![
            Step::config("resource \"terraform_data\" \"x\" {\n  input = \"same\"\n}\n"),
            Step::drift(|| {}),
        ]))
    });
    assert!(
        message.contains("expected a non-empty plan after the out-of-band change"),
        "{message}"
    );
    assert!(message.contains("step 2/2 (drift)"), "{message}");
}

#[test]
fn non_empty_plan_after_apply_is_reported() {
    // timestamp() is unknown until apply: every plan replaces the resource.
    let config = "resource \"terraform_data\" \"x\" {\n  triggers_replace = timestamp()\n}\n";
    let message = expect_panic(|| run(TestCase::new(vec![Step::config(config)])));
    assert!(
        message.contains("After applying this test step, the non-refresh plan was not empty"),
        "{message}"
    );
    assert!(
        contains_normalized(&message, "terraform_data.x must be replaced"),
        "the message shows the plan: {message}"
    );
    // ... and is accepted when announced
    run(TestCase::new(vec![
        Step::config(config).expect_non_empty_plan()
    ]));
}

#[test]
fn expect_error_matches_plan_and_apply_errors() {
    run(TestCase::new(vec![
        // a plan-time error
        Step::config("resource \"terraform_data\" \"x\" {\n  no_such_argument = 1\n}\n")
            .expect_error("An argument named \"no_such_argument\" is not expected here."),
        // an apply-time error (provisioners only run during apply)
        Step::config(
            "resource \"terraform_data\" \"x\" {\n  provisioner \"local-exec\" {\n    command = \"exit 3\"\n  }\n}\n",
        )
        .expect_error("local-exec provisioner error"),
    ]));

    let message = expect_panic(|| {
        run(TestCase::new(vec![Step::config(
            "resource \"terraform_data\" \"x\" {}\n",
        )
        .expect_error("some error")]))
    });
    assert!(
        message
            .contains("expected an error containing \"some error\", but plan and apply succeeded"),
        "{message}"
    );

    let message = expect_panic(|| {
        run(TestCase::new(vec![Step::config(
            "resource \"terraform_data\" \"x\" {\n  bogus = true\n}\n",
        )
        .expect_error("some other error")]))
    });
    assert!(message.contains("got another error"), "{message}");
    assert!(message.contains("Unsupported argument"), "{message}");
}

#[test]
fn failure_report_shows_command_code_and_output() {
    let wd = Workdir::new(&TerraformBin::primary());
    wd.write_config("resource \"terraform_data\" \"x\" {\n  bogus = true\n}\n");
    let out = wd.run(&["plan"]);
    assert_eq!(out.code, 1);
    let report = out.to_string();
    assert!(
        report.starts_with("$ terraform plan -no-color -input=false\n"),
        "{report}"
    );
    assert!(report.contains("exit code 1"), "{report}");
    assert!(report.contains("Error: Unsupported argument"), "{report}");
    assert!(
        report.contains(&wd.path().display().to_string()),
        "{report}"
    );
    assert!(!report.contains('\u{1b}'), "no colour codes: {report}");

    let message = expect_panic(|| {
        wd.run_ok(&["validate"]);
    });
    assert!(
        message.contains("$ terraform validate -no-color"),
        "{message}"
    );
}

#[test]
fn null_provider_through_dev_overrides() {
    let config = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

data "null_data_source" "n" {
  inputs = { a = "b" }
}

resource "null_resource" "r" {
  triggers = { a = data.null_data_source.n.outputs["a"] }
}
"#;
    run(TestCase::new(vec![Step::config(config).check(|wd| {
        assert_eq!(wd.resource("null_resource.r")["triggers"]["a"], "b");
        assert_eq!(wd.resource("data.null_data_source.n")["outputs"]["a"], "b");
    })]));
}

#[test]
fn bao_dev_server_health_and_kv() {
    let bao = Bao::start();
    assert!(bao.addr().starts_with("http://127.0.0.1:"));
    assert_eq!(bao.token(), "root");

    let (status, health) = bao.api("GET", "sys/health", None);
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["sealed"], false);
    assert_eq!(health["version"], "2.7.2");

    bao.api_ok(
        "POST",
        "secret/data/harness/kv",
        Some(json!({"data": {"password": "s3cr3t"}})),
    );
    let (status, read) = bao.api("GET", "/v1/secret/data/harness/kv", None);
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["data"]["password"], "s3cr3t");

    let (status, list) = bao.api("LIST", "secret/metadata/harness", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"]["keys"], json!(["kv"]));

    let (status, missing) = bao.api("GET", "secret/data/harness/none", None);
    assert_eq!(status, 404, "{missing}");
}

#[test]
fn bao_audit_devices_need_the_unsafe_config() {
    let audit = |bao: &Bao| {
        let file = bao.dir().join("audit.log");
        bao.api(
            "PUT",
            "sys/audit/harness",
            Some(json!({"type": "file", "options": {"file_path": file.to_string_lossy()}})),
        )
    };

    let plain = Bao::start();
    let (status, body) = audit(&plain);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("declarative"), "{body}");

    let permissive = Bao::start_with_config("unsafe_allow_api_audit_creation = true\n");
    let (status, body) = audit(&permissive);
    assert!((200..300).contains(&status), "{status} {body}");
    permissive.api_ok("GET", "sys/health", None);
    assert!(permissive.dir().join("audit.log").exists());
}

#[test]
fn postgres_behind_bao_database_engine_issues_leased_credentials() {
    if !Postgres::available() {
        eprintln!("skipped: no PostgreSQL server binaries (scripts/setup with APIM_SETUP_SKIP_POSTGRES=1)");
        return;
    }
    let pg = Postgres::start();
    assert_eq!(pg.psql("SELECT 1"), "1");
    assert!(pg
        .psql_as("postgres", "wrong password", "SELECT 1")
        .is_err());

    let bao = Bao::start();
    bao.enable_database(&pg, &[("app", "5m", "1h")]);
    let creds = bao.api_ok("GET", "database/creds/app", None);
    let lease_id = creds["lease_id"].as_str().unwrap();
    assert!(lease_id.starts_with("database/creds/app/"), "{creds}");
    assert_eq!(creds["renewable"], true);
    assert_eq!(creds["lease_duration"], 300);
    let user = creds["data"]["username"].as_str().unwrap();
    let password = creds["data"]["password"].as_str().unwrap();
    assert_eq!(
        pg.psql_as(user, password, "SELECT current_user").unwrap(),
        user
    );

    let renewed = bao.api_ok(
        "PUT",
        "sys/leases/renew",
        Some(json!({"lease_id": lease_id, "increment": 600})),
    );
    assert_eq!(renewed["lease_id"], lease_id);
    bao.api_ok(
        "PUT",
        "sys/leases/revoke",
        Some(json!({"lease_id": lease_id})),
    );
    assert!(pg.psql_as(user, password, "SELECT 1").is_err());
}

#[test]
fn emulator_starts_and_describes_its_seed() {
    if Emulator::binary().is_none() {
        eprintln!("skipped: apim-emulator is not built (cargo build --workspace --bins)");
        return;
    }
    let emulator = Emulator::start();
    assert!(
        emulator.url().starts_with("https://127.0.0.1:"),
        "{}",
        emulator.info
    );
    assert!(emulator.ca_file().exists());
    assert!(emulator
        .api_management_id()
        .contains("/providers/Microsoft.ApiManagement/service/"));
    let inventory = emulator.inventory().to_string().to_lowercase();
    assert!(
        inventory.contains(&emulator.api_management_id().to_lowercase()),
        "the seeded instance is in the inventory: {inventory}"
    );
    let env = emulator.env();
    assert!(env
        .iter()
        .any(|(k, v)| k == "ARM_TENANT_ID" && v == emulator.tenant_id()));
}

#[test]
fn provider_binary_answers_through_dev_overrides() {
    for tf in terraform_versions() {
        let wd = Workdir::new(tf);
        wd.write_config(REQUIRED_PROVIDERS);
        let out = wd.run_ok(&["providers", "schema", "-json"]);
        let schema: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON schema ({e}):\n{out}"));
        let ours = &schema["provider_schemas"][PROVIDER_SOURCE];
        assert!(ours.is_object(), "no schema for {PROVIDER_SOURCE}:\n{out}");
        let out = wd.run_ok(&["validate"]);
        assert!(
            contains_normalized(&out.stdout, "Provider development overrides are in effect"),
            "{out}"
        );
    }
}

/// `jwts_in` finds an access token wherever it sits in a text, and nothing else that merely
/// looks like base64 JSON.
#[test]
fn jwts_in_finds_access_tokens_only() {
    let emu = Emulator::start();
    let token = emu.arm_token();
    let (s, minted) = emu.call("POST", "/_emulator/tokens", Some(json!({})));
    assert_eq!(s, 200, "{minted}");
    let mi = minted["access_token"].as_str().unwrap().to_string();
    let text = format!(
        "2026-01-01T00:00:00Z [TRACE] header Authorization=Bearer {token}\n{{\"access_token\":\"{mi}\"}}\nX-Vault-Index: eyJjbHVzdGVyIjoiYSIsInZhbHVlIjoiMSJ9 eyJhbGciOiJSUzI1NiJ9.notapayload"
    );
    assert_eq!(crate::support::jwts_in(&text), vec![token, mi]);
    assert!(crate::support::jwts_in("no tokens here: eyJ eyJ.eyJ.").is_empty());
}
