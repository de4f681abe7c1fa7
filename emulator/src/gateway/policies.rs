//! The policies the gateway executes (the `implemented` rows of the rules table), one function
//! each; `send-request`, `forward-request` and `authentication-managed-identity`, which make
//! calls, live in `http.rs` and `identity.rs`.

use super::context::{set_pairs, BodyCell, HttpResponse};
use super::document::Node;
use super::expr::eval::truthy;
use super::expr::value::{Ty, Val};
use super::pipeline::{paths, Flow, Fut, Run};
use super::rules::policies::Section;
use super::telemetry::Record;
use std::collections::BTreeMap;
use std::sync::Arc;

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(flow) => return flow,
        }
    };
}
pub(super) use tri;

/// Types `set-variable` may store ("Allowed types" of its page; the emulator's values cover
/// Boolean, Int32, Int64, Double, Char and String of that list).
fn storable(v: &Val) -> bool {
    matches!(
        v.ty(),
        Ty::Bool | Ty::Int | Ty::Long | Ty::Double | Ty::Char | Ty::String | Ty::Null
    )
}

impl Run<'_> {
    /// Runs one policy statement.
    pub fn statement<'b>(&'b mut self, node: &'b Node, path: &'b str) -> Fut<'b> {
        Box::pin(async move {
            match node.name.as_str() {
                "base" => Flow::Next,
                "choose" => self.choose(node, path).await,
                "retry" => self.retry(node, path).await,
                "set-variable" => self.set_variable(node, path),
                "set-header" => self.set_header(node, path, self.section_is_request()),
                "set-query-parameter" => self.set_query(node, path),
                "set-body" => self.set_body(node, path),
                "set-status" => self.set_status(node, path),
                "set-method" => {
                    let m = node.text().trim().to_ascii_uppercase();
                    self.ctx.method = m.clone();
                    self.step("set-method", m);
                    Flow::Next
                }
                "return-response" => self.return_response(node, path),
                "cache-lookup-value" | "cache-store-value" | "cache-remove-value" => {
                    self.cache(node, path)
                }
                "authentication-managed-identity" => self.managed_identity(node, path).await,
                "send-request" => self.send_request(node, path).await,
                "forward-request" => self.forward_request(node, path).await,
                "trace" | "emit-metric" | "log-to-eventhub" => self.record(node, path),
                other => {
                    let msg = match other {
                        "include-fragment" => "The policy fragment could not be included (it does not exist, or is nested in another fragment).".to_string(),
                        _ => format!("The emulator's gateway does not execute '{other}'."),
                    };
                    self.fail(node, path, "PolicyNotSupported", msg)
                }
            }
        })
    }

    /// Whether set-header/set-body act on the request (inbound, backend) or the response.
    fn section_is_request(&self) -> bool {
        matches!(self.section, Section::Inbound | Section::Backend)
    }

    /// A boolean attribute (`condition`, `first-fast-retry`): a literal or an expression.
    fn flag(&mut self, node: &Node, path: &str, name: &str, default: &str) -> Result<bool, Flow> {
        let v = self.value(node, path, node.attr(name).unwrap_or(default))?;
        match v {
            Val::Str(s) => Ok(s.trim().eq_ignore_ascii_case("true")),
            v => truthy(&v).map_err(|e| {
                self.fail(
                    node,
                    path,
                    "ExpressionValueEvaluationFailure",
                    format!("Expression evaluation failed. {}", e.message),
                )
            }),
        }
    }

    async fn choose(&mut self, node: &Node, path: &str) -> Flow {
        let kids: Vec<&Node> = node.elems().collect();
        let kid_paths = paths(path, &kids);
        for (k, kp) in kids.into_iter().zip(kid_paths) {
            let take = match k.name.as_str() {
                "when" => tri!(self.flag(k, &kp, "condition", "false")),
                _ => true,
            };
            if take {
                self.step(
                    "choose",
                    format!("{} taken", kp.rsplit('/').next().unwrap_or_default()),
                );
                return self.block(k, &kp).await;
            }
        }
        self.step("choose", "no branch taken".into());
        Flow::Next
    }

    /// `retry`: the children once, then again while `condition` is true, at most `count`
    /// (1 to 50) more times, waiting `interval` seconds between attempts (growing by `delta`:
    /// linearly, or exponentially up to `max-interval` when that is set; the docs' random
    /// factor of 0.8 to 1.2 on `delta` is left out), the first retry at once with
    /// `first-fast-retry`. The condition is evaluated after each run of the children.
    async fn retry(&mut self, node: &Node, path: &str) -> Flow {
        let count = tri!(self.attr_int(node, path, "count", 0));
        if !(1..=50).contains(&count) {
            return self.fail(
                node,
                path,
                "ExpressionValueEvaluationFailure",
                format!("retry: 'count' is {count}; it must be between 1 and 50."),
            );
        }
        let interval = tri!(self.attr_int(node, path, "interval", 0));
        if interval < 1 {
            return self.fail(
                node,
                path,
                "ExpressionValueEvaluationFailure",
                format!(
                    "retry: 'interval' is {interval}; it must be a positive number of seconds."
                ),
            );
        }
        let delta = tri!(self.attr_int(node, path, "delta", 0));
        let max = tri!(self.attr_int(node, path, "max-interval", 0));
        let fast = tri!(self.flag(node, path, "first-fast-retry", "false"));
        let mut flow = self.block(node, path).await;
        let mut attempt: i64 = 0;
        while matches!(flow, Flow::Next) && attempt < count {
            if !tri!(self.flag(node, path, "condition", "false")) {
                break;
            }
            attempt += 1;
            let wait = if attempt == 1 && fast {
                0
            } else if max > 0 && delta > 0 {
                let growth = 1_i64 << (attempt - 1).min(30);
                (interval + growth * delta).min(max)
            } else {
                interval + (attempt - 1) * delta
            };
            self.step(
                "retry",
                format!("attempt {attempt} of {count} after {wait} s"),
            );
            if wait > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(wait.unsigned_abs())).await;
            }
            flow = self.block(node, path).await;
        }
        flow
    }

    fn set_variable(&mut self, node: &Node, path: &str) -> Flow {
        let name = node.attr("name").unwrap_or_default().to_string();
        let v = tri!(self.value(node, path, node.attr("value").unwrap_or_default()));
        if !storable(&v) {
            return self.fail(node, path, "ExpressionValueEvaluationFailure", format!("set-variable: a value of type '{}' is not one of the types a variable may hold.", v.ty().name()));
        }
        self.step("set-variable", format!("'{name}' set ({})", v.ty().name()));
        self.ctx.variables.insert(name, v);
        Flow::Next
    }

    /// The name, action and values of a set-header / set-query-parameter element.
    pub(super) fn pairs_of(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Result<(String, String, Vec<String>), Flow> {
        let name = self.attr_text(node, path, "name", "")?;
        let action = self
            .attr_text(node, path, "exists-action", "override")?
            .trim()
            .to_ascii_lowercase();
        let mut values = Vec::new();
        for v in node.elems().filter(|e| e.name == "value") {
            values.push(self.text(node, path, &v.text())?);
        }
        Ok((name, action, values))
    }

    /// `set-header` on the request (inbound, backend) or the response, or on `target`.
    pub fn set_header(&mut self, node: &Node, path: &str, request: bool) -> Flow {
        let (name, action, values) = tri!(self.pairs_of(node, path));
        let fixed = [
            "connection",
            "content-length",
            "keep-alive",
            "transfer-encoding",
            "server",
        ];
        if fixed.contains(&name.to_ascii_lowercase().as_str()) {
            self.step(
                "set-header",
                format!("'{name}' cannot be modified; left as is"),
            );
            return Flow::Next;
        }
        let target = if request {
            &mut self.ctx.req_headers
        } else {
            &mut self.ctx.resp_headers
        };
        set_pairs(target, &name, &action, values);
        self.step("set-header", format!("'{name}' {action}"));
        Flow::Next
    }

    fn set_query(&mut self, node: &Node, path: &str) -> Flow {
        let (name, action, values) = tri!(self.pairs_of(node, path));
        set_pairs(&mut self.ctx.url.query, &name, &action, values);
        self.step("set-query-parameter", format!("'{name}' {action}"));
        Flow::Next
    }

    fn body_text(&mut self, node: &Node, path: &str) -> Result<String, Flow> {
        if node.attr("template").is_some() {
            return Err(self.fail(
                node,
                path,
                "PolicyNotSupported",
                "Liquid templates are not executed by the emulator.".into(),
            ));
        }
        let raw = node.text();
        self.text(node, path, &raw)
    }

    fn set_body(&mut self, node: &Node, path: &str) -> Flow {
        let body = tri!(self.body_text(node, path));
        let cell = BodyCell::new(body.into_bytes());
        if self.section_is_request() {
            self.ctx.req_body = cell;
        } else {
            self.ctx.resp_body = cell;
        }
        self.step("set-body", "body set".into());
        Flow::Next
    }

    fn status_of(&mut self, node: &Node, path: &str) -> Result<(u16, String), Flow> {
        let code = self.attr_int(node, path, "code", 200)?;
        let Ok(code) = u16::try_from(code).map(|c| c.clamp(100, 599)) else {
            return Err(self.fail(
                node,
                path,
                "ExpressionValueEvaluationFailure",
                format!("{code} is not an HTTP status code."),
            ));
        };
        let reason = self.attr_text(node, path, "reason", "")?;
        Ok((code, reason))
    }

    fn set_status(&mut self, node: &Node, path: &str) -> Flow {
        let (code, reason) = tri!(self.status_of(node, path));
        self.ctx.status = code;
        self.ctx.reason = reason;
        self.step("set-status", code.to_string());
        Flow::Next
    }

    fn return_response(&mut self, node: &Node, path: &str) -> Flow {
        let base = match node.attr("response-variable-name") {
            Some(var) => match self.ctx.variables.get(var) {
                Some(Val::Response(r)) => Some(r.clone()),
                _ => {
                    return self.fail(
                        node,
                        path,
                        "ExpressionValueEvaluationFailure",
                        format!("The variable '{var}' does not hold a response."),
                    )
                }
            },
            None => None,
        };
        let resp = base.unwrap_or_else(|| {
            Arc::new(HttpResponse {
                status: 200,
                reason: "OK".into(),
                headers: Vec::new(),
                body: BodyCell::new(Vec::new()),
            })
        });
        self.ctx.status = resp.status;
        self.ctx.reason = resp.reason.clone();
        self.ctx.resp_headers = resp.headers.clone();
        self.ctx.resp_body = BodyCell::new(resp.body.peek());
        for c in node.elems() {
            let flow = match c.name.as_str() {
                "set-status" => self.set_status(c, path),
                "set-header" => self.set_header(c, path, false),
                "set-body" => match self.body_text(c, path) {
                    Ok(b) => {
                        self.ctx.resp_body = BodyCell::new(b.into_bytes());
                        Flow::Next
                    }
                    Err(f) => f,
                },
                _ => Flow::Next,
            };
            if !matches!(flow, Flow::Next) {
                return flow;
            }
        }
        self.step("return-response", format!("answered {}", self.ctx.status));
        Flow::Return
    }

    fn cache(&mut self, node: &Node, path: &str) -> Flow {
        let key = tri!(self.attr_text(node, path, "key", ""));
        let kind = node.attr("caching-type").unwrap_or("prefer-external");
        // No external cache is configured: "external" finds nothing and stores nothing,
        // "prefer-external" falls back to the internal cache.
        let external = kind == "external";
        let app = self.app;
        let cache = &app.gateway.cache;
        match node.name.as_str() {
            "cache-lookup-value" => {
                let var = node.attr("variable-name").unwrap_or_default().to_string();
                let hit = if external {
                    None
                } else {
                    cache.lookup(&self.service_key, &key)
                };
                let outcome = match (hit, node.attr("default-value")) {
                    (Some(v), _) => {
                        self.ctx.variables.insert(var, v);
                        "cache hit"
                    }
                    (None, Some(d)) => {
                        let v = tri!(self.value(node, path, d));
                        self.ctx.variables.insert(var, v);
                        "cache miss (default value)"
                    }
                    (None, None) => "cache miss",
                };
                let note = if external {
                    " (no external cache configured)"
                } else {
                    ""
                };
                self.step(
                    "cache-lookup-value",
                    format!("{outcome} for key '{key}'{note}"),
                );
            }
            "cache-store-value" => {
                let v = tri!(self.value(node, path, node.attr("value").unwrap_or_default()));
                let secs = tri!(self.attr_int(node, path, "duration", 0));
                if external {
                    self.step(
                        "cache-store-value",
                        format!("not stored (no external cache configured) for key '{key}'"),
                    );
                } else {
                    cache.store(&self.service_key, &key, v, secs);
                    self.step(
                        "cache-store-value",
                        format!("stored for {secs} s under key '{key}'"),
                    );
                }
            }
            _ => {
                if !external {
                    cache.remove(&self.service_key, &key);
                }
                self.step("cache-remove-value", format!("removed key '{key}'"));
            }
        }
        Flow::Next
    }

    /// The `value` attributes of `node`'s `child` elements by their `name`, evaluated.
    fn named_values(
        &mut self,
        node: &Node,
        path: &str,
        child: &str,
    ) -> Result<BTreeMap<String, String>, Flow> {
        let mut out = BTreeMap::new();
        for c in node.elems().filter(|e| e.name == child) {
            let name = c.attr("name").unwrap_or_default().to_string();
            let value = self.attr_text(c, path, "value", "")?;
            out.insert(name, value);
        }
        Ok(out)
    }

    /// `trace`, `emit-metric`, `log-to-eventhub`: recorded in the request log without their
    /// content (it may carry secrets): only what it is made of; and, with their content, in
    /// the telemetry an operator would read (`telemetry.rs`).
    fn record(&mut self, node: &Node, path: &str) -> Flow {
        let time = crate::util::now_rfc3339();
        let api = self.ctx.matched.api_id.clone();
        let (outcome, record) = match node.name.as_str() {
            "trace" => {
                let msg = node
                    .elems()
                    .find(|e| e.name == "message")
                    .map(|m| m.text())
                    .unwrap_or_default();
                let text = tri!(self.text(node, path, &msg));
                let metadata = tri!(self.named_values(node, path, "metadata"));
                let source = node.attr("source").unwrap_or_default().to_string();
                let severity = node.attr("severity").unwrap_or("verbose").to_string();
                let outcome = format!(
                    "trace from '{source}' ({severity}), message of {} characters, metadata [{}]",
                    text.chars().count(),
                    metadata.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                let r = Record::Trace {
                    time,
                    api,
                    source,
                    severity,
                    message: text,
                    metadata,
                };
                (outcome, r)
            }
            "emit-metric" => {
                let value = tri!(self.attr_text(node, path, "value", "1"));
                let dimensions = tri!(self.named_values(node, path, "dimension"));
                let name = node.attr("name").unwrap_or_default().to_string();
                let namespace = node
                    .attr("namespace")
                    .unwrap_or("API Management")
                    .to_string();
                let outcome = format!(
                    "metric '{name}' in '{namespace}' = {value}, dimensions [{}]",
                    dimensions.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                let r = Record::Metric {
                    time,
                    api,
                    name,
                    namespace,
                    value,
                    dimensions,
                };
                (outcome, r)
            }
            _ => {
                let text = tri!(self.text(node, path, &node.text()));
                let logger_id = node.attr("logger-id").unwrap_or_default().to_string();
                let outcome = format!(
                    "event of {} characters for logger '{logger_id}'",
                    text.chars().count()
                );
                let r = Record::Event {
                    time,
                    api,
                    logger_id,
                    message: text,
                };
                (outcome, r)
            }
        };
        self.app.gateway.telemetry.push(record);
        self.step(&node.name, outcome);
        Flow::Next
    }
}
