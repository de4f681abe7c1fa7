//! The `provider "apim"` block: its schema, environment fallbacks, validation, and the
//! clients it configures. Both the `vault` and `azure` blocks are optional; a resource that
//! needs a side that is not configured gets a diagnostic naming the missing setting.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use url::Url;

use crate::clients::azure::{Azure, AzureSettings, Environment};
use crate::clients::vault::{JwtLogin, JwtSource, Vault, VaultSettings};
use crate::context::{AzureCloud, ProviderData};
use crate::framework::action::ActionType;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::function::Function;
use crate::framework::lifecycle::{DataSourceType, EphemeralType, ResourceType};
use crate::framework::list::ListType;
use crate::framework::model::Known;
use crate::framework::resource::Provider;
use crate::framework::schema::{Attribute, Block, Constraint, NestedBlock, Schema};
use crate::framework::value::Value;
use crate::resources;

/// Default `vault.max_retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The provider.
pub struct ApimProvider {
    resources: Vec<Box<dyn ResourceType<ProviderData>>>,
    data_sources: Vec<Box<dyn DataSourceType<ProviderData>>>,
    ephemeral: Vec<Box<dyn EphemeralType<ProviderData>>>,
    lists: Vec<Box<dyn ListType<ProviderData>>>,
    functions: Vec<Box<dyn Function>>,
    actions: Vec<Box<dyn ActionType<ProviderData>>>,
}

impl ApimProvider {
    /// The provider with every type it offers.
    pub fn new() -> ApimProvider {
        ApimProvider {
            resources: resources::resources(),
            data_sources: resources::data_sources(),
            ephemeral: resources::ephemeral_resources(),
            lists: resources::list_resources(),
            functions: resources::functions::functions(),
            actions: resources::actions(),
        }
    }
}

impl Default for ApimProvider {
    fn default() -> Self {
        ApimProvider::new()
    }
}

fn vault_block() -> Block {
    Block::new("Where Vault (or OpenBao) is and how the provider authenticates to it.")
        .attr(
            Attribute::string("address")
                .describe("Vault address, e.g. `https://vault.example.com:8200`. Environment: `VAULT_ADDR`.")
                .env(&["VAULT_ADDR"])
                .validate(validate_url),
        )
        .attr(
            Attribute::string("token")
                .sensitive()
                .describe("Vault token. Environment: `VAULT_TOKEN`, then the file `~/.vault-token`. Conflicts with `auth_login_jwt`.")
                .env(&["VAULT_TOKEN"]),
        )
        .attr(
            Attribute::string("namespace")
                .describe("Vault Enterprise namespace, sent as `X-Vault-Namespace`. Environment: `VAULT_NAMESPACE`.")
                .env(&["VAULT_NAMESPACE"]),
        )
        .attr(
            Attribute::string("ca_cert_file")
                .describe("PEM file of CA certificates to trust for Vault's TLS certificate. Environment: `VAULT_CACERT`.")
                .env(&["VAULT_CACERT"]),
        )
        .attr(
            Attribute::bool("skip_tls_verify")
                .describe("Accept any TLS certificate from Vault. For tests only: the provider warns when it is set. Environment: `VAULT_SKIP_VERIFY`. Default `false`.")
                .env(&["VAULT_SKIP_VERIFY"]),
        )
        .attr(
            Attribute::number("max_retries")
                .describe("Retries after a 5xx, 412, 429 or connection error, with exponential backoff from 0.5 s (doubling, at most 8 s apart): `3` rides out about 3.5 s, `5` about 15 s, e.g. a leader election or a restart. Environment: `VAULT_MAX_RETRIES`. Default `3`.")
                .validate(crate::framework::schema::validators::non_negative_int),
        )
        .block(
            NestedBlock::single(
                "auth_login_jwt",
                Block::new("Log in with a JWT instead of using a static token. The JWT is `jwt` when given; otherwise one is requested from the CI system at each login: from GitHub Actions (`ARM_OIDC_REQUEST_URL` + `ARM_OIDC_REQUEST_TOKEN`, or `ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, which GitHub sets with `permissions: id-token: write`), else from Azure DevOps (`ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID` with `SYSTEM_ACCESSTOKEN` and `SYSTEM_OIDCREQUESTURI`). The Vault token obtained is renewed, or obtained again with a fresh JWT, before it expires.")
                    .attr(Attribute::string("mount").describe("Path of the JWT auth mount. Default `jwt`."))
                    .attr(Attribute::string("role").required().describe("Role to log in with."))
                    .attr(
                        Attribute::string("jwt")
                            .sensitive()
                            .describe("The JWT. Environment: `APIM_VAULT_AUTH_JWT`.")
                            .env(&["APIM_VAULT_AUTH_JWT"]),
                    )
                    .attr(Attribute::string("audience").describe("The audience (`aud`) asked of GitHub Actions for the JWT; the role's `bound_audiences` must hold it. Default: GitHub's own default, the URL of the repository owner (e.g. `https://github.com/octo-org`). Azure DevOps issues its tokens for `api://AzureADTokenExchange` only, so with it this must be unset or that value.")),
            ),
        )
        .constraint(Constraint::ConflictsWith(&["token", "auth_login_jwt"]))
}

