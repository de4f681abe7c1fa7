//! `apim_vault_auth_backend`: the Vault JWT auth mount that trusts Entra ID tokens.
//!
//! With `tenant_id` and `token_version`, the discovery URL and the issuer are derived for the
//! provider's Azure environment (or its custom authority host, e.g. the emulator), because a
//! token-version/issuer mismatch is the classic cause of "invalid issuer" login failures.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::auth::{AuthMount, EnableAuth, JwtConfig, TuneMount};
use crate::clients::vault::Vault;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::identity::IdentitySchema;
use crate::framework::list::{ListResource, Listed};
use crate::framework::model::Known;
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, Schema};
use crate::framework::value::{Type, Value};

use super::{already_exists, api_error};

const TYPE: &str = "apim_vault_auth_backend";

/// The resource.
pub struct VaultAuthBackend;

/// The discovery URL and issuer of Entra tokens of `version` (1 or 2) for `tenant`, in the
/// Azure `environment` or under a custom `authority_host`.
pub fn entra_issuer(
    environment: &str,
    authority_host: Option<&str>,
    tenant: &str,
    version: i64,
) -> String {
    if let Some(host) = authority_host {
        let host = host.trim_end_matches('/');
        return if version == 2 {
            format!("{host}/{tenant}/v2.0")
        } else {
            format!("{host}/{tenant}/")
        };
    }
    match (environment, version) {
        ("china", 2) => format!("https://login.partner.microsoftonline.cn/{tenant}/v2.0"),
        ("china", _) => format!("https://sts.chinacloudapi.cn/{tenant}/"),
        ("usgovernment", 2) => format!("https://login.microsoftonline.us/{tenant}/v2.0"),
        (_, 2) => format!("https://login.microsoftonline.com/{tenant}/v2.0"),
        // Version 1 tokens of the public and US Government clouds share this issuer.
        _ => format!("https://sts.windows.net/{tenant}/"),
    }
}

fn validate_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    super::vault_binding::grammar::validate_mount_path(v, p, d);
}

fn validate_tenant(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid tenant ID", |s| {
        if is_guid(s) {
            Ok(())
        } else {
            Err(format!("`tenant_id` is {s:?}: use the tenant's GUID (Entra ID → Overview → Tenant ID). Token issuers carry the GUID, not the domain name."))
        }
    });
}

/// True for `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn validate_version(v: &Value, p: &AttrPath, d: &mut Diags) {
    if !matches!(v.as_i64(), Some(1 | 2)) {
        d.attr_error(
            p.clone(),
            "Invalid token version",
            "`token_version` must be 1 (managed-identity tokens, issuer https://sts.windows.net/<tenant>/) or 2 (issuer <authority>/<tenant>/v2.0).",
        );
    }
}

fn validate_discovery(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid discovery URL", |s| {
        if s.contains(".well-known") {
            Err(format!("`oidc_discovery_url` is {s:?}: give the issuer's base URL; Vault appends `/.well-known/openid-configuration` itself."))
        } else if !(s.starts_with("https://") || s.starts_with("http://")) {
            Err(format!(
                "`oidc_discovery_url` is {s:?}: it must be an https:// URL."
            ))
        } else {
            Ok(())
        }
    });
}

crate::model! {
    /// An `apim_vault_auth_backend`.
    pub struct AuthBackendModel, plan AuthBackendPlan {
        /// The mount path.
        pub id: Known<String>,
        /// `path` (default `jwt`).
        pub path: Option<String>,
        /// `description`.
        pub description: Option<String>,
        /// `tenant_id`.
        pub tenant_id: Option<String>,
        /// `token_version` (default 1).
        pub token_version: Option<i64>,
        /// `oidc_discovery_url` (derived from the tenant).
        pub oidc_discovery_url: Known<Option<String>>,
        /// `oidc_discovery_ca_pem`.
        pub oidc_discovery_ca_pem: Option<String>,
        /// `jwks_url`.
        pub jwks_url: Option<String>,
        /// `jwks_ca_pem`.
        pub jwks_ca_pem: Option<String>,
        /// `jwt_validation_pubkeys`.
        pub jwt_validation_pubkeys: Option<Vec<String>>,
        /// `bound_issuer` (derived from the tenant).
        pub bound_issuer: Known<Option<String>>,
        /// `default_lease_ttl`.
        pub default_lease_ttl: Known<Option<i64>>,
        /// `max_lease_ttl`.
        pub max_lease_ttl: Known<Option<i64>>,
        /// The mount's accessor.
        pub accessor: Known<String>,
    }
}

