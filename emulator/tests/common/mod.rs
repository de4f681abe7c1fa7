//! Test harness: runs the real `apim-emulator` binary on a free loopback port and talks to it over
//! HTTPS, trusting the CA it writes.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the harness"
)]

pub mod bao;
pub mod echo;
pub mod scopes;

use reqwest::blocking::{Client, Response};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The api-version every ARM call uses.
pub const V: &str = "api-version=2024-05-01";

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "apim-emu-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A running emulator process; killed on drop.
pub struct Emu {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    /// The first stdout line.
    pub info: Value,
    /// Base URL.
    pub url: String,
    /// HTTPS client trusting the emulator's CA.
    pub http: Client,
    /// Where ca.pem lives.
    pub dir: PathBuf,
    token: std::cell::RefCell<Option<String>>,
}

impl Emu {
    /// Starts an emulator with the default seed and synchronous LROs off (default 1 poll).
    pub fn start() -> Emu {
        Emu::start_with(&[])
    }

    /// Starts an emulator with extra arguments.
    pub fn start_with(args: &[&str]) -> Emu {
        let dir = temp_dir("tls");
        Emu::start_in(&dir, args)
    }

    /// Starts an emulator writing its CA into `dir`.
    pub fn start_in(dir: &Path, args: &[&str]) -> Emu {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_apim-emulator"));
        cmd.arg("--tls-dir")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if std::env::var_os("APIM_EMULATOR_TEST_LOG").is_some() {
            cmd.stderr(Stdio::inherit());
        } else {
            cmd.stderr(Stdio::null());
        }
        let mut child = cmd.spawn().expect("spawn apim-emulator");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read first line");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("first line is not JSON ({e}): {line:?}"));
        let ca = std::fs::read(info["ca_file"].as_str().expect("ca_file")).expect("read ca.pem");
        let http = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        Emu {
            child,
            _stdout: stdout,
            url: info["url"].as_str().expect("url").to_string(),
            info,
            http,
            dir: dir.to_path_buf(),
            token: std::cell::RefCell::new(None),
        }
    }

    /// A field of the first line.
    pub fn s(&self, key: &str) -> String {
        self.info[key].as_str().unwrap_or_default().to_string()
    }

    /// The default APIM instance id.
    pub fn apim(&self) -> String {
        self.s("api_management_id")
    }

    /// An ARM token from the client-credentials flow with the seeded client.
    pub fn arm_token(&self) -> String {
        if let Some(t) = self.token.borrow().as_ref() {
            return t.clone();
        }
        let resp = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.url,
                self.s("tenant_id")
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.s("client_id")),
                ("client_secret", &self.s("client_secret")),
                ("scope", "https://management.azure.com/.default"),
            ]))
            .send()
            .expect("token request");
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().expect("token json");
        let t = v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        *self.token.borrow_mut() = Some(t.clone());
        t
    }

    /// An authenticated ARM request to `path` (an ARM id plus optional suffix, query included).
    pub fn arm_req(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.url, path_and_query))
            .bearer_auth(self.arm_token());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().expect("ARM request")
    }

    /// Like [`Emu::arm_req`], returning (status, etag header, JSON body or Null).
    pub fn arm(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, Value) {
        let resp = self.arm_req(method, path_and_query, body, headers);
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = resp.text().unwrap_or_default();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, etag, v)
    }

    /// A control-plane call.
    pub fn ctl(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}/_emulator/{path}", self.url));
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().expect("control-plane request");
        assert!(
            resp.status().is_success(),
            "control plane {path}: {}",
            resp.status()
        );
        resp.json().unwrap_or(json!(null))
    }

    /// A managed-identity token for `resource` from the IMDS-style endpoint.
    pub fn mi_token(&self, resource: &str, selector: &str) -> String {
        let resp = self
            .http
            .get(format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}&{selector}", self.url))
            .header("Metadata", "true")
            .send()
            .expect("MI token request");
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().expect("json");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself (at most 10 s) and returns its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        self.stop();
        if self
            .dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("apim-emu-test-"))
        {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Decodes a JWT's payload without verification.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    serde_json::from_slice(&raw).expect("json")
}
