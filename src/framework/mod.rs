//! The protocol-agnostic core: values, schemas, diagnostics, generic validation and planning,
//! the resource traits, and the docs renderer. Knows nothing of tfplugin6, Vault or Azure.

pub mod action;
pub mod cancel;
pub mod diag;
pub mod docs;
pub mod function;
pub mod generate;
pub mod identity;
pub mod lifecycle;
pub mod list;
pub mod model;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod validate;
pub mod value;

pub use diag::{AttrPath, Diags};
pub use model::{Known, Model};
pub use schema::{Attribute, Block, Constraint, NestedBlock, Schema};
pub use value::{Type, Value};
