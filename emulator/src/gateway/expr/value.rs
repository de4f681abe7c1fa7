//! Static types and run-time values of policy expressions, and the C# conversions between them
//! (`ToString()`, string concatenation, unboxing).

use super::json::{float_text, J};
use crate::gateway::context::{BodyCell, HttpResponse};
use std::sync::Arc;

/// A static type, as the binder infers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `object`.
    Object,
    /// The type of the `null` literal.
    Null,
    /// `bool`.
    Bool,
    /// `int`.
    Int,
    /// `long`.
    Long,
    /// `double`.
    Double,
    /// `char`.
    Char,
    /// `string`.
    String,
    /// `JToken`.
    JToken,
    /// `JObject`.
    JObject,
    /// `JArray`.
    JArray,
    /// `JValue`.
    JValue,
    /// `JProperty`.
    JProperty,
    /// `IResponse` (a `send-request` response).
    Response,
    /// `IMessageBody`.
    Body,
    /// Headers: `IReadOnlyDictionary<string, string[]>`.
    Headers,
    /// `IUrl.Query`: `IReadOnlyDictionary<string, string[]>`.
    Query,
    /// `context`.
    Context,
    /// `context.Request`.
    Request,
    /// `context.Response`.
    CtxResponse,
    /// `IUrl`.
    Url,
    /// `context.Variables`.
    Variables,
    /// `context.LastError`.
    LastError,
    /// `context.Deployment`.
    Deployment,
    /// `context.Api`.
    Api,
    /// `context.Subscription`.
    Subscription,
    /// `DateTime` (UTC).
    DateTime,
    /// No value (a method returning `void`).
    Void,
}

impl Ty {
    /// The C# name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Object => "object",
            Ty::Null => "<null>",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Long => "long",
            Ty::Double => "double",
            Ty::Char => "char",
            Ty::String => "string",
            Ty::JToken => "JToken",
            Ty::JObject => "JObject",
            Ty::JArray => "JArray",
            Ty::JValue => "JValue",
            Ty::JProperty => "JProperty",
            Ty::Response => "IResponse",
            Ty::Body => "IMessageBody",
            Ty::Headers => "IReadOnlyDictionary<string, string[]>",
            Ty::Query => "IReadOnlyDictionary<string, string[]>",
            Ty::Context => "IProxyRequestContext",
            Ty::Request => "IRequest",
            Ty::CtxResponse => "IResponse",
            Ty::Url => "IUrl",
            Ty::Variables => "IReadOnlyDictionary<string, object>",
            Ty::LastError => "ProxyError",
            Ty::Deployment => "IDeployment",
            Ty::Api => "IApi",
            Ty::Subscription => "ISubscription",
            Ty::DateTime => "DateTime",
            Ty::Void => "void",
        }
    }

    /// Numeric types.
    pub fn is_numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Long | Ty::Double)
    }

    /// Value types (never null).
    pub fn is_value(self) -> bool {
        matches!(
            self,
            Ty::Bool | Ty::Int | Ty::Long | Ty::Double | Ty::Char | Ty::DateTime | Ty::Void
        )
    }

    /// The `JToken` family.
    pub fn is_json(self) -> bool {
        matches!(self, Ty::JToken | Ty::JObject | Ty::JArray | Ty::JValue)
    }
}

/// Members of `context` that are objects rather than plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtxObj {
    /// `context`.
    Context,
    /// `context.Request`.
    Request,
    /// `context.Response`.
    Response,
    /// `context.Request.Url` (false) or `.OriginalUrl` (true).
    Url(bool),
    /// `context.Variables`.
    Variables,
    /// `context.LastError` (only while an error is being handled).
    LastError,
    /// `context.Deployment`.
    Deployment,
    /// `context.Api`.
    Api,
    /// `context.Subscription`.
    Subscription,
}

/// A run-time value.
#[derive(Debug, Clone)]
pub enum Val {
    /// A null reference.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i32),
    /// `long`.
    Long(i64),
    /// `double`.
    Double(f64),
    /// `char`.
    Char(char),
    /// `string`.
    Str(String),
    /// A `JToken` (object, array or value).
    Json(Arc<J>),
    /// A `JProperty`.
    Prop(Arc<(String, J)>),
    /// An `IResponse` from `send-request`.
    Response(Arc<HttpResponse>),
    /// An `IMessageBody`.
    Body(Arc<BodyCell>),
    /// A header dictionary (a snapshot, in order).
    Headers(Arc<Vec<(String, String)>>),
    /// A member of `context`.
    Ctx(CtxObj),
    /// A UTC `DateTime`, in ticks (100 ns) since 0001-01-01.
    DateTime(i64),
}

impl Val {
    /// The run-time type (for casts and `GetValueOrDefault<T>`).
    pub fn ty(&self) -> Ty {
        match self {
            Val::Null => Ty::Null,
            Val::Bool(_) => Ty::Bool,
            Val::Int(_) => Ty::Int,
            Val::Long(_) => Ty::Long,
            Val::Double(_) => Ty::Double,
            Val::Char(_) => Ty::Char,
            Val::Str(_) => Ty::String,
            Val::Json(j) => match **j {
                J::Obj(_) => Ty::JObject,
                J::Arr(_) => Ty::JArray,
                _ => Ty::JValue,
            },
            Val::Prop(_) => Ty::JProperty,
            Val::Response(_) => Ty::Response,
            Val::Body(_) => Ty::Body,
            Val::Headers(_) => Ty::Headers,
            Val::DateTime(_) => Ty::DateTime,
            Val::Ctx(o) => match o {
                CtxObj::Context => Ty::Context,
                CtxObj::Request => Ty::Request,
                CtxObj::Response => Ty::CtxResponse,
                CtxObj::Url(_) => Ty::Url,
                CtxObj::Variables => Ty::Variables,
                CtxObj::LastError => Ty::LastError,
                CtxObj::Deployment => Ty::Deployment,
                CtxObj::Api => Ty::Api,
                CtxObj::Subscription => Ty::Subscription,
            },
        }
    }

