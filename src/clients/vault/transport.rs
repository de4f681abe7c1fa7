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
//!
//! Redirects: the token travels in `X-Vault-Token`, which reqwest, unlike `Authorization`,
//! keeps on a redirect to another host. So a redirect is followed only within the origin
//! (scheme, host and port) of the configured address; one to elsewhere (a standby sending
//! the client to the active node) is answered as an error naming where it pointed. A 307 is
//! retried at the configured address like a 503: a standby redirects while it cannot
//! forward, e.g. until it knows a newly elected leader.

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
        if resp.status().is_redirection() {
            return Err(redirected(status, path, resp.url(), resp.headers()));
        }
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

/// The most redirects followed within the origin, as reqwest's default policy.
const MAX_REDIRECTS: usize = 10;

/// The client's redirect policy: follow a redirect only to the origin (scheme, host, port) of
/// the request it came from, so that `X-Vault-Token` never reaches another host; stop at any
/// other, and the answer becomes the error of [`redirected`].
pub(super) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_none_or(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// A redirect answer the client did not follow: one to another origin (a standby pointing
/// at the active node), or one without a target it could follow.
fn redirected(status: u16, path: &str, from: &reqwest::Url, headers: &HeaderMap) -> VaultError {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok());
    let elsewhere = location
        .and_then(|l| from.join(l).ok())
        .filter(|to| to.origin() != from.origin());
    let message = match (elsewhere, location) {
        (Some(to), _) => format!(
            "redirected to {to}, another host (or scheme or port) than the configured address; the provider does not send its token to another host. Point `vault.address` at the active node or at a load balancer that reaches it, or let the standby forward requests to the active node (request forwarding)"
        ),
        (None, Some(l)) => format!("a redirect to {l:?} that the client does not follow"),
        (None, None) => "a redirect without a Location".to_string(),
    };
    VaultError::Api {
        status,
        errors: vec![message],
        path: path.to_string(),
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

    /// A loopback HTTP/1.1 server that records the head of every request it gets and
    /// answers each with what `answer` makes of the request line and of its own address.
    struct Loopback {
        addr: std::net::SocketAddr,
        heads: std::sync::Arc<Mutex<Vec<String>>>,
    }

    impl Loopback {
        async fn start(answer: fn(&str, std::net::SocketAddr) -> String) -> Loopback {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let heads = std::sync::Arc::new(Mutex::new(Vec::new()));
            let seen = heads.clone();
            tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.ends_with(b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let line = head.lines().next().unwrap_or_default().to_string();
                    seen.lock().unwrap().push(head);
                    let _ = conn.write_all(answer(&line, addr).as_bytes()).await;
                    let _ = conn.shutdown().await;
                }
            });
            Loopback { addr, heads }
        }

        fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn heads(&self) -> Vec<String> {
            self.heads.lock().unwrap().clone()
        }
    }

    fn answer(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// Records the headers and answers 200 with `{"data": {"where": "other"}}`.
    fn other_host(_: &str, _: std::net::SocketAddr) -> String {
        answer("200 OK", "", r#"{"data":{"where":"other"}}"#)
    }

    fn vault_at(base: &str, policy: reqwest::redirect::Policy) -> Transport {
        let http = reqwest::Client::builder().redirect(policy).build().unwrap();
        Transport::new(http, base.into(), base.into(), None, 0)
    }

    const TOKEN: &str = "s.secret-token";

    /// `GET /v1/<path>` with [`TOKEN`].
    async fn get(t: &Transport, path: &str) -> Result<serde_json::Value, VaultError> {
        t.request(&reqwest::Method::GET, path, TOKEN, None).await.0
    }

    /// Whether a recorded request head carries [`TOKEN`].
    fn carries_token(head: &str) -> bool {
        head.to_ascii_lowercase()
            .contains(&format!("x-vault-token: {TOKEN}"))
    }

    /// A standby answering 307 to the active node on another port: the token never reaches
    /// it, and the error names where the redirect pointed and what to do.
    #[tokio::test]
    async fn a_redirect_to_another_host_is_not_followed_with_the_token() {
        let other = Loopback::start(other_host).await;
        // The standby: every request is redirected to the same path on `other` (held in a
        // static: the answer is a fn pointer, which captures nothing).
        static OTHER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        OTHER.set(other.url()).unwrap();
        let standby = Loopback::start(|line, _| {
            let path = line.split(' ').nth(1).unwrap_or("/");
            let to = format!("{}{path}", OTHER.get().unwrap());
            answer("307 Temporary Redirect", &format!("Location: {to}\r\n"), "")
        })
        .await;

        let e = get(
            &vault_at(&standby.url(), same_origin_redirects()),
            "kv/data/app",
        )
        .await
        .unwrap_err();
        assert_eq!(e.status(), Some(307), "{e}");
        let text = e.to_string();
        for part in [
            &format!("{}/v1/kv/data/app", other.url()),
            "does not send its token to another host",
            "vault.address",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        assert_eq!(standby.heads().len(), 1);
        assert!(carries_token(&standby.heads()[0]));
        assert!(
            other.heads().is_empty(),
            "nothing reached the other host: {:?}",
            other.heads()
        );

        // A standby redirects while it cannot forward: asked again at the same address,
        // never at the other.
        let mut again = vault_at(&standby.url(), same_origin_redirects());
        again.max_retries = 1;
        assert_eq!(
            get(&again, "kv/data/app").await.unwrap_err().status(),
            Some(307)
        );
        assert_eq!(standby.heads().len(), 3);
        assert!(other.heads().is_empty());

        // The hazard the policy closes: reqwest's default policy follows, and sends the
        // custom header along (it only drops Authorization and cookies).
        let followed = get(
            &vault_at(&standby.url(), reqwest::redirect::Policy::default()),
            "kv/data/app",
        )
        .await;
        assert_eq!(followed.unwrap()["data"]["where"], "other");
        let leaked = other.heads();
        assert_eq!(leaked.len(), 1);
        assert!(carries_token(&leaked[0]));
    }

    /// A redirect within the configured origin (a path moved on the same node) is followed,
    /// with the token.
    #[tokio::test]
    async fn a_redirect_within_the_origin_is_followed() {
        let node = Loopback::start(|line, addr| {
            if line.contains("/v1/old") {
                let to = format!("http://{addr}/v1/new");
                answer("307 Temporary Redirect", &format!("Location: {to}\r\n"), "")
            } else if line.contains("/v1/relative") {
                answer("308 Permanent Redirect", "Location: /v1/new\r\n", "")
            } else {
                answer("200 OK", "", r#"{"data":{"where":"new"}}"#)
            }
        })
        .await;
        let t = vault_at(&node.url(), same_origin_redirects());
        for path in ["old", "relative"] {
            assert_eq!(
                get(&t, path).await.unwrap()["data"]["where"],
                "new",
                "{path}"
            );
        }
        let heads = node.heads();
        assert_eq!(heads.len(), 4, "{heads:?}");
        for h in &heads {
            assert!(carries_token(h), "{h}");
        }
        assert!(heads[1].starts_with("GET /v1/new "), "{}", heads[1]);
    }

    /// A redirect loop within the origin ends with an error.
    #[tokio::test]
    async fn a_redirect_loop_ends() {
        let node = Loopback::start(|_, addr| {
            answer(
                "307 Temporary Redirect",
                &format!("Location: http://{addr}/v1/loop\r\n"),
                "",
            )
        })
        .await;
        let t = vault_at(&node.url(), same_origin_redirects());
        let r = get(&t, "loop").await;
        assert!(matches!(r, Err(VaultError::Transport { .. })), "{r:?}");
        assert_eq!(node.heads().len(), MAX_REDIRECTS + 1);
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
