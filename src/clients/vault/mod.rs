//! The Vault (and OpenBao) client: one shared HTTP connection pool, the provider's token
//! (static, or obtained by JWT login and renewed), namespaces, retries with backoff on
//! 5xx/412/429/connection errors, read-after-write across a cluster's standbys, and one
//! function per endpoint in the submodules.
//!
//! Every request goes through [`Vault::send`] and `transport.rs` (headers, retries, the
//! consistency index, errors). The provider's token (JWT login, lookup-self, renew-self) is
//! kept in `token.rs`.

pub mod acl;
pub mod audit;
pub mod auth;
mod fields;
pub mod lease;
pub mod mounts;
mod path;
pub mod policy;
pub mod role;
pub mod secrets;
mod token;
mod transport;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use transport::Transport;

/// A JWT login used instead of a static token (for example a CI OIDC token).
#[derive(Clone)]
pub struct JwtLogin {
    /// Auth mount path, e.g. `jwt`.
    pub mount: String,
    /// Role to log in with.
    pub role: String,
    /// Where the JWT comes from.
    pub jwt: JwtSource,
}

/// Where the JWT of a login comes from. A CI system's token is requested afresh at each login.
#[derive(Clone)]
pub enum JwtSource {
    /// A JWT given as is.
    Given(String),
    /// Requested from GitHub Actions.
    GitHub {
        /// `ARM_OIDC_REQUEST_URL` or `ACTIONS_ID_TOKEN_REQUEST_URL`.
        request_url: String,
        /// `ARM_OIDC_REQUEST_TOKEN` or `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
        request_token: String,
        /// The audience asked for; GitHub's default (the repository owner's URL) when `None`.
        audience: Option<String>,
    },
    /// Requested from Azure DevOps for a service connection (audience
    /// `api://AzureADTokenExchange`).
    AzureDevOps {
        /// `SYSTEM_OIDCREQUESTURI`.
        request_uri: String,
        /// The service connection.
        service_connection_id: String,
        /// `SYSTEM_ACCESSTOKEN`.
        access_token: String,
    },
}

impl JwtSource {
    /// Where the JWT comes from, for messages (never the JWT or a request token).
    pub fn describe(&self) -> &'static str {
        match self {
            JwtSource::Given(_) => "the configured JWT",
            JwtSource::GitHub { .. } => "GitHub Actions' OIDC token request",
            JwtSource::AzureDevOps { .. } => "Azure DevOps' OIDC token request",
        }
    }

    /// The JWT: as given, or requested now from the CI system.
    pub async fn fetch(&self, http: &reqwest::Client) -> Result<String, String> {
        use crate::clients::oidc_request::{ado_token, github_token};
        match self {
            JwtSource::Given(jwt) => Ok(jwt.clone()),
            JwtSource::GitHub {
                request_url,
                request_token,
                audience,
            } => github_token(http, request_url, request_token, audience.as_deref()).await,
            JwtSource::AzureDevOps {
                request_uri,
                service_connection_id,
                access_token,
            } => ado_token(http, request_uri, service_connection_id, access_token).await,
        }
    }
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
    /// Retries after the first attempt, for 5xx, 412, 429 and connection errors.
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
    /// Vault's 400 for a mount or device path that is taken.
    pub fn is_path_in_use(&self) -> bool {
        matches!(self, VaultError::Api { status: 400, errors, .. }
            if errors.iter().any(|e| e.contains("already in use")))
    }
    fn retryable(&self) -> bool {
        match self {
            // 412: a standby has not caught up with the index asked for (Vault Enterprise).
            // 307: a standby that cannot forward to the active node (yet: during a leader
            // election) redirects to it instead; the redirect is not followed (the token
            // stays with the configured address, see transport.rs), and the standby forwards
            // again once it knows the new leader.
            VaultError::Api {
                status: 307 | 412 | 429 | 500 | 502 | 503 | 504,
                ..
            } => true,
            // Answers that say nothing about the request itself: one the server abandoned
            // while sealing or stepping down, and an identity provider's failure Vault met
            // while fetching a discovery document or key set (saving a JWT mount's config).
            VaultError::Api {
                status: 400,
                errors,
                ..
            } => errors
                .iter()
                .any(|e| is_abandoned(e) || is_transient_key_source_failure(e)),
            VaultError::Api { .. } => false,
            VaultError::Transport { .. } => true,
            _ => false,
        }
    }
}

fn is_abandoned(message: &str) -> bool {
    message.ends_with("context canceled") || message.ends_with("context deadline exceeded")
}

/// Vault relays what the identity provider answered: throttled, failing or silent is worth
/// another try, a wrong URL (404) is not.
fn is_transient_key_source_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("oidc discovery") || m.contains("jwks"))
        && [
            "429 too many requests",
            "500 internal server error",
            "502 bad gateway",
            "503 service unavailable",
            "504 gateway timeout",
            "connection refused",
            "connection reset",
            "timeout",
            "eof",
        ]
        .iter()
        .any(|t| m.contains(t))
}

/// A request body as JSON. The bodies are structs of strings, numbers, lists and maps with
/// string keys, which always encode.
fn json_body<T: Serialize + ?Sized>(req: &T) -> serde_json::Value {
    serde_json::to_value(req).unwrap_or_default()
}

/// A Vault client shared by every resource of one provider process.
pub struct Vault {
    settings: VaultSettings,
    transport: Arc<Transport>,
    keeper: Arc<token::TokenKeeper>,
}

