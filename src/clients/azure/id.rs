//! Typed ARM resource IDs for the objects the provider touches.
//!
//! Each ID can be built from its parts, parsed **strictly** from user input (exact segment
//! casing, a UUID subscription, names that follow the API's patterns) or **leniently** from
//! what ARM returns (segment names in any case, e.g. `resourcegroups` in a token's
//! `xms_mirid`), and shown in a readable form that every error message uses. The canonical
//! string (what ARM calls `id`) comes from [`ResourceId::arm_id`].

use std::fmt;

/// The provider namespace of API Management.
const APIM_PROVIDER: &str = "Microsoft.ApiManagement";
/// The provider namespace of user-assigned identities.
const MSI_PROVIDER: &str = "Microsoft.ManagedIdentity";

/// Common behaviour of every typed ID.
pub trait ResourceId: fmt::Display {
    /// The canonical ARM ID, e.g.
    /// `/subscriptions/<uuid>/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/apim1`.
    fn arm_id(&self) -> String;
}

/// Why a string is not a valid ID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid {kind} ID: {reason}. A valid ID looks like `{example}`")]
pub struct IdError {
    /// What was given.
    pub input: String,
    /// What kind of ID was expected, e.g. "API Management service".
    pub kind: &'static str,
    /// Which part is wrong and why.
    pub reason: String,
    /// The shape of a valid ID.
    pub example: &'static str,
}

/// Whether a parse is of user input (exact) or of an ARM answer (case-insensitive segment
/// names, values only checked to be non-empty).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Lenient,
}

/// One expected segment of an ID.
enum Seg {
    /// A fixed segment name such as `resourceGroups`.
    Fixed(&'static str),
    /// A value: its human name and the check that applies in strict mode.
    Value(&'static str, fn(&str) -> Result<(), String>),
}

/// Splits `input` along `pattern` and returns the values in order.
fn parse_segments(
    input: &str,
    pattern: &[Seg],
    mode: Mode,
    kind: &'static str,
    example: &'static str,
) -> Result<Vec<String>, IdError> {
    let err = |reason: String| IdError {
        input: input.to_string(),
        kind,
        reason,
        example,
    };
    // ARM sometimes ends an ID with one `/`; names are never empty, so it can go.
    let trimmed = match mode {
        Mode::Lenient => input.strip_suffix('/').unwrap_or(input),
        Mode::Strict => input,
    };
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Err(err("it must start with `/subscriptions/`".into()));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let mut values = Vec::new();
    for (i, seg) in pattern.iter().enumerate() {
        let Some(part) = parts.get(i) else {
            let what = match seg {
                Seg::Fixed(name) => format!("the segment `{name}`"),
                Seg::Value(name, _) => format!("the {name}"),
            };
            return Err(err(format!("it ends before {what}")));
        };
        match seg {
            Seg::Fixed(name) => {
                let ok = match mode {
                    Mode::Strict => part == name,
                    Mode::Lenient => part.eq_ignore_ascii_case(name),
                };
                if !ok {
                    let hint = if part.eq_ignore_ascii_case(name) {
                        " (segment names are case-sensitive here)"
                    } else {
                        ""
                    };
                    return Err(err(format!(
                        "segment {} is `{part}` where `{name}` was expected{hint}",
                        i + 1
                    )));
                }
            }
            Seg::Value(name, check) => {
                if part.is_empty() {
                    return Err(err(format!("the {name} (segment {}) is empty", i + 1)));
                }
                if mode == Mode::Strict {
                    check(part).map_err(|why| err(format!("the {name} `{part}` {why}")))?;
                }
                values.push((*part).to_string());
            }
        }
    }
    if parts.len() > pattern.len() {
        let extra = parts[pattern.len()..].join("/");
        return Err(err(if extra.is_empty() {
            "it ends with a `/`".into()
        } else {
            format!("it has extra segments after the {kind}: `{extra}`")
        }));
    }
    Ok(values)
}

fn check_uuid(s: &str) -> Result<(), String> {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err("is not a UUID like 00000000-0000-0000-0000-000000000000".into())
    }
}

fn check_resource_group(s: &str) -> Result<(), String> {
    if s.chars().count() > 90 {
        return Err("is longer than 90 characters".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')')))
    {
        return Err(format!(
            "contains {c:?}; a resource group name has letters, digits, `-`, `_`, `.`, `(` and `)`"
        ));
    }
    if s.ends_with('.') {
        return Err("ends with a `.`".into());
    }
    Ok(())
}

