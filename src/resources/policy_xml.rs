//! APIM policy XML: the `rawxml` ⇄ `xml` relation and comparison by meaning.
//!
//! In the `rawxml` format, APIM leaves policy expressions (`@(...)` and `@{...}`) unescaped,
//! so they may hold `"`, `<` or `&` as C# needs them; the `xml` format is the same document
//! with those characters escaped, which makes it well-formed XML. Drift is judged on the
//! canonical form of the `xml` view: whitespace between elements, attribute order and entity
//! spelling never count, while any change of an element, attribute or text does.

use std::fmt::Write;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Which format a policy document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Expressions raw (APIM `rawxml`).
    Raw,
    /// Fully XML-escaped (APIM `xml`).
    Xml,
}

fn xml_escape(c: char, out: &mut String) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&apos;"),
        c => out.push(c),
    }
}

/// The `xml` format of a `rawxml` document: the characters inside every policy expression
/// are escaped. Expressions are `@(` … `)` or `@{` … `}`, balanced, with C# string and
/// character literals skipped.
pub fn raw_to_xml(raw: &str) -> String {
    raw_to_xml_mapped(raw).0
}

/// [`raw_to_xml`], with the byte offset in `raw` of every byte offset of the result (plus
/// one past the end), so that positions found in the `xml` view can edit the raw text.
fn raw_to_xml_mapped(raw: &str) -> (String, Vec<usize>) {
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let just: Vec<char> = chars.iter().map(|(_, c)| *c).collect();
    let mut out = String::with_capacity(raw.len() + 64);
    let mut map = Vec::with_capacity(raw.len() + 64);
    let emit = |out: &mut String, map: &mut Vec<usize>, piece: &str, at: usize| {
        out.push_str(piece);
        map.extend(std::iter::repeat_n(at, piece.len()));
    };
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '@' && matches!(just.get(i + 1), Some('(' | '{')) {
            let end = expression_end(&just, i + 1);
            emit(&mut out, &mut map, "@", at);
            for &(eat, e) in &chars[i + 1..end] {
                let mut piece = String::new();
                xml_escape(e, &mut piece);
                emit(&mut out, &mut map, &piece, eat);
            }
            i = end;
        } else {
            let mut buf = [0u8; 4];
            emit(&mut out, &mut map, c.encode_utf8(&mut buf), at);
            i += 1;
        }
    }
    map.push(raw.len());
    (out, map)
}

/// The policy document APIM gives an API that has none of its own.
pub const DEFAULT_API_POLICY: &str = "<policies>\n  <inbound>\n    <base />\n  </inbound>\n  <backend>\n    <base />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n  <on-error>\n    <base />\n  </on-error>\n</policies>";

/// Where things are in a policy's `<inbound>` section (byte offsets in the raw text).
struct Inbound {
    /// Just after the start tag of `<inbound>`.
    open_end: usize,
    /// Just after `<base />` directly in `<inbound>`, if present.
    base_end: Option<usize>,
    /// Spans of `<include-fragment fragment-id="ID"/>` elements directly in `<inbound>`,
    /// with the fragment ID.
    includes: Vec<(usize, usize, String)>,
    /// The names of the elements anywhere in `<inbound>`.
    names: Vec<String>,
}