fn azure_block() -> Block {
    Block::new("How the provider reaches Azure Resource Manager and Entra ID.")
        .attr(Attribute::string("subscription_id").describe("Subscription ID. Environment: `ARM_SUBSCRIPTION_ID`.").env(&["ARM_SUBSCRIPTION_ID"]))
        .attr(Attribute::string("tenant_id").describe("Entra tenant ID. Environment: `ARM_TENANT_ID`.").env(&["ARM_TENANT_ID"]))
        .attr(Attribute::string("client_id").describe("Application (client) ID. Environment: `ARM_CLIENT_ID`.").env(&["ARM_CLIENT_ID"]))
        .attr(Attribute::string("client_secret").sensitive().describe("Client secret. Environment: `ARM_CLIENT_SECRET`.").env(&["ARM_CLIENT_SECRET"]))
        .attr(Attribute::string("client_certificate_path").describe("A PKCS#12 file (`.pfx`/`.p12`) holding the application's certificate and its RSA key, for signing in with a certificate credential. Tried before a client secret. Environment: `ARM_CLIENT_CERTIFICATE_PATH`.").env(&["ARM_CLIENT_CERTIFICATE_PATH"]))
        .attr(Attribute::string("client_certificate_password").sensitive().describe("The password of `client_certificate_path`'s file, if it has one. Environment: `ARM_CLIENT_CERTIFICATE_PASSWORD`.").env(&["ARM_CLIENT_CERTIFICATE_PASSWORD"]))
        .attr(Attribute::bool("use_oidc").describe("Sign in with a federated (OpenID Connect) token, in this order: `oidc_token`, `oidc_token_file_path`, a token requested from GitHub Actions (`oidc_request_url` + `oidc_request_token`), a token requested from Azure DevOps (`ado_pipeline_service_connection_id`). Environment: `ARM_USE_OIDC`.").env(&["ARM_USE_OIDC"]))
        .attr(Attribute::string("oidc_token").sensitive().describe("A federated token (a JWT whose audience is `api://AzureADTokenExchange`), used as it is. Environment: `ARM_OIDC_TOKEN`.").env(&["ARM_OIDC_TOKEN"]))
        .attr(Attribute::string("oidc_token_file_path").describe("A file holding a federated token, read again whenever a new Entra token is needed (Kubernetes workload identity, CI systems). Environment: `ARM_OIDC_TOKEN_FILE_PATH`, then `AZURE_FEDERATED_TOKEN_FILE`.").env(&["ARM_OIDC_TOKEN_FILE_PATH", "AZURE_FEDERATED_TOKEN_FILE"]))
        .attr(Attribute::string("oidc_request_url").describe("GitHub Actions' URL for requesting an ID token; a fresh one is requested, for the audience `api://AzureADTokenExchange`, whenever a new Entra token is needed. Environment: `ARM_OIDC_REQUEST_URL`, then `ACTIONS_ID_TOKEN_REQUEST_URL` (set by GitHub Actions with `permissions: id-token: write`).").env(&["ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"]).validate(validate_url))
        .attr(Attribute::string("oidc_request_token").sensitive().describe("The bearer token for `oidc_request_url`. Environment: `ARM_OIDC_REQUEST_TOKEN`, then `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.").env(&["ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]))
        .attr(Attribute::string("ado_pipeline_service_connection_id").describe("In Azure Pipelines: the ID of the Azure Resource Manager service connection (workload identity federation) to sign in as; the token is requested from `SYSTEM_OIDCREQUESTURI` with `SYSTEM_ACCESSTOKEN`, which the step's environment must carry. Environment: `ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID`, then `ARM_OIDC_AZURE_SERVICE_CONNECTION_ID`.").env(&["ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", "ARM_OIDC_AZURE_SERVICE_CONNECTION_ID"]))
        .attr(Attribute::bool("use_msi").describe("Use the managed identity of the machine running Terraform. Environment: `ARM_USE_MSI`.").env(&["ARM_USE_MSI"]))
        .attr(Attribute::bool("use_cli").describe("Use the Azure CLI's login. Environment: `ARM_USE_CLI`. Default `true` when no other credential is given.").env(&["ARM_USE_CLI"]))
        .attr(
            Attribute::string("environment")
                .describe("Azure cloud: `public`, `usgovernment` or `china`. Environment: `ARM_ENVIRONMENT`. Default `public`.")
                .env(&["ARM_ENVIRONMENT"])
                .one_of(&["public", "usgovernment", "china"]),
        )
        .attr(Attribute::string("resource_manager_endpoint").describe("Override of the ARM endpoint. Environment: `ARM_RESOURCE_MANAGER_ENDPOINT`.").env(&["ARM_RESOURCE_MANAGER_ENDPOINT"]).validate(validate_url))
        .attr(Attribute::string("authority_host").describe("Override of the Entra authority host, for sign-in and for the issuers auth backends derive from `tenant_id`. Environment: `ARM_AUTHORITY_HOST`; `AZURE_AUTHORITY_HOST` (set by AKS workload identity) is used for sign-in only, never to derive an issuer.").env(&["ARM_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"]).validate(validate_url))
        .attr(Attribute::string("ca_cert_file").describe("Extra trusted CA bundle (PEM), for TLS-inspecting proxies or the APIM emulator. Environment: `ARM_CA_CERT_FILE`.").env(&["ARM_CA_CERT_FILE"]))
}

fn validate_url(v: &Value, p: &AttrPath, d: &mut Diags) {
    if let Some(s) = v.as_str() {
        if let Err(why) = parse_http_url(s) {
            d.attr_error(p.clone(), "Invalid URL", format!("`{p}` {why}."));
        }
    }
}

fn parse_http_url(s: &str) -> Result<Url, String> {
    match Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(_) => Err(format!(
            "is {s:?}, which is not an http:// or https:// URL with a host; write it like \"https://vault.example.com:8200\""
        )),
        Err(e) => Err(format!(
            "is {s:?}, which is not an http:// or https:// URL ({e}); write it like \"https://vault.example.com:8200\""
        )),
    }
}

/// The provider schema, built once.
pub fn provider_schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        Schema::new(
            Block::new("The apim provider binds Azure API Management to HashiCorp Vault (or OpenBao): APIM fetches credentials from Vault at request time with its managed identity.")
                .block(NestedBlock::single("vault", vault_block()))
                .block(NestedBlock::single("azure", azure_block())),
        )
    })
}

