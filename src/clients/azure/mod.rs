//! The Azure client: typed ARM resource IDs ([`id`]), Entra ID credentials, the ARM request
//! layer ([`arm`]: retries, long-running operations, ETags) and one file per API Management
//! entity ([`apim`]). It knows nothing of Terraform.
//!
//! One [`Azure`] serves a whole provider process: one HTTP connection pool (which also
//! carries the token requests), one credential built on first use, tokens cached per scope.

pub mod apim;
pub mod arm;
pub mod assertion;
mod credential;
mod error;
pub mod id;

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

pub use arm::{ArmRequest, ArmResponse, Tagged, API_VERSION};
pub use assertion::AssertionKind;
pub use credential::CredentialKind;
pub use error::{ArmFailure, AzureError};

/// Default budget of one operation (all its retries and long-running-operation polls).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default number of retries of one request (429, 5xx, no answer), within the budget.
pub const DEFAULT_MAX_RETRIES: u32 = 10;

/// An Azure cloud: where its Entra ID and ARM are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Environment {
    /// Azure (the public cloud).
    #[default]
    Public,
    /// Azure Government.
    UsGovernment,
    /// Azure operated by 21Vianet.
    China,
}

impl Environment {
    /// The provider's name for it: `public`, `usgovernment` or `china` (what `parse` reads).
    pub fn name(self) -> &'static str {
        match self {
            Environment::Public => "public",
            Environment::UsGovernment => "usgovernment",
            Environment::China => "china",
        }
    }

    /// `public`, `usgovernment` or `china` (the provider's `environment` values).
    pub fn parse(s: &str) -> Result<Environment, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" | "azurecloud" | "azurepubliccloud" => Ok(Environment::Public),
            "usgovernment" | "azureusgovernment" | "azureusgovernmentcloud" => {
                Ok(Environment::UsGovernment)
            }
            "china" | "azurechinacloud" => Ok(Environment::China),
            other => Err(format!(
                "unknown Azure environment {other:?}: use \"public\", \"usgovernment\" or \"china\""
            )),
        }
    }

    /// The Entra ID authority host.
    pub fn authority_host(self) -> &'static str {
        match self {
            Environment::Public => "https://login.microsoftonline.com",
            Environment::UsGovernment => "https://login.microsoftonline.us",
            Environment::China => "https://login.chinacloudapi.cn",
        }
    }

    /// The ARM endpoint.
    pub fn resource_manager_endpoint(self) -> &'static str {
        match self {
            Environment::Public => "https://management.azure.com",
            Environment::UsGovernment => "https://management.usgovcloudapi.net",
            Environment::China => "https://management.chinacloudapi.cn",
        }
    }

    /// The token scope for ARM (its audience plus `/.default`).
    pub fn resource_manager_scope(self) -> &'static str {
        match self {
            Environment::Public => "https://management.azure.com/.default",
            Environment::UsGovernment => "https://management.core.usgovcloudapi.net/.default",
            Environment::China => "https://management.core.chinacloudapi.cn/.default",
        }
    }
}

