//! Signing in from pipelines, as the azurerm provider reads it: each flow (GitHub Actions' OIDC
//! token request with the `ARM_*` pair and with GitHub's own `ACTIONS_*` pair, a federated token
//! given as is, a token file, Azure DevOps' OIDC token request, a client certificate) runs a real
//! `terraform plan` whose role resolves the emulator's APIM instance through ARM, and is checked to
//! have signed in as the app registered for that flow (the emulator's request log names the client
//! and how it proved itself). The same through the `azure` block; a half-given flow's diagnostic;
//! Vault's `auth_login_jwt` with JWTs requested from GitHub Actions and Azure DevOps against a
//! real OpenBao trusting the emulator's CI issuer. Every run is traced (`TF_LOG=trace`) and the
//! trace and outputs are searched for the request tokens, the assertions and the certificate's
//! password.

use serde_json::{json, Value};

use crate::support::fixtures::{
    hcl_string, read_policy, vault_trio, MANAGES_POLICIES, REQUIRED_PROVIDERS,
};
use crate::support::{jwts_in, Bao, Emulator, TerraformBin, TfOutput, Workdir};

const MAIN: &str = "repo:octo-org/app:ref:refs/heads/main";
const ADO_SUBJECT: &str = "sc://octo-org/app/apim-deploy";
const ADO_CONNECTION: &str = "5f1e6c1a-7c3b-4d2e-9a11-2b3c4d5e6f70";

/// A CI job registered with the emulator: its request token and the URL it asks.
struct Job {
    request_url: String,
    request_token: String,
}

fn register_job(emu: &Emulator, kind: &str, subject: &str, extra: Value) -> Job {
    let request_token = format!("{kind}-request-{}-{}", std::process::id(), rand_suffix());
    let mut body = json!({"kind": kind, "request_token": request_token, "subject": subject});
    if let (Some(b), Value::Object(x)) = (body.as_object_mut(), extra) {
        b.extend(x);
    }
    let (status, v) = emu.call("POST", "/_emulator/pipelines", Some(body));
    assert_eq!(status, 200, "{v}");
    Job {
        request_url: v["request_url"].as_str().unwrap().to_string(),
        request_token,
    }
}

fn rand_suffix() -> String {
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Registers an app with the emulator (`body`: federated credentials or certificates); its ID.
fn register_app(emu: &Emulator, body: Value) -> String {
    let (status, v) = emu.call("POST", "/_emulator/clients", Some(body));
    assert_eq!(status, 200, "{v}");
    v["client_id"].as_str().unwrap().to_string()
}

/// An app trusting the emulator's CI issuer for `subject`.
fn federated_app(emu: &Emulator, subject: &str) -> String {
    register_app(
        emu,
        json!({"federated_credentials": [{"issuer": format!("{}/oidc", emu.url()), "subject": subject}]}),
    )
}

/// An ID token from the emulator's GitHub-style endpoint, as a job would obtain it.
fn id_token(emu: &Emulator, job: &Job, audience: &str) -> String {
    let resp = emu
        .http()
        .get(format!("{}&audience={audience}", job.request_url))
        .bearer_auth(&job.request_token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().unwrap();
    v["value"].as_str().unwrap().to_string()
}

/// How a flow signs in: the environment and `azure` block settings, the app it must end up
/// signed in as, how the emulator says it proved itself, and the values that must never show.
struct Flow {
    env: Vec<(String, String)>,
    block: String,
    client_id: String,
    proof: String,
    secrets: Vec<String>,
}

/// The emulator's endpoints and CA, without the default client's secret.
fn base_env(emu: &Emulator) -> Vec<(String, String)> {
    emu.env()
        .into_iter()
        .filter(|(k, _)| k != "ARM_CLIENT_ID" && k != "ARM_CLIENT_SECRET")
        .collect()
}

fn workdir(bao: &Bao, emu: &Emulator, flow: &Flow) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in bao.env().into_iter().chain(base_env(emu)) {
        wd.env(k, v);
    }
    for (k, v) in &flow.env {
        wd.env(k, v);
    }
    wd
}

fn config(emu: &Emulator, block: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}provider \"apim\" {{\n  azure {{\n{block}\n  }}\n}}\n{}",
        vault_trio(emu, "secret/data/signin", "")
    )
}

