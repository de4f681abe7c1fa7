//! Save-time checks of a policy or fragment document against the policy table: known policies
//! only, in the sections and places the table allows, as often as it allows, with their
//! attributes and children, and every policy expression compiled. Each problem carries the
//! element and its position, for APIM's `Error in element '...' on line L, column C: ...`.

use super::policies::{find, Attr, ChildSpec, Content, Section, Values};
use crate::gateway::compose::substitute;
use crate::gateway::document::{Child, Node};
use crate::gateway::expr::{compile, is_expression, may_be_bool};
use std::collections::HashMap;

/// One refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The element it is about.
    pub element: String,
    /// Its line.
    pub line: usize,
    /// Its column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// APIM's wording: `Error in element 'x' on line L, column C: message`.
    pub fn text(&self) -> String {
        format!(
            "Error in element '{}' on line {}, column {}: {}",
            self.element, self.line, self.col, self.message
        )
    }
}

/// What a document is and what it may refer to.
pub struct Env<'a> {
    /// `true` for a `<fragment>` document, `false` for a `<policies>` document.
    pub fragment: bool,
    /// The scope of a `<policies>` document (`global`, `api`); none for a fragment.
    pub scope: Option<&'static str>,
    /// The content of a fragment of the instance, parsed (`None` if it does not exist).
    pub fragment_content: &'a dyn Fn(&str) -> Option<Node>,
    /// The value of a named value, by display name.
    pub named_value: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Clone, Copy)]
struct At<'n> {
    section: Option<Section>,
    in_fragment: bool,
    /// The `include-fragment` a statement was inserted by (problems are reported there).
    via: Option<&'n Node>,
}

struct Checker<'a> {
    env: &'a Env<'a>,
    problems: Vec<Problem>,
    per_document: HashMap<&'static str, usize>,
}

/// Checks a document; no problems means APIM would save it.
pub fn check(root: &Node, env: &Env<'_>) -> Vec<Problem> {
    let mut c = Checker {
        env,
        problems: Vec::new(),
        per_document: HashMap::new(),
    };
    let at = At {
        section: None,
        in_fragment: env.fragment,
        via: None,
    };
    if env.fragment {
        c.statements(root, at, &mut HashMap::new());
        return c.problems;
    }
    let mut seen = Vec::new();
    for e in root.elems() {
        match Section::from_name(&e.name) {
            Some(s) if seen.contains(&s) => c.problem(e, at, format!("The element 'policies' has more than one '{}' section.", s.name())),
            Some(s) => {
                seen.push(s);
                if let Some((k, _)) = e.attrs.first() {
                    c.problem(e, at, format!("The '{k}' attribute is not declared."));
                }
                c.statements(e, At { section: Some(s), ..at }, &mut HashMap::new());
            }
            None => c.problem(e, at, format!("The element 'policies' has invalid child element '{}'. List of possible elements expected: 'inbound, backend, outbound, on-error'.", e.name)),
        }
    }
    c.problems
}

impl<'a> Checker<'a> {
    fn problem(&mut self, e: &Node, at: At<'_>, message: String) {
        let (element, line, col, message) = match at.via {
            Some(inc) => (
                inc.name.clone(),
                inc.line,
                inc.col,
                format!(
                    "in policy fragment '{}', element '{}': {message}",
                    inc.attr("fragment-id").unwrap_or_default(),
                    e.name
                ),
            ),
            None => (e.name.clone(), e.line, e.col, message),
        };
        self.problems.push(Problem {
            element,
            line,
            col,
            message,
        });
    }

    fn statements(&mut self, parent: &Node, at: At<'_>, counts: &mut HashMap<&'static str, usize>) {
        if parent.has_text() {
            self.problem(
                parent,
                at,
                format!("The element '{}' cannot contain text.", parent.name),
            );
        }
        for e in parent.elems() {
            self.statement(e, at, counts);
        }
    }

