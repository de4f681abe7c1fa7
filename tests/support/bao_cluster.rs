//! OpenBao as it runs in production: servers with integrated (Raft) storage on disk,
//! initialised with one unseal key, that can be killed and started again with their data.
//! One node is a persistent single server (for restarts); three make a cluster (for leader
//! loss).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::bao::free_port;
use super::process::tail;
use super::tools::Tools;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

struct Node {
    child: Option<Child>,
    api: String,
    config: PathBuf,
    log: PathBuf,
}

/// `n` OpenBao servers with Raft storage in a temporary folder, initialised, unsealed and (for
/// n > 1) joined into one cluster with every node a voter. Killed on drop.
pub struct BaoCluster {
    nodes: Vec<Node>,
    root_token: String,
    unseal_key: String,
    http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl BaoCluster {
    /// Starts `n` nodes and waits until node 0 is active and every node is an unsealed voter.
    pub fn start(n: usize) -> BaoCluster {
        assert!(n >= 1);
        let dir = tempfile::Builder::new()
            .prefix("apim-bao-raft-")
            .tempdir()
            .expect("create a temporary folder for OpenBao");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            // A standby answers 307 to the active node while it has none; the tests want to
            // see that, not follow it.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("build an HTTP client");
        let mut nodes = Vec::new();
        for i in 0..n {
            let (api_port, cluster_port) = (free_port(), free_port());
            let data = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&data).expect("create a Raft data folder");
            let config = dir.path().join(format!("n{i}.hcl"));
            std::fs::write(
                &config,
                format!(
                    r#"storage "raft" {{
  path                   = "{data}"
  node_id                = "n{i}"
  performance_multiplier = 1
}}
listener "tcp" {{
  address         = "127.0.0.1:{api_port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}
api_addr      = "http://127.0.0.1:{api_port}"
cluster_addr  = "https://127.0.0.1:{cluster_port}"
disable_mlock = true
"#,
                    data = data.display()
                ),
            )
            .expect("write an OpenBao config");
            nodes.push(Node {
                child: None,
                api: format!("http://127.0.0.1:{api_port}"),
                config,
                log: dir.path().join(format!("n{i}.log")),
            });
        }
        let mut cluster = BaoCluster {
            nodes,
            root_token: String::new(),
            unseal_key: String::new(),
            http,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        let init = cluster.api_as(
            0,
            "PUT",
            "sys/init",
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
            None,
        );
        assert_eq!(init.0, 200, "sys/init: {}", init.1);
        cluster.root_token = init.1["root_token"].as_str().unwrap().to_string();
        cluster.unseal_key = init.1["keys_base64"][0].as_str().unwrap().to_string();
        cluster.unseal(0);
        cluster.wait_until("node 0 is active", |c| c.health(0) == Some(200));
        if n > 1 {
            // Promote joiners after 1 s instead of the default 10 s.
            let (s, b) = cluster.api(
                0,
                "POST",
                "sys/storage/raft/autopilot/configuration",
                Some(json!({"server_stabilization_time": "1s"})),
            );
            assert!((200..300).contains(&s), "autopilot configuration: {s} {b}");
            let leader = cluster.nodes[0].api.clone();
            for i in 1..n {
                let (s, b) = cluster.api_as(
                    i,
                    "POST",
                    "sys/storage/raft/join",
                    Some(json!({ "leader_api_addr": leader })),
                    None,
                );
                assert_eq!(s, 200, "node {i} joins: {b}");
                cluster.unseal(i);
            }
            cluster.wait_until("every node is an unsealed voter", |c| {
                c.voters() == n && (0..n).all(|i| matches!(c.health(i), Some(200 | 429)))
            });
        }
        cluster
    }

    /// `http://127.0.0.1:<port>` of node `i`.
    pub fn addr(&self, i: usize) -> &str {
        &self.nodes[i].api
    }

    /// The root token from `sys/init`.
    pub fn token(&self) -> &str {
        &self.root_token
    }

    /// Node `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }

    /// The index of the active node, asked of any node that is running.
    pub fn active(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some())
            .find(|&i| self.health(i) == Some(200))
    }

