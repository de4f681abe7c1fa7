//! Faults the pipelines meet, injected into the APIM emulator during real applies: for each,
//! the apply completes or fails with a clear diagnostic, a re-run converges, the emulator's
//! inventory and OpenBao hold exactly the objects the state knows (nothing orphaned, nothing
//! lost), and
//! no secret reaches the trace log, the state or the output. Prints its figures.
//!
//! CI runs one round at small sizes; `scripts/faults --long` (`APIM_FAULTS_LONG=1`) runs
//! several rounds at larger sizes.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::fixtures::{provider_from_env, read_policy, trio_binding, vault_trio};
use crate::support::{
    assert_state_matches, jwts_in, vault_inventory, vault_state_objects, Bao, Emulator,
    TerraformBin, Workdir,
};
use crate::vault_binding::{count, records};

/// The secret the bindings point at; searched for in logs and state.
const SECRET_VALUE: &str = "fault-suite-secret-5d1c9e";

/// How big the fault suites run.
pub(crate) struct Scale {
    /// Times each scenario runs.
    pub rounds: usize,
    /// Bindings per fault-matrix apply.
    pub bindings: usize,
    /// Bindings at `-parallelism=20`, at most 50 per API.
    pub many: usize,
}

/// CI-sized unless `APIM_FAULTS_LONG` is set (and not `0`).
pub(crate) fn scale() -> Scale {
    if std::env::var("APIM_FAULTS_LONG").is_ok_and(|v| !v.is_empty() && v != "0") {
        Scale {
            rounds: 3,
            bindings: 10,
            many: 150,
        }
    } else {
        Scale {
            rounds: 1,
            bindings: 4,
            many: 50,
        }
    }
}

/// Bindings per API in the many-bindings run: their policy stays well within 256 KiB.
const PER_API: usize = 50;

/// The trio and `n` bindings spread over the APIs `app-0` to `app-<apis - 1>`, reading
/// `secret/data/app`.
fn module(emu: &Emulator, n: usize, apis: usize) -> String {
    format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(emu, "secret/data/app", "token_ttl = 900"),
        trio_binding(
            "x",
            &format!(
                r#"count             = {n}
api_management_id = "{}"
name              = "app-${{count.index}}"
secret_path       = "secret/data/app"
secret_field      = "key"
api_id            = "app-${{count.index % {apis}}}"
inject {{
  header = "X-Key-${{count.index}}"
}}"#,
                emu.api_management_id()
            )
        )
    )
}

/// The binding objects in the emulator: a record in an API policy's block is `binding
/// <api>/<name>`; any named value or policy fragment counts too (the bindings make none, so
/// one would be orphaned).
fn apim_objects(emu: &Emulator) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (id, object) in emu.inventory().as_object().unwrap() {
        let id = id.to_ascii_lowercase();
        if id.contains("/namedvalues/") || id.contains("/policyfragments/") {
            out.insert(id);
        } else if let Some(api) = id
            .strip_suffix("/policies/policy")
            .and_then(|a| a.rsplit_once("/apis/"))
            .map(|(_, api)| api.to_string())
        {
            let policy = object["properties"]["value"].as_str().unwrap_or("");
            for name in records(policy) {
                out.insert(format!("binding {api}/{name}"));
            }
        }
    }
    out
}

/// Everything the module made, in APIM and in OpenBao.
fn remote_objects(emu: &Emulator, bao: &Bao) -> BTreeSet<String> {
    apim_objects(emu)
        .into_iter()
        .chain(vault_inventory(|m, p| bao.api(m, p, None)))
        .collect()
}

/// What the state says exists, in APIM and in OpenBao.
fn state_objects(wd: &Workdir) -> BTreeSet<String> {
    let mut out = vault_state_objects(wd);
    for addr in wd.resource_addresses() {
        if !addr.starts_with("apim_vault_binding.") {
            continue;
        }
        let r = wd.resource(&addr);
        out.insert(format!(
            "binding {}/{}",
            r["api_id"].as_str().unwrap().to_ascii_lowercase(),
            r["name"].as_str().unwrap()
        ));
    }
    out
}

