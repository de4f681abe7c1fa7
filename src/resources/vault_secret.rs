//! `apim_vault_secret` (ephemeral resource, Terraform >= 1.10): reads a secret for use in
//! provider configurations, provisioners and write-only arguments, without it ever reaching
//! plan or state.
//!
//! * Open reads the path: a KV version 2 secret (recognised through
//!   `sys/internal/ui/mounts/<path>`, so `secret/app` and `secret/data/app` both work, with an
//!   optional `version`), or any other readable path, e.g. `database/creds/<role>`, whose
//!   answer may carry a lease.
//! * A renewable lease gets a `renew_at` at two thirds of its duration; renew extends it
//!   (`sys/leases/renew`) for as long as Terraform keeps the value open.
//! * Close revokes the lease (`sys/leases/revoke`) unless `revoke_on_close = false`.
//!
//! The lease ID and duration travel in the ephemeral `private` bytes, which Terraform holds in
//! memory only. Terraform opens ephemeral resources in every phase that needs them (plan and
//! apply each open and close their own), so a dynamic secret is issued once per phase.

use super::vault_binding::grammar::dot_segment_problem;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clients::vault::{Vault, VaultError};
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::resource::{Ctx, EphemeralResource, Opened};
use crate::framework::schema::{validators, Attribute, Block, Schema};
use crate::framework::value::{Type, Value};
use crate::log;

use super::api_error;

const TYPE: &str = "apim_vault_secret";

/// Below this many seconds of lease left, renewing again is pointless.
const MIN_RENEWAL: u64 = 3;

/// The ephemeral resource.
pub struct VaultSecret;

/// What renew and close need, kept by Terraform between the calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Private {
    lease_id: String,
    /// The duration asked for on each renewal (the lease's original duration).
    lease_duration: u64,
    renewable: bool,
    revoke_on_close: bool,
}

impl Private {
    fn decode(bytes: &[u8], d: &mut Diags) -> Option<Private> {
        match serde_json::from_slice(bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                d.error(
                    format!("Invalid private data of {TYPE}"),
                    format!("Terraform handed back private data this provider did not write ({e}); the lease (if any) is left to expire on its own."),
                );
                None
            }
        }
    }
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// When to renew a lease of `seconds`: at two thirds of it, if it is worth renewing.
fn renew_time(seconds: u64) -> Option<SystemTime> {
    (seconds >= MIN_RENEWAL).then(|| SystemTime::now() + Duration::from_secs(seconds) * 2 / 3)
}

fn validate_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid path", |path| {
        let clean = path.trim_matches('/');
        if clean.is_empty() {
            Err("`path` is empty. Give the path of a secret, e.g. \"secret/orders/api\" (KV) or \"database/creds/orders\".".into())
        } else if let Some(rest) = clean.strip_prefix("v1/") {
            Err(format!(
                "`path` is {path:?}: give the API path without the `v1/` prefix, e.g. {rest:?}."
            ))
        } else if let Some(why) = dot_segment_problem(clean) {
            Err(format!("`path` is {path:?}: {why}. Give the path of the secret itself, e.g. \"secret/orders/api\"."))
        } else {
            Ok(())
        }
    });
}

fn validate_version(v: &Value, p: &AttrPath, d: &mut Diags) {
    if v.as_i64().is_none_or(|n| n < 1) {
        d.attr_error(
            p.clone(),
            "Invalid version",
            "`version` must be a whole number, 1 or more (a KV version 2 secret version). Leave it out to read the current version.",
        );
    }
}

/// A secret value as a string: strings as they are, anything else as JSON.
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The API path to read, and whether it is a KV version 2 secret.
pub(crate) async fn resolve(vault: &Vault, path: &str) -> Result<(String, bool), VaultError> {
    let clean = path.trim_matches('/');
    // A token that may not ask which mount serves the path reads it as given.
    let mount = match vault.mount_of(clean).await {
        Ok(m) => m,
        Err(e) if e.status() == Some(403) => None,
        Err(e) => return Err(e),
    };
    let Some(mount) = mount else {
        return Ok((clean.to_string(), false));
    };
    if !mount.is_kv_v2() {
        return Ok((clean.to_string(), false));
    }
    let mp = mount.path.trim_matches('/');
    match clean.strip_prefix(mp).map(|r| r.trim_start_matches('/')) {
        Some(rest) if rest.starts_with("data/") => Ok((clean.to_string(), true)),
        Some("") | None => Ok((clean.to_string(), true)),
        Some(rest) => Ok((format!("{mp}/data/{rest}"), true)),
    }
}

