//! The provider binary as a go-plugin server, driven by a gRPC client of our own over the
//! same transport Terraform uses: the handshake line, the cookie check, AutoMTLS with a
//! pinned client certificate, Shutdown, and RPC answers to unknown and malformed values.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_provider::framework::{Type, Value};
use apim_provider::server::codec;
use apim_provider::server::proto::plugin::grpc_controller_client::GrpcControllerClient;
use apim_provider::server::proto::tfplugin6 as pb;
use base64::Engine;
use hyper_util::rt::TokioIo;
use pb::provider_client::ProviderClient;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Channel, Endpoint};

const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// A client certificate and key, like the one Terraform generates per run.
struct ClientCert {
    pem: String,
    der: Vec<u8>,
    key: Vec<u8>,
}

fn client_cert() -> ClientCert {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    ClientCert {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        key: key.serialize_der(),
    }
}

/// A provider process started the way Terraform starts it.
struct Plugin {
    child: Child,
    line: String,
    handshake: Duration,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-apim"))
}

fn start(client_pem: Option<&str>) -> Plugin {
    let mut cmd = Command::new(binary());
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", COOKIE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(pem) = client_pem {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("provider starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let handshake = started.elapsed();
    Plugin {
        child,
        line: line.trim_end().to_string(),
        handshake,
    }
}

impl Plugin {
    fn fields(&self) -> Vec<&str> {
        self.line.split('|').collect()
    }
    fn socket(&self) -> String {
        self.fields()[3].to_string()
    }
    fn server_cert(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(self.fields()[5])
            .expect("certificate is unpadded standard base64")
    }
}

/// Trusts exactly the certificate the plugin announced, as go-plugin's client does.
#[derive(Debug)]
struct Announced(Vec<u8>);

impl ServerCertVerifier for Announced {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the announced certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A gRPC channel over the plugin's unix socket: mTLS with `cert` when given, else h2c.
async fn channel(
    p: &Plugin,
    cert: Option<&ClientCert>,
) -> Result<Channel, tonic::transport::Error> {
    let socket = p.socket();
    let tls = cert.map(|c| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Announced(p.server_cert())))
            .with_client_auth_cert(
                vec![CertificateDer::from(c.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key.clone())),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    });
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            let tls = tls.clone();
            async move {
                let unix = tokio::net::UnixStream::connect(socket).await?;
                let io: Box<dyn IoStream> = match tls {
                    Some(tls) => Box::new(
                        tls.connect(ServerName::try_from("localhost").unwrap(), unix)
                            .await?,
                    ),
                    None => Box::new(unix),
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        }))
        .await
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> IoStream for T {}

fn policy_type() -> Type {
    use apim_provider::framework::resource::Resource;
    apim_provider::resources::vault_policy::VaultPolicy
        .schema()
        .block
        .object_type()
}

fn dv(v: &Value, ty: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: codec::to_msgpack(v, ty).unwrap(),
        json: Vec::new(),
    })
}

