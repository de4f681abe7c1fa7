//! Running the effective policy: inbound, backend, outbound in order; `return-response` ends
//! the pipeline; a run-time failure jumps to on-error with `context.LastError` set, the response
//! preset to APIM's 500 (or the built-in step's answer), for on-error to change.

use super::compose::{Sections, Stmt};
use super::context::{BodyCell, Ctx, LastError};
use super::document::Node;
use super::expr::{self, value::Val};
use super::log::Step;
use super::rules::policies::Section;
use crate::server::App;
use std::future::Future;
use std::pin::Pin;

/// How a statement ended.
#[derive(Debug)]
pub enum Flow {
    /// Go on with the next statement.
    Next,
    /// `return-response`: answer with the context's response now.
    Return,
    /// A run-time error: go to on-error.
    Fail(Box<LastError>),
}

/// A boxed future (policy statements nest, so execution recurses).
pub type Fut<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

/// One request's run through the pipeline.
pub struct Run<'a> {
    /// The emulator.
    pub app: &'a App,
    /// Lower-cased id of the instance.
    pub service_key: String,
    /// The request context.
    pub ctx: Ctx,
    /// Steps for the log.
    pub steps: Vec<Step>,
    /// The section running.
    pub section: Section,
    /// The scope of the statement running.
    pub scope: &'static str,
    /// Whether the API has a `serviceUrl` to forward to.
    pub has_backend: bool,
}

/// The `{name}[n]` path of each node of a list (n counts same-named siblings from 1).
pub fn paths(prefix: &str, nodes: &[&Node]) -> Vec<String> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    nodes
        .iter()
        .map(|n| {
            let k = match seen.iter_mut().find(|(name, _)| *name == n.name) {
                Some(e) => {
                    e.1 += 1;
                    e.1
                }
                None => {
                    seen.push((&n.name, 1));
                    1
                }
            };
            if prefix.is_empty() {
                format!("{}[{k}]", n.name)
            } else {
                format!("{prefix}/{}[{k}]", n.name)
            }
        })
        .collect()
}

impl<'a> Run<'a> {
    /// Runs inbound, backend and outbound, then on-error if one of them failed. Returns the
    /// error handled, if any.
    pub async fn execute(&mut self, sections: &Sections) -> Option<LastError> {
        let mut flow = Flow::Next;
        for (i, s) in [Section::Inbound, Section::Backend, Section::Outbound]
            .into_iter()
            .enumerate()
        {
            flow = self.section(s, &sections[i]).await;
            if !matches!(flow, Flow::Next) {
                break;
            }
        }
        match flow {
            Flow::Fail(e) => {
                self.on_error(*e.clone(), 500, "Internal Server Error", &sections[3])
                    .await;
                Some(*e)
            }
            _ => None,
        }
    }

    /// Sets `context.LastError`, presets the response and runs on-error. A failure inside
    /// on-error answers the preset response.
    pub async fn on_error(&mut self, err: LastError, status: u16, reason: &str, stmts: &[Stmt]) {
        self.ctx.status = status;
        self.ctx.reason = reason.to_string();
        self.ctx.resp_headers = vec![("Content-Type".into(), "application/json".into())];
        let message = if status == 500 {
            "Internal server error"
        } else {
            err.message.as_str()
        };
        let body = serde_json::json!({"statusCode": status, "message": message, "activityId": crate::util::uuid()});
        self.ctx.resp_body = BodyCell::new(body.to_string().into_bytes());
        self.ctx.last_error = Some(err);
        if let Flow::Fail(e) = self.section(Section::OnError, stmts).await {
            self.step("on-error", format!("failed: {} ({})", e.reason, e.source));
        }
    }

    async fn section(&mut self, s: Section, stmts: &[Stmt]) -> Flow {
        self.section = s;
        let nodes: Vec<&Node> = stmts.iter().map(|st| &st.node).collect();
        let paths = paths("", &nodes);
        for (st, path) in stmts.iter().zip(paths) {
            self.scope = st.scope;
            let flow = self.statement(&st.node, &path).await;
            if !matches!(flow, Flow::Next) {
                return flow;
            }
        }
        Flow::Next
    }