    fn statement(&mut self, e: &Node, at: At<'_>, counts: &mut HashMap<&'static str, usize>) {
        let Some(p) = find(&e.name) else {
            let msg = match Section::from_name(&e.name) {
                Some(_) if at.in_fragment => "A policy fragment can't include a policy section element.".to_string(),
                Some(_) => format!("The '{}' section can only appear directly under 'policies'.", e.name),
                None => format!("'{}' is not a policy the emulator's rules table knows (emulator/README.md lists them); it is refused rather than ignored.", e.name),
            };
            return self.problem(e, at, msg);
        };
        if at.in_fragment && !p.fragment {
            self.problem(e, at, "Policy is not allowed in a policy fragment.".into());
        }
        if let Some(sc) = self.env.scope {
            if !p.scopes.contains(&sc) {
                self.problem(
                    e,
                    at,
                    "Policy section is not allowed in the specified scope".into(),
                );
            }
        }
        if let Some(s) = at.section {
            if !p.sections.contains(&s) {
                self.problem(
                    e,
                    at,
                    format!("Policy is not allowed in '{}' section.", s.name()),
                );
            }
        }
        if p.once_per_section {
            let n = counts.entry(p.name).or_insert(0);
            *n += 1;
            if *n == 2 {
                self.problem(
                    e,
                    at,
                    "This policy can only be used once in a policy section.".into(),
                );
            }
        }
        if p.once_per_document {
            let n = self.per_document.entry(p.name).or_insert(0);
            *n += 1;
            if *n == 2 {
                self.problem(
                    e,
                    at,
                    "This policy can only be used once in a policy document.".into(),
                );
            }
        }
        if !p.implemented {
            self.problem(e, at, format!("The emulator's gateway does not execute '{}' (a documented policy); the policy is refused rather than run differently from APIM.", p.name));
        }
        self.attrs(e, p.attrs, true, at);
        self.content(e, p.content, at, counts);
        if matches!(p.name, "send-request" | "return-response") {
            for c in e.elems() {
                let unsupported = matches!(c.name.as_str(), "authentication-certificate" | "proxy")
                    || (c.name == "set-body" && c.attr("template").is_some());
                if unsupported {
                    self.problem(c, at, format!("The emulator's gateway does not execute '{}' inside '{}'; the policy is refused rather than run differently from APIM.", c.name, e.name));
                }
            }
        }
        match p.name {
            "send-request" if e.attr("mode").is_none_or(|m| m.trim() != "copy") => {
                for needed in ["set-url", "set-method"] {
                    if !e.elems().any(|c| c.name == needed) {
                        self.problem(e, at, format!("The element 'send-request' has incomplete content. List of possible elements expected: '{needed}' (required unless mode=\"copy\")."));
                    }
                }
            }
            "log-to-eventhub"
                if e.attr("partition-id").is_some() && e.attr("partition-key").is_some() =>
            {
                self.problem(
                    e,
                    at,
                    "Only one of 'partition-id' and 'partition-key' may be given.".into(),
                );
            }
            "include-fragment" if !self.env.fragment => {
                let id = e.attr("fragment-id").unwrap_or_default();
                if let Some(content) = (self.env.fragment_content)(id) {
                    let inner = At {
                        in_fragment: true,
                        via: Some(at.via.unwrap_or(e)),
                        ..at
                    };
                    self.statements(&content, inner, counts);
                }
            }
            _ => {}
        }
    }

    fn expression(&mut self, e: &Node, at: At<'_>, src: &str, boolean: bool) {
        let text = substitute(src, self.env.named_value);
        match compile(&text) {
            Ok(c) if boolean && !may_be_bool(c.ty) => self.problem(
                e,
                at,
                format!("Cannot implicitly convert type '{}' to 'bool'", c.ty.name()),
            ),
            Ok(_) => {}
            Err(m) => self.problem(e, at, m),
        }
    }

