//! `apim_vault_binding` end to end: real Terraform, real OpenBao and the APIM emulator. The
//! bindings of one API live in one block the provider manages in that API's inbound policy;
//! these tests read that policy as APIM holds it (and list the instance's named values and
//! policy fragments, of which there must be none).

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::fixtures::{
    entra_backend, provider_from_env, trio_binding, vault_trio, AUDIENCE,
};
use crate::support::{
    contains_normalized, run, Bao, Emulator, Postgres, Step, TerraformBin, TestCase, Workdir,
};

const SECRET: &str = "s3cr3t-orders-key";
const ORIGINAL_POLICY: &str = "<policies>\r\n  <inbound>\r\n    <base />\r\n    <set-header name=\"X-Team\" exists-action=\"override\">\r\n      <value>orders</value>\r\n    </set-header>\r\n  </inbound>\r\n  <backend>\r\n    <base />\r\n  </backend>\r\n  <outbound>\r\n    <base />\r\n  </outbound>\r\n  <on-error>\r\n    <base />\r\n  </on-error>\r\n</policies>";

/// The comment that opens the managed block (followed by a note the provider owns).
pub(crate) const BLOCK_BEGIN: &str = "<!-- apim-vault-bindings begin";
/// The comment that closes the managed block.
pub(crate) const BLOCK_END: &str = "<!-- apim-vault-bindings end -->";
/// The comment that opens one binding's record (followed by its name and its settings).
const RECORD: &str = "<!-- apim-vault-binding ";

/// The managed block of `policy`, from its opening comment to its closing one.
pub(crate) fn block_of(policy: &str) -> Option<&str> {
    let begin = policy.find(BLOCK_BEGIN)?;
    let end = begin + policy[begin..].find(BLOCK_END)? + BLOCK_END.len();
    Some(&policy[begin..end])
}

/// The names in the records of `policy`'s block, in order.
pub(crate) fn records(policy: &str) -> Vec<String> {
    let Some(block) = block_of(policy) else {
        return Vec::new();
    };
    block
        .match_indices(RECORD)
        .map(|(i, _)| {
            block[i + RECORD.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// How many `<element ...>` `policy` holds.
pub(crate) fn count(policy: &str, element: &str) -> usize {
    policy.matches(&format!("<{element} ")).count()
}

/// `policy` without its block and the white space that leads to it: what it was before the
/// first binding.
fn without_block(policy: &str) -> String {
    let begin = policy.find(BLOCK_BEGIN).expect("a managed block");
    let end = begin + policy[begin..].find(BLOCK_END).expect("the block's end") + BLOCK_END.len();
    let start = policy[..begin].trim_end().len();
    format!("{}{}", &policy[..start], &policy[end..])
}

/// The block comes first in `<inbound>`, right after `<base />`, and everything else is as
/// `original` was, byte for byte.
#[track_caller]
fn assert_block_after_base(policy: &str, original: &str) {
    let inbound = policy.find("<inbound>").expect("an inbound section");
    let base = inbound + policy[inbound..].find("<base />").expect("<base />") + "<base />".len();
    assert!(
        policy[base..].trim_start().starts_with(BLOCK_BEGIN),
        "the block follows <base />:\n{policy}"
    );
    assert_eq!(without_block(policy), original, "the rest is untouched");
}

/// The instance holds no named value and no policy fragment: the bindings need none.
#[track_caller]
pub(crate) fn assert_no_named_values_or_fragments(emu: &Emulator) {
    assert_eq!(emu.list("namedValues"), Vec::<Value>::new(), "named values");
    assert_eq!(
        emu.list("policyFragments"),
        Vec::<Value>::new(),
        "policy fragments"
    );
}

/// One lookup and one store of the API's cached secrets, both in the gateway's own cache.
#[track_caller]
fn assert_one_cache_lookup_and_store(policy: &str) {
    assert_eq!(count(policy, "cache-lookup-value"), 1, "{policy}");
    assert_eq!(count(policy, "cache-store-value"), 1, "{policy}");
    assert_eq!(
        policy.matches("caching-type=\"internal\"").count(),
        2,
        "{policy}"
    );
    assert!(!policy.contains("{{") && !policy.contains("}}"), "{policy}");
    assert!(!policy.contains("include-fragment"), "{policy}");
}

/// The `key` of the block's `cache-lookup-value`.
fn cache_key(policy: &str) -> String {
    let at = policy
        .find("<cache-lookup-value key=\"")
        .expect("a cache lookup")
        + 25;
    policy[at..at + policy[at..].find('"').unwrap()].to_string()
}

/// Every line of the binding's `policy_xml` is a line of the block.
#[track_caller]
fn assert_part_in_block(part: &str, policy: &str) {
    let block: Vec<&str> = block_of(policy).unwrap().lines().map(str::trim).collect();
    let lines: Vec<&str> = part
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        lines.len() > 5,
        "policy_xml holds the read and the injection: {part}"
    );
    for line in lines {
        assert!(
            block.contains(&line),
            "{line:?} is not in the block:\n{policy}"
        );
    }
}

fn setup(bao: &Bao, emu: &Emulator) {
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": SECRET}})),
    );
    emu.create_api("orders-api");
    emu.put_api_policy("orders-api", ORIGINAL_POLICY);
}

/// The trio (its policy reading `secret/data/orders/*`, its role's tokens living `role_ttl`
/// seconds) and `apim_vault_binding.orders` with `binding`.
fn config(emu: &Emulator, binding: &str, role_ttl: i64) -> String {
    config_reading(emu, "secret/data/orders/*", binding, role_ttl)
}

/// [`config`] with the trio's policy granting the read on `read_path`.
fn config_reading(emu: &Emulator, read_path: &str, binding: &str, role_ttl: i64) -> String {
    format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(emu, read_path, &format!("token_ttl = {role_ttl}")),
        named_binding(emu, "orders", "orders", binding)
    )
}

/// `apim_vault_binding.<label>` named `name` on the emulator's instance, logging in with the
/// trio's role.
fn named_binding(emu: &Emulator, label: &str, name: &str, binding: &str) -> String {
    trio_binding(
        label,
        &format!(
            "api_management_id = \"{}\"\nname              = \"{name}\"\n{binding}",
            emu.api_management_id()
        ),
    )
}

/// `config` with the binding naming the role `role` (a literal, not the trio's role).
fn with_role(config: &str, role: &str) -> String {
    let reference = "role     = apim_vault_azure_role.orders.name";
    assert!(config.contains(reference), "{config}");
    config.replace(reference, &format!("role     = \"{role}\""))
}

const BINDING: &str = r#"secret_path  = "secret/data/orders/backend"
secret_field = "api_key"
api_id       = "orders-api"
cache_ttl    = 120
inject {
  header = "X-Api-Key"
}"#;

/// [`BINDING`] reading `password` at `path` instead of the KV secret, with the trio's
/// policy granting that read.
fn config_on(emu: &Emulator, path: &str) -> String {
    config_reading(
        emu,
        path,
        &BINDING
            .replace("secret/data/orders/backend", path)
            .replace("secret_field = \"api_key\"", "secret_field = \"password\""),
        600,
    )
}

/// `terraform plan` of `config` exits 1 with `expected` among its diagnostics: the refusal
/// comes from the plan itself, not from an apply.
#[track_caller]
fn assert_plan_refuses(wd: &Workdir, config: &str, expected: &str) {
    wd.write_config(config);
    let out = wd.run(&["plan", "-detailed-exitcode"]);
    assert_eq!(
        out.code, 1,
        "`terraform plan` must refuse with {expected:?}:\n{out}"
    );
    assert!(
        contains_normalized(&out.combined(), expected),
        "`terraform plan` refused, but not with {expected:?}:\n{out}"
    );
}

/// A working directory for Terraform 1.15 with `envs`.
fn workdir(envs: impl IntoIterator<Item = (String, String)>) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in envs {
        wd.env(k, v);
    }
    wd
}

