//! The policy table: every policy element the emulator knows, where it may appear (sections,
//! scopes, fragments), how often, its attributes (required, expressions allowed, literal values)
//! and children, whether the gateway executes it, and the Microsoft source of each fact.
//! Where sources disagree the stricter reading is taken (see the `source` texts).

/// Policy sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `inbound`.
    Inbound,
    /// `backend`.
    Backend,
    /// `outbound`.
    Outbound,
    /// `on-error`.
    OnError,
}

impl Section {
    /// Every section, in pipeline order.
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    /// The section an element name stands for.
    pub fn from_name(n: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.name() == n)
    }
}

/// What literal values an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Any text.
    Any,
    /// An integer (seconds, a status code, ...).
    Int,
    /// `true` or `false`.
    Bool,
    /// One of these.
    OneOf(&'static [&'static str]),
}

/// An attribute of a policy element.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Name.
    pub name: &'static str,
    /// Required.
    pub required: bool,
    /// Policy expressions allowed.
    pub expr: bool,
    /// Literal values accepted.
    pub values: Values,
}

const fn a(name: &'static str, required: bool, expr: bool, values: Values) -> Attr {
    Attr {
        name,
        required,
        expr,
        values,
    }
}

/// What an element contains.
#[derive(Debug, Clone, Copy)]
pub enum Content {
    /// Nothing.
    Empty,
    /// Text, which may be a policy expression when `expr`.
    Text {
        /// Expressions allowed.
        expr: bool,
        /// Text required.
        required: bool,
    },
    /// These child elements, in this order.
    Children(&'static [ChildSpec]),
    /// Policy statements (`when`, `otherwise`, sections).
    Policies,
}

/// A child element of a policy.
#[derive(Debug, Clone, Copy)]
pub struct ChildSpec {
    /// Element name.
    pub name: &'static str,
    /// At least one required.
    pub required: bool,
    /// Most occurrences.
    pub max: usize,
    /// Its attributes (ignored when `like` is set).
    pub attrs: &'static [Attr],
    /// Its content (ignored when `like` is set).
    pub content: Content,
    /// Has the attributes and content of this policy.
    pub like: Option<&'static str>,
}

const fn child(
    name: &'static str,
    required: bool,
    max: usize,
    attrs: &'static [Attr],
    content: Content,
) -> ChildSpec {
    ChildSpec {
        name,
        required,
        max,
        attrs,
        content,
        like: None,
    }
}

const fn like(name: &'static str, required: bool, max: usize) -> ChildSpec {
    ChildSpec {
        name,
        required,
        max,
        attrs: &[],
        content: Content::Empty,
        like: Some(name),
    }
}

/// A policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Element name.
    pub name: &'static str,
    /// Sections it may appear in.
    pub sections: &'static [Section],
    /// Scopes it may appear in (`global`, `workspace`, `product`, `api`, `operation`); the
    /// emulator has documents at every scope but `workspace`.
    pub scopes: &'static [&'static str],
    /// Allowed inside a policy fragment.
    pub fragment: bool,
    /// At most once per policy section.
    pub once_per_section: bool,
    /// At most once per policy document.
    pub once_per_document: bool,
    /// Attributes (`id` is accepted on every policy besides these).
    pub attrs: &'static [Attr],
    /// Content.
    pub content: Content,
    /// The gateway executes it (otherwise saving it is refused while rules are enforced, and
    /// running it fails).
    pub implemented: bool,
    /// Microsoft sources for the facts above.
    pub source: &'static str,
}

use Section::{Backend as B, Inbound as I, OnError as E, Outbound as O};
use Values::{Any, Bool, Int, OneOf};

const ALL4: &[Section] = &[I, B, O, E];
/// Every scope.
const ALL5: &[&str] = &["global", "workspace", "product", "api", "operation"];
/// Every scope but workspace.
const NO_WS: &[&str] = &["global", "product", "api", "operation"];
/// Sections of policies that the 2020 on-error list leaves out although their own (newer) page
/// lists on-error: built for the stricter reading, without on-error.
const NO_ON_ERROR: &[Section] = &[I, B, O];
const CACHING: Attr = a(
    "caching-type",
    false,
    false,
    OneOf(&["internal", "external", "prefer-external"]),
);
const EXISTS: Attr = a(
    "exists-action",
    false,
    true,
    OneOf(&["override", "skip", "append", "delete"]),
);
const VALUE: ChildSpec = child(
    "value",
    false,
    usize::MAX,
    &[],
    Content::Text {
        expr: true,
        required: false,
    },
);
const VALUE_REQUIRED: ChildSpec = child(
    "value",
    true,
    usize::MAX,
    &[],
    Content::Text {
        expr: true,
        required: false,
    },
);

/// Where the on-error facts come from (used by several rows).
pub const ON_ERROR_SOURCE: &str = "on-error: AD api-management-error-handling-policies.md @11ee015b (01/10/2020) lists the policies allowed in on-error; a policy is allowed there only when that list and its own page both say so (stricter reading, notes §1 and Conflicts 8)";

