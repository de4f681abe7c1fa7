//! ListResource (a server stream of events) and ValidateListResourceConfig, for
//! `terraform query`: decode, let the framework list, encode one event per object.

use crate::framework::diag::Diags;
use crate::framework::list::ListType;
use crate::framework::resource::Provider;
use crate::server::convert;
use crate::server::proto::tfplugin6 as pb;
use crate::server::service::ProviderService;

use super::unsupported::unknown_type;

fn find<'a, P: Provider>(
    s: &'a ProviderService<P>,
    name: &str,
) -> Result<&'a dyn ListType<P::Data>, Diags> {
    s.provider
        .list_resources()
        .iter()
        .find(|r| r.type_name() == name)
        .map(|r| r.as_ref())
        .ok_or_else(|| unknown_type("list resource", name))
}

/// ValidateListResourceConfig: the `config` block of a `list` block.
pub fn validate<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_list_resource_config::Request,
) -> pb::validate_list_resource_config::Response {
    let mut d = Diags::new();
    if let Ok(list) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let ty = list.schema().block.object_type();
        let config = convert::decode(r.config.as_ref(), &ty, "list configuration", &mut d);
        if !d.has_errors() {
            d.extend(list.validate(&config));
        }
    }
    pb::validate_list_resource_config::Response {
        diagnostics: convert::diags(&d),
    }
}

/// ListResource: one event per object found (its identity, display name and, when asked
/// for, its state), at most `limit`; problems of the whole listing in a last event of
/// their own.
pub async fn list<P: Provider>(
    s: &ProviderService<P>,
    r: pb::list_resource::Request,
) -> Vec<pb::list_resource::Event> {
    let mut d = Diags::new();
    let mut events = Vec::new();
    if let Ok(list) = find(s, &r.type_name).map_err(|e| d.extend(e)) {
        let res = s
            .provider
            .resources()
            .iter()
            .find(|x| x.type_name() == r.type_name);
        let ty = list.schema().block.object_type();
        let config = convert::decode(r.config.as_ref(), &ty, "list configuration", &mut d);
        let limit = usize::try_from(r.limit).unwrap_or(0);
        if let (false, Some(res)) = (d.has_errors(), res) {
            let state_ty = res.schema().block.object_type();
            let found = list
                .list(&s.ctx(), &config, limit, r.include_resource_object, &mut d)
                .await;
            for item in found {
                let mut own = item.diags;
                let identity = match (res.identity_schema(), item.identity.is_null()) {
                    (Some(schema), false) => convert::identity(&item.identity, schema, &mut own),
                    _ => None,
                };
                let resource_object = item
                    .state
                    .as_ref()
                    .and_then(|v| convert::encode(v, &state_ty, "listed object", &mut own));
                events.push(pb::list_resource::Event {
                    identity,
                    display_name: item.display_name,
                    resource_object,
                    diagnostic: convert::diags(&own),
                });
            }
        }
    }
    if !d.is_empty() {
        events.push(pb::list_resource::Event {
            diagnostic: convert::diags(&d),
            ..Default::default()
        });
    }
    events
}
