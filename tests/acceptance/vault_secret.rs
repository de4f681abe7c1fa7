//! `apim_vault_secret` against a real OpenBao and a real PostgreSQL: KV secrets feeding a
//! provider configuration and a provisioner, database credentials renewed while in use and
//! revoked at close, never in state, plan files or trace logs; the resource's example.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fixtures::{provider_at, provider_from_env, MANAGES_POLICIES};
use crate::support::{
    assert_absent, run, terraform_versions, Bao, Postgres, Step, TestCase, Workdir,
};

/// Lookups of every lease under `prefix`, every 250 ms while the closure runs: lease ID →
/// the distinct `(expire_time, last_renewal)` pairs seen.
fn observe_leases<T>(
    bao: &Bao,
    prefix: &str,
    f: impl FnOnce() -> T,
) -> (T, BTreeMap<String, Vec<(Value, Value)>>) {
    let seen: Mutex<BTreeMap<String, Vec<(Value, Value)>>> = Mutex::new(BTreeMap::new());
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let (status, body) = bao.api("LIST", &format!("sys/leases/lookup/{prefix}"), None);
                if status == 200 {
                    for k in body["data"]["keys"].as_array().cloned().unwrap_or_default() {
                        let id = format!("{prefix}{}", k.as_str().unwrap_or_default());
                        if let Some(l) = bao.lease(&id) {
                            let pair = (l["expire_time"].clone(), l["last_renewal"].clone());
                            let mut m = seen.lock().unwrap();
                            let v = m.entry(id).or_default();
                            if !v.contains(&pair) {
                                v.push(pair);
                            }
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        let out = f();
        done.store(true, Ordering::SeqCst);
        out
    });
    (out, seen.into_inner().unwrap())
}

fn read_file(wd: &Workdir, name: &str) -> String {
    std::fs::read_to_string(wd.path().join(name))
        .unwrap_or_else(|e| panic!("{name} was not written by the provisioner: {e}"))
}

#[test]
fn ephemeral_kv_secret_configures_a_provider_and_stays_out_of_state_plan_and_logs() {
    let bao = Bao::start();
    bao.write_policy("tf-admin", MANAGES_POLICIES);
    let deployer = bao.create_token(json!({"policies": ["tf-admin"], "ttl": "1h"}));
    let note_v1 = format!("kv-v1-{}", std::process::id());
    let note_v2 = format!("kv-v2-{}", std::process::id());
    bao.api_ok(
        "POST",
        "secret/data/ci/deployer",
        Some(json!({"data": {"token": deployer, "note": note_v1}})),
    );
    bao.api_ok(
        "POST",
        "secret/data/ci/deployer",
        Some(json!({"data": {"token": deployer, "note": note_v2, "count": 3}})),
    );
    let config = format!(
        r#"{}
ephemeral "apim_vault_secret" "current" {{
  path = "secret/ci/deployer"
}}

ephemeral "apim_vault_secret" "first" {{
  path    = "secret/data/ci/deployer"
  version = 1
}}

provider "apim" {{
  alias = "deployer"
  vault {{
    address = "{}"
    token   = ephemeral.apim_vault_secret.current.data["token"]
  }}
}}

resource "apim_vault_policy" "via_ephemeral" {{
  provider = apim.deployer
  name     = "from-ephemeral"
  rule {{
    path         = "secret/data/orders/*"
    capabilities = ["read"]
  }}
}}

resource "terraform_data" "observe" {{
  provisioner "local-exec" {{
    command = "printf '%s|%s|%s|%s|%s' \"$NOTE\" \"$FIRST\" \"$VERSION\" \"$COUNT\" \"$LEASED\" > observed.txt"
    environment = {{
      NOTE    = ephemeral.apim_vault_secret.current.data["note"]
      FIRST   = ephemeral.apim_vault_secret.first.data["note"]
      VERSION = ephemeral.apim_vault_secret.current.version
      COUNT   = ephemeral.apim_vault_secret.current.data["count"]
      LEASED  = ephemeral.apim_vault_secret.current.lease_id == null ? "no lease" : "leased"
    }}
  }}
}}
"#,
        provider_at(&bao),
        bao.addr()
    );

    for tf in terraform_versions() {
        let mut wd = Workdir::new(tf);
        wd.write_config(&config);
        wd.env("TF_LOG", "trace");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(bao.policy("from-ephemeral").is_some());
        assert_eq!(
            read_file(&wd, "observed.txt"),
            format!("{note_v2}|{note_v1}|2|3|no lease")
        );
        let secrets = [
            ("the deployer token", deployer.as_str()),
            ("the KV value", note_v2.as_str()),
            ("the KV v1 value", note_v1.as_str()),
        ];
        assert_absent("the trace log of apply", &apply.combined(), &secrets);
        assert!(
            apply.stderr.contains("[TRACE]") && apply.stderr.contains("OpenEphemeralResource"),
            "TF_LOG=trace was not in effect"
        );

        wd.env("TF_LOG", "");
        assert_absent("terraform.tfstate", &wd.state_raw(), &secrets);
        let plan = wd.run(&["plan", "-detailed-exitcode", "-out=saved.tfplan"]);
        assert_eq!(plan.code, 0, "the plan after apply is not empty:\n{plan}");
        // The plan file is a zip archive: its content is searched as `terraform show -json`
        // renders it (every value, sensitive ones included).
        let shown = wd.run_ok(&["show", "-json", "saved.tfplan"]);
        assert_absent(
            "terraform show -json of the saved plan",
            &shown.stdout,
            &secrets,
        );
        assert_absent(
            "terraform show -json of the state",
            &wd.run_ok(&["show", "-json"]).stdout,
            &secrets,
        );

        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
        assert!(bao.policy("from-ephemeral").is_none());
    }

    // Input mistakes are diagnostics naming the attribute.
    run(TestCase::new(vec![
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path    = \"sys/policies/acl/default\"\n  version = 2\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("`version` applies to KV version 2 secrets only"),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path = \"secret/ci/missing\"\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("Vault has no secret at \"secret/data/ci/missing\""),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path = \"/v1/secret/ci/deployer\"\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("give the API path without the `v1/` prefix"),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path    = \"secret/ci/deployer\"\n  version = 0\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("`version` must be a whole number, 1 or more"),
    ])
    .envs(bao.env()));
}

