//! Generic planning from the schema: defaults, unknowns for computed values, prior values
//! kept where nothing changed, write-only attributes nulled, and replacement paths.
//!
//! Terraform's `proposed_new_state` already merges configuration with prior state for
//! computed attributes; this module turns it into a plan Terraform will accept
//! (see Terraform's `objchange.AssertPlanValid`).

use super::diag::AttrPath;
use super::schema::{Block, Nesting, Schema};
use super::value::Value;

/// The generic part of a plan.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The planned new state.
    pub state: Value,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttrPath>,
}

/// Plans a create (`prior` null) or an update of `schema`'s object.
pub fn plan(schema: &Schema, prior: &Value, proposed: &Value, config: &Value) -> Planned {
    let mut state = proposed.clone();
    apply_defaults_and_write_only(&schema.block, &mut state, config);
    let mut requires_replace = Vec::new();
    if prior.is_null() {
        mark_computed_unknown(&schema.block, &mut state, config);
    } else {
        let ty = schema.block.object_type();
        collect_replace(
            &schema.block,
            prior,
            &state,
            &AttrPath::default(),
            &mut requires_replace,
        );
        if !state.equal_as(prior, &ty) {
            mark_computed_unknown(&schema.block, &mut state, config);
            // Values the schema says survive an update keep their prior value.
            keep_state_for_unknown(&schema.block, &mut state, prior);
        }
    }
    Planned {
        state,
        requires_replace,
    }
}

/// Nulls write-only attributes everywhere in `state` (plan, apply, read and import results).
pub fn null_write_only(block: &Block, state: &mut Value) {
    if !state.is_null() && !state.is_unknown() {
        for a in block.attributes.iter().filter(|a| a.write_only) {
            state.set(a.name, Value::Null);
        }
        for b in &block.blocks {
            if let Some(v) = state.get_mut(b.name) {
                for_each_block_value(b.nesting, v, |item| null_write_only(&b.block, item));
            }
        }
    }
}

fn for_each_block_value(nesting: Nesting, v: &mut Value, mut f: impl FnMut(&mut Value)) {
    match (nesting, v) {
        (Nesting::Single, v) if !v.is_null() && !v.is_unknown() => f(v),
        (Nesting::List | Nesting::Set, Value::List(items)) => items.iter_mut().for_each(f),
        _ => {}
    }
}

fn apply_defaults_and_write_only(block: &Block, state: &mut Value, config: &Value) {
    if state.is_null() || state.is_unknown() {
        return;
    }
    for a in &block.attributes {
        if a.write_only {
            state.set(a.name, Value::Null);
        } else if let Some(d) = &a.default {
            if config.get(a.name).is_null() {
                state.set(a.name, d.clone());
            }
        }
    }
    each_nested_with_config(block, state, config, apply_defaults_and_write_only);
}

/// Calls `f` on every nested block value of `state` with its own configuration: single
/// blocks, and list elements by position. Set elements cannot be matched to their
/// configuration by position, so they are skipped (schemas here give set blocks no defaults
/// or computed attributes).
fn each_nested_with_config(
    block: &Block,
    state: &mut Value,
    config: &Value,
    f: fn(&Block, &mut Value, &Value),
) {
    for b in &block.blocks {
        let cfg = config.get(b.name).clone();
        if let Some(v) = state.get_mut(b.name) {
            match (b.nesting, v) {
                (Nesting::Single, v) => f(&b.block, v, &cfg),
                (Nesting::List, Value::List(items)) => {
                    let cfgs = cfg.as_list();
                    for (i, item) in items.iter_mut().enumerate() {
                        f(&b.block, item, cfgs.get(i).unwrap_or(&Value::Null));
                    }
                }
                _ => {}
            }
        }
    }
}

