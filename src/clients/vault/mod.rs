//! The Vault (and OpenBao) client: one shared HTTP connection pool, the provider's token
//! (static, or obtained by JWT login and renewed), namespaces, retries with backoff on
//! 5xx/429/connection errors, and one function per endpoint in the submodules.
//!
//! `vaultrs` serves the endpoints it covers (policies); endpoints it does not cover go through
//! the same `reqwest` client in [`Vault::send`]. The provider's token (JWT login, lookup-self,
//! renew-self) is kept in `token.rs`.

pub mod acl;
pub mod audit;
pub mod auth;
pub mod lease;
pub mod mounts;
pub mod policy;
mod token;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{Client, VaultClientSettings, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

/// A JWT login used instead of a static token (for example a CI OIDC token).
#[derive(Clone)]
pub struct JwtLogin {
    /// Auth mount path, e.g. `jwt`.
    pub mount: String,
    /// Role to log in with.
    pub role: String,
    /// The JWT itself.
    pub jwt: String,
}

/// How to reach and authenticate to Vault.
#[derive(Clone)]
pub struct VaultSettings {
    /// Base address, e.g. `https://vault.example.com:8200`.
    pub address: Url,
    /// A static token.
    pub token: Option<String>,
    /// Enterprise namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// Extra trusted CA bundle (PEM).
    pub ca_cert_file: Option<PathBuf>,
    /// Accept any server certificate.
    pub skip_tls_verify: bool,
    /// Retries after the first attempt, for 5xx, 429 and connection errors.
    pub max_retries: u32,
    /// Log in with a JWT instead of a static token.
    pub login: Option<JwtLogin>,
}

/// What went wrong talking to Vault.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// Vault answered with an error status.
    #[error("Vault answered {status} on {path}: {}", if errors.is_empty() { "(no message)".to_string() } else { errors.join("; ") })]
    Api {
        /// HTTP status.
        status: u16,
        /// Vault's `errors`.
        errors: Vec<String>,
        /// The API path.
        path: String,
    },
    /// The request did not get an answer.
    #[error("cannot reach Vault at {address}: {message}")]
    Transport {
        /// Where.
        address: String,
        /// Why.
        message: String,
    },
    /// The provider has no usable credentials or settings.
    #[error("{0}")]
    Config(String),
    /// The answer was not what the API documents.
    #[error("unexpected answer from Vault on {path}: {message}")]
    Decode {
        /// The API path.
        path: String,
        /// Why.
        message: String,
    },
}

impl VaultError {
    /// The HTTP status, when Vault answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// True for 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    fn retryable(&self) -> bool {
        match self {
            VaultError::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            VaultError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// A Vault client shared by every resource of one provider process.
pub struct Vault {
    settings: VaultSettings,
    http: rustify::clients::reqwest::Client,
    lib_settings: VaultClientSettings,
    keeper: Arc<token::TokenKeeper>,
}

/// A per-call view that lets `vaultrs` use the shared HTTP client with the current token.
struct Conn<'a> {
    http: &'a rustify::clients::reqwest::Client,
    middle: EndpointMiddleware,
    settings: &'a VaultClientSettings,
}

impl Client for Conn<'_> {
    fn http(&self) -> &rustify::clients::reqwest::Client {
        self.http
    }
    fn middle(&self) -> &EndpointMiddleware {
        &self.middle
    }
    fn settings(&self) -> &VaultClientSettings {
        self.settings
    }
    fn set_token(&mut self, token: &str) {
        self.middle.token = token.to_string();
    }
}

