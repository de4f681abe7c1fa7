//! Two pipelines at once, and the portal: Terraform runs with separate states (two teams, two
//! workspaces) editing the same API policy at the same time, where only ARM's ETags stand
//! between them (the per-API lock is per process), and an edit made in the Azure portal while
//! an apply writes the same policy. Nothing is overwritten, nothing is lost, and every state
//! converges.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fixtures::{provider_from_env, AUDIENCE};
use crate::support::{Bao, Emulator, TerraformBin, TfOutput, Workdir};
use crate::vault_binding::records;

/// The API both pipelines bind to.
const API: &str = "shared";

/// The API's policy before any binding: what must be left when every binding is destroyed.
const ORIGINAL: &str = "<policies>\n\t<inbound>\n\t\t<base />\n\t\t<set-header name=\"X-Original\" exists-action=\"override\">\n\t\t\t<value>1</value>\n\t\t</set-header>\n\t</inbound>\n\t<backend>\n\t\t<base />\n\t</backend>\n\t<outbound>\n\t\t<base />\n\t</outbound>\n\t<on-error>\n\t\t<base />\n\t</on-error>\n</policies>";

/// Vault's side made outside both configurations (as a platform team would): the JWT mount
/// trusting the emulator, a policy reading the secret, and the role for the instance.
fn vault_side(bao: &Bao, emu: &Emulator) {
    bao.api_ok(
        "POST",
        "secret/data/app",
        Some(json!({"data": {"key": "pipelines-secret"}})),
    );
    bao.trust_emulator(emu, "jwt");
    bao.write_policy(
        "app-read",
        "path \"secret/data/app\" { capabilities = [\"read\"] }\n",
    );
    bao.emulator_role(
        emu,
        "jwt",
        "app",
        AUDIENCE,
        json!({"token_policies": ["app-read"], "token_ttl": 900}),
    );
    emu.create_api(API);
    emu.put_api_policy(API, ORIGINAL);
}

/// The API's policy as APIM holds it before any binding (APIM reformats what it is given).
fn original(emu: &Emulator) -> String {
    emu.api_policy(API).expect("the API has its policy")
}

/// A team's configuration: `n` bindings named `<team>-<i>` on [`API`].
fn team(emu: &Emulator, name: &str, n: usize) -> String {
    format!(
        r#"{}
resource "apim_vault_binding" "b" {{
  count             = {n}
  api_management_id = "{}"
  api_id            = "{API}"
  name              = "{name}-${{count.index}}"
  role              = "app"
  backend           = "jwt"
  audience          = "{AUDIENCE}"
  secret_path       = "secret/data/app"
  secret_field      = "key"
  inject {{
    header = "X-{name}-${{count.index}}"
  }}
}}
"#,
        provider_from_env(),
        emu.api_management_id()
    )
}

fn workdir(bao: &Bao, emu: &Emulator, config: &str) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.envs(bao.env().into_iter().chain(emu.env()));
    wd.write_config(config);
    wd.run_ok(&["init"]);
    wd
}

/// The names of the bindings recorded in the API's policy.
fn recorded(emu: &Emulator) -> BTreeSet<String> {
    records(&emu.api_policy(API).unwrap_or_default())
        .into_iter()
        .collect()
}

fn names(team: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{team}-{i}")).collect()
}

#[test]
fn two_pipelines_add_bindings_to_one_api_at_once() {
    let bao = Bao::start();
    let emu = Emulator::start();
    vault_side(&bao, &emu);
    let before = original(&emu);
    let a = workdir(&bao, &emu, &team(&emu, "a", 10));
    let b = workdir(&bao, &emu, &team(&emu, "b", 10));

    // Both apply at the same time, each at -parallelism=10.
    let (out_a, out_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.run(&["apply", "-auto-approve", "-parallelism=10"]));
        let tb = s.spawn(|| b.run(&["apply", "-auto-approve", "-parallelism=10"]));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(out_a.success(), "pipeline a:\n{out_a}");
    assert!(out_b.success(), "pipeline b:\n{out_b}");
    let both: BTreeSet<String> = names("a", 10).union(&names("b", 10)).cloned().collect();
    assert_eq!(
        recorded(&emu),
        both,
        "every binding of both pipelines is in the policy"
    );
    let policy = emu.api_policy(API).unwrap();
    assert!(
        policy.contains("X-Original"),
        "the policy's own content is kept:\n{policy}"
    );
    let conflicts = emu
        .requests()
        .as_array()
        .map_or(0, |r| r.iter().filter(|x| x["status"] == 412).count());
    eprintln!("pipelines: 2 applies x 10 bindings on one API: {conflicts} writes refused by ETag (412) and re-done");

    // Each state converged: both plans are empty.
    assert_eq!(a.plan(true), 0, "pipeline a plans no change");
    assert_eq!(b.plan(true), 0, "pipeline b plans no change");

    // Both destroy at the same time: the policy is as it was before any binding.
    let (out_a, out_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.destroy());
        let tb = s.spawn(|| b.destroy());
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(out_a.success(), "pipeline a destroy:\n{out_a}");
    assert!(out_b.success(), "pipeline b destroy:\n{out_b}");
    assert_eq!(
        emu.api_policy(API).as_deref(),
        Some(before.as_str()),
        "the API policy is as it was"
    );
}

