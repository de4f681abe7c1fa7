//! Leases against a real OpenBao and a real PostgreSQL: `apim_vault_lease` over pki leases
//! (role with `generate_lease = true`) and database credentials; `apim_vault_secret` feeding
//! a provider configuration and a provisioner, renewed while in use and revoked at close,
//! never in state, plan files or trace logs; the provider's own token outliving its TTL
//! during a long apply (configured token, and JWT login).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    run, terraform_versions, Bao, Emulator, Postgres, Step, TerraformBin, TestCase, Tools, Workdir,
};

const HEADER: &str = r#"
terraform {
  required_providers {
    apim = { source = "apimvault/apim" }
  }
}
"#;

fn provider(bao: &Bao) -> String {
    format!(
        "{HEADER}\nprovider \"apim\" {{\n  vault {{\n    address = \"{}\"\n    token   = \"{}\"\n  }}\n}}\n",
        bao.addr(),
        bao.token()
    )
}

/// A pki mount whose role `web` issues leased (non-renewable) certificates.
fn setup_pki(bao: &Bao) {
    bao.api_ok("POST", "sys/mounts/pki", Some(json!({"type": "pki"})));
    bao.api_ok(
        "POST",
        "pki/root/generate/internal",
        Some(json!({"common_name": "example.com", "ttl": "720h"})),
    );
    bao.api_ok(
        "POST",
        "pki/roles/web",
        Some(json!({
            "allowed_domains": "example.com",
            "allow_subdomains": true,
            "generate_lease": true,
            "ttl": "1h",
            "max_ttl": "2h",
        })),
    );
}

fn issue_cert(bao: &Bao, cn: &str) -> String {
    let r = bao.api_ok(
        "POST",
        "pki/issue/web",
        Some(json!({"common_name": format!("{cn}.example.com")})),
    );
    r["lease_id"]
        .as_str()
        .expect("a leased certificate")
        .to_string()
}

/// The database engine against `pg`, with `role` issuing credentials for `ttl` (renewable up
/// to `max_ttl`).
fn setup_database(bao: &Bao, pg: &Postgres, roles: &[(&str, &str, &str)]) {
    bao.api_ok(
        "POST",
        "sys/mounts/database",
        Some(json!({"type": "database"})),
    );
    bao.api_ok(
        "POST",
        "database/config/pg",
        Some(json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": pg.bao_connection_url(),
            "username": pg.superuser(),
            "password": pg.password(),
            "allowed_roles": "*",
        })),
    );
    for (role, ttl, max_ttl) in roles {
        bao.api_ok(
            "POST",
            &format!("database/roles/{role}"),
            Some(json!({
                "db_name": "pg",
                "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
                "default_ttl": ttl,
                "max_ttl": max_ttl,
            })),
        );
    }
}

/// New database credentials: (lease ID, username, password).
fn db_creds(bao: &Bao, role: &str) -> (String, String, String) {
    let r = bao.api_ok("GET", &format!("database/creds/{role}"), None);
    (
        r["lease_id"].as_str().unwrap().to_string(),
        r["data"]["username"].as_str().unwrap().to_string(),
        r["data"]["password"].as_str().unwrap().to_string(),
    )
}

/// `sys/leases/lookup` with the root token: the lease's data, or `None` for "invalid lease".
fn lookup(bao: &Bao, lease_id: &str) -> Option<Value> {
    let (status, body) = bao.api(
        "PUT",
        "sys/leases/lookup",
        Some(json!({"lease_id": lease_id})),
    );
    match status {
        200 => Some(body["data"].clone()),
        400 if body.to_string().contains("invalid lease") => None,
        other => panic!("lookup of {lease_id} answered {other}: {body}"),
    }
}

/// A token with `policies` (and `extra` creation parameters) made with the root token.
fn token(bao: &Bao, policies: &[&str], extra: Value) -> String {
    let mut body = json!({"policies": policies});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = bao.api_ok("POST", "auth/token/create", Some(body));
    r["auth"]["client_token"].as_str().unwrap().to_string()
}

