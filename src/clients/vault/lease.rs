//! Leases and leased reads: `sys/leases/lookup` (PUT, and LIST under a prefix),
//! `sys/leases/renew`, `sys/leases/revoke`, reads of secrets (KV v2 or any engine that leases
//! what it returns, e.g. `database/creds/<role>`), and the mount of a path
//! (`sys/internal/ui/mounts/<path>`, to recognise KV v2).
//!
//! API reference: <https://developer.hashicorp.com/vault/api-docs/system/leases>
//! (OpenBao: <https://openbao.org/api-docs/system/leases/>).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::fields::or_default;
use super::path::segments;
use super::{json_body, Vault, VaultError};

/// One lease, as `sys/leases/lookup` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Lease {
    /// The lease ID, e.g. `database/creds/app/AbC...`.
    pub id: String,
    /// When the lease was created (RFC 3339).
    #[serde(default)]
    pub issue_time: Option<String>,
    /// When it expires (RFC 3339); `None` for a lease that does not expire.
    #[serde(default)]
    pub expire_time: Option<String>,
    /// When it was last renewed (RFC 3339); `None` when never.
    #[serde(default)]
    pub last_renewal: Option<String>,
    /// Seconds left.
    #[serde(default)]
    pub ttl: i64,
    /// Whether it can be renewed.
    #[serde(default)]
    pub renewable: bool,
}

#[derive(Deserialize)]
struct DataEnvelope<T> {
    data: Option<T>,
}

/// Body of `PUT sys/leases/lookup` and of `PUT sys/leases/revoke`: the lease. API reference:
/// <https://developer.hashicorp.com/vault/api-docs/system/leases#read-lease> and
/// <https://developer.hashicorp.com/vault/api-docs/system/leases#revoke-lease>.
#[derive(Serialize)]
struct LeaseRequest<'a> {
    lease_id: &'a str,
}

/// Body of `PUT sys/leases/renew`: the lease and the extension asked for (Vault's choice
/// when absent). API reference:
/// <https://developer.hashicorp.com/vault/api-docs/system/leases#renew-lease>.
#[derive(Serialize)]
struct RenewLeaseRequest<'a> {
    lease_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    increment: Option<u64>,
}

/// The answer of `sys/leases/renew`.
#[derive(Debug, Clone, Deserialize)]
pub struct Renewed {
    /// The lease ID.
    #[serde(default)]
    pub lease_id: String,
    /// Seconds granted from now.
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether it can be renewed again.
    #[serde(default)]
    pub renewable: bool,
}

/// What a read of a secret answers: its data and, for a leased secret, the lease. `Debug`
/// leaves the data out.
#[derive(Clone, Deserialize)]
pub struct SecretRead {
    /// Empty when the secret has no lease (KV).
    #[serde(default)]
    pub lease_id: String,
    /// Seconds.
    #[serde(default)]
    pub lease_duration: u64,
    /// Whether the lease can be renewed.
    #[serde(default)]
    pub renewable: bool,
    /// The secret (for KV v2: `{"data": {...}, "metadata": {...}}`).
    #[serde(default)]
    pub data: Option<Json>,
}

