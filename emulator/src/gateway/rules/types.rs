//! The .NET types (and members) policy expressions may use: APIM's allow-list, verbatim from
//! "API Management policy expressions" (`.NET Framework types allowed in policy expressions`),
//! plus the `context` interfaces the same page documents. A type outside it is refused when the
//! policy is saved, as APIM refuses it.

/// Where the list comes from.
pub const SOURCE: &str = "AD articles/api-management/api-management-policy-expressions.md @017654d1 (ms.date 02/07/2022), section \".NET Framework types allowed in policy expressions\"; same table on LEARN https://learn.microsoft.com/en-us/azure/api-management/api-management-policy-expressions";

/// Members of an allowed type that may be used: all of them, or the ones listed.
#[derive(Debug, Clone, Copy)]
pub enum Members {
    /// "All".
    All,
    /// Only these (`.ctor` for "(Constructor)").
    Only(&'static [&'static str]),
    /// All except these.
    Except(&'static [&'static str]),
}

use Members::{All, Except, Only};

/// The allow-list: full type name and supported members.
pub const ALLOWED: &[(&str, Members)] = &[
    ("Newtonsoft.Json.Formatting", All),
    (
        "Newtonsoft.Json.JsonConvert",
        Only(&["SerializeObject", "DeserializeObject"]),
    ),
    ("Newtonsoft.Json.Linq.Extensions", All),
    ("Newtonsoft.Json.Linq.JArray", All),
    ("Newtonsoft.Json.Linq.JConstructor", All),
    ("Newtonsoft.Json.Linq.JContainer", All),
    ("Newtonsoft.Json.Linq.JObject", All),
    ("Newtonsoft.Json.Linq.JProperty", All),
    ("Newtonsoft.Json.Linq.JRaw", All),
    ("Newtonsoft.Json.Linq.JToken", All),
    ("Newtonsoft.Json.Linq.JTokenType", All),
    ("Newtonsoft.Json.Linq.JValue", All),
    ("System.Array", All),
    ("System.BitConverter", All),
    ("System.Boolean", All),
    ("System.Byte", All),
    ("System.Char", All),
    ("System.Collections.Generic.Dictionary", All),
    ("System.Collections.Generic.HashSet", All),
    ("System.Collections.Generic.ICollection", All),
    ("System.Collections.Generic.IDictionary", All),
    ("System.Collections.Generic.IEnumerable", All),
    ("System.Collections.Generic.IEnumerator", All),
    ("System.Collections.Generic.IList", All),
    ("System.Collections.Generic.IReadOnlyCollection", All),
    ("System.Collections.Generic.IReadOnlyDictionary", All),
    ("System.Collections.Generic.ISet", All),
    ("System.Collections.Generic.KeyValuePair", All),
    ("System.Collections.Generic.List", All),
    ("System.Collections.Generic.Queue", All),
    ("System.Collections.Generic.Stack", All),
    ("System.Convert", All),
    (
        "System.DateTime",
        Only(&[
            ".ctor",
            "Add",
            "AddDays",
            "AddHours",
            "AddMilliseconds",
            "AddMinutes",
            "AddMonths",
            "AddSeconds",
            "AddTicks",
            "AddYears",
            "Date",
            "Day",
            "DayOfWeek",
            "DayOfYear",
            "DaysInMonth",
            "Hour",
            "IsDaylightSavingTime",
            "IsLeapYear",
            "MaxValue",
            "Millisecond",
            "Minute",
            "MinValue",
            "Month",
            "Now",
            "Parse",
            "Second",
            "Subtract",
            "Ticks",
            "TimeOfDay",
            "Today",
            "ToString",
            "UtcNow",
            "Year",
        ]),
    ),
    ("System.DateTimeKind", Only(&["Utc"])),
    ("System.DateTimeOffset", All),
    ("System.Decimal", All),
    ("System.Double", All),
    ("System.Exception", All),
    ("System.Guid", All),
    ("System.Int16", All),
    ("System.Int32", All),
    ("System.Int64", All),
    ("System.IO.StringReader", All),
    ("System.IO.StringWriter", All),
    ("System.Linq.Enumerable", All),
    ("System.Math", All),
    ("System.MidpointRounding", All),
    ("System.Net.IPAddress", All),
    ("System.Net.WebUtility", All),
    ("System.Nullable", All),
    ("System.Random", All),
    ("System.SByte", All),
    ("System.Security.Cryptography.AsymmetricAlgorithm", All),
    ("System.Security.Cryptography.CipherMode", All),
    ("System.Security.Cryptography.HashAlgorithm", All),
    ("System.Security.Cryptography.HashAlgorithmName", All),
    ("System.Security.Cryptography.HMAC", All),
    ("System.Security.Cryptography.HMACMD5", All),
    ("System.Security.Cryptography.HMACSHA1", All),
    ("System.Security.Cryptography.HMACSHA256", All),
    ("System.Security.Cryptography.HMACSHA384", All),
    ("System.Security.Cryptography.HMACSHA512", All),
    ("System.Security.Cryptography.KeyedHashAlgorithm", All),
    ("System.Security.Cryptography.MD5", All),
    ("System.Security.Cryptography.Oid", All),
    ("System.Security.Cryptography.PaddingMode", All),
    ("System.Security.Cryptography.RNGCryptoServiceProvider", All),
    ("System.Security.Cryptography.RSA", All),
    ("System.Security.Cryptography.RSAEncryptionPadding", All),
    ("System.Security.Cryptography.RSASignaturePadding", All),
    ("System.Security.Cryptography.SHA1", All),
    ("System.Security.Cryptography.SHA1Managed", All),
    ("System.Security.Cryptography.SHA256", All),
    ("System.Security.Cryptography.SHA256Managed", All),
    ("System.Security.Cryptography.SHA384", All),
    ("System.Security.Cryptography.SHA384Managed", All),
    ("System.Security.Cryptography.SHA512", All),
    ("System.Security.Cryptography.SHA512Managed", All),
    ("System.Security.Cryptography.SymmetricAlgorithm", All),
    (
        "System.Security.Cryptography.X509Certificates.PublicKey",
        All,
    ),
    (
        "System.Security.Cryptography.X509Certificates.RSACertificateExtensions",
        All,
    ),
    (
        "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
        Only(&["Name"]),
    ),
    (
        "System.Security.Cryptography.X509Certificates.X509Certificate",
        All,
    ),
    (
        "System.Security.Cryptography.X509Certificates.X509Certificate2",
        All,
    ),
    (
        "System.Security.Cryptography.X509Certificates.X509ContentType",
        All,
    ),
    (
        "System.Security.Cryptography.X509Certificates.X509NameType",
        All,
    ),
    ("System.Single", All),
    ("System.String", All),
    ("System.StringComparer", All),
    ("System.StringComparison", All),
    ("System.StringSplitOptions", All),
    ("System.Text.Encoding", All),
    (
        "System.Text.RegularExpressions.Capture",
        Only(&["Index", "Length", "Value"]),
    ),
    (
        "System.Text.RegularExpressions.CaptureCollection",
        Only(&["Count", "Item"]),
    ),
    (
        "System.Text.RegularExpressions.Group",
        Only(&["Captures", "Success"]),
    ),
    (
        "System.Text.RegularExpressions.GroupCollection",
        Only(&["Count", "Item"]),
    ),
    (
        "System.Text.RegularExpressions.Match",
        Only(&["Empty", "Groups", "Result"]),
    ),
    (
        "System.Text.RegularExpressions.Regex",
        Only(&[
            ".ctor", "IsMatch", "Match", "Matches", "Replace", "Unescape", "Split",
        ]),
    ),
    ("System.Text.RegularExpressions.RegexOptions", All),
    ("System.Text.StringBuilder", All),
    ("System.TimeSpan", All),
    ("System.TimeZone", All),
    ("System.TimeZoneInfo.AdjustmentRule", All),
    ("System.TimeZoneInfo.TransitionTime", All),
    ("System.TimeZoneInfo", All),
    ("System.Tuple", All),
    ("System.UInt16", All),
    ("System.UInt32", All),
    ("System.UInt64", All),
    ("System.Uri", All),
    ("System.UriPartial", All),
    ("System.Xml.Linq.Extensions", All),
    ("System.Xml.Linq.XAttribute", All),
    ("System.Xml.Linq.XCData", All),
    ("System.Xml.Linq.XComment", All),
    ("System.Xml.Linq.XContainer", All),
    ("System.Xml.Linq.XDeclaration", All),
    ("System.Xml.Linq.XDocument", Except(&["Load"])),
    ("System.Xml.Linq.XDocumentType", All),
    ("System.Xml.Linq.XElement", All),
    ("System.Xml.Linq.XName", All),
    ("System.Xml.Linq.XNamespace", All),
    ("System.Xml.Linq.XNode", All),
    ("System.Xml.Linq.XNodeDocumentOrderComparer", All),
    ("System.Xml.Linq.XNodeEqualityComparer", All),
    ("System.Xml.Linq.XObject", All),
    ("System.Xml.Linq.XProcessingInstruction", All),
    ("System.Xml.Linq.XText", All),
    ("System.Xml.XmlNodeType", All),
    // The `context` interfaces ("Context variable" table of the same page).
    ("IResponse", All),
    ("IMessageBody", All),
    ("IUrl", All),
    ("IApi", All),
    ("IRequest", All),
    ("IGroup", All),
    ("IUserIdentity", All),
    ("ISubscriptionKeyParameterNames", All),
    ("IPrivateEndpointConnection", All),
    ("BasicAuthCredentials", All),
    ("Jwt", All),
];

