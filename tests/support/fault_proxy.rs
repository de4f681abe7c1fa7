//! A fault-injecting HTTP/1.1 proxy in front of OpenBao: the Vault side's counterpart of the
//! emulator's fault rules. It forwards one request per connection and can, for the next N
//! requests matching a method and path prefix, answer a status of its own without
//! forwarding, forward it only after a delay (a slow server), or forward the request and
//! drop the answer (the write took effect, the client never hears of it). It counts the
//! requests it received, so a test can tell how many logins reached Vault's side.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
enum Action {
    DropAnswer,
    Status(u16),
    Delay(Duration),
}

#[derive(Clone, Debug)]
struct Rule {
    method: String,
    path_prefix: String,
    action: Action,
    left: usize,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    events: Mutex<Vec<String>>,
    /// `METHOD path` of every request received, in order.
    seen: Mutex<Vec<String>>,
}

/// The proxy; stops accepting on drop.
pub struct FaultProxy {
    addr: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("the proxy forwards plain HTTP")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (s, up) = (s.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &s);
                });
            }
        });
        FaultProxy { addr, shared, stop }
    }

    /// `http://127.0.0.1:<port>`, for `VAULT_ADDR`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The next `count` requests `method path_prefix...` are forwarded and their answers
    /// dropped.
    pub fn drop_answers(&self, method: &str, path_prefix: &str, count: usize) {
        self.add(method, path_prefix, Action::DropAnswer, count);
    }

    /// The next `count` requests `method path_prefix...` are answered `status` by the proxy.
    pub fn fail(&self, method: &str, path_prefix: &str, status: u16, count: usize) {
        self.add(method, path_prefix, Action::Status(status), count);
    }

    /// The next `count` requests `method path_prefix...` are forwarded after `delay`.
    pub fn delay(&self, method: &str, path_prefix: &str, delay: Duration, count: usize) {
        self.add(method, path_prefix, Action::Delay(delay), count);
    }

    /// Removes every rule that has not run out.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How many requests `method path` the proxy received (answered by itself or forwarded)
    /// whose path contains `needle`.
    pub fn received(&self, method: &str, needle: &str) -> usize {
        let prefix = format!("{method} ");
        self.shared
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.strip_prefix(&prefix).is_some_and(|p| p.contains(needle)))
            .count()
    }

    /// What the proxy did, e.g. `"dropped the answer to POST /v1/sys/auth/x"`.
    pub fn events(&self) -> Vec<String> {
        self.shared.events.lock().unwrap().clone()
    }

    fn add(&self, method: &str, path_prefix: &str, action: Action, count: usize) {
        self.shared.rules.lock().unwrap().push(Rule {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            action,
            left: count,
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr.trim_start_matches("http://"));
    }
}

/// One request from `client`, forwarded (or not) to `upstream`; the connection then closes.
fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.trim_end().to_string();
            head.push(line);
            continue;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        // One request per upstream connection: the proxy sets its own `Connection`.
        if !lower.starts_with("connection:") {
            head.push(line);
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );

    shared.seen.lock().unwrap().push(format!("{method} {path}"));
    let action = {
        let mut rules = shared.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.left > 0 && r.method == method && path.starts_with(&r.path_prefix))
            .map(|r| {
                r.left -= 1;
                r.action.clone()
            })
    };
    let mut client = client;
    if let Some(Action::Status(status)) = action {
        shared
            .events
            .lock()
            .unwrap()
            .push(format!("answered {status} to {method} {path}"));
        let msg = br#"{"errors":["injected by the test proxy"]}"#;
        write!(
            client,
            "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        client.write_all(msg)?;
        return client.shutdown(Shutdown::Both);
    }

    if let Some(Action::Delay(delay)) = action {
        std::thread::sleep(delay);
    }
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    for line in &head {
        up.write_all(line.as_bytes())?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if let Some(Action::DropAnswer) = action {
        shared
            .events
            .lock()
            .unwrap()
            .push(format!("dropped the answer to {method} {path}"));
        return client.shutdown(Shutdown::Both);
    }
    client.write_all(&answer)?;
    client.shutdown(Shutdown::Both)
}
