//! One HTTP exchange with Vault, shared by every endpoint and by the token keeper: headers
//! (token, namespace, consistency), retries with backoff, and Vault's error shape.
//!
//! Read-after-write across a cluster: standby nodes of OpenBao (Raft or PostgreSQL storage)
//! and performance standbys of Vault Enterprise answer reads from their own replica, which
//! may lag behind the active node; a mount enabled a moment ago may be unknown to the
//! standby that receives the next request, which then answers 404. Every answer carries the
//! storage index it reflects (`X-Vault-Index`). The client sends back the newest index it
//! has seen with `X-Vault-Inconsistent: forward-active-node`, so a standby that has not
//! caught up forwards the request to the active node instead of answering from stale data
//! (OpenBao: <https://openbao.org/docs/concepts/consistency/>).

use std::sync::Mutex;

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;

use super::VaultError;
use crate::clients::backoff::Backoff;
use crate::clients::transport_error_text;
use crate::log;

const INDEX: &str = "X-Vault-Index";
const INCONSISTENT: &str = "X-Vault-Inconsistent";

/// Where and how requests go.
pub(super) struct Transport {
    pub(super) http: reqwest::Client,
    /// `scheme://host:port[/prefix]` without a trailing `/`.
    pub(super) base: String,
    /// The configured address, for messages.
    pub(super) address: String,
    pub(super) namespace: Option<String>,
    pub(super) max_retries: u32,
    index: Mutex<Option<Seen>>,
}

/// The newest storage index seen in an answer.
struct Seen {
    raw: HeaderValue,
    /// OpenBao's index, decoded (`{"cluster": "...", "value": "42"}` in base64); `None` for
    /// a format this client does not read (Vault Enterprise's), which is then kept as the
    /// last one seen.
    decoded: Option<(String, u64)>,
}

impl Transport {
    pub(super) fn new(
        http: reqwest::Client,
        base: String,
        address: String,
        namespace: Option<String>,
        max_retries: u32,
    ) -> Transport {
        Transport {
            http,
            base,
            address,
            namespace,
            max_retries,
            index: Mutex::new(None),
        }
    }

    /// `method /v1/<path>` with `token` (none when empty), retried on 5xx, 412, 429 and
    /// connection errors; decodes the JSON answer (an empty answer decodes as `null`). Also
    /// tells whether the request was sent more than once.
    pub(super) async fn request<T: DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> (Result<T, VaultError>, bool) {
        let mut attempt = 0;
        loop {
            match self.once(method, path, token, body).await {
                Err(e) if e.retryable() && attempt < self.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(Backoff::VAULT.delay(attempt)).await;
                }
                other => return (other, attempt > 0),
            }
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, VaultError> {
        let path = path.trim_start_matches('/');
        let url = format!("{}/v1/{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Request", "true");
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(index) = self.newest_index() {
            req = req
                .header(INDEX, index)
                .header(INCONSISTENT, "forward-active-node");
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: reqwest::Error| VaultError::Transport {
            address: self.address.clone(),
            message: transport_error_text(&e),
        };
        let started = std::time::Instant::now();
        let sent = req.send().await;
        // Method, path, status and timing only: never a header value or a body.
        if log::enabled(log::Level::Trace) {
            let status = sent.as_ref().map_or_else(
                |_| "no answer".to_string(),
                |r| r.status().as_u16().to_string(),
            );
            log::trace(
                "Vault request",
                &[
                    ("method", method.as_str()),
                    ("path", path),
                    ("status", &status),
                    ("duration_ms", &started.elapsed().as_millis().to_string()),
                ],
            );
        }
        let resp = sent.map_err(transport)?;
        self.observe(resp.headers());
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status >= 400 {
            #[derive(serde::Deserialize, Default)]
            struct Errors {
                #[serde(default)]
                errors: Vec<String>,
            }
            let errs: Errors = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(VaultError::Api {
                status,
                errors: errs.errors,
                path: path.to_string(),
            });
        }
        let slice: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(slice).map_err(|e| VaultError::Decode {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    fn newest_index(&self) -> Option<HeaderValue> {
        let seen = self.index.lock().unwrap_or_else(|p| p.into_inner());
        seen.as_ref().map(|s| s.raw.clone())
    }

    /// Keeps the answer's index when it is newer than the one held.
    fn observe(&self, headers: &HeaderMap) {
        let Some(raw) = headers.get(INDEX) else {
            return;
        };
        let decoded = raw.to_str().ok().and_then(decode_index);
        let mut seen = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let newer = match (seen.as_ref().and_then(|s| s.decoded.as_ref()), &decoded) {
            (Some((cluster, held)), Some((c, v))) if cluster == c => v > held,
            _ => true,
        };
        if newer {
            *seen = Some(Seen {
                raw: raw.clone(),
                decoded,
            });
        }
    }
}

/// OpenBao's `X-Vault-Index`: base64 of `{"cluster": "<id>", "value": "<n>"}`.
fn decode_index(raw: &str) -> Option<(String, u64)> {
    #[derive(serde::Deserialize)]
    struct Index {
        cluster: String,
        value: serde_json::Value,
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()?;
    let i: Index = serde_json::from_slice(&bytes).ok()?;
    let value = match i.value {
        serde_json::Value::String(s) => s.parse().ok()?,
        serde_json::Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some((i.cluster, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> Transport {
        Transport::new(
            reqwest::Client::new(),
            "http://127.0.0.1:1".into(),
            "http://127.0.0.1:1".into(),
            None,
            0,
        )
    }

    fn header(cluster: &str, value: &str) -> HeaderMap {
        let json = format!(r#"{{"cluster":"{cluster}","value":"{value}"}}"#);
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        h.insert(INDEX, HeaderValue::from_str(&b64).unwrap());
        h
    }

    #[test]
    fn decodes_openbaos_index() {
        // As OpenBao 2.7 sends it.
        let raw =
            "eyJjbHVzdGVyIjoiZDZlMjZhZjEtZWYzYi1jODk0LTU5NTQtMGVmNjFiM2JmZDI1IiwidmFsdWUiOiIzMiJ9";
        assert_eq!(
            decode_index(raw),
            Some(("d6e26af1-ef3b-c894-5954-0ef61b3bfd25".to_string(), 32))
        );
        assert_eq!(decode_index("not base64!"), None);
        assert_eq!(decode_index("e30="), None, "{{}} has no cluster");
    }

    #[test]
    fn keeps_the_newest_index_of_a_cluster() {
        let t = transport();
        assert!(t.newest_index().is_none(), "nothing sent before an answer");
        t.observe(&header("a", "40"));
        t.observe(&header("a", "7")); // a lagging standby's answer
        let held = t.newest_index().unwrap();
        assert_eq!(held, header("a", "40")[INDEX]);
        t.observe(&header("a", "41"));
        assert_eq!(t.newest_index().unwrap(), header("a", "41")[INDEX]);
        // Another cluster (the server was replaced): its index replaces ours.
        t.observe(&header("b", "3"));
        assert_eq!(t.newest_index().unwrap(), header("b", "3")[INDEX]);
        // A format we cannot read is kept as the last one seen.
        let mut other = HeaderMap::new();
        other.insert(INDEX, HeaderValue::from_static("v1:opaque"));
        t.observe(&other);
        assert_eq!(t.newest_index().unwrap(), "v1:opaque");
        t.observe(&HeaderMap::new());
        assert_eq!(
            t.newest_index().unwrap(),
            "v1:opaque",
            "an answer without an index changes nothing"
        );
    }
}
