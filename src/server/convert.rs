//! Conversions between the framework's types and tfplugin6 messages: schemas, diagnostics,
//! attribute paths and DynamicValues.

use crate::framework::diag::{AttrPath, Diagnostic, Diags, PathStep, Severity};
use crate::framework::identity::IdentitySchema;
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting, Presence, Schema};
use crate::framework::value::{Type, Value};
use crate::server::proto::tfplugin6 as pb;

use super::codec;

/// A framework schema as Terraform expects it.
pub fn schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block(&s.block)),
    }
}

/// An identity schema as Terraform expects it: string attributes, each required to import.
pub fn identity_schema(i: &IdentitySchema) -> pb::ResourceIdentitySchema {
    pb::ResourceIdentitySchema {
        version: i.version,
        identity_attributes: i
            .attributes
            .iter()
            .map(|a| pb::resource_identity_schema::IdentityAttribute {
                name: a.name.to_string(),
                r#type: Type::String.to_json().to_string().into_bytes(),
                required_for_import: true,
                optional_for_import: false,
                description: a.description.to_string(),
            })
            .collect(),
    }
}

/// An identity value as Terraform expects it.
pub fn identity(v: &Value, i: &IdentitySchema, d: &mut Diags) -> Option<pb::ResourceIdentityData> {
    Some(pb::ResourceIdentityData {
        identity_data: Some(encode(v, &i.object_type(), "identity", d)?),
    })
}

fn block(b: &Block) -> pb::schema::Block {
    pb::schema::Block {
        version: 0,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b.blocks.iter().map(nested).collect(),
        description: b.description.to_string(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: b.deprecated.is_some(),
        deprecation_message: b.deprecated.unwrap_or_default().to_string(),
    }
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: a.name.to_string(),
        r#type: a.ty.to_json().to_string().into_bytes(),
        nested_type: None,
        description: a.description.to_string(),
        required: a.presence == Presence::Required,
        optional: matches!(a.presence, Presence::Optional | Presence::OptionalComputed),
        computed: a.is_computed(),
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: a.deprecated.is_some(),
        write_only: a.write_only,
        deprecation_message: a.deprecated.unwrap_or_default().to_string(),
    }
}

fn nested(n: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    let nesting = match n.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
    };
    pb::schema::NestedBlock {
        type_name: n.name.to_string(),
        block: Some(block(&n.block)),
        nesting: nesting as i32,
        min_items: n.min_items,
        max_items: n.max_items,
    }
}

/// Framework diagnostics as protocol diagnostics.
pub fn diags(d: &Diags) -> Vec<pb::Diagnostic> {
    d.0.iter().map(diagnostic).collect()
}

fn diagnostic(d: &Diagnostic) -> pb::Diagnostic {
    let severity = match d.severity {
        Severity::Error => pb::diagnostic::Severity::Error,
        Severity::Warning => pb::diagnostic::Severity::Warning,
    };
    pb::Diagnostic {
        severity: severity as i32,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        attribute: d.attribute.as_ref().map(path),
    }
}

/// An attribute path as the protocol spells it.
pub fn path(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attr(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

/// Decodes a DynamicValue (msgpack preferred, JSON accepted) of `ty`. A missing value is
/// null. Decoding errors become a diagnostic that names `what`.
pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str, d: &mut Diags) -> Value {
    let Some(dv) = dv else {
        return Value::Null;
    };
    let r = if !dv.msgpack.is_empty() {
        codec::from_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        codec::from_json(&dv.json, ty)
    } else {
        Ok(Value::Null)
    };
    r.unwrap_or_else(|e| {
        d.error(
            "Malformed value from Terraform",
            format!(
                "The provider could not decode the {what}: {e}. This is a bug in the provider or a Terraform version it does not support; please report it with the Terraform version."
            ),
        );
        Value::Null
    })
}

/// Encodes a value of `ty` as msgpack. Encoding errors become a diagnostic.
pub fn encode(v: &Value, ty: &Type, what: &str, d: &mut Diags) -> Option<pb::DynamicValue> {
    match codec::to_msgpack(v, ty) {
        Ok(msgpack) => Some(pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        }),
        Err(e) => {
            d.error(
                "Provider produced a value it cannot encode",
                format!("The {what} does not match its schema: {e}. This is a bug in the provider; please report it."),
            );
            None
        }
    }
}
