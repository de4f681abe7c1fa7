//! One request through the gateway: the instance (the `Host` header's `{name}.azure-api.net`,
//! else the default instance), the API (by path), the operation (by method and URL template,
//! when the API has operations), the subscription key (header `Ocp-Apim-Subscription-Key` or
//! query `subscription-key`, removed before forwarding) and the product it is scoped to, the
//! pipeline, the answer and the log entry.

use super::context::{Ctx, LastError, Matched, Url};
use super::instance::{effective_policy, match_api};
use super::log::{Entry, ErrorSummary};
use super::pipeline::Run;
use super::rules::policies::Section;
use super::scopes::{in_protected_product, match_operation, product_info, OperationMatch};
use crate::arm::subscription::find_by_key;
use crate::faults::lock;
use crate::server::App;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const MAX_BODY: usize = 8 * 1024 * 1024;
const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
const KEY_QUERY: &str = "subscription-key";

fn answer(status: u16, headers: &[(String, String)], body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(name, value);
        }
    }
    resp
}

fn json_answer(status: u16, message: &str) -> Response<Body> {
    let body = json!({"statusCode": status, "message": message})
        .to_string()
        .into_bytes();
    answer(
        status,
        &[("Content-Type".into(), "application/json".into())],
        body,
    )
}

/// The instance a request is for: `{name}.azure-api.net` in `Host`, else the default one.
fn instance_for(app: &App, host: Option<&str>) -> Option<(String, String, String, String)> {
    let st = lock(&app.state);
    let wanted = host
        .and_then(|h| h.split(':').next())
        .and_then(|h| h.strip_suffix(".azure-api.net"));
    let svc = match wanted {
        Some(name) => st
            .services
            .values()
            .find(|s| s.name.eq_ignore_ascii_case(name)),
        None => st
            .services
            .get(&st.defaults.api_management_id.to_ascii_lowercase()),
    }?;
    Some((
        svc.id.to_ascii_lowercase(),
        svc.id.clone(),
        svc.name.clone(),
        svc.location.clone(),
    ))
}

