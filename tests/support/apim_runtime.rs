//! An executor of APIM policy fragments, for tests: it runs a rendered fragment (`rawxml`)
//! for one incoming request the way the APIM gateway would, with real HTTP calls to the
//! managed-identity endpoint (the project's emulator) and to Vault/OpenBao.
//!
//! * [`Gateway`]: the fragment after `{{named value}}` substitution, a gateway cache that
//!   lives across executions (with an injectable clock, [`Gateway::advance`]), the
//!   managed-identity token cache, and [`Gateway::execute`] → [`Outcome`] (the backend
//!   request's headers and query, the context variables, whether the flow stopped, and a
//!   trace of every outbound call).
//! * [`check_policy_vocabulary`]: well-formedness and the policy elements and attributes that
//!   exist in APIM's policy reference.
//! * Policy expressions (`@(...)`) are evaluated by a tokenizer, a recursive-descent parser
//!   and an evaluator that cover exactly one subset of C# (see [`Expr`]); anything outside it
//!   is an error that names the construct, so that a renderer change outside the subset fails
//!   a test instead of being executed wrongly.
//!
//! Two kinds of failure are kept apart. What the executor cannot or must not run (an element,
//! attribute or expression form outside the subset, an unknown named value, a document that
//! is not well-formed) is an `Err` of [`Gateway::execute`]. What APIM itself would raise at
//! run time (a `NullReferenceException` on a missing JSON field, a missing context variable,
//! a failed `send-request` without `ignore-error`) ends the flow as [`Flow::Failed`], which
//! APIM answers with 500 from its `on-error` section.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use apim_provider::resources::policy_xml::raw_to_xml;
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde_json::Value as Json;

use super::emulator::Emulator;

// ---------------------------------------------------------------------------------------
// Policy vocabulary
// ---------------------------------------------------------------------------------------

/// One attribute of a policy element: its name, whether it is required, and whether policy
/// expressions are allowed in it.
struct AttrSpec {
    name: &'static str,
    required: bool,
    expression: bool,
}

const fn opt(name: &'static str, expression: bool) -> AttrSpec {
    AttrSpec {
        name,
        required: false,
        expression,
    }
}

const fn req(name: &'static str, expression: bool) -> AttrSpec {
    AttrSpec {
        name,
        required: true,
        expression,
    }
}

/// Where statements (policies) may appear.
const CONTAINERS: &[&str] = &[
    "fragment",
    "inbound",
    "backend",
    "outbound",
    "on-error",
    "when",
    "otherwise",
];

/// A policy element: its attributes and the elements it may appear in (`None`: any
/// statement container, [`CONTAINERS`]).
struct ElementSpec {
    name: &'static str,
    attrs: &'static [AttrSpec],
    parents: Option<&'static [&'static str]>,
    /// Extra parents besides the statement containers.
    also_in: &'static [&'static str],
}

/// The elements a binding fragment may use, with their attributes, as Microsoft's policy
/// reference (learn.microsoft.com/azure/api-management/<policy>-policy) lists them. Checked
/// pages: send-request (mode, response-variable-name, timeout, ignore-error; children
/// set-url, set-method, set-header, set-body, authentication-certificate,
/// authentication-managed-identity, proxy, in that order), cache-lookup-value (key,
/// default-value, variable-name, caching-type; expressions not allowed in variable-name and
/// caching-type), cache-store-value (key, value, duration, caching-type),
/// authentication-managed-identity (resource, client-id, output-token-variable-name,
/// ignore-error; expressions only in resource), set-body (template, xsi-nil, parse-date),
/// return-response (response-variable-name), set-status (code, reason, both required),
/// set-query-parameter (name, exists-action = override | skip | append | delete),
/// include-fragment (fragment-id), and "Reuse policy configurations" (a fragment holds no
/// section element and no `<base/>`, and cannot nest another fragment).
const VOCABULARY: &[ElementSpec] = &[
    ElementSpec {
        name: "policies",
        attrs: &[],
        parents: Some(&[]),
        also_in: &[],
    },
    ElementSpec {
        name: "fragment",
        attrs: &[],
        parents: Some(&[]),
        also_in: &[],
    },
    ElementSpec {
        name: "inbound",
        attrs: &[],
        parents: Some(&["policies"]),
        also_in: &[],
    },
    ElementSpec {
        name: "backend",
        attrs: &[],
        parents: Some(&["policies"]),
        also_in: &[],
    },
    ElementSpec {
        name: "outbound",
        attrs: &[],
        parents: Some(&["policies"]),
        also_in: &[],
    },
    ElementSpec {
        name: "on-error",
        attrs: &[],
        parents: Some(&["policies"]),
        also_in: &[],
    },
    ElementSpec {
        name: "base",
        attrs: &[],
        parents: Some(&["inbound", "backend", "outbound", "on-error"]),
        also_in: &[],
    },
    ElementSpec {
        name: "choose",
        attrs: &[],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "when",
        attrs: &[req("condition", true)],
        parents: Some(&["choose"]),
        also_in: &[],
    },
    ElementSpec {
        name: "otherwise",
        attrs: &[],
        parents: Some(&["choose"]),
        also_in: &[],
    },
    ElementSpec {
        name: "cache-lookup-value",
        attrs: &[
            req("key", true),
            req("variable-name", false),
            opt("default-value", true),
            opt("caching-type", false),
        ],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "cache-store-value",
        attrs: &[
            req("key", true),
            req("value", true),
            req("duration", true),
            opt("caching-type", false),
        ],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "authentication-managed-identity",
        attrs: &[
            req("resource", true),
            opt("client-id", false),
            opt("output-token-variable-name", false),
            opt("ignore-error", false),
        ],
        parents: None,
        also_in: &["send-request"],
    },
    ElementSpec {
        name: "send-request",
        attrs: &[
            opt("mode", true),
            req("response-variable-name", true),
            opt("timeout", true),
            opt("ignore-error", false),
        ],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "set-url",
        attrs: &[],
        parents: Some(&["send-request"]),
        also_in: &[],
    },
    ElementSpec {
        name: "set-method",
        attrs: &[],
        parents: None,
        also_in: &["send-request"],
    },
    ElementSpec {
        name: "set-header",
        attrs: &[req("name", true), opt("exists-action", true)],
        parents: None,
        also_in: &["send-request", "return-response"],
    },
    ElementSpec {
        name: "value",
        attrs: &[],
        parents: Some(&["set-header", "set-query-parameter"]),
        also_in: &[],
    },
    ElementSpec {
        name: "set-body",
        attrs: &[
            opt("template", false),
            opt("xsi-nil", false),
            opt("parse-date", false),
        ],
        parents: None,
        also_in: &["send-request", "return-response"],
    },
    ElementSpec {
        name: "set-variable",
        attrs: &[req("name", false), req("value", true)],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "set-query-parameter",
        attrs: &[req("name", true), opt("exists-action", true)],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "return-response",
        attrs: &[opt("response-variable-name", false)],
        parents: None,
        also_in: &[],
    },
    ElementSpec {
        name: "set-status",
        attrs: &[req("code", true), req("reason", true)],
        parents: None,
        also_in: &["return-response"],
    },
    ElementSpec {
        name: "include-fragment",
        attrs: &[req("fragment-id", false)],
        parents: Some(&[
            "inbound",
            "backend",
            "outbound",
            "on-error",
            "when",
            "otherwise",
        ]),
        also_in: &[],
    },
];

/// The order of `send-request`'s children in the policy statement.
const SEND_REQUEST_ORDER: &[&str] = &[
    "set-url",
    "set-method",
    "set-header",
    "set-body",
    "authentication-certificate",
    "authentication-managed-identity",
    "proxy",
];

/// Allowed literal values of enumerated attributes (when not an expression).
fn allowed_values(element: &str, attr: &str) -> Option<&'static [&'static str]> {
    match (element, attr) {
        (_, "exists-action") => Some(&["override", "skip", "append", "delete"]),
        (_, "caching-type") => Some(&["prefer-external", "external", "internal"]),
        ("send-request", "mode") => Some(&["new", "copy"]),
        (_, "ignore-error") => Some(&["true", "false"]),
        ("set-body", "template") => Some(&["liquid"]),
        ("set-body", "xsi-nil") => Some(&["blank", "null"]),
        ("set-body", "parse-date") => Some(&["true", "false"]),
        _ => None,
    }
}

fn is_expression(value: &str) -> bool {
    let v = value.trim_start();
    v.starts_with("@(") || v.starts_with("@{")
}