fn mark_computed_unknown(block: &Block, state: &mut Value, config: &Value) {
    if state.is_null() || state.is_unknown() {
        return;
    }
    for a in block.attributes.iter().filter(|a| a.is_computed()) {
        if config.get(a.name).is_null() && a.default.is_none() {
            state.set(a.name, Value::UNKNOWN);
        }
    }
    each_nested_with_config(block, state, config, mark_computed_unknown);
}

fn keep_state_for_unknown(block: &Block, state: &mut Value, prior: &Value) {
    for a in block.attributes.iter().filter(|a| a.use_state_for_unknown) {
        if state.get(a.name).is_unknown() {
            state.set(a.name, prior.get(a.name).clone());
        }
    }
}

fn collect_replace(
    block: &Block,
    prior: &Value,
    planned: &Value,
    path: &AttrPath,
    out: &mut Vec<AttrPath>,
) {
    for a in block.attributes.iter().filter(|a| a.requires_replace) {
        let (p, n) = (prior.get(a.name), planned.get(a.name));
        // An unknown planned value may or may not differ: Terraform shows "forces replacement"
        // and plans again at apply with the known value.
        if !p.equal_as(n, &a.ty) {
            out.push(path.attr(a.name));
        }
    }
    for b in &block.blocks {
        let (p, n) = (prior.get(b.name), planned.get(b.name));
        if b.requires_replace {
            if !p.equal_as(n, &b.value_type()) {
                out.push(path.attr(b.name));
            }
        } else if b.nesting == Nesting::Single {
            collect_replace(&b.block, p, n, &path.attr(b.name), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::Attribute;

    fn schema() -> Schema {
        Schema::new(
            Block::new("t")
                .attr(Attribute::string("name").required().requires_replace())
                .attr(Attribute::string("body").optional_computed())
                .attr(Attribute::string("id").computed().use_state_for_unknown())
                .attr(Attribute::string("rendered").computed())
                .attr(Attribute::number("ttl").default(300))
                .attr(Attribute::string("secret").write_only()),
        )
    }

    fn obj(pairs: &[(&str, Value)]) -> Value {
        let mut v = schema().block.empty_value();
        for (k, x) in pairs {
            v.set(k, x.clone());
        }
        v
    }

    #[test]
    fn create_marks_computed_unknown_applies_defaults_and_nulls_write_only() {
        let cfg = obj(&[("name", "a".into()), ("secret", "s3cr3t".into())]);
        let p = plan(&schema(), &Value::Null, &cfg, &cfg);
        assert!(p.state.get("id").is_unknown());
        assert!(p.state.get("rendered").is_unknown());
        assert!(p.state.get("body").is_unknown());
        assert_eq!(p.state.get("ttl"), &Value::int(300));
        assert!(p.state.get("secret").is_null());
        assert!(p.requires_replace.is_empty());
    }

    #[test]
    fn unchanged_update_keeps_prior_state() {
        let prior = obj(&[
            ("name", "a".into()),
            ("body", "b".into()),
            ("id", "1".into()),
            ("rendered", "r".into()),
            ("ttl", Value::int(300)),
        ]);
        let cfg = obj(&[("name", "a".into())]);
        let p = plan(&schema(), &prior, &prior, &cfg);
        assert_eq!(p.state, prior);
    }

    #[test]
    fn changed_update_keeps_use_state_values_and_reports_replacement() {
        let prior = obj(&[
            ("name", "a".into()),
            ("body", "b".into()),
            ("id", "1".into()),
            ("rendered", "r".into()),
            ("ttl", Value::int(300)),
        ]);
        let cfg = obj(&[("name", "z".into()), ("body", "b".into())]);
        let mut proposed = prior.clone();
        proposed.set("name", "z".into());
        let p = plan(&schema(), &prior, &proposed, &cfg);
        assert_eq!(p.state.get("id"), &Value::from("1"));
        assert!(p.state.get("rendered").is_unknown());
        assert_eq!(p.requires_replace, vec![AttrPath::root("name")]);
    }
}
