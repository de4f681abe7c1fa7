//! The CI OIDC issuer (GitHub- and Azure DevOps-style token requests, discovery, JWKS) and the
//! Entra token endpoint's federated and certificate client assertions.

mod common;

use aws_lc_rs::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{form, jwt_claims, Emu};
use reqwest::Method;
use serde_json::{json, Value};

const EXCHANGE: &str = "api://AzureADTokenExchange";

fn register(emu: &Emu, body: Value) -> Value {
    emu.ctl(Method::POST, "pipelines", Some(&body))
}

fn github(emu: &Emu) -> String {
    let r = register(
        emu,
        json!({"kind": "github", "request_token": "gh-request-1", "subject": "repo:octo-org/app:ref:refs/heads/main"}),
    );
    r["request_url"].as_str().unwrap().to_string()
}

fn ado(emu: &Emu, lifetime: i64) -> String {
    let r = register(
        emu,
        json!({"kind": "ado", "request_token": "ado-access-1", "subject": "sc://org/project/conn",
               "service_connection_id": "5f1e6c1a-0000-4000-8000-000000000001", "lifetime": lifetime}),
    );
    r["request_url"].as_str().unwrap().to_string()
}

fn get(emu: &Emu, url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut r = emu.http.get(url);
    if let Some(b) = bearer {
        r = r.header("authorization", format!("Bearer {b}"));
    }
    let resp = r.send().expect("request");
    let s = resp.status().as_u16();
    (s, resp.json().unwrap_or(Value::Null))
}

fn post(emu: &Emu, url: &str, bearer: &str) -> (u16, Value) {
    let resp = emu
        .http
        .post(url)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .send()
        .expect("request");
    let s = resp.status().as_u16();
    (s, resp.json().unwrap_or(Value::Null))
}

/// Checks `token`'s RS256 signature against the key the issuer's discovery document names.
fn verify_through_discovery(emu: &Emu, issuer: &str, token: &str) {
    let (s, disc) = get(
        emu,
        &format!("{issuer}/.well-known/openid-configuration"),
        None,
    );
    assert_eq!(s, 200);
    assert_eq!(
        disc["issuer"], issuer,
        "go-oidc needs issuer == discovery URL"
    );
    let (s, jwks) = get(emu, disc["jwks_uri"].as_str().unwrap(), None);
    assert_eq!(s, 200);
    let key = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
        .expect("the ID token verifies with the issuer's JWKS");
}

#[test]
fn github_request_flow_checks_the_request_token_and_sets_the_audience() {
    let emu = Emu::start();
    let url = github(&emu);
    assert!(url.contains('?'), "GitHub's URL carries a query: {url}");
    let (s, _) = get(&emu, &format!("{url}&audience={EXCHANGE}"), None);
    assert_eq!(s, 401, "no request token");
    let (s, _) = get(&emu, &format!("{url}&audience={EXCHANGE}"), Some("wrong"));
    assert_eq!(s, 401, "a wrong request token");
    let (s, v) = get(
        &emu,
        &format!("{url}&audience={EXCHANGE}"),
        Some("gh-request-1"),
    );
    assert_eq!(s, 200, "{v}");
    let jwt = v["value"].as_str().unwrap();
    let c = jwt_claims(jwt);
    let issuer = format!("{}/oidc", emu.url);
    assert_eq!(c["iss"], issuer.as_str());
    assert_eq!(c["sub"], "repo:octo-org/app:ref:refs/heads/main");
    assert_eq!(c["aud"], EXCHANGE);
    assert!(c["exp"].as_i64().unwrap() > c["iat"].as_i64().unwrap());
    verify_through_discovery(&emu, &issuer, jwt);
    let (_, v) = get(&emu, &format!("{url}&audience=vault"), Some("gh-request-1"));
    assert_eq!(jwt_claims(v["value"].as_str().unwrap())["aud"], "vault");
}

#[test]
fn ado_request_flow_checks_token_connection_and_api_version() {
    let emu = Emu::start();
    let url = ado(&emu, 600);
    let conn = "5f1e6c1a-0000-4000-8000-000000000001";
    let full = format!("{url}?api-version=7.1&serviceConnectionId={conn}");
    assert_eq!(post(&emu, &full, "wrong").0, 401);
    assert_eq!(
        post(
            &emu,
            &format!("{url}?api-version=7.1&serviceConnectionId=other"),
            "ado-access-1"
        )
        .0,
        404
    );
    assert_eq!(
        post(
            &emu,
            &format!("{url}?serviceConnectionId={conn}"),
            "ado-access-1"
        )
        .0,
        400
    );
    let (s, v) = post(&emu, &full, "ado-access-1");
    assert_eq!(s, 200, "{v}");
    let c = jwt_claims(v["oidcToken"].as_str().unwrap());
    assert_eq!(c["aud"], EXCHANGE);
    assert_eq!(c["sub"], "sc://org/project/conn");
    // GET is not how Azure DevOps is asked.
    assert_eq!(get(&emu, &full, Some("ado-access-1")).0, 404);
}

