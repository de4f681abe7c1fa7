//! The seam between the generic child-entity CRUD (`crud.rs`) and each entity module: a `Kind`
//! says how one kind of entity is named, validated, stored and rendered; the CRUD does routing,
//! ETags, long-running operations and paging the same way for all of them.

use super::body::{merged_properties, properties};
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::Scope;
use crate::server::{App, Req};
use crate::store::{Entity, State};
use serde_json::{json, Map, Value};

/// How an entity is being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// GET of one entity.
    Get,
    /// Item of a list.
    List,
    /// Body of a PUT/PATCH response.
    Write,
}

/// One kind of APIM child entity; the generic CRUD does the rest.
pub trait Kind: Sync {
    /// Collection segment, canonical casing (`namedValues`).
    fn segment(&self) -> &'static str;
    /// ARM type.
    fn type_name(&self) -> &'static str;
    /// Noun used in "... not found." messages.
    fn noun(&self) -> &'static str;
    /// Whether PUT/PATCH are long-running operations.
    fn lro(&self) -> bool {
        false
    }
    /// Checks the entity name against the spec's pattern.
    fn validate_name(&self, name: &str) -> Result<(), ArmError>;
    /// The properties to store from the properties a client sent (for kinds whose PUT and PATCH
    /// only validate and complete them).
    fn normalise(&self, _p: &Map<String, Value>) -> Result<Value, ArmError> {
        Err(ArmError::validation("properties", "Not supported."))
    }
    /// Whether PATCH merges into the stored properties and normalises the result.
    fn patchable(&self) -> bool {
        false
    }
    /// Validates a PUT body and returns the properties to store.
    fn create(
        &self,
        _st: &State,
        _scope: &Scope,
        _req: &Req,
        body: &Value,
    ) -> Result<Value, ArmError> {
        self.normalise(&properties(body)?)
    }
    /// Called before a PUT creates a new entity (not on replace): per-instance limits.
    fn before_create(&self, _st: &State, _scope: &Scope) -> Result<(), ArmError> {
        Ok(())
    }
    /// Validates a PATCH body against the stored entity and returns the new properties.
    fn update(
        &self,
        _st: &State,
        _scope: &Scope,
        req: &Req,
        existing: &Entity,
        body: &Value,
    ) -> Result<Value, ArmError> {
        if self.patchable() {
            self.normalise(&merged_properties(existing, body)?)
        } else {
            Err(method_not_allowed(req))
        }
    }
    /// Properties as returned to the client (by default as stored).
    fn render(&self, e: &Entity, _req: &Req, _mode: Render) -> Result<Value, ArmError> {
        Ok(e.properties.clone())
    }
    /// Values of a `$filter` field for an entity (`None`: unknown field).
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>>;
    /// POST actions (`listValue`, `listReferences`, ...).
    fn action(
        &self,
        _app: &App,
        req: &Req,
        _scope: &Scope,
        _e: &Entity,
        _action: &str,
    ) -> ArmResult {
        Err(method_not_allowed(req))
    }
    /// Called before deleting; may refuse (the request's query may say how), and removes
    /// dependants.
    fn before_delete(&self, _st: &mut State, _req: &Req, _e: &Entity) -> Result<(), ArmError> {
        Ok(())
    }
}

/// An entity as ARM returns it: the common envelope around the kind's rendering of its
/// properties.
pub(super) fn entity_json(
    kind: &dyn Kind,
    e: &Entity,
    req: &Req,
    mode: Render,
) -> Result<Value, ArmError> {
    Ok(json!({
        "id": e.id,
        "type": kind.type_name(),
        "name": e.name,
        "properties": kind.render(e, req, mode)?,
    }))
}

/// 404 for an entity of `kind` that does not exist, in APIM's words.
pub(super) fn not_found(kind: &dyn Kind) -> ArmError {
    ArmError::not_found(format!("{} not found.", kind.noun()))
}

/// The values a string property offers `$filter`: the string, or none when it is absent.
pub(super) fn string_values(props: &Value, key: &str) -> Vec<String> {
    props
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect()
}

/// Checks an entity id: 1 to `max` characters, none of `*#&+:<>?`.
pub(super) fn check_id(name: &str, max: usize, target: &str, noun: &str) -> Result<(), ArmError> {
    if name.is_empty()
        || name.chars().count() > max
        || name.contains(['*', '#', '&', '+', ':', '<', '>', '?', '/'])
    {
        return Err(ArmError::validation(
            target,
            format!("The {noun} id '{name}' is invalid: 1-{max} characters, none of '*#&+:<>?/'."),
        ));
    }
    Ok(())
}

/// Removes every entity below `e` (its policy, its operations, ...).
pub(super) fn remove_children(st: &mut State, e: &Entity) {
    let prefix = format!("{}/", e.id.to_ascii_lowercase());
    st.entities.retain(|k, _| !k.starts_with(&prefix));
}
