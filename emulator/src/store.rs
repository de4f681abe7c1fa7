//! Everything the emulator remembers: tenants, subscriptions, resource groups, APIM instances with
//! their identities, child entities, registered clients and running operations. The whole state is
//! one serde value, so `--state-file` persistence is a JSON dump after every write.

use crate::util::{b64, now_rfc3339, uuid};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// ARM resource type of an APIM instance.
pub const SERVICE_TYPE: &str = "Microsoft.ApiManagement/service";

/// The persisted state of the emulator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The single Entra tenant the emulator plays.
    pub tenant_id: String,
    /// What the first stdout line reports (the first seeded objects).
    pub defaults: Defaults,
    /// Known subscriptions, by lower-cased id.
    pub subscriptions: BTreeMap<String, String>,
    /// Resource groups, by lower-cased ARM id.
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    /// APIM instances, by lower-cased ARM id.
    pub services: BTreeMap<String, Service>,
    /// User-assigned managed identities, by lower-cased ARM id. They live independently of the
    /// instances they are assigned to, as in Azure, so the same identity keeps its ids everywhere.
    pub user_identities: BTreeMap<String, UserIdentity>,
    /// Child entities of APIM instances (named values, fragments, APIs, policies, backends), by
    /// lower-cased ARM id.
    pub entities: BTreeMap<String, Entity>,
    /// App registrations allowed to use the token endpoint.
    pub clients: Vec<Client>,
    /// Long-running operations still being polled, by operation id.
    pub operations: BTreeMap<String, Operation>,
    /// Tunables that the control plane can change at run time.
    pub settings: Settings,
    /// Source of ETags: bumped on every write.
    pub etag_counter: u64,
    /// Key material that must survive restarts for issued tokens and `ca.pem` to stay valid.
    pub keys: Keys,
    /// CI jobs allowed to request ID tokens from the emulator's CI OIDC issuer.
    #[serde(default)]
    pub pipelines: Vec<crate::pipelines::PipelineIdentity>,
}

/// The ids reported on the first stdout line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Defaults {
    /// Subscription of the first seeded instance.
    pub subscription_id: String,
    /// Resource group of the first seeded instance.
    pub resource_group: String,
    /// ARM id of the first seeded instance.
    pub api_management_id: String,
    /// Principal id of that instance's identity (system-assigned if any, else its first
    /// user-assigned one, else empty).
    pub principal_id: String,
    /// First registered client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// A resource group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceGroup {
    /// Canonical ARM id.
    pub id: String,
    /// Subscription id.
    pub subscription_id: String,
    /// Name as created.
    pub name: String,
    /// Azure region.
    pub location: String,
}

/// A system-assigned identity: a service principal whose lifetime is the instance's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemIdentity {
    /// Object id of the service principal (`oid` in its tokens).
    pub principal_id: String,
    /// Application (client) id (`appid` in its tokens).
    pub client_id: String,
}

/// A user-assigned identity resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserIdentity {
    /// Canonical ARM id (`.../Microsoft.ManagedIdentity/userAssignedIdentities/{name}`).
    pub id: String,
    /// Object id.
    pub principal_id: String,
    /// Application (client) id.
    pub client_id: String,
}

/// An APIM instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// Canonical ARM id.
    pub id: String,
    /// Subscription id.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Instance name.
    pub name: String,
    /// Azure region.
    pub location: String,
    /// `sku` object as given (`name`, `capacity`).
    pub sku: Value,
    /// Resource tags.
    pub tags: Value,
    /// Writable properties as given (publisherEmail, publisherName, ...).
    pub properties: Value,
    /// Creation time.
    pub created_at: String,
    /// The system-assigned identity, if enabled.
    pub system_identity: Option<SystemIdentity>,
    /// Canonical ARM ids of the assigned user identities.
    pub user_assigned: Vec<String>,
    /// Token version (1 or 2) of managed-identity tokens minted for this instance by default.
    pub token_version: u8,
    /// Current ETag.
    pub etag: String,
}

/// A child entity of an APIM instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    /// Canonical ARM id.
    pub id: String,
    /// ARM type (`Microsoft.ApiManagement/service/namedValues`, ...).
    pub type_name: String,
    /// Leaf name as created.
    pub name: String,
    /// Lower-cased id of the owning instance.
    pub service_key: String,
    /// Current ETag.
    pub etag: String,
    /// Stored properties (normalised form; secrets included — rendering masks them).
    pub properties: Value,
}

