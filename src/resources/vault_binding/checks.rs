//! What the binding checks before APIM is touched: its attributes (validators) and, at plan
//! and again at apply, the Vault side: the role exists, its policies grant `read` on the
//! secret path, and the cache lifetime fits the token and lease TTLs.

use crate::clients::azure::apim::service::IdentitySelector;
use crate::clients::azure::id::ResourceId;
use crate::clients::vault::acl;
use std::sync::OnceLock;

use crate::clients::vault::mounts::MountInfo;
use crate::clients::vault::role::{Role, RoleMethod};
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::schema::validators;
use crate::framework::value::Value;
use crate::resources::this_run::RoleFacts;

use crate::resources::policy_xml;

use crate::clients::azure::apim::api::Api;
use crate::clients::azure::apim::service::Service;
use crate::clients::azure::{AzureError, Tagged};

use super::apim::{api_policy_id, api_reads, read_policy_shared, PolicyRead};
use super::model::{api_name, service_of, BindingModel};
use super::render::{find_block, with_block, BindingSpec, Logger, LoggerKind};
use super::{VaultBinding, TYPE};
use crate::resources::shared_reads::{service_reads, SharedReads};

pub(super) fn validate_name(v: &Value, p: &AttrPath, d: &mut Diags) {
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
            Err(format!("`name` is {s:?}: use 1 to 60 lowercase letters, digits and dashes, not starting or ending with a dash (it names the binding's record and variables in the API's policy)."))
        }
    });
}

/// What the Vault-side checks learnt: the secret's mount, and whom the role is bound to.
pub(super) struct VaultFacts {
    /// The secret is in KV version 2.
    pub kv_v2: bool,
    /// The secret comes with a lease.
    pub leased: bool,
    /// The identity (`oid`, `tid`) the role is bound to, when known.
    pub bound_identity: Option<(String, String)>,
}

/// What the Vault-side checks read, shared by the bindings of this process: a role, a policy,
/// a secret's mount is read once per operation, not once per binding.
struct VaultReads {
    roles: SharedReads<Role>,
    policies: SharedReads<String>,
    mounts: SharedReads<MountInfo>,
    auth_ttls: SharedReads<i64>,
}

fn vault_reads() -> &'static VaultReads {
    static READS: OnceLock<VaultReads> = OnceLock::new();
    READS.get_or_init(|| VaultReads {
        roles: SharedReads::exact(),
        policies: SharedReads::exact(),
        mounts: SharedReads::exact(),
        auth_ttls: SharedReads::exact(),
    })
}

