//! The local Vault ACL evaluator (used by plan-time checks) against OpenBao's own answers
//! from `sys/capabilities`, on the same policies and paths.

use std::collections::BTreeSet;

use apim_provider::clients::vault::acl::{capabilities_on, parse};
use serde_json::json;

use crate::support::Bao;

const POLICIES: &[&str] = &[
    r#"
path "kv/data/app/db" { capabilities = ["read"] }
path "kv/data/app/*" { capabilities = ["list", "read"] }
path "kv/data/app/secret*" { capabilities = ["deny"] }
path "kv/data/+/shared" { capabilities = ["update"] }
path "kv/data/+/+/deep" { capabilities = ["create"] }
path "kv/data/team/+/deep" { capabilities = ["patch"] }
"#,
    r#"
path "kv/data/app/db" { capabilities = ["update"] }
path "kv/*" { capabilities = ["list"] }
path "database/creds/+" { capabilities = ["read"] }
path "database/creds/admin" { capabilities = ["deny"] }
path "secret/*" { capabilities = ["read"] }
path "secret/foo/*" { capabilities = ["update"] }
path "secret/+/bar" { capabilities = ["delete"] }
"#,
];

fn paths() -> Vec<String> {
    let mut v: Vec<String> = [
        "kv/data/app/db",
        "kv/data/app/other",
        "kv/data/app/secret",
        "kv/data/app/secrets/x",
        "kv/data/team/shared",
        "kv/data/team/x/deep",
        "kv/data/a/b/deep",
        "kv/data/team/shared/x",
        "kv/metadata/app/db",
        "database/creds/orders",
        "database/creds/admin",
        "database/creds/orders/extra",
        "secret/foo/bar",
        "secret/foo/baz",
        "secret/x/bar",
        "secret",
        "other/path",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A deterministic sample of generated paths over the same segments.
    let segs = [
        "kv", "data", "app", "team", "shared", "deep", "db", "secret", "foo", "bar", "x",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..60 {
        let mut parts = Vec::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = 1 + (state % 5) as usize;
        for k in 0..n {
            parts.push(segs[((state >> (k * 8)) % segs.len() as u64) as usize]);
        }
        v.push(parts.join("/"));
    }
    v
}

#[test]
fn local_acl_evaluation_matches_openbao() {
    let bao = Bao::start();
    let mut names = Vec::new();
    for (i, p) in POLICIES.iter().enumerate() {
        let name = format!("acl-test-{i}");
        bao.write_policy(&name, p);
        names.push(name);
    }
    let parsed: Vec<_> = POLICIES.iter().map(|p| parse(p).unwrap()).collect();
    // Each policy alone, and both together.
    let sets: Vec<Vec<usize>> = vec![vec![0], vec![1], vec![0, 1]];
    let mut compared = 0;
    for set in sets {
        let token = bao.create_token(json!({
            "policies": set.iter().map(|i| names[*i].clone()).collect::<Vec<_>>(),
            "no_default_policy": true,
        }));
        let local_policies: Vec<_> = set.iter().map(|i| parsed[*i].clone()).collect();
        let paths = paths();
        let answer = bao.api_ok(
            "POST",
            "sys/capabilities",
            Some(json!({ "token": token, "paths": paths })),
        )["data"]
            .clone();
        for path in &paths {
            let real: BTreeSet<String> = answer[path.as_str()]
                .as_array()
                .unwrap_or_else(|| panic!("no answer for {path}: {answer}"))
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .filter(|c| c != "deny")
                .collect();
            let local = capabilities_on(&local_policies, path);
            assert_eq!(local, real, "policies {set:?}, path {path:?}");
            compared += 1;
        }
    }
    eprintln!("acl: {compared} decisions compared with OpenBao's sys/capabilities");
}