impl AuthBackendModel {
    fn mount_path(&self) -> String {
        self.path.clone().unwrap_or_else(|| "jwt".into())
    }
}

/// A string attribute as the state should hold it: Vault's "" is null when the
/// configuration (prior state) left it unset.
fn text(prior: &Option<String>, server: &str) -> Option<String> {
    match prior {
        None if server.is_empty() => None,
        // PEM blocks may come back with other trailing whitespace.
        Some(p) if p.trim() == server.trim() => Some(p.clone()),
        _ => Some(server.to_string()),
    }
}

fn desired_config(m: &AuthBackendModel) -> JwtConfig {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    JwtConfig {
        oidc_discovery_url: m.oidc_discovery_url.value().cloned().unwrap_or_default(),
        oidc_discovery_ca_pem: s(&m.oidc_discovery_ca_pem),
        jwks_url: s(&m.jwks_url),
        jwks_ca_pem: s(&m.jwks_ca_pem),
        jwt_validation_pubkeys: m.jwt_validation_pubkeys.clone().unwrap_or_default(),
        bound_issuer: m.bound_issuer.value().cloned().unwrap_or_default(),
    }
}

fn tune(m: &AuthBackendModel) -> TuneMount {
    TuneMount {
        default_lease_ttl: m.default_lease_ttl.value().copied(),
        max_lease_ttl: m.max_lease_ttl.value().copied(),
        description: Some(m.description.clone().unwrap_or_default()),
    }
}

impl VaultAuthBackend {
    /// The state of the mount at `path` as Vault reports it, given the prior state.
    async fn read_state(
        &self,
        vault: &Vault,
        data: &ProviderData,
        path: &str,
        prior: &AuthBackendModel,
        d: &mut Diags,
    ) -> Option<AuthBackendModel> {
        let mount = match vault.read_auth_mount(path).await {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                api_error(d, "read", TYPE, &format!("auth mount {path:?}"), &e);
                return Some(prior.clone());
            }
        };
        if !is_jwt(&mount) {
            d.error(
                format!("Unable to read {TYPE}"),
                format!("The auth mount {path:?} is of type {:?}, not a JWT/OIDC mount. Choose another `path`, or remove the other mount first.", mount.kind),
            );
            return Some(prior.clone());
        }
        let cfg = match vault.read_jwt_config(path).await {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                api_error(
                    d,
                    "read",
                    TYPE,
                    &format!("JWT configuration of {path:?}"),
                    &e,
                );
                return Some(prior.clone());
            }
        };
        // Vault does not store the tenant: keep it, or (after import) recognise the URL this
        // provider would have derived for one.
        let (tenant_id, token_version) = match (&prior.tenant_id, infer_tenant(data, &cfg)) {
            (Some(t), _) => (Some(t.clone()), prior.token_version),
            (None, Some((t, v))) => (Some(t), Some(v)),
            (None, None) => (None, Some(prior.token_version.unwrap_or(1))),
        };
        let oidc_discovery_url = if tenant_id.is_none() && cfg.oidc_discovery_url.is_empty() {
            None
        } else {
            Some(cfg.oidc_discovery_url.clone())
        };
        Some(AuthBackendModel {
            id: Known::Value(path.to_string()),
            path: Some(path.to_string()),
            description: text(&prior.description, &mount.description),
            tenant_id,
            token_version,
            oidc_discovery_url: Known::Value(oidc_discovery_url),
            oidc_discovery_ca_pem: text(&prior.oidc_discovery_ca_pem, &cfg.oidc_discovery_ca_pem),
            jwks_url: text(&prior.jwks_url, &cfg.jwks_url),
            jwks_ca_pem: text(&prior.jwks_ca_pem, &cfg.jwks_ca_pem),
            jwt_validation_pubkeys: if cfg.jwt_validation_pubkeys.is_empty()
                && prior.jwt_validation_pubkeys.is_none()
            {
                None
            } else {
                Some(cfg.jwt_validation_pubkeys.clone())
            },
            bound_issuer: Known::Value(Some(cfg.bound_issuer.clone())),
            default_lease_ttl: Known::Value(Some(mount.config.default_lease_ttl)),
            max_lease_ttl: Known::Value(Some(mount.config.max_lease_ttl)),
            accessor: Known::Value(mount.accessor.clone()),
        })
    }
}