/// The records in the policies of the APIs `app-0` to `app-<apis - 1>`; each policy that
/// holds any has one cache lookup and one store.
#[track_caller]
fn api_policy_records(emu: &Emulator, apis: usize) -> usize {
    let mut n = 0;
    for i in 0..apis {
        if let Some(policy) = emu.api_policy(&format!("app-{i}")) {
            let found = records(&policy).len();
            if found > 0 {
                assert_eq!(count(&policy, "cache-lookup-value"), 1, "{policy}");
                assert_eq!(count(&policy, "cache-store-value"), 1, "{policy}");
            }
            n += found;
        }
    }
    n
}

/// The secret, and the APIs `app-0` to `app-<apis - 1>` (without policies).
fn setup(bao: &Bao, emu: &Emulator, apis: usize) {
    bao.api_ok(
        "POST",
        "secret/data/app",
        Some(json!({"data": {"key": SECRET_VALUE}})),
    );
    for i in 0..apis {
        emu.create_api(&format!("app-{i}"));
    }
}

#[test]
fn fault_matrix() {
    // (name, emulator fault rule, expected first outcome: Some(true) completes, Some(false)
    // fails, None either, depending on how the retries and the fault interleave).
    let faults = [
        (
            "429 storm with Retry-After",
            json!({"method": "*", "path": "*/policies/policy", "status": 429, "retry_after": 1, "count": 6}),
            None,
        ),
        (
            "5xx burst",
            json!({"method": "PUT", "path": "*", "status": 503, "count": 5}),
            None,
        ),
        (
            "added latency",
            json!({"method": "*", "path": "*", "latency_ms": 150, "fraction": 0.5}),
            Some(true),
        ),
        (
            "dropped connections",
            json!({"method": "*", "path": "*/apis/app-0/policies/policy", "drop": true, "count": 3}),
            None,
        ),
        // Vault fetches Entra's discovery document while configuring the auth mount and
        // relays a throttled answer as a 400.
        (
            "Entra discovery throttled",
            json!({"method": "GET", "path": "*/.well-known/openid-configuration", "status": 429, "retry_after": 1, "count": 2}),
            Some(true),
        ),
        // A refusal that is not retried: the creates fail half-way and roll back.
        (
            "API policy writes refused",
            json!({"method": "PUT", "path": "*/apis/app-0/policies/policy", "status": 400, "count": 40}),
            Some(false),
        ),
    ];
    let scale = scale();
    let n = scale.bindings;
    let (mut runs, mut completed, mut failed_cleanly, mut orphans, mut lost, mut leaks) =
        (0, 0, 0, 0, 0, 0);
    for round in 1..=scale.rounds {
        for (name, rule, expected) in &faults {
            let bao = Bao::start();
            let emu = Emulator::start();
            setup(&bao, &emu, 1);
            // A token whose value can be searched for without false matches.
            let token = format!("fault{}r{round}x{}", std::process::id(), name.len() * 7919);
            bao.api_ok(
                "POST",
                "auth/token/create",
                Some(json!({"id": token, "policies": ["root"], "ttl": "1h"})),
            );
            let mut wd = Workdir::new(&TerraformBin::primary());
            for (k, v) in emu.env() {
                wd.env(k, v);
            }
            wd.env("VAULT_ADDR", bao.addr()).env("VAULT_TOKEN", &token);
            let log = wd.path().join("trace.log");
            wd.env("TF_LOG", "trace").env("TF_LOG_PATH", &log);
            wd.write_config(&module(&emu, n, 1));
            emu.fault(rule.clone());
            let first = wd.apply();
            runs += 1;
            if let Some(ok) = expected {
                assert_eq!(
                    first.success(),
                    *ok,
                    "{name}: the first apply should have {}:\n{first}",
                    if *ok { "completed" } else { "failed" }
                );
            }
            if first.success() {
                completed += 1;
            } else {
                failed_cleanly += 1;
                assert!(
                    first.combined().contains("Error: "),
                    "{name}: a failure without a diagnostic:\n{first}"
                );
            }
            // Whatever happened, APIM and OpenBao hold only what the state knows.
            let (a, s) = (remote_objects(&emu, &bao), state_objects(&wd));
            orphans += a.difference(&s).count();
            lost += s.difference(&a).count();
            assert_state_matches(&a, &s, &format!("{name}: after the first apply"));
            // Without the fault, a re-run converges.
            emu.clear_faults();
            let second = wd.apply();
            assert!(second.success(), "{name}: the re-run failed:\n{second}");
            assert_eq!(
                wd.plan(true),
                0,
                "{name}: the plan after the re-run is not empty"
            );
            assert_eq!(
                remote_objects(&emu, &bao).len(),
                n + 3,
                "{name}: each binding is a record in the API policy; one policy, mount and role"
            );
            assert_eq!(
                api_policy_records(&emu, 1),
                n,
                "{name}: every record is in the API policy"
            );
            eprintln!(
                "faults: {name}: first apply {}",
                if first.success() {
                    "completed"
                } else {
                    "failed cleanly"
                }
            );
            let state = wd.state_raw();
            let out = wd.destroy();
            assert!(out.success(), "{out}");
            assert!(
                remote_objects(&emu, &bao).is_empty(),
                "{name}: destroy left objects"
            );
            assert_eq!(
                emu.api_policy("app-0"),
                None,
                "{name}: the policy the first binding made is gone"
            );
            let trace = std::fs::read_to_string(&log).expect("the trace log");
            assert!(trace.len() > 10_000, "the trace log has content");
            let texts = [
                first.combined(),
                second.combined(),
                state,
                out.combined(),
                trace,
            ];
            for secret in [token.as_str(), emu.client_secret(), SECRET_VALUE] {
                leaks += texts.iter().filter(|t| t.contains(secret)).count();
            }
            // The provider's ARM and Entra access tokens, or any other.
            leaks += texts.iter().map(|t| jwts_in(t).len()).sum::<usize>();
        }
    }
    eprintln!("faults: SUMMARY fault matrix: {} faults x {} rounds injected into {runs} applies of {n} bindings: {completed} completed despite them, {failed_cleanly} failed with a diagnostic; {orphans} orphaned, {lost} lost, {leaks} secrets leaked (Vault token, client secret, secret value or any access token in trace logs, state, output)", faults.len(), scale.rounds);
    assert_eq!(leaks, 0, "a secret reached a log, the state or the output");
}

