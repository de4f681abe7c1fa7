//! APIs: `{service}/apis/{apiId}` — apimapis.json (`ApiCreateOrUpdateParameter`,
//! `ApiContract` in definitions.json). The provider reads APIs (a binding's `api_id`), lists them (the rotate action) and
//! creates minimal ones in tests.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clients::azure::id::{ApiId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// Body of `PUT {service}/apis/{apiId}` (`ApiCreateOrUpdateProperties`, the minimal part).
/// `If-Match` optional; 201 or 200.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiCreate {
    /// Display name, 1–300.
    pub display_name: String,
    /// Relative URL path on the gateway, 0–400.
    pub path: String,
    /// `http`, `https`, `ws`, `wss`.
    pub protocols: Vec<String>,
    /// The backend's URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
    /// Whether a subscription key is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_required: Option<bool>,
}

/// Response of GET/PUT (`ApiContract`).
#[derive(Debug, Clone, Deserialize)]
pub struct Api {
    /// ARM ID.
    pub id: String,
    /// The API ID.
    pub name: String,
    /// Properties.
    pub properties: ApiProperties,
}

/// `properties` of an API (the parts the provider reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiProperties {
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Gateway path.
    #[serde(default)]
    pub path: Option<String>,
    /// Protocols.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Backend URL.
    #[serde(default)]
    pub service_url: Option<String>,
    /// Subscription required.
    #[serde(default)]
    pub subscription_required: Option<bool>,
}

impl Azure {
    /// `GET {service}/apis`, every page (`Api_ListByService` in apimapis.json).
    pub async fn list_apis(&self, service: &ServiceId) -> Result<Vec<Api>, AzureError> {
        self.list_json(
            &format!("{}/apis", service.arm_id()),
            &[],
            &format!("listing the APIs of {service}"),
        )
        .await
    }

    /// `GET {service}/apis/{apiId}`.
    pub async fn get_api(&self, id: &ApiId) -> Result<Tagged<Api>, AzureError> {
        self.get_json(&id.arm_id(), &[], &format!("reading {id}"))
            .await
    }

    /// `PUT {service}/apis/{apiId}`.
    pub async fn put_api(
        &self,
        id: &ApiId,
        body: &ApiCreate,
        if_match: Option<&str>,
    ) -> Result<Tagged<Api>, AzureError> {
        self.put_json(
            &id.arm_id(),
            json!({ "properties": body }),
            if_match,
            &format!("creating or updating {id}"),
        )
        .await
    }
}
