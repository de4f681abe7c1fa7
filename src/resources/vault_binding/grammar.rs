//! The grammar of every binding value that reaches the API policy, and the escapers for the
//! places in the managed block where a value is written.
//!
//! # How APIM reads a policy document
//!
//! A `rawxml` policy document is read in this order (the emulator's gateway,
//! `emulator/src/gateway/compose.rs`, does the same):
//!
//! 1. **Named values.** Every `{{name}}` in the raw text is replaced by the named value's text,
//!    as is, before anything is parsed: references are resolved when the policy is saved,
//!    and one inside a C# string of an expression is replaced too (APIM's own validation
//!    errors show it), which only a pass over the text does. So a `{{` written by a value
//!    forms a reference, a character reference (`&#123;`) does not, and a named value's text
//!    is never escaped by anyone.
//! 2. **Expressions.** A `@(` or `@{` anywhere in the raw text starts a policy expression; it
//!    ends at the balancing bracket, C# string and character literals skipped, and the
//!    characters inside it are XML-escaped by APIM (`rawxml` → `xml`,
//!    [`policy_xml::raw_to_xml`](crate::resources::policy_xml::raw_to_xml)).
//! 3. **XML.** Entities and character references are decoded; in attribute values tab, LF and
//!    CR become spaces (attribute-value normalization), in text CR LF and CR become LF.
//! 4. **Policy expressions, again.** An attribute value or an element's text that, decoded,
//!    starts with `@(` or `@{` is compiled as C#; so is a named value's text.
//!
//! # Two layers
//!
//! *Grammar* (the validators, run when Terraform validates the configuration): each value is
//! held to the grammar of the thing it names, narrowed to characters that mean nothing in any
//! of the layers above: no quotes, braces, `@`, `<`, `>`, `&`, `\`, `%`, whitespace or control
//! characters anywhere, and in paths no `?`, `#`, empty, `.` or `..` segments. This is the only
//! protection of a value that would ever travel in a named value (step 1 pastes them raw; the
//! block uses none, but the grammar does not rely on that), and of a leading `@(` (step 4
//! reads a decoded value, so no escaping can hide it).
//!
//! *Escaping* (the renderer): a value written into the block itself is escaped for its
//! place, so that even a value the grammar let through cannot change the document's
//! structure:
//!
//! | place                                    | escaper                    |
//! |------------------------------------------|----------------------------|
//! | a literal attribute value                | [`xml_attr`]               |
//! | a literal element text                   | [`xml_text`]               |
//! | a C# string inside a `rawxml` expression | [`cs_string`], written raw |
//! | a path inside `<set-url>` text           | `xml_text(&url_path(v))`   |
//!
//! Inside a `rawxml` expression, [`cs_string`] is written as it is, not through [`xml_attr`]:
//! APIM escapes the inside of expressions itself (step 2), so an `&quot;` written there would
//! reach C# as six characters.

#![allow(
    dead_code,
    reason = "wired into the schema by the binding's second design"
)]

use std::fmt::Write;

use url::{Host, Url};

use crate::framework::diag::{AttrPath, Diags, PathStep};
use crate::framework::schema::validators;
use crate::framework::value::Value;

// ---------------------------------------------------------------------------------------------
// Characters

/// A character of a Vault name: what `framework.GenericNameRegex` (`\w(([\w-.]+)?\w)?`, with
/// Go's ASCII `\w`) accepts for role names, and the characters of mount, namespace and secret
/// path segments, JSON field names and the names the secret is injected under. All of them are
/// RFC 3986 unreserved characters, so a path of them needs no percent-encoding.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Go's `\w`: what a Vault role name starts and ends with.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A character of an audience URI: the unreserved characters, `:` and `/`.
fn is_audience_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | ':' | '/')
}

/// A character of a Vault address: an audience's, and `[` `]` around an IPv6 host.
fn is_address_char(c: char) -> bool {
    is_audience_char(c) || matches!(c, '[' | ']')
}

/// A character as a message shows it.
fn shown(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        '`' => "a backtick".to_string(),
        c if c.is_ascii_graphic() => format!("`{c}`"),
        c => format!("{c:?} (U+{:04X})", u32::from(c)),
    }
}

/// Why a character has no place in a value that reaches the policy.
fn why_refused(c: char) -> &'static str {
    match c {
        '"' | '\'' => "a quote would end the C# string or XML attribute the value is written into, and what follows it would become part of the policy",
        '{' | '}' => "braces form APIM named-value references (`{{name}}`), which APIM replaces with another text before the policy is read",
        '@' => "`@` starts an APIM policy expression (`@(...)`): C# that the gateway runs on every request, where the API caller's headers can choose the value",
        '<' | '>' | '&' => "it is XML markup and would change the policy document",
        '?' => "it would end the URL path and start a query string",
        '#' => "it would end the URL path and start a fragment",
        '%' => "the gateway would decode a percent-encoded character, so it could fetch another path than the one checked",
        '\\' => "it is the C# escape character, and URL parsers read it as `/`",
        '/' => "`/` separates path segments, and this is one name",
        c if c.is_whitespace() || c.is_control() => "whitespace and control characters are invisible in a plan and change how the gateway reads the value",
        _ => "it is outside the characters allowed here",
    }
}

/// The problem with the first character of `s` that `ok` refuses, if any.
fn bad_char(s: &str, ok: impl Fn(char) -> bool) -> Option<String> {
    let c = s.chars().find(|&c| !ok(c))?;
    Some(format!("{} is not allowed: {}", shown(c), why_refused(c)))
}

/// The first problem of `s` as one name: empty, or a character other than a name character.
fn name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("it is empty".to_string())
    } else {
        bad_char(s, is_name_char)
    }
}

