//! Backends: `{service}/backends/{backendId}` — apimbackends.json (`BackendContract` in
//! definitions.json). Not long-running: PUT answers 201 or 200.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clients::azure::id::{BackendId, ResourceId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// Credentials a backend sends (`BackendCredentialsContract`, the parts the provider uses).
/// Header values may reference named values (`{{name}}`) instead of holding secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendCredentials {
    /// Header name → values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// Query parameter → values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, Vec<String>>,
}

/// TLS checks of a backend (`BackendTlsProperties`; both default to true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTls {
    /// Validate the certificate chain.
    pub validate_certificate_chain: bool,
    /// Validate the certificate name.
    pub validate_certificate_name: bool,
}

/// Body of `PUT {service}/backends/{id}` (`BackendContractProperties`, the parts the
/// provider uses). `If-Match` optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendCreate {
    /// Runtime URL, 1–2000.
    pub url: String,
    /// `http` or `soap`.
    pub protocol: String,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<BackendCredentials>,
    /// TLS checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTls>,
}

/// Response of GET/PUT (`BackendContract`).
#[derive(Debug, Clone, Deserialize)]
pub struct Backend {
    /// ARM ID.
    pub id: String,
    /// The backend ID.
    pub name: String,
    /// Properties.
    pub properties: BackendProperties,
}

/// `properties` of a backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendProperties {
    /// URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Protocol.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Credentials.
    #[serde(default)]
    pub credentials: Option<BackendCredentials>,
    /// TLS checks.
    #[serde(default)]
    pub tls: Option<BackendTls>,
}

impl Azure {
    /// `GET {service}/backends/{id}`.
    pub async fn get_backend(&self, id: &BackendId) -> Result<Tagged<Backend>, AzureError> {
        self.get_json(&id.arm_id(), &[], &format!("reading {id}"))
            .await
    }

    /// `PUT {service}/backends/{id}`.
    pub async fn put_backend(
        &self,
        id: &BackendId,
        body: &BackendCreate,
        if_match: Option<&str>,
    ) -> Result<Tagged<Backend>, AzureError> {
        self.put_json(
            &id.arm_id(),
            json!({ "properties": body }),
            if_match,
            &format!("creating or updating {id}"),
        )
        .await
    }

    /// `DELETE {service}/backends/{id}` with `If-Match` (`*` for unconditional); success
    /// when it is already gone.
    pub async fn delete_backend(&self, id: &BackendId, if_match: &str) -> Result<(), AzureError> {
        self.delete(&id.arm_id(), Some(if_match), &format!("deleting {id}"))
            .await
    }
}
