//! The implementations of the members in `members.rs`: `context` and its objects, strings,
//! `JToken`s, `IResponse`/`IMessageBody`, and the static helpers.

use super::eval::{convert, dotnet, json_to, parse_bool, parse_number, Exc, R};
use super::json::J;
use super::members::M;
use super::value::{to_json, CtxObj, Ty, Val};
use crate::gateway::context::{joined, Ctx, LastError, Url};
use std::sync::Arc;

fn s(v: impl Into<String>) -> Val {
    Val::Str(v.into())
}

fn text_arg(args: &[Val], i: usize) -> Result<Option<String>, Exc> {
    Ok(match args.get(i) {
        None | Some(Val::Null) => None,
        Some(v) => Some(v.to_text()),
    })
}

fn req_text(args: &[Val], i: usize, name: &str) -> Result<String, Exc> {
    text_arg(args, i)?
        .ok_or_else(|| Exc::new(format!("Value cannot be null. (Parameter '{name}')")))
}

fn url(ctx: &Ctx, original: bool) -> &Url {
    if original {
        &ctx.original_url
    } else {
        &ctx.url
    }
}

fn last_error(ctx: &Ctx) -> Result<&LastError, Exc> {
    ctx.last_error.as_ref().ok_or_else(Exc::null_ref)
}

fn sub(ctx: &Ctx, i: usize) -> R {
    match &ctx.matched.subscription {
        Some(s5) => Ok(s(s5[i].clone())),
        None => Err(Exc::null_ref()),
    }
}

