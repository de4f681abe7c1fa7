//! The quickstart's last step: the gateway's view. `scripts/quickstart` runs this (it is
//! ignored otherwise) against the emulator and OpenBao it started: the fragment and named
//! values APIM holds are executed as the gateway would run them for one request.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::apim_runtime::{Gateway, ManagedIdentity, Request};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/quickstart"))
}

#[test]
#[ignore = "run by scripts/quickstart against the services it started"]
fn quickstart_gateway() {
    let info: Value = serde_json::from_str(&env("APIM_QS_EMULATOR")).unwrap();
    let url = info["url"].as_str().unwrap();
    let apim = info["api_management_id"].as_str().unwrap();
    let ca = std::fs::read(info["ca_file"].as_str().unwrap()).unwrap();
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let token: Value = https
        .post(format!(
            "{url}/{}/oauth2/v2.0/token",
            info["tenant_id"].as_str().unwrap()
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", info["client_id"].as_str().unwrap())
                .append_pair("client_secret", info["client_secret"].as_str().unwrap())
                .append_pair("scope", "https://management.azure.com/.default")
                .finish(),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let get = |path: &str| -> Value {
        https
            .get(format!("{url}{apim}{path}"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let fragment = get("/policyFragments/vault-orders?format=rawxml&api-version=2024-05-01");
    let fragment = fragment["properties"]["value"]
        .as_str()
        .expect("the binding's fragment");
    let mut named = BTreeMap::new();
    for n in [
        "vault-orders-addr",
        "vault-orders-role",
        "vault-orders-audience",
    ] {
        let v = get(&format!("/namedValues/{n}?api-version=2024-05-01"));
        named.insert(
            n.to_string(),
            v["properties"]["value"].as_str().unwrap().to_string(),
        );
    }
    let identity = ManagedIdentity {
        endpoint: url.to_string(),
        api_management_id: apim.to_string(),
        http: https.clone(),
    };
    let gw = Gateway::new(fragment, &named, identity, reqwest::blocking::Client::new()).unwrap();
    let out = gw.execute(&Request::get("/orders")).unwrap();
    eprintln!("\nA request to the orders API, as the gateway runs the policy APIM holds:\n");
    let expected = env("APIM_QS_SECRET");
    eprintln!("{}", out.trace().replace(&expected, "<the secret>"));
    let key = out
        .header("X-Api-Key")
        .expect("the backend request carries X-Api-Key");
    assert_eq!(
        key, expected,
        "the injected key is the one written to Vault"
    );
    eprintln!(
        "\nThe backend request carries X-Api-Key = {}… ({} characters), the value stored in Vault at {}.",
        &key[..4.min(key.len())],
        key.len(),
        env("APIM_QS_SECRET_PATH")
    );
    let again = gw.execute(&Request::get("/orders")).unwrap();
    assert!(again.sent().is_empty());
    eprintln!(
        "A second request within cache_ttl is served from the gateway cache: no call to Vault."
    );
}