crate::model! {
    /// The provider block.
    pub struct ProviderModel, plan ProviderPlan {
        /// The `vault` block.
        pub vault: Option<VaultBlock>,
        /// The `azure` block.
        pub azure: Option<AzureBlock>,
    }
}

crate::model! {
    /// The `vault` block.
    pub struct VaultBlock, plan VaultBlockPlan {
        /// `address`.
        pub address: Option<String>,
        /// `token`.
        pub token: Option<String>,
        /// `namespace`.
        pub namespace: Option<String>,
        /// `ca_cert_file`.
        pub ca_cert_file: Option<String>,
        /// `skip_tls_verify`.
        pub skip_tls_verify: Option<bool>,
        /// `max_retries`.
        pub max_retries: Option<i64>,
        /// `auth_login_jwt`.
        pub auth_login_jwt: Option<JwtLoginBlock>,
    }
}

crate::model! {
    /// The `vault.auth_login_jwt` block.
    pub struct JwtLoginBlock, plan JwtLoginBlockPlan {
        /// `mount`.
        pub mount: Option<String>,
        /// `role`.
        pub role: String,
        /// `jwt`.
        pub jwt: Option<String>,
        /// `audience`.
        pub audience: Option<String>,
    }
}

crate::model! {
    /// The `azure` block.
    pub struct AzureBlock, plan AzureBlockPlan {
        /// `subscription_id`.
        pub subscription_id: Option<String>,
        /// `tenant_id`.
        pub tenant_id: Option<String>,
        /// `client_id`.
        pub client_id: Option<String>,
        /// `client_secret`.
        pub client_secret: Option<String>,
        /// `client_certificate_path`.
        pub client_certificate_path: Option<String>,
        /// `client_certificate_password`.
        pub client_certificate_password: Option<String>,
        /// `use_oidc`.
        pub use_oidc: Option<bool>,
        /// `oidc_token`.
        pub oidc_token: Option<String>,
        /// `oidc_token_file_path`.
        pub oidc_token_file_path: Option<String>,
        /// `oidc_request_url`.
        pub oidc_request_url: Option<String>,
        /// `oidc_request_token`.
        pub oidc_request_token: Option<String>,
        /// `ado_pipeline_service_connection_id`.
        pub ado_pipeline_service_connection_id: Option<String>,
        /// `use_msi`.
        pub use_msi: Option<bool>,
        /// `use_cli`.
        pub use_cli: Option<bool>,
        /// `environment`.
        pub environment: Option<String>,
        /// `resource_manager_endpoint`.
        pub resource_manager_endpoint: Option<String>,
        /// `authority_host`.
        pub authority_host: Option<String>,
        /// `ca_cert_file`.
        pub ca_cert_file: Option<String>,
    }
}