#[tokio::test]
async fn handshake_line_mtls_and_schema() {
    let cert = client_cert();
    let p = start(Some(&cert.pem));
    let f = p.fields();
    assert_eq!(f.len(), 6, "handshake line: {}", p.line);
    assert_eq!(&f[..3], ["1", "6", "unix"]);
    assert_eq!(f[4], "grpc");
    assert!(
        std::path::Path::new(f[3]).exists(),
        "socket {} exists",
        f[3]
    );
    assert!(
        f[5].len() > 50 && !f[5].ends_with('='),
        "unpadded DER: {}",
        f[5]
    );
    eprintln!("protocol: start-to-handshake {:?}", p.handshake);

    let ch = channel(&p, Some(&cert)).await.expect("mTLS connection");
    let mut client = ProviderClient::new(ch.clone());
    let schema = client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let caps = schema.server_capabilities.unwrap();
    assert!(caps.get_provider_schema_optional && caps.plan_destroy);
    assert!(
        caps.generate_resource_config,
        "the types generate configuration"
    );
    assert!(schema.resource_schemas.contains_key("apim_vault_policy"));
    assert!(schema
        .data_source_schemas
        .contains_key("apim_vault_policy_document"));
    let provider = schema.provider.unwrap().block.unwrap();
    let names: Vec<_> = provider
        .block_types
        .iter()
        .map(|b| b.type_name.as_str())
        .collect();
    assert_eq!(names, ["vault", "azure"]);

    let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn a_client_certificate_other_than_the_announced_one_is_refused() {
    let announced = client_cert();
    let intruder = client_cert();
    let p = start(Some(&announced.pem));
    let refused = match channel(&p, Some(&intruder)).await {
        Err(_) => true,
        Ok(ch) => ProviderClient::new(ch)
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .is_err(),
    };
    assert!(refused, "a wrong client certificate must not get an answer");
    // Without a certificate at all: refused too.
    let plain = match channel(&p, None).await {
        Err(_) => true,
        Ok(ch) => ProviderClient::new(ch)
            .get_metadata(pb::get_metadata::Request {})
            .await
            .is_err(),
    };
    assert!(
        plain,
        "a plaintext client must not get an answer from an mTLS server"
    );
    // The announced certificate still works afterwards.
    let ch = channel(&p, Some(&announced)).await.unwrap();
    ProviderClient::new(ch)
        .get_metadata(pb::get_metadata::Request {})
        .await
        .expect("the announced certificate is accepted");
}

#[test]
fn run_by_hand_it_explains_itself_and_exits_1() {
    let out = Command::new(binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This binary is a plugin"), "{err}");
}

#[tokio::test]
async fn shutdown_exits_promptly() {
    let p = start(None);
    assert!(
        p.line.ends_with("|grpc|"),
        "plaintext handshake: {}",
        p.line
    );
    let socket = p.socket();
    let mut p = p;
    let ch = channel(&p, None).await.unwrap();
    let started = Instant::now();
    GrpcControllerClient::new(ch)
        .shutdown(apim_provider::server::proto::plugin::Empty {})
        .await
        .expect("Shutdown answers");
    // go-plugin kills a plugin that has not exited 2 s after Shutdown.
    let status = loop {
        if let Some(s) = p.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still running 2 s after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    eprintln!("protocol: Shutdown to exit {:?}", started.elapsed());
    assert!(status.success());
    assert!(!std::path::Path::new(&socket).exists(), "socket removed");
}

#[tokio::test]
async fn unknown_values_plan_as_unknown() {
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let ty = policy_type();
    let mut config = Value::object([("name", Value::from("p")), ("policy", Value::UNKNOWN)]);
    config.set("rule", Value::List(vec![]));
    let resp = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "apim_vault_policy".into(),
            prior_state: dv(&Value::Null, &ty),
            proposed_new_state: dv(&config, &ty),
            config: dv(&config, &ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    let planned = codec::from_msgpack(&resp.planned_state.unwrap().msgpack, &ty).unwrap();
    assert!(planned.get("hcl").is_unknown(), "hcl unknown: {planned:?}");
    assert!(planned.get("id").is_unknown());
    assert!(planned.get("policy").is_unknown());
    assert_eq!(planned.get("name"), &Value::from("p"));

    // Known rules: the rendered document is known at plan time.
    let rule = Value::object([
        ("path", Value::from("a/*")),
        ("capabilities", Value::strings(["read"])),
    ]);
    let mut config = Value::object([("name", Value::from("p"))]);
    config.set("rule", Value::List(vec![rule]));
    let resp = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "apim_vault_policy".into(),
            prior_state: dv(&Value::Null, &ty),
            proposed_new_state: dv(&config, &ty),
            config: dv(&config, &ty),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let planned = codec::from_msgpack(&resp.planned_state.unwrap().msgpack, &ty).unwrap();
    assert_eq!(
        planned.get("hcl").as_str(),
        Some("path \"a/*\" {\n  capabilities = [\"read\"]\n}\n")
    );
}

#[tokio::test]
async fn malformed_values_and_unsupported_rpcs_get_diagnostics_not_crashes() {
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let garbage = Some(pb::DynamicValue {
        msgpack: vec![0x81, 0xa4, b'n', 0xff, 0x00],
        json: Vec::new(),
    });
    let resp = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "apim_vault_policy".into(),
            prior_state: garbage.clone(),
            proposed_new_state: garbage.clone(),
            config: garbage.clone(),
            ..Default::default()
        })
        .await
        .expect("a diagnostic, not a transport error")
        .into_inner();
    assert!(
        resp.diagnostics
            .iter()
            .any(|d| d.summary == "Malformed value from Terraform"),
        "{:?}",
        resp.diagnostics
    );
    let resp = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "apim_no_such_thing".into(),
            config: garbage.clone(),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics[0]
        .summary
        .contains("Unknown resource type"));
    let resp = c
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "apim_vault_policy".into(),
            version: 0,
            raw_state: Some(pb::RawState {
                json: b"{\"name\": [1, 2]".to_vec(),
                flatmap: Default::default(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!resp.diagnostics.is_empty());
    let resp = c
        .call_function(pb::call_function::Request {
            name: "nope".into(),
            arguments: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.error.is_some());
    let resp = c
        .move_resource_state(pb::move_resource_state::Request::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!resp.diagnostics.is_empty());
    c.stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap();
    // Still serving after all of that.
    c.get_metadata(pb::get_metadata::Request {})
        .await
        .expect("the server survived");
}

#[test]
fn debug_mode_prints_reattach_config() {
    let mut child = Command::new(binary())
        .arg("--debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    while !text.contains("TF_REATTACH_PROVIDERS=") {
        if out.read_line(&mut text).unwrap() == 0 {
            break;
        }
    }
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let _ = child.kill();
    let _ = child.wait();
    let json = text
        .split("TF_REATTACH_PROVIDERS='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("no reattach line in: {text}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let cfg = &v["registry.terraform.io/apimvault/apim"];
    assert_eq!(cfg["ProtocolVersion"], 6);
    assert_eq!(cfg["Test"], true);
    assert_eq!(cfg["Addr"]["Network"], "unix");
}

#[tokio::test]
async fn stop_provider_interrupts_a_plan_waiting_on_an_api() {
    // An endpoint that accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", hole.local_addr().unwrap().port());
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            conns.push(c);
        }
    });
    let p = start(None);
    let ch = channel(&p, None).await.unwrap();
    let mut c = ProviderClient::new(ch.clone());
    let pty = apim_provider::provider::provider_schema()
        .block
        .object_type();
    let azure = Value::object([
        (
            "subscription_id",
            Value::from("00000000-0000-0000-0000-000000000001"),
        ),
        (
            "tenant_id",
            Value::from("00000000-0000-0000-0000-000000000002"),
        ),
        (
            "client_id",
            Value::from("00000000-0000-0000-0000-000000000003"),
        ),
        ("client_secret", Value::from("not-a-real-secret")),
        ("authority_host", Value::from(url.as_str())),
        ("resource_manager_endpoint", Value::from(url.as_str())),
    ]);
    let resp = c
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.15.5".into(),
            config: dv(&Value::object([("azure", azure)]), &pty),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.diagnostics.is_empty(), "{:?}", resp.diagnostics);
    let rty = {
        use apim_provider::framework::resource::Resource;
        apim_provider::resources::vault_azure_role::VaultAzureRole
            .schema()
            .block
            .object_type()
    };
    let config = Value::object([
        ("name", Value::from("r")),
        ("audience", Value::from("api://x")),
        (
            "api_management_id",
            Value::from("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"),
        ),
    ]);
    let plan = tokio::spawn(async move {
        c.plan_resource_change(pb::plan_resource_change::Request {
            type_name: "apim_vault_azure_role".into(),
            prior_state: dv(&Value::Null, &rty),
            proposed_new_state: dv(&config, &rty),
            config: dv(&config, &rty),
            ..Default::default()
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !plan.is_finished(),
        "the plan should be waiting on the silent endpoint"
    );
    let stopped_at = Instant::now();
    ProviderClient::new(ch)
        .stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), plan)
        .await
        .expect("the plan answers soon after StopProvider")
        .unwrap()
        .unwrap()
        .into_inner();
    eprintln!(
        "protocol: StopProvider to plan answer {:?}",
        stopped_at.elapsed()
    );
    assert!(
        resp.diagnostics.iter().any(|d| d.summary == "Stopped"),
        "{:?}",
        resp.diagnostics
    );
    held.abort();
}

/// A table of invalid configurations, one mistake each: every one gets an error diagnostic
/// that points at an attribute, as ValidateResourceConfig (and its siblings) answer it.
#[tokio::test]
async fn invalid_configurations_get_diagnostics_with_attribute_paths() {
    use apim_provider::framework::resource::Provider;
    use serde_json::json;
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let provider = apim_provider::provider::ApimProvider::new();
    let apim = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
    let guid = "00000000-0000-0000-0000-000000000002";
    let rule = |caps: serde_json::Value| json!([{"path": "kv/data/x", "capabilities": caps}]);
    let binding = |patch: serde_json::Value| {
        let mut b = json!({"api_management_id": apim, "api_id": "orders-api", "name": "orders", "role": "r", "audience": "a",
            "secret_path": "kv/data/x", "secret_field": "k", "inject": {"header": "X-Key"}});
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let role = |patch: serde_json::Value| {
        let mut b = json!({"name": "r", "audience": "a", "principal_id": guid, "tenant_id": guid});
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let cases: Vec<(&str, &str, serde_json::Value)> = vec![
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "p", "rule": rule(json!(["fly"]))}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "P", "rule": rule(json!(["read"]))}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "a/b", "rule": rule(json!(["read"]))}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "p", "policy": "path \"a\" { capabilities = [\"read\"] }", "rule": rule(json!(["read"]))}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "p", "rule": []}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "p", "policy": "path \"a\" { capabilities = [\"reed\"] }"}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "p", "rule": [{"path": " ", "capabilities": ["read"]}]}),
        ),
        (
            "resource",
            "apim_vault_policy",
            json!({"name": "", "rule": rule(json!(["read"]))}),
        ),
        (
            "data",
            "apim_vault_policy_document",
            json!({"rule": rule(json!(["write"]))}),
        ),
        ("data", "apim_vault_policy_document", json!({"rule": []})),
        (
            "data",
            "apim_vault_policy_document",
            json!({"rule": [{"path": "", "capabilities": ["read"]}]}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"tenant_id": "contoso.onmicrosoft.com"}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"tenant_id": guid, "token_version": 3}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"oidc_discovery_url": "https://x/.well-known/openid-configuration"}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"oidc_discovery_url": "ftp://x/"}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"path": "/jwt/", "tenant_id": guid}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"tenant_id": guid, "jwks_url": "https://x/keys"}),
        ),
        (
            "resource",
            "apim_vault_auth_backend",
            json!({"tenant_id": guid, "default_lease_ttl": -1}),
        ),
        ("resource", "apim_vault_auth_backend", json!({})),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"name": "Orders"})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(
                json!({"principal_id": null, "tenant_id": null, "api_management_id": "/subscriptions/x"}),
            ),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(
                json!({"principal_id": null, "tenant_id": null, "api_management_id": apim, "identity": "Bogus"}),
            ),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"principal_id": "not-a-guid"})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"tenant_id": null})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"api_management_id": apim})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"auth_type": "kerberos"})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"token_type": "sometimes"})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"token_ttl": -5})),
        ),
        (
            "resource",
            "apim_vault_azure_role",
            role(json!({"audience": ""})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"name": "Bad_Name"})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"secret_path": "/v1/kv/data/x"})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"secret_field": "a b"})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"inject": {"header": "X-A", "query": "a"}})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"inject": {"header": "X A"}})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"cache_ttl": -5})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"on_error": "retry"})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"api_management_id": "apim"})),
        ),
        (
            "resource",
            "apim_vault_binding",
            binding(json!({"role": ""})),
        ),
        ("resource", "apim_vault_audit", json!({"type": "kafka"})),
        (
            "resource",
            "apim_vault_audit",
            json!({"type": "file", "options": {"file_path": "/tmp/a", "log_raw": "true"}}),
        ),
        (
            "data",
            "apim_vault_lease",
            json!({"lease_id": "a", "prefix": "b"}),
        ),
        ("data", "apim_vault_lease", json!({})),
        (
            "provider",
            "",
            json!({"vault": {"address": "vault.example.com"}}),
        ),
        ("provider", "", json!({"azure": {"environment": "mars"}})),
        ("provider", "", json!({"vault": {"max_retries": -1}})),
        (
            "provider",
            "",
            json!({"vault": {"token": "t", "auth_login_jwt": {"role": "r"}}}),
        ),
    ];
    let mut checked = 0;
    for (kind, name, config) in &cases {
        let ty = match *kind {
            "resource" => provider
                .resources()
                .iter()
                .find(|r| r.type_name() == *name)
                .unwrap()
                .schema()
                .block
                .object_type(),
            "data" => provider
                .data_sources()
                .iter()
                .find(|r| r.type_name() == *name)
                .unwrap()
                .schema()
                .block
                .object_type(),
            _ => provider.schema().block.object_type(),
        };
        let value = codec::from_json(config.to_string().as_bytes(), &ty)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let diags = match *kind {
            "resource" => {
                c.validate_resource_config(pb::validate_resource_config::Request {
                    type_name: name.to_string(),
                    config: dv(&value, &ty),
                    client_capabilities: None,
                })
                .await
                .unwrap()
                .into_inner()
                .diagnostics
            }
            "data" => {
                c.validate_data_resource_config(pb::validate_data_resource_config::Request {
                    type_name: name.to_string(),
                    config: dv(&value, &ty),
                })
                .await
                .unwrap()
                .into_inner()
                .diagnostics
            }
            _ => {
                c.validate_provider_config(pb::validate_provider_config::Request {
                    config: dv(&value, &ty),
                })
                .await
                .unwrap()
                .into_inner()
                .diagnostics
            }
        };
        let errors: Vec<_> = diags
            .iter()
            .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
            .collect();
        assert!(
            !errors.is_empty(),
            "{kind} {name} {config}: no error diagnostic"
        );
        assert!(
            errors
                .iter()
                .all(|d| d.attribute.as_ref().is_some_and(|a| !a.steps.is_empty())),
            "{kind} {name} {config}: an error without an attribute path: {errors:?}"
        );
        assert!(
            errors.iter().all(|d| !d.detail.is_empty()),
            "{kind} {name}: an error without detail"
        );
        checked += 1;
    }
    eprintln!("protocol: {checked} invalid configurations, each refused with an attribute path");
    assert!(checked >= 40);
}