/// A federated identity credential of a registered client (trusts an external issuer's tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FederatedCredential {
    /// Expected `iss` of the assertion.
    pub issuer: String,
    /// Expected `sub` of the assertion.
    pub subject: String,
    /// Expected `aud` of the assertion (Entra's default, `api://AzureADTokenExchange`, when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// An app registration (service principal) that can use the client-credentials flow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, if any.
    pub client_secret: Option<String>,
    /// Object id of its service principal (`oid` in its tokens).
    pub object_id: String,
    /// Federated credentials; empty means any well-formed, unexpired assertion for the
    /// `api://AzureADTokenExchange` audience is accepted.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// Certificates (PEM) whose keys may sign client assertions for this client.
    #[serde(default)]
    pub certificates: Vec<String>,
}

/// A long-running operation started by a PUT/PATCH.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    /// Canonical id of the entity being written.
    pub resource_id: String,
    /// Polls still answered `InProgress`.
    pub remaining: u32,
    /// When it started.
    pub started: String,
}

/// Run-time tunables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// How many polls an LRO answers `InProgress` before `Succeeded` (0: writes are synchronous).
    pub lro_polls: u32,
    /// `Retry-After` seconds sent with LRO responses.
    pub lro_retry_after: u32,
    /// Whether saving a policy, fragment or named value is refused for breaking the documented
    /// rules (`gateway::rules`); `POST /_emulator/rules {"enforce": false}` relaxes them.
    #[serde(default = "enforced")]
    pub enforce_rules: bool,
    /// Lifetime in seconds of the access tokens the Entra token endpoint issues (Entra's 3599
    /// when absent); shorter ones make clients renew within a test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime: Option<i64>,
    /// Lifetime in seconds of the managed-identity tokens the gateway's
    /// `authentication-managed-identity` obtains (24 h when absent); zero or negative: already
    /// expired when issued, as a Vault whose clock runs ahead sees them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi_token_lifetime: Option<i64>,
}

fn enforced() -> bool {
    true
}

/// Persisted key material.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keys {
    /// RSA token-signing key, PKCS#8 DER in base64.
    pub signing_key_pkcs8: String,
    /// CA private key, PEM.
    pub ca_key_pem: String,
}

impl State {
    /// A fresh ETag value (opaque, base64 of a counter, like APIM's `AAAAAAAAAAa=`).
    pub fn next_etag(&mut self) -> String {
        self.etag_counter += 1;
        b64(&self.etag_counter.to_be_bytes())
    }

    /// Writes the state to `path` atomically (temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a state written by [`State::save`].
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The `identity` object of an instance as ARM returns it, or `None` without identity.
    pub fn identity_json(&self, svc: &Service) -> Option<Value> {
        let ty = match (svc.system_identity.is_some(), !svc.user_assigned.is_empty()) {
            (true, true) => "SystemAssigned, UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => return None,
        };
        let mut out = json!({ "type": ty });
        if let Some(sys) = &svc.system_identity {
            out["principalId"] = json!(sys.principal_id);
            out["tenantId"] = json!(self.tenant_id);
        }
        if !svc.user_assigned.is_empty() {
            let mut map = serde_json::Map::new();
            for id in &svc.user_assigned {
                if let Some(u) = self.user_identities.get(&id.to_ascii_lowercase()) {
                    map.insert(
                        u.id.clone(),
                        json!({"principalId": u.principal_id, "clientId": u.client_id}),
                    );
                }
            }
            out["userAssignedIdentities"] = Value::Object(map);
        }
        Some(out)
    }

    /// Returns (creating on first use) the user-assigned identity with this ARM id.
    pub fn user_identity(&mut self, id: &str) -> UserIdentity {
        self.user_identities
            .entry(id.to_ascii_lowercase())
            .or_insert_with(|| UserIdentity {
                id: id.to_string(),
                principal_id: uuid(),
                client_id: uuid(),
            })
            .clone()
    }

    /// Looks up the registered client with this id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    }
}

/// Canonical ARM id of an APIM instance.
pub fn service_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}"
    )
}

/// Canonical ARM id of a resource group.
pub fn resource_group_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
}

/// The seed file: what exists before the first request (see README.md for the format).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Tenant id (random if absent).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Subscriptions with their resource groups and instances.
    #[serde(default)]
    pub subscriptions: Vec<SeedSubscription>,
    /// Registered clients.
    #[serde(default)]
    pub clients: Vec<SeedClient>,
    /// Initial LRO poll count.
    #[serde(default)]
    pub lro_polls: Option<u32>,
}

/// A seeded subscription.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSubscription {
    /// Subscription id (random if absent).
    #[serde(default)]
    pub id: Option<String>,
    /// Its resource groups.
    #[serde(default)]
    pub resource_groups: Vec<SeedResourceGroup>,
}

