//! The ARM request layer: JSON over one connection pool, `api-version=2024-05-01`, retries of
//! 429/5xx/no answer with exponential backoff and jitter (or exactly the `Retry-After` ARM
//! asks for), all within one time budget per operation; long-running operations polled
//! through `Azure-AsyncOperation` (preferred) or `Location`; ETags and `If-Match`.
//!
//! [`Azure::send`] runs one operation: `exchange.rs` is one HTTP exchange, `retry.rs` its
//! retries within the budget, `lro.rs` the polling of a long-running operation, and
//! `verbs.rs` the typed helpers (GET, PUT, PATCH, POST, DELETE, paged lists).
//!
//! Nothing here spawns a task: dropping the future of an operation stops it at once (no
//! further request is sent).

mod exchange;
mod lro;
mod pacing;
mod retry;
mod verbs;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::{Azure, AzureError};
use lro::starts_lro;

/// The API Management api-version every call uses.
pub const API_VERSION: &str = "2024-05-01";

/// Longest wait for one HTTP exchange (within the operation's budget).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

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
}
