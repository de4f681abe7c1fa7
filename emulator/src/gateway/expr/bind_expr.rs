//! Binding expressions: literals, names, operators (with C#'s numeric promotions, string
//! concatenation and the equality rules), conditionals, casts and `new`.

use super::ast::{Arg, BinOp, Expr, Lit, TypeName, UnOp};
use super::bind::{assignable, coerce, not_impl, resolve_ty, unknown_name, Binder, Ir};
use super::bind_member::{bind_call, bind_member};
use super::members::M;
use super::value::{Ty, Val};

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

/// Refuses a value of type `t` made text (string concatenation, an interpolation,
/// `String.Concat`/`Join`) when its text depends on the gateway's culture (C# calls its
/// `ToString()`, refused as well).
pub(super) fn as_text(t: Ty) -> Result<(), String> {
    match t {
        Ty::DateTime => Err(not_impl(
            "a 'DateTime' made text (its text depends on the gateway's culture; use its 'Ticks')",
        )),
        _ => Ok(()),
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
                            as_text(ty)?;
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
                let c = self.condition(c)?;
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
                as_text(lt)?;
                as_text(rt)?;
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
}

/// `recv[index]`.
fn bind_index(b: &mut Binder, recv: &Expr, index: &Expr) -> Result<(Ir, Ty), String> {
    let (rir, rty) = b.expr(recv)?;
    let (iir, ity) = b.expr(index)?;
    let m = match (rty, ity) {
        (Ty::Variables, Ty::String) => (M::VarsIndex, Ty::Object),
        (t, Ty::String | Ty::Int) if t.is_json() => (M::JIndex, Ty::JToken),
        (t, Ty::Object) if t.is_json() => (M::JIndex, Ty::JToken),
        (Ty::String, Ty::Int) => (M::StrIndex, Ty::Char),
        (Ty::Headers | Ty::Query, Ty::String) => return Err(not_impl("the headers indexer (string[]); use GetValueOrDefault")),
        (t, i) => return Err(format!("Cannot apply indexing with [] to an expression of type '{}' with an index of type '{}'", t.name(), i.name())),
    };
    Ok((
        Ir::Call(Box::new(rir), m.0, vec![iir], Ty::Void, false),
        m.1,
    ))
}