/// The record of `name` removed from `policy` (its line), the rest of the block left as is.
fn without_record(policy: &str, name: &str) -> String {
    let at = policy
        .find(&format!("{RECORD}{name} "))
        .unwrap_or_else(|| panic!("no record of {name}:\n{policy}"));
    let start = policy[..at].trim_end().len();
    let end = at + policy[at..].find("-->").unwrap() + 3;
    format!("{}{}", &policy[..start], &policy[end..])
}

/// The lifecycle: create (the block right after `<base />`, one record, no named values or
/// fragments), import by `id`, in-place updates (`cache_ttl`, `inject`, `rotation`), the block
/// edited by hand (an update of `policy_xml`, which apply repairs), the record removed (the
/// binding is re-created), and destroy (the policy back byte for byte; an API that had no
/// policy has none again).
#[test]
fn vault_binding_lifecycle() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    // An API without a policy: the first binding creates it, the last one deletes it.
    emu.create_api("bare-api");
    assert_eq!(emu.api_policy("bare-api"), None);
    let bare = named_binding(
        &emu,
        "bare",
        "bare",
        &BINDING.replace("orders-api", "bare-api"),
    );
    let first = format!("{}{bare}", config(&emu, BINDING, 600));
    // cache_ttl, inject and rotation changed.
    let updated = format!(
        "{}{bare}",
        config(
            &emu,
            &format!(
                "{}\nrotation = 1",
                BINDING
                    .replace("120", "60")
                    .replace("header = \"X-Api-Key\"", "query = \"key\"")
            ),
            600,
        )
    );
    let first_key = RefCell::new(String::new());
    let repaired = RefCell::new(String::new());
    let id = format!(
        "{}/apis/orders-api/vaultBindings/orders",
        emu.api_management_id()
    );
    let case = TestCase::new(vec![
        Step::config(first).check(|wd| {
            let b = wd.resource("apim_vault_binding.orders");
            assert_eq!(b["id"], Value::from(id.as_str()));
            assert_eq!(b["vault_address"], Value::from(bao.addr()));
            assert_eq!(b["rotation"], Value::from(0));
            let policy = emu.api_policy("orders-api").unwrap();
            assert_block_after_base(&policy, ORIGINAL_POLICY);
            assert_eq!(records(&policy), ["orders"]);
            assert_one_cache_lookup_and_store(&policy);
            assert!(
                policy.contains("name=\"apim-vault-duration\" value=\"@((long)(120))\""),
                "{policy}"
            );
            assert!(
                policy.contains("<set-header name=\"X-Api-Key\""),
                "{policy}"
            );
            assert!(
                policy.contains(&format!("resource=\"{AUDIENCE}\"")),
                "{policy}"
            );
            assert!(
                policy.contains(&format!("{}/v1/secret/data/orders/backend", bao.addr())),
                "{policy}"
            );
            assert_part_in_block(b["policy_xml"].as_str().unwrap(), &policy);
            *first_key.borrow_mut() = cache_key(&policy);
            let created = emu
                .api_policy("bare-api")
                .expect("the first binding made a policy");
            assert!(created.contains("created-policy"), "{created}");
            assert_eq!(records(&created), ["bare"]);
            assert_no_named_values_or_fragments(&emu);
        }),
        Step::import("apim_vault_binding.orders")
            .import_id(id.clone())
            .check(|wd| {
                let b = wd.resource("apim_vault_binding.orders");
                assert_eq!(b["id"], Value::from(id.as_str()));
            }),
        // cache_ttl, inject and rotation change in place.
        Step::config(updated.clone()).check(|wd| {
            let b = wd.resource("apim_vault_binding.orders");
            assert_eq!(b["rotation"], Value::from(1));
            assert_eq!(b["cache_ttl"], Value::from(60));
            let policy = emu.api_policy("orders-api").unwrap();
            assert_block_after_base(&policy, ORIGINAL_POLICY);
            assert_eq!(records(&policy), ["orders"]);
            assert_one_cache_lookup_and_store(&policy);
            assert!(
                policy.contains("name=\"apim-vault-duration\" value=\"@((long)(60))\""),
                "{policy}"
            );
            assert!(!policy.contains("X-Api-Key"), "{policy}");
            assert!(
                policy.contains("<set-query-parameter name=\"key\""),
                "{policy}"
            );
            assert_ne!(
                cache_key(&policy),
                *first_key.borrow(),
                "a new rotation is a new cache key"
            );
            assert_part_in_block(b["policy_xml"].as_str().unwrap(), &policy);
            *repaired.borrow_mut() = block_of(&policy).unwrap().to_string();
        }),
        // The block edited by hand: an update of policy_xml.
        Step::drift(|| {
            let policy = emu.api_policy("orders-api").unwrap();
            assert_eq!(
                policy
                    .matches("name=\"apim-vault-duration\" value=\"@((long)(60))\"")
                    .count(),
                1
            );
            emu.put_api_policy(
                "orders-api",
                &policy.replace(
                    "name=\"apim-vault-duration\" value=\"@((long)(60))\"",
                    "name=\"apim-vault-duration\" value=\"@((long)(86400))\"",
                ),
            );
        })
        .plan_contains("apim_vault_binding.orders will be updated in-place")
        .plan_contains("policy_xml"),
        // Apply renders the block again.
        Step::config(updated.clone()).check(|_| {
            let policy = emu.api_policy("orders-api").unwrap();
            assert_eq!(block_of(&policy), Some(repaired.borrow().as_str()));
            assert_block_after_base(&policy, ORIGINAL_POLICY);
        }),
        // The record removed out of band: the binding is gone, and is created again.
        Step::drift(|| {
            let policy = emu.api_policy("orders-api").unwrap();
            emu.put_api_policy("orders-api", &without_record(&policy, "orders"));
        })
        .plan_contains("apim_vault_binding.orders will be created"),
        Step::config(updated.clone()).check(|_| {
            let policy = emu.api_policy("orders-api").unwrap();
            assert_eq!(records(&policy), ["orders"]);
            assert_eq!(block_of(&policy), Some(repaired.borrow().as_str()));
            assert_block_after_base(&policy, ORIGINAL_POLICY);
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        assert_eq!(
            emu.api_policy("orders-api").as_deref(),
            Some(ORIGINAL_POLICY),
            "the API policy is back as it was, byte for byte"
        );
        assert_eq!(
            emu.api_policy("bare-api"),
            None,
            "the policy the first binding created is gone"
        );
        assert_no_named_values_or_fragments(&emu);
    });
    run(case);
}

/// An API policy that answers at once (no backend) with what the block did, which runs
/// before it (right after `<base />`): the request header `X-Api-Key`, the query parameter
/// `key`, the variable `dbPassword`, and the block's secrets variable, which must be cleared.
const ECHO_POLICY: &str = r#"<policies>
  <inbound>
    <base />
    <return-response>
      <set-status code="200" reason="OK" />
      <set-header name="X-Seen-Key" exists-action="override">
        <value>@(context.Request.Headers.GetValueOrDefault("X-Api-Key", "none"))</value>
      </set-header>
      <set-header name="X-Seen-Query" exists-action="override">
        <value>@(context.Request.Url.Query.GetValueOrDefault("key", "none"))</value>
      </set-header>
      <set-header name="X-Seen-Variable" exists-action="override">
        <value>@(context.Variables.GetValueOrDefault<string>("dbPassword", "none"))</value>
      </set-header>
      <set-header name="X-Seen-Secrets" exists-action="override">
        <value>@("[" + context.Variables.GetValueOrDefault<string>("apim-vault", "unset") + "]")</value>
      </set-header>
    </return-response>
  </inbound>
  <backend>
    <base />
  </backend>
  <outbound>
    <base />
  </outbound>
  <on-error>
    <base />
  </on-error>
</policies>"#;

/// How many leases OpenBao holds under `prefix` (`sys/leases/lookup/<prefix>`).
#[track_caller]
pub(crate) fn leases_under(bao: &Bao, prefix: &str) -> usize {
    let (status, body) = bao.api("LIST", &format!("sys/leases/lookup/{prefix}"), None);
    match status {
        200 => body["data"]["keys"].as_array().map_or(0, Vec::len),
        404 => 0,
        other => panic!("listing the leases under {prefix}: {other} {body}"),
    }
}

/// One request through the emulator's gateway to `orders-api`: its status, the headers
/// [`ECHO_POLICY`] answers with (`X-Seen-*`, without the prefix, lower case), its body, and the
/// outcomes of the policies the gateway's log recorded for it, one line each.
#[track_caller]
fn through_gateway(emu: &Emulator) -> (u16, BTreeMap<String, String>, String, String) {
    let (status, headers, body) = emu.gateway_get("/orders/42");
    let seen = headers
        .iter()
        .filter_map(|(k, v)| {
            let k = k.as_str().strip_prefix("x-seen-")?;
            Some((k.to_string(), v.to_str().unwrap_or("").to_string()))
        })
        .collect();
    let log = emu.gateway_log();
    let last = log.last().expect("the gateway logged the request");
    let steps = last["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{}: {}",
                s["policy"].as_str().unwrap_or(""),
                s["outcome"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    (status, seen, body, steps)
}

/// The block APIM holds, run by the emulator's gateway against OpenBao: the secret reaches the
/// request, the next request is answered from the cache, a secret rotated in Vault arrives once
/// `rotation` is bumped, injection as a query parameter, a refused read answers 502 without
/// Vault's message, and a database credential is fetched once per cache window (one lease).
#[test]
fn vault_binding_runtime_through_the_gateway() {
    let bao = Bao::start();
    let emu = Emulator::start();
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": SECRET}})),
    );
    emu.arm_ok(
        "PUT",
        &format!("{}/apis/orders-api", emu.api_management_id()),
        Some(json!({"properties": {"displayName": "Orders", "path": "orders", "protocols": ["http", "https"], "serviceUrl": "https://backend.example", "subscriptionRequired": false}})),
    );
    emu.put_api_policy("orders-api", ECHO_POLICY);
    let read_url = format!("{}/v1/secret/data/orders/backend", bao.addr());
    let rotated = config(&emu, &format!("{BINDING}\nrotation = 1"), 600);
    run(TestCase::new(vec![
        Step::config(config(&emu, BINDING, 600))
            .pre_config(|| {
                // Each Terraform of the matrix starts from the same secret and an empty cache.
                bao.api_ok(
                    "POST",
                    "secret/data/orders/backend",
                    Some(json!({"data": {"api_key": SECRET}})),
                );
                emu.clear_gateway_cache();
            })
            .check(|_| {
                let (status, seen, body, steps) = through_gateway(&emu);
                assert_eq!(status, 200, "{body}\n{steps}");
                assert_eq!(seen["key"], SECRET, "{steps}");
                assert_eq!(seen["secrets"], "[]", "the secrets' variable is cleared");
                assert!(steps.contains("cache miss"), "{steps}");
                assert!(steps.contains(&format!("GET {read_url} -> 200")), "{steps}");
                assert!(steps.contains("/login -> 200"), "{steps}");
                // The next request: from the gateway's cache, no call to Vault.
                let (_, seen, _, steps) = through_gateway(&emu);
                assert_eq!(seen["key"], SECRET);
                assert!(steps.contains("cache hit"), "{steps}");
                assert!(!steps.contains("send-request"), "{steps}");
                // Rotated in Vault: the cached value serves until the cache expires...
                bao.api_ok(
                    "POST",
                    "secret/data/orders/backend",
                    Some(json!({"data": {"api_key": "rotated-key"}})),
                );
                assert_eq!(through_gateway(&emu).1["key"], SECRET);
            }),
        // ...or until `rotation` changes the cache key.
        Step::config(rotated.clone()).check(|_| {
            let (_, seen, _, steps) = through_gateway(&emu);
            assert_eq!(seen["key"], "rotated-key", "{steps}");
            assert!(steps.contains("cache miss"), "{steps}");
        }),
        Step::config(rotated.replace("header = \"X-Api-Key\"", "query = \"key\"")).check(|_| {
            let (_, seen, _, steps) = through_gateway(&emu);
            assert_eq!(seen["query"], "rotated-key", "{steps}");
            assert_eq!(seen["key"], "none");
            // The role loses its read in Vault: 502, without Vault's answer.
            bao.write_policy(
                "orders-reader",
                "path \"secret/data/other/*\" { capabilities = [\"read\"] }",
            );
            emu.clear_gateway_cache();
            let (status, seen, body, steps) = through_gateway(&emu);
            assert_eq!(status, 502, "{body}\n{steps}");
            assert!(steps.contains(&format!("GET {read_url} -> 403")), "{steps}");
            assert!(
                !seen.contains_key("query"),
                "answered by the block, not the echo"
            );
            assert!(!body.contains("permission denied"), "{body}");
        }),
    ])
    .envs(bao.env())
    .envs(emu.env()));
    // Database credentials: one lease per cache window.
    let pg = Postgres::start();
    bao.enable_database(&pg, &[("orders", "1h", "2h")]);
    let leases = || leases_under(&bao, "database/creds/orders/");
    run(TestCase::new(vec![Step::config(
        config_on(&emu, "database/creds/orders")
            .replace("header = \"X-Api-Key\"", "variable = \"dbPassword\""),
    )
    .check(|_| {
        emu.clear_gateway_cache();
        let before = leases();
        let (status, seen, body, steps) = through_gateway(&emu);
        assert_eq!(status, 200, "{body}\n{steps}");
        assert!(
            !seen["variable"].is_empty() && seen["variable"] != "none",
            "a database password in the variable: {steps}"
        );
        assert_eq!(leases(), before + 1, "the gateway's read took a lease");
        let (_, again, _, steps) = through_gateway(&emu);
        assert_eq!(again["variable"], seen["variable"], "{steps}");
        assert_eq!(leases(), before + 1, "no new lease while cached");
    })])
    .envs(bao.env())
    .envs(emu.env()));
}

/// What the refusals need: the KV secret, a database engine whose `orders` role hands out
/// leased credentials, an API whose inbound policy caches values itself, and an API whose
/// policy is nearly as large as a Consumption instance accepts.
const CACHED_POLICY: &str = "<policies>\r\n  <inbound>\r\n    <base />\r\n    <cache-lookup-value key=\"tenant\" variable-name=\"tenant\" />\r\n  </inbound>\r\n  <backend>\r\n    <base />\r\n  </backend>\r\n  <outbound>\r\n    <base />\r\n  </outbound>\r\n  <on-error>\r\n    <base />\r\n  </on-error>\r\n</policies>";

/// An API policy of `size` bytes: [`ORIGINAL_POLICY`] with a long header value.
fn policy_of_size(size: usize) -> String {
    let filler = size - ORIGINAL_POLICY.len();
    let policy = ORIGINAL_POLICY.replace(
        "<value>orders</value>",
        &format!("<value>orders{}</value>", "x".repeat(filler)),
    );
    assert_eq!(policy.len(), size);
    policy
}

/// Each refusal comes from `terraform plan` itself (exit code 1 with the diagnostic), both for
/// a configuration planned from scratch (its role and policy planned in the same run) and
/// against existing objects (the trio and a binding applied, the binding then changed): a
/// missing role, policies that do not grant `read`, an audience the role does not accept, a
/// role bound to another identity, a cache outliving the token or the engine role's lease, no
/// cache for a leased secret, an API that does not exist, an API whose inbound policy caches
/// values itself, and a policy over the instance's document size (16 KiB on Consumption); a
/// policy nearly full is a warning.
#[test]
fn vault_binding_plan_time_refusals() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let pg = Postgres::start();
    bao.enable_database(
        &pg,
        // `orders-short` issues leases of 60 s: its `max_ttl` caps its 1 h default.
        &[("orders", "1h", "2h"), ("orders-short", "1h", "60s")],
    );
    emu.create_api("cached-api");
    emu.put_api_policy("cached-api", CACHED_POLICY);
    emu.create_api("big-api");
    let big = policy_of_size(15 * 1024);
    emu.put_api_policy("big-api", &big);
    emu.create_api("full-api");
    // With one binding's block (about 14 KB: failure records, and the cache entry's claim and
    // refresh), over four fifths of 16 KiB and under it.
    emu.put_api_policy("full-api", &policy_of_size(1024));
    // The trio's policy reads `<mount>/<x>/orders...`: the KV secret and the database
    // credentials, not `secret/data/payments/db`.
    let cfg = |binding: &str, role_ttl: i64| config_reading(&emu, "+/+/orders*", binding, role_ttl);
    let good = cfg(BINDING, 600);
    let cases: [(String, &str); 9] = [
        // A role that does not exist (and is not planned in this run).
        (with_role(&good, "nobody"), "Vault role not found"),
        // Policies that do not grant read on the path.
        (
            cfg(
                &BINDING.replace("secret/data/orders/backend", "secret/data/payments/db"),
                600,
            ),
            "none of them grants `read` on \"secret/data/payments/db\"",
        ),
        // An audience the role does not accept.
        (
            good.replace(
                &format!("audience = \"{AUDIENCE}\"\n  api_management_id"),
                "audience = \"api://someone-else\"\n  api_management_id",
            ),
            "The role does not accept this audience",
        ),
        // A role bound to an identity that is not the instance's.
        (
            good.replace(
                &format!(
                    "  api_management_id = \"{}\"\n  audience          = \"{AUDIENCE}\"",
                    emu.api_management_id()
                ),
                &format!(
                    "  principal_id      = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id         = \"{}\"\n  audience          = \"{AUDIENCE}\"",
                    emu.tenant_id()
                ),
            ),
            "The role is bound to another identity",
        ),
        // A cache that outlives the token.
        (cfg(BINDING, 60), "longer than the role's token_ttl of 60 s"),
        // A cache that outlives the database role's credentials.
        (
            cfg(
                &BINDING
                    .replace("secret/data/orders/backend", "database/creds/orders-short")
                    .replace("api_key", "password"),
                600,
            ),
            "longer than the lease of \"database/creds/orders-short\"",
        ),
        // No cache for a leased secret: each request would make a new database login.
        (
            cfg(
                &BINDING
                    .replace("secret/data/orders/backend", "database/creds/orders")
                    .replace("api_key", "password")
                    .replace("cache_ttl    = 120", "cache_ttl    = 0"),
                600,
            ),
            "A leased secret needs the cache",
        ),
        // An API that does not exist.
        (
            cfg(&BINDING.replace("orders-api", "no-such-api"), 600),
            "has no API \"no-such-api\"",
        ),
        // An API whose inbound policy has its own cache-lookup-value.
        (
            cfg(&BINDING.replace("orders-api", "cached-api"), 600),
            "The API's policy caches values itself",
        ),
    ];
    let env: Vec<(String, String)> = bao.env().into_iter().chain(emu.env()).collect();
    // From scratch: nothing exists yet, the role and policy are planned in the same run.
    let scratch = workdir(env.clone());
    for (config, expected) in &cases {
        assert_plan_refuses(&scratch, config, expected);
    }
    // Against existing objects: the trio and a good binding applied, then changed.
    let existing = workdir(env);
    existing.write_config(&good);
    let out = existing.apply();
    assert!(out.success(), "{out}");
    for (config, expected) in &cases {
        assert_plan_refuses(&existing, config, expected);
    }
    // The document size: 16 KiB on a Consumption instance, which the big API's policy and
    // a binding do not fit.
    let on_big = cfg(&BINDING.replace("orders-api", "big-api"), 600);
    existing.write_config(&on_big);
    assert_eq!(
        existing.plan(true),
        2,
        "it fits the Developer tier's 256 KiB"
    );
    emu.arm_ok(
        "PATCH",
        emu.api_management_id(),
        Some(json!({"sku": {"name": "Consumption", "capacity": 0}})),
    );
    let too_large = "The API's policy would be too large";
    assert_plan_refuses(&scratch, &on_big, too_large);
    assert_plan_refuses(&existing, &on_big, too_large);
    // Over four fifths of it: a warning, and the plan goes on.
    for wd in [&scratch, &existing] {
        wd.write_config(&cfg(&BINDING.replace("orders-api", "full-api"), 600));
        let plan = wd.plan_output(true);
        assert_eq!(plan.code, 2, "{plan}");
        assert!(
            contains_normalized(&plan.combined(), "The API's policy is nearly full"),
            "{plan}"
        );
    }
    // Nothing was written by the refused plans.
    assert_eq!(emu.api_policy("big-api").as_deref(), Some(big.as_str()));
    assert_eq!(emu.api_policy("cached-api").as_deref(), Some(CACHED_POLICY));
    assert_eq!(emu.api_policy("no-such-api"), None);
    existing.write_config(&good);
    let out = existing.destroy();
    assert!(out.success(), "{out}");
    assert_eq!(
        emu.api_policy("orders-api").as_deref(),
        Some(ORIGINAL_POLICY)
    );
    assert_no_named_values_or_fragments(&emu);
}

/// A second role for the emulator's instance, with the trio's policy.
fn billing_role(emu: &Emulator) -> String {
    format!(
        r#"resource "apim_vault_azure_role" "billing" {{
  name              = "billing-apim"
  backend           = apim_vault_auth_backend.entra.path
  api_management_id = "{}"
  audience          = "{AUDIENCE}"
  token_policies    = [apim_vault_policy.orders.name]
  token_ttl         = 600
}}
"#,
        emu.api_management_id()
    )
}

