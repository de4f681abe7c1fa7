//! A real OpenBao JWT auth mount trusts the emulator through OIDC discovery over HTTPS (private CA)
//! and accepts its managed-identity tokens — and refuses wrong-audience, expired and foreign ones.

mod common;

use common::bao::Bao;
use common::Emu;
use reqwest::Method;
use serde_json::json;

#[test]
fn openbao_jwt_auth_accepts_emulator_managed_identity_tokens() {
    let emu = Emu::start();
    let bao = Bao::start();
    let tenant = emu.s("tenant_id");
    let principal = emu.s("principal_id");
    let ca = std::fs::read_to_string(emu.s("ca_file")).expect("ca");
    let audience = "api://vault-apim";

    // v1 issuer (managed identities' default): discovery at <url>/<tenant>/.
    let v1 = format!("{}/{tenant}/", emu.url);
    bao.write("sys/auth/jwt", &json!({"type": "jwt"}));
    bao.write(
        "auth/jwt/config",
        &json!({"oidc_discovery_url": v1, "oidc_discovery_ca_pem": ca, "bound_issuer": v1}),
    );
    let role = json!({
        "role_type": "jwt",
        "bound_audiences": [audience],
        "user_claim": "oid",
        "bound_claims": {"oid": principal, "tid": tenant},
        "token_policies": ["default"],
        "token_ttl": "15m",
    });
    bao.write("auth/jwt/role/apim", &role);

    let apim = emu.apim();
    let token = emu.mi_token(audience, &format!("msi_res_id={apim}"));
    let (s, v) = bao.login("jwt", "apim", &token);
    assert_eq!(s, 200, "login with a managed-identity token: {v}");
    assert!(v["auth"]["client_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let wrong_aud = emu.mi_token("api://something-else", &format!("msi_res_id={apim}"));
    let (s, v) = bao.login("jwt", "apim", &wrong_aud);
    assert_eq!(s, 400, "wrong audience must be refused: {v}");
    assert!(v.to_string().contains("aud"), "{v}");

    let expired = emu.ctl(
        Method::POST,
        "tokens",
        Some(&json!({"resource": audience, "expires_in": -3600})),
    );
    let (s, v) = bao.login(
        "jwt",
        "apim",
        expired["access_token"].as_str().expect("token"),
    );
    assert_eq!(s, 400, "expired token must be refused: {v}");
    assert!(v.to_string().contains("expired"), "{v}");

    let foreign = emu.ctl(Method::POST, "tokens", Some(&json!({"resource": audience, "claims": {"oid": "00000000-0000-0000-0000-000000000001"}})));
    let (s, v) = bao.login(
        "jwt",
        "apim",
        foreign["access_token"].as_str().expect("token"),
    );
    assert_eq!(s, 400, "another principal must be refused: {v}");
    assert!(v.to_string().contains("oid"), "{v}");

    // A re-created identity has a new principal: the role bound to the old one refuses it.
    emu.ctl(Method::POST, "identity", Some(&json!({"recreate": true})));
    let after = emu.mi_token(audience, &format!("msi_res_id={apim}"));
    assert_ne!(common::jwt_claims(&after)["oid"], json!(principal));
    let (s, _) = bao.login("jwt", "apim", &after);
    assert_eq!(s, 400);

    // v2 issuer: discovery at <url>/<tenant>/v2.0, tokens with token_version=2.
    let v2 = format!("{}/{tenant}/v2.0", emu.url);
    bao.write("sys/auth/jwt2", &json!({"type": "jwt"}));
    bao.write(
        "auth/jwt2/config",
        &json!({"oidc_discovery_url": v2, "oidc_discovery_ca_pem": ca, "bound_issuer": v2}),
    );
    let new_principal = common::jwt_claims(&after)["oid"].clone();
    bao.write(
        "auth/jwt2/role/apim",
        &json!({
            "role_type": "jwt", "bound_audiences": [audience], "user_claim": "oid",
            "bound_claims": {"oid": new_principal, "tid": tenant}, "token_policies": ["default"],
        }),
    );
    let t2 = emu.mi_token(audience, &format!("msi_res_id={apim}&token_version=2"));
    assert_eq!(common::jwt_claims(&t2)["iss"], json!(v2));
    let (s, v) = bao.login("jwt2", "apim", &t2);
    assert_eq!(s, 200, "v2 login: {v}");
    // A v1 token is refused by the v2 mount (issuer mismatch).
    let (s, _) = bao.login("jwt2", "apim", &after);
    assert_eq!(s, 400);
}
