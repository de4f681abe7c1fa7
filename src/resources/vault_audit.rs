//! `apim_vault_audit`: a Vault audit device (`sys/audit/<path>`), so that every login and
//! secret read made through the bindings reaches the SIEM. Vault cannot update a device:
//! every Vault-side argument forces replacement. Options are compared key by key on the
//! keys the configuration sets, so values the server adds never show as a diff.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::audit::{is_api_creation_forbidden, AuditDevice, EnableAuditRequest};
use crate::clients::vault::VaultError;
use crate::context::ProviderData;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::model::Known;
use crate::framework::resource::{Ctx, Plan, PlanRequest, Resource};
use crate::framework::schema::{Attribute, Block, Schema};
use crate::framework::value::{Type, Value};

use super::api_error;

const TYPE: &str = "apim_vault_audit";

/// Device types this resource manages.
const TYPES: &[&str] = &["file", "socket", "syslog"];

/// Options whose values the server parses as booleans (Go's `strconv.ParseBool`).
const BOOL_OPTIONS: &[&str] = &[
    "log_raw",
    "hmac_accessor",
    "elide_list_responses",
    "fallback",
];

/// The resource.
pub struct VaultAudit;

/// A boolean option's value as the server reads it; `None` when it is not a boolean.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Whether two spellings of option `key` mean the same to the server.
fn same_option(key: &str, a: &str, b: &str) -> bool {
    a == b
        || (BOOL_OPTIONS.contains(&key)
            && parse_bool(a).is_some()
            && parse_bool(a) == parse_bool(b))
}

fn validate_path(v: &Value, p: &AttrPath, d: &mut Diags) {
    super::vault_binding::grammar::validate_device_path(v, p, d);
}

crate::model! {
    /// An `apim_vault_audit`.
    pub struct AuditModel, plan AuditPlan {
        /// The device's path.
        pub id: Known<String>,
        /// `type`.
        pub r#type: String,
        /// `path` (defaults to the type).
        pub path: Known<Option<String>>,
        /// `description`.
        pub description: Option<String>,
        /// `local` (default false).
        pub local: Option<bool>,
        /// `options`.
        pub options: Option<BTreeMap<String, String>>,
        /// `allow_raw_secrets` (default false).
        pub allow_raw_secrets: Option<bool>,
    }
}

/// Equal key sets, every value the same to the server.
fn equivalent_options(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, x)| b.get(k).is_some_and(|y| same_option(k, x, y)))
}

/// The state for a device Vault reports. `prior` is the state it refreshes (`None` on
/// import): its option keys are the ones the configuration set, and only those are kept,
/// with the prior spelling where the server's value means the same.
fn state_from_device(path: &str, dev: &AuditDevice, prior: Option<&AuditModel>) -> AuditModel {
    // Vault reports no description as "": the state keeps the configuration's null (or "").
    let description = match (
        dev.description.as_str(),
        prior.and_then(|p| p.description.clone()),
    ) {
        ("", None) => None,
        (d, _) => Some(d.to_string()),
    };
    let options = match prior {
        None => (!dev.options.is_empty()).then(|| dev.options.clone()),
        Some(prior) => prior.options.as_ref().map(|configured| {
            configured
                .iter()
                .filter_map(|(k, mine)| {
                    let theirs = dev.options.get(k)?;
                    Some((
                        k.clone(),
                        if same_option(k, mine, theirs) {
                            mine.clone()
                        } else {
                            theirs.clone()
                        },
                    ))
                })
                .collect()
        }),
    };
    let allow = match prior.and_then(|p| p.allow_raw_secrets) {
        Some(b) => b,
        // Imported: a device that already logs raw values needs the acknowledgement.
        None => dev
            .options
            .get("log_raw")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false),
    };
    AuditModel {
        id: Known::Value(path.to_string()),
        r#type: dev.kind.clone(),
        path: Known::Value(Some(path.to_string())),
        description,
        local: Some(dev.local),
        options,
        allow_raw_secrets: Some(allow),
    }
}

/// The uniform API error; a refusal for lack of `sudo` says which capabilities are needed.
fn fail(d: &mut Diags, action: &str, object: &str, e: &VaultError) {
    if e.status() == Some(403) {
        let hint = format!("{e}\n\nAudit devices need a token with `sudo`: `read` and `sudo` on `sys/audit`, `create`, `update`, `delete` and `sudo` on `sys/audit/*`.");
        api_error(d, action, TYPE, object, &hint);
    } else {
        api_error(d, action, TYPE, object, e);
    }
}

