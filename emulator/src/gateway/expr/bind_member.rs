//! Binding member accesses, method calls (instance, static, generic) and indexers against the
//! member tables, with APIM's allow-list checked for every static type used.

use super::ast::{Arg, Expr, TypeName};
use super::bind::{
    assignable, coerce, names_of, not_allowed_type, not_impl, resolve_ty, Binder, Ir,
};
use super::members::{DOCUMENTED_UNIMPLEMENTED, M, PROPS};
use super::methods::{applies, METHODS, STATICS, STATIC_FIELDS};
use super::value::{Ty, Val};
use crate::gateway::rules::types;

type Bound = Result<(Ir, Ty), String>;

/// `Name.Name.Name` as a dotted string, if `e` is only names.
pub fn type_path(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(n.clone()),
        Expr::Member {
            recv,
            name,
            cond: false,
        } => Some(format!("{}.{name}", type_path(recv)?)),
        _ => None,
    }
}

fn no_member(ty: Ty, name: &str) -> String {
    if DOCUMENTED_UNIMPLEMENTED
        .iter()
        .any(|(t, n)| *t == ty && *n == name)
        || matches!(
            ty,
            Ty::String
                | Ty::JToken
                | Ty::JObject
                | Ty::JArray
                | Ty::JValue
                | Ty::JProperty
                | Ty::Int
                | Ty::Long
                | Ty::Double
                | Ty::Bool
                | Ty::Char
        )
    {
        not_impl(&format!("'{}.{name}'", ty.name()))
    } else {
        format!("'{}' does not contain a definition for '{name}'", ty.name())
    }
}

/// Whether a chain of names is read as a type: an allowed type, a qualified name, or a
/// capitalised name (which C# would look up as a type).
/// A chain whose leading part is already a type (`string.Empty`) is a member access on it.
fn is_type_like(path: &str) -> bool {
    if types::resolve(path).is_ok() {
        return true;
    }
    let mut prefix = String::new();
    for seg in path
        .split('.')
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .skip(1)
        .rev()
    {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(seg);
        if types::resolve(&prefix).is_ok() {
            return false;
        }
    }
    path.contains('.') || path.starts_with(char::is_uppercase)
}

fn check_static_member(path: &str, name: &str) -> Result<&'static str, String> {
    let (full, members) = types::resolve(path).map_err(|n| not_allowed_type(&n))?;
    if !types::member_allowed(members, name) {
        return Err(format!(
            "The member '{full}.{name}' is not allowed in policy expressions"
        ));
    }
    Ok(full)
}

/// `recv.name` (a property or a static field).
pub fn bind_member(b: &mut Binder, recv: &Expr, name: &str, cond: bool) -> Bound {
    if let Some(path) = names_of(b, recv).filter(|p| is_type_like(p)) {
        {
            let full = check_static_member(&path, name)?;
            return STATIC_FIELDS
                .iter()
                .find(|(t, n, _, _)| *t == full && *n == name)
                .map(|(_, _, ty, m)| (Ir::Static(*m, Vec::new(), *ty), *ty))
                .ok_or_else(|| not_impl(&format!("'{full}.{name}'")));
        }
    }
    let (ir, ty) = b.expr(recv)?;
    let (_, _, out, m) = PROPS
        .iter()
        .find(|(on, n, _, _)| applies(*on, ty) && *n == name)
        .ok_or_else(|| no_member(ty, name))?;
    if cond && out.is_value() {
        return Err(not_impl(&format!("'?.{name}' (a nullable value type)")));
    }
    Ok((Ir::Get(Box::new(ir), *m, cond), *out))
}

struct Args {
    irs: Vec<Ir>,
    tys: Vec<Ty>,
    names: Vec<Option<String>>,
}

fn bind_args(b: &mut Binder, args: &[Arg]) -> Result<Args, String> {
    let mut out = Args {
        irs: Vec::new(),
        tys: Vec::new(),
        names: Vec::new(),
    };
    for a in args {
        let (ir, t) = b.expr(&a.value)?;
        if t == Ty::Void {
            return Err("An argument has no value".into());
        }
        out.irs.push(ir);
        out.tys.push(t);
        out.names.push(a.name.clone());
    }
    Ok(out)
}