/// Checks a policy document (`rawxml`, a `<fragment>` or a `<policies>` document): it is
/// well-formed once its expressions are escaped ([`raw_to_xml`]), and it uses only policy
/// elements and attributes that exist, where they may appear, with required attributes
/// present, enumerated values valid and expressions only where the reference allows them.
/// Answers every problem found.
pub fn check_policy_vocabulary(raw: &str) -> Result<(), Vec<String>> {
    let root = parse_document(raw).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    if root.name != "fragment" && root.name != "policies" {
        problems.push(format!(
            "the root element is <{}>; expected <fragment> or <policies>",
            root.name
        ));
    }
    check_element(&root, None, root.name == "fragment", &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn check_element(e: &Element, parent: Option<&str>, in_fragment: bool, problems: &mut Vec<String>) {
    let Some(spec) = VOCABULARY.iter().find(|s| s.name == e.name) else {
        problems.push(format!(
            "<{}> is not a policy element a binding fragment may use",
            e.name
        ));
        return;
    };
    let placed = match (parent, spec.parents) {
        (None, Some(p)) => p.is_empty(),
        (None, None) => false,
        (Some(_), Some([])) => false,
        (Some(p), Some(allowed)) => allowed.contains(&p) || spec.also_in.contains(&p),
        (Some(p), None) => CONTAINERS.contains(&p) || spec.also_in.contains(&p),
    };
    if !placed {
        problems.push(match parent {
            Some(p) => format!("<{}> cannot appear inside <{p}>", e.name),
            None => format!("<{}> cannot be the root element", e.name),
        });
    }
    if in_fragment && matches!(e.name.as_str(), "base" | "include-fragment") {
        problems.push(format!(
            "<{}> cannot appear in a policy fragment (a fragment holds no <base/> and cannot nest another fragment)",
            e.name
        ));
    }
    for (name, value) in &e.attrs {
        match spec.attrs.iter().find(|a| a.name == name) {
            None => problems.push(format!(
                "<{}> has no attribute `{name}` (it has: {})",
                e.name,
                if spec.attrs.is_empty() {
                    "none".to_string()
                } else {
                    spec.attrs
                        .iter()
                        .map(|a| a.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )),
            Some(a) => {
                if is_expression(value) {
                    if !a.expression {
                        problems.push(format!(
                            "<{} {name}> does not allow policy expressions",
                            e.name
                        ));
                    }
                } else if let Some(allowed) = allowed_values(&e.name, name) {
                    if !allowed.contains(&value.as_str()) {
                        problems.push(format!(
                            "<{} {name}=\"{value}\">: expected one of {}",
                            e.name,
                            allowed.join(", ")
                        ));
                    }
                }
            }
        }
    }
    for a in spec.attrs.iter().filter(|a| a.required) {
        if !e.attrs.iter().any(|(n, _)| n == a.name) {
            problems.push(format!("<{}> needs the attribute `{}`", e.name, a.name));
        }
    }
    if e.name == "when" && e.attr("condition").is_some_and(|c| !is_expression(c)) {
        problems.push("<when condition> must be a policy expression".to_string());
    }
    if e.name == "choose" {
        let whens = e.children.iter().filter(|c| c.name == "when").count();
        if whens == 0 {
            problems.push("<choose> needs at least one <when>".to_string());
        }
        if let Some(i) = e.children.iter().position(|c| c.name == "otherwise") {
            if i + 1 != e.children.len() {
                problems.push("<otherwise> must be the last child of <choose>".to_string());
            }
        }
    }
    if e.name == "send-request" {
        let mut last = 0;
        for c in &e.children {
            if let Some(i) = SEND_REQUEST_ORDER.iter().position(|n| *n == c.name) {
                if i < last {
                    problems.push(format!(
                        "<send-request> children out of order: <{}> after <{}>",
                        c.name, SEND_REQUEST_ORDER[last]
                    ));
                }
                last = last.max(i);
            }
        }
    }
    if matches!(e.name.as_str(), "set-header" | "set-query-parameter")
        && e.attr("exists-action") != Some("delete")
        && !e.children.iter().any(|c| c.name == "value")
    {
        problems.push(format!("<{}> needs a <value>", e.name));
    }
    for c in &e.children {
        check_element(c, Some(&e.name), in_fragment, problems);
    }
}

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

/// An element of a parsed policy document: attribute values and text unescaped (so
/// expressions read as written in `rawxml`).
#[derive(Debug, Clone)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `rawxml` document: its expressions are escaped with [`raw_to_xml`], then a real
/// XML parser reads it.
fn parse_document(raw: &str) -> Result<Element, String> {
    let xml = raw_to_xml(raw);
    let mut reader = Reader::from_str(&xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let open = |e: &quick_xml::events::BytesStart<'_>| -> Result<Element, String> {
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|x| format!("the policy is not well-formed: bad attribute: {x}"))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|x| format!("the policy is not well-formed: bad attribute value: {x}"))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(Element {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attrs,
            children: Vec::new(),
            text: String::new(),
        })
    };
    let close = |stack: &mut Vec<Element>, root: &mut Option<Element>, el: Element| match stack
        .last_mut()
    {
        Some(parent) => parent.children.push(el),
        None => {
            if root.is_none() {
                *root = Some(el);
            }
        }
    };
    loop {
        let ev = reader.read_event().map_err(|e| {
            format!(
                "the policy is not well-formed at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match ev {
            Event::Start(e) => {
                if stack.is_empty() && root.is_some() {
                    return Err("the policy is not well-formed: more than one root element".into());
                }
                stack.push(open(&e)?);
            }
            Event::Empty(e) => {
                if stack.is_empty() && root.is_some() {
                    return Err("the policy is not well-formed: more than one root element".into());
                }
                let el = open(&e)?;
                close(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or("the policy is not well-formed: an end tag without a start")?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let raw = t
                    .decode()
                    .map_err(|e| format!("the policy is not well-formed: bad text: {e}"))?;
                let un = quick_xml::escape::unescape(&raw)
                    .map_err(|e| format!("the policy is not well-formed: bad entity: {e}"))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&un),
                    None if un.trim().is_empty() => {}
                    None => {
                        return Err(
                            "the policy is not well-formed: text outside the root element".into(),
                        )
                    }
                }
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| format!("the policy is not well-formed: bad entity: {e}"))?;
                let ch = match name.as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => numeric_reference(other).ok_or_else(|| {
                        format!("the policy is not well-formed: unknown entity &{other};")
                    })?,
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(ch);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!(
            "the policy is not well-formed: <{}> is not closed",
            open.name
        ));
    }
    root.ok_or_else(|| "the policy has no root element".to_string())
}

fn numeric_reference(r: &str) -> Option<char> {
    let n = r.strip_prefix('#')?;
    let code = match n.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => n.parse().ok()?,
    };
    char::from_u32(code)
}

/// APIM's first step: every `{{name}}` in the raw text becomes the named value's value.
pub fn substitute_named_values(
    raw: &str,
    named_values: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` without `}}}}` in the policy near {:?}",
                &rest[start..rest.len().min(start + 40)]
            )
        })?;
        let name = &after[..end];
        let value = named_values.get(name).ok_or_else(|| {
            format!(
                "the policy references the named value {{{{{name}}}}}, which does not exist (known: {})",
                named_values.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Policy expressions: tokens
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Int(i64),
    Ident(String),
    Punct(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::Int(i) => write!(f, "{i}"),
            Tok::Ident(s) => write!(f, "{s}"),
            Tok::Punct(p) => write!(f, "{p}"),
        }
    }
}

const PUNCTS: &[&str] = &[
    "&&", "||", "==", "!=", "(", ")", "[", "]", ".", ",", ":", "<", ">", "!", "+",
];

fn tokenize(src: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err("unterminated string literal".into());
                };
                i += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else {
                            return Err("unterminated escape in a string literal".into());
                        };
                        i += 1;
                        match e {
                            '"' => s.push('"'),
                            '\\' => s.push('\\'),
                            '\'' => s.push('\''),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            '0' => s.push('\0'),
                            'u' => {
                                let hex: String = chars.iter().skip(i).take(4).collect();
                                let code = (hex.len() == 4)
                                    .then(|| u32::from_str_radix(&hex, 16).ok())
                                    .flatten()
                                    .and_then(char::from_u32)
                                    .ok_or_else(|| format!("bad \\u escape \\u{hex}"))?;
                                s.push(code);
                                i += 4;
                            }
                            other => {
                                return Err(format!(
                                    "unsupported escape sequence \\{other} in a string literal"
                                ))
                            }
                        }
                    }
                    '\n' => return Err("newline in a string literal".into()),
                    c => s.push(c),
                }
            }
            toks.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                let tail: String = chars[start..(i + 1).min(chars.len())].iter().collect();
                return Err(format!(
                    "unsupported numeric literal starting {tail:?} (only decimal integers)"
                ));
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse::<i64>()
                .map_err(|e| format!("integer literal {text}: {e}"))?;
            toks.push(Tok::Int(n));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(p) = PUNCTS.iter().find(|p| p.len() == 2 && **p == two) {
            toks.push(Tok::Punct(p));
            i += 2;
            continue;
        }
        let one = c.to_string();
        if let Some(p) = PUNCTS.iter().find(|p| p.len() == 1 && **p == one) {
            toks.push(Tok::Punct(p));
            i += 1;
            continue;
        }
        let what = match c {
            '\'' => "character literals".to_string(),
            '@' => "verbatim strings (@\"...\")".to_string(),
            '$' => "interpolated strings ($\"...\")".to_string(),
            '?' => "the `?`, `?.` and `??` operators".to_string(),
            '{' | '}' => "statement blocks and object initialisers".to_string(),
            '=' => "assignment".to_string(),
            '<' | '>' => "comparison operators".to_string(),
            other => format!("the character {other:?}"),
        };
        return Err(format!("unsupported in policy expressions here: {what}"));
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------
// Policy expressions: syntax
// ---------------------------------------------------------------------------------------

/// The C# types the subset names (casts and type arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsType {
    String,
    IResponse,
    JObject,
    Int,
    Bool,
}

impl CsType {
    fn parse(name: &str) -> Option<CsType> {
        Some(match name {
            "string" => CsType::String,
            "IResponse" => CsType::IResponse,
            "JObject" => CsType::JObject,
            "int" => CsType::Int,
            "bool" => CsType::Bool,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Add,
}

/// A policy expression of the supported subset of C#: string literals (with `\" \\ \' \n \r
/// \t \0 \uXXXX`), decimal integer literals, `null`, `true`, `false`, `!`, `&&`, `||`, `==`,
/// `!=`, `+` (string concatenation), the casts `(string)` and `(IResponse)`, `context`,
/// `.Variables`, `[...]` indexers, `.ContainsKey(k)`, `.GetValueOrDefault(k, d)`,
/// `.GetValueOrDefault<T>(k)`, `.StatusCode`, `.Body`, `.As<JObject>()`, `.As<string>()`
/// (with `preserveContent: bool`), `.ToString()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Null,
    Bool(bool),
    Ident(String),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Cast(CsType, Box<Expr>),
    Member(Box<Expr>, String),
    Call {
        target: Box<Expr>,
        method: String,
        type_arg: Option<CsType>,
        args: Vec<(Option<String>, Expr)>,
    },
    Index(Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Parses the C# inside `@(` … `)`.
pub fn parse_expression(src: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(format!("unexpected `{t}` after a complete expression")),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n)
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(match self.peek() {
                Some(t) => format!("expected `{p}`, found `{t}`"),
                None => format!("expected `{p}`, found the end of the expression"),
            })
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.equality()?;
        while self.eat("&&") {
            let r = self.equality()?;
            l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn equality(&mut self) -> Result<Expr, String> {
        let mut l = self.additive()?;
        loop {
            let op = if self.eat("==") {
                BinOp::Eq
            } else if self.eat("!=") {
                BinOp::Ne
            } else {
                break;
            };
            let r = self.additive()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
        if self.is("<") || self.is(">") {
            return Err("unsupported in policy expressions here: comparison operators".into());
        }
        Ok(l)
    }

    fn additive(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        while self.eat("+") {
            let r = self.unary()?;
            l = Expr::Bin(BinOp::Add, Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    /// `(T)x` is a cast when `(`, one identifier and `)` are followed by something that can
    /// start an operand (C#'s disambiguation, restricted to the subset's tokens).
    fn cast_ahead(&self) -> Option<String> {
        match (
            self.peek(),
            self.peek_at(1),
            self.peek_at(2),
            self.peek_at(3),
        ) {
            (
                Some(Tok::Punct("(")),
                Some(Tok::Ident(t)),
                Some(Tok::Punct(")")),
                Some(Tok::Ident(_) | Tok::Str(_) | Tok::Int(_) | Tok::Punct("(") | Tok::Punct("!")),
            ) => Some(t.clone()),
            _ => None,
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if let Some(t) = self.cast_ahead() {
            let ty = match CsType::parse(&t) {
                Some(ty @ (CsType::String | CsType::IResponse)) => ty,
                _ => {
                    return Err(format!(
                        "unsupported cast ({t}): only (string) and (IResponse) are supported"
                    ))
                }
            };
            self.pos += 3;
            return Ok(Expr::Cast(ty, Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let name = match self.peek() {
                    Some(Tok::Ident(n)) => n.clone(),
                    Some(t) => {
                        return Err(format!("expected a member name after `.`, found `{t}`"))
                    }
                    None => return Err("expected a member name after `.`".into()),
                };
                self.pos += 1;
                let mut type_arg = None;
                if self.eat("<") {
                    let t = match self.peek() {
                        Some(Tok::Ident(t)) => t.clone(),
                        _ => return Err(format!("expected a type argument after {name}<")),
                    };
                    self.pos += 1;
                    type_arg = Some(
                        CsType::parse(&t)
                            .ok_or_else(|| format!("unsupported type argument {name}<{t}>"))?,
                    );
                    if !self.eat(">") {
                        return Err(format!("unsupported type argument list after {name}<{t}"));
                    }
                    if !self.is("(") {
                        return Err(format!("{name}<{t}> must be called"));
                    }
                }
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            let named = match (self.peek(), self.peek_at(1)) {
                                (Some(Tok::Ident(n)), Some(Tok::Punct(":"))) => {
                                    let n = n.clone();
                                    self.pos += 2;
                                    Some(n)
                                }
                                _ => None,
                            };
                            args.push((named, self.or()?));
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    e = Expr::Call {
                        target: Box::new(e),
                        method: name,
                        type_arg,
                        args,
                    };
                } else {
                    e = Expr::Member(Box::new(e), name);
                }
            } else if self.eat("[") {
                let i = self.or()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let Some(t) = self.peek().cloned() else {
            return Err("unexpected end of the expression".into());
        };
        self.pos += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Ident(id) => match id.as_str() {
                "null" => Ok(Expr::Null),
                "true" => Ok(Expr::Bool(true)),
                "false" => Ok(Expr::Bool(false)),
                "new" => {
                    Err("unsupported in policy expressions here: object creation (new)".into())
                }
                "context" => Ok(Expr::Ident(id)),
                other => Err(format!(
                    "unsupported identifier `{other}` (only `context` is supported)"
                )),
            },
            Tok::Punct("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct(p) => Err(format!("unexpected `{p}`")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Policy expressions: values and evaluation
// ---------------------------------------------------------------------------------------

/// A response kept in a context variable by `send-request`.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
    /// The body was read without `preserveContent: true` (APIM gives it only once).
    consumed: Cell<bool>,
}

/// A runtime value.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A Newtonsoft `JToken` (JSON `null` is a `JValue`, not C# `null`).
    Json(Json),
    Response(Rc<HttpResponse>),
    Context,
    Variables,
    Body(Rc<HttpResponse>),
}

impl Value {
    /// The value as APIM's `ToString()` / string concatenation renders it (`null` → "").
    fn render(&self) -> Result<String, Fault> {
        Ok(match self {
            Value::Null => String::new(),
            Value::Bool(b) => cs_bool(*b).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
            Value::Json(j) => jtoken_to_string(j),
            other => {
                return Err(Fault::Unsupported(format!(
                    "rendering {} as a string",
                    other.type_name()
                )))
            }
        })
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "System.Boolean",
            Value::Int(_) => "System.Int32",
            Value::Str(_) => "System.String",
            Value::Json(Json::Object(_)) => "Newtonsoft.Json.Linq.JObject",
            Value::Json(Json::Array(_)) => "Newtonsoft.Json.Linq.JArray",
            Value::Json(_) => "Newtonsoft.Json.Linq.JValue",
            Value::Response(_) => "IResponse",
            Value::Context => "IProxyRequestContext",
            Value::Variables => "IReadOnlyDictionary<string, object>",
            Value::Body(_) => "IMessageBody",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Response(r) => write!(f, "<response {} ({} bytes)>", r.status, r.body.len()),
            other => match other.render() {
                Ok(s) => write!(f, "{s}"),
                Err(_) => write!(f, "<{}>", other.type_name()),
            },
        }
    }
}

fn cs_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Newtonsoft's `JToken.ToString()`: a string value as is, JSON null as "", booleans as
/// `True`/`False`, objects and arrays indented.
fn jtoken_to_string(j: &Json) -> String {
    match j {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        Json::Bool(b) => cs_bool(*b).to_string(),
        Json::Number(n) => n.to_string(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// Static (compile-time) types, so that what C# would not compile is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Object,
    String,
    Bool,
    Int,
    JToken,
    IResponse,
    Body,
    Context,
    Variables,
    Null,
}

#[derive(Debug, Clone)]
struct Typed {
    ty: Ty,
    v: Value,
}

fn typed(ty: Ty, v: Value) -> Typed {
    Typed { ty, v }
}

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    /// Outside the supported subset, or C# would not compile it.
    Unsupported(String),
    /// APIM would throw this at run time.
    Exception(String),
}

fn unsupported<T>(msg: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Unsupported(msg.into()))
}

fn exception<T>(msg: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Exception(msg.into()))
}

const NULL_REFERENCE: &str =
    "NullReferenceException: Object reference not set to an instance of an object";

fn eval(e: &Expr, vars: &BTreeMap<String, Value>) -> Result<Typed, Fault> {
    match e {
        Expr::Str(s) => Ok(typed(Ty::String, Value::Str(s.clone()))),
        Expr::Int(i) => Ok(typed(Ty::Int, Value::Int(*i))),
        Expr::Null => Ok(typed(Ty::Null, Value::Null)),
        Expr::Bool(b) => Ok(typed(Ty::Bool, Value::Bool(*b))),
        Expr::Ident(id) if id == "context" => Ok(typed(Ty::Context, Value::Context)),
        Expr::Ident(id) => unsupported(format!("identifier `{id}`")),
        Expr::Not(x) => {
            let x = eval(x, vars)?;
            match (x.ty, x.v) {
                (Ty::Bool, Value::Bool(b)) => Ok(typed(Ty::Bool, Value::Bool(!b))),
                (ty, _) => unsupported(format!("`!` on a {ty:?} (C# needs a bool)")),
            }
        }
        Expr::Bin(op @ (BinOp::And | BinOp::Or), l, r) => {
            let l = eval_bool(l, vars, *op)?;
            if (*op == BinOp::And && !l) || (*op == BinOp::Or && l) {
                return Ok(typed(Ty::Bool, Value::Bool(l)));
            }
            let r = eval_bool(r, vars, *op)?;
            Ok(typed(Ty::Bool, Value::Bool(r)))
        }
        Expr::Bin(op @ (BinOp::Eq | BinOp::Ne), l, r) => {
            let l = eval(l, vars)?;
            let r = eval(r, vars)?;
            let eq = equals(&l, &r)?;
            Ok(typed(
                Ty::Bool,
                Value::Bool(if *op == BinOp::Eq { eq } else { !eq }),
            ))
        }
        Expr::Bin(BinOp::Add, l, r) => {
            let l = eval(l, vars)?;
            let r = eval(r, vars)?;
            if l.ty != Ty::String && r.ty != Ty::String {
                return unsupported(format!(
                    "`+` on {:?} and {:?} (only string concatenation is supported)",
                    l.ty, r.ty
                ));
            }
            for side in [&l, &r] {
                if matches!(
                    side.ty,
                    Ty::IResponse | Ty::Body | Ty::Context | Ty::Variables
                ) {
                    return unsupported(format!("concatenating a {:?} to a string", side.ty));
                }
            }
            Ok(typed(
                Ty::String,
                Value::Str(format!("{}{}", l.v.render()?, r.v.render()?)),
            ))
        }
        Expr::Cast(to, x) => {
            let x = eval(x, vars)?;
            cast(*to, x)
        }
        Expr::Member(t, name) => {
            let t = eval(t, vars)?;
            match (t.ty, name.as_str()) {
                (Ty::Context, "Variables") => Ok(typed(Ty::Variables, Value::Variables)),
                (Ty::Context, other) => unsupported(format!("context.{other}")),
                (Ty::IResponse, "StatusCode") => match t.v {
                    Value::Response(r) => Ok(typed(Ty::Int, Value::Int(i64::from(r.status)))),
                    _ => exception(NULL_REFERENCE),
                },
                (Ty::IResponse, "Body") => match t.v {
                    Value::Response(r) => Ok(typed(Ty::Body, Value::Body(r))),
                    _ => exception(NULL_REFERENCE),
                },
                (Ty::Object, m) => unsupported(format!(
                    "`.{m}` on an object (C# needs a cast first, e.g. ((IResponse)x).{m})"
                )),
                (ty, m) => unsupported(format!("member `.{m}` of a {ty:?}")),
            }
        }
        Expr::Index(t, i) => {
            let t = eval(t, vars)?;
            let i = eval(i, vars)?;
            match (t.ty, &t.v, i.ty, &i.v) {
                (Ty::Variables, _, Ty::String, Value::Str(k)) => match vars.get(k) {
                    Some(v) => Ok(typed(Ty::Object, v.clone())),
                    None => exception(format!(
                        "KeyNotFoundException: The given key '{k}' was not present in the dictionary (context.Variables)"
                    )),
                },
                (Ty::JToken, Value::Null, _, _) => exception(NULL_REFERENCE),
                (Ty::JToken, Value::Json(j), Ty::String, Value::Str(k)) => match j {
                    Json::Object(m) => Ok(typed(
                        Ty::JToken,
                        m.get(k).cloned().map_or(Value::Null, Value::Json),
                    )),
                    Json::Array(_) => exception(format!(
                        "ArgumentException: Accessed JArray values with invalid key value: \"{k}\". Int32 array index expected"
                    )),
                    _ => exception(format!(
                        "InvalidOperationException: Cannot access child value on Newtonsoft.Json.Linq.JValue (key \"{k}\")"
                    )),
                },
                (Ty::JToken, Value::Json(j), Ty::Int, Value::Int(n)) => match j {
                    Json::Array(a) => match usize::try_from(*n).ok().and_then(|n| a.get(n)) {
                        Some(v) => Ok(typed(Ty::JToken, Value::Json(v.clone()))),
                        None => exception(format!("ArgumentOutOfRangeException: index {n}")),
                    },
                    _ => exception(format!(
                        "ArgumentException: Accessed {} values with invalid key value: {n}",
                        Value::Json(j.clone()).type_name()
                    )),
                },
                (ty, _, ity, _) => unsupported(format!("indexing a {ty:?} with a {ity:?}")),
            }
        }
        Expr::Call {
            target,
            method,
            type_arg,
            args,
        } => {
            let t = eval(target, vars)?;
            call(t, method, *type_arg, args, vars)
        }
    }
}

fn eval_bool(e: &Expr, vars: &BTreeMap<String, Value>, op: BinOp) -> Result<bool, Fault> {
    let x = eval(e, vars)?;
    match (x.ty, x.v) {
        (Ty::Bool, Value::Bool(b)) => Ok(b),
        (ty, _) => unsupported(format!("{op:?} on a {ty:?} (C# needs bools)")),
    }
}

fn is_reference(ty: Ty) -> bool {
    matches!(
        ty,
        Ty::Object | Ty::String | Ty::IResponse | Ty::JToken | Ty::Null
    )
}

fn equals(l: &Typed, r: &Typed) -> Result<bool, Fault> {
    match (l.ty, r.ty) {
        (Ty::Int, Ty::Int) | (Ty::Bool, Ty::Bool) | (Ty::String, Ty::String) => {
            Ok(match (&l.v, &r.v) {
                (Value::Int(a), Value::Int(b)) => a == b,
                (Value::Bool(a), Value::Bool(b)) => a == b,
                (Value::Str(a), Value::Str(b)) => a == b,
                (Value::Null, Value::Null) => true,
                _ => false,
            })
        }
        (Ty::Null, other) | (other, Ty::Null) if is_reference(other) => {
            Ok(matches!((&l.v, &r.v), (Value::Null, Value::Null)))
        }
        (a, b) => unsupported(format!("`==`/`!=` between a {a:?} and a {b:?}")),
    }
}

fn cast(to: CsType, x: Typed) -> Result<Typed, Fault> {
    match (to, x.ty) {
        (CsType::String, Ty::String) => Ok(x),
        (CsType::String, Ty::Null) => Ok(typed(Ty::String, Value::Null)),
        (CsType::String, Ty::Object) => match x.v {
            Value::Str(_) | Value::Null => Ok(typed(Ty::String, x.v)),
            other => exception(format!(
                "InvalidCastException: Unable to cast object of type '{}' to type 'System.String'",
                other.type_name()
            )),
        },
        // Newtonsoft's explicit JToken → string conversion.
        (CsType::String, Ty::JToken) => match x.v {
            Value::Null | Value::Json(Json::Null) => Ok(typed(Ty::String, Value::Null)),
            Value::Json(Json::String(s)) => Ok(typed(Ty::String, Value::Str(s))),
            Value::Json(j @ (Json::Number(_) | Json::Bool(_))) => {
                Ok(typed(Ty::String, Value::Str(jtoken_to_string(&j))))
            }
            other => exception(format!(
                "ArgumentException: Can not convert {} to String",
                other.type_name()
            )),
        },
        (CsType::IResponse, Ty::IResponse) => Ok(x),
        (CsType::IResponse, Ty::Null) => Ok(typed(Ty::IResponse, Value::Null)),
        (CsType::IResponse, Ty::Object) => match x.v {
            Value::Response(_) | Value::Null => Ok(typed(Ty::IResponse, x.v)),
            other => exception(format!(
                "InvalidCastException: Unable to cast object of type '{}' to type 'IResponse'",
                other.type_name()
            )),
        },
        (to, ty) => unsupported(format!("cast ({to:?}) of a {ty:?}")),
    }
}

fn string_arg(
    method: &str,
    args: &[(Option<String>, Expr)],
    at: usize,
    vars: &BTreeMap<String, Value>,
) -> Result<Option<String>, Fault> {
    let Some((name, e)) = args.get(at) else {
        return unsupported(format!("{method} without argument {}", at + 1));
    };
    if let Some(n) = name {
        return unsupported(format!("named argument `{n}:` in {method}"));
    }
    let v = eval(e, vars)?;
    match (v.ty, v.v) {
        (Ty::String, Value::Str(s)) => Ok(Some(s)),
        (Ty::String | Ty::Null, Value::Null) => Ok(None),
        (ty, _) => unsupported(format!(
            "{method} with a {ty:?} argument (C# needs a string)"
        )),
    }
}

fn call(
    t: Typed,
    method: &str,
    type_arg: Option<CsType>,
    args: &[(Option<String>, Expr)],
    vars: &BTreeMap<String, Value>,
) -> Result<Typed, Fault> {
    match (t.ty, method) {
        (Ty::Variables, "ContainsKey") => {
            if args.len() != 1 || type_arg.is_some() {
                return unsupported("ContainsKey takes exactly one key");
            }
            let k = string_arg(method, args, 0, vars)?
                .ok_or_else(|| Fault::Exception("ArgumentNullException: key".into()))?;
            Ok(typed(Ty::Bool, Value::Bool(vars.contains_key(&k))))
        }
        (Ty::Variables, "GetValueOrDefault") => {
            if args.is_empty() || args.len() > 2 {
                return unsupported("GetValueOrDefault takes a key and an optional default");
            }
            let k = string_arg(method, args, 0, vars)?
                .ok_or_else(|| Fault::Exception("ArgumentNullException: key".into()))?;
            let default = match args.get(1) {
                Some((None, e)) => Some(eval(e, vars)?),
                Some((Some(n), _)) => {
                    return unsupported(format!("named argument `{n}:` in {method}"))
                }
                None => None,
            };
            let target = match (type_arg, &default) {
                (Some(t), _) => t,
                (None, Some(d)) => match d.ty {
                    Ty::String => CsType::String,
                    Ty::Int => CsType::Int,
                    Ty::Bool => CsType::Bool,
                    Ty::IResponse => CsType::IResponse,
                    ty => {
                        return unsupported(format!(
                            "GetValueOrDefault cannot infer its type from a {ty:?} default; write GetValueOrDefault<T>"
                        ))
                    }
                },
                (None, None) => {
                    return unsupported("GetValueOrDefault(key) without <T> or a default")
                }
            };
            let (ty, zero) = match target {
                CsType::String => (Ty::String, Value::Null),
                CsType::IResponse => (Ty::IResponse, Value::Null),
                CsType::JObject => (Ty::JToken, Value::Null),
                CsType::Int => (Ty::Int, Value::Int(0)),
                CsType::Bool => (Ty::Bool, Value::Bool(false)),
            };
            if let Some(d) = &default {
                if d.ty != ty && !(d.ty == Ty::Null && is_reference(ty)) {
                    return unsupported(format!(
                        "GetValueOrDefault<{target:?}> with a {:?} default",
                        d.ty
                    ));
                }
            }
            let Some(v) = vars.get(&k) else {
                return Ok(typed(ty, default.map_or(zero, |d| d.v)));
            };
            let fits = match (target, v) {
                (_, Value::Null) => is_reference(ty),
                (CsType::String, Value::Str(_))
                | (CsType::IResponse, Value::Response(_))
                | (CsType::JObject, Value::Json(Json::Object(_)))
                | (CsType::Int, Value::Int(_))
                | (CsType::Bool, Value::Bool(_)) => true,
                _ => false,
            };
            if fits {
                Ok(typed(ty, v.clone()))
            } else {
                exception(format!(
                    "InvalidCastException: context variable '{k}' holds a {} (GetValueOrDefault<{target:?}>)",
                    v.type_name()
                ))
            }
        }
        (Ty::Body, "As") => {
            let Value::Body(resp) = t.v else {
                return exception(NULL_REFERENCE);
            };
            let mut preserve = false;
            for (i, (name, e)) in args.iter().enumerate() {
                match name.as_deref() {
                    Some("preserveContent") | None if i == 0 => {
                        let v = eval(e, vars)?;
                        match (v.ty, v.v) {
                            (Ty::Bool, Value::Bool(b)) => preserve = b,
                            (ty, _) => return unsupported(format!("As(preserveContent: {ty:?})")),
                        }
                    }
                    Some(n) => return unsupported(format!("As(...) argument `{n}:`")),
                    None => return unsupported("As(...) takes at most one argument"),
                }
            }
            if resp.consumed.get() {
                return exception(
                    "the response body was already read by an earlier Body.As<T>() without preserveContent: true (APIM gives it once; the second read gets null)",
                );
            }
            if !preserve {
                resp.consumed.set(true);
            }
            match type_arg {
                Some(CsType::JObject) => match serde_json::from_str::<Json>(&resp.body) {
                    Ok(j @ Json::Object(_)) => Ok(typed(Ty::JToken, Value::Json(j))),
                    Ok(other) => exception(format!(
                        "InvalidCastException: the body is JSON but not an object ({})",
                        Value::Json(other).type_name()
                    )),
                    Err(e) => exception(format!(
                        "JsonReaderException: the body is not JSON ({e}): {:?}",
                        resp.body.chars().take(80).collect::<String>()
                    )),
                },
                Some(CsType::String) => Ok(typed(Ty::String, Value::Str(resp.body.clone()))),
                Some(other) => unsupported(format!("Body.As<{other:?}>()")),
                None => unsupported("Body.As without a type argument"),
            }
        }
        (Ty::String | Ty::Int | Ty::Bool | Ty::JToken | Ty::Object, "ToString") => {
            if !args.is_empty() || type_arg.is_some() {
                return unsupported("ToString with arguments");
            }
            match t.v {
                Value::Null => exception(NULL_REFERENCE),
                v @ (Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Json(_)) => {
                    Ok(typed(Ty::String, Value::Str(v.render()?)))
                }
                other => unsupported(format!("ToString() of a {}", other.type_name())),
            }
        }
        (ty, m) => unsupported(format!("method `.{m}(...)` of a {ty:?}")),
    }
}

/// Evaluates an attribute value or element text: an expression when it is `@(...)`, a
/// string otherwise.
fn evaluate_value(raw: &str, vars: &BTreeMap<String, Value>) -> Result<Typed, Fault> {
    let v = raw.trim();
    if let Some(inner) = v.strip_prefix("@(") {
        let inner = inner
            .strip_suffix(')')
            .ok_or_else(|| Fault::Unsupported(format!("text after the expression in {v:?}")))?;
        let e = parse_expression(inner)
            .map_err(|m| Fault::Unsupported(format!("{m} in @({inner})")))?;
        eval(&e, vars)
    } else if v.starts_with("@{") {
        unsupported(format!("multi-statement expressions @{{...}}: {v:?}"))
    } else {
        Ok(typed(Ty::String, Value::Str(v.to_string())))
    }
}

/// Parses every policy expression of the document, as APIM compiles them when a policy is
/// saved: a construct outside the subset is reported before anything runs.
fn compile_expressions(e: &Element, problems: &mut Vec<String>) {
    let texts = e
        .attrs
        .iter()
        .map(|(n, v)| (format!("<{} {n}>", e.name), v.as_str()))
        .chain(std::iter::once((
            format!("<{}> text", e.name),
            e.text.as_str(),
        )));
    for (place, raw) in texts {
        let v = raw.trim();
        if v.starts_with("@{") {
            problems.push(format!(
                "{place}: unsupported: multi-statement expressions @{{...}}"
            ));
        } else if let Some(inner) = v.strip_prefix("@(") {
            match inner.strip_suffix(')') {
                None => problems.push(format!("{place}: text after the expression in {v:?}")),
                Some(inner) => {
                    if let Err(m) = parse_expression(inner) {
                        problems.push(format!("{place}: {m} in @({inner})"));
                    }
                }
            }
        }
    }
    for c in &e.children {
        compile_expressions(c, problems);
    }
}

/// Evaluates one expression source (the C# inside `@(` … `)`) against context variables: the
/// rendered string of the result, or an error. For unit tests of the subset.
pub fn evaluate(src: &str, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    let e = parse_expression(src)?;
    eval(&e, vars).map(|t| t.v).map_err(|f| match f {
        Fault::Unsupported(m) => format!("unsupported: {m}"),
        Fault::Exception(m) => format!("exception: {m}"),
    })
}

// ---------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------

/// The managed-identity endpoint and the APIM instance whose identity the gateway uses.
#[derive(Clone)]
pub struct ManagedIdentity {
    /// Base URL of the endpoint (`https://127.0.0.1:<port>` for the emulator).
    pub endpoint: String,
    /// ARM ID of the APIM instance (its system-assigned identity).
    pub api_management_id: String,
    /// A client trusting the endpoint's certificate.
    pub http: reqwest::blocking::Client,
}

impl ManagedIdentity {
    pub fn from_emulator(emu: &Emulator) -> ManagedIdentity {
        ManagedIdentity {
            endpoint: emu.url().to_string(),
            api_management_id: emu.api_management_id().to_string(),
            http: emu.http().clone(),
        }
    }
}

/// The incoming request the fragment runs for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl Request {
    pub fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        }
    }
}

/// How the flow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// The fragment ran to its end: the request goes on to the backend.
    Forwarded,
    /// `return-response` stopped the flow with this answer.
    Returned { status: u16, reason: String },
    /// A policy raised an error (APIM's `on-error` section then answers, 500 by default).
    Failed { error: String },
}

/// Which kind of outbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    ManagedIdentity,
    SendRequest,
}

/// One outbound call the gateway made.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: CallKind,
    pub method: String,
    pub url: String,
    /// Request headers, `X-Vault-Token` and `Authorization` values redacted.
    pub headers: Vec<(String, String)>,
    /// The request body, with a JSON `jwt` field redacted.
    pub body: Option<String>,
    /// The response status, when there was a response.
    pub status: Option<u16>,
    /// The transport error, when there was none.
    pub error: Option<String>,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            CallKind::ManagedIdentity => "managed-identity",
            CallKind::SendRequest => "send-request",
        };
        write!(f, "{kind} {} {}", self.method, self.url)?;
        for (k, v) in &self.headers {
            write!(f, " [{k}: {v}]")?;
        }
        if let Some(b) = &self.body {
            write!(f, " body={b}")?;
        }
        match (self.status, &self.error) {
            (Some(s), _) => write!(f, " → {s}"),
            (None, Some(e)) => write!(f, " → error: {e}"),
            (None, None) => write!(f, " → ?"),
        }
    }
}