/// The table.
pub const POLICIES: &[Policy] = &[
    Policy { name: "base", sections: ALL4, scopes: ALL5, fragment: false, once_per_section: false, once_per_document: false, attrs: &[], content: Content::Empty, implemented: true,
        source: "AD api-management-howto-policies.md @00a16c5a (03/01/2022): inherits the parent scope's section; AD policy-fragments.md @0729160b (02/10/2026): a fragment can't include <base/>" },
    Policy { name: "include-fragment", sections: NO_ON_ERROR, scopes: ALL5, fragment: false, once_per_section: false, once_per_document: false,
        attrs: &[a("fragment-id", true, false, Any)], content: Content::Empty, implemented: true,
        source: "AD include-fragment-policy.md @0c210787 (07/23/2024): fragment-id required, expressions not allowed; AD policy-fragments.md @0729160b: a fragment can't nest another fragment; on-error left out (2020 on-error list)" },
    Policy { name: "choose", sections: ALL4, scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false, attrs: &[],
        content: Content::Children(&[child("when", true, usize::MAX, &[a("condition", true, true, Bool)], Content::Policies), child("otherwise", false, 1, &[], Content::Policies)]),
        implemented: true, source: "AD choose-policy.md @0b2db47d (12/08/2022): at least one when with condition, optional otherwise, first true when wins" },
    Policy { name: "set-variable", sections: ALL4, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("name", true, false, Any), a("value", true, true, Any)], content: Content::Empty, implemented: true,
        source: "AD set-variable-policy.md @0aa3f927 (07/23/2024): name (no expressions), value; allowed value types" },
    Policy { name: "set-header", sections: ALL4, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("name", true, true, Any), EXISTS], content: Content::Children(&[VALUE]), implemented: true,
        source: "AD set-header-policy.md @26eaa268 (03/18/2024): name required, exists-action override|skip|append|delete (default override), value elements" },
    Policy { name: "set-query-parameter", sections: &[I, B], scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("name", true, true, Any), EXISTS], content: Content::Children(&[VALUE_REQUIRED]), implemented: true,
        source: "AD set-query-parameter-policy.md @62d13e9b (07/23/2024): sections inbound, backend; value required" },
    Policy { name: "cache-lookup-value", sections: NO_ON_ERROR, scopes: ALL5, fragment: false, once_per_section: true, once_per_document: false,
        attrs: &[a("key", true, true, Any), a("variable-name", true, false, Any), a("default-value", false, true, Any), CACHING], content: Content::Empty, implemented: true,
        source: "AD cache-lookup-value-policy.md @09ceb1fb (07/23/2024): attributes, caching-type and variable-name without expressions; LEARN https://learn.microsoft.com/ko-kr/Azure/api-management/cache-lookup-value-policy (live): \"isn't supported within policy fragments\", \"can only be used once in a policy section\"" },
    Policy { name: "cache-store-value", sections: NO_ON_ERROR, scopes: ALL5, fragment: true, once_per_section: true, once_per_document: false,
        attrs: &[a("key", true, true, Any), a("value", true, true, Any), a("duration", true, true, Int), CACHING], content: Content::Empty, implemented: true,
        source: "AD cache-store-value-policy.md @03e5750a (07/23/2024): key, value, duration (seconds), caching-type without expressions; \"can only be used once in a policy section\"" },
    Policy { name: "cache-remove-value", sections: NO_ON_ERROR, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("key", true, true, Any), CACHING], content: Content::Empty, implemented: true,
        source: "AD cache-remove-value-policy.md @03e5750a (07/23/2024)" },
    Policy { name: "authentication-managed-identity", sections: &[I], scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("resource", true, true, Any), a("client-id", false, false, Any), a("output-token-variable-name", false, false, Any), a("ignore-error", false, false, Bool)], content: Content::Empty, implemented: true,
        source: "AD authentication-managed-identity-policy.md @00771b6d (07/23/2024): inbound only; client-id and output-token-variable-name without expressions; ignore-error default false" },
    Policy { name: "send-request", sections: ALL4, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("mode", false, true, OneOf(&["new", "copy"])), a("response-variable-name", true, false, Any), a("timeout", false, true, Int), a("ignore-error", false, false, Bool)],
        content: Content::Children(&[
            child("set-url", false, 1, &[], Content::Text { expr: true, required: true }),
            child("set-method", false, 1, &[], Content::Text { expr: false, required: true }),
            like("set-header", false, usize::MAX),
            like("set-body", false, 1),
            child("authentication-certificate", false, 1, &[a("thumbprint", false, true, Any), a("certificate-id", false, true, Any), a("body", false, true, Any), a("password", false, true, Any)], Content::Empty),
            like("authentication-managed-identity", false, 1),
            child("proxy", false, 1, &[a("url", true, false, Any), a("username", false, false, Any), a("password", false, false, Any)], Content::Empty),
        ]),
        implemented: true,
        source: "AD send-request-policy.md id 326463528 (08/02/2023): mode new|copy, timeout default 60, ignore-error without expressions, children in order, set-url and set-method required unless mode=copy; response-variable-name without expressions (stricter reading: return-response's page forbids them, the 2023 send-request copy allows them); LEARN ko-kr send-request (authentication-managed-identity child)" },
    Policy { name: "return-response", sections: ALL4, scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("response-variable-name", false, false, Any)],
        content: Content::Children(&[like("set-status", false, 1), like("set-header", false, usize::MAX), like("set-body", false, 1)]), implemented: true,
        source: "AD return-response-policy.md @05849c0a (12/08/2022): children set-status, set-header, set-body in that order; default 200 OK, empty" },
    Policy { name: "set-status", sections: ALL4, scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("code", true, true, Int), a("reason", true, true, Any)], content: Content::Empty, implemented: true,
        source: "AD set-status-policy.md @16fe0f01 (12/08/2022): code and reason required" },
    Policy { name: "set-body", sections: NO_ON_ERROR, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("template", false, false, OneOf(&["liquid"])), a("xsi-nil", false, false, OneOf(&["blank", "null"])), a("parse-date", false, false, Bool)],
        content: Content::Text { expr: true, required: false }, implemented: true,
        source: "AD set-body-policy.md @03acc2f3 (01/13/2023): sections inbound, outbound, backend; template liquid, xsi-nil blank|null" },
    Policy { name: "set-method", sections: &[I, E], scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false, attrs: &[],
        content: Content::Text { expr: false, required: true }, implemented: true,
        source: "AD set-method-policy.md @0ec542cd (11/21/2022): sections inbound, on-error; the method as text (expressions not allowed, per send-request's child element)" },
    Policy { name: "forward-request", sections: &[B], scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: true,
        attrs: &[a("timeout", false, true, Int), a("follow-redirects", false, true, Bool), a("buffer-request-body", false, true, Bool), a("buffer-response", false, true, Bool), a("fail-on-error-status-code", false, true, Bool), a("http-version", false, true, OneOf(&["1", "2or1", "2"]))],
        content: Content::Empty, implemented: true,
        source: "AD forward-request-policy.md @08b11034 (11/15/2022): backend only, timeout default 300, multiple statements per policy document not supported; set up at the global scope by default" },
    Policy { name: "trace", sections: NO_ON_ERROR, scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("source", true, false, Any), a("severity", false, false, OneOf(&["verbose", "information", "error"]))],
        content: Content::Children(&[child("message", true, 1, &[], Content::Text { expr: true, required: true }), child("metadata", false, usize::MAX, &[a("name", true, false, Any), a("value", true, true, Any)], Content::Empty)]),
        implemented: true,
        source: "AD trace-policy.md @0ec542cd (11/21/2022): sections inbound, outbound, backend (its page leaves on-error out); source required, severity, message required, metadata" },
    Policy { name: "emit-metric", sections: NO_ON_ERROR, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("name", true, false, Any), a("namespace", false, false, Any), a("value", false, true, Any)],
        content: Content::Children(&[child("dimension", true, 10, &[a("name", true, false, Any), a("value", false, true, Any)], Content::Empty)]),
        implemented: true,
        source: "AD emit-metric-policy.md @03dee7c0 (03/18/2024): name without expressions, namespace default \"API Management\", value default 1, dimension required, at most 10 custom dimensions" },
    Policy { name: "log-to-eventhub", sections: ALL4, scopes: NO_WS, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("logger-id", true, false, Any), a("partition-id", false, false, Any), a("partition-key", false, true, Any)],
        content: Content::Text { expr: true, required: true }, implemented: true,
        source: "AD log-to-eventhub-policy.md @08965de3 (07/23/2024): logger-id required without expressions; partition-id without expressions, partition-key with" },
    Policy { name: "retry", sections: ALL4, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("condition", true, true, Bool), a("count", true, true, Int), a("interval", true, true, Int), a("max-interval", false, true, Int), a("delta", false, true, Int), a("first-fast-retry", false, true, Bool)],
        content: Content::Policies, implemented: true, source: "AD retry-policy.md @03acc2f3 (12/08/2022): count 1-50, condition, interval required" },
    Policy { name: "validate-jwt", sections: &[I], scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false, attrs: &[], content: Content::Policies, implemented: false,
        source: "AD validate-jwt-policy.md @01e7c604 (03/18/2024): inbound only" },
    Policy { name: "limit-concurrency", sections: ALL4, scopes: ALL5, fragment: true, once_per_section: false, once_per_document: false,
        attrs: &[a("key", true, true, Any), a("max-count", true, false, Int)], content: Content::Policies, implemented: false,
        source: "AD limit-concurrency-policy.md @0c210787 (07/23/2024): max-count without expressions" },
];

/// A policy's row.
pub fn find(name: &str) -> Option<&'static Policy> {
    POLICIES.iter().find(|p| p.name == name)
}