/// `terraform plan` under `TF_LOG=trace` (the plan of the role reads the APIM instance through
/// ARM); answers the output and the trace log.
fn traced_plan(wd: &mut Workdir, emu: &Emulator, block: &str) -> (TfOutput, String) {
    let log = wd.path().join("trace.log");
    wd.env("TF_LOG", "trace");
    wd.env("TF_LOG_PATH", &log);
    wd.write_config(&config(emu, block));
    let out = wd.run(&["plan"]);
    let trace = std::fs::read_to_string(&log).unwrap_or_default();
    (out, trace)
}

/// Runs `flow` (its environment, and `block` in the `azure` block) and checks the sign-in.
fn check_flow(bao: &Bao, emu: &Emulator, flow: &Flow, block: &str) {
    let (status, _) = emu.call("DELETE", "/_emulator/requests", None);
    assert!(status < 300);
    let mut wd = workdir(bao, emu, flow);
    let (out, trace) = traced_plan(&mut wd, emu, block);
    assert!(out.success(), "terraform plan failed:\n{out}");
    assert!(
        out.stdout.contains(emu.principal_id()),
        "the plan shows the APIM instance's principal, read through ARM:\n{out}"
    );
    let requests = emu.requests();
    let log = requests.as_array().unwrap();
    let want = format!("client {} by {}", flow.client_id, flow.proof);
    let signed_in = log
        .iter()
        .position(|r| r["principal"].as_str() == Some(want.as_str()) && r["status"] == 200)
        .unwrap_or_else(|| panic!("no token issued to `{want}`: {requests}"));
    assert!(
        log.iter()
            .all(|r| r["principal"].is_null() || r["principal"].as_str() == Some(want.as_str())),
        "only that app signed in: {requests}"
    );
    let service_path = emu.api_management_id().to_ascii_lowercase();
    assert!(
        log[signed_in..].iter().any(|r| r["method"] == "GET"
            && r["path"].as_str().unwrap_or("").to_ascii_lowercase() == service_path
            && r["status"] == 200),
        "ARM read the instance after that sign-in: {requests}"
    );
    assert!(trace.len() > 10_000, "TF_LOG=trace was in effect");
    for (what, text) in [("output", out.combined()), ("trace log", trace)] {
        for s in &flow.secrets {
            assert!(
                !text.contains(s.as_str()),
                "a secret of the flow is in the {what}"
            );
        }
        assert_eq!(
            jwts_in(&text),
            Vec::<String>::new(),
            "a JWT is in the {what}"
        );
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn github_flow(emu: &Emulator, url_var: &str, token_var: &str) -> Flow {
    let job = register_job(emu, "github", MAIN, json!({}));
    let client_id = federated_app(emu, MAIN);
    Flow {
        env: env(&[
            ("ARM_USE_OIDC", "true"),
            ("ARM_CLIENT_ID", &client_id),
            (url_var, &job.request_url),
            (token_var, &job.request_token),
        ]),
        block: String::new(),
        proof: format!("federated credential (iss {}/oidc, sub {MAIN})", emu.url()),
        client_id,
        secrets: vec![job.request_token],
    }
}

#[test]
fn signin_github_actions_arm_oidc_request_pair() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let flow = github_flow(&emu, "ARM_OIDC_REQUEST_URL", "ARM_OIDC_REQUEST_TOKEN");
    check_flow(&bao, &emu, &flow, &flow.block);
}

#[test]
fn signin_github_actions_actions_id_token_request_fallbacks() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let flow = github_flow(
        &emu,
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    );
    check_flow(&bao, &emu, &flow, &flow.block);
}

fn oidc_token_flow(emu: &Emulator) -> Flow {
    let job = register_job(emu, "github", MAIN, json!({"lifetime": 900}));
    let token = id_token(emu, &job, "api://AzureADTokenExchange");
    let client_id = federated_app(emu, MAIN);
    Flow {
        env: env(&[
            ("ARM_USE_OIDC", "true"),
            ("ARM_CLIENT_ID", &client_id),
            ("ARM_OIDC_TOKEN", &token),
        ]),
        block: String::new(),
        proof: format!("federated credential (iss {}/oidc, sub {MAIN})", emu.url()),
        client_id,
        secrets: vec![token, job.request_token],
    }
}

#[test]
fn signin_arm_oidc_token() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let flow = oidc_token_flow(&emu);
    check_flow(&bao, &emu, &flow, &flow.block);
}

