//! `apim_vault_binding`: makes an APIM API fetch one Vault secret at request time.
//!
//! Apply writes three named values (Vault address, role, audience), a `rawxml` policy
//! fragment with the runtime flow (see `binding_fragment.rs`) and, with `api_id`, an
//! `<include-fragment>` in that API's inbound policy. Plan checks on the Vault side that the
//! binding can work: the role exists, its policies grant `read` on the secret path, and the
//! cache lifetime fits the token and lease TTLs.

use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::apim::api_policy::PolicyCreate;
use crate::clients::azure::apim::named_value::NamedValueCreate;
use crate::clients::azure::apim::policy_fragment::PolicyFragmentCreate;
use crate::clients::azure::apim::PolicyFormat;
use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError};
use crate::clients::vault::acl;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::model::{self, Known};
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Constraint, NestedBlock, Schema};
use crate::framework::value::{Type, Value};

use super::already_exists;
use super::binding_fragment::{fragment_id, named_value_names, render, FragmentSpec, Inject};
use super::this_run::RoleFacts;
use super::policy_xml::{self, Format};

const TYPE: &str = "apim_vault_binding";

/// The resource.
pub struct VaultBinding;

fn validate_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid binding name", |s| {
        let ok = !s.is_empty()
            && s.len() <= 60
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(())
        } else {
            Err(format!("`name` is {s:?}: use 1 to 60 lowercase letters, digits and dashes, not starting or ending with a dash (it names APIM named values and a policy fragment)."))
        }
    });
}

fn validate_field(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid secret field", |s| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            Ok(())
        } else {
            Err(format!(
                "`secret_field` is {s:?}: use the field's name (letters, digits, `_`, `-`, `.`)."
            ))
        }
    });
}

fn validate_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid secret path", |s| {
        if s.is_empty()
            || s.starts_with('/')
            || s.starts_with("v1/")
            || s.contains(char::is_whitespace)
        {
            Err(format!("`secret_path` is {s:?}: give the API path without `/v1/`, e.g. \"kv/data/orders/backend\" (KV v2) or \"database/creds/orders\"."))
        } else {
            Ok(())
        }
    });
}

fn validate_header_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid name", |s| {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            Ok(())
        } else {
            Err(format!(
                "`{p}` is {s:?}: use letters, digits, `-`, `_` or `.`."
            ))
        }
    });
}

crate::model! {
    /// An `apim_vault_binding`.
    pub struct BindingModel, plan BindingPlan {
        /// `<api_management_id>/vaultBindings/<name>`.
        pub id: Known<String>,
        /// `api_management_id`.
        pub api_management_id: String,
        /// `name`.
        pub name: String,
        /// `role`.
        pub role: String,
        /// `backend` (default `jwt`).
        pub backend: Option<String>,
        /// `audience`.
        pub audience: String,
        /// `vault_address` (default: the provider's).
        pub vault_address: Known<Option<String>>,
        /// `vault_namespace`.
        pub vault_namespace: Option<String>,
        /// `secret_path`.
        pub secret_path: String,
        /// `secret_field`.
        pub secret_field: String,
        /// The `inject` block.
        pub inject: Option<InjectBlock>,
        /// `cache_ttl` (default 300).
        pub cache_ttl: Option<i64>,
        /// `api_id`.
        pub api_id: Option<String>,
        /// `on_error` (default `fail`).
        pub on_error: Option<String>,
        /// ARM ID of the policy fragment.
        pub fragment_id: Known<String>,
        /// ARM IDs of the named values.
        pub named_value_ids: Known<Vec<String>>,
        /// The rendered fragment.
        pub policy_xml: Known<String>,
    }
}

crate::model! {
    /// The `inject` block.
    pub struct InjectBlock, plan InjectBlockPlan {
        /// `header`.
        pub header: Option<String>,
        /// `query`.
        pub query: Option<String>,
        /// `variable`.
        pub variable: Option<String>,
    }
}

impl BindingModel {
    fn backend(&self) -> &str {
        self.backend.as_deref().unwrap_or("jwt")
    }
    fn cache_ttl(&self) -> i64 {
        self.cache_ttl.unwrap_or(300)
    }
}

