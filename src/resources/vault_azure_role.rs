//! `apim_vault_azure_role`: the Vault role one APIM identity logs in with.
//!
//! With `api_management_id`, plan asks Azure Resource Manager for the instance's managed
//! identity, so the plan shows the concrete object ID and tenant the role is bound to, and a
//! changed identity (re-created in Azure) shows as a change of the role's bound claims.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::apim::service::{IdentitySelector, ResolvedIdentity};
use crate::clients::azure::id::{ResourceId, ServiceId, UserAssignedIdentityId};
use crate::clients::azure::{Azure, AzureError};
use crate::clients::vault::role::{
    AzureRoleRequest, BoundClaimsType, JwtRoleRequest, Role, RoleMethod, RoleRequest, RoleType,
    TokenFields, TokenFieldsRequest,
};
use crate::clients::vault::Vault;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::identity::IdentitySchema;
use crate::framework::list::{ListResource, Listed};
use crate::framework::model::{Known, Model};
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, Schema};
use crate::framework::value::{Type, Value};
use crate::log;

use super::shared_reads::service_reads;
use super::this_run::RoleFacts;
use super::vault_auth_backend::is_guid;
use super::vault_binding::grammar::{
    validate_mount_path, validate_service_id, validate_vault_name,
};
use super::{already_exists, api_error};

const TYPE: &str = "apim_vault_azure_role";

/// The resource.
pub struct VaultAzureRole;

/// Vault's grammar for role names (the JWT method's role paths match no other name), and
/// lowercase, since Vault lowercases role names at login.
fn validate_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    let before = d.0.len();
    validate_vault_name(v, p, d);
    if d.0.len() > before {
        return;
    }
    validators::string(v, p, d, "Invalid role name", |s| {
        if s != s.to_lowercase() {
            Err(format!(
                "`name` is {s:?}: Vault lowercases role names at login, so use {:?}.",
                s.to_lowercase()
            ))
        } else {
            Ok(())
        }
    });
}

fn validate_identity(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid identity", |s| {
        IdentitySelector::parse(s).map(|_| ()).map_err(|e| format!("`identity` must be \"SystemAssigned\" or the ARM ID of one of the instance's user-assigned identities: {e}"))
    });
}

fn validate_guid(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid ID", |s| {
        if is_guid(s) {
            Ok(())
        } else {
            Err(format!("`{p}` is {s:?}: it must be a GUID."))
        }
    });
}

crate::model! {
    /// An `apim_vault_azure_role`.
    pub struct RoleModel, plan RolePlan {
        /// `<backend>/<name>`.
        pub id: Known<String>,
        /// `name`.
        pub name: String,
        /// `backend` (default `jwt`).
        pub backend: Option<String>,
        /// `auth_type` (default `jwt`).
        pub auth_type: Option<String>,
        /// `api_management_id` (found through ARM at import: Vault does not record it).
        pub api_management_id: Known<Option<String>>,
        /// `identity` (default `SystemAssigned`).
        pub identity: Option<String>,
        /// `principal_id` (resolved from the instance).
        pub principal_id: Known<Option<String>>,
        /// `tenant_id` (resolved from the instance).
        pub tenant_id: Known<Option<String>>,
        /// `audience`.
        pub audience: String,
        /// `token_policies`.
        pub token_policies: Known<Option<Vec<String>>>,
        /// `token_ttl`.
        pub token_ttl: Known<Option<i64>>,
        /// `token_max_ttl`.
        pub token_max_ttl: Known<Option<i64>>,
        /// `token_bound_cidrs`.
        pub token_bound_cidrs: Known<Option<Vec<String>>>,
        /// `token_type` (default `batch`).
        pub token_type: Known<Option<String>>,
        /// `token_no_default_policy` (default `true`).
        pub token_no_default_policy: Option<bool>,
        /// `user_claim`: `oid`.
        pub user_claim: Known<String>,
        /// `bound_claims`: `oid` and `tid`.
        pub bound_claims: Known<BTreeMap<String, String>>,
    }
}

impl RoleModel {
    fn backend(&self) -> &str {
        self.backend.as_deref().unwrap_or("jwt")
    }
    fn auth_type(&self) -> &str {
        self.auth_type.as_deref().unwrap_or("jwt")
    }
}

/// The role's fields as written to Vault (`POST auth/<backend>/role/<name>`).
pub fn role_body(s: &RoleModel) -> RoleRequest {
    let principal = s.principal_id.as_str().unwrap_or_default();
    let tenant = s.tenant_id.as_str().unwrap_or_default();
    let token = TokenFieldsRequest {
        token_policies: s.token_policies.value().cloned(),
        token_bound_cidrs: s.token_bound_cidrs.value().cloned(),
        token_ttl: s.token_ttl.value().copied(),
        token_max_ttl: s.token_max_ttl.value().copied(),
        token_type: s.token_type.value().cloned(),
        token_no_default_policy: s.token_no_default_policy,
    };
    if s.auth_type() == "azure" {
        // HashiCorp Vault's azure auth method: the service principal is the identity.
        RoleRequest::Azure(AzureRoleRequest {
            bound_service_principal_ids: vec![principal.to_string()],
            token,
        })
    } else {
        RoleRequest::Jwt(JwtRoleRequest {
            role_type: RoleType::Jwt,
            bound_audiences: vec![s.audience.clone()],
            user_claim: "oid".into(),
            bound_claims_type: BoundClaimsType::String,
            bound_claims: BTreeMap::from([
                ("oid".to_string(), principal.to_string()),
                ("tid".to_string(), tenant.to_string()),
            ]),
            token,
        })
    }
}

