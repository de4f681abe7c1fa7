//! The typed Azure client (`clients::azure`) against the real APIM emulator: every
//! credential kind the emulator serves, retries on 429 and 5xx, long-running operations,
//! ETag conflicts, 404s, the time budget, cancellation, and each APIM entity.
//!
//! The managed-identity and Azure CLI credentials read their endpoint and `az` from the
//! process environment, which tests must not change under their neighbours: those two run
//! in a child process of this test binary (`child_process`) with its own environment.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use apim_provider::clients::azure::apim::api::ApiCreate;
use apim_provider::clients::azure::apim::api_policy::PolicyCreate;
use apim_provider::clients::azure::apim::backend::{BackendCreate, BackendCredentials};
use apim_provider::clients::azure::apim::named_value::{
    NamedValue, NamedValueCreate, NamedValueUpdate,
};
use apim_provider::clients::azure::apim::policy_fragment::PolicyFragmentCreate;
use apim_provider::clients::azure::apim::service::IdentitySelector;
use apim_provider::clients::azure::apim::PolicyFormat;
use apim_provider::clients::azure::id::{ResourceId, ServiceId, UserAssignedIdentityId};
use apim_provider::clients::azure::{Azure, AzureError, AzureSettings};
use serde_json::{json, Value};
use url::Url;

use crate::support::Emulator;

/// Marks the child process and says which credential it tests.
const CHILD_ENV: &str = "APIM_TEST_AZURE_CHILD";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Endpoints and CA of the emulator, without credentials.
fn base_settings(url: &str, ca: &Path, subscription: &str) -> AzureSettings {
    let url = Url::parse(url).expect("the emulator URL");
    AzureSettings {
        subscription_id: Some(subscription.to_string()),
        resource_manager_endpoint: Some(url.clone()),
        authority_host: Some(url),
        ca_cert_file: Some(ca.to_path_buf()),
        use_cli: Some(false),
        ..Default::default()
    }
}

/// Client-secret credentials for the emulator's seeded client.
fn secret_settings(emu: &Emulator) -> AzureSettings {
    AzureSettings {
        tenant_id: Some(emu.tenant_id().into()),
        client_id: Some(emu.client_id().into()),
        client_secret: Some(emu.client_secret().into()),
        ..base_settings(emu.url(), emu.ca_file(), emu.subscription_id())
    }
}

fn client(emu: &Emulator) -> Azure {
    Azure::new(secret_settings(emu)).expect("the Azure client")
}

fn service(emu: &Emulator) -> ServiceId {
    ServiceId::parse(emu.api_management_id()).expect("the seeded instance's ID")
}

/// The emulator's request log entries whose path ends with `suffix` (and method, if given).
fn logged(emu: &Emulator, method: Option<&str>, suffix: &str) -> Vec<Value> {
    emu.requests()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .filter(|r| method.is_none_or(|m| r["method"] == m))
        .collect()
}

fn token_requests(emu: &Emulator) -> usize {
    logged(emu, Some("POST"), "/oauth2/v2.0/token").len()
}

fn plain_value(name: &str, value: &str) -> NamedValueCreate {
    NamedValueCreate {
        display_name: name.into(),
        value: Some(value.into()),
        secret: false,
        tags: vec![],
        key_vault: None,
    }
}

#[test]
fn azure_client_secret_credential_reads_the_service_identity() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    let (service, identity, again) = rt.block_on(async {
        let s = azure.get_service(&svc).await.expect("GET the service");
        let i = azure
            .resolve_identity(&svc, &IdentitySelector::SystemAssigned)
            .await
            .expect("the system-assigned identity");
        let again = azure.get_service(&svc).await.expect("GET again");
        (s, i, again)
    });
    assert_eq!(service.value.name, svc.name);
    assert!(service.etag.is_some(), "an ETag with the service");
    assert!(service.request_id.is_some(), "x-ms-request-id");
    assert_eq!(identity.principal_id, emu.principal_id());
    assert_eq!(identity.tenant_id, emu.tenant_id());
    assert_eq!(again.value.id, service.value.id);
    // One credential, one token for three calls.
    assert_eq!(token_requests(&emu), 1, "{}", emu.requests());
}

