//! The RPC handlers, grouped by what they serve.

pub mod configure;
pub mod data;
pub mod ephemeral;
pub mod resource;
pub mod schema;
pub mod unsupported;
pub mod validate;

use crate::framework::diag::Diags;

/// The diagnostic for work stopped by StopProvider (Ctrl-C in Terraform).
pub(crate) fn stopped(d: &mut Diags, what: &str) {
    d.error(
        "Stopped",
        format!("Terraform asked the provider to stop while it was {what}; nothing was changed by this step."),
    );
}
