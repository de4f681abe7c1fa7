//! The instance methods and static members the evaluator implements, with their parameter and
//! result types, and which static type a type name stands for.

use super::members::M;
use super::value::Ty;

/// Instance methods with fixed parameters: receiver, name, parameters, result, member.
pub const METHODS: &[(Ty, &str, &[Ty], Ty, M)] = &[
    (
        Ty::Variables,
        "ContainsKey",
        &[Ty::String],
        Ty::Bool,
        M::VarsContainsKey,
    ),
    (
        Ty::Headers,
        "GetValueOrDefault",
        &[Ty::String, Ty::String],
        Ty::String,
        M::DictGet,
    ),
    (
        Ty::Headers,
        "GetValueOrDefault",
        &[Ty::String],
        Ty::String,
        M::DictGet,
    ),
    (
        Ty::Headers,
        "ContainsKey",
        &[Ty::String],
        Ty::Bool,
        M::DictContainsKey,
    ),
    (
        Ty::Query,
        "GetValueOrDefault",
        &[Ty::String, Ty::String],
        Ty::String,
        M::DictGet,
    ),
    (
        Ty::Query,
        "GetValueOrDefault",
        &[Ty::String],
        Ty::String,
        M::DictGet,
    ),
    (
        Ty::Query,
        "ContainsKey",
        &[Ty::String],
        Ty::Bool,
        M::DictContainsKey,
    ),
    (
        Ty::String,
        "Contains",
        &[Ty::String],
        Ty::Bool,
        M::StrContains,
    ),
    (
        Ty::String,
        "StartsWith",
        &[Ty::String],
        Ty::Bool,
        M::StrStartsWith,
    ),
    (
        Ty::String,
        "EndsWith",
        &[Ty::String],
        Ty::Bool,
        M::StrEndsWith,
    ),
    (Ty::String, "ToLower", &[], Ty::String, M::StrToLower),
    (
        Ty::String,
        "ToLowerInvariant",
        &[],
        Ty::String,
        M::StrToLower,
    ),
    (Ty::String, "ToUpper", &[], Ty::String, M::StrToUpper),
    (
        Ty::String,
        "ToUpperInvariant",
        &[],
        Ty::String,
        M::StrToUpper,
    ),
    (Ty::String, "Trim", &[], Ty::String, M::StrTrim),
    (Ty::String, "TrimStart", &[], Ty::String, M::StrTrimStart),
    (Ty::String, "TrimEnd", &[], Ty::String, M::StrTrimEnd),
    (
        Ty::String,
        "Substring",
        &[Ty::Int],
        Ty::String,
        M::StrSubstring,
    ),
    (
        Ty::String,
        "Substring",
        &[Ty::Int, Ty::Int],
        Ty::String,
        M::StrSubstring,
    ),
    (Ty::String, "IndexOf", &[Ty::String], Ty::Int, M::StrIndexOf),
    (
        Ty::String,
        "Replace",
        &[Ty::String, Ty::String],
        Ty::String,
        M::StrReplace,
    ),
    (Ty::String, "Equals", &[Ty::String], Ty::Bool, M::StrEquals),
    (
        Ty::JObject,
        "ContainsKey",
        &[Ty::String],
        Ty::Bool,
        M::JContainsKey,
    ),
];