impl VaultBinding {
    pub(super) async fn check_vault(
        &self,
        data: &ProviderData,
        v: &BindingModel,
        at_apply: bool,
        d: &mut Diags,
    ) -> Option<VaultFacts> {
        let vault = data.vault(d)?;
        let (backend, role, path) = (v.backend(), v.role.as_str(), v.secret_path.as_str());
        let cache_ttl = Some(v.cache_ttl());
        // The role: what this run plans for it, else what Vault holds.
        let planned = data.this_run.find_role(backend, role);
        let facts = match planned {
            Some(f) => Some(f),
            None => match vault_reads()
                .roles
                .get_found(&format!("{backend}/{role}"), || {
                    vault.read_role(backend, role, RoleMethod::Jwt)
                })
                .await
            {
                Ok(Some(r)) => Some(RoleFacts {
                    token_policies: Some(r.token().effective_policies()),
                    token_ttl: Some(r.token().token_ttl),
                    audiences: match &r {
                        Role::Jwt(j) => Some(j.bound_audiences.clone()),
                        Role::Azure(_) => None,
                    },
                    bound_identity: match &r {
                        Role::Jwt(j) => j
                            .bound_claim("oid")
                            .zip(j.bound_claim("tid"))
                            .map(|(o, t)| (o.to_string(), t.to_string())),
                        Role::Azure(_) => None,
                    },
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
                    None => match vault_reads()
                        .policies
                        .get_found(n, || vault.read_policy(n))
                        .await
                    {
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
        // APIM asks Entra for a token of `audience`: the role must accept it.
        if let Some(audiences) = &facts.audiences {
            if !audiences.iter().any(|a| a == &v.audience) {
                d.attr_error(
                    AttrPath::root("audience"),
                    "The role does not accept this audience",
                    format!("`audience` is {:?}, but role {role:?} accepts tokens for {}; Vault would refuse the gateway's login (\"aud claim does not match\"). Use the role's audience, or add this one to the role's `audience`.", v.audience, audiences.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")),
                );
            }
        }
        // The cache must not outlive the token it was fetched with: the role's TTL, or, when
        // it sets none, its auth mount's.
        let token_ttl = match facts.token_ttl {
            Some(0) => vault_reads()
                .auth_ttls
                .get(backend, || vault.auth_default_ttl(backend))
                .await
                .ok()
                .map(|t| (t, "the auth mount's default token TTL")),
            Some(t) => Some((t, "the role's token_ttl")),
            None => None,
        };
        if let (Some((ttl, which)), Some(c)) = (token_ttl.filter(|(t, _)| *t > 0), cache_ttl) {
            if c > ttl {
                d.attr_error(
                    AttrPath::root("cache_ttl"),
                    "Cache outlives the Vault token",
                    format!("`cache_ttl` is {c} s, longer than {which} of {ttl} s: the gateway would keep a secret longer than the token that fetched it was valid. Lower `cache_ttl` to at most {ttl}, or raise the role's token_ttl."),
                );
            }
        }
        // The secret's mount: KV v2 or leased.
        let mount = match vault_reads()
            .mounts
            .get_found(path, || vault.mount_of(path))
            .await
        {
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
        if mount.is_leased() && cache_ttl == Some(0) {
            d.attr_error(
                AttrPath::root("cache_ttl"),
                "A leased secret needs the cache",
                format!("`cache_ttl` is 0, so the gateway would read {path:?} on every request, and each read of a leased secret makes Vault issue a new credential (for a database, a new user) that lives until its lease ends. Set `cache_ttl` to how long one credential may serve requests (at most its lease TTL)."),
            );
        }
        if mount.is_leased() {
            // The engine's role decides the lease (a database or PKI role), else the mount.
            let lease = match vault.engine_role_ttl(&mount, path).await {
                Some(t) => Some((t, "its role's default TTL")),
                None => vault
                    .default_lease_ttl(&mount.path)
                    .await
                    .ok()
                    .map(|t| (t, "the mount's default lease TTL")),
            };
            if let (Some((lease_ttl, which)), Some(c)) = (lease, cache_ttl) {
                if lease_ttl > 0 && c > lease_ttl {
                    d.attr_error(
                        AttrPath::root("cache_ttl"),
                        "Cache outlives the secret's lease",
                        format!("`cache_ttl` is {c} s, longer than the lease of {path:?} ({which}: {lease_ttl} s): the gateway would keep using a credential after Vault revoked it. Lower `cache_ttl` to at most {lease_ttl}."),
                    );
                }
            }
        }
        Some(VaultFacts {
            kv_v2: mount.is_kv_v2(),
            leased: mount.is_leased(),
            bound_identity: facts.bound_identity,
        })
    }
}

impl VaultBinding {
    /// The binding's logger (`logger_id`), looked up in its instance: `Some(None)` without
    /// one; `None` (with an error) when it cannot be used or looked up.
    pub(super) async fn check_logger(
        &self,
        data: &ProviderData,
        v: &BindingModel,
        d: &mut Diags,
    ) -> Option<Option<Logger>> {
        let Some(written) = &v.logger_id else {
            return Some(None);
        };
        let at = AttrPath::root("logger_id");
        let service = service_of(v)?;
        let name = match written.rsplit_once("/loggers/") {
            Some((instance, name)) => {
                if !instance.eq_ignore_ascii_case(&service.arm_id()) {
                    d.attr_error(
                        at,
                        "The logger is in another instance",
                        format!("`logger_id` is {written:?}, a logger of another API Management instance than the binding's ({service}); the gateway can only send to the instance's own loggers. Name a logger of {service}."),
                    );
                    return None;
                }
                name
            }
            None => written.as_str(),
        };
        let azure = data.azure(d)?;
        let id = service.logger(name);
        match azure.get_logger(&id).await {
            Ok(l) => {
                let kind = match l.value.properties.logger_type.as_str() {
                    "azureEventHub" => LoggerKind::EventHub,
                    "applicationInsights" | "azureMonitor" => LoggerKind::Metric,
                    other => {
                        d.attr_error(
                            at,
                            "Logger of an unknown type",
                            format!("Logger {name:?} of {service} has type {other:?}; a binding sends to an `azureEventHub` (events), `applicationInsights` or `azureMonitor` (metrics) logger. Name one of those."),
                        );
                        return None;
                    }
                };
                Some(Some(Logger {
                    id: written.clone(),
                    kind,
                }))
            }
            Err(e) if e.is_not_found() => {
                d.attr_error(
                    at,
                    "Logger not found",
                    format!("{service} has no logger {name:?}. Check `logger_id` (the logger's name, or its ARM ID), or create the logger first and reference it (`logger_id = azurerm_api_management_logger.<name>.id`)."),
                );
                None
            }
            Err(e) => {
                d.error(
                    format!("Unable to check {TYPE}"),
                    format!("Reading logger {name:?}: {e}"),
                );
                None
            }
        }
    }
}

/// The policy document size APIM accepts on an instance of `sku`: 16 KiB on Consumption,
/// 256 KiB on every other tier (classic and v2), per the service limits.
fn document_limit(sku: &str) -> usize {
    if sku.eq_ignore_ascii_case("Consumption") {
        16 * 1024
    } else {
        256 * 1024
    }
}

/// The ARM objects the plan-time checks judge: the instance, the API and its policy.
pub(super) struct AzureReads {
    instance: Result<Tagged<Service>, AzureError>,
    api: Result<Tagged<Api>, AzureError>,
    policy: Result<PolicyRead, AzureError>,
}

/// Reads the instance, the API and its policy of binding `v` at once (each shared by the
/// bindings of this process, [`SharedReads`]); `None` without Azure or with an instance ID
/// that is not one.
pub(super) async fn read_azure(data: &ProviderData, v: &BindingModel) -> Option<AzureReads> {
    let azure = data.azure(&mut Diags::new())?;
    let service = service_of(v)?;
    let api_id = service.api(api_name(&v.api_id));
    let policy_id = api_policy_id(&service, &v.api_id);
    let (service_key, api_key) = (service.arm_id(), api_id.arm_id());
    let (instance, api, policy) = tokio::join!(
        service_reads().get(&service_key, || azure.get_service(&service)),
        api_reads().get(&api_key, || azure.get_api(&api_id)),
        read_policy_shared(azure, &policy_id),
    );
    Some(AzureReads {
        instance,
        api,
        policy,
    })
}

impl VaultBinding {
    /// Plan-time checks on the Azure side, on what [`read_azure`] read: the role is bound to
    /// the instance's identity, the API exists, its policy has no cache lookup or store of its
    /// own in `<inbound>` (APIM allows one of each per section), and with this binding
    /// (`mine`, when its mount is known) the policy fits the instance's document size.
    pub(super) fn check_azure(
        &self,
        data: &ProviderData,
        v: &BindingModel,
        vault: Option<&VaultFacts>,
        mine: Option<&BindingSpec>,
        reads: Option<AzureReads>,
        d: &mut Diags,
    ) {
        if data.azure(d).is_none() {
            return;
        }
        let (Some(service), Some(reads)) = (service_of(v), reads) else {
            return;
        };
        let api = api_name(&v.api_id);
        // The gateway logs in with the instance's system-assigned identity: the role must be
        // bound to it (the commonest real failure: a role bound to another instance).
        if let Some((oid, tid)) = vault.and_then(|f| f.bound_identity.as_ref()) {
            if let Ok(id) = reads.instance.as_ref().map_err(Clone::clone).and_then(|s| {
                s.value
                    .resolve_identity(&service, &IdentitySelector::SystemAssigned, None)
            }) {
                if id.principal_id != *oid || id.tenant_id != *tid {
                    d.attr_error(
                        AttrPath::root("role"),
                        "The role is bound to another identity",
                        format!("Role {:?} accepts tokens of oid {oid:?} in tenant {tid:?}, but {service} logs in as its system-assigned identity, oid {:?} in tenant {:?}; Vault would refuse every login. Bind the role to this instance (`api_management_id = <this instance's ID>` on the apim_vault_azure_role), or use the role made for it.", v.role, id.principal_id, id.tenant_id),
                    );
                }
            }
        }
        match reads.api {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                d.attr_error(
                    AttrPath::root("api_id"),
                    "API not found",
                    format!("{service} has no API {api:?}. Check `api_id` (the API's name, or its ARM ID), or create the API first and reference it (`api_id = azurerm_api_management_api.<name>.name`)."),
                );
                return;
            }
            Err(e) => {
                d.error(
                    format!("Unable to check {TYPE}"),
                    format!("Reading API {api:?}: {e}"),
                );
                return;
            }
        }
        let doc = match reads.policy {
            Ok(doc) => doc.map(|(text, _)| text),
            Err(e) => {
                d.error(
                    format!("Unable to check {TYPE}"),
                    format!("Reading the policy of API {api:?}: {e}"),
                );
                return;
            }
        };
        let mut block = doc
            .as_deref()
            .and_then(find_block)
            .map(|f| f.block)
            .unwrap_or_default();
        if let Some(doc) = &doc {
            let outside = match find_block(doc) {
                Some(f) => format!("{}{}", &doc[..f.range.start], &doc[f.range.end..]),
                None => doc.clone(),
            };
            if let Some(own) = policy_xml::inbound_cache_policies(&outside) {
                d.attr_error(
                    AttrPath::root("api_id"),
                    "The API's policy caches values itself",
                    format!("The inbound policy of API {api:?} has its own <{own}>, and APIM allows one per policy section; the bindings keep their secrets with one lookup and one store of their own in that section. Move the API's value caching to another section (or scope), or bind the secret to another API."),
                );
            }
        }
        let Some(mine) = mine else { return };
        // This binding, and every other binding planned on the API in this run.
        let key = format!("{}/apis/{}", service.arm_id(), api).to_ascii_lowercase();
        data.this_run.binding(&key, mine.clone());
        for planned in data.this_run.bindings_of(&key) {
            block.bindings.retain(|s| s.name != planned.name);
            block.bindings.push(planned);
        }
        block.bindings.sort_by(|a, b| a.name.cmp(&b.name));
        let Ok(Some(after)) = with_block(doc.as_deref(), api, &block) else {
            return;
        };
        let sku = match reads.instance {
            Ok(s) => s.value.sku.map(|s| s.name).unwrap_or_default(),
            Err(_) => String::new(),
        };
        // The Consumption tier has no built-in cache ("External only" in the service
        // limits): `caching-type="internal"` finds nothing there, so every request logs in and
        // reads, and every read of a leased secret is a new credential.
        if sku.eq_ignore_ascii_case("Consumption") && mine.cache_ttl > 0 {
            let detail = format!("{service} is on the Consumption tier, which has no built-in cache: the gateway would log in to Vault and read the secret on every request.");
            if mine.leased {
                d.attr_error(
                    AttrPath::root("cache_ttl"),
                    "No cache for a leased secret",
                    format!("{detail} Each read of {:?} creates a new credential. Bind a secret without a lease (KV), or use an instance of another tier.", v.secret_path),
                );
            } else {
                d.attr_warning(
                    AttrPath::root("cache_ttl"),
                    "No cache on this tier",
                    format!("{detail} Expect one Vault login per request."),
                );
            }
        }
        let limit = document_limit(&sku);
        let before = doc.as_ref().map_or(0, String::len);
        // What one more binding like this one costs, and so how many more fit.
        let each = after.len().saturating_sub(before).max(1);
        let more = limit.saturating_sub(after.len()) / each;
        if after.len() <= limit && after.len() * 5 > limit * 4 {
            d.attr_warning(
                AttrPath::root("api_id"),
                "The API's policy is nearly full",
                format!("With this binding, the policy of API {api:?} is {} of the {} KiB APIM accepts on this instance: about {more} more bindings like this one fit. Spread further bindings over other APIs.", after.len(), limit / 1024),
            );
        }
        if after.len() > limit {
            d.attr_error(
                AttrPath::root("api_id"),
                "The API's policy would be too large",
                format!("With this binding, the policy of API {api:?} would be {} bytes, over the {} KiB APIM accepts on a {} instance ({} bindings on that API). Spread the bindings over more APIs, or share one secret between bindings.", after.len(), limit / 1024, if sku.is_empty() { "this" } else { &sku }, block.bindings.len()),
            );
        }
    }
}