/// Bindings of one API share one cache lookup and store; they log in once per role: two
/// bindings of the trio's role share one login, a binding of another role has its own.
#[test]
fn vault_binding_shares_the_cache_and_one_login_per_role() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let base = format!("{}{}", config(&emu, BINDING, 600), billing_role(&emu));
    let same_role = named_binding(
        &emu,
        "audit",
        "orders-audit",
        &BINDING.replace("header = \"X-Api-Key\"", "variable = \"auditKey\""),
    );
    let other_role = named_binding(
        &emu,
        "billing",
        "billing",
        &BINDING.replace("X-Api-Key", "X-Billing-Key"),
    )
    .replace(
        "role     = apim_vault_azure_role.orders.name",
        "role     = apim_vault_azure_role.billing.name",
    );
    run(TestCase::new(vec![
        Step::config(format!("{base}{same_role}{other_role}")).check(|_| {
            let policy = emu.api_policy("orders-api").unwrap();
            assert_eq!(records(&policy), ["billing", "orders", "orders-audit"]);
            assert_one_cache_lookup_and_store(&policy);
            assert_eq!(
                count(&policy, "authentication-managed-identity"),
                2,
                "{policy}"
            );
            assert_eq!(policy.matches("/login</set-url>").count(), 2, "{policy}");
            assert!(policy.contains("\"billing-apim\""), "{policy}");
            assert!(policy.contains("\"orders-apim\""), "{policy}");
            // Two logins and two reads: the two bindings of the trio's role read their one
            // secret once.
            assert_eq!(count(&policy, "send-request"), 4, "{policy}");
            assert_block_after_base(&policy, ORIGINAL_POLICY);
            assert_no_named_values_or_fragments(&emu);
        }),
        // Without the other role's binding: one login for the two of the trio's role.
        Step::config(format!("{base}{same_role}")).check(|_| {
            let policy = emu.api_policy("orders-api").unwrap();
            assert_eq!(records(&policy), ["orders", "orders-audit"]);
            assert_one_cache_lookup_and_store(&policy);
            assert_eq!(
                count(&policy, "authentication-managed-identity"),
                1,
                "{policy}"
            );
            assert_eq!(policy.matches("/login</set-url>").count(), 1, "{policy}");
            assert!(!policy.contains("billing"), "{policy}");
            // One login and one read of the secret both bindings inject.
            assert_eq!(count(&policy, "send-request"), 2, "{policy}");
            assert_block_after_base(&policy, ORIGINAL_POLICY);
        }),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        assert_eq!(
            emu.api_policy("orders-api").as_deref(),
            Some(ORIGINAL_POLICY)
        )
    }));
}

