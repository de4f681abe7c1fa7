//! Long-running operations. A PUT or PATCH of a kind whose writes are long-running in Azure
//! registers an operation that reports `InProgress` for the configured number of polls
//! (`lro_polls`), through either of the two URLs ARM clients follow: `Azure-AsyncOperation`
//! (an operation-status document) and `Location` (202 until done, then the entity).

use super::error::{method_not_allowed, ArmError, ArmResult};
use super::response::{empty, set_header};
use super::{Scope, API_VERSION};
use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::{Operation, State};
use crate::util::{now_rfc3339, short_id};
use axum::body::Body;
use axum::http::{Method, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::json;

/// Characters escaped in URL path segments built from entity names.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Absolute URL of an ARM id on this emulator (segments percent-encoded).
fn id_url(app: &App, id: &str) -> String {
    format!("{}{}", app.url, utf8_percent_encode(id, SEGMENT))
}

/// Registers a long-running operation and returns its `Azure-AsyncOperation`, `Location` and
/// `Retry-After` headers.
pub(super) fn start_operation(
    app: &App,
    st: &mut State,
    scope: &Scope,
    resource_id: &str,
    code: u16,
) -> Vec<(&'static str, String)> {
    let op = short_id();
    st.operations.insert(
        op.clone(),
        Operation {
            resource_id: resource_id.to_string(),
            remaining: st.settings.lro_polls,
            started: now_rfc3339(),
        },
    );
    vec![
        (
            "azure-asyncoperation",
            format!(
                "{}/tenant/operationResults/{op}?api-version={API_VERSION}",
                id_url(app, &scope.service_id)
            ),
        ),
        (
            "location",
            format!(
                "{}?api-version={API_VERSION}&asyncId={op}&asyncCode={code}",
                id_url(app, resource_id)
            ),
        ),
        ("retry-after", st.settings.lro_retry_after.to_string()),
    ]
}

/// A GET on a `Location` URL: 202 while the operation runs, `None` once it is done (the caller
/// then answers with the entity).
pub(super) fn poll_location(app: &App, op: &str) -> Option<Response<Body>> {
    let mut st = lock(&app.state);
    let retry = st.settings.lro_retry_after;
    let o = st.operations.get_mut(op)?;
    if o.remaining == 0 {
        return None;
    }
    o.remaining -= 1;
    app.persist(&st);
    let mut resp = empty(202);
    set_header(&mut resp, "retry-after", &retry.to_string());
    Some(resp)
}

/// A GET on an `Azure-AsyncOperation` URL (`{service}/tenant/operationResults/{op}`).
pub(super) fn operation_status(app: &App, req: &Req, scope: &Scope, op: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let mut st = lock(&app.state);
    let retry = st.settings.lro_retry_after;
    let Some(o) = st.operations.get_mut(op) else {
        return Err(ArmError::not_found("Operation not found."));
    };
    let id = format!("{}/tenant/operationResults/{op}", scope.service_id);
    let body = if o.remaining > 0 {
        o.remaining -= 1;
        json!({"id": id, "name": op, "status": "InProgress", "startTime": o.started})
    } else {
        json!({"id": id, "name": op, "status": "Succeeded", "startTime": o.started, "endTime": now_rfc3339()})
    };
    app.persist(&st);
    let mut resp = json_response(200, &body);
    if body["status"] == "InProgress" {
        set_header(&mut resp, "retry-after", &retry.to_string());
    }
    Ok(resp)
}
