//! Diagnostics: what the user sees when something is wrong, always with a summary, a detail
//! that names the object and the fix, and (where it applies) the attribute path.

use std::fmt;

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An attribute or block name.
    Attr(String),
    /// An element of a map (or a map block) by key.
    Key(String),
    /// An element of a list by index.
    Index(i64),
}

/// A path to an attribute, e.g. `rule[0].capabilities`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// The path of a top-level attribute.
    pub fn root(name: &str) -> AttrPath {
        AttrPath(vec![PathStep::Attr(name.to_string())])
    }
    /// This path extended by an attribute.
    pub fn attr(&self, name: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Attr(name.to_string()));
        p
    }
    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Index(i as i64));
        p
    }
    /// This path extended by a map key.
    pub fn key(&self, k: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Key(k.to_string()));
        p
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                PathStep::Attr(a) if i == 0 => f.write_str(a)?,
                PathStep::Attr(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Stops the operation.
    Error,
    /// Shown, the operation goes on.
    Warning,
}

/// A single diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line: what failed ("Unable to create apim_vault_policy").
    pub summary: String,
    /// The object, the cause (with the upstream status and message) and the fix.
    pub detail: String,
    /// The attribute the problem is about, when there is one.
    pub attribute: Option<AttrPath>,
}

/// An ordered collection of diagnostics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diags(pub Vec<Diagnostic>);

impl Diags {
    /// No diagnostics.
    pub fn new() -> Diags {
        Diags(Vec::new())
    }
    /// Adds an error.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary.into(), detail.into(), None);
    }
    /// Adds an error about an attribute.
    pub fn attr_error(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, summary.into(), detail.into(), Some(path));
    }
    /// Adds a warning.
    pub fn warning(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Warning, summary.into(), detail.into(), None);
    }
    /// Adds a warning about an attribute.
    pub fn attr_warning(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, summary.into(), detail.into(), Some(path));
    }
    fn push(&mut self, severity: Severity, summary: String, detail: String, a: Option<AttrPath>) {
        self.0.push(Diagnostic {
            severity,
            summary,
            detail,
            attribute: a,
        });
    }
    /// Appends all of `other`.
    pub fn extend(&mut self, other: Diags) {
        self.0.extend(other.0);
    }
    /// True when any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            let at = d
                .attribute
                .as_ref()
                .map(|p| format!(" (at {p})"))
                .unwrap_or_default();
            writeln!(f, "{:?}: {}{at}: {}", d.severity, d.summary, d.detail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_like_terraform_addresses() {
        let p = AttrPath::root("rule").index(0).attr("capabilities");
        assert_eq!(p.to_string(), "rule[0].capabilities");
        assert_eq!(AttrPath::root("m").key("k").to_string(), "m[\"k\"]");
    }
}