fn inbound(raw: &str) -> Result<Inbound, String> {
    let (xml, map) = raw_to_xml_mapped(raw);
    let mut reader = Reader::from_str(&xml);
    let mut path: Vec<String> = Vec::new();
    let mut found: Option<Inbound> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader
            .read_event()
            .map_err(|e| format!("the policy is not well-formed: {e}"))?;
        let after = reader.buffer_position() as usize;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path == ["policies"] && name == "inbound" && found.is_none() {
                    found = Some(Inbound {
                        open_end: map[after],
                        base_end: None,
                        includes: Vec::new(),
                        names: Vec::new(),
                    });
                } else if path.starts_with(&["policies".to_string(), "inbound".to_string()]) {
                    if let Some(inb) = found.as_mut() {
                        inb.names.push(name.clone());
                    }
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.starts_with(&["policies".to_string(), "inbound".to_string()]) {
                    if let Some(inb) = found.as_mut() {
                        inb.names.push(name.clone());
                    }
                }
                if path == ["policies", "inbound"] {
                    if let Some(inb) = found.as_mut() {
                        if name == "base" {
                            inb.base_end = Some(map[after]);
                        } else if name == "include-fragment" {
                            let id = e
                                .try_get_attribute("fragment-id")
                                .ok()
                                .flatten()
                                .and_then(|a| {
                                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                        .ok()
                                        .map(|v| v.into_owned())
                                })
                                .unwrap_or_default();
                            inb.includes.push((map[before], map[after], id));
                        }
                    }
                } else if path == ["policies"] && name == "inbound" && found.is_none() {
                    return Err(
                        "the policy's <inbound/> is empty; expected <inbound>...</inbound>".into(),
                    );
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof if !path.is_empty() => {
                return Err(format!(
                    "the policy is not well-formed: <{}> is not closed",
                    path.join("><")
                ))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    found.ok_or_else(|| "the policy has no <policies><inbound> section".to_string())
}

/// True when the policy's `<inbound>` includes `fragment_id`.
pub fn includes_fragment(raw: &str, fragment_id: &str) -> bool {
    inbound(raw).is_ok_and(|i| i.includes.iter().any(|(_, _, id)| id == fragment_id))
}

/// `raw` with `<include-fragment fragment-id="ID" />` added to `<inbound>` right after
/// `<base />` (or first, without one), everything else untouched. Unchanged when it is
/// already there.
pub fn include_fragment(raw: &str, fragment_id: &str) -> Result<String, String> {
    let inb = inbound(raw)?;
    if inb.includes.iter().any(|(_, _, id)| id == fragment_id) {
        return Ok(raw.to_string());
    }
    let (at, indent) = insertion(raw, &inb);
    let mut id = String::new();
    fragment_id.chars().for_each(|c| xml_escape(c, &mut id));
    Ok(format!(
        "{}\n{indent}<include-fragment fragment-id=\"{id}\" />{}",
        &raw[..at],
        &raw[at..]
    ))
}

/// Where content goes in `<inbound>`: just after `<base />` (or the start tag, without one),
/// and the indent of its lines.
fn insertion(raw: &str, inb: &Inbound) -> (usize, String) {
    let at = inb.base_end.unwrap_or(inb.open_end);
    // Indent like the line the insertion point is on.
    let line_start = raw[..at].rfind('\n').map_or(0, |i| i + 1);
    let indent: String = raw[line_start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect();
    let indent = if inb.base_end.is_some() {
        indent
    } else {
        format!("{indent}  ")
    };
    (at, indent)
}

/// Where a managed block goes in the policy's `<inbound>` (byte offset in `raw`) and the
/// indent of its lines: right after `<base />`, so the parent scopes run first.
pub fn inbound_insertion(raw: &str) -> Result<(usize, String), String> {
    let inb = inbound(raw)?;
    Ok(insertion(raw, &inb))
}

/// A `cache-lookup-value` or `cache-store-value` anywhere in the policy's `<inbound>` (inside a
/// `<choose>` too), if any.
pub fn inbound_cache_policies(raw: &str) -> Option<&'static str> {
    let inb = inbound(raw).ok()?;
    ["cache-lookup-value", "cache-store-value"]
        .into_iter()
        .find(|name| inb.names.iter().any(|n| n == name))
}

/// `raw` without the `<include-fragment>` of `fragment_id` (and the whitespace before it on
/// its line), everything else untouched.
pub fn exclude_fragment(raw: &str, fragment_id: &str) -> Result<String, String> {
    let inb = inbound(raw)?;
    let mut out = raw.to_string();
    for (start, end, _) in inb
        .includes
        .iter()
        .rev()
        .filter(|(_, _, id)| id == fragment_id)
    {
        let ws_start = raw[..*start]
            .rfind(|c: char| c != ' ' && c != '\t' && c != '\r' && c != '\n')
            .map_or(0, |i| i + 1);
        out.replace_range(ws_start..*end, "");
    }
    Ok(out)
}

/// The index just past the bracket closing the one at `open`.
fn expression_end(chars: &[char], open: usize) -> usize {
    let (o, c) = if chars[open] == '(' {
        ('(', ')')
    } else {
        ('{', '}')
    };
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' => {
                let q = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != q {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            x if x == o => depth += 1,
            x if x == c => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// The canonical form of a policy document: one line per element, attributes sorted, text
/// unescaped and trimmed, comments and whitespace-only text dropped. A fragment without its
/// `<fragment>` wrapper (as APIM echoes some writes) is wrapped.
pub fn canonical(doc: &str, format: Format) -> Result<String, String> {
    let xml = match format {
        Format::Raw => raw_to_xml(doc),
        Format::Xml => doc.to_string(),
    };
    let trimmed = xml.trim_start();
    let wrapped;
    let xml = if root_name(trimmed).as_deref() == Some("fragment")
        || root_name(trimmed).as_deref() == Some("policies")
    {
        trimmed
    } else {
        wrapped = format!("<fragment>{trimmed}</fragment>");
        &wrapped
    };
    let mut reader = Reader::from_str(xml);
    let mut out = String::new();
    let mut depth = 0usize;
    // Text arrives in pieces (split by entity references and CDATA); it is compared whole.
    let mut text = String::new();
    let flush = |out: &mut String, text: &mut String, depth: usize| {
        let t = text.trim();
        if !t.is_empty() {
            let _ = writeln!(out, "{}text {t:?}", "  ".repeat(depth));
        }
        text.clear();
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                flush(&mut out, &mut text, depth);
                write_element(&mut out, depth, &e)?;
                depth += 1;
            }
            Ok(Event::Empty(e)) => {
                flush(&mut out, &mut text, depth);
                write_element(&mut out, depth, &e)?;
                let _ = writeln!(out, "{}</>", "  ".repeat(depth));
            }
            Ok(Event::End(_)) => {
                flush(&mut out, &mut text, depth);
                depth = depth.saturating_sub(1);
                let _ = writeln!(out, "{}</>", "  ".repeat(depth));
            }
            Ok(Event::Text(t)) => {
                let raw = t.decode().map_err(|e| format!("bad text: {e}"))?;
                let un = quick_xml::escape::unescape(&raw)
                    .map_err(|e| format!("bad entity in text: {e}"))?;
                text.push_str(&un);
            }
            Ok(Event::GeneralRef(r)) => {
                let name = r.decode().map_err(|e| format!("bad entity: {e}"))?;
                let ch = match name.as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => numeric_reference(other)
                        .ok_or_else(|| format!("unknown entity &{other};"))?,
                };
                text.push(ch);
            }
            Ok(Event::CData(t)) => text.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "not well-formed at byte {}: {e}",
                    reader.error_position()
                ))
            }
        }
    }
    if depth != 0 {
        return Err("not well-formed: an element is not closed".into());
    }
    flush(&mut out, &mut text, depth);
    Ok(out)
}

