//! Roles of the auth methods the provider manages, at `auth/<mount>/role/<name>`: the JWT/OIDC
//! method's (Vault and OpenBao) and HashiCorp Vault's azure method's, with the token
//! parameters every auth method's roles share.
//!
//! API references: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#create-update-role>
//! (OpenBao: <https://openbao.org/api-docs/auth/jwt/#createupdate-role>),
//! <https://developer.hashicorp.com/vault/api-docs/auth/azure#create-update-role>, and the token
//! parameters: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#token_ttl>.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::fields::{or_default, seconds, string_list, Data};
use super::path::{segment, segments};
use super::{json_body, Vault, VaultError};

/// The token parameters of a role write, as every auth method takes them (`token_*`); a
/// field left `None` is not sent, so Vault keeps what it has (its default on create).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenFieldsRequest {
    /// Policies of the tokens the role issues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_policies: Option<Vec<String>>,
    /// CIDR blocks the tokens may be used from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_bound_cidrs: Option<Vec<String>>,
    /// Token TTL in seconds (0: the mount's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<i64>,
    /// Maximum token TTL in seconds (0: the mount's maximum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_max_ttl: Option<i64>,
    /// `service`, `batch` or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The tokens do not get the `default` policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_no_default_policy: Option<bool>,
}

/// The token parameters of a role as `GET auth/<mount>/role/<name>` answers them, for any
/// auth method. Absent and `null` fields read as empty or 0; durations may come as seconds
/// or as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenFields {
    /// Policies of the tokens the role issues.
    #[serde(default, deserialize_with = "string_list")]
    pub token_policies: Vec<String>,
    /// The tokens do not get the `default` policy.
    #[serde(default, deserialize_with = "or_default")]
    pub token_no_default_policy: bool,
    /// CIDR blocks the tokens may be used from.
    #[serde(default, deserialize_with = "string_list")]
    pub token_bound_cidrs: Vec<String>,
    /// Token TTL in seconds (0: the mount's default).
    #[serde(default, deserialize_with = "seconds")]
    pub token_ttl: i64,
    /// Maximum token TTL in seconds (0: the mount's maximum).
    #[serde(default, deserialize_with = "seconds")]
    pub token_max_ttl: i64,
    /// `service`, `batch` or `default`; `None` when not reported.
    #[serde(default)]
    pub token_type: Option<String>,
}

impl TokenFields {
    /// The policies a token issued by the role carries: its `token_policies`, plus `default`
    /// unless `token_no_default_policy` is set (or it is listed already).
    pub fn effective_policies(&self) -> Vec<String> {
        let mut policies = self.token_policies.clone();
        if !self.token_no_default_policy && !policies.iter().any(|p| p == "default") {
            policies.push("default".into());
        }
        policies
    }
}

/// The kind of a JWT/OIDC role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleType {
    /// Logs in with a JWT (`auth/<mount>/login`).
    Jwt,
    /// Logs in through the OIDC browser flow.
    Oidc,
}

/// How a JWT/OIDC role compares the values of `bound_claims`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundClaimsType {
    /// Exact values.
    String,
    /// Values with `*` globs.
    Glob,
}

/// `POST auth/<mount>/role/<name>` of the JWT/OIDC auth method: creates or updates a role.
/// API reference: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#create-update-role>.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwtRoleRequest {
    /// `jwt` for a JWT login.
    pub role_type: RoleType,
    /// The `aud` a token must carry (one of these).
    pub bound_audiences: Vec<String>,
    /// The claim that names the entity, e.g. `oid`.
    pub user_claim: String,
    /// How `bound_claims` values compare.
    pub bound_claims_type: BoundClaimsType,
    /// Claims a token must carry, with their values.
    pub bound_claims: BTreeMap<String, String>,
    /// The token parameters.
    #[serde(flatten)]
    pub token: TokenFieldsRequest,
}

/// The value of one bound claim as Vault reports it: one value, or a list of which the
/// token's claim must match one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum BoundClaim {
    /// One value.
    One(String),
    /// Any of these values.
    AnyOf(Vec<String>),
    /// Anything else (a number, an object): not a value the provider writes.
    Other(IgnoredAny),
}

