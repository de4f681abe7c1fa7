//! Auth mounts and the JWT auth method: enable/tune/disable (`sys/auth`), configuration
//! (`auth/<mount>/config`) and roles (`auth/<mount>/role/<name>`).
//! API references: <https://developer.hashicorp.com/vault/api-docs/system/auth> and
//! <https://developer.hashicorp.com/vault/api-docs/auth/jwt>.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{Vault, VaultError};

/// An auth mount as `GET sys/auth/<path>` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthMount {
    /// Auth method type, e.g. `jwt`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Description ("" when none).
    #[serde(default)]
    pub description: String,
    /// Accessor, e.g. `auth_jwt_1234abcd`.
    #[serde(default)]
    pub accessor: String,
    /// Mount configuration.
    #[serde(default)]
    pub config: MountConfig,
}

/// TTLs of a mount (seconds; 0 = the system default).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MountConfig {
    /// Default lease TTL.
    #[serde(default)]
    pub default_lease_ttl: i64,
    /// Maximum lease TTL.
    #[serde(default)]
    pub max_lease_ttl: i64,
}

/// `POST sys/auth/<path>` body.
#[derive(Debug, Clone, Serialize)]
pub struct EnableAuth<'a> {
    /// Method type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Description.
    pub description: &'a str,
    /// TTLs.
    pub config: TuneMount,
}

/// `POST sys/auth/<path>/tune` body (also the `config` of an enable).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TuneMount {
    /// Default lease TTL in seconds (omitted: unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_lease_ttl: Option<i64>,
    /// Maximum lease TTL in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_lease_ttl: Option<i64>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The JWT auth method's configuration (`auth/<mount>/config`): where the signing keys come
/// from and which issuer tokens must carry. Exactly one key source is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtConfig {
    /// OIDC discovery base URL (without `.well-known`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oidc_discovery_url: String,
    /// CA (PEM) for the discovery URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub oidc_discovery_ca_pem: String,
    /// JWKS URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwks_url: String,
    /// CA (PEM) for the JWKS URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwks_ca_pem: String,
    /// Static public keys (PEM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_validation_pubkeys: Vec<String>,
    /// Required `iss`.
    #[serde(default)]
    pub bound_issuer: String,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

impl Vault {
    /// `GET sys/auth/<path>`: the mount, or `None` when nothing is mounted there.
    pub async fn read_auth_mount(&self, path: &str) -> Result<Option<AuthMount>, VaultError> {
        match self
            .send::<Data<AuthMount>>(Method::GET, &format!("sys/auth/{path}"), None)
            .await
        {
            Ok(d) => Ok(Some(d.data)),
            // Vault answers 400 "no matching mount" for an unknown path; 404 on some versions.
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST sys/auth/<path>`: enables an auth method. When a retry is refused because the
    /// path is in use by a mount of the requested type and description, an earlier attempt
    /// whose answer was lost enabled it: that counts as success.
    pub async fn enable_auth(&self, path: &str, req: &EnableAuth<'_>) -> Result<(), VaultError> {
        let body = serde_json::to_value(req).unwrap_or_default();
        self.create_once(Method::POST, &format!("sys/auth/{path}"), &body, || async {
            Ok(self
                .read_auth_mount(path)
                .await?
                .is_some_and(|m| m.kind == req.kind && m.description == req.description))
        })
        .await
    }

    /// `POST sys/auth/<path>/tune`.
    pub async fn tune_auth(&self, path: &str, req: &TuneMount) -> Result<(), VaultError> {
        let body = serde_json::to_value(req).unwrap_or_default();
        self.send::<Json>(Method::POST, &format!("sys/auth/{path}/tune"), Some(&body))
            .await
            .map(|_| ())
    }

    /// `DELETE sys/auth/<path>`; success when nothing is mounted there.
    pub async fn disable_auth(&self, path: &str) -> Result<(), VaultError> {
        match self
            .send::<Json>(Method::DELETE, &format!("sys/auth/{path}"), None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `GET auth/<mount>/config`; `None` before the method is configured.
    pub async fn read_jwt_config(&self, mount: &str) -> Result<Option<JwtConfig>, VaultError> {
        match self
            .send::<Option<Data<JwtConfig>>>(Method::GET, &format!("auth/{mount}/config"), None)
            .await
        {
            Ok(d) => Ok(d.map(|d| d.data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST auth/<mount>/config`. Vault fetches the discovery document or JWKS while
    /// saving, so an unreachable URL fails here.
    pub async fn write_jwt_config(&self, mount: &str, cfg: &JwtConfig) -> Result<(), VaultError> {
        // Unset key sources are sent empty so that switching sources clears the old one.
        let mut body = serde_json::to_value(cfg).unwrap_or_default();
        if let Some(m) = body.as_object_mut() {
            for k in [
                "oidc_discovery_url",
                "oidc_discovery_ca_pem",
                "jwks_url",
                "jwks_ca_pem",
            ] {
                m.entry(k).or_insert(Json::String(String::new()));
            }
            m.entry("jwt_validation_pubkeys")
                .or_insert(Json::Array(Vec::new()));
        }
        self.send::<Json>(Method::POST, &format!("auth/{mount}/config"), Some(&body))
            .await
            .map(|_| ())
    }

    /// `GET auth/<mount>/role/<name>` as raw JSON fields; `None` when there is no such role.
    pub async fn read_auth_role(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Json>>, VaultError> {
        match self
            .send::<Option<Data<BTreeMap<String, Json>>>>(
                Method::GET,
                &format!("auth/{mount}/role/{name}"),
                None,
            )
            .await
        {
            Ok(d) => Ok(d.map(|d| d.data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST auth/<mount>/role/<name>` with the given fields.
    pub async fn write_auth_role(
        &self,
        mount: &str,
        name: &str,
        fields: &Json,
    ) -> Result<(), VaultError> {
        self.send::<Json>(
            Method::POST,
            &format!("auth/{mount}/role/{name}"),
            Some(fields),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE auth/<mount>/role/<name>`; success when it is already gone.
    pub async fn delete_auth_role(&self, mount: &str, name: &str) -> Result<(), VaultError> {
        match self
            .send::<Json>(Method::DELETE, &format!("auth/{mount}/role/{name}"), None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}