/// What one execution did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub flow: Flow,
    /// The backend request's headers after the fragment.
    pub headers: Vec<(String, String)>,
    /// The backend request's query parameters after the fragment.
    pub query: Vec<(String, String)>,
    /// Context variables at the end.
    pub variables: BTreeMap<String, Value>,
    /// Outbound calls, in order.
    pub calls: Vec<Call>,
    /// Cache and token-cache events (`cache-lookup-value key: hit`, ...), in order.
    pub events: Vec<String>,
    /// Calls and events together, in the order they happened.
    log: Vec<String>,
}

impl Outcome {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A context variable holding a string.
    pub fn variable(&self, name: &str) -> Option<&str> {
        match self.variables.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The calls made with `send-request`.
    pub fn sent(&self) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| c.kind == CallKind::SendRequest)
            .collect()
    }

    /// A printable trace: the request, calls and events in order, then the end of the flow.
    pub fn trace(&self) -> String {
        let mut out = String::new();
        for line in &self.log {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("  flow: {:?}\n", self.flow));
        out
    }
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

const REDACTED_HEADERS: &[&str] = &["x-vault-token", "authorization"];

fn redact_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if REDACTED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                (k.clone(), "<redacted>".to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

fn redact_body(body: &str) -> String {
    match serde_json::from_str::<Json>(body) {
        Ok(Json::Object(mut m)) => {
            if let Some(jwt) = m.get_mut("jwt") {
                let len = jwt.as_str().map_or(0, str::len);
                *jwt = Json::String(format!("<redacted {len} chars>"));
            }
            Json::Object(m).to_string()
        }
        _ => format!("<{} bytes>", body.len()),
    }
}

/// Managed-identity tokens by (resource, client-id), with their expiry.
type TokenCache = HashMap<(String, Option<String>), (String, Instant)>;

/// A gateway running one policy fragment.
pub struct Gateway {
    root: Element,
    identity: ManagedIdentity,
    http: reqwest::blocking::Client,
    cache: RefCell<HashMap<String, (Value, Instant)>>,
    tokens: RefCell<TokenCache>,
    offset: Cell<Duration>,
}

impl Gateway {
    /// A gateway for `fragment` (`rawxml`), after substituting `named_values`; the vocabulary
    /// is checked first. `http` makes the `send-request` calls.
    pub fn new(
        fragment: &str,
        named_values: &BTreeMap<String, String>,
        identity: ManagedIdentity,
        http: reqwest::blocking::Client,
    ) -> Result<Gateway, String> {
        let text = substitute_named_values(fragment, named_values)?;
        check_policy_vocabulary(&text).map_err(|p| p.join("\n"))?;
        let root = parse_document(&text)?;
        let mut problems = Vec::new();
        compile_expressions(&root, &mut problems);
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(Gateway {
            root,
            identity,
            http,
            cache: RefCell::new(HashMap::new()),
            tokens: RefCell::new(HashMap::new()),
            offset: Cell::new(Duration::ZERO),
        })
    }

    /// A gateway whose managed identity is the emulator's APIM instance, with a plain HTTP
    /// client (30 s timeout) for `send-request`.
    pub fn with_emulator(
        fragment: &str,
        named_values: &BTreeMap<String, String>,
        emu: &Emulator,
    ) -> Result<Gateway, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("build an HTTP client: {e}"))?;
        Gateway::new(
            fragment,
            named_values,
            ManagedIdentity::from_emulator(emu),
            http,
        )
    }

    /// Moves the gateway's clock forward (cache and token expiry).
    pub fn advance(&self, by: Duration) {
        self.offset.set(self.offset.get() + by);
    }

    fn now(&self) -> Instant {
        Instant::now() + self.offset.get()
    }

    /// Runs the fragment for `request`.
    pub fn execute(&self, request: &Request) -> Result<Outcome, String> {
        let mut run = Run {
            gw: self,
            vars: BTreeMap::new(),
            headers: request.headers.clone(),
            query: request.query.clone(),
            calls: Vec::new(),
            events: Vec::new(),
            log: vec![format!("request {} {}", request.method, request.path)],
        };
        let statements: Vec<&Element> = match self.root.name.as_str() {
            "fragment" => self.root.children.iter().collect(),
            "policies" => self
                .root
                .children
                .iter()
                .filter(|s| s.name == "inbound")
                .flat_map(|s| s.children.iter())
                .collect(),
            other => return Err(format!("cannot execute a <{other}> document")),
        };
        let flow = match run.block(&statements)? {
            Step::Next => Flow::Forwarded,
            Step::Stop(flow) => flow,
        };
        Ok(Outcome {
            flow,
            headers: run.headers,
            query: run.query,
            variables: run.vars,
            calls: run.calls,
            events: run.events,
            log: run.log,
        })
    }
}