fn is_jwt(m: &AuthMount) -> bool {
    matches!(m.kind.as_str(), "jwt" | "oidc")
}

/// The tenant and version whose derived discovery URL is `cfg`'s, if any.
fn infer_tenant(data: &ProviderData, cfg: &JwtConfig) -> Option<(String, i64)> {
    let url = &cfg.oidc_discovery_url;
    let (env, host) = authority(data);
    let trimmed = url.trim_end_matches('/');
    let (rest, version) = match trimmed.strip_suffix("/v2.0") {
        Some(r) => (r, 2),
        None => (trimmed, 1),
    };
    let tenant = rest.rsplit('/').next()?;
    (is_guid(tenant)
        && entra_issuer(&env, host.as_deref(), tenant, version) == *url
        && cfg.bound_issuer == *url)
        .then(|| (tenant.to_string(), version))
}

fn authority(data: &ProviderData) -> (String, Option<String>) {
    (
        data.cloud.environment.clone(),
        data.cloud.authority_host.clone(),
    )
}

#[async_trait]
impl Resource<ProviderData> for VaultAuthBackend {
    type Model = AuthBackendModel;

    fn identity(&self) -> Option<&IdentitySchema> {
        static I: OnceLock<IdentitySchema> = OnceLock::new();
        Some(I.get_or_init(|| {
            IdentitySchema::new(&[("path", "The mount path of the auth method.")], |v| {
                v.join("/")
            })
        }))
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("A Vault JWT auth mount that trusts Entra ID tokens, such as the managed-identity tokens of API Management. Give `tenant_id` (and `token_version`) to have the discovery URL and issuer derived for the provider's Azure environment, or one explicit source of signing keys: `oidc_discovery_url`, `jwks_url` or `jwt_validation_pubkeys`.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("The mount path."))
                    .attr(Attribute::string("path").default("jwt").requires_replace().validate(validate_path).describe("Mount path of the auth method."))
                    .attr(Attribute::string("description").describe("Description of the mount."))
                    .attr(Attribute::string("tenant_id").validate(validate_tenant).describe("Entra tenant (GUID) whose tokens are trusted. Derives `oidc_discovery_url` and `bound_issuer` for the provider's Azure environment (`azure.environment`, or `azure.authority_host` when set)."))
                    .attr(Attribute::number("token_version").default(1).validate(validate_version).describe("Version of the tokens to trust with `tenant_id`: `1` (managed-identity tokens: issuer `https://sts.windows.net/<tenant>/`) or `2` (issuer `<authority>/<tenant>/v2.0`)."))
                    .attr(Attribute::string("oidc_discovery_url").optional_computed().validate(validate_discovery).describe("OIDC discovery base URL (without `/.well-known/...`). Derived when `tenant_id` is set."))
                    .attr(Attribute::string("oidc_discovery_ca_pem").describe("CA certificate (PEM) to trust for the discovery URL, for a private CA."))
                    .attr(Attribute::string("jwks_url").describe("JWKS URL, as an alternative source of signing keys."))
                    .attr(Attribute::string("jwks_ca_pem").describe("CA certificate (PEM) to trust for `jwks_url`."))
                    .attr(Attribute::of("jwt_validation_pubkeys", Type::list_of(Type::String)).describe("Static PEM public keys, as an alternative source of signing keys."))
                    .attr(Attribute::string("bound_issuer").optional_computed().describe("The `iss` every token must carry. Derived when `tenant_id` is set; set it with the other key sources, since Vault checks the issuer only through it."))
                    .attr(Attribute::number("default_lease_ttl").optional_computed().use_state_for_unknown().validate(validators::non_negative_int).describe("Default TTL (seconds) of tokens issued by this mount; 0 means the system default."))
                    .attr(Attribute::number("max_lease_ttl").optional_computed().use_state_for_unknown().validate(validators::non_negative_int).describe("Maximum TTL (seconds) of tokens issued by this mount; 0 means the system default."))
                    .attr(Attribute::string("accessor").computed().use_state_for_unknown().describe("The mount's accessor."))
                    .constraint(Constraint::ExactlyOneOf(&["tenant_id", "oidc_discovery_url", "jwks_url", "jwt_validation_pubkeys"])),
            )
        })
    }

    fn validate(&self, config: &AuthBackendPlan, d: &mut Diags) {
        let explicit = !config.oidc_discovery_url.is_null()
            || !config.jwks_url.is_null()
            || !config.jwt_validation_pubkeys.is_null();
        if explicit && config.bound_issuer.is_null() {
            d.attr_warning(
                AttrPath::root("bound_issuer"),
                "No bound issuer",
                "Without `bound_issuer`, Vault accepts tokens of any issuer whose keys it trusts. Set it to the issuer of the tokens you expect (for Entra managed identities: https://sts.windows.net/<tenant>/), or use `tenant_id` to have it derived.",
            );
        }
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_, AuthBackendModel>,
        plan: &mut Plan<AuthBackendModel>,
        d: &mut Diags,
    ) {
        let cfg = req.config;
        if let (Some(tenant), Some(version)) =
            (cfg.tenant_id.as_str(), plan.state.token_version.value())
        {
            let Some(data) = ctx.data(d) else { return };
            let (env, host) = authority(data);
            let issuer = entra_issuer(&env, host.as_deref(), tenant, *version);
            crate::log::debug(
                "Entra issuer derived from tenant_id",
                &[
                    ("issuer", &issuer),
                    ("authority_from", data.cloud.authority_source),
                ],
            );
            if let Some(ambient) = &data.cloud.ignored_ambient_host {
                d.attr_warning(
                    AttrPath::root("tenant_id"),
                    "AZURE_AUTHORITY_HOST not used for the issuer",
                    format!("AZURE_AUTHORITY_HOST is {ambient:?} (AKS workload identity and Azure SDKs set it for their own sign-in), but the issuer is derived for the {env:?} cloud, from {}: {issuer}. If the APIM instance's tokens come from {ambient:?}, set `azure {{ authority_host }}` or ARM_AUTHORITY_HOST to it.", data.cloud.authority_source),
                );
            }
            // Derived values are planned from the configuration, so a drift of Vault's copy
            // shows as an update.
            plan.state.oidc_discovery_url = Known::Value(Some(issuer.clone()));
            if cfg.bound_issuer.is_null() {
                plan.state.bound_issuer = Known::Value(Some(issuer));
            }
        } else if req.prior.is_none() && cfg.bound_issuer.is_null() && !cfg.tenant_id.is_unknown() {
            plan.state.bound_issuer = Known::Value(Some(String::new()));
        }
        if req.prior.is_none() && cfg.oidc_discovery_url.is_null() && cfg.tenant_id.is_null() {
            plan.state.oidc_discovery_url = Known::Value(None);
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: AuthBackendModel,
        d: &mut Diags,
    ) -> Option<AuthBackendModel> {
        let data = ctx.data(d)?;
        let vault = data.vault(d)?;
        let path = planned.mount_path();
        let object = format!("auth mount {path:?}");
        match ctx.cancel.run(vault.read_auth_mount(&path)).await {
            Ok(Ok(Some(m))) => {
                let what = format!("An auth method of type {:?} mounted at {path:?}", m.kind);
                already_exists(d, TYPE, &what, &path, "; or choose another `path`");
                return None;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                api_error(d, "create", TYPE, &object, &e);
                return None;
            }
            Err(_) => {
                d.error(
                    format!("Unable to create {TYPE}"),
                    "Cancelled: Terraform asked the provider to stop.",
                );
                return None;
            }
        }
        let t = tune(&planned);
        let description = planned.description.clone().unwrap_or_default();
        let enable = EnableAuth {
            kind: "jwt",
            description: &description,
            config: TuneMount {
                description: None,
                ..t
            },
        };
        if let Err(e) = vault.enable_auth(&path, &enable).await {
            api_error(d, "create", TYPE, &object, &e);
            return None;
        }
        if let Err(e) = vault
            .write_jwt_config(&path, &desired_config(&planned))
            .await
        {
            // Leave nothing behind: the mount without its configuration is removed again.
            let cleanup = vault.disable_auth(&path).await;
            api_error(d, "create", TYPE, &object, &e);
            if let Err(c) = cleanup {
                d.error(
                    format!("Unable to clean up {TYPE}"),
                    format!("The mount {path:?} was enabled but could not be configured, nor removed again ({c}). Remove it with `bao auth disable {path}` (or `vault auth disable {path}`)."),
                );
                return self
                    .read_state(vault, data, &path, &planned, &mut Diags::new())
                    .await;
            }
            return None;
        }
        self.read_state(vault, data, &path, &planned, d).await
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: AuthBackendModel,
        d: &mut Diags,
    ) -> Option<AuthBackendModel> {
        let data = ctx.data(d)?;
        let vault = data.vault(d)?;
        self.read_state(vault, data, &state.mount_path(), &state, d)
            .await
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        prior: AuthBackendModel,
        planned: AuthBackendModel,
        d: &mut Diags,
    ) -> Option<AuthBackendModel> {
        let data = ctx.data(d)?;
        let vault = data.vault(d)?;
        let path = planned.mount_path();
        let object = format!("auth mount {path:?}");
        let tuned = prior.description != planned.description
            || prior.default_lease_ttl != planned.default_lease_ttl
            || prior.max_lease_ttl != planned.max_lease_ttl;
        if tuned {
            if let Err(e) = vault.tune_auth(&path, &tune(&planned)).await {
                api_error(d, "update", TYPE, &object, &e);
                return None;
            }
        }
        if desired_config(&prior) != desired_config(&planned) {
            if let Err(e) = vault
                .write_jwt_config(&path, &desired_config(&planned))
                .await
            {
                api_error(d, "update", TYPE, &object, &e);
                return self
                    .read_state(vault, data, &path, &prior, &mut Diags::new())
                    .await;
            }
        }
        self.read_state(vault, data, &path, &planned, d).await
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: AuthBackendModel, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let path = state.mount_path();
        if let Err(e) = vault.disable_auth(&path).await {
            api_error(d, "delete", TYPE, &format!("auth mount {path:?}"), &e);
        }
    }

    fn config_from_state(&self, _ctx: &Ctx<ProviderData>, s: &mut AuthBackendModel) {
        // The tenant form: the discovery URL and the issuer are derived from it.
        if s.tenant_id.is_some() {
            if s.bound_issuer == s.oidc_discovery_url {
                s.bound_issuer = Known::Value(None);
            }
            s.oidc_discovery_url = Known::Value(None);
        }
        if s.bound_issuer
            .get()
            .is_some_and(|b| b.as_deref() == Some(""))
        {
            s.bound_issuer = Known::Value(None);
        }
        // 0 is the system default of both TTLs.
        for ttl in [&mut s.default_lease_ttl, &mut s.max_lease_ttl] {
            if *ttl == Known::Value(Some(0)) {
                *ttl = Known::Value(None);
            }
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<ProviderData>,
        id: &str,
        d: &mut Diags,
    ) -> Option<AuthBackendModel> {
        let data = ctx.data(d)?;
        let vault = data.vault(d)?;
        // The mount path, or its API path (`auth/<path>`).
        let path = super::strip_api_path(id, &["auth/"]);
        let prior = AuthBackendModel {
            path: Some(path.to_string()),
            ..AuthBackendModel::default()
        };
        match self.read_state(vault, data, path, &prior, d).await {
            Some(s) => Some(s),
            None => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!("Nothing is mounted at auth path {path:?}. The import ID is the mount path, e.g. `jwt`."),
                );
                None
            }
        }
    }
}

