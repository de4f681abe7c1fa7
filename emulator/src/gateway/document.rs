//! A stored policy document (the `xml` format) parsed into a tree of elements with their line and
//! column, for the save-time rules (whose errors name the position) and for the pipeline.
//! Comments are dropped; CDATA is text.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

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

fn element(s: &BytesStart<'_>, line: usize, col: usize) -> Result<Node, String> {
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let raw = String::from_utf8_lossy(&a.value).into_owned();
        let val = quick_xml::escape::unescape(&raw)
            .map_err(|e| e.to_string())?
            .into_owned();
        attrs.push((key, val));
    }
    Ok(Node {
        name: String::from_utf8_lossy(s.name().as_ref()).into_owned(),
        attrs,
        children: Vec::new(),
        line,
        col,
    })
}

fn push_text(stack: &mut [Node], t: &str) {
    if let Some(top) = stack.last_mut() {
        if let Some(Child::Text(prev)) = top.children.last_mut() {
            prev.push_str(t);
        } else {
            top.children.push(Child::Text(t.to_string()));
        }
    }
}

fn close(stack: &mut [Node], root: &mut Option<Node>, n: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Child::Elem(n)),
        None => *root = Some(n),
    }
}

/// Parses a well-formed document (the stored form).
pub fn parse(xml: &str) -> Result<Node, String> {
    let lines = Lines::new(xml);
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(0);
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        // Leading whitespace belongs to text events; a tag starts at its '<'.
        let tag_at = xml
            .get(pos..)
            .and_then(|r| r.find('<'))
            .map_or(pos, |o| pos + o);
        let (line, col) = lines.at(xml, tag_at);
        match ev {
            Event::Start(s) => stack.push(element(&s, line, col)?),
            Event::Empty(s) => {
                let n = element(&s, line, col)?;
                close(&mut stack, &mut root, n);
            }
            Event::End(_) => {
                let n = stack.pop().ok_or("unexpected end tag")?;
                close(&mut stack, &mut root, n);
            }
            Event::Text(t) => push_text(&mut stack, &t.decode().map_err(|e| e.to_string())?),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| e.to_string())?;
                let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| e.to_string())?
                    .into_owned();
                push_text(&mut stack, &resolved);
            }
            Event::CData(c) => push_text(&mut stack, &String::from_utf8_lossy(&c)),
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| "The policy document is empty.".to_string())
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
