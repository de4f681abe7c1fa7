//! The API Management instance and its managed identities.
//!
//! `GET {service}?api-version=2024-05-01` — `ApiManagementService_Get` in apimdeployment.json
//! (`ApiManagementServiceResource`, `ApiManagementServiceIdentity`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::clients::azure::id::{ResourceId, ServiceId, UserAssignedIdentityId};
use crate::clients::azure::{ArmRequest, Azure, AzureError, Tagged};

/// Response of `GET {service}`: the parts the provider reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// ARM ID.
    pub id: String,
    /// Instance name.
    pub name: String,
    /// Azure region.
    #[serde(default)]
    pub location: Option<String>,
    /// ETag (also in the header).
    #[serde(default)]
    pub etag: Option<String>,
    /// Pricing tier.
    #[serde(default)]
    pub sku: Option<Sku>,
    /// Managed identities; absent when the instance has none.
    #[serde(default)]
    pub identity: Option<ServiceIdentity>,
    /// Properties.
    #[serde(default)]
    pub properties: ServiceProperties,
}

/// `sku` of an instance.
#[derive(Debug, Clone, Deserialize)]
pub struct Sku {
    /// Developer, Basic, Standard, Premium, Consumption, Isolated, BasicV2, StandardV2.
    pub name: String,
    /// Units.
    #[serde(default)]
    pub capacity: Option<i64>,
}

/// `properties` of an instance (the parts the provider reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProperties {
    /// e.g. `Succeeded`.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// The gateway's URL.
    #[serde(default)]
    pub gateway_url: Option<String>,
    /// Publisher e-mail.
    #[serde(default)]
    pub publisher_email: Option<String>,
    /// Publisher name.
    #[serde(default)]
    pub publisher_name: Option<String>,
}

/// `identity` of an instance (`ApiManagementServiceIdentity`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The system-assigned identity's object ID.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// The system-assigned identity's tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// User-assigned identities, keyed by their ARM ID.
    #[serde(default)]
    pub user_assigned_identities: BTreeMap<String, UserIdentity>,
}

/// One entry of `userAssignedIdentities`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// Object ID.
    #[serde(default)]
    pub principal_id: Option<String>,
    /// Client ID.
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Which of an instance's identities to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySelector {
    /// The system-assigned identity.
    SystemAssigned,
    /// One of its user-assigned identities.
    UserAssigned(UserAssignedIdentityId),
}

impl IdentitySelector {
    /// `SystemAssigned` (any case) or the ARM ID of a user-assigned identity (strict).
    pub fn parse(s: &str) -> Result<IdentitySelector, AzureError> {
        if s.eq_ignore_ascii_case("SystemAssigned") {
            Ok(IdentitySelector::SystemAssigned)
        } else {
            Ok(IdentitySelector::UserAssigned(
                UserAssignedIdentityId::parse(s)?,
            ))
        }
    }
}

/// A managed identity as Vault sees it in the tokens APIM sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedIdentity {
    /// Object ID (`oid`).
    pub principal_id: String,
    /// Tenant (`tid`).
    pub tenant_id: String,
    /// Client ID (`appid`): known for a user-assigned identity; the system-assigned one's
    /// is not part of the instance's description.
    pub client_id: Option<String>,
}

fn how_to_enable_system(service: &ServiceId) -> String {
    format!(
        "Enable it with `identity {{ type = \"SystemAssigned\" }}` on the azurerm_api_management resource, or `az apim update --name {} --resource-group {} --set identity.type=SystemAssigned`",
        service.name, service.resource_group
    )
}

impl Service {
    fn identity_kinds(&self) -> (bool, bool) {
        let kind = self
            .identity
            .as_ref()
            .map(|i| i.kind.to_ascii_lowercase())
            .unwrap_or_default();
        let parts: Vec<&str> = kind.split(',').map(str::trim).collect();
        (
            parts.contains(&"systemassigned"),
            parts.contains(&"userassigned"),
        )
    }

    /// The identity `which`, or an error saying how to enable it. `tenant_fallback` is used
    /// when ARM does not state the tenant (a user-assigned identity alone): the tenant of the
    /// instance's subscription.
    pub fn resolve_identity(
        &self,
        service: &ServiceId,
        which: &IdentitySelector,
        tenant_fallback: Option<&str>,
    ) -> Result<ResolvedIdentity, AzureError> {
        let (system, _) = self.identity_kinds();
        let identity = self.identity.as_ref();
        let kind = identity.map(|i| i.kind.as_str()).unwrap_or("None");
        let tenant = identity
            .and_then(|i| i.tenant_id.clone())
            .or_else(|| tenant_fallback.map(str::to_string));
        match which {
            IdentitySelector::SystemAssigned => {
                let principal = identity
                    .and_then(|i| i.principal_id.clone())
                    .filter(|_| system);
                let (Some(principal_id), Some(tenant_id)) = (principal, tenant) else {
                    return Err(AzureError::Config(format!(
                        "{service} has no system-assigned managed identity (its identity type is {kind:?}). {}.",
                        how_to_enable_system(service)
                    )));
                };
                Ok(ResolvedIdentity {
                    principal_id,
                    tenant_id,
                    client_id: None,
                })
            }
            IdentitySelector::UserAssigned(wanted) => {
                let assigned = identity.map(|i| &i.user_assigned_identities);
                let found = assigned.and_then(|m| {
                    m.iter().find(|(k, _)| {
                        UserAssignedIdentityId::parse_insensitive(k)
                            .is_ok_and(|id| id.same_as(wanted))
                    })
                });
                let Some((_, uai)) = found else {
                    let names: Vec<String> = assigned
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    return Err(AzureError::Config(format!(
                        "{service} does not have the {wanted} (its user-assigned identities: {}). Assign it with `identity {{ type = \"UserAssigned\" identity_ids = [\"{}\"] }}` on the azurerm_api_management resource (keep \"SystemAssigned, UserAssigned\" if it also uses its system-assigned identity).",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") },
                        wanted.arm_id()
                    )));
                };
                let (Some(principal_id), Some(tenant_id)) = (uai.principal_id.clone(), tenant)
                else {
                    return Err(AzureError::Decode {
                        what: format!("reading the identities of {service}"),
                        message: format!(
                            "ARM did not give the principal ID or the tenant of the {wanted}"
                        ),
                        request_id: None,
                    });
                };
                Ok(ResolvedIdentity {
                    principal_id,
                    tenant_id,
                    client_id: uai.client_id.clone(),
                })
            }
        }
    }
}

