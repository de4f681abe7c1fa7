//! Policy expressions: `@( expression )` and `@{ statements }` in a C# 7 subset, compiled when a
//! policy is saved (lexer → parser → binder, which checks APIM's type allow-list and C# typing)
//! and evaluated by the gateway for each request.

pub mod ast;
pub mod bind;
mod bind_expr;
mod bind_member;
mod builtins;
pub mod eval;
pub mod json;
pub mod lexer;
pub mod members;
pub mod methods;
pub mod parser;
mod parser_expr;
pub mod value;

#[cfg(test)]
mod tests;

pub use bind::Compiled;
pub use eval::Exc;
use value::{Ty, Val};

/// Whether an attribute value or text is a policy expression (starts with `@(` or `@{`).
pub fn is_expression(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("@(") || t.starts_with("@{")
}

/// Compiles an expression as written in a policy.
pub fn compile(src: &str) -> Result<Compiled, String> {
    let prog = parser::parse_program(src)?;
    bind::bind_program(&prog)
}

/// Runs a compiled expression.
pub fn run(c: &Compiled, ctx: &crate::gateway::context::Ctx) -> Result<Val, Exc> {
    eval::run(c, ctx)
}

/// Whether the static type of an expression can be a `bool` (for `condition` attributes).
pub fn may_be_bool(t: Ty) -> bool {
    matches!(t, Ty::Bool | Ty::Object)
}
