//! Entra ID credentials through `azure_identity`: client secret, workload identity (a federated
//! token file), client assertions of our own (a federated token given or requested from a CI
//! system, a certificate's signature: [`super::assertion`]), managed identity and the Azure CLI. One credential per provider process, built
//! on first use; its tokens cached per scope until five minutes before they expire (the
//! Azure CLI credential does not cache by itself, the others do as well).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_core::time::{Duration as AzDuration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use super::assertion::{AssertionKind, Assertions, CertificateSigner};
use super::AzureError;

/// How the provider authenticates to Entra ID, chosen from the settings.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// An application's client secret.
    ClientSecret {
        /// Entra tenant.
        tenant_id: String,
        /// Application (client) ID.
        client_id: String,
        /// The secret (never shown).
        secret: String,
    },
    /// A federated token read from a file (workload identity, CI OIDC).
    WorkloadIdentity {
        /// Entra tenant.
        tenant_id: String,
        /// Application (client) ID.
        client_id: String,
        /// The token file; read again when it changes.
        token_file: PathBuf,
    },
    /// A client assertion: a federated token (given, or requested from GitHub Actions or Azure
    /// DevOps) or a certificate's signature.
    ClientAssertion {
        /// Entra tenant.
        tenant_id: String,
        /// Application (client) ID.
        client_id: String,
        /// Where the assertion comes from.
        source: AssertionKind,
    },
    /// The managed identity of the machine running Terraform.
    ManagedIdentity {
        /// A user-assigned identity's client ID; the system-assigned one when `None`.
        client_id: Option<String>,
    },
    /// The login of the Azure CLI (`az account get-access-token`).
    AzureCli {
        /// The tenant to ask the CLI for, when set.
        tenant_id: Option<String>,
    },
}

impl std::fmt::Debug for CredentialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl CredentialKind {
    /// A readable name for messages, e.g. "a client secret (client ID …, tenant …)".
    pub fn describe(&self) -> String {
        match self {
            CredentialKind::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => format!("a client secret (client ID {client_id}, tenant {tenant_id})"),
            CredentialKind::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => format!(
                "workload identity (client ID {client_id}, tenant {tenant_id}, token file {})",
                token_file.display()
            ),
            CredentialKind::ClientAssertion {
                tenant_id,
                client_id,
                source,
            } => format!(
                "{} (client ID {client_id}, tenant {tenant_id})",
                source.describe()
            ),
            CredentialKind::ManagedIdentity { client_id: None } => {
                "the system-assigned managed identity".into()
            }
            CredentialKind::ManagedIdentity { client_id: Some(c) } => {
                format!("the user-assigned managed identity with client ID {c}")
            }
            CredentialKind::AzureCli { .. } => "the Azure CLI's login".into(),
        }
    }
}

/// Tokens are renewed this long before they expire.
const REFRESH_MARGIN_SECONDS: i64 = 300;

/// One credential and its token cache.
pub(crate) struct Credentials {
    kind: CredentialKind,
    authority_host: Url,
    http: reqwest::Client,
    credential: OnceCell<Arc<dyn TokenCredential>>,
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl Credentials {
    pub(crate) fn new(kind: CredentialKind, authority_host: Url, http: reqwest::Client) -> Self {
        Credentials {
            kind,
            authority_host,
            http,
            credential: OnceCell::new(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn kind(&self) -> &CredentialKind {
        &self.kind
    }

    fn error(&self, message: impl Into<String>) -> AzureError {
        AzureError::Credential {
            method: self.kind.describe(),
            message: message.into(),
        }
    }

    /// Options shared by every credential: our HTTP client (one connection pool, the extra
    /// CA) and the authority host, set explicitly so that nothing else in the environment
    /// changes where tokens come from.
    fn client_options(&self) -> ClientOptions {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = self
            .authority_host
            .as_str()
            .trim_end_matches('/')
            .to_string();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        }
    }

    fn build(&self) -> Result<Arc<dyn TokenCredential>, AzureError> {
        let built: azure_core::Result<Arc<dyn TokenCredential>> = match &self.kind {
            CredentialKind::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                Secret::new(secret.clone()),
                Some(ClientSecretCredentialOptions {
                    client_options: self.client_options(),
                }),
            )
            .map(|c| c as Arc<dyn TokenCredential>),
            CredentialKind::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: self.client_options(),
                },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
            }))
            .map(|c| c as Arc<dyn TokenCredential>),
            CredentialKind::ClientAssertion {
                tenant_id,
                client_id,
                source,
            } => {
                let signer = match source {
                    AssertionKind::Certificate { path, password } => Some(
                        CertificateSigner::from_pkcs12(path, password)
                            .map_err(|m| self.error(m))?,
                    ),
                    _ => None,
                };
                let token_endpoint = format!(
                    "{}/{tenant_id}/oauth2/v2.0/token",
                    self.authority_host.as_str().trim_end_matches('/')
                );
                ClientAssertionCredential::new(
                    tenant_id.clone(),
                    client_id.clone(),
                    Assertions {
                        kind: source.clone(),
                        http: self.http.clone(),
                        client_id: client_id.clone(),
                        token_endpoint,
                        signer,
                    },
                    Some(ClientAssertionCredentialOptions {
                        client_options: self.client_options(),
                    }),
                )
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialKind::ManagedIdentity { client_id } => {
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                    client_options: self.client_options(),
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
            CredentialKind::AzureCli { tenant_id } => {
                AzureCliCredential::new(Some(AzureCliCredentialOptions {
                    tenant_id: tenant_id.clone(),
                    ..Default::default()
                }))
                .map(|c| c as Arc<dyn TokenCredential>)
            }
        };
        built.map_err(|e| self.error(e.to_string()))
    }

    /// A token for `scope` (e.g. `https://management.azure.com/.default`), from the cache
    /// when it has more than five minutes left.
    pub(crate) async fn token(&self, scope: &str) -> Result<String, AzureError> {
        let credential = self
            .credential
            .get_or_try_init(|| async { self.build() })
            .await?;
        // Held across the request so that concurrent callers wait for one token request.
        let mut tokens = self.tokens.lock().await;
        let fresh_until = OffsetDateTime::now_utc() + AzDuration::seconds(REFRESH_MARGIN_SECONDS);
        if let Some(t) = tokens.get(scope) {
            if t.expires_on > fresh_until {
                return Ok(t.token.secret().to_string());
            }
        }
        let token = credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| self.error(e.to_string()))?;
        let value = token.token.secret().to_string();
        tokens.insert(scope.to_string(), token);
        Ok(value)
    }
}