fn check_service_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= 50
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err("is not 1-50 letters, digits and dashes starting with a letter and not ending with a dash".into())
    }
}

/// The rule APIM applies to named value, API and backend IDs: none of `*#&+:<>?`.
fn check_entity_name(max: usize) -> impl Fn(&str) -> Result<(), String> {
    move |s: &str| {
        if s.chars().count() > max {
            return Err(format!("is longer than {max} characters"));
        }
        if let Some(c) = s.chars().find(|c| "*#&+:<>?".contains(*c)) {
            return Err(format!(
                "contains {c:?}, which is not allowed (none of *#&+:<>?)"
            ));
        }
        Ok(())
    }
}

fn check_named_value(s: &str) -> Result<(), String> {
    check_entity_name(256)(s)
}

fn check_api_or_backend(s: &str) -> Result<(), String> {
    check_entity_name(80)(s)
}

fn check_logger(s: &str) -> Result<(), String> {
    check_entity_name(256)(s)
}

fn check_api(s: &str) -> Result<(), String> {
    // A revision (`echo;rev=2`) may be up to 256 characters.
    check_entity_name(if s.contains(";rev=") { 256 } else { 80 })(s)
}

fn check_fragment(s: &str) -> Result<(), String> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let ok = s.chars().count() <= 80
        && s.chars().next().is_some_and(word)
        && s.chars().last().is_some_and(word)
        && s.chars().all(|c| word(c) || c == '-');
    if ok {
        Ok(())
    } else {
        Err("is not 1-80 letters, digits, `_` and `-`, starting and ending with a letter, digit or `_`".into())
    }
}

fn check_identity_name(s: &str) -> Result<(), String> {
    let ok = s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err("is not 1-128 letters, digits, `-` and `_` starting with a letter or digit".into())
    }
}

const SERVICE_EXAMPLE: &str =
    "/subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>";

fn service_pattern() -> Vec<Seg> {
    vec![
        Seg::Fixed("subscriptions"),
        Seg::Value("subscription ID", check_uuid),
        Seg::Fixed("resourceGroups"),
        Seg::Value("resource group name", check_resource_group),
        Seg::Fixed("providers"),
        Seg::Fixed(APIM_PROVIDER),
        Seg::Fixed("service"),
        Seg::Value("service name", check_service_name),
    ]
}

/// An API Management instance:
/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ApiManagement/service/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceId {
    /// Subscription ID.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Service (instance) name.
    pub name: String,
}

impl ServiceId {
    /// Builds an ID from its parts (not validated: for values the program already trusts).
    pub fn new(
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
        name: impl Into<String>,
    ) -> ServiceId {
        ServiceId {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        }
    }

    /// Parses user input strictly.
    pub fn parse(s: &str) -> Result<ServiceId, IdError> {
        Self::parse_mode(s, Mode::Strict)
    }

    /// Parses an ID that ARM returned (segment names in any case).
    pub fn parse_insensitive(s: &str) -> Result<ServiceId, IdError> {
        Self::parse_mode(s, Mode::Lenient)
    }

    fn parse_mode(s: &str, mode: Mode) -> Result<ServiceId, IdError> {
        let v = parse_segments(
            s,
            &service_pattern(),
            mode,
            "API Management service",
            SERVICE_EXAMPLE,
        )?;
        Ok(ServiceId::new(&v[0], &v[1], &v[2]))
    }

    /// Parses a child ID (`{service}/{collection}/{name}`) and returns the service and name.
    fn parse_child(
        s: &str,
        mode: Mode,
        collection: &'static str,
        value_name: &'static str,
        check: fn(&str) -> Result<(), String>,
        kind: &'static str,
        example: &'static str,
    ) -> Result<(ServiceId, String), IdError> {
        let mut pattern = service_pattern();
        pattern.push(Seg::Fixed(collection));
        pattern.push(Seg::Value(value_name, check));
        let v = parse_segments(s, &pattern, mode, kind, example)?;
        Ok((ServiceId::new(&v[0], &v[1], &v[2]), v[3].clone()))
    }