/// The server-configuration stanza that declares the planned device, for servers that
/// refuse API-created audit devices.
fn declarative_snippet(
    kind: &str,
    path: &str,
    description: &str,
    local: bool,
    options: &BTreeMap<String, String>,
) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"));
    let mut out = format!("audit {} {} {{\n", q(kind), q(path));
    if !description.is_empty() {
        out.push_str(&format!("  description = {}\n", q(description)));
    }
    if local {
        out.push_str("  local = true\n");
    }
    if !options.is_empty() {
        let width = options.keys().map(String::len).max().unwrap_or(0);
        out.push_str("  options {\n");
        for (k, v) in options {
            out.push_str(&format!("    {k:width$} = {}\n", q(v)));
        }
        out.push_str("  }\n");
    }
    out.push('}');
    out
}

#[async_trait]
impl Resource<ProviderData> for VaultAudit {
    type Model = AuditModel;

    fn type_name(&self) -> &'static str {
        TYPE
    }

    fn schema(&self) -> &Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| {
            Schema::new(
                Block::new("A Vault audit device (`sys/audit/<path>`): every request and response Vault serves, including the APIM gateway's JWT logins and secret reads, written as JSON lines to a file, a socket (a SIEM collector) or syslog. Secrets and tokens in the entries are HMAC-SHA256 hashes unless `log_raw` is on. See the [SIEM guide](../guides/siem.md).\n\nVault cannot change an audit device: every argument that reaches Vault forces replacement, and a replaced device hashes with a new salt. Drift: a device disabled out of band is enabled again by the next apply; different options show as a replacement. Options are compared on the keys the configuration sets, with boolean options compared by meaning (`\"1\"` and `\"true\"` are the same): keys the server reports without being configured (server defaults) are ignored, so they never show as a diff. On import, every option the server reports is taken.\n\nServers that refuse API-created audit devices (OpenBao by default, hardened Vault) answer the apply with an error whose diagnostic gives the equivalent `audit` stanza for the server configuration. Needs a token with `sudo` on `sys/audit` and `sys/audit/*`.")
                    .attr(Attribute::string("id").computed().use_state_for_unknown().describe("The device's path."))
                    .attr(
                        Attribute::string("type")
                            .required()
                            .requires_replace()
                            .one_of(TYPES)
                            .describe("Device type: `file` (a file on the Vault server, shipped by an agent), `socket` (a TCP, UDP or UNIX socket, e.g. a SIEM collector) or `syslog`."),
                    )
                    .attr(
                        Attribute::string("path")
                            .optional_computed()
                            .requires_replace()
                            .validate(validate_path)
                            .describe("Where the device is mounted, without leading or trailing `/`. Defaults to the type."),
                    )
                    .attr(Attribute::string("description").requires_replace().describe("Human-friendly description."))
                    .attr(Attribute::bool("local").default(false).requires_replace().describe("Local to this cluster: not replicated to performance secondaries."))
                    .attr(
                        Attribute::of("options", Type::map_of(Type::String))
                            .requires_replace()
                            .describe("Device options, all strings: `file_path` (and `mode`) for `file`; `address` and `socket_type` (`tcp`, `udp`, `unix`) for `socket`; `tag` and `facility` for `syslog`; for every type `format` (`json`, `jsonx`), `prefix`, `hmac_accessor` (`\"false\"` logs token accessors in clear), `elide_list_responses` and `log_raw`. `log_raw = \"true\"` is refused unless `allow_raw_secrets = true`."),
                    )
                    .attr(Attribute::bool("allow_raw_secrets").default(false).describe("Acknowledges that `log_raw = \"true\"` writes secrets, tokens and passwords in clear to the audit destination (the SIEM). Checked by the provider only: changing it never replaces the device.")),
            )
        })
    }

    fn validate(&self, config: &AuditPlan, d: &mut Diags) {
        let Known::Value(options) = &config.options else {
            return;
        };
        let opts = options.clone().unwrap_or_default();
        for (k, v) in &opts {
            if BOOL_OPTIONS.contains(&k.as_str()) && parse_bool(v).is_none() {
                d.attr_error(
                    AttrPath::root("options").key(k),
                    "Invalid audit option",
                    format!("`options[{k:?}]` is {v:?}; Vault reads it as a boolean: use \"true\" or \"false\"."),
                );
            }
        }
        if let Some(f) = opts.get("format") {
            if !["json", "jsonx"].contains(&f.as_str()) {
                d.attr_error(
                    AttrPath::root("options").key("format"),
                    "Invalid audit option",
                    format!(
                        "`options[\"format\"]` is {f:?}, which is not one of: \"json\", \"jsonx\"."
                    ),
                );
            }
        }
        let raw = opts.get("log_raw").and_then(|v| parse_bool(v)) == Some(true);
        let allowed = &config.allow_raw_secrets;
        if raw && !allowed.is_unknown() && allowed.value() != Some(&true) {
            d.attr_error(
                AttrPath::root("options").key("log_raw"),
                "Raw audit logging not acknowledged",
                "`log_raw = \"true\"` makes Vault write every secret value, token and password in clear to this audit device, and so to the SIEM and everyone who can read it; by default they are HMAC-SHA256 hashes that can still be matched with `sys/audit-hash`. Remove `log_raw`, or set `allow_raw_secrets = true` to acknowledge this.",
            );
        }
        let kind = config.r#type.as_deref();
        let required = match kind {
            Some("file") => Some("file_path"),
            Some("socket") => Some("address"),
            _ => None,
        };
        if let Some(key) = required {
            if !opts.contains_key(key) {
                d.attr_error(
                    AttrPath::root("options"),
                    "Missing audit option",
                    format!(
                        "A `{}` audit device needs `options.{key}` ({}).",
                        kind.unwrap_or_default(),
                        if key == "file_path" {
                            "a file on the Vault server, or \"stdout\""
                        } else {
                            "the collector's host:port, or a UNIX socket path with socket_type = \"unix\""
                        }
                    ),
                );
            }
        }
    }

    async fn modify_plan(
        &self,
        _ctx: &Ctx<ProviderData>,
        req: PlanRequest<'_, AuditModel>,
        plan: &mut Plan<AuditModel>,
        _d: &mut Diags,
    ) {
        // `path` defaults to the type.
        if req.config.path.is_null() {
            if let Some(kind) = req.config.r#type.get() {
                plan.state.path = Known::Value(Some(kind.clone()));
            }
        }
        if let Some(path) = plan.state.path.value() {
            plan.state.id = Known::Value(path.clone());
        }
        let Some(prior) = req.prior else {
            return;
        };
        if plan.state.path != prior.path {
            plan.replace(AttrPath::root("path"));
        }
        // Options that mean the same to the server keep the spelling in state: no diff.
        if let (Known::Value(Some(cfg)), Some(prior_options)) =
            (&req.config.options, &prior.options)
        {
            if equivalent_options(cfg, prior_options) {
                plan.state.options = Known::Value(Some(prior_options.clone()));
                plan.requires_replace
                    .retain(|p| *p != AttrPath::root("options"));
            }
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: AuditModel,
        d: &mut Diags,
    ) -> Option<AuditModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let kind = planned.r#type.clone();
        let path = planned
            .path
            .value()
            .cloned()
            .unwrap_or_else(|| kind.clone());
        let description = planned.description.clone().unwrap_or_default();
        let local = planned.local.unwrap_or(false);
        let options = planned.options.clone().unwrap_or_default();
        let object = format!("audit device {path:?}");
        match vault.read_audit_device(&path).await {
            Ok(Some(dev)) => {
                let what = format!("An audit device of type {:?} enabled at {path:?}", dev.kind);
                super::already_exists(d, TYPE, &what, &path, "");
                return None;
            }
            Ok(None) => {}
            Err(e) => {
                fail(d, "create", &object, &e);
                return None;
            }
        }
        let req = EnableAuditRequest {
            kind: &kind,
            description: &description,
            local,
            options: &options,
        };
        if let Err(e) = vault.enable_audit_device(&path, &req).await {
            if is_api_creation_forbidden(&e) {
                d.error(
                    format!("Unable to create {TYPE}"),
                    format!(
                        "{TYPE} {object}: {e}\n\nThis server does not let the API create audit devices (OpenBao's default, because a file or socket device can write anywhere the server can). Declare the device in the server's configuration file instead, then restart the server or send it SIGHUP:\n\n{}\n\nand remove this resource from the Terraform configuration (the server manages the device). On test and development servers only, `unsafe_allow_api_audit_creation = true` in the server configuration allows API-created devices.",
                        declarative_snippet(&kind, &path, &description, local, &options)
                    ),
                );
            } else {
                fail(d, "create", &object, &e);
            }
            return None;
        }
        Some(AuditModel {
            id: Known::Value(path.clone()),
            path: Known::Value(Some(path)),
            ..planned
        })
    }

    async fn read(
        &self,
        ctx: &Ctx<ProviderData>,
        state: AuditModel,
        d: &mut Diags,
    ) -> Option<AuditModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let path = state
            .path
            .value()
            .cloned()
            .unwrap_or_else(|| state.r#type.clone());
        match vault.read_audit_device(&path).await {
            Ok(Some(dev)) => Some(state_from_device(&path, &dev, Some(&state))),
            Ok(None) => None,
            Err(e) => {
                fail(d, "read", &format!("audit device {path:?}"), &e);
                Some(state)
            }
        }
    }

    /// Only `allow_raw_secrets` changes in place (every other argument forces replacement);
    /// it is the provider's own check, so Vault is not called.
    async fn update(
        &self,
        _ctx: &Ctx<ProviderData>,
        _prior: AuditModel,
        planned: AuditModel,
        _d: &mut Diags,
    ) -> Option<AuditModel> {
        Some(planned)
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: AuditModel, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let path = state.path.value().cloned().unwrap_or(state.r#type);
        if let Err(e) = vault.disable_audit_device(&path).await {
            fail(d, "delete", &format!("audit device {path:?}"), &e);
        }
    }

    async fn import(&self, ctx: &Ctx<ProviderData>, id: &str, d: &mut Diags) -> Option<AuditModel> {
        let vault = ctx.data(d)?.vault(d)?;
        let path = id.trim_matches('/');
        if path.is_empty() || path.chars().any(char::is_whitespace) {
            d.error(
                format!("Unable to import {TYPE}"),
                format!("The import ID {id:?} is not an audit device path. Use the path, e.g. `terraform import {TYPE}.siem to-siem`."),
            );
            return None;
        }
        match vault.list_audit_devices().await {
            Ok(mut all) => match all.remove(path) {
                Some(dev) => Some(state_from_device(path, &dev, None)),
                None => {
                    let known: Vec<String> = all.keys().map(|k| format!("{k:?}")).collect();
                    d.error(
                        format!("Unable to import {TYPE}"),
                        format!(
                            "Vault has no audit device at {path:?}. Enabled devices: {}.",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                    None
                }
            },
            Err(e) => {
                fail(d, "import", &format!("audit device {path:?}"), &e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::model::Model;

    fn device(options: &[(&str, &str)]) -> AuditDevice {
        AuditDevice {
            kind: "socket".into(),
            description: String::new(),
            local: false,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: "to-siem/".into(),
        }
    }

    fn prior(options: &[(&str, &str)]) -> AuditModel {
        AuditModel {
            id: Known::Value("to-siem".into()),
            r#type: "socket".into(),
            path: Known::Value(Some("to-siem".into())),
            description: None,
            local: Some(false),
            options: Some(
                options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            allow_raw_secrets: Some(false),
        }
    }

    #[test]
    fn server_added_options_are_ignored_and_equivalent_spellings_kept() {
        let p = prior(&[("address", "127.0.0.1:9090"), ("hmac_accessor", "TRUE")]);
        let dev = device(&[
            ("address", "127.0.0.1:9090"),
            ("hmac_accessor", "true"),
            ("socket_type", "tcp"),
        ]);
        let s = state_from_device("to-siem", &dev, Some(&p));
        assert_eq!(s.options, p.options);
        assert!(s.description.is_none());
    }

    #[test]
    fn changed_or_missing_options_show() {
        let p = prior(&[("address", "127.0.0.1:9090"), ("format", "json")]);
        let dev = device(&[("address", "127.0.0.1:9191")]);
        let s = state_from_device("to-siem", &dev, Some(&p));
        assert_eq!(
            s.options,
            Some(BTreeMap::from([(
                "address".to_string(),
                "127.0.0.1:9191".to_string()
            )]))
        );
    }

    #[test]
    fn import_takes_every_option_and_acknowledges_raw_logging() {
        let dev = device(&[("address", "a:1"), ("log_raw", "1")]);
        let s = state_from_device("to-siem", &dev, None);
        assert_eq!(s.options.map(|o| o.len()), Some(2));
        assert_eq!(s.allow_raw_secrets, Some(true));
    }

    #[test]
    fn raw_logging_needs_the_acknowledgement() {
        let config = |allow: bool| {
            let m = AuditModel {
                allow_raw_secrets: Some(allow),
                ..prior(&[("address", "a:1"), ("log_raw", "True")])
            };
            AuditPlan::decode(&m.encode(), &mut Diags::new()).expect("decodes")
        };
        let mut d = Diags::new();
        Resource::validate(&VaultAudit, &config(false), &mut d);
        assert!(d.has_errors(), "{d:?}");
        let mut d = Diags::new();
        Resource::validate(&VaultAudit, &config(true), &mut d);
        assert!(!d.has_errors(), "{d:?}");
    }

    #[test]
    fn snippet_is_an_audit_stanza() {
        let s = declarative_snippet(
            "file",
            "to-siem",
            "SIEM",
            false,
            &BTreeMap::from([
                (
                    "file_path".to_string(),
                    "/var/log/openbao/audit.log".to_string(),
                ),
                ("format".to_string(), "json".to_string()),
            ]),
        );
        assert_eq!(
            s,
            "audit \"file\" \"to-siem\" {\n  description = \"SIEM\"\n  options {\n    file_path = \"/var/log/openbao/audit.log\"\n    format    = \"json\"\n  }\n}"
        );
    }
}
