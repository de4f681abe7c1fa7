//! Policy fragments: `{service}/policyFragments/{id}` — apimpolicyfragments.json
//! (`PolicyFragmentContract` in definitions.json). PUT is a long-running operation.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PolicyFormat;
use crate::clients::azure::id::{PolicyFragmentId, ResourceId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// Body of `PUT {service}/policyFragments/{id}` (`PolicyFragmentContractProperties`).
/// `If-Match` optional; 201 or 200, long-running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFragmentCreate {
    /// The document, `<fragment>...</fragment>`.
    pub value: String,
    /// Description, ≤ 1000 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The format of `value` (the provider writes `rawxml`).
    pub format: PolicyFormat,
}

/// Response of GET/PUT (`PolicyFragmentContract`).
#[derive(Debug, Clone, Deserialize)]
pub struct PolicyFragment {
    /// ARM ID.
    pub id: String,
    /// The fragment ID.
    pub name: String,
    /// Properties.
    pub properties: PolicyFragmentProperties,
}

/// `properties` of a fragment.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyFragmentProperties {
    /// The document in the format asked for.
    #[serde(default)]
    pub value: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// The format of `value`.
    #[serde(default)]
    pub format: Option<PolicyFormat>,
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

impl Azure {
    /// `PUT {service}/policyFragments/{id}`; waits for the operation and answers the
    /// fragment as a GET with `format=rawxml` reads it.
    pub async fn put_policy_fragment(
        &self,
        id: &PolicyFragmentId,
        body: &PolicyFragmentCreate,
        if_match: Option<&str>,
    ) -> Result<Tagged<PolicyFragment>, AzureError> {
        let _: Tagged<serde_json::Value> = self
            .put_json(
                &id.arm_id(),
                json!({ "properties": body }),
                if_match,
                &format!("creating or updating {id}"),
            )
            .await?;
        // The write's answer is in the default `xml` format; read it back as written.
        self.get_policy_fragment(id).await
    }

    /// `GET {service}/policyFragments/{id}?format=rawxml`.
    pub async fn get_policy_fragment(
        &self,
        id: &PolicyFragmentId,
    ) -> Result<Tagged<PolicyFragment>, AzureError> {
        self.get_json(
            &id.arm_id(),
            &[("format", PolicyFormat::Rawxml.as_str())],
            &format!("reading {id}"),
        )
        .await
    }

    /// `DELETE {service}/policyFragments/{id}` with `If-Match` (`*` for unconditional);
    /// success when it is already gone.
    pub async fn delete_policy_fragment(
        &self,
        id: &PolicyFragmentId,
        if_match: &str,
    ) -> Result<(), AzureError> {
        self.delete(&id.arm_id(), Some(if_match), &format!("deleting {id}"))
            .await
    }

    /// `POST {service}/policyFragments/{id}/listReferences`: the names of the APIs whose
    /// policies include the fragment.
    pub async fn fragment_api_references(
        &self,
        id: &PolicyFragmentId,
    ) -> Result<Vec<String>, AzureError> {
        #[derive(serde::Deserialize)]
        struct Reference {
            id: String,
        }
        #[derive(serde::Deserialize)]
        struct References {
            #[serde(default)]
            value: Vec<Reference>,
        }
        let refs: Tagged<References> = self
            .post_json(
                &format!("{}/listReferences", id.arm_id()),
                None,
                &format!("listing the references of {id}"),
            )
            .await?;
        Ok(refs
            .value
            .value
            .iter()
            .filter_map(|r| {
                let lower = r.id.to_ascii_lowercase();
                let at = lower.find("/apis/")? + "/apis/".len();
                r.id[at..].split('/').next().map(str::to_string)
            })
            .collect())
    }
}
