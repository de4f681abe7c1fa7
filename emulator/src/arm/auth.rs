//! ARM's bearer-token check: signature and expiry by the emulator's own Entra key, then audience
//! and tenant, each failure with the 401 code and `WWW-Authenticate` challenge ARM sends.

use super::error::ArmError;
use crate::faults::lock;
use crate::jwt::JwtError;
use crate::server::{App, Req};
use serde_json::Value;

/// Audiences an ARM bearer token may carry (Azure accepts these for the public cloud).
const ARM_AUDIENCES: [&str; 2] = [
    "https://management.azure.com",
    "https://management.core.windows.net",
];

/// A 401 with the challenge that points clients at this emulator's tenant for a new token.
fn auth_error(app: &App, code: &str, message: String) -> ArmError {
    let tenant = lock(&app.state).tenant_id.clone();
    let mut e = ArmError::new(401, code, message);
    e.headers.push((
        "www-authenticate",
        format!(
            "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header or an invalid token.\"",
            app.url
        ),
    ));
    e
}

/// Accepts a request whose bearer token this emulator issued, for ARM (or the emulator's own
/// URL as audience), in the emulator's tenant.
pub(super) fn authenticate(app: &App, req: &Req) -> Result<(), ArmError> {
    let Some(header) = req.header("authorization") else {
        return Err(auth_error(
            app,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    };
    let Some(token) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Err(auth_error(
            app,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
                .into(),
        ));
    };
    let claims = match app.signer.verify(token) {
        Ok(c) => c,
        Err(JwtError::Expired) => {
            return Err(auth_error(
                app,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.".into(),
            ))
        }
        Err(_) => {
            return Err(auth_error(
                app,
                "InvalidAuthenticationToken",
                "The access token is invalid.".into(),
            ))
        }
    };
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let norm = aud.trim_end_matches('/');
    let own = app.url.trim_end_matches('/');
    if !ARM_AUDIENCES.contains(&norm) && norm != own {
        return Err(auth_error(
            app,
            "InvalidAuthenticationTokenAudience",
            format!("The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."),
        ));
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tenant = lock(&app.state).tenant_id.clone();
    if !tid.eq_ignore_ascii_case(&tenant) {
        return Err(auth_error(
            app,
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer. It must match the tenant '{tenant}'."
            ),
        ));
    }
    Ok(())
}