/// The backend and name of an import ID: ours, `<backend>/<name>`, or the Vault provider's,
/// the role's API path `auth/<backend>/role/<name>`.
fn role_import_id(id: &str) -> Option<(&str, &str)> {
    let id = id.trim_matches('/');
    let (backend, name) = match id
        .strip_prefix("auth/")
        .and_then(|rest| rest.rsplit_once("/role/"))
    {
        Some(found) => found,
        None => id.rsplit_once('/')?,
    };
    (!backend.is_empty() && !name.is_empty() && !name.contains('/')).then_some((backend, name))
}

/// The detail of a missing APIM instance.
fn instance_not_found(service: &ServiceId) -> String {
    format!("{service} does not exist (or the provider's Azure credentials cannot see it). Check the ID, the subscription, and that the instance is created before this role (reference it: `api_management_id = azurerm_api_management.main.id`).")
}

/// The auth method of a role's `auth_type`.
fn role_method(auth_type: &str) -> RoleMethod {
    if auth_type == "azure" {
        RoleMethod::Azure
    } else {
        RoleMethod::Jwt
    }
}

/// The state for a role as Vault reports it (`GET auth/<backend>/role/<name>`), keeping what
/// Vault does not store (the APIM ID, the identity selector) from `prior`.
pub fn state_from_role(prior: &RoleModel, backend: &str, name: &str, role: &Role) -> RoleModel {
    let (principal, tenant) = match role {
        Role::Azure(r) => (
            r.bound_service_principal_ids.first().cloned(),
            prior.tenant_id.value().cloned(),
        ),
        Role::Jwt(r) => (
            r.bound_claim("oid").map(str::to_string),
            r.bound_claim("tid").map(str::to_string),
        ),
    };
    let audiences = match role {
        Role::Jwt(r) => r.bound_audiences.as_slice(),
        Role::Azure(_) => &[],
    };
    let audience = match audiences {
        [one] => one.clone(),
        [] => prior.audience.clone(),
        many => many.join(","),
    };
    let user_claim = match role {
        Role::Jwt(r) => r.user_claim.as_deref(),
        Role::Azure(_) => None,
    };
    let mut claims = BTreeMap::new();
    if let Some(p) = &principal {
        claims.insert("oid".to_string(), p.clone());
    }
    if let Some(t) = &tenant {
        claims.insert("tid".to_string(), t.clone());
    }
    let token = role.token();
    RoleModel {
        id: Known::Value(format!("{backend}/{name}")),
        name: name.to_string(),
        backend: Some(backend.to_string()),
        auth_type: Some(prior.auth_type().to_string()),
        api_management_id: prior.api_management_id.clone(),
        identity: prior.identity.clone(),
        principal_id: Known::Value(principal),
        tenant_id: Known::Value(tenant),
        audience,
        token_policies: Known::Value(Some(token.token_policies.clone())),
        token_ttl: Known::Value(Some(token.token_ttl)),
        token_max_ttl: Known::Value(Some(token.token_max_ttl)),
        token_bound_cidrs: Known::Value(Some(token.token_bound_cidrs.clone())),
        token_type: Known::Value(Some(
            token.token_type.clone().unwrap_or_else(|| "default".into()),
        )),
        token_no_default_policy: Some(token.token_no_default_policy),
        user_claim: Known::Value(user_claim.unwrap_or("oid").to_string()),
        bound_claims: Known::Value(claims),
    }
}

/// The policies the tokens of a planned role carry (its `token_policies`, and `default`
/// unless `token_no_default_policy`), when the plan knows them.
fn planned_policies(s: &RolePlan) -> Option<Vec<String>> {
    let token = TokenFields {
        token_policies: s.token_policies.get()?.clone().unwrap_or_default(),
        token_no_default_policy: s.token_no_default_policy.get()?.unwrap_or(true),
        ..TokenFields::default()
    };
    Some(token.effective_policies())
}

/// The facts of a planned role (`None` values where the plan does not know them yet).
fn planned_facts(s: &RolePlan) -> RoleFacts {
    RoleFacts {
        token_policies: planned_policies(s),
        token_ttl: s.token_ttl.value().copied(),
        audiences: match s.auth_type.as_str() {
            Some("azure") => None,
            _ => s.audience.get().map(|a| vec![a.clone()]),
        },
        bound_identity: match (s.principal_id.as_str(), s.tenant_id.as_str()) {
            (Some(p), Some(t)) => Some((p.to_string(), t.to_string())),
            _ => None,
        },
    }
}

/// Resolves `which` identity of the instance `service`, from the read of it this process
/// shares with the bindings' checks (one read per operation, not one per resource).
async fn resolve_identity(
    azure: &Azure,
    service: &ServiceId,
    which: &IdentitySelector,
) -> Result<ResolvedIdentity, AzureError> {
    let read = service_reads()
        .get(&service.arm_id(), || azure.get_service(service))
        .await?;
    azure.identity_of(service, &read.value, which).await
}

/// The APIM instance and identity a configuration names, when both are known.
fn identity_target(v: &RolePlan) -> Option<(ServiceId, IdentitySelector)> {
    let id = ServiceId::parse(v.api_management_id.as_str()?).ok()?;
    let which = IdentitySelector::parse(v.identity.as_str().unwrap_or("SystemAssigned")).ok()?;
    Some((id, which))
}

/// The most roles of a backend plan reads to find others bound to the same identity; a
/// backend with more is not compared (and a debug line says so).
const MAX_ROLES_COMPARED: usize = 200;

/// A role on the same backend that admits the same identity with other policies.
struct SharedIdentity {
    name: String,
    policies: Vec<String>,
}