crate::model! {
    /// The `config` block of `list "apim_vault_auth_backend"`.
    pub struct AuthBackendListConfig, plan AuthBackendListConfigPlan {
        /// `path_prefix`.
        pub path_prefix: Option<String>,
    }
}

/// `list "apim_vault_auth_backend"`: the JWT/OIDC auth mounts of the provider's Vault.
pub struct VaultAuthBackendList;

#[async_trait]
impl ListResource<ProviderData> for VaultAuthBackendList {
    type Resource = VaultAuthBackend;
    type Config = AuthBackendListConfig;

    fn resource(&self) -> &VaultAuthBackend {
        &VaultAuthBackend
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The JWT/OIDC auth mounts of the provider's Vault (and namespace), whether a configuration manages them or not. Mounts of other auth methods are left out.")
                    .attr(Attribute::string("path_prefix").describe("Only the mounts whose path starts with this.")),
            )
        })
    }

    async fn list(
        &self,
        ctx: &Ctx<ProviderData>,
        config: AuthBackendListConfig,
        limit: usize,
        d: &mut Diags,
    ) -> Vec<Listed> {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return Vec::new();
        };
        let mounts = match vault.list_auth_mounts().await {
            Ok(m) => m,
            Err(e) => {
                api_error(d, "list", TYPE, "auth mounts", &e);
                return Vec::new();
            }
        };
        let prefix = config.path_prefix.unwrap_or_default();
        mounts
            .into_iter()
            .filter(|(path, m)| is_jwt(m) && path.starts_with(&prefix))
            .take(limit)
            .map(|(path, m)| Listed {
                import_id: path.clone(),
                display_name: match m.description.as_str() {
                    "" => path,
                    desc => format!("{path} ({desc})"),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_follow_cloud_and_version() {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            entra_issuer("public", None, t, 1),
            format!("https://sts.windows.net/{t}/")
        );
        assert_eq!(
            entra_issuer("public", None, t, 2),
            format!("https://login.microsoftonline.com/{t}/v2.0")
        );
        assert_eq!(
            entra_issuer("usgovernment", None, t, 2),
            format!("https://login.microsoftonline.us/{t}/v2.0")
        );
        assert_eq!(
            entra_issuer("china", None, t, 1),
            format!("https://sts.chinacloudapi.cn/{t}/")
        );
        assert_eq!(
            entra_issuer("public", Some("https://127.0.0.1:8443/"), t, 1),
            format!("https://127.0.0.1:8443/{t}/")
        );
        assert_eq!(
            entra_issuer("public", Some("https://127.0.0.1:8443"), t, 2),
            format!("https://127.0.0.1:8443/{t}/v2.0")
        );
    }

    #[test]
    fn guids() {
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
    }
}
