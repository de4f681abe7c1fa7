//! A real OpenBao dev server on a free loopback port (binary from `APIM_TEST_BAO`, else
//! `<workspace>/.tools/bin/bao`); killed on drop.

use super::temp_dir;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The OpenBao dev server; killed on drop.
pub struct Bao {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    http: reqwest::blocking::Client,
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("APIM_TEST_BAO") {
        return PathBuf::from(p);
    }
    // The tools folder scripts/setup fills (APIM_TOOLS_DIR when it is elsewhere).
    let tools = std::env::var_os("APIM_TOOLS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools"),
        PathBuf::from,
    );
    tools.join("bin/bao")
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Bao {
    /// Stops the server (the address then refuses connections).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a dev server with root token `root` and waits until it is healthy.
    pub fn start() -> Bao {
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

    /// A call to `/v1/{path}`: (status, JSON body).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value) {
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

    /// A write as root that must succeed.
    pub fn write(&self, path: &str, body: &Value) {
        let (s, v) = self.call(Method::POST, path, body, Some("root"));
        assert!((200..300).contains(&s), "bao write {path}: {s} {v}");
    }

    /// A JWT login.
    pub fn login(&self, mount: &str, role: &str, jwt: &str) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("auth/{mount}/login"),
            &json!({"role": role, "jwt": jwt}),
            None,
        )
    }
}
