//! `apim_vault_rotate` (action, Terraform 1.14+): rotates a secret that bindings serve, and
//! makes the gateway serve the new value on the next request instead of when its cache
//! expires.
//!
//! 1. Vault: writes a new version of a KV version 2 secret from `kv.data` (write-only, so it
//!    may be an ephemeral value), or rotates a database static role (`POST
//!    <mount>/rotate-role/<name>`).
//! 2. APIM: on every API of the instance (or those of `api_ids`), bumps the rotation
//!    generation of the bindings whose `secret_path` is the secret (the KV data path, or
//!    `<mount>/static-creds/<name>`). The generation is kept in the binding's record in the
//!    managed block and is part of the cache key, apart from the `rotation` a user sets: the
//!    binding's state does not show it, so the next plan is empty. The edit goes through the
//!    same per-API queue and ETag as the bindings' own edits (`vault_binding::apim`).
//!
//! It reports what it did (the version written, the bindings bumped on which APIs), never a
//! value. A secret no binding reads is a warning; a failure after the secret was written says
//! what was done, what was not, and to run the action again.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::azure::id::ServiceId;
use crate::clients::azure::AzureError;
use crate::context::ProviderData;
use crate::framework::action::{Action, Progress};
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::model::Known;
use crate::framework::resource::Ctx;
use crate::framework::schema::{validators, Attribute, Block, Constraint, NestedBlock, Schema};
use crate::framework::value::{Type, Value};

use super::vault_binding::grammar::{
    validate_secret_path, validate_service_id, validate_vault_name,
};
use super::vault_binding::{api_name, bump_generation};
use super::vault_secret::resolve;

const TYPE: &str = "apim_vault_rotate";

/// The action.
pub struct VaultRotate;

crate::model! {
    /// The `config` of an `apim_vault_rotate` action.
    pub struct RotateModel, plan RotatePlan {
        /// `api_management_id`.
        pub api_management_id: String,
        /// `api_ids`: only these APIs' bindings are bumped (all APIs when null).
        pub api_ids: Option<Vec<String>>,
        /// The `kv` block.
        pub kv: Option<KvBlock>,
        /// The `database_static_role` block.
        pub database_static_role: Option<StaticRoleBlock>,
    }
}

crate::model! {
    /// `kv`: a new version of a KV version 2 secret.
    pub struct KvBlock, plan KvBlockPlan {
        /// `path`: the secret's data path, e.g. `kv/data/orders/backend`.
        pub path: String,
        /// `data`: the new version's fields (write-only).
        pub data: BTreeMap<String, String>,
    }
}

crate::model! {
    /// `database_static_role`: a database static role's password rotated.
    pub struct StaticRoleBlock, plan StaticRoleBlockPlan {
        /// `mount`: the database secrets engine's mount path.
        pub mount: String,
        /// `name`: the static role.
        pub name: String,
    }
}

/// A secrets engine's mount path: segments of letters, digits, `_`, `-` and `.` separated by
/// single `/`.
fn validate_engine_mount(v: &Value, p: &AttrPath, d: &mut Diags) {
    validators::string(v, p, d, "Invalid mount path", |s| {
        let ok = !s.is_empty()
            && s.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
        if ok {
            Ok(())
        } else {
            Err(format!("`{p}` is {s:?}. A mount path is segments of letters, digits, `_`, `-` and `.` separated by single `/`, without a leading or trailing `/`, e.g. \"database\"."))
        }
    });
}

/// What was rotated: the path bindings read it at, and what the report calls it.
struct Rotated {
    /// The API path bindings read (`secret_path`).
    read_path: String,
    /// What was done, for the report.
    done: String,
}

/// The bindings bumped on one API.
struct Bumped {
    api: String,
    bindings: Vec<String>,
}