/// 120 bindings over 6 APIs of one instance, with one role and policy, reading 4 secrets:
/// applied at `-parallelism=20`, the next plan is empty, the instance holds no named value
/// and no fragment, each API's policy has one cache lookup and store and 20 records, and
/// destroy gives each API its policy back (or none, for those that had none).
#[test]
fn vault_binding_scale_120_bindings_over_6_apis() {
    let bao = Bao::start();
    let emu = Emulator::start();
    for s in 0..4 {
        bao.api_ok(
            "POST",
            &format!("secret/data/app/s{s}"),
            Some(json!({"data": {"key": format!("value-{s}")}})),
        );
    }
    // Three APIs with a policy of their own, three without.
    let original =
        |i: usize| (i < 3).then(|| ORIGINAL_POLICY.replace("orders", &format!("team-{i}")));
    for i in 0..6 {
        emu.create_api(&format!("api-{i}"));
        if let Some(p) = original(i) {
            emu.put_api_policy(&format!("api-{i}"), &p);
        }
    }
    let config = format!(
        "{}{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/app/*", "token_ttl = 900"),
        trio_binding(
            "x",
            &format!(
                r#"count             = 120
api_management_id = "{}"
name              = "b-${{count.index}}"
secret_path       = "secret/data/app/s${{count.index % 4}}"
secret_field      = "key"
api_id            = "api-${{count.index % 6}}"
inject {{
  header = "X-Key-${{count.index}}"
}}"#,
                emu.api_management_id()
            )
        )
    );
    let wd = workdir(bao.env().into_iter().chain(emu.env()));
    wd.write_config(&config);
    let started = std::time::Instant::now();
    let out = wd.run(&["apply", "-auto-approve", "-parallelism=20"]);
    assert!(out.success(), "{out}");
    let applied = started.elapsed();
    assert_eq!(wd.plan(true), 0, "the plan after the apply is empty");
    assert_eq!(wd.plan(false), 0, "and without refresh too");
    assert_no_named_values_or_fragments(&emu);
    for i in 0..6 {
        let policy = emu.api_policy(&format!("api-{i}")).unwrap();
        let mut expected: Vec<String> = (0..120)
            .filter(|n| n % 6 == i)
            .map(|n| format!("b-{n}"))
            .collect();
        expected.sort();
        assert_eq!(records(&policy), expected, "api-{i}");
        assert_one_cache_lookup_and_store(&policy);
        assert_eq!(count(&policy, "authentication-managed-identity"), 1);
        if let Some(p) = original(i) {
            assert_block_after_base(&policy, &p);
        }
    }
    let out = wd.run(&["destroy", "-auto-approve", "-parallelism=20"]);
    assert!(out.success(), "{out}");
    for i in 0..6 {
        assert_eq!(emu.api_policy(&format!("api-{i}")), original(i), "api-{i}");
    }
    eprintln!(
        "vault_binding: 120 bindings over 6 APIs applied in {:.1} s at -parallelism=20",
        applied.as_secs_f64()
    );
}