/// A setting from configuration, else from the first environment variable that is set.
fn setting(value: &Option<String>, env: &[&str]) -> Option<String> {
    value.clone().or_else(|| {
        env.iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    })
}

/// A yes/no environment variable, when set.
fn env_flag(env: &str) -> Option<bool> {
    std::env::var(env)
        .ok()
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn flag(value: Option<bool>, env: &str) -> bool {
    value.or_else(|| env_flag(env)).unwrap_or(false)
}

/// A block whose values are not all known until apply.
const UNKNOWN_BLOCK: &str = "has values that are not known until apply; resources that need it during plan cannot be checked yet. Configure the provider from values known at plan time.";

fn vault_settings(
    block: &Known<Option<VaultBlock>>,
    d: &mut Diags,
) -> Result<VaultSettings, String> {
    let Known::Value(v) = block else {
        return Err(format!("The `vault` block of the provider {UNKNOWN_BLOCK}"));
    };
    let empty = VaultBlock::default();
    let v = v.as_ref().unwrap_or(&empty);
    let address = setting(&v.address, &["VAULT_ADDR"]).ok_or(
        "No Vault address: set `address` in the `vault` block of the provider, or the VAULT_ADDR environment variable.",
    )?;
    let address = parse_http_url(&address).map_err(|why| format!("The Vault address {why}."))?;
    let token = setting(&v.token, &["VAULT_TOKEN"]).or_else(token_file);
    let skip_tls_verify = flag(v.skip_tls_verify, "VAULT_SKIP_VERIFY");
    if skip_tls_verify {
        d.attr_warning(
            AttrPath::root("vault").attr("skip_tls_verify"),
            "TLS verification of Vault is off",
            "The provider accepts any certificate from Vault, so a machine in the middle could read the Vault token. Use `ca_cert_file` to trust a private CA instead.",
        );
    }
    let login = match &v.auth_login_jwt {
        None => None,
        Some(login) => Some(JwtLogin {
            mount: login.mount.clone().unwrap_or_else(|| "jwt".into()),
            role: login.role.clone(),
            jwt: jwt_source(login)?,
        }),
    };
    Ok(VaultSettings {
        address,
        token,
        namespace: setting(&v.namespace, &["VAULT_NAMESPACE"]),
        ca_cert_file: setting(&v.ca_cert_file, &["VAULT_CACERT"]).map(PathBuf::from),
        skip_tls_verify,
        max_retries: max_retries(v.max_retries)?,
        login,
    })
}

/// The file `.vault-token` in the home directory: `HOME`, else `USERPROFILE` (Windows).
fn token_file() -> Option<String> {
    let home = home_dir(|k| std::env::var_os(k))?;
    std::fs::read_to_string(home.join(".vault-token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The home directory from `HOME`, else `USERPROFILE` (as Vault's own CLI finds it on Windows).
fn home_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    ["HOME", "USERPROFILE"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()))
        .map(PathBuf::from)
}

/// Where `auth_login_jwt`'s JWT comes from: `jwt` (or APIM_VAULT_AUTH_JWT), else GitHub Actions'
/// OIDC token request, else Azure DevOps'. A half-given request flow is an error naming what is
/// missing.
fn jwt_source(login: &JwtLoginBlock) -> Result<JwtSource, String> {
    jwt_source_from(login, &|k| std::env::var(k).ok())
}

/// [`jwt_source`] with the environment read through `var`.
fn jwt_source_from(
    login: &JwtLoginBlock,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<JwtSource, String> {
    let setting = |value: &Option<String>, keys: &[&str]| {
        value
            .clone()
            .or_else(|| keys.iter().find_map(|k| var(k).filter(|v| !v.is_empty())))
    };
    if let Some(jwt) = setting(&login.jwt, &["APIM_VAULT_AUTH_JWT"]) {
        return Ok(JwtSource::Given(jwt));
    }
    let url = setting(
        &None,
        &["ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"],
    );
    let token = setting(
        &None,
        &["ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
    );
    match (url, token) {
        (Some(request_url), Some(request_token)) => {
            return Ok(JwtSource::GitHub {
                request_url,
                request_token,
                audience: login.audience.clone(),
            })
        }
        (Some(_), None) => return Err("`vault.auth_login_jwt` would request its JWT from GitHub Actions, but only the request URL is set: set ARM_OIDC_REQUEST_TOKEN or ACTIONS_ID_TOKEN_REQUEST_TOKEN (GitHub sets it with `permissions: id-token: write`), or give `jwt`.".into()),
        (None, Some(_)) => return Err("`vault.auth_login_jwt` would request its JWT from GitHub Actions, but only the request token is set: set ARM_OIDC_REQUEST_URL or ACTIONS_ID_TOKEN_REQUEST_URL, or give `jwt`.".into()),
        (None, None) => {}
    }
    let connection = setting(
        &None,
        &[
            "ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID",
            "ARM_OIDC_AZURE_SERVICE_CONNECTION_ID",
        ],
    );
    if let Some(service_connection_id) = connection {
        if let Some(a) = login
            .audience
            .as_deref()
            .filter(|a| *a != crate::clients::azure::assertion::EXCHANGE_AUDIENCE)
        {
            return Err(format!("`vault.auth_login_jwt.audience` is {a:?}, but Azure DevOps issues its tokens for \"api://AzureADTokenExchange\" only: remove `audience` and bind that audience in the role."));
        }
        let request_uri = setting(&None, &["SYSTEM_OIDCREQUESTURI"]).ok_or(
            "`vault.auth_login_jwt` would request its JWT from Azure DevOps (ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID is set), but SYSTEM_OIDCREQUESTURI is not: run in an Azure Pipelines job, which sets it.",
        )?;
        let access_token = setting(&None, &["SYSTEM_ACCESSTOKEN"]).ok_or(
            "`vault.auth_login_jwt` would request its JWT from Azure DevOps (ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID is set), but SYSTEM_ACCESSTOKEN is not: map it into the step's environment (`env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`).",
        )?;
        return Ok(JwtSource::AzureDevOps {
            request_uri,
            service_connection_id,
            access_token,
        });
    }
    Err("`vault.auth_login_jwt` has no JWT: set `jwt` or APIM_VAULT_AUTH_JWT, or run where a CI system's OIDC token can be requested (GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN; Azure DevOps: ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID with SYSTEM_ACCESSTOKEN and SYSTEM_OIDCREQUESTURI).".into())
}

/// `max_retries`, else `VAULT_MAX_RETRIES` (as Vault's own clients read it), else the default.
fn max_retries(configured: Option<i64>) -> Result<u32, String> {
    if let Some(n) = configured {
        return Ok(u32::try_from(n).unwrap_or(DEFAULT_MAX_RETRIES));
    }
    match std::env::var("VAULT_MAX_RETRIES") {
        Ok(s) if !s.trim().is_empty() => s.trim().parse().map_err(|_| {
            format!("VAULT_MAX_RETRIES is {s:?}: it must be a whole number, 0 or more (retries after a 5xx, 429 or connection error).")
        }),
        _ => Ok(DEFAULT_MAX_RETRIES),
    }
}

fn azure_settings(a: &AzureBlock) -> Result<AzureSettings, String> {
    let url = |value: &Option<String>, name: &str, env: &str| -> Result<Option<Url>, String> {
        let envs: &[&str] = if env == "AZURE_AUTHORITY_HOST" {
            &["ARM_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"]
        } else {
            std::slice::from_ref(&env)
        };
        setting(value, envs)
            .map(|s| parse_http_url(&s).map_err(|why| format!("`azure.{name}` ({env}) {why}.")))
            .transpose()
    };
    let environment = match setting(&a.environment, &["ARM_ENVIRONMENT"]) {
        Some(e) => Environment::parse(&e)
            .map_err(|why| format!("`azure.environment` (ARM_ENVIRONMENT): {why}."))?,
        None => Environment::Public,
    };
    Ok(AzureSettings {
        subscription_id: setting(&a.subscription_id, &["ARM_SUBSCRIPTION_ID"]),
        tenant_id: setting(&a.tenant_id, &["ARM_TENANT_ID"]),
        client_id: setting(&a.client_id, &["ARM_CLIENT_ID"]),
        client_secret: setting(&a.client_secret, &["ARM_CLIENT_SECRET"]),
        use_oidc: flag(a.use_oidc, "ARM_USE_OIDC"),
        oidc_token_file_path: setting(
            &a.oidc_token_file_path,
            &["ARM_OIDC_TOKEN_FILE_PATH", "AZURE_FEDERATED_TOKEN_FILE"],
        )
        .map(PathBuf::from),
        oidc_token: setting(&a.oidc_token, &["ARM_OIDC_TOKEN"]),
        oidc_request_url: setting(
            &a.oidc_request_url,
            &["ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL"],
        ),
        oidc_request_token: setting(
            &a.oidc_request_token,
            &["ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
        ),
        ado_pipeline_service_connection_id: setting(
            &a.ado_pipeline_service_connection_id,
            &[
                "ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID",
                "ARM_OIDC_AZURE_SERVICE_CONNECTION_ID",
            ],
        ),
        ado_request_uri: setting(&None, &["SYSTEM_OIDCREQUESTURI"]),
        ado_access_token: setting(&None, &["SYSTEM_ACCESSTOKEN"]),
        client_certificate_path: setting(
            &a.client_certificate_path,
            &["ARM_CLIENT_CERTIFICATE_PATH"],
        )
        .map(PathBuf::from),
        client_certificate_password: setting(
            &a.client_certificate_password,
            &["ARM_CLIENT_CERTIFICATE_PASSWORD"],
        ),
        use_msi: flag(a.use_msi, "ARM_USE_MSI"),
        use_cli: a.use_cli.or_else(|| env_flag("ARM_USE_CLI")),
        environment,
        resource_manager_endpoint: url(
            &a.resource_manager_endpoint,
            "resource_manager_endpoint",
            "ARM_RESOURCE_MANAGER_ENDPOINT",
        )?,
        authority_host: url(&a.authority_host, "authority_host", "AZURE_AUTHORITY_HOST")?,
        ca_cert_file: setting(&a.ca_cert_file, &["ARM_CA_CERT_FILE"]).map(PathBuf::from),
        ..AzureSettings::default()
    })
}

/// The cloud the Entra issuers are derived for. An authority host counts only when the
/// `azure` block or `ARM_AUTHORITY_HOST` asks for it: `AZURE_AUTHORITY_HOST` is set by AKS
/// workload identity (and others) for their own sign-in, and silently rewriting the issuer
/// an auth backend trusts from it would make Vault refuse every APIM login. An ambient value
/// that names another authority than the cloud's is recorded, for a warning where an issuer
/// is derived.
fn azure_cloud(block: &AzureBlock) -> AzureCloud {
    let environment_set = setting(&block.environment, &["ARM_ENVIRONMENT"]);
    let environment = environment_set
        .as_deref()
        .and_then(|e| Environment::parse(e).ok())
        .unwrap_or_default();
    let (authority_host, authority_source) = if let Some(h) = &block.authority_host {
        (Some(h.clone()), "`azure.authority_host`")
    } else if let Some(h) = setting(&None, &["ARM_AUTHORITY_HOST"]) {
        (Some(h), "ARM_AUTHORITY_HOST")
    } else if block.environment.is_some() {
        (None, "`azure.environment`")
    } else if environment_set.is_some() {
        (None, "ARM_ENVIRONMENT")
    } else {
        (None, "the default cloud (public)")
    };
    let ignored_ambient_host = setting(&None, &["AZURE_AUTHORITY_HOST"]).filter(|h| {
        authority_host.is_none()
            && h.trim_end_matches('/') != environment.authority_host().trim_end_matches('/')
    });
    AzureCloud {
        environment: environment_set
            .map(|_| environment.name().to_string())
            .unwrap_or_else(|| "public".into()),
        authority_host,
        authority_source,
        ignored_ambient_host,
    }
}

#[async_trait]
impl Provider for ApimProvider {
    type Model = ProviderModel;
    type Data = ProviderData;

    fn schema(&self) -> &Schema {
        provider_schema()
    }

    async fn configure(
        &self,
        config: ProviderPlan,
        _terraform_version: &str,
        d: &mut Diags,
    ) -> Option<ProviderData> {
        crate::resources::shared_reads::new_operation();
        let vault = vault_settings(&config.vault, d).and_then(|s| {
            Vault::new(s)
                .map(Arc::new)
                .map_err(|e| format!("The Vault client could not be set up: {e}"))
        });
        let (cloud, azure) = match config.azure {
            Known::Unknown => (
                AzureCloud {
                    environment: "public".into(),
                    authority_source: "the default cloud (public)",
                    ..AzureCloud::default()
                },
                Err(format!("The `azure` block of the provider {UNKNOWN_BLOCK}")),
            ),
            Known::Value(block) => {
                let block = block.unwrap_or_default();
                let cloud = azure_cloud(&block);
                let azure = azure_settings(&block)
                    .and_then(|s| Azure::new(s).map(Arc::new).map_err(|e| e.to_string()));
                (cloud, azure)
            }
        };
        Some(ProviderData::new(vault, azure, cloud))
    }

    fn resources(&self) -> &[Box<dyn ResourceType<ProviderData>>] {
        &self.resources
    }
    fn data_sources(&self) -> &[Box<dyn DataSourceType<ProviderData>>] {
        &self.data_sources
    }
    fn ephemeral_resources(&self) -> &[Box<dyn EphemeralType<ProviderData>>] {
        &self.ephemeral
    }
    fn list_resources(&self) -> &[Box<dyn ListType<ProviderData>>] {
        &self.lists
    }
    fn functions(&self) -> &[Box<dyn Function>] {
        &self.functions
    }
    fn actions(&self) -> &[Box<dyn ActionType<ProviderData>>] {
        &self.actions
    }
    async fn shutdown(&self, data: Option<std::sync::Arc<ProviderData>>) {
        if let Some(d) = data {
            d.release().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{home_dir, jwt_source_from, ApimProvider, JwtLoginBlock, JwtSource};
    use std::ffi::OsString;
    use std::path::PathBuf;

    fn source(audience: Option<&str>, pairs: &[(&str, &str)]) -> Result<JwtSource, String> {
        let login = JwtLoginBlock {
            role: "r".into(),
            audience: audience.map(str::to_string),
            ..Default::default()
        };
        jwt_source_from(&login, &|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    /// `auth_login_jwt`'s JWT: given, else GitHub's request (the `ARM_*` pair, then GitHub's
    /// own), else Azure DevOps'; a half-given flow names what is missing.
    #[test]
    fn vault_jwt_source_order_and_half_given_flows() {
        let gh = &[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh/a"),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t-actions"),
            ("ARM_OIDC_REQUEST_URL", "https://gh/arm"),
            ("ARM_OIDC_REQUEST_TOKEN", "t-arm"),
            ("ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", "c"),
            ("SYSTEM_ACCESSTOKEN", "t-ado"),
            ("SYSTEM_OIDCREQUESTURI", "https://ado/x"),
        ];
        match source(Some("vault"), gh).unwrap() {
            JwtSource::GitHub {
                request_url,
                request_token,
                audience,
            } => {
                assert_eq!(
                    (request_url.as_str(), request_token.as_str()),
                    ("https://gh/arm", "t-arm")
                );
                assert_eq!(audience.as_deref(), Some("vault"));
            }
            _ => panic!("GitHub's request first"),
        }
        assert!(matches!(
            source(None, &[("APIM_VAULT_AUTH_JWT", "j"), ("ARM_OIDC_REQUEST_URL", "u")]),
            Ok(JwtSource::Given(j)) if j == "j"
        ));
        assert!(matches!(
            source(None, &gh[4..]),
            Ok(JwtSource::AzureDevOps { service_connection_id, .. }) if service_connection_id == "c"
        ));
        let e = source(None, &[("ACTIONS_ID_TOKEN_REQUEST_URL", "https://gh/a")])
            .err()
            .unwrap();
        assert!(e.contains("ACTIONS_ID_TOKEN_REQUEST_TOKEN"), "{e}");
        let e = source(None, &[("ARM_OIDC_REQUEST_TOKEN", "t")])
            .err()
            .unwrap();
        assert!(
            e.contains("ARM_OIDC_REQUEST_URL") && !e.contains("\"t\""),
            "{e}"
        );
        let e = source(None, &gh[4..6]).err().unwrap();
        assert!(e.contains("SYSTEM_OIDCREQUESTURI"), "{e}");
        let e = source(None, &[gh[4], gh[6]]).err().unwrap();
        assert!(
            e.contains("SYSTEM_ACCESSTOKEN") && e.contains("$(System.AccessToken)"),
            "{e}"
        );
        let e = source(Some("vault"), &gh[4..]).err().unwrap();
        assert!(
            e.contains("api://AzureADTokenExchange") && e.contains("audience"),
            "{e}"
        );
        let e = source(None, &[]).err().unwrap();
        assert!(
            e.contains("has no JWT") && e.contains("APIM_VAULT_AUTH_JWT"),
            "{e}"
        );
    }

    /// `~/.vault-token` is looked up in `HOME`, else in `USERPROFILE` (Windows).
    #[test]
    fn token_file_home_is_home_then_userprofile() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            home_dir(env(&[("HOME", "/home/u"), ("USERPROFILE", "C:\\Users\\u")])),
            Some(PathBuf::from("/home/u"))
        );
        assert_eq!(
            home_dir(env(&[("USERPROFILE", "C:\\Users\\u")])),
            Some(PathBuf::from("C:\\Users\\u"))
        );
        assert_eq!(
            home_dir(env(&[("HOME", ""), ("USERPROFILE", "C:\\Users\\u")])),
            Some(PathBuf::from("C:\\Users\\u"))
        );
        assert_eq!(home_dir(env(&[])), None);
    }
    use crate::framework::lifecycle::check_models;

    /// A misspelt or missing model field would read null or be dropped from state, and a
    /// field that cannot hold null or unknown would fail on what Terraform sends: every model
    /// must name exactly its schema's attributes and blocks, each with a type that fits.
    #[test]
    fn every_model_fits_its_schema() {
        if let Err(e) = check_models(&ApimProvider::new()) {
            panic!("{e}");
        }
    }
}
