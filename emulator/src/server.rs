//! The HTTPS server: TLS accept loop, fault injection, request log, and dispatch to the ARM,
//! Entra, managed-identity and control-plane handlers.

use crate::faults::{lock, Faults};
use crate::jwt::Signer;
use crate::store::State;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Longest request body accepted (policies are the largest bodies, well below this).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Entries kept in the request log.
const MAX_LOG: usize = 10_000;

/// Shared state of a running emulator.
pub struct App {
    /// Base URL, `https://127.0.0.1:<port>`.
    pub url: String,
    /// Where the CA certificate was written.
    pub ca_file: PathBuf,
    /// Token-signing key.
    pub signer: Signer,
    /// Everything ARM and Entra know.
    pub state: Mutex<State>,
    /// Where to persist `state` after each write, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Fault-injection rules.
    pub faults: Faults,
    /// Request log (newest last).
    pub log: Mutex<VecDeque<RequestRecord>>,
    /// Counts down the `x-ms-ratelimit-remaining-*` headers.
    pub ratelimit: AtomicU64,
    /// Whether each request is logged to stderr (`APIM_EMULATOR_LOG_REQUESTS=1`).
    pub log_requests: bool,
    /// The gateway (its URLs, cache, request log and HTTP clients).
    pub gateway: crate::gateway::Gateway,
    /// The Azure-speed profile: ARM's latencies and throttling, when on.
    pub speed: crate::profile::Speed,
}

impl App {
    /// Persists the state if a state file is configured; failures are logged, not fatal, so a
    /// full disk does not take the emulator (and every test using it) down.
    pub fn persist(&self, st: &State) {
        if let Some(path) = &self.state_file {
            if let Err(e) = st.save(path) {
                eprintln!("apim-emulator: cannot write state file: {e}");
            }
        }
    }

    /// The first stdout line / `GET /_emulator/info` document.
    pub fn info(&self) -> Value {
        let st = lock(&self.state);
        json!({
            "url": self.url,
            "gateway_url": self.gateway.url,
            "gateway_https_url": self.gateway.https_url,
            "ca_file": self.ca_file.display().to_string(),
            "tenant_id": st.tenant_id,
            "subscription_id": st.defaults.subscription_id,
            "resource_group": st.defaults.resource_group,
            "api_management_id": st.defaults.api_management_id,
            "principal_id": st.defaults.principal_id,
            "client_id": st.defaults.client_id,
            "client_secret": st.defaults.client_secret,
        })
    }

    /// Remaining-quota figure for the `x-ms-ratelimit-remaining-*` headers: counts down like a
    /// real quota and refills, never reaching zero (only fault rules throttle).
    pub fn ratelimit_remaining(&self) -> u64 {
        let n = self.ratelimit.fetch_add(1, Ordering::Relaxed);
        11_999 - (n % 11_000)
    }
}

/// One entry of `GET /_emulator/requests`. Header values and bodies are never recorded, so
/// neither bearer tokens nor secrets end up in the log.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    /// RFC 3339 time the request arrived.
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Path, as sent.
    pub path: String,
    /// Query string with credential-like parameters redacted.
    pub query: String,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
    /// Time to answer.
    pub duration_ms: u64,
    /// The fault applied, if any (`status`, `drop`, `latency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Who signed in, for a token issued by the Entra token endpoint: the client and how it
    /// proved itself (never the credential itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// Attached to a response (as an extension) by a handler that authenticated someone, for the
/// request log's `principal`.
#[derive(Debug, Clone)]
pub struct Principal(pub String);

/// A request as the handlers see it: body read, path split and percent-decoded.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Raw path.
    pub path: String,
    /// Decoded, non-empty path segments.
    pub segs: Vec<String>,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Peer address (the control plane answers loopback peers only).
    pub peer: SocketAddr,
}

impl Req {
    /// First query parameter with this name (exact match: ARM parameter names are case-sensitive).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header as a string, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Error a connection's service returns to make hyper close the connection without answering.
#[derive(Debug)]
pub struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault rule")
    }
}

impl std::error::Error for DropConnection {}

/// A JSON response.
pub fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// Accepts TLS connections until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                eprintln!("apim-emulator: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("apim-emulator: TLS handshake with {peer} failed: {e}");
                    return;
                }
            };
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move { handle(app, peer, req).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = conn.await {
                if !e.to_string().contains("dropped by a fault rule") {
                    eprintln!("apim-emulator: connection from {peer}: {e}");
                }
            }
        });
    }
}

/// An ARM path (`/subscriptions/...`), which the Azure-speed profile slows and throttles.
fn is_arm(path: &str) -> bool {
    path.get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"))
}