#[test]
fn vault_binding_refuses_leases_shorter_than_the_cache_and_roles_edited_in_vault() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let env: Vec<(String, String)> = bao.env().into_iter().chain(emu.env()).collect();
    // A leased engine whose default lease TTL is shorter than the binding's cache.
    bao.api_ok(
        "POST",
        "sys/mounts/database",
        Some(json!({"type": "database", "config": {"default_lease_ttl": "60s"}})),
    );
    assert_plan_refuses(
        &workdir(env.clone()),
        &config_on(&emu, "database/creds/orders"),
        "(the mount's default lease TTL: 60 s)",
    );
    // A role managed elsewhere (here: made through the API) whose policy is edited in Vault
    // so that it no longer grants the read: the binding's next plan refuses, naming the fix.
    // (When the role and policy are in the same configuration, the plan judges them as they
    // will be after the apply, which repairs them.)
    let principal = emu.inventory()[emu.api_management_id()]["identity"]["principalId"].clone();
    let backend_only = format!("{}{}", provider_from_env(), entra_backend(&emu, ""));
    let binding_only = with_role(
        &format!(
            "{backend_only}{}",
            named_binding(&emu, "orders", "orders", BINDING)
        ),
        "outside",
    );
    let grant = |path: &str| {
        bao.write_policy(
            "outside-reader",
            &format!("path \"{path}\" {{ capabilities = [\"read\"] }}"),
        );
    };
    let wd = workdir(env);
    // The role appears once the mount exists.
    wd.write_config(&backend_only);
    assert!(wd.apply().success());
    grant("secret/data/orders/*");
    bao.api_ok(
        "POST",
        "auth/apim-jwt/role/outside",
        Some(json!({
            "role_type": "jwt", "user_claim": "oid", "bound_audiences": [AUDIENCE],
            "bound_claims": {"oid": principal, "tid": emu.tenant_id()},
            "token_policies": ["outside-reader"], "token_ttl": 600
        })),
    );
    wd.write_config(&binding_only);
    let out = wd.apply();
    assert!(out.success(), "{out}");
    assert_eq!(wd.plan(true), 0);
    grant("secret/data/other/*");
    // A plan that leaves the binding as it is warns, naming the fix, and blocks nothing (a
    // destroy refreshes through such a plan); a change of the binding is refused.
    let refused = "none of them grants `read` on \"secret/data/orders/backend\"";
    let out = wd.plan_output(true);
    assert_eq!(out.code, 0, "{out}");
    assert!(contains_normalized(&out.combined(), refused), "{out}");
    assert_plan_refuses(
        &wd,
        &binding_only.replace("cache_ttl    = 120", "cache_ttl    = 60"),
        refused,
    );
    wd.write_config(&binding_only);
    let out = wd.destroy();
    assert!(
        out.success(),
        "a binding being destroyed is not refused: {out}"
    );
    assert_eq!(
        emu.api_policy("orders-api").as_deref(),
        Some(ORIGINAL_POLICY)
    );
}

