//! GetProviderSchema and GetMetadata: built once per process from the declared schemas.

use crate::framework::resource::Provider;
use crate::server::proto::tfplugin6 as pb;

use crate::server::convert;
use crate::server::service::ProviderService;

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        // Terraform may cache the schema and skip a provider launch per command.
        get_provider_schema_optional: true,
        move_resource_state: false,
        // `terraform plan -generate-config-out` asks each type what a user would write.
        generate_resource_config: true,
    }
}

/// The whole schema, computed on first use and cached.
pub fn provider_schema<P: Provider>(s: &ProviderService<P>) -> &pb::get_provider_schema::Response {
    s.schema.get_or_init(|| {
        let p = &s.provider;
        pb::get_provider_schema::Response {
            provider: Some(convert::schema(p.schema())),
            resource_schemas: p
                .resources()
                .iter()
                .map(|r| (r.type_name().to_string(), convert::schema(r.schema())))
                .collect(),
            data_source_schemas: p
                .data_sources()
                .iter()
                .map(|r| (r.type_name().to_string(), convert::schema(r.schema())))
                .collect(),
            ephemeral_resource_schemas: p
                .ephemeral_resources()
                .iter()
                .map(|r| (r.type_name().to_string(), convert::schema(r.schema())))
                .collect(),
            list_resource_schemas: p
                .list_resources()
                .iter()
                .map(|r| (r.type_name().to_string(), convert::schema(r.schema())))
                .collect(),
            functions: super::function::definitions(s),
            action_schemas: p
                .actions()
                .iter()
                .map(|a| {
                    (
                        a.type_name().to_string(),
                        pb::ActionSchema {
                            schema: Some(convert::schema(a.schema())),
                        },
                    )
                })
                .collect(),
            server_capabilities: Some(capabilities()),
            ..Default::default()
        }
    })
}

/// The cheap list of type names.
pub fn metadata<P: Provider>(s: &ProviderService<P>) -> pb::get_metadata::Response {
    use pb::get_metadata as m;
    let p = &s.provider;
    m::Response {
        server_capabilities: Some(capabilities()),
        resources: p
            .resources()
            .iter()
            .map(|r| m::ResourceMetadata {
                type_name: r.type_name().into(),
            })
            .collect(),
        data_sources: p
            .data_sources()
            .iter()
            .map(|r| m::DataSourceMetadata {
                type_name: r.type_name().into(),
            })
            .collect(),
        ephemeral_resources: p
            .ephemeral_resources()
            .iter()
            .map(|r| m::EphemeralMetadata {
                type_name: r.type_name().into(),
            })
            .collect(),
        list_resources: p
            .list_resources()
            .iter()
            .map(|r| m::ListResourceMetadata {
                type_name: r.type_name().into(),
            })
            .collect(),
        functions: p
            .functions()
            .iter()
            .map(|f| m::FunctionMetadata {
                name: f.name().into(),
            })
            .collect(),
        actions: p
            .actions()
            .iter()
            .map(|a| m::ActionMetadata {
                type_name: a.type_name().into(),
            })
            .collect(),
        ..Default::default()
    }
}

/// The identity schema of every type that declares one.
pub fn identity_schemas<P: Provider>(
    s: &ProviderService<P>,
) -> pb::get_resource_identity_schemas::Response {
    pb::get_resource_identity_schemas::Response {
        identity_schemas: s
            .provider
            .resources()
            .iter()
            .filter_map(|r| {
                let i = r.identity_schema()?;
                Some((r.type_name().to_string(), convert::identity_schema(i)))
            })
            .collect(),
        diagnostics: Vec::new(),
    }
}