impl std::fmt::Debug for SecretRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRead")
            .field("lease_id", &self.lease_id)
            .field("lease_duration", &self.lease_duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// The `data` of a KV version 2 read (`GET <mount>/data/<path>`): the secret's fields and
/// its metadata. API reference:
/// <https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#read-secret-version>.
#[derive(Default, Deserialize)]
struct KvV2Data {
    #[serde(default, deserialize_with = "or_default")]
    data: Map<String, Json>,
    #[serde(default, deserialize_with = "or_default")]
    metadata: KvV2Metadata,
}

/// The metadata of a KV version 2 read (the fields used here).
#[derive(Default, Deserialize)]
struct KvV2Metadata {
    /// The version read.
    #[serde(default)]
    version: Option<i64>,
}

impl SecretRead {
    /// The secret's fields (empty when the answer has none) and, for a KV version 2 secret
    /// (`kv_v2`, whose `data` holds `data` and `metadata`), the version read.
    pub fn fields(&self, kv_v2: bool) -> (Map<String, Json>, Option<i64>) {
        let data = self.data.clone().unwrap_or(Json::Null);
        if kv_v2 {
            let kv: KvV2Data = serde_json::from_value(data).unwrap_or_default();
            (kv.data, kv.metadata.version)
        } else {
            match data {
                Json::Object(fields) => (fields, None),
                _ => (Map::new(), None),
            }
        }
    }
}

/// True when Vault's answer means "no such lease".
fn lease_gone(e: &VaultError) -> bool {
    match e {
        VaultError::Api { status, errors, .. } => {
            (*status == 400 || *status == 404)
                && errors.iter().any(|m| {
                    let m = m.to_ascii_lowercase();
                    m.contains("invalid lease") || m.contains("lease not found")
                })
        }
        _ => false,
    }
}

impl Vault {
    /// `PUT sys/leases/lookup`: the lease, or `None` when Vault knows no such lease
    /// ("invalid lease"). Read-only: it neither renews nor revokes.
    pub async fn lookup_lease(&self, lease_id: &str) -> Result<Option<Lease>, VaultError> {
        let body = json_body(&LeaseRequest { lease_id });
        match self
            .send::<DataEnvelope<Lease>>(Method::PUT, "sys/leases/lookup", Some(&body))
            .await
        {
            Ok(DataEnvelope { data: Some(l) }) => Ok(Some(l)),
            Ok(DataEnvelope { data: None }) => Err(VaultError::Decode {
                path: "sys/leases/lookup".into(),
                message: "no `data` in the answer".into(),
            }),
            Err(e) if lease_gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `LIST sys/leases/lookup/<prefix>/` (needs `list` and `sudo`): the keys directly under
    /// the prefix, sub-prefixes ending in `/`. Empty when there is nothing under it.
    pub async fn list_leases(&self, prefix: &str) -> Result<Vec<String>, VaultError> {
        let prefix = prefix.trim_matches('/');
        let path = if prefix.is_empty() {
            "sys/leases/lookup/".to_string()
        } else {
            format!("sys/leases/lookup/{}/", segments("lease prefix", prefix)?)
        };
        self.list(&path).await
    }

    /// `PUT sys/leases/renew`: extends the lease by `increment` seconds (Vault's choice when
    /// `None`), within the mount's and the lease's maximum TTL.
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Option<u64>,
    ) -> Result<Renewed, VaultError> {
        let body = json_body(&RenewLeaseRequest {
            lease_id,
            increment,
        });
        self.send(Method::PUT, "sys/leases/renew", Some(&body))
            .await
    }

    /// `PUT sys/leases/revoke`: revokes the lease (and what it grants, e.g. drops the
    /// database user). Success when the lease is already gone.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<(), VaultError> {
        let body = json_body(&LeaseRequest { lease_id });
        match self
            .send::<Json>(Method::PUT, "sys/leases/revoke", Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if lease_gone(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET <path>` (with `?version=<n>` when given): the secret and its lease, or `None`
    /// when there is nothing at that path.
    pub async fn read_secret(
        &self,
        path: &str,
        version: Option<i64>,
    ) -> Result<Option<SecretRead>, VaultError> {
        let path = segments("secret path", path)?;
        let full = match version {
            Some(v) => format!("{path}?version={v}"),
            None => path.to_string(),
        };
        match self
            .send::<Option<SecretRead>>(Method::GET, &full, None)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_answers_decode() {
        let body = r#"{"data":{"expire_time":"2026-11-30T01:07:44.000212765Z","id":"pki/issue/web/OSOf","issue_time":"2026-11-30T00:07:44.605917496Z","last_renewal":null,"path":"pki/issue/web","renewable":false,"ttl":3597}}"#;
        let l: DataEnvelope<Lease> = serde_json::from_str(body).unwrap();
        let l = l.data.unwrap();
        assert_eq!(l.id, "pki/issue/web/OSOf");
        assert_eq!(l.last_renewal, None);
        assert_eq!(l.ttl, 3597);
        assert!(!l.renewable);
    }

    #[test]
    fn request_bodies() {
        assert_eq!(
            json_body(&LeaseRequest {
                lease_id: "db/creds/app/x"
            }),
            serde_json::json!({"lease_id": "db/creds/app/x"})
        );
        assert_eq!(
            json_body(&RenewLeaseRequest {
                lease_id: "x",
                increment: Some(600)
            }),
            serde_json::json!({"lease_id": "x", "increment": 600})
        );
        assert_eq!(
            json_body(&RenewLeaseRequest {
                lease_id: "x",
                increment: None
            }),
            serde_json::json!({"lease_id": "x"})
        );
    }

    fn read(data: Json) -> SecretRead {
        serde_json::from_value(serde_json::json!({"lease_id": "", "data": data})).unwrap()
    }

    #[test]
    fn kv_v2_reads_give_fields_and_version() {
        let r = read(serde_json::json!({
            "data": {"password": "s3cr3t", "port": 5432},
            "metadata": {"version": 3, "created_time": "2026-01-01T00:00:00Z", "deletion_time": ""}
        }));
        let (fields, version) = r.fields(true);
        assert_eq!(fields["password"], "s3cr3t");
        assert_eq!(fields["port"], 5432);
        assert_eq!(version, Some(3));
        // Read as another engine's answer, the same data is two fields and no version.
        let (fields, version) = r.fields(false);
        assert_eq!(fields.len(), 2);
        assert_eq!(version, None);
        // A destroyed version answers `data: null`.
        let (fields, version) =
            read(serde_json::json!({"data": null, "metadata": {"version": 2}})).fields(true);
        assert!(fields.is_empty());
        assert_eq!(version, Some(2));
        assert_eq!(read(Json::Null).fields(false), (Map::new(), None));
        assert!(!format!("{r:?}").contains("s3cr3t"), "{r:?}");
    }

    #[test]
    fn gone_leases_are_recognised() {
        let e = VaultError::Api {
            status: 400,
            errors: vec!["invalid lease".into()],
            path: "sys/leases/lookup".into(),
        };
        assert!(lease_gone(&e));
        let e = VaultError::Api {
            status: 403,
            errors: vec!["permission denied".into()],
            path: "sys/leases/lookup".into(),
        };
        assert!(!lease_gone(&e));
    }
}