/// A policy that may manage ACL policies (what the configurations under test do).
fn policy_admin(bao: &Bao) {
    bao.api_ok(
        "PUT",
        "sys/policies/acl/tf-admin",
        Some(json!({"policy": "path \"sys/policies/acl/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\npath \"sys/policy/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }\n"})),
    );
}

fn policy_exists(bao: &Bao, name: &str) -> bool {
    bao.api("GET", &format!("sys/policies/acl/{name}"), None).0 == 200
}

fn psql_path() -> String {
    Tools::get()
        .pg_bin
        .as_ref()
        .map(|b| b.join("psql"))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "psql".into())
}

/// Panics when any of `needles` occurs in `haystack` (named `what`).
#[track_caller]
fn assert_absent(what: &str, haystack: &str, needles: &[(&str, &str)]) {
    for (name, needle) in needles {
        assert!(
            !needle.is_empty(),
            "{name} is empty: the test observed nothing"
        );
        assert!(
            !haystack.contains(needle),
            "{what} contains {name} ({} bytes searched)",
            haystack.len()
        );
    }
}

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
                        if let Some(l) = lookup(bao, &id) {
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
fn lease_data_source_reads_pki_and_database_leases_without_side_effects() {
    let pg = Postgres::start();
    let bao = Bao::start();
    setup_pki(&bao);
    setup_database(&bao, &pg, &[("app", "1h", "2h")]);
    let pki = [issue_cert(&bao, "a"), issue_cert(&bao, "b")];
    let db = [db_creds(&bao, "app").0, db_creds(&bao, "app").0];
    let all: Vec<&String> = pki.iter().chain(db.iter()).collect();
    let before: Vec<Value> = all.iter().map(|id| lookup(&bao, id).unwrap()).collect();

    let limited = token(&bao, &["default"], json!({}));
    let config = format!(
        r#"{}
data "apim_vault_lease" "one" {{
  lease_id = "{}"
}}

data "apim_vault_lease" "pki" {{
  prefix = "pki/issue/web/"
}}

# From the mount: the data source walks database/ -> creds/ -> app/.
data "apim_vault_lease" "db" {{
  prefix        = "database"
  ttl_threshold = 7200
}}

data "apim_vault_lease" "none" {{
  prefix = "database/creds/nobody/"
}}
"#,
        provider(&bao),
        pki[0]
    );

    // Field for field against sys/leases/lookup, read right after the state was.
    let matches_lookup = |state: &Value| {
        for l in state["leases"].as_array().unwrap() {
            let id = l["lease_id"].as_str().unwrap();
            let now = lookup(&bao, id).unwrap();
            assert_eq!(l["lease_id"], now["id"]);
            for f in ["issue_time", "expire_time", "last_renewal", "renewable"] {
                assert_eq!(l[f], now[f], "{f} of {id}");
            }
            let (was, is) = (l["ttl"].as_i64().unwrap(), now["ttl"].as_i64().unwrap());
            assert!(
                is <= was && was - is <= 30,
                "ttl of {id}: {was} in state, {is} now"
            );
        }
    };

    let check = |wd: &Workdir| {
        let one = wd.resource("data.apim_vault_lease.one");
        assert_eq!(one["count"], 1);
        assert_eq!(one["leases"][0]["lease_id"], pki[0].as_str());
        assert_eq!(one["leases"][0]["renewable"], false);
        assert_eq!(one["expires_soonest"], one["leases"][0]["expire_time"]);
        assert_eq!(one["min_ttl"], one["leases"][0]["ttl"]);
        matches_lookup(&one);

        let p = wd.resource("data.apim_vault_lease.pki");
        assert_eq!(p["count"], 2);
        assert_eq!(p["lease_count"], 2);
        let mut ids: Vec<&str> = pki.iter().map(String::as_str).collect();
        ids.sort();
        let got: Vec<&str> = p["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lease_id"].as_str().unwrap())
            .collect();
        assert_eq!(got, ids, "sorted by lease ID");
        assert_eq!(p["below_threshold"], json!([]));
        matches_lookup(&p);

        let d = wd.resource("data.apim_vault_lease.db");
        assert_eq!(d["count"], 2);
        assert!(d["leases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["renewable"] == true));
        let ttls: Vec<i64> = d["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ttl"].as_i64().unwrap())
            .collect();
        assert_eq!(d["min_ttl"].as_i64(), ttls.iter().min().copied());
        assert!(d["min_ttl"].as_i64().unwrap() <= 3600);
        // The database leases were issued in order: the first expires first.
        let first = lookup(&bao, &db[0]).unwrap();
        assert_eq!(d["expires_soonest"], first["expire_time"]);
        let mut below: Vec<String> = d["below_threshold"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        below.sort();
        let mut want = db.to_vec();
        want.sort();
        assert_eq!(below, want, "both expire within 7200 s");
        matches_lookup(&d);

        let n = wd.resource("data.apim_vault_lease.none");
        assert_eq!(n["count"], 0);
        assert_eq!(n["leases"], json!([]));
        assert_eq!(n["min_ttl"], Value::Null);
        assert_eq!(n["expires_soonest"], Value::Null);
    };

    let limited_provider = format!(
        "provider \"apim\" {{\n  alias = \"limited\"\n  vault {{\n    address = \"{}\"\n    token   = \"{limited}\"\n  }}\n}}\n",
        bao.addr()
    );
    run(TestCase::new(vec![
        Step::config(config.clone()).check(check),
        // Plans read the data sources again: still nothing changes (checked below).
        Step::config(config.clone()).check(check),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"gone\" {{\n  lease_id = \"pki/issue/web/NoSuchLease\"\n}}\n",
            provider(&bao)
        ))
        .expect_error("invalid lease"),
        Step::config(format!(
            "{}\n{limited_provider}\ndata \"apim_vault_lease\" \"denied\" {{\n  provider = apim.limited\n  prefix   = \"database/creds/app/\"\n}}\n",
            provider(&bao)
        ))
        .expect_error("needs the `list` and `sudo` capabilities on `sys/leases/lookup/database/creds/app/*`"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"both\" {{\n  lease_id = \"{}\"\n  prefix   = \"pki/\"\n}}\n",
            provider(&bao),
            pki[0]
        ))
        .expect_error("Only one of `lease_id`, `prefix` may be set"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"neither\" {{\n  ttl_threshold = 60\n}}\n",
            provider(&bao)
        ))
        .expect_error("Exactly one of"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"warn\" {{\n  prefix        = \"pki/issue/web/\"\n  ttl_threshold = 86400\n}}\n",
            provider(&bao)
        ))
        .check(|wd| {
            let w = wd.resource("data.apim_vault_lease.warn");
            assert_eq!(w["below_threshold"].as_array().unwrap().len(), 2);
            let plan = wd.run(&["plan"]);
            assert!(
                plan.combined().contains("2 lease(s) expire within 86400 seconds"),
                "{plan}"
            );
        }),
    ])
    .envs(bao.env()));

    // Reading never renewed, revoked or changed a lease.
    for (id, was) in all.iter().zip(&before) {
        let now = lookup(&bao, id).unwrap_or_else(|| panic!("{id} disappeared"));
        for f in ["issue_time", "expire_time", "last_renewal"] {
            assert_eq!(now[f], was[f], "{f} of {id} changed");
        }
    }
}