/// A property.
pub fn get(m: M, recv: Val, ctx: &Ctx) -> R {
    if matches!(recv, Val::Null) {
        return Err(Exc::null_ref());
    }
    let o = |c| Val::Ctx(c);
    Ok(match (m, &recv) {
        (M::CtxRequest, _) => o(CtxObj::Request),
        (M::CtxResponse, _) => o(CtxObj::Response),
        (M::CtxVariables, _) => o(CtxObj::Variables),
        (M::CtxLastError, _) if ctx.last_error.is_none() => Val::Null,
        (M::CtxLastError, _) => o(CtxObj::LastError),
        (M::CtxDeployment, _) => o(CtxObj::Deployment),
        (M::CtxApi, _) => o(CtxObj::Api),
        (M::CtxSubscription, _) if ctx.matched.subscription.is_none() => Val::Null,
        (M::CtxSubscription, _) => o(CtxObj::Subscription),
        (M::ReqMethod, _) => s(ctx.method.clone()),
        (M::ReqUrl, _) => o(CtxObj::Url(false)),
        (M::ReqOriginalUrl, _) => o(CtxObj::Url(true)),
        (M::ReqHeaders, _) => Val::Headers(Arc::new(ctx.req_headers.clone())),
        (M::ReqBody, _) => Val::Body(ctx.req_body.clone()),
        (M::ReqIp, _) => s(ctx.ip.clone()),
        (M::RespStatus, Val::Response(r)) => Val::Int(i32::from(r.status)),
        (M::DateTicks, Val::DateTime(t)) => Val::Long(*t),
        (M::RespReason, Val::Response(r)) => s(r.reason.clone()),
        (M::RespHeaders, Val::Response(r)) => Val::Headers(Arc::new(r.headers.clone())),
        (M::RespBody, Val::Response(r)) => Val::Body(r.body.clone()),
        (M::RespStatus, _) => Val::Int(i32::from(ctx.status)),
        (M::RespReason, _) => s(ctx.reason.clone()),
        (M::RespHeaders, _) => Val::Headers(Arc::new(ctx.resp_headers.clone())),
        (M::RespBody, _) => Val::Body(ctx.resp_body.clone()),
        (M::UrlScheme, Val::Ctx(CtxObj::Url(orig))) => s(url(ctx, *orig).scheme.clone()),
        (M::UrlHost, Val::Ctx(CtxObj::Url(orig))) => s(url(ctx, *orig).host.clone()),
        (M::UrlPort, Val::Ctx(CtxObj::Url(orig))) => Val::Int(i32::from(url(ctx, *orig).port)),
        (M::UrlPath, Val::Ctx(CtxObj::Url(orig))) => s(url(ctx, *orig).path.clone()),
        (M::UrlQueryString, Val::Ctx(CtxObj::Url(orig))) => s(url(ctx, *orig).query_string()),
        (M::UrlQuery, Val::Ctx(CtxObj::Url(orig))) => {
            Val::Headers(Arc::new(url(ctx, *orig).query.clone()))
        }
        (M::ErrSource, _) => s(last_error(ctx)?.source.clone()),
        (M::ErrReason, _) => s(last_error(ctx)?.reason.clone()),
        (M::ErrMessage, _) => s(last_error(ctx)?.message.clone()),
        (M::ErrScope, _) => s(last_error(ctx)?.scope.clone()),
        (M::ErrSection, _) => s(last_error(ctx)?.section.clone()),
        (M::ErrPath, _) => s(last_error(ctx)?.path.clone()),
        (M::ErrPolicyId, _) => s(last_error(ctx)?.policy_id.clone()),
        (M::DepServiceName, _) => s(ctx.matched.service_name.clone()),
        (M::DepRegion, _) => s(ctx.matched.region.clone()),
        (M::DepGatewayId, _) => s("managed"),
        (M::ApiId, _) => s(ctx.matched.api_id.clone()),
        (M::ApiName, _) => s(ctx.matched.api_name.clone()),
        (M::ApiPath, _) => s(ctx.matched.api_path.clone()),
        (M::SubId, _) => sub(ctx, 0)?,
        (M::SubName, _) => sub(ctx, 1)?,
        (M::SubKey, _) => sub(ctx, 2)?,
        (M::SubPrimary, _) => sub(ctx, 3)?,
        (M::SubSecondary, _) => sub(ctx, 4)?,
        (M::StrLength, Val::Str(x)) => {
            Val::Int(i32::try_from(x.encode_utf16().count()).unwrap_or(i32::MAX))
        }
        (M::PropName, Val::Prop(p)) => s(p.0.clone()),
        (M::PropValue, Val::Prop(p)) => Val::Json(Arc::new(p.1.clone())),
        (M::JCount, Val::Json(j)) => Val::Int(match &**j {
            J::Obj(p) => i32::try_from(p.len()).unwrap_or(i32::MAX),
            J::Arr(a) => i32::try_from(a.len()).unwrap_or(i32::MAX),
            _ => 0,
        }),
        (M::JHasValues, Val::Json(j)) => Val::Bool(match &**j {
            J::Obj(p) => !p.is_empty(),
            J::Arr(a) => !a.is_empty(),
            _ => false,
        }),
        (m, v) => return Err(Exc::new(format!("internal: {m:?} on {}", dotnet(v.ty())))),
    })
}

fn json_index(j: &J, key: &Val) -> R {
    Ok(match (j, key) {
        (J::Obj(props), Val::Str(k)) => props
            .iter()
            .find(|(n, _)| n == k)
            .map_or(Val::Null, |(_, v)| Val::Json(Arc::new(v.clone()))),
        (J::Arr(items), Val::Int(i)) => match usize::try_from(*i).ok().and_then(|i| items.get(i)) {
            Some(v) => Val::Json(Arc::new(v.clone())),
            None => return Err(Exc::new("Index was out of range. Must be non-negative and less than the size of the collection. (Parameter 'index')")),
        },
        (J::Obj(_), other) => return Err(Exc::new(format!("Accessed JObject values with invalid key value: {}. Object property name expected.", other.to_text()))),
        (J::Arr(_), other) => return Err(Exc::new(format!("Accessed JArray values with invalid key value: {}. Int32 array index expected.", other.to_text()))),
        (_, _) => return Err(Exc::new("Cannot access child value on Newtonsoft.Json.Linq.JValue.")),
    })
}

