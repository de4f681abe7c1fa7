//! What every ARM answer carries besides its body: request and correlation ids, the
//! `x-ms-ratelimit-remaining-*` quota headers and `no-cache`; plus body-less answers.

use crate::server::App;
use crate::util::{now_unix, uuid};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Response, StatusCode};

/// Sets a header. Every value here is built from ids, numbers and URLs; one that still is not a
/// valid header value is left out rather than failing the whole answer.
pub(super) fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Adds ARM's request ids and quota headers. A client's `x-ms-correlation-request-id` is echoed
/// (clients use it to tie retries together); without one, the request id stands in.
pub(super) fn add_arm_headers(
    app: &App,
    correlation: Option<&str>,
    method: &Method,
    resp: &mut Response<Body>,
) {
    let request_id = uuid();
    let correlation = correlation
        .filter(|c| !c.is_empty() && c.len() <= 200)
        .map_or_else(|| request_id.clone(), str::to_string);
    set_header(resp, "x-ms-request-id", &request_id);
    set_header(resp, "x-ms-correlation-request-id", &correlation);
    set_header(
        resp,
        "x-ms-routing-request-id",
        &format!("LOCAL:{}:{}", now_unix(), request_id),
    );
    set_header(resp, "cache-control", "no-cache");
    set_header(resp, "pragma", "no-cache");
    let remaining = app.ratelimit_remaining().to_string();
    set_header(resp, quota_header(method), &remaining);
}

/// The `x-ms-ratelimit-remaining-subscription-*` header that counts requests like `method`.
pub fn quota_header(method: &Method) -> &'static str {
    if *method == Method::GET || *method == Method::HEAD {
        "x-ms-ratelimit-remaining-subscription-reads"
    } else if *method == Method::DELETE {
        "x-ms-ratelimit-remaining-subscription-deletes"
    } else {
        "x-ms-ratelimit-remaining-subscription-writes"
    }
}

/// A response without a body.
pub fn empty(status: u16) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r
}