/// A configuration whose apply holds database credentials for `hold` seconds: a provisioner
/// writes the lease ID and password to files, waits, then logs in to PostgreSQL with them.
fn db_config(bao: &Bao, pg: &Postgres, role: &str, revoke: bool, hold: u32) -> String {
    format!(
        r#"{}
ephemeral "apim_vault_secret" "db" {{
  path            = "database/creds/{role}"
  revoke_on_close = {revoke}
}}

resource "terraform_data" "use" {{
  provisioner "local-exec" {{
    command = <<-EOT
      printf '%s' "$LEASE" > lease.txt
      printf '%s' "$PGPASSWORD" > password.txt
      printf '%s %s' "$DURATION" "$RENEWABLE" > lease-info.txt
      sleep {hold}
      {psql} -X -A -t -h 127.0.0.1 -p {port} -d postgres -c 'select current_user' > whoami.txt
    EOT
    environment = {{
      LEASE      = ephemeral.apim_vault_secret.db.lease_id
      DURATION   = ephemeral.apim_vault_secret.db.lease_duration
      RENEWABLE  = ephemeral.apim_vault_secret.db.renewable
      PGUSER     = ephemeral.apim_vault_secret.db.data["username"]
      PGPASSWORD = ephemeral.apim_vault_secret.db.data["password"]
    }}
  }}
}}
"#,
        provider_at(bao),
        psql = pg.psql_binary().display(),
        port = pg.port(),
    )
}

