//! `apim_vault_audit`: a Vault audit device (`sys/audit/<path>`), so that every login and
//! secret read made through the bindings reaches the SIEM. Vault cannot update a device:
//! every Vault-side argument forces replacement. Options are compared key by key on the
//! keys the configuration sets, so values the server adds never show as a diff.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use async_trait::async_trait;

use crate::clients::vault::audit::{is_api_creation_forbidden, AuditDevice, EnableAuditRequest};
use crate::clients::vault::VaultError;
use crate::framework::diag::{AttrPath, Diags};
use crate::framework::plan::Planned;
use crate::framework::resource::{Ctx, PlanRequest, Resource};
use crate::framework::schema::{validators, Attribute, Block, Schema};
use crate::framework::value::{Type, Value};
use crate::provider::ProviderData;

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
    validators::string(v, p, d, "Invalid audit device path", |path| {
        let trimmed = path.trim_matches('/');
        if trimmed.is_empty() || trimmed.chars().any(char::is_whitespace) || trimmed.contains("//")
        {
            Err(format!("`path` is {path:?}: an audit device path is one or more non-empty segments separated by `/`, without spaces, e.g. \"to-siem\" or \"siem/socket\"."))
        } else if trimmed != path {
            Err(format!("`path` is {path:?}: write it without leading or trailing `/` ({trimmed:?}); Vault reports paths that way, so Terraform would see a different value after apply."))
        } else {
            Ok(())
        }
    });
}

/// The known string entries of a map value.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_map()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn map_value(m: &BTreeMap<String, String>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Equal key sets, every value the same to the server.
fn equivalent_options(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, x)| b.get(k).is_some_and(|y| same_option(k, x, y)))
}

