//! Resource identity (Terraform 1.12+): the attributes that name a type's object for good,
//! declared once per type. Terraform stores the identity beside the state, compares it on
//! every refresh, and imports by it (`import { to = … identity = { … } }`).
//!
//! Here an identity is a subset of the state's own string attributes, so it is derived from
//! the state and never disagrees with it; a type says how an identity becomes its import ID,
//! so import by identity and import by ID are one path.

use std::collections::BTreeMap;

use super::diag::Diags;
use super::value::{Type, Value};

/// One attribute of an identity: a string attribute of the state, of the same name.
#[derive(Debug, Clone)]
pub struct IdentityAttribute {
    /// Name, in the identity and in the state.
    pub name: &'static str,
    /// Markdown description.
    pub description: &'static str,
}

/// A type's identity: its version and attributes (every one required to import).
#[derive(Debug, Clone)]
pub struct IdentitySchema {
    /// Bumped when the attributes change (UpgradeResourceIdentity).
    pub version: i64,
    /// The attributes, each a string.
    pub attributes: Vec<IdentityAttribute>,
    /// The import ID of the object an identity names, from its values in the order of
    /// `attributes`.
    pub import_id: fn(&[&str]) -> String,
}

impl IdentitySchema {
    /// Version 0 of an identity made of `attributes` (name, description).
    pub fn new(
        attributes: &[(&'static str, &'static str)],
        import_id: fn(&[&str]) -> String,
    ) -> IdentitySchema {
        IdentitySchema {
            version: 0,
            attributes: attributes
                .iter()
                .map(|&(name, description)| IdentityAttribute { name, description })
                .collect(),
            import_id,
        }
    }

    /// The object type of an identity value.
    pub fn object_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.to_string(), Type::String))
                .collect(),
        )
    }

    /// The identity of `state`, when the state names its object wholly (`None` for a null
    /// state, or one whose identity attributes are not all known strings yet).
    pub fn of_state(&self, state: &Value) -> Option<Value> {
        if state.is_null() || state.is_unknown() {
            return None;
        }
        let mut m = BTreeMap::new();
        for a in &self.attributes {
            let s = state.get(a.name).as_str()?;
            m.insert(a.name.to_string(), Value::string(s));
        }
        Some(Value::Map(m))
    }

    /// The import ID of an identity Terraform sent, or an error naming what is missing.
    pub fn import_id_of(&self, identity: &Value, type_name: &str, d: &mut Diags) -> Option<String> {
        let mut values = Vec::new();
        let mut missing = Vec::new();
        for a in &self.attributes {
            match identity.get(a.name).as_str() {
                Some(s) if !s.is_empty() => values.push(s),
                _ => missing.push(format!("`{}`", a.name)),
            }
        }
        if !missing.is_empty() {
            d.error(
                format!("Unable to import {type_name}"),
                format!(
                    "The identity must give {} (the identity of {type_name} is {}).",
                    missing.join(", "),
                    self.attributes
                        .iter()
                        .map(|a| format!("`{}`", a.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return None;
        }
        Some((self.import_id)(&values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> IdentitySchema {
        IdentitySchema::new(&[("backend", "b"), ("name", "n")], |v| v.join("/"))
    }

    #[test]
    fn identity_is_taken_from_the_state_when_known() {
        let mut state = Value::Map(BTreeMap::new());
        state.set("backend", "jwt".into());
        state.set("name", "orders".into());
        state.set("token_ttl", Value::int(300));
        let id = schema().of_state(&state).unwrap();
        assert_eq!(id.get("backend"), &Value::from("jwt"));
        assert_eq!(id.get("name"), &Value::from("orders"));
        assert!(id.get("token_ttl").is_null());
        state.set("name", Value::UNKNOWN);
        assert_eq!(schema().of_state(&state), None);
        assert_eq!(schema().of_state(&Value::Null), None);
    }

    #[test]
    fn import_id_needs_every_attribute() {
        let mut identity = Value::Map(BTreeMap::new());
        identity.set("backend", "jwt".into());
        let mut d = Diags::new();
        assert_eq!(schema().import_id_of(&identity, "t", &mut d), None);
        assert!(d.has_errors());
        identity.set("name", "orders".into());
        let mut d = Diags::new();
        assert_eq!(
            schema().import_id_of(&identity, "t", &mut d).as_deref(),
            Some("jwt/orders")
        );
    }
}
