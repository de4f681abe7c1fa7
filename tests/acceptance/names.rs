//! Names that could address another object: every Vault-side name and path segment is held
//! to Vault's grammar when the configuration is validated, and a name that reaches the client
//! anyway (an import ID) is percent-encoded, so no call ever touches an object other than the
//! resource's own. Run against a real OpenBao, which holds a decoy object (`orders`) that a
//! name such as `orders?x` would reach if it were sent as it is.

use serde_json::json;

use crate::support::fixtures::provider_from_env;
use crate::support::{Bao, Emulator, TerraformBin, Workdir};

/// A work directory for `bao` and `emu`, with the provider configured from the environment.
fn workdir(bao: &Bao, emu: &Emulator) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    wd.envs(bao.env().into_iter().chain(emu.env()));
    wd
}

/// The objects hostile names would reach: role `orders` on the JWT mount `jwt` (trusting the
/// emulator), and policy `orders`.
fn decoys(bao: &Bao, emu: &Emulator) {
    bao.trust_emulator(emu, "jwt");
    bao.api_ok(
        "POST",
        "auth/jwt/role/orders",
        Some(json!({"role_type": "jwt", "user_claim": "oid", "bound_audiences": ["api://x"], "bound_claims": {"oid": "11111111-2222-3333-4444-555555555555"}, "token_policies": ["orders"]})),
    );
    bao.write_policy(
        "orders",
        "path \"kv/data/orders\" { capabilities = [\"read\"] }\n",
    );
}

/// The decoys as Vault holds them, to compare before and after.
fn decoy_state(bao: &Bao) -> serde_json::Value {
    json!({
        "role": bao.api("GET", "auth/jwt/role/orders", None).1["data"],
        "policy": bao.policy("orders"),
        "mount": bao.api("GET", "sys/auth/jwt", None).0,
        "audit": bao.api("GET", "sys/audit", None).1["data"],
    })
}

#[test]
fn hostile_names_are_refused_at_validation_for_every_vault_type() {
    let bao = Bao::start();
    let emu = Emulator::start();
    decoys(&bao, &emu);
    let before = decoy_state(&bao);
    let base = provider_from_env();
    // (resource, attribute named in the error)
    let cases: Vec<(String, &str)> = vec![
        (
            "resource \"apim_vault_azure_role\" \"r\" {\n  name = \"orders?x\"\n  audience = \"api://x\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n}\n".into(),
            "name",
        ),
        (
            "resource \"apim_vault_azure_role\" \"r\" {\n  name = \"orders#x\"\n  audience = \"api://x\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n}\n".into(),
            "name",
        ),
        (
            "resource \"apim_vault_azure_role\" \"r\" {\n  name = \"orders\"\n  backend = \"jwt/../userpass\"\n  audience = \"api://x\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n}\n".into(),
            "backend",
        ),
        (
            "resource \"apim_vault_policy\" \"p\" {\n  name = \"orders?x\"\n  rule {\n    path = \"kv/data/x\"\n    capabilities = [\"read\"]\n  }\n}\n".into(),
            "name",
        ),
        (
            "resource \"apim_vault_policy\" \"p\" {\n  name = \"..\"\n  rule {\n    path = \"kv/data/x\"\n    capabilities = [\"read\"]\n  }\n}\n".into(),
            "name",
        ),
        (
            "resource \"apim_vault_auth_backend\" \"b\" {\n  path = \"jwt?x\"\n  jwt_validation_pubkeys = [\"k\"]\n}\n".into(),
            "path",
        ),
        (
            "resource \"apim_vault_audit\" \"a\" {\n  type = \"file\"\n  path = \"siem/../x\"\n  options = { file_path = \"/dev/null\" }\n}\n".into(),
            "path",
        ),
        (
            "data \"apim_vault_lease\" \"l\" {\n  prefix = \"database/creds/../../sys/\"\n}\n".into(),
            "prefix",
        ),
        (
            "ephemeral \"apim_vault_secret\" \"s\" {\n  path = \"kv/data/../../sys/mounts\"\n}\n".into(),
            "path",
        ),
    ];
    for (resource, attribute) in &cases {
        let wd = workdir(&bao, &emu);
        wd.write_config(&format!("{base}\n{resource}"));
        wd.run_ok(&["init"]);
        // Refused by `validate`, which makes no call at all, and so by every plan.
        let out = wd.run(&["validate"]);
        assert!(!out.success(), "accepted:\n{resource}\n{out}");
        let text = out.combined();
        assert!(
            text.contains(&format!("`{attribute}` is")),
            "the error shows the value of `{attribute}`:\n{text}"
        );
    }
    assert_eq!(decoy_state(&bao), before, "no Vault object changed");
}

/// An import ID bypasses the configuration's validation: its name reaches the client, which
/// percent-encodes it, so `orders?x` is looked up as the (non-existent) object `orders?x` and
/// the decoy `orders` is neither adopted nor, by a later destroy, deleted.
#[test]
fn an_import_by_a_hostile_id_never_adopts_another_object() {
    let bao = Bao::start();
    let emu = Emulator::start();
    decoys(&bao, &emu);
    let before = decoy_state(&bao);
    let base = provider_from_env();
    let cases = [
        (
            "apim_vault_azure_role.r",
            "resource \"apim_vault_azure_role\" \"r\" {\n  name = \"orders\"\n  audience = \"api://x\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n}\n",
            "jwt/orders?x",
        ),
        (
            "apim_vault_azure_role.r",
            "resource \"apim_vault_azure_role\" \"r\" {\n  name = \"orders\"\n  audience = \"api://x\"\n  principal_id = \"11111111-2222-3333-4444-555555555555\"\n  tenant_id = \"11111111-2222-3333-4444-555555555555\"\n}\n",
            "jwt/orders#x",
        ),
        (
            "apim_vault_policy.p",
            "resource \"apim_vault_policy\" \"p\" {\n  name = \"orders\"\n  rule {\n    path = \"kv/data/orders\"\n    capabilities = [\"read\"]\n  }\n}\n",
            "orders?x",
        ),
    ];
    for (address, resource, id) in cases {
        let wd = workdir(&bao, &emu);
        wd.write_config(&format!("{base}\n{resource}"));
        wd.run_ok(&["init"]);
        let out = wd.import(address, id);
        eprintln!("import {id:?}: {}", out.combined());
        assert!(
            !out.success(),
            "importing {id:?} adopted something:\n{out}\nstate: {}",
            wd.state_raw()
        );
        assert!(
            wd.try_resource(address).is_none(),
            "nothing imported for {id:?}"
        );
    }
    assert_eq!(decoy_state(&bao), before, "the decoys are untouched");
}