fn fixed(args: Args, params: &[Ty]) -> Option<Vec<Ir>> {
    if args.tys.len() != params.len() || args.names.iter().any(Option::is_some) {
        return None;
    }
    if !args.tys.iter().zip(params).all(|(a, p)| assignable(*a, *p)) {
        return None;
    }
    Some(
        args.irs
            .into_iter()
            .zip(args.tys)
            .zip(params)
            .map(|((ir, a), p)| coerce(ir, a, *p))
            .collect(),
    )
}

fn generic(generics: &[TypeName]) -> Result<Option<Ty>, String> {
    match generics {
        [] => Ok(None),
        [t] => resolve_ty(t).map(Some),
        _ => Err(not_impl("methods with more than one generic argument")),
    }
}

/// `recv.name<T>(args)`, `Type.name(args)` or `name(args)`.
pub fn bind_call(
    b: &mut Binder,
    recv: Option<&Expr>,
    name: &str,
    generics: &[TypeName],
    args: &[Arg],
    cond: bool,
) -> Bound {
    let Some(recv) = recv else {
        return Err(format!(
            "The name '{name}' does not exist in the current context"
        ));
    };
    if let Some(path) = names_of(b, recv).filter(|p| is_type_like(p)) {
        return bind_static(b, &path, name, generics, args);
    }
    let (rir, rty) = b.expr(recv)?;
    let target = generic(generics)?;
    let a = bind_args(b, args)?;
    let call = |m: M, irs: Vec<Ir>, t: Ty| Ir::Call(Box::new(rir.clone()), m, irs, t, cond);
    if matches!(rty, Ty::Null | Ty::Void) {
        return Err(format!(
            "Operator '.' cannot be applied to operand of type '{}'",
            rty.name()
        ));
    }
    let bound = match (rty, name) {
        (Ty::DateTime, "ToString") => {
            return Err(not_impl(
                "'DateTime.ToString()' (its text depends on the gateway's culture)",
            ))
        }
        (_, "ToString") if a.irs.is_empty() && target.is_none() => {
            (call(M::ToString, Vec::new(), Ty::Void), Ty::String)
        }
        (Ty::Variables, "GetValueOrDefault") => {
            if a.tys.first() != Some(&Ty::String)
                || a.tys.len() > 2
                || a.names.iter().any(Option::is_some)
            {
                return Err(
                    "GetValueOrDefault takes a variable name and an optional default value".into(),
                );
            }
            let t = match (target, a.tys.get(1)) {
                (Some(t), Some(d)) if !assignable(*d, t) => {
                    return Err(format!(
                        "Argument 2: cannot convert from '{}' to '{}'",
                        d.name(),
                        t.name()
                    ))
                }
                (Some(t), _) => t,
                (None, Some(Ty::Null)) | (None, None) => Ty::Object,
                (None, Some(d)) => *d,
            };
            let mut irs = a.irs;
            if irs.len() == 2 {
                let d = irs.pop().unwrap_or(Ir::Lit(Val::Null));
                irs.push(coerce(d, a.tys[1], t));
            }
            (call(M::VarsGet, irs, t), t)
        }
        (Ty::Body, "As") => {
            let t = target
                .ok_or("The type arguments for method 'As<T>' cannot be inferred from the usage")?;
            if !matches!(t, Ty::String | Ty::JObject | Ty::JToken | Ty::JArray) {
                return Err(not_impl(&format!("'Body.As<{}>'", t.name())));
            }
            let preserve = match (a.irs.as_slice(), a.names.first()) {
                ([], _) => Ir::Lit(Val::Bool(false)),
                ([p], Some(None) | Some(Some(_)))
                    if a.tys[0] == Ty::Bool
                        && a.names[0].as_deref().is_none_or(|n| n == "preserveContent") =>
                {
                    p.clone()
                }
                _ => return Err("As<T> takes one argument, preserveContent: bool".into()),
            };
            (call(M::BodyAs, vec![preserve], t), t)
        }
        (t, "Value") if t.is_json() => {
            let target = target.ok_or_else(|| not_impl("'Value' without a type argument"))?;
            if !matches!(
                target,
                Ty::String
                    | Ty::Int
                    | Ty::Long
                    | Ty::Bool
                    | Ty::Double
                    | Ty::JToken
                    | Ty::JObject
                    | Ty::JArray
            ) {
                return Err(not_impl(&format!("'Value<{}>'", target.name())));
            }
            match a.tys.as_slice() {
                [] => (call(M::JValueOf, Vec::new(), target), target),
                [Ty::String] | [Ty::Int] => (call(M::JValueOf, a.irs, target), target),
                _ => return Err("Value<T> takes a property name or an index".into()),
            }
        }
        _ => {
            if target.is_some() {
                return Err(not_impl(&format!(
                    "the generic method '{}.{name}<...>'",
                    rty.name()
                )));
            }
            let n = a.tys.len();
            let found = METHODS.iter().filter(|(on, mname, params, _, _)| {
                applies(*on, rty) && *mname == name && params.len() == n
            });
            let mut hit = None;
            let mut args_opt = Some(a);
            for (_, _, params, ret, m) in found {
                let Some(a) = args_opt.take() else { break };
                let tys = a.tys.clone();
                let names = a.names.clone();
                let irs = a.irs.clone();
                if let Some(irs) = fixed(a, params) {
                    hit = Some((call(*m, irs, Ty::Void), *ret));
                    break;
                }
                args_opt = Some(Args { irs, tys, names });
            }
            match hit {
                Some(h) => h,
                None if METHODS
                    .iter()
                    .any(|(on, mname, _, _, _)| applies(*on, rty) && *mname == name) =>
                {
                    return Err(format!(
                        "No overload for method '{name}' of '{}' takes these arguments",
                        rty.name()
                    ))
                }
                None => return Err(no_member(rty, name)),
            }
        }
    };
    if cond && bound.1.is_value() {
        return Err(not_impl(&format!(
            "'?.{name}(...)' (a nullable value type)"
        )));
    }
    Ok(bound)
}