/// The first problem of `s` read as segments of name characters separated by single `/`: no
/// leading `/`, no empty, `.` or `..` segment, and a trailing `/` only when `trailing_slash`.
fn path_problem(s: &str, trailing_slash: bool) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_string());
    }
    if let Some(problem) = bad_char(s, |c| c == '/' || is_name_char(c)) {
        return Some(problem);
    }
    if s.starts_with('/') {
        return Some("it starts with `/`".to_string());
    }
    let body = match s.strip_suffix('/') {
        Some(b) if trailing_slash => b,
        Some(_) => return Some("it ends with `/`".to_string()),
        None => s,
    };
    for segment in body.split('/') {
        match segment {
            "" => return Some("it has an empty segment (`//`)".to_string()),
            "." => return Some("it has a `.` segment, which the gateway removes from the URL, so it would fetch another path than the one checked".to_string()),
            ".." => return Some("it has a `..` segment, which the gateway resolves: it would fetch another path than the one the role's policies were checked against".to_string()),
            _ => {}
        }
    }
    None
}

/// A validator on [`validators::string`]: `problem` says what is wrong with the value, and
/// the error names the attribute, shows the value, says that, and ends with `rule` (the
/// grammar, with an example).
fn check(
    v: &Value,
    p: &AttrPath,
    d: &mut Diags,
    summary: &str,
    problem: impl FnOnce(&str) -> Option<String>,
    rule: &str,
) {
    validators::string(v, p, d, summary, |s| match problem(s) {
        None => Ok(()),
        Some(why) => Err(format!("`{p}` is {s:?}: {why}. {rule}")),
    });
}

// ---------------------------------------------------------------------------------------------
// Validators

/// A Vault role name (`role`): letters, digits, `_`, `-` and `.`, starting and ending with a
/// letter, digit or `_` — Vault's `GenericNameRegex`, which the JWT auth method's role paths
/// use, so any other name could not be logged in with. The name travels in a named value into
/// a C# string, where a quote would end the string.
pub(crate) fn validate_vault_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    let problem = |s: &str| {
        name_problem(s).or_else(|| {
            (!s.starts_with(is_word_char) || !s.ends_with(is_word_char)).then(|| {
                "it starts or ends with `-` or `.`, and Vault's role paths match no such name"
                    .to_string()
            })
        })
    };
    check(v, p, d, "Invalid Vault role name", problem, "A Vault role name is letters, digits, `_`, `-` and `.`, starting and ending with a letter, digit or `_`, e.g. \"orders-api\"; reference the role to get it right: `role = apim_vault_azure_role.<name>.name`.");
}

/// An auth mount path (`backend`): segments of name characters separated by single `/`, no
/// leading or trailing `/`, no `.` or `..` segment, e.g. `jwt` or `apim/jwt`. It is written
/// into the login URL, `/v1/auth/<path>/login`.
pub(crate) fn validate_mount_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    check(v, p, d, "Invalid auth mount path", |s| path_problem(s, false), "An auth mount path is segments of letters, digits, `_`, `-` and `.` separated by single `/`, without a leading or trailing `/`, e.g. \"jwt\" or \"apim/jwt\".");
}

/// A secret's API path (`secret_path`), without `/v1/`: segments of name characters
/// separated by single `/`, no leading or trailing `/`, no empty, `.` or `..` segment, not
/// starting with `v1/`. Every character is RFC 3986 unreserved, so [`url_path`] leaves it as
/// it is and no URL parser can resolve it to another path: the path fetched is the path whose
/// ACL was checked.
pub(crate) fn validate_secret_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    let problem = |s: &str| {
        if s.starts_with("v1/") || s == "v1" {
            Some("it starts with `v1/`, which the gateway adds itself".to_string())
        } else {
            path_problem(s, false)
        }
    };
    check(v, p, d, "Invalid secret path", problem, "Give the API path without `/v1/`: segments of letters, digits, `_`, `-` and `.` separated by single `/`, e.g. \"kv/data/orders/backend\" (KV v2) or \"database/creds/orders\".");
}

/// A Vault ACL policy name (`apim_vault_policy.name`, the binding's policies): one name of
/// letters, digits, `_`, `-` and `.`, not `.` or `..`. It is a segment of
/// `sys/policies/acl/<name>` and an entry of a role's comma-separated `token_policies`, so a
/// `/`, `?`, `#` or `,` would address or list another policy.
pub(crate) fn validate_policy_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    let problem = |s: &str| {
        name_problem(s).or_else(|| {
            matches!(s, "." | "..").then(|| {
                "`.` and `..` name no policy: Vault's HTTP server resolves them to another path"
                    .to_string()
            })
        })
    };
    check(v, p, d, "Invalid policy name", problem, "A Vault policy name is letters, digits, `_`, `-` and `.`, in lowercase, e.g. \"orders-read\".");
}

/// An audit device path (`apim_vault_audit.path`): segments of name characters separated by
/// single `/`, no leading or trailing `/`, no `.` or `..` segment, e.g. `to-siem`.
pub(crate) fn validate_device_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    check(v, p, d, "Invalid audit device path", |s| path_problem(s, false), "An audit device path is segments of letters, digits, `_`, `-` and `.` separated by single `/`, without a leading or trailing `/`, e.g. \"to-siem\" or \"siem/socket\".");
}

/// For paths read by the provider itself (an ephemeral secret's `path`, a lease ID or prefix),
/// which the client percent-encodes segment by segment: the segment that would make Vault's
/// HTTP server serve another path (`.`, `..`) or that names nothing (`//`), if any.
pub(crate) fn dot_segment_problem(s: &str) -> Option<String> {
    s.trim_matches('/').split('/').find_map(|seg| match seg {
        "" => Some("it has an empty segment (`//`)".to_string()),
        "." | ".." => Some(format!(
            "it has a `{seg}` segment, which Vault's HTTP server resolves to another path"
        )),
        _ => None,
    })
}

