//! Terraform's rules around a type's calls, in one place: what the protocol layer calls for
//! every resource, data source and ephemeral resource, whatever its model.
//!
//! - validation: the schema's declarative checks, write-only attributes refused where the
//!   client cannot send them, then the type's own checks on its plan-time model;
//! - planning: the generic plan from the schema, then the type's adjustments on its model;
//!   destroy plans are not the type's business;
//! - apply: a null plan deletes, a null prior creates, anything else updates; a failed
//!   create returns what it made (or null), a failed update the prior state, a failed delete
//!   keeps the object in state; write-only values reach the type from the configuration and
//!   never leave it; a new state must be wholly known;
//! - cancellation: calls that change nothing (plan, read, import, data sources, opening an
//!   ephemeral resource) stop when Terraform asks the provider to stop; a create, update or
//!   delete is never cut in the middle by the framework, since only the type knows how to
//!   stop with a state that matches what exists (it sees the signal in `Ctx::cancel`).
//!
//! The dyn-safe traits here are implemented for every typed [`Resource`], [`DataSource`] and
//! [`EphemeralResource`], so the registry holds them as trait objects.

use std::future::Future;
use std::time::SystemTime;

use async_trait::async_trait;

use super::diag::{AttrPath, Diags};
use super::generate::config_from_state as generate_config_from_state;
use super::identity::IdentitySchema;
use super::model::{restore_untouched, Model};
use super::plan::{null_write_only, plan as generic_plan};
use super::resource::{
    Ctx, DataSource, EphemeralResource, Plan, PlanOf, PlanRequest, Provider, Resource,
};
use super::schema::{Block, Schema};
use super::validate::validate as schema_validate;
use super::value::Value;

/// The diagnostic for work stopped by StopProvider (Ctrl-C in Terraform).
pub fn stopped(d: &mut Diags, what: &str) {
    d.error(
        "Stopped",
        format!("Terraform asked the provider to stop while it was {what}; nothing was changed by this step."),
    );
}

/// Runs a call that changes nothing, unless Terraform asks the provider to stop first
/// (`None`; the caller then reports [`stopped`]).
async fn unless_stopped<D, F: Future>(ctx: &Ctx<D>, fut: F) -> Option<F::Output> {
    ctx.cancel.run(fut).await.ok()
}

/// The errors of a plan that changes nothing, as warnings that say so.
fn nothing_changes(d: Diags) -> Diags {
    use super::diag::Severity;
    Diags(
        d.0.into_iter()
            .map(|mut x| {
                if x.severity == Severity::Error {
                    x.severity = Severity::Warning;
                    x.detail.push_str("\n\nThis plan changes nothing of this object, so this does not stop it (a destroy, or changes to other objects, go ahead); a change of this object will be refused until it is fixed.");
                }
                x
            })
            .collect(),
    )
}

/// Reports a stop when `outcome` is `None`.
fn or_stopped<T>(outcome: Option<T>, d: &mut Diags, what: &str) -> Option<T> {
    if outcome.is_none() {
        stopped(d, what);
    }
    outcome
}

/// Decodes `v` into `M`, reporting what does not fit.
fn decode<M: Model>(v: &Value, d: &mut Diags) -> Option<M> {
    M::decode(v, d)
}

/// A model as a state: encoded, with its write-only values nulled.
fn state_of<M: Model>(m: &M, schema: &Schema) -> Value {
    let mut v = m.encode();
    null_write_only(&schema.block, &mut v);
    v
}

/// Encodes a state that must be wholly known (what apply, read and import return).
fn known_state(v: Value, type_name: &str, d: &mut Diags) -> Option<Value> {
    if v.is_wholly_known() {
        return Some(v);
    }
    d.error(
        "Provider produced an incomplete state",
        format!("The new state of this {type_name} still has unknown values. This is a bug in the provider; please report it."),
    );
    None
}

