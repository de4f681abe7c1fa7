//! The ARM request layer: JSON over one connection pool, `api-version=2024-05-01`, retries of
//! 429/5xx/no answer with exponential backoff and jitter (or exactly the `Retry-After` ARM
//! asks for), all within one time budget per operation; long-running operations polled
//! through `Azure-AsyncOperation` (preferred) or `Location`; ETags and `If-Match`.
//!
//! Nothing here spawns a task: dropping the future of an operation stops it at once (no
//! further request is sent).

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{ArmFailure, Azure, AzureError};
use crate::clients::backoff::{random_u64, Backoff};
use crate::clients::transport_error_text;
use crate::log;

/// The API Management api-version every call uses.
pub const API_VERSION: &str = "2024-05-01";

/// Longest wait for one HTTP exchange (within the operation's budget).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Poll interval of a long-running operation whose answer has no `Retry-After`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One ARM operation: a request, plus what it is about for messages.
#[derive(Debug, Clone)]
pub struct ArmRequest {
    /// HTTP method.
    pub method: Method,
    /// The ARM ID (`/subscriptions/...`) or an absolute URL from ARM (a `nextLink`).
    pub path: String,
    /// Extra query parameters (`api-version` is added for paths).
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// `If-Match` value (an ETag as ARM returned it, or `*`).
    pub if_match: Option<String>,
    /// What the operation is, for messages: e.g. "reading named value x of API Management
    /// service apim1 (resource group rg1, subscription …)".
    pub what: String,
    /// Follow a long-running operation to its end (on by default for writes).
    pub follow_lro: bool,
    /// The `api-version` for an ARM ID path: [`API_VERSION`] unless the call is to another
    /// resource provider.
    pub api_version: &'static str,
}

impl ArmRequest {
    /// A request for an ARM ID or an absolute URL from ARM.
    pub fn new(method: Method, path: impl Into<String>, what: impl Into<String>) -> ArmRequest {
        let follow_lro = method != Method::GET && method != Method::HEAD;
        ArmRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            if_match: None,
            what: what.into(),
            follow_lro,
            api_version: API_VERSION,
        }
    }

    /// Uses another `api-version` (for a call outside Microsoft.ApiManagement).
    pub fn api_version(mut self, version: &'static str) -> ArmRequest {
        self.api_version = version;
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: &str) -> ArmRequest {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: Value) -> ArmRequest {
        self.body = Some(body);
        self
    }

    /// Sets `If-Match`.
    pub fn if_match(mut self, etag: Option<&str>) -> ArmRequest {
        self.if_match = etag.map(str::to_string);
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    /// HTTP status of the (final) answer.
    pub status: u16,
    /// JSON body; `Null` when empty.
    pub body: Value,
    /// `ETag` header (or the body's `etag`), as ARM wrote it.
    pub etag: Option<String>,
    /// `x-ms-request-id`.
    pub request_id: Option<String>,
}

impl ArmResponse {
    /// Decodes the body.
    pub fn decode<T: DeserializeOwned>(self, what: &str) -> Result<Tagged<T>, AzureError> {
        let value = serde_json::from_value(self.body).map_err(|e| AzureError::Decode {
            what: what.to_string(),
            message: e.to_string(),
            request_id: self.request_id.clone(),
        })?;
        Ok(Tagged {
            value,
            etag: self.etag,
            request_id: self.request_id,
        })
    }
}

/// A decoded answer with its ETag, to pass back as `If-Match` on the next write.
#[derive(Debug, Clone)]
pub struct Tagged<T> {
    /// The decoded body.
    pub value: T,
    /// The entity's ETag, as ARM wrote it (quotes included).
    pub etag: Option<String>,
    /// `x-ms-request-id` of the answer.
    pub request_id: Option<String>,
}

/// What one HTTP exchange gave.
struct Exchange {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    fn request_id(&self) -> Option<String> {
        self.header("x-ms-request-id")
    }

