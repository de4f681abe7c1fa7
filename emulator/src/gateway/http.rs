//! The HTTP calls policies make: `send-request` (a new request, or a copy of the current one,
//! into a response variable) and `forward-request` (the request to the API's backend, whose
//! answer becomes the response). Failures are `Timeout` or `BackendConnectionFailure`, as in
//! APIM's table of predefined errors.

use super::context::{BodyCell, HttpResponse, Url};
use super::document::Node;
use super::expr::value::Val;
use super::pipeline::{Flow, Run};
use super::policies::tri;
use std::sync::Arc;
use std::time::Duration;

/// Headers that belong to one connection and are never passed on.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// A request about to be sent.
pub struct Outgoing {
    /// Method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// The URL without its query string, for the log.
pub fn loggable(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

/// Sends `o`; `Err((reason, message))` when no response arrived in time.
pub async fn call(
    client: &reqwest::Client,
    o: Outgoing,
    timeout: Duration,
) -> Result<HttpResponse, (&'static str, String)> {
    let method = reqwest::Method::from_bytes(o.method.as_bytes()).map_err(|_| {
        (
            "BackendConnectionFailure",
            format!("'{}' is not an HTTP method", o.method),
        )
    })?;
    Url::parse(&o.url).map_err(|m| ("BackendConnectionFailure", m))?;
    let mut rb = client.request(method, &o.url).timeout(timeout);
    for (k, v) in &o.headers {
        if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
    }
    if !o.body.is_empty() {
        rb = rb.body(o.body);
    }
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            (
                "Timeout",
                format!(
                    "Request to '{}' timed out after {} s.",
                    loggable(&o.url),
                    timeout.as_secs()
                ),
            )
        } else {
            (
                "BackendConnectionFailure",
                format!(
                    "Error occurred while calling '{}': the connection failed.",
                    loggable(&o.url)
                ),
            )
        }
    };
    let resp = rb.send().await.map_err(classify)?;
    let status = resp.status();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp.bytes().await.map_err(classify)?;
    Ok(HttpResponse {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or_default().to_string(),
        headers,
        body: BodyCell::new(body.to_vec()),
    })
}

impl Run<'_> {
    pub(super) async fn send_request(&mut self, node: &Node, path: &str) -> Flow {
        let var = node
            .attr("response-variable-name")
            .unwrap_or_default()
            .to_string();
        let mode = tri!(self.attr_text(node, path, "mode", "new"))
            .trim()
            .to_ascii_lowercase();
        let timeout = tri!(self.attr_int(node, path, "timeout", 60)).max(0);
        let ignore = tri!(self.attr_bool(node, path, "ignore-error", false));
        let mut out = if mode == "copy" {
            Outgoing {
                method: self.ctx.method.clone(),
                url: self.ctx.url.full(),
                headers: self.ctx.req_headers.clone(),
                body: self.ctx.req_body.peek(),
            }
        } else {
            Outgoing {
                method: "GET".into(),
                url: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            }
        };
        for c in node.elems() {
            match c.name.as_str() {
                "set-url" => out.url = tri!(self.text(c, path, &c.text())).trim().to_string(),
                "set-method" => out.method = c.text().trim().to_ascii_uppercase(),
                "set-header" => {
                    let (name, action, values) = tri!(self.pairs_of(c, path));
                    super::context::set_pairs(&mut out.headers, &name, &action, values);
                }
                "set-body" => out.body = tri!(self.text(c, path, &c.text())).into_bytes(),
                "authentication-managed-identity" => {
                    if let Some(t) = tri!(self.token_for(c, path).await) {
                        super::context::set_pairs(
                            &mut out.headers,
                            "Authorization",
                            "override",
                            vec![format!("Bearer {t}")],
                        );
                    }
                }
                other => {
                    return self.fail(
                        node,
                        path,
                        "PolicyNotSupported",
                        format!(
                            "The emulator's gateway does not execute send-request's '{other}'."
                        ),
                    )
                }
            }
        }
        let what = format!("{} {}", out.method, loggable(&out.url));
        let secs = u64::try_from(timeout).unwrap_or(60);
        match call(&self.app.gateway.client, out, Duration::from_secs(secs)).await {
            Ok(resp) => {
                self.step("send-request", format!("{what} -> {}", resp.status));
                self.ctx
                    .variables
                    .insert(var, Val::Response(Arc::new(resp)));
                Flow::Next
            }
            Err((reason, _)) if ignore => {
                self.step("send-request", format!("{what} failed ({reason}); ignored"));
                self.ctx.variables.insert(var, Val::Null);
                Flow::Next
            }
            Err((reason, message)) => self.fail_with(
                node,
                path,
                reason,
                message,
                format!("{what} failed ({reason})"),
            ),
        }
    }

    pub(super) async fn forward_request(&mut self, node: &Node, path: &str) -> Flow {
        let timeout = tri!(self.attr_int(node, path, "timeout", 300)).max(0);
        let follow = tri!(self.attr_bool(node, path, "follow-redirects", false));
        let fail_on_error = tri!(self.attr_bool(node, path, "fail-on-error-status-code", false));
        if !self.has_backend {
            return self.fail(
                node,
                path,
                "BackendConnectionFailure",
                "The API has no serviceUrl to forward the request to.".into(),
            );
        }
        let out = Outgoing {
            method: self.ctx.method.clone(),
            url: self.ctx.url.full(),
            headers: self.ctx.req_headers.clone(),
            body: self.ctx.req_body.peek(),
        };
        let what = format!("{} {}", out.method, loggable(&out.url));
        let gw = &self.app.gateway;
        let client = if follow {
            &gw.client_follow
        } else {
            &gw.client
        };
        match call(
            client,
            out,
            Duration::from_secs(u64::try_from(timeout).unwrap_or(300)),
        )
        .await
        {
            Ok(resp) => {
                self.step("forward-request", format!("{what} -> {}", resp.status));
                self.ctx.status = resp.status;
                self.ctx.reason = resp.reason;
                self.ctx.resp_headers = resp.headers;
                self.ctx.resp_body = resp.body;
                if fail_on_error && self.ctx.status >= 400 {
                    return self.fail(
                        node,
                        path,
                        "BackendError",
                        format!("The backend answered {}.", self.ctx.status),
                    );
                }
                Flow::Next
            }
            Err((reason, message)) => self.fail_with(
                node,
                path,
                reason,
                message,
                format!("{what} failed ({reason})"),
            ),
        }
    }
}
