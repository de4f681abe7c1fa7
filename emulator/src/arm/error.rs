//! ARM's error answers: the `{"error":{"code","message"[,"details"]}}` body every failure
//! carries, APIM's `ValidationError` with one detail per offending field, and the answers fault
//! rules send in place of a real one.

use super::response::{add_arm_headers, set_header};
use crate::server::{json_response, App, Req};
use axum::body::Body;
use axum::http::{Method, Response};
use serde_json::{json, Value};

/// An ARM error, rendered as `{"error":{"code","message"[,"details"]}}`.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// HTTP status.
    pub status: u16,
    /// ARM error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// `details` entries (validation errors).
    pub details: Vec<Value>,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    /// An error with a status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 404 `ResourceNotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFound", message)
    }

    /// 400 `ValidationError` with one detail naming the offending field, as APIM reports it.
    pub fn validation(target: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            400,
            "ValidationError",
            "One or more fields contain incorrect values:",
        );
        e.details
            .push(json!({"code": "ValidationError", "target": target, "message": message}));
        e
    }

    /// 400 `ValidationError` with one detail per `(target, message)`, as APIM lists every
    /// problem of a policy document.
    pub fn validation_many(details: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut e = Self::new(
            400,
            "ValidationError",
            "One or more fields contain incorrect values:",
        );
        for (target, message) in details {
            e.details
                .push(json!({"code": "ValidationError", "target": target, "message": message}));
        }
        e
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let mut err = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            err["details"] = Value::Array(self.details);
        }
        let mut resp = json_response(self.status, &json!({ "error": err }));
        for (k, v) in self.headers {
            set_header(&mut resp, k, &v);
        }
        resp
    }
}

/// Result of an ARM handler.
pub type ArmResult = Result<Response<Body>, ArmError>;

/// 405 for a method the resource does not support.
pub fn method_not_allowed(req: &Req) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!(
            "The HTTP method '{}' is not supported for this resource.",
            req.method
        ),
    )
}

/// The response to a request a fault rule failed: ARM's throttling body for 429, a generic ARM
/// error body otherwise. The same rules also fail Entra and managed-identity requests, so only
/// ARM paths get ARM's correlation and quota headers.
pub fn fault_response(
    app: &App,
    status: u16,
    retry_after: Option<u64>,
    path: &str,
) -> Response<Body> {
    let (code, message) = match status {
        429 => (
            "TooManyRequests",
            "The request was throttled. Retry after the delay given in the Retry-After header."
                .to_string(),
        ),
        500 => (
            "InternalServerError",
            "The server encountered an internal error.".to_string(),
        ),
        502 => (
            "BadGateway",
            "The gateway did not receive a valid response.".to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable.".to_string(),
        ),
        504 => ("GatewayTimeout", "The gateway timed out.".to_string()),
        s => ("InjectedFault", format!("Fault injected with status {s}.")),
    };
    let mut resp = ArmError::new(status, code, message).into_response();
    if let Some(s) = retry_after {
        set_header(&mut resp, "retry-after", &s.to_string());
    }
    if path.to_ascii_lowercase().starts_with("/subscriptions") {
        add_arm_headers(app, None, &Method::GET, &mut resp);
    }
    resp
}