/// 50 bindings on one API (150 on three in the long run) at -parallelism=20, with 429s in the
/// way: all converge, and no record is lost to concurrent edits of the API policy.
#[test]
fn many_bindings_at_parallelism_twenty_with_throttling() {
    let many = scale().many;
    let apis = many.div_ceil(PER_API);
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu, apis);
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd.write_config(&module(&emu, many, apis));
    emu.fault(
        json!({"method": "*", "path": "*", "status": 429, "retry_after": 1, "fraction": 0.1}),
    );
    let started = std::time::Instant::now();
    let out = wd.run(&["apply", "-auto-approve", "-parallelism=20"]);
    assert!(out.success(), "{out}");
    let throttled = emu
        .requests()
        .as_array()
        .map_or(0, |r| r.iter().filter(|x| x["status"] == 429).count());
    emu.clear_faults();
    assert_eq!(
        api_policy_records(&emu, apis),
        many,
        "no lost update of the API policy"
    );
    assert_eq!(apim_objects(&emu).len(), many);
    eprintln!(
        "faults: SUMMARY {many} bindings on {apis} API(s) at -parallelism=20 with 10 % 429s: {throttled} requests throttled, apply took {:.1} s, {many} of {many} records present, 0 lost updates",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(wd.plan(true), 0);
    let out = wd.run(&["destroy", "-auto-approve", "-parallelism=20"]);
    assert!(out.success(), "{out}");
    assert_eq!(api_policy_records(&emu, apis), 0);
    assert!(remote_objects(&emu, &bao).is_empty());
}

