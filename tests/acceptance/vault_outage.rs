//! Vault going away in the middle of an apply, as it does in production: the leader of a
//! 3-node Raft cluster crashes, a single server restarts, the provider's token runs out. For
//! each: the apply completes (or fails with a diagnostic), OpenBao holds exactly the objects
//! the state knows, and a re-run converges. Prints its figures.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::fixtures::{hcl_file, provider_from_env, provider_with_vault, read_policy};
use crate::support::{
    assert_state_matches, contains_normalized, vault_inventory, vault_state_objects, Bao,
    BaoCluster, Emulator, FaultProxy, TerraformBin, TfOutput, Workdir,
};

const POLICIES: usize = 24;
const ROLES: usize = 3;
const BACKEND: &str = "ha-entra";

/// Policies, then an auth backend and roles that need all of them: enough Vault writes to
/// still be under way when the server goes.
fn module(emu: &Emulator) -> String {
    format!(
        r#"{}
resource "apim_vault_policy" "p" {{
  count = {POLICIES}
  name  = "ha-${{count.index}}"
  rule {{
    path         = "secret/data/ha/${{count.index}}"
    capabilities = ["read"]
  }}
}}
resource "apim_vault_auth_backend" "b" {{
  path                  = "{BACKEND}"
  tenant_id             = "{tenant}"
  oidc_discovery_ca_pem = {ca}
  depends_on            = [apim_vault_policy.p]
}}
resource "apim_vault_azure_role" "r" {{
  count             = {ROLES}
  name              = "ha-${{count.index}}"
  backend           = apim_vault_auth_backend.b.path
  api_management_id = "{apim}"
  audience          = "api://vault"
  token_policies    = [apim_vault_policy.p[count.index].name]
  token_ttl         = 600
}}
"#,
        provider_with_vault("max_retries = 5"),
        tenant = emu.tenant_id(),
        ca = hcl_file(emu.ca_file()),
        apim = emu.api_management_id(),
    )
}

/// The module's objects in OpenBao, asked of node `i`.
fn vault_objects(c: &BaoCluster, i: usize) -> BTreeSet<String> {
    vault_inventory(|m, p| c.api(i, m, p, None))
}

fn policies_written(c: &BaoCluster, i: usize) -> usize {
    let (_, b) = c.api(i, "LIST", "sys/policies/acl", None);
    b["data"]["keys"].as_array().map_or(0, |k| {
        k.iter()
            .filter(|k| k.as_str().is_some_and(|k| k.starts_with("ha-")))
            .count()
    })
}

