//! Provider functions (`provider::apim::<name>(...)`, Terraform 1.8+): each declares its
//! parameters and result once; the declaration drives the protocol's function definitions and
//! the documentation, and the call receives its arguments already decoded into [`Value`]s.

use super::value::{Type, Value};

/// One positional parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Its name, as documentation and Terraform's error messages show it.
    pub name: &'static str,
    /// Its type constraint.
    pub ty: Type,
    /// What it is (Markdown).
    pub description: &'static str,
}

/// A failed call: Terraform shows `text`, pointing at the argument when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// What is wrong and how to fix it.
    pub text: String,
    /// The 0-based argument at fault, if any.
    pub argument: Option<usize>,
}

impl FunctionError {
    /// An error about argument `index`.
    pub fn argument(index: usize, text: impl Into<String>) -> FunctionError {
        FunctionError {
            text: text.into(),
            argument: Some(index),
        }
    }
}

/// A provider function. Arguments are never null nor unknown when `call` runs: Terraform
/// refuses null arguments and returns an unknown result for unknown ones, as the definition
/// asks (`allow_null_value` and `allow_unknown_values` are off).
pub trait Function: Send + Sync + 'static {
    /// The name after `provider::apim::`.
    fn name(&self) -> &'static str;
    /// One line.
    fn summary(&self) -> &'static str;
    /// The whole description (Markdown).
    fn description(&self) -> &'static str;
    /// Parameters, in order.
    fn params(&self) -> Vec<Param>;
    /// The result's type.
    fn returns(&self) -> Type;
    /// The result for `args`, one per parameter, of their types.
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}

/// The string argument `index` of `args` (the framework decoded it against a `string`
/// parameter; anything else is an error naming the argument).
pub fn string_arg(args: &[Value], index: usize) -> Result<&str, FunctionError> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FunctionError::argument(index, "expected a string")),
    }
}

/// The whole-number argument `index` of `args`.
pub fn int_arg(args: &[Value], index: usize) -> Result<i64, FunctionError> {
    match args.get(index) {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| FunctionError::argument(index, "expected a whole number")),
        _ => Err(FunctionError::argument(index, "expected a number")),
    }
}