#[test]
fn signin_arm_oidc_token_file_path() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let mut flow = oidc_token_flow(&emu);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("federated-token");
    let token = flow
        .env
        .iter()
        .find(|(k, _)| k == "ARM_OIDC_TOKEN")
        .unwrap()
        .1
        .clone();
    std::fs::write(&file, &token).unwrap();
    flow.env.retain(|(k, _)| k != "ARM_OIDC_TOKEN");
    flow.env.push((
        "ARM_OIDC_TOKEN_FILE_PATH".into(),
        file.display().to_string(),
    ));
    check_flow(&bao, &emu, &flow, &flow.block);
}

fn ado_flow(emu: &Emulator) -> Flow {
    let job = register_job(
        emu,
        "ado",
        ADO_SUBJECT,
        json!({"service_connection_id": ADO_CONNECTION}),
    );
    let client_id = federated_app(emu, ADO_SUBJECT);
    Flow {
        env: env(&[
            ("ARM_USE_OIDC", "true"),
            ("ARM_CLIENT_ID", &client_id),
            ("ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", ADO_CONNECTION),
            ("SYSTEM_ACCESSTOKEN", &job.request_token),
            ("SYSTEM_OIDCREQUESTURI", &job.request_url),
        ]),
        block: String::new(),
        proof: format!(
            "federated credential (iss {}/oidc, sub {ADO_SUBJECT})",
            emu.url()
        ),
        client_id,
        secrets: vec![job.request_token],
    }
}

#[test]
fn signin_azure_devops_service_connection() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let flow = ado_flow(&emu);
    check_flow(&bao, &emu, &flow, &flow.block);
}

/// A PKCS#12 file with a fresh self-signed RSA certificate and its key, protected by
/// `password`, and the certificate's PEM and thumbprint (`x5t`).
fn pkcs12(dir: &std::path::Path, password: &str) -> (std::path::PathBuf, String, String) {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["apim-deploy.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        "apim-deploy",
        p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
        [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "apim-deploy",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    let data = store.writer(password).write().unwrap();
    let path = dir.join("apim-deploy.pfx");
    std::fs::write(&path, data).unwrap();
    let x5t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der())
            .as_ref(),
    );
    (path, cert.pem(), x5t)
}

fn certificate_flow(emu: &Emulator, dir: &std::path::Path) -> Flow {
    let password = format!("pfx-pass-{}", rand_suffix());
    let (path, pem, x5t) = pkcs12(dir, &password);
    let client_id = register_app(emu, json!({"certificates": [pem]}));
    Flow {
        env: env(&[
            ("ARM_CLIENT_ID", &client_id),
            ("ARM_CLIENT_CERTIFICATE_PATH", &path.display().to_string()),
            ("ARM_CLIENT_CERTIFICATE_PASSWORD", &password),
        ]),
        block: String::new(),
        proof: format!("certificate {x5t}"),
        client_id,
        secrets: vec![password],
    }
}

#[test]
fn signin_client_certificate_pkcs12() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let dir = tempfile::tempdir().unwrap();
    let flow = certificate_flow(&emu, dir.path());
    check_flow(&bao, &emu, &flow, &flow.block);
}