/// `GET /subscriptions/{sub}?api-version=2022-12-01` (Microsoft.Resources `Subscriptions_Get`):
/// the tenant a subscription belongs to.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    #[serde(default)]
    tenant_id: Option<String>,
}

impl Azure {
    /// `GET /subscriptions/{sub}/providers/Microsoft.ApiManagement/service`, every page:
    /// the instances of the configured subscription, with their identities
    /// (`ApiManagementService_List` in apimdeployment.json).
    pub async fn list_services(&self) -> Result<Vec<Service>, AzureError> {
        let sub = self.subscription_id().to_string();
        self.list_json(
            &format!("/subscriptions/{sub}/providers/Microsoft.ApiManagement/service"),
            &[],
            &format!("listing the API Management instances of subscription {sub}"),
        )
        .await
    }

    /// `GET {service}`: the instance, with its identities.
    pub async fn get_service(&self, id: &ServiceId) -> Result<Tagged<Service>, AzureError> {
        self.get_json(&id.arm_id(), &[], &format!("reading {id}"))
            .await
    }

    /// Resolves `which` identity of the instance to its object ID, tenant and client ID, or
    /// an error that says how to enable it.
    pub async fn resolve_identity(
        &self,
        id: &ServiceId,
        which: &IdentitySelector,
    ) -> Result<ResolvedIdentity, AzureError> {
        let service = self.get_service(id).await?.value;
        self.identity_of(id, &service, which).await
    }

    /// Resolves `which` identity of `service` (the instance `id`, read already) as
    /// [`Azure::resolve_identity`] does.
    pub async fn identity_of(
        &self,
        id: &ServiceId,
        service: &Service,
        which: &IdentitySelector,
    ) -> Result<ResolvedIdentity, AzureError> {
        let needs_tenant = service
            .identity
            .as_ref()
            .is_some_and(|i| i.tenant_id.is_none())
            && matches!(which, IdentitySelector::UserAssigned(_));
        let tenant = if needs_tenant {
            let what = format!("reading the tenant of subscription {}", id.subscription_id);
            let req = ArmRequest::new(
                reqwest::Method::GET,
                format!("/subscriptions/{}", id.subscription_id),
                what.clone(),
            )
            .api_version("2022-12-01");
            let sub: Subscription = self.send(req).await?.decode(&what)?.value;
            sub.tenant_id
        } else {
            None
        };
        service.resolve_identity(id, which, tenant.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUB: &str = "00000000-1111-2222-3333-444444444444";

    fn service(identity: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/apim1"),
            "name": "apim1", "identity": identity, "properties": {}
        }))
        .unwrap()
    }

    #[test]
    fn resolves_both_kinds() {
        let uai = format!("/subscriptions/{SUB}/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1");
        let s = service(
            json!({"type": "SystemAssigned, UserAssigned", "principalId": "p-sys", "tenantId": "t",
            "userAssignedIdentities": {uai.clone(): {"principalId": "p-uai", "clientId": "c-uai"}}}),
        );
        let id = ServiceId::new(SUB, "rg1", "apim1");
        assert_eq!(
            s.resolve_identity(&id, &IdentitySelector::SystemAssigned, None)
                .unwrap(),
            ResolvedIdentity {
                principal_id: "p-sys".into(),
                tenant_id: "t".into(),
                client_id: None
            }
        );
        let which = IdentitySelector::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1")).unwrap();
        assert_eq!(
            s.resolve_identity(&id, &which, None).unwrap(),
            ResolvedIdentity {
                principal_id: "p-uai".into(),
                tenant_id: "t".into(),
                client_id: Some("c-uai".into())
            }
        );
    }

    #[test]
    fn missing_identity_says_how_to_enable_it() {
        let id = ServiceId::new(SUB, "rg1", "apim1");
        let e = service(json!({"type": "None"}))
            .resolve_identity(&id, &IdentitySelector::SystemAssigned, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has no system-assigned managed identity (its identity type is \"None\")"),
            "{e}"
        );
        assert!(e.contains("identity { type = \"SystemAssigned\" }"), "{e}");
        assert!(e.contains("az apim update --name apim1 --resource-group rg1 --set identity.type=SystemAssigned"), "{e}");
        let which =
            IdentitySelector::UserAssigned(UserAssignedIdentityId::new(SUB, "rg1", "other"));
        let e = service(json!({"type": "SystemAssigned", "principalId": "p", "tenantId": "t"}))
            .resolve_identity(&id, &which, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not have the user-assigned identity other"),
            "{e}"
        );
        assert!(e.contains("identity_ids"), "{e}");
        assert!(IdentitySelector::parse("systemassigned").is_ok());
        assert!(IdentitySelector::parse("/subscriptions/x").is_err());
    }
}
