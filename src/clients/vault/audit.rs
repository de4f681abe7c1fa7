//! Audit devices: `sys/audit` (list), `sys/audit/<path>` (enable, disable).
//! API reference: <https://developer.hashicorp.com/vault/api-docs/system/audit>
//! (OpenBao: <https://openbao.org/api-docs/system/audit/>).
//!
//! Vault has no update for an audit device: it is enabled once with its options and disabled.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::path::segments;
use super::{json_body, Vault, VaultError};

/// One enabled audit device, as `GET sys/audit` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditDevice {
    /// `file`, `socket`, `syslog` (or another type the server knows).
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-friendly description (`""` when none was given).
    #[serde(default)]
    pub description: String,
    /// Local to this cluster (not replicated).
    #[serde(default)]
    pub local: bool,
    /// The device's options, as the server reports them back.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The mount path with a trailing `/`, e.g. `to-siem/` (absent on old servers: the map
    /// key is used instead).
    #[serde(default)]
    pub path: String,
}

/// The answer of `GET sys/audit`: every enabled device keyed by its path with a trailing
/// `/`, under `data` (and, for compatibility, at the top level as well).
#[derive(Debug, Deserialize)]
struct ListAuditResponse {
    #[serde(default)]
    data: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(flatten)]
    top: BTreeMap<String, serde_json::Value>,
}

/// The body of `PUT sys/audit/<path>`.
#[derive(Debug, Clone, Serialize)]
pub struct EnableAuditRequest<'a> {
    /// Device type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Description.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
    /// Local to this cluster.
    pub local: bool,
    /// Device options (all values are strings, e.g. `log_raw = "false"`).
    pub options: &'a BTreeMap<String, String>,
}

/// The path as Vault keys it (no leading or trailing `/`).
fn clean(path: &str) -> &str {
    path.trim_matches('/')
}

/// `sys/audit/<path>`, the device path percent-encoded segment by segment.
fn device_path(path: &str) -> Result<String, VaultError> {
    Ok(format!(
        "sys/audit/{}",
        segments("audit device path", path)?
    ))
}

impl Vault {
    /// GET `sys/audit` (requires `sudo`): every enabled audit device by path, without the
    /// trailing `/`.
    pub async fn list_audit_devices(&self) -> Result<BTreeMap<String, AuditDevice>, VaultError> {
        let path = "sys/audit";
        let resp: ListAuditResponse = self.send(Method::GET, path, None).await?;
        // Devices are objects with a `type`; the envelope's own fields are not.
        let raw = match resp.data {
            Some(d) => d,
            None => resp.top,
        };
        let mut out = BTreeMap::new();
        for (key, v) in raw {
            if v.get("type").and_then(serde_json::Value::as_str).is_none() {
                continue;
            }
            let mut dev: AuditDevice =
                serde_json::from_value(v).map_err(|e| VaultError::Decode {
                    path: path.to_string(),
                    message: format!("audit device {key:?}: {e}"),
                })?;
            if dev.path.is_empty() {
                dev.path = key.clone();
            }
            out.insert(clean(&key).to_string(), dev);
        }
        Ok(out)
    }

    /// The audit device at `path`, or `None` when there is none (read through the list:
    /// Vault has no endpoint for one device).
    pub async fn read_audit_device(&self, path: &str) -> Result<Option<AuditDevice>, VaultError> {
        Ok(self.list_audit_devices().await?.remove(clean(path)))
    }

    /// PUT `sys/audit/<path>` (requires `sudo`): enables a device. Vault answers 400 when
    /// the path is in use, the options are invalid, the device's test message cannot be
    /// delivered, or (OpenBao's default) API-created audit devices are not allowed.
    pub async fn enable_audit_device(
        &self,
        path: &str,
        req: &EnableAuditRequest<'_>,
    ) -> Result<(), VaultError> {
        let body = json_body(req);
        // A retry refused because an earlier attempt, whose answer was lost, enabled it.
        self.create_once(Method::PUT, &device_path(path)?, &body, || async {
            Ok(self
                .read_audit_device(path)
                .await?
                .is_some_and(|d| d.kind == req.kind && d.description == req.description))
        })
        .await
    }

    /// DELETE `sys/audit/<path>` (requires `sudo`): disables a device; success when there
    /// is none. Its HMAC salt goes with it: a device enabled again at the same path hashes
    /// differently.
    pub async fn disable_audit_device(&self, path: &str) -> Result<(), VaultError> {
        match self
            .send::<serde_json::Value>(Method::DELETE, &device_path(path)?, None)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// True when Vault refused an API-created audit device by policy (OpenBao's default:
/// "cannot enable audit device via API; use declarative, config-based audit device
/// management instead"), as opposed to a problem with the device's options.
pub fn is_api_creation_forbidden(e: &VaultError) -> bool {
    match e {
        VaultError::Api { errors, .. } => errors.iter().any(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("declarative") || m.contains("audit device via api")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_answer_decodes_from_data_with_paths_without_slash() {
        let body = serde_json::json!({
            "request_id": "x", "lease_id": "", "renewable": false,
            "data": {
                "team/siem/": {"type": "socket", "description": "", "local": false,
                    "options": {"address": "127.0.0.1:9090"}, "path": "team/siem/"}
            },
            "team/siem/": {"type": "socket"}
        });
        let r: ListAuditResponse = serde_json::from_value(body).unwrap();
        let d = r.data.unwrap();
        assert!(d.contains_key("team/siem/"));
        assert_eq!(clean("/team/siem/"), "team/siem");
    }

    #[test]
    fn forbidden_is_told_apart_from_bad_options() {
        let forbidden = VaultError::Api {
            status: 400,
            errors: vec!["cannot enable audit device via API; use declarative, config-based audit device management instead".into()],
            path: "sys/audit/x".into(),
        };
        let bad = VaultError::Api {
            status: 400,
            errors: vec!["file_path is required".into()],
            path: "sys/audit/x".into(),
        };
        assert!(is_api_creation_forbidden(&forbidden));
        assert!(!is_api_creation_forbidden(&bad));
    }
}