/// The `data` of `GET auth/<mount>/role/<name>` of the JWT/OIDC auth method (the fields the
/// provider reads). API reference: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#read-role>.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct JwtRole {
    /// The audiences a token may carry.
    #[serde(default, deserialize_with = "string_list")]
    pub bound_audiences: Vec<String>,
    /// The claim that names the entity; `None` when not reported.
    #[serde(default)]
    pub user_claim: Option<String>,
    /// Claims a token must carry.
    #[serde(default, deserialize_with = "or_default")]
    pub bound_claims: BTreeMap<String, BoundClaim>,
    /// The token parameters.
    #[serde(flatten)]
    pub token: TokenFields,
}

impl JwtRole {
    /// The one value the role binds `claim` to (a list of exactly one value counts), or
    /// `None` when it binds none, several, or something else.
    pub fn bound_claim(&self, claim: &str) -> Option<&str> {
        match self.bound_claims.get(claim)? {
            BoundClaim::One(v) => Some(v),
            BoundClaim::AnyOf(v) if v.len() == 1 => Some(&v[0]),
            _ => None,
        }
    }

    /// Whether `claim` is bound, and `value` is its value or one of its values (compared
    /// as written: `bound_claims_type = "glob"` patterns are not expanded).
    fn admits(&self, claim: &str, value: &str) -> Option<bool> {
        Some(match self.bound_claims.get(claim)? {
            BoundClaim::One(v) => v == value,
            BoundClaim::AnyOf(v) => v.iter().any(|v| v == value),
            BoundClaim::Other(_) => false,
        })
    }
}

/// `POST auth/<mount>/role/<name>` of HashiCorp Vault's azure auth method: creates or updates
/// a role bound to service principals. API reference:
/// <https://developer.hashicorp.com/vault/api-docs/auth/azure#create-update-role>.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AzureRoleRequest {
    /// The object IDs of the service principals (managed identities) that may log in.
    pub bound_service_principal_ids: Vec<String>,
    /// The token parameters.
    #[serde(flatten)]
    pub token: TokenFieldsRequest,
}

/// The `data` of `GET auth/<mount>/role/<name>` of the azure auth method (the fields the
/// provider reads). API reference: <https://developer.hashicorp.com/vault/api-docs/auth/azure#read-role>.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AzureRole {
    /// The object IDs of the service principals that may log in.
    #[serde(default, deserialize_with = "string_list")]
    pub bound_service_principal_ids: Vec<String>,
    /// The token parameters.
    #[serde(flatten)]
    pub token: TokenFields,
}

/// The auth method a role belongs to, which decides the shape of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleMethod {
    /// The JWT/OIDC method (`jwt` or `oidc` mounts).
    Jwt,
    /// HashiCorp Vault's azure method.
    Azure,
}

/// The body of a role write, of either method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RoleRequest {
    /// A JWT/OIDC role.
    Jwt(JwtRoleRequest),
    /// An azure role.
    Azure(AzureRoleRequest),
}

/// A role as read, of either method.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// A JWT/OIDC role.
    Jwt(JwtRole),
    /// An azure role.
    Azure(AzureRole),
}

impl Role {
    /// Its token parameters.
    pub fn token(&self) -> &TokenFields {
        match self {
            Role::Jwt(r) => &r.token,
            Role::Azure(r) => &r.token,
        }
    }

    /// Whether the role binds the object ID `principal` (its `oid`, or one of its
    /// `bound_service_principal_ids`), whatever tenant it binds.
    pub fn binds_principal(&self, principal: &str) -> bool {
        match self {
            Role::Jwt(r) => r.admits("oid", principal) == Some(true),
            Role::Azure(r) => r.bound_service_principal_ids.iter().any(|p| p == principal),
        }
    }

    /// Whether the identity with object ID `principal` in `tenant` can log in with the role:
    /// a JWT role binds `oid` to it (and `tid`, when bound, to `tenant`); an azure role lists
    /// it in `bound_service_principal_ids`.
    pub fn admits_identity(&self, principal: &str, tenant: &str) -> bool {
        match self {
            Role::Jwt(r) => {
                r.admits("oid", principal) == Some(true) && r.admits("tid", tenant) != Some(false)
            }
            Role::Azure(r) => r.bound_service_principal_ids.iter().any(|p| p == principal),
        }
    }
}

/// `auth/<mount>/role/<name>`, each part percent-encoded.
fn role_path(mount: &str, name: &str) -> Result<String, VaultError> {
    Ok(format!(
        "auth/{}/role/{}",
        segments("auth mount path", mount)?,
        segment("role name", name)?
    ))
}

