//! The emulator's APIM gateway, from the tests' side: requests through it, its request log
//! and internal cache (`/_emulator/gateway/...`), the APIs requests go to, and [`Echo`], a
//! loopback backend for those APIs that records what reached it.
//!
//! Nothing here knows the provider: what the gateway runs is what APIM holds, and what the
//! tests assert is what reached the backend and what the gateway logged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Emulator;

/// How long one request through the gateway may take (its `send-request`s to Vault have
/// timeouts of their own, well below this).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One request the [`Echo`] backend received.
#[derive(Clone, Debug)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path, without the query string.
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Headers, names as sent.
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// The value of header `name` (case-insensitive); several values are comma-joined.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// The value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Everything received, as text (to search for values that must not be there).
    pub fn text(&self) -> String {
        format!(
            "{} {} {:?} {:?}",
            self.method, self.path, self.query, self.headers
        )
    }
}

/// An HTTP/1.1 backend on a free loopback port: it answers every request `200` with a JSON
/// object of its method, path, query and headers, and keeps what it received. One request per
/// connection (`Connection: close`). Stops accepting on drop.
pub struct Echo {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Echo {
    pub fn start() -> Echo {
        Echo::listen(false)
    }

    /// The same backend answering `200 {"ok":true}` instead of echoing the request: whatever
    /// the gateway's caller receives, then, comes from the gateway itself (to search answers
    /// for secrets).
    pub fn start_quiet() -> Echo {
        Echo::listen(true)
    }

    fn listen(quiet: bool) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo backend");
        let url = format!("http://{}", listener.local_addr().expect("echo address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = echo_one(conn, &r, quiet);
                });
            }
        });
        Echo {
            url,
            received,
            stop,
        }
    }

    /// `http://127.0.0.1:<port>`, an API's `serviceUrl`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The latest request received; panics when there is none.
    #[track_caller]
    pub fn last(&self) -> Received {
        self.received()
            .pop()
            .expect("the echo backend received no request")
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn echo_one(conn: TcpStream, received: &Mutex<Vec<Received>>, quiet: bool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut headers = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.trim_end().split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("content-length") {
                content_length = v.parse().unwrap_or(0);
            }
            headers.push((k, v));
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let r = Received {
        method,
        path: path.to_string(),
        query,
        headers,
    };
    let answer = if quiet {
        json!({"ok": true}).to_string()
    } else {
        json!({
        "method": r.method,
        "path": r.path,
        "query": r.query.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "headers": r.headers.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect::<serde_json::Map<_, _>>(),
        })
        .to_string()
    };
    received.lock().unwrap().push(r);
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    conn.flush()?;
    conn.shutdown(Shutdown::Both)
}

/// A loopback port that accepts connections (the kernel completes the handshake) and never
/// answers: a Vault that hangs. Closed on drop.
pub struct Blackhole {
    _listener: TcpListener,
    url: String,
}

impl Blackhole {
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the black hole");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        Blackhole {
            _listener: listener,
            url,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The gateway's answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// From sending the request to the end of the answer.
    pub elapsed: Duration,
}

impl Answer {
    /// The status line, headers and body, as text (to search for values that must not be
    /// there).
    pub fn text(&self) -> String {
        format!("{} {:?} {}", self.status, self.headers, self.body)
    }
}

/// The gateway's plain-HTTP address (`gateway_url` of the emulator's first line).
pub fn gateway_url(emu: &Emulator) -> String {
    emu.field("gateway_url").trim_end_matches('/').to_string()
}

/// `GET {gateway_url}{path}` (`path` starts with the API's path: `/orders/42`).
#[track_caller]
pub fn get(emu: &Emulator, path: &str) -> Answer {
    let url = format!("{}{path}", gateway_url(emu));
    let started = Instant::now();
    let resp = emu
        .http()
        .get(&url)
        .timeout(CALL_TIMEOUT)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}\nemulator log:\n{}", emu.log()));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.text().unwrap_or_default();
    Answer {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    }
}