fn body_as(body: &crate::gateway::context::BodyCell, preserve: bool, t: Ty) -> R {
    let bytes = body.read(preserve);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if t == Ty::String {
        return Ok(Val::Str(text));
    }
    let j = J::parse(&text)
        .map_err(|e| Exc::new(format!("Error reading {} from JsonReader: {e}", dotnet(t))))?;
    match (&j, t) {
        (J::Obj(_), Ty::JObject) | (J::Arr(_), Ty::JArray) | (_, Ty::JToken) => {
            Ok(Val::Json(Arc::new(j)))
        }
        (_, Ty::JObject) => Err(Exc::new(format!(
            "Error reading JObject from JsonReader. Current JsonReader item is not an object: {}.",
            j.kind()
        ))),
        _ => Err(Exc::new(format!(
            "Error reading JArray from JsonReader. Current JsonReader item is not an array: {}.",
            j.kind()
        ))),
    }
}

/// `token.Value<T>(key)` (or `token.Value<T>()` with no key).
fn value_of(j: &Arc<J>, key: Option<&Val>, t: Ty) -> R {
    let item = match key {
        None => Val::Json(j.clone()),
        Some(k) => json_index(j, k)?,
    };
    match item {
        Val::Null => Ok(match t {
            Ty::Int => Val::Int(0),
            Ty::Long => Val::Long(0),
            Ty::Double => Val::Double(0.0),
            Ty::Bool => Val::Bool(false),
            _ => Val::Null,
        }),
        Val::Json(inner) if t.is_json() => {
            let v = Val::Json(inner);
            if v.is_instance_of(t) {
                Ok(v)
            } else {
                Err(Exc::cast(&v, t))
            }
        }
        Val::Json(inner) if matches!(*inner, J::Obj(_) | J::Arr(_)) => Err(Exc::new(format!(
            "Cannot cast {} to {}.",
            dotnet(Val::Json(inner.clone()).ty()),
            dotnet(t)
        ))),
        v => json_to(t, v),
    }
}

fn dict_get(pairs: &[(String, String)], args: &[Val]) -> R {
    let name = req_text(args, 0, "name")?;
    Ok(match joined(pairs, &name) {
        Some(v) => Val::Str(v),
        None => args.get(1).cloned().unwrap_or(Val::Null),
    })
}

