//! Policy XML as APIM stores and returns it.
//!
//! What the emulator normalises, and why:
//! - **Service and API policies** (`<policies>` documents) are re-serialised the way APIM's .NET
//!   XML writer does (see the spec example `ApiManagementCreateApiPolicy.json`): whitespace-only
//!   text between elements is dropped, each element goes on its own line indented by two spaces,
//!   lines end with CRLF, empty elements are written `<name attr="v" />`, attributes keep their
//!   order and are double-quoted, and entity encoding is canonical (text escapes `& < >`,
//!   attributes escape `& < > "`; character references are resolved). Elements whose content is
//!   text (or mixed text and elements) are written inline with their text untouched.
//! - **Policy fragments** keep the author's layout (the spec examples return them byte for byte):
//!   only the `<fragment>` wrapper is handled — the stored value is the wrapper's inner content; a
//!   GET wraps it again, the PUT response shows the inner content as the spec example does.
//! - **`xml` vs `rawxml`**: the stored form is well-formed XML (the `xml` format). In `rawxml`,
//!   policy expressions — an attribute value or a text node that starts with `@(` or `@{` — are
//!   written without XML escaping (C# quotes, `<`, `>`, `&` as typed). Accepting `rawxml` input
//!   means finding each expression's end by balancing brackets (skipping C# string and character
//!   literals) and escaping it; returning `rawxml` unescapes exactly those regions. Everything
//!   outside expressions must be well-formed XML in both formats.
//!
//! Documents are parsed with quick-xml; anything it refuses is a `ValidationError`.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Wire format of a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// XML-encoded (the default).
    Xml,
    /// Expressions not XML-encoded.
    RawXml,
}

impl Format {
    /// Parses the `format` value; `None` for unknown values. The `*-link` formats (a URL to fetch
    /// the policy from) are reported separately by callers.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "xml" => Some(Format::Xml),
            "rawxml" => Some(Format::RawXml),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Xml => "xml",
            Format::RawXml => "rawxml",
        }
    }
}

/// A parsed node.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An element.
    Elem(Elem),
    /// Character data, unescaped.
    Text(String),
    /// A comment's content, verbatim.
    Comment(String),
    /// A CDATA section's content, verbatim.
    CData(String),
}

/// A parsed element.
#[derive(Debug, Clone, PartialEq)]
pub struct Elem {
    /// Qualified name as written.
    pub name: String,
    /// Attributes in document order, values unescaped.
    pub attrs: Vec<(String, String)>,
    /// Children in order.
    pub children: Vec<Node>,
    /// Byte offset of the start tag in the parsed text.
    pub pos: usize,
}

impl Elem {
    /// The value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Visits this element and all descendants.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Elem)) {
        f(self);
        for c in &self.children {
            if let Node::Elem(e) = c {
                e.walk(f);
            }
        }
    }
}

fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let mut end = pos.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |p| before.len() - p - 1)
        + 1;
    (line, col)
}

/// Parses a well-formed document with exactly one root element.
pub fn parse(xml: &str) -> Result<Elem, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(0);
        let ev = reader.read_event().map_err(|e| {
            let pos = usize::try_from(reader.error_position()).unwrap_or(before);
            let (l, c) = line_col(xml, pos);
            format!("Error in line {l}, column {c}: {e}")
        })?;
        let err_here = |msg: String| {
            let (l, c) = line_col(xml, before);
            format!("Error in line {l}, column {c}: {msg}")
        };
        match ev {
            Event::Start(s) => stack.push(start_elem(&s, before).map_err(err_here)?),
            Event::Empty(s) => {
                // An empty element has no end tag: it is complete right away.
                let elem = start_elem(&s, before).map_err(err_here)?;
                close(&mut stack, &mut root, elem).map_err(err_here)?;
            }
            Event::End(_) => {
                let elem = stack
                    .pop()
                    .ok_or_else(|| err_here("unexpected end tag".into()))?;
                close(&mut stack, &mut root, elem).map_err(err_here)?;
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| err_here(e.to_string()))?
                    .into_owned();
                push_text(&mut stack, &s).map_err(err_here)?;
            }
            Event::GeneralRef(r) => {
                let name = r
                    .decode()
                    .map_err(|e| err_here(e.to_string()))?
                    .into_owned();
                let resolved = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| err_here(e.to_string()))?
                    .into_owned();
                push_text(&mut stack, &resolved).map_err(err_here)?;
            }
            Event::CData(c) => {
                let s = String::from_utf8_lossy(&c).into_owned();
                match stack.last_mut() {
                    Some(top) => top.children.push(Node::CData(s)),
                    None => return Err(err_here("CDATA outside the root element".into())),
                }
            }
            Event::Comment(c) => {
                let s = String::from_utf8_lossy(&c).into_owned();
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node::Comment(s));
                }
            }
            Event::Decl(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(err_here("DTDs are not allowed".into())),
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("The element '{}' is not closed.", open.name));
    }
    root.ok_or_else(|| "The policy document is empty.".to_string())
}

