//! A stored policy document (the `xml` format) parsed into a tree of elements with their line and
//! column, for the save-time rules (whose errors name the position) and for the pipeline.
//! Built on `crate::xml`'s parser; comments are dropped, CDATA is text.

use crate::xml;

/// An element of a policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Element name.
    pub name: String,
    /// Attributes in order, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Children in order.
    pub children: Vec<Child>,
    /// 1-based line of the start tag.
    pub line: usize,
    /// 1-based column of the start tag's `<`.
    pub col: usize,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    /// An element.
    Elem(Node),
    /// Text (character data, CDATA), unescaped.
    Text(String),
}

impl Node {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The child elements.
    pub fn elems(&self) -> impl Iterator<Item = &Node> {
        self.children.iter().filter_map(|c| match c {
            Child::Elem(e) => Some(e),
            Child::Text(_) => None,
        })
    }

    /// The text content (all text children joined).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                Child::Text(t) => Some(t.as_str()),
                Child::Elem(_) => None,
            })
            .collect()
    }

    /// Whether any text child holds more than whitespace.
    pub fn has_text(&self) -> bool {
        !self.text().trim().is_empty()
    }
}

/// Line starts of a text, to turn byte offsets into 1-based (line, column).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines(starts)
    }

    fn at(&self, text: &str, pos: usize) -> (usize, usize) {
        let line = self.0.partition_point(|s| *s <= pos).max(1);
        let start = self.0[line - 1];
        let col = text.get(start..pos).map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }
}

fn convert(e: &xml::Elem, text: &str, lines: &Lines) -> Node {
    // The offset is where the reader stood; the tag starts at the next '<'.
    let at = text
        .get(e.pos..)
        .and_then(|r| r.find('<'))
        .map_or(e.pos, |o| e.pos + o);
    let (line, col) = lines.at(text, at);
    let mut children: Vec<Child> = Vec::new();
    for c in &e.children {
        let t = match c {
            xml::Node::Elem(inner) => {
                children.push(Child::Elem(convert(inner, text, lines)));
                continue;
            }
            xml::Node::Text(t) | xml::Node::CData(t) => t,
            xml::Node::Comment(_) => continue,
        };
        match children.last_mut() {
            Some(Child::Text(prev)) => prev.push_str(t),
            _ => children.push(Child::Text(t.clone())),
        }
    }
    Node {
        name: e.name.clone(),
        attrs: e.attrs.clone(),
        children,
        line,
        col,
    }
}

/// Parses a well-formed document (the stored form).
pub fn parse(text: &str) -> Result<Node, String> {
    let root = xml::parse(text)?;
    Ok(convert(&root, text, &Lines::new(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_content() {
        let doc = "<policies>\n  <inbound>\n    <set-header name=\"a\" exists-action=\"override\"><value>x &amp; y</value></set-header>\n  </inbound>\n</policies>";
        let root = parse(doc).expect("parse");
        let inbound = root.elems().next().expect("inbound");
        assert_eq!((inbound.line, inbound.col), (2, 3));
        let sh = inbound.elems().next().expect("set-header");
        assert_eq!((sh.line, sh.col), (3, 5));
        assert_eq!(sh.attr("exists-action"), Some("override"));
        assert_eq!(sh.elems().next().expect("value").text(), "x & y");
        assert!(!inbound.has_text());
    }
}
