//! Secret mounts: which mount serves a path (`sys/internal/ui/mounts/<path>`) and its
//! effective TTLs (`sys/mounts/<mount>/tune`).
//! API reference: <https://developer.hashicorp.com/vault/api-docs/system/mounts>.

use reqwest::Method;
use serde::Deserialize;

use super::fields::Data;
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
    /// Whether reads hand out leases (every engine but KV and cubbyhole).
    pub fn is_leased(&self) -> bool {
        !matches!(self.kind.as_str(), "kv" | "generic" | "cubbyhole")
    }
}

#[derive(Deserialize)]
struct Tune {
    default_lease_ttl: i64,
}

impl Vault {
    /// `GET sys/internal/ui/mounts/<path>`: the mount serving `path`, or `None` when no
    /// mount does.
    pub async fn mount_of(&self, path: &str) -> Result<Option<MountInfo>, VaultError> {
        match self
            .send::<Data<MountInfo>>(Method::GET, &format!("sys/internal/ui/mounts/{path}"), None)
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
                &format!("sys/mounts/{}/tune", mount.trim_end_matches('/')),
                None,
            )
            .await?;
        Ok(t.data.default_lease_ttl)
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
    fn leased_engines() {
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"database/","type":"database"}"#).unwrap();
        assert!(m.is_leased());
        let m: MountInfo =
            serde_json::from_str(r#"{"path":"kv/","type":"kv","options":{"version":"1"}}"#)
                .unwrap();
        assert!(!m.is_leased());
    }
}