/// An instance method (or indexer); `t` is the generic argument.
pub fn call(m: M, recv: Val, args: Vec<Val>, t: Ty, ctx: &Ctx) -> R {
    if matches!(recv, Val::Null) {
        return Err(Exc::null_ref());
    }
    let arg_text = |i: usize| req_text(&args, i, "value");
    Ok(match (m, &recv) {
        (M::ToString, v) => Val::Str(match v {
            Val::Ctx(CtxObj::Url(orig)) => url(ctx, *orig).full(),
            other => other.to_text(),
        }),
        (M::VarsContainsKey, _) => {
            Val::Bool(ctx.variables.contains_key(&req_text(&args, 0, "key")?))
        }
        (M::VarsIndex, _) => {
            let k = req_text(&args, 0, "key")?;
            ctx.variables.get(&k).cloned().ok_or_else(|| {
                Exc::new(format!(
                    "The given key '{k}' was not present in the dictionary."
                ))
            })?
        }
        (M::VarsGet, _) => {
            let k = req_text(&args, 0, "variableName")?;
            match ctx.variables.get(&k) {
                None => args.get(1).cloned().unwrap_or(Val::Null),
                Some(Val::Null) => Val::Null,
                Some(v) if t == Ty::Object || v.is_instance_of(t) => v.clone(),
                Some(v) => return Err(Exc::cast(v, t)),
            }
        }
        (M::DictGet, Val::Headers(h)) => dict_get(h, &args)?,
        (M::DictContainsKey, Val::Headers(h)) => {
            Val::Bool(joined(h, &req_text(&args, 0, "key")?).is_some())
        }
        (M::BodyAs, Val::Body(b)) => body_as(b, matches!(args.first(), Some(Val::Bool(true))), t)?,
        (M::StrContains, Val::Str(x)) => Val::Bool(x.contains(&arg_text(0)?)),
        (M::StrStartsWith, Val::Str(x)) => Val::Bool(x.starts_with(&arg_text(0)?)),
        (M::StrEndsWith, Val::Str(x)) => Val::Bool(x.ends_with(&arg_text(0)?)),
        (M::StrToLower, Val::Str(x)) => s(x.to_lowercase()),
        (M::StrToUpper, Val::Str(x)) => s(x.to_uppercase()),
        (M::StrTrim, Val::Str(x)) => s(x.trim()),
        (M::StrTrimStart, Val::Str(x)) => s(x.trim_start()),
        (M::StrTrimEnd, Val::Str(x)) => s(x.trim_end()),
        (M::StrSubstring, Val::Str(x)) => substring(x, &args)?,
        (M::StrIndexOf, Val::Str(x)) => {
            let needle = arg_text(0)?;
            Val::Int(x.find(&needle).map_or(-1, |b| {
                i32::try_from(x[..b].encode_utf16().count()).unwrap_or(i32::MAX)
            }))
        }
        (M::StrReplace, Val::Str(x)) => {
            let from = arg_text(0)?;
            if from.is_empty() {
                return Err(Exc::new(
                    "String cannot be of zero length. (Parameter 'oldValue')",
                ));
            }
            s(x.replace(&from, &text_arg(&args, 1)?.unwrap_or_default()))
        }
        (M::StrEquals, Val::Str(x)) => {
            Val::Bool(matches!(args.first(), Some(Val::Str(y)) if y == x))
        }
        (M::StrIndex, Val::Str(x)) => {
            let i = match args.first() {
                Some(Val::Int(i)) => usize::try_from(*i).ok(),
                _ => None,
            };
            let units: Vec<u16> = x.encode_utf16().collect();
            match i.and_then(|i| units.get(i)) {
                Some(u) => Val::Char(char::from_u32(u32::from(*u)).unwrap_or('\u{fffd}')),
                None => return Err(Exc::new("Index was outside the bounds of the array.")),
            }
        }
        (M::JIndex, Val::Json(j)) => json_index(j, args.first().unwrap_or(&Val::Null))?,
        (M::JValueOf, Val::Json(j)) => value_of(j, args.first(), t)?,
        (M::JContainsKey, Val::Json(j)) => {
            Val::Bool(j.get(&req_text(&args, 0, "propertyName")?).is_some())
        }
        (m, v) => return Err(Exc::new(format!("internal: {m:?} on {}", dotnet(v.ty())))),
    })
}

fn substring(x: &str, args: &[Val]) -> R {
    let units: Vec<u16> = x.encode_utf16().collect();
    let int = |i: usize| match args.get(i) {
        Some(Val::Int(n)) => usize::try_from(*n).ok(),
        _ => None,
    };
    let start = int(0).filter(|s| *s <= units.len()).ok_or_else(|| {
        Exc::new("startIndex cannot be larger than length of string. (Parameter 'startIndex')")
    })?;
    let len = match args.len() {
        1 => units.len() - start,
        _ => int(1).filter(|l| start + l <= units.len()).ok_or_else(|| {
            Exc::new(
                "Index and length must refer to a location within the string. (Parameter 'length')",
            )
        })?,
    };
    Ok(Val::Str(String::from_utf16_lossy(
        &units[start..start + len],
    )))
}

fn escape_data(x: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(x, KEEP).to_string()
}