/// The fragment specification of a binding; `kv_v2` decided by the caller.
fn spec(v: &BindingModel, kv_v2: bool) -> Option<FragmentSpec> {
    let inject = v.inject.as_ref()?;
    let inject = if let Some(h) = &inject.header {
        Inject::Header(h.clone())
    } else if let Some(q) = &inject.query {
        Inject::Query(q.clone())
    } else {
        Inject::Variable(inject.variable.clone()?)
    };
    Some(FragmentSpec {
        name: v.name.clone(),
        backend: v.backend().to_string(),
        secret_path: v.secret_path.clone(),
        secret_field: v.secret_field.clone(),
        kv_v2,
        vault_namespace: v.vault_namespace.clone(),
        inject,
        cache_ttl: v.cache_ttl(),
        fail_on_error: v.on_error.as_deref() != Some("continue"),
    })
}

fn service_of(v: &BindingModel) -> Option<ServiceId> {
    ServiceId::parse(&v.api_management_id).ok()
}

/// The API name from `api_id` (a name, or an API's full ARM ID).
fn api_name(api_id: &str) -> &str {
    api_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(api_id)
}

fn api_policy_id(service: &ServiceId, api_id: &str) -> ApiPolicyId {
    service.api(api_name(api_id)).policy()
}

/// The three named values: (name, value).
fn named_values(v: &BindingModel) -> [(String, String); 3] {
    let [a, r, au] = named_value_names(&v.name);
    [
        (
            a,
            v.vault_address
                .value()
                .map(|a| a.trim_end_matches('/').to_string())
                .unwrap_or_default(),
        ),
        (r, v.role.clone()),
        (au, v.audience.clone()),
    ]
}

/// The IDs the binding's APIM objects have.
fn object_ids(service: &ServiceId, name: &str) -> (String, String, Vec<String>) {
    (
        format!("{}/vaultBindings/{name}", service.arm_id()),
        service.policy_fragment(fragment_id(name)).arm_id(),
        named_value_names(name)
            .into_iter()
            .map(|n| service.named_value(n).arm_id())
            .collect(),
    )
}

fn azure_err(d: &mut Diags, action: &str, e: &AzureError) {
    let hint = if e.is_precondition_failed() {
        " It was changed outside Terraform since it was read: run `terraform plan` again to see the change, then apply."
    } else {
        ""
    };
    d.error(format!("Unable to {action} {TYPE}"), format!("{e}.{hint}"));
}