/// Copies the write-only attributes of `config` into `planned` (where planning nulled them).
fn with_write_only(block: &Block, planned: &mut Value, config: &Value) {
    for a in block.attributes.iter().filter(|a| a.write_only) {
        planned.set(a.name, config.get(a.name).clone());
    }
}

/// The generic checks of a configuration, then the type's own on its plan-time model.
fn validate_config<M: Model>(
    schema: &Schema,
    config: &Value,
    d: &mut Diags,
    own: impl FnOnce(&M::Plan, &mut Diags),
) {
    d.extend(schema_validate(schema, config));
    if let Some(m) = decode::<M::Plan>(config, d) {
        own(&m, d);
    }
}

/// The outcome of a refresh.
pub enum Refreshed {
    /// The object as it is now.
    State(Value),
    /// The object is gone.
    Gone,
    /// The refresh failed: the state stays as it was.
    Unchanged,
}

/// A managed resource type as the protocol layer sees it.
#[async_trait]
pub trait ResourceType<D: Send + Sync>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> &Schema;
    /// The model's fields (for the test that holds models to schemas).
    fn model_shape(&self) -> Vec<super::model::FieldShape>;
    /// The identity schema, if the type declares one.
    fn identity_schema(&self) -> Option<&IdentitySchema>;
    /// ValidateResourceConfig.
    fn validate(&self, config: &Value, write_only_allowed: bool) -> Diags;
    /// PlanResourceChange: the planned state and the paths forcing replacement.
    async fn plan(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        d: &mut Diags,
    ) -> (Value, Vec<AttrPath>);
    /// ApplyResourceChange: the new state, matching what exists remotely.
    async fn apply(
        &self,
        ctx: &Ctx<D>,
        prior: Value,
        planned: Value,
        config: &Value,
        d: &mut Diags,
    ) -> Value;
    /// ReadResource.
    async fn read(&self, ctx: &Ctx<D>, current: &Value, d: &mut Diags) -> Refreshed;
    /// ImportResourceState.
    async fn import(&self, ctx: &Ctx<D>, id: &str, d: &mut Diags) -> Option<Value>;
    /// GenerateResourceConfig: the configuration a user would write for `state`.
    fn generate_config(&self, ctx: &Ctx<D>, state: &Value, d: &mut Diags) -> Option<Value>;
}