/// Namespaces short type names are looked up in (the page's examples use `Regex`, `JObject`,
/// `Encoding`, `Convert` unqualified).
const NAMESPACES: &[&str] = &[
    "System.",
    "System.Collections.Generic.",
    "System.Linq.",
    "System.Text.",
    "System.Text.RegularExpressions.",
    "System.Xml.Linq.",
    "System.Xml.",
    "System.Net.",
    "System.IO.",
    "System.Security.Cryptography.",
    "System.Security.Cryptography.X509Certificates.",
    "Newtonsoft.Json.",
    "Newtonsoft.Json.Linq.",
];

/// C# keywords for predefined types and the type each stands for.
pub const KEYWORDS: &[(&str, &str)] = &[
    ("string", "System.String"),
    ("int", "System.Int32"),
    ("long", "System.Int64"),
    ("bool", "System.Boolean"),
    ("double", "System.Double"),
    ("char", "System.Char"),
    ("byte", "System.Byte"),
    ("sbyte", "System.SByte"),
    ("short", "System.Int16"),
    ("ushort", "System.UInt16"),
    ("uint", "System.UInt32"),
    ("ulong", "System.UInt64"),
    ("float", "System.Single"),
    ("decimal", "System.Decimal"),
    ("object", "System.Object"),
];