    /// A named value of this instance.
    pub fn named_value(&self, name: impl Into<String>) -> NamedValueId {
        NamedValueId {
            service: self.clone(),
            name: name.into(),
        }
    }

    /// A policy fragment of this instance.
    pub fn policy_fragment(&self, name: impl Into<String>) -> PolicyFragmentId {
        PolicyFragmentId {
            service: self.clone(),
            name: name.into(),
        }
    }

    /// An API of this instance.
    pub fn api(&self, name: impl Into<String>) -> ApiId {
        ApiId {
            service: self.clone(),
            name: name.into(),
        }
    }

    /// A backend of this instance.
    pub fn backend(&self, name: impl Into<String>) -> BackendId {
        BackendId {
            service: self.clone(),
            name: name.into(),
        }
    }

    /// A logger of this instance.
    pub fn logger(&self, name: impl Into<String>) -> LoggerId {
        LoggerId {
            service: self.clone(),
            name: name.into(),
        }
    }

    /// The instance's global (all APIs) policy.
    pub fn policy(&self) -> ServicePolicyId {
        ServicePolicyId {
            service: self.clone(),
        }
    }

    /// "(resource group rg1, subscription …)".
    fn location(&self) -> String {
        format!(
            "(resource group {}, subscription {})",
            self.resource_group, self.subscription_id
        )
    }
}

impl ResourceId for ServiceId {
    fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{APIM_PROVIDER}/service/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "API Management service {} {}",
            self.name,
            self.location()
        )
    }
}

/// Declares a `{service}/{collection}/{name}` ID type.
macro_rules! child_id {
    (
        $(#[$doc:meta])*
        $ty:ident, $collection:literal, $value_name:literal, $check:path, $kind:literal, $label:literal
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $ty {
            /// The API Management instance.
            pub service: ServiceId,
            /// The entity's ID within the instance.
            pub name: String,
        }

        impl $ty {
            /// Parses user input strictly.
            pub fn parse(s: &str) -> Result<$ty, IdError> {
                Self::parse_mode(s, Mode::Strict)
            }

            /// Parses an ID that ARM returned (segment names in any case).
            pub fn parse_insensitive(s: &str) -> Result<$ty, IdError> {
                Self::parse_mode(s, Mode::Lenient)
            }

            fn parse_mode(s: &str, mode: Mode) -> Result<$ty, IdError> {
                let (service, name) = ServiceId::parse_child(
                    s,
                    mode,
                    $collection,
                    $value_name,
                    $check,
                    $kind,
                    concat!(
                        "/subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>/",
                        $collection,
                        "/<id>"
                    ),
                )?;
                Ok($ty { service, name })
            }
        }

        impl ResourceId for $ty {
            fn arm_id(&self) -> String {
                format!("{}/{}/{}", self.service.arm_id(), $collection, self.name)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!($label, " {} of API Management service {} {}"),
                    self.name,
                    self.service.name,
                    self.service.location()
                )
            }
        }
    };
}

child_id!(
    /// A named value: `{service}/namedValues/{id}`.
    NamedValueId, "namedValues", "named value ID", check_named_value, "named value", "named value"
);
child_id!(
    /// A policy fragment: `{service}/policyFragments/{id}`.
    PolicyFragmentId, "policyFragments", "policy fragment ID", check_fragment, "policy fragment", "policy fragment"
);
child_id!(
    /// An API: `{service}/apis/{apiId}`.
    ApiId, "apis", "API ID", check_api, "API", "API"
);
child_id!(
    /// A backend: `{service}/backends/{backendId}`.
    BackendId, "backends", "backend ID", check_api_or_backend, "backend", "backend"
);

child_id!(
    /// A logger: `{service}/loggers/{loggerId}`.
    LoggerId, "loggers", "logger ID", check_logger, "logger", "logger"
);

