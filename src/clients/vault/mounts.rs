//! Secret mounts: which mount serves a path (`sys/internal/ui/mounts/<path>`) and its
//! effective TTLs (`sys/mounts/<mount>/tune`).
//! API reference: <https://developer.hashicorp.com/vault/api-docs/system/mounts>.

use reqwest::Method;
use serde::Deserialize;

use super::fields::Data;
use super::path::{segment, segments};
use super::{Vault, VaultError};

/// The mount serving a path.
#[derive(Debug, Clone, Deserialize)]
pub struct MountInfo {
    /// Engine type, e.g. `kv`, `database`, `pki`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Mount path with a trailing `/`.
    pub path: String,
    /// Engine options (`version` for kv).
    #[serde(default)]
    pub options: Option<std::collections::BTreeMap<String, String>>,
}

impl MountInfo {
    /// KV version 2 (its reads answer `data.data`).
    pub fn is_kv_v2(&self) -> bool {
        self.kind == "kv"
            && self
                .options
                .as_ref()
                .and_then(|o| o.get("version"))
                .is_some_and(|v| v == "2")
    }
    /// Whether reads hand out leases: every engine but KV and cubbyhole, and a KV version 1
    /// mount with `leased_passthrough` (its reads carry the stored `ttl` as a lease).
    pub fn is_leased(&self) -> bool {
        let passthrough = self
            .options
            .as_ref()
            .and_then(|o| o.get("leased_passthrough"))
            .is_some_and(|v| v == "true");
        match self.kind.as_str() {
            "kv" | "generic" => passthrough && !self.is_kv_v2(),
            "cubbyhole" => false,
            _ => true,
        }
    }
}

#[derive(Deserialize)]
struct Tune {
    default_lease_ttl: i64,
}

/// The TTLs of a database or PKI role (`GET <mount>roles/<name>`); durations as seconds or
/// strings, absent as 0.
#[derive(Deserialize)]
struct EngineRole {
    /// Database roles.
    #[serde(default, deserialize_with = "super::fields::seconds")]
    default_ttl: i64,
    /// PKI roles.
    #[serde(default, deserialize_with = "super::fields::seconds")]
    ttl: i64,
    /// Both: the most a lease may last, which caps the default.
    #[serde(default, deserialize_with = "super::fields::seconds")]
    max_ttl: i64,
}

impl EngineRole {
    /// The lease its secrets get: the role's default (or `mount_default` where it sets
    /// none), never more than its `max_ttl` when it sets one.
    fn lease_ttl(&self, mount_default: Option<i64>) -> Option<i64> {
        let base = match self.default_ttl.max(self.ttl) {
            0 => mount_default?,
            ttl => ttl,
        };
        Some(match self.max_ttl {
            0 => base,
            max => base.min(max),
        })
    }
}

impl Vault {
    /// `GET sys/internal/ui/mounts/<path>`: the mount serving `path`, or `None` when no
    /// mount does.
    pub async fn mount_of(&self, path: &str) -> Result<Option<MountInfo>, VaultError> {
        match self
            .send::<Data<MountInfo>>(
                Method::GET,
                &format!("sys/internal/ui/mounts/{}", segments("secret path", path)?),
                None,
            )
            .await
        {
            Ok(d) => Ok(Some(d.data)),
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET sys/mounts/<mount>/tune`: the effective default lease TTL in seconds.
    pub async fn default_lease_ttl(&self, mount: &str) -> Result<i64, VaultError> {
        let t: Data<Tune> = self
            .send(
                Method::GET,
                &format!("sys/mounts/{}/tune", segments("mount path", mount)?),
                None,
            )
            .await?;
        Ok(t.data.default_lease_ttl)
    }

    /// `GET sys/auth/<path>/tune`: the effective default TTL of an auth mount's tokens in
    /// seconds (the system default when the mount sets none).
    pub async fn auth_default_ttl(&self, path: &str) -> Result<i64, VaultError> {
        let t: Data<Tune> = self
            .send(
                Method::GET,
                &format!("sys/auth/{}/tune", segments("auth mount path", path)?),
                None,
            )
            .await?;
        Ok(t.data.default_lease_ttl)
    }

    /// The lease TTL a leased secret at `path` gets from its engine's role: a database role
    /// (`<mount>creds/<role>`: its `default_ttl`) or a PKI role (`<mount>issue/<role>`: its
    /// `ttl`); the mount's default where the role sets none; capped by the role's `max_ttl`.
    /// `None` for other engines and paths, or when the role cannot be read.
    pub async fn engine_role_ttl(&self, mount: &MountInfo, path: &str) -> Option<i64> {
        let rest = path.strip_prefix(mount.path.as_str())?;
        let role = match mount.kind.as_str() {
            "database" => rest.strip_prefix("creds/")?,
            "pki" => rest.strip_prefix("issue/")?,
            _ => return None,
        };
        if role.is_empty() || role.contains('/') {
            return None;
        }
        let r: Data<EngineRole> = self
            .send(
                Method::GET,
                &format!(
                    "{}/roles/{}",
                    segments("mount path", &mount.path).ok()?,
                    segment("role name", role).ok()?
                ),
                None,
            )
            .await
            .ok()?;
        let mount_default = if r.data.default_ttl.max(r.data.ttl) == 0 {
            self.default_lease_ttl(&mount.path).await.ok()
        } else {
            None
        };
        r.data.lease_ttl(mount_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_v2_mounts_are_recognised() {
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"secret/","type":"kv","options":{"version":"2"}}"#)
                .unwrap();
        assert!(m.is_kv_v2());
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"pki/","type":"pki","options":null}"#).unwrap();
        assert!(!m.is_kv_v2());
    }

    #[test]
    fn a_role_max_ttl_caps_its_lease() {
        let role = |j: &str| serde_json::from_str::<EngineRole>(j).unwrap();
        // A database role whose `max_ttl` is below its default issues leases of `max_ttl`.
        let r = role(r#"{"default_ttl":120,"max_ttl":4}"#);
        assert_eq!(r.lease_ttl(None), Some(4));
        assert_eq!(
            role(r#"{"default_ttl":"2m","max_ttl":"1h"}"#).lease_ttl(None),
            Some(120)
        );
        // PKI's `ttl`, and the mount's default where the role sets none, capped the same way.
        assert_eq!(
            role(r#"{"ttl":"30s","max_ttl":"10s"}"#).lease_ttl(None),
            Some(10)
        );
        assert_eq!(role(r#"{"max_ttl":60}"#).lease_ttl(Some(3600)), Some(60));
        assert_eq!(role(r#"{}"#).lease_ttl(Some(3600)), Some(3600));
        assert_eq!(role(r#"{}"#).lease_ttl(None), None);
    }

    #[test]
    fn leased_engines() {
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"database/","type":"database"}"#).unwrap();
        assert!(m.is_leased());
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"kv/","type":"kv","options":{"version":"1"}}"#)
                .unwrap();
        assert!(!m.is_leased());
        let m: MountInfo = serde_json::from_str(
            r#"{"path":"kv/","type":"kv","options":{"version":"1","leased_passthrough":"true"}}"#,
        )
        .unwrap();
        assert!(m.is_leased());
    }
}