/// Resolves a type name as written to an allowed type's full name and members. `Err` carries
/// the name as APIM would report it (qualified when it was written qualified).
pub fn resolve(name: &str) -> Result<(&'static str, Members), String> {
    if let Some((_, full)) = KEYWORDS.iter().find(|(k, _)| *k == name) {
        if *full == "System.Object" {
            return Ok(("System.Object", All));
        }
        return find(full).ok_or_else(|| full.to_string());
    }
    if name == "System.Object" || name == "Object" {
        return Ok(("System.Object", All));
    }
    if let Some(hit) = find(name) {
        return Ok(hit);
    }
    if !name.contains('.') || name.starts_with("TimeZoneInfo.") {
        for ns in NAMESPACES {
            if let Some(hit) = find(&format!("{ns}{name}")) {
                return Ok(hit);
            }
        }
    }
    Err(name.to_string())
}

fn find(full: &str) -> Option<(&'static str, Members)> {
    ALLOWED
        .iter()
        .find(|(n, _)| *n == full)
        .map(|(n, m)| (*n, *m))
}

/// Whether a member of an allowed type may be used.
pub fn member_allowed(members: Members, member: &str) -> bool {
    match members {
        All => true,
        Only(list) => list.contains(&member),
        Except(list) => !list.contains(&member),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_and_full_names() {
        assert_eq!(
            resolve("JObject").map(|r| r.0),
            Ok("Newtonsoft.Json.Linq.JObject")
        );
        assert_eq!(resolve("string").map(|r| r.0), Ok("System.String"));
        assert_eq!(
            resolve("Regex").map(|r| r.0),
            Ok("System.Text.RegularExpressions.Regex")
        );
        assert_eq!(
            resolve("System.IO.File").map(|r| r.0),
            Err("System.IO.File".into())
        );
        assert_eq!(resolve("File").map(|r| r.0), Err("File".into()));
        let (_, m) = resolve("JsonConvert").expect("allowed");
        assert!(member_allowed(m, "SerializeObject"));
        assert!(!member_allowed(m, "PopulateObject"));
    }
}