/// "orders, billing".
fn names(apis: &[String]) -> String {
    apis.join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The progress line after the bumps.
fn bumped_line(bumped: &[Bumped]) -> String {
    let bindings: usize = bumped.iter().map(|b| b.bindings.len()).sum();
    let apis: Vec<String> = bumped.iter().map(|b| b.api.clone()).collect();
    format!(
        "bumped the rotation generation of {} on {} ({})",
        plural(bindings, "binding", "bindings"),
        plural(apis.len(), "API", "APIs"),
        names(&apis)
    )
}

impl VaultRotate {
    /// Step 1: the new secret in Vault.
    async fn rotate_in_vault(
        &self,
        data: &ProviderData,
        config: &RotateModel,
        d: &mut Diags,
    ) -> Option<Rotated> {
        let vault = data.vault(d)?;
        if let Some(kv) = &config.kv {
            let path = match resolve(vault, &kv.path).await {
                Ok((path, true)) => path,
                Ok((_, false)) => {
                    d.attr_error(
                        AttrPath::root("kv").attr("path"),
                        format!("Unable to run {TYPE}"),
                        format!("`kv.path` is {:?}, which is not on a KV version 2 mount (or the provider's token may not read `sys/internal/ui/mounts/{}`). Give the data path of a KV version 2 secret, e.g. \"kv/data/orders/backend\"; for a database static role use `database_static_role`. Nothing was written.", kv.path, kv.path.trim_matches('/')),
                    );
                    return None;
                }
                Err(e) => {
                    d.error(
                        format!("Unable to run {TYPE}"),
                        format!(
                            "Finding the mount of {:?}: {e}. Nothing was written.",
                            kv.path
                        ),
                    );
                    return None;
                }
            };
            return match vault.write_kv_v2(&path, &kv.data).await {
                Ok(version) => Some(Rotated {
                    done: format!("wrote version {version} of {path}"),
                    read_path: path,
                }),
                Err(e) => {
                    d.error(
                        format!("Unable to run {TYPE}"),
                        format!("Writing a new version of {path}: {e}. Nothing was written, and no binding was bumped."),
                    );
                    None
                }
            };
        }
        let role = config.database_static_role.as_ref()?;
        let mount = role.mount.trim_matches('/');
        match vault.rotate_static_role(mount, &role.name).await {
            Ok(()) => Some(Rotated {
                done: format!(
                    "rotated the password of database static role {:?} on {mount}",
                    role.name
                ),
                read_path: format!("{mount}/static-creds/{}", role.name),
            }),
            Err(e) => {
                d.error(
                    format!("Unable to run {TYPE}"),
                    format!(
                        "Rotating database static role {:?} on {mount}: {e}. Nothing was rotated, and no binding was bumped.",
                        role.name
                    ),
                );
                None
            }
        }
    }
}

#[async_trait]
impl Action<ProviderData> for VaultRotate {
    type Model = RotateModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("Rotates a secret that `apim_vault_binding`s serve, and makes the gateway serve the new value on the next request instead of when its cache expires. It writes a new version of a KV version 2 secret from `kv.data` (write-only: an ephemeral value is welcome), or rotates a database static role; then, on every API of the instance (or those of `api_ids`), it bumps the rotation generation of the bindings whose `secret_path` is that secret. The generation is part of the cache key, kept in the managed block apart from the `rotation` attribute: the bindings' plans stay empty. Run it with `terraform apply -invoke=action.apim_vault_rotate.<name>`, or from a resource's `lifecycle { action_trigger { ... } }`. It reports what it did, never the value.")
                    .attr(Attribute::string("api_management_id").required().validate(validate_service_id).describe("ARM ID of the API Management instance whose bindings serve the secret."))
                    .attr(Attribute::of("api_ids", Type::list_of(Type::String)).describe("Only these APIs' bindings are bumped (names, or ARM IDs). Default: every API of the instance."))
                    .block(
                        NestedBlock::single(
                            "kv",
                            Block::new("A new version of a KV version 2 secret.")
                                .attr(Attribute::string("path").required().validate(validate_secret_path).describe("The secret's path as bindings read it: its data path, e.g. `kv/data/orders/backend` (`kv/orders/backend` is taken as the same secret)."))
                                .attr(Attribute::of("data", Type::map_of(Type::String)).required().sensitive().write_only().describe("The fields of the new version (all of them: KV version 2 writes a whole version). Write-only: never in plan or state, and it may be an ephemeral value.")),
                        ),
                    )
                    .block(
                        NestedBlock::single(
                            "database_static_role",
                            Block::new("A database static role whose password Vault rotates now (`POST <mount>/rotate-role/<name>`); bindings reading `<mount>/static-creds/<name>` are bumped.")
                                .attr(Attribute::string("mount").required().validate(validate_engine_mount).describe("Mount path of the database secrets engine, e.g. `database`."))
                                .attr(Attribute::string("name").required().validate(validate_vault_name).describe("The static role's name.")),
                        ),
                    )
                    .constraint(Constraint::ExactlyOneOf(&["kv", "database_static_role"])),
            )
        })
    }

    fn validate(&self, config: &RotatePlan, d: &mut Diags) {
        if let Known::Value(Some(ids)) = &config.api_ids {
            if ids.is_empty() {
                d.attr_error(
                    AttrPath::root("api_ids"),
                    "No API to bump",
                    "`api_ids` is empty, so no binding would be bumped. Name the APIs whose bindings serve the secret, or leave `api_ids` out for every API of the instance.",
                );
            }
        }
    }

    async fn plan(&self, ctx: &Ctx<ProviderData>, _config: &RotatePlan, d: &mut Diags) {
        // The action needs both sides: say so at plan rather than half-way through.
        if let Some(data) = ctx.data(d) {
            data.vault(d);
            data.azure(d);
        }
    }

    async fn invoke(
        &self,
        ctx: &Ctx<ProviderData>,
        config: RotateModel,
        progress: &Progress,
        d: &mut Diags,
    ) {
        let Some(data) = ctx.data(d) else { return };
        let (Some(_), Some(azure)) = (data.vault(d), data.azure(d)) else {
            return;
        };
        let service = match ServiceId::parse(&config.api_management_id) {
            Ok(s) => s,
            Err(e) => {
                d.attr_error(
                    AttrPath::root("api_management_id"),
                    format!("Unable to run {TYPE}"),
                    format!("`api_management_id`: {e}. Nothing was written."),
                );
                return;
            }
        };
        if ctx.cancel.is_cancelled() {
            crate::framework::lifecycle::stopped(d, "rotating a secret");
            return;
        }
        let Some(rotated) = self.rotate_in_vault(data, &config, d).await else {
            return;
        };
        progress.report(rotated.done.clone());

        let apis: Vec<String> = match &config.api_ids {
            Some(ids) => ids.iter().map(|i| api_name(i).to_string()).collect(),
            None => match azure.list_apis(&service).await {
                Ok(list) => list.into_iter().map(|a| a.name).collect(),
                Err(e) => {
                    d.error(
                        format!("Unable to finish {TYPE}"),
                        format!("Done: {}. Not done: no binding was bumped, as listing the APIs of {service} failed: {e}. Until the bindings are bumped, the gateway serves the old value from its cache for up to their `cache_ttl`. Fix the cause and run the action again: it writes the secret again and bumps every binding that reads it.", rotated.done),
                    );
                    return;
                }
            },
        };

        let mut bumped: Vec<Bumped> = Vec::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        for (i, api) in apis.iter().enumerate() {
            if ctx.cancel.is_cancelled() {
                for rest in &apis[i..] {
                    failed.push((
                        rest.clone(),
                        "Terraform asked the provider to stop".to_string(),
                    ));
                }
                break;
            }
            let path = rotated.read_path.clone();
            let reads = move |s: &super::vault_binding::render::BindingSpec| {
                s.secret_path.trim_matches('/') == path
            };
            // A stop ends the edit before its write or after it, never in the middle.
            let outcome = match ctx
                .cancel
                .run(bump_generation(azure, &service, api, reads))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(AzureError::Config(
                    "Terraform asked the provider to stop".into(),
                )),
            };
            match outcome {
                Ok(names) if names.is_empty() => {}
                Ok(names) => bumped.push(Bumped {
                    api: api.clone(),
                    bindings: names,
                }),
                // An API without a policy (or a name in `api_ids` that is no API) has no
                // binding: nothing bumped, which the warning below reports.
                Err(e) => failed.push((api.clone(), e.to_string())),
            }
        }

        if !bumped.is_empty() {
            progress.report(bumped_line(&bumped));
        }
        if !failed.is_empty() {
            let done = if bumped.is_empty() {
                format!("Done: {}; no binding was bumped.", rotated.done)
            } else {
                format!("Done: {}; {}.", rotated.done, bumped_line(&bumped))
            };
            let not_done = failed
                .iter()
                .map(|(api, why)| format!("- API {api:?}: {why}"))
                .collect::<Vec<_>>()
                .join("\n");
            d.error(
                format!("Unable to finish {TYPE}"),
                format!("{done}\n\nNot done: the bindings of these APIs were not bumped, so their gateways serve the old value from the cache for up to their `cache_ttl`:\n{not_done}\n\nFix the cause and run the action again: it writes the secret again (a new version with the same value, or another rotation) and bumps every binding that reads it."),
            );
        } else if bumped.is_empty() {
            let scope = match &config.api_ids {
                Some(_) => format!("the APIs {} of {service}", names(&apis)),
                None => format!("{service}"),
            };
            d.warning(
                "No binding reads the rotated secret",
                format!("Done: {}. No apim_vault_binding on {scope} has `secret_path = {:?}`, so no rotation generation was bumped. Bindings that read it elsewhere fetch the new value when their cache expires.", rotated.done, rotated.read_path),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_bindings_and_names_apis() {
        let line = bumped_line(&[
            Bumped {
                api: "orders".into(),
                bindings: vec!["a".into(), "b".into()],
            },
            Bumped {
                api: "billing".into(),
                bindings: vec!["c".into()],
            },
        ]);
        assert_eq!(
            line,
            "bumped the rotation generation of 3 bindings on 2 APIs (orders, billing)"
        );
        let one = bumped_line(&[Bumped {
            api: "orders".into(),
            bindings: vec!["a".into()],
        }]);
        assert_eq!(
            one,
            "bumped the rotation generation of 1 binding on 1 API (orders)"
        );
    }

    #[test]
    fn mount_paths_are_segments() {
        for (s, ok) in [
            ("database", true),
            ("db/prod", true),
            ("", false),
            ("/database", false),
            ("db//x", false),
            ("db/..", false),
            ("db?x", false),
        ] {
            let mut d = Diags::new();
            validate_engine_mount(&Value::string(s), &AttrPath::root("mount"), &mut d);
            assert_eq!(!d.has_errors(), ok, "{s:?}");
        }
    }
}
