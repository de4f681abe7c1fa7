//! ValidateProviderConfig, ValidateResourceConfig, ValidateDataResourceConfig and
//! ValidateEphemeralResourceConfig: decode, let the framework check, encode.

use crate::framework::diag::Diags;
use crate::framework::lifecycle::validate_provider;
use crate::framework::resource::Provider;
use crate::framework::schema::Schema;
use crate::server::convert;
use crate::server::proto::tfplugin6 as pb;
use crate::server::service::ProviderService;

use super::unsupported::unknown_type;

/// Decodes a configuration and hands it to `check` when it decodes.
fn check(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    what: &str,
    check: impl FnOnce(&crate::framework::Value) -> Diags,
) -> Vec<pb::Diagnostic> {
    let mut d = Diags::new();
    let v = convert::decode(config, &schema.block.object_type(), what, &mut d);
    if !d.has_errors() {
        d.extend(check(&v));
    }
    convert::diags(&d)
}

/// The provider block.
pub fn provider<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_provider_config::Request,
) -> pb::validate_provider_config::Response {
    let p = &s.provider;
    pb::validate_provider_config::Response {
        diagnostics: check(
            p.schema(),
            r.config.as_ref(),
            "provider configuration",
            |v| validate_provider(p.as_ref(), v),
        ),
    }
}

/// A resource block.
pub fn resource<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_resource_config::Request,
) -> pb::validate_resource_config::Response {
    let write_only_allowed = r
        .client_capabilities
        .as_ref()
        .is_some_and(|c| c.write_only_attributes_allowed);
    let diagnostics = match s
        .provider
        .resources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        Some(res) => check(
            res.schema(),
            r.config.as_ref(),
            "resource configuration",
            |v| res.validate(v, write_only_allowed),
        ),
        None => convert::diags(&unknown_type("resource", &r.type_name)),
    };
    pb::validate_resource_config::Response { diagnostics }
}

/// A data block.
pub fn data_source<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_data_resource_config::Request,
) -> pb::validate_data_resource_config::Response {
    let diagnostics = match s
        .provider
        .data_sources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        Some(ds) => check(
            ds.schema(),
            r.config.as_ref(),
            "data source configuration",
            |v| ds.validate(v),
        ),
        None => convert::diags(&unknown_type("data source", &r.type_name)),
    };
    pb::validate_data_resource_config::Response { diagnostics }
}

/// An ephemeral block.
pub fn ephemeral<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_ephemeral_resource_config::Request,
) -> pb::validate_ephemeral_resource_config::Response {
    let diagnostics = match s
        .provider
        .ephemeral_resources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        Some(e) => check(
            e.schema(),
            r.config.as_ref(),
            "ephemeral resource configuration",
            |v| e.validate(v),
        ),
        None => convert::diags(&unknown_type("ephemeral resource", &r.type_name)),
    };
    pb::validate_ephemeral_resource_config::Response { diagnostics }
}