fn start_elem(s: &quick_xml::events::BytesStart<'_>, pos: usize) -> Result<Elem, String> {
    let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
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
    Ok(Elem {
        name,
        attrs,
        children: Vec::new(),
        pos,
    })
}

fn push_text(stack: &mut [Elem], s: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(top) => {
            if let Some(Node::Text(prev)) = top.children.last_mut() {
                prev.push_str(s);
            } else {
                top.children.push(Node::Text(s.to_string()));
            }
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err("Data at the root level is invalid.".into()),
    }
}

fn close(stack: &mut [Elem], root: &mut Option<Elem>, elem: Elem) -> Result<(), String> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(Node::Elem(elem));
            Ok(())
        }
        None if root.is_none() => {
            *root = Some(elem);
            Ok(())
        }
        None => Err("There are multiple root elements.".into()),
    }
}

/// Escapes character data.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value for double quotes.
pub fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;")
}

fn is_element_only(e: &Elem) -> bool {
    e.children.iter().all(|c| match c {
        Node::Elem(_) | Node::Comment(_) => true,
        Node::Text(t) => t.trim().is_empty(),
        Node::CData(_) => false,
    })
}

fn write_start(e: &Elem, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(&escape_attr(v));
        out.push('"');
    }
}

fn write_inline(node: &Node, out: &mut String) {
    match node {
        Node::Text(t) => out.push_str(&escape_text(t)),
        Node::CData(c) => {
            out.push_str("<![CDATA[");
            out.push_str(c);
            out.push_str("]]>");
        }
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c);
            out.push_str("-->");
        }
        Node::Elem(e) => {
            write_start(e, out);
            if e.children.is_empty() {
                out.push_str(" />");
            } else {
                out.push('>');
                for c in &e.children {
                    write_inline(c, out);
                }
                out.push_str("</");
                out.push_str(&e.name);
                out.push('>');
            }
        }
    }
}