#[test]
fn ephemeral_kv_secret_configures_a_provider_and_stays_out_of_state_plan_and_logs() {
    let bao = Bao::start();
    policy_admin(&bao);
    let deployer = token(&bao, &["tf-admin"], json!({"ttl": "1h"}));
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
        provider(&bao),
        bao.addr()
    );

    for tf in terraform_versions() {
        let mut wd = Workdir::new(tf);
        wd.write_config(&config);
        wd.env("TF_LOG", "trace");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(policy_exists(&bao, "from-ephemeral"));
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
        assert!(!policy_exists(&bao, "from-ephemeral"));
    }

    // Input mistakes are diagnostics naming the attribute.
    run(TestCase::new(vec![
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path    = \"sys/policies/acl/default\"\n  version = 2\n}}\n",
            provider(&bao)
        ))
        .expect_error("`version` applies to KV version 2 secrets only"),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path = \"secret/ci/missing\"\n}}\n",
            provider(&bao)
        ))
        .expect_error("Vault has no secret at \"secret/data/ci/missing\""),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path = \"/v1/secret/ci/deployer\"\n}}\n",
            provider(&bao)
        ))
        .expect_error("give the API path without the `v1/` prefix"),
        Step::config(format!(
            "{}\nephemeral \"apim_vault_secret\" \"x\" {{\n  path    = \"secret/ci/deployer\"\n  version = 0\n}}\n",
            provider(&bao)
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
        provider(bao),
        psql = psql_path(),
        port = pg.port(),
    )
}