/// Applies the module against `addr` and, once node `watch` sees a quarter of the policies,
/// runs `outage`; then checks that OpenBao (its active node) holds exactly what the state
/// knows, that a re-run converges and that destroy leaves nothing. Answers whether the first apply
/// completed, and how long it took.
fn apply_through(
    c: &mut BaoCluster,
    addr: &str,
    watch: usize,
    name: &str,
    outage: impl FnOnce(&mut BaoCluster),
) -> (TfOutput, Duration) {
    let emu = Emulator::start();
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.env("VAULT_ADDR", addr).env("VAULT_TOKEN", c.token());
    for (k, v) in emu.env() {
        wd.env(k, v);
    }
    wd.write_config(&module(&emu));
    let started = Instant::now();
    let first = std::thread::scope(|s| {
        let apply = s.spawn(|| wd.run(&["apply", "-auto-approve", "-parallelism=4"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        while policies_written(c, watch) < POLICIES / 4 && !apply.is_finished() {
            assert!(Instant::now() < deadline, "{name}: no policy was written");
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = policies_written(c, watch);
        outage(c);
        let out = apply.join().expect("the apply thread");
        eprintln!("vault outage: {name}: {before} of {POLICIES} policies written when it happened");
        out
    });
    let took = started.elapsed();
    if !first.success() {
        assert!(
            first.combined().contains("Error: "),
            "{name}: a failure without a diagnostic:\n{first}"
        );
    }
    // The truth is the active node's: a standby answers from a replica that may lag.
    let active = c.wait_healthy();
    let (v, s) = (vault_objects(c, active), vault_state_objects(&wd));
    assert_state_matches(&v, &s, &format!("{name}: after the first apply\n{first}"));
    let again = wd.apply();
    assert!(again.success(), "{name}: the re-run failed:\n{again}");
    assert_eq!(wd.plan(true), 0, "{name}: the plan after the re-run");
    assert_eq!(vault_objects(c, active).len(), POLICIES + 1 + ROLES);
    let out = wd.destroy();
    assert!(out.success(), "{name}: destroy:\n{out}");
    assert!(
        vault_objects(c, active).is_empty(),
        "{name}: destroy left objects"
    );
    (first, took)
}

/// The leader of a 3-node Raft cluster crashes in the middle of an apply. The provider talks
/// to a standby, which forwards to the leader and, once a new one is elected, to it (or
/// becomes it): the apply completes, nothing is lost or orphaned. The crashed node then
/// restarts on its data, rejoins, and holds what the cluster holds.
#[test]
fn leader_lost_mid_apply_the_apply_completes_on_the_new_leader() {
    let rounds = crate::faults::scale().rounds;
    let mut c = BaoCluster::start(3);
    let mut failovers = Vec::new();
    let mut applies = Vec::new();
    for round in 1..=rounds {
        let leader = c.wait_healthy();
        // The provider talks to one standby; the test watches progress on the other.
        let (via, watch) = ((leader + 1) % 3, (leader + 2) % 3);
        let addr = c.addr(via).to_string();
        let mut failover = Duration::ZERO;
        let (first, took) = apply_through(&mut c, &addr, watch, "leader lost", |c| {
            let t = Instant::now();
            c.kill(leader);
            let new = c.wait_healthy();
            failover = t.elapsed();
            assert_ne!(new, leader);
        });
        assert!(
            first.success(),
            "round {round}: the apply through a standby must survive the leader's loss:\n{first}"
        );
        // The crashed node comes back on its data and rejoins as a standby.
        c.restart(leader);
        c.wait_healthy();
        let started = Instant::now();
        while c.api(leader, "GET", "sys/health", None).0 != 429 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the restarted node did not rejoin as a standby:\n{}",
                c.log(leader)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // It answers reads from its replica: the next round may talk to it.
        c.wait_caught_up(leader);
        failovers.push(failover.as_secs_f64());
        applies.push(took.as_secs_f64());
    }
    eprintln!(
        "vault outage: SUMMARY leader of 3 killed mid-apply {rounds} time(s): {rounds} applies completed through a standby (took {applies:.1?} s; new leader after {failovers:.1?} s); 0 orphaned, 0 lost"
    );
}

/// Rounds of [`apply_through`] against one OpenBao server with Raft storage, with `outage`
/// happening to it mid-apply; each apply must complete (`why` says why it should). Answers
/// how long each outage lasted and each apply took, in seconds.
fn single_server_rounds(
    name: &str,
    why: &str,
    outage: impl Fn(&mut BaoCluster),
) -> (Vec<f64>, Vec<f64>) {
    let mut c = BaoCluster::start(1);
    let addr = c.addr(0).to_string();
    let (mut gaps, mut applies) = (Vec::new(), Vec::new());
    for round in 1..=crate::faults::scale().rounds {
        let mut gap = Duration::ZERO;
        let (first, took) = apply_through(&mut c, &addr, 0, name, |c| {
            let t = Instant::now();
            outage(c);
            c.wait_healthy();
            gap = t.elapsed();
        });
        assert!(first.success(), "round {round}: {why}:\n{first}");
        gaps.push(gap.as_secs_f64());
        applies.push(took.as_secs_f64());
    }
    (gaps, applies)
}

/// A single OpenBao server with Raft storage is killed in the middle of an apply and
/// started again (and unsealed) a moment later: the provider's retries carry the apply
/// across the gap, and nothing is lost or orphaned.
#[test]
fn vault_restarted_mid_apply_the_apply_completes() {
    let (gaps, applies) = single_server_rounds(
        "restart",
        "max_retries = 5 covers a restart of a few seconds",
        |c| {
            c.kill(0);
            std::thread::sleep(Duration::from_millis(500));
            c.restart(0);
        },
    );
    eprintln!(
        "vault outage: SUMMARY single server restarted mid-apply {n} time(s): {n} applies completed (Vault away {gaps:.1?} s; applies took {applies:.1?} s); 0 orphaned, 0 lost",
        n = gaps.len()
    );
}

/// A single server is sealed in the middle of an apply (an operator's `bao operator seal`, a
/// node restarting under auto-unseal) and unsealed a second later: its 503s are retried and
/// the apply completes, nothing lost or orphaned.
#[test]
fn vault_sealed_for_a_moment_mid_apply_the_apply_completes() {
    let (gaps, applies) = single_server_rounds("sealed", "answers while sealed are retried", |c| {
        c.seal(0);
        std::thread::sleep(Duration::from_millis(1000));
        c.unseal(0);
    });
    eprintln!(
        "vault outage: SUMMARY single server sealed mid-apply {n} time(s): {n} applies completed (sealed {gaps:.1?} s; applies took {applies:.1?} s); 0 orphaned, 0 lost",
        n = gaps.len()
    );
}

/// A configured token that is not renewable runs out in the middle of an apply: what was
/// written before stays in the state, the next write fails with a diagnostic that says why
/// and what to configure, and a re-run with a usable token converges.
#[test]
fn static_token_expiring_mid_apply_fails_with_a_diagnostic() {
    let bao = Bao::start();
    let short = bao
        .create_token(serde_json::json!({"policies": ["root"], "ttl": "4s", "renewable": false}));
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.env("VAULT_ADDR", bao.addr()).env("VAULT_TOKEN", &short);
    wd.write_config(&format!(
        r#"{}{}
resource "terraform_data" "wait" {{
  depends_on = [apim_vault_policy.first]
  provisioner "local-exec" {{
    command = "sleep 6"
  }}
}}
resource "apim_vault_policy" "second" {{
  name       = "after-expiry"
  depends_on = [terraform_data.wait]
  rule {{
    path         = "secret/data/b"
    capabilities = ["read"]
  }}
}}
"#,
        provider_from_env(),
        read_policy("first", "before-expiry", "secret/data/a"),
    ));
    let out = wd.apply();
    assert!(!out.success(), "the write after expiry must fail:\n{out}");
    let text = out.combined();
    for needle in [
        "Unable to create apim_vault_policy",
        "the configured Vault token expired",
        "it is not renewable",
        "auth_login_jwt",
    ] {
        assert!(contains_normalized(&text, needle), "{needle:?} in:\n{text}");
    }
    assert!(!text.contains(&short), "the token itself is never printed");
    // What was written is in the state; what was not is in neither.
    assert_eq!(
        bao.api("GET", "sys/policies/acl/before-expiry", None).0,
        200
    );
    assert_eq!(bao.api("GET", "sys/policies/acl/after-expiry", None).0, 404);
    let addrs = wd.resource_addresses();
    assert!(addrs.contains(&"apim_vault_policy.first".to_string()));
    assert!(!addrs.contains(&"apim_vault_policy.second".to_string()));
    // A token that lasts: the re-run converges.
    wd.env("VAULT_TOKEN", bao.token());
    let out = wd.apply();
    assert!(out.success(), "{out}");
    assert_eq!(wd.plan(true), 0);
    assert_eq!(bao.api("GET", "sys/policies/acl/after-expiry", None).0, 200);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    eprintln!("vault outage: SUMMARY static token expired mid-apply: failed with a diagnostic naming the cause and the fix; 1 object written before, kept in state; 0 orphaned, 0 lost; re-run converged");
}

/// Vault applies a write but its answer is lost on the way back (a connection cut, a proxy
/// timing out): the provider retries, and a retried create that finds its own object counts
/// as done. Every kind of write the module makes loses its first answer; the apply
/// completes and OpenBao holds exactly what the state knows. Writes answered 503 or 429 are
/// retried the same way.
#[test]
fn lost_answers_to_vault_writes_orphan_nothing() {
    let bao = Bao::start();
    let emu = Emulator::start();
    let proxy = FaultProxy::start(bao.addr());
    // The first answer to each write of the module (mount, mount config, policy, role).
    for (method, prefix) in [
        ("POST", "/v1/sys/auth/ha-entra"),
        ("POST", "/v1/auth/ha-entra/config"),
        ("PUT", "/v1/sys/policies/acl/ha-0"),
        ("POST", "/v1/auth/ha-entra/role/ha-0"),
    ] {
        proxy.drop_answers(method, prefix, 1);
    }
    // And answers Vault never gave: a standby without a leader, a rate limit.
    proxy.fail("PUT", "/v1/sys/policies/acl/ha-1", 503, 2);
    proxy.fail("PUT", "/v1/sys/policies/acl/ha-2", 429, 2);
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.env("VAULT_ADDR", proxy.addr())
        .env("VAULT_TOKEN", bao.token());
    for (k, v) in emu.env() {
        wd.env(k, v);
    }
    wd.write_config(&module(&emu));
    let out = wd.apply();
    let events = proxy.events();
    assert!(out.success(), "{events:?}\n{out}");
    for write in [
        "POST /v1/sys/auth/ha-entra",
        "POST /v1/auth/ha-entra/config",
        "PUT /v1/sys/policies/acl/ha-0",
        "POST /v1/auth/ha-entra/role/ha-0",
    ] {
        assert!(
            events
                .iter()
                .any(|e| e == &format!("dropped the answer to {write}")),
            "the answer to {write} was dropped: {events:?}"
        );
    }
    assert_eq!(events.len(), 8, "every injected fault was met: {events:?}");
    let truth = |bao: &Bao| vault_inventory(|m, p| bao.api(m, p, None));
    assert_state_matches(
        &truth(&bao),
        &vault_state_objects(&wd),
        "after the first apply",
    );
    assert_eq!(truth(&bao).len(), POLICIES + 1 + ROLES);
    assert_eq!(wd.plan(true), 0);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    assert!(truth(&bao).is_empty());
    eprintln!(
        "vault outage: SUMMARY lost answers: {} Vault writes applied without their answer reaching the provider, {} answered 503/429 by a proxy; the apply completed; 0 orphaned, 0 lost",
        events.iter().filter(|e| e.starts_with("dropped")).count(),
        events.iter().filter(|e| e.starts_with("answered")).count()
    );
}

/// `VAULT_MAX_RETRIES` sets the retries as Vault's own clients read it: with 0, one 503 fails
/// the apply (with Vault's answer in the diagnostic); with the default, two are ridden out; a
/// value that is not a number is named in the diagnostic.
#[test]
fn max_retries_from_the_environment() {
    let bao = Bao::start();
    let proxy = FaultProxy::start(bao.addr());
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.env("VAULT_ADDR", proxy.addr())
        .env("VAULT_TOKEN", bao.token());
    wd.write_config(&format!(
        "{}{}",
        provider_from_env(),
        read_policy("p", "retried", "secret/data/r")
    ));

    wd.env("VAULT_MAX_RETRIES", "zero");
    let out = wd.apply();
    assert!(!out.success());
    assert!(
        contains_normalized(
            &out.combined(),
            "VAULT_MAX_RETRIES is \"zero\": it must be a whole number"
        ),
        "{out}"
    );

    wd.env("VAULT_MAX_RETRIES", "0");
    proxy.fail("PUT", "/v1/sys/policies/acl/retried", 503, 1);
    let out = wd.apply();
    assert!(!out.success(), "no retry with VAULT_MAX_RETRIES=0:\n{out}");
    assert!(
        contains_normalized(&out.combined(), "Vault answered 503"),
        "{out}"
    );
    assert_eq!(bao.api("GET", "sys/policies/acl/retried", None).0, 404);

    wd.env("VAULT_MAX_RETRIES", "");
    proxy.fail("PUT", "/v1/sys/policies/acl/retried", 503, 2);
    let out = wd.apply();
    assert!(
        out.success(),
        "the default retries ride out two 503s:\n{out}"
    );
    assert_eq!(proxy.events().len(), 3, "{:?}", proxy.events());
    assert_eq!(bao.api("GET", "sys/policies/acl/retried", None).0, 200);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
}
