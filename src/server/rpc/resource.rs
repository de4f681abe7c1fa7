//! UpgradeResourceState, ReadResource, PlanResourceChange, ApplyResourceChange and
//! ImportResourceState for managed resources.

use crate::framework::diag::Diags;
use crate::framework::plan::{null_write_only, plan as generic_plan};
use crate::framework::resource::{PlanRequest, Provider, Resource};
use crate::framework::value::Value;
use crate::proto::tfplugin6 as pb;

use super::super::codec;
use super::super::convert;
use super::super::service::ProviderService;
use super::unsupported::unknown_type;

fn find<'a, P: Provider>(
    s: &'a ProviderService<P>,
    name: &str,
) -> Result<&'a dyn Resource<P::Data>, Diags> {
    s.provider
        .resources()
        .iter()
        .find(|r| r.type_name() == name)
        .map(|r| r.as_ref())
        .ok_or_else(|| unknown_type("resource", name))
}

/// State stored by an earlier version of the provider, brought to the current schema.
pub fn upgrade<P: Provider>(
    s: &ProviderService<P>,
    r: pb::upgrade_resource_state::Request,
) -> pb::upgrade_resource_state::Response {
    let mut d = Diags::new();
    let out = (|| {
        let res = find(s, &r.type_name).map_err(|e| d.extend(e)).ok()?;
        let schema = res.schema();
        if r.version > schema.version {
            d.error(
                "State written by a newer provider",
                format!(
                    "The state of this {} was written by a newer version of the apim provider (schema version {}, this one knows {}). Upgrade the provider.",
                    r.type_name, r.version, schema.version
                ),
            );
            return None;
        }
        let raw = r.raw_state.as_ref()?;
        if raw.json.is_empty() {
            d.error(
                "Unsupported state format",
                format!("The state of this {} is in the legacy flatmap format, which the apim provider never wrote. Remove it from state and import it again.", r.type_name),
            );
            return None;
        }
        let ty = schema.block.object_type();
        match codec::from_json(&raw.json, &ty) {
            Ok(mut v) => {
                null_write_only(&schema.block, &mut v);
                convert::encode(&v, &ty, "upgraded state", &mut d)
            }
            Err(e) => {
                d.error(
                    "Unreadable state",
                    format!(
                        "The stored state of this {} could not be read: {e}.",
                        r.type_name
                    ),
                );
                None
            }
        }
    })();
    pb::upgrade_resource_state::Response {
        upgraded_state: out,
        diagnostics: convert::diags(&d),
    }
}

/// Refresh: the remote object as it is now, or null when it is gone.
pub async fn read<P: Provider>(
    s: &ProviderService<P>,
    r: pb::read_resource::Request,
) -> pb::read_resource::Response {
    let mut d = Diags::new();
    let mut new_state = r.current_state.clone();
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let current = convert::decode(r.current_state.as_ref(), &ty, "current state", &mut d);
        if !d.has_errors() && !current.is_null() {
            let ctx = s.ctx();
            let outcome = ctx.cancel.run(res.read(&ctx, &current, &mut d)).await;
            let Ok(outcome) = outcome else {
                super::stopped(&mut d, "refreshing");
                return pb::read_resource::Response {
                    new_state,
                    diagnostics: convert::diags(&d),
                    private: r.private,
                    deferred: None,
                    new_identity: None,
                };
            };
            match outcome {
                Some(mut v) if !d.has_errors() => {
                    null_write_only(&res.schema().block, &mut v);
                    new_state =
                        known_state(&v, &ty, res.type_name(), &mut d).or(r.current_state.clone());
                }
                // On error the state stays as it was: nothing is lost.
                Some(_) => {}
                None if d.has_errors() => {}
                None => new_state = convert::encode(&Value::Null, &ty, "state", &mut d),
            }
        }
    }
    pb::read_resource::Response {
        new_state,
        diagnostics: convert::diags(&d),
        private: r.private,
        deferred: None,
        new_identity: None,
    }
}

/// Encodes a state that must be wholly known.
fn known_state(
    v: &Value,
    ty: &crate::framework::Type,
    type_name: &str,
    d: &mut Diags,
) -> Option<pb::DynamicValue> {
    if !v.is_wholly_known() {
        d.error(
            "Provider produced an incomplete state",
            format!("The new state of this {type_name} still has unknown values. This is a bug in the provider; please report it."),
        );
        return None;
    }
    convert::encode(v, ty, "state", d)
}

