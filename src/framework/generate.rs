//! What `terraform plan -generate-config-out` writes for an imported object: the
//! configuration a user would write, from the object's state. The schema decides the general
//! rule; a type adjusts its model first (`Resource::config_from_state`), for what only it
//! knows (a value derived from another, a server default that is not the schema's).

use super::schema::{Block, Nesting, Presence};
use super::value::Value;

/// Turns a state into configuration, by the schema: computed-only and write-only attributes
/// are left out, as are values equal to the attribute's default, unknowns (nothing a user
/// writes), and nested blocks are treated the same way.
pub fn config_from_state(block: &Block, state: &mut Value) {
    if state.is_null() || state.is_unknown() {
        return;
    }
    for a in &block.attributes {
        let v = state.get(a.name);
        let drop = a.presence == Presence::Computed
            || a.write_only
            || !v.is_wholly_known()
            || a.default.as_ref().is_some_and(|d| v.equal_as(d, &a.ty));
        if drop {
            state.set(a.name, Value::Null);
        }
    }
    for b in &block.blocks {
        if let Some(v) = state.get_mut(b.name) {
            match (b.nesting, v) {
                (Nesting::Single, v) => config_from_state(&b.block, v),
                (Nesting::List | Nesting::Set, Value::List(items)) => {
                    for item in items {
                        config_from_state(&b.block, item);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::schema::{Attribute, NestedBlock};

    fn block() -> Block {
        Block::new("t")
            .attr(Attribute::string("id").computed())
            .attr(Attribute::string("name").required())
            .attr(Attribute::number("ttl").default(300))
            .attr(Attribute::string("url").optional_computed())
            .attr(Attribute::string("secret").write_only())
            .block(NestedBlock::list(
                "rule",
                Block::new("r")
                    .attr(Attribute::string("path").required())
                    .attr(Attribute::bool("deny").default(false))
                    .attr(Attribute::string("hash").computed()),
            ))
    }

    #[test]
    fn computed_only_write_only_defaults_and_unknowns_are_left_out() {
        let b = block();
        let mut rule = b.blocks[0].block.empty_value();
        rule.set("path", "a/*".into());
        rule.set("deny", Value::Bool(false));
        rule.set("hash", "h".into());
        let mut state = b.empty_value();
        state.set("id", "x".into());
        state.set("name", "n".into());
        state.set("ttl", Value::int(300));
        state.set("url", "https://u".into());
        state.set("secret", Value::UNKNOWN);
        state.set("rule", Value::List(vec![rule]));
        config_from_state(&b, &mut state);
        assert!(state.get("id").is_null());
        assert_eq!(state.get("name"), &Value::from("n"));
        assert!(state.get("ttl").is_null(), "the default is not written");
        assert_eq!(state.get("url"), &Value::from("https://u"));
        assert!(state.get("secret").is_null());
        let rule = &state.get("rule").as_list()[0];
        assert_eq!(rule.get("path"), &Value::from("a/*"));
        assert!(rule.get("deny").is_null());
        assert!(rule.get("hash").is_null());
    }

    #[test]
    fn values_other_than_the_default_are_kept() {
        let b = block();
        let mut state = b.empty_value();
        state.set("name", "n".into());
        state.set("ttl", Value::int(60));
        config_from_state(&b, &mut state);
        assert_eq!(state.get("ttl"), &Value::int(60));
    }
}
