//! A policy document as APIM accepts it when a policy or a fragment is saved: readable in the
//! format it was written in, with the expected root element, and naming only named values
//! (`{{...}}`) and fragments (`<include-fragment>`) that exist in the instance.

use super::error::ArmError;
use super::{named_value, Scope};
use crate::store::State;
use crate::xml::{self, Elem, Format};
use serde_json::Value;

/// Parses a document written in `format` into the stored (`xml`) form and its tree; `root` is
/// the element it must have at the top, `noun` what the document is, for the error.
pub(super) fn parse_document(
    value: &str,
    format: Format,
    root: &str,
    noun: &str,
) -> Result<(String, Elem), ArmError> {
    let stored = xml::to_stored(value, format).map_err(|m| ArmError::validation("value", m))?;
    let tree = xml::parse(&stored).map_err(|m| ArmError::validation("value", m))?;
    if tree.name != root {
        return Err(ArmError::validation(
            "value",
            format!(
                "The root element of a {noun} must be '{root}', not '{}'.",
                tree.name
            ),
        ));
    }
    Ok((stored, tree))
}

/// Checks that every `{{name}}` in a policy document names a named value (by display name) of
/// the instance.
pub fn check_named_value_refs(st: &State, scope: &Scope, doc: &str) -> Result<(), ArmError> {
    for name in xml::named_value_refs(doc) {
        let found = st.entities.values().any(|e| {
            e.service_key == scope.service_key
                && e.type_name == named_value::TYPE
                && e.properties
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.eq_ignore_ascii_case(&name))
        });
        if !found {
            return Err(ArmError::validation(
                "representation",
                format!("Cannot find a property '{name}'"),
            ));
        }
    }
    Ok(())
}

/// Checks that every `<include-fragment fragment-id>` names an existing fragment of the instance.
pub fn check_fragment_refs(st: &State, scope: &Scope, root: &Elem) -> Result<(), ArmError> {
    for id in xml::included_fragments(root) {
        let key = format!("{}/policyFragments/{id}", scope.service_id).to_ascii_lowercase();
        if !st.entities.contains_key(&key) {
            return Err(ArmError::validation(
                "representation",
                format!(
                    "Error in element 'include-fragment': Policy fragment '{id}' does not exist."
                ),
            ));
        }
    }
    Ok(())
}