#[test]
fn ephemeral_database_credentials_are_renewed_while_in_use_and_revoked_at_close() {
    let pg = Postgres::start();
    let bao = Bao::start();
    // A 6 s lease: without renewal the credentials would be gone long before the login.
    setup_database(&bao, &pg, &[("short", "6s", "5m")]);
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
                assert_eq!(lookup(&bao, &lease), None, "the lease outlived the run");
                assert_eq!(count, "0", "the database user outlived the run");
            } else {
                let l = lookup(&bao, &lease).expect("revoke_on_close = false keeps the lease");
                assert!(!l["last_renewal"].is_null(), "{l}");
                assert_eq!(count, "1");
                bao.api_ok("PUT", "sys/leases/revoke", Some(json!({"lease_id": lease})));
            }
            let destroy = wd.destroy();
            assert!(destroy.success(), "{destroy}");
        }
    }
}

/// A config that creates a policy, waits `hold` seconds in a provisioner, then creates a
/// second policy: the provider's token must still work after the wait.
fn slow_config(provider_block: &str, hold: u32) -> String {
    format!(
        r#"{HEADER}
{provider_block}

resource "apim_vault_policy" "before" {{
  name   = "before-the-wait"
  policy = "path \"secret/data/a\" {{ capabilities = [\"read\"] }}"
}}

resource "terraform_data" "wait" {{
  depends_on = [apim_vault_policy.before]
  provisioner "local-exec" {{
    command = "sleep {hold}"
  }}
}}

resource "apim_vault_policy" "after" {{
  depends_on = [terraform_data.wait]
  name       = "after-the-wait"
  policy     = "path \"secret/data/b\" {{ capabilities = [\"read\"] }}"
}}
"#
    )
}

fn first_version() -> &'static TerraformBin {
    &terraform_versions()[0]
}