/// Vault sealed in the middle of a pipeline: the apply fails with a diagnostic naming Vault's
/// answer and creates nothing; once unsealed, the re-run converges.
#[test]
fn vault_sealed_then_unsealed() {
    let bao = Bao::start();
    // The dev server prints its unseal key in a banner, shortly after it answers.
    let started = std::time::Instant::now();
    let key = loop {
        let found = bao
            .log()
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unseal Key: ").map(str::to_string));
        match found {
            Some(k) => break k,
            None if started.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            None => panic!("the dev server printed no unseal key:\n{}", bao.log()),
        }
    };
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env() {
        wd.env(k, v);
    }
    wd.write_config(&format!(
        "{}{}",
        provider_from_env(),
        read_policy("p", "sealed", "kv/data/x")
    ));
    bao.api_ok("PUT", "sys/seal", None);
    let out = wd.apply();
    assert!(!out.success(), "an apply against a sealed Vault must fail");
    assert!(
        crate::support::contains_normalized(&out.combined(), "Vault answered 503"),
        "{out}"
    );
    assert!(wd.resource_addresses().is_empty(), "nothing in state");
    let (status, body) = bao.api("PUT", "sys/unseal", Some(json!({ "key": key })));
    assert_eq!(status, 200, "{body}");
    let out = wd.apply();
    assert!(out.success(), "{out}");
    assert_eq!(wd.plan(true), 0);
    assert_eq!(bao.api("GET", "sys/policies/acl/sealed", None).0, 200);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    eprintln!("faults: SUMMARY Vault sealed before an apply: it failed with Vault's 503 in the diagnostic and wrote nothing; after unsealing, the re-run converged");
}

/// Ctrl-C in the middle of an apply: Terraform asks the provider to stop; the bindings being
/// created roll back, the state matches APIM, and the next apply converges.
#[test]
fn interrupted_apply_leaves_state_matching_apim() {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu, 1);
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    wd.write_config(&module(&emu, 6, 1));
    // Slow APIM writes, so that the interrupt lands while bindings are being written.
    emu.fault(json!({"method": "PUT", "path": "*", "latency_ms": 700, "fraction": 1.0}));
    let mut cmd = Command::new(&TerraformBin::primary().path);
    cmd.args(["apply", "-auto-approve", "-input=false", "-no-color"])
        .current_dir(wd.path())
        .env("HOME", wd.path().join("home"))
        .env("TF_CLI_CONFIG_FILE", wd.path().join("dev.tfrc"))
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in wd.env_vars() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    // Wait until the API policy is first being written, then press Ctrl-C (the whole group).
    loop {
        let writes = emu.requests().as_array().map_or(0, |r| {
            r.iter()
                .filter(|x| {
                    x["method"] == "PUT"
                        && x["path"]
                            .as_str()
                            .unwrap_or("")
                            .contains("/policies/policy")
                })
                .count()
        });
        if writes > 0 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(180);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "terraform did not stop after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let stopped_after = started.elapsed();
    emu.clear_faults();
    let (a, s) = (remote_objects(&emu, &bao), state_objects(&wd));
    assert_state_matches(&a, &s, &format!("after Ctrl-C\n{err}"));
    let out = wd.apply();
    assert!(out.success(), "{out}");
    assert_eq!(wd.plan(true), 0);
    assert_eq!(api_policy_records(&emu, 1), 6);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    eprintln!(
        "faults: SUMMARY Ctrl-C during an apply of 6 bindings: Terraform exited with {} {:.1} s after the apply began; {} objects in state, 0 orphaned, 0 lost; the next apply converged",
        code.code().map_or("a signal".to_string(), |c| format!("code {c}")),
        stopped_after.as_secs_f64(),
        s.len()
    );
}