/// Every flow again with its settings in the `azure` block instead of `ARM_*` variables
/// (Azure DevOps' `SYSTEM_*` variables stay in the environment, as the pipeline sets them).
#[test]
fn signin_every_flow_through_the_azure_block() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let dir = tempfile::tempdir().unwrap();
    let attr = |name: &str, value: &str| format!("    {name} = {}\n", hcl_string(value));
    let to_block = |flow: &mut Flow, keep: &[&str]| {
        let mut block = String::new();
        for (k, v) in &flow.env {
            let name = match k.as_str() {
                "ARM_USE_OIDC" => "use_oidc",
                "ARM_CLIENT_ID" => "client_id",
                "ARM_OIDC_REQUEST_URL" => "oidc_request_url",
                "ARM_OIDC_REQUEST_TOKEN" => "oidc_request_token",
                "ARM_OIDC_TOKEN" => "oidc_token",
                "ARM_OIDC_TOKEN_FILE_PATH" => "oidc_token_file_path",
                "ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID" => "ado_pipeline_service_connection_id",
                "ARM_CLIENT_CERTIFICATE_PATH" => "client_certificate_path",
                "ARM_CLIENT_CERTIFICATE_PASSWORD" => "client_certificate_password",
                other => {
                    assert!(keep.contains(&other), "{other} has no block attribute here");
                    continue;
                }
            };
            if name == "use_oidc" {
                block.push_str("    use_oidc = true\n");
            } else {
                block.push_str(&attr(name, v));
            }
        }
        flow.env.retain(|(k, _)| keep.contains(&k.as_str()));
        flow.block = block;
    };
    let mut flows = vec![
        github_flow(&emu, "ARM_OIDC_REQUEST_URL", "ARM_OIDC_REQUEST_TOKEN"),
        oidc_token_flow(&emu),
        ado_flow(&emu),
        certificate_flow(&emu, dir.path()),
    ];
    let mut file_flow = oidc_token_flow(&emu);
    let file = dir.path().join("federated-token");
    let token = file_flow
        .env
        .iter()
        .find(|(k, _)| k == "ARM_OIDC_TOKEN")
        .unwrap()
        .1
        .clone();
    std::fs::write(&file, token).unwrap();
    file_flow.env.retain(|(k, _)| k != "ARM_OIDC_TOKEN");
    file_flow.env.push((
        "ARM_OIDC_TOKEN_FILE_PATH".into(),
        file.display().to_string(),
    ));
    flows.push(file_flow);
    for mut flow in flows {
        to_block(&mut flow, &["SYSTEM_ACCESSTOKEN", "SYSTEM_OIDCREQUESTURI"]);
        let block = flow.block.clone();
        check_flow(&bao, &emu, &flow, &block);
    }
}

/// A GitHub request URL without its token: the plan fails with a diagnostic naming the missing
/// setting and its variable, and nothing is requested.
#[test]
fn signin_half_configured_flow_names_the_missing_setting() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let job = register_job(&emu, "github", MAIN, json!({}));
    let flow = Flow {
        env: env(&[
            ("ARM_USE_OIDC", "true"),
            ("ARM_CLIENT_ID", "00000000-0000-0000-0000-0000000000aa"),
            ("ARM_OIDC_REQUEST_URL", &job.request_url),
        ]),
        block: String::new(),
        client_id: String::new(),
        proof: String::new(),
        secrets: vec![],
    };
    let wd = workdir(&bao, &emu, &flow);
    wd.write_config(&config(&emu, ""));
    let out = wd.run(&["plan"]);
    assert!(!out.success(), "{out}");
    let text = crate::support::normalize_text(&out.combined());
    assert!(
        text.contains("An OIDC request URL is set but no request token: set `azure { oidc_request_token }` or ARM_OIDC_REQUEST_TOKEN"),
        "{out}"
    );
    assert!(
        !emu.requests()
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap_or("").starts_with("/oidc/")),
        "no token was requested"
    );
}

/// OpenBao's JWT auth at `ci-jwt` trusting the emulator's CI issuer for `subject` and
/// `audience`, whose tokens may manage ACL policies.
fn ci_jwt_mount(bao: &Bao, emu: &Emulator, subject: &str, audience: &str) {
    bao.api_ok("POST", "sys/auth/ci-jwt", Some(json!({"type": "jwt"})));
    bao.api_ok(
        "POST",
        "auth/ci-jwt/config",
        Some(json!({
            "oidc_discovery_url": format!("{}/oidc", emu.url()),
            "oidc_discovery_ca_pem": std::fs::read_to_string(emu.ca_file()).unwrap(),
        })),
    );
    bao.api_ok(
        "POST",
        "sys/policies/acl/ci-deploy",
        Some(json!({"policy": MANAGES_POLICIES})),
    );
    bao.api_ok(
        "POST",
        "auth/ci-jwt/role/deploy",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": subject,
            "bound_audiences": [audience],
            "token_policies": ["ci-deploy"],
            "token_ttl": "10m",
        })),
    );
}