/// `"a", "b"`, or `none`.
fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warning that roles bound to one identity do not isolate from each other.
fn warn_shared_identity(
    d: &mut Diags,
    path: AttrPath,
    backend: &str,
    (principal, tenant): (&str, &str),
    policies: &[String],
    others: &[SharedIdentity],
) {
    let roles = others
        .iter()
        .map(|o| format!("{:?} (policies {})", o.name, quoted_list(&o.policies)))
        .collect::<Vec<_>>()
        .join(", ");
    d.attr_warning(
        path,
        "Another role is bound to the same identity",
        format!("On the auth mount {backend:?}, the role(s) {roles} admit the same identity (object ID {principal}, tenant {tenant}) as this role, whose tokens get the policies {}. Vault cannot tell which API the gateway logs in for, so these roles do not isolate from each other: whoever can edit any policy of this API Management instance can log in with any of them. Microsoft says of `authentication-managed-identity`: \"users with permissions to edit API Management policies can use this policy to authenticate as the service's managed identity\". The instance, not the API, is the isolation boundary: keep secrets that must stay apart behind separate API Management instances. See the guide \"How the runtime flow works\", section \"Where least privilege ends\".", quoted_list(policies)),
    );
}

impl VaultAzureRole {
    /// The other roles on `backend` that admit the identity with other policies than
    /// `policies`. Advisory: a backend that cannot be listed, a role that cannot be read, or a
    /// backend with more than [`MAX_ROLES_COMPARED`] roles is skipped with a debug line.
    async fn roles_sharing_identity(
        vault: &Vault,
        (backend, name, method): (&str, &str, RoleMethod),
        (principal, tenant): (&str, &str),
        policies: &[String],
    ) -> Vec<SharedIdentity> {
        let skipped = |why: &str| {
            log::debug(
                "Not comparing the role with the other roles of its backend",
                &[("backend", backend), ("role", name), ("reason", why)],
            );
        };
        let names = match vault.list_roles(backend).await {
            Ok(names) => names,
            Err(e) => {
                skipped(&e.to_string());
                return Vec::new();
            }
        };
        if names.len() > MAX_ROLES_COMPARED {
            skipped(&format!(
                "{} roles, more than the {MAX_ROLES_COMPARED} plan reads",
                names.len()
            ));
            return Vec::new();
        }
        let ours: BTreeSet<&String> = policies.iter().collect();
        let mut others = Vec::new();
        for other in names.iter().filter(|n| n.as_str() != name) {
            let role = match vault.read_role(backend, other, method).await {
                Ok(Some(role)) => role,
                Ok(None) => continue,
                Err(e) => {
                    skipped(&format!("reading role {other:?}: {e}"));
                    continue;
                }
            };
            let theirs = role.token().effective_policies();
            if role.admits_identity(principal, tenant)
                && theirs.iter().collect::<BTreeSet<_>>() != ours
            {
                others.push(SharedIdentity {
                    name: other.clone(),
                    policies: theirs,
                });
            }
        }
        others
    }

    /// Checks, when the backend exists already, that it is a mount of the kind the role needs.
    async fn check_backend(vault: &Vault, backend: &str, auth_type: &str, d: &mut Diags) -> bool {
        match vault.read_auth_mount(backend).await {
            Ok(Some(m)) => {
                let ok = if auth_type == "azure" {
                    m.kind == "azure"
                } else {
                    matches!(m.kind.as_str(), "jwt" | "oidc")
                };
                if !ok {
                    d.attr_error(
                        AttrPath::root("backend"),
                        "Backend of the wrong type",
                        format!("The auth mount {backend:?} is of type {:?}, but `auth_type = \"{auth_type}\"` needs a {} mount. Point `backend` at the mount of an apim_vault_auth_backend.", m.kind, if auth_type == "azure" { "azure" } else { "JWT" }),
                    );
                }
                ok
            }
            Ok(None) => true,
            Err(e) => {
                api_error(d, "plan", TYPE, &format!("auth mount {backend:?}"), &e);
                false
            }
        }
    }

    async fn read_role(
        &self,
        vault: &Vault,
        prior: &RoleModel,
        d: &mut Diags,
    ) -> Option<Option<RoleModel>> {
        let backend = prior.backend().to_string();
        let name = prior.name.clone();
        let method = role_method(prior.auth_type());
        match vault.read_role(&backend, &name, method).await {
            Ok(Some(role)) => Some(Some(state_from_role(prior, &backend, &name, &role))),
            Ok(None) => Some(None),
            Err(e) => {
                api_error(
                    d,
                    "read",
                    TYPE,
                    &format!("role {name:?} on {backend:?}"),
                    &e,
                );
                None
            }
        }
    }
}

#[async_trait]
impl Resource<ProviderData> for VaultAzureRole {
    type Model = RoleModel;