impl ApiId {
    /// The API's policy (`{api}/policies/policy`).
    pub fn policy(&self) -> ApiPolicyId {
        ApiPolicyId { api: self.clone() }
    }
}

/// An API's policy: `{service}/apis/{apiId}/policies/policy` (the only policy ID is `policy`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiPolicyId {
    /// The API.
    pub api: ApiId,
}

impl ApiPolicyId {
    const EXAMPLE: &'static str = "/subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>/apis/<api>/policies/policy";

    /// Parses user input strictly.
    pub fn parse(s: &str) -> Result<ApiPolicyId, IdError> {
        Self::parse_mode(s, Mode::Strict)
    }

    /// Parses an ID that ARM returned (segment names in any case).
    pub fn parse_insensitive(s: &str) -> Result<ApiPolicyId, IdError> {
        Self::parse_mode(s, Mode::Lenient)
    }

    fn parse_mode(s: &str, mode: Mode) -> Result<ApiPolicyId, IdError> {
        let mut pattern = service_pattern();
        pattern.extend([
            Seg::Fixed("apis"),
            Seg::Value("API ID", check_api),
            Seg::Fixed("policies"),
            Seg::Fixed("policy"),
        ]);
        let v = parse_segments(s, &pattern, mode, "API policy", Self::EXAMPLE)?;
        Ok(ServiceId::new(&v[0], &v[1], &v[2]).api(&v[3]).policy())
    }
}

impl ResourceId for ApiPolicyId {
    fn arm_id(&self) -> String {
        format!("{}/policies/policy", self.api.arm_id())
    }
}

impl fmt::Display for ApiPolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy of API {} of API Management service {} {}",
            self.api.name,
            self.api.service.name,
            self.api.service.location()
        )
    }
}

/// An instance's global policy: `{service}/policies/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePolicyId {
    /// The API Management instance.
    pub service: ServiceId,
}

impl ServicePolicyId {
    const EXAMPLE: &'static str = "/subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ApiManagement/service/<name>/policies/policy";

    /// Parses user input strictly.
    pub fn parse(s: &str) -> Result<ServicePolicyId, IdError> {
        Self::parse_mode(s, Mode::Strict)
    }

    /// Parses an ID that ARM returned (segment names in any case).
    pub fn parse_insensitive(s: &str) -> Result<ServicePolicyId, IdError> {
        Self::parse_mode(s, Mode::Lenient)
    }

    fn parse_mode(s: &str, mode: Mode) -> Result<ServicePolicyId, IdError> {
        let mut pattern = service_pattern();
        pattern.extend([Seg::Fixed("policies"), Seg::Fixed("policy")]);
        let v = parse_segments(s, &pattern, mode, "service policy", Self::EXAMPLE)?;
        Ok(ServiceId::new(&v[0], &v[1], &v[2]).policy())
    }
}

impl ResourceId for ServicePolicyId {
    fn arm_id(&self) -> String {
        format!("{}/policies/policy", self.service.arm_id())
    }
}

impl fmt::Display for ServicePolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "global policy of API Management service {} {}",
            self.service.name,
            self.service.location()
        )
    }
}

/// A user-assigned managed identity:
/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserAssignedIdentityId {
    /// Subscription ID.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Identity name.
    pub name: String,
}

impl UserAssignedIdentityId {
    const EXAMPLE: &'static str = "/subscriptions/<uuid>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>";

    /// Builds an ID from its parts (not validated).
    pub fn new(
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
        name: impl Into<String>,
    ) -> UserAssignedIdentityId {
        UserAssignedIdentityId {
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        }
    }

    /// Parses user input strictly.
    pub fn parse(s: &str) -> Result<UserAssignedIdentityId, IdError> {
        Self::parse_mode(s, Mode::Strict)
    }

    /// Parses an ID that ARM returned (segment names in any case).
    pub fn parse_insensitive(s: &str) -> Result<UserAssignedIdentityId, IdError> {
        Self::parse_mode(s, Mode::Lenient)
    }