/// Serves one gateway request.
pub async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
    https: bool,
) -> Response<Body> {
    let started = Instant::now();
    let mut entry = Entry {
        time: crate::util::now_rfc3339(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        instance: String::new(),
        api: None,
        subscription: None,
        product: None,
        operation: None,
        scopes: Vec::new(),
        status: 0,
        duration_ms: 0,
        steps: Vec::new(),
        error: None,
    };
    let resp = serve(&app, peer, req, https, &mut entry).await;
    entry.status = resp.status().as_u16();
    entry.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    eprintln!(
        "apim-emulator: gateway {} {} -> {}",
        entry.method, entry.path, entry.status
    );
    app.gateway.log.push(entry);
    resp
}

async fn serve(
    app: &App,
    peer: SocketAddr,
    req: hyper::Request<hyper::body::Incoming>,
    https: bool,
    entry: &mut Entry,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
        return json_answer(413, "Request entity too large");
    };
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let host = parts
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let Some((service_key, service_id, name, region)) = instance_for(app, host.as_deref()) else {
        return json_answer(404, "Resource not found");
    };
    entry.instance = name.clone();
    let gateway_base = if https {
        &app.gateway.https_url
    } else {
        &app.gateway.url
    };
    let received = format!(
        "{gateway_base}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let Ok(mut original) = Url::parse(&received) else {
        return json_answer(400, "Bad request");
    };
    if let Some(h) = &host {
        original.host = h.split(':').next().unwrap_or(h).to_string();
    }
    let key = super::context::joined(&headers, KEY_HEADER).or_else(|| {
        original
            .query
            .iter()
            .find(|(k, _)| k == KEY_QUERY)
            .map(|(_, v)| v.clone())
    });
    let method = parts.method.to_string();
    // What the store says, under its lock: the API, the operation, the subscription (and its
    // product), the effective policy.
    let (api, op, sub, product, (sections, scopes), key_required) = {
        let st = lock(&app.state);
        let Some(api) = match_api(&st, &service_key, &original.path) else {
            return json_answer(404, "Resource not found");
        };
        let op = match match_operation(&st, &api.id, &method, &api.rest) {
            OperationMatch::NoOperations => None,
            OperationMatch::Matched(op) => Some(op),
            OperationMatch::NoneMatched => return json_answer(404, "Resource not found"),
        };
        let (sub, product) = match key
            .as_deref()
            .and_then(|k| find_by_key(&st, &service_key, k, &api.name))
        {
            Some((s, p)) => (Some(s), p.and_then(|p| product_info(&st, &service_id, &p))),
            None => (None, None),
        };
        let key_required = api.subscription_required
            || in_protected_product(&st, &service_key, &service_id, &api.name);
        let sections = effective_policy(
            &st,
            &service_key,
            &service_id,
            product.as_ref().map(|p| p.0.as_str()),
            &api.id,
            op.as_ref().map(|o| o.id.as_str()),
        );
        (api, op, sub, product, sections, key_required)
    };
    entry.api = Some(api.name.clone());
    entry.subscription = sub.as_ref().map(|s| s[0].clone());
    entry.product = product.as_ref().map(|p| p.1.clone());
    entry.operation = op.as_ref().map(|o| o.name.clone());
    entry.scopes = scopes.iter().map(|s| (*s).to_string()).collect();
    // APIM does not pass the subscription key on to the backend.
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(KEY_HEADER));
    let mut url = match &api.service_url {
        Some(base) if api.rest.is_empty() => Url::parse(base).unwrap_or_else(|_| original.clone()),
        Some(base) => Url::parse(&format!("{}/{}", base.trim_end_matches('/'), api.rest))
            .unwrap_or_else(|_| original.clone()),
        None => original.clone(),
    };
    url.query = original
        .query
        .iter()
        .filter(|(k, _)| k != KEY_QUERY)
        .cloned()
        .collect();
    let matched = Matched {
        service_name: name,
        region,
        api_id: api.name.clone(),
        api_name: api.display.clone(),
        api_path: api.path.clone(),
        subscription: sub.as_ref().map(|s| {
            [
                s[0].clone(),
                s[1].clone(),
                key.clone().unwrap_or_default(),
                s[2].clone(),
                s[3].clone(),
            ]
        }),
        product: product.as_ref().map(|p| [p.1.clone(), p.2.clone()]),
        operation: op.as_ref().map(|o| {
            [
                o.name.clone(),
                o.display.clone(),
                o.method.clone(),
                o.template.clone(),
            ]
        }),
    };
    let mut ctx = Ctx::new(
        &method,
        original,
        headers,
        body.to_vec(),
        peer.ip().to_string(),
        matched,
    );
    ctx.url = url;
    let mut run = Run {
        app,
        service_key,
        ctx,
        steps: Vec::new(),
        section: Section::Inbound,
        scope: "global",
        has_backend: api.service_url.is_some(),
    };
    let error = if key_required && sub.is_none() {
        // A built-in step fails: on-error runs with the 401 preset.
        let (reason, message) = match key {
            None => ("SubscriptionKeyNotFound", "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."),
            Some(_) => ("SubscriptionKeyInvalid", "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."),
        };
        let err = LastError {
            source: "authorization".into(),
            reason: reason.into(),
            message: message.into(),
            section: "inbound".into(),
            ..LastError::default()
        };
        run.on_error(err.clone(), 401, "Access Denied", &sections[3])
            .await;
        run.ctx.resp_headers.push(("WWW-Authenticate".into(), format!("AzureApiManagementKey realm=\"{gateway_base}/{}\",name=\"{KEY_HEADER}\",type=\"header\"", api.path)));
        Some(err)
    } else {
        run.execute(&sections).await
    };
    entry.steps = std::mem::take(&mut run.steps);
    entry.error = error.map(|e| ErrorSummary {
        source: e.source,
        reason: e.reason,
        message: e.message,
        section: e.section,
        path: e.path,
    });
    answer(
        run.ctx.status,
        &run.ctx.resp_headers,
        run.ctx.resp_body.peek(),
    )
}
