//! The binder: resolves names, members and operators of a parsed expression to the typed IR the
//! evaluator runs, as the C# compiler would when APIM compiles a policy on save. Types outside
//! APIM's allow-list, C# type errors and anything the evaluator does not implement are errors
//! here, so they surface when the policy is saved.

use super::ast::{BinOp, Expr, Program, Stmt, TypeName};
use super::bind_member::type_path;
use super::members::M;
use super::methods::ty_of;
use super::value::{Ty, Val};
use crate::gateway::rules::types;

/// Typed expression IR.
#[derive(Debug, Clone)]
pub enum Ir {
    /// A constant.
    Lit(Val),
    /// A local variable.
    Local(usize),
    /// `context`.
    Context,
    /// A property (`cond`: `?.`).
    Get(Box<Ir>, M, bool),
    /// An instance method; the type is the generic argument (`Void` when none).
    Call(Box<Ir>, M, Vec<Ir>, Ty, bool),
    /// A static member; the type is the generic argument or result.
    Static(M, Vec<Ir>, Ty),
    /// `!e`.
    Not(Box<Ir>),
    /// `-e` (numeric type).
    Neg(Box<Ir>),
    /// Arithmetic in a numeric type.
    Arith(BinOp, Ty, Box<Ir>, Box<Ir>),
    /// Comparison or equality of two values of the same primitive type.
    Compare(BinOp, Box<Ir>, Box<Ir>),
    /// `e == null` (false) / `e != null` (true).
    IsNull(bool, Box<Ir>),
    /// `&&`.
    And(Box<Ir>, Box<Ir>),
    /// `||`.
    Or(Box<Ir>, Box<Ir>),
    /// `c ? a : b`.
    Cond(Box<Ir>, Box<Ir>, Box<Ir>),
    /// `a ?? b`.
    Coalesce(Box<Ir>, Box<Ir>),
    /// String concatenation.
    Concat(Vec<Ir>),
    /// Numeric conversion to the type.
    Convert(Ty, Box<Ir>),
    /// Reference cast or unboxing, checked at run time.
    Unbox(Ty, Box<Ir>),
    /// Newtonsoft's explicit conversion of a `JToken` to the type.
    JsonTo(Ty, Box<Ir>),
    /// `new JObject(...)`.
    NewJObject(Vec<Ir>),
    /// `new JProperty(name, value)`.
    NewJProperty(Box<Ir>, Box<Ir>),
    /// `new JArray(...)`.
    NewJArray(Vec<Ir>),
}

/// Typed statements.
#[derive(Debug, Clone)]
pub enum SIr {
    /// Assign a local.
    Set(usize, Ir),
    /// `if`.
    If(Ir, Vec<SIr>, Vec<SIr>),
    /// An expression statement.
    Expr(Ir),
    /// `return`.
    Return(Ir),
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// `@(...)`: one expression; `@{...}`: statements.
    pub body: Result<Ir, Vec<SIr>>,
    /// The static type of its value.
    pub ty: Ty,
    /// Number of locals.
    pub locals: usize,
}

/// Compiles a parsed program.
pub fn bind_program(p: &Program) -> Result<Compiled, String> {
    let mut b = Binder::default();
    match p {
        Program::Single(e) => {
            let (ir, ty) = b.expr(e)?;
            if ty == Ty::Void {
                return Err("The expression does not produce a value".into());
            }
            Ok(Compiled {
                body: Ok(ir),
                ty,
                locals: b.locals.len(),
            })
        }
        Program::Block(stmts) => {
            let body = b.block(stmts)?;
            if !returns(stmts) {
                return Err("Not all code paths return a value".into());
            }
            let ty = b.returned.unwrap_or(Ty::Object);
            Ok(Compiled {
                body: Err(body),
                ty,
                locals: b.locals.len(),
            })
        }
    }
}

fn returns(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Return(_) => true,
        Stmt::If(_, a, Some(b)) => {
            returns(std::slice::from_ref(a)) && returns(std::slice::from_ref(b))
        }
        Stmt::Block(inner) => returns(inner),
        _ => false,
    })
}

/// "... is not implemented" with the construct named.
pub fn not_impl(what: &str) -> String {
    format!("The emulator does not implement {what}; it refuses the policy rather than run it differently from APIM")
}

/// Resolves a written type to a static type the evaluator implements.
pub fn resolve_ty(t: &TypeName) -> Result<Ty, String> {
    if t.array || t.nullable || !t.args.is_empty() {
        let (full, _) = types::resolve(&t.name).map_err(|n| not_allowed_type(&n))?;
        return Err(not_impl(&format!("the type '{full}' written as '{t}'")));
    }
    let (full, _) = types::resolve(&t.name).map_err(|n| not_allowed_type(&n))?;
    ty_of(full).ok_or_else(|| not_impl(&format!("values of type '{full}'")))
}

/// The error for a type outside APIM's allow-list.
pub fn not_allowed_type(name: &str) -> String {
    format!("The type '{name}' is not allowed in policy expressions")
}

/// Whether a value of static type `from` converts implicitly to `to`.
pub fn assignable(from: Ty, to: Ty) -> bool {
    from == to
        || (to == Ty::Object && from != Ty::Void)
        || (from == Ty::Null && !to.is_value())
        || matches!(
            (from, to),
            (Ty::Int, Ty::Long | Ty::Double) | (Ty::Long, Ty::Double)
        )
        || (to == Ty::JToken && from.is_json())
        || (from == Ty::CtxResponse && to == Ty::Response)
}

