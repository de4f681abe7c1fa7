//! The project's `apim-emulator` (the Azure side: ARM for Microsoft.ApiManagement and Entra
//! ID) for one test, on a free loopback port over HTTPS with its own CA.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::tail;
use super::workdir::provider_dir;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `apim-emulator --listen 127.0.0.1:0 --tls-dir <temp>`; stopped (SIGTERM) on drop.
///
/// The binary is `$APIM_EMULATOR_BIN`, else `apim-emulator` next to the provider binary
/// (`cargo build --workspace --bins` builds it; `scripts/test` does that first).
pub struct Emulator {
    child: Child,
    /// The JSON object of the emulator's first stdout line (what it seeded).
    pub info: Value,
    dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Emulator {
    /// The emulator binary, when it has been built.
    pub fn binary() -> Option<PathBuf> {
        match std::env::var_os("APIM_EMULATOR_BIN") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => Some(provider_dir().join("apim-emulator")),
        }
        .filter(|p| p.exists())
    }

    pub fn start() -> Emulator {
        Emulator::start_with_args(&[])
    }

    /// Starts the emulator with extra arguments (e.g. `["--seed", "/path/seed.json"]`).
    pub fn start_with_args(extra: &[&str]) -> Emulator {
        let bin = Emulator::binary().unwrap_or_else(|| {
            panic!(
                "{} is missing: build it with `cargo build --workspace --bins` (scripts/test does), \
                 or point APIM_EMULATOR_BIN at it",
                provider_dir().join("apim-emulator").display()
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("apim-emu-")
            .tempdir()
            .expect("create a temporary folder for the emulator");
        let tls_dir = dir.path().join("tls");
        std::fs::create_dir_all(&tls_dir).expect("create the TLS folder");
        let log = dir.path().join("emulator.log");
        let log_file = std::fs::File::create(&log).expect("create the emulator log");
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--tls-dir"])
            .arg(&tls_dir)
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        // First stdout line: the seed description. The rest of stdout is drained so the
        // emulator never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let started = Instant::now();
        let first_line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(line)) if !line.trim().is_empty() => break line,
                Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "apim-emulator printed no first line:\n{}",
                        tail(&std::fs::read_to_string(&log).unwrap_or_default(), 8 * 1024)
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if started.elapsed() > START_TIMEOUT {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!(
                            "apim-emulator printed nothing within {} s:\n{}",
                            START_TIMEOUT.as_secs(),
                            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 8 * 1024)
                        );
                    }
                }
            }
        };
        let info: Value = serde_json::from_str(first_line.trim()).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("apim-emulator's first line is not JSON ({e}): {first_line}")
        });

        let ca_file = info
            .get("ca_file")
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .unwrap_or_else(|| tls_dir.join("ca.pem"));
        let ca = std::fs::read(&ca_file)
            .unwrap_or_else(|e| panic!("read the emulator CA {}: {e}", ca_file.display()));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .add_root_certificate(
                reqwest::Certificate::from_pem(&ca).expect("the emulator CA is PEM"),
            )
            .build()
            .expect("build an HTTP client");
        Emulator {
            child,
            info,
            dir,
            http,
        }
    }

    /// A string field of [`Emulator::info`]; panics when absent.
    #[track_caller]
    pub fn field(&self, name: &str) -> &str {
        self.info
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("the emulator's seed line has no {name:?}: {}", self.info))
    }

    /// `https://127.0.0.1:<port>` (ARM and Entra on one origin).
    pub fn url(&self) -> &str {
        self.field("url").trim_end_matches('/')
    }

    pub fn ca_file(&self) -> &Path {
        Path::new(self.field("ca_file"))
    }

    pub fn tenant_id(&self) -> &str {
        self.field("tenant_id")
    }

    pub fn subscription_id(&self) -> &str {
        self.field("subscription_id")
    }

    pub fn api_management_id(&self) -> &str {
        self.field("api_management_id")
    }

    pub fn principal_id(&self) -> &str {
        self.field("principal_id")
    }

    pub fn client_id(&self) -> &str {
        self.field("client_id")
    }

    pub fn client_secret(&self) -> &str {
        self.field("client_secret")
    }

    /// The provider's `ARM_*` / `AZURE_*` environment for this emulator (client-secret
    /// credentials, endpoints and CA), e.g. for [`super::TestCase::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("ARM_SUBSCRIPTION_ID", self.subscription_id()),
            ("ARM_TENANT_ID", self.tenant_id()),
            ("ARM_CLIENT_ID", self.client_id()),
            ("ARM_CLIENT_SECRET", self.client_secret()),
            ("ARM_RESOURCE_MANAGER_ENDPOINT", self.url()),
            ("ARM_AUTHORITY_HOST", self.url()),
            ("ARM_CA_CERT_FILE", &self.ca_file().to_string_lossy()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An HTTP client trusting the emulator's CA.
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// A call to the emulator: `path` is absolute (`/subscriptions/...`, `/_emulator/...`).
    /// Answers the status and the JSON body (`Null` when empty, a string when not JSON).
    #[track_caller]
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.url());
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .unwrap_or_else(|e| panic!("bad HTTP method {method:?}: {e}"));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {url}: {e}\nemulator log:\n{}", self.log()));
        super::status_and_json(response)
    }

    /// A managed-identity token of the seeded APIM instance for `audience`, from the instance
    /// metadata endpoint, as the gateway gets it.
    #[track_caller]
    pub fn managed_identity_token(&self, audience: &str) -> String {
        let url = url::Url::parse_with_params(
            &format!("{}/metadata/identity/oauth2/token", self.url()),
            [
                ("api-version", "2018-02-01"),
                ("resource", audience),
                ("msi_res_id", self.api_management_id()),
            ],
        )
        .expect("metadata URL");
        let response = self
            .http
            .get(url)
            .header("Metadata", "true")
            .send()
            .unwrap_or_else(|e| panic!("managed-identity token request: {e}"));
        let (status, body) = super::status_and_json(response);
        assert_eq!(status, 200, "managed-identity token for {audience}: {body}");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {body}"))
            .to_string()
    }

    /// An ARM bearer token for the seeded client (client-credentials grant).
    #[track_caller]
    pub fn arm_token(&self) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", self.client_id())
            .append_pair("client_secret", self.client_secret())
            .append_pair("scope", "https://management.azure.com/.default")
            .finish();
        let resp = self
            .http
            .post(format!(
                "{}/{}/oauth2/v2.0/token",
                self.url(),
                self.tenant_id()
            ))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap_or_else(|e| panic!("token request: {e}"));
        let v: Value = resp.json().unwrap_or_else(|e| panic!("token answer: {e}"));
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {v}"))
            .to_string()
    }

    /// An ARM call (`path` absolute, `api-version=2024-05-01` added) with a bearer token:
    /// the status and the JSON body. PATCH and DELETE send `If-Match: *`.
    #[track_caller]
    pub fn arm(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version=2024-05-01", self.url());
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("bad HTTP method {method:?}: {e}"));
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(self.arm_token());
        if method == reqwest::Method::PATCH || method == reqwest::Method::DELETE {
            req = req.header("If-Match", "*");
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// [`Emulator::arm`] that panics (with the answer) unless the status is 2xx; answers the
    /// body.
    #[track_caller]
    pub fn arm_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.arm(method, path, body);
        if !(200..300).contains(&status) {
            panic!("ARM {method} {path} answered {status}: {value}");
        }
        value
    }

    /// Every item of a collection of the seeded instance (`namedValues`, `policyFragments`,
    /// `apis`...), all pages followed.
    #[track_caller]
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut url = format!(
            "{}{}/{collection}?api-version=2024-05-01",
            self.url(),
            self.api_management_id()
        );
        loop {
            let response = self
                .http
                .get(&url)
                .bearer_auth(self.arm_token())
                .send()
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let (status, page) = super::status_and_json(response);
            assert_eq!(status, 200, "listing {collection}: {page}");
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            match page["nextLink"].as_str() {
                Some(next) if !next.is_empty() => url = next.to_string(),
                _ => return items,
            }
        }
    }

    /// Creates (or replaces) the API `name` of the seeded instance, served at `/<name>`.
    #[track_caller]
    pub fn create_api(&self, name: &str) {
        self.arm_ok(
            "PUT",
            &format!("{}/apis/{name}", self.api_management_id()),
            Some(serde_json::json!({"properties": {"displayName": name, "path": name, "protocols": ["https"], "serviceUrl": "https://backend.example"}})),
        );
    }

    /// The policy document of API `api` as APIM stores it (`rawxml`); `None` when the API
    /// has no policy (404).
    #[track_caller]
    pub fn api_policy(&self, api: &str) -> Option<String> {
        let (status, body) = self.arm(
            "GET",
            &format!(
                "{}/apis/{api}/policies/policy?format=rawxml",
                self.api_management_id()
            ),
            None,
        );
        match status {
            200 => Some(
                body["properties"]["value"]
                    .as_str()
                    .unwrap_or_else(|| panic!("the policy of {api} has no value: {body}"))
                    .to_string(),
            ),
            404 => None,
            other => panic!("reading the policy of API {api}: {other} {body}"),
        }
    }

    /// Writes the policy document of API `api` (`rawxml`), as someone in the portal would.
    #[track_caller]
    pub fn put_api_policy(&self, api: &str, xml: &str) {
        self.arm_ok(
            "PUT",
            &format!("{}/apis/{api}/policies/policy", self.api_management_id()),
            Some(serde_json::json!({"properties": {"format": "rawxml", "value": xml}})),
        );
    }

    /// `http://127.0.0.1:<port>`: the gateway's plain-HTTP listener, serving the instance's
    /// APIs at `/{api path}/...`.
    pub fn gateway_url(&self) -> &str {
        self.field("gateway_url").trim_end_matches('/')
    }

    /// A GET through the gateway (`path` after `gateway_url`, e.g. `/orders/42`): the status,
    /// the response headers and the body.
    #[track_caller]
    pub fn gateway_get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let url = format!("{}{path}", self.gateway_url());
        let response = self
            .http
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}\nemulator log:\n{}", self.log()));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().unwrap_or_default())
    }

    /// The gateway's request log (`GET /_emulator/gateway/log`), oldest first.
    #[track_caller]
    pub fn gateway_log(&self) -> Vec<Value> {
        let (status, body) = self.call("GET", "/_emulator/gateway/log", None);
        assert_eq!(status, 200, "gateway log: {body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Empties the gateway's internal cache (`DELETE /_emulator/gateway/cache`).
    #[track_caller]
    pub fn clear_gateway_cache(&self) {
        let (status, body) = self.call("DELETE", "/_emulator/gateway/cache", None);
        assert!((200..300).contains(&status), "{status} {body}");
    }

    /// Adds a fault rule (`POST /_emulator/faults`), e.g.
    /// `json!({"method": "PUT", "path": "*/namedValues/*", "status": 429, "retry_after": 1, "count": 8})`.
    #[track_caller]
    pub fn fault(&self, rule: Value) {
        let (status, body) = self.call("POST", "/_emulator/faults", Some(rule));
        assert!(
            (200..300).contains(&status),
            "adding a fault: {status} {body}"
        );
    }

    /// Removes every fault rule.
    #[track_caller]
    pub fn clear_faults(&self) {
        let (status, body) = self.call("DELETE", "/_emulator/faults", None);
        assert!(
            (200..300).contains(&status),
            "clearing faults: {status} {body}"
        );
    }

    /// Every object, by ID (`GET /_emulator/inventory`).
    #[track_caller]
    pub fn inventory(&self) -> Value {
        let (status, body) = self.call("GET", "/_emulator/inventory", None);
        assert_eq!(status, 200, "inventory: {body}");
        body
    }

    /// The request log (`GET /_emulator/requests`).
    #[track_caller]
    pub fn requests(&self) -> Value {
        let (status, body) = self.call("GET", "/_emulator/requests", None);
        assert_eq!(status, 200, "request log: {body}");
        body
    }

    /// The emulator's stderr so far.
    pub fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.dir.path().join("emulator.log")).unwrap_or_default(),
            16 * 1024,
        )
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
