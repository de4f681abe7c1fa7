//! The evaluator: runs compiled IR against a request context. Run-time failures are .NET
//! exceptions (`Exc`) with the messages .NET gives; the pipeline turns them into
//! `ExpressionValueEvaluationFailure`.

use super::ast::BinOp;
use super::bind::{Compiled, Ir, SIr};
use super::builtins::{call, get, static_call};
use super::json::J;
use super::value::{to_json, Ty, Val};
use crate::gateway::context::Ctx;
use std::sync::Arc;

/// A .NET exception raised while evaluating.
#[derive(Debug, Clone, PartialEq)]
pub struct Exc {
    /// The exception's message.
    pub message: String,
}

impl Exc {
    /// An exception with this message.
    pub fn new(m: impl Into<String>) -> Exc {
        Exc { message: m.into() }
    }

    /// `NullReferenceException`.
    pub fn null_ref() -> Exc {
        Exc::new("Object reference not set to an instance of an object.")
    }

    /// `InvalidCastException`.
    pub fn cast(from: &Val, to: Ty) -> Exc {
        Exc::new(format!(
            "Unable to cast object of type '{}' to type '{}'.",
            dotnet(from.ty()),
            dotnet(to)
        ))
    }
}

/// The .NET name of a type, for exception messages.
pub fn dotnet(t: Ty) -> &'static str {
    match t {
        Ty::String => "System.String",
        Ty::Int => "System.Int32",
        Ty::Long => "System.Int64",
        Ty::Bool => "System.Boolean",
        Ty::Double => "System.Double",
        Ty::Char => "System.Char",
        Ty::Object | Ty::Null => "System.Object",
        Ty::JToken => "Newtonsoft.Json.Linq.JToken",
        Ty::JObject => "Newtonsoft.Json.Linq.JObject",
        Ty::JArray => "Newtonsoft.Json.Linq.JArray",
        Ty::JValue => "Newtonsoft.Json.Linq.JValue",
        Ty::JProperty => "Newtonsoft.Json.Linq.JProperty",
        Ty::DateTime => "System.DateTime",
        other => other.name(),
    }
}

/// Result of evaluation.
pub type R = Result<Val, Exc>;

enum Flow {
    Next,
    Return(Val),
}

/// Runs a compiled expression.
pub fn run(c: &Compiled, ctx: &Ctx) -> R {
    let mut locals = vec![Val::Null; c.locals];
    match &c.body {
        Ok(ir) => eval(ir, &mut locals, ctx),
        Err(stmts) => match exec(stmts, &mut locals, ctx)? {
            Flow::Return(v) => Ok(v),
            Flow::Next => Err(Exc::new("Not all code paths return a value")),
        },
    }
}

fn exec(stmts: &[SIr], locals: &mut Vec<Val>, ctx: &Ctx) -> Result<Flow, Exc> {
    for s in stmts {
        match s {
            SIr::Set(slot, ir) => {
                let v = eval(ir, locals, ctx)?;
                if let Some(l) = locals.get_mut(*slot) {
                    *l = v;
                }
            }
            SIr::Expr(ir) => {
                eval(ir, locals, ctx)?;
            }
            SIr::If(c, a, b) => {
                let branch = if truthy(&eval(c, locals, ctx)?)? {
                    a
                } else {
                    b
                };
                if let Flow::Return(v) = exec(branch, locals, ctx)? {
                    return Ok(Flow::Return(v));
                }
            }
            SIr::Return(ir) => return Ok(Flow::Return(eval(ir, locals, ctx)?)),
        }
    }
    Ok(Flow::Next)
}

/// A `bool` value (a boxed one from a variable included).
pub fn truthy(v: &Val) -> Result<bool, Exc> {
    match v {
        Val::Bool(b) => Ok(*b),
        Val::Null => Err(Exc::null_ref()),
        other => Err(Exc::cast(other, Ty::Bool)),
    }
}

