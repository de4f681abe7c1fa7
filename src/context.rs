//! What ConfigureProvider produces and every resource, data source and ephemeral resource
//! receives: the clients of this provider process and what the current run has planned.
//! The provider block (`provider.rs`) builds it; the types (`resources/`) use it, so neither
//! imports the other for it.

use std::sync::Arc;

use crate::clients::azure::Azure;
use crate::clients::vault::Vault;
use crate::framework::diag::Diags;
use crate::resources::this_run::ThisRun;

/// The per-process context.
pub struct ProviderData {
    vault: Result<Arc<Vault>, String>,
    azure: Result<Arc<Azure>, String>,
    /// The Azure cloud as configured, known even without Azure credentials (resources
    /// derive Entra issuers from it).
    pub cloud: AzureCloud,
    /// Roles and policies planned in this run, for the bindings' plan-time checks.
    pub this_run: ThisRun,
}

/// The `azure` block's cloud settings as written (`environment`, `authority_host`), for the
/// Entra issuers resources derive.
#[derive(Debug, Clone, Default)]
pub struct AzureCloud {
    /// `public`, `usgovernment` or `china` (default `public`).
    pub environment: String,
    /// Entra authority override: `azure.authority_host`, else `ARM_AUTHORITY_HOST`. Never an
    /// ambient `AZURE_AUTHORITY_HOST` (AKS workload identity sets it for its own sign-in).
    pub authority_host: Option<String>,
    /// Where `authority_host` came from, or where the cloud did, for messages.
    pub authority_source: &'static str,
    /// An `AZURE_AUTHORITY_HOST` that differs from the cloud's authority and so was not used
    /// for issuers (only for the provider's own sign-in).
    pub ignored_ambient_host: Option<String>,
}

impl ProviderData {
    /// The context over the clients (or why each is missing) and the cloud settings.
    pub fn new(
        vault: Result<Arc<Vault>, String>,
        azure: Result<Arc<Azure>, String>,
        cloud: AzureCloud,
    ) -> ProviderData {
        ProviderData {
            vault,
            azure,
            cloud,
            this_run: ThisRun::default(),
        }
    }

    /// The Vault client, or an error diagnostic saying which setting is missing.
    /// At the end of the process: gives back what this process obtained (the Vault token of a
    /// JWT login).
    pub async fn release(&self) {
        if let Ok(v) = &self.vault {
            v.release_token().await;
        }
    }

    pub fn vault(&self, d: &mut Diags) -> Option<&Vault> {
        match &self.vault {
            Ok(v) => Some(v),
            Err(why) => {
                d.error("Vault is not configured", why.clone());
                None
            }
        }
    }

    /// The Azure client, or an error diagnostic saying which setting is missing and its
    /// environment variable. Its credential is acquired on first use.
    pub fn azure(&self, d: &mut Diags) -> Option<&Azure> {
        match &self.azure {
            Ok(a) => Some(a),
            Err(why) => {
                d.error("Azure is not configured", why.clone());
                None
            }
        }
    }
}