    fn parse_mode(s: &str, mode: Mode) -> Result<UserAssignedIdentityId, IdError> {
        let pattern = [
            Seg::Fixed("subscriptions"),
            Seg::Value("subscription ID", check_uuid),
            Seg::Fixed("resourceGroups"),
            Seg::Value("resource group name", check_resource_group),
            Seg::Fixed("providers"),
            Seg::Fixed(MSI_PROVIDER),
            Seg::Fixed("userAssignedIdentities"),
            Seg::Value("identity name", check_identity_name),
        ];
        let v = parse_segments(s, &pattern, mode, "user-assigned identity", Self::EXAMPLE)?;
        Ok(UserAssignedIdentityId::new(&v[0], &v[1], &v[2]))
    }

    /// Whether two IDs name the same identity (ARM compares IDs case-insensitively).
    pub fn same_as(&self, other: &UserAssignedIdentityId) -> bool {
        self.subscription_id
            .eq_ignore_ascii_case(&other.subscription_id)
            && self
                .resource_group
                .eq_ignore_ascii_case(&other.resource_group)
            && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl ResourceId for UserAssignedIdentityId {
    fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{MSI_PROVIDER}/userAssignedIdentities/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

impl fmt::Display for UserAssignedIdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user-assigned identity {} (resource group {}, subscription {})",
            self.name, self.resource_group, self.subscription_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SUB: &str = "00000000-1111-2222-3333-444444444444";

    fn svc() -> String {
        format!("/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/apim1")
    }

    #[test]
    fn service_parses_and_displays() {
        let id = ServiceId::parse(&svc()).unwrap();
        assert_eq!(id, ServiceId::new(SUB, "rg1", "apim1"));
        assert_eq!(id.arm_id(), svc());
        assert_eq!(
            id.to_string(),
            format!("API Management service apim1 (resource group rg1, subscription {SUB})")
        );
    }

    #[test]
    fn strict_parse_names_the_wrong_segment() {
        let lower = svc().replace("resourceGroups", "resourcegroups");
        let e = ServiceId::parse(&lower).unwrap_err();
        assert_eq!(
            e.reason,
            "segment 3 is `resourcegroups` where `resourceGroups` was expected (segment names are case-sensitive here)"
        );
        assert!(e.to_string().contains(SERVICE_EXAMPLE), "{e}");
        assert!(
            e.to_string().starts_with(&format!(
                "{lower:?} is not a valid API Management service ID"
            )),
            "{e}"
        );

        let e = ServiceId::parse(&svc().replace(SUB, "not-a-uuid")).unwrap_err();
        assert_eq!(
            e.reason,
            "the subscription ID `not-a-uuid` is not a UUID like 00000000-0000-0000-0000-000000000000"
        );

        let e = ServiceId::parse(&svc().replace("apim1", "1apim")).unwrap_err();
        assert!(
            e.reason
                .starts_with("the service name `1apim` is not 1-50 letters"),
            "{}",
            e.reason
        );

        let e = ServiceId::parse(&svc().replace("Microsoft.ApiManagement", "Microsoft.Web"))
            .unwrap_err();
        assert_eq!(
            e.reason,
            "segment 6 is `Microsoft.Web` where `Microsoft.ApiManagement` was expected"
        );

        let e = ServiceId::parse(&format!("{}/", svc())).unwrap_err();
        assert_eq!(e.reason, "it ends with a `/`");

        let e = ServiceId::parse(&format!("{}/namedValues/x", svc())).unwrap_err();
        assert_eq!(
            e.reason,
            "it has extra segments after the API Management service: `namedValues/x`"
        );

        let e = ServiceId::parse("apim1").unwrap_err();
        assert_eq!(e.reason, "it must start with `/subscriptions/`");

        let e = ServiceId::parse(&format!("/subscriptions/{SUB}/resourceGroups/rg1")).unwrap_err();
        assert_eq!(e.reason, "it ends before the segment `providers`");

        let e = ServiceId::parse(&format!("/subscriptions/{SUB}/resourceGroups//providers"))
            .unwrap_err();
        assert_eq!(e.reason, "the resource group name (segment 4) is empty");

        let e = ServiceId::parse(&svc().replace("rg1", "rg.")).unwrap_err();
        assert_eq!(e.reason, "the resource group name `rg.` ends with a `.`");
        let e = ServiceId::parse("").unwrap_err();
        assert_eq!(e.reason, "it must start with `/subscriptions/`");
    }

    #[test]
    fn lenient_parse_accepts_what_arm_returns() {
        let arm = svc()
            .replace("resourceGroups", "resourcegroups")
            .replace("Microsoft.ApiManagement", "microsoft.apimanagement");
        let id = ServiceId::parse_insensitive(&arm).unwrap();
        assert_eq!(id, ServiceId::new(SUB, "rg1", "apim1"));
        assert_eq!(id.arm_id(), svc());
        // Still an ID of the right kind.
        assert!(ServiceId::parse_insensitive(&format!("{arm}/apis/x")).is_err());
        assert!(ServiceId::parse_insensitive("/subscriptions/x").is_err());
    }

    #[test]
    fn child_ids() {
        let s = ServiceId::new(SUB, "rg1", "apim1");
        let nv = NamedValueId::parse(&format!("{}/namedValues/vault-addr", svc())).unwrap();
        assert_eq!(nv, s.named_value("vault-addr"));
        assert_eq!(
            nv.to_string(),
            format!("named value vault-addr of API Management service apim1 (resource group rg1, subscription {SUB})")
        );
        let e = NamedValueId::parse(&format!("{}/namedValues/a:b", svc())).unwrap_err();
        assert_eq!(
            e.reason,
            "the named value ID `a:b` contains ':', which is not allowed (none of *#&+:<>?)"
        );
        assert!(e.example.ends_with("/namedValues/<id>"));
        let e = PolicyFragmentId::parse(&format!("{}/policyFragments/-x", svc())).unwrap_err();
        assert!(
            e.reason
                .starts_with("the policy fragment ID `-x` is not 1-80"),
            "{}",
            e.reason
        );
        let e = NamedValueId::parse(&format!("{}/policyFragments/x", svc())).unwrap_err();
        assert_eq!(
            e.reason,
            "segment 9 is `policyFragments` where `namedValues` was expected"
        );

        let p = ApiPolicyId::parse(&format!("{}/apis/echo/policies/policy", svc())).unwrap();
        assert_eq!(p, s.api("echo").policy());
        assert_eq!(
            p.to_string(),
            format!("policy of API echo of API Management service apim1 (resource group rg1, subscription {SUB})")
        );
        let e = ApiPolicyId::parse(&format!("{}/apis/echo/policies/other", svc())).unwrap_err();
        assert_eq!(
            e.reason,
            "segment 12 is `other` where `policy` was expected"
        );
        let g = ServicePolicyId::parse(&format!("{}/policies/policy", svc())).unwrap();
        assert_eq!(g, s.policy());
        assert_eq!(g.arm_id(), format!("{}/policies/policy", svc()));
        let b = BackendId::parse_insensitive(&format!("{}/BACKENDS/vault", svc())).unwrap();
        assert_eq!(b, s.backend("vault"));
    }

    #[test]
    fn user_assigned_identity() {
        let raw = format!("/subscriptions/{SUB}/resourcegroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1");
        assert!(UserAssignedIdentityId::parse(&raw).is_err());
        let id = UserAssignedIdentityId::parse_insensitive(&raw).unwrap();
        assert_eq!(id, UserAssignedIdentityId::new(SUB, "rg1", "uai1"));
        assert!(id.same_as(&UserAssignedIdentityId::new(
            SUB.to_uppercase(),
            "RG1",
            "uai1"
        )));
        let e = UserAssignedIdentityId::parse(&svc()).unwrap_err();
        assert_eq!(
            e.reason,
            "segment 6 is `Microsoft.ApiManagement` where `Microsoft.ManagedIdentity` was expected"
        );
    }

    fn uuid() -> impl Strategy<Value = String> {
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    }
    fn rg() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_()-][A-Za-z0-9_.()-]{0,30}[A-Za-z0-9_()-]"
    }
    fn svc_name() -> impl Strategy<Value = String> {
        "[a-zA-Z]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?"
    }
    fn entity() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.~ -]{1,40}"
    }
    fn fragment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_]([A-Za-z0-9_-]{0,20}[A-Za-z0-9_])?"
    }

    /// The same ID as ARM may write it: fixed segments in lower case.
    fn arm_casing(id: &str) -> String {
        id.replace("/resourceGroups/", "/resourcegroups/")
            .replace(
                "/providers/Microsoft.ApiManagement/",
                "/providers/microsoft.apimanagement/",
            )
            .replace("/namedValues/", "/namedvalues/")
            .replace("/policyFragments/", "/policyfragments/")
    }

    proptest! {
        /// Hostile input: any text, and ARM-shaped paths with arbitrary segments, parse to an
        /// ID or an error, never a panic.
        #[test]
        fn parsing_never_panics(text in ".{0,200}", segs in prop::collection::vec("[^/]{0,12}", 0..12)) {
            let shaped = format!("/{}", segs.join("/"));
            for input in [text.as_str(), shaped.as_str()] {
                let _ = ServiceId::parse(input);
                let _ = ServiceId::parse_insensitive(input);
                let _ = NamedValueId::parse(input);
                let _ = PolicyFragmentId::parse_insensitive(input);
                let _ = ApiPolicyId::parse(input);
                let _ = UserAssignedIdentityId::parse_insensitive(input);
            }
        }

        #[test]
        fn service_round_trips(sub in uuid(), rg in rg(), name in svc_name()) {
            let id = ServiceId::new(&sub, &rg, &name);
            prop_assert_eq!(ServiceId::parse(&id.arm_id()).unwrap(), id.clone());
            prop_assert_eq!(ServiceId::parse_insensitive(&arm_casing(&id.arm_id())).unwrap(), id.clone());
            let shown = id.to_string();
            prop_assert!(shown.contains(&name) && shown.contains(&rg) && shown.contains(&sub));
        }

        #[test]
        fn children_round_trip(sub in uuid(), rg in rg(), name in svc_name(), e in entity(), f in fragment()) {
            let s = ServiceId::new(&sub, &rg, &name);
            let nv = s.named_value(&e);
            prop_assert_eq!(NamedValueId::parse(&nv.arm_id()).unwrap(), nv.clone());
            prop_assert_eq!(NamedValueId::parse_insensitive(&arm_casing(&nv.arm_id())).unwrap(), nv.clone());
            prop_assert!(nv.to_string().contains(&e));
            let pf = s.policy_fragment(&f);
            prop_assert_eq!(PolicyFragmentId::parse(&pf.arm_id()).unwrap(), pf.clone());
            prop_assert_eq!(PolicyFragmentId::parse_insensitive(&arm_casing(&pf.arm_id())).unwrap(), pf);
            let api = s.api(&e);
            prop_assert_eq!(ApiId::parse(&api.arm_id()).unwrap(), api.clone());
            let ap = api.policy();
            prop_assert_eq!(ApiPolicyId::parse(&ap.arm_id()).unwrap(), ap.clone());
            prop_assert_eq!(ApiPolicyId::parse_insensitive(&ap.arm_id().to_lowercase()).map(|p| p.api.name.to_lowercase()), Ok(e.to_lowercase()));
            let b = s.backend(&e);
            prop_assert_eq!(BackendId::parse(&b.arm_id()).unwrap(), b);
            let g = s.policy();
            prop_assert_eq!(ServicePolicyId::parse(&g.arm_id()).unwrap(), g);
        }

        #[test]
        fn identity_round_trips(sub in uuid(), rg in rg(), name in "[A-Za-z0-9][A-Za-z0-9_-]{0,30}") {
            let id = UserAssignedIdentityId::new(&sub, &rg, &name);
            prop_assert_eq!(UserAssignedIdentityId::parse(&id.arm_id()).unwrap(), id.clone());
            prop_assert_eq!(UserAssignedIdentityId::parse_insensitive(&id.arm_id().to_lowercase()).map(|u| u.same_as(&id)), Ok(true));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = ServiceId::parse(&s);
            let _ = ApiPolicyId::parse_insensitive(&s);
        }
    }
}