fn eval(ir: &Ir, locals: &mut Vec<Val>, ctx: &Ctx) -> R {
    let mut ev = |ir: &Ir| eval(ir, locals, ctx);
    Ok(match ir {
        Ir::Lit(v) => v.clone(),
        Ir::Local(i) => locals.get(*i).cloned().unwrap_or(Val::Null),
        Ir::Context => Val::Ctx(super::value::CtxObj::Context),
        Ir::Get(recv, m, cond) => {
            let r = ev(recv)?;
            if *cond && matches!(r, Val::Null) {
                return Ok(Val::Null);
            }
            get(*m, r, ctx)?
        }
        Ir::Call(recv, m, args, t, cond) => {
            let r = ev(recv)?;
            if *cond && matches!(r, Val::Null) {
                return Ok(Val::Null);
            }
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, locals, ctx)?);
            }
            call(*m, r, vals, *t, ctx)?
        }
        Ir::Static(m, args, t) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, locals, ctx)?);
            }
            static_call(*m, vals, *t)?
        }
        Ir::Not(e) => Val::Bool(!truthy(&ev(e)?)?),
        Ir::Neg(e) => match ev(e)? {
            Val::Int(i) => Val::Int(i.wrapping_neg()),
            Val::Long(i) => Val::Long(i.wrapping_neg()),
            Val::Double(d) => Val::Double(-d),
            other => return Err(Exc::cast(&other, Ty::Double)),
        },
        Ir::Arith(op, _, l, r) => {
            let (l, r) = (ev(l)?, ev(r)?);
            arith(*op, l, r)?
        }
        Ir::Compare(op, l, r) => {
            let (l, r) = (ev(l)?, ev(r)?);
            Val::Bool(compare(*op, &l, &r))
        }
        Ir::IsNull(ne, e) => Val::Bool(matches!(ev(e)?, Val::Null) != *ne),
        Ir::And(l, r) => Val::Bool(truthy(&ev(l)?)? && truthy(&ev(r)?)?),
        Ir::Or(l, r) => Val::Bool(truthy(&ev(l)?)? || truthy(&ev(r)?)?),
        Ir::Cond(c, a, b) => {
            if truthy(&ev(c)?)? {
                ev(a)?
            } else {
                ev(b)?
            }
        }
        Ir::Coalesce(a, b) => match ev(a)? {
            Val::Null => ev(b)?,
            v => v,
        },
        Ir::Concat(parts) => {
            let mut s = String::new();
            for p in parts {
                s.push_str(&ev(p)?.to_text());
            }
            Val::Str(s)
        }
        Ir::Convert(t, e) => convert(*t, ev(e)?)?,
        Ir::Unbox(t, e) => {
            let v = ev(e)?;
            match v {
                Val::Null if !t.is_value() => Val::Null,
                Val::Null => return Err(Exc::null_ref()),
                v if v.is_instance_of(*t) => v,
                v => return Err(Exc::cast(&v, *t)),
            }
        }
        Ir::JsonTo(t, e) => json_to(*t, ev(e)?)?,
        Ir::NewJObject(args) => {
            let mut props: Vec<(String, J)> = Vec::new();
            for a in args {
                match ev(a)? {
                    Val::Prop(p) => match props.iter_mut().find(|(k, _)| *k == p.0) {
                        Some(_) => return Err(Exc::new(format!("Can not add property {} to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object.", p.0))),
                        None => props.push((p.0.clone(), p.1.clone())),
                    },
                    Val::Null => {}
                    Val::Json(j) if matches!(*j, J::Obj(_)) => {
                        if let J::Obj(inner) = &*j {
                            props.extend(inner.iter().cloned());
                        }
                    }
                    other => return Err(Exc::new(format!("Can not add {} to Newtonsoft.Json.Linq.JObject.", dotnet(other.ty())))),
                }
            }
            Val::Json(Arc::new(J::Obj(props)))
        }
        Ir::NewJArray(args) => {
            let mut items = Vec::new();
            for a in args {
                items.push(to_json(&ev(a)?).map_err(Exc::new)?);
            }
            Val::Json(Arc::new(J::Arr(items)))
        }
        Ir::NewJProperty(n, v) => {
            let name = match ev(n)? {
                Val::Null => return Err(Exc::new("Value cannot be null. (Parameter 'name')")),
                other => other.to_text(),
            };
            let value = to_json(&ev(v)?).map_err(Exc::new)?;
            Val::Prop(Arc::new((name, value)))
        }
    })
}

fn num(v: &Val) -> f64 {
    match v {
        Val::Int(i) => f64::from(*i),
        Val::Long(i) => *i as f64,
        Val::Double(d) => *d,
        _ => f64::NAN,
    }
}

/// Integer arithmetic with C#'s unchecked wrap-around (an `int` result is truncated to 32 bits
/// by the caller, which gives the same bits as 32-bit wrapping arithmetic).
fn int_op(op: BinOp, a: i64, b: i64) -> Result<i64, Exc> {
    if matches!(op, BinOp::Div | BinOp::Rem) && b == 0 {
        return Err(Exc::new("Attempted to divide by zero."));
    }
    Ok(match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::Div => a.wrapping_div(b),
        _ => a.wrapping_rem(b),
    })
}