enum Step {
    Next,
    Stop(Flow),
}

/// One execution.
struct Run<'g> {
    gw: &'g Gateway,
    vars: BTreeMap<String, Value>,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    calls: Vec<Call>,
    events: Vec<String>,
    log: Vec<String>,
}

/// The outcome of evaluating something: a value, or the end of the flow.
enum Eval<T> {
    Ok(T),
    Stop(Flow),
}

macro_rules! value_or_stop {
    ($e:expr) => {
        match $e? {
            Eval::Ok(v) => v,
            Eval::Stop(flow) => return Ok(Step::Stop(flow)),
        }
    };
}

impl Run<'_> {
    fn event(&mut self, e: String) {
        self.log.push(format!("({e})"));
        self.events.push(e);
    }

    fn call(&mut self, c: Call) {
        self.log.push(c.to_string());
        self.calls.push(c);
    }

    fn block(&mut self, statements: &[&Element]) -> Result<Step, String> {
        for s in statements {
            if let Step::Stop(flow) = self.statement(s)? {
                return Ok(Step::Stop(flow));
            }
        }
        Ok(Step::Next)
    }

    /// Evaluates a value; an APIM exception ends the flow, an unsupported construct is an
    /// error naming the element.
    fn value(&self, element: &str, raw: &str) -> Result<Eval<Typed>, String> {
        match evaluate_value(raw, &self.vars) {
            Ok(v) => Ok(Eval::Ok(v)),
            Err(Fault::Unsupported(m)) => Err(format!("<{element}>: unsupported: {m}")),
            Err(Fault::Exception(m)) => Ok(Eval::Stop(Flow::Failed {
                error: format!("<{element}>: {m}"),
            })),
        }
    }

    fn string(&self, element: &str, raw: &str) -> Result<Eval<String>, String> {
        Ok(match self.value(element, raw)? {
            Eval::Ok(v) => match v.v.render() {
                Ok(s) => Eval::Ok(s),
                Err(Fault::Unsupported(m)) => return Err(format!("<{element}>: unsupported: {m}")),
                Err(Fault::Exception(m)) => Eval::Stop(Flow::Failed { error: m }),
            },
            Eval::Stop(f) => Eval::Stop(f),
        })
    }

    fn attr<'e>(e: &'e Element, name: &str) -> Result<&'e str, String> {
        e.attr(name)
            .ok_or_else(|| format!("<{}> needs the attribute `{name}`", e.name))
    }

    fn literal_bool(e: &Element, name: &str) -> Result<bool, String> {
        match e.attr(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!(
                "<{} {name}=\"{other}\">: expected true or false",
                e.name
            )),
        }
    }

    fn statement(&mut self, e: &Element) -> Result<Step, String> {
        match e.name.as_str() {
            "base" => Ok(Step::Next),
            "choose" => self.choose(e),
            "cache-lookup-value" => self.cache_lookup(e),
            "cache-store-value" => self.cache_store(e),
            "authentication-managed-identity" => {
                let token = value_or_stop!(self.managed_identity(e));
                match (token, e.attr("output-token-variable-name")) {
                    (Some(t), Some(var)) => {
                        self.vars.insert(var.to_string(), Value::Str(t));
                    }
                    (Some(t), None) => set_pairs(
                        &mut self.headers,
                        "Authorization",
                        "override",
                        vec![format!("Bearer {t}")],
                        true,
                    ),
                    (None, _) => {}
                }
                Ok(Step::Next)
            }
            "send-request" => self.send_request(e),
            "set-variable" => {
                let name = Self::attr(e, "name")?;
                let v = value_or_stop!(self.value("set-variable", Self::attr(e, "value")?));
                if matches!(v.v, Value::Context | Value::Variables | Value::Body(_)) {
                    return Err(format!("<set-variable name=\"{name}\">: unsupported value type {}", v.v.type_name()));
                }
                self.vars.insert(name.to_string(), v.v);
                Ok(Step::Next)
            }
            "set-header" | "set-query-parameter" => {
                let (name, action, values) = value_or_stop!(self.named_values_of(e));
                let target = if e.name == "set-header" {
                    &mut self.headers
                } else {
                    &mut self.query
                };
                set_pairs(target, &name, &action, values, e.name == "set-header");
                Ok(Step::Next)
            }
            "return-response" => {
                if e.attr("response-variable-name").is_some() {
                    return Err("<return-response response-variable-name> is not supported by this executor".into());
                }
                let mut status = 200;
                let mut reason = "OK".to_string();
                for c in &e.children {
                    match c.name.as_str() {
                        "set-status" => {
                            let code = value_or_stop!(self.string("set-status", Self::attr(c, "code")?));
                            status = code
                                .parse()
                                .map_err(|_| format!("<set-status code=\"{code}\">: not a status code"))?;
                            reason = value_or_stop!(self.string("set-status", c.attr("reason").unwrap_or("")));
                        }
                        "set-header" | "set-body" => {}
                        other => return Err(format!("<{other}> inside <return-response> is not supported")),
                    }
                }
                Ok(Step::Stop(Flow::Returned { status, reason }))
            }
            "include-fragment" => Err(format!(
                "<include-fragment fragment-id=\"{}\">: a fragment is not expected to include another",
                e.attr("fragment-id").unwrap_or("")
            )),
            other => Err(format!("<{other}> is not supported by this executor")),
        }
    }

    fn choose(&mut self, e: &Element) -> Result<Step, String> {
        for branch in &e.children {
            match branch.name.as_str() {
                "when" => {
                    let cond = Self::attr(branch, "condition")?;
                    if !cond.trim_start().starts_with("@(") {
                        return Err(format!(
                            "<when condition=\"{cond}\">: not a policy expression"
                        ));
                    }
                    let v = value_or_stop!(self.value("when", cond));
                    let taken = match (v.ty, v.v) {
                        (Ty::Bool, Value::Bool(b)) => b,
                        (ty, _) => {
                            return Err(format!(
                                "<when condition=\"{cond}\">: a {ty:?}, not a bool"
                            ))
                        }
                    };
                    if taken {
                        let children: Vec<&Element> = branch.children.iter().collect();
                        return self.block(&children);
                    }
                }
                "otherwise" => {
                    let children: Vec<&Element> = branch.children.iter().collect();
                    return self.block(&children);
                }
                other => return Err(format!("<{other}> inside <choose>")),
            }
        }
        Ok(Step::Next)
    }

    fn check_caching_type(e: &Element) -> Result<(), String> {
        match e.attr("caching-type") {
            None | Some("internal" | "prefer-external") => Ok(()),
            Some(other) => Err(format!(
                "<{} caching-type=\"{other}\">: only the built-in cache is executed",
                e.name
            )),
        }
    }

    fn cache_lookup(&mut self, e: &Element) -> Result<Step, String> {
        Self::check_caching_type(e)?;
        let key = value_or_stop!(self.string("cache-lookup-value", Self::attr(e, "key")?));
        let var = Self::attr(e, "variable-name")?;
        let now = self.gw.now();
        let hit = self
            .gw
            .cache
            .borrow()
            .get(&key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.clone());
        match hit {
            Some(v) => {
                self.event(format!("cache-lookup-value {key}: hit"));
                self.vars.insert(var.to_string(), v);
            }
            None => {
                self.event(format!("cache-lookup-value {key}: miss"));
                if let Some(d) = e.attr("default-value") {
                    let v = value_or_stop!(self.value("cache-lookup-value", d));
                    self.vars.insert(var.to_string(), v.v);
                }
            }
        }
        Ok(Step::Next)
    }

    fn cache_store(&mut self, e: &Element) -> Result<Step, String> {
        Self::check_caching_type(e)?;
        let key = value_or_stop!(self.string("cache-store-value", Self::attr(e, "key")?));
        let value = value_or_stop!(self.value("cache-store-value", Self::attr(e, "value")?));
        let duration = value_or_stop!(self.string("cache-store-value", Self::attr(e, "duration")?));
        let seconds: u64 = duration.parse().map_err(|_| {
            format!("<cache-store-value duration=\"{duration}\">: not a number of seconds")
        })?;
        if !matches!(
            value.v,
            Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::Null
        ) {
            return Err(format!(
                "<cache-store-value>: caching a {} is not supported",
                value.v.type_name()
            ));
        }
        let until = self.gw.now() + Duration::from_secs(seconds);
        self.gw
            .cache
            .borrow_mut()
            .insert(key.clone(), (value.v, until));
        self.events
            .push(format!("cache-store-value {key}: stored for {seconds} s"));
        Ok(Step::Next)
    }

    /// `authentication-managed-identity`: the token (APIM keeps it until it expires), `None`
    /// when it failed with `ignore-error="true"`.
    fn managed_identity(&mut self, e: &Element) -> Result<Eval<Option<String>>, String> {
        let resource = match self.string(
            "authentication-managed-identity",
            Self::attr(e, "resource")?,
        )? {
            Eval::Ok(r) => r,
            Eval::Stop(f) => return Ok(Eval::Stop(f)),
        };
        let client_id = e.attr("client-id").map(str::to_string);
        let ignore_error = Self::literal_bool(e, "ignore-error")?;
        let key = (resource.clone(), client_id.clone());
        let now = self.gw.now();
        if let Some((token, _)) = self
            .gw
            .tokens
            .borrow()
            .get(&key)
            .filter(|(_, until)| *until > now)
        {
            self.events
                .push(format!("managed-identity token for {resource}: cached"));
            return Ok(Eval::Ok(Some(token.clone())));
        }
        let id = &self.gw.identity;
        let mut query = vec![
            ("api-version", "2018-02-01".to_string()),
            ("resource", resource.clone()),
        ];
        match &client_id {
            Some(c) => query.push(("client_id", c.clone())),
            None => query.push(("msi_res_id", id.api_management_id.clone())),
        }
        let base = format!("{}/metadata/identity/oauth2/token", id.endpoint);
        let url = reqwest::Url::parse_with_params(&base, &query)
            .map_err(|e| format!("managed-identity URL {base}: {e}"))?;
        let headers = vec![("Metadata".to_string(), "true".to_string())];
        let mut call = Call {
            kind: CallKind::ManagedIdentity,
            method: "GET".into(),
            url: url.to_string(),
            headers: headers.clone(),
            body: None,
            status: None,
            error: None,
        };
        let result: Result<(String, u64), String> =
            match id.http.get(url).header("Metadata", "true").send() {
                Err(e) => {
                    call.error = Some(e.to_string());
                    Err(format!("the managed-identity endpoint did not answer: {e}"))
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    call.status = Some(status);
                    let text = resp.text().unwrap_or_default();
                    if status != 200 {
                        Err(format!(
                            "the managed-identity endpoint answered {status}: {text}"
                        ))
                    } else {
                        serde_json::from_str::<Json>(&text)
                            .map_err(|e| format!("the managed-identity answer is not JSON: {e}"))
                            .and_then(|j| {
                                let token = j
                                    .get("access_token")
                                    .and_then(Json::as_str)
                                    .ok_or("the managed-identity answer has no access_token")?
                                    .to_string();
                                let expires_in = j
                                    .get("expires_in")
                                    .and_then(|v| {
                                        v.as_str()
                                            .and_then(|s| s.parse().ok())
                                            .or_else(|| v.as_u64())
                                    })
                                    .unwrap_or(0);
                                Ok((token, expires_in))
                            })
                    }
                }
            };
        self.call(call);
        match result {
            Ok((token, expires_in)) => {
                let until = self.gw.now() + Duration::from_secs(expires_in);
                self.gw
                    .tokens
                    .borrow_mut()
                    .insert(key, (token.clone(), until));
                Ok(Eval::Ok(Some(token)))
            }
            Err(error) if ignore_error => {
                self.events.push(format!(
                    "managed-identity token for {resource}: failed, ignored ({error})"
                ));
                Ok(Eval::Ok(None))
            }
            Err(error) => Ok(Eval::Stop(Flow::Failed {
                error: format!("<authentication-managed-identity>: {error}"),
            })),
        }
    }

    /// The name, exists-action and values of a `set-header` / `set-query-parameter`.
    fn named_values_of(&self, e: &Element) -> Result<Eval<(String, String, Vec<String>)>, String> {
        let name = match self.string(&e.name, Self::attr(e, "name")?)? {
            Eval::Ok(n) => n,
            Eval::Stop(f) => return Ok(Eval::Stop(f)),
        };
        let action = match self.string(&e.name, e.attr("exists-action").unwrap_or("override"))? {
            Eval::Ok(a) => a,
            Eval::Stop(f) => return Ok(Eval::Stop(f)),
        };
        if !matches!(action.as_str(), "override" | "skip" | "append" | "delete") {
            return Err(format!("<{} exists-action=\"{action}\">", e.name));
        }
        let mut values = Vec::new();
        for c in &e.children {
            if c.name != "value" {
                return Err(format!("<{}> inside <{}>", c.name, e.name));
            }
            match self.string("value", &c.text)? {
                Eval::Ok(v) => values.push(v),
                Eval::Stop(f) => return Ok(Eval::Stop(f)),
            }
        }
        Ok(Eval::Ok((name, action, values)))
    }

    fn send_request(&mut self, e: &Element) -> Result<Step, String> {
        let mode = value_or_stop!(self.string("send-request", e.attr("mode").unwrap_or("new")));
        if mode != "new" {
            return Err(format!(
                "<send-request mode=\"{mode}\"> is not supported by this executor"
            ));
        }
        let var =
            value_or_stop!(self.string("send-request", Self::attr(e, "response-variable-name")?));
        let timeout =
            value_or_stop!(self.string("send-request", e.attr("timeout").unwrap_or("60")));
        let timeout: u64 = timeout.parse().map_err(|_| {
            format!("<send-request timeout=\"{timeout}\">: not a number of seconds")
        })?;
        let ignore_error = Self::literal_bool(e, "ignore-error")?;
        let mut url = None;
        let mut method = None;
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = None;
        for c in &e.children {
            match c.name.as_str() {
                "set-url" => url = Some(value_or_stop!(self.string("set-url", &c.text))),
                "set-method" => {
                    if is_expression(&c.text) {
                        return Err("<set-method> does not allow policy expressions".into());
                    }
                    method = Some(c.text.trim().to_string());
                }
                "set-header" => {
                    let (name, action, values) = value_or_stop!(self.named_values_of(c));
                    set_pairs(&mut headers, &name, &action, values, true);
                }
                "set-body" => {
                    if c.attr("template").is_some() {
                        return Err("<set-body template> is not supported by this executor".into());
                    }
                    body = Some(value_or_stop!(self.string("set-body", &c.text)));
                }
                "authentication-managed-identity" => {
                    if let Some(t) = value_or_stop!(self.managed_identity(c)) {
                        set_pairs(
                            &mut headers,
                            "Authorization",
                            "override",
                            vec![format!("Bearer {t}")],
                            true,
                        );
                    }
                }
                other => {
                    return Err(format!(
                        "<{other}> inside <send-request> is not supported by this executor"
                    ))
                }
            }
        }
        let url = url.ok_or("<send-request mode=\"new\"> needs <set-url>")?;
        let method = method.ok_or("<send-request mode=\"new\"> needs <set-method>")?;
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("<set-method>{method}</set-method>: {e}"))?;
        let mut call = Call {
            kind: CallKind::SendRequest,
            method: method.clone(),
            url: url.clone(),
            headers: redact_headers(&headers),
            body: body.as_deref().map(redact_body),
            status: None,
            error: None,
        };
        let mut rb = self
            .gw
            .http
            .request(m, &url)
            .timeout(Duration::from_secs(timeout));
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let result = rb.send().and_then(|resp| {
            let status = resp.status().as_u16();
            resp.text().map(|body| HttpResponse {
                status,
                body,
                consumed: Cell::new(false),
            })
        });
        match result {
            Ok(resp) => {
                call.status = Some(resp.status);
                self.call(call);
                self.vars.insert(var, Value::Response(Rc::new(resp)));
                Ok(Step::Next)
            }
            Err(err) => {
                call.error = Some(err.to_string());
                self.call(call);
                if ignore_error {
                    self.vars.insert(var, Value::Null);
                    Ok(Step::Next)
                } else {
                    Ok(Step::Stop(Flow::Failed {
                        error: format!("<send-request> {method} {url}: {err}"),
                    }))
                }
            }
        }
    }
}