#[async_trait]
impl<D: Send + Sync + 'static, R: Resource<D>> ResourceType<D> for R {
    fn type_name(&self) -> &'static str {
        Resource::type_name(self)
    }
    fn schema(&self) -> &Schema {
        Resource::schema(self)
    }
    fn model_shape(&self) -> Vec<super::model::FieldShape> {
        R::Model::shape()
    }
    fn identity_schema(&self) -> Option<&IdentitySchema> {
        Resource::identity(self)
    }

    fn validate(&self, config: &Value, write_only_allowed: bool) -> Diags {
        let mut d = Diags::new();
        let schema = Resource::schema(self);
        if !write_only_allowed {
            for a in schema.block.attributes.iter().filter(|a| a.write_only) {
                if !config.get(a.name).is_null() {
                    d.attr_error(
                        AttrPath::root(a.name),
                        "Write-only attribute not supported by this Terraform",
                        format!(
                            "`{}` of {} is write-only, which needs Terraform 1.11 or later. Upgrade Terraform, or remove `{}`.",
                            a.name, Resource::type_name(self), a.name
                        ),
                    );
                }
            }
        }
        validate_config::<R::Model>(schema, config, &mut d, |m, d| {
            Resource::validate(self, m, d)
        });
        d
    }

    async fn plan(
        &self,
        ctx: &Ctx<D>,
        prior: &Value,
        proposed: &Value,
        config: &Value,
        d: &mut Diags,
    ) -> (Value, Vec<AttrPath>) {
        let schema = Resource::schema(self);
        if proposed.is_null() {
            // Destroy: nothing to plan beyond the null state, and nothing to check.
            return (Value::Null, Vec::new());
        }
        let generic = generic_plan(schema, prior, proposed, config);
        let prior_model = match prior.is_null() {
            true => None,
            false => decode::<R::Model>(prior, d),
        };
        let (Some(config_model), Some(state)) = (
            decode::<PlanOf<R::Model>>(config, d),
            decode::<PlanOf<R::Model>>(&generic.state, d),
        ) else {
            return (generic.state, generic.requires_replace);
        };
        if !prior.is_null() && prior_model.is_none() {
            return (generic.state, generic.requires_replace);
        }
        let baseline = state.encode();
        let mut plan = Plan::<R::Model> {
            state,
            requires_replace: generic.requires_replace,
            refuse_unchanged: false,
        };
        // Plan-time checks read remote APIs: a stop interrupts them.
        let req = PlanRequest {
            prior: prior_model.as_ref(),
            config: &config_model,
        };
        let mut own = Diags::new();
        let outcome = unless_stopped(ctx, self.modify_plan(ctx, req, &mut plan, &mut own)).await;
        or_stopped(outcome, &mut own, "planning");
        let mut state = plan.state.encode();
        restore_untouched(&mut state, &baseline, &generic.state);
        null_write_only(&schema.block, &mut state);
        // A plan that changes nothing acts on nothing: what its checks find is a warning, so
        // that they never block a destroy (whose refresh plans every resource first) or a
        // run that leaves this object alone. A create or an update is still refused.
        if !prior.is_null()
            && !plan.refuse_unchanged
            && own.has_errors()
            && state.equal_as(prior, &schema.block.object_type())
            && plan.requires_replace.is_empty()
        {
            own = nothing_changes(own);
        }
        d.extend(own);
        (state, plan.requires_replace)
    }

    async fn apply(
        &self,
        ctx: &Ctx<D>,
        prior: Value,
        mut planned: Value,
        config: &Value,
        d: &mut Diags,
    ) -> Value {
        let schema = Resource::schema(self);
        let name = Resource::type_name(self);
        let mut new_state = if planned.is_null() {
            let Some(state) = decode::<R::Model>(&prior, d) else {
                return prior;
            };
            self.delete(ctx, state, d).await;
            // A failed delete leaves the object, and so its state, in place.
            if d.has_errors() {
                return prior;
            }
            return Value::Null;
        } else {
            with_write_only(&schema.block, &mut planned, config);
            let Some(planned_model) = decode::<R::Model>(&planned, d) else {
                return prior;
            };
            if prior.is_null() {
                match self.create(ctx, planned_model, d).await {
                    Some(m) => m.encode(),
                    None => Value::Null,
                }
            } else {
                let Some(prior_model) = decode::<R::Model>(&prior, d) else {
                    return prior;
                };
                match self.update(ctx, prior_model, planned_model, d).await {
                    Some(m) => m.encode(),
                    None => prior.clone(),
                }
            }
        };
        null_write_only(&schema.block, &mut new_state);
        if new_state.is_null() {
            return Value::Null;
        }
        known_state(new_state, name, d).unwrap_or(prior)
    }

    async fn read(&self, ctx: &Ctx<D>, current: &Value, d: &mut Diags) -> Refreshed {
        if current.is_null() {
            return Refreshed::Unchanged;
        }
        let Some(state) = decode::<R::Model>(current, d) else {
            return Refreshed::Unchanged;
        };
        let outcome = unless_stopped(ctx, Resource::read(self, ctx, state, d)).await;
        let Some(outcome) = or_stopped(outcome, d, "refreshing") else {
            return Refreshed::Unchanged;
        };
        match outcome {
            // On error the state stays as it was: nothing is lost.
            _ if d.has_errors() => Refreshed::Unchanged,
            None => Refreshed::Gone,
            Some(m) => {
                let v = state_of(&m, Resource::schema(self));
                match known_state(v, Resource::type_name(self), d) {
                    Some(v) => Refreshed::State(v),
                    None => Refreshed::Unchanged,
                }
            }
        }
    }

    async fn import(&self, ctx: &Ctx<D>, id: &str, d: &mut Diags) -> Option<Value> {
        let outcome = unless_stopped(ctx, Resource::import(self, ctx, id, d)).await;
        let m = or_stopped(outcome, d, "importing").flatten()?;
        (!d.has_errors()).then(|| state_of(&m, Resource::schema(self)))
    }

    fn generate_config(&self, ctx: &Ctx<D>, state: &Value, d: &mut Diags) -> Option<Value> {
        let schema = Resource::schema(self);
        let mut m = decode::<R::Model>(state, d)?;
        self.config_from_state(ctx, &mut m);
        let mut config = m.encode();
        // What the model round trip lost, the state still has.
        restore_untouched(&mut config, &decode::<R::Model>(state, d)?.encode(), state);
        generate_config_from_state(&schema.block, &mut config);
        Some(config)
    }
}