#[test]
fn azure_client_wrong_secret_is_a_credential_error() {
    let emu = Emulator::start();
    let azure = Azure::new(AzureSettings {
        client_secret: Some("not-the-secret".into()),
        ..secret_settings(&emu)
    })
    .unwrap();
    let err = rt()
        .block_on(azure.get_service(&service(&emu)))
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AzureError::Credential { .. }), "{err:?}");
    assert!(
        msg.starts_with("cannot get an Azure access token with a client secret"),
        "{msg}"
    );
    assert!(msg.contains("7000215"), "the AADSTS code: {msg}");
    assert!(!msg.contains("not-the-secret"), "{msg}");
}

#[test]
fn azure_client_workload_identity_token_file() {
    let emu = Emulator::start();
    // A federated token as a CI system or Kubernetes would write it: the emulator mints one
    // for the exchange audience, which its token endpoint accepts as a client assertion.
    let (status, minted) = emu.call(
        "POST",
        "/_emulator/tokens",
        Some(json!({"resource": "api://AzureADTokenExchange"})),
    );
    assert_eq!(status, 200, "{minted}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("federated-token");
    std::fs::write(&file, minted["access_token"].as_str().unwrap()).unwrap();
    let azure = Azure::new(AzureSettings {
        tenant_id: Some(emu.tenant_id().into()),
        client_id: Some(emu.client_id().into()),
        use_oidc: true,
        oidc_token_file_path: Some(file),
        ..base_settings(emu.url(), emu.ca_file(), emu.subscription_id())
    })
    .unwrap();
    let got = rt()
        .block_on(azure.get_service(&service(&emu)))
        .expect("GET with workload identity");
    assert_eq!(got.value.name, service(&emu).name);
    assert_eq!(token_requests(&emu), 1);
}

/// Runs [`child_process`] in a new process of this test binary with `env` added.
fn run_child(kind: &str, env: &[(&str, String)]) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let out = Command::new(exe)
        .args([
            "azure_client::child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, kind)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run the child test process");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the {kind} child failed:\n{stdout}\n{stderr}"
    );
    stdout
}

fn child_env(emu: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("APIM_TEST_AZ_URL", emu.url().to_string()),
        ("APIM_TEST_AZ_CA", emu.ca_file().display().to_string()),
        ("APIM_TEST_AZ_SUB", emu.subscription_id().to_string()),
        ("APIM_TEST_AZ_SERVICE", emu.api_management_id().to_string()),
    ]
}