#[test]
fn an_apply_outlives_the_ttl_of_a_configured_renewable_token() {
    let bao = Bao::start();
    policy_admin(&bao);
    let block = format!(
        "provider \"apim\" {{\n  vault {{\n    address = \"{}\"\n  }}\n}}\n",
        bao.addr()
    );
    for tf in terraform_versions() {
        let five_seconds = json!({"ttl": "5s", "explicit_max_ttl": "10m"});
        let short = token(&bao, &["tf-admin"], five_seconds.clone());
        let control = token(&bao, &["tf-admin"], five_seconds);
        let mut wd = Workdir::new(tf);
        wd.write_config(&slow_config(&block, 12));
        wd.env("VAULT_TOKEN", &short);
        wd.env("TF_LOG_PROVIDER", "debug");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(policy_exists(&bao, "before-the-wait"));
        assert!(policy_exists(&bao, "after-the-wait"));
        assert!(apply.stderr.contains("Vault token renewed"), "{apply}");
        assert_absent(
            "the debug log",
            &apply.combined(),
            &[("the token", short.as_str())],
        );

        // The TTL was real: the same kind of token, left alone, expired during the wait.
        let (status, _) = bao.api("POST", "auth/token/lookup", Some(json!({"token": control})));
        assert_ne!(status, 200, "the control token should have expired");
        let looked = bao.api_ok("POST", "auth/token/lookup", Some(json!({"token": short})));
        assert!(!looked["data"]["last_renewal_time"].is_null(), "{looked}");
        eprintln!(
            "lease: Terraform {}: a 5 s token outlived a 12 s wait with {} renewals; after apply: ttl {} s, last_renewal_time {}",
            tf.version,
            apply.stderr.matches("Vault token renewed").count(),
            looked["data"]["ttl"],
            looked["data"]["last_renewal_time"]
        );

        wd.env("VAULT_TOKEN", bao.token());
        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
        assert!(!policy_exists(&bao, "after-the-wait"));
    }
}

const AUDIENCE: &str = "api://terraform-ci";

fn mi_token(emu: &Emulator) -> String {
    let url = url::Url::parse_with_params(
        &format!("{}/metadata/identity/oauth2/token", emu.url()),
        [
            ("api-version", "2018-02-01"),
            ("resource", AUDIENCE),
            ("msi_res_id", emu.api_management_id()),
        ],
    )
    .unwrap();
    let mi: Value = emu
        .http()
        .get(url)
        .header("Metadata", "true")
        .send()
        .unwrap()
        .json()
        .unwrap();
    mi["access_token"].as_str().unwrap().to_string()
}

#[test]
fn an_apply_outlives_the_ttl_and_max_ttl_of_a_jwt_login_token() {
    let bao = Bao::start();
    let emu = Emulator::start();
    policy_admin(&bao);
    let issuer = format!("{}/{}/", emu.url(), emu.tenant_id());
    bao.api_ok("POST", "sys/auth/ci-jwt", Some(json!({"type": "jwt"})));
    bao.api_ok(
        "POST",
        "auth/ci-jwt/config",
        Some(json!({
            "oidc_discovery_url": issuer,
            "oidc_discovery_ca_pem": std::fs::read_to_string(emu.ca_file()).unwrap(),
            "bound_issuer": issuer,
        })),
    );
    // Tokens live 4 s and at most 9 s in all: a 14 s wait needs renewals and a new login.
    bao.api_ok(
        "POST",
        "auth/ci-jwt/role/terraform",
        Some(json!({
            "role_type": "jwt",
            "bound_audiences": [AUDIENCE],
            "user_claim": "oid",
            "bound_claims": {"oid": emu.principal_id(), "tid": emu.tenant_id()},
            "token_policies": ["tf-admin"],
            "token_ttl": "4s",
            "token_max_ttl": "9s",
        })),
    );
    let block = format!(
        "provider \"apim\" {{\n  vault {{\n    address = \"{}\"\n    auth_login_jwt {{\n      mount = \"ci-jwt\"\n      role  = \"terraform\"\n    }}\n  }}\n}}\n",
        bao.addr()
    );
    for tf in terraform_versions() {
        let jwt = mi_token(&emu);
        let mut wd = Workdir::new(tf);
        wd.write_config(&slow_config(&block, 14));
        wd.env("APIM_VAULT_AUTH_JWT", &jwt);
        wd.env("TF_LOG_PROVIDER", "debug");
        let apply = wd.apply();
        assert!(apply.success(), "apply failed:\n{apply}");
        assert!(policy_exists(&bao, "after-the-wait"));
        assert!(apply.stderr.contains("Vault token renewed"), "{apply}");
        assert!(apply.stderr.contains("Logged in to Vault again"), "{apply}");
        assert_absent(
            "the debug log",
            &apply.combined(),
            &[("the JWT", jwt.as_str())],
        );
        eprintln!(
            "lease: Terraform {}: JWT login tokens (ttl 4 s, max 9 s) over a 14 s wait: {} renewals, {} new logins",
            tf.version,
            apply.stderr.matches("Vault token renewed").count(),
            apply.stderr.matches("Logged in to Vault again").count()
        );
        let destroy = wd.destroy();
        assert!(destroy.success(), "{destroy}");
    }
}