#[test]
fn ephemeral_database_credentials_are_renewed_while_in_use_and_revoked_at_close() {
    let pg = Postgres::start();
    let bao = Bao::start();
    // A 6 s lease: without renewal the credentials would be gone long before the login.
    bao.enable_database(&pg, &[("short", "6s", "5m")]);
    let prefix = "database/creds/short/";

    for tf in terraform_versions() {
        for revoke in [true, false] {
            let mut wd = Workdir::new(tf);
            wd.write_config(&db_config(&bao, &pg, "short", revoke, 14));
            wd.env("TF_LOG", "trace");
            let (apply, seen) = observe_leases(&bao, prefix, || wd.apply());
            assert!(apply.success(), "apply failed:\n{apply}");
            let lease = read_file(&wd, "lease.txt");
            let password = read_file(&wd, "password.txt");
            let user = read_file(&wd, "whoami.txt").trim().to_string();
            assert!(user.starts_with("v-"), "logged in as {user:?}");
            assert_eq!(read_file(&wd, "lease-info.txt"), "6 true");

            // Renewed while the provisioner held it: expire_time moved and last_renewal set.
            let history = seen
                .get(&lease)
                .unwrap_or_else(|| panic!("the lease {lease} was never observed: {seen:?}"));
            let renewals: Vec<&Value> = history
                .iter()
                .map(|(_, r)| r)
                .filter(|r| !r.is_null())
                .collect();
            assert!(
                renewals.len() >= 2,
                "[Terraform {}] expected at least two renewals in 14 s of a 6 s lease, saw {history:?}",
                tf.version
            );
            eprintln!(
                "lease: Terraform {} (revoke_on_close = {revoke}): a 6 s lease held 14 s; (expire_time, last_renewal) seen: {history:?}",
                tf.version
            );

            let secrets = [
                ("the database password", password.as_str()),
                ("the lease ID", lease.as_str()),
            ];
            assert_absent("the trace log of apply", &apply.combined(), &secrets);
            wd.env("TF_LOG", "");
            assert_absent("terraform.tfstate", &wd.state_raw(), &secrets[..1]);
            assert_absent(
                "terraform.tfstate",
                &wd.state_raw(),
                &[("the username", user.as_str())],
            );

            let count = pg.psql(&format!(
                "select count(*) from pg_roles where rolname = '{user}'"
            ));
            if revoke {
                // Revoked at close: the lease is gone and so is the database user.
                assert_eq!(bao.lease(&lease), None, "the lease outlived the run");
                assert_eq!(count, "0", "the database user outlived the run");
            } else {
                let l = bao
                    .lease(&lease)
                    .expect("revoke_on_close = false keeps the lease");
                assert!(!l["last_renewal"].is_null(), "{l}");
                assert_eq!(count, "1");
                bao.api_ok("PUT", "sys/leases/revoke", Some(json!({"lease_id": lease})));
            }
            let destroy = wd.destroy();
            assert!(destroy.success(), "{destroy}");
        }
    }
}

/// The resource's example, applied against a prepared server.
#[test]
fn secret_example_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pg = Postgres::start();
    let bao = Bao::start();
    bao.write_policy("tf-admin", MANAGES_POLICIES);
    bao.enable_database(&pg, &[("orders", "2h", "3h")]);
    let deployer = bao.create_token(json!({"policies": ["tf-admin"], "ttl": "1h"}));
    bao.api_ok(
        "POST",
        "secret/data/ci/deployer",
        Some(json!({"data": {"token": deployer}})),
    );
    let example = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    run(TestCase::new(vec![Step::config(format!(
        "{}\n{}",
        provider_from_env(),
        example("examples/ephemeral-resources/apim_vault_secret/ephemeral-resource.tf")
    ))])
    .envs(bao.env())
    .env("TF_VAR_database_host", "127.0.0.1")
    .env("TF_VAR_database_port", pg.port().to_string())
    .check_destroy(|| assert!(bao.policy("orders-reader").is_none())));
}