/// Not a test of its own: the body of the managed-identity and CLI tests, run by them in a
/// child process whose environment they set. Passes at once anywhere else.
#[test]
fn child_process() {
    let Ok(kind) = std::env::var(CHILD_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    let base = base_settings(
        &var("APIM_TEST_AZ_URL"),
        Path::new(&var("APIM_TEST_AZ_CA")),
        &var("APIM_TEST_AZ_SUB"),
    );
    let settings = match kind.as_str() {
        "msi" => AzureSettings {
            use_msi: true,
            ..base
        },
        "cli" => AzureSettings {
            use_cli: Some(true),
            ..base
        },
        other => panic!("unknown child kind {other}"),
    };
    let azure = Azure::new(settings).expect("the Azure client");
    let svc = ServiceId::parse(&var("APIM_TEST_AZ_SERVICE")).unwrap();
    rt().block_on(async {
        for _ in 0..2 {
            let s = azure
                .get_service(&svc)
                .await
                .unwrap_or_else(|e| panic!("GET the service with {kind}: {e}"));
            assert_eq!(s.value.name, svc.name);
        }
    });
}

#[test]
fn azure_client_managed_identity_app_service_endpoint() {
    let emu = Emulator::start();
    // azure_identity's App Service source: IDENTITY_ENDPOINT + IDENTITY_HEADER. The emulator
    // answers there for the seeded instance's system-assigned identity, whose tokens ARM
    // accepts like any other.
    let mut env = child_env(&emu);
    env.push((
        "IDENTITY_ENDPOINT",
        format!("{}/metadata/identity/oauth2/token", emu.url()),
    ));
    env.push(("IDENTITY_HEADER", "test-identity-header".into()));
    run_child("msi", &env);
    let mi = logged(&emu, Some("GET"), "/metadata/identity/oauth2/token");
    assert_eq!(mi.len(), 1, "one token for two calls: {}", emu.requests());
    assert_eq!(mi[0]["status"], 200);
    assert_eq!(logged(&emu, Some("GET"), &service(&emu).name).len(), 2);
}

#[test]
fn azure_client_azure_cli() {
    let emu = Emulator::start();
    // The Azure CLI cannot be installed here: this script stands in for the `az` binary. It
    // answers `az account get-access-token` the way the CLI does (2.54+), with a token the
    // emulator minted for ARM, and logs each call.
    let (status, minted) = emu.call(
        "POST",
        "/_emulator/tokens",
        Some(json!({"resource": "https://management.azure.com/"})),
    );
    assert_eq!(status, 200, "{minted}");
    let token = minted["access_token"].as_str().unwrap();
    let expires_on = minted["claims"]["exp"].as_i64().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let script = format!(
        "#!/bin/sh\n\
         echo \"$*\" >> '{calls}'\n\
         case \"$*\" in\n\
           *'account get-access-token'*'--scope https://management.azure.com/.default'*) ;;\n\
           *) echo \"unexpected arguments: $*\" >&2; exit 2 ;;\n\
         esac\n\
         printf '%s' '{{\"accessToken\":\"{token}\",\"expiresOn\":\"2099-01-01 00:00:00.000000\",\"expires_on\":{expires_on},\"subscription\":\"{sub}\",\"tenant\":\"{tenant}\",\"tokenType\":\"Bearer\"}}'\n",
        calls = calls.display(),
        sub = emu.subscription_id(),
        tenant = emu.tenant_id(),
    );
    let az = dir.path().join("az");
    std::fs::write(&az, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = child_env(&emu);
    let path = std::env::var("PATH").unwrap_or_default();
    env.push(("PATH", format!("{}:{path}", dir.path().display())));
    run_child("cli", &env);
    let lines = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        lines.lines().count(),
        1,
        "az ran once for two calls (cached): {lines}"
    );
    assert_eq!(logged(&emu, Some("GET"), &service(&emu).name).len(), 2);
    assert_eq!(
        token_requests(&emu),
        0,
        "no Entra call: the CLI gave the token"
    );
}

#[test]
fn azure_client_429_storm_waits_as_told() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let nv = service(&emu).named_value("storm");
    let rt = rt();
    rt.block_on(azure.put_named_value(&nv, &plain_value("storm", "v1"), None))
        .expect("create");
    emu.fault(json!({"method": "GET", "path": "*/namedValues/storm", "status": 429, "retry_after": 1, "count": 3}));
    let started = Instant::now();
    let got = rt
        .block_on(azure.get_named_value(&nv))
        .expect("GET after the storm");
    let elapsed = started.elapsed();
    assert_eq!(got.value.properties.value.as_deref(), Some("v1"));
    let gets: Vec<u64> = logged(&emu, Some("GET"), "/namedValues/storm")
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        gets,
        vec![200, 429, 429, 429, 200],
        "the create's final GET, 3 throttled, then success"
    );
    // Three Retry-After: 1 waits, taken as told.
    assert!(elapsed >= Duration::from_secs(3), "waited {elapsed:?}");
}

#[test]
fn azure_client_retries_5xx_and_dropped_connections() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    rt.block_on(azure.get_service(&svc))
        .expect("warm up the token");
    emu.fault(json!({"method": "GET", "path": format!("*/service/{}", svc.name), "status": 503, "count": 2}));
    rt.block_on(azure.get_service(&svc))
        .expect("GET after 503, 503");
    emu.fault(json!({"method": "GET", "path": format!("*/service/{}", svc.name), "drop": true, "count": 1}));
    rt.block_on(azure.get_service(&svc))
        .expect("GET after a dropped connection");
    let statuses: Vec<u64> = logged(&emu, Some("GET"), &format!("/service/{}", svc.name))
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    // The log writes a dropped connection as status 0.
    assert_eq!(statuses, vec![200, 503, 503, 200, 0, 200]);
}