#[test]
fn module_composition_example_applies() {
    use crate::support::terraform_versions;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/module-composition");
    for tf in terraform_versions() {
        let bao = Bao::start();
        let emu = Emulator::start();
        setup(&bao, &emu);
        bao.api_ok(
            "POST",
            "sys/mounts/kv",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        bao.api_ok(
            "POST",
            "kv/data/orders/backend",
            Some(json!({"data": {"api_key": "k1"}})),
        );
        bao.api_ok(
            "POST",
            "kv/data/orders/audit",
            Some(json!({"data": {"token": "t1"}})),
        );
        let mut wd = Workdir::new(tf);
        for (k, v) in bao.env().into_iter().chain(emu.env()) {
            wd.env(k, v);
        }
        wd.env("TF_VAR_api_management_id", emu.api_management_id());
        wd.env("TF_VAR_tenant_id", emu.tenant_id());
        wd.env(
            "TF_VAR_discovery_ca_pem",
            std::fs::read_to_string(emu.ca_file()).unwrap(),
        );
        wd.write_file(
            "main.tf",
            &std::fs::read_to_string(root.join("main.tf")).unwrap(),
        );
        wd.write_file(
            "modules/apim-vault-secrets/main.tf",
            &std::fs::read_to_string(root.join("modules/apim-vault-secrets/main.tf")).unwrap(),
        );
        // Installs the local module only (init would look the dev-overridden provider up on
        // Terraform versions before 1.15).
        wd.run_ok(&["get"]);
        let out = wd.apply();
        assert!(out.success(), "{out}");
        assert_eq!(wd.plan(true), 0, "empty plan after apply");
        let policy = emu.api_policy("orders-api").unwrap();
        assert_eq!(records(&policy), ["orders-audit", "orders-backend"]);
        assert_one_cache_lookup_and_store(&policy);
        // One role per API: one login for the API's two secrets.
        assert_eq!(
            count(&policy, "authentication-managed-identity"),
            1,
            "{policy}"
        );
        assert_block_after_base(&policy, ORIGINAL_POLICY);
        assert_no_named_values_or_fragments(&emu);
        let outputs = wd.outputs();
        assert_eq!(
            outputs["bindings"]["orders-backend"],
            Value::from(format!(
                "{}/apis/orders-api/vaultBindings/orders-backend",
                emu.api_management_id()
            ))
        );
        let (status, body) = bao.api("GET", "auth/apim/role/apim-orders-api", None);
        assert_eq!(status, 200, "{body}");
        let out = wd.destroy();
        assert!(out.success(), "{out}");
        assert_eq!(
            emu.api_policy("orders-api").as_deref(),
            Some(ORIGINAL_POLICY)
        );
    }
}

/// A KV version 1 mount in leased-passthrough mode at `apim-leased`, holding `orders/db` with a
/// 10-minute lease: every read hands out a lease.
fn leased_kv_secret(bao: &Bao) {
    bao.enable_leased_kv("apim-leased");
    bao.api_ok(
        "POST",
        "apim-leased/orders/db",
        Some(json!({"password": "leased-pw", "ttl": "10m"})),
    );
}

/// A binding to a leased secret: a KV version 1 mount in leased-passthrough mode (the field
/// is under `data`), and the database engine, whose lease bounds the cache.
#[test]
fn vault_binding_with_a_leased_secret() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    // A KV version 1 mount in leased-passthrough mode hands out a lease with every read.
    leased_kv_secret(&bao);
    run(
        TestCase::new(vec![Step::config(config_on(&emu, "apim-leased/orders/db"))
            .check(|_| {
                let policy = emu.api_policy("orders-api").unwrap();
                assert!(
                    policy.contains("[\"data\"][\"password\"]")
                        && !policy.contains("[\"data\"][\"data\"]"),
                    "not KV v2: the field is under data: {policy}"
                );
                assert_one_cache_lookup_and_store(&policy);
            })])
        .envs(bao.env())
        .envs(emu.env()),
    );
    // Database credentials: the cache lasts no longer than the lease Vault gives with them.
    let pg = Postgres::start();
    bao.enable_database(&pg, &[("orders", "1h", "2h")]);
    run(
        TestCase::new(vec![Step::config(config_on(&emu, "database/creds/orders"))
            .check(|_| {
                let policy = emu.api_policy("orders-api").unwrap();
                assert!(
                    policy.contains(&format!("{}/v1/database/creds/orders", bao.addr())),
                    "{policy}"
                );
                assert!(
                    policy.contains("name=\"apim-vault-duration\" value=\"@((long)(Math.Min(120, "),
                    "{policy}"
                );
                assert!(
                    policy.contains("Value<int>(\"lease_duration\")"),
                    "{policy}"
                );
                assert_one_cache_lookup_and_store(&policy);
            })])
        .envs(bao.env())
        .envs(emu.env())
        .check_destroy(|| {
            assert_eq!(
                emu.api_policy("orders-api").as_deref(),
                Some(ORIGINAL_POLICY)
            )
        }),
    );
}