/// Applies and destroys a policy through a provider that logs in to Vault with `auth_login_jwt`
/// (`login` holds its attributes), `env` giving the CI system's variables; checks the policy was
/// made, the ID token was requested, and no secret or JWT shows.
fn vault_login_through_ci(
    bao: &Bao,
    emu: &Emulator,
    login: &str,
    env: &[(String, String)],
    secret: &str,
    request_path: &str,
) {
    let mut wd = Workdir::new(&TerraformBin::primary());
    for (k, v) in env {
        wd.env(k, v);
    }
    // The CI endpoints are reached with the system's trust store; here it is the emulator's CA.
    wd.env("SSL_CERT_FILE", emu.ca_file());
    let log = wd.path().join("trace.log");
    wd.env("TF_LOG", "trace");
    wd.env("TF_LOG_PATH", &log);
    wd.write_config(&format!(
        "{REQUIRED_PROVIDERS}provider \"apim\" {{\n  vault {{\n    address = {}\n    auth_login_jwt {{\n      mount = \"ci-jwt\"\n      role  = \"deploy\"\n{login}    }}\n  }}\n}}\n{}",
        hcl_string(bao.addr()),
        read_policy("p", "made-by-ci", "secret/data/ci")
    ));
    let apply = wd.apply();
    assert!(apply.success(), "{apply}");
    assert!(bao.policy("made-by-ci").is_some(), "the policy was written");
    let requests = emu.requests();
    assert!(
        requests.as_array().unwrap().iter().any(|r| r["path"]
            .as_str()
            .unwrap_or("")
            .starts_with(request_path)
            && r["status"] == 200),
        "the JWT was requested from the CI endpoint: {requests}"
    );
    let destroy = wd.destroy();
    assert!(destroy.success(), "{destroy}");
    assert_eq!(bao.policy("made-by-ci"), None);
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(trace.len() > 10_000, "TF_LOG=trace was in effect");
    for text in [apply.combined(), destroy.combined(), trace, wd.state_raw()] {
        assert!(!text.contains(secret), "the request token leaked");
        assert_eq!(jwts_in(&text), Vec::<String>::new(), "a JWT leaked");
    }
}

#[test]
fn signin_vault_auth_login_jwt_from_github_actions() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    ci_jwt_mount(&bao, &emu, MAIN, "https://vault.example.com");
    let job = register_job(&emu, "github", MAIN, json!({}));
    vault_login_through_ci(
        &bao,
        &emu,
        "      audience = \"https://vault.example.com\"\n",
        &env(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &job.request_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &job.request_token),
        ]),
        &job.request_token,
        "/oidc/github/token",
    );
}