    /// Whether the run-time type may be stored in a variable of static type `t` (reference
    /// conversion or exact unboxing, as a C# cast from `object` checks).
    pub fn is_instance_of(&self, t: Ty) -> bool {
        let own = self.ty();
        own == t
            || t == Ty::Object
            || (t == Ty::JToken && own.is_json())
            || (t == Ty::CtxResponse && own == Ty::Response)
            || (t == Ty::Response && own == Ty::CtxResponse)
    }

    /// The text C# string concatenation and `ToString()` produce (`null` gives "").
    pub fn to_text(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => if *b { "True" } else { "False" }.into(),
            Val::Int(i) => i.to_string(),
            Val::Long(i) => i.to_string(),
            Val::Double(d) => double_text(*d),
            Val::Char(c) => c.to_string(),
            Val::Str(s) => s.clone(),
            Val::Json(j) => json_text(j),
            Val::Prop(p) => format!("{}: {}", super::json::quote(&p.0), json_value_text(&p.1)),
            Val::Response(_) | Val::Ctx(CtxObj::Response) => {
                "Microsoft.WindowsAzure.ApiManagement.Proxy.Gateway.Response".into()
            }
            Val::Body(_) => "Microsoft.WindowsAzure.ApiManagement.Proxy.Gateway.MessageBody".into(),
            Val::Headers(_) => {
                "System.Collections.Generic.Dictionary`2[System.String,System.String[]]".into()
            }
            Val::Ctx(o) => format!("{o:?}"),
            Val::DateTime(t) => datetime_text(*t),
        }
    }
}

/// `double.ToString()`: the shortest round-trip form, `E+` exponents.
pub fn double_text(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "∞" } else { "-∞" }.into();
    }
    let abs = d.abs();
    if abs != 0.0 && !(1e-5..1e15).contains(&abs) {
        let s = format!("{d:E}");
        return match s.split_once('E') {
            Some((m, e)) if e.starts_with('-') => format!("{m}E-{:0>2}", &e[1..]),
            Some((m, e)) => format!("{m}E+{e:0>2}"),
            None => s,
        };
    }
    format!("{d}")
}

/// `JToken.ToString()`: a string value unquoted, other values as their text, containers indented.
pub fn json_text(j: &J) -> String {
    match j {
        J::Null => String::new(),
        J::Bool(b) => if *b { "True" } else { "False" }.into(),
        J::Int(i) => i.to_string(),
        J::Float(f) => double_text(*f),
        J::Str(s) => s.clone(),
        _ => j.indented(),
    }
}

fn json_value_text(j: &J) -> String {
    match j {
        J::Float(f) => float_text(*f),
        _ => j.indented(),
    }
}

/// Converts a value into a JSON token the way `new JProperty(name, value)` and `new JArray(...)`
/// wrap an `object` (`null` becomes a JSON null).
pub fn to_json(v: &Val) -> Result<J, String> {
    Ok(match v {
        Val::Null => J::Null,
        Val::Bool(b) => J::Bool(*b),
        Val::Int(i) => J::Int(i64::from(*i)),
        Val::Long(i) => J::Int(*i),
        Val::Double(d) => J::Float(*d),
        Val::Char(c) => J::Str(c.to_string()),
        Val::Str(s) => J::Str(s.clone()),
        Val::Json(j) => (**j).clone(),
        Val::Prop(p) => J::Obj(vec![(p.0.clone(), p.1.clone())]),
        other => {
            return Err(format!(
                "Could not determine JSON object type for type {}.",
                other.ty().name()
            ))
        }
    })
}

/// Ticks (100 ns) from 0001-01-01 to 1970-01-01, as .NET counts them.
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;

/// `DateTime.UtcNow` in ticks.
pub fn utc_now_ticks() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_TICKS + i64::try_from(since.as_nanos() / 100).unwrap_or(i64::MAX / 2)
}

/// `DateTime.ToString()` in the invariant culture: `MM/dd/yyyy HH:mm:ss`.
fn datetime_text(ticks: i64) -> String {
    let secs = (ticks - UNIX_EPOCH_TICKS).div_euclid(10_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::util::civil_from_days(days);
    format!(
        "{month:02}/{day:02}/{year:04} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(Val::Bool(true).to_text(), "True");
        assert_eq!(Val::Double(1.5).to_text(), "1.5");
        assert_eq!(Val::Double(2.0).to_text(), "2");
        assert_eq!(Val::Double(1e21).to_text(), "1E+21");
        assert_eq!(Val::Json(Arc::new(J::Str("x".into()))).to_text(), "x");
        assert_eq!(Val::Json(Arc::new(J::Null)).to_text(), "");
        assert_eq!(
            Val::Prop(Arc::new(("a".into(), J::Int(1)))).to_text(),
            "\"a\": 1"
        );
        assert!(Val::Json(Arc::new(J::Obj(vec![]))).is_instance_of(Ty::JToken));
        assert!(!Val::Int(1).is_instance_of(Ty::Long));
    }
}
