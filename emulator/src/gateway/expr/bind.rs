//! The binder: resolves names, members and operators of a parsed expression to the typed IR the
//! evaluator runs, as the C# compiler would when APIM compiles a policy on save. Types outside
//! APIM's allow-list, C# type errors and anything the evaluator does not implement are errors
//! here, so they surface when the policy is saved.

use super::ast::{Arg, BinOp, Expr, Lit, Program, Stmt, TypeName, UnOp};
use super::bind_member::{bind_call, bind_index, bind_member, type_path};
use super::members::{ty_of, M};
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

fn unify(a: Ty, b: Ty) -> Option<Ty> {
    if a == b {
        Some(a)
    } else if assignable(a, b) {
        Some(b)
    } else if assignable(b, a) {
        Some(a)
    } else {
        None
    }
}

fn op_error(op: BinOp, l: Ty, r: Ty) -> String {
    format!(
        "Operator '{}' cannot be applied to operands of type '{}' and '{}'",
        op.text(),
        l.name(),
        r.name()
    )
}

/// The binder's state: locals in scope and what has been returned.
#[derive(Default)]
pub struct Binder {
    locals: Vec<(String, Ty)>,
    scopes: Vec<usize>,
    returned: Option<Ty>,
}

impl Binder {
    /// Binds an expression.
    pub fn expr(&mut self, e: &Expr) -> Result<(Ir, Ty), String> {
        Ok(match e {
            Expr::Lit(l) => match l {
                Lit::Null => (Ir::Lit(Val::Null), Ty::Null),
                Lit::Bool(b) => (Ir::Lit(Val::Bool(*b)), Ty::Bool),
                Lit::Int(i) => (Ir::Lit(Val::Int(*i)), Ty::Int),
                Lit::Long(i) => (Ir::Lit(Val::Long(*i)), Ty::Long),
                Lit::Double(d) => (Ir::Lit(Val::Double(*d)), Ty::Double),
                Lit::Str(s) => (Ir::Lit(Val::Str(s.clone())), Ty::String),
                Lit::Char(c) => (Ir::Lit(Val::Char(*c)), Ty::Char),
            },
            Expr::Interp(parts) => {
                let mut out = Vec::new();
                for p in parts {
                    match p {
                        Ok(t) => out.push(Ir::Lit(Val::Str(t.clone()))),
                        Err(e) => {
                            let (ir, ty) = self.expr(e)?;
                            if ty == Ty::Void {
                                return Err("An interpolation hole has no value".into());
                            }
                            out.push(ir);
                        }
                    }
                }
                (Ir::Concat(out), Ty::String)
            }
            Expr::Name(n) => match self.local(n) {
                Some((i, ty)) => (Ir::Local(i), ty),
                None if n == "context" => (Ir::Context, Ty::Context),
                None => return Err(unknown_name(n)),
            },
            Expr::Member { recv, name, cond } => bind_member(self, recv, name, *cond)?,
            Expr::Call {
                recv,
                name,
                generics,
                args,
                cond,
            } => bind_call(self, recv.as_deref(), name, generics, args, *cond)?,
            Expr::Index { recv, index } => bind_index(self, recv, index)?,
            Expr::Unary(op, e) => {
                let (ir, ty) = self.expr(e)?;
                match (op, ty) {
                    (UnOp::Not, Ty::Bool) => (Ir::Not(Box::new(ir)), Ty::Bool),
                    (UnOp::Neg, t) if t.is_numeric() => (Ir::Neg(Box::new(ir)), t),
                    (UnOp::Plus, t) if t.is_numeric() => (ir, t),
                    (op, t) => {
                        let sym = match op {
                            UnOp::Not => "!",
                            UnOp::Neg => "-",
                            UnOp::Plus => "+",
                        };
                        return Err(format!(
                            "Operator '{sym}' cannot be applied to operand of type '{}'",
                            t.name()
                        ));
                    }
                }
            }
            Expr::Binary(op, l, r) => self.binary(*op, l, r)?,
            Expr::Cond(c, a, b) => {
                let (c, ct) = self.expr(c)?;
                if ct != Ty::Bool {
                    return Err(format!(
                        "Cannot implicitly convert type '{}' to 'bool'",
                        ct.name()
                    ));
                }
                let (a, at) = self.expr(a)?;
                let (b, bt) = self.expr(b)?;
                let t = unify(at, bt).ok_or_else(|| format!("Type of conditional expression cannot be determined because there is no implicit conversion between '{}' and '{}'", at.name(), bt.name()))?;
                let t = if t == Ty::Null { Ty::Object } else { t };
                (
                    Ir::Cond(
                        Box::new(c),
                        Box::new(coerce(a, at, t)),
                        Box::new(coerce(b, bt, t)),
                    ),
                    t,
                )
            }
            Expr::Cast(t, e) => {
                let to = resolve_ty(t)?;
                let (ir, from) = self.expr(e)?;
                (cast(ir, from, to)?, to)
            }
            Expr::New(t, args) => self.new_object(t, args)?,
        })
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr) -> Result<(Ir, Ty), String> {
        let (li, lt) = self.expr(l)?;
        let (ri, rt) = self.expr(r)?;
        let bx = Box::new;
        Ok(match op {
            BinOp::And | BinOp::Or if lt == Ty::Bool && rt == Ty::Bool => {
                if op == BinOp::And {
                    (Ir::And(bx(li), bx(ri)), Ty::Bool)
                } else {
                    (Ir::Or(bx(li), bx(ri)), Ty::Bool)
                }
            }
            BinOp::Add
                if (lt == Ty::String || rt == Ty::String) && lt != Ty::Void && rt != Ty::Void =>
            {
                let mut parts = Vec::new();
                for ir in [li, ri] {
                    match ir {
                        Ir::Concat(inner) => parts.extend(inner),
                        other => parts.push(other),
                    }
                }
                (Ir::Concat(parts), Ty::String)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem
                if lt.is_numeric() && rt.is_numeric() =>
            {
                let t = unify(lt, rt).unwrap_or(Ty::Double);
                (
                    Ir::Arith(op, t, bx(coerce(li, lt, t)), bx(coerce(ri, rt, t))),
                    t,
                )
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge if lt.is_numeric() && rt.is_numeric() => {
                let t = unify(lt, rt).unwrap_or(Ty::Double);
                (
                    Ir::Compare(op, bx(coerce(li, lt, t)), bx(coerce(ri, rt, t))),
                    Ty::Bool,
                )
            }
            BinOp::Eq | BinOp::Ne => {
                let ne = op == BinOp::Ne;
                if lt == Ty::Null && rt == Ty::Null {
                    (Ir::Lit(Val::Bool(!ne)), Ty::Bool)
                } else if lt == Ty::Null && !rt.is_value() {
                    (Ir::IsNull(ne, bx(ri)), Ty::Bool)
                } else if rt == Ty::Null && !lt.is_value() {
                    (Ir::IsNull(ne, bx(li)), Ty::Bool)
                } else if lt.is_numeric() && rt.is_numeric() {
                    let t = unify(lt, rt).unwrap_or(Ty::Double);
                    (
                        Ir::Compare(op, bx(coerce(li, lt, t)), bx(coerce(ri, rt, t))),
                        Ty::Bool,
                    )
                } else if lt == rt && matches!(lt, Ty::Bool | Ty::String | Ty::Char) {
                    (Ir::Compare(op, bx(li), bx(ri)), Ty::Bool)
                } else if !lt.is_value() && !rt.is_value() && lt != Ty::Void && rt != Ty::Void {
                    return Err(not_impl(&format!(
                        "'{}' between '{}' and '{}' (C# compares references there; cast both sides to string to compare values)",
                        op.text(), lt.name(), rt.name()
                    )));
                } else {
                    return Err(op_error(op, lt, rt));
                }
            }
            BinOp::Coalesce if !lt.is_value() && lt != Ty::Void => {
                let t = unify(lt, rt).ok_or_else(|| op_error(op, lt, rt))?;
                let t = if t == Ty::Null { Ty::Object } else { t };
                (Ir::Coalesce(bx(li), bx(coerce(ri, rt, t))), t)
            }
            _ => return Err(op_error(op, lt, rt)),
        })
    }

    fn new_object(&mut self, t: &TypeName, args: &[Arg]) -> Result<(Ir, Ty), String> {
        let ty = resolve_ty(t).map_err(|e| {
            if e.starts_with("The emulator") {
                not_impl(&format!("'new {t}(...)'"))
            } else {
                e
            }
        })?;
        let mut vals = Vec::new();
        for a in args {
            if a.name.is_some() {
                return Err(not_impl("named constructor arguments"));
            }
            let (ir, at) = self.expr(&a.value)?;
            if at == Ty::Void {
                return Err("A constructor argument has no value".into());
            }
            vals.push(ir);
        }
        Ok(match ty {
            Ty::JObject => (Ir::NewJObject(vals), Ty::JObject),
            Ty::JArray => (Ir::NewJArray(vals), Ty::JArray),
            Ty::JProperty if vals.len() == 2 => {
                let mut it = vals.into_iter();
                let (Some(n), Some(v)) = (it.next(), it.next()) else {
                    return Err("JProperty takes a name and a value".into());
                };
                (Ir::NewJProperty(Box::new(n), Box::new(v)), Ty::JProperty)
            }
            _ => {
                return Err(not_impl(&format!(
                    "'new {t}(...)' with {} argument(s)",
                    args.len()
                )))
            }
        })
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
                let (c, ct) = self.expr(c)?;
                if ct != Ty::Bool {
                    return Err(format!(
                        "Cannot implicitly convert type '{}' to 'bool'",
                        ct.name()
                    ));
                }
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

fn unknown_name(n: &str) -> String {
    match types::resolve(n) {
        Ok((full, _)) => format!("'{full}' is a type, which is not valid in the given context"),
        Err(_) => format!("The name '{n}' does not exist in the current context"),
    }
}

fn convert_error(from: Ty, to: Ty) -> String {
    format!("Cannot implicitly convert type '{}' to '{}'. An explicit conversion exists (are you missing a cast?)", from.name(), to.name())
}

/// `(to)ir` where `ir` has static type `from`.
pub fn cast(ir: Ir, from: Ty, to: Ty) -> Result<Ir, String> {
    if from == to || (to == Ty::Object && from != Ty::Void) || (from == Ty::Null && !to.is_value())
    {
        return Ok(ir);
    }
    if from.is_numeric() && to.is_numeric() {
        return Ok(Ir::Convert(to, Box::new(ir)));
    }
    if from.is_json() && matches!(to, Ty::String | Ty::Int | Ty::Long | Ty::Bool | Ty::Double) {
        return Ok(Ir::JsonTo(to, Box::new(ir)));
    }
    if from == Ty::Object
        || (from.is_json() && to.is_json())
        || (assignable(to, from) && !from.is_value())
    {
        return Ok(Ir::Unbox(to, Box::new(ir)));
    }
    if assignable(from, to) {
        return Ok(coerce(ir, from, to));
    }
    Err(format!(
        "Cannot convert type '{}' to '{}'",
        from.name(),
        to.name()
    ))
}

/// A dotted chain of plain names (`System.String`), if `e` is one and does not start with a
/// local or `context`.
pub fn names_of(b: &Binder, e: &Expr) -> Option<String> {
    let path = type_path(e)?;
    let root = path.split('.').next().unwrap_or_default();
    (b.local(root).is_none() && root != "context").then_some(path)
}