/// `#38` or `#x26` as a character.
fn numeric_reference(r: &str) -> Option<char> {
    let n = r.strip_prefix('#')?;
    let code = match n.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => n.parse().ok()?,
    };
    char::from_u32(code)
}

fn root_name(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return Some(String::from_utf8_lossy(e.name().as_ref()).into_owned())
            }
            Ok(Event::Eof) | Err(_) => return None,
            _ => {}
        }
    }
}

fn write_element(
    out: &mut String,
    depth: usize,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<(), String> {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|x| format!("bad attribute: {x}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|x| format!("bad attribute value: {x}"))?
            .into_owned();
        attrs.push((key, value));
    }
    attrs.sort();
    let _ = write!(
        out,
        "{}<{}",
        "  ".repeat(depth),
        String::from_utf8_lossy(e.name().as_ref())
    );
    for (k, v) in attrs {
        let _ = write!(out, " {k}={v:?}");
    }
    out.push_str(">\n");
    Ok(())
}

/// True when two documents mean the same policy. A document that does not parse is only
/// equal to the same text.
pub fn equivalent(a: &str, af: Format, b: &str, bf: Format) -> bool {
    match (canonical(a, af), canonical(b, bf)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = r#"<fragment>
  <choose>
    <when condition="@(!context.Variables.ContainsKey("v") && 1 < 2)">
      <set-header name="X-A" exists-action="override"><value>@(((IResponse)context.Variables["r"]).Body.As<JObject>()["a"].ToString())</value></set-header>
    </when>
  </choose>
</fragment>"#;

    #[test]
    fn raw_expressions_are_escaped_into_well_formed_xml() {
        let xml = raw_to_xml(RAW);
        assert!(xml.contains(r#"condition="@(!context.Variables.ContainsKey(&quot;v&quot;) &amp;&amp; 1 &lt; 2)""#), "{xml}");
        assert!(
            xml.contains("Body.As&lt;JObject&gt;()[&quot;a&quot;]"),
            "{xml}"
        );
        canonical(RAW, Format::Raw).expect("well-formed after escaping");
        assert!(
            canonical(RAW, Format::Xml).is_err(),
            "raw is not XML as such"
        );
    }

    #[test]
    fn formatting_is_not_a_difference_but_edits_are() {
        let reformatted = RAW.replace("\n  ", "\r\n      ").replace(
            r#"name="X-A" exists-action="override""#,
            r#"exists-action="override"   name="X-A""#,
        );
        assert!(equivalent(RAW, Format::Raw, &reformatted, Format::Raw));
        // The same document in APIM's xml format.
        assert!(equivalent(RAW, Format::Raw, &raw_to_xml(RAW), Format::Xml));
        // Without the <fragment> wrapper, as some answers come back.
        let inner = RAW
            .trim_start_matches("<fragment>")
            .trim_end_matches("</fragment>");
        assert!(equivalent(RAW, Format::Raw, inner, Format::Raw));
        // Real edits.
        assert!(!equivalent(
            RAW,
            Format::Raw,
            &RAW.replace("X-A", "X-B"),
            Format::Raw
        ));
        assert!(!equivalent(
            RAW,
            Format::Raw,
            &RAW.replace("[\"a\"]", "[\"b\"]"),
            Format::Raw
        ));
        assert!(!equivalent(
            RAW,
            Format::Raw,
            &RAW.replace("</choose>", "</choose><base />"),
            Format::Raw
        ));
    }

    #[test]
    fn entity_spelling_is_not_a_difference() {
        let a = "<policies><inbound><set-header name=\"a\"><value>x &amp; y</value></set-header></inbound></policies>";
        let b = "<policies><inbound><set-header name='a'><value>x &#38; y</value></set-header></inbound></policies>";
        let c = "<policies><inbound><set-header name=\"a\"><value><![CDATA[x & y]]></value></set-header></inbound></policies>";
        assert!(equivalent(a, Format::Xml, c, Format::Xml));
        assert!(
            equivalent(a, Format::Xml, b, Format::Xml),
            "numeric references"
        );
    }

    #[test]
    fn include_goes_after_base_and_leaves_the_rest_alone() {
        let policy = "<policies>\r\n  <inbound>\r\n    <base />\r\n    <set-header name=\"a\" exists-action=\"override\"><value>@(\"x\" + \"<y>\")</value></set-header>\r\n  </inbound>\r\n  <backend><base /></backend>\r\n</policies>";
        let with = include_fragment(policy, "vault-orders").unwrap();
        assert_eq!(
            with,
            policy.replacen(
                "<base />",
                "<base />\n    <include-fragment fragment-id=\"vault-orders\" />",
                1
            )
        );
        assert!(includes_fragment(&with, "vault-orders"));
        assert!(!includes_fragment(policy, "vault-orders"));
        assert_eq!(
            include_fragment(&with, "vault-orders").unwrap(),
            with,
            "idempotent"
        );
        let two = include_fragment(&with, "vault-payments").unwrap();
        assert!(
            includes_fragment(&two, "vault-orders") && includes_fragment(&two, "vault-payments")
        );
        assert_eq!(exclude_fragment(&two, "vault-payments").unwrap(), with);
        assert_eq!(exclude_fragment(&with, "vault-orders").unwrap(), policy);
        // Without <base />: first in <inbound>.
        let bare = "<policies><inbound><rate-limit calls=\"5\" renewal-period=\"1\" /></inbound></policies>";
        let with = include_fragment(bare, "f").unwrap();
        assert!(
            with.starts_with(
                "<policies><inbound>\n  <include-fragment fragment-id=\"f\" /><rate-limit"
            ),
            "{with}"
        );
        assert_eq!(exclude_fragment(&with, "f").unwrap(), bare);
        assert!(include_fragment(DEFAULT_API_POLICY, "f").is_ok());
        assert!(include_fragment("<policies/>", "f").is_err());
        assert!(include_fragment("<policies><inbound>", "f").is_err());
    }

    #[test]
    fn broken_documents_are_errors_not_panics() {
        for bad in [
            "<a>",
            "<a></b>",
            "<a x=\"1\" x=\"2\"/>",
            "&bogus;",
            "@(",
            "<a>@(\"</a>",
        ] {
            let _ = canonical(bad, Format::Raw);
            let _ = canonical(bad, Format::Xml);
        }
        assert!(canonical("<a>", Format::Xml).is_err());
    }
}
