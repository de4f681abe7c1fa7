//! An OpenBao dev server for one test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::emulator::Emulator;
use super::postgres::Postgres;
use super::process::tail;
use super::tools::Tools;

const ROOT_TOKEN: &str = "root";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const ATTEMPTS: u32 = 5;

/// An OpenBao dev server (in-memory storage, unsealed, root token `root`, KV v2 mounted at
/// `secret/`) listening on a free loopback port; killed on drop.
pub struct Bao {
    child: Child,
    addr: String,
    log: PathBuf,
    dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl Bao {
    /// `bao server -dev` with no extra configuration.
    pub fn start() -> Bao {
        Bao::start_inner(None, false)
    }

    /// `bao server -dev -config <file>` where the file holds `extra_hcl`, e.g.
    /// `unsafe_allow_api_audit_creation = true`.
    pub fn start_with_config(extra_hcl: &str) -> Bao {
        Bao::start_inner(Some(extra_hcl), false)
    }

    /// `bao server -dev -dev-tls`: HTTPS with a certificate from a CA the server generates
    /// ([`Bao::tls_ca_file`]).
    pub fn start_tls() -> Bao {
        Bao::start_inner(None, true)
    }

    fn start_inner(extra_hcl: Option<&str>, tls: bool) -> Bao {
        let dir = tempfile::Builder::new()
            .prefix("apim-bao-")
            .tempdir()
            .expect("create a temporary folder for OpenBao");
        // The harness's own calls trust any certificate; the provider's are the subject.
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(tls)
            .build()
            .expect("build an HTTP client");
        let config = extra_hcl.map(|hcl| {
            let file = dir.path().join("extra.hcl");
            std::fs::write(&file, hcl).expect("write the extra OpenBao config");
            file
        });

        // The port is found free and released for OpenBao to bind; another process may take
        // it in between, hence the retries.
        let mut failures = Vec::new();
        for attempt in 1..=ATTEMPTS {
            match spawn_once(dir.path(), config.as_deref(), tls, attempt, &http) {
                Ok((child, addr, log)) => {
                    return Bao {
                        child,
                        addr,
                        log,
                        dir,
                        http,
                    }
                }
                Err((failure, retry)) => {
                    if !retry {
                        panic!("OpenBao dev server did not start: {failure}");
                    }
                    failures.push(failure);
                }
            }
        }
        panic!(
            "OpenBao dev server did not start after {ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// The CA certificate (PEM) of a [`Bao::start_tls`] server.
    pub fn tls_ca_file(&self) -> PathBuf {
        self.dir.path().join("tls").join("vault-ca.pem")
    }

    /// `http://127.0.0.1:<port>` (`https://` for [`Bao::start_tls`]), for `VAULT_ADDR` and
    /// provider configurations.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The root token.
    pub fn token(&self) -> &str {
        ROOT_TOKEN
    }

    /// `VAULT_ADDR` and `VAULT_TOKEN` for this server, e.g. for [`super::TestCase::env`].
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".to_string(), self.addr.clone()),
            ("VAULT_TOKEN".to_string(), ROOT_TOKEN.to_string()),
        ]
    }

    /// A folder that lives as long as the server (for audit files, certificates...).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One API call with the root token: `method` is any HTTP method or `LIST`; `path` is
    /// relative to `/v1/` (a leading `/` or `/v1/` is accepted too). Answers the status and
    /// the JSON body (`Null` when empty, a JSON string when the body is not JSON).
    #[track_caller]
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = path.trim_start_matches('/');
        let path = path.strip_prefix("v1/").unwrap_or(path);
        let url = format!("{}/v1/{path}", self.addr);
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .unwrap_or_else(|e| panic!("bad HTTP method {method:?}: {e}"));
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("{method} {url}: {e}\nOpenBao log:\n{}", self.log_tail()));
        super::status_and_json(response)
    }

    /// [`Bao::api`] that panics (with the response) unless the status is 2xx; answers the body.
    #[track_caller]
    pub fn api_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.api(method, path, body);
        if !(200..300).contains(&status) {
            panic!("OpenBao {method} {path} answered {status}: {value}");
        }
        value
    }

    /// The text of the ACL policy `name`, or `None` when there is no such policy.
    #[track_caller]
    pub fn policy(&self, name: &str) -> Option<String> {
        let (status, body) = self.api("GET", &format!("sys/policies/acl/{name}"), None);
        match status {
            200 => Some(
                body["data"]["policy"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            404 => None,
            other => panic!("unexpected status {other} reading policy {name}: {body}"),
        }
    }

    /// Writes the ACL policy `name`.
    #[track_caller]
    pub fn write_policy(&self, name: &str, text: &str) {
        self.api_ok(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": text })),
        );
    }

    /// A new token (`auth/token/create` with `request`: `policies`, `ttl`...).
    #[track_caller]
    pub fn create_token(&self, request: Value) -> String {
        let created = self.api_ok("POST", "auth/token/create", Some(request));
        created["auth"]["client_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no client_token: {created}"))
            .to_string()
    }

    /// `sys/leases/lookup` of `lease_id`: the lease's data, or `None` for "invalid lease".
    #[track_caller]
    pub fn lease(&self, lease_id: &str) -> Option<Value> {
        let (status, body) = self.api(
            "PUT",
            "sys/leases/lookup",
            Some(json!({"lease_id": lease_id})),
        );
        match status {
            200 => Some(body["data"].clone()),
            400 if body.to_string().contains("invalid lease") => None,
            other => panic!("lookup of {lease_id} answered {other}: {body}"),
        }
    }

    /// The database engine at `database/` against `pg` (connection `pg`), with a role per
    /// `(name, default_ttl, max_ttl)` issuing PostgreSQL logins.
    pub fn enable_database(&self, pg: &Postgres, roles: &[(&str, &str, &str)]) {
        self.api_ok(
            "POST",
            "sys/mounts/database",
            Some(json!({"type": "database"})),
        );
        self.api_ok(
            "POST",
            "database/config/pg",
            Some(json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": pg.bao_connection_url(),
                "username": pg.superuser(),
                "password": pg.password(),
                "allowed_roles": "*",
            })),
        );
        for (role, ttl, max_ttl) in roles {
            self.api_ok(
                "POST",
                &format!("database/roles/{role}"),
                Some(json!({
                    "db_name": "pg",
                    "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
                    "default_ttl": ttl,
                    "max_ttl": max_ttl,
                })),
            );
        }
    }

    /// A KV version 1 mount at `mount` in leased-passthrough mode: every read hands out a
    /// lease (with the `ttl` the secret was written with).
    pub fn enable_leased_kv(&self, mount: &str) {
        self.api_ok(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "options": {"version": "1", "leased_passthrough": "true"}})),
        );
    }

    /// A JWT auth mount at `mount` trusting the emulator's Entra tokens (v1 issuer, discovery
    /// under the emulator's CA): what `apim_vault_auth_backend` makes, made through the API.
    pub fn trust_emulator(&self, emu: &Emulator, mount: &str) {
        let issuer = format!("{}/{}/", emu.url(), emu.tenant_id());
        let ca = std::fs::read_to_string(emu.ca_file()).expect("read the emulator CA");
        self.api_ok(
            "POST",
            &format!("sys/auth/{mount}"),
            Some(json!({"type": "jwt"})),
        );
        self.api_ok(
            "POST",
            &format!("auth/{mount}/config"),
            Some(json!({
                "oidc_discovery_url": issuer,
                "oidc_discovery_ca_pem": ca,
                "bound_issuer": issuer,
            })),
        );
    }

    /// A `jwt` role `name` at the JWT mount `mount` for the emulator APIM instance's identity
    /// (its `oid` and `tid` bound, `user_claim = "oid"`) and `audience`; `settings` adds
    /// fields (`token_policies`, `token_ttl`...).
    pub fn emulator_role(
        &self,
        emu: &Emulator,
        mount: &str,
        name: &str,
        audience: &str,
        settings: Value,
    ) {
        let mut role = json!({
            "role_type": "jwt",
            "bound_audiences": [audience],
            "user_claim": "oid",
            "bound_claims": {"oid": emu.principal_id(), "tid": emu.tenant_id()},
        });
        for (k, v) in settings.as_object().into_iter().flatten() {
            role[k] = v.clone();
        }
        self.api_ok("POST", &format!("auth/{mount}/role/{name}"), Some(role));
    }

    fn log_tail(&self) -> String {
        tail(&self.log(), 8 * 1024)
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback TCP port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// Starts one dev server and waits for `/v1/sys/health`. On failure: the reason, and whether
/// another port is worth a try.
fn spawn_once(
    dir: &Path,
    config: Option<&Path>,
    tls: bool,
    attempt: u32,
    http: &reqwest::blocking::Client,
) -> Result<(Child, String, PathBuf), (String, bool)> {
    let tools = Tools::get();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = dir.join(format!("bao-{attempt}.log"));
    let log_file = std::fs::File::create(&log).expect("create the OpenBao log");
    let mut cmd = Command::new(&tools.bao);
    cmd.args([
        "server",
        "-dev",
        &format!("-dev-root-token-id={ROOT_TOKEN}"),
        &format!("-dev-listen-address={listen}"),
    ]);
    if let Some(file) = config {
        cmd.arg("-config").arg(file);
    }
    if tls {
        std::fs::create_dir_all(dir.join("tls")).expect("create the TLS folder");
        cmd.arg("-dev-tls")
            .arg(format!("-dev-tls-cert-dir={}", dir.join("tls").display()));
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("VAULT_") || k.starts_with("BAO_") {
            cmd.env_remove(&key);
        }
    }
    // HOME: the dev server stores its root token through the token helper (~/.vault-token).
    cmd.env("HOME", dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("clone the log handle"))
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.bao.display()));

    let addr = format!("{}://{listen}", if tls { "https" } else { "http" });
    let health = format!("{addr}/v1/sys/health");
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let retry = text.contains("address already in use");
            return Err((
                format!(
                    "`bao server -dev` on {listen} exited with {status}:\n{}",
                    tail(&text, 8 * 1024)
                ),
                retry,
            ));
        }
        if let Ok(response) = http.get(&health).timeout(Duration::from_secs(2)).send() {
            if response.status().as_u16() == 200 {
                return Ok((child, addr, log));
            }
        }
        if started.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err((
                format!(
                    "`bao server -dev` on {listen} not healthy after {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    tail(&text, 8 * 1024)
                ),
                false,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