    /// Runs nested statements (`when`, `otherwise`).
    pub fn block<'b>(&'b mut self, parent: &'b Node, prefix: &'b str) -> Fut<'b> {
        Box::pin(async move {
            let nodes: Vec<&Node> = parent.elems().collect();
            let paths = paths(prefix, &nodes);
            for (n, path) in nodes.into_iter().zip(paths) {
                let flow = self.statement(n, &path).await;
                if !matches!(flow, Flow::Next) {
                    return flow;
                }
            }
            Flow::Next
        })
    }

    /// Records a step's outcome.
    pub fn step(&mut self, policy: &str, outcome: String) {
        self.steps.push(Step {
            policy: policy.to_string(),
            section: self.section.name().to_string(),
            scope: self.scope.to_string(),
            outcome,
        });
    }

    /// A run-time failure of `node` (also logged as a step).
    pub fn fail(&mut self, node: &Node, path: &str, reason: &str, message: String) -> Flow {
        self.fail_with(node, path, reason, message, format!("failed: {reason}"))
    }

    /// A run-time failure of `node`, logged as a step with this outcome.
    pub fn fail_with(
        &mut self,
        node: &Node,
        path: &str,
        reason: &str,
        message: String,
        outcome: String,
    ) -> Flow {
        self.step(&node.name, outcome);
        Flow::Fail(Box::new(LastError {
            source: node.name.clone(),
            reason: reason.to_string(),
            message,
            scope: self.scope.to_string(),
            section: self.section.name().to_string(),
            path: path.to_string(),
            policy_id: node.attr("id").unwrap_or_default().to_string(),
        }))
    }

    /// The value of an attribute or text: a policy expression's result, or the literal text.
    pub fn value(&mut self, node: &Node, path: &str, raw: &str) -> Result<Val, Flow> {
        if !expr::is_expression(raw) {
            return Ok(Val::Str(raw.to_string()));
        }
        let compiled = expr::compile(raw).map_err(|m| {
            self.fail(
                node,
                path,
                "ExpressionValueEvaluationFailure",
                format!("Expression compilation failed: {m}"),
            )
        })?;
        expr::run(&compiled, &self.ctx).map_err(|e| {
            self.fail(
                node,
                path,
                "ExpressionValueEvaluationFailure",
                format!("Expression evaluation failed. {}", e.message),
            )
        })
    }

    /// `value` as text (`null` is "").
    pub fn text(&mut self, node: &Node, path: &str, raw: &str) -> Result<String, Flow> {
        Ok(self.value(node, path, raw)?.to_text())
    }

    /// An attribute's value as text, or `default` when absent.
    pub fn attr_text(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        default: &str,
    ) -> Result<String, Flow> {
        match node.attr(name) {
            Some(raw) => self.text(node, path, raw),
            None => Ok(default.to_string()),
        }
    }

    /// An integer attribute (`timeout`, `duration`, `code`).
    pub fn attr_int(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        default: i64,
    ) -> Result<i64, Flow> {
        let v = match node.attr(name) {
            Some(raw) => self.value(node, path, raw)?,
            None => return Ok(default),
        };
        match v {
            Val::Int(i) => Ok(i64::from(i)),
            Val::Long(i) => Ok(i),
            other => other.to_text().trim().parse::<i64>().map_err(|_| {
                self.fail(
                    node,
                    path,
                    "ExpressionValueEvaluationFailure",
                    format!("The value of '{name}' is not an integer."),
                )
            }),
        }
    }

    /// A literal boolean attribute.
    pub fn attr_bool(
        &mut self,
        node: &Node,
        path: &str,
        name: &str,
        default: bool,
    ) -> Result<bool, Flow> {
        match node.attr(name) {
            None => Ok(default),
            Some(_) => match self
                .attr_text(node, path, name, "")?
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.fail(
                    node,
                    path,
                    "ExpressionValueEvaluationFailure",
                    format!("The value of '{name}' is not a boolean."),
                )),
            },
        }
    }
}
