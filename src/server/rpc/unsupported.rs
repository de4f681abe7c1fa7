//! Answers for protocol features the provider does not offer: a clear diagnostic, never a
//! crash or a transport error.

use crate::framework::Diags;
use crate::server::proto::tfplugin6 as pb;

use crate::server::convert;

/// One error diagnostic saying that `what` is not supported by this provider.
pub fn diag(what: &str) -> Vec<pb::Diagnostic> {
    let mut d = Diags::new();
    d.error(
        "Not supported by this provider",
        format!("{what} is not supported by the apim provider."),
    );
    convert::diags(&d)
}

/// The diagnostic for a type name the provider does not have.
pub fn unknown_type(kind: &str, name: &str) -> Diags {
    let mut d = Diags::new();
    d.error(
        format!("Unknown {kind} type"),
        format!("The apim provider has no {kind} type {name:?}. Check the spelling, and that the provider version in use offers it."),
    );
    d
}