    fn attrs(&mut self, e: &Node, specs: &[Attr], policy: bool, at: At<'_>) {
        for (k, v) in &e.attrs {
            let Some(spec) = specs.iter().find(|s| s.name == k) else {
                if !(policy && k == "id") {
                    self.problem(e, at, format!("The '{k}' attribute is not declared."));
                }
                continue;
            };
            if is_expression(v) {
                if spec.expr {
                    self.expression(e, at, v, spec.values == Values::Bool);
                } else {
                    self.problem(
                        e,
                        at,
                        format!("Policy expressions are not allowed in attribute '{k}'."),
                    );
                }
                continue;
            }
            let lit = substitute(v, self.env.named_value);
            let ok = match spec.values {
                Values::Any => true,
                Values::Int => lit.trim().parse::<i64>().is_ok(),
                Values::Bool => {
                    matches!(lit.trim().to_ascii_lowercase().as_str(), "true" | "false")
                }
                Values::OneOf(list) => list.contains(&lit.trim()),
            };
            if !ok {
                self.problem(e, at, format!("The '{k}' attribute is invalid - the value '{lit}' is invalid according to its datatype."));
            }
        }
        for s in specs.iter().filter(|s| s.required) {
            if e.attr(s.name).is_none() {
                self.problem(
                    e,
                    at,
                    format!("The required attribute '{}' is missing.", s.name),
                );
            }
        }
    }

    fn content(
        &mut self,
        e: &Node,
        content: Content,
        at: At<'_>,
        counts: &mut HashMap<&'static str, usize>,
    ) {
        match content {
            Content::Empty => {
                if e.has_text() || e.elems().next().is_some() {
                    self.problem(
                        e,
                        at,
                        format!("The element '{}' cannot contain text or elements.", e.name),
                    );
                }
            }
            Content::Text { expr, required } => {
                if let Some(c) = e.elems().next() {
                    self.problem(
                        e,
                        at,
                        format!(
                            "The element '{}' cannot contain child element '{}'.",
                            e.name, c.name
                        ),
                    );
                }
                let text = e.text();
                if is_expression(&text) {
                    if expr {
                        self.expression(e, at, &text, false);
                    } else {
                        self.problem(
                            e,
                            at,
                            format!(
                                "Policy expressions are not allowed in element '{}'.",
                                e.name
                            ),
                        );
                    }
                } else if required && text.trim().is_empty() {
                    self.problem(
                        e,
                        at,
                        format!("The element '{}' must have a value.", e.name),
                    );
                }
            }
            Content::Children(specs) => self.children(e, specs, at, counts),
            Content::Policies => self.statements(e, at, counts),
        }
    }

    fn children(
        &mut self,
        e: &Node,
        specs: &[ChildSpec],
        at: At<'_>,
        counts: &mut HashMap<&'static str, usize>,
    ) {
        let expected = specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ");
        if e.children
            .iter()
            .any(|c| matches!(c, Child::Text(t) if !t.trim().is_empty()))
        {
            self.problem(e, at, format!("The element '{}' cannot contain text. List of possible elements expected: '{expected}'.", e.name));
        }
        let mut seen = vec![0usize; specs.len()];
        let mut last = 0;
        for c in e.elems() {
            let Some(i) = specs.iter().position(|s| s.name == c.name) else {
                self.problem(c, at, format!("The element '{}' has invalid child element '{}'. List of possible elements expected: '{expected}'.", e.name, c.name));
                continue;
            };
            if i < last {
                self.problem(c, at, format!("The element '{}' has its child elements out of order: '{}' must come before '{}'.", e.name, c.name, specs[last].name));
            }
            last = last.max(i);
            seen[i] += 1;
            if seen[i] == specs[i].max.saturating_add(1) {
                self.problem(
                    c,
                    at,
                    format!(
                        "The element '{}' may contain at most {} '{}' element(s).",
                        e.name, specs[i].max, c.name
                    ),
                );
            }
            match specs[i].like.and_then(find) {
                Some(p) => {
                    self.attrs(c, p.attrs, false, at);
                    self.content(c, p.content, at, counts);
                }
                None => {
                    self.attrs(c, specs[i].attrs, false, at);
                    self.content(c, specs[i].content, at, counts);
                }
            }
        }
        for (i, s) in specs.iter().enumerate() {
            if s.required && seen[i] == 0 {
                self.problem(e, at, format!("The element '{}' has incomplete content. List of possible elements expected: '{}'.", e.name, s.name));
            }
        }
    }
}
