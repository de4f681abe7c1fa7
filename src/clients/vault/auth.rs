//! Auth mounts and the JWT auth method: enable/tune/disable (`sys/auth`) and configuration
//! (`auth/<mount>/config`). Roles are in `role.rs`.
//! API references: <https://developer.hashicorp.com/vault/api-docs/system/auth> and
//! <https://developer.hashicorp.com/vault/api-docs/auth/jwt>.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::fields::{or_default, Data};
use super::path::segments;
use super::{json_body, Vault, VaultError};

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

/// The JWT auth method's configuration: the `data` of `GET auth/<mount>/config` and the body
/// of `POST auth/<mount>/config` (API reference:
/// <https://developer.hashicorp.com/vault/api-docs/auth/jwt#configure>): where the signing
/// keys come from and which issuer tokens must carry. Exactly one key source is set; the
/// others are written empty, so that switching sources clears the old one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JwtConfig {
    /// OIDC discovery base URL (without `.well-known`).
    #[serde(default, deserialize_with = "or_default")]
    pub oidc_discovery_url: String,
    /// CA (PEM) for the discovery URL.
    #[serde(default, deserialize_with = "or_default")]
    pub oidc_discovery_ca_pem: String,
    /// JWKS URL.
    #[serde(default, deserialize_with = "or_default")]
    pub jwks_url: String,
    /// CA (PEM) for the JWKS URL.
    #[serde(default, deserialize_with = "or_default")]
    pub jwks_ca_pem: String,
    /// Static public keys (PEM).
    #[serde(default, deserialize_with = "or_default")]
    pub jwt_validation_pubkeys: Vec<String>,
    /// Required `iss`.
    #[serde(default, deserialize_with = "or_default")]
    pub bound_issuer: String,
}

/// `sys/auth/<path>`, the mount path percent-encoded segment by segment.
fn mount_path(path: &str) -> Result<String, VaultError> {
    Ok(format!("sys/auth/{}", segments("auth mount path", path)?))
}

/// `auth/<mount>/config`.
fn config_path(mount: &str) -> Result<String, VaultError> {
    Ok(format!(
        "auth/{}/config",
        segments("auth mount path", mount)?
    ))
}

impl Vault {
    /// `GET sys/auth`: every enabled auth mount by path, without the trailing `/`.
    /// API reference: <https://openbao.org/api-docs/system/auth/#list-auth-methods>.
    pub async fn list_auth_mounts(
        &self,
    ) -> Result<std::collections::BTreeMap<String, AuthMount>, VaultError> {
        let path = "sys/auth";
        let resp: Data<std::collections::BTreeMap<String, Json>> =
            self.send(Method::GET, path, None).await?;
        let mut out = std::collections::BTreeMap::new();
        for (key, v) in resp.data {
            // Mounts are objects with a `type`; nothing else is.
            if v.get("type").and_then(Json::as_str).is_none() {
                continue;
            }
            let mount: AuthMount = serde_json::from_value(v).map_err(|e| VaultError::Decode {
                path: path.to_string(),
                message: format!("auth mount {key:?}: {e}"),
            })?;
            out.insert(key.trim_end_matches('/').to_string(), mount);
        }
        Ok(out)
    }

    /// `GET sys/auth/<path>`: the mount, or `None` when nothing is mounted there.
    pub async fn read_auth_mount(&self, path: &str) -> Result<Option<AuthMount>, VaultError> {
        match self
            .send::<Data<AuthMount>>(Method::GET, &mount_path(path)?, None)
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
        let body = json_body(req);
        self.create_once(Method::POST, &mount_path(path)?, &body, || async {
            Ok(self
                .read_auth_mount(path)
                .await?
                .is_some_and(|m| m.kind == req.kind && m.description == req.description))
        })
        .await
    }

    /// `POST sys/auth/<path>/tune`.
    pub async fn tune_auth(&self, path: &str, req: &TuneMount) -> Result<(), VaultError> {
        let body = json_body(req);
        self.send::<Json>(
            Method::POST,
            &format!("{}/tune", mount_path(path)?),
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE sys/auth/<path>`; success when nothing is mounted there.
    pub async fn disable_auth(&self, path: &str) -> Result<(), VaultError> {
        match self
            .send::<Json>(Method::DELETE, &mount_path(path)?, None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `GET auth/<mount>/config`; `None` before the method is configured.
    pub async fn read_jwt_config(&self, mount: &str) -> Result<Option<JwtConfig>, VaultError> {
        match self
            .send::<Option<Data<JwtConfig>>>(Method::GET, &config_path(mount)?, None)
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
        let body = json_body(cfg);
        self.send::<Json>(Method::POST, &config_path(mount)?, Some(&body))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jwt_config_writes_every_key_source() {
        let cfg = JwtConfig {
            oidc_discovery_url: "https://login.microsoftonline.com/t/v2.0".into(),
            bound_issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&cfg).unwrap(),
            json!({
                "oidc_discovery_url": "https://login.microsoftonline.com/t/v2.0",
                "oidc_discovery_ca_pem": "",
                "jwks_url": "",
                "jwks_ca_pem": "",
                "jwt_validation_pubkeys": [],
                "bound_issuer": "https://login.microsoftonline.com/t/v2.0",
            })
        );
    }

    #[test]
    fn jwt_config_reads_null_and_absent_as_empty() {
        let cfg: JwtConfig = serde_json::from_value(json!({
            "jwks_url": "https://keys", "jwt_validation_pubkeys": null,
            "oidc_discovery_url": null, "jwt_supported_algs": [],
        }))
        .unwrap();
        assert_eq!(
            cfg,
            JwtConfig {
                jwks_url: "https://keys".into(),
                ..Default::default()
            }
        );
    }
}
