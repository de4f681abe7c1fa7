//! The traits a provider, its resources, data sources and ephemeral resources implement.
//! Every CRUD method has the same four beats: read the request values, stop on diagnostics,
//! call the API, return the new state.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::cancel::Cancel;
use super::diag::Diags;
use super::plan::Planned;
use super::schema::Schema;
use super::value::Value;

/// What every call gets: the configured provider data (absent before configuration, or when
/// the provider configuration failed) and the cancellation signal of StopProvider.
pub struct Ctx<D> {
    data: Option<Arc<D>>,
    /// Fires when Terraform asks the provider to stop.
    pub cancel: Cancel,
}

impl<D> Ctx<D> {
    /// A context over configured data.
    pub fn new(data: Option<Arc<D>>, cancel: Cancel) -> Ctx<D> {
        Ctx { data, cancel }
    }
    /// The configured provider data, or an error diagnostic when the provider is not
    /// configured.
    pub fn data(&self, diags: &mut Diags) -> Option<&D> {
        if self.data.is_none() {
            diags.error(
                "Provider not configured",
                "The provider was used before ConfigureProvider succeeded. Check the `provider \"apim\"` block for errors reported above.",
            );
        }
        self.data.as_deref()
    }
}

/// The inputs of a plan, after the generic planning of `plan.rs`.
pub struct PlanRequest<'a> {
    /// Prior state (null when creating).
    pub prior: &'a Value,
    /// Configuration (may contain unknowns).
    pub config: &'a Value,
}

/// A managed resource type.
#[async_trait]
pub trait Resource<D: Send + Sync>: Send + Sync {
    /// Type name, e.g. `apim_vault_policy`.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &Value, _diags: &mut Diags) {}
    /// Adjusts the generic plan: values known at plan time, semantic equality, plan-time
    /// checks against the remote APIs.
    async fn modify_plan(
        &self,
        _ctx: &Ctx<D>,
        _req: PlanRequest<'_>,
        _planned: &mut Planned,
        _diags: &mut Diags,
    ) {
    }
    /// Creates the remote object; returns the new state (None after an error that created
    /// nothing).
    async fn create(
        &self,
        ctx: &Ctx<D>,
        planned: &Value,
        config: &Value,
        diags: &mut Diags,
    ) -> Option<Value>;
    /// Reads the remote object; `None` when it is gone (Terraform then plans to create it).
    async fn read(&self, ctx: &Ctx<D>, state: &Value, diags: &mut Diags) -> Option<Value>;
    /// Updates in place; returns the new state.
    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        planned: &Value,
        config: &Value,
        diags: &mut Diags,
    ) -> Option<Value>;
    /// Deletes the remote object (success when already gone).
    async fn delete(&self, ctx: &Ctx<D>, state: &Value, diags: &mut Diags);
    /// Turns an import ID into a state that `read` can complete.
    async fn import(&self, ctx: &Ctx<D>, id: &str, diags: &mut Diags) -> Option<Value>;
}

/// A data source type.
#[async_trait]
pub trait DataSource<D: Send + Sync>: Send + Sync {
    /// Type name, e.g. `apim_vault_policy_document`.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &Value, _diags: &mut Diags) {}
    /// Computes the state from the (wholly known) configuration.
    async fn read(&self, ctx: &Ctx<D>, config: &Value, diags: &mut Diags) -> Option<Value>;
}

/// The result of opening or renewing an ephemeral resource.
pub struct Opened {
    /// The ephemeral value (never stored).
    pub result: Value,
    /// Opaque data handed back on renew and close.
    pub private: Vec<u8>,
    /// When Terraform should call renew, if ever.
    pub renew_at: Option<SystemTime>,
}

/// An ephemeral resource type (Terraform >= 1.10).
#[async_trait]
pub trait EphemeralResource<D: Send + Sync>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &Value, _diags: &mut Diags) {}
    /// Produces the value.
    async fn open(&self, ctx: &Ctx<D>, config: &Value, diags: &mut Diags) -> Option<Opened>;
    /// Extends it; returns the new private data and renew time.
    async fn renew(
        &self,
        _ctx: &Ctx<D>,
        private: &[u8],
        _diags: &mut Diags,
    ) -> (Vec<u8>, Option<SystemTime>) {
        (private.to_vec(), None)
    }
    /// Releases it.
    async fn close(&self, _ctx: &Ctx<D>, _private: &[u8], _diags: &mut Diags) {}
}

/// A provider: its configuration schema, how to configure it, and its types.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What configuration produces and every call receives.
    type Data: Send + Sync + 'static;
    /// The provider block's schema.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &Value, _diags: &mut Diags) {}
    /// Builds the provider data from the configuration. Warnings go to `diags`.
    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
        diags: &mut Diags,
    ) -> Option<Self::Data>;
    /// Managed resource types.
    fn resources(&self) -> &[Box<dyn Resource<Self::Data>>];
    /// Data source types.
    fn data_sources(&self) -> &[Box<dyn DataSource<Self::Data>>];
    /// Ephemeral resource types.
    fn ephemeral_resources(&self) -> &[Box<dyn EphemeralResource<Self::Data>>];
}