#[test]
fn signin_vault_auth_login_jwt_from_azure_devops() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    ci_jwt_mount(&bao, &emu, ADO_SUBJECT, "api://AzureADTokenExchange");
    let job = register_job(
        &emu,
        "ado",
        ADO_SUBJECT,
        json!({"service_connection_id": ADO_CONNECTION}),
    );
    vault_login_through_ci(
        &bao,
        &emu,
        "",
        &env(&[
            ("ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", ADO_CONNECTION),
            ("SYSTEM_ACCESSTOKEN", &job.request_token),
            ("SYSTEM_OIDCREQUESTURI", &job.request_url),
        ]),
        &job.request_token,
        "/oidc/ado/",
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The emulator's request log entries whose path starts with `prefix` and that succeeded.
fn succeeded(emu: &Emulator, prefix: &str) -> usize {
    emu.requests()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").starts_with(prefix) && r["status"] == 200)
        .count()
}

/// GitHub's ID tokens live minutes: when the Entra token is renewed, a new ID token is
/// requested for the new client assertion (the emulator's Entra tokens live 302 s here, so both
/// token caches, which renew 5 minutes before expiry, renew after 2 s).
#[test]
fn signin_github_fresh_id_token_at_each_entra_renewal() {
    use apim_provider::clients::azure::id::ServiceId;
    use apim_provider::clients::azure::{Azure, AzureSettings};
    let emu = Emulator::start();
    let (s, v) = emu.call(
        "POST",
        "/_emulator/entra",
        Some(json!({"token_lifetime": 302})),
    );
    assert_eq!(s, 200, "{v}");
    let job = register_job(&emu, "github", MAIN, json!({}));
    let client_id = federated_app(&emu, MAIN);
    let url = url::Url::parse(emu.url()).unwrap();
    let azure = Azure::new(AzureSettings {
        subscription_id: Some(emu.subscription_id().into()),
        tenant_id: Some(emu.tenant_id().into()),
        client_id: Some(client_id.clone()),
        use_oidc: true,
        oidc_request_url: Some(job.request_url.clone()),
        oidc_request_token: Some(job.request_token.clone()),
        resource_manager_endpoint: Some(url.clone()),
        authority_host: Some(url),
        ca_cert_file: Some(emu.ca_file().to_path_buf()),
        use_cli: Some(false),
        ..Default::default()
    })
    .unwrap();
    let service = ServiceId::parse(emu.api_management_id()).unwrap();
    let rt = rt();
    rt.block_on(azure.get_service(&service))
        .expect("first read");
    rt.block_on(azure.get_service(&service))
        .expect("read with the cached token");
    assert_eq!(
        succeeded(&emu, "/oidc/github/token"),
        1,
        "one ID token while the Entra token is fresh"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    rt.block_on(azure.get_service(&service))
        .expect("read after renewal");
    assert_eq!(
        succeeded(&emu, "/oidc/github/token"),
        2,
        "a new ID token for the renewal"
    );
    let want = format!(
        "client {client_id} by federated credential (iss {}/oidc, sub {MAIN})",
        emu.url()
    );
    let issued = emu
        .requests()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["principal"].as_str() == Some(want.as_str()))
        .count();
    assert_eq!(issued, 2, "two Entra tokens, each from its own assertion");
}

/// Vault's JWT login asks GitHub for a new JWT at each login: a role whose tokens cannot be
/// extended past 3 s makes the client log in again.
#[test]
fn signin_vault_fresh_jwt_at_each_login() {
    use apim_provider::clients::vault::{JwtLogin, JwtSource, Vault, VaultSettings};
    let (bao, emu) = (Bao::start(), Emulator::start());
    ci_jwt_mount(&bao, &emu, MAIN, "https://vault.example.com");
    bao.api_ok(
        "POST",
        "auth/ci-jwt/role/deploy",
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": MAIN,
            "bound_audiences": ["https://vault.example.com"],
            "token_policies": ["ci-deploy"],
            "token_ttl": "3s",
            "token_max_ttl": "3s",
        })),
    );
    let job = register_job(&emu, "github", MAIN, json!({}));
    // The CI endpoint is reached with the system's trust store: here, the emulator's CA.
    std::env::set_var("SSL_CERT_FILE", emu.ca_file());
    let vault = Vault::new(VaultSettings {
        address: url::Url::parse(bao.addr()).unwrap(),
        token: None,
        namespace: None,
        ca_cert_file: None,
        skip_tls_verify: false,
        max_retries: 1,
        login: Some(JwtLogin {
            mount: "ci-jwt".into(),
            role: "deploy".into(),
            jwt: JwtSource::GitHub {
                request_url: job.request_url.clone(),
                request_token: job.request_token.clone(),
                audience: Some("https://vault.example.com".into()),
            },
        }),
    })
    .unwrap();
    let rt = rt();
    rt.block_on(vault.write_policy("fresh-1", MANAGES_POLICIES))
        .expect("write after the first login");
    assert_eq!(succeeded(&emu, "/oidc/github/token"), 1);
    rt.block_on(async { tokio::time::sleep(std::time::Duration::from_secs(5)).await });
    rt.block_on(vault.write_policy("fresh-2", MANAGES_POLICIES))
        .expect("write after logging in again");
    assert!(
        succeeded(&emu, "/oidc/github/token") >= 2,
        "each login asked GitHub for a new JWT: {}",
        emu.requests()
    );
    assert!(bao.policy("fresh-2").is_some());
    std::env::remove_var("SSL_CERT_FILE");
}

/// A request token GitHub does not accept: the plan fails saying what GitHub answered and what
/// to check, without showing the token.
#[test]
fn signin_github_refused_request_token_is_explained() {
    let (bao, emu) = (Bao::start(), Emulator::start());
    let mut flow = github_flow(&emu, "ARM_OIDC_REQUEST_URL", "ARM_OIDC_REQUEST_TOKEN");
    let wrong = format!("not-the-request-token-{}", rand_suffix());
    for (k, v) in &mut flow.env {
        if k == "ARM_OIDC_REQUEST_TOKEN" {
            v.clone_from(&wrong);
        }
    }
    let wd = workdir(&bao, &emu, &flow);
    wd.write_config(&config(&emu, ""));
    let out = wd.run(&["plan"]);
    assert!(!out.success(), "{out}");
    let text = crate::support::normalize_text(&out.combined());
    assert!(
        text.contains("GitHub Actions answered 401 Unauthorized to the OIDC token request; check that the job has `permissions: id-token: write`"),
        "{out}"
    );
    assert!(
        !out.combined().contains(&wrong),
        "the request token is not shown"
    );
}
