//! Entra endpoints: client credentials (secret, assertion), AADSTS errors, discovery (v1 and v2),
//! and JWKS — with token signatures checked here against the published key.

mod common;

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{form, Emu};
use reqwest::Method;
use serde_json::{json, Value};

fn token_req(emu: &Emu, tenant: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let r = emu
        .http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .expect("token request");
    let s = r.status().as_u16();
    (s, r.json().expect("json"))
}

fn verify_with_jwks(emu: &Emu, jwks_uri: &str, token: &str) {
    let jwks: Value = emu
        .http
        .get(jwks_uri)
        .send()
        .expect("jwks")
        .json()
        .expect("json");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("h"))
            .expect("b64"),
    )
    .expect("json");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    assert_eq!(key["kty"], "RSA");
    let n = URL_SAFE_NO_PAD
        .decode(key["n"].as_str().expect("n"))
        .expect("n b64");
    let e = URL_SAFE_NO_PAD
        .decode(key["e"].as_str().expect("e"))
        .expect("e b64");
    let (signing_input, sig) = token.rsplit_once('.').expect("sig");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("sig b64");
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), &sig)
        .expect("RS256 signature verifies with the JWKS key");
    let tampered = format!("{signing_input}x");
    assert!(RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, tampered.as_bytes(), &sig)
        .is_err());
}

#[test]
fn client_credentials_discovery_and_jwks() {
    let emu = Emu::start();
    let tenant = emu.s("tenant_id");
    let (cid, secret) = (emu.s("client_id"), emu.s("client_secret"));
    let scope = "https://management.azure.com/.default";

    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("scope", scope),
        ],
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].is_i64() && v["ext_expires_in"].is_i64());
    let arm = v["access_token"].as_str().expect("token").to_string();
    let c = common::jwt_claims(&arm);
    assert_eq!(c["aud"], "https://management.azure.com/");
    assert_eq!(c["appid"], json!(cid));
    assert_eq!(c["tid"], json!(tenant));

    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", "wrong"),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(v["error_codes"], json!([7000215]));
    assert!(v["error_description"]
        .as_str()
        .expect("desc")
        .starts_with("AADSTS7000215"));
    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(700016)));
    let (s, v) = token_req(
        &emu,
        "other-tenant",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(90002)));
    let (s, _) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_secret", &secret),
            ("scope", "https://management.azure.com/"),
        ],
    );
    assert_eq!(s, 400);

    // Client assertion (workload identity federation): an emulator-minted token for the exchange audience.
    let assertion = emu.ctl(
        Method::POST,
        "tokens",
        Some(&json!({"resource": "api://AzureADTokenExchange"})),
    );
    let assertion = assertion["access_token"].as_str().expect("t");
    let jwt_bearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_assertion_type", jwt_bearer),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
    );
    assert_eq!(s, 200, "{v}");
    let expired = emu.ctl(
        Method::POST,
        "tokens",
        Some(&json!({"resource": "api://AzureADTokenExchange", "expires_in": -10})),
    );
    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_assertion_type", jwt_bearer),
            (
                "client_assertion",
                expired["access_token"].as_str().expect("t"),
            ),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(700024)));
    let wrong = emu.ctl(
        Method::POST,
        "tokens",
        Some(&json!({"resource": "api://elsewhere"})),
    );
    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_assertion_type", jwt_bearer),
            (
                "client_assertion",
                wrong["access_token"].as_str().expect("t"),
            ),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(70021)));
    let (s, v) = token_req(
        &emu,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &cid),
            ("client_assertion_type", jwt_bearer),
            ("client_assertion", "not-a-jwt"),
            ("scope", scope),
        ],
    );
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_client")));

    // Discovery, v2 and v1 issuers.
    let d2: Value = emu
        .http
        .get(format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            emu.url
        ))
        .send()
        .expect("d")
        .json()
        .expect("json");
    assert_eq!(d2["issuer"], json!(format!("{}/{tenant}/v2.0", emu.url)));
    assert_eq!(
        d2["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    let d1: Value = emu
        .http
        .get(format!(
            "{}/{tenant}/.well-known/openid-configuration",
            emu.url
        ))
        .send()
        .expect("d")
        .json()
        .expect("json");
    assert_eq!(d1["issuer"], json!(format!("{}/{tenant}/", emu.url)));
    let r = emu
        .http
        .get(format!("{}/nope/.well-known/openid-configuration", emu.url))
        .send()
        .expect("d");
    assert_eq!(r.status(), 400);

    // Every minted token verifies with the published keys, from either discovery document.
    verify_with_jwks(&emu, d2["jwks_uri"].as_str().expect("jwks"), &arm);
    let mi = emu.mi_token("api://vault", "");
    verify_with_jwks(&emu, d1["jwks_uri"].as_str().expect("jwks"), &mi);
}

#[test]
fn federated_credentials_from_the_seed_are_enforced() {
    let dir = common::temp_dir("seed");
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "subscriptions": [{"resource_groups": [{"name": "rg", "services": [{"name": "apim1", "identity": {"type": "SystemAssigned"}}]}]}],
            "clients": [{"client_id": "11111111-1111-1111-1111-111111111111", "federated_credentials": [{"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main"}]}]
        })
        .to_string(),
    )
    .expect("write seed");
    let emu = Emu::start_with(&["--seed", seed.to_str().expect("path")]);
    assert_eq!(
        emu.s("client_secret"),
        "",
        "a federated-only client has no secret"
    );
    let tenant = emu.s("tenant_id");
    let mint = |claims: Value| {
        emu.ctl(
            Method::POST,
            "tokens",
            Some(&json!({"resource": "api://AzureADTokenExchange", "claims": claims})),
        )["access_token"]
            .as_str()
            .expect("t")
            .to_string()
    };
    let good = mint(
        json!({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref:refs/heads/main"}),
    );
    let bad = mint(
        json!({"iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:pull_request"}),
    );
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", "11111111-1111-1111-1111-111111111111"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("scope", "https://management.azure.com/.default"),
    ];
    let mut p = base.to_vec();
    p.push(("client_assertion", &good));
    assert_eq!(token_req(&emu, &tenant, &p).0, 200);
    let mut p = base.to_vec();
    p.push(("client_assertion", &bad));
    let (s, v) = token_req(&emu, &tenant, &p);
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(70021)));
}