impl Vault {
    /// Builds the client; no request is made until the first call.
    pub fn new(settings: VaultSettings) -> Result<Vault, VaultError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60));
        if settings.skip_tls_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &settings.ca_cert_file {
            let pem = std::fs::read(path).map_err(|e| {
                VaultError::Config(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                VaultError::Config(format!("{} is not a PEM CA bundle: {e}", path.display()))
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| VaultError::Config(format!("cannot build the HTTP client: {e}")))?;
        let base = settings.address.as_str().trim_end_matches('/').to_string();
        let lib_settings = VaultClientSettingsBuilder::default()
            .address(&base)
            .token("")
            .verify(!settings.skip_tls_verify)
            .ca_certs(Vec::new())
            .build()
            .map_err(|e| VaultError::Config(format!("invalid Vault settings: {e}")))?;
        let source = match (&settings.login, &settings.token) {
            (Some(login), _) => token::Source::Login(login.clone()),
            (None, Some(t)) => token::Source::Static(t.clone()),
            (None, None) => token::Source::Missing,
        };
        let keeper = token::TokenKeeper::new(
            http.clone(),
            base.clone(),
            settings.address.to_string(),
            settings.namespace.clone(),
            settings.max_retries,
            source,
        );
        Ok(Vault {
            http: rustify::clients::reqwest::Client { http, base },
            lib_settings,
            keeper,
            settings,
        })
    }

    /// The configured address.
    pub fn address(&self) -> &Url {
        &self.settings.address
    }

    /// The current token: the configured one (renewed before it expires when it is
    /// renewable), or one obtained by JWT login and renewed or obtained again before it
    /// expires. Acquired once and shared by every call; see `token.rs`.
    pub async fn token(&self) -> Result<String, VaultError> {
        self.keeper.current().await
    }

    fn conn(&self, token: &str) -> Conn<'_> {
        Conn {
            http: &self.http,
            middle: EndpointMiddleware {
                token: token.to_string(),
                version: "v1".into(),
                wrap: None,
                namespace: self.settings.namespace.clone(),
            },
            settings: &self.lib_settings,
        }
    }

    /// Runs a `vaultrs` call with the current token, retrying transient failures.
    async fn call<'s, T, F, Fut>(&'s self, path: &str, f: F) -> Result<T, VaultError>
    where
        F: Fn(Conn<'s>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let token = self.token().await?;
        self.retry(path, f, &token).await
    }

    async fn retry<'s, T, F, Fut>(&'s self, path: &str, f: F, token: &str) -> Result<T, VaultError>
    where
        F: Fn(Conn<'s>) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 0;
        loop {
            let r = f(self.conn(token)).await.map_err(|e| self.map_err(path, e));
            match r {
                Err(e) if e.retryable() && attempt < self.settings.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    fn map_err(&self, path: &str, e: ClientError) -> VaultError {
        match e {
            ClientError::APIError { code, errors } => VaultError::Api {
                status: code,
                errors,
                path: path.to_string(),
            },
            ClientError::RestClientError { source } => match source {
                rustify::errors::ClientError::ServerResponseError { code, content } => {
                    VaultError::Api {
                        status: code,
                        errors: content.into_iter().collect(),
                        path: path.to_string(),
                    }
                }
                other => VaultError::Transport {
                    address: self.settings.address.to_string(),
                    message: other.to_string(),
                },
            },
            other => VaultError::Decode {
                path: path.to_string(),
                message: other.to_string(),
            },
        }
    }

    /// Sends a raw request to `/v1/<path>` (for endpoints `vaultrs` does not cover) and
    /// decodes the JSON answer; an empty answer decodes as `null`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, VaultError> {
        let token = self.token().await?;
        let mut attempt = 0;
        loop {
            match self.send_once(&method, path, body, &token).await {
                Err(e) if e.retryable() && attempt < self.settings.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
        token: &str,
    ) -> Result<T, VaultError> {
        let url = format!("{}/v1/{}", self.http.base, path.trim_start_matches('/'));
        let mut req = self
            .http
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Request", "true");
        if !token.is_empty() {
            req = req.header("X-Vault-Token", token);
        }
        if let Some(ns) = &self.settings.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| VaultError::Transport {
            address: self.settings.address.to_string(),
            message: without_url(&e),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| VaultError::Transport {
            address: self.settings.address.to_string(),
            message: without_url(&e),
        })?;
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
}

/// The transport error without the URL (which holds no secret, but is noise next to ours).
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(u) = e.url() {
        msg = msg.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Exponential backoff from 250 ms, capped at 8 s, with up to 25 % jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(5)).min(8_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base + nanos % (base / 4 + 1))
}
