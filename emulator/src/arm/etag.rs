//! Optimistic concurrency: every write gives an entity a new ETag, sent back in `ETag`; a write
//! or delete with `If-Match` only goes ahead while the ETag it names is still current.

use super::error::ArmError;
use super::response::set_header;
use crate::server::Req;
use axum::body::Body;
use axum::http::Response;

/// Compares an `If-Match` header with the current ETag. `required` is the spec's
/// `IfMatchRequiredParameter` (PATCH, DELETE).
pub fn check_if_match(req: &Req, current: Option<&str>, required: bool) -> Result<(), ArmError> {
    let Some(raw) = req.header("if-match") else {
        if required {
            return Err(ArmError::validation("If-Match", "The If-Match header is required: give the entity's ETag, or '*' for an unconditional update."));
        }
        return Ok(());
    };
    if raw.trim() == "*" {
        return Ok(());
    }
    let matches = raw.split(',').any(|t| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        let t = t.trim_matches('"');
        current.is_some_and(|c| c == t)
    });
    if matches {
        Ok(())
    } else {
        Err(ArmError::new(412, "PreconditionFailed", "The entity tag given in the If-Match header does not match the current state of the entity."))
    }
}

/// Adds `ETag: "<etag>"`.
pub fn with_etag(mut resp: Response<Body>, etag: &str) -> Response<Body> {
    set_header(&mut resp, "etag", &format!("\"{etag}\""));
    resp
}
