//! `--state-file` keeps every object, the identities, the signing key and the CA across restarts;
//! `--seed` shapes the world.

mod common;

use common::{temp_dir, Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

#[test]
fn state_file_survives_a_restart() {
    let dir = temp_dir("state");
    let state = dir.join("state.json");
    let args = [
        "--state-file",
        state.to_str().expect("path"),
        "--lro-polls",
        "0",
    ];
    let mut first = Emu::start_in(&dir, &args);
    let nv = json!({"properties": {"displayName": "kept", "value": "s3", "secret": true}});
    let (s, _, _) = first.arm(
        Method::PUT,
        &format!("{}/namedValues/kept?{V}", first.apim()),
        Some(&nv),
        &[],
    );
    assert_eq!(s, 201);
    let token = first.arm_token();
    let old_info = first.info.clone();
    let old_http = first.http.clone();
    first.stop();
    assert!(state.exists());

    let second = Emu::start_in(&dir, &args);
    for k in [
        "tenant_id",
        "subscription_id",
        "resource_group",
        "api_management_id",
        "principal_id",
        "client_id",
        "client_secret",
    ] {
        assert_eq!(second.info[k], old_info[k], "{k} is kept");
    }
    // The old CA still validates the new server certificate, and the old token still verifies.
    let r = old_http
        .post(format!(
            "{}/{}/namedValues/kept/listValue?{V}",
            second.url,
            second.apim()
        ))
        .bearer_auth(&token)
        .send()
        .expect("request with the old CA and token");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().expect("json")["value"], "s3");
}

#[test]
fn seed_file_shapes_subscriptions_instances_identities_and_clients() {
    let dir = temp_dir("seed");
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "tenant_id": "72f988bf-0000-41af-0000-2d7cd011db47",
            "subscriptions": [{
                "id": "00000000-0000-0000-0000-000000000000",
                "resource_groups": [{"name": "rg1", "location": "West Europe", "services": [
                    {"name": "apimService1", "sku": "Premium", "identity": {"type": "SystemAssigned, UserAssigned", "principal_id": "ca1d33f7-0000-42ec-0000-d526a1ee953a", "user_assigned": [{"name": "uai1"}]}},
                    {"name": "bare"}
                ]}]
            }],
            "clients": [{"client_id": "aaaaaaaa-0000-0000-0000-000000000001", "client_secret": "s"}],
            "lro_polls": 0
        })
        .to_string(),
    )
    .expect("seed");
    let emu = Emu::start_with(&["--seed", seed.to_str().expect("path")]);
    assert_eq!(emu.s("tenant_id"), "72f988bf-0000-41af-0000-2d7cd011db47");
    assert_eq!(
        emu.s("principal_id"),
        "ca1d33f7-0000-42ec-0000-d526a1ee953a"
    );
    assert_eq!(emu.s("client_secret"), "s");
    assert_eq!(
        emu.apim(),
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/apimService1"
    );
    let (s, _, v) = emu.arm(Method::GET, &format!("{}?{V}", emu.apim()), None, &[]);
    assert_eq!(s, 200);
    assert_eq!(v["identity"]["type"], "SystemAssigned, UserAssigned");
    assert_eq!(v["sku"]["name"], "Premium");
    assert_eq!(
        v["identity"]["userAssignedIdentities"]
            .as_object()
            .map(|m| m.len()),
        Some(1)
    );
    let bare = emu.apim().replace("apimService1", "bare");
    let (s, _, v) = emu.arm(Method::GET, &format!("{bare}?{V}"), None, &[]);
    assert_eq!(s, 200);
    assert!(v.get("identity").is_none());
    let r = emu
        .http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x&msi_res_id={bare}",
            emu.url
        ))
        .header("Metadata", "true")
        .send()
        .expect("req");
    assert_eq!(r.status(), 400);
    // lro_polls 0 from the seed: synchronous PUT.
    let nv = json!({"properties": {"displayName": "x", "value": "y"}});
    let (s, _, v) = emu.arm(
        Method::PUT,
        &format!("{}/namedValues/x?{V}", emu.apim()),
        Some(&nv),
        &[],
    );
    assert_eq!(
        (s, v["properties"]["provisioningState"].as_str()),
        (201, Some("Succeeded"))
    );

    // A broken seed fails the start with a message on stderr and no first line.
    std::fs::write(&seed, "{\"subscriptions\": 3}").expect("seed");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_apim-emulator"))
        .args(["--seed", seed.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());
}