fn bind_static(
    b: &mut Binder,
    path: &str,
    name: &str,
    generics: &[TypeName],
    args: &[Arg],
) -> Bound {
    let full = check_static_member(path, name)?;
    if !generics.is_empty() {
        for g in generics {
            resolve_ty(g)?;
        }
        return Err(not_impl(&format!(
            "the generic method '{full}.{name}<...>'"
        )));
    }
    let a = bind_args(b, args)?;
    if a.names.iter().any(Option::is_some) {
        return Err(not_impl("named arguments of static methods"));
    }
    if full == "System.Math" && matches!(name, "Min" | "Max" | "Abs") {
        let want = if name == "Abs" { 1 } else { 2 };
        if a.tys.len() != want || !a.tys.iter().all(|t| t.is_numeric()) {
            return Err(format!(
                "No overload for method '{name}' takes these arguments"
            ));
        }
        let t = a
            .tys
            .iter()
            .copied()
            .fold(Ty::Int, |acc, t| if assignable(acc, t) { t } else { acc });
        let m = match name {
            "Min" => M::MathMin,
            "Max" => M::MathMax,
            _ => M::MathAbs,
        };
        let irs = a
            .irs
            .into_iter()
            .zip(a.tys)
            .map(|(ir, at)| coerce(ir, at, t))
            .collect();
        return Ok((Ir::Static(m, irs, t), t));
    }
    let mut candidates = STATICS
        .iter()
        .filter(|(t, n, _, _, _)| *t == full && *n == name)
        .peekable();
    if candidates.peek().is_none() {
        return Err(not_impl(&format!("'{full}.{name}'")));
    }
    for (_, _, params, ret, m) in candidates {
        match params {
            None => {
                let irs = a.irs.clone();
                if *m == M::StrJoin && a.tys.first() != Some(&Ty::String) {
                    return Err(not_impl("'String.Join' without a string separator"));
                }
                // Both make their arguments text.
                for t in &a.tys {
                    super::bind_expr::as_text(*t)?;
                }
                return Ok((Ir::Static(*m, irs, *ret), *ret));
            }
            Some(params) => {
                let args = Args {
                    irs: a.irs.clone(),
                    tys: a.tys.clone(),
                    names: a.names.clone(),
                };
                if let Some(irs) = fixed(args, params) {
                    return Ok((Ir::Static(*m, irs, *ret), *ret));
                }
            }
        }
    }
    Err(format!(
        "No overload for method '{name}' takes these arguments"
    ))
}
