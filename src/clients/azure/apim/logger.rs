//! Loggers: `{service}/loggers/{loggerId}` — apimloggers.json (`LoggerContract` in
//! definitions.json). Read only: a binding names a logger made elsewhere and sends its
//! failures to it.

use serde::Deserialize;

use crate::clients::azure::id::{LoggerId, ResourceId};
use crate::clients::azure::{Azure, AzureError, Tagged};

/// Response of `GET {service}/loggers/{id}` (`LoggerContract`, the parts the provider uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Logger {
    /// ARM ID.
    pub id: String,
    /// The logger ID.
    pub name: String,
    /// Properties.
    pub properties: LoggerProperties,
}

/// `properties` of a logger. Its `credentials` are not read: they are secrets (APIM answers
/// with named-value references to them), and the provider has no use for them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggerProperties {
    /// `azureEventHub`, `applicationInsights` or `azureMonitor`.
    pub logger_type: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

impl Azure {
    /// `GET {service}/loggers/{id}`.
    pub async fn get_logger(&self, id: &LoggerId) -> Result<Tagged<Logger>, AzureError> {
        self.get_json(&id.arm_id(), &[], &format!("reading {id}"))
            .await
    }
}
