//! One HTTP exchange with ARM, and what its answer says: the failure (ARM's error shape),
//! the wait it asks for, the ETag and request ID.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;
use url::Url;

use super::{ArmRequest, ArmResponse};
use crate::clients::azure::{ArmFailure, Azure, AzureError};
use crate::clients::backoff::random_u64;
use crate::clients::transport_error_text;
use crate::log;

/// What one HTTP exchange gave.
pub(super) struct Exchange {
    pub(super) status: u16,
    pub(super) headers: HeaderMap,
    pub(super) body: Value,
}

impl Exchange {
    pub(super) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub(super) fn request_id(&self) -> Option<String> {
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

    pub(super) fn failure(&self) -> ArmFailure {
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
    pub(super) fn retry_after(&self) -> Option<Duration> {
        for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
            if let Some(ms) = self.header(name).and_then(|v| v.trim().parse::<u64>().ok()) {
                return Some(Duration::from_millis(ms));
            }
        }
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    pub(super) fn into_response(self) -> ArmResponse {
        ArmResponse {
            status: self.status,
            etag: self.etag(),
            request_id: self.request_id(),
            body: self.body,
        }
    }
}

/// A fresh `x-ms-client-request-id`, in the UUID form ARM echoes.
pub(super) fn client_request_id() -> String {
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

impl Azure {
    /// One HTTP exchange. `Err` is "no answer" (connection, TLS, timeout, unreadable body).
    pub(super) async fn exchange(
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
        // What ARM says is left in this principal's bucket: other clients of the principal
        // may have drawn from it.
        let remaining = [
            "x-ms-ratelimit-remaining-subscription-reads",
            "x-ms-ratelimit-remaining-subscription-writes",
            "x-ms-ratelimit-remaining-subscription-deletes",
        ]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok()?.trim().parse::<u32>().ok());
        if let Some(left) = remaining {
            super::pacing::observe(method, left);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn retry_after_headers() {
        let x = |name: &'static str, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, value.parse().unwrap());
            Exchange {
                status: 429,
                headers,
                body: Value::Null,
            }
        };
        assert_eq!(
            x("retry-after", "3").retry_after(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            x("retry-after-ms", "250").retry_after(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            x("x-ms-retry-after-ms", " 40 ").retry_after(),
            Some(Duration::from_millis(40))
        );
        // An HTTP date is not read: the backoff applies instead.
        assert_eq!(
            x("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after(),
            None
        );
    }

    #[test]
    fn client_request_ids_are_uuids() {
        let id = client_request_id();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.as_bytes()[14], b'4', "{id}");
        assert_ne!(id, client_request_id());
    }
}
