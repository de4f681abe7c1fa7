//! Acceptance-test harness: the semantics of HashiCorp's terraform-plugin-testing, driving
//! the real Terraform CLI (through a `dev_overrides` CLI configuration) against a real
//! OpenBao dev server.
//!
//! * [`Tools`]: the binaries installed by `scripts/setup` (Terraform 1.15.5, OpenBao, the
//!   Go null provider, PostgreSQL's bin dir).
//! * [`terraform_versions`]: the Terraform version matrix every [`TestCase`] runs against.
//! * [`Bao`]: an OpenBao dev server on a free loopback port, stopped on drop.
//! * [`BaoCluster`]: OpenBao servers with Raft storage on disk (one to restart, three to
//!   lose a leader), killed on drop.
//! * [`FaultProxy`]: a proxy in front of OpenBao that answers statuses of its own or drops
//!   answers after forwarding, for the next N matching requests.
//! * [`Emulator`]: the project's `apim-emulator` (ARM + Entra over HTTPS), stopped on drop.
//! * [`Postgres`]: a throw-away PostgreSQL cluster (for OpenBao's database engine and its
//!   leases), stopped on drop.
//! * [`gateway`]: requests through the emulator's APIM gateway, its request log and cache,
//!   the APIs they go to, and [`gateway::Echo`], a loopback backend recording what reached it.
//! * [`Collector`]: a SIEM collector (a TCP listener keeping the lines audit devices send).
//! * [`fixtures`]: the configuration tests share, as HCL text: the `terraform` block,
//!   provider blocks, the Vault "trio" (auth backend, policy, role) most binding tests need.
//! * [`Workdir`]: one Terraform working directory (config, state, CLI config).
//! * [`TestCase`] / [`Step`] / [`run`]: config, import and drift steps, then destroy and
//!   `check_destroy`.
//!
//! ```ignore
//! let bao = Bao::start();
//! let config = |path: &str| format!("{}{}", provider_from_env(), read_policy("p", "app", path));
//! run(TestCase::new(vec![
//!     Step::config(config("secret/data/a"))
//!         .check(|wd| assert_eq!(wd.resource("apim_vault_policy.p")["name"], "app")),
//!     Step::import("apim_vault_policy.p"),
//!     Step::drift(|| bao.write_policy("app", "path \"x\" { capabilities = [\"list\"] }"))
//!     .plan_contains("apim_vault_policy.p will be updated in-place"),
//!     Step::config(config("secret/data/a")), // apply repairs the drift
//! ])
//! .envs(bao.env())
//! .check_destroy(|| assert_eq!(bao.policy("app"), None)));
//! ```
//!
//! Environment knobs: `APIM_TOOLS_DIR` (tools folder, default `<repo>/.tools`),
//! `APIM_TEST_TF_MATRIX=0` (only Terraform 1.15.5), `APIM_TEST_KEEP=1` (keep working
//! directories), `APIM_TEST_TF_LOG=<level>` (Terraform's `TF_LOG`, written to the captured
//! stderr), `APIM_TEST_TF_TIMEOUT=<seconds>` (per Terraform command, default 300),
//! `APIM_TEST_TMPDIR` (where working directories go).

mod bao;
mod bao_cluster;
mod collector;
mod emulator;
mod fault_proxy;
pub mod fixtures;
pub mod gateway;
pub mod mirror;
mod postgres;
mod process;
mod testcase;
mod tools;
mod workdir;

pub use bao::Bao;
pub use bao_cluster::BaoCluster;
pub use collector::Collector;
pub use emulator::Emulator;
pub use fault_proxy::FaultProxy;
pub use postgres::Postgres;
pub use testcase::{run, run_with, Step, TestCase};
pub use tools::{terraform_versions, TerraformBin, Tools};
pub use workdir::{TfOutput, Workdir, PROVIDER_SOURCE};

/// Text comparison that ignores how Terraform wrapped and framed a message: box-drawing
/// gutters (`│`, `╷`, `╵`) are dropped and every run of whitespace becomes one space.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_start_matches(['│', '╷', '╵', ' ', '\t']);
        for word in line.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// Whether `haystack` contains `needle`, both compared with [`normalize_text`].
pub fn contains_normalized(haystack: &str, needle: &str) -> bool {
    normalize_text(haystack).contains(&normalize_text(needle))
}

