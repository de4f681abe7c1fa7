//! Actions (Terraform 1.14+): `action "<type>" "<name>" { config { ... } }` blocks, run by
//! `terraform apply -invoke=action.<type>.<name>` or by a resource's `action_trigger`. An
//! action declares its configuration once (a model and a schema, which drive validation and
//! the docs), may check it at plan, and does its work at invoke, telling Terraform what it
//! does through a [`Progress`] sink. It has no state: what it changes is left to the objects
//! it changes.
//!
//! Terraform's rules around the calls, as for resources in `lifecycle.rs`: the schema's checks
//! run before the type's own (an action's configuration takes ephemeral values only in
//! write-only attributes, which every Terraform that has actions can send); plan changes nothing, so a stop interrupts it; invoke is never cut in the middle by the framework, since only the
//! type knows how to stop with the world in a state it can describe (it sees the signal in
//! `Ctx::cancel`).

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::diag::Diags;
use super::model::Model;
use super::resource::{Ctx, PlanOf};
use super::schema::Schema;
use super::validate::validate as schema_validate;
use super::value::Value;

/// Where an invoke reports what it did, one line at a time: Terraform prints each line as
/// it arrives. A line names what was done (paths, versions, counts), never a value.
#[derive(Clone)]
pub struct Progress(mpsc::UnboundedSender<String>);

impl Progress {
    /// A sink and the receiver of its lines.
    pub fn channel() -> (Progress, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Progress(tx), rx)
    }

    /// Reports one line. A Terraform that stopped listening loses it; the work goes on.
    pub fn report(&self, line: impl Into<String>) {
        let _ = self.0.send(line.into());
    }
}

/// An action type.
#[async_trait]
pub trait Action<D: Send + Sync>: Send + Sync + 'static {
    /// The configuration (the `config` block) as a struct.
    type Model: Model + 'static;
    /// Type name, e.g. `apim_vault_rotate`.
    fn type_name(&self) -> &'static str;
    /// The configuration's schema, built once.
    fn schema(&self) -> &Schema;
    /// Checks beyond the schema's declarative ones.
    fn validate(&self, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Plan-time checks of a configuration in which anything may still be unknown (the
    /// value of a write-only attribute included). Changes nothing.
    async fn plan(&self, _ctx: &Ctx<D>, _config: &PlanOf<Self::Model>, _diags: &mut Diags) {}
    /// Does the work, with the whole configuration known (write-only values included).
    async fn invoke(
        &self,
        ctx: &Ctx<D>,
        config: Self::Model,
        progress: &Progress,
        diags: &mut Diags,
    );
}

/// An action type as the protocol layer sees it.
#[async_trait]
pub trait ActionType<D: Send + Sync>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> &Schema;
    /// The model's fields (for the test that holds models to schemas).
    fn model_shape(&self) -> Vec<super::model::FieldShape>;
    /// ValidateActionConfig.
    fn validate(&self, config: &Value) -> Diags;
    /// PlanAction.
    async fn plan(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags);
    /// InvokeAction: progress lines go to `progress`, the outcome to `d`.
    async fn invoke(&self, ctx: &Ctx<D>, config: &Value, progress: &Progress, d: &mut Diags);
}

#[async_trait]
impl<D: Send + Sync + 'static, A: Action<D>> ActionType<D> for A {
    fn type_name(&self) -> &'static str {
        Action::type_name(self)
    }
    fn schema(&self) -> &Schema {
        Action::schema(self)
    }
    fn model_shape(&self) -> Vec<super::model::FieldShape> {
        A::Model::shape()
    }
    fn validate(&self, config: &Value) -> Diags {
        let schema = Action::schema(self);
        let mut d = schema_validate(schema, config);
        if let Some(m) = PlanOf::<A::Model>::decode(config, &mut d) {
            Action::validate(self, &m, &mut d);
        }
        d
    }
    async fn plan(&self, ctx: &Ctx<D>, config: &Value, d: &mut Diags) {
        let Some(m) = PlanOf::<A::Model>::decode(config, d) else {
            return;
        };
        if ctx
            .cancel
            .run(Action::plan(self, ctx, &m, d))
            .await
            .is_err()
        {
            super::lifecycle::stopped(d, "planning an action");
        }
    }
    async fn invoke(&self, ctx: &Ctx<D>, config: &Value, progress: &Progress, d: &mut Diags) {
        if !config.is_wholly_known() {
            d.error(
                "Action configuration not known",
                format!(
                    "Terraform invoked {} with values it does not know yet; invoke it once they are known (after the apply that makes them).",
                    Action::type_name(self)
                ),
            );
            return;
        }
        let Some(m) = A::Model::decode(config, d) else {
            return;
        };
        Action::invoke(self, ctx, m, progress, d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn progress_lines_arrive_in_order_and_a_closed_receiver_loses_nothing_else() {
        let (p, mut rx) = Progress::channel();
        p.report("one");
        p.report(String::from("two"));
        assert_eq!(rx.recv().await.as_deref(), Some("one"));
        assert_eq!(rx.recv().await.as_deref(), Some("two"));
        drop(rx);
        // Nobody listens any more: reporting is harmless.
        p.report("three");
    }
}