/// A seeded resource group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedResourceGroup {
    /// Name.
    pub name: String,
    /// Region (default `westeurope`).
    #[serde(default)]
    pub location: Option<String>,
    /// APIM instances in it.
    #[serde(default)]
    pub services: Vec<SeedService>,
}

/// A seeded APIM instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedService {
    /// Instance name.
    pub name: String,
    /// Region (default: the resource group's).
    #[serde(default)]
    pub location: Option<String>,
    /// SKU name (default `Developer`).
    #[serde(default)]
    pub sku: Option<String>,
    /// Publisher e-mail (default `admin@contoso.com`).
    #[serde(default)]
    pub publisher_email: Option<String>,
    /// Publisher name (default `Contoso`).
    #[serde(default)]
    pub publisher_name: Option<String>,
    /// Its managed identities; absent means none.
    #[serde(default)]
    pub identity: Option<SeedIdentity>,
    /// Version (1 or 2) of its managed-identity tokens (default 1).
    #[serde(default)]
    pub token_version: Option<u8>,
}

/// A seeded identity block, mirroring ARM's `identity`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fixed principal id of the system-assigned identity (random if absent).
    #[serde(default)]
    pub principal_id: Option<String>,
    /// Fixed client id of the system-assigned identity (random if absent).
    #[serde(default)]
    pub client_id: Option<String>,
    /// User-assigned identities.
    #[serde(default)]
    pub user_assigned: Vec<SeedUserIdentity>,
}

/// A seeded user-assigned identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedUserIdentity {
    /// Full ARM id; or give `name` and it is placed in the instance's resource group.
    #[serde(default)]
    pub id: Option<String>,
    /// Name, when `id` is absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Fixed principal id (random if absent).
    #[serde(default)]
    pub principal_id: Option<String>,
    /// Fixed client id (random if absent).
    #[serde(default)]
    pub client_id: Option<String>,
}

/// A seeded client registration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedClient {
    /// Client id (random if absent).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Secret (random if absent and no federated credential is given).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Service principal object id (random if absent).
    #[serde(default)]
    pub object_id: Option<String>,
    /// Federated credentials.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// Certificates (PEM) whose keys may sign client assertions.
    #[serde(default)]
    pub certificates: Vec<String>,
}

impl SeedClient {
    /// The registration: what is absent is random, and a client without federated credentials
    /// or certificates gets a random secret.
    pub fn build(&self) -> Client {
        let secret = match (
            &self.client_secret,
            self.federated_credentials.is_empty() && self.certificates.is_empty(),
        ) {
            (Some(s), _) => Some(s.clone()),
            (None, true) => Some(crate::util::b64url(&crate::util::random_bytes::<30>())),
            (None, false) => None,
        };
        Client {
            client_id: self.client_id.clone().unwrap_or_else(uuid),
            client_secret: secret,
            object_id: self.object_id.clone().unwrap_or_else(uuid),
            federated_credentials: self.federated_credentials.clone(),
            certificates: self.certificates.clone(),
        }
    }
}

impl Seed {
    /// The default world: one subscription, one resource group, one instance with a
    /// system-assigned identity and one client with a secret.
    pub fn default_world() -> Self {
        Seed {
            tenant_id: None,
            subscriptions: vec![SeedSubscription {
                id: None,
                resource_groups: vec![SeedResourceGroup {
                    name: "rg-apim-emulator".into(),
                    location: None,
                    services: vec![SeedService {
                        name: "apim-emulator".into(),
                        identity: Some(SeedIdentity {
                            kind: "SystemAssigned".into(),
                            ..SeedIdentity::default()
                        }),
                        ..SeedService::default()
                    }],
                }],
            }],
            clients: vec![SeedClient::default()],
            lro_polls: None,
        }
    }