/// An edit of the API policy outside the block, made in APIM between `plan` and `apply`,
/// survives the apply: the provider writes only its block, with the ETag it read.
#[test]
fn vault_binding_update_keeps_a_concurrent_edit() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let wd = workdir(bao.env().into_iter().chain(emu.env()));
    wd.write_config(&config(&emu, BINDING, 600));
    let out = wd.apply();
    assert!(out.success(), "{out}");
    wd.write_config(&config(&emu, &BINDING.replace("120", "90"), 600));
    wd.run_ok(&["plan", "-out=tfplan"]);
    // Someone edits the API policy in the portal after the plan, outside the block.
    let policy = emu.api_policy("orders-api").unwrap();
    assert_eq!(policy.matches("<value>orders</value>").count(), 1);
    emu.put_api_policy(
        "orders-api",
        &policy.replace("<value>orders</value>", "<value>orders-portal</value>"),
    );
    let out = wd.run(&["apply", "tfplan"]);
    assert!(out.success(), "{out}");
    let policy = emu.api_policy("orders-api").unwrap();
    assert!(
        policy.contains("<value>orders-portal</value>"),
        "the portal's edit is still there: {policy}"
    );
    assert!(
        policy.contains("name=\"apim-vault-duration\" value=\"@((long)(90))\""),
        "{policy}"
    );
    assert_eq!(records(&policy), ["orders"]);
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    assert_eq!(
        emu.api_policy("orders-api"),
        Some(ORIGINAL_POLICY.replace("<value>orders</value>", "<value>orders-portal</value>")),
        "destroy removes the block and keeps the edit"
    );
}

/// With `TF_LOG=trace`, neither the Vault token, the Azure client secret nor any access token
/// (the provider's ARM token) appears in the logs, the plans, the state or the diagnostics of a
/// whole binding module's lifecycle.
#[test]
fn secrets_never_reach_logs_plans_or_state() {
    let emu = Emulator::start();
    let secret = emu.client_secret().to_string();
    secrets_scan(&emu, &[], &secret);
}

/// The same with the provider signed in to Azure by a managed identity (App Service's
/// endpoint, as `azure_identity` reads it): neither its `IDENTITY_HEADER` secret nor the
/// managed-identity token appears anywhere.
#[test]
fn managed_identity_secrets_never_reach_logs_plans_or_state() {
    let emu = Emulator::start();
    let header = format!("mi-header-{}-7b2d", std::process::id());
    let env = [
        // The system-assigned identity: no client ID, no secret.
        ("ARM_CLIENT_ID", String::new()),
        ("ARM_CLIENT_SECRET", String::new()),
        ("ARM_USE_MSI", "true".to_string()),
        (
            "IDENTITY_ENDPOINT",
            format!("{}/metadata/identity/oauth2/token", emu.url()),
        ),
        ("IDENTITY_HEADER", header.clone()),
    ];
    secrets_scan(&emu, &env, &header);
    let requests = emu.requests();
    assert!(
        requests.as_array().unwrap().iter().any(|r| r["path"]
            .as_str()
            .unwrap_or("")
            .ends_with("/metadata/identity/oauth2/token")
            && r["status"] == 200),
        "the provider signed in with the managed identity: {requests}"
    );
}

/// A binding module's plan, apply, plan, destroy under `TF_LOG=trace`, with the Azure
/// credential from `azure_env` on top of the emulator's; then a search of every output, plan
/// (as `terraform show -json` renders it), the state, the trace log and the API policy for
/// the Vault token, `azure_secret`, the secret's value and any access token.
fn secrets_scan(emu: &Emulator, azure_env: &[(&str, String)], azure_secret: &str) {
    let bao = Bao::start();
    setup(&bao, emu);
    // A token whose value can be searched for without false matches.
    let token = format!(
        "tok{}x{}",
        std::process::id(),
        emu.client_secret().len() * 7919
    );
    bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": token, "policies": ["root"], "ttl": "1h"})),
    );
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in emu.env() {
        wd.env(k, v);
    }
    for (k, v) in azure_env {
        wd.env(k, v);
    }
    wd.env("VAULT_ADDR", bao.addr());
    wd.env("VAULT_TOKEN", &token);
    let log = wd.path().join("trace.log");
    wd.env("TF_LOG", "trace");
    wd.env("TF_LOG_PATH", &log);
    wd.write_config(&config(emu, BINDING, 600));
    // Plan files are zip archives: their content is searched as `terraform show -json`
    // renders it (every value, sensitive ones included).
    let mut texts = vec![
        wd.run_ok(&["plan", "-out=tfplan"]).combined(),
        wd.run_ok(&["show", "-json", "tfplan"]).combined(),
        wd.run_ok(&["apply", "tfplan"]).combined(),
    ];
    let policy = emu.api_policy("orders-api").expect("the API policy");
    assert_eq!(records(&policy), ["orders"]);
    texts.extend([
        policy,
        wd.run_ok(&["plan", "-out=tfplan2"]).combined(),
        wd.run_ok(&["show", "-json", "tfplan2"]).combined(),
        wd.state_raw(),
        wd.run_ok(&["destroy", "-auto-approve"]).combined(),
    ]);
    let files = [std::fs::read_to_string(&log).expect("the trace log")];
    assert!(files[0].len() > 10_000, "the trace log has content");
    // Every API call is in it (method, path, status), so the search covers them.
    for call in [
        "provider.terraform-provider-apim: Vault request: ",
        "provider.terraform-provider-apim: ARM request: ",
    ] {
        assert!(files[0].contains(call), "{call} lines in the trace log");
    }
    assert!(
        files[0].contains("provider.terraform-provider-apim")
            || files[0].contains("apimvault/apim")
    );
    for (i, text) in texts.iter().chain(files.iter()).enumerate() {
        assert!(!text.contains(&token), "the Vault token leaked (text #{i})");
        assert!(
            !text.contains(azure_secret),
            "the Azure credential's secret leaked (text #{i})"
        );
        assert!(
            !text.contains(SECRET),
            "the secret's value leaked (text #{i})"
        );
        assert_eq!(
            crate::support::jwts_in(text),
            Vec::<String>::new(),
            "an access token leaked (text #{i})"
        );
    }
}

