//! A real OpenBao JWT auth mount trusts the emulator through OIDC discovery over HTTPS (private CA)
//! and accepts its managed-identity tokens — and refuses wrong-audience, expired and foreign ones.

mod common;

use common::{temp_dir, Emu};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The OpenBao dev server; killed on drop.
struct Bao {
    child: Child,
    addr: String,
    http: reqwest::blocking::Client,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("APIM_TEST_BAO") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.join(".tools/bin/bao")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Bao {
    fn start() -> Bao {
        let bin = bao_binary();
        assert!(
            bin.exists(),
            "OpenBao binary not found at {} — run scripts/setup (or set APIM_TEST_BAO)",
            bin.display()
        );
        let port = free_port();
        let log = std::fs::File::create(temp_dir("bao").join("bao.log")).expect("log file");
        let child = Command::new(&bin)
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn bao");
        let bao = Bao {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = bao.http.get(format!("{}/v1/sys/health", bao.addr)).send() {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "OpenBao did not become healthy");
            std::thread::sleep(Duration::from_millis(200));
        }
        bao
    }

    fn call(&self, method: Method, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .json(body);
        if let Some(t) = token {
            r = r.header("X-Vault-Token", t);
        }
        let resp = r.send().expect("bao request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn write(&self, path: &str, body: &Value) {
        let (s, v) = self.call(Method::POST, path, body, Some("root"));
        assert!((200..300).contains(&s), "bao write {path}: {s} {v}");
    }

    fn login(&self, mount: &str, role: &str, jwt: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("auth/{mount}/login"),
            &json!({"role": role, "jwt": jwt}),
            None,
        )
    }
}

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