/// Static members with fixed parameters (`None`: any number of `object` arguments): declaring
/// type (full name), name, parameters, result, member.
#[allow(clippy::type_complexity, reason = "a plain table")]
pub const STATICS: &[(&str, &str, Option<&[Ty]>, Ty, M)] = &[
    (
        "System.String",
        "IsNullOrEmpty",
        Some(&[Ty::String]),
        Ty::Bool,
        M::StrIsNullOrEmpty,
    ),
    (
        "System.String",
        "IsNullOrWhiteSpace",
        Some(&[Ty::String]),
        Ty::Bool,
        M::StrIsNullOrWhiteSpace,
    ),
    ("System.String", "Concat", None, Ty::String, M::StrConcat),
    ("System.String", "Join", None, Ty::String, M::StrJoin),
    (
        "System.Uri",
        "EscapeDataString",
        Some(&[Ty::String]),
        Ty::String,
        M::UriEscape,
    ),
    (
        "System.Uri",
        "UnescapeDataString",
        Some(&[Ty::String]),
        Ty::String,
        M::UriUnescape,
    ),
    (
        "Newtonsoft.Json.Linq.JObject",
        "Parse",
        Some(&[Ty::String]),
        Ty::JObject,
        M::JObjectParse,
    ),
    (
        "Newtonsoft.Json.Linq.JToken",
        "Parse",
        Some(&[Ty::String]),
        Ty::JToken,
        M::JTokenParse,
    ),
    (
        "Newtonsoft.Json.Linq.JArray",
        "Parse",
        Some(&[Ty::String]),
        Ty::JArray,
        M::JArrayParse,
    ),
    (
        "Newtonsoft.Json.JsonConvert",
        "SerializeObject",
        Some(&[Ty::Object]),
        Ty::String,
        M::JsonSerialize,
    ),
    (
        "Newtonsoft.Json.JsonConvert",
        "DeserializeObject",
        Some(&[Ty::String]),
        Ty::Object,
        M::JsonDeserialize,
    ),
    (
        "System.Int32",
        "Parse",
        Some(&[Ty::String]),
        Ty::Int,
        M::IntParse,
    ),
    (
        "System.Int64",
        "Parse",
        Some(&[Ty::String]),
        Ty::Long,
        M::LongParse,
    ),
    (
        "System.Boolean",
        "Parse",
        Some(&[Ty::String]),
        Ty::Bool,
        M::BoolParse,
    ),
    (
        "System.Double",
        "Parse",
        Some(&[Ty::String]),
        Ty::Double,
        M::DoubleParse,
    ),
    (
        "System.Net.WebUtility",
        "UrlEncode",
        Some(&[Ty::String]),
        Ty::String,
        M::WebUrlEncode,
    ),
    (
        "System.Net.WebUtility",
        "UrlDecode",
        Some(&[Ty::String]),
        Ty::String,
        M::WebUrlDecode,
    ),
];

/// Static fields: declaring type, name, type, member.
pub const STATIC_FIELDS: &[(&str, &str, Ty, M)] = &[
    ("System.String", "Empty", Ty::String, M::StrEmpty),
    ("System.DateTime", "UtcNow", Ty::DateTime, M::DateUtcNow),
];

/// Whether an entry declared on `on` applies to a receiver of static type `recv`.
pub fn applies(on: Ty, recv: Ty) -> bool {
    on == recv
        || (on == Ty::JToken && recv.is_json())
        || (on == Ty::Response && recv == Ty::CtxResponse)
}

/// The static type a type name stands for, if the evaluator implements values of it.
pub fn ty_of(full: &str) -> Option<Ty> {
    Some(match full {
        "System.String" => Ty::String,
        "System.Int32" => Ty::Int,
        "System.Int64" => Ty::Long,
        "System.Boolean" => Ty::Bool,
        "System.Double" => Ty::Double,
        "System.Char" => Ty::Char,
        "System.Object" => Ty::Object,
        "System.DateTime" => Ty::DateTime,
        "Newtonsoft.Json.Linq.JToken" => Ty::JToken,
        "Newtonsoft.Json.Linq.JObject" => Ty::JObject,
        "Newtonsoft.Json.Linq.JArray" => Ty::JArray,
        "Newtonsoft.Json.Linq.JValue" => Ty::JValue,
        "Newtonsoft.Json.Linq.JProperty" => Ty::JProperty,
        "IResponse" => Ty::Response,
        "IMessageBody" => Ty::Body,
        "IUrl" => Ty::Url,
        "IApi" => Ty::Api,
        "IRequest" => Ty::Request,
        _ => return None,
    })
}