fn token_req(emu: &Emu, pairs: &[(&str, &str)]) -> (u16, Value) {
    let tenant = emu.s("tenant_id");
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

fn assertion_request(emu: &Emu, client_id: &str, assertion: &str) -> (u16, Value) {
    token_req(
        emu,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://management.azure.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
}

fn aadsts(v: &Value) -> u64 {
    v["error_codes"][0].as_u64().unwrap_or(0)
}

#[test]
fn federated_assertions_must_match_issuer_subject_and_audience_and_be_unexpired() {
    let emu = Emu::start();
    let url = github(&emu);
    let issuer = format!("{}/oidc", emu.url);
    let client = emu.ctl(
        Method::POST,
        "clients",
        Some(&json!({"federated_credentials": [
            {"issuer": issuer, "subject": "repo:octo-org/app:ref:refs/heads/main"}
        ]})),
    );
    let client_id = client["client_id"].as_str().unwrap();
    let id_token = |aud: &str| {
        let (_, v) = get(&emu, &format!("{url}&audience={aud}"), Some("gh-request-1"));
        v["value"].as_str().unwrap().to_string()
    };
    let (s, v) = assertion_request(&emu, client_id, &id_token(EXCHANGE));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        jwt_claims(v["access_token"].as_str().unwrap())["appid"],
        client_id
    );
    let log = emu.ctl(Method::GET, "requests", None);
    let last = log
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["path"].as_str().unwrap().ends_with("/token") && r["status"] == 200)
        .unwrap()
        .clone();
    assert_eq!(
        last["principal"],
        format!("client {client_id} by federated credential (iss {issuer}, sub repo:octo-org/app:ref:refs/heads/main)")
    );

    let (s, v) = assertion_request(&emu, client_id, &id_token("vault"));
    assert_eq!((s, aadsts(&v)), (400, 700212), "wrong audience: {v}");

    // Another job's subject.
    register(
        &emu,
        json!({"kind": "github", "request_token": "gh-request-2", "subject": "repo:octo-org/app:pull_request"}),
    );
    let (_, other) = get(
        &emu,
        &format!("{url}&audience={EXCHANGE}"),
        Some("gh-request-2"),
    );
    let (s, v) = assertion_request(&emu, client_id, other["value"].as_str().unwrap());
    assert_eq!((s, aadsts(&v)), (400, 70021), "wrong subject: {v}");

    // An expired ID token.
    register(
        &emu,
        json!({"kind": "github", "request_token": "gh-request-3", "subject": "repo:octo-org/app:ref:refs/heads/main", "lifetime": -5}),
    );
    let (_, old) = get(
        &emu,
        &format!("{url}&audience={EXCHANGE}"),
        Some("gh-request-3"),
    );
    let (s, v) = assertion_request(&emu, client_id, old["value"].as_str().unwrap());
    assert_eq!((s, aadsts(&v)), (400, 700024), "expired: {v}");

    // A tampered one (claims changed, signature kept).
    let t = id_token(EXCHANGE);
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    let mut claims = jwt_claims(&t);
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let (s, v) = assertion_request(&emu, client_id, &parts.join("."));
    assert_eq!((s, aadsts(&v)), (401, 50027), "tampered: {v}");
}

/// A self-signed RSA certificate (PEM) and a signer of client assertions with its key.
fn certificate() -> (String, Vec<u8>, aws_lc_rs::rsa::KeyPair) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let cert = rcgen::CertificateParams::new(vec!["signin.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&key.serialize_der()).unwrap();
    (cert.pem(), cert.der().to_vec(), pair)
}

fn sign(key: &aws_lc_rs::rsa::KeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn certificate_assertions_are_verified_with_the_registered_certificate() {
    let emu = Emu::start();
    let (pem, der, key) = certificate();
    let (_, _, other_key) = certificate();
    let client = emu.ctl(
        Method::POST,
        "clients",
        Some(&json!({"certificates": [pem]})),
    );
    let client_id = client["client_id"].as_str().unwrap();
    assert!(client["client_secret"].is_null(), "{client}");
    let x5t = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref(),
    );
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
    let aud = format!("{}/{}/oauth2/v2.0/token", emu.url, emu.s("tenant_id"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = |aud: &str, exp: i64| json!({"aud": aud, "iss": client_id, "sub": client_id, "jti": "j1", "nbf": now, "exp": exp});
    let (s, v) = assertion_request(
        &emu,
        client_id,
        &sign(&key, &header, &claims(&aud, now + 600)),
    );
    assert_eq!(s, 200, "{v}");
    let log = emu.ctl(Method::GET, "requests", None);
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|r| r["principal"] == format!("client {client_id} by certificate {x5t}")),
        "{log}"
    );
    let (s, v) = assertion_request(
        &emu,
        client_id,
        &sign(&other_key, &header, &claims(&aud, now + 600)),
    );
    assert_eq!((s, aadsts(&v)), (401, 700027), "signed by another key: {v}");
    let unknown = json!({"alg": "RS256", "typ": "JWT", "x5t": "AAAA"});
    let (s, v) = assertion_request(
        &emu,
        client_id,
        &sign(&key, &unknown, &claims(&aud, now + 600)),
    );
    assert_eq!(
        (s, aadsts(&v)),
        (401, 700027),
        "unregistered thumbprint: {v}"
    );
    let (s, v) = assertion_request(
        &emu,
        client_id,
        &sign(&key, &header, &claims(EXCHANGE, now + 600)),
    );
    assert_eq!((s, aadsts(&v)), (400, 700212), "wrong audience: {v}");
    let (s, v) = assertion_request(
        &emu,
        client_id,
        &sign(&key, &header, &claims(&aud, now - 10)),
    );
    assert_eq!((s, aadsts(&v)), (400, 700024), "expired: {v}");
}