/// The state for a device Vault reports. `prior` is the state it refreshes (null on
/// import): its option keys are the ones the configuration set, and only those are kept,
/// with the prior spelling where the server's value means the same.
fn state_from_device(path: &str, dev: &AuditDevice, prior: &Value) -> Value {
    let mut s = VaultAudit.schema().block.empty_value();
    s.set("id", Value::from(path));
    s.set("path", Value::from(path));
    s.set("type", Value::from(dev.kind.as_str()));
    s.set("local", Value::Bool(dev.local));
    let description = match (dev.description.as_str(), prior.get("description")) {
        ("", p) if !p.is_unknown() && p.as_str().is_none_or(str::is_empty) => p.clone(),
        (d, _) => Value::from(d),
    };
    s.set("description", description);
    let options = if prior.is_null() {
        (!dev.options.is_empty()).then(|| map_value(&dev.options))
    } else {
        prior.get("options").as_map().map(|_| {
            let configured = string_map(prior.get("options"));
            let kept: BTreeMap<String, String> = configured
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
                .collect();
            map_value(&kept)
        })
    };
    s.set("options", options.unwrap_or(Value::Null));
    let allow = match prior.get("allow_raw_secrets") {
        Value::Bool(b) => *b,
        // Imported: a device that already logs raw values needs the acknowledgement.
        _ => dev
            .options
            .get("log_raw")
            .and_then(|v| parse_bool(v))
            .unwrap_or(false),
    };
    s.set("allow_raw_secrets", Value::Bool(allow));
    s
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

    fn validate(&self, config: &Value, d: &mut Diags) {
        let options = config.get("options");
        if !options.is_wholly_known() {
            return;
        }
        let opts = string_map(options);
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
        let allowed = config.get("allow_raw_secrets");
        if raw && !allowed.is_unknown() && allowed.as_bool() != Some(true) {
            d.attr_error(
                AttrPath::root("options").key("log_raw"),
                "Raw audit logging not acknowledged",
                "`log_raw = \"true\"` makes Vault write every secret value, token and password in clear to this audit device, and so to the SIEM and everyone who can read it; by default they are HMAC-SHA256 hashes that can still be matched with `sys/audit-hash`. Remove `log_raw`, or set `allow_raw_secrets = true` to acknowledge this.",
            );
        }
        let required = match config.get("type").as_str() {
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
                        config.get("type").as_str().unwrap_or_default(),
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
        req: PlanRequest<'_>,
        planned: &mut Planned,
        _d: &mut Diags,
    ) {
        // `path` defaults to the type.
        if req.config.get("path").is_null() {
            if let Some(kind) = req.config.get("type").as_str() {
                planned.state.set("path", Value::from(kind));
            }
        }
        if let Some(path) = planned.state.get("path").as_str().map(str::to_string) {
            planned.state.set("id", Value::from(path.as_str()));
        }
        if req.prior.is_null() {
            return;
        }
        let path_attr = AttrPath::root("path");
        if planned.state.get("path") != req.prior.get("path")
            && !planned.requires_replace.contains(&path_attr)
        {
            planned.requires_replace.push(path_attr);
        }
        // Options that mean the same to the server keep the spelling in state: no diff.
        let (cfg, prior) = (req.config.get("options"), req.prior.get("options"));
        if cfg.is_wholly_known()
            && !cfg.is_null()
            && !prior.is_null()
            && equivalent_options(&string_map(cfg), &string_map(prior))
        {
            planned.state.set("options", prior.clone());
            planned
                .requires_replace
                .retain(|p| *p != AttrPath::root("options"));
        }
    }

    async fn create(
        &self,
        ctx: &Ctx<ProviderData>,
        planned: &Value,
        _config: &Value,
        d: &mut Diags,
    ) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        let path = planned.get("path").as_str()?.to_string();
        let kind = planned.get("type").as_str()?.to_string();
        let description = planned
            .get("description")
            .as_str()
            .unwrap_or_default()
            .to_string();
        let local = planned.get("local").as_bool().unwrap_or(false);
        let options = string_map(planned.get("options"));
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
        let mut state = planned.clone();
        state.set("id", Value::from(path.as_str()));
        Some(state)
    }

    async fn read(&self, ctx: &Ctx<ProviderData>, state: &Value, d: &mut Diags) -> Option<Value> {
        let vault = ctx.data(d)?.vault(d)?;
        let path = state.get("path").as_str()?.to_string();
        match vault.read_audit_device(&path).await {
            Ok(Some(dev)) => Some(state_from_device(&path, &dev, state)),
            Ok(None) => None,
            Err(e) => {
                fail(d, "read", &format!("audit device {path:?}"), &e);
                Some(state.clone())
            }
        }
    }

    /// Only `allow_raw_secrets` changes in place (every other argument forces replacement);
    /// it is the provider's own check, so Vault is not called.
    async fn update(
        &self,
        _ctx: &Ctx<ProviderData>,
        _prior: &Value,
        planned: &Value,
        _config: &Value,
        _d: &mut Diags,
    ) -> Option<Value> {
        Some(planned.clone())
    }

    async fn delete(&self, ctx: &Ctx<ProviderData>, state: &Value, d: &mut Diags) {
        let Some(vault) = ctx.data(d).and_then(|p| p.vault(d)) else {
            return;
        };
        let Some(path) = state.get("path").as_str() else {
            return;
        };
        if let Err(e) = vault.disable_audit_device(path).await {
            fail(d, "delete", &format!("audit device {path:?}"), &e);
        }
    }

    async fn import(&self, ctx: &Ctx<ProviderData>, id: &str, d: &mut Diags) -> Option<Value> {
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
                Some(dev) => Some(state_from_device(path, &dev, &Value::Null)),
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

    fn prior(options: &[(&str, &str)]) -> Value {
        let mut s = VaultAudit.schema().block.empty_value();
        s.set("path", "to-siem".into());
        s.set("type", "socket".into());
        s.set("local", false.into());
        s.set("allow_raw_secrets", false.into());
        s.set(
            "options",
            map_value(
                &options
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        );
        s
    }

    #[test]
    fn server_added_options_are_ignored_and_equivalent_spellings_kept() {
        let p = prior(&[("address", "127.0.0.1:9090"), ("hmac_accessor", "TRUE")]);
        let dev = device(&[
            ("address", "127.0.0.1:9090"),
            ("hmac_accessor", "true"),
            ("socket_type", "tcp"),
        ]);
        let s = state_from_device("to-siem", &dev, &p);
        assert_eq!(s.get("options"), p.get("options"));
        assert!(s.get("description").is_null());
    }

    #[test]
    fn changed_or_missing_options_show() {
        let p = prior(&[("address", "127.0.0.1:9090"), ("format", "json")]);
        let dev = device(&[("address", "127.0.0.1:9191")]);
        let s = state_from_device("to-siem", &dev, &p);
        assert_eq!(
            string_map(s.get("options")),
            BTreeMap::from([("address".to_string(), "127.0.0.1:9191".to_string())])
        );
    }

    #[test]
    fn import_takes_every_option_and_acknowledges_raw_logging() {
        let dev = device(&[("address", "a:1"), ("log_raw", "1")]);
        let s = state_from_device("to-siem", &dev, &Value::Null);
        assert_eq!(string_map(s.get("options")).len(), 2);
        assert_eq!(s.get("allow_raw_secrets"), &Value::Bool(true));
    }

    #[test]
    fn raw_logging_needs_the_acknowledgement() {
        let mut cfg = prior(&[("address", "a:1"), ("log_raw", "True")]);
        let mut d = Diags::new();
        VaultAudit.validate(&cfg, &mut d);
        assert!(d.has_errors(), "{d:?}");
        cfg.set("allow_raw_secrets", true.into());
        let mut d = Diags::new();
        VaultAudit.validate(&cfg, &mut d);
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