impl VaultBinding {
    /// Plan-time (and apply-time) checks on the Vault side. Answers whether the secret
    /// lives in KV v2, when that could be determined.
    async fn check_vault(
        &self,
        data: &ProviderData,
        v: &BindingModel,
        at_apply: bool,
        d: &mut Diags,
    ) -> Option<bool> {
        let vault = data.vault(d)?;
        let (backend, role, path) = (v.backend(), v.role.as_str(), v.secret_path.as_str());
        let cache_ttl = Some(v.cache_ttl());
        // The role: what this run plans for it, else what Vault holds.
        let planned = data.this_run.find_role(backend, role);
        let facts = match planned {
            Some(f) => Some(f),
            None => match vault.read_role_token(backend, role).await {
                Ok(Some(token)) => Some(RoleFacts {
                    token_policies: Some(token.effective_policies()),
                    token_ttl: Some(token.token_ttl),
                }),
                Ok(None) => None,
                Err(e) => {
                    d.error(
                        format!("Unable to check {TYPE}"),
                        format!("Reading role {role:?} on {backend:?}: {e}"),
                    );
                    return None;
                }
            },
        };
        let Some(facts) = facts else {
            d.attr_error(
                AttrPath::root("role"),
                "Vault role not found",
                format!("There is no role {role:?} on the auth mount {backend:?}, so APIM could not log in. Create it with an apim_vault_azure_role (and reference it: `role = apim_vault_azure_role.<name>.name`), or fix `role`/`backend`."),
            );
            return None;
        };
        // Its policies must grant read on the path.
        if let Some(names) = &facts.token_policies {
            let mut docs = Vec::new();
            let mut unknown = false;
            for n in names {
                let text = match data.this_run.find_policy(n) {
                    Some(Some(t)) => Some(t),
                    Some(None) => {
                        unknown = true;
                        None
                    }
                    None => match vault.read_policy(n).await {
                        Ok(t) => t,
                        Err(e) => {
                            d.error(
                                format!("Unable to check {TYPE}"),
                                format!("Reading policy {n:?}: {e}"),
                            );
                            return None;
                        }
                    },
                };
                if let Some(t) = text {
                    match acl::parse(&t) {
                        Ok(rules) => docs.push(rules),
                        Err(_) => unknown = true,
                    }
                }
            }
            if !unknown && !acl::capabilities_on(&docs, path).contains("read") {
                d.attr_error(
                    AttrPath::root("secret_path"),
                    "The role cannot read the secret",
                    format!(
                        "Role {role:?} has the policies {} and none of them grants `read` on {path:?} (or one denies it), so APIM would get 403 from Vault. Add a rule `path \"{path}\" {{ capabilities = [\"read\"] }}` to one of them (e.g. an apim_vault_policy in the role's token_policies).",
                        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        // The cache must not outlive the token it was fetched with.
        if let (Some(ttl), Some(c)) = (facts.token_ttl.filter(|t| *t > 0), cache_ttl) {
            if c > ttl {
                d.attr_error(
                    AttrPath::root("cache_ttl"),
                    "Cache outlives the Vault token",
                    format!("`cache_ttl` is {c} s, longer than the role's token_ttl of {ttl} s: the gateway would keep a secret longer than the token that fetched it was valid. Lower `cache_ttl` to at most {ttl}, or raise the role's token_ttl."),
                );
            }
        }
        // The secret's mount: KV v2 or leased.
        let mount = match vault.mount_of(path).await {
            Ok(m) => m,
            Err(e) => {
                d.error(
                    format!("Unable to check {TYPE}"),
                    format!("Looking up the mount of {path:?}: {e}"),
                );
                return None;
            }
        };
        let Some(mount) = mount else {
            if at_apply {
                d.attr_error(AttrPath::root("secret_path"), "No secrets engine at the path", format!("No secrets engine is mounted at {path:?}. Check `secret_path` (it is the API path, e.g. kv/data/<name> for KV v2)."));
            }
            return None;
        };
        if mount.is_leased() {
            if let (Ok(lease_ttl), Some(c)) =
                (vault.default_lease_ttl(&mount.path).await, cache_ttl)
            {
                if lease_ttl > 0 && c > lease_ttl {
                    d.attr_error(
                        AttrPath::root("cache_ttl"),
                        "Cache outlives the secret's lease",
                        format!("`cache_ttl` is {c} s, longer than the default lease TTL ({lease_ttl} s) of the {:?} mount: the gateway would keep using a credential after Vault revoked it. Lower `cache_ttl` below {lease_ttl}.", mount.path),
                    );
                }
            }
        }
        Some(mount.is_kv_v2())
    }

    /// Reads the APIM side into a state, starting from `prior`.
    async fn read_apim(
        &self,
        azure: &Azure,
        prior: &BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let service = service_of(prior)?;
        let name = prior.name.clone();
        let mut s = prior.clone();
        let mut found_any = false;
        let mut ids = Vec::new();
        // One list call for the three named values (a refresh costs at most three API
        // calls: this, the fragment and the API policy).
        let filter = format!("startswith(name,'vault-{name}-')");
        let listed = match azure.list_named_values(&service, Some(&filter)).await {
            Ok(l) => l,
            Err(e) => {
                azure_err(d, "read", &e);
                return Some(prior.clone());
            }
        };
        let [addr, role, audience] = named_value_names(&name);
        let remote = |nv: &str| {
            listed
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(nv))
                .map(|found| found.properties.value.clone().unwrap_or_default())
        };
        for nv in [&addr, &role, &audience] {
            if remote(nv).is_some() {
                found_any = true;
                ids.push(service.named_value(nv.clone()).arm_id());
            }
        }
        if let Some(value) = remote(&addr) {
            let same = prior
                .vault_address
                .value()
                .is_some_and(|p| p.trim_end_matches('/') == value);
            if !same {
                s.vault_address = Known::Value(Some(value));
            }
        }
        // Values that differ from the prior state only by a trailing `/` keep its spelling.
        let differs = |prior: &str, remote: &str| prior.trim_end_matches('/') != remote;
        if let Some(value) = remote(&role).filter(|v| differs(&prior.role, v)) {
            s.role = value;
        }
        if let Some(value) = remote(&audience).filter(|v| differs(&prior.audience, v)) {
            s.audience = value;
        }
        s.named_value_ids = Known::Value(ids);
        let fid = service.policy_fragment(fragment_id(&name));
        match azure.get_policy_fragment(&fid).await {
            Ok(t) => {
                found_any = true;
                let remote = t.value.properties.value;
                let same = prior
                    .policy_xml
                    .get()
                    .is_some_and(|p| policy_xml::equivalent(p, Format::Raw, &remote, Format::Raw));
                if !same {
                    s.policy_xml = Known::Value(remote);
                }
                s.fragment_id = Known::Value(fid.arm_id());
            }
            Err(e) if e.is_not_found() => {
                s.policy_xml = Known::Value(String::new());
                s.fragment_id = Known::Value(String::new());
            }
            Err(e) => {
                azure_err(d, "read", &e);
                return Some(prior.clone());
            }
        }
        if let Some(api) = &prior.api_id {
            match azure.get_api_policy(&api_policy_id(&service, api)).await {
                Ok(t)
                    if policy_xml::includes_fragment(
                        &t.value.properties.value,
                        &fragment_id(&name),
                    ) =>
                {
                    found_any = true;
                }
                // The include is gone (or the API policy is): the binding no longer applies
                // to that API, which plan shows as `api_id` to be set again.
                Ok(_) => s.api_id = None,
                Err(e) if e.is_not_found() => s.api_id = None,
                Err(e) => {
                    azure_err(d, "read", &e);
                    return Some(prior.clone());
                }
            }
        }
        found_any.then_some(s)
    }

    /// Writes every named value that differs from `prior` (all of them on create).
    async fn write_named_values(
        &self,
        azure: &Azure,
        service: &ServiceId,
        prior: Option<&BindingModel>,
        planned: &BindingModel,
    ) -> Result<(), AzureError> {
        let old = prior.map(named_values);
        for (i, (name, value)) in named_values(planned).into_iter().enumerate() {
            if old.as_ref().is_some_and(|o| o[i].1 == value) {
                continue;
            }
            let id = service.named_value(name.clone());
            // Updates go with the ETag just read, so a concurrent edit is not overwritten.
            let etag = match azure.get_named_value(&id).await {
                Ok(t) => t.etag,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let body = NamedValueCreate {
                display_name: name,
                value: Some(value),
                secret: false,
                tags: vec!["apim-vault-binding".into()],
                key_vault: None,
            };
            azure.put_named_value(&id, &body, etag.as_deref()).await?;
        }
        Ok(())
    }

    async fn write_fragment(
        &self,
        azure: &Azure,
        service: &ServiceId,
        name: &str,
        xml: &str,
        exists: bool,
    ) -> Result<(), AzureError> {
        let id = service.policy_fragment(fragment_id(name));
        let etag = if exists {
            match azure.get_policy_fragment(&id).await {
                Ok(t) => t.etag,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let body = PolicyFragmentCreate {
            value: xml.to_string(),
            description: Some(format!(
                "Fetches a Vault secret at request time (apim_vault_binding {name})"
            )),
            format: PolicyFormat::Rawxml,
        };
        azure
            .put_policy_fragment(&id, &body, etag.as_deref())
            .await
            .map(|_| ())
    }

    /// Adds (or removes) the include in the API's inbound policy, with If-Match. Bindings of
    /// the same API edit one document: edits from this process take turns, and an edit that
    /// meets a concurrent change (412) reads the document again and re-applies itself, since
    /// it touches only its own `<include-fragment>`.
    async fn set_include(
        &self,
        azure: &Azure,
        service: &ServiceId,
        api: &str,
        name: &str,
        include: bool,
    ) -> Result<(), AzureError> {
        let id = api_policy_id(service, api);
        let lock = policy_lock(&id.arm_id());
        let _turn = lock.lock().await;
        let fid = fragment_id(name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (doc, etag) = match azure.get_api_policy(&id).await {
                Ok(t) => (t.value.properties.value, t.etag),
                Err(e) if e.is_not_found() && include => {
                    (policy_xml::DEFAULT_API_POLICY.to_string(), None)
                }
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            let edited = if include {
                policy_xml::include_fragment(&doc, &fid)
            } else {
                policy_xml::exclude_fragment(&doc, &fid)
            }
            .map_err(|m| {
                AzureError::Config(format!("the policy of API {api:?} cannot be edited: {m}"))
            })?;
            if edited == doc {
                return Ok(());
            }
            let body = PolicyCreate {
                value: edited,
                format: PolicyFormat::Rawxml,
            };
            match azure.put_api_policy(&id, &body, etag.as_deref()).await {
                Err(e) if e.is_precondition_failed() && attempt < 5 => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    /// Removes everything the binding added, in reverse order; missing pieces are fine.
    async fn remove_all(
        &self,
        azure: &Azure,
        service: &ServiceId,
        name: &str,
        api: Option<&str>,
    ) -> Result<(), AzureError> {
        if let Some(api) = api {
            self.set_include(azure, service, api, name, false).await?;
        }
        azure
            .delete_policy_fragment(&service.policy_fragment(fragment_id(name)), "*")
            .await
            .or_else(ignore_404)?;
        for nv in named_value_names(name) {
            azure
                .delete_named_value(&service.named_value(nv), "*")
                .await
                .or_else(ignore_404)?;
        }
        Ok(())
    }
}

/// The state after a successful create or update: the planned values, the IDs of the
/// objects written, and the fragment as rendered.
fn created(planned: BindingModel, service: &ServiceId, policy_xml: String) -> BindingModel {
    let (id, fragment, named_values) = object_ids(service, &planned.name);
    BindingModel {
        id: Known::Value(id),
        fragment_id: Known::Value(fragment),
        named_value_ids: Known::Value(named_values),
        policy_xml: Known::Value(policy_xml),
        ..planned
    }
}

/// The lock that orders this process's edits of one API policy.
fn policy_lock(arm_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    let mut map = locks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(arm_id.to_ascii_lowercase()).or_default().clone()
}

fn ignore_404(e: AzureError) -> Result<(), AzureError> {
    if e.is_not_found() {
        Ok(())
    } else {
        Err(e)
    }
}

#[async_trait]
impl Resource<ProviderData> for VaultBinding {
    type Model = BindingModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Makes one API Management API (or any policy that includes the fragment) fetch one Vault secret at request time: APIM logs in to Vault with its managed identity, reads the secret, caches it for `cache_ttl` and injects it. Plan checks that the binding can work: the role exists, its policies grant `read` on `secret_path`, and `cache_ttl` fits the token and lease TTLs.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("`<api_management_id>/vaultBindings/<name>`."))
                    .attr(Attribute::string("api_management_id").required().requires_replace().validate(|v, p, d| {
                        if let Some(s) = v.as_str() {
                            if let Err(e) = ServiceId::parse(s) {
                                d.attr_error(p.clone(), "Invalid API Management ID", format!("`api_management_id`: {e}"));
                            }
                        }
                    }).describe("ARM ID of the API Management instance."))
                    .attr(Attribute::string("name").required().requires_replace().validate(validate_name).describe("Name of the binding: lowercase letters, digits and dashes. Names the named values (`vault-<name>-addr`, `-role`, `-audience`) and the policy fragment (`vault-<name>`)."))
                    .attr(Attribute::string("role").required().validate(validators::not_empty).describe("The Vault role APIM logs in with (an apim_vault_azure_role's name)."))
                    .attr(Attribute::string("backend").default("jwt").describe("Mount path of the JWT auth method."))
                    .attr(Attribute::string("audience").required().validate(validators::not_empty).describe("The token audience APIM asks Entra ID for; must be one of the role's bound audiences."))
                    .attr(Attribute::string("vault_address").optional_computed().describe("The Vault address the gateway calls. Defaults to the provider's Vault address."))
                    .attr(Attribute::string("vault_namespace").describe("Vault Enterprise namespace, sent as `X-Vault-Namespace` on both Vault calls."))
                    .attr(Attribute::string("secret_path").required().validate(validate_path).describe("API path of the secret, e.g. `kv/data/orders/backend` (KV v2) or `database/creds/orders`."))
                    .attr(Attribute::string("secret_field").required().validate(validate_field).describe("Field to inject (read from `data.data` for KV v2, from `data` otherwise)."))
                    .block(
                        NestedBlock::single(
                            "inject",
                            Block::new("Where the secret goes: exactly one of `header`, `query`, `variable`.")
                                .attr(Attribute::string("header").validate(validate_header_name).describe("A header of the backend request."))
                                .attr(Attribute::string("query").validate(validate_header_name).describe("A query parameter of the backend request."))
                                .attr(Attribute::string("variable").validate(validate_header_name).describe("A context variable, for other policies to use."))
                                .constraint(Constraint::ExactlyOneOf(&["header", "query", "variable"])),
                        )
                        .items(1, 1),
                    )
                    .attr(Attribute::number("cache_ttl").default(300).validate(validators::non_negative_int).describe("Seconds the gateway caches the secret; 0 disables caching."))
                    .attr(Attribute::string("api_id").describe("An API (its name, or its ARM ID) whose inbound policy includes the fragment, right after `<base />`."))
                    .attr(Attribute::string("on_error").default("fail").one_of(&["fail", "continue"]).describe("When Vault cannot be reached or refuses: `fail` answers 502 without telling why; `continue` forwards the request without the secret."))
                    .attr(Attribute::string("fragment_id").computed().describe("ARM ID of the policy fragment."))
                    .attr(Attribute::of("named_value_ids", Type::list_of(Type::String)).computed().describe("ARM IDs of the named values."))
                    .attr(Attribute::string("policy_xml").computed().describe("The rendered policy fragment (`rawxml`).")),
            )
        })
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_, BindingModel>,
        plan: &mut Plan<BindingModel>,
        d: &mut Diags,
    ) {
        let Some(data) = ctx.data(d) else { return };
        let st = &mut plan.state;
        if st.vault_address.is_null()
            || (req.config.vault_address.is_null() && st.vault_address.is_unknown())
        {
            if let Some(vault) = data.vault(&mut Diags::new()) {
                let address = vault.address().as_str().trim_end_matches('/').to_string();
                st.vault_address = Known::Value(Some(address));
            }
        }
        if let (Some(apim), Some(name)) = (st.api_management_id.get(), st.name.get()) {
            if let Ok(service) = ServiceId::parse(apim) {
                let (id, fragment, named_values) = object_ids(&service, name);
                st.id = Known::Value(id);
                st.fragment_id = Known::Value(fragment);
                st.named_value_ids = Known::Value(named_values);
            }
        }
        st.policy_xml = Known::Unknown;
        let Some(known) = model::known::<BindingModel>(st) else {
            // A role or path created in this run with unknown values: checked again at apply.
            return;
        };
        let kv_v2 = self.check_vault(data, &known, false, d).await;
        if let Some(s) = kv_v2.and_then(|kv| spec(&known, kv)) {
            let xml = render(&s);
            // Formatting-only differences from what APIM holds keep the prior text.
            let prior = req.prior.and_then(|p| p.policy_xml.get());
            plan.state.policy_xml = match prior {
                Some(p) if policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw) => {
                    Known::Value(p.clone())
                }
                _ => Known::Value(xml),
            };
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let data = ctx.data(d)?;
        let azure = data.azure(d)?;
        let Some(service) = service_of(&planned) else {
            d.attr_error(AttrPath::root("api_management_id"), format!("Unable to create {TYPE}"), "`api_management_id` is not an API Management instance's ARM ID.");
            return None;
        };
        let name = planned.name.clone();
        let kv_v2 = self.check_vault(data, &planned, true, d).await?;
        if d.has_errors() {
            return None;
        }
        let Some(fragment_spec) = spec(&planned, kv_v2) else {
            d.attr_error(AttrPath::root("inject"), format!("Unable to create {TYPE}"), "The `inject` block must set one of `header`, `query` or `variable`.");
            return None;
        };
        let xml = render(&fragment_spec);
        if planned
            .policy_xml
            .get()
            .is_some_and(|p| !policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw))
        {
            d.error(format!("Unable to create {TYPE}"), "The secret's mount changed between plan and apply (KV version 2 or not). Run `terraform plan` again.");
            return None;
        }
        // Adopting objects made outside Terraform would hide them: ask for an import.
        let fid = service.policy_fragment(fragment_id(&name));
        match ctx.cancel.run(azure.get_policy_fragment(&fid)).await {
            Ok(Ok(_)) => {
                let what = format!("The policy fragment {} in {service}", fragment_id(&name));
                already_exists(
                    d,
                    TYPE,
                    &what,
                    &format!("{}/vaultBindings/{name}", service.arm_id()),
                    "",
                );
                return None;
            }
            Ok(Err(e)) if e.is_not_found() => {}
            Ok(Err(e)) => {
                azure_err(d, "create", &e);
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
        let api = planned.api_id.clone();
        let steps = async {
            self.write_named_values(azure, &service, None, &planned)
                .await?;
            self.write_fragment(azure, &service, &name, &xml, false)
                .await?;
            if let Some(api) = &api {
                self.set_include(azure, &service, api, &name, true).await?;
            }
            Ok::<(), AzureError>(())
        };
        let outcome = match ctx.cancel.run(steps).await {
            Ok(r) => r,
            Err(_) => Err(AzureError::Config(
                "cancelled: Terraform asked the provider to stop".into(),
            )),
        };
        if let Err(e) = outcome {
            azure_err(d, "create", &e);
            // Leave nothing behind; if that fails too, keep what exists in state (tainted).
            if let Err(cleanup) = self
                .remove_all(azure, &service, &name, api.as_deref())
                .await
            {
                d.error(
                    format!("Unable to clean up {TYPE}"),
                    format!("Some of the binding's APIM objects could not be removed ({cleanup}). They stay in state; the next apply replaces them."),
                );
                return Some(created(planned, &service, xml));
            }
            return None;
        }
        Some(created(planned, &service, xml))
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let azure = ctx.data(d)?.azure(d)?;
        self.read_apim(azure, &state, d).await
    }

    async fn update(
        &self,
        ctx: &Ctx<ProviderData>,
        prior: BindingModel,
        planned: BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let data = ctx.data(d)?;
        let azure = data.azure(d)?;
        let service = service_of(&planned)?;
        let name = planned.name.clone();
        let kv_v2 = self.check_vault(data, &planned, true, d).await?;
        if d.has_errors() {
            return None;
        }
        let xml = render(&spec(&planned, kv_v2)?);
        // What APIM holds must still be what the plan was made from.
        if let Some(current) = self.read_apim(azure, &prior, d).await {
            if current.policy_xml != prior.policy_xml
                || named_values(&current) != named_values(&prior)
            {
                d.error(
                    format!("Unable to update {TYPE}"),
                    format!("The binding's APIM objects in {service} changed since this plan was made. Run `terraform plan` again to see the change, then apply."),
                );
                return None;
            }
        }
        let (old_api, new_api) = (prior.api_id.as_deref(), planned.api_id.as_deref());
        let prior_xml = prior.policy_xml.get().filter(|p| !p.is_empty());
        let steps = async {
            self.write_named_values(azure, &service, Some(&prior), &planned)
                .await?;
            if !prior_xml
                .is_some_and(|p| policy_xml::equivalent(p, Format::Raw, &xml, Format::Raw))
            {
                self.write_fragment(azure, &service, &name, &xml, prior_xml.is_some())
                    .await?;
            }
            if old_api != new_api {
                if let Some(old) = old_api {
                    self.set_include(azure, &service, old, &name, false).await?;
                }
            }
            if let Some(new) = new_api {
                self.set_include(azure, &service, new, &name, true).await?;
            }
            Ok::<(), AzureError>(())
        };
        if let Err(e) = steps.await {
            azure_err(d, "update", &e);
            return self
                .read_apim(azure, &prior, &mut Diags::new())
                .await
                .or(Some(prior));
        }
        let policy_xml = match planned.policy_xml.clone() {
            Known::Value(p) => p,
            Known::Unknown => xml,
        };
        Some(created(planned, &service, policy_xml))
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: BindingModel, d: &mut Diags) {
        let Some(azure) = ctx.data(d).and_then(|p| p.azure(d)) else {
            return;
        };
        let Some(service) = service_of(&state) else {
            return;
        };
        if let Err(e) = self
            .remove_all(azure, &service, &state.name, state.api_id.as_deref())
            .await
        {
            azure_err(d, "delete", &e);
        }
    }

    async fn import(
        &self,
        ctx: &Ctx<ProviderData>,
        id: &str,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let azure = ctx.data(d)?.azure(d)?;
        let Some((apim, name)) = id.split_once("/vaultBindings/") else {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} must be `<api_management_id>/vaultBindings/<name>`."),
            );
            return None;
        };
        let service = match ServiceId::parse_insensitive(apim) {
            Ok(s) => s,
            Err(e) => {
                d.error(
                    format!("Unable to import {TYPE}"),
                    format!("The import ID's instance: {e}"),
                );
                return None;
            }
        };
        let fragment = match azure
            .get_policy_fragment(&service.policy_fragment(fragment_id(name)))
            .await
        {
            Ok(t) => t.value.properties.value,
            Err(e) if e.is_not_found() => {
                d.error(format!("Unable to import {TYPE}"), format!("{service} has no policy fragment {:?}: there is no binding named {name:?}.", fragment_id(name)));
                return None;
            }
            Err(e) => {
                azure_err(d, "import", &e);
                return None;
            }
        };
        let Some(mut s) = parse_fragment(name, &fragment) else {
            d.error(format!("Unable to import {TYPE}"), format!("The policy fragment {:?} is not one this provider wrote (or was edited beyond recognition); it cannot be imported as a binding.", fragment_id(name)));
            return None;
        };
        let (id, fragment, _) = object_ids(&service, name);
        s.id = Known::Value(id);
        s.api_management_id = service.arm_id();
        s.fragment_id = Known::Value(fragment);
        // Which API includes it: the fragment's references.
        if let Ok(apis) = azure
            .fragment_api_references(&service.policy_fragment(fragment_id(name)))
            .await
        {
            s.api_id = apis.first().cloned();
        }
        let [addr, role, audience] = named_value_names(name).map(|n| service.named_value(n));
        if let Ok(t) = azure.get_named_value(&addr).await {
            s.vault_address = Known::Value(t.value.properties.value);
        }
        if let Ok(t) = azure.get_named_value(&role).await {
            s.role = t.value.properties.value.unwrap_or_default();
        }
        if let Ok(t) = azure.get_named_value(&audience).await {
            s.audience = t.value.properties.value.unwrap_or_default();
        }
        Some(s)
    }
}

/// The settings a fragment this provider rendered was made from (for import).
fn parse_fragment(name: &str, xml: &str) -> Option<BindingModel> {
    let between = |start: &str, end: &str| -> Option<String> {
        let i = xml.find(start)? + start.len();
        let j = xml[i..].find(end)? + i;
        Some(xml[i..j].to_string())
    };
    let backend = between("/v1/auth/", "/login</set-url>")?;
    let read_url = format!("{{{{vault-{name}-addr}}}}/v1/");
    let after_login = &xml[xml.find("/login</set-url>")?..];
    let i = after_login.find(&read_url)? + read_url.len();
    let secret_path = after_login[i..].split("</set-url>").next()?.to_string();
    let (kv_v2, field) = if let Some(f) = between("[\"data\"][\"data\"][\"", "\"]") {
        (true, f)
    } else {
        (
            false,
            between(
                "Body.As<JObject>(preserveContent: true)[\"data\"][\"",
                "\"]",
            )?,
        )
    };
    let cache_ttl = between("duration=\"", "\"")
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    let mut inject = InjectBlock::default();
    let tail = &xml[xml.rfind(&format!("ContainsKey(\"vault-secret-{name}\"))\">"))?..];
    let first_attr = |start: &str| -> Option<String> {
        Some(tail.split(start).nth(1)?.split('"').next()?.to_string())
    };
    if let Some(h) = first_attr("<set-header name=\"") {
        inject.header = Some(h);
    } else if let Some(q) = first_attr("<set-query-parameter name=\"") {
        inject.query = Some(q);
    } else {
        inject.variable = Some(first_attr("<set-variable name=\"")?);
    }
    let namespace = between(
        "<set-header name=\"X-Vault-Namespace\" exists-action=\"override\">\n          <value>",
        "</value>",
    );
    let mut s = BindingModel {
        name: name.to_string(),
        backend: Some(backend),
        secret_path,
        secret_field: field,
        cache_ttl: Some(cache_ttl),
        on_error: Some(
            if xml.contains("<return-response>") {
                "fail"
            } else {
                "continue"
            }
            .to_string(),
        ),
        vault_namespace: namespace,
        inject: Some(inject),
        vault_address: Known::Value(None),
        fragment_id: Known::Value(String::new()),
        named_value_ids: Known::Value(Vec::new()),
        ..BindingModel::default()
    };
    // The text must mean exactly what the provider renders for these settings; the state
    // keeps the rendering, as after a create.
    let rendered = render(&spec(&s, kv_v2)?);
    if !policy_xml::equivalent(&rendered, Format::Raw, xml, Format::Raw) {
        return None;
    }
    s.policy_xml = Known::Value(rendered);
    Some(s)
}