/// `api_management_id`: an API Management instance's ARM ID, read strictly (exact segment
/// casing, a UUID subscription), as every type that names an instance takes it.
pub(crate) fn validate_service_id(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid API Management ID", |s| {
        crate::clients::azure::id::ServiceId::parse(s)
            .map(|_| ())
            .map_err(|e| format!("`api_management_id`: {e}"))
    });
}

/// A field of the secret's JSON (`secret_field`): letters, digits, `_`, `-` and `.`. It is
/// written into a C# string (an indexer of the answer's JSON).
pub(crate) fn validate_secret_field(v: &Value, p: &AttrPath, d: &mut Diags) {
    check(
        v,
        p,
        d,
        "Invalid secret field",
        name_problem,
        "Give the field's name: letters, digits, `_`, `-` and `.`, e.g. \"api_key\".",
    );
}

/// `8-4-4-4-12` hexadecimal digits, as Entra ID writes client IDs.
fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The token audience (`audience`): a GUID, or an absolute URI `scheme://rest` whose scheme
/// is a letter followed by letters, digits, `-` and `.`, and whose rest is non-empty, does
/// not start with `/`, and has only unreserved characters, `:` and `/` — e.g. `api://vault`,
/// `https://vault.example.com`. The audience travels in a named value into an XML attribute
/// (`resource="{{…}}"`), and APIM passes it on as the `resource` of the managed-identity token
/// request: a quote, `&`, `<`, a brace, `@`, whitespace, `?`, `#` or `%` could change either.
pub(crate) fn validate_audience(v: &Value, p: &AttrPath, d: &mut Diags) {
    check(v, p, d, "Invalid audience", audience_problem, "The audience is the application ID URI or client ID of the Entra ID application the role's tokens are issued for: an absolute URI of letters, digits, `-`, `.`, `_`, `~`, `:` and `/`, e.g. \"api://vault\" or \"https://vault.example.com\", or a GUID, e.g. \"5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b\".");
}

fn audience_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_string());
    }
    if is_guid(s) {
        return None;
    }
    if let Some(problem) = bad_char(s, is_audience_char) {
        return Some(problem);
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Some("it is neither an absolute URI (`scheme://…`) nor a GUID".to_string());
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
    if !scheme_ok {
        return Some(format!("{scheme:?} is not a URI scheme"));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Some("nothing names the application after `://`".to_string());
    }
    None
}

/// The Vault address the gateway calls (`vault_address`), checked with the `url` crate:
/// `https://host[:port]` with an optional path of name-character segments (one trailing `/`
/// allowed) and no user information, query or fragment; `http://` only when the host is
/// loopback (`localhost`, 127.0.0.0/8, `[::1]`). The host must be written as the URL parser
/// reads it (`127.1` is refused in favour of `127.0.0.1`), so the host judged is the host
/// called. The address travels in a named value into `<set-url>` text, ahead of `/v1/…`.
pub(crate) fn validate_vault_address(v: &Value, p: &AttrPath, d: &mut Diags) {
    check(v, p, d, "Invalid Vault address", address_problem, "Give the address as `https://host[:port]`, optionally with a path, e.g. \"https://vault.example.com:8200\"; `http://` only for a Vault on the gateway's own host, e.g. \"http://127.0.0.1:8200\".");
}

fn address_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".to_string());
    }
    let (https, rest) = if let Some(rest) = s.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = s.strip_prefix("http://") {
        (false, rest)
    } else {
        return Some("it does not start with `https://`".to_string());
    };
    if s.contains('@') {
        return Some("it has user information (`user:password@`) or an `@`: credentials do not belong in an address that APIM shows and logs, and the gateway logs in with its managed identity".to_string());
    }
    if s.contains('?') {
        return Some("it has a query string (`?…`), which would swallow the `/v1/…` path the gateway appends".to_string());
    }
    if s.contains('#') {
        return Some(
            "it has a fragment (`#…`), which would cut off the `/v1/…` path the gateway appends"
                .to_string(),
        );
    }
    if let Some(problem) = bad_char(s, is_address_char) {
        return Some(problem);
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(i) => authority.split_at(i + 1),
            None => return Some("its IPv6 host has no closing `]`".to_string()),
        }
    } else {
        authority.split_at(authority.find(':').unwrap_or(authority.len()))
    };
    if host.is_empty() {
        return Some("it has no host".to_string());
    }
    if let Some(digits) = port.strip_prefix(':') {
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Some("its port is not a number after `:`".to_string());
        }
    } else if !port.is_empty() {
        return Some(format!("{port:?} follows the host"));
    }
    let url = match Url::parse(s) {
        Ok(u) => u,
        Err(e) => return Some(format!("it is not a valid URL ({e})")),
    };
    let read = url.host_str().unwrap_or_default();
    if read != host.to_ascii_lowercase() {
        return Some(format!(
            "the URL parser reads its host {host:?} as {read:?}; write it as {read:?}"
        ));
    }
    if !https && !is_loopback(url.host()) {
        return Some("`http://` is accepted only for a Vault on the gateway's own host (localhost, 127.0.0.0/8 or [::1]): anywhere else the managed-identity token the gateway logs in with, the Vault token it gets back and the secret would cross the network unencrypted, for anyone on the way to read and replay".to_string());
    }
    match path.strip_prefix('/') {
        None | Some("") => None,
        Some(p) if p.starts_with('/') => Some("its path has an empty segment (`//`)".to_string()),
        Some(p) => path_problem(p, true).map(|why| format!("its path is wrong: {why}")),
    }
}

fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d == "localhost",
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Names Vault refuses as namespace names (OpenBao's `helper/namespace` and Vault
/// Enterprise's documentation agree).
const RESERVED_NAMESPACES: [&str; 6] = ["root", "sys", "audit", "auth", "cubbyhole", "identity"];

/// A Vault Enterprise / OpenBao namespace path (`vault_namespace`): namespace names of name
/// characters separated by single `/`, an optional trailing `/`, no leading `/`, no empty,
/// `.` or `..` segment and no reserved name. It is written into the text of the
/// `X-Vault-Namespace` header's `<value>`, where a leading `@(` would be an expression.
pub(crate) fn validate_namespace(v: &Value, p: &AttrPath, d: &mut Diags) {
    let problem = |s: &str| {
        if s.is_empty() {
            return Some(format!(
                "it is empty (leave `{p}` unset for the root namespace)"
            ));
        }
        path_problem(s, true).or_else(|| {
            let reserved = s
                .trim_end_matches('/')
                .split('/')
                .find(|n| RESERVED_NAMESPACES.contains(n))?;
            Some(format!(
                "{reserved:?} is a name Vault reserves ({})",
                RESERVED_NAMESPACES.join(", ")
            ))
        })
    };
    check(v, p, d, "Invalid Vault namespace", problem, "A namespace is namespace names of letters, digits, `_`, `-` and `.` separated by `/`, e.g. \"admin\" or \"admin/team-a\".");
}

/// A name the secret is injected under (`inject.header`, `inject.query`, `inject.variable`):
/// letters, digits, `-`, `_` and `.`. These are RFC 7230 token characters (what a header name
/// may hold) less the rest of that set: `&` and `'` are XML, `%`, `+`, `#` and `=` change how a
/// query string is read, and `!`, `$`, `*`, `^`, `|`, `~` and `` ` `` name nothing anyone
/// needs. Query parameter and context variable names are held to the same set.
pub(crate) fn validate_inject_name(v: &Value, p: &AttrPath, d: &mut Diags) {
    let example = match p.0.last() {
        Some(PathStep::Attr(a)) if a == "query" => "api_key",
        Some(PathStep::Attr(a)) if a == "variable" => "backendKey",
        _ => "X-Api-Key",
    };
    let rule = format!("Use letters, digits, `-`, `_` and `.`, e.g. {example:?}.");
    check(v, p, d, "Invalid name", name_problem, &rule);
}

/// An APIM logger (`logger_id`): its name in the binding's instance (letters, digits, `_`, `-`
/// and `.`, up to 256), or its ARM ID
/// (`/subscriptions/…/providers/Microsoft.ApiManagement/service/<name>/loggers/<logger>`)
/// whose last segment is such a name. The name is written into `log-to-eventhub`'s
/// `logger-id`, where APIM allows no expression.
pub(crate) fn validate_logger_id(v: &Value, p: &AttrPath, d: &mut Diags) {
    let problem = |s: &str| {
        let name = match s.rsplit_once("/loggers/") {
            Some((service, name)) => {
                if let Err(e) = crate::clients::azure::id::ServiceId::parse(service) {
                    return Some(format!(
                        "its instance part is not an API Management instance's ARM ID: {e}"
                    ));
                }
                name
            }
            None => s,
        };
        if name.chars().count() > 256 {
            return Some("the logger's name is longer than 256 characters".to_string());
        }
        name_problem(name)
    };
    check(v, p, d, "Invalid logger", problem, "A logger is named by its name in the instance (letters, digits, `_`, `-` and `.`), e.g. \"vault-failures\", or by its ARM ID, e.g. `azurerm_api_management_logger.<name>.id`.");
}

// ---------------------------------------------------------------------------------------------
// Escapers

/// A character XML 1.0 can hold at all, even as a character reference (`Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '{' | '}' | '@' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if !is_xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            '\t' | '\n' if !attribute => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `s` as the value of an XML attribute delimited by `"` or `'`, which an XML parser reads
/// back as `s` (characters XML 1.0 cannot hold at all — C0 controls other than tab, LF and
/// CR, U+FFFE, U+FFFF — become U+FFFD, since any document holding them is refused).
///
/// Beyond `&`, `<`, `>`, `"` and `'`:
/// - tab, LF and CR are character references, which attribute-value normalization keeps
///   (written raw, they would be read as spaces); DEL and the C1 controls too, to be seen;
/// - `{` and `}` are `&#123;` and `&#125;`: APIM replaces `{{name}}` in the raw text before
///   parsing (see the module's documentation), where `&#123;&#123;` is no reference; the
///   parser then gives back the braces;
/// - `@` is `&#64;`, since in `rawxml` a raw `@(` anywhere starts an expression.
///
/// What no escaping can do: a value whose decoded text starts with `@(` still is an
/// expression once parsed (step 4); the validators refuse `@`.
pub(crate) fn xml_attr(s: &str) -> String {
    xml_escape(s, true)
}

/// `s` as the text of an XML element, which an XML parser reads back as `s`; as [`xml_attr`],
/// except that tab and LF stay as they are (text keeps them), while CR is `&#13;` (the parser
/// would turn a raw one into LF). Never `]]>`, since `>` is always `&gt;`.
pub(crate) fn xml_text(s: &str) -> String {
    xml_escape(s, false)
}

/// `s` as one complete C# regular string literal, quotes included, that evaluates to `s`.
///
/// The literal is printable ASCII only. Raw are letters, digits, space and
/// ``!#$%*+,-./:;=?[]^_`|~``; `"` and `\` are `\"` and `\\`; every other character is
/// `\uXXXX` (UTF-16 code units, so a character outside the BMP is a surrogate pair), among
/// them:
/// - control characters and C#'s line terminators (CR, LF, U+0085, U+2028, U+2029), which
///   would end a regular literal early ("newline in constant");
/// - `{`, `}` and `@`, so that no `{{` named-value reference and no `@(` expression start is
///   in the raw text, whether the literal is written raw in a `rawxml` expression or
///   XML-escaped as well;
/// - `(`, `)` and `'`, so that a scanner balancing an expression's brackets finds the same
///   end whether or not it skips string literals;
/// - `<`, `>` and `&`, so that the literal is plain XML text as it stands.
pub(crate) fn cs_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_alphanumeric() || " !#$%*+,-./:;=?[]^_`|~".contains(c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
        }
    }
    out.push('"');
    out
}

