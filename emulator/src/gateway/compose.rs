//! The effective policy of a request: `{{named value}}` substitution (textual, in every attribute
//! value and text, before expressions are parsed; values are not substituted again, so a named
//! value cannot contain another), `<include-fragment>` replaced by the fragment's statements, and
//! `<base/>` replaced by the parent scope's section (global ← product ← API ← operation).

use super::document::{Child, Node};
use super::rules::policies::Section;

/// Replaces every `{{name}}` whose name `lookup` knows; others are left as written.
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find("{{") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        match after
            .find("}}")
            .and_then(|q| lookup(&after[..q]).map(|v| (q, v)))
        {
            Some((q, v)) => {
                out.push_str(&v);
                rest = &after[q + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where fragments and named values come from.
pub struct Sources<'a> {
    /// A named value's value by display name.
    pub named_value: &'a dyn Fn(&str) -> Option<String>,
    /// A fragment's content (the `<fragment>` element) by id.
    pub fragment: &'a dyn Fn(&str) -> Option<Node>,
}

/// A copy of `node` with named values substituted and fragments inserted. A fragment's content
/// is inserted once: an `<include-fragment>` inside a fragment (which the rules refuse) is left
/// in place, and fails when it runs.
pub fn prepare(node: &Node, src: &Sources<'_>, in_fragment: bool) -> Node {
    let mut out = Node {
        attrs: node
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, src.named_value)))
            .collect(),
        children: Vec::new(),
        ..node.clone()
    };
    for c in &node.children {
        match c {
            Child::Text(t) => out
                .children
                .push(Child::Text(substitute(t, src.named_value))),
            Child::Elem(e) if e.name == "include-fragment" && !in_fragment => {
                match e.attr("fragment-id").and_then(|id| (src.fragment)(id)) {
                    Some(frag) => {
                        for fc in frag.elems() {
                            out.children.push(Child::Elem(prepare(fc, src, true)));
                        }
                    }
                    None => out.children.push(Child::Elem(e.clone())),
                }
            }
            Child::Elem(e) => out.children.push(Child::Elem(prepare(e, src, in_fragment))),
        }
    }
    out
}

/// A statement of the effective policy and the scope it came from.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// The policy element (prepared).
    pub node: Node,
    /// `global`, `product`, `api` or `operation`.
    pub scope: &'static str,
}

/// The four sections of the effective policy, in `Section::ALL` order.
pub type Sections = [Vec<Stmt>; 4];

fn section_items(doc: Option<&Node>, s: Section) -> Vec<Node> {
    let base = || Node {
        name: "base".into(),
        attrs: Vec::new(),
        children: Vec::new(),
        line: 0,
        col: 0,
    };
    match doc.and_then(|d| d.elems().find(|e| e.name == s.name())) {
        Some(sec) => sec.elems().cloned().collect(),
        // A section a document leaves out inherits the parent's, as `<base/>` would.
        None => vec![base()],
    }
}

/// The platform's default for a section below the global scope: `forward-request` in backend
/// (APIM sets it up at the global scope by default), nothing elsewhere.
fn platform_default(s: Section) -> Vec<Stmt> {
    if s == Section::Backend {
        vec![Stmt {
            node: Node {
                name: "forward-request".into(),
                attrs: Vec::new(),
                children: Vec::new(),
                line: 0,
                col: 0,
            },
            scope: "global",
        }]
    } else {
        Vec::new()
    }
}

fn compose(items: Vec<Node>, scope: &'static str, parent: &[Stmt]) -> Vec<Stmt> {
    let mut out = Vec::new();
    for n in items {
        if n.name == "base" {
            out.extend(parent.iter().cloned());
        } else {
            out.push(Stmt { node: n, scope });
        }
    }
    out
}

/// The effective sections for a request: the global policy (or APIM's default global policy
/// when none is stored) with each lower scope's policy composed over its parent's, in the order
/// given (`global`, then `product`, `api`, `operation` as the request has them). A scope
/// without a policy behaves as `<base/>` in every section.
pub fn effective(levels: &[(&'static str, Option<&Node>)]) -> Sections {
    Section::ALL.map(|s| {
        let mut acc = platform_default(s);
        for (scope, doc) in levels {
            acc = compose(section_items(*doc, s), scope, &acc);
        }
        acc
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::document::parse;

    #[test]
    fn named_values_fragments_and_base() {
        let nv = |n: &str| (n == "addr").then(|| "http://v:1".to_string());
        assert_eq!(
            substitute("{{addr}}/x{{missing}}", &nv),
            "http://v:1/x{{missing}}"
        );
        let frag = |id: &str| {
            (id == "f").then(|| {
                parse("<fragment><set-variable name=\"a\" value=\"{{addr}}\" /></fragment>")
                    .expect("frag")
            })
        };
        let src = Sources {
            named_value: &nv,
            fragment: &frag,
        };
        let api = prepare(&parse("<policies><inbound><include-fragment fragment-id=\"f\" /><base /></inbound><backend><base /></backend></policies>").expect("api"), &src, false);
        let global =
            parse("<policies><inbound><set-header name=\"g\" /></inbound><outbound /></policies>")
                .expect("global");
        let eff = effective(&[("global", Some(&global)), ("api", Some(&api))]);
        let names = |i: usize| {
            eff[i]
                .iter()
                .map(|s| (s.node.name.clone(), s.scope))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(0),
            vec![
                ("set-variable".to_string(), "api"),
                ("set-header".to_string(), "global")
            ]
        );
        assert_eq!(eff[0][0].node.attr("value"), Some("http://v:1"));
        assert_eq!(names(1), vec![("forward-request".to_string(), "global")]);
        assert!(names(2).is_empty(), "an empty global outbound");
        // No stored policies at all: forward-request only.
        let eff = effective(&[("global", None), ("api", None)]);
        assert_eq!(eff[1].len(), 1);
        assert!(eff[0].is_empty() && eff[3].is_empty());
        // Four scopes; an operation without <base/> in inbound cuts its parents' inbound.
        let doc = |x: &str| parse(x).expect("doc");
        let g = doc("<policies><inbound><set-header name=\"g\" /></inbound></policies>");
        let p = doc("<policies><inbound><base /><set-header name=\"p\" /></inbound></policies>");
        let o = doc("<policies><inbound><set-header name=\"o\" /></inbound></policies>");
        let levels = [("global", Some(&g)), ("product", Some(&p)), ("api", None)];
        let eff = effective(&levels);
        let scopes: Vec<_> = eff[0].iter().map(|s| s.scope).collect();
        assert_eq!(scopes, vec!["global", "product"]);
        let eff = effective(&[levels[0], levels[1], levels[2], ("operation", Some(&o))]);
        let scopes: Vec<_> = eff[0].iter().map(|s| s.scope).collect();
        assert_eq!(scopes, vec!["operation"]);
        assert_eq!(eff[1].len(), 1, "backend still inherits forward-request");
    }
}