impl Vault {
    /// Builds the client; no request is made until the first call.
    pub fn new(settings: VaultSettings) -> Result<Vault, VaultError> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(transport::same_origin_redirects());
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
        let transport = Arc::new(Transport::new(
            http,
            settings.address.as_str().trim_end_matches('/').to_string(),
            settings.address.to_string(),
            settings.namespace.clone(),
            settings.max_retries,
        ));
        let source = match (&settings.login, &settings.token) {
            (Some(login), _) => token::Source::Login(login.clone()),
            (None, Some(t)) => token::Source::Static(t.clone()),
            (None, None) => token::Source::Missing,
        };
        // CI systems' OIDC endpoints are reached with the platform's trusted roots only: never
        // with `skip_tls_verify`, which is about Vault.
        let oidc_http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| VaultError::Config(format!("cannot build the HTTP client: {e}")))?;
        let keeper = token::TokenKeeper::new(transport.clone(), source, oidc_http);
        Ok(Vault {
            transport,
            keeper,
            settings,
        })
    }

    /// The configured address.
    pub fn address(&self) -> &Url {
        &self.settings.address
    }

    /// At the end of the process: revokes the token obtained by JWT login (`revoke-self`), so
    /// it does not outlive the run; a configured token is left alone.
    pub async fn release_token(&self) {
        self.keeper.release().await;
    }

    /// The current token: the configured one (renewed before it expires when it is
    /// renewable), or one obtained by JWT login and renewed or obtained again before it
    /// expires. Acquired once and shared by every call; see `token.rs`.
    pub async fn token(&self) -> Result<String, VaultError> {
        self.keeper.current().await
    }

    /// Sends a request to `/v1/<path>` with the provider's token and decodes the JSON
    /// answer; an empty answer decodes as `null`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, VaultError> {
        self.send_retried(method, path, body).await.0
    }

    /// [`Vault::send`], also telling whether the request was sent more than once: an attempt
    /// whose answer was lost (a connection cut, a leader lost) may have taken effect, so a
    /// create that is refused on a retry because its object exists may have made it itself.
    async fn send_retried<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (Result<T, VaultError>, bool) {
        let token = match self.token().await {
            Ok(t) => t,
            Err(e) => return (Err(e), false),
        };
        self.transport.request(&method, path, &token, body).await
    }

    /// `LIST <path>`: the keys directly under it, sub-paths ending in `/`. Empty when there
    /// is nothing under it (Vault answers 404).
    pub(crate) async fn list(&self, path: &str) -> Result<Vec<String>, VaultError> {
        #[derive(serde::Deserialize, Default)]
        struct Keys {
            #[serde(default)]
            keys: Vec<String>,
        }
        #[derive(serde::Deserialize)]
        struct Envelope {
            #[serde(default)]
            data: Option<Keys>,
        }
        let list = reqwest::Method::from_bytes(b"LIST").expect("LIST is a valid method");
        match self.send::<Option<Envelope>>(list, path, None).await {
            Ok(resp) => Ok(resp.and_then(|r| r.data).unwrap_or_default().keys),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// A create that Vault refuses with "path already in use" (a mount, an audit device).
    /// When the request was sent more than once, an attempt whose answer was lost may have
    /// made the object: `ours` looks at what is there now, and when it is what was asked
    /// for, the create counts as done.
    pub(crate) async fn create_once<F, Fut>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
        ours: F,
    ) -> Result<(), VaultError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<bool, VaultError>>,
    {
        match self
            .send_retried::<serde_json::Value>(method, path, Some(body))
            .await
        {
            (Ok(_), _) => Ok(()),
            (Err(e), true) if e.is_path_in_use() => {
                if ours().await? {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            (Err(e), _) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> VaultError {
        VaultError::Api {
            status,
            errors: vec![message.to_string()],
            path: "sys/policies/acl/x".into(),
        }
    }

    #[test]
    fn what_is_worth_another_try() {
        for status in [307, 412, 429, 500, 502, 503, 504] {
            assert!(api(status, "").retryable(), "{status}");
        }
        // A permanent redirect (say, http to https) does not go away.
        assert!(!api(301, "").retryable());
        assert!(!api(308, "").retryable());
        // As OpenBao 2.7 answers a read it abandoned while sealing.
        assert!(api(400, "failed to read policy: context canceled").retryable());
        assert!(api(400, "upstream: context deadline exceeded").retryable());
        assert!(!api(400, "path is already in use at jwt/").retryable());
        // As OpenBao 2.7 words an identity provider's answer while saving a JWT mount's config.
        assert!(api(
            400,
            r#"error checking oidc discovery URL: 429 Too Many Requests: {"error":{"code":"TooManyRequests"}}"#
        )
        .retryable());
        assert!(api(
            400,
            "error checking oidc discovery URL: 503 Service Unavailable"
        )
        .retryable());
        assert!(!api(400, "error checking oidc discovery URL: 404 Not Found").retryable());
        assert!(!api(400, "unable to parse config: 429 Too Many Requests").retryable());
        assert!(!api(403, "permission denied").retryable());
        assert!(!api(404, "").retryable());
        assert!(VaultError::Transport {
            address: "http://127.0.0.1:1".into(),
            message: "connection refused".into()
        }
        .retryable());
        assert!(!VaultError::Config("no token".into()).retryable());
    }
}