/// Someone edits the API policy in the portal while an apply is writing it: the provider's
/// write (with the ETag it read) is refused, and the edit is neither overwritten nor lost;
/// the apply re-reads and completes, or fails saying so and the next apply completes.
#[test]
fn a_portal_edit_during_an_apply_is_kept_and_the_next_plan_converges() {
    let bao = Bao::start();
    let emu = Emulator::start();
    vault_side(&bao, &emu);
    let wd = workdir(&bao, &emu, &team(&emu, "p", 3));
    // The apply's first write of the policy waits 3 s in the emulator before it is handled.
    emu.fault(json!({"method": "PUT", "path": "*/apis/shared/policies/policy", "latency_ms": 3000, "count": 1}));
    // The fault rule goes away when the write arrives: then edit in the "portal", before the
    // delayed write is handled.
    let first = apply_with_portal_edit(&emu, &wd, "the apply never wrote the policy");
    let conflicts = emu
        .requests()
        .as_array()
        .map_or(0, |r| r.iter().filter(|x| x["status"] == 412).count());
    assert!(conflicts >= 1, "the delayed write was refused by its ETag");
    let policy = emu.api_policy(API).unwrap();
    assert!(
        policy.contains("X-Portal"),
        "the portal edit is not overwritten:\n{policy}\napply:\n{first}"
    );
    if !first.success() {
        // Failed saying so: the next apply completes.
        wd.run_ok(&["apply", "-auto-approve"]);
    }
    assert_eq!(recorded(&emu), names("p", 3));
    assert!(emu.api_policy(API).unwrap().contains("X-Portal"));
    assert_eq!(wd.plan(true), 0, "the next plan is empty");
    wd.destroy();
    let left = emu.api_policy(API).unwrap();
    assert!(
        left.contains("X-Portal") && left.contains("X-Original") && records(&left).is_empty(),
        "destroy removes the bindings only:\n{left}"
    );
}

/// The edits of one apply's later bindings start from what its earlier write left (the
/// policy and the ETag APIM gave it), not from a new read: a portal edit after that write is
/// still kept, because the next write carries that ETag, is refused (412), and is redone on
/// what APIM holds.
#[test]
fn a_portal_edit_between_two_writes_of_one_apply_is_kept() {
    let bao = Bao::start();
    let emu = Emulator::start();
    vault_side(&bao, &emu);
    // Team q is applied after team p (depends_on): two writes of the policy, one after the
    // other.
    let later = format!(
        r#"
resource "apim_vault_binding" "q" {{
  count             = 2
  depends_on        = [apim_vault_binding.b]
  api_management_id = "{}"
  api_id            = "{API}"
  name              = "q-${{count.index}}"
  role              = "app"
  backend           = "jwt"
  audience          = "{AUDIENCE}"
  secret_path       = "secret/data/app"
  secret_field      = "key"
  inject {{
    header = "X-q-${{count.index}}"
  }}
}}
"#,
        emu.api_management_id()
    );
    let wd = workdir(&bao, &emu, &format!("{}{later}", team(&emu, "p", 2)));
    // Each of the two writes waits 2 s in the emulator before it is handled.
    emu.fault(json!({"method": "PUT", "path": "*/apis/shared/policies/policy", "latency_ms": 2000, "count": 2}));
    // The rule goes away when the second write arrives: then edit in the "portal", after the
    // first write and before the second is handled.
    let first = apply_with_portal_edit(&emu, &wd, "the apply never wrote the policy twice");
    let conflicts = emu
        .requests()
        .as_array()
        .map_or(0, |r| r.iter().filter(|x| x["status"] == 412).count());
    assert!(conflicts >= 1, "the second write was refused by its ETag");
    assert!(first.success(), "the apply completes:\n{first}");
    let policy = emu.api_policy(API).unwrap();
    assert!(
        policy.contains("X-Portal"),
        "the portal edit is not overwritten:\n{policy}"
    );
    let mut want = names("p", 2);
    want.extend(names("q", 2));
    assert_eq!(recorded(&emu), want);
    assert_eq!(wd.plan(true), 0, "the next plan is empty");
}