/// `s` as a URL path: every byte outside RFC 3986's unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) and `/` is percent-encoded (`%XX`, upper case), so a value can
/// never start a query (`?`) or a fragment (`#`), nor carry anything the XML or the named-value
/// pass would read.
///
/// It cannot stop `.` and `..` segments, which URL normalization removes, encoded or not
/// (`%2E` is an unreserved character encoded, which normalization decodes): that is
/// [`validate_secret_path`]'s part, whose paths this function leaves unchanged.
pub(crate) fn url_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diag::Severity;
    use crate::resources::policy_xml::raw_to_xml;
    use proptest::prelude::*;
    use quick_xml::events::Event;
    use quick_xml::{Reader, XmlVersion};

    type Check = fn(&Value, &AttrPath, &mut Diags);

    fn run(f: Check, p: &AttrPath, s: &str) -> Diags {
        let mut d = Diags::new();
        f(&Value::string(s), p, &mut d);
        d
    }

    fn accepted(f: Check, name: &str, values: &[&str]) {
        for s in values {
            let d = run(f, &AttrPath::root(name), s);
            assert!(d.is_empty(), "{name} = {s:?} should pass:\n{d}");
        }
    }

    /// Refused with one error at `p` whose detail names the attribute, shows the value
    /// Debug-quoted, says `why` and gives an example (`e.g.`).
    fn refused_at(f: Check, p: &AttrPath, s: &str, why: &str) {
        let d = run(f, p, s);
        assert_eq!(d.0.len(), 1, "{p} = {s:?} should be refused once:\n{d}");
        let e = &d.0[0];
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.attribute.as_ref(), Some(p), "{s:?}: {d}");
        for needle in [format!("`{p}`"), format!("{s:?}"), why.to_string()] {
            assert!(
                e.detail.contains(&needle),
                "{p} = {s:?}: {needle:?} missing in:\n{}",
                e.detail
            );
        }
        assert!(e.detail.contains("e.g."), "no example in: {}", e.detail);
    }

    fn refused(f: Check, name: &str, cases: &[(&str, &str)]) {
        for (s, why) in cases {
            refused_at(f, &AttrPath::root(name), s, why);
        }
    }

    #[test]
    fn null_and_unknown_pass_every_validator() {
        let all: [Check; 8] = [
            validate_vault_name,
            validate_mount_path,
            validate_secret_path,
            validate_secret_field,
            validate_audience,
            validate_vault_address,
            validate_namespace,
            validate_inject_name,
        ];
        for f in all {
            for v in [Value::Null, Value::UNKNOWN] {
                let mut d = Diags::new();
                f(&v, &AttrPath::root("x"), &mut d);
                assert!(d.is_empty(), "{v:?}: {d}");
            }
        }
    }

    #[test]
    fn role_names() {
        accepted(
            validate_vault_name,
            "role",
            &["orders", "orders-api", "a", "_x", "Orders.v2_role", "9"],
        );
        refused(
            validate_vault_name,
            "role",
            &[
                (
                    "x\" + context.Request.Headers.GetValueOrDefault(\"X-Role\",\"\") + \"",
                    "a quote would end",
                ),
                ("it's", "a quote"),
                ("{{other-role}}", "named-value references"),
                ("@(\"admin\")", "policy expression"),
                ("team/orders", "`/` separates"),
                ("orders api", "a space"),
                ("orders\n", "U+000A"),
                ("-orders", "starts or ends"),
                ("orders.", "starts or ends"),
                ("", "it is empty"),
                ("rôle", "U+00F4"),
            ],
        );
    }

    #[test]
    fn mount_paths() {
        accepted(
            validate_mount_path,
            "backend",
            &["jwt", "apim/jwt", "team-a/jwt.v2", "a_b"],
        );
        refused(
            validate_mount_path,
            "backend",
            &[
                ("/jwt", "starts with `/`"),
                ("jwt/", "ends with `/`"),
                ("apim//jwt", "empty segment"),
                ("jwt/../userpass", "`..` segment"),
                ("./jwt", "`.` segment"),
                ("jwt?x=1", "query string"),
                ("jwt#x", "fragment"),
                ("{{mount}}", "named-value"),
                ("@(\"jwt\")", "policy expression"),
                ("j%2Fwt", "percent-encoded"),
                ("jwt\\x", "escape character"),
                ("", "it is empty"),
            ],
        );
    }

    #[test]
    fn names_of_the_other_vault_types() {
        accepted(
            validate_policy_name,
            "name",
            &["orders", "orders-read", "a.b_c", "9"],
        );
        refused(
            validate_policy_name,
            "name",
            &[
                ("orders?x", "query string"),
                ("orders#x", "fragment"),
                ("a/b", "`/` separates"),
                ("a,b", "outside the characters"),
                ("..", "name no policy"),
                ("", "it is empty"),
            ],
        );
        accepted(
            validate_device_path,
            "path",
            &["file", "siem/socket", "to-siem"],
        );
        refused(
            validate_device_path,
            "path",
            &[
                ("/siem", "starts with `/`"),
                ("siem/../file", "`..` segment"),
                ("siem?x", "query string"),
                ("", "it is empty"),
            ],
        );
        assert_eq!(dot_segment_problem("kv/data/orders"), None);
        assert_eq!(dot_segment_problem("database/creds/app/"), None);
        for bad in ["kv/../sys", "./kv", "kv//x", "kv/data/."] {
            assert!(dot_segment_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn secret_paths() {
        accepted(
            validate_secret_path,
            "secret_path",
            &[
                "kv/data/orders/backend",
                "database/creds/orders",
                "secret/data/app.config",
                "kv/data/a_b-c",
                "v1x/data/a",
            ],
        );
        refused(
            validate_secret_path,
            "secret_path",
            &[
                ("secret/data/../../sys/raw/core", "`..` segment"),
                ("kv/data/./orders", "`.` segment"),
                ("kv/data/{{other}}", "named-value"),
                ("kv/data/orders?version=1", "query string"),
                ("kv/data/orders#x", "fragment"),
                ("kv/data//orders", "empty segment"),
                ("/kv/data/orders", "starts with `/`"),
                ("/v1/kv/data/orders", "starts with `/`"),
                ("v1/kv/data/orders", "starts with `v1/`"),
                ("kv/data/orders/", "ends with `/`"),
                ("kv/data/%2e%2e/x", "percent-encoded"),
                ("kv/data/@(x)", "policy expression"),
                ("kv/data/a\"b", "a quote"),
                ("kv/data/a<b", "XML markup"),
                ("kv/data/a&b", "XML markup"),
                ("kv/data/a b", "a space"),
                ("kv/data/a\u{0}", "U+0000"),
                ("", "it is empty"),
            ],
        );
    }

    #[test]
    fn secret_fields() {
        accepted(
            validate_secret_field,
            "secret_field",
            &["api_key", "password", "tls.crt", "x-y"],
        );
        refused(
            validate_secret_field,
            "secret_field",
            &[
                ("a\"]; return \"", "a quote"),
                ("a b", "a space"),
                ("data/x", "`/` separates"),
                ("{{f}}", "named-value"),
                ("", "it is empty"),
            ],
        );
    }

    #[test]
    fn audiences() {
        accepted(
            validate_audience,
            "audience",
            &[
                "api://vault",
                "https://vault.example.com",
                "https://management.azure.com/",
                "api://5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
                "https://vault.example.com:8200/apim",
                "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
                "5F0C1A2B-3C4D-4E5F-8A9B-0C1D2E3F4A5B",
            ],
        );
        refused(
            validate_audience,
            "audience",
            &[
                ("api://vault\" ignore-error=\"true", "a quote"),
                ("api://vault x", "a space"),
                (" api://vault", "a space"),
                ("api://vault\t", "U+0009"),
                ("{{other-audience}}", "named-value"),
                (
                    "@(context.Request.Headers.GetValueOrDefault(\"A\",\"\"))",
                    "policy expression",
                ),
                ("api://a&b", "XML markup"),
                ("api://<x>", "XML markup"),
                ("api://vault?x=1", "query string"),
                ("api://vault#x", "fragment"),
                ("{5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b}", "named-value"),
                ("vault", "neither an absolute URI"),
                ("urn:vault", "neither an absolute URI"),
                ("1api://vault", "not a URI scheme"),
                ("api://", "nothing names"),
                ("api:///x", "nothing names"),
                ("", "it is empty"),
            ],
        );
    }

    #[test]
    fn vault_addresses() {
        accepted(
            validate_vault_address,
            "vault_address",
            &[
                "https://vault.example.com",
                "https://vault.example.com/",
                "https://vault.example.com:8200",
                "https://Vault.Example.com:8200",
                "https://10.0.0.5:8200",
                "https://[2001:db8::1]:8200",
                "https://gateway.example.com/vault",
                "https://gateway.example.com/vault/",
                "http://127.0.0.1:8200",
                "http://127.8.9.10:8200",
                "http://localhost:8200",
                "http://LOCALHOST:8200/",
                "http://[::1]:8200",
            ],
        );
        refused(
            validate_vault_address,
            "vault_address",
            &[
                ("https://user:pass@vault.example.com", "user information"),
                ("https://vault.example.com@evil.example", "user information"),
                ("https://vault.example.com/?x=1", "query string"),
                ("https://vault.example.com/#x", "fragment"),
                (
                    "http://vault.example.com:8200",
                    "`http://` is accepted only",
                ),
                ("http://10.0.0.5:8200", "`http://` is accepted only"),
                ("http://localhost.example.com", "`http://` is accepted only"),
                ("http://127.1:8200", "write it as \"127.0.0.1\""),
                ("http://0x7f.0.0.1", "write it as \"127.0.0.1\""),
                ("https://[0:0::1]", "write it as \"[::1]\""),
                ("ftp://vault.example.com", "does not start with `https://`"),
                (
                    "HTTPS://vault.example.com",
                    "does not start with `https://`",
                ),
                ("vault.example.com", "does not start with `https://`"),
                ("https://vault.example.com/a/../sys", "`..` segment"),
                ("https://vault.example.com/./x", "`.` segment"),
                ("https://vault.example.com//x", "empty segment"),
                ("https://vault.example.com:", "port is not a number"),
                ("https://vault.example.com:x", "port is not a number"),
                ("https://vault.example.com:99999", "not a valid URL"),
                ("https://", "no host"),
                ("https://:8200", "no host"),
                ("https://[::1", "no closing"),
                ("https://[::1]x", "follows the host"),
                ("https://{{addr}}", "named-value"),
                ("https://vault\".example.com", "a quote"),
                ("https://vault.example.com/a b", "a space"),
                ("https://vault.example.com/%2e%2e", "percent-encoded"),
                ("https://vault.example.com\\x", "escape character"),
                ("", "it is empty"),
            ],
        );
    }

    #[test]
    fn namespaces() {
        accepted(
            validate_namespace,
            "vault_namespace",
            &["admin", "admin/", "admin/team-a", "team_a/app.1/"],
        );
        refused(
            validate_namespace,
            "vault_namespace",
            &[
                (
                    "@(context.Request.Headers.GetValueOrDefault(\"X-Ns\",\"\"))",
                    "policy expression",
                ),
                ("{{ns}}", "named-value"),
                ("/admin", "starts with `/`"),
                ("admin//team", "empty segment"),
                ("admin/../other", "`..` segment"),
                ("admin/./x", "`.` segment"),
                ("admin team", "a space"),
                ("root", "reserves"),
                ("admin/sys/", "reserves"),
                ("", "root namespace"),
            ],
        );
    }

    #[test]
    fn logger_ids() {
        let p = AttrPath::root("logger_id");
        let service = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim";
        for good in [
            "vault-failures",
            "ai_logger.1",
            &format!("{service}/loggers/vault-events"),
        ] {
            assert!(run(validate_logger_id, &p, good).is_empty(), "{good}");
        }
        for (s, why) in [
            ("vault events", "a space"),
            ("a\"b", "a quote"),
            ("{{name}}", "named-value"),
            ("@(x)", "policy expression"),
            ("", "it is empty"),
            (
                "/subscriptions/x/loggers/a",
                "not an API Management instance's ARM ID",
            ),
            (&format!("{service}/loggers/a b"), "a space"),
            (&"a".repeat(257), "longer than 256"),
        ] {
            refused_at(validate_logger_id, &p, s, why);
        }
    }

    #[test]
    fn inject_names() {
        let block = AttrPath::root("inject");
        for (attr, good) in [
            ("header", "X-Api-Key"),
            ("query", "api_key"),
            ("variable", "backendKey"),
        ] {
            let p = block.attr(attr);
            assert!(run(validate_inject_name, &p, good).is_empty());
            assert!(run(validate_inject_name, &p, "a.b_c-9").is_empty());
            for (s, why) in [
                ("X-Key\" exists-action=\"skip", "a quote"),
                ("X Key", "a space"),
                ("a&b=c", "XML markup"),
                ("key#", "fragment"),
                ("@(\"x\")", "policy expression"),
                ("{{name}}", "named-value"),
                ("a:b", "outside the characters"),
                ("", "it is empty"),
            ] {
                refused_at(validate_inject_name, &p, s, why);
            }
            let d = run(validate_inject_name, &p, "a b");
            assert!(d.0[0].detail.contains(&format!("e.g. {good:?}")), "{d}");
        }
    }

    // --- Escapers ---------------------------------------------------------------------------

    /// Strings rich in what matters to the escapers.
    fn nasty() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '{',
            '}',
            '"',
            '\'',
            '<',
            '>',
            '&',
            '@',
            '(',
            ')',
            '\\',
            '\r',
            '\n',
            '\t',
            ';',
            '#',
            '\u{0}',
            '\u{1}',
            '\u{7f}',
            '\u{85}',
            '\u{2028}',
            '\u{2029}',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{FFFD}',
            '\u{1F600}',
            'é',
            ' ',
            '%',
            '/',
            '?',
            ']',
        ]);
        prop::collection::vec(prop_oneof![any::<char>(), special], 0..40)
            .prop_map(|v| v.into_iter().collect())
    }

    /// What XML can carry of `s`: characters it cannot hold at all replaced by U+FFFD.
    fn xml_visible(s: &str) -> String {
        s.chars()
            .map(|c| {
                if is_xml_char(c) {
                    c
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect()
    }

    /// An element as an XML parser reads it: its name, its attribute values in order, its text.
    struct Element {
        name: String,
        attrs: Vec<String>,
        text: String,
    }

    /// Every element of `doc`, in document order.
    fn parse(doc: &str) -> Vec<Element> {
        let mut r = Reader::from_str(doc);
        let mut out = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        let element = |e: &quick_xml::events::BytesStart<'_>| {
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    let v = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                    v.into_owned()
                })
                .collect();
            Element {
                name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                attrs,
                text: String::new(),
            }
        };
        loop {
            match r.read_event().unwrap_or_else(|e| panic!("{e} in {doc:?}")) {
                Event::Start(e) => {
                    open.push(out.len());
                    out.push(element(&e));
                }
                Event::Empty(e) => out.push(element(&e)),
                Event::End(_) => {
                    open.pop();
                }
                Event::Text(t) => {
                    let raw = t.decode().unwrap();
                    let text = quick_xml::escape::unescape(&raw).unwrap();
                    out[*open.last().unwrap()].text.push_str(&text);
                }
                Event::GeneralRef(g) => {
                    let c = match g.resolve_char_ref().unwrap() {
                        Some(c) => c,
                        None => match g.decode().unwrap().as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("unknown entity {other} in {doc:?}"),
                        },
                    };
                    out[*open.last().unwrap()].text.push(c);
                }
                Event::Eof => return out,
                _ => {}
            }
        }
    }

    /// Every `&` starts an entity or character reference.
    fn only_references(x: &str) -> bool {
        x.match_indices('&').all(|(i, _)| {
            let rest = &x[i + 1..];
            ["amp;", "lt;", "gt;", "quot;", "apos;"]
                .iter()
                .any(|e| rest.starts_with(e))
                || rest.strip_prefix('#').is_some_and(|r| {
                    let digits = r.chars().take_while(char::is_ascii_digit).count();
                    digits > 0 && r[digits..].starts_with(';')
                })
        })
    }

    /// Decodes a literal made by [`cs_string`]: `None` when it is not one literal.
    fn cs_decode(lit: &str) -> Option<String> {
        let body = lit.strip_prefix('"')?.strip_suffix('"')?;
        let mut units: Vec<u16> = Vec::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return None,
                '\\' => match chars.next()? {
                    '"' => units.push(u16::from(b'"')),
                    '\\' => units.push(u16::from(b'\\')),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        units.push(u16::from_str_radix(&hex, 16).ok()?);
                    }
                    _ => return None,
                },
                c => {
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(c.encode_utf16(&mut buf));
                }
            }
        }
        String::from_utf16(&units).ok()
    }

    #[test]
    fn escapers_by_example() {
        assert_eq!(xml_attr("a\"b"), "a&quot;b");
        assert_eq!(xml_attr("{{x}}"), "&#123;&#123;x&#125;&#125;");
        assert_eq!(xml_attr("@(x)"), "&#64;(x)");
        assert_eq!(xml_attr("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
        assert_eq!(xml_text("a\tb\nc\rd"), "a\tb\nc&#13;d");
        assert_eq!(xml_text("a\u{1}b"), "a\u{FFFD}b");
        assert_eq!(xml_text("]]>"), "]]&gt;");
        assert_eq!(
            cs_string("x\" + context.Request.Headers.GetValueOrDefault(\"X-Role\",\"\") + \""),
            "\"x\\\" + context.Request.Headers.GetValueOrDefault\\u0028\\\"X-Role\\\",\\\"\\\"\\u0029 + \\\"\""
        );
        assert_eq!(cs_string("{{a}}"), "\"\\u007B\\u007Ba\\u007D\\u007D\"");
        assert_eq!(cs_string("a\\b\nc"), "\"a\\\\b\\u000Ac\"");
        assert_eq!(cs_string("\u{2028}😀"), "\"\\u2028\\uD83D\\uDE00\"");
        assert_eq!(url_path("kv/data/a b?c#d%"), "kv/data/a%20b%3Fc%23d%25");
        assert_eq!(url_path("é"), "%C3%A9");
        assert_eq!(url_path("kv/data/orders-1.x_y~z"), "kv/data/orders-1.x_y~z");
    }

    /// Segments for secret paths: good ones, and each kind of bad one.
    fn path_like() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            4 => "[a-zA-Z0-9._-]{1,6}",
            1 => Just(".".to_string()),
            1 => Just("..".to_string()),
            1 => Just(String::new()),
            1 => Just("v1".to_string()),
            1 => "[?#{}@%~ +=,:\"'<>&\\\\]{1,2}",
        ];
        (
            prop::sample::select(vec!["", "", "", "/", "v1/"]),
            prop::collection::vec(segment, 1..6),
        )
            .prop_map(|(prefix, segments)| format!("{prefix}{}", segments.join("/")))
    }

    fn secret_path_ok(s: &str) -> bool {
        run(validate_secret_path, &AttrPath::root("secret_path"), s).is_empty()
    }

    proptest! {
        #[test]
        fn xml_escapes_read_back_as_the_input(s in nasty()) {
            let (a, t) = (xml_attr(&s), xml_text(&s));
            for x in [&a, &t] {
                prop_assert!(!x.contains("{{") && !x.contains("}}"), "{x:?}");
                prop_assert!(!x.contains('"') && !x.contains('<') && !x.contains('@'), "{x:?}");
                prop_assert!(only_references(x), "{x:?}");
            }
            let doc = format!("<a v=\"{a}\" w='{a}'>{t}</a>");
            let parsed = parse(&doc);
            let want = xml_visible(&s);
            prop_assert_eq!(&parsed[0].attrs, &vec![want.clone(), want.clone()]);
            prop_assert_eq!(&parsed[0].text, &want);
        }

        #[test]
        fn cs_string_is_one_literal_of_the_input(s in nasty()) {
            let lit = cs_string(&s);
            prop_assert!(lit.len() >= 2 && lit.starts_with('"') && lit.ends_with('"'));
            prop_assert!(lit.chars().all(|c| c == ' ' || c.is_ascii_graphic()), "{lit:?}");
            for bad in ["{", "}", "@", "<", "&", "'", "(", ")"] {
                prop_assert!(!lit.contains(bad), "{bad} in {lit:?}");
            }
            prop_assert_eq!(cs_decode(&lit), Some(s));
        }

        /// In a `rawxml` document, the literal ends the expression nowhere but where it was
        /// put, the escaped values stay text, and nothing forms a named-value reference or
        /// another expression.
        #[test]
        fn escaped_values_keep_a_rawxml_document_as_written(s in nasty()) {
            let lit = cs_string(&s);
            let expr = format!("@(\"x\" + {lit} + (string)context.Variables[\"v\"])");
            let doc = format!(
                "<fragment><set-variable name=\"{}\" value=\"{expr}\" /><value>{}</value><set-url>{{{{addr}}}}/v1/{}</set-url></fragment>",
                xml_attr(&s), xml_text(&s), xml_text(&url_path(&s)),
            );
            prop_assert_eq!(doc.matches("{{").count(), 1);
            prop_assert_eq!(doc.matches("@(").count() + doc.matches("@{").count(), 1);
            let parsed = parse(&raw_to_xml(&doc));
            let want = xml_visible(&s);
            let names: Vec<&str> = parsed.iter().map(|e| e.name.as_str()).collect();
            prop_assert_eq!(names, vec!["fragment", "set-variable", "value", "set-url"]);
            prop_assert_eq!(&parsed[1].attrs, &vec![want.clone(), expr]);
            prop_assert_eq!(&parsed[2].text, &want);
            prop_assert_eq!(&parsed[3].text, &format!("{{{{addr}}}}/v1/{}", url_path(&s)));
        }

        #[test]
        fn url_path_is_unreserved_escapes_and_slashes(s in nasty()) {
            let u = url_path(&s);
            let b = u.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' {
                    prop_assert!(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit(), "{u:?}");
                    i += 3;
                } else {
                    prop_assert!(b[i].is_ascii_alphanumeric() || b"-._~/".contains(&b[i]), "{u:?}");
                    i += 1;
                }
            }
        }

        /// The path fetched is the path checked: an accepted secret path has no `.`, `..`
        /// or empty segment and nothing for `url_path` to encode.
        #[test]
        fn accepted_secret_paths_are_fetched_as_checked(s in prop_oneof![path_like(), nasty()]) {
            if secret_path_ok(&s) {
                prop_assert!(s.split('/').all(|seg| !matches!(seg, "" | "." | "..")), "{s:?}");
                prop_assert!(!s.starts_with("v1/"));
                prop_assert_eq!(url_path(&s), s);
            }
        }

        /// And the grammar is no narrower than that: segments of name characters pass.
        #[test]
        fn paths_of_name_segments_are_accepted(
            segments in prop::collection::vec("[a-zA-Z0-9_-][a-zA-Z0-9._-]{0,5}", 1..6),
        ) {
            let s = segments.join("/");
            prop_assume!(!s.starts_with("v1/") && s != "v1");
            prop_assert!(secret_path_ok(&s), "{s:?}");
        }
    }
}