    fn etag(&self) -> Option<String> {
        self.header("etag").or_else(|| {
            self.body
                .get("etag")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    fn failure(&self) -> ArmFailure {
        let err = self.body.get("error").unwrap_or(&self.body);
        let mut message = err
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(details) = err.get("details").and_then(Value::as_array) {
            let parts: Vec<String> = details
                .iter()
                .filter_map(|d| {
                    let msg = d.get("message").and_then(Value::as_str)?;
                    Some(match d.get("target").and_then(Value::as_str) {
                        Some(t) if !t.is_empty() => format!("{t}: {msg}"),
                        _ => msg.to_string(),
                    })
                })
                .collect();
            if !parts.is_empty() {
                let joined = parts.join("; ");
                message = Some(match message {
                    Some(m) => format!("{} {joined}", m.trim_end()),
                    None => joined,
                });
            }
        }
        ArmFailure {
            status: self.status,
            code: err.get("code").and_then(Value::as_str).map(str::to_string),
            message,
            request_id: self.request_id(),
        }
    }

    /// How long ARM asked to wait: `retry-after-ms`, `x-ms-retry-after-ms`, `Retry-After`
    /// (seconds).
    fn retry_after(&self) -> Option<Duration> {
        for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
            if let Some(ms) = self.header(name).and_then(|v| v.trim().parse::<u64>().ok()) {
                return Some(Duration::from_millis(ms));
            }
        }
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    fn into_response(self) -> ArmResponse {
        ArmResponse {
            status: self.status,
            etag: self.etag(),
            request_id: self.request_id(),
            body: self.body,
        }
    }
}

/// A fresh `x-ms-client-request-id`, in the UUID form ARM echoes.
fn client_request_id() -> String {
    let a = random_u64();
    let b = random_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// The state of one operation: its deadline and what happened so far.
struct Budget {
    started: Instant,
    deadline: Instant,
    total: Duration,
    attempts: u32,
}

impl Budget {
    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The status of a long-running operation (`Azure-AsyncOperation` body).
#[derive(Deserialize)]
struct OperationStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Deserialize)]
struct OperationError {
    code: Option<String>,
    message: Option<String>,
}

/// Where an operation stands after one status answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LroState {
    Running,
    Succeeded,
    /// `Failed` or `Canceled` (or another terminal failure), with the error code and message.
    Failed(String, Option<String>, Option<String>),
}

/// Reads an `Azure-AsyncOperation` status body. Unknown statuses count as still running,
/// as ARM documents ("any other value means the operation is still running").
pub(crate) fn lro_state(body: &Value) -> LroState {
    let parsed: OperationStatus = serde_json::from_value(body.clone()).unwrap_or(OperationStatus {
        status: String::new(),
        error: None,
    });
    match parsed.status.to_ascii_lowercase().as_str() {
        "succeeded" => LroState::Succeeded,
        "failed" | "canceled" | "cancelled" => {
            let (code, message) = parsed
                .error
                .map(|e| (e.code, e.message))
                .unwrap_or((None, None));
            LroState::Failed(parsed.status, code, message)
        }
        _ => LroState::Running,
    }
}

/// Whether a write's first answer starts a long-running operation.
fn starts_lro(x: &Exchange) -> bool {
    let has_headers =
        x.headers.contains_key("azure-asyncoperation") || x.headers.contains_key("location");
    match x.status {
        202 => true,
        200 | 201 if has_headers => {
            let state = x
                .body
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            !matches!(
                state.as_deref(),
                None | Some("succeeded" | "failed" | "canceled")
            )
        }
        _ => false,
    }
}

impl Azure {
    /// The URL of an ARM ID (percent-encoding each segment) or an absolute URL from ARM,
    /// which must be on the ARM endpoint's origin: the token is never sent anywhere else.
    fn url_for(&self, req: &ArmRequest) -> Result<Url, AzureError> {
        let mut url = if req.path.starts_with('/') {
            let mut url = self.endpoint.clone();
            {
                let mut segs = url.path_segments_mut().map_err(|_| {
                    AzureError::Config(format!(
                        "the ARM endpoint {} cannot have a path",
                        self.endpoint
                    ))
                })?;
                segs.pop_if_empty();
                segs.extend(req.path.trim_start_matches('/').split('/'));
            }
            url.query_pairs_mut()
                .append_pair("api-version", req.api_version);
            url
        } else {
            self.checked_url(&req.path, &req.what)?
        };
        if !req.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &req.query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// An absolute URL from an ARM answer, checked to be on the ARM endpoint's origin.
    fn checked_url(&self, raw: &str, what: &str) -> Result<Url, AzureError> {
        let url = self.endpoint.join(raw).map_err(|e| AzureError::Decode {
            what: what.to_string(),
            message: format!("ARM gave the URL {raw:?}, which is not valid: {e}"),
            request_id: None,
        })?;
        if url.origin() != self.endpoint.origin() {
            return Err(AzureError::Decode {
                what: what.to_string(),
                message: format!(
                    "ARM pointed to {}, which is not on the ARM endpoint {}; the provider does not send its token there",
                    url.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                ),
                request_id: None,
            });
        }
        Ok(url)
    }

    /// Runs one operation: the request with retries, then, for a write that starts a
    /// long-running operation, its polling and the final GET. All within
    /// [`Azure::operation_timeout`].
    pub async fn send(&self, req: ArmRequest) -> Result<ArmResponse, AzureError> {
        let started = Instant::now();
        let mut budget = Budget {
            started,
            deadline: started + self.operation_timeout,
            total: self.operation_timeout,
            attempts: 0,
        };
        let url = self.url_for(&req)?;
        let first = self
            .exchange_with_retries(&req.method, &url, &req, &mut budget)
            .await?;
        if !req.follow_lro || !starts_lro(&first) {
            return Ok(first.into_response());
        }
        self.follow(&req, &url, first, &mut budget).await
    }

    /// GET of an ARM ID, decoded.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let mut req = ArmRequest::new(Method::GET, path, what);
        for (k, v) in query {
            req = req.query(k, v);
        }
        self.send(req).await?.decode(what)
    }

    /// PUT of a JSON body to an ARM ID (following a long-running operation), decoded.
    pub async fn put_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Value,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let req = ArmRequest::new(Method::PUT, path, what)
            .json(body)
            .if_match(if_match);
        self.send(req).await?.decode(what)
    }

    /// PATCH of a JSON body to an ARM ID (following a long-running operation), decoded.
    pub async fn patch_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Value,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let req = ArmRequest::new(Method::PATCH, path, what)
            .json(body)
            .if_match(if_match);
        self.send(req).await?.decode(what)
    }

