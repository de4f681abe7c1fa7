//! The `api-version` query parameter ARM requires on every request: exactly the one version
//! implemented under `Microsoft.ApiManagement`, any well-formed version elsewhere (subscriptions
//! and resource groups, whose versions clients pick freely).

use super::error::ArmError;
use super::API_VERSION;
use crate::server::Req;

/// Checks the request's `api-version`; `rp` is whether it addresses the APIM resource provider.
pub(super) fn check_api_version(req: &Req, rp: bool) -> Result<(), ArmError> {
    let Some(v) = req.q("api-version") else {
        return Err(ArmError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let ok = if rp {
        v == API_VERSION
    } else {
        let b = v.as_bytes();
        b.len() >= 10
            && b[..10].iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
            && (b.len() == 10 || v[10..].eq_ignore_ascii_case("-preview"))
    };
    if ok {
        Ok(())
    } else {
        let supported = if rp {
            API_VERSION.to_string()
        } else {
            "2021-04-01, 2022-09-01".to_string()
        };
        Err(ArmError::new(
            400,
            "InvalidApiVersionParameter",
            format!("The api-version '{v}' is invalid. The supported versions are '{supported}'."),
        ))
    }
}