/// Panics when any of `needles` (`(what it is, its text)`) occurs in `haystack`, named
/// `what`; an empty needle panics too (the test observed nothing).
#[track_caller]
pub fn assert_absent(what: &str, haystack: &str, needles: &[(&str, &str)]) {
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

/// The message of a caught panic, for tests that assert how the harness fails.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// The JSON Web Tokens in `text` (`eyJ<header>.eyJ<payload>.<signature>`): managed-identity,
/// Entra and ARM access tokens all have this shape, so none may appear in a log or a state.
pub fn jwts_in(text: &str) -> Vec<String> {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("eyJ").map(|i| i + from) {
        let mut end = at;
        let mut parts = 0;
        loop {
            let start = end;
            while end < bytes.len() && b64(bytes[end]) {
                end += 1;
            }
            let part = &text[start..end];
            let ok = match parts {
                0 | 1 => part.starts_with("eyJ") && part.len() > 8,
                _ => part.len() >= 16,
            };
            if !ok {
                break;
            }
            parts += 1;
            if parts == 3 || end >= bytes.len() || bytes[end] != b'.' {
                break;
            }
            end += 1;
        }
        if parts == 3 {
            found.push(text[at..end].to_string());
        }
        from = end.max(at + 3);
    }
    found
}

/// The OpenBao objects modules make, named as [`vault_state_objects`] names them: ACL
/// policies (but `default` and `root`), auth mounts (but `token/`) and their roles. `api` is
/// one call with the root token (`|m, p| bao.api(m, p, None)`, or to one node of a cluster).
pub fn vault_inventory(
    api: impl Fn(&str, &str) -> (u16, serde_json::Value),
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let (s, b) = api("LIST", "sys/policies/acl");
    assert_eq!(s, 200, "list policies: {b}");
    for k in b["data"]["keys"].as_array().into_iter().flatten() {
        let k = k.as_str().unwrap_or_default();
        if k != "default" && k != "root" {
            out.insert(format!("vault policy {k}"));
        }
    }
    let (s, b) = api("GET", "sys/auth");
    assert_eq!(s, 200, "list auth mounts: {b}");
    for mount in b["data"].as_object().into_iter().flatten().map(|(k, _)| k) {
        let mount = mount.trim_end_matches('/');
        if mount == "token" {
            continue;
        }
        out.insert(format!("vault mount {mount}"));
        let (_, r) = api("LIST", &format!("auth/{mount}/role"));
        for k in r["data"]["keys"].as_array().into_iter().flatten() {
            out.insert(format!(
                "vault role {mount}/{}",
                k.as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// The OpenBao objects the state holds (`apim_vault_policy`, `apim_vault_auth_backend`,
/// `apim_vault_azure_role`), named as [`vault_inventory`] names them.
pub fn vault_state_objects(wd: &Workdir) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for addr in wd.resource_addresses() {
        let r = wd.resource(&addr);
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        if addr.starts_with("apim_vault_policy.") {
            out.insert(format!("vault policy {}", s("name")));
        } else if addr.starts_with("apim_vault_auth_backend.") {
            out.insert(format!("vault mount {}", s("path")));
        } else if addr.starts_with("apim_vault_azure_role.") {
            out.insert(format!("vault role {}/{}", s("backend"), s("name")));
        }
    }
    out
}

/// An answer's status and JSON body: `Null` when the body is empty, a JSON string when it is
/// not JSON.
pub(crate) fn status_and_json(response: reqwest::blocking::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    let value = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, value)
}

/// Panics unless `remote` (what the APIs hold) and `state` (what Terraform knows) name the
/// same objects, listing what is orphaned (held, not known) and what is lost (known, not
/// held); `context` goes into the message.
#[track_caller]
pub fn assert_state_matches(
    remote: &std::collections::BTreeSet<String>,
    state: &std::collections::BTreeSet<String>,
    context: &str,
) {
    let orphaned: Vec<_> = remote.difference(state).collect();
    let lost: Vec<_> = state.difference(remote).collect();
    assert!(
        orphaned.is_empty() && lost.is_empty(),
        "{context}\norphaned (not in state): {orphaned:?}\nlost (in state, not held): {lost:?}"
    );
}
