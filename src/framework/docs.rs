//! Documentation rendered from the schema declarations, in the Terraform registry layout
//! (the same shape `tfplugindocs` produces): front matter, description, example, schema
//! grouped into required / optional / read-only, nested schemas, and import.

use std::fmt::Write;

use super::schema::{Attribute, Block, Nesting, Presence, Schema, Validator};
use super::value::Type;

/// What kind of page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The provider's index page.
    Provider,
    /// A managed resource.
    Resource,
    /// A data source.
    DataSource,
    /// An ephemeral resource.
    Ephemeral,
    /// A list resource (`terraform query`): the schema is its `config` block's.
    ListResource,
    /// An action (Terraform 1.14+); its schema is the `config` block's.
    Action,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Provider => "Provider",
            Kind::Resource => "Resource",
            Kind::DataSource => "Data Source",
            Kind::Ephemeral => "Ephemeral Resource",
            Kind::ListResource => "List Resource",
            Kind::Action => "Action",
        }
    }
}

/// One page to render.
pub struct Page<'a> {
    /// Kind of page.
    pub kind: Kind,
    /// Type name (or the provider name for the index).
    pub name: &'a str,
    /// The schema.
    pub schema: &'a Schema,
    /// An example configuration (HCL), if any.
    pub example: Option<&'a str>,
    /// An import example (shell), for resources.
    pub import: Option<&'a str>,
    /// An `import` block by identity (Terraform 1.12+), for resources that have one.
    pub import_by_identity: Option<&'a str>,
    /// Extra Markdown after the description (notes, links to guides).
    pub notes: Option<&'a str>,
}