/// `exists-action` on a list of (name, value) pairs; header names compare without case.
fn set_pairs(
    pairs: &mut Vec<(String, String)>,
    name: &str,
    action: &str,
    values: Vec<String>,
    ignore_case: bool,
) {
    let same = |k: &String| {
        if ignore_case {
            k.eq_ignore_ascii_case(name)
        } else {
            k == name
        }
    };
    let exists = pairs.iter().any(|(k, _)| same(k));
    match action {
        "delete" => pairs.retain(|(k, _)| !same(k)),
        "skip" if exists => {}
        "append" => pairs.extend(values.into_iter().map(|v| (name.to_string(), v))),
        _ => {
            pairs.retain(|(k, _)| !same(k));
            pairs.extend(values.into_iter().map(|v| (name.to_string(), v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, Value> {
        let login = HttpResponse {
            status: 200,
            body: r#"{"auth":{"client_token":"s.tok","policies":["a"]},"n":5,"b":true,"nul":null}"#
                .into(),
            consumed: Cell::new(false),
        };
        let denied = HttpResponse {
            status: 403,
            body: r#"{"errors":["permission denied"]}"#.into(),
            consumed: Cell::new(false),
        };
        BTreeMap::from([
            ("s".to_string(), Value::Str("x\"y".into())),
            ("login".to_string(), Value::Response(Rc::new(login))),
            ("denied".to_string(), Value::Response(Rc::new(denied))),
            ("nothing".to_string(), Value::Null),
            ("n".to_string(), Value::Int(3)),
        ])
    }

    fn ok(src: &str) -> String {
        match evaluate(src, &vars()) {
            Ok(v) => v.to_string(),
            Err(e) => panic!("{src}: {e}"),
        }
    }

    fn err(src: &str) -> String {
        match evaluate(src, &vars()) {
            Ok(v) => panic!("{src} evaluated to {v}"),
            Err(e) => e,
        }
    }

    #[test]
    fn tokens_and_literals() {
        assert_eq!(
            tokenize(r#"!x.ContainsKey("a\"b\\c") && 10 != 2"#).unwrap(),
            vec![
                Tok::Punct("!"),
                Tok::Ident("x".into()),
                Tok::Punct("."),
                Tok::Ident("ContainsKey".into()),
                Tok::Punct("("),
                Tok::Str("a\"b\\c".into()),
                Tok::Punct(")"),
                Tok::Punct("&&"),
                Tok::Int(10),
                Tok::Punct("!="),
                Tok::Int(2),
            ]
        );
        assert_eq!(ok(r#""a\tb\u0041""#), "\"a\\tbA\"");
        assert_eq!(ok("true"), "True");
        assert_eq!(ok("null"), "");
        assert_eq!(ok("42"), "42");
        assert!(err(r#""\q""#).contains("escape"));
        assert!(err(r#"@"verbatim""#).contains("verbatim"));
        assert!(err(r#"$"x{1}""#).contains("interpolated"));
        assert!(err("'c'").contains("character literals"));
        assert!(err("1.5").contains("numeric literal"));
        assert!(err("\"open").contains("unterminated"));
    }

    #[test]
    fn operators_and_precedence() {
        assert_eq!(ok("!true || true && false"), "False");
        assert_eq!(ok("true || false && false"), "True");
        assert_eq!(ok("1 == 1 && \"a\" != \"b\""), "True");
        assert_eq!(ok("\"a\" + \"b\" == \"ab\""), "True");
        assert_eq!(ok("\"n=\" + 5 + \",b=\" + true"), "\"n=5,b=True\"");
        assert_eq!(ok("\"x\" + null"), "\"x\"");
        assert_eq!(ok("(1 == 2) == false"), "True");
        // Short-circuit: the right side would throw.
        assert_eq!(ok("context.Variables.ContainsKey(\"missing\") && ((IResponse)context.Variables[\"missing\"]).StatusCode == 200"), "False");
        assert!(err("1 + 2").contains("only string concatenation"));
        assert!(err("!1").contains("needs a bool"));
        assert!(err("1 < 2").contains("comparison operators"));
        assert!(err("1 == \"1\"").contains("between"));
        assert!(err("x").contains("unsupported identifier"));
        assert!(err("true ? 1 : 2").contains("`?`"));
        assert!(err("new JObject()").contains("object creation"));
        assert!(err("(1").contains("expected `)`"));
        assert!(err("1 2").contains("after a complete expression"));
    }

    #[test]
    fn variables_and_casts() {
        assert_eq!(ok("context.Variables.ContainsKey(\"s\")"), "True");
        assert_eq!(ok("!context.Variables.ContainsKey(\"t\")"), "True");
        assert_eq!(ok("(string)context.Variables[\"s\"]"), "\"x\\\"y\"");
        assert_eq!(
            ok("(string)context.Variables.GetValueOrDefault(\"t\", \"dflt\")"),
            "\"dflt\""
        );
        assert_eq!(
            ok("context.Variables.GetValueOrDefault(\"s\", \"\")"),
            "\"x\\\"y\""
        );
        assert_eq!(
            ok("context.Variables.GetValueOrDefault<string>(\"t\") == null"),
            "True"
        );
        assert_eq!(
            ok("context.Variables.GetValueOrDefault<int>(\"n\") == 3"),
            "True"
        );
        assert_eq!(
            ok("context.Variables.GetValueOrDefault<IResponse>(\"login\").StatusCode"),
            "200"
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"nothing\"]) == null"),
            "True"
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]) != null"),
            "True"
        );
        // APIM exceptions.
        assert!(err("(string)context.Variables[\"t\"]").contains("KeyNotFoundException"));
        assert!(err("(IResponse)context.Variables[\"s\"]").contains("InvalidCastException"));
        assert!(err("(string)context.Variables[\"login\"]").contains("InvalidCastException"));
        assert!(
            err("context.Variables.GetValueOrDefault<int>(\"s\")").contains("InvalidCastException")
        );
        assert!(
            err("((IResponse)context.Variables[\"nothing\"]).StatusCode")
                .contains("NullReferenceException")
        );
        // What C# would not compile, or what is outside the subset.
        assert!(err("context.Variables[\"login\"].StatusCode").contains("needs a cast"));
        assert!(err("(bool)context.Variables[\"s\"]").contains("unsupported cast (bool)"));
        assert!(err("(JObject)context.Variables[\"s\"]").contains("unsupported cast"));
        assert!(err("context.Request.Headers").contains("context.Request"));
        assert!(err("context.Variables.GetValueOrDefault(\"s\")").contains("without <T>"));
        assert!(err("context.Variables.GetValueOrDefault<JArray>(\"s\")").contains("type argument"));
        assert!(err("context.Variables.TryGetValue(\"s\")").contains("TryGetValue"));
    }

    #[test]
    fn responses_and_json() {
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).StatusCode == 200"),
            "True"
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"denied\"]).StatusCode"),
            "403"
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"auth\"][\"client_token\"].ToString()"),
            "\"s.tok\""
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"auth\"][\"policies\"][0].ToString()"),
            "\"a\""
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"n\"].ToString()"),
            "\"5\""
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"b\"].ToString()"),
            "\"True\""
        );
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"nul\"].ToString()"),
            "\"\""
        );
        assert_eq!(ok("(string)((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"auth\"][\"client_token\"]"), "\"s.tok\"");
        assert_eq!(
            ok("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"missing\"] == null"),
            "True"
        );
        assert!(
            ok("((IResponse)context.Variables[\"denied\"]).Body.As<string>()")
                .contains("permission denied")
        );
        // A missing field, then ToString(): APIM throws.
        assert!(err("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"auth\"][\"nope\"].ToString()")
            .contains("NullReferenceException"));
        assert!(err(
            "((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"missing\"][\"x\"]"
        )
        .contains("NullReferenceException"));
        assert!(
            err("((IResponse)context.Variables[\"login\"]).Body.As<JObject>()[\"n\"][\"x\"]")
                .contains("Cannot access child value")
        );
        assert!(
            err("((IResponse)context.Variables[\"login\"]).Body.As<JArray>()")
                .contains("type argument")
        );
        assert!(err("((IResponse)context.Variables[\"login\"]).Headers").contains("Headers"));
        assert!(
            err("((IResponse)context.Variables[\"login\"]).Body.As<JObject>(x: true)")
                .contains("argument")
        );
    }

    #[test]
    fn a_body_is_read_once_unless_preserved() {
        let v = vars();
        let read = "((IResponse)context.Variables[\"login\"]).Body.As<JObject>(preserveContent: true)[\"n\"].ToString()";
        assert_eq!(evaluate(read, &v).unwrap().to_string(), "\"5\"");
        assert_eq!(evaluate(read, &v).unwrap().to_string(), "\"5\"");
        let once = "((IResponse)context.Variables[\"login\"]).Body.As<string>()";
        evaluate(once, &v).unwrap();
        let again = evaluate(once, &v).unwrap_err();
        assert!(again.contains("already read"), "{again}");
    }

    #[test]
    fn named_values_are_substituted_first() {
        let nv = BTreeMap::from([
            ("addr".to_string(), "http://v:8200".to_string()),
            ("role".to_string(), "orders".to_string()),
        ]);
        assert_eq!(
            substitute_named_values("<a b=\"{{addr}}/v1\">@(\"{{role}}\")</a>", &nv).unwrap(),
            "<a b=\"http://v:8200/v1\">@(\"orders\")</a>"
        );
        let e = substitute_named_values("{{nope}}", &nv).unwrap_err();
        assert!(
            e.contains("{{nope}}") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn vocabulary() {
        let good = r#"<fragment>
  <set-variable name="a" value="@("x" + "<y>")" />
  <choose><when condition="@(context.Variables.ContainsKey("a"))"><set-header name="X" exists-action="override"><value>v</value></set-header></when><otherwise /></choose>
</fragment>"#;
        check_policy_vocabulary(good).unwrap();
        let bad = r#"<fragment>
  <set-variable name="a" vaule="x" />
  <cache-lookup-value key="k" variable-name="@("v")" caching-type="memory" />
  <send-request response-variable-name="r"><set-method>GET</set-method><set-url>http://x</set-url></send-request>
  <set-url>http://x</set-url>
  <base />
  <include-fragment fragment-id="other" />
  <rewrite-uri template="/x" />
  <choose><otherwise /><when condition="true" /></choose>
  <set-header name="X" />
</fragment>"#;
        let problems = check_policy_vocabulary(bad).unwrap_err();
        let all = problems.join("\n");
        for needle in [
            "<set-variable> has no attribute `vaule`",
            "<set-variable> needs the attribute `value`",
            "<cache-lookup-value variable-name> does not allow policy expressions",
            "caching-type=\"memory\"",
            "children out of order: <set-url> after <set-method>",
            "<set-url> cannot appear inside <fragment>",
            "<base> cannot appear in a policy fragment",
            "<include-fragment> cannot appear in a policy fragment",
            "<rewrite-uri> is not a policy element",
            "<otherwise> must be the last child",
            "<when condition> must be a policy expression",
            "<set-header> needs a <value>",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let broken = check_policy_vocabulary("<fragment><choose></fragment>").unwrap_err();
        assert!(broken[0].contains("not well-formed"), "{broken:?}");
    }

    fn offline(fragment: &str) -> Gateway {
        let identity = ManagedIdentity {
            endpoint: "http://127.0.0.1:9".into(),
            api_management_id: "/subscriptions/x".into(),
            http: reqwest::blocking::Client::new(),
        };
        Gateway::new(
            fragment,
            &BTreeMap::new(),
            identity,
            reqwest::blocking::Client::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn executes_choose_variables_headers_and_the_cache() {
        let gw = offline(
            r#"<fragment>
  <cache-lookup-value key="k" variable-name="v" />
  <choose>
    <when condition="@(!context.Variables.ContainsKey("v"))">
      <set-variable name="v" value="fresh" />
      <cache-store-value key="k" value="@((string)context.Variables["v"])" duration="60" />
    </when>
    <otherwise><set-variable name="from-cache" value="@(true)" /></otherwise>
  </choose>
  <set-header name="X-V" exists-action="override"><value>@((string)context.Variables["v"])</value></set-header>
  <set-header name="X-Drop" exists-action="delete" />
  <set-query-parameter name="q" exists-action="append"><value>2</value></set-query-parameter>
</fragment>"#,
        );
        let mut req = Request::get("/x");
        req.headers.push(("x-drop".into(), "1".into()));
        req.query.push(("q".into(), "1".into()));
        let first = gw.execute(&req).unwrap();
        assert_eq!(first.flow, Flow::Forwarded);
        assert_eq!(first.header("x-v"), Some("fresh"));
        assert_eq!(first.header("X-Drop"), None);
        assert_eq!(
            first.query,
            vec![("q".into(), "1".into()), ("q".into(), "2".into())]
        );
        assert!(!first.variables.contains_key("from-cache"));
        let second = gw.execute(&req).unwrap();
        assert!(matches!(
            second.variables.get("from-cache"),
            Some(Value::Bool(true))
        ));
        assert_eq!(second.events, vec!["cache-lookup-value k: hit".to_string()]);
        gw.advance(Duration::from_secs(61));
        let third = gw.execute(&req).unwrap();
        assert!(!third.variables.contains_key("from-cache"), "expired");
    }

    #[test]
    fn return_response_and_runtime_failures() {
        let gw = offline(
            r#"<fragment><choose><when condition="@(true)"><return-response><set-status code="502" reason="Bad Gateway" /></return-response></when></choose><set-variable name="after" value="1" /></fragment>"#,
        );
        let o = gw.execute(&Request::get("/")).unwrap();
        assert_eq!(
            o.flow,
            Flow::Returned {
                status: 502,
                reason: "Bad Gateway".into()
            }
        );
        assert!(!o.variables.contains_key("after"));
        let gw = offline(
            r#"<fragment><set-variable name="x" value="@((string)context.Variables["missing"])" /></fragment>"#,
        );
        let o = gw.execute(&Request::get("/")).unwrap();
        assert!(
            matches!(&o.flow, Flow::Failed { error } if error.contains("KeyNotFoundException")),
            "{:?}",
            o.flow
        );
        // The managed-identity endpoint does not answer: ignored, or a failure.
        let gw = offline(
            r#"<fragment><authentication-managed-identity resource="api://x" output-token-variable-name="t" ignore-error="true" /></fragment>"#,
        );
        let o = gw.execute(&Request::get("/")).unwrap();
        assert_eq!(o.flow, Flow::Forwarded);
        assert!(!o.variables.contains_key("t"));
        assert!(o.calls[0].error.is_some());
        let gw = offline(
            r#"<fragment><authentication-managed-identity resource="api://x" output-token-variable-name="t" /></fragment>"#,
        );
        assert!(matches!(
            gw.execute(&Request::get("/")).unwrap().flow,
            Flow::Failed { .. }
        ));
        // Executor limits are errors, not outcomes.
        let gw = offline(
            r#"<fragment><set-variable name="x" value="@(context.Request.Url)" /></fragment>"#,
        );
        let e = gw.execute(&Request::get("/")).unwrap_err();
        assert!(e.contains("unsupported: context.Request"), "{e}");
        let e = Gateway::new(
            "<fragment><include-fragment fragment-id=\"f\" /></fragment>",
            &BTreeMap::new(),
            ManagedIdentity {
                endpoint: String::new(),
                api_management_id: String::new(),
                http: reqwest::blocking::Client::new(),
            },
            reqwest::blocking::Client::new(),
        )
        .err()
        .unwrap_or_default();
        assert!(e.contains("include-fragment"), "{e}");
    }
}