    fn identity(&self) -> Option<&IdentitySchema> {
        static I: OnceLock<IdentitySchema> = OnceLock::new();
        Some(I.get_or_init(|| {
            IdentitySchema::new(
                &[
                    ("backend", "Mount path of the auth method."),
                    ("name", "Role name."),
                ],
                |v| v.join("/"),
            )
        }))
    }

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The Vault role that one API Management identity logs in with: bound to the identity's object ID (`oid`) and tenant (`tid`), for one token audience, with least-privilege policies. Give `api_management_id` to have the identity resolved through Azure Resource Manager during plan, or `principal_id` and `tenant_id` directly.\n\nThe token settings default to what a single-use gateway login needs: the gateway logs in when it fetches the API's secrets (once per cache entry and refresh, whatever the number of requests), reads them once and drops the token. So the tokens are batch tokens (`token_type = \"batch\"`: Vault does not store them), carry only the role's policies (`token_no_default_policy = true`), and live 300 seconds (`token_ttl`, as long as a binding's default `cache_ttl`).\n\nPlan warns when another role on the same backend is bound to the same identity with other policies: roles bound to one identity do not isolate from each other, since whoever can edit any policy of the API Management instance can log in with either of them.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("`<backend>/<name>`."))
                    .attr(Attribute::string("name").required().requires_replace().validate(validate_name).describe("Role name."))
                    .attr(Attribute::string("backend").default("jwt").requires_replace().validate(validate_mount_path).describe("Mount path of the auth method (an `apim_vault_auth_backend`)."))
                    .attr(Attribute::string("auth_type").default("jwt").requires_replace().one_of(&["jwt", "azure"]).describe("`jwt`: a JWT-auth role (Vault and OpenBao). `azure`: a role of HashiCorp Vault's azure auth method, bound with `bound_service_principal_ids` (not available in OpenBao)."))
                    .attr(Attribute::string("api_management_id").optional_computed().validate(validate_service_id).describe("ARM ID of the API Management instance whose managed identity logs in, e.g. `azurerm_api_management.main.id`. Resolved during plan. An import finds it through Azure Resource Manager: the instance of the provider's subscription whose identity the role is bound to."))
                    .attr(Attribute::string("identity").default("SystemAssigned").validate(validate_identity).describe("With `api_management_id`: `SystemAssigned`, or the ARM ID of one of the instance's user-assigned identities."))
                    .attr(Attribute::string("principal_id").optional_computed().validate(validate_guid).describe("Object ID of the identity. Resolved from `api_management_id`, or given with `tenant_id`."))
                    .attr(Attribute::string("tenant_id").optional_computed().validate(validate_guid).describe("Entra tenant of the identity. Resolved from `api_management_id`, or given with `principal_id`."))
                    .attr(Attribute::string("audience").required().validate(validators::not_empty).describe("The token audience APIM asks Entra ID for (the `resource` of `authentication-managed-identity`); the role's `bound_audiences`."))
                    .attr(Attribute::of("token_policies", Type::set_of(Type::String)).optional_computed().use_state_for_unknown().describe("Policies of the tokens the role issues."))
                    .attr(Attribute::number("token_ttl").default(300).validate(validators::non_negative_int).describe("TTL (seconds) of the tokens; 0 means the mount's default. The default is long enough for the login and the reads of a fetch, and equals a binding's default `cache_ttl`: a binding's plan requires its `cache_ttl` to be at most the role's token TTL, since a cached secret must not outlive the token that fetched it (and a lease obtained with a batch token lives no longer than the token)."))
                    .attr(Attribute::number("token_max_ttl").optional_computed().use_state_for_unknown().validate(validators::non_negative_int).describe("Maximum TTL (seconds) of the tokens; 0 means the mount's maximum."))
                    .attr(Attribute::of("token_bound_cidrs", Type::set_of(Type::String)).optional_computed().use_state_for_unknown().describe("CIDR blocks the tokens may be used from (e.g. the APIM gateway's outbound addresses)."))
                    .attr(Attribute::string("token_type").default("batch").one_of(&["service", "batch", "default"]).describe("Type of the tokens. The default fits the gateway's single-use logins: Vault does not store batch tokens, so the login of each fetch costs it no storage; they cannot be renewed or create child tokens, which the gateway never does. `service` tokens are stored and renewable; `default` takes the mount's setting."))
                    .attr(Attribute::bool("token_no_default_policy").default(true).describe("The tokens carry only `token_policies`, without Vault's `default` policy (which lets a token look itself up, renew and revoke itself, and use its cubbyhole and response wrapping: nothing the gateway does). `false` adds `default`."))
                    .attr(Attribute::string("user_claim").computed().describe("The claim that names the entity: `oid`."))
                    .attr(Attribute::of("bound_claims", Type::map_of(Type::String)).computed().describe("The claims a token must carry: `oid` and `tid` of the identity."))
                    .constraint(Constraint::ExactlyOneOf(&["api_management_id", "principal_id"]))
                    .constraint(Constraint::ConflictsWith(&["api_management_id", "tenant_id"]))
                    .constraint(Constraint::RequiredWith("principal_id", &["tenant_id"])),
            )
        })
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_, RoleModel>,
        plan: &mut Plan<RoleModel>,
        d: &mut Diags,
    ) {
        let cfg = req.config;
        let st = &mut plan.state;
        if let (Some(b), Some(n)) = (st.backend.as_str(), st.name.get()) {
            st.id = Known::Value(format!("{b}/{n}"));
        }
        st.user_claim = Known::Value("oid".into());
        if cfg.api_management_id.value().is_some() {
            if let Some((service, which)) = identity_target(cfg) {
                let Some(data) = ctx.data(d) else { return };
                let Some(azure) = data.azure(d) else { return };
                match ctx
                    .cancel
                    .run(resolve_identity(azure, &service, &which))
                    .await
                {
                    Ok(Ok(identity)) => {
                        st.principal_id = Known::Value(Some(identity.principal_id.clone()));
                        st.tenant_id = Known::Value(Some(identity.tenant_id.clone()));
                    }
                    Ok(Err(e)) if e.is_not_found() && req.prior.is_none() => {
                        // Nothing exists to act on yet: the create resolves the identity
                        // again and fails there if the instance is still missing. So a plan
                        // that only refreshes (before a destroy) is not blocked by it.
                        d.attr_warning(
                            AttrPath::root("api_management_id"),
                            "API Management instance not found",
                            format!("{} The role's identity is resolved again when the role is created: the apply fails then if the instance still does not exist.", instance_not_found(&service)),
                        );
                        st.principal_id = Known::Unknown;
                        st.tenant_id = Known::Unknown;
                    }
                    Ok(Err(e)) if e.is_not_found() => {
                        d.attr_error(
                            AttrPath::root("api_management_id"),
                            "API Management instance not found",
                            instance_not_found(&service),
                        );
                        return;
                    }
                    Ok(Err(e)) => {
                        d.attr_error(
                            AttrPath::root("api_management_id"),
                            "Cannot resolve the API Management identity",
                            e.to_string(),
                        );
                        return;
                    }
                    Err(_) => {
                        d.error(
                            format!("Unable to plan {TYPE}"),
                            "Cancelled: Terraform asked the provider to stop.",
                        );
                        return;
                    }
                }
            }
        } else if cfg.api_management_id.is_unknown() {
            // The instance is created in the same run: the identity is known at apply.
            st.principal_id = Known::Unknown;
            st.tenant_id = Known::Unknown;
        } else {
            // Given by object ID and tenant: the instance an import found stays in state
            // while the identity is the same one; otherwise there is none.
            let same = req.prior.filter(|p| {
                p.principal_id.value() == cfg.principal_id.value()
                    && p.tenant_id.value() == cfg.tenant_id.value()
            });
            match same {
                Some(p) => {
                    st.api_management_id = Known::Value(p.api_management_id.value().cloned());
                    st.identity = Known::Value(p.identity.clone());
                }
                None => st.api_management_id = Known::Value(None),
            }
        }
        st.bound_claims = match (st.principal_id.as_str(), st.tenant_id.as_str()) {
            (Some(p), Some(t)) => Known::Value(BTreeMap::from([
                ("oid".to_string(), p.to_string()),
                ("tid".to_string(), t.to_string()),
            ])),
            _ => Known::Unknown,
        };
        // Bindings planned later in this run judge this role as planned.
        if let (Some(data), Some(b), Some(n)) = (
            ctx.data(&mut Diags::new()),
            st.backend.as_str(),
            st.name.get(),
        ) {
            data.this_run.role(b, n, planned_facts(st));
            // A role this plan changes: the checks of the bindings that use it must hold.
            if req.prior.map(RoleModel::encode) != Some(st.encode()) {
                data.this_run.changing();
            }
        }
        // The backend must be a mount of the right kind, when it exists already.
        let (Some(backend), Some(kind)) = (
            st.backend.as_str().map(str::to_string),
            st.auth_type.as_str().map(str::to_string),
        ) else {
            return;
        };
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        if !VaultAzureRole::check_backend(vault, &backend, &kind, d).await {
            return;
        }
        // Where least privilege ends: other roles for the same identity, when it is known.
        if let (Some(name), Some(principal), Some(tenant), Some(policies)) = (
            st.name.get(),
            st.principal_id.as_str(),
            st.tenant_id.as_str(),
            planned_policies(st),
        ) {
            let others = VaultAzureRole::roles_sharing_identity(
                vault,
                (&backend, name, role_method(&kind)),
                (principal, tenant),
                &policies,
            )
            .await;
            if !others.is_empty() {
                let path = if cfg.api_management_id.value().is_some() {
                    "api_management_id"
                } else {
                    "principal_id"
                };
                warn_shared_identity(
                    d,
                    AttrPath::root(path),
                    &backend,
                    (principal, tenant),
                    &policies,
                    &others,
                );
            }
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: RoleModel,
        d: &mut Diags,
    ) -> Option<RoleModel> {
        let data = ctx.data(d)?;
        let vault = data.vault(d)?;
        let mut planned = planned;
        // An instance plan did not find: resolved now, or the create fails.
        if planned.principal_id.is_unknown() || planned.tenant_id.is_unknown() {
            let target = planned
                .api_management_id
                .as_str()
                .and_then(|id| ServiceId::parse(id).ok())
                .zip(
                    IdentitySelector::parse(
                        planned.identity.as_deref().unwrap_or("SystemAssigned"),
                    )
                    .ok(),
                );
            let Some((service, which)) = target else {
                d.error(format!("Unable to create {TYPE}"), "The role's identity is not known: give `api_management_id`, or `principal_id` and `tenant_id`.");
                return None;
            };
            let azure = data.azure(d)?;
            match resolve_identity(azure, &service, &which).await {
                Ok(identity) => {
                    planned.principal_id = Known::Value(Some(identity.principal_id));
                    planned.tenant_id = Known::Value(Some(identity.tenant_id));
                }
                Err(e) => {
                    let (summary, detail) = if e.is_not_found() {
                        (
                            "API Management instance not found",
                            instance_not_found(&service),
                        )
                    } else {
                        ("Cannot resolve the API Management identity", e.to_string())
                    };
                    d.attr_error(AttrPath::root("api_management_id"), summary, detail);
                    return None;
                }
            }
        }
        let backend = planned.backend().to_string();
        let name = planned.name.clone();
        let auth_type = planned.auth_type().to_string();
        let object = format!("role {name:?} on {backend:?}");
        match vault.read_auth_mount(&backend).await {
            Ok(None) => {
                d.attr_error(AttrPath::root("backend"), format!("Unable to create {TYPE}"), format!("No auth method is mounted at {backend:?}. Create it first (an apim_vault_auth_backend with path = {backend:?}) and reference it: `backend = apim_vault_auth_backend.<name>.path`."));
                return None;
            }
            Ok(Some(_)) => {
                if !VaultAzureRole::check_backend(vault, &backend, &auth_type, d).await {
                    return None;
                }
            }
            Err(e) => {
                api_error(d, "create", TYPE, &object, &e);
                return None;
            }
        }
        match vault
            .read_role(&backend, &name, role_method(&auth_type))
            .await
        {
            Ok(Some(_)) => {
                already_exists(
                    d,
                    TYPE,
                    &format!("The {object}"),
                    &format!("{backend}/{name}"),
                    "",
                );
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                api_error(d, "create", TYPE, &object, &e);
                return None;
            }
        }
        if let Err(e) = vault
            .write_role(&backend, &name, &role_body(&planned))
            .await
        {
            api_error(d, "create", TYPE, &object, &e);
            return None;
        }
        match self.read_role(vault, &planned, d).await {
            Some(Some(s)) => Some(s),
            _ => Some(planned),
        }
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: RoleModel,
        d: &mut Diags,
    ) -> Option<RoleModel> {
        let vault = ctx.data(d)?.vault(d)?;
        match self.read_role(vault, &state, d).await {
            Some(found) => found,
            None => Some(state),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        prior: RoleModel,
        planned: RoleModel,
        d: &mut Diags,
    ) -> Option<RoleModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let backend = planned.backend().to_string();
        let name = planned.name.clone();
        if let Err(e) = vault
            .write_role(&backend, &name, &role_body(&planned))
            .await
        {
            api_error(
                d,
                "update",
                TYPE,
                &format!("role {name:?} on {backend:?}"),
                &e,
            );
            return self
                .read_role(vault, &prior, &mut Diags::new())
                .await
                .flatten()
                .or(Some(prior));
        }
        match self.read_role(vault, &planned, d).await {
            Some(Some(s)) => Some(s),
            _ => Some(planned),
        }
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: RoleModel, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let (backend, name) = (state.backend(), state.name.as_str());
        if let Err(e) = vault.delete_role(backend, name).await {
            api_error(
                d,
                "delete",
                TYPE,
                &format!("role {name:?} on {backend:?}"),
                &e,
            );
        }
    }

    fn config_from_state(&self, _ctx: &Ctx<ProviderData>, s: &mut RoleModel) {
        // The identity as the user gives it: the instance, or the object ID and tenant.
        if s.api_management_id.as_str().is_some() {
            s.principal_id = Known::Value(None);
            s.tenant_id = Known::Value(None);
        } else {
            s.identity = None;
        }
        // Vault's own defaults for settings the schema leaves to the server.
        if s.token_max_ttl == Known::Value(Some(0)) {
            s.token_max_ttl = Known::Value(None);
        }
        for list in [&mut s.token_bound_cidrs, &mut s.token_policies] {
            if list
                .get()
                .is_some_and(|l| l.as_ref().is_some_and(Vec::is_empty))
            {
                *list = Known::Value(None);
            }
        }
    }

    async fn import(&self, ctx: &Ctx<ProviderData>, id: &str, d: &mut Diags) -> Option<RoleModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let Some((backend, name)) = role_import_id(id) else {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} must be `<backend>/<name>`, e.g. `jwt/orders-apim`, or the role's API path as the Vault provider names it, `auth/<backend>/role/<name>`."),
            );
            return None;
        };
        let kind = match vault.read_auth_mount(backend).await {
            Ok(Some(m)) if m.kind == "azure" => "azure",
            _ => "jwt",
        };
        let prior = RoleModel {
            backend: Some(backend.to_string()),
            name: name.to_string(),
            identity: Some("SystemAssigned".into()),
            auth_type: Some(kind.into()),
            api_management_id: Known::Value(None),
            ..RoleModel::default()
        };
        match self.read_role(vault, &prior, d).await {
            Some(Some(mut s)) => {
                instance_of(ctx, &mut s, d).await;
                Some(s)
            }
            Some(None) => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!("There is no role {name:?} on the auth mount {backend:?}."),
                );
                None
            }
            None => None,
        }
    }
}