    /// POST to an ARM ID (an action such as `listValue`), decoded.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let mut req = ArmRequest::new(Method::POST, path, what);
        req.body = body;
        self.send(req).await?.decode(what)
    }

    /// DELETE of an ARM ID. A 404 is success: the object is already gone.
    pub async fn delete(
        &self,
        path: &str,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<(), AzureError> {
        let req = ArmRequest::new(Method::DELETE, path, what).if_match(if_match);
        match self.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// GET of a collection, following `nextLink` to the last page.
    pub async fn list_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Vec<T>, AzureError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(default)]
            next_link: Option<String>,
        }
        let mut out = Vec::new();
        let mut req = ArmRequest::new(Method::GET, path, what);
        for (k, v) in query {
            req = req.query(k, v);
        }
        // A bound on pages, so that a server that loops its nextLink cannot hold us forever.
        for _ in 0..10_000 {
            let page: Page<T> = self.send(req).await?.decode(what)?.value;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => req = ArmRequest::new(Method::GET, next, what),
                None => return Ok(out),
            }
        }
        Err(AzureError::Decode {
            what: what.to_string(),
            message: "more than 10000 pages: the nextLink chain does not end".into(),
            request_id: None,
        })
    }

    /// Polls a long-running operation to its end and returns the final resource.
    async fn follow(
        &self,
        req: &ArmRequest,
        url: &Url,
        first: Exchange,
        budget: &mut Budget,
    ) -> Result<ArmResponse, AzureError> {
        let what = &req.what;
        let async_op = first.header("azure-asyncoperation");
        let location = first.header("location");
        let mut wait = first.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
        let get = Method::GET;
        if let Some(op) = async_op {
            let op_url = self.checked_url(&op, what)?;
            loop {
                self.pause(wait, budget, what, None).await?;
                let poll = self
                    .exchange_with_retries(&get, &op_url, req, budget)
                    .await?;
                match lro_state(&poll.body) {
                    LroState::Running => {
                        wait = poll.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
                    }
                    LroState::Succeeded => break,
                    LroState::Failed(status, code, message) => {
                        return Err(AzureError::OperationFailed {
                            what: what.clone(),
                            status,
                            code,
                            message,
                            request_id: poll.request_id(),
                        })
                    }
                }
            }
            return self
                .final_state(req, url, location.as_deref(), budget)
                .await;
        }
        if let Some(loc) = location {
            let loc_url = self.checked_url(&loc, what)?;
            loop {
                self.pause(wait, budget, what, None).await?;
                let poll = self
                    .exchange_with_retries(&get, &loc_url, req, budget)
                    .await?;
                if poll.status == 202 {
                    wait = poll.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
                    continue;
                }
                if poll.body.is_null() && (req.method == Method::PUT || req.method == Method::PATCH)
                {
                    return self.final_state(req, url, None, budget).await;
                }
                return Ok(poll.into_response());
            }
        }
        // A 202 with nowhere to poll: the write was accepted and there is nothing to follow.
        Ok(first.into_response())
    }

    /// After a successful operation: the resource itself for PUT/PATCH (GET on `Location`,
    /// which ARM documents as the final state, or on the request URL); nothing for DELETE.
    async fn final_state(
        &self,
        req: &ArmRequest,
        url: &Url,
        location: Option<&str>,
        budget: &mut Budget,
    ) -> Result<ArmResponse, AzureError> {
        if req.method == Method::DELETE {
            return Ok(ArmResponse {
                status: 200,
                body: Value::Null,
                etag: None,
                request_id: None,
            });
        }
        let target = match location {
            Some(l) if req.method != Method::POST => self.checked_url(l, &req.what)?,
            _ => {
                // The request URL without the write's own query parameters but api-version.
                let mut u = url.clone();
                let keep: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k == "api-version")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(keep);
                u
            }
        };
        let x = self
            .exchange_with_retries(&Method::GET, &target, req, budget)
            .await?;
        Ok(x.into_response())
    }

    /// Sleeps `wait`, or fails when that would pass the deadline.
    async fn pause(
        &self,
        wait: Duration,
        budget: &Budget,
        what: &str,
        last: Option<String>,
    ) -> Result<(), AzureError> {
        if wait > budget.left() {
            return Err(AzureError::Timeout {
                what: what.to_string(),
                attempts: budget.attempts,
                budget: budget.total,
                last,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// One request, retried on 429, 5xx and no answer; an error status becomes an
    /// [`AzureError`].
    async fn exchange_with_retries(
        &self,
        method: &Method,
        url: &Url,
        req: &ArmRequest,
        budget: &mut Budget,
    ) -> Result<Exchange, AzureError> {
        let what = &req.what;
        let client_request_id = client_request_id();
        let mut retries = 0u32;
        loop {
            budget.attempts += 1;
            let left = budget.left();
            let attempt = self.exchange(method, url, req, &client_request_id);
            let outcome = match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), attempt).await {
                Ok(r) => r?,
                Err(_) if budget.left().is_zero() => {
                    return Err(AzureError::Timeout {
                        what: what.clone(),
                        attempts: budget.attempts,
                        budget: budget.total,
                        last: Some("no answer before the deadline".into()),
                    })
                }
                Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            // What the retry would wait for, and the error to give if it cannot.
            let (wait, asked, failure_text, final_error) = match outcome {
                Ok(x) if x.status < 400 => return Ok(x),
                Ok(x) if !AzureError::retryable_status(x.status) => {
                    return Err(AzureError::Api {
                        what: what.clone(),
                        failure: Box::new(x.failure()),
                    })
                }
                Ok(x) => {
                    let failure = x.failure();
                    let asked = x.retry_after();
                    let text = failure.to_string();
                    let err = if x.status == 429 {
                        AzureError::Throttled {
                            what: what.clone(),
                            attempts: budget.attempts,
                            waited: budget.started.elapsed(),
                            reason: String::new(),
                            last: Box::new(failure),
                        }
                    } else {
                        AzureError::Api {
                            what: what.clone(),
                            failure: Box::new(failure),
                        }
                    };
                    (Backoff::ARM.wait(retries + 1, asked), asked, text, err)
                }
                Err(message) => {
                    let err = AzureError::Transport {
                        what: what.clone(),
                        endpoint: self.endpoint.to_string(),
                        message: message.clone(),
                    };
                    (Backoff::ARM.delay(retries + 1), None, message, err)
                }
            };
            if retries >= self.max_retries {
                return Err(with_reason(
                    final_error,
                    format!("the provider gave up after {retries} retries"),
                ));
            }
            if wait > budget.left() {
                return Err(match final_error {
                    AzureError::Throttled { .. } => with_reason(
                        final_error,
                        format!(
                            "waiting the {:.1} s {} would pass the operation timeout of {} s ({:.1} s left)",
                            wait.as_secs_f64(),
                            if asked.is_some() { "it asked for" } else { "of the next backoff" },
                            budget.total.as_secs(),
                            budget.left().as_secs_f64()
                        ),
                    ),
                    _ => AzureError::Timeout {
                        what: what.clone(),
                        attempts: budget.attempts,
                        budget: budget.total,
                        last: Some(failure_text),
                    },
                });
            }
            retries += 1;
            if log::enabled(log::Level::Debug) {
                log::debug(
                    "retrying an ARM request",
                    &[
                        ("operation", what),
                        ("last", &failure_text),
                        ("wait_ms", &wait.as_millis().to_string()),
                        ("retry", &retries.to_string()),
                    ],
                );
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange. `Err` is "no answer" (connection, TLS, timeout, unreadable body).
    async fn exchange(
        &self,
        method: &Method,
        url: &Url,
        req: &ArmRequest,
        client_request_id: &str,
    ) -> Result<Result<Exchange, String>, AzureError> {
        let token = self.credentials.token(self.scope).await?;
        let mut r = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token)
            .header("accept", "application/json")
            .header("x-ms-client-request-id", client_request_id);
        // The body and If-Match belong to the write itself, not to its polls.
        if method == req.method {
            if let Some(tag) = &req.if_match {
                r = r.header("if-match", tag);
            }
            if let Some(body) = &req.body {
                r = r.json(body);
            } else if *method == Method::POST {
                r = r.header("content-length", "0");
            }
        }
        let started = std::time::Instant::now();
        let sent = r.send().await;
        // Method, path (no query), status, timing and request IDs only: never the bearer
        // token, another header value or a body.
        if log::enabled(log::Level::Trace) {
            let (status, request_id) = match &sent {
                Ok(resp) => (
                    resp.status().as_u16().to_string(),
                    resp.headers()
                        .get("x-ms-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string(),
                ),
                Err(_) => ("no answer".to_string(), String::new()),
            };
            log::trace(
                "ARM request",
                &[
                    ("method", method.as_str()),
                    ("path", url.path()),
                    ("status", &status),
                    ("duration_ms", &started.elapsed().as_millis().to_string()),
                    ("x-ms-request-id", &request_id),
                    ("x-ms-client-request-id", client_request_id),
                ],
            );
        }
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => return Ok(Err(transport_error_text(&e))),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Ok(Err(transport_error_text(&e))),
        };
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if status >= 400 => {
                    // A gateway's HTML error page: keep a short, printable excerpt as the message.
                    let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
                    serde_json::json!({"error": {"message": text.trim()}})
                }
                Err(e) => {
                    return Err(AzureError::Decode {
                        what: req.what.clone(),
                        message: format!("the answer ({status}) is not JSON: {e}"),
                        request_id: headers
                            .get("x-ms-request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                    })
                }
            }
        };
        Ok(Ok(Exchange {
            status,
            headers,
            body,
        }))
    }
}

fn with_reason(e: AzureError, reason: String) -> AzureError {
    match e {
        AzureError::Throttled {
            what,
            attempts,
            waited,
            last,
            ..
        } => AzureError::Throttled {
            what,
            attempts,
            waited,
            reason,
            last,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lro_states() {
        assert_eq!(
            lro_state(&json!({"status": "InProgress"})),
            LroState::Running
        );
        assert_eq!(lro_state(&json!({"status": "Accepted"})), LroState::Running);
        assert_eq!(
            lro_state(&json!({"status": "Succeeded"})),
            LroState::Succeeded
        );
        assert_eq!(
            lro_state(
                &json!({"status": "Failed", "error": {"code": "ValidationError", "message": "bad"}})
            ),
            LroState::Failed(
                "Failed".into(),
                Some("ValidationError".into()),
                Some("bad".into())
            )
        );
        assert_eq!(
            lro_state(&json!({"status": "Canceled"})),
            LroState::Failed("Canceled".into(), None, None)
        );
        assert_eq!(lro_state(&json!("garbage")), LroState::Running);
    }

    #[test]
    fn operation_failed_message() {
        let e = AzureError::OperationFailed {
            what: "creating named value x".into(),
            status: "Failed".into(),
            code: Some("ValidationError".into()),
            message: Some("bad".into()),
            request_id: Some("r".into()),
        };
        assert_eq!(
            e.to_string(),
            "creating named value x: the long-running operation ended Failed with ValidationError: bad (request ID r)"
        );
    }

    #[test]
    fn failure_reads_details() {
        let x = Exchange {
            status: 400,
            headers: HeaderMap::new(),
            body: json!({"error": {"code": "ValidationError", "message": "One or more fields contain incorrect values:",
                "details": [{"code": "ValidationError", "target": "displayName", "message": "too long"}]}}),
        };
        let f = x.failure();
        assert_eq!(f.code.as_deref(), Some("ValidationError"));
        assert_eq!(
            f.message.as_deref(),
            Some("One or more fields contain incorrect values: displayName: too long")
        );
    }

    #[test]
    fn client_request_ids_are_uuids() {
        let id = client_request_id();
        assert_eq!(id.len(), 36, "{id}");
    }

    #[test]
    fn lro_start_detection() {
        let mut h = HeaderMap::new();
        h.insert("azure-asyncoperation", "https://x/op".parse().unwrap());
        let x = |status, body| Exchange {
            status,
            headers: h.clone(),
            body,
        };
        assert!(starts_lro(&x(
            201,
            json!({"properties": {"provisioningState": "InProgress"}})
        )));
        assert!(!starts_lro(&x(
            200,
            json!({"properties": {"provisioningState": "Succeeded"}})
        )));
        assert!(!starts_lro(&x(200, json!({"properties": {}}))));
        assert!(starts_lro(&x(202, Value::Null)));
        let plain = Exchange {
            status: 201,
            headers: HeaderMap::new(),
            body: json!({"properties": {"provisioningState": "InProgress"}}),
        };
        assert!(!starts_lro(&plain));
    }
}
