//! The provider functions, for `precondition`s, `check` blocks and outputs: the same
//! derivations the resources use, so a configuration can assert what a plan will check.
//! - `provider::apim::entra_issuer(tenant_id, token_version, cloud)`: the issuer of Entra ID
//!   tokens, as `apim_vault_auth_backend` derives `bound_issuer` from `tenant_id`;
//! - `provider::apim::policy_grants(policy, path, capability)`: whether a Vault ACL policy
//!   grants a capability on a path, by the evaluator the binding's plan checks use.

use crate::clients::vault::acl;
use crate::framework::function::{int_arg, string_arg, Function, FunctionError, Param};
use crate::framework::value::{Type, Value};

use super::vault_auth_backend::{entra_issuer, is_guid};

/// Every provider function.
pub fn functions() -> Vec<Box<dyn Function>> {
    vec![Box::new(EntraIssuer), Box::new(PolicyGrants)]
}

/// `entra_issuer`.
struct EntraIssuer;

impl Function for EntraIssuer {
    fn name(&self) -> &'static str {
        "entra_issuer"
    }
    fn summary(&self) -> &'static str {
        "The issuer of Entra ID tokens for a tenant, token version and cloud."
    }
    fn description(&self) -> &'static str {
        "The `iss` claim of Entra ID access tokens of `token_version` (1: managed-identity tokens, `https://sts.windows.net/<tenant>/` in the public and US Government clouds; 2: `<authority>/<tenant>/v2.0`) for `tenant_id` in `cloud` (`public`, `usgovernment` or `china`): what `apim_vault_auth_backend` derives as `bound_issuer` from `tenant_id`. Use it to check a Vault JWT mount configured elsewhere, e.g. in a `check` block against the Vault provider's `bound_issuer`."
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param {
                name: "tenant_id",
                ty: Type::String,
                description: "The Entra tenant (a GUID).",
            },
            Param {
                name: "token_version",
                ty: Type::Number,
                description: "1 (managed-identity tokens) or 2.",
            },
            Param {
                name: "cloud",
                ty: Type::String,
                description: "`public`, `usgovernment` or `china`.",
            },
        ]
    }
    fn returns(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let tenant = string_arg(args, 0)?;
        if !is_guid(tenant) {
            return Err(FunctionError::argument(
                0,
                format!("tenant_id is {tenant:?}: give the tenant's GUID, e.g. \"72f988bf-86f1-41af-91ab-2d7cd011db47\" (a domain name is not accepted: tokens carry the GUID)."),
            ));
        }
        let version = int_arg(args, 1)?;
        if !matches!(version, 1 | 2) {
            return Err(FunctionError::argument(
                1,
                format!("token_version is {version}: use 1 (managed-identity tokens) or 2."),
            ));
        }
        let cloud = match string_arg(args, 2)?.to_ascii_lowercase().as_str() {
            c @ ("public" | "usgovernment" | "china") => c.to_string(),
            other => {
                return Err(FunctionError::argument(
                    2,
                    format!("cloud is {other:?}: use \"public\", \"usgovernment\" or \"china\"."),
                ))
            }
        };
        Ok(Value::string(entra_issuer(
            &cloud,
            None,
            &tenant.to_ascii_lowercase(),
            version,
        )))
    }
}

/// `policy_grants`.
struct PolicyGrants;