fn type_label(t: &Type) -> String {
    match t {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::List(e) => format!("List of {}", type_label(e)),
        Type::Set(e) => format!("Set of {}", type_label(e)),
        Type::Map(e) => format!("Map of {}", type_label(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

fn attribute_line(a: &Attribute) -> String {
    let mut flags = vec![type_label(&a.ty)];
    if a.sensitive {
        flags.push("Sensitive".into());
    }
    if a.write_only {
        flags.push("Write-only".into());
    }
    if a.deprecated.is_some() {
        flags.push("Deprecated".into());
    }
    let mut line = format!("- `{}` ({}) {}", a.name, flags.join(", "), a.description);
    for v in &a.validators {
        match v {
            Validator::OneOf(vals) | Validator::EachOneOf(vals) => {
                let _ = write!(
                    line,
                    " Possible values: {}.",
                    vals.iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Validator::Check(_) => {}
        }
    }
    if let Some(d) = &a.default {
        let shown = match d {
            super::value::Value::String(s) => format!("`\"{s}\"`"),
            super::value::Value::Number(n) => format!("`{}`", n.as_str()),
            super::value::Value::Bool(b) => format!("`{b}`"),
            _ => String::new(),
        };
        if !shown.is_empty() {
            let _ = write!(line, " Defaults to {shown}.");
        }
    }
    if a.requires_replace {
        line.push_str(" Changing it forces a new resource.");
    }
    if let Some(msg) = a.deprecated {
        let _ = write!(line, " **Deprecated:** {msg}");
    }
    line.trim_end().to_string()
}

fn anchor(path: &str) -> String {
    format!("nestedblock--{}", path.replace('.', "--"))
}

/// Renders a block's schema section, then its nested blocks' sections.
fn block_section(out: &mut String, block: &Block, path: Option<&str>) {
    let mut nested = Vec::new();
    type Pick = fn(&Attribute) -> bool;
    let groups: [(&str, Pick); 3] = [
        ("Required", |a| a.presence == Presence::Required),
        ("Optional", |a| {
            matches!(a.presence, Presence::Optional | Presence::OptionalComputed)
        }),
        ("Read-Only", |a| a.presence == Presence::Computed),
    ];
    for (title, pick) in groups {
        let mut lines: Vec<String> = block
            .attributes
            .iter()
            .filter(|a| pick(a))
            .map(attribute_line)
            .collect();
        if title == "Optional"
            || (title == "Required" && block.blocks.iter().any(|b| b.min_items > 0))
        {
            for b in &block.blocks {
                let required = b.min_items > 0;
                if (title == "Required") != required {
                    continue;
                }
                let full = path.map_or(b.name.to_string(), |p| format!("{p}.{}", b.name));
                let nesting = match b.nesting {
                    Nesting::Single => "Block",
                    Nesting::List => "Block List",
                    Nesting::Set => "Block Set",
                };
                let mut limits = Vec::new();
                if b.min_items > 0 {
                    limits.push(format!("Min: {}", b.min_items));
                }
                if b.max_items > 0 {
                    limits.push(format!("Max: {}", b.max_items));
                }
                let limits = if limits.is_empty() {
                    String::new()
                } else {
                    format!(", {}", limits.join(", "))
                };
                lines.push(format!(
                    "- `{}` ({nesting}{limits}) {} (see [below for nested schema](#{}))",
                    b.name,
                    b.block.description,
                    anchor(&full)
                ));
                nested.push((full, &b.block));
            }
        }
        if lines.is_empty() {
            continue;
        }
        lines.sort();
        let _ = writeln!(out, "### {title}\n");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
        out.push('\n');
    }
    for (full, b) in nested {
        let _ = writeln!(out, "<a id=\"{}\"></a>", anchor(&full));
        let _ = writeln!(out, "### Nested Schema for `{full}`\n");
        block_section(out, b, Some(&full));
    }
}

/// Renders one page.
pub fn render(page: &Page<'_>) -> String {
    let mut out = String::new();
    let desc = page.schema.block.description;
    let title = match page.kind {
        Kind::Provider => format!("{} Provider", page.name),
        k => format!("{} {} - {}", page.name, k.label(), "apim"),
    };
    // `tfplugindocs validate` refuses a subcategory on the index page (even an empty one);
    // resource and data source pages may have one.
    let subcategory = match page.kind {
        Kind::Provider => "",
        _ => "subcategory: \"\"\n",
    };
    let _ = writeln!(
        out,
        "---\npage_title: \"{title}\"\n{subcategory}description: |-\n  {}\n---\n",
        desc.replace('\n', "\n  ")
    );
    match page.kind {
        Kind::Provider => {
            let _ = writeln!(out, "# {} Provider\n", page.name);
        }
        k => {
            let _ = writeln!(out, "# {} ({})\n", page.name, k.label());
        }
    }
    let _ = writeln!(out, "{desc}\n");
    if let Some(n) = page.notes {
        let _ = writeln!(out, "{}\n", n.trim_end());
    }
    if let Some(ex) = page.example {
        let _ = writeln!(
            out,
            "## Example Usage\n\n```terraform\n{}\n```\n",
            ex.trim_end()
        );
    }
    if page.kind == Kind::ListResource {
        // The schema of a list resource is that of the `config` block of a `list` block.
        out.push_str(
            "## Configuration Schema\n\nThe arguments of the `config` block of a `list` block.\n\n",
        );
        block_section(&mut out, &page.schema.block, None);
        let trimmed = out.trim_end();
        return format!("{trimmed}\n");
    }
    if page.kind == Kind::Action {
        out.push_str("## Schema\n\nThe arguments of the action's `config` block.\n\n");
    } else {
        out.push_str("## Schema\n\n");
    }
    block_section(&mut out, &page.schema.block, None);
    if let Some(imp) = page.import {
        let _ = writeln!(
            out,
            "## Import\n\nImport is supported using the following syntax:\n\n```shell\n{}\n```",
            imp.trim_end()
        );
        if let Some(by_identity) = page.import_by_identity {
            let _ = writeln!(
                out,
                "\nWith Terraform 1.12 or later, an `import` block can name the object by its identity instead:\n\n```terraform\n{}\n```",
                by_identity.trim_end()
            );
        }
    }
    let trimmed = out.trim_end();
    format!("{trimmed}\n")
}

/// The page of a provider function (tfplugindocs layout, `docs/functions/<name>.md`): its
/// summary, description, an example, its signature and its arguments.
pub fn render_function(
    provider: &str,
    f: &dyn super::function::Function,
    example: Option<&str>,
) -> String {
    let mut out = String::new();
    let name = f.name();
    let _ = writeln!(
        out,
        "---\npage_title: \"{name} function - {provider}\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n",
        f.summary()
    );
    let _ = writeln!(out, "# function: {name}\n\n{}\n", f.description());
    if let Some(ex) = example {
        let _ = writeln!(
            out,
            "## Example Usage\n\n```terraform\n{}\n```\n",
            ex.trim_end()
        );
    }
    let params = f.params();
    let signature = params
        .iter()
        .map(|p| format!("{} {}", p.name, hcl_type(&p.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "## Signature\n\n```text\n{name}({signature}) {}\n```\n",
        hcl_type(&f.returns())
    );
    let _ = writeln!(out, "## Arguments\n");
    for (i, p) in params.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. `{}` ({}) {}",
            i + 1,
            p.name,
            hcl_type(&p.ty),
            p.description
        );
    }
    out
}

/// A type as Terraform writes it in a signature: `string`, `list(string)`, ...
fn hcl_type(t: &Type) -> String {
    match t {
        Type::String => "string".into(),
        Type::Number => "number".into(),
        Type::Bool => "bool".into(),
        Type::List(e) => format!("list({})", hcl_type(e)),
        Type::Set(e) => format!("set({})", hcl_type(e)),
        Type::Map(e) => format!("map({})", hcl_type(e)),
        Type::Object(_) => "object".into(),
        Type::Tuple(_) => "tuple".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    #[test]
    fn groups_attributes_and_links_nested_blocks() {
        let s = Schema::new(
            Block::new("A thing.")
                .attr(
                    Attribute::string("name")
                        .required()
                        .requires_replace()
                        .describe("Name."),
                )
                .attr(
                    Attribute::string("mode")
                        .one_of(&["a", "b"])
                        .describe("Mode."),
                )
                .attr(Attribute::string("id").computed().describe("ID."))
                .block(
                    NestedBlock::list(
                        "rule",
                        Block::new("A rule.")
                            .attr(Attribute::string("path").required().describe("Path.")),
                    )
                    .items(1, 0),
                ),
        );
        let md = render(&Page {
            kind: Kind::Resource,
            name: "apim_thing",
            schema: &s,
            example: Some("resource \"apim_thing\" \"x\" {}"),
            import: Some("terraform import apim_thing.x x"),
            import_by_identity: None,
            notes: None,
        });
        assert!(md.contains("# apim_thing (Resource)"), "{md}");
        assert!(md.contains("### Required\n\n- `name` (String) Name. Changing it forces a new resource.\n- `rule` (Block List, Min: 1) A rule."), "{md}");
        assert!(
            md.contains("- `mode` (String) Mode. Possible values: `a`, `b`."),
            "{md}"
        );
        assert!(md.contains("### Read-Only\n\n- `id` (String) ID."), "{md}");
        assert!(md.contains("### Nested Schema for `rule`"), "{md}");
        assert!(
            md.contains("```shell\nterraform import apim_thing.x x\n```"),
            "{md}"
        );
    }

    #[test]
    fn a_list_resource_page_documents_its_config_block() {
        let s = Schema::new(
            Block::new("Things.").attr(Attribute::string("prefix").describe("Only these.")),
        );
        let md = render(&Page {
            kind: Kind::ListResource,
            name: "apim_thing",
            schema: &s,
            example: Some("list \"apim_thing\" \"all\" {\n  provider = apim\n}"),
            import: None,
            import_by_identity: None,
            notes: None,
        });
        assert!(md.contains("# apim_thing (List Resource)"), "{md}");
        assert!(md.contains("## Configuration Schema"), "{md}");
        assert!(md.contains("- `prefix` (String) Only these."), "{md}");
        assert!(!md.contains("## Schema\n"), "{md}");
    }
}