impl Vault {
    /// `GET auth/<mount>/role/<name>` decoded as `T`; `None` when there is no such role.
    async fn read_role_as<T: DeserializeOwned>(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<T>, VaultError> {
        match self
            .send::<Option<Data<T>>>(Method::GET, &role_path(mount, name)?, None)
            .await
        {
            Ok(d) => Ok(d.map(|d| d.data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET auth/<mount>/role/<name>` of a `method` mount; `None` when there is no such role.
    pub async fn read_role(
        &self,
        mount: &str,
        name: &str,
        method: RoleMethod,
    ) -> Result<Option<Role>, VaultError> {
        Ok(match method {
            RoleMethod::Jwt => self.read_role_as(mount, name).await?.map(Role::Jwt),
            RoleMethod::Azure => self.read_role_as(mount, name).await?.map(Role::Azure),
        })
    }

    /// `GET auth/<mount>/role/<name>` of any auth method, for its token parameters only;
    /// `None` when there is no such role.
    pub async fn read_role_token(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<TokenFields>, VaultError> {
        self.read_role_as(mount, name).await
    }

    /// `LIST auth/<mount>/role`: the names of the mount's roles (empty when it has none).
    /// API reference: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#list-roles>,
    /// <https://developer.hashicorp.com/vault/api-docs/auth/azure#list-roles>.
    pub async fn list_roles(&self, mount: &str) -> Result<Vec<String>, VaultError> {
        self.list(&format!(
            "auth/{}/role",
            segments("auth mount path", mount)?
        ))
        .await
    }

    /// `POST auth/<mount>/role/<name>`: creates or updates the role.
    pub async fn write_role(
        &self,
        mount: &str,
        name: &str,
        req: &RoleRequest,
    ) -> Result<(), VaultError> {
        let body = json_body(req);
        self.send::<Json>(Method::POST, &role_path(mount, name)?, Some(&body))
            .await
            .map(|_| ())
    }

    /// `DELETE auth/<mount>/role/<name>`; success when it is already gone.
    pub async fn delete_role(&self, mount: &str, name: &str) -> Result<(), VaultError> {
        match self
            .send::<Json>(Method::DELETE, &role_path(mount, name)?, None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token() -> TokenFieldsRequest {
        TokenFieldsRequest {
            token_policies: Some(vec!["orders".into()]),
            token_ttl: Some(900),
            ..Default::default()
        }
    }

    #[test]
    fn jwt_role_request_body() {
        let req = RoleRequest::Jwt(JwtRoleRequest {
            role_type: RoleType::Jwt,
            bound_audiences: vec!["api://vault".into()],
            user_claim: "oid".into(),
            bound_claims_type: BoundClaimsType::String,
            bound_claims: [("oid", "p"), ("tid", "t")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            token: token(),
        });
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "role_type": "jwt",
                "bound_audiences": ["api://vault"],
                "user_claim": "oid",
                "bound_claims_type": "string",
                "bound_claims": {"oid": "p", "tid": "t"},
                "token_policies": ["orders"],
                "token_ttl": 900,
            })
        );
    }

    #[test]
    fn azure_role_request_body_leaves_unset_token_fields_out() {
        let req = RoleRequest::Azure(AzureRoleRequest {
            bound_service_principal_ids: vec!["p".into()],
            token: TokenFieldsRequest {
                token_bound_cidrs: Some(vec![]),
                token_type: Some("batch".into()),
                token_no_default_policy: Some(true),
                ..Default::default()
            },
        });
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "bound_service_principal_ids": ["p"],
                "token_bound_cidrs": [],
                "token_type": "batch",
                "token_no_default_policy": true,
            })
        );
    }

    /// As OpenBao 2.x answers `GET auth/jwt/role/<name>` (the `data`).
    #[test]
    fn jwt_role_answer_decodes() {
        let r: JwtRole = serde_json::from_value(json!({
            "role_type": "jwt", "bound_audiences": ["api://vault"], "user_claim": "oid",
            "bound_claims_type": "string",
            "bound_claims": {"oid": "p", "tid": ["t"], "groups": ["a", "b"], "n": 3},
            "claim_mappings": null, "clock_skew_leeway": 0, "expiration_leeway": 0,
            "token_policies": ["orders"], "token_no_default_policy": false,
            "token_bound_cidrs": [], "token_ttl": 900, "token_max_ttl": 0,
            "token_type": "default", "token_period": 0, "token_num_uses": 0,
        }))
        .unwrap();
        assert_eq!(r.bound_audiences, ["api://vault"]);
        assert_eq!(r.user_claim.as_deref(), Some("oid"));
        assert_eq!(r.bound_claim("oid"), Some("p"));
        assert_eq!(r.bound_claim("tid"), Some("t"), "a list of one");
        assert_eq!(r.bound_claim("groups"), None, "several values");
        assert_eq!(r.bound_claim("n"), None, "not a string");
        assert_eq!(r.bound_claim("sub"), None);
        assert_eq!(r.token.token_ttl, 900);
        assert_eq!(r.token.token_type.as_deref(), Some("default"));
        assert_eq!(r.token.effective_policies(), ["orders", "default"]);
    }

    #[test]
    fn absent_and_null_fields_read_as_empty() {
        let r: JwtRole =
            serde_json::from_value(json!({"bound_claims": null, "user_claim": null})).unwrap();
        assert_eq!(r, JwtRole::default());
        assert_eq!(r.token.effective_policies(), ["default"]);
        let r: AzureRole = serde_json::from_value(json!({})).unwrap();
        assert_eq!(r, AzureRole::default());
    }

    /// Durations as strings and lists as comma-separated strings, as some servers answer.
    #[test]
    fn token_fields_in_other_forms() {
        let t: TokenFields = serde_json::from_value(json!({
            "token_policies": "orders, default", "token_no_default_policy": null,
            "token_bound_cidrs": "10.0.0.0/8", "token_ttl": "15m", "token_max_ttl": "1h",
        }))
        .unwrap();
        assert_eq!(t.token_policies, ["orders", "default"]);
        assert_eq!(t.token_bound_cidrs, ["10.0.0.0/8"]);
        assert_eq!((t.token_ttl, t.token_max_ttl), (900, 3600));
        assert_eq!(t.effective_policies(), ["orders", "default"]);
        let t: TokenFields = serde_json::from_value(
            json!({"token_policies": ["orders"], "token_no_default_policy": true}),
        )
        .unwrap();
        assert_eq!(t.effective_policies(), ["orders"]);
    }

    /// As HashiCorp Vault documents the answer of `GET auth/azure/role/<name>`.
    #[test]
    fn azure_role_answer_decodes() {
        let r: AzureRole = serde_json::from_value(json!({
            "bound_service_principal_ids": ["p"], "bound_group_ids": [],
            "bound_locations": [], "bound_subscription_ids": [],
            "bound_resource_groups": [], "bound_scale_sets": [],
            "token_policies": ["orders"], "token_ttl": 900, "token_max_ttl": 0,
            "token_bound_cidrs": [], "token_type": "default",
        }))
        .unwrap();
        assert_eq!(r.bound_service_principal_ids, ["p"]);
        assert_eq!(Role::Azure(r).token().token_ttl, 900);
    }

    /// Which roles let the identity `p` of tenant `t` log in.
    #[test]
    fn roles_that_admit_an_identity() {
        let jwt = |claims: Json| {
            Role::Jwt(serde_json::from_value(json!({ "bound_claims": claims })).unwrap())
        };
        assert!(jwt(json!({"oid": "p", "tid": "t"})).admits_identity("p", "t"));
        assert!(jwt(json!({"oid": ["x", "p"], "tid": ["t"]})).admits_identity("p", "t"));
        assert!(
            jwt(json!({"oid": "p"})).admits_identity("p", "t"),
            "no tenant bound: any tenant"
        );
        assert!(!jwt(json!({"oid": "p", "tid": "other"})).admits_identity("p", "t"));
        assert!(!jwt(json!({"oid": "x", "tid": "t"})).admits_identity("p", "t"));
        assert!(
            !jwt(json!({"tid": "t"})).admits_identity("p", "t"),
            "no object ID bound: not bound to an identity"
        );
        assert!(!jwt(json!({"oid": 3, "tid": "t"})).admits_identity("p", "t"));
        let azure = |ids: Json| {
            Role::Azure(
                serde_json::from_value(json!({ "bound_service_principal_ids": ids })).unwrap(),
            )
        };
        assert!(azure(json!(["x", "p"])).admits_identity("p", "t"));
        assert!(!azure(json!(["x"])).admits_identity("p", "t"));
    }

    #[test]
    fn a_wrong_type_is_a_decode_error() {
        let e = serde_json::from_value::<JwtRole>(json!({"token_ttl": "soon"})).unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
    }
}
