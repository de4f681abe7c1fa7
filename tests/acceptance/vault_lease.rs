//! `apim_vault_lease` against a real OpenBao and a real PostgreSQL: pki leases (a role with
//! `generate_lease = true`) and database credentials, read field for field as
//! `sys/leases/lookup` answers and never renewed, revoked or changed by reading; the data
//! source's example and the CI drift-detection example built on it.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::fixtures::{aliased_provider, provider_at, provider_from_env, vault_at};
use crate::support::{run, terraform_versions, Bao, Postgres, Step, TestCase, Workdir};

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

/// New database credentials: (lease ID, username, password).
fn db_creds(bao: &Bao, role: &str) -> (String, String, String) {
    let r = bao.api_ok("GET", &format!("database/creds/{role}"), None);
    (
        r["lease_id"].as_str().unwrap().to_string(),
        r["data"]["username"].as_str().unwrap().to_string(),
        r["data"]["password"].as_str().unwrap().to_string(),
    )
}

#[test]
fn lease_data_source_reads_pki_and_database_leases_without_side_effects() {
    let pg = Postgres::start();
    let bao = Bao::start();
    setup_pki(&bao);
    bao.enable_database(&pg, &[("app", "1h", "2h")]);
    let pki = [issue_cert(&bao, "a"), issue_cert(&bao, "b")];
    let db = [db_creds(&bao, "app").0, db_creds(&bao, "app").0];
    let all: Vec<&String> = pki.iter().chain(db.iter()).collect();
    let before: Vec<Value> = all.iter().map(|id| bao.lease(id).unwrap()).collect();

    let limited = bao.create_token(json!({"policies": ["default"]}));
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
        provider_at(&bao),
        pki[0]
    );

    // Field for field against sys/leases/lookup, read right after the state was.
    let matches_lookup = |state: &Value| {
        for l in state["leases"].as_array().unwrap() {
            let id = l["lease_id"].as_str().unwrap();
            let now = bao.lease(id).unwrap();
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
        let first = bao.lease(&db[0]).unwrap();
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

    let limited_provider = aliased_provider("limited", &vault_at(bao.addr(), &limited));
    run(TestCase::new(vec![
        Step::config(config.clone()).check(check),
        // Plans read the data sources again: still nothing changes (checked below).
        Step::config(config.clone()).check(check),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"gone\" {{\n  lease_id = \"pki/issue/web/NoSuchLease\"\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("invalid lease"),
        Step::config(format!(
            "{}\n{limited_provider}\ndata \"apim_vault_lease\" \"denied\" {{\n  provider = apim.limited\n  prefix   = \"database/creds/app/\"\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("needs the `list` and `sudo` capabilities on `sys/leases/lookup/database/creds/app/*`"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"both\" {{\n  lease_id = \"{}\"\n  prefix   = \"pki/\"\n}}\n",
            provider_at(&bao),
            pki[0]
        ))
        .expect_error("Only one of `lease_id`, `prefix` may be set"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"neither\" {{\n  ttl_threshold = 60\n}}\n",
            provider_at(&bao)
        ))
        .expect_error("Exactly one of"),
        Step::config(format!(
            "{}\ndata \"apim_vault_lease\" \"warn\" {{\n  prefix        = \"pki/issue/web/\"\n  ttl_threshold = 86400\n}}\n",
            provider_at(&bao)
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
        let now = bao.lease(id).unwrap_or_else(|| panic!("{id} disappeared"));
        for f in ["issue_time", "expire_time", "last_renewal"] {
            assert_eq!(now[f], was[f], "{f} of {id} changed");
        }
    }
}

/// The data source's example and the CI example, applied against a prepared server.
#[test]
fn lease_examples_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pg = Postgres::start();
    let bao = Bao::start();
    bao.enable_database(&pg, &[("orders", "2h", "3h")]);
    let example = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();

    // Data source: with a credential that expires within the hour threshold... none here.
    let _ = db_creds(&bao, "orders");
    run(TestCase::new(vec![Step::config(format!(
        "{}\n{}",
        provider_from_env(),
        example("examples/data-sources/apim_vault_lease/data-source.tf")
    ))
    .check(|wd| {
        let out = &wd.outputs()["orders_db_leases"];
        assert_eq!(out["count"], 1);
    })])
    .envs(bao.env()));

    // The CI example: clean, then a lease check failing, then drift.
    let mut wd = Workdir::new(&terraform_versions()[0]);
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

    bao.write_policy(
        "orders-reader",
        "path \"secret/data/orders/*\" { capabilities = [\"read\", \"list\"] }",
    );
    let plan = wd.run(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 2, "drift must exit 2: {plan}");
    let destroy = wd.destroy();
    assert!(destroy.success(), "{destroy}");
}