    /// Builds the initial state from this seed and freshly generated keys.
    pub fn build(&self, keys: Keys, lro_polls: u32) -> Result<State, String> {
        let mut st = State {
            tenant_id: self.tenant_id.clone().unwrap_or_else(uuid),
            defaults: Defaults::default(),
            subscriptions: BTreeMap::new(),
            resource_groups: BTreeMap::new(),
            services: BTreeMap::new(),
            user_identities: BTreeMap::new(),
            entities: BTreeMap::new(),
            clients: Vec::new(),
            operations: BTreeMap::new(),
            settings: Settings {
                lro_polls: self.lro_polls.unwrap_or(lro_polls),
                lro_retry_after: 0,
                enforce_rules: true,
                token_lifetime: None,
                mi_token_lifetime: None,
            },
            etag_counter: 0,
            keys,
            pipelines: Vec::new(),
        };
        let mut first_service = true;
        for sub in &self.subscriptions {
            let sub_id = sub.id.clone().unwrap_or_else(uuid);
            st.subscriptions
                .insert(sub_id.to_ascii_lowercase(), sub_id.clone());
            for rg in &sub.resource_groups {
                let location = rg.location.clone().unwrap_or_else(|| "westeurope".into());
                let rg_id = resource_group_id(&sub_id, &rg.name);
                st.resource_groups.insert(
                    rg_id.to_ascii_lowercase(),
                    ResourceGroup {
                        id: rg_id,
                        subscription_id: sub_id.clone(),
                        name: rg.name.clone(),
                        location: location.clone(),
                    },
                );
                for s in &rg.services {
                    let svc = seed_service(&mut st, &sub_id, &rg.name, &location, s)?;
                    if first_service {
                        first_service = false;
                        let principal = svc
                            .system_identity
                            .as_ref()
                            .map(|i| i.principal_id.clone())
                            .or_else(|| {
                                svc.user_assigned.first().and_then(|id| {
                                    st.user_identities
                                        .get(&id.to_ascii_lowercase())
                                        .map(|u| u.principal_id.clone())
                                })
                            })
                            .unwrap_or_default();
                        st.defaults.subscription_id = sub_id.clone();
                        st.defaults.resource_group = rg.name.clone();
                        st.defaults.api_management_id = svc.id.clone();
                        st.defaults.principal_id = principal;
                    }
                    st.services.insert(svc.id.to_ascii_lowercase(), svc);
                }
            }
            if st.defaults.subscription_id.is_empty() {
                st.defaults.subscription_id = sub_id.clone();
            }
        }
        for c in &self.clients {
            let client = c.build();
            if st.clients.is_empty() {
                st.defaults.client_id = client.client_id.clone();
                st.defaults.client_secret = client.client_secret.clone().unwrap_or_default();
            }
            st.clients.push(client);
        }
        Ok(st)
    }
}

fn seed_service(
    st: &mut State,
    sub: &str,
    rg: &str,
    rg_location: &str,
    s: &SeedService,
) -> Result<Service, String> {
    if !crate::arm::service::valid_name(&s.name) {
        return Err(format!("seed: invalid APIM instance name '{}'", s.name));
    }
    let id = service_id(sub, rg, &s.name);
    let mut system_identity = None;
    let mut user_assigned = Vec::new();
    if let Some(ident) = &s.identity {
        let (sys, user) = parse_identity_type(&ident.kind)
            .ok_or_else(|| format!("seed: unknown identity type '{}'", ident.kind))?;
        if sys {
            system_identity = Some(SystemIdentity {
                principal_id: ident.principal_id.clone().unwrap_or_else(uuid),
                client_id: ident.client_id.clone().unwrap_or_else(uuid),
            });
        }
        if user {
            for u in &ident.user_assigned {
                let uid = match (&u.id, &u.name) {
                    (Some(id), _) => id.clone(),
                    (None, Some(name)) => format!(
                        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
                    ),
                    (None, None) => return Err("seed: a user-assigned identity needs `id` or `name`".into()),
                };
                let entry = UserIdentity {
                    id: uid.clone(),
                    principal_id: u.principal_id.clone().unwrap_or_else(uuid),
                    client_id: u.client_id.clone().unwrap_or_else(uuid),
                };
                st.user_identities.insert(uid.to_ascii_lowercase(), entry);
                user_assigned.push(uid);
            }
        }
    }
    let etag = st.next_etag();
    Ok(Service {
        id,
        subscription_id: sub.to_string(),
        resource_group: rg.to_string(),
        name: s.name.clone(),
        location: s
            .location
            .clone()
            .unwrap_or_else(|| rg_location.to_string()),
        sku: json!({"name": s.sku.clone().unwrap_or_else(|| "Developer".into()), "capacity": 1}),
        tags: json!({}),
        properties: json!({
            "publisherEmail": s.publisher_email.clone().unwrap_or_else(|| "admin@contoso.com".into()),
            "publisherName": s.publisher_name.clone().unwrap_or_else(|| "Contoso".into()),
        }),
        created_at: now_rfc3339(),
        system_identity,
        user_assigned,
        token_version: s.token_version.unwrap_or(1),
        etag,
    })
}

/// Splits an ARM identity type into (system-assigned?, user-assigned?); `None` if unknown.
pub fn parse_identity_type(kind: &str) -> Option<(bool, bool)> {
    let norm: String = kind
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    match norm.as_str() {
        "systemassigned" => Some((true, false)),
        "userassigned" => Some((false, true)),
        "systemassigned,userassigned" => Some((true, true)),
        "none" | "" => Some((false, false)),
        _ => None,
    }
}