fn write_pretty(e: &Elem, depth: usize, out: &mut String) {
    if e.children.is_empty() || !is_element_only(e) {
        write_inline(&Node::Elem(e.clone()), out);
        return;
    }
    write_start(e, out);
    out.push('>');
    let kids: Vec<&Node> = e
        .children
        .iter()
        .filter(|c| !matches!(c, Node::Text(_)))
        .collect();
    if kids.is_empty() {
        // Only whitespace inside: APIM writes such an element as empty.
        out.truncate(out.len() - 1);
        out.push_str(" />");
        return;
    }
    for k in kids {
        out.push_str("\r\n");
        out.push_str(&"  ".repeat(depth + 1));
        match k {
            Node::Elem(child) => write_pretty(child, depth + 1, out),
            other => write_inline(other, out),
        }
    }
    out.push_str("\r\n");
    out.push_str(&"  ".repeat(depth));
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

/// Re-serialises a parsed document in APIM's layout (see the module docs).
pub fn pretty(root: &Elem) -> String {
    let mut out = String::new();
    write_pretty(root, 0, &mut out);
    out
}

fn starts_expr(chars: &[char], i: usize) -> bool {
    chars.get(i) == Some(&'@') && matches!(chars.get(i + 1), Some('(') | Some('{'))
}

/// Returns the index just past the policy expression starting at `i` (which holds `@`).
fn scan_expr(chars: &[char], i: usize) -> Result<usize, String> {
    let mut depth = 0i64;
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            '"' => {
                let verbatim = j > 0
                    && (chars[j - 1] == '@'
                        || (j > 1 && chars[j - 2] == '@' && chars[j - 1] == '$'));
                j += 1;
                while j < chars.len() {
                    if verbatim {
                        if chars[j] == '"' {
                            if chars.get(j + 1) == Some(&'"') {
                                j += 2;
                                continue;
                            }
                            break;
                        }
                    } else if chars[j] == '\\' {
                        j += 2;
                        continue;
                    } else if chars[j] == '"' {
                        break;
                    }
                    j += 1;
                }
            }
            '\'' => {
                j += 1;
                while j < chars.len() && chars[j] != '\'' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    let prefix: String = chars[..i].iter().collect();
    let (l, c) = line_col(&prefix, prefix.len());
    Err(format!(
        "Error in line {l}, column {c}: the policy expression is not terminated."
    ))
}

fn copy_until(chars: &[char], i: &mut usize, end: &str, out: &mut String) -> Result<(), String> {
    let end: Vec<char> = end.chars().collect();
    while *i < chars.len() {
        if chars[*i..].starts_with(&end) {
            out.extend(&end);
            *i += end.len();
            return Ok(());
        }
        out.push(chars[*i]);
        *i += 1;
    }
    Err("Unexpected end of the policy document.".into())
}

/// Converts a `rawxml` document to the `xml` format by escaping its policy expressions.
pub fn raw_to_xml(raw: &str) -> Result<String, String> {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() + 16);
    let mut i = 0;
    let mut blank_run = true;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' {
            if chars[i..].starts_with(&['<', '!', '-', '-']) {
                copy_until(&chars, &mut i, "-->", &mut out)?;
                continue;
            }
            if chars[i..].starts_with(&['<', '!', '[', 'C', 'D', 'A', 'T', 'A', '[']) {
                copy_until(&chars, &mut i, "]]>", &mut out)?;
                continue;
            }
            out.push(c);
            i += 1;
            loop {
                let Some(&c) = chars.get(i) else {
                    return Err("Unexpected end of the policy document inside a tag.".into());
                };
                if c == '"' || c == '\'' {
                    out.push(c);
                    i += 1;
                    if starts_expr(&chars, i) {
                        let end = scan_expr(&chars, i)?;
                        let expr: String = chars[i..end].iter().collect();
                        let mut esc = escape_text(&expr);
                        esc = if c == '"' {
                            esc.replace('"', "&quot;")
                        } else {
                            esc.replace('\'', "&apos;")
                        };
                        out.push_str(&esc);
                        i = end;
                    }
                    while i < chars.len() && chars[i] != c {
                        out.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err("An attribute value is not terminated.".into());
                    }
                    out.push(c);
                    i += 1;
                    continue;
                }
                out.push(c);
                i += 1;
                if c == '>' {
                    break;
                }
            }
            blank_run = true;
            continue;
        }
        if blank_run && starts_expr(&chars, i) {
            let end = scan_expr(&chars, i)?;
            let expr: String = chars[i..end].iter().collect();
            out.push_str(&escape_text(&expr));
            i = end;
            blank_run = false;
            continue;
        }
        if !c.is_whitespace() {
            blank_run = false;
        }
        out.push(c);
        i += 1;
    }
    Ok(out)
}

fn unescape_lossy(s: &str) -> String {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| s.to_string())
}