/// How to reach and authenticate to Azure: the provider's `azure` block with its `ARM_*`
/// environment fallbacks already applied.
#[derive(Clone)]
pub struct AzureSettings {
    /// Subscription (`ARM_SUBSCRIPTION_ID`).
    pub subscription_id: Option<String>,
    /// Entra tenant (`ARM_TENANT_ID`).
    pub tenant_id: Option<String>,
    /// Application (client) ID (`ARM_CLIENT_ID`); with `use_msi`, a user-assigned identity.
    pub client_id: Option<String>,
    /// Client secret (`ARM_CLIENT_SECRET`); never shown.
    pub client_secret: Option<String>,
    /// Use a federated token file (`ARM_USE_OIDC`).
    pub use_oidc: bool,
    /// The federated token file (`ARM_OIDC_TOKEN_FILE_PATH` or `AZURE_FEDERATED_TOKEN_FILE`).
    pub oidc_token_file_path: Option<PathBuf>,
    /// A federated token given as is (`ARM_OIDC_TOKEN`); never shown.
    pub oidc_token: Option<String>,
    /// GitHub Actions' OIDC request URL (`ARM_OIDC_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_URL`).
    pub oidc_request_url: Option<String>,
    /// GitHub Actions' OIDC request token (`ARM_OIDC_REQUEST_TOKEN`,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`); never shown.
    pub oidc_request_token: Option<String>,
    /// The Azure DevOps service connection (`ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID`,
    /// `ARM_OIDC_AZURE_SERVICE_CONNECTION_ID`).
    pub ado_pipeline_service_connection_id: Option<String>,
    /// Azure DevOps' OIDC request URI (`SYSTEM_OIDCREQUESTURI`).
    pub ado_request_uri: Option<String>,
    /// Azure DevOps' job token (`SYSTEM_ACCESSTOKEN`); never shown.
    pub ado_access_token: Option<String>,
    /// A PKCS#12 file with the client certificate and its key (`ARM_CLIENT_CERTIFICATE_PATH`).
    pub client_certificate_path: Option<PathBuf>,
    /// The PKCS#12 file's password (`ARM_CLIENT_CERTIFICATE_PASSWORD`); never shown.
    pub client_certificate_password: Option<String>,
    /// Use the managed identity of this machine (`ARM_USE_MSI`).
    pub use_msi: bool,
    /// Use the Azure CLI (`ARM_USE_CLI`); `None` means "when nothing else is configured".
    pub use_cli: Option<bool>,
    /// The cloud (`ARM_ENVIRONMENT`).
    pub environment: Environment,
    /// ARM endpoint override (`ARM_RESOURCE_MANAGER_ENDPOINT`).
    pub resource_manager_endpoint: Option<Url>,
    /// Entra authority override (`AZURE_AUTHORITY_HOST`); must be https.
    pub authority_host: Option<Url>,
    /// An extra trusted CA bundle, PEM (`ARM_CA_CERT_FILE`).
    pub ca_cert_file: Option<PathBuf>,
    /// Budget of one operation, retries and polling included.
    pub operation_timeout: Duration,
    /// Retries of one request after a 429, a 5xx or no answer, within the budget.
    pub max_retries: u32,
}