crate::model! {
    /// The `config` block of `list "apim_vault_azure_role"`.
    pub struct RoleListConfig, plan RoleListConfigPlan {
        /// `backend` (default `jwt`).
        pub backend: Option<String>,
        /// `api_management_id`: only the roles of this instance's identities.
        pub api_management_id: Option<String>,
    }
}

/// `list "apim_vault_azure_role"`: the roles of an auth mount, each with the API Management
/// instance whose managed identity it is bound to, when there is one.
pub struct VaultAzureRoleList;

/// Fills in an imported role's `api_management_id` (and `identity`) when its bound object ID
/// is the managed identity of exactly one API Management instance of the provider's
/// subscription, so that a configuration naming the instance plans empty after the import.
/// Without an `azure` configuration, or without such an instance, the role keeps only
/// `principal_id` and `tenant_id`.
async fn instance_of(ctx: &Ctx<ProviderData>, s: &mut RoleModel, d: &mut Diags) {
    let Some(principal) = s.principal_id.as_str().map(str::to_string) else {
        return;
    };
    let Some(azure) = ctx.data(d).and_then(|p| p.azure(&mut Diags::new())) else {
        return;
    };
    let ids = match apim_identities(azure).await {
        Ok(ids) => ids,
        Err(e) => {
            d.warning(
                format!("API Management instance of {TYPE} not looked up"),
                format!("The imported role keeps `principal_id` and `tenant_id` only: {e}. A configuration that names `api_management_id` plans that attribute once."),
            );
            return;
        }
    };
    let found: Vec<&ApimIdentity> = ids
        .iter()
        .filter(|i| i.principal.eq_ignore_ascii_case(&principal))
        .collect();
    if let [one] = found.as_slice() {
        let Ok(service) = ServiceId::parse_insensitive(&one.service_id) else {
            return;
        };
        s.api_management_id = Known::Value(Some(service.arm_id()));
        s.identity = Some(one.selector.clone());
    }
}