#[test]
fn azure_client_follows_long_running_operations() {
    let emu = Emulator::start();
    let (status, body) = emu.call(
        "POST",
        "/_emulator/lro",
        Some(json!({"polls": 3, "retry_after": 0})),
    );
    assert_eq!(status, 200, "{body}");
    let azure = client(&emu);
    let svc = service(&emu);
    let nv = svc.named_value("lro");
    let rt = rt();
    let created = rt
        .block_on(azure.put_named_value(&nv, &plain_value("lro", "v1"), None))
        .expect("PUT through the LRO");
    assert_eq!(created.value.properties.value.as_deref(), Some("v1"));
    assert_ne!(
        created.value.properties.provisioning_state.as_deref(),
        Some("InProgress")
    );
    assert!(created.etag.is_some());
    let polls = logged(&emu, Some("GET"), "")
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .contains("/operationResults/")
        })
        .count();
    assert_eq!(polls, 4, "3 InProgress then Succeeded: {}", emu.requests());

    // PATCH answers 202: followed through Azure-AsyncOperation as well.
    let etag = created.etag.unwrap();
    let patched = rt
        .block_on(azure.patch_named_value(
            &nv,
            &NamedValueUpdate {
                value: Some("v2".into()),
                ..Default::default()
            },
            &etag,
        ))
        .expect("PATCH through the LRO");
    assert_eq!(patched.value.properties.value.as_deref(), Some("v2"));
    let polls = logged(&emu, Some("GET"), "")
        .into_iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap_or("")
                .contains("/operationResults/")
        })
        .count();
    assert_eq!(polls, 8);
    assert_ne!(
        patched.etag.as_deref(),
        Some(etag.as_str()),
        "a new ETag after the write"
    );
}

#[test]
fn azure_client_stale_etag_is_precondition_failed() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let nv = service(&emu).named_value("conflict");
    let rt = rt();
    let first = rt
        .block_on(azure.put_named_value(&nv, &plain_value("conflict", "v1"), None))
        .unwrap();
    let stale = first.etag.clone().expect("an ETag");
    // Someone else writes in between.
    let second = rt
        .block_on(azure.put_named_value(&nv, &plain_value("conflict", "v2"), Some(&stale)))
        .expect("a write with the current ETag succeeds");
    assert_ne!(second.etag, first.etag);
    let err = rt
        .block_on(azure.patch_named_value(
            &nv,
            &NamedValueUpdate {
                value: Some("v3".into()),
                ..Default::default()
            },
            &stale,
        ))
        .unwrap_err();
    assert!(err.is_precondition_failed(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("changed by someone else") && msg.contains("Run plan again"),
        "{msg}"
    );
    assert!(
        msg.contains("named value conflict of API Management service"),
        "{msg}"
    );
    assert!(err.request_id().is_some_and(|r| msg.contains(r)), "{msg}");
    let err = rt
        .block_on(azure.delete_named_value(&nv, &stale))
        .unwrap_err();
    assert!(err.is_precondition_failed());
    rt.block_on(azure.delete_named_value(&nv, second.etag.as_deref().unwrap()))
        .expect("delete with the current ETag");
}

#[test]
fn azure_client_missing_object_is_gone() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    let err = rt
        .block_on(azure.get_named_value(&svc.named_value("nope")))
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.code(), Some("ResourceNotFound"));
    let msg = err.to_string();
    assert!(
        msg.starts_with("reading named value nope of API Management service"),
        "{msg}"
    );
    assert!(msg.contains("it is gone (not found)"), "{msg}");
    // Deleting what is gone succeeds.
    rt.block_on(azure.delete_named_value(&svc.named_value("nope"), "*"))
        .expect("delete of a missing named value");
    let other = ServiceId::new(
        emu.subscription_id(),
        emu.field("resource_group"),
        "missing-apim",
    );
    let err = rt.block_on(azure.get_service(&other)).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[test]
