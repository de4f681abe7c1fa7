//! ValidateProviderConfig, ValidateResourceConfig, ValidateDataResourceConfig and
//! ValidateEphemeralResourceConfig: the schema's declarative checks, then the type's own.

use crate::framework::diag::{AttrPath, Diags};
use crate::framework::resource::Provider;
use crate::framework::schema::Schema;
use crate::framework::validate::validate;
use crate::framework::value::Value;
use crate::proto::tfplugin6 as pb;

use super::super::convert;
use super::super::service::ProviderService;
use super::unsupported::unknown_type;

fn check(
    schema: &Schema,
    config: Option<&pb::DynamicValue>,
    what: &str,
    extra: impl FnOnce(&Value, &mut Diags),
) -> (Value, Diags) {
    let mut d = Diags::new();
    let v = convert::decode(config, &schema.block.object_type(), what, &mut d);
    if d.has_errors() {
        return (v, d);
    }
    d.extend(validate(schema, &v));
    extra(&v, &mut d);
    (v, d)
}

/// The provider block.
pub fn provider<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_provider_config::Request,
) -> pb::validate_provider_config::Response {
    let p = &s.provider;
    let (_, d) = check(
        p.schema(),
        r.config.as_ref(),
        "provider configuration",
        |v, d| p.validate(v, d),
    );
    pb::validate_provider_config::Response {
        diagnostics: convert::diags(&d),
    }
}

/// A resource block.
pub fn resource<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_resource_config::Request,
) -> pb::validate_resource_config::Response {
    let Some(res) = s
        .provider
        .resources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    else {
        return pb::validate_resource_config::Response {
            diagnostics: convert::diags(&unknown_type("resource", &r.type_name)),
        };
    };
    let write_only_ok = r
        .client_capabilities
        .as_ref()
        .is_some_and(|c| c.write_only_attributes_allowed);
    let (_, d) = check(
        res.schema(),
        r.config.as_ref(),
        "resource configuration",
        |v, d| {
            if !write_only_ok {
                for a in res
                    .schema()
                    .block
                    .attributes
                    .iter()
                    .filter(|a| a.write_only)
                {
                    if !v.get(a.name).is_null() {
                        d.attr_error(
                        AttrPath::root(a.name),
                        "Write-only attribute not supported by this Terraform",
                        format!(
                            "`{}` of {} is write-only, which needs Terraform 1.11 or later. Upgrade Terraform, or remove `{}`.",
                            a.name, res.type_name(), a.name
                        ),
                    );
                    }
                }
            }
            res.validate(v, d)
        },
    );
    pb::validate_resource_config::Response {
        diagnostics: convert::diags(&d),
    }
}

/// A data block.
pub fn data_source<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_data_resource_config::Request,
) -> pb::validate_data_resource_config::Response {
    let d = match s
        .provider
        .data_sources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        Some(ds) => {
            check(
                ds.schema(),
                r.config.as_ref(),
                "data source configuration",
                |v, d| ds.validate(v, d),
            )
            .1
        }
        None => unknown_type("data source", &r.type_name),
    };
    pb::validate_data_resource_config::Response {
        diagnostics: convert::diags(&d),
    }
}

/// An ephemeral block.
pub fn ephemeral<P: Provider>(
    s: &ProviderService<P>,
    r: pb::validate_ephemeral_resource_config::Request,
) -> pb::validate_ephemeral_resource_config::Response {
    let d = match s
        .provider
        .ephemeral_resources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        Some(e) => {
            check(
                e.schema(),
                r.config.as_ref(),
                "ephemeral resource configuration",
                |v, d| e.validate(v, d),
            )
            .1
        }
        None => unknown_type("ephemeral resource", &r.type_name),
    };
    pb::validate_ephemeral_resource_config::Response {
        diagnostics: convert::diags(&d),
    }
}