/// A data source type as the protocol layer sees it.
#[async_trait]
pub trait DataSourceType<D: Send + Sync>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> &Schema;
    /// The model's fields.
    fn model_shape(&self) -> Vec<super::model::FieldShape>;
    /// ValidateDataResourceConfig.
    fn validate(&self, config: &Value) -> Diags;
    /// ReadDataSource: the state, from the configuration.
    async fn read(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags) -> Option<Value>;
}

#[async_trait]
impl<D: Send + Sync + 'static, S: DataSource<D>> DataSourceType<D> for S {
    fn type_name(&self) -> &'static str {
        DataSource::type_name(self)
    }
    fn schema(&self) -> &Schema {
        DataSource::schema(self)
    }
    fn model_shape(&self) -> Vec<super::model::FieldShape> {
        S::Model::shape()
    }
    fn validate(&self, config: &Value) -> Diags {
        let mut d = Diags::new();
        validate_config::<S::Model>(DataSource::schema(self), config, &mut d, |m, d| {
            DataSource::validate(self, m, d)
        });
        d
    }
    async fn read(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags) -> Option<Value> {
        let config = decode::<S::Model>(config, d)?;
        let outcome = unless_stopped(ctx, DataSource::read(self, ctx, config, d)).await;
        let m = or_stopped(outcome, d, "reading a data source").flatten()?;
        (!d.has_errors()).then(|| state_of(&m, DataSource::schema(self)))
    }
}

/// An opened ephemeral resource as the protocol layer sees it.
pub struct OpenedValue {
    /// The ephemeral value.
    pub result: Value,
    /// Opaque data handed back on renew and close.
    pub private: Vec<u8>,
    /// When Terraform should call renew, if ever.
    pub renew_at: Option<SystemTime>,
}

/// An ephemeral resource type as the protocol layer sees it.
#[async_trait]
pub trait EphemeralType<D: Send + Sync>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> &Schema;
    /// The model's fields.
    fn model_shape(&self) -> Vec<super::model::FieldShape>;
    /// ValidateEphemeralResourceConfig.
    fn validate(&self, config: &Value) -> Diags;
    /// OpenEphemeralResource.
    async fn open(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags) -> Option<OpenedValue>;
    /// RenewEphemeralResource.
    async fn renew(
        &self,
        ctx: &Ctx<D>,
        private: &[u8],
        d: &mut Diags,
    ) -> (Vec<u8>, Option<SystemTime>);
    /// CloseEphemeralResource: runs to the end, so what open acquired is released.
    async fn close(&self, ctx: &Ctx<D>, private: &[u8], d: &mut Diags);
}

