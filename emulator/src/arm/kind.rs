//! The seam between the generic child-entity CRUD (`crud.rs`) and each entity module: a `Kind`
//! says how one kind of entity is named, validated, stored and rendered; the CRUD does routing,
//! ETags, long-running operations and paging the same way for all of them.

use super::error::{method_not_allowed, ArmError, ArmResult};
use super::Scope;
use crate::server::{App, Req};
use crate::store::{Entity, State};
use serde_json::{json, Value};

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
    /// Validates a PUT body and returns the properties to store.
    fn create(&self, st: &State, scope: &Scope, req: &Req, body: &Value)
        -> Result<Value, ArmError>;
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
        _existing: &Entity,
        _body: &Value,
    ) -> Result<Value, ArmError> {
        Err(method_not_allowed(req))
    }
    /// Properties as returned to the client.
    fn render(&self, e: &Entity, req: &Req, mode: Render) -> Result<Value, ArmError>;
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