impl Default for AzureSettings {
    fn default() -> Self {
        AzureSettings {
            subscription_id: None,
            tenant_id: None,
            client_id: None,
            client_secret: None,
            use_oidc: false,
            oidc_token_file_path: None,
            oidc_token: None,
            oidc_request_url: None,
            oidc_request_token: None,
            ado_pipeline_service_connection_id: None,
            ado_request_uri: None,
            ado_access_token: None,
            client_certificate_path: None,
            client_certificate_password: None,
            use_msi: false,
            use_cli: None,
            environment: Environment::Public,
            resource_manager_endpoint: None,
            authority_host: None,
            ca_cert_file: None,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }
}

impl std::fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSettings")
            .field("subscription_id", &self.subscription_id)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("use_oidc", &self.use_oidc)
            .field("oidc_token_file_path", &self.oidc_token_file_path)
            .field(
                "oidc_token",
                &self.oidc_token.as_ref().map(|_| "<redacted>"),
            )
            .field("oidc_request_url", &self.oidc_request_url)
            .field(
                "oidc_request_token",
                &self.oidc_request_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "ado_pipeline_service_connection_id",
                &self.ado_pipeline_service_connection_id,
            )
            .field("ado_request_uri", &self.ado_request_uri)
            .field(
                "ado_access_token",
                &self.ado_access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("client_certificate_path", &self.client_certificate_path)
            .field(
                "client_certificate_password",
                &self
                    .client_certificate_password
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field("use_msi", &self.use_msi)
            .field("use_cli", &self.use_cli)
            .field("environment", &self.environment)
            .field("resource_manager_endpoint", &self.resource_manager_endpoint)
            .field("authority_host", &self.authority_host)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

fn missing(what: &str, attr: &str, env: &str, why: &str) -> AzureError {
    AzureError::Config(format!(
        "No Azure {what}: set `azure {{ {attr} }}` or {env}{why}."
    ))
}

impl AzureSettings {
    /// The credential these settings select, in the order the azurerm provider tries them: a
    /// client certificate, a client secret, then with `use_oidc` a federated token (given, from
    /// a file, requested from GitHub Actions, requested from Azure DevOps), the managed
    /// identity (`use_msi`), the Azure CLI (`use_cli`, the default when nothing else is set).
    /// A missing or half-given setting is an error naming it and its environment variable.
    pub fn credential_kind(&self) -> Result<CredentialKind, AzureError> {
        let tenant = |why: &str| {
            self.tenant_id
                .clone()
                .ok_or_else(|| missing("tenant", "tenant_id", "ARM_TENANT_ID", why))
        };
        let client = |why: &str| {
            self.client_id
                .clone()
                .ok_or_else(|| missing("client ID", "client_id", "ARM_CLIENT_ID", why))
        };
        let assertion = |why: &str, source: AssertionKind| -> Result<CredentialKind, AzureError> {
            Ok(CredentialKind::ClientAssertion {
                tenant_id: tenant(why)?,
                client_id: client(why)?,
                source,
            })
        };
        if let Some(path) = &self.client_certificate_path {
            return assertion(
                " (needed with a client certificate)",
                AssertionKind::Certificate {
                    path: path.clone(),
                    password: self.client_certificate_password.clone().unwrap_or_default(),
                },
            );
        }
        if self.client_certificate_password.is_some() {
            return Err(AzureError::Config(
                "`azure { client_certificate_password }` (ARM_CLIENT_CERTIFICATE_PASSWORD) is set without a certificate: set `client_certificate_path` (ARM_CLIENT_CERTIFICATE_PATH) to the PKCS#12 (.pfx/.p12) file it opens.".into(),
            ));
        }
        if let Some(secret) = &self.client_secret {
            let why = " (needed with a client secret)";
            return Ok(CredentialKind::ClientSecret {
                tenant_id: tenant(why)?,
                client_id: client(why)?,
                secret: secret.clone(),
            });
        }
        if self.use_oidc {
            return self.oidc_kind(&assertion, &tenant, &client);
        }
        for (set, attr, env) in [
            (self.oidc_token.is_some(), "oidc_token", "ARM_OIDC_TOKEN"),
            (
                self.ado_pipeline_service_connection_id.is_some(),
                "ado_pipeline_service_connection_id",
                "ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID",
            ),
        ] {
            if set {
                return Err(AzureError::Config(format!(
                    "`azure {{ {attr} }}` ({env}) is set but OIDC is not enabled: set `use_oidc = true` (ARM_USE_OIDC=true) to sign in with it."
                )));
            }
        }
        if self.use_msi {
            return Ok(CredentialKind::ManagedIdentity {
                client_id: self.client_id.clone(),
            });
        }
        if self.use_cli.unwrap_or(true) {
            return Ok(CredentialKind::AzureCli {
                tenant_id: self.tenant_id.clone(),
            });
        }
        Err(AzureError::Config(
            "No Azure credentials: set `azure { client_secret }` (ARM_CLIENT_SECRET), `use_oidc` (ARM_USE_OIDC), `use_msi` (ARM_USE_MSI) or `use_cli` (ARM_USE_CLI).".into(),
        ))
    }

    /// The federated token `use_oidc` selects: given, from a file, requested from GitHub
    /// Actions, requested from Azure DevOps, in that order.
    fn oidc_kind(
        &self,
        assertion: &dyn Fn(&str, AssertionKind) -> Result<CredentialKind, AzureError>,
        tenant: &dyn Fn(&str) -> Result<String, AzureError>,
        client: &dyn Fn(&str) -> Result<String, AzureError>,
    ) -> Result<CredentialKind, AzureError> {
        let why = " (needed with `use_oidc`)";
        if let Some(token) = &self.oidc_token {
            return assertion(why, AssertionKind::Token(token.clone()));
        }
        if let Some(token_file) = &self.oidc_token_file_path {
            return Ok(CredentialKind::WorkloadIdentity {
                tenant_id: tenant(why)?,
                client_id: client(why)?,
                token_file: token_file.clone(),
            });
        }
        match (&self.oidc_request_url, &self.oidc_request_token) {
            (Some(url), Some(token)) => {
                return assertion(
                    why,
                    AssertionKind::GitHub {
                        request_url: url.clone(),
                        request_token: token.clone(),
                    },
                )
            }
            (Some(_), None) => return Err(AzureError::Config(
                "An OIDC request URL is set but no request token: set `azure { oidc_request_token }` or ARM_OIDC_REQUEST_TOKEN (GitHub Actions sets ACTIONS_ID_TOKEN_REQUEST_TOKEN when the job has `permissions: id-token: write`).".into(),
            )),
            (None, Some(_)) => return Err(AzureError::Config(
                "An OIDC request token is set but no request URL: set `azure { oidc_request_url }` or ARM_OIDC_REQUEST_URL (GitHub Actions sets ACTIONS_ID_TOKEN_REQUEST_URL when the job has `permissions: id-token: write`).".into(),
            )),
            (None, None) => {}
        }
        if let Some(connection) = &self.ado_pipeline_service_connection_id {
            let request_uri = self.ado_request_uri.clone().ok_or_else(|| AzureError::Config(
                "`azure { ado_pipeline_service_connection_id }` (ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID) is set but SYSTEM_OIDCREQUESTURI is not: run in an Azure Pipelines job, which sets it.".into(),
            ))?;
            let access_token = self.ado_access_token.clone().ok_or_else(|| AzureError::Config(
                "`azure { ado_pipeline_service_connection_id }` (ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID) is set but SYSTEM_ACCESSTOKEN is not: map it into the step's environment (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`).".into(),
            ))?;
            return assertion(
                why,
                AssertionKind::AzureDevOps {
                    request_uri,
                    service_connection_id: connection.clone(),
                    access_token,
                },
            );
        }
        Err(AzureError::Config(
            "`use_oidc` (ARM_USE_OIDC) is set but no federated token is given: set `oidc_token` (ARM_OIDC_TOKEN), `oidc_token_file_path` (ARM_OIDC_TOKEN_FILE_PATH or AZURE_FEDERATED_TOKEN_FILE), `oidc_request_url` + `oidc_request_token` (ARM_OIDC_REQUEST_URL + ARM_OIDC_REQUEST_TOKEN; GitHub Actions sets ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN), or `ado_pipeline_service_connection_id` (ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID) in Azure Pipelines.".into(),
        ))
    }
}

/// The Azure client shared by every resource of one provider process.
pub struct Azure {
    subscription_id: String,
    endpoint: Url,
    scope: &'static str,
    http: reqwest::Client,
    credentials: credential::Credentials,
    operation_timeout: Duration,
    max_retries: u32,
}

impl std::fmt::Debug for Azure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Azure")
            .field("subscription_id", &self.subscription_id)
            .field("endpoint", &self.endpoint.as_str())
            .field("credential", self.credentials.kind())
            .finish_non_exhaustive()
    }
}

impl Azure {
    /// Checks the settings and builds the client. No request is made and no credential is
    /// built until the first call.
    pub fn new(settings: AzureSettings) -> Result<Azure, AzureError> {
        let subscription_id = settings
            .subscription_id
            .clone()
            .ok_or_else(|| missing("subscription", "subscription_id", "ARM_SUBSCRIPTION_ID", ""))?;
        let kind = settings.credential_kind()?;
        let authority_host = match &settings.authority_host {
            Some(u) => u.clone(),
            None => Url::parse(settings.environment.authority_host())
                .map_err(|e| AzureError::Config(format!("invalid authority host: {e}")))?,
        };
        if authority_host.scheme() != "https" {
            return Err(AzureError::Config(format!(
                "The Azure authority host {authority_host} must be an https:// URL (`azure {{ authority_host }}` or AZURE_AUTHORITY_HOST)."
            )));
        }
        let endpoint = match &settings.resource_manager_endpoint {
            Some(u) => u.clone(),
            None => Url::parse(settings.environment.resource_manager_endpoint())
                .map_err(|e| AzureError::Config(format!("invalid ARM endpoint: {e}")))?,
        };
        if !matches!(endpoint.scheme(), "https" | "http") || endpoint.host().is_none() {
            return Err(AzureError::Config(format!(
                "The ARM endpoint {endpoint} is not an http:// or https:// URL with a host (`azure {{ resource_manager_endpoint }}` or ARM_RESOURCE_MANAGER_ENDPOINT)."
            )));
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!(
                "terraform-provider-apim/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(path) = &settings.ca_cert_file {
            let pem = std::fs::read(path).map_err(|e| {
                AzureError::Config(format!(
                    "Cannot read the Azure CA file {} (`azure {{ ca_cert_file }}` or ARM_CA_CERT_FILE): {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                AzureError::Config(format!(
                    "The Azure CA file {} is not a PEM bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(AzureError::Config(format!(
                    "The Azure CA file {} holds no PEM certificate.",
                    path.display()
                )));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| AzureError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Azure {
            subscription_id,
            endpoint,
            scope: settings.environment.resource_manager_scope(),
            credentials: credential::Credentials::new(kind, authority_host, http.clone()),
            http,
            operation_timeout: settings.operation_timeout,
            max_retries: settings.max_retries,
        })
    }

    /// The configured subscription.
    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    /// The ARM endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The credential in use, for messages.
    pub fn credential(&self) -> &CredentialKind {
        self.credentials.kind()
    }

    /// The budget of one operation.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AzureSettings {
        AzureSettings {
            subscription_id: Some("00000000-0000-0000-0000-000000000001".into()),
            ..Default::default()
        }
    }

    #[test]
    fn missing_settings_name_their_variables() {
        let e = Azure::new(AzureSettings::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No Azure subscription: set `azure { subscription_id }` or ARM_SUBSCRIPTION_ID."
        );
        let s = AzureSettings {
            client_secret: Some("s3cr3t".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err();
        assert_eq!(
            e.to_string(),
            "No Azure tenant: set `azure { tenant_id }` or ARM_TENANT_ID (needed with a client secret)."
        );
        let s = AzureSettings {
            use_oidc: true,
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            ..base()
        };
        assert!(s
            .credential_kind()
            .unwrap_err()
            .to_string()
            .contains("ARM_OIDC_TOKEN_FILE_PATH or AZURE_FEDERATED_TOKEN_FILE"));
        let s = AzureSettings {
            use_oidc: true,
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            oidc_request_url: Some("https://gh.example/token".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err().to_string();
        assert!(
            e.contains("oidc_request_token") && e.contains("ARM_OIDC_REQUEST_TOKEN"),
            "{e}"
        );
        let s = AzureSettings {
            use_oidc: true,
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            oidc_request_token: Some("rt".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err().to_string();
        assert!(
            e.contains("oidc_request_url") && e.contains("ARM_OIDC_REQUEST_URL"),
            "{e}"
        );
        let s = AzureSettings {
            use_oidc: true,
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            ado_pipeline_service_connection_id: Some("conn".into()),
            ado_request_uri: Some("https://ado.example/oidctoken".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err().to_string();
        assert!(e.contains("SYSTEM_ACCESSTOKEN"), "{e}");
        let s = AzureSettings {
            oidc_token: Some("jwt".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err().to_string();
        assert!(
            e.contains("`use_oidc = true`") && e.contains("ARM_OIDC_TOKEN"),
            "{e}"
        );
        let s = AzureSettings {
            client_certificate_password: Some("pw".into()),
            ..base()
        };
        let e = s.credential_kind().unwrap_err().to_string();
        assert!(
            e.contains("ARM_CLIENT_CERTIFICATE_PATH") && !e.contains("\"pw\""),
            "{e}"
        );
        let s = AzureSettings {
            use_cli: Some(false),
            ..base()
        };
        assert!(s
            .credential_kind()
            .unwrap_err()
            .to_string()
            .starts_with("No Azure credentials"));
    }

    #[test]
    fn credential_order_and_redaction() {
        let s = AzureSettings {
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            client_secret: Some("s3cr3t".into()),
            use_msi: true,
            ..base()
        };
        let k = s.credential_kind().unwrap();
        assert!(matches!(k, CredentialKind::ClientSecret { .. }));
        assert!(!format!("{k:?} {s:?}").contains("s3cr3t"));
        let s = AzureSettings {
            use_msi: true,
            ..base()
        };
        assert_eq!(
            s.credential_kind().unwrap(),
            CredentialKind::ManagedIdentity { client_id: None }
        );
        assert_eq!(
            base().credential_kind().unwrap(),
            CredentialKind::AzureCli { tenant_id: None }
        );
    }

    /// azurerm's order: certificate, secret, then with `use_oidc` the given token, the token
    /// file, GitHub's request, Azure DevOps' request.
    #[test]
    fn sign_in_order_follows_azurerm() {
        let all = AzureSettings {
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            client_certificate_path: Some("/c.pfx".into()),
            client_secret: Some("s".into()),
            use_oidc: true,
            oidc_token: Some("jwt".into()),
            oidc_token_file_path: Some("/f".into()),
            oidc_request_url: Some("https://gh".into()),
            oidc_request_token: Some("rt".into()),
            ado_pipeline_service_connection_id: Some("conn".into()),
            ado_request_uri: Some("https://ado".into()),
            ado_access_token: Some("at".into()),
            ..base()
        };
        let source = |s: &AzureSettings| match s.credential_kind().unwrap() {
            CredentialKind::ClientAssertion { source, .. } => source.describe(),
            other => other.describe(),
        };
        assert!(source(&all).starts_with("the client certificate /c.pfx"));
        let s = AzureSettings {
            client_certificate_path: None,
            ..all.clone()
        };
        assert!(source(&s).starts_with("a client secret"));
        let s = AzureSettings {
            client_secret: None,
            ..s
        };
        assert!(source(&s).contains("ARM_OIDC_TOKEN"));
        let s = AzureSettings {
            oidc_token: None,
            ..s
        };
        assert!(source(&s).starts_with("workload identity"));
        let s = AzureSettings {
            oidc_token_file_path: None,
            ..s
        };
        assert!(source(&s).contains("GitHub Actions"));
        let s = AzureSettings {
            oidc_request_url: None,
            oidc_request_token: None,
            ..s
        };
        assert!(source(&s).contains("Azure DevOps for service connection conn"));
        assert!(!format!("{s:?} {:?}", s.credential_kind().unwrap()).contains("\"at\""));
    }

    #[test]
    fn environments() {
        assert_eq!(
            Environment::parse("USGovernment"),
            Ok(Environment::UsGovernment)
        );
        assert_eq!(
            Environment::China.resource_manager_endpoint(),
            "https://management.chinacloudapi.cn"
        );
        assert!(Environment::parse("mars").is_err());
        let s = AzureSettings {
            authority_host: Some(Url::parse("http://127.0.0.1:1").unwrap()),
            ..base()
        };
        assert!(Azure::new(s)
            .unwrap_err()
            .to_string()
            .contains("must be an https:// URL"));
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let s = AzureSettings {
            ca_cert_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..base()
        };
        let e = Azure::new(s).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("ARM_CA_CERT_FILE"),
            "{e}"
        );
    }
}
