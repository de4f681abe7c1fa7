//! The traits a provider, its resources, data sources and ephemeral resources implement,
//! each over its typed model (`framework::model`). Every CRUD method has the same four beats:
//! take the model, stop on diagnostics, call the API, return the new model.
//!
//! The rules Terraform imposes around these calls (create vs update vs delete, what state a
//! failure leaves, write-only values, cancellation) are the framework's, in `lifecycle.rs`;
//! a type only says what its object is and how to reach it.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::cancel::Cancel;
use super::diag::{AttrPath, Diags};
use super::identity::IdentitySchema;
use super::model::Model;
use super::schema::Schema;

/// What every call gets: the configured provider data (absent before configuration, or when
/// the provider configuration failed) and the cancellation signal of StopProvider.
pub struct Ctx<D> {
    data: Option<Arc<D>>,
    /// Fires when Terraform asks the provider to stop. Calls that change nothing are stopped
    /// by the framework; a create, update or delete sees it here and decides how to stop
    /// with a state that matches what exists.
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

/// The plan-time twin of a model.
pub type PlanOf<M> = <M as Model>::Plan;

/// The inputs of a plan, after the generic planning of `plan.rs`.
pub struct PlanRequest<'a, M: Model> {
    /// Prior state; `None` when creating.
    pub prior: Option<&'a M>,
    /// Configuration (may contain unknowns).
    pub config: &'a PlanOf<M>,
}

/// A plan being made: the planned state and the attributes whose change forces replacement.
pub struct Plan<M: Model> {
    /// The planned new state.
    pub state: PlanOf<M>,
    /// Attributes whose change forces replacement (the schema's, plus any the type adds).
    pub requires_replace: Vec<AttrPath>,
    /// The type's errors stand even when the plan changes nothing of this object (by
    /// default they are then warnings: a destroy or another object's change goes ahead).
    pub refuse_unchanged: bool,
}

impl<M: Model> Plan<M> {
    /// Marks `path` as forcing replacement (once).
    pub fn replace(&mut self, path: AttrPath) {
        if !self.requires_replace.contains(&path) {
            self.requires_replace.push(path);
        }
    }
}

/// A managed resource type.
#[async_trait]
pub trait Resource<D: Send + Sync>: Send + Sync + 'static {
    /// The resource's object as a struct.
    type Model: Model + 'static;
    /// Type name, e.g. `apim_vault_policy`.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// The identity of the type's objects (Terraform 1.12+), if it declares one.
    fn identity(&self) -> Option<&IdentitySchema> {
        None
    }
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Adjusts the generic plan: values known at plan time, semantic equality, plan-time
    /// checks against the remote APIs.
    async fn modify_plan(
        &self,
        _ctx: &Ctx<D>,
        _req: PlanRequest<'_, Self::Model>,
        _plan: &mut Plan<Self::Model>,
        _diags: &mut Diags,
    ) {
    }
    /// Creates the remote object from the planned model (write-only values filled in from
    /// the configuration); returns the new state, or `None` after an error that created
    /// nothing.
    async fn create(
        &self,
        ctx: &Ctx<D>,
        planned: Self::Model,
        diags: &mut Diags,
    ) -> Option<Self::Model>;
    /// Reads the remote object; `None` when it is gone (Terraform then plans to create it).
    async fn read(
        &self,
        ctx: &Ctx<D>,
        state: Self::Model,
        diags: &mut Diags,
    ) -> Option<Self::Model>;
    /// Updates in place; returns the new state (`None` after an error that changed nothing).
    async fn update(
        &self,
        ctx: &Ctx<D>,
        prior: Self::Model,
        planned: Self::Model,
        diags: &mut Diags,
    ) -> Option<Self::Model>;
    /// Deletes the remote object (success when already gone).
    async fn delete(&self, ctx: &Ctx<D>, state: Self::Model, diags: &mut Diags);
    /// Turns an import ID into a state that `read` can complete.
    async fn import(&self, ctx: &Ctx<D>, id: &str, diags: &mut Diags) -> Option<Self::Model>;
    /// Brings an imported state towards the configuration a user would write
    /// (`terraform plan -generate-config-out`): values derived from others, and server
    /// defaults the schema does not declare, set to `None`. The schema's rule
    /// (`generate::config_from_state`) then leaves out computed-only and write-only
    /// attributes and values equal to their defaults; by default that is all.
    fn config_from_state(&self, _ctx: &Ctx<D>, _state: &mut Self::Model) {}
}

/// A data source type.
#[async_trait]
pub trait DataSource<D: Send + Sync>: Send + Sync + 'static {
    /// The data source's object as a struct.
    type Model: Model + 'static;
    /// Type name, e.g. `apim_vault_policy_document`.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Computes the state from the (wholly known) configuration.
    async fn read(
        &self,
        ctx: &Ctx<D>,
        config: Self::Model,
        diags: &mut Diags,
    ) -> Option<Self::Model>;
}

/// The result of opening an ephemeral resource.
pub struct Opened<M> {
    /// The ephemeral value (never stored).
    pub result: M,
    /// Opaque data handed back on renew and close.
    pub private: Vec<u8>,
    /// When Terraform should call renew, if ever.
    pub renew_at: Option<SystemTime>,
}

/// An ephemeral resource type (Terraform >= 1.10).
#[async_trait]
pub trait EphemeralResource<D: Send + Sync>: Send + Sync + 'static {
    /// The ephemeral resource's object as a struct.
    type Model: Model + 'static;
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Produces the value.
    async fn open(
        &self,
        ctx: &Ctx<D>,
        config: Self::Model,
        diags: &mut Diags,
    ) -> Option<Opened<Self::Model>>;
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
    /// The provider block as a struct.
    type Model: Model + 'static;
    /// What configuration produces and every call receives.
    type Data: Send + Sync + 'static;
    /// The provider block's schema.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Builds the provider data from the configuration (which may hold values not known
    /// until apply). Warnings go to `diags`.
    async fn configure(
        &self,
        config: PlanOf<Self::Model>,
        terraform_version: &str,
        diags: &mut Diags,
    ) -> Option<Self::Data>;
    /// Managed resource types.
    fn resources(&self) -> &[Box<dyn super::lifecycle::ResourceType<Self::Data>>];
    /// Data source types.
    fn data_sources(&self) -> &[Box<dyn super::lifecycle::DataSourceType<Self::Data>>];
    /// Ephemeral resource types.
    fn ephemeral_resources(&self) -> &[Box<dyn super::lifecycle::EphemeralType<Self::Data>>];
    /// List resource types (`terraform query`).
    fn list_resources(&self) -> &[Box<dyn super::list::ListType<Self::Data>>] {
        &[]
    }
    /// Action types (Terraform 1.14+).
    fn actions(&self) -> &[Box<dyn super::action::ActionType<Self::Data>>] {
        &[]
    }
    /// Provider functions.
    fn functions(&self) -> &[Box<dyn super::function::Function>] {
        &[]
    }
    /// At the end of the process (Terraform's Shutdown), with the configured data if any:
    /// gives back what the process obtained. Bounded by the caller to well within the second
    /// Terraform waits.
    async fn shutdown(&self, _data: Option<std::sync::Arc<Self::Data>>) {}
}