#[async_trait]
impl<D: Send + Sync + 'static, E: EphemeralResource<D>> EphemeralType<D> for E {
    fn type_name(&self) -> &'static str {
        EphemeralResource::type_name(self)
    }
    fn schema(&self) -> &Schema {
        EphemeralResource::schema(self)
    }
    fn model_shape(&self) -> Vec<super::model::FieldShape> {
        E::Model::shape()
    }
    fn validate(&self, config: &Value) -> Diags {
        let mut d = Diags::new();
        validate_config::<E::Model>(EphemeralResource::schema(self), config, &mut d, |m, d| {
            EphemeralResource::validate(self, m, d)
        });
        d
    }
    async fn open(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags) -> Option<OpenedValue> {
        let config = decode::<E::Model>(config, d)?;
        let outcome = unless_stopped(ctx, EphemeralResource::open(self, ctx, config, d)).await;
        let o = or_stopped(outcome, d, "opening an ephemeral resource").flatten()?;
        Some(OpenedValue {
            result: o.result.encode(),
            private: o.private,
            renew_at: o.renew_at,
        })
    }
    async fn renew(
        &self,
        ctx: &Ctx<D>,
        private: &[u8],
        d: &mut Diags,
    ) -> (Vec<u8>, Option<SystemTime>) {
        let outcome = unless_stopped(ctx, EphemeralResource::renew(self, ctx, private, d)).await;
        or_stopped(outcome, d, "renewing an ephemeral resource")
            .unwrap_or_else(|| (private.to_vec(), None))
    }
    async fn close(&self, ctx: &Ctx<D>, private: &[u8], d: &mut Diags) {
        EphemeralResource::close(self, ctx, private, d).await
    }
}

/// ValidateProviderConfig: the schema's checks, then the provider's own.
pub fn validate_provider<P: Provider>(p: &P, config: &Value) -> Diags {
    let mut d = Diags::new();
    validate_config::<P::Model>(p.schema(), config, &mut d, |m, d| p.validate(m, d));
    d
}

/// ConfigureProvider: the provider data, from the (known) provider block.
pub async fn configure_provider<P: Provider>(
    p: &P,
    config: &Value,
    terraform_version: &str,
    d: &mut Diags,
) -> Option<P::Data> {
    let config = decode::<PlanOf<P::Model>>(config, d)?;
    p.configure(config, terraform_version, d).await
}

/// Every type's model against its schema: the names each declares must be the same.
pub fn check_models<P: Provider>(p: &P) -> Result<(), String> {
    use super::model::check_fields;
    let mut errors = Vec::new();
    let mut push = |r: Result<(), String>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    push(check_fields(
        "provider",
        &P::Model::shape(),
        &p.schema().block,
    ));
    for r in p.resources() {
        push(check_fields(
            r.type_name(),
            &r.model_shape(),
            &r.schema().block,
        ));
        // An identity is made of string attributes of the state.
        for a in r
            .identity_schema()
            .map(|i| i.attributes.as_slice())
            .unwrap_or_default()
        {
            if r.schema().block.attribute(a.name).map(|s| &s.ty)
                != Some(&super::value::Type::String)
            {
                push(Err(format!(
                    "{}: the identity attribute {:?} is not a string attribute of the schema",
                    r.type_name(),
                    a.name
                )));
            }
        }
    }
    for l in p.list_resources() {
        push(check_fields(
            &format!("list {}", l.type_name()),
            &l.model_shape(),
            &l.schema().block,
        ));
        // A list resource shares its resource type's identity.
        if p.resources()
            .iter()
            .all(|r| r.type_name() != l.type_name() || r.identity_schema().is_none())
        {
            push(Err(format!(
                "list {}: no resource type of that name with an identity",
                l.type_name()
            )));
        }
    }
    for s in p.data_sources() {
        push(check_fields(
            s.type_name(),
            &s.model_shape(),
            &s.schema().block,
        ));
    }
    for e in p.ephemeral_resources() {
        push(check_fields(
            e.type_name(),
            &e.model_shape(),
            &e.schema().block,
        ));
    }
    for a in p.actions() {
        push(check_fields(
            a.type_name(),
            &a.model_shape(),
            &a.schema().block,
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