/// Converts a well-formed (`xml` format) document to `rawxml` by unescaping its policy expressions.
pub fn xml_to_raw(xml: &str) -> String {
    let chars: Vec<char> = xml.chars().collect();
    let mut out = String::with_capacity(xml.len());
    let mut i = 0;
    let mut blank_run = true;
    while i < chars.len() {
        let c = chars[i];
        if c == '<' {
            if chars[i..].starts_with(&['<', '!', '-', '-']) {
                let _ = copy_until(&chars, &mut i, "-->", &mut out);
                continue;
            }
            if chars[i..].starts_with(&['<', '!', '[', 'C', 'D', 'A', 'T', 'A', '[']) {
                let _ = copy_until(&chars, &mut i, "]]>", &mut out);
                continue;
            }
            while i < chars.len() {
                let c = chars[i];
                if c == '"' || c == '\'' {
                    out.push(c);
                    i += 1;
                    let start = i;
                    while i < chars.len() && chars[i] != c {
                        i += 1;
                    }
                    let value: String = chars[start..i].iter().collect();
                    if starts_expr(&chars, start) {
                        out.push_str(&unescape_lossy(&value));
                    } else {
                        out.push_str(&value);
                    }
                    if i < chars.len() {
                        out.push(c);
                        i += 1;
                    }
                    continue;
                }
                out.push(c);
                i += 1;
                if c == '>' {
                    break;
                }
            }
            blank_run = true;
            continue;
        }
        if blank_run && starts_expr(&chars, i) {
            let start = i;
            while i < chars.len() && chars[i] != '<' {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            out.push_str(&unescape_lossy(&run));
            blank_run = false;
            continue;
        }
        if !c.is_whitespace() {
            blank_run = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Converts an input document in `format` to the stored (`xml`) form.
pub fn to_stored(value: &str, format: Format) -> Result<String, String> {
    match format {
        Format::Xml => Ok(value.to_string()),
        Format::RawXml => raw_to_xml(value),
    }
}

/// Renders a stored (`xml`) document in `format`.
pub fn render(stored: &str, format: Format) -> String {
    match format {
        Format::Xml => stored.to_string(),
        Format::RawXml => xml_to_raw(stored),
    }
}

/// The content between the root element's start and end tags, verbatim (empty for `<root/>`).
pub fn inner_content(xml: &str) -> Result<String, String> {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut start = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(0);
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(_) => {
                if depth == 0 {
                    start = Some(usize::try_from(reader.buffer_position()).unwrap_or(0));
                }
                depth += 1;
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let s = start.unwrap_or(before);
                    return Ok(xml.get(s..before).unwrap_or_default().to_string());
                }
            }
            Event::Empty(_) if depth == 0 => return Ok(String::new()),
            Event::Eof => return Err("The policy document is empty.".into()),
            _ => {}
        }
    }
}

/// The `fragment-id`s of every `<include-fragment>` in a document.
pub fn included_fragments(root: &Elem) -> Vec<String> {
    let mut ids = Vec::new();
    root.walk(&mut |e| {
        if e.name == "include-fragment" {
            if let Some(id) = e.attr("fragment-id") {
                ids.push(id.to_string());
            }
        }
    });
    ids
}

/// Named values referenced as `{{name}}` anywhere in a document.
pub fn named_value_refs(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(p) = rest.find("{{") {
        let after = &rest[p + 2..];
        match after.find("}}") {
            Some(q) => {
                let name = &after[..q];
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                    && !out.iter().any(|n| n.eq_ignore_ascii_case(name))
                {
                    out.push(name.to_string());
                }
                rest = &after[q + 2..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_matches_the_spec_example() {
        let input = "<policies> <inbound /> <backend>    <forward-request />  </backend>  <outbound /></policies>";
        let want = "<policies>\r\n  <inbound />\r\n  <backend>\r\n    <forward-request />\r\n  </backend>\r\n  <outbound />\r\n</policies>";
        let root = parse(input).expect("parse");
        assert_eq!(pretty(&root), want);
        assert_eq!(pretty(&parse(want).expect("reparse")), want);
    }

    #[test]
    fn rawxml_roundtrip() {
        let raw = r#"<fragment><choose><when condition="@(context.Variables["x"] != null && 1 < 2)"><set-body>@{ return "a<b>" + 'c'; }</set-body></when></choose></fragment>"#;
        let xml = raw_to_xml(raw).expect("to xml");
        assert!(xml.contains("&quot;x&quot;"));
        assert!(xml.contains("&amp;&amp; 1 &lt; 2"));
        parse(&xml).expect("well-formed");
        assert_eq!(xml_to_raw(&xml), raw);
    }

    #[test]
    fn malformed_is_refused() {
        assert!(parse("<policies><inbound></policies>").is_err());
        assert!(parse("<policies/><x/>").is_err());
        assert!(parse("").is_err());
        assert!(raw_to_xml("<a b=\"@(foo(\"/>").is_err());
    }

    #[test]
    fn inner_and_refs() {
        assert_eq!(
            inner_content("<fragment><a x=\"1\" /></fragment>").expect("inner"),
            "<a x=\"1\" />"
        );
        assert_eq!(inner_content("<fragment/>").expect("inner"), "");
        assert_eq!(
            named_value_refs("<a>{{vault-addr}}/v1/{{x}}{{x}}</a>"),
            vec!["vault-addr", "x"]
        );
        let root = parse("<policies><inbound><base /><include-fragment fragment-id=\"f1\" /></inbound></policies>").expect("p");
        assert_eq!(included_fragments(&root), vec!["f1"]);
    }
}