/// A managed identity of an API Management instance.
struct ApimIdentity {
    /// Its object ID.
    principal: String,
    /// What `identity` says for it: `SystemAssigned`, or the user-assigned identity's ARM ID.
    selector: String,
    /// The instance's ARM ID.
    service_id: String,
    /// The instance's name.
    service: String,
    /// "system-assigned", or the user-assigned identity's name.
    which: String,
}

/// The managed identities of the instances of the provider's subscription.
async fn apim_identities(
    azure: &crate::clients::azure::Azure,
) -> Result<Vec<ApimIdentity>, crate::clients::azure::AzureError> {
    let mut out = Vec::new();
    for svc in azure.list_services().await? {
        let Some(identity) = svc.identity else {
            continue;
        };
        if let Some(p) = identity.principal_id {
            out.push(ApimIdentity {
                principal: p,
                selector: "SystemAssigned".into(),
                service_id: svc.id.clone(),
                service: svc.name.clone(),
                which: "system-assigned identity".into(),
            });
        }
        for (id, u) in identity.user_assigned_identities {
            if let Some(p) = u.principal_id {
                let name = id.rsplit('/').next().unwrap_or(&id).to_string();
                out.push(ApimIdentity {
                    principal: p,
                    selector: UserAssignedIdentityId::parse_insensitive(&id)
                        .map(|u| u.arm_id())
                        .unwrap_or_else(|_| id.clone()),
                    service_id: svc.id.clone(),
                    service: svc.name.clone(),
                    which: format!("user-assigned identity {name}"),
                });
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl ListResource<ProviderData> for VaultAzureRoleList {
    type Resource = VaultAzureRole;
    type Config = RoleListConfig;

    fn resource(&self) -> &VaultAzureRole {
        &VaultAzureRole
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("The roles of a JWT/OIDC (or azure) auth mount, whether a configuration manages them or not. Each shows whether the object ID it is bound to (`oid`) is the managed identity of an API Management instance in the provider's subscription, looked up through Azure Resource Manager when the provider has an `azure` configuration.")
                    .attr(Attribute::string("backend").validate(validate_mount_path).describe("Mount path of the auth method. Defaults to `jwt`."))
                    .attr(Attribute::string("api_management_id").validate(validate_service_id).describe("Only the roles bound to an identity of this API Management instance (its ARM ID). Needs the provider's `azure` configuration.")),
            )
        })
    }

    async fn list(
        &self,
        ctx: &Ctx<ProviderData>,
        config: RoleListConfig,
        limit: usize,
        d: &mut Diags,
    ) -> Vec<Listed> {
        let Some(data) = ctx.data(d) else {
            return Vec::new();
        };
        let Some(vault) = data.vault(d) else {
            return Vec::new();
        };
        let backend = config.backend.unwrap_or_else(|| "jwt".into());
        let method = match vault.read_auth_mount(&backend).await {
            Ok(Some(m)) if m.kind == "azure" => RoleMethod::Azure,
            Ok(Some(m)) if matches!(m.kind.as_str(), "jwt" | "oidc") => RoleMethod::Jwt,
            Ok(Some(m)) => {
                d.attr_error(
                    AttrPath::root("backend"),
                    format!("Unable to list {TYPE}"),
                    format!("The auth mount {backend:?} is of type {:?}, not a JWT/OIDC or azure mount. Set `backend` to the mount path of the roles' auth method.", m.kind),
                );
                return Vec::new();
            }
            Ok(None) => {
                d.attr_error(
                    AttrPath::root("backend"),
                    format!("Unable to list {TYPE}"),
                    format!("Nothing is mounted at auth path {backend:?}. Set `backend` to the mount path of the roles' auth method (the default is `jwt`)."),
                );
                return Vec::new();
            }
            Err(e) => {
                api_error(d, "list", TYPE, &format!("roles of mount {backend:?}"), &e);
                return Vec::new();
            }
        };
        // The instances' identities, when Azure is configured (a filter needs it).
        let wanted = config.api_management_id.as_deref();
        let mut no_azure = Diags::new();
        let identities = match data.azure(&mut no_azure) {
            Some(azure) => match apim_identities(azure).await {
                Ok(ids) => Some(ids),
                Err(e) => {
                    d.warning(
                        format!("API Management identities not resolved for {TYPE}"),
                        format!("The roles are listed without saying which API Management instance each is bound to: {e}."),
                    );
                    None
                }
            },
            None => None,
        };
        if wanted.is_some() && identities.is_none() {
            d.attr_error(
                AttrPath::root("api_management_id"),
                format!("Unable to list {TYPE}"),
                format!("Listing the roles of an API Management instance needs its identities from Azure Resource Manager. {}", no_azure.0.first().map(|x| x.detail.as_str()).unwrap_or("Check the provider's `azure` configuration.")),
            );
            return Vec::new();
        }
        let mut names = match vault.list_roles(&backend).await {
            Ok(n) => n,
            Err(e) => {
                api_error(d, "list", TYPE, &format!("roles of mount {backend:?}"), &e);
                return Vec::new();
            }
        };
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if out.len() >= limit {
                break;
            }
            let role = match vault.read_role(&backend, &name, method).await {
                Ok(Some(r)) => r,
                // Deleted since it was listed.
                Ok(None) => continue,
                Err(e) => {
                    d.warning(
                        format!("{TYPE} {backend}/{name} left out"),
                        format!("The role could not be read: {e}."),
                    );
                    continue;
                }
            };
            let bound = identities
                .as_ref()
                .and_then(|ids| ids.iter().find(|i| role.binds_principal(&i.principal)));
            if let Some(w) = wanted {
                if !bound.is_some_and(|b| b.service_id.eq_ignore_ascii_case(w)) {
                    continue;
                }
            }
            let about = match (bound, &identities) {
                (Some(b), _) => format!(
                    "bound to the {} of API Management instance {}",
                    b.which, b.service
                ),
                (None, Some(_)) => {
                    "not bound to an API Management identity of the subscription".into()
                }
                (None, None) => {
                    "API Management identity not looked up (no azure configuration)".into()
                }
            };
            out.push(Listed {
                import_id: format!("{backend}/{name}"),
                display_name: format!("{backend}/{name}: {about}"),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned(auth_type: &str) -> RoleModel {
        RoleModel {
            auth_type: Some(auth_type.into()),
            principal_id: Known::Value(Some("11111111-2222-3333-4444-555555555555".into())),
            tenant_id: Known::Value(Some("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into())),
            audience: "api://vault".into(),
            token_policies: Known::Value(Some(vec!["orders".into()])),
            token_ttl: Known::Value(Some(300)),
            token_max_ttl: Known::Value(None),
            token_bound_cidrs: Known::Value(None),
            token_type: Known::Value(Some("batch".into())),
            token_no_default_policy: Some(true),
            ..RoleModel::default()
        }
    }

    /// The request HashiCorp Vault's azure auth method documents for a role bound to one
    /// service principal (`POST auth/azure/role/:name`), recorded as the contract.
    #[test]
    fn azure_auth_role_request_matches_the_documented_contract() {
        let body = serde_json::to_value(role_body(&planned("azure"))).unwrap();
        assert_eq!(
            body,
            json!({
                "bound_service_principal_ids": ["11111111-2222-3333-4444-555555555555"],
                "token_policies": ["orders"],
                "token_ttl": 300,
                "token_type": "batch",
                "token_no_default_policy": true,
            })
        );
        // And the answer of `GET auth/azure/role/:name` maps back without a diff.
        let recorded = Role::Azure(
            serde_json::from_value(json!({
                "bound_service_principal_ids": ["11111111-2222-3333-4444-555555555555"],
                "bound_group_ids": [],
                "bound_locations": [],
                "bound_subscription_ids": [],
                "bound_resource_groups": [],
                "bound_scale_sets": [],
                "token_policies": ["orders"],
                "token_no_default_policy": true,
                "token_ttl": 300,
                "token_max_ttl": 0,
                "token_bound_cidrs": [],
                "token_type": "batch",
            }))
            .unwrap(),
        );
        let prior = RoleModel {
            backend: Some("azure".into()),
            name: "orders".into(),
            ..planned("azure")
        };
        let s = state_from_role(&prior, "azure", "orders", &recorded);
        assert_eq!(s.principal_id, prior.principal_id);
        assert_eq!(s.tenant_id, prior.tenant_id);
        assert_eq!(s.token_ttl, prior.token_ttl);
        assert_eq!(s.token_type, prior.token_type);
        assert_eq!(s.token_no_default_policy, prior.token_no_default_policy);
    }

    /// The policies a binding's check expects the tokens to carry: `default` only when the
    /// role does not leave it out; unknown while either setting is.
    #[test]
    fn planned_policies_follow_token_no_default_policy() {
        let plan = |no_default: Known<Option<bool>>| RolePlan {
            token_policies: Known::Value(Some(vec!["orders".into()])),
            token_no_default_policy: no_default,
            ..RolePlan::default()
        };
        assert_eq!(
            planned_policies(&plan(Known::Value(Some(true)))),
            Some(vec!["orders".to_string()])
        );
        assert_eq!(
            planned_policies(&plan(Known::Value(Some(false)))),
            Some(vec!["orders".to_string(), "default".to_string()])
        );
        assert_eq!(planned_policies(&plan(Known::Unknown)), None);
        let facts = planned_facts(&RolePlan {
            token_ttl: Known::Value(Some(300)),
            ..plan(Known::Value(Some(true)))
        });
        assert_eq!(facts.token_policies, Some(vec!["orders".to_string()]));
        assert_eq!(facts.token_ttl, Some(300));
    }

    #[test]
    fn role_import_ids_ours_and_the_vault_providers() {
        assert_eq!(role_import_id("jwt/orders"), Some(("jwt", "orders")));
        assert_eq!(
            role_import_id("apim/jwt/orders"),
            Some(("apim/jwt", "orders"))
        );
        assert_eq!(
            role_import_id("auth/apim-jwt/role/orders"),
            Some(("apim-jwt", "orders"))
        );
        assert_eq!(
            role_import_id("/auth/a/b/role/orders/"),
            Some(("a/b", "orders"))
        );
        assert_eq!(role_import_id("orders"), None);
        assert_eq!(role_import_id("/"), None);
        assert_eq!(
            role_import_id("auth/jwt/role//"),
            Some(("auth/jwt", "role"))
        );
    }

    #[test]
    fn jwt_role_request_binds_audience_and_claims() {
        let body = serde_json::to_value(role_body(&planned("jwt"))).unwrap();
        assert_eq!(body["role_type"], "jwt");
        assert_eq!(body["bound_audiences"], json!(["api://vault"]));
        assert_eq!(body["user_claim"], "oid");
        assert_eq!(
            body["bound_claims"],
            json!({"oid": "11111111-2222-3333-4444-555555555555", "tid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"})
        );
    }
}
