//! Generic validation of a configuration against its schema: validators, constraints,
//! deprecations and block counts. Unknown values are skipped: they are checked again at apply.

use super::diag::{AttrPath, Diags};
use super::schema::{Block, Constraint, Nesting, Schema};
use super::value::Value;

/// Validates `config` (an object of `schema`'s block type).
pub fn validate(schema: &Schema, config: &Value) -> Diags {
    let mut d = Diags::new();
    validate_block(&schema.block, config, &AttrPath::default(), &mut d);
    d
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::List(l) => !l.is_empty(),
        _ => true,
    }
}

fn validate_block(block: &Block, v: &Value, path: &AttrPath, d: &mut Diags) {
    if v.is_null() || v.is_unknown() {
        return;
    }
    for a in &block.attributes {
        let av = v.get(a.name);
        let ap = path.attr(a.name);
        if av.is_null() {
            continue;
        }
        if let Some(msg) = a.deprecated {
            d.attr_warning(
                ap.clone(),
                "Deprecated attribute",
                format!("`{ap}` is deprecated: {msg}"),
            );
        }
        if !av.is_wholly_known() {
            continue;
        }
        for check in &a.validators {
            check.run(av, &ap, d);
        }
    }
    for b in &block.blocks {
        let bv = v.get(b.name);
        let bp = path.attr(b.name);
        match b.nesting {
            Nesting::Single => validate_block(&b.block, bv, &bp, d),
            Nesting::List | Nesting::Set => {
                let items = bv.as_list();
                let n = items.len() as i64;
                if bv.is_wholly_known() {
                    if b.min_items > 0 && n < b.min_items {
                        d.attr_error(
                            bp.clone(),
                            "Too few blocks",
                            format!(
                                "At least {} `{}` block(s) are required.",
                                b.min_items, b.name
                            ),
                        );
                    }
                    if b.max_items > 0 && n > b.max_items {
                        d.attr_error(
                            bp.clone(),
                            "Too many blocks",
                            format!("At most {} `{}` block(s) are allowed.", b.max_items, b.name),
                        );
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    let ip = if b.nesting == Nesting::List {
                        bp.index(i)
                    } else {
                        bp.clone()
                    };
                    validate_block(&b.block, item, &ip, d);
                }
            }
        }
    }
    for c in &block.constraints {
        check_constraint(c, v, path, d);
    }
}

fn check_constraint(c: &Constraint, v: &Value, path: &AttrPath, d: &mut Diags) {
    let any_unknown = |names: &[&str]| names.iter().any(|n| v.get(n).is_unknown());
    let listed = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{}`", path.attr(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match c {
        Constraint::ExactlyOneOf(names) => {
            let set: Vec<&&str> = names.iter().filter(|n| is_set(v.get(n))).collect();
            if set.len() > 1 {
                d.attr_error(
                    path.attr(set[1]),
                    "Conflicting attributes",
                    format!(
                        "Only one of {} may be set; remove all but one.",
                        listed(names)
                    ),
                );
            } else if set.is_empty() && !any_unknown(names) {
                d.attr_error(
                    if path.0.is_empty() {
                        AttrPath::root(names[0])
                    } else {
                        path.clone()
                    },
                    "Missing required argument",
                    format!("Exactly one of {} must be set.", listed(names)),
                );
            }
        }
        Constraint::ConflictsWith(names) => {
            let set: Vec<&&str> = names.iter().filter(|n| is_set(v.get(n))).collect();
            if set.len() > 1 {
                d.attr_error(
                    path.attr(set[1]),
                    "Conflicting attributes",
                    format!(
                        "At most one of {} may be set; remove all but one.",
                        listed(names)
                    ),
                );
            }
        }
        Constraint::RequiredWith(first, others) => {
            if is_set(v.get(first)) {
                for o in others.iter() {
                    if !is_set(v.get(o)) && !v.get(o).is_unknown() {
                        d.attr_error(
                            path.attr(o),
                            "Missing required argument",
                            format!(
                                "`{}` must be set when `{}` is set.",
                                path.attr(o),
                                path.attr(first)
                            ),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    fn schema() -> Schema {
        Schema::new(
            Block::new("t")
                .attr(Attribute::string("policy"))
                .attr(Attribute::string("mode").one_of(&["a", "b"]))
                .block(NestedBlock::list(
                    "rule",
                    Block::new("r").attr(Attribute::string("path").required()),
                ))
                .constraint(Constraint::ExactlyOneOf(&["rule", "policy"])),
        )
    }

    fn obj(policy: Value, rules: usize, mode: Value) -> Value {
        Value::object([
            ("policy", policy),
            ("mode", mode),
            (
                "rule",
                Value::List(
                    (0..rules)
                        .map(|_| Value::object([("path", Value::from("x"))]))
                        .collect(),
                ),
            ),
        ])
    }

    #[test]
    fn exactly_one_of_reports_both_and_neither() {
        let d = validate(&schema(), &obj("p".into(), 1, Value::Null));
        assert!(d.has_errors(), "both set must fail");
        assert_eq!(
            d.0[0].attribute.as_ref().map(|p| p.to_string()).as_deref(),
            Some("policy")
        );
        let d = validate(&schema(), &obj(Value::Null, 0, Value::Null));
        assert!(d.has_errors(), "neither set must fail");
        assert!(!validate(&schema(), &obj(Value::Null, 1, Value::Null)).has_errors());
        assert!(!validate(&schema(), &obj(Value::UNKNOWN, 0, Value::Null)).has_errors());
    }

    #[test]
    fn one_of_names_the_attribute_and_choices() {
        let d = validate(&schema(), &obj("p".into(), 0, "c".into()));
        assert_eq!(d.0.len(), 1);
        assert!(d.0[0].detail.contains("\"a\", \"b\""), "{}", d.0[0].detail);
        assert_eq!(d.0[0].attribute, Some(AttrPath::root("mode")));
    }
}