fn azure_client_budget_exhausted_says_what_happened() {
    let emu = Emulator::start();
    let azure = Azure::new(AzureSettings {
        operation_timeout: Duration::from_secs(3),
        ..secret_settings(&emu)
    })
    .unwrap();
    let svc = service(&emu);
    emu.fault(json!({"method": "GET", "path": format!("*/service/{}", svc.name), "status": 429, "retry_after": 2, "count": 10}));
    let started = Instant::now();
    let err = rt().block_on(azure.get_service(&svc)).unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_throttled(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "Azure Resource Manager kept throttling reading {svc}: 2 attempt(s)"
        )),
        "{msg}"
    );
    assert!(msg.contains("429 TooManyRequests"), "{msg}");
    assert!(
        msg.contains("would pass the operation timeout of 3 s"),
        "{msg}"
    );
    // It gave up when the next wait could not fit, rather than sleeping into the deadline.
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(
        logged(&emu, Some("GET"), &format!("/service/{}", svc.name)).len(),
        2
    );

    // 5xx that outlast the budget: a timeout naming the last failure.
    emu.clear_faults();
    emu.fault(json!({"method": "GET", "path": format!("*/service/{}", svc.name), "status": 500}));
    let err = rt().block_on(azure.get_service(&svc)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("did not finish within the operation timeout of 3 s"),
        "{msg}"
    );
    assert!(
        msg.contains("ARM answered 500 InternalServerError"),
        "{msg}"
    );
}

#[test]
fn azure_client_dropping_the_future_cancels_promptly() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    rt.block_on(azure.get_service(&svc))
        .expect("warm up the token");
    emu.fault(json!({"method": "GET", "path": format!("*/service/{}", svc.name), "status": 429, "retry_after": 2, "count": 10}));
    let cut = rt.block_on(async {
        tokio::time::timeout(Duration::from_millis(700), azure.get_service(&svc)).await
    });
    assert!(cut.is_err(), "the call was still waiting to retry");
    // The runtime keeps running; nothing detached may send the retry.
    rt.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });
    let gets = logged(&emu, Some("GET"), &format!("/service/{}", svc.name));
    assert_eq!(
        gets.len(),
        2,
        "the warm-up and the one throttled attempt: {gets:?}"
    );
}

#[test]
fn azure_client_named_values_secret_and_paging() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    rt.block_on(async {
        let secret = NamedValueCreate {
            secret: true,
            ..plain_value("vault-token", "s3cr3t-value")
        };
        let put = azure
            .put_named_value(&svc.named_value("vault-token"), &secret, None)
            .await
            .unwrap();
        assert_eq!(put.value.properties.value, None, "a secret is not returned");
        assert!(!format!("{:?}", put.value).contains("s3cr3t"));
        let got = azure
            .get_named_value(&svc.named_value("vault-token"))
            .await
            .unwrap();
        assert!(got.value.properties.secret && got.value.properties.value.is_none());
        let v = azure
            .named_value_secret(&svc.named_value("vault-token"))
            .await
            .unwrap();
        assert_eq!(v.value.value, "s3cr3t-value");
        for i in 0..3 {
            azure
                .put_named_value(
                    &svc.named_value(format!("nv{i}")),
                    &plain_value(&format!("nv{i}"), "x"),
                    None,
                )
                .await
                .unwrap();
        }
        let all = azure.list_named_values(&svc, None).await.unwrap();
        assert_eq!(all.len(), 4);
        // One per page: three nextLinks followed.
        let paged: Vec<NamedValue> = azure
            .list_json(
                &format!("{}/namedValues", svc.arm_id()),
                &[("$top", "1")],
                "listing",
            )
            .await
            .unwrap();
        assert_eq!(paged.len(), 4);
        let filtered = azure
            .list_named_values(&svc, Some("startswith(properties/displayName, 'nv')"))
            .await
            .unwrap();
        assert_eq!(filtered.len(), 3);
    });
    let pages = logged(&emu, Some("GET"), "/namedValues").len();
    assert_eq!(pages, 1 + 4 + 1, "{}", emu.requests());
}