/// The gateway's request log, oldest first (`GET /_emulator/gateway/log`).
#[track_caller]
pub fn log(emu: &Emulator) -> Vec<Value> {
    let (status, body) = emu.call("GET", "/_emulator/gateway/log", None);
    assert_eq!(status, 200, "gateway log: {body}");
    body.as_array().cloned().unwrap_or_default()
}

/// The latest entry of the gateway's request log.
#[track_caller]
pub fn last_entry(emu: &Emulator) -> Value {
    log(emu).pop().expect("the gateway's request log is empty")
}

/// Empties the gateway's request log.
#[track_caller]
pub fn clear_log(emu: &Emulator) {
    let (status, body) = emu.call("DELETE", "/_emulator/gateway/log", None);
    assert!(
        (200..300).contains(&status),
        "clear the gateway log: {body}"
    );
}

/// What the gateway's `trace`, `emit-metric` and `log-to-eventhub` policies emitted, oldest
/// first, with their content (`GET /_emulator/gateway/telemetry`): records with `kind`
/// `trace` (`source`, `severity`, `message`, `metadata`), `metric` (`name`, `namespace`,
/// `value`, `dimensions`) or `event` (`logger_id`, `message`), each with `api` and `time`.
#[track_caller]
pub fn telemetry(emu: &Emulator) -> Vec<Value> {
    let (status, body) = emu.call("GET", "/_emulator/gateway/telemetry", None);
    assert_eq!(status, 200, "gateway telemetry: {body}");
    body.as_array().cloned().unwrap_or_default()
}

/// Empties the gateway's telemetry.
#[track_caller]
pub fn clear_telemetry(emu: &Emulator) {
    let (status, body) = emu.call("DELETE", "/_emulator/gateway/telemetry", None);
    assert!(
        (200..300).contains(&status),
        "clear the gateway telemetry: {body}"
    );
}

/// Empties the gateway's internal cache (as when every entry expires).
#[track_caller]
pub fn clear_cache(emu: &Emulator) {
    let (status, body) = emu.call("DELETE", "/_emulator/gateway/cache", None);
    assert!(
        (200..300).contains(&status),
        "clear the gateway cache: {body}"
    );
}

