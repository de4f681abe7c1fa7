//! Policies: an API's `{service}/apis/{apiId}/policies/policy` (apimapis.json) and the
//! instance's global `{service}/policies/policy` (apimpolicies.json); `PolicyContract` in
//! definitions.json. Not long-running: PUT answers 201 or 200 with the policy.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PolicyFormat;
use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServicePolicyId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// Body of `PUT .../policies/policy` (`PolicyContractProperties`). `If-Match` optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyCreate {
    /// The `<policies>` document.
    pub value: String,
    /// Its format (the provider writes `rawxml`).
    pub format: PolicyFormat,
}

/// Response of GET/PUT (`PolicyContract`).
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    /// ARM ID.
    pub id: String,
    /// Always `policy`.
    pub name: String,
    /// Properties.
    pub properties: PolicyProperties,
}

/// `properties` of a policy.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicyProperties {
    /// The document (APIM re-indents it).
    #[serde(default)]
    pub value: String,
    /// The format of `value`, when stated.
    #[serde(default)]
    pub format: Option<PolicyFormat>,
}

impl Azure {
    async fn get_policy_at(&self, arm_id: &str, what: &str) -> Result<Tagged<Policy>, AzureError> {
        self.get_json(arm_id, &[("format", PolicyFormat::Rawxml.as_str())], what)
            .await
    }

    async fn put_policy_at(
        &self,
        arm_id: &str,
        body: &PolicyCreate,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<Policy>, AzureError> {
        let _: Tagged<serde_json::Value> = self
            .put_json(arm_id, json!({ "properties": body }), if_match, what)
            .await?;
        // Read back in `rawxml`, the form the provider compares with.
        self.get_policy_at(arm_id, what).await
    }

    /// `GET {api}/policies/policy?format=rawxml`.
    pub async fn get_api_policy(&self, id: &ApiPolicyId) -> Result<Tagged<Policy>, AzureError> {
        self.get_policy_at(&id.arm_id(), &format!("reading the {id}"))
            .await
    }

    /// `PUT {api}/policies/policy`, not read back: the ETag APIM gave the new policy, when it
    /// sent one.
    pub async fn put_api_policy(
        &self,
        id: &ApiPolicyId,
        body: &PolicyCreate,
        if_match: Option<&str>,
    ) -> Result<Option<String>, AzureError> {
        let put: Tagged<serde_json::Value> = self
            .put_json(
                &id.arm_id(),
                json!({ "properties": body }),
                if_match,
                &format!("writing the {id}"),
            )
            .await?;
        Ok(put.etag)
    }

    /// `DELETE {api}/policies/policy` with `If-Match` (`*` for unconditional); success when
    /// it is already gone.
    pub async fn delete_api_policy(
        &self,
        id: &ApiPolicyId,
        if_match: &str,
    ) -> Result<(), AzureError> {
        self.delete(&id.arm_id(), Some(if_match), &format!("deleting the {id}"))
            .await
    }

    /// `GET {service}/policies/policy?format=rawxml`.
    pub async fn get_service_policy(
        &self,
        id: &ServicePolicyId,
    ) -> Result<Tagged<Policy>, AzureError> {
        self.get_policy_at(&id.arm_id(), &format!("reading the {id}"))
            .await
    }

    /// `PUT {service}/policies/policy`, then reads it back with `format=rawxml`.
    pub async fn put_service_policy(
        &self,
        id: &ServicePolicyId,
        body: &PolicyCreate,
        if_match: Option<&str>,
    ) -> Result<Tagged<Policy>, AzureError> {
        self.put_policy_at(&id.arm_id(), body, if_match, &format!("writing the {id}"))
            .await
    }

    /// `DELETE {service}/policies/policy` with `If-Match`; success when already gone.
    pub async fn delete_service_policy(
        &self,
        id: &ServicePolicyId,
        if_match: &str,
    ) -> Result<(), AzureError> {
        self.delete(&id.arm_id(), Some(if_match), &format!("deleting the {id}"))
            .await
    }
}