/// The documentation examples and the CI example, applied against a prepared server.
#[test]
fn lease_examples_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pg = Postgres::start();
    let bao = Bao::start();
    policy_admin(&bao);
    setup_database(&bao, &pg, &[("orders", "2h", "3h")]);
    let deployer = token(&bao, &["tf-admin"], json!({"ttl": "1h"}));
    bao.api_ok(
        "POST",
        "secret/data/ci/deployer",
        Some(json!({"data": {"token": deployer}})),
    );
    let header = format!("{HEADER}\nprovider \"apim\" {{}}\n");
    let example = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();

    // Data source: with a credential that expires within the hour threshold... none here.
    let _ = db_creds(&bao, "orders");
    run(TestCase::new(vec![Step::config(format!(
        "{header}\n{}",
        example("examples/data-sources/apim_vault_lease/data-source.tf")
    ))
    .check(|wd| {
        let out = &wd.outputs()["orders_db_leases"];
        assert_eq!(out["count"], 1);
    })])
    .envs(bao.env()));

    run(TestCase::new(vec![Step::config(format!(
        "{header}\n{}",
        example("examples/ephemeral-resources/apim_vault_secret/ephemeral-resource.tf")
    ))])
    .envs(bao.env())
    .env("TF_VAR_database_host", "127.0.0.1")
    .env("TF_VAR_database_port", pg.port().to_string())
    .check_destroy(|| assert!(!policy_exists(&bao, "orders-reader"))));

    // The CI example: clean, then a lease check failing, then drift.
    let tf = first_version();
    let mut wd = Workdir::new(tf);
    for (k, v) in bao.env() {
        wd.env(k, v);
    }
    wd.write_config(&example("examples/ci-drift-detection/main.tf"));
    wd.env("TF_VAR_min_ttl_seconds", "60");
    let apply = wd.apply();
    assert!(apply.success(), "{apply}");
    let plan = wd.run(&["plan", "-detailed-exitcode", "-out=ci.tfplan"]);
    assert_eq!(plan.code, 0, "{plan}");
    let checks = |wd: &Workdir| -> Value {
        let shown: Value =
            serde_json::from_str(&wd.run_ok(&["show", "-json", "ci.tfplan"]).stdout).unwrap();
        shown["checks"].clone()
    };
    let status = |c: &Value| {
        c.as_array()
            .unwrap()
            .iter()
            .find(|x| x["address"]["name"] == "leases_outlive_the_threshold")
            .map(|x| x["status"].clone())
            .unwrap()
    };
    assert_eq!(status(&checks(&wd)), "pass");

    wd.env("TF_VAR_min_ttl_seconds", "86400");
    let plan = wd.run(&["plan", "-detailed-exitcode", "-out=ci.tfplan"]);
    assert_eq!(plan.code, 0, "a failed check is a warning: {plan}");
    assert!(
        plan.combined().contains("expire within 86400 seconds"),
        "{plan}"
    );
    assert_eq!(status(&checks(&wd)), "fail");

    bao.api_ok(
        "PUT",
        "sys/policies/acl/orders-reader",
        Some(json!({"policy": "path \"secret/data/orders/*\" { capabilities = [\"read\", \"list\"] }"})),
    );
    let plan = wd.run(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 2, "drift must exit 2: {plan}");
    let destroy = wd.destroy();
    assert!(destroy.success(), "{destroy}");
}
