//! ReadDataSource: decode, call the framework, encode.

use crate::framework::diag::Diags;
use crate::framework::resource::Provider;
use crate::server::convert;
use crate::server::proto::tfplugin6 as pb;
use crate::server::service::ProviderService;

use super::unsupported::unknown_type;

/// Reads a data source from its (known) configuration.
pub async fn read<P: Provider>(
    s: &ProviderService<P>,
    r: pb::read_data_source::Request,
) -> pb::read_data_source::Response {
    let mut d = Diags::new();
    let mut state = None;
    match s
        .provider
        .data_sources()
        .iter()
        .find(|x| x.type_name() == r.type_name)
    {
        None => d.extend(unknown_type("data source", &r.type_name)),
        Some(ds) => {
            let ty = ds.schema().block.object_type();
            let config = convert::decode(r.config.as_ref(), &ty, "configuration", &mut d);
            if !d.has_errors() {
                if let Some(v) = ds.read(&s.ctx(), &config, &mut d).await {
                    state = convert::encode(&v, &ty, "data source state", &mut d);
                }
            }
        }
    }
    pb::read_data_source::Response {
        state,
        diagnostics: convert::diags(&d),
        deferred: None,
    }
}