#[test]
fn azure_client_fragments_apis_policies_backends() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    rt.block_on(async {
        azure.put_named_value(&svc.named_value("vault-addr"), &plain_value("vault-addr", "https://vault.example:8200"), None).await.unwrap();
        let fragment = "<fragment>\n  <set-variable name=\"addr\" value=\"{{vault-addr}}\" />\n  <set-header name=\"X-Check\" exists-action=\"override\"><value>@(context.Variables.ContainsKey(\"addr\") && true ? \"y\" : \"n\")</value></set-header>\n</fragment>";
        let fid = svc.policy_fragment("vault-orders");
        let f = azure
            .put_policy_fragment(&fid, &PolicyFragmentCreate { value: fragment.into(), description: Some("reads orders".into()), format: PolicyFormat::Rawxml }, None)
            .await
            .unwrap();
        assert_eq!(f.value.properties.value, fragment, "rawxml round-trips byte for byte");
        assert_eq!(f.value.properties.format, Some(PolicyFormat::Rawxml));

        let api = svc.api("orders");
        let a = azure
            .put_api(&api, &ApiCreate { display_name: "Orders".into(), path: "orders".into(), protocols: vec!["https".into()], service_url: Some("https://backend.example".into()), subscription_required: None }, None)
            .await
            .unwrap();
        assert_eq!(a.value.properties.path.as_deref(), Some("orders"));
        assert_eq!(azure.get_api(&api).await.unwrap().value.name, "orders");

        let policy = "<policies><inbound><base /><include-fragment fragment-id=\"vault-orders\" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";
        let etag = azure.put_api_policy(&api.policy(), &PolicyCreate { value: policy.into(), format: PolicyFormat::Rawxml }, None).await.unwrap();
        let etag = etag.expect("the write answers with the new policy's ETag");
        let p = azure.get_api_policy(&api.policy()).await.unwrap();
        assert!(p.value.properties.value.contains("<include-fragment fragment-id=\"vault-orders\" />"), "{}", p.value.properties.value);
        // The ETag of the write is the one a read gives: an edit may start from what it wrote.
        assert_eq!(p.etag.as_deref(), Some(etag.as_str()));
        // The fragment is in use: APIM refuses to delete it, and says why.
        let err = azure.delete_policy_fragment(&fid, "*").await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        azure.delete_api_policy(&api.policy(), &etag).await.unwrap();
        assert!(azure.get_api_policy(&api.policy()).await.unwrap_err().is_not_found());
        azure.delete_policy_fragment(&fid, "*").await.unwrap();
        assert!(azure.get_policy_fragment(&fid).await.unwrap_err().is_not_found());

        let bid = svc.backend("vault");
        let mut header = std::collections::BTreeMap::new();
        header.insert("X-Vault-Namespace".to_string(), vec!["team-a".to_string()]);
        let b = azure
            .put_backend(&bid, &BackendCreate { url: "https://vault.example:8200".into(), protocol: "http".into(), title: None, description: Some("Vault".into()), credentials: Some(BackendCredentials { header, query: Default::default() }), tls: None }, None)
            .await
            .unwrap();
        assert_eq!(b.value.properties.url.as_deref(), Some("https://vault.example:8200"));
        let got = azure.get_backend(&bid).await.unwrap();
        assert_eq!(got.value.properties.credentials.unwrap().header["X-Vault-Namespace"], vec!["team-a"]);
        azure.delete_backend(&bid, got.etag.as_deref().unwrap()).await.unwrap();
        assert!(azure.get_backend(&bid).await.unwrap_err().is_not_found());
    });
}

#[test]
fn azure_client_identity_errors_say_how_to_enable_it() {
    let emu = Emulator::start();
    let azure = client(&emu);
    let svc = service(&emu);
    let rt = rt();
    let uai = UserAssignedIdentityId::new(
        emu.subscription_id(),
        emu.field("resource_group"),
        "not-assigned",
    );
    let err = rt
        .block_on(azure.resolve_identity(&svc, &IdentitySelector::UserAssigned(uai)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("does not have the user-assigned identity not-assigned"),
        "{err}"
    );
    // Turn the identity off, as `az apim update --set identity.type=None` would.
    rt.block_on(azure.patch_json::<Value>(
        &svc.arm_id(),
        json!({"identity": {"type": "None"}}),
        Some("*"),
        "turning the identity off",
    ))
    .expect("PATCH the instance");
    let err = rt
        .block_on(azure.resolve_identity(&svc, &IdentitySelector::SystemAssigned))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{svc} has no system-assigned managed identity")),
        "{err}"
    );
    assert!(
        err.contains("identity { type = \"SystemAssigned\" }") && err.contains("az apim update"),
        "{err}"
    );
}