/// The outcomes of a log entry's steps of `policy`, in order.
pub fn outcomes(entry: &Value, policy: &str) -> Vec<String> {
    entry["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["policy"] == policy)
        .map(|s| s["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Whether the request of a log entry was served from the cache entry it looked up (`true`),
/// or claimed the entry to fetch (`false`): a hit is one lookup; a claim is a miss (or an
/// entry due for refresh), then the look at its own claim.
#[track_caller]
pub fn served_from_cache(entry: &Value) -> bool {
    let lookups = outcomes(entry, "cache-lookup-value");
    assert!(
        (1..=2).contains(&lookups.len()),
        "one lookup, two with a claim:\n{}",
        steps_text(entry)
    );
    lookups.len() == 1 && lookups[0].starts_with("cache hit")
}

/// The Vault logins of a log entry: its `send-request`s to `.../login`.
pub fn logins(entry: &Value) -> Vec<String> {
    outcomes(entry, "send-request")
        .into_iter()
        .filter(|o| o.starts_with("POST ") && o.contains("/login "))
        .collect()
}

/// The secret reads of a log entry: its `send-request`s with `GET`.
pub fn reads(entry: &Value) -> Vec<String> {
    outcomes(entry, "send-request")
        .into_iter()
        .filter(|o| o.starts_with("GET "))
        .collect()
}

/// A log entry's steps, one per line (`policy: outcome`), for assertion messages.
pub fn steps_text(entry: &Value) -> String {
    entry["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "  {}: {}",
                s["policy"].as_str().unwrap_or_default(),
                s["outcome"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
        + &entry
            .get("error")
            .map(|e| format!("\n  error: {e}"))
            .unwrap_or_default()
}

/// The API policy skeleton: `<base />` then `inbound_after_base` in inbound, `<base />` in the
/// other sections.
pub fn api_policy_document(inbound_after_base: &str) -> String {
    format!(
        "<policies>\n  <inbound>\n    <base />\n{inbound_after_base}  </inbound>\n  <backend>\n    <base />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n  <on-error>\n    <base />\n  </on-error>\n</policies>"
    )
}

/// Creates API `id` at `path` forwarding to `service_url`, with no subscription required, and,
/// when `policy` is given, its policy (`rawxml`).
#[track_caller]
pub fn create_api(emu: &Emulator, id: &str, path: &str, service_url: &str, policy: Option<&str>) {
    emu.arm_ok(
        "PUT",
        &format!("{}/apis/{id}", emu.api_management_id()),
        Some(json!({"properties": {
            "displayName": id, "path": path, "protocols": ["http", "https"],
            "serviceUrl": service_url, "subscriptionRequired": false,
        }})),
    );
    if let Some(p) = policy {
        emu.put_api_policy(id, p);
    }
}

/// Empties the gateway's managed-identity tokens (as when they expire), so that the next
/// login asks the managed-identity endpoint, where fault rules apply.
#[track_caller]
pub fn forget_tokens(emu: &Emulator) {
    let (status, body) = emu.call("DELETE", "/_emulator/gateway/tokens", None);
    assert!(
        (200..300).contains(&status),
        "forget the gateway's tokens: {body}"
    );
}

/// The managed block's last line.
const BLOCK_END: &str = "<!-- apim-vault-bindings end -->";
/// The header [`add_leftover_probe`] sets.
pub const LEFTOVERS: &str = "X-Leftovers";

/// The variables the managed block uses (`apim-vault...`), read off the policy APIM holds.
pub fn block_variables(policy: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for (at, _) in policy.match_indices("name=\"apim-vault") {
        let start = at + "name=\"".len();
        if let Some(len) = policy[start..].find('"') {
            out.insert(policy[start..start + len].to_string());
        }
    }
    out
}

/// Adds a statement of the API's own right after the managed block: header [`LEFTOVERS`]
/// lists each of the block's variables as `name=value;` (`unset` when it was never set), so
/// the backend shows what the block left in them for later policies.
#[track_caller]
pub fn add_leftover_probe(emu: &Emulator, api: &str) {
    let policy = emu.api_policy(api).expect("the API has a policy");
    if policy.contains(LEFTOVERS) {
        return;
    }
    let vars = block_variables(&policy);
    assert!(
        vars.contains("apim-vault") && vars.iter().any(|v| v.starts_with("apim-vault-login-")),
        "the block's variables: {vars:?}\n{policy}"
    );
    let expr = vars
        .iter()
        .map(|v| {
            format!("\"{v}=\" + context.Variables.GetValueOrDefault(\"{v}\", \"unset\") + \";\"")
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let probe = format!(
        "\n    <set-header name=\"{LEFTOVERS}\" exists-action=\"override\">\n      <value>@({expr})</value>\n    </set-header>"
    );
    let at = policy.find(BLOCK_END).expect("the managed block's end") + BLOCK_END.len();
    emu.put_api_policy(api, &format!("{}{probe}{}", &policy[..at], &policy[at..]));
}

/// What [`add_leftover_probe`]'s header says of a request that reached the backend: the
/// variables still holding a value after the block (with the value's length), and how many
/// variables it listed. `None` when the header did not arrive.
pub fn leftovers(got: &Received) -> Option<(Vec<(String, usize)>, usize)> {
    let probe = got.header(LEFTOVERS)?;
    let mut held = Vec::new();
    let mut seen = 0;
    for item in probe.split(';').filter(|s| !s.is_empty()) {
        let (name, value) = item.split_once('=').unwrap_or((item, ""));
        if !(value.is_empty() || value == "unset") {
            held.push((name.to_string(), value.len()));
        }
        seen += 1;
    }
    Some((held, seen))
}