    /// SIGKILL to node `i` (a crash: no step-down, no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its data and unseals it.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {i} is running");
        self.spawn(i);
        self.unseal(i);
    }

    /// Waits until node `i` has applied everything the active node has: a node that has just
    /// rejoined answers reads from its own replica while it catches up (OpenBao's standbys
    /// serve reads), and a test that reads through it next wants the cluster's state.
    pub fn wait_caught_up(&self, i: usize) {
        self.wait_until(
            &format!("node {i} has caught up with the active node"),
            |c| {
                let Some(active) = c.active() else {
                    return false;
                };
                let (mine, theirs) = (c.local_index(i), c.local_index(active));
                mine.is_some() && mine >= theirs
            },
        );
    }

    /// The storage index node `i` answers a read with (`X-Vault-Index`, OpenBao's
    /// `{"cluster", "value"}` in base64).
    fn local_index(&self, i: usize) -> Option<u64> {
        use base64::Engine;
        let url = format!("{}/v1/sys/policies/acl/default", self.nodes[i].api);
        let resp = self
            .http
            .get(&url)
            .header("X-Vault-Token", &self.root_token)
            .send()
            .ok()?;
        let raw = resp
            .headers()
            .get("X-Vault-Index")?
            .to_str()
            .ok()?
            .to_string();
        let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        v["value"].as_str()?.parse().ok()
    }

    /// Waits until some node is active and every running node is unsealed.
    pub fn wait_healthy(&self) -> usize {
        self.wait_until("an active node and every running node unsealed", |c| {
            c.active().is_some()
                && (0..c.nodes.len())
                    .filter(|&i| c.nodes[i].child.is_some())
                    .all(|i| matches!(c.health(i), Some(200 | 429)))
        });
        self.active().expect("an active node")
    }

    /// One API call to node `i` with the root token (see [`super::Bao::api`]); redirects are
    /// not followed.
    #[track_caller]
    pub fn api(&self, i: usize, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(i, method, path, body, Some(&self.root_token))
    }

    #[track_caller]
    fn api_as(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{}", self.nodes[i].api, path.trim_start_matches('/'));
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self.http.request(m, &url);
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send() {
            Ok(resp) => super::status_and_json(resp),
            Err(e) => (0, Value::String(e.to_string())),
        }
    }

    fn spawn(&mut self, i: usize) {
        let tools = Tools::get();
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open the OpenBao log");
        let mut cmd = Command::new(&tools.bao);
        cmd.arg("server").arg("-config").arg(&node.config);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("VAULT_") || k.starts_with("BAO_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", self._dir.path())
            .current_dir(self._dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        node.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.bao.display())),
        );
        self.wait_until(&format!("node {i} answers"), |c| c.health(i).is_some());
    }

    /// Seals node `i` (`sys/seal` with the root token).
    pub fn seal(&self, i: usize) {
        let (s, b) = self.api(i, "PUT", "sys/seal", None);
        assert!((200..300).contains(&s), "seal node {i}: {s} {b}");
    }

    /// Unseals node `i` with the cluster's key.
    pub fn unseal(&self, i: usize) {
        let (s, b) = self.api_as(
            i,
            "PUT",
            "sys/unseal",
            Some(json!({ "key": self.unseal_key })),
            None,
        );
        assert_eq!(s, 200, "unseal node {i}: {b}");
    }

    /// `sys/health` status of node `i` (200 active, 429 standby, 501 uninitialised, 503
    /// sealed), or `None` when it does not answer.
    fn health(&self, i: usize) -> Option<u16> {
        let (s, _) = self.api_as(i, "GET", "sys/health", None, None);
        (s != 0).then_some(s)
    }

    fn voters(&self) -> usize {
        let Some(active) = self.active() else {
            return 0;
        };
        let (s, b) = self.api(active, "GET", "sys/storage/raft/configuration", None);
        if s != 200 {
            return 0;
        }
        b["data"]["config"]["servers"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|x| x["voter"] == true).count())
    }

    /// A node whose process ended although the test did not kill it: a zombie (exited, not
    /// yet waited for) shows `Z` in `/proc/<pid>/stat`.
    fn exited(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            let Some(child) = n.child.as_ref() else {
                return false;
            };
            std::fs::read_to_string(format!("/proc/{}/stat", child.id())).is_ok_and(|stat| {
                stat.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next())
                    == Some("Z")
            })
        })
    }

    #[track_caller]
    fn wait_until(&self, what: &str, ok: impl Fn(&BaoCluster) -> bool) {
        let started = Instant::now();
        while !ok(self) {
            if let Some(i) = self.exited() {
                panic!(
                    "OpenBao node {i} exited while waiting until {what}:\n{}",
                    tail(&self.log(i), 8 * 1024)
                );
            }
            if started.elapsed() > READY_TIMEOUT {
                let logs: Vec<String> = (0..self.nodes.len())
                    .map(|i| format!("--- node {i}\n{}", tail(&self.log(i), 4 * 1024)))
                    .collect();
                panic!(
                    "OpenBao: not ready after {} s: {what}\n{}",
                    READY_TIMEOUT.as_secs(),
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for BaoCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
