//! A policy document as APIM accepts it when a policy or a fragment is saved: readable in the
//! format it was written in, with the expected root element, and naming only named values
//! (`{{...}}`) and fragments (`<include-fragment>`) that exist in the instance.

use super::error::ArmError;
use super::{named_value, Scope};
use crate::gateway::document::{self, Node};
use crate::gateway::instance;
use crate::gateway::rules::check::{check, Env};
use crate::gateway::rules::limits;
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

/// What a document being saved is.
pub(super) enum DocKind<'a> {
    /// A service (`global`) or API (`api`) policy.
    Policy(&'static str),
    /// A fragment.
    Fragment,
    /// A policy at a scope, re-checked with fragment `id` replaced by `content`.
    PolicyWith(&'static str, &'a str, &'a Node),
}

/// The documented rules a real instance applies when a document is saved (`gateway::rules`):
/// its size for the instance's SKU, then the policy table and expression compilation. Skipped
/// while `POST /_emulator/rules {"enforce": false}` is in effect.
pub(super) fn check_rules(
    st: &State,
    scope: &Scope,
    submitted: &str,
    stored: &str,
    kind: DocKind<'_>,
) -> Result<(), ArmError> {
    if !st.settings.enforce_rules {
        return Ok(());
    }
    let fragment = matches!(kind, DocKind::Fragment);
    let sku = instance::sku(st, &scope.service_key);
    let max = if fragment {
        limits::FRAGMENT_BYTES
    } else {
        limits::policy_document_bytes(&sku)
    };
    if submitted.len() > max {
        let noun = if fragment {
            "policy fragment"
        } else {
            "policy document"
        };
        return Err(ArmError::validation(
            "value",
            format!(
                "The {noun} is {} bytes; the most an instance of SKU '{sku}' accepts is {max} bytes.",
                submitted.len()
            ),
        ));
    }
    let root = document::parse(stored).map_err(|m| ArmError::validation("value", m))?;
    let nv = |n: &str| instance::named_value(st, &scope.service_key, n);
    let frag = |id: &str| match kind {
        DocKind::PolicyWith(_, changed, content) if changed.eq_ignore_ascii_case(id) => {
            Some(content.clone())
        }
        _ => instance::fragment(st, &scope.service_id, id),
    };
    let scope = match kind {
        DocKind::Policy(s) | DocKind::PolicyWith(s, _, _) => Some(s),
        DocKind::Fragment => None,
    };
    let env = Env {
        fragment,
        scope,
        fragment_content: &frag,
        named_value: &nv,
    };
    let problems = check(&root, &env);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ArmError::validation_many(
            problems.iter().map(|p| (p.element.clone(), p.text())),
        ))
    }
}