/// A static member; `t` is its result type (for `Math`).
pub fn static_call(m: M, args: Vec<Val>, t: Ty) -> R {
    let a0 = || req_text(&args, 0, "value");
    Ok(match m {
        M::StrEmpty => s(""),
        M::DateUtcNow => Val::DateTime(super::value::utc_now_ticks()),
        M::StrIsNullOrEmpty => Val::Bool(text_arg(&args, 0)?.is_none_or(|x| x.is_empty())),
        M::StrIsNullOrWhiteSpace => {
            Val::Bool(text_arg(&args, 0)?.is_none_or(|x| x.trim().is_empty()))
        }
        M::StrConcat => s(args.iter().map(Val::to_text).collect::<String>()),
        M::StrJoin => {
            let sep = text_arg(&args, 0)?.unwrap_or_default();
            s(args
                .iter()
                .skip(1)
                .map(Val::to_text)
                .collect::<Vec<_>>()
                .join(&sep))
        }
        M::UriEscape => s(escape_data(&a0()?)),
        M::UriUnescape => s(percent_encoding::percent_decode_str(&a0()?)
            .decode_utf8_lossy()
            .into_owned()),
        M::WebUrlEncode => s(form_urlencoded::byte_serialize(a0()?.as_bytes()).collect::<String>()),
        M::WebUrlDecode => s(form_urlencoded::parse(format!("x={}", a0()?).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()),
        M::MathMin | M::MathMax => {
            let (a, b) = (
                args.first().cloned().unwrap_or(Val::Null),
                args.get(1).cloned().unwrap_or(Val::Null),
            );
            let (a, b) = (convert(t, a)?, convert(t, b)?);
            let less = match (&a, &b) {
                (Val::Int(x), Val::Int(y)) => x < y,
                (Val::Long(x), Val::Long(y)) => x < y,
                (Val::Double(x), Val::Double(y)) => x < y,
                _ => false,
            };
            if (m == M::MathMin) == less {
                a
            } else {
                b
            }
        }
        M::MathAbs => match convert(t, args.first().cloned().unwrap_or(Val::Null))? {
            Val::Int(i) if i == i32::MIN => {
                return Err(Exc::new(
                    "Negating the minimum value of a twos complement number is invalid.",
                ))
            }
            Val::Int(i) => Val::Int(i.abs()),
            Val::Long(i) => Val::Long(i.wrapping_abs()),
            Val::Double(d) => Val::Double(d.abs()),
            other => other,
        },
        M::JObjectParse | M::JTokenParse | M::JArrayParse => {
            let j = J::parse(&a0()?)
                .map_err(|e| Exc::new(format!("Error reading JToken from JsonReader: {e}")))?;
            match (m, &j) {
                (M::JObjectParse, J::Obj(_)) | (M::JArrayParse, J::Arr(_)) | (M::JTokenParse, _) => Val::Json(Arc::new(j)),
                (M::JObjectParse, _) => return Err(Exc::new(format!("Error reading JObject from JsonReader. Current JsonReader item is not an object: {}.", j.kind()))),
                _ => return Err(Exc::new(format!("Error reading JArray from JsonReader. Current JsonReader item is not an array: {}.", j.kind()))),
            }
        }
        M::JsonSerialize => s(match args.first() {
            Some(Val::Json(j)) => j.compact(),
            Some(v) => to_json(v).map_err(Exc::new)?.compact(),
            None => "null".into(),
        }),
        M::JsonDeserialize => Val::Json(Arc::new(J::parse(&a0()?).map_err(|e| {
            Exc::new(format!(
                "Unexpected character encountered while parsing value: {e}"
            ))
        })?)),
        M::IntParse => parse_number(Ty::Int, &a0()?)?,
        M::LongParse => parse_number(Ty::Long, &a0()?)?,
        M::DoubleParse => parse_number(Ty::Double, &a0()?)?,
        M::BoolParse => Val::Bool(
            parse_bool(&a0()?)
                .ok_or_else(|| Exc::new("String was not recognized as a valid Boolean."))?,
        ),
        other => return Err(Exc::new(format!("internal: static {other:?}"))),
    })
}