/// Whose bucket an ARM request draws from: the bearer token's `oid` (else `appid`, `sub`);
/// requests without a readable token share one bucket.
fn principal_of(headers: &hyper::HeaderMap) -> String {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| crate::jwt::decode_unverified(t).ok())
        .and_then(|(_, claims)| {
            ["oid", "appid", "sub"]
                .iter()
                .find_map(|k| claims[*k].as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "anonymous".into())
}

fn redact_query(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let lk = k.to_ascii_lowercase();
            let secret = ["secret", "assertion", "token", "password", "sig", "code"]
                .iter()
                .any(|s| lk.contains(s));
            let v = if secret { "REDACTED".into() } else { v };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, DropConnection> {
    let started = Instant::now();
    let time = crate::util::now_rfc3339();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let is_control = path == "/_emulator" || path.starts_with("/_emulator/");

    let mut fault = None;
    let mut answer = None;
    // Under the Azure-speed profile: what is left in the principal's bucket, reported as ARM
    // does in `x-ms-ratelimit-remaining-subscription-*`.
    let mut bucket_left = None;
    if !is_control {
        let d = app.faults.decide(method.as_str(), &path);
        if d.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(d.latency_ms)).await;
            fault = Some(format!("latency {}ms", d.latency_ms));
        }
        if d.drop {
            record(
                &app,
                time,
                &method,
                &path,
                &raw_query,
                0,
                started,
                Some("drop".into()),
                None,
            );
            return Err(DropConnection);
        }
        if let Some((status, retry_after)) = d.status {
            fault = Some(format!("status {status}"));
            answer = Some(crate::arm::error::fault_response(
                &app,
                status,
                retry_after,
                &path,
            ));
        }
        if answer.is_none() && is_arm(&path) {
            let who = principal_of(req.headers());
            match app.speed.decide(method.as_str(), &path, &who) {
                Some(crate::profile::Decision::Throttle(retry_after)) => {
                    fault = Some("throttled (azure profile)".into());
                    answer = Some(crate::arm::error::fault_response(
                        &app,
                        429,
                        Some(retry_after),
                        &path,
                    ));
                }
                Some(crate::profile::Decision::Delay(wait, left)) => {
                    bucket_left = Some(left);
                    tokio::time::sleep(wait).await;
                }
                None => {}
            }
        }
    }
    let resp = match answer {
        Some(r) => r,
        None => {
            let (parts, body) = req.into_parts();
            match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
                Ok(body) => {
                    let r = Req {
                        segs: split_path(&path),
                        query: form_urlencoded::parse(raw_query.as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect(),
                        method: method.clone(),
                        path: path.clone(),
                        headers: parts.headers,
                        body,
                        peer,
                    };
                    dispatch(&app, &r)
                }
                Err(_) => json_response(
                    413,
                    &json!({"error": {"code": "RequestEntityTooLarge", "message": "The request body is too large."}}),
                ),
            }
        }
    };
    let mut resp = resp;
    if let Some(left) = bucket_left {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&left.to_string()) {
            resp.headers_mut()
                .insert(crate::arm::response::quota_header(&method), v);
        }
    }
    let status = resp.status().as_u16();
    let principal = resp.extensions().get::<Principal>().map(|p| p.0.clone());
    record(
        &app, time, &method, &path, &raw_query, status, started, fault, principal,
    );
    Ok(resp)
}

#[allow(clippy::too_many_arguments, reason = "plain record fields")]
fn record(
    app: &App,
    time: String,
    method: &Method,
    path: &str,
    query: &str,
    status: u16,
    started: Instant,
    fault: Option<String>,
    principal: Option<String>,
) {
    let rec = RequestRecord {
        time,
        method: method.to_string(),
        path: path.to_string(),
        query: redact_query(query),
        status,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        fault,
        principal,
    };
    eprintln!(
        "apim-emulator: {} {} -> {}",
        rec.method,
        rec.path,
        if status == 0 {
            "dropped".to_string()
        } else {
            status.to_string()
        }
    );
    let mut log = lock(&app.log);
    if log.len() >= MAX_LOG {
        log.pop_front();
    }
    log.push_back(rec);
}

fn split_path(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

fn dispatch(app: &App, req: &Req) -> Response<Body> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let l: Vec<&str> = lower.iter().map(String::as_str).collect();
    match l.as_slice() {
        ["_emulator", ..] => crate::control::handle(app, req),
        ["metadata", "identity", "oauth2", "token"] => crate::msi::handle(app, req),
        ["oidc", ..] => crate::pipelines::handle(app, req),
        ["subscriptions", ..] => crate::arm::handle(app, req),
        [_, "oauth2", "v2.0", "token"] | [_, "oauth2", "token"] => {
            crate::entra::token(app, req, segs[0])
        }
        [_, "v2.0", ".well-known", "openid-configuration"] => {
            crate::entra::discovery(app, req, segs[0], 2)
        }
        [_, ".well-known", "openid-configuration"] => crate::entra::discovery(app, req, segs[0], 1),
        [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] => {
            crate::entra::jwks(app, req, segs[0])
        }
        _ => json_response(
            404,
            &json!({"error": {"code": "NotFound", "message": format!("No route for {} {}.", req.method, req.path)}}),
        ),
    }
}