crate::model! {
    /// An `apim_vault_secret`; what Vault answers is null in the configuration.
    pub struct SecretModel, plan SecretPlan {
        /// `path`.
        pub path: String,
        /// `version` (configured, or the version read).
        pub version: Option<i64>,
        /// `revoke_on_close`.
        pub revoke_on_close: Option<bool>,
        /// `data`.
        pub data: Option<BTreeMap<String, String>>,
        /// `lease_id`.
        pub lease_id: Option<String>,
        /// `lease_duration`.
        pub lease_duration: Option<i64>,
        /// `renewable`.
        pub renewable: Option<bool>,
    }
}

#[async_trait]
impl EphemeralResource<ProviderData> for VaultSecret {
    type Model = SecretModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Reads a Vault secret as an ephemeral value (Terraform >= 1.10): for provider configurations, provisioners, `connection` blocks and write-only arguments, without the value ever being written to the plan or the state.\n\nA KV version 2 secret can be given as `secret/app` or `secret/data/app`; any other readable path works too, e.g. `database/creds/app`, whose credentials carry a lease. A renewable lease is renewed before it expires for as long as Terraform uses the value, and revoked when Terraform closes it (`revoke_on_close`). Terraform opens ephemeral resources in each phase that needs them, so plan and apply each read (and, for a dynamic secret, each obtain) their own.\n\nWith a Terraform older than 1.10 the `ephemeral` block itself is an error (\"Unsupported block type\"); the rest of the provider works as before. Terraform 1.11 and later also accept ephemeral values in write-only arguments.")
                    .attr(
                        Attribute::string("path")
                            .required()
                            .validate(validate_path)
                            .describe("The path to read, without `v1/`: a KV version 2 secret (`secret/app` or `secret/data/app`), a KV version 1 secret, or a dynamic secret such as `database/creds/app`. The provider's token needs `read` on it."),
                    )
                    .attr(
                        Attribute::number("version")
                            .optional_computed()
                            .validate(validate_version)
                            .describe("For a KV version 2 secret: the version to read (default: the current one, whose number is then reported here). An error for other engines."),
                    )
                    .attr(
                        Attribute::bool("revoke_on_close")
                            .default(true)
                            .describe("Revoke the lease when Terraform closes the ephemeral resource, at the end of each plan or apply. Set `false` to let the credentials live until their lease expires. Default `true`."),
                    )
                    .attr(
                        Attribute::of("data", Type::map_of(Type::String))
                            .computed()
                            .sensitive()
                            .describe("The secret's fields. For KV version 2, the fields of the secret (`data.data` in the API answer); for other engines, the answer's `data` (e.g. `username` and `password`). Values that are not strings are given as JSON."),
                    )
                    .attr(
                        Attribute::string("lease_id")
                            .computed()
                            .sensitive()
                            .describe("The lease ID; null when the secret has no lease (KV)."),
                    )
                    .attr(
                        Attribute::number("lease_duration")
                            .computed()
                            .sensitive()
                            .describe("The lease duration in seconds when read."),
                    )
                    .attr(
                        Attribute::bool("renewable")
                            .computed()
                            .sensitive()
                            .describe("Whether the lease is renewable; a renewable lease is renewed while Terraform uses the value."),
                    ),
            )
        })
    }

    async fn open(
        &self,
        ctx: &Ctx<ProviderData>,
        config: SecretModel,
        d: &mut Diags,
    ) -> Option<Opened<SecretModel>> {
        let vault = ctx.data(d)?.vault(d)?;
        let path = config.path.clone();
        let version = config.version;
        let revoke_on_close = config.revoke_on_close.unwrap_or(true);
        let (api_path, kv2) = match resolve(vault, &path).await {
            Ok(r) => r,
            Err(e) => {
                api_error(d, "read", TYPE, &format!("at {path:?}"), &e);
                return None;
            }
        };
        if version.is_some() && !kv2 {
            d.attr_error(
                AttrPath::root("version"),
                "Invalid version",
                format!("`version` applies to KV version 2 secrets only, and {path:?} is not on a KV version 2 mount. Remove `version`."),
            );
            return None;
        }
        let read = match vault.read_secret(&api_path, version).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                let which = version
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default();
                d.attr_error(
                    AttrPath::root("path"),
                    "Secret not found",
                    format!("Vault has no secret at {api_path:?}{which}. Check the path, the mount, and (for KV version 2) that the version exists and is not deleted."),
                );
                return None;
            }
            Err(e) if e.status() == Some(403) => {
                d.attr_error(
                    AttrPath::root("path"),
                    "Permission denied",
                    format!("Vault refused to read {api_path:?} with the provider's token ({e}). Grant `read` on that path in one of the token's policies:\n\n  path \"{api_path}\" {{\n    capabilities = [\"read\"]\n  }}"),
                );
                return None;
            }
            Err(e) => {
                api_error(d, "read", TYPE, &format!("at {api_path:?}"), &e);
                return None;
            }
        };

        let (fields, read_version) = read.fields(kv2);
        let data: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.clone(), as_text(v)))
            .collect();

        let leased = !read.lease_id.is_empty();
        let result = SecretModel {
            path: config.path,
            revoke_on_close: Some(revoke_on_close),
            version: version.or(read_version),
            data: Some(data),
            lease_id: leased.then(|| read.lease_id.clone()),
            lease_duration: Some(read.lease_duration as i64),
            renewable: Some(leased && read.renewable),
        };

        let private = Private {
            lease_id: read.lease_id.clone(),
            lease_duration: read.lease_duration,
            renewable: leased && read.renewable,
            revoke_on_close,
        };
        let renew_at = if private.renewable {
            renew_time(read.lease_duration)
        } else {
            None
        };
        log::debug(
            "Opened apim_vault_secret",
            &[
                ("path", api_path.as_str()),
                ("leased", if leased { "true" } else { "false" }),
                ("lease_duration", &read.lease_duration.to_string()),
            ],
        );
        Some(Opened {
            result,
            private: private.encode(),
            renew_at,
        })
    }

    async fn renew(
        &self,
        ctx: &Ctx<ProviderData>,
        private: &[u8],
        d: &mut Diags,
    ) -> (Vec<u8>, Option<SystemTime>) {
        let Some(p) = Private::decode(private, d) else {
            return (private.to_vec(), None);
        };
        if p.lease_id.is_empty() || !p.renewable {
            return (private.to_vec(), None);
        }
        let Some(vault) = ctx.data(d).and_then(|x| x.vault(d)) else {
            return (private.to_vec(), None);
        };
        match vault.renew_lease(&p.lease_id, Some(p.lease_duration)).await {
            Ok(r) => {
                log::debug(
                    "Renewed the lease of apim_vault_secret",
                    &[("lease_duration", &r.lease_duration.to_string())],
                );
                let next = if r.renewable {
                    renew_time(r.lease_duration)
                } else {
                    None
                };
                if next.is_none() {
                    d.warning(
                        "Lease of apim_vault_secret not renewable further",
                        format!("Vault extended the lease by {} seconds only (its maximum TTL is near, or it is no longer renewable). Credentials read from it stop working when it expires; raise the role's or mount's `max_ttl` if the run needs them longer.", r.lease_duration),
                    );
                }
                (private.to_vec(), next)
            }
            Err(e) => {
                d.error(
                    format!("Unable to renew the lease of {TYPE}"),
                    format!("Renewing the lease failed ({e}). If it expired or was revoked, credentials read from it no longer work; raise the lease's TTL so that it outlives the run."),
                );
                (private.to_vec(), None)
            }
        }
    }

    async fn close(&self, ctx: &Ctx<ProviderData>, private: &[u8], d: &mut Diags) {
        let Some(p) = Private::decode(private, d) else {
            return;
        };
        if p.lease_id.is_empty() || !p.revoke_on_close {
            return;
        }
        let Some(vault) = ctx.data(d).and_then(|x| x.vault(d)) else {
            return;
        };
        match vault.revoke_lease(&p.lease_id).await {
            Ok(()) => log::debug("Revoked the lease of apim_vault_secret", &[]),
            Err(e) => d.warning(
                format!("Unable to revoke the lease of {TYPE}"),
                format!("Revoking the lease failed ({e}); the credentials stay valid until the lease expires. The provider's token needs `update` on `sys/leases/revoke`."),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_data_round_trips() {
        let p = Private {
            lease_id: "database/creds/app/x".into(),
            lease_duration: 30,
            renewable: true,
            revoke_on_close: false,
        };
        let mut d = Diags::new();
        assert_eq!(Private::decode(&p.encode(), &mut d), Some(p));
        assert!(Private::decode(b"garbage", &mut d).is_none());
        assert!(d.has_errors());
    }

    #[test]
    fn short_leases_are_not_renewed_again() {
        assert!(renew_time(2).is_none());
        let at = renew_time(30).unwrap();
        let in_secs = at.duration_since(SystemTime::now()).unwrap().as_secs();
        assert!((19..=20).contains(&in_secs), "{in_secs}");
    }

    #[test]
    fn non_string_values_are_json() {
        assert_eq!(as_text(&serde_json::json!("x")), "x");
        assert_eq!(as_text(&serde_json::json!(3)), "3");
        assert_eq!(as_text(&serde_json::json!({"a": 1})), "{\"a\":1}");
    }
}