impl Function for PolicyGrants {
    fn name(&self) -> &'static str {
        "policy_grants"
    }
    fn summary(&self) -> &'static str {
        "Whether a Vault ACL policy grants a capability on a path."
    }
    fn description(&self) -> &'static str {
        "Evaluates the Vault ACL `policy` (HCL or JSON, as `apim_vault_policy_document.hcl` or the Vault provider's `vault_policy.policy`) for the API `path` (without `/v1/`) as Vault does (exact paths, `*` globs, `+` segments, Vault's priority rules, `deny` wins) and answers whether it grants `capability` (`create`, `read`, `update`, `patch`, `delete`, `list`, `sudo`, `subscribe`). The same evaluator a binding's plan uses to check that its role's policies let it read its secret."
    }
    fn params(&self) -> Vec<Param> {
        vec![
            Param {
                name: "policy",
                ty: Type::String,
                description: "The policy document.",
            },
            Param {
                name: "path",
                ty: Type::String,
                description: "The API path, e.g. `kv/data/orders/backend`.",
            },
            Param {
                name: "capability",
                ty: Type::String,
                description: "The capability, e.g. `read`.",
            },
        ]
    }
    fn returns(&self) -> Type {
        Type::Bool
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let rules = acl::parse(string_arg(args, 0)?).map_err(|why| {
            FunctionError::argument(0, format!("policy is not a Vault ACL policy: {why}."))
        })?;
        let path = string_arg(args, 1)?;
        let capability = string_arg(args, 2)?;
        // Every capability a rule can grant; `deny` only takes the others away.
        let grantable = acl::CAPABILITIES.iter().filter(|c| **c != "deny");
        if !grantable.clone().any(|c| *c == capability) {
            let list: Vec<&str> = grantable.copied().collect();
            return Err(FunctionError::argument(
                2,
                format!(
                    "capability is {capability:?}: use one of {}.",
                    list.join(", ")
                ),
            ));
        }
        let granted = acl::capabilities_on(&[rules], path);
        Ok(Value::Bool(
            !granted.contains("deny") && granted.contains(capability),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: &dyn Function, args: &[Value]) -> Result<Value, FunctionError> {
        f.call(args)
    }

    #[test]
    fn entra_issuer_follows_version_and_cloud() {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let issuer = |v: i64, cloud: &str| {
            call(
                &EntraIssuer,
                &[Value::string(t), Value::int(v), Value::string(cloud)],
            )
        };
        assert_eq!(
            issuer(1, "public").unwrap(),
            Value::string(format!("https://sts.windows.net/{t}/"))
        );
        assert_eq!(
            issuer(2, "public").unwrap(),
            Value::string(format!("https://login.microsoftonline.com/{t}/v2.0"))
        );
        assert_eq!(
            issuer(1, "china").unwrap(),
            Value::string(format!("https://sts.chinacloudapi.cn/{t}/"))
        );
        assert_eq!(issuer(3, "public").unwrap_err().argument, Some(1));
        assert_eq!(issuer(1, "mars").unwrap_err().argument, Some(2));
        let not_guid = call(
            &EntraIssuer,
            &[
                Value::string("contoso.com"),
                Value::int(1),
                Value::string("public"),
            ],
        )
        .unwrap_err();
        assert_eq!(not_guid.argument, Some(0));
        assert!(not_guid.text.contains("GUID"), "{}", not_guid.text);
    }

    #[test]
    fn policy_grants_evaluates_as_vault_does() {
        let policy = r#"
path "kv/data/orders/*" { capabilities = ["read", "list"] }
path "kv/data/orders/admin" { capabilities = ["deny"] }
path "kv/data/+/shared" { capabilities = ["read"] }
"#;
        let grants = |path: &str, cap: &str| {
            call(
                &PolicyGrants,
                &[
                    Value::string(policy),
                    Value::string(path),
                    Value::string(cap),
                ],
            )
            .unwrap()
        };
        assert_eq!(grants("kv/data/orders/backend", "read"), Value::Bool(true));
        assert_eq!(
            grants("kv/data/orders/backend", "update"),
            Value::Bool(false)
        );
        assert_eq!(grants("kv/data/orders/admin", "read"), Value::Bool(false));
        assert_eq!(grants("kv/data/billing/shared", "read"), Value::Bool(true));
        assert_eq!(grants("kv/data/billing/other", "read"), Value::Bool(false));
        let bad = call(
            &PolicyGrants,
            &[
                Value::string("path {"),
                Value::string("x"),
                Value::string("read"),
            ],
        )
        .unwrap_err();
        assert_eq!(bad.argument, Some(0));
        let cap = call(
            &PolicyGrants,
            &[
                Value::string(policy),
                Value::string("x"),
                Value::string("write"),
            ],
        )
        .unwrap_err();
        assert_eq!(cap.argument, Some(2));
        assert!(cap.text.contains("subscribe"), "{}", cap.text);
        // Every capability a rule may grant can be asked about, `subscribe` included.
        let events = r#"path "sys/events/subscribe/*" { capabilities = ["read", "subscribe"] }"#;
        let subscribe = call(
            &PolicyGrants,
            &[
                Value::string(events),
                Value::string("sys/events/subscribe/kv*"),
                Value::string("subscribe"),
            ],
        );
        assert_eq!(subscribe.unwrap(), Value::Bool(true));
    }
}