/// Runs `terraform apply` while the emulator holds back the policy writes a fault rule
/// delays; when the rule is used up (its last write arrived), edits the policy as the portal
/// would (an `X-Portal` header after `<base />`) before that write is handled. The apply's
/// output.
fn apply_with_portal_edit(emu: &Emulator, wd: &Workdir, never: &str) -> TfOutput {
    let portal_edit = "<set-header name=\"X-Portal\" exists-action=\"override\">\n\t\t\t<value>edited</value>\n\t\t</set-header>";
    std::thread::scope(|s| {
        let apply = s.spawn(|| wd.run(&["apply", "-auto-approve"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, rules) = emu.call("GET", "/_emulator/faults", None);
            if rules.as_array().is_some_and(Vec::is_empty) {
                break;
            }
            assert!(Instant::now() < deadline, "{never}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = emu.api_policy(API).unwrap();
        let edited = now.replacen("<base />", &format!("<base />\n\t\t{portal_edit}"), 1);
        emu.put_api_policy(API, &edited);
        apply.join().unwrap()
    })
}

/// The requests `method` of the emulator's log, from the `from`th on, to a path ending with
/// `suffix` (case-insensitive).
fn calls_to(emu: &Emulator, method: &str, suffix: &str, from: usize) -> usize {
    emu.requests().as_array().map_or(0, |r| {
        r.iter()
            .skip(from)
            .filter(|x| {
                x["method"] == method
                    && x["path"]
                        .as_str()
                        .is_some_and(|p| p.to_ascii_lowercase().ends_with(suffix))
            })
            .count()
    })
}

/// The requests `method` to the policy of [`API`], from the `from`th on.
fn policy_calls(emu: &Emulator, method: &str, from: usize) -> usize {
    calls_to(emu, method, "/apis/shared/policies/policy", from)
}

fn logged(emu: &Emulator) -> usize {
    emu.requests().as_array().map_or(0, Vec::len)
}

/// Group commit and shared reads: an apply of 20 bindings on one API at `-parallelism=10`, its
/// policy writes taking 300 ms, writes the policy far fewer times than it has bindings (the edits that queue while one is
/// written go together), and a refresh reads the policy once, whatever the number of
/// bindings on it.
#[test]
fn many_bindings_on_one_api_write_its_policy_in_groups_and_read_it_once_per_refresh() {
    // Every request OpenBao serves goes to its audit log: the Vault calls of a plan.
    let audit_dir = tempfile::tempdir().expect("a folder for OpenBao's audit log");
    let audit = audit_dir.path().join("audit.log");
    let bao = Bao::start_with_config(&format!(
        "audit \"file\" \"calls\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
        audit.display().to_string()
    ));
    let emu = Emulator::start();
    vault_side(&bao, &emu);
    let wd = workdir(&bao, &emu, &team(&emu, "g", 20));
    // A policy write takes a while in Azure (about a second); here 300 ms.
    emu.fault(json!({"method": "PUT", "path": "*/apis/shared/policies/policy", "latency_ms": 300}));
    let from = logged(&emu);
    wd.run_ok(&["apply", "-auto-approve", "-parallelism=10"]);
    let writes = policy_calls(&emu, "PUT", from);
    assert_eq!(recorded(&emu), names("g", 20));
    let from = logged(&emu);
    let vault_from = vault_requests(&audit);
    assert_eq!(wd.plan(true), 0, "the plan is empty");
    let vault_calls = vault_requests(&audit) - vault_from;
    let refresh_reads = policy_calls(&emu, "GET", from);
    // The instance and the API are read once too, not once per binding.
    let reads_of = |suffix: &str| calls_to(&emu, "GET", suffix, from);
    let service_name = emu
        .api_management_id()
        .rsplit('/')
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert_eq!(
        reads_of(&format!("/service/{service_name}")),
        1,
        "the instance is read once per plan, for the role's identity and the bindings' checks alike"
    );
    assert_eq!(reads_of("/apis/shared"), 1, "the API is read once per plan");
    eprintln!("pipelines: 20 bindings on one API: {writes} writes of its policy to apply them, {refresh_reads} read(s) of it to refresh and plan them");
    assert!(
        writes <= 10,
        "{writes} writes of the policy for 20 bindings at -parallelism=10: edits waiting on each other go together"
    );
    assert_eq!(refresh_reads, 1, "a refresh reads the API policy once");
    eprintln!(
        "pipelines: 20 bindings on one API: {vault_calls} Vault requests to refresh and plan them"
    );
    assert!(
        vault_calls < 20,
        "{vault_calls} Vault requests for a plan of 20 bindings: their checks read the role, its policy and the secret's mount once per plan, not once per binding"
    );
    let from = logged(&emu);
    wd.run_ok(&["destroy", "-auto-approve", "-parallelism=10"]);
    let deletes = policy_calls(&emu, "PUT", from) + policy_calls(&emu, "DELETE", from);
    eprintln!("pipelines: 20 bindings on one API: {deletes} writes of its policy to destroy them");
    assert!(deletes <= 10, "{deletes} writes to destroy 20 bindings");
    assert!(records(&emu.api_policy(API).unwrap_or_default()).is_empty());
}

/// How many requests OpenBao has served, by its audit log.
fn vault_requests(audit: &std::path::Path) -> usize {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\""))
        .count()
}