/// `ir` converted implicitly from `from` to `to` (numeric widening made explicit).
pub fn coerce(ir: Ir, from: Ty, to: Ty) -> Ir {
    if from != to && from.is_numeric() && to.is_numeric() {
        Ir::Convert(to, Box::new(ir))
    } else {
        ir
    }
}

/// The binder's state: locals in scope and what has been returned.
#[derive(Default)]
pub struct Binder {
    locals: Vec<(String, Ty)>,
    scopes: Vec<usize>,
    returned: Option<Ty>,
}

impl Binder {
    /// A `bool` expression (an `if` or `?:` condition).
    pub(super) fn condition(&mut self, e: &Expr) -> Result<Ir, String> {
        let (ir, t) = self.expr(e)?;
        if t == Ty::Bool {
            Ok(ir)
        } else {
            Err(format!(
                "Cannot implicitly convert type '{}' to 'bool'",
                t.name()
            ))
        }
    }

    /// Looks a local up by name.
    pub fn local(&self, name: &str) -> Option<(usize, Ty)> {
        self.locals
            .iter()
            .enumerate()
            .rev()
            .find(|(_, (n, _))| n == name)
            .map(|(i, (_, t))| (i, *t))
    }

    fn block(&mut self, stmts: &[Stmt]) -> Result<Vec<SIr>, String> {
        self.scopes.push(self.locals.len());
        let mut out = Vec::new();
        for s in stmts {
            out.push(self.stmt(s)?);
        }
        // Locals keep their slots; names go out of scope.
        let start = self.scopes.pop().unwrap_or(0);
        for l in &mut self.locals[start..] {
            l.0.clear();
        }
        Ok(out)
    }

    fn stmt(&mut self, s: &Stmt) -> Result<SIr, String> {
        Ok(match s {
            Stmt::Var { ty, name, init } => {
                if self.local(name).is_some() || name == "context" {
                    return Err(format!(
                        "A local variable named '{name}' is already defined in this scope"
                    ));
                }
                let (ir, t) = match (ty, init) {
                    (None, Some(e)) => {
                        let (ir, t) = self.expr(e)?;
                        if matches!(t, Ty::Null | Ty::Void) {
                            return Err(format!(
                                "Cannot assign {} to an implicitly-typed variable",
                                t.name()
                            ));
                        }
                        (ir, t)
                    }
                    (Some(tn), Some(e)) => {
                        let want = resolve_ty(tn)?;
                        let (ir, t) = self.expr(e)?;
                        if !assignable(t, want) {
                            return Err(convert_error(t, want));
                        }
                        (coerce(ir, t, want), want)
                    }
                    (Some(tn), None) => (Ir::Lit(Val::Null), resolve_ty(tn)?),
                    (None, None) => {
                        return Err("Implicitly-typed variables must be initialized".into())
                    }
                };
                self.locals.push((name.clone(), t));
                SIr::Set(self.locals.len() - 1, ir)
            }
            Stmt::Assign(name, e) => {
                let (slot, want) = self.local(name).ok_or_else(|| unknown_name(name))?;
                let (ir, t) = self.expr(e)?;
                if !assignable(t, want) {
                    return Err(convert_error(t, want));
                }
                SIr::Set(slot, coerce(ir, t, want))
            }
            Stmt::Expr(e) => {
                if !matches!(e, Expr::Call { .. }) {
                    return Err("Only assignment, call, increment, decrement, await, and new object expressions can be used as a statement".into());
                }
                SIr::Expr(self.expr(e)?.0)
            }
            Stmt::If(c, a, b) => {
                let c = self.condition(c)?;
                let a = self.block(std::slice::from_ref(a))?;
                let b = match b {
                    Some(b) => self.block(std::slice::from_ref(b))?,
                    None => Vec::new(),
                };
                SIr::If(c, a, b)
            }
            Stmt::Block(inner) => SIr::If(Ir::Lit(Val::Bool(true)), self.block(inner)?, Vec::new()),
            Stmt::Return(e) => {
                let (ir, t) = self.expr(e)?;
                if t == Ty::Void {
                    return Err("A return statement needs a value".into());
                }
                self.returned = Some(match self.returned {
                    None if t == Ty::Null => Ty::Object,
                    None => t,
                    Some(prev) if prev == t => t,
                    Some(_) => Ty::Object,
                });
                SIr::Return(ir)
            }
        })
    }
}

pub(super) fn unknown_name(n: &str) -> String {
    match types::resolve(n) {
        Ok((full, _)) => format!("'{full}' is a type, which is not valid in the given context"),
        Err(_) => format!("The name '{n}' does not exist in the current context"),
    }
}

fn convert_error(from: Ty, to: Ty) -> String {
    format!("Cannot implicitly convert type '{}' to '{}'. An explicit conversion exists (are you missing a cast?)", from.name(), to.name())
}

/// A dotted chain of plain names (`System.String`), if `e` is one and does not start with a
/// local or `context`.
pub fn names_of(b: &Binder, e: &Expr) -> Option<String> {
    let path = type_path(e)?;
    let root = path.split('.').next().unwrap_or_default();
    (b.local(root).is_none() && root != "context").then_some(path)
}