fn arith(op: BinOp, l: Val, r: Val) -> R {
    Ok(match (l, r) {
        (Val::Int(a), Val::Int(b)) => Val::Int(int_op(op, i64::from(a), i64::from(b))? as i32),
        (Val::Long(a), Val::Long(b)) => Val::Long(int_op(op, a, b)?),
        (l, r) => {
            let (a, b) = (num(&l), num(&r));
            Val::Double(match op {
                BinOp::Add => a + b,
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                _ => a % b,
            })
        }
    })
}

fn compare(op: BinOp, l: &Val, r: &Val) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Long(a), Val::Long(b)) => Some(a.cmp(b)),
        (Val::Double(a), Val::Double(b)) => a.partial_cmp(b),
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        (Val::Char(a), Val::Char(b)) => Some(a.cmp(b)),
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Null, Val::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        BinOp::Eq => ord == Some(Ordering::Equal),
        BinOp::Ne => ord != Some(Ordering::Equal),
        BinOp::Lt => ord == Some(Ordering::Less),
        BinOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        BinOp::Gt => ord == Some(Ordering::Greater),
        _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// Numeric conversion (C#'s unchecked explicit conversions).
pub fn convert(t: Ty, v: Val) -> R {
    let f = num(&v);
    Ok(match (t, &v) {
        (Ty::Int, Val::Long(i)) => Val::Int(*i as i32),
        (Ty::Int, _) => Val::Int(f as i32),
        (Ty::Long, Val::Int(i)) => Val::Long(i64::from(*i)),
        (Ty::Long, _) => Val::Long(f as i64),
        (Ty::Double, _) => Val::Double(f),
        _ => return Err(Exc::cast(&v, t)),
    })
}

/// Newtonsoft's explicit conversions from a `JToken` (`(string)token`, `(int)token`, ...).
pub fn json_to(t: Ty, v: Val) -> R {
    let j = match v {
        Val::Null => {
            return if t.is_value() {
                Err(Exc::new(format!("Can not convert Null to {}.", short(t))))
            } else {
                Ok(Val::Null)
            }
        }
        Val::Json(j) => j,
        other => return Err(Exc::cast(&other, Ty::JToken)),
    };
    let bad = || Exc::new(format!("Can not convert {} to {}.", j.kind(), short(t)));
    Ok(match (t, &*j) {
        (Ty::String, J::Null) => Val::Null,
        (Ty::String, J::Str(s)) => Val::Str(s.clone()),
        (Ty::String, J::Int(_) | J::Float(_) | J::Bool(_)) => Val::Str(super::value::json_text(&j)),
        (Ty::Bool, J::Bool(b)) => Val::Bool(*b),
        (Ty::Bool, J::Int(i)) => Val::Bool(*i != 0),
        (Ty::Bool, J::Str(s)) => Val::Bool(
            parse_bool(s)
                .ok_or_else(|| Exc::new("String was not recognized as a valid Boolean."))?,
        ),
        (Ty::Int | Ty::Long | Ty::Double, J::Int(i)) => convert(t, Val::Long(*i))?,
        (Ty::Int | Ty::Long | Ty::Double, J::Float(f)) => convert(t, Val::Double(f.round()))?,
        (Ty::Int | Ty::Long | Ty::Double, J::Bool(b)) => convert(t, Val::Int(i32::from(*b)))?,
        (Ty::Int | Ty::Long | Ty::Double, J::Str(s)) => parse_number(t, s)?,
        _ => return Err(bad()),
    })
}

fn short(t: Ty) -> &'static str {
    dotnet(t).rsplit('.').next().unwrap_or("Object")
}

/// `bool.Parse`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `int.Parse` / `long.Parse` / `double.Parse` (invariant culture).
pub fn parse_number(t: Ty, s: &str) -> R {
    let fmt = || Exc::new("Input string was not in a correct format.");
    let s = s.trim();
    Ok(match t {
        Ty::Int => Val::Int(s.parse::<i32>().map_err(|_| fmt())?),
        Ty::Long => Val::Long(s.parse::<i64>().map_err(|_| fmt())?),
        _ => Val::Double(s.parse::<f64>().map_err(|_| fmt())?),
    })
}