/// A world with a federated client (as a CI system's OIDC trust) and instances with
/// user-assigned identities.
fn seeded() -> (Emulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.json");
    let world = json!({
        "subscriptions": [{"resource_groups": [{"name": "rg1", "location": "westeurope", "services": [
            {"name": "apim1", "identity": {"type": "SystemAssigned, UserAssigned", "user_assigned": [{"name": "uai1"}]}},
            {"name": "apim2", "identity": {"type": "UserAssigned", "user_assigned": [{"name": "uai2"}]}}
        ]}]}],
        "clients": [{"federated_credentials": [
            {"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main"}
        ]}]
    });
    std::fs::write(&seed, world.to_string()).unwrap();
    let emu = Emulator::start_with_args(&["--seed", seed.to_str().unwrap()]);
    (emu, dir)
}

fn federated_token(emu: &Emulator, subject: &str) -> String {
    let (status, minted) = emu.call(
        "POST",
        "/_emulator/tokens",
        Some(json!({"resource": "api://AzureADTokenExchange",
            "claims": {"iss": "https://token.actions.githubusercontent.com", "sub": subject}})),
    );
    assert_eq!(status, 200, "{minted}");
    minted["access_token"].as_str().unwrap().to_string()
}

#[test]
fn azure_client_workload_identity_federated_credential_and_user_assigned_identities() {
    let (emu, dir) = seeded();
    let file = dir.path().join("token");
    let settings = AzureSettings {
        tenant_id: Some(emu.tenant_id().into()),
        client_id: Some(emu.client_id().into()),
        use_oidc: true,
        oidc_token_file_path: Some(file.clone()),
        ..base_settings(emu.url(), emu.ca_file(), emu.subscription_id())
    };
    let rt = rt();

    // A token for another subject does not match the federated credential.
    std::fs::write(
        &file,
        federated_token(&emu, "repo:o/r:ref:refs/heads/feature"),
    )
    .unwrap();
    let azure = Azure::new(settings.clone()).unwrap();
    let err = rt.block_on(azure.get_service(&service(&emu))).unwrap_err();
    assert!(matches!(err, AzureError::Credential { .. }), "{err:?}");
    assert!(err.to_string().contains("70021"), "{err}");

    std::fs::write(&file, federated_token(&emu, "repo:o/r:ref:refs/heads/main")).unwrap();
    let azure = Azure::new(settings).unwrap();
    let rg = "rg1";
    let apim1 = ServiceId::new(emu.subscription_id(), rg, "apim1");
    let apim2 = ServiceId::new(emu.subscription_id(), rg, "apim2");
    let uai1 = UserAssignedIdentityId::new(emu.subscription_id(), rg, "uai1");
    let uai2 = UserAssignedIdentityId::new(emu.subscription_id(), rg, "uai2");
    let (s1, r1, r2) = rt.block_on(async {
        let s1 = azure
            .get_service(&apim1)
            .await
            .expect("GET with a federated credential");
        let r1 = azure
            .resolve_identity(&apim1, &IdentitySelector::UserAssigned(uai1.clone()))
            .await
            .expect("uai1");
        let r2 = azure
            .resolve_identity(&apim2, &IdentitySelector::UserAssigned(uai2.clone()))
            .await
            .expect("uai2");
        (s1, r1, r2)
    });
    let inventory = emu.inventory();
    let find = |id: &UserAssignedIdentityId| {
        inventory
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&id.arm_id()))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{id} in the inventory: {inventory}"))
    };
    let identity = s1.value.identity.expect("apim1 has identities");
    assert_eq!(identity.user_assigned_identities.len(), 1);
    for (resolved, id) in [(&r1, &uai1), (&r2, &uai2)] {
        let entry = find(id);
        let props = &entry["properties"];
        assert_eq!(
            Some(resolved.principal_id.as_str()),
            props["principalId"].as_str(),
            "{entry}"
        );
        assert_eq!(
            resolved.client_id.as_deref(),
            props["clientId"].as_str(),
            "{entry}"
        );
        assert_eq!(resolved.tenant_id, emu.tenant_id());
    }
    // apim2 has no system-assigned identity, so ARM states no tenant there: it came from
    // the subscription.
    assert_eq!(
        logged(
            &emu,
            Some("GET"),
            &format!("/subscriptions/{}", emu.subscription_id())
        )
        .len(),
        1
    );
    let err = rt
        .block_on(azure.resolve_identity(&apim2, &IdentitySelector::SystemAssigned))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("(its identity type is \"UserAssigned\")"),
        "{err}"
    );
}