/// Plan: generic planning from the schema, then the type's own adjustments and checks.
pub async fn plan<P: Provider>(
    s: &ProviderService<P>,
    r: pb::plan_resource_change::Request,
) -> pb::plan_resource_change::Response {
    let mut d = Diags::new();
    let mut resp = pb::plan_resource_change::Response {
        planned_private: r.prior_private.clone(),
        ..Default::default()
    };
    let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) else {
        resp.diagnostics = convert::diags(&d);
        return resp;
    };
    let schema = res.schema();
    let ty = schema.block.object_type();
    let prior = convert::decode(r.prior_state.as_ref(), &ty, "prior state", &mut d);
    let proposed = convert::decode(r.proposed_new_state.as_ref(), &ty, "proposed state", &mut d);
    let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
    if d.has_errors() {
        resp.diagnostics = convert::diags(&d);
        return resp;
    }
    if proposed.is_null() {
        // Destroy: nothing to plan beyond the null state.
        resp.planned_state = convert::encode(&Value::Null, &ty, "planned state", &mut d);
        resp.diagnostics = convert::diags(&d);
        return resp;
    }
    let mut planned = generic_plan(schema, &prior, &proposed, &config);
    let ctx = s.ctx();
    // Plan-time checks read remote APIs: a stop interrupts them.
    let stopped = ctx
        .cancel
        .run(res.modify_plan(
            &ctx,
            PlanRequest {
                prior: &prior,
                config: &config,
            },
            &mut planned,
            &mut d,
        ))
        .await
        .is_err();
    if stopped {
        super::stopped(&mut d, "planning");
    }
    null_write_only(&schema.block, &mut planned.state);
    resp.planned_state = convert::encode(&planned.state, &ty, "planned state", &mut d);
    resp.requires_replace = planned.requires_replace.iter().map(convert::path).collect();
    resp.diagnostics = convert::diags(&d);
    resp
}

/// Apply: create, update or delete, returning a state that matches what exists remotely.
pub async fn apply<P: Provider>(
    s: &ProviderService<P>,
    r: pb::apply_resource_change::Request,
) -> pb::apply_resource_change::Response {
    let mut d = Diags::new();
    let mut resp = pb::apply_resource_change::Response {
        private: r.planned_private.clone(),
        new_state: r.prior_state.clone(),
        ..Default::default()
    };
    let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) else {
        resp.diagnostics = convert::diags(&d);
        return resp;
    };
    let schema = res.schema();
    let ty = schema.block.object_type();
    let prior = convert::decode(r.prior_state.as_ref(), &ty, "prior state", &mut d);
    let planned = convert::decode(r.planned_state.as_ref(), &ty, "planned state", &mut d);
    let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
    if d.has_errors() {
        resp.diagnostics = convert::diags(&d);
        return resp;
    }
    let ctx = s.ctx();
    let new_state = if planned.is_null() {
        res.delete(&ctx, &prior, &mut d).await;
        // A failed delete leaves the object, and so its state, in place.
        if d.has_errors() {
            prior
        } else {
            Value::Null
        }
    } else if prior.is_null() {
        res.create(&ctx, &planned, &config, &mut d)
            .await
            .unwrap_or(Value::Null)
    } else {
        res.update(&ctx, &prior, &planned, &config, &mut d)
            .await
            .unwrap_or(prior)
    };
    let mut new_state = new_state;
    null_write_only(&schema.block, &mut new_state);
    resp.new_state = if new_state.is_null() {
        convert::encode(&new_state, &ty, "new state", &mut d)
    } else {
        known_state(&new_state, &ty, res.type_name(), &mut d)
    };
    resp.diagnostics = convert::diags(&d);
    resp
}

/// Import: from an ID to a state that ReadResource then completes.
pub async fn import<P: Provider>(
    s: &ProviderService<P>,
    r: pb::import_resource_state::Request,
) -> pb::import_resource_state::Response {
    let mut d = Diags::new();
    let mut imported = Vec::new();
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let ctx = s.ctx();
        let outcome = ctx.cancel.run(res.import(&ctx, &r.id, &mut d)).await;
        if outcome.is_err() {
            super::stopped(&mut d, "importing");
        }
        if let Some(mut v) = outcome.ok().flatten() {
            if !d.has_errors() {
                null_write_only(&res.schema().block, &mut v);
                if let Some(state) = convert::encode(&v, &ty, "imported state", &mut d) {
                    imported.push(pb::import_resource_state::ImportedResource {
                        type_name: r.type_name.clone(),
                        state: Some(state),
                        private: Vec::new(),
                        identity: None,
                    });
                }
            }
        }
    }
    pb::import_resource_state::Response {
        imported_resources: imported,
        diagnostics: convert::diags(&d),
        deferred: None,
    }
}
