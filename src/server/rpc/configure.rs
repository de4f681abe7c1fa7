//! ConfigureProvider: builds the provider data that every later call receives.

use std::sync::Arc;

use crate::framework::diag::Diags;
use crate::framework::lifecycle::configure_provider;
use crate::framework::resource::Provider;
use crate::server::proto::tfplugin6 as pb;

use crate::server::convert;
use crate::server::service::ProviderService;

/// Decodes the provider block and configures the provider.
pub async fn configure<P: Provider>(
    s: &ProviderService<P>,
    r: pb::configure_provider::Request,
) -> pb::configure_provider::Response {
    let mut d = Diags::new();
    let schema = s.provider.schema();
    let config = convert::decode(
        r.config.as_ref(),
        &schema.block.object_type(),
        "provider configuration",
        &mut d,
    );
    if !d.has_errors() {
        if let Some(data) =
            configure_provider(s.provider.as_ref(), &config, &r.terraform_version, &mut d).await
        {
            if let Ok(mut slot) = s.data.write() {
                *slot = Some(Arc::new(data));
            }
        }
    }
    pb::configure_provider::Response {
        diagnostics: convert::diags(&d),
    }
}