/// Two pipelines (two Terraform working directories, two provider processes) adding bindings
/// to one API at the same time: each edit of the API policy is made with the ETag it read, so
/// neither overwrites the other's records.
#[test]
fn vault_binding_two_pipelines_on_one_api() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let env: Vec<(String, String)> = bao.env().into_iter().chain(emu.env()).collect();
    let bindings = |prefix: &str| {
        trio_binding(
            prefix,
            &format!(
                r#"count             = 10
api_management_id = "{}"
name              = "{prefix}-${{count.index}}"
secret_path       = "secret/data/orders/backend"
secret_field      = "api_key"
api_id            = "orders-api"
inject {{
  header = "X-{prefix}-${{count.index}}"
}}"#,
                emu.api_management_id()
            ),
        )
    };
    // The first pipeline owns the trio; the second names its role and mount by their names.
    let trio = format!(
        "{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600")
    );
    let first = workdir(env.clone());
    first.write_config(&trio);
    assert!(first.apply().success());
    let second = workdir(env);
    second.write_config(
        &format!("{}{}", provider_from_env(), bindings("second"))
            .replace("apim_vault_azure_role.orders.name", "\"orders-apim\"")
            .replace("apim_vault_auth_backend.entra.path", "\"apim-jwt\""),
    );
    first.write_config(&format!("{trio}{}", bindings("first")));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| first.run(&["apply", "-auto-approve", "-parallelism=5"]));
        let b = s.spawn(|| second.run(&["apply", "-auto-approve", "-parallelism=5"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.success(), "{a}");
    assert!(b.success(), "{b}");
    let policy = emu.api_policy("orders-api").unwrap();
    let mut expected: Vec<String> = ["first", "second"]
        .iter()
        .flat_map(|p| (0..10).map(move |i| format!("{p}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(
        records(&policy),
        expected,
        "no pipeline lost the other's records"
    );
    assert_one_cache_lookup_and_store(&policy);
    assert_block_after_base(&policy, ORIGINAL_POLICY);
    assert_eq!(first.plan(true), 0);
    assert_eq!(second.plan(true), 0);
    let out = second.destroy();
    assert!(out.success(), "{out}");
    let out = first.destroy();
    assert!(out.success(), "{out}");
    assert_eq!(
        emu.api_policy("orders-api").as_deref(),
        Some(ORIGINAL_POLICY)
    );
}

// Regressions: what PRODUCT.md promises and an earlier state of the second design missed.

/// A KV version 1 mount in leased-passthrough mode hands out a lease with every read: it counts
/// as leased (`MountInfo::is_leased`), so `cache_ttl = 0` is refused and the cache is bounded
/// by the lease.
#[test]
fn vault_binding_leased_kv_version_1_counts_as_leased() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    leased_kv_secret(&bao);
    let (status, read) = bao.api("GET", "apim-leased/orders/db", None);
    assert_eq!(status, 200, "{read}");
    assert!(
        !read["lease_id"].as_str().unwrap_or("").is_empty(),
        "each read hands out a lease: {read}"
    );
    let wd = workdir(bao.env().into_iter().chain(emu.env()));
    let leased = config_on(&emu, "apim-leased/orders/db");
    assert_plan_refuses(
        &wd,
        &leased.replace("cache_ttl    = 120", "cache_ttl    = 0"),
        "A leased secret needs the cache",
    );
    wd.write_config(&leased);
    let out = wd.apply();
    assert!(out.success(), "{out}");
    let policy = emu.api_policy("orders-api").unwrap();
    let destroyed = wd.destroy();
    assert!(destroyed.success(), "{destroyed}");
    assert!(
        policy.contains("name=\"apim-vault-duration\" value=\"@((long)(Math.Min(120, ")
            && policy.contains("Value<int>(\"lease_duration\")"),
        "the cache lasts no longer than the lease: {policy}"
    );
}

/// The document-size check counts every binding planned on the API in the run: bindings
/// planned together for one API on a Consumption instance (16 KiB), whose block together does
/// not fit, are refused at plan (PRODUCT.md: "the rendered policy fits the SKU's document
/// size").
#[test]
fn vault_binding_plan_sizes_the_bindings_planned_together() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let config = format!(
        "{}{}",
        provider_from_env(),
        vault_trio(&emu, "secret/data/orders/*", "token_ttl = 600")
    ) + &trio_binding(
        "x",
        &format!(
            r#"count             = 8
api_management_id = "{}"
name              = "orders-${{count.index}}"
secret_path       = "secret/data/orders/backend"
secret_field      = "api_key"
api_id            = "orders-api"
inject {{
  header = "X-Key-${{count.index}}"
}}"#,
            emu.api_management_id()
        ),
    );
    let wd = workdir(bao.env().into_iter().chain(emu.env()));
    // On the Developer tier (256 KiB) they apply, and their policy is over 16 KiB.
    wd.write_config(&config);
    let out = wd.apply();
    assert!(out.success(), "{out}");
    let size = emu.api_policy("orders-api").unwrap().len();
    assert!(size > 16 * 1024, "the premise: {size} bytes");
    let out = wd.destroy();
    assert!(out.success(), "{out}");
    emu.arm_ok(
        "PATCH",
        emu.api_management_id(),
        Some(json!({"sku": {"name": "Consumption", "capacity": 0}})),
    );
    assert_plan_refuses(&wd, &config, "The API's policy would be too large");
}

/// With `api_id` given as the API's ARM ID (the schema accepts "its name, or its ARM ID"), the
/// binding imports with the same spelling (its record keeps it), so import-verify finds no
/// difference and nothing is replaced.
#[test]
fn vault_binding_import_keeps_an_api_id_given_as_an_arm_id() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    let api = format!("{}/apis/orders-api", emu.api_management_id());
    run(TestCase::new(vec![
        Step::config(config(
            &emu,
            &BINDING.replace("\"orders-api\"", &format!("\"{api}\"")),
            600,
        ))
        .check(|wd| {
            let b = wd.resource("apim_vault_binding.orders");
            assert_eq!(b["id"], Value::from(format!("{api}/vaultBindings/orders")));
            assert_eq!(records(&emu.api_policy("orders-api").unwrap()), ["orders"]);
        }),
        Step::import("apim_vault_binding.orders"),
    ])
    .envs(bao.env())
    .envs(emu.env())
    .check_destroy(|| {
        assert_eq!(
            emu.api_policy("orders-api").as_deref(),
            Some(ORIGINAL_POLICY)
        )
    }));
}

/// The check for the API's own cache policies looks everywhere in `<inbound>`
/// (`policy_xml::inbound_cache_policies`): a `cache-lookup-value` inside a `<choose>` is refused
/// at plan, since APIM allows one per policy section ("This policy can only be used once in a
/// policy section") and the block adds another.
#[test]
fn vault_binding_plan_finds_a_cache_lookup_nested_in_choose() {
    let bao = Bao::start();
    let emu = Emulator::start();
    setup(&bao, &emu);
    emu.put_api_policy(
        "orders-api",
        &CACHED_POLICY.replace(
            "<cache-lookup-value key=\"tenant\" variable-name=\"tenant\" />",
            "<choose>\r\n      <when condition=\"@(context.Request.Method == \"GET\")\">\r\n        <cache-lookup-value key=\"tenant\" variable-name=\"tenant\" />\r\n      </when>\r\n    </choose>",
        ),
    );
    assert_plan_refuses(
        &workdir(bao.env().into_iter().chain(emu.env())),
        &config(&emu, BINDING, 600),
        "The API's policy caches values itself",
    );
}