/// Every value of `apim_vault_binding` that reaches the APIM policy is held to a grammar at
/// validation: each injection vector is refused with an error on the attribute it came in,
/// while the same configuration without it validates cleanly.
#[tokio::test]
async fn binding_injection_vectors_are_refused_on_their_attribute() {
    use apim_provider::framework::resource::Provider;
    use serde_json::json;
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let provider = apim_provider::provider::ApimProvider::new();
    let ty = provider
        .resources()
        .iter()
        .find(|r| r.type_name() == "apim_vault_binding")
        .unwrap()
        .schema()
        .block
        .object_type();
    let apim = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
    let base = json!({"api_management_id": apim, "api_id": "orders-api", "name": "orders",
        "role": "orders-apim", "audience": "api://apim-vault", "vault_address": "https://vault.example.com:8200",
        "secret_path": "secret/data/orders/backend", "secret_field": "api_key", "inject": {"header": "X-Api-Key"}});
    let mut validate = async |config: &serde_json::Value| {
        let value = codec::from_json(config.to_string().as_bytes(), &ty).unwrap();
        c.validate_resource_config(pb::validate_resource_config::Request {
            type_name: "apim_vault_binding".into(),
            config: dv(&value, &ty),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner()
        .diagnostics
        .into_iter()
        .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        validate(&base).await,
        vec![],
        "the base configuration is valid"
    );
    let vectors: Vec<(&str, serde_json::Value)> = vec![
        // A quote in the role would end the C# string it sits in.
        (
            "role",
            json!(r#"x" + context.Request.Headers.GetValueOrDefault("X-Role","") + ""#),
        ),
        // A policy expression as the namespace: the caller would choose it.
        (
            "vault_namespace",
            json!(r#"@(context.Request.Headers.GetValueOrDefault("X-Ns",""))"#),
        ),
        // A path that passes an ACL check on `secret/*` but fetches another path.
        ("secret_path", json!("secret/data/../../sys/raw/core")),
        // A named-value reference, which APIM would substitute.
        ("secret_path", json!("secret/data/{{other}}")),
        ("secret_path", json!("secret/data/orders?version=1")),
        ("secret_path", json!("secret/data/orders#x")),
        ("secret_path", json!("@(context.Request.Url.Path)")),
        // A quote in the audience would end its XML attribute.
        ("audience", json!(r#"api://vault" resource="x"#)),
        ("audience", json!("api://vault {{x}}")),
        // The secret and the tokens would cross the network in clear.
        ("vault_address", json!("http://vault.example.com:8200")),
        ("vault_address", json!("https://user:pw@vault.example.com")),
        ("vault_address", json!("https://vault.example.com/?x=1")),
        ("backend", json!("jwt/../token")),
        ("secret_field", json!(r#"a"]"#)),
        ("vault_namespace", json!("team/../root")),
    ];
    for (attr, value) in &vectors {
        let mut config = base.clone();
        config[*attr] = value.clone();
        let errors = validate(&config).await;
        assert!(!errors.is_empty(), "{attr} = {value}: accepted");
        for e in &errors {
            let path = e
                .attribute
                .as_ref()
                .map(|a| a.steps.clone())
                .unwrap_or_default();
            let first = path.first().and_then(|s| match &s.selector {
                Some(pb::attribute_path::step::Selector::AttributeName(n)) => Some(n.as_str()),
                _ => None,
            });
            assert_eq!(
                first,
                Some(*attr),
                "{attr} = {value}: error on another attribute: {e:?}"
            );
        }
    }
    // The inject block's names, inside the block.
    let mut config = base.clone();
    config["inject"] = json!({"header": "X-Key\" name=\"x"});
    let errors = validate(&config).await;
    assert!(!errors.is_empty(), "a quote in inject.header is accepted");
}

/// The list resources over the wire: advertised in GetMetadata and GetProviderSchema; a
/// `config` block that is wrong gets a diagnostic on its attribute, an unknown type and a
/// listing before configuration get a diagnostic event, never a transport error.
#[tokio::test]
async fn list_resources_answer_with_diagnostics_not_errors() {
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let lists = [
        "apim_vault_auth_backend",
        "apim_vault_azure_role",
        "apim_vault_binding",
        "apim_vault_policy",
    ];
    let meta = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<_> = meta
        .list_resources
        .iter()
        .map(|l| l.type_name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, lists);
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let mut names: Vec<_> = schema
        .list_resource_schemas
        .keys()
        .map(String::as_str)
        .collect();
    names.sort();
    assert_eq!(names, lists);

    let ty = Type::object([
        ("api_management_id", Type::String),
        ("api_id", Type::String),
    ]);
    let config = Value::object([
        ("api_management_id", Value::from("contoso-apim")),
        ("api_id", Value::Null),
    ]);
    let resp = c
        .validate_list_resource_config(pb::validate_list_resource_config::Request {
            type_name: "apim_vault_binding".into(),
            config: dv(&config, &ty),
            ..Default::default()
        })
        .await
        .expect("a diagnostic, not a transport error")
        .into_inner();
    let on_attribute = resp.diagnostics.iter().any(|d| {
        d.attribute.as_ref().is_some_and(|a| {
            matches!(
                a.steps.first().and_then(|s| s.selector.as_ref()),
                Some(pb::attribute_path::step::Selector::AttributeName(n)) if n == "api_management_id"
            )
        })
    });
    assert!(on_attribute, "{:?}", resp.diagnostics);

    let events = |r: pb::list_resource::Request| {
        let mut c = c.clone();
        async move {
            let mut stream = c.list_resource(r).await.expect("a stream").into_inner();
            let mut out = Vec::new();
            while let Some(ev) = stream.message().await.expect("events, not an error") {
                out.push(ev);
            }
            out
        }
    };
    let out = events(pb::list_resource::Request {
        type_name: "apim_no_such_thing".into(),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].diagnostic[0]
        .summary
        .contains("Unknown list resource type"));
    let policy_ty = Type::object([("name_prefix", Type::String)]);
    let out = events(pb::list_resource::Request {
        type_name: "apim_vault_policy".into(),
        config: dv(&Value::object([("name_prefix", Value::Null)]), &policy_ty),
        limit: 10,
        include_resource_object: true,
    })
    .await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].identity.is_none());
    assert_eq!(out[0].diagnostic[0].summary, "Provider not configured");
}

/// The events of an InvokeAction stream, to its end.
async fn invoke_events(
    c: &mut ProviderClient<Channel>,
    action_type: &str,
    config: Option<pb::DynamicValue>,
) -> Vec<pb::invoke_action::Event> {
    let mut stream = c
        .invoke_action(pb::invoke_action::Request {
            action_type: action_type.into(),
            config,
            client_capabilities: None,
        })
        .await
        .expect("a stream, not a transport error")
        .into_inner();
    let mut events = Vec::new();
    while let Some(ev) = stream.message().await.expect("the stream ends cleanly") {
        events.push(ev);
    }
    events
}

/// The diagnostics' summaries of the stream's one completed event, which must be its last.
fn completed(events: &[pb::invoke_action::Event]) -> Vec<String> {
    use pb::invoke_action::event::Type;
    let completions: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.r#type {
            Some(Type::Completed(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(completions.len(), 1, "one completed event: {events:?}");
    assert!(
        matches!(
            events.last().and_then(|e| e.r#type.as_ref()),
            Some(Type::Completed(_))
        ),
        "the completed event comes last: {events:?}"
    );
    completions[0]
        .diagnostics
        .iter()
        .map(|d| d.summary.clone())
        .collect()
}

/// Actions are declared in the schema (the value of `kv.data` write-only and sensitive) and the
/// metadata; InvokeAction answers with a stream that ends in one completed event carrying the
/// diagnostics, for an unknown type and for a real action on a provider never configured
/// (which does nothing, so reports no progress).
#[tokio::test]
async fn actions_are_declared_and_invoke_streams_a_completed_event() {
    use apim_provider::framework::action::Action;
    let p = start(None);
    let mut c = ProviderClient::new(channel(&p, None).await.unwrap());
    let schema = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let block = schema.action_schemas["apim_vault_rotate"]
        .schema
        .as_ref()
        .and_then(|s| s.block.as_ref())
        .expect("the action's schema");
    let kv = block
        .block_types
        .iter()
        .find(|b| b.type_name == "kv")
        .and_then(|b| b.block.as_ref())
        .expect("the kv block");
    let data = kv.attributes.iter().find(|a| a.name == "data").unwrap();
    assert!(data.write_only && data.sensitive, "{data:?}");
    let meta = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(meta
        .actions
        .iter()
        .any(|a| a.type_name == "apim_vault_rotate"));

    let events = invoke_events(&mut c, "apim_no_such_action", None).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(completed(&events), ["Unknown action type"]);

    let ty = apim_provider::resources::vault_rotate::VaultRotate
        .schema()
        .block
        .object_type();
    let mut config = Value::object([(
        "api_management_id",
        Value::from("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim"),
    )]);
    config.set(
        "kv",
        Value::object([
            ("path", Value::from("secret/data/orders/backend")),
            ("data", Value::object([("api_key", Value::from("v"))])),
        ]),
    );
    let events = invoke_events(&mut c, "apim_vault_rotate", dv(&config, &ty)).await;
    assert_eq!(events.len(), 1, "no progress: nothing was done: {events:?}");
    assert_eq!(completed(&events), ["Provider not configured"]);
}
