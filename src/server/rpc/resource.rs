//! UpgradeResourceState, ReadResource, PlanResourceChange, ApplyResourceChange,
//! ImportResourceState and GenerateResourceConfig for managed resources: decode, call the
//! framework, encode.

use crate::framework::diag::Diags;
use crate::framework::lifecycle::{Refreshed, ResourceType};
use crate::framework::plan::null_write_only;
use crate::framework::resource::Provider;
use crate::framework::value::Value;
use crate::server::codec;
use crate::server::convert;
use crate::server::proto::tfplugin6 as pb;
use crate::server::service::ProviderService;

use super::unsupported::unknown_type;

fn find<'a, P: Provider>(
    s: &'a ProviderService<P>,
    name: &str,
) -> Result<&'a dyn ResourceType<P::Data>, Diags> {
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
    let mut new_identity = None;
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let current = convert::decode(r.current_state.as_ref(), &ty, "current state", &mut d);
        if !d.has_errors() {
            let refreshed = match res.read(&s.ctx(), &current, &mut d).await {
                Refreshed::State(v) => {
                    new_state = convert::encode(&v, &ty, "state", &mut d);
                    v
                }
                Refreshed::Gone => {
                    new_state = convert::encode(&Value::Null, &ty, "state", &mut d);
                    Value::Null
                }
                Refreshed::Unchanged => current,
            };
            // A gone object has no identity; a failed refresh keeps the one Terraform has.
            new_identity = match refreshed.is_null() {
                true => None,
                false => identity_of(res, &refreshed, &mut d).or(r.current_identity),
            };
        }
    }
    pb::read_resource::Response {
        new_state,
        diagnostics: convert::diags(&d),
        private: r.private,
        deferred: None,
        new_identity,
    }
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
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let prior = convert::decode(r.prior_state.as_ref(), &ty, "prior state", &mut d);
        let proposed =
            convert::decode(r.proposed_new_state.as_ref(), &ty, "proposed state", &mut d);
        let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
        if !d.has_errors() {
            let (planned, replace) = res.plan(&s.ctx(), &prior, &proposed, &config, &mut d).await;
            resp.planned_state = convert::encode(&planned, &ty, "planned state", &mut d);
            // Known once the plan names the object; until then Terraform holds the prior one.
            resp.planned_identity = identity_of(res, &planned, &mut d).or(r.prior_identity);
            resp.requires_replace = replace.iter().map(convert::path).collect();
        }
    }
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
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let prior = convert::decode(r.prior_state.as_ref(), &ty, "prior state", &mut d);
        let planned = convert::decode(r.planned_state.as_ref(), &ty, "planned state", &mut d);
        let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
        if !d.has_errors() {
            let new_state = res.apply(&s.ctx(), prior, planned, &config, &mut d).await;
            resp.new_state = convert::encode(&new_state, &ty, "new state", &mut d);
            resp.new_identity = identity_of(res, &new_state, &mut d);
        }
    }
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
        // `import { identity = { … } }` sends the identity and no ID.
        let id = match (&r.identity, res.identity_schema()) {
            (Some(given), Some(schema)) if r.id.is_empty() => {
                let v = convert::decode(
                    given.identity_data.as_ref(),
                    &schema.object_type(),
                    "identity",
                    &mut d,
                );
                schema.import_id_of(&v, &r.type_name, &mut d)
            }
            _ => Some(r.id.clone()),
        };
        let state = match id {
            Some(id) if !d.has_errors() => res.import(&s.ctx(), &id, &mut d).await,
            _ => None,
        };
        if let Some(v) = state {
            let identity = identity_of(res, &v, &mut d);
            if let Some(state) = convert::encode(&v, &ty, "imported state", &mut d) {
                imported.push(pb::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private: Vec::new(),
                    identity,
                });
            }
        }
    }
    pb::import_resource_state::Response {
        imported_resources: imported,
        diagnostics: convert::diags(&d),
        deferred: None,
    }
}

/// Generated configuration: from an imported state to what a user would write.
pub fn generate_config<P: Provider>(
    s: &ProviderService<P>,
    r: pb::generate_resource_config::Request,
) -> pb::generate_resource_config::Response {
    let mut d = Diags::new();
    let mut config = None;
    if let Ok(res) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = res.schema().block.object_type();
        let state = convert::decode(r.state.as_ref(), &ty, "state", &mut d);
        if !d.has_errors() {
            if let Some(v) = res.generate_config(&s.ctx(), &state, &mut d) {
                config = convert::encode(&v, &ty, "generated configuration", &mut d);
            }
        }
    }
    pb::generate_resource_config::Response {
        config,
        diagnostics: convert::diags(&d),
    }
}

/// The identity of `state`, for a type that declares one and a state that names its object.
fn identity_of<D: Send + Sync>(
    res: &dyn ResourceType<D>,
    state: &Value,
    d: &mut Diags,
) -> Option<pb::ResourceIdentityData> {
    let schema = res.identity_schema()?;
    convert::identity(&schema.of_state(state)?, schema, d)
}

/// An identity stored by an earlier version of the provider, brought to the current one.
pub fn upgrade_identity<P: Provider>(
    s: &ProviderService<P>,
    r: pb::upgrade_resource_identity::Request,
) -> pb::upgrade_resource_identity::Response {
    let mut d = Diags::new();
    let upgraded = (|| {
        let res = find(s, &r.type_name).map_err(|e| d.extend(e)).ok()?;
        let Some(schema) = res.identity_schema() else {
            d.error(
                "Resource identity not supported",
                format!(
                    "{} has no resource identity in this version of the apim provider.",
                    r.type_name
                ),
            );
            return None;
        };
        if r.version != schema.version {
            d.error(
                "Identity written by another provider version",
                format!(
                    "The stored identity of this {} has version {}, and this provider knows version {}. Use the provider version that wrote it, or remove the resource from state and import it again.",
                    r.type_name, r.version, schema.version
                ),
            );
            return None;
        }
        let raw = r.raw_identity.as_ref()?;
        match codec::from_json(&raw.json, &schema.object_type()) {
            Ok(v) => convert::identity(&v, schema, &mut d),
            Err(e) => {
                d.error(
                    "Unreadable identity",
                    format!(
                        "The stored identity of this {} could not be read: {e}.",
                        r.type_name
                    ),
                );
                None
            }
        }
    })();
    pb::upgrade_resource_identity::Response {
        upgraded_identity: upgraded,
        diagnostics: convert::diags(&d),
    }
}
