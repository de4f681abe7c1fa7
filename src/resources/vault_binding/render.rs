//! The managed block: what APIM runs for the bindings of one API, rendered from all of them,
//! inside that API's inbound policy (`rawxml`).
//!
//! One block per API, between two comments the provider owns, right after `<base />`:
//!
//! 1. one record comment per binding, holding its settings (so that any provider process, in
//!    any pipeline, can render the block again from what APIM holds);
//! 2. at most one `cache-lookup-value` and one `cache-store-value` of all the API's cached
//!    secrets, kept together as one JSON value under one key (`caching-type="internal"`:
//!    secrets never leave the gateway for an external cache), run from a `retry` so that one
//!    request fetches while the others wait for it or keep using what they have (the entry
//!    is claimed before a fetch, refreshed in its last quarter, and a failed fetch's result
//!    held for a second: [`cached_part`]). A fetch makes, per distinct (address, namespace,
//!    mount, role, audience), one managed-identity token and one Vault JWT login, then one
//!    read per secret; the entry lasts min(`cache_ttl`, every lease's `lease_duration` - 1).
//!    Bindings with `cache_ttl = 0` are fetched on every request, after the cached ones;
//! 3. each binding's injection (header, query parameter or variable), or its failure: 502
//!    (`on_error = "fail"`) or the request going on without the secret (`continue`);
//! 4. every variable that held a token, a Vault answer or the secrets, cleared.
//!
//! A fetch that fails leaves a record of why, with APIM's own means ([`failure`]): a `trace`
//! (source `apim-vault-binding`, severity `error`) naming the bindings, the step that failed
//! (the managed-identity token, the login, the read, the field) and Vault's HTTP status and
//! `errors` text (bounded; never a body that could hold a token or a secret: only failed calls
//! are described, and only their `errors`); and, for a binding that names a logger, an
//! `emit-metric` (dimensions `binding`, `outcome`) or a `log-to-eventhub` event. The caller
//! still gets a bare 502.
//!
//! No named values and no policy fragments: the number of bindings is bounded only by the
//! policy document's size. Every value from the configuration is escaped for where it goes
//! (`grammar.rs`), and the text never contains `{{` or `}}`, which APIM would substitute.

use std::fmt::Write;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::grammar::{cs_string, url_path, xml_attr, xml_text};
use crate::resources::policy_xml::{self, Format};

/// Where a binding puts its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inject {
    /// A request header to the backend.
    Header(String),
    /// A query parameter to the backend.
    Query(String),
    /// A context variable for other policies.
    Variable(String),
}

/// What a binding's logger is sent, decided by the logger's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoggerKind {
    /// An `azureEventHub` logger: `log-to-eventhub` events.
    EventHub,
    /// An `applicationInsights` or `azureMonitor` logger: `emit-metric` custom metrics.
    Metric,
}

/// The APIM logger a binding's failures are sent to, besides the `trace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logger {
    /// `logger_id` as the configuration writes it: the logger's name, or its ARM ID.
    pub id: String,
    /// What it is sent.
    pub kind: LoggerKind,
}

impl Logger {
    /// The logger's name in its instance (what `logger-id` takes).
    pub fn name(&self) -> &str {
        self.id.rsplit('/').next().unwrap_or(&self.id)
    }
}

/// Everything the block needs of one binding; stored in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSpec {
    /// The binding's name (lowercase letters, digits, dashes).
    pub name: String,
    /// Vault's address, without a trailing `/`.
    pub vault_address: String,
    /// Vault Enterprise namespace, sent as `X-Vault-Namespace` on every Vault call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_namespace: Option<String>,
    /// Mount path of the JWT auth method.
    pub backend: String,
    /// The role the gateway logs in with.
    pub role: String,
    /// The managed-identity token's audience.
    pub audience: String,
    /// API path of the secret, e.g. `kv/data/orders/backend`.
    pub secret_path: String,
    /// Field of the secret to inject.
    pub secret_field: String,
    /// KV version 2 (the field is under `data.data`, otherwise under `data`).
    pub kv_v2: bool,
    /// The secret comes with a lease: the cache lasts no longer than its `lease_duration`.
    pub leased: bool,
    /// Where the secret goes.
    pub inject: Inject,
    /// Seconds the gateway caches the secret; 0: fetched on every request.
    pub cache_ttl: i64,
    /// A number whose change invalidates the cached secrets at once.
    pub rotation: i64,
    /// Answer 502 when the secret cannot be had (`on_error = "fail"`).
    pub fail_on_error: bool,
    /// `api_id` as the configuration writes it (a name or an ARM ID), so that an import
    /// gives back the same spelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_ref: Option<String>,
    /// The logger its failures are sent to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger: Option<Logger>,
    /// The rotation generation: bumped by the `apim_vault_rotate` action after it wrote the
    /// secret, part of the cache key like `rotation`, but no setting of the binding (its
    /// state never shows it, and an edit of the binding keeps it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The bindings of one API, and whether their first one created the API's policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// The API had no policy before the first binding; the last one deletes it again.
    pub created_policy: bool,
    /// The bindings, sorted by name.
    pub bindings: Vec<BindingSpec>,
}

const BEGIN: &str = "<!-- apim-vault-bindings begin";
const BEGIN_NOTE: &str = " (managed by terraform-provider-apim for apim_vault_binding resources; edits between begin and end are overwritten)";
const CREATED: &str = " created-policy";
const RECORD: &str = "<!-- apim-vault-binding ";
const END: &str = "<!-- apim-vault-bindings end -->";
/// The variable holding the cached secrets as JSON.
const CACHED: &str = "apim-vault";
/// The variable holding the secrets fetched on every request.
const LIVE: &str = "apim-vault-live";
/// Seconds a `send-request` to Vault may take.
const TIMEOUT: u32 = 10;
/// What the cached part does next: `fetch`, `claim`, `store` or `done`.
const STEP: &str = "apim-vault-step";
/// The value and the seconds of the cached part's one `cache-store-value`.
const STORE: &str = "apim-vault-store";
const STORE_FOR: &str = "apim-vault-store-for";
/// The secrets a fetch got, as JSON.
const FETCHED: &str = "apim-vault-fetched";
/// How long a fetch's secrets may be kept, in seconds (`long`).
const DURATION: &str = "apim-vault-duration";
/// Which pass of the cached part's `retry` runs.
const PASS: &str = "apim-vault-pass";
/// Milliseconds a claim lasts. A fetch normally takes milliseconds; one that takes longer (a
/// Vault that hangs until the timeouts, or is electing a leader) is taken over by the next
/// request that looks after this: one more login every few seconds, so that the gateway
/// serves again soon after Vault does.
const CLAIM_MS: u32 = 3000;
/// A cached entry is refreshed in its last quarter, at most this many milliseconds before it
/// ends.
const REFRESH_MS: u32 = 30_000;
/// A failed fetch's result is kept this many milliseconds (never longer than its leases), so
/// that the requests waiting for it, and those of the next moment, answer as `on_error` says
/// without calling Vault themselves.
const HOLD_MS: u32 = 1000;
/// Passes after the first of the cached part's `retry`, a second apart but the first: longer
/// than any fetch (a login and a read, each within [`TIMEOUT`]), so a waiting request always
/// sees a claim's result, or takes the claim over, before its last pass.
const WAIT_PASSES: u32 = 2 * TIMEOUT + 3;
/// The time in the cached entry's clock: ticks of 100 ns (a C# `long`), fine enough that two
/// claims are told apart by the time they were made.
const NOW: &str = "DateTime.UtcNow.Ticks";
/// The variable holding what Vault said about a failed call, while it is recorded.
const FAILURE: &str = "apim-vault-failure";
/// The `source` of the block's traces.
const TRACE_SOURCE: &str = "apim-vault-binding";
/// The name and namespace of the block's custom metric.
const METRIC: &str = "apim-vault-binding-failures";
const METRIC_NAMESPACE: &str = "apim-vault";
/// At most this many characters of Vault's `errors` are recorded.
const ERRORS_MAX: usize = 300;

/// FNV-1a over `parts`: stable across builds and platforms, unlike the standard hasher.
fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The login a binding shares with every binding of the same (address, namespace, mount,
/// role, audience): one token and one login per cache miss.
fn login_id(s: &BindingSpec) -> String {
    let h = hash(&[
        &s.vault_address,
        s.vault_namespace.as_deref().unwrap_or(""),
        &s.backend,
        &s.role,
        &s.audience,
    ]);
    format!("{:08x}", h >> 32)
}

fn response(var: &str) -> String {
    format!("((IResponse)context.Variables[\"{var}\"])")
}

/// The C# condition "the `send-request` into `var` got 200".
fn answered(var: &str) -> String {
    let r = response(var);
    format!("context.Variables.ContainsKey(\"{var}\") && {r} != null && {r}.StatusCode == 200")
}

fn body(var: &str) -> String {
    format!("{}.Body.As<JObject>(preserveContent: true)", response(var))
}

/// The variable of a secret's read. Bindings of one login that read the same path share it:
/// one read per secret, so that fields of one leased secret (a database user and its
/// password) come from one credential.
fn read_var(s: &BindingSpec) -> String {
    let h = hash(&[
        &login_id(s),
        &s.secret_path,
        s.vault_namespace.as_deref().unwrap_or(""),
    ]);
    format!("apim-vault-read-{:08x}", h >> 32)
}

fn field(s: &BindingSpec) -> String {
    format!("{}[{}]", data_of(s), cs_string(&s.secret_field))
}

/// The secret's fields in its read's answer: `data.data` for KV version 2, else `data`.
fn data_of(s: &BindingSpec) -> String {
    if s.kv_v2 {
        format!("{}[\"data\"][\"data\"]", body(&read_var(s)))
    } else {
        format!("{}[\"data\"]", body(&read_var(s)))
    }
}

/// The C# condition "the binding's read succeeded and holds its field".
fn read_ok(s: &BindingSpec) -> String {
    format!("{} && {} != null", answered(&read_var(s)), field(s))
}

fn namespace_header(s: &BindingSpec, indent: &str) -> String {
    s.vault_namespace
        .as_deref()
        .map(|ns| {
            format!(
                "\n{indent}<set-header name=\"X-Vault-Namespace\" exists-action=\"override\">\n{indent}    <value>{}</value>\n{indent}</set-header>",
                xml_text(ns)
            )
        })
        .unwrap_or_default()
}

/// The secret's read: `GET <address>/v1/<path>` with the group's Vault token.
fn read(s: &BindingSpec, indent: &str) -> String {
    let login = format!("apim-vault-login-{}", login_id(s));
    format!(
        "{indent}<send-request mode=\"new\" response-variable-name=\"{var}\" timeout=\"{TIMEOUT}\" ignore-error=\"true\">\n\
         {indent}    <set-url>{url}</set-url>\n\
         {indent}    <set-method>GET</set-method>\n\
         {indent}    <set-header name=\"X-Vault-Token\" exists-action=\"override\">\n\
         {indent}        <value>@({token}[\"auth\"][\"client_token\"].ToString())</value>\n\
         {indent}    </set-header>{ns}\n\
         {indent}</send-request>",
        var = read_var(s),
        url = xml_text(&format!("{}/v1/{}", s.vault_address, url_path(&s.secret_path))),
        token = body(&login),
        ns = namespace_header(s, &format!("{indent}    ")),
    )
}

/// The binding's injection, from the JSON of secrets in `source`.
fn inject(s: &BindingSpec, source: &str, indent: &str) -> String {
    let key = cs_string(&s.name);
    let secrets = format!(
        "JObject.Parse(context.Variables.GetValueOrDefault<string>(\"{source}\", \"{{}}\"))"
    );
    let value = format!("@((string){secrets}[{key}])");
    let set = match &s.inject {
        Inject::Header(h) => format!(
            "{indent}        <set-header name=\"{}\" exists-action=\"override\">\n{indent}            <value>{value}</value>\n{indent}        </set-header>",
            xml_attr(h)
        ),
        Inject::Query(q) => format!(
            "{indent}        <set-query-parameter name=\"{}\" exists-action=\"override\">\n{indent}            <value>{value}</value>\n{indent}        </set-query-parameter>",
            xml_attr(q)
        ),
        Inject::Variable(v) => format!(
            "{indent}        <set-variable name=\"{}\" value=\"{value}\" />",
            xml_attr(v)
        ),
    };
    let otherwise = if s.fail_on_error {
        format!(
            "\n{indent}    <otherwise>\n{indent}        <return-response>\n{indent}            <set-status code=\"502\" reason=\"Bad Gateway\" />\n{indent}        </return-response>\n{indent}    </otherwise>"
        )
    } else {
        String::new()
    };
    format!(
        "{indent}<choose>\n{indent}    <when condition=\"@({secrets}[{key}] != null)\">\n{set}\n{indent}    </when>{otherwise}\n{indent}</choose>"
    )
}

/// The binding's own part of the block (its read and its injection): `policy_xml`.
pub fn binding_part(s: &BindingSpec) -> String {
    let source = if s.cache_ttl > 0 { CACHED } else { LIVE };
    format!("{}\n{}\n", read(s, ""), inject(s, source, ""))
}

/// Logins and reads of `set`, leaving the secrets as JSON in `var`; and the variables to
/// clear once they are no longer needed.
fn fetch(set: &[&BindingSpec], var: &str, indent: &str) -> (String, Vec<String>) {
    let mut x = String::new();
    let mut clear = Vec::new();
    let mut groups: Vec<(String, Vec<&BindingSpec>)> = Vec::new();
    for s in set {
        let id = login_id(s);
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, members)) => members.push(s),
            None => groups.push((id, vec![s])),
        }
    }
    for (id, members) in &groups {
        let first = members[0];
        let mi = format!("apim-vault-mi-{id}");
        let login = format!("apim-vault-login-{id}");
        let _ = write!(
            x,
            "{indent}<authentication-managed-identity resource=\"{aud}\" output-token-variable-name=\"{mi}\" ignore-error=\"true\" />\n\
             {indent}<send-request mode=\"new\" response-variable-name=\"{login}\" timeout=\"{TIMEOUT}\" ignore-error=\"true\">\n\
             {indent}    <set-url>{url}</set-url>\n\
             {indent}    <set-method>POST</set-method>\n\
             {indent}    <set-header name=\"Content-Type\" exists-action=\"override\">\n\
             {indent}        <value>application/json</value>\n\
             {indent}    </set-header>{ns}\n\
             {indent}    <set-body>@(new JObject(new JProperty(\"role\", {role}), new JProperty(\"jwt\", context.Variables.GetValueOrDefault<string>(\"{mi}\", \"\"))).ToString())</set-body>\n\
             {indent}</send-request>\n\
             {indent}<choose>\n\
             {indent}    <when condition=\"@({ok})\">\n",
            aud = xml_attr(&first.audience),
            url = xml_text(&format!(
                "{}/v1/auth/{}/login",
                first.vault_address,
                url_path(&first.backend)
            )),
            ns = namespace_header(first, &format!("{indent}    ")),
            role = cs_string(&first.role),
            ok = answered(&login),
        );
        for s in members {
            let var = read_var(s);
            if !clear.contains(&var) {
                let _ = writeln!(x, "{}", read(s, &format!("{indent}        ")));
                clear.push(var);
            }
        }
        x.push_str(&read_failures(members, &format!("{indent}        ")));
        let _ = writeln!(x, "{indent}    </when>");
        x.push_str(&login_failures(
            members,
            &mi,
            &login,
            &format!("{indent}    "),
        ));
        let _ = writeln!(
            x,
            "{indent}</choose>\n{indent}<set-variable name=\"{mi}\" value=\"\" />"
        );
        clear.push(login);
    }
    let mut json = String::from("\"{\"");
    for s in set {
        let _ = write!(
            json,
            " + ({ok} ? {key} + \":\" + JsonConvert.SerializeObject({field}.ToString()) + \",\" : \"\")",
            ok = read_ok(s),
            key = cs_string(&format!("\"{}\"", s.name)),
            field = field(s),
        );
    }
    json.push_str(" + \"\\\"\\\":0}\"");
    let _ = writeln!(
        x,
        "{indent}<set-variable name=\"{var}\" value=\"@({json})\" />"
    );
    (x, clear)
}

/// The step of a fetch that failed: its `step` metadata and its `outcome` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// No managed-identity token for the audience.
    ManagedIdentity,
    /// Vault refused the login, or did not answer.
    Login,
    /// Vault refused the read, or did not answer.
    Read,
    /// The read succeeded, without the binding's field.
    Field,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::ManagedIdentity => "managed-identity",
            Step::Login => "login",
            Step::Read => "read",
            Step::Field => "field",
        }
    }
    fn outcome(self) -> &'static str {
        match self {
            Step::ManagedIdentity => "managed-identity-failed",
            Step::Login => "login-failed",
            Step::Read => "read-failed",
            Step::Field => "field-missing",
        }
    }
}

/// A `@{...}` expression: what Vault answered to the `send-request` into `var`, as
/// `HTTP <status> <errors>` (Vault's `errors` array as JSON, at most [`ERRORS_MAX`]
/// characters), or that there was no answer. Only Vault's `errors` are taken from the body,
/// and only from a JSON answer: the block describes failed calls, whose answers hold no
/// token and no secret.
fn vault_said(var: &str) -> String {
    let r = response(var);
    [
        "@{ ".to_string(),
        format!("if (!context.Variables.ContainsKey(\"{var}\") || {r} == null) {{ return \"no answer (timeout or connection failure)\"; }} "),
        format!("var r = {r}; "),
        "string errors = \"\"; ".to_string(),
        "if (r.Headers.GetValueOrDefault(\"Content-Type\", \"\").Contains(\"json\")) { errors = JsonConvert.SerializeObject(r.Body.As<JObject>(preserveContent: true)[\"errors\"]); } ".to_string(),
        format!("if (errors.Length > {ERRORS_MAX}) {{ errors = errors.Substring(0, {ERRORS_MAX}) + \"...\"; }} "),
        "return \"HTTP \" + r.StatusCode + \" \" + errors; }".to_string(),
    ]
    .concat()
}

/// The record of a failure of `step` for `bindings`: a `trace` whose message is `what` (a C#
/// string literal) followed by `detail` (a `@{...}` expression setting [`FAILURE`] first, or
/// none), with the bindings and the step as metadata; and, per binding that names a logger,
/// its metric or event.
fn failure(
    bindings: &[&BindingSpec],
    step: Step,
    what: &str,
    detail: Option<String>,
    indent: &str,
) -> String {
    let names = bindings
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut x = String::new();
    let text = match &detail {
        Some(expr) => {
            let _ = writeln!(
                x,
                "{indent}<set-variable name=\"{FAILURE}\" value=\"{expr}\" />"
            );
            format!(
                "{} + context.Variables.GetValueOrDefault<string>(\"{FAILURE}\", \"\")",
                cs_string(what)
            )
        }
        None => cs_string(what),
    };
    let _ = writeln!(
        x,
        "{indent}<trace source=\"{TRACE_SOURCE}\" severity=\"error\">\n\
         {indent}    <message>@({} + {text})</message>\n\
         {indent}    <metadata name=\"binding\" value=\"{}\" />\n\
         {indent}    <metadata name=\"step\" value=\"{}\" />\n\
         {indent}</trace>",
        cs_string(&format!("{names}: ")),
        xml_attr(&names),
        step.name(),
    );
    x.push_str(&logger_records(bindings, step, &text, indent));
    if detail.is_some() {
        let _ = writeln!(x, "{indent}<set-variable name=\"{FAILURE}\" value=\"\" />");
    }
    x
}

/// The records a failure of `step` leaves in the loggers of `bindings` that name one: an
/// `emit-metric`, or a `log-to-eventhub` event whose `detail` is `text` (a C# expression).
fn logger_records(bindings: &[&BindingSpec], step: Step, text: &str, indent: &str) -> String {
    let mut x = String::new();
    for s in bindings {
        let Some(logger) = &s.logger else { continue };
        match logger.kind {
            LoggerKind::Metric => {
                let _ = writeln!(
                    x,
                    "{indent}<emit-metric name=\"{METRIC}\" namespace=\"{METRIC_NAMESPACE}\" value=\"1\">\n\
                     {indent}    <dimension name=\"binding\" value=\"{}\" />\n\
                     {indent}    <dimension name=\"outcome\" value=\"{}\" />\n\
                     {indent}</emit-metric>",
                    xml_attr(&s.name),
                    step.outcome(),
                );
            }
            LoggerKind::EventHub => {
                let _ = writeln!(
                    x,
                    "{indent}<log-to-eventhub logger-id=\"{}\">@(JsonConvert.SerializeObject(new JObject(new JProperty(\"source\", \"{TRACE_SOURCE}\"), new JProperty(\"api\", context.Api.Id), new JProperty(\"binding\", {}), new JProperty(\"step\", \"{}\"), new JProperty(\"outcome\", \"{}\"), new JProperty(\"detail\", {text}))))</log-to-eventhub>",
                    xml_attr(logger.name()),
                    cs_string(&s.name),
                    step.name(),
                    step.outcome(),
                );
            }
        }
    }
    x
}

/// The branches of a login group's `choose` that run when its login did not succeed: no
/// managed-identity token (the login was sent without one), or Vault's refusal.
fn login_failures(members: &[&BindingSpec], mi: &str, login: &str, indent: &str) -> String {
    let first = members[0];
    let inner = format!("{indent}    ");
    format!(
        "{indent}<when condition=\"@(string.IsNullOrEmpty(context.Variables.GetValueOrDefault<string>(\"{mi}\", \"\")))\">\n\
         {}\
         {indent}</when>\n\
         {indent}<otherwise>\n\
         {}\
         {indent}</otherwise>\n",
        failure(
            members,
            Step::ManagedIdentity,
            &format!(
                "no managed-identity token for audience {}: the gateway could not log in to Vault",
                first.audience
            ),
            None,
            &inner,
        ),
        failure(
            members,
            Step::Login,
            &format!(
                "Vault login as role {} at auth/{} failed: ",
                first.role, first.backend
            ),
            Some(vault_said(login)),
            &inner,
        ),
    )
}

/// After a login group's reads: per read that did not succeed, its record; per binding whose
/// read succeeded without its field, its record.
fn read_failures(members: &[&BindingSpec], indent: &str) -> String {
    let mut x = String::new();
    for (var, sharing) in by_read(members) {
        let s = sharing[0];
        let _ = write!(
            x,
            "{indent}<choose>\n{indent}    <when condition=\"@(!({}))\">\n{}{indent}    </when>\n{indent}</choose>\n",
            answered(&var),
            failure(
                &sharing,
                Step::Read,
                &format!("Vault read of {} failed: ", s.secret_path),
                Some(vault_said(&var)),
                &format!("{indent}        "),
            ),
        );
    }
    x.push_str(&field_failures(members, indent));
    x
}

/// The bindings of `members` grouped by the read they share (`read_var`), in the order of
/// their first binding.
fn by_read<'a>(members: &[&'a BindingSpec]) -> Vec<(String, Vec<&'a BindingSpec>)> {
    let mut groups: Vec<(String, Vec<&'a BindingSpec>)> = Vec::new();
    for s in members {
        let var = read_var(s);
        match groups.iter_mut().find(|(v, _)| *v == var) {
            Some((_, group)) => group.push(s),
            None => groups.push((var, vec![s])),
        }
    }
    groups
}

/// A read that succeeded without a binding's field: one check per read, whose trace names
/// the bindings whose field is missing (a few characters per binding, so that many bindings
/// on one secret stay within the policy document's size); a binding with a logger also gets
/// its own metric or event.
fn field_failures(members: &[&BindingSpec], indent: &str) -> String {
    let mut x = String::new();
    let i2 = format!("{indent}        ");
    for (var, sharing) in by_read(members) {
        let s = sharing[0];
        let data = data_of(s);
        let missing =
            |m: &BindingSpec| format!("d == null || d[{}] == null", cs_string(&m.secret_field));
        let any = sharing
            .iter()
            .map(|m| missing(m))
            .collect::<Vec<_>>()
            .join(" || ");
        // `n`: the bindings whose field is missing, `f`: their fields.
        let mut list = String::new();
        for m in &sharing {
            let _ = write!(
                list,
                "if ({}) {{ n = n + (n == \"\" ? \"\" : \", \") + {}; f = f + (f == \"\" ? \"\" : \", \") + {}; }} ",
                missing(m),
                cs_string(&m.name),
                cs_string(&m.secret_field),
            );
        }
        let names = sharing
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            x,
            "{indent}<choose>\n\
             {indent}    <when condition=\"@{{ if (!({answered})) {{ return false; }} var d = {data}; return {any}; }}\">\n\
             {indent}        <trace source=\"{TRACE_SOURCE}\" severity=\"error\">\n\
             {indent}            <message>@{{ var d = {data}; string n = \"\"; string f = \"\"; {list}return n + {what} + f; }}</message>\n\
             {indent}            <metadata name=\"binding\" value=\"{}\" />\n\
             {indent}            <metadata name=\"step\" value=\"{}\" />\n\
             {indent}        </trace>\n",
            xml_attr(&names),
            Step::Field.name(),
            answered = answered(&var),
            what = cs_string(&format!(
                ": Vault read of {} succeeded, without the field ",
                s.secret_path
            )),
        );
        for m in sharing.iter().filter(|m| m.logger.is_some()) {
            let what = cs_string(&format!(
                "Vault read of {} succeeded, without the field {}",
                m.secret_path, m.secret_field
            ));
            let _ = write!(
                x,
                "{i2}<choose>\n{i2}    <when condition=\"@{{ var d = {data}; return {}; }}\">\n{}{i2}    </when>\n{i2}</choose>\n",
                missing(m),
                logger_records(&[m], Step::Field, &what, &format!("{i2}        ")),
            );
        }
        let _ = writeln!(x, "{indent}    </when>\n{indent}</choose>");
    }
    x
}

/// The cache key of the API's cached secrets: it changes with every setting that decides a
/// secret and with every `rotation`, so a change is never answered from the cache.
fn cache_key(api: &str, set: &[&BindingSpec]) -> String {
    // The entry's format is part of the key: a block of another format never reads it.
    let mut parts: Vec<String> = vec![api.to_string(), "refresh-at:ends-at:json".to_string()];
    for s in set {
        parts.extend([
            s.name.clone(),
            s.vault_address.clone(),
            s.vault_namespace.clone().unwrap_or_default(),
            s.backend.clone(),
            s.role.clone(),
            s.audience.clone(),
            s.secret_path.clone(),
            s.secret_field.clone(),
            s.kv_v2.to_string(),
            s.rotation.to_string(),
        ]);
        if s.generation > 0 {
            parts.push(format!("generation {}", s.generation));
        }
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    format!("apim-vault-{:016x}", hash(&refs))
}

/// How long the cached secrets may be kept, in seconds (a C# `int` expression): the shortest
/// `cache_ttl`, and less than any lease Vault gave with this fetch (or the time until it
/// rotates static credentials); reads that failed are left out.
fn duration(set: &[&BindingSpec]) -> String {
    let ttl = set.iter().map(|s| s.cache_ttl).min().unwrap_or(0);
    let mut expr = ttl.to_string();
    let mut seen = Vec::new();
    for s in set.iter().filter(|s| s.leased) {
        if seen.contains(&read_var(s)) {
            continue;
        }
        seen.push(read_var(s));
        let b = body(&read_var(s));
        // A lease's duration; database static credentials come without one and say in
        // `data.ttl` how long until Vault rotates them. One second less, as the clock runs
        // from Vault's answer, not from the store.
        // A read that failed bounds nothing (what it would have given is not kept).
        expr = format!(
            "Math.Min({expr}, !({ok}) ? {ttl} : Math.Max(0, ({b}.Value<int>(\"lease_duration\") > 0 ? {b}.Value<int>(\"lease_duration\") : ({b}[\"data\"][\"ttl\"] != null ? {b}[\"data\"].Value<int>(\"ttl\") : 0)) - 1))",
            ok = answered(&read_var(s)),
        );
    }
    expr
}

fn record(s: &BindingSpec) -> String {
    let json = serde_json::to_vec(s).unwrap_or_default();
    format!(
        "{RECORD}{} {} -->",
        s.name,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    )
}

/// C# statements reading the cached entry in the local `c`, whose text is
/// `<due>:<until>:<body>` (times in ticks of [`NOW`]; the body is the secrets' JSON,
/// `pending`, or `!` and the JSON of what a failed fetch got): `r` (what follows the first
/// `:`), `until` and `body`.
const PARSE_C: &str = "var r = c.Substring(c.IndexOf(\":\") + 1); var until = long.Parse(r.Substring(0, r.IndexOf(\":\"))); var body = r.Substring(r.IndexOf(\":\") + 1);";

/// The C# condition "the entry parsed by [`PARSE_C`] holds secrets and has not ended".
const HOLDS_SECRETS: &str =
    "now < until && !body.StartsWith(\"pending\") && !body.StartsWith(\"!\")";

/// `template` with each `@@NAME@@` replaced by its value, in one pass: a value is never
/// searched for placeholders (it may hold text from the configuration).
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find("@@") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("@@") else {
            out.push_str(&rest[i..]);
            return out;
        };
        match values.iter().find(|(n, _)| *n == &after[..j]) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[i..i + 2 + j + 2]),
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// The cached bindings' part of the block. The API's cached secrets are one cache entry (one
/// `cache-lookup-value`, one `cache-store-value`, as APIM allows one of each per policy
/// section), which the part reads and writes from a `retry` whose passes are a second apart
/// (the second at once), so that one request fetches while the others wait for it:
///
/// - a fresh entry is used as it is;
/// - an entry in its last quarter (at most [`REFRESH_MS`] before it ends) is claimed by the
///   first request that sees it: that request stores the same entry, due again only after
///   [`CLAIM_MS`] and ending when it ended, then fetches the secrets and stores them. The
///   requests that come meanwhile use the entry, which is still within its lease. A refresh
///   that fails keeps the entry (and records why) until it ends;
/// - a request that stored a claim looks again at once and fetches only if the entry is still
///   its claim (claims are told apart by their time, in ticks): of two requests that claimed
///   together, the later claim wins and the other waits for it;
/// - no entry (or one that ended) is claimed with a `pending` entry; requests that find it
///   pending look again each second until the claim's fetch stored its result, and use it:
///   the secrets, or what a failed fetch got (kept [`HOLD_MS`]: those requests answer as
///   `on_error` says without calling Vault). A claim ends after [`CLAIM_MS`]: the next
///   request to look claims again (a slow fetch is then run twice, and the later result is
///   the one kept, even a failure after a success: a second of `on_error` at most).
///
/// So a login comes from a claim: one per entry and refresh, however many requests are in
/// flight; while Vault fails, one per [`HOLD_MS`] and fetch time, or per [`CLAIM_MS`] while
/// it hangs. Nothing is served after
/// its entry ended: every use compares the entry's end with the clock (the cache may keep an
/// entry up to a second longer, as its durations are whole seconds).
fn cached_part(api: &str, cached: &[&BindingSpec], indent: &str) -> String {
    // Every variable the part reads is set before it is read (the entry to "" before its
    // lookup). Before a fetch, `STORE` is set only by a claim: `V_CLAIM` is this request's
    // claim, or "".
    let var = |v: &str| format!("((string)context.Variables[\"{v}\"])");
    let (fetched, used) = fetch(cached, FETCHED, "            ");
    let all_ok = cached
        .iter()
        .map(|s| format!("({})", read_ok(s)))
        .collect::<Vec<_>>()
        .join(" && ");
    let clears: String = used
        .iter()
        .map(|v| format!("            <set-variable name=\"{v}\" value=\"\" />\n"))
        .collect();
    let template = r#"<set-variable name="@@STEP@@" value="look" />
<set-variable name="@@PASS@@" value="@(0)" />
<retry condition="@(@@V_STEP@@ == "look" || @@V_STEP@@ == "verify" || @@V_STEP@@ == "fetch")" count="@@COUNT@@" interval="1" first-fast-retry="true">
    <set-variable name="@@PASS@@" value="@((int)context.Variables["@@PASS@@"] + 1)" />
    <choose>
        <when condition="@(@@V_STEP@@ == "look" || @@V_STEP@@ == "verify")">
            <set-variable name="@@CACHED@@" value="" />
            <cache-lookup-value key="@@KEY@@" variable-name="@@CACHED@@" caching-type="internal" />
            <set-variable name="@@STEP@@" value="@{ var c = @@V_CACHED@@; if (@@V_STEP@@ == "verify" && c == @@V_STORE@@) { return "fetch"; } var now = @@NOW@@; var s = "claim"; if (c != "") { @@PARSE_C@@ if (now < until) { var due = long.Parse(c.Substring(0, c.IndexOf(":"))); if (body.StartsWith("pending")) { s = now < due ? "look" : "claim"; } else if (body.StartsWith("!")) { s = "done"; } else { s = now < due ? "done" : "claim"; } } } return (int)context.Variables["@@PASS@@"] > @@COUNT@@ && s != "done" ? "fetch" : s; }" />
        </when>
    </choose>
    <choose>
        <when condition="@(@@V_STEP@@ == "claim")">
            <set-variable name="@@STORE@@" value="@{ var c = @@V_CACHED@@; var now = @@NOW@@; if (c != "") { @@PARSE_C@@ if (@@HOLDS_SECRETS@@) { return (now + @@CLAIM@@).ToString() + ":" + r; } } return (now + @@CLAIM@@).ToString() + ":" + (now + @@CLAIM@@).ToString() + ":pending"; }" />
        </when>
    </choose>
    <choose>
        <when condition="@(@@V_STEP@@ == "fetch")">
@@FETCH@@            <set-variable name="@@DURATION@@" value="@((long)(@@DUR@@))" />
            <choose>
                <when condition="@(@@ALL_OK@@)">
                    <set-variable name="@@STORE@@" value="@{ var now = @@NOW@@; var d = (long)context.Variables["@@DURATION@@"]; return (now + d * 10000000 - (d * 2500000 < @@REFRESHL@@ ? d * 2500000 : @@REFRESHL@@)).ToString() + ":" + (now + d * 10000000).ToString() + ":" + @@V_FETCHED@@; }" />
                    <set-variable name="@@CACHED@@" value="@(@@V_STORE@@)" />
                    <set-variable name="@@STEP@@" value="store" />
                </when>
                <otherwise>
                    <set-variable name="@@CACHED@@" value="@{ var c = @@V_CACHED@@; var now = @@NOW@@; if (c != "") { @@PARSE_C@@ if (@@HOLDS_SECRETS@@) { return c; } } return "0:0:" + @@V_FETCHED@@; }" />
                    <set-variable name="@@STORE@@" value="@{ if (@@V_CLAIM@@ == "" || !@@V_CACHED@@.StartsWith("0:0:")) { return ""; } var now = @@NOW@@; var hold = (long)context.Variables["@@DURATION@@"] * 10000000; if (hold > @@HOLD@@) { hold = @@HOLD@@; } return now.ToString() + ":" + (now + hold).ToString() + ":!" + @@V_FETCHED@@; }" />
                    <set-variable name="@@STEP@@" value="@(@@V_STORE@@ == "" ? "done" : "store")" />
                </otherwise>
            </choose>
@@CLEARS@@        </when>
    </choose>
    <choose>
        <when condition="@(@@V_STEP@@ == "claim" || @@V_STEP@@ == "store")">
            <set-variable name="@@STORE_FOR@@" value="@{ var c = @@V_STORE@@; @@PARSE_C@@ return (until - @@NOW@@ + 9999999) / 10000000; }" />
            <cache-store-value key="@@KEY@@" value="@(@@V_STORE@@)" duration="@((long)context.Variables["@@STORE_FOR@@"])" caching-type="internal" />
        </when>
    </choose>
    <set-variable name="@@STEP@@" value="@(@@V_STEP@@ == "claim" ? "verify" : @@V_STEP@@ == "look" ? "look" : "done")" />
</retry>
<set-variable name="@@CACHED@@" value="@{ var c = @@V_CACHED@@; @@PARSE_C@@ return body.StartsWith("!") ? body.Substring(1) : body; }" />
"#;
    let text = fill(
        template,
        &[
            ("FETCH", fetched),
            ("CLEARS", clears),
            ("PARSE_C", PARSE_C.to_string()),
            ("HOLDS_SECRETS", HOLDS_SECRETS.to_string()),
            ("ALL_OK", all_ok),
            ("DUR", duration(cached)),
            ("KEY", xml_attr(&cache_key(api, cached))),
            ("NOW", NOW.to_string()),
            ("CLAIM", format!("{}L", u64::from(CLAIM_MS) * 10_000)),
            ("REFRESHL", format!("{}L", u64::from(REFRESH_MS) * 10_000)),
            ("COUNT", WAIT_PASSES.to_string()),
            ("DURATION", DURATION.to_string()),
            ("HOLD", format!("{}L", u64::from(HOLD_MS) * 10_000)),
            ("V_STEP", var(STEP)),
            ("V_CACHED", var(CACHED)),
            ("V_STORE", var(STORE)),
            ("V_FETCHED", var(FETCHED)),
            (
                "V_CLAIM",
                format!("context.Variables.GetValueOrDefault<string>(\"{STORE}\", \"\")"),
            ),
            ("STORE_FOR", STORE_FOR.to_string()),
            ("STEP", STEP.to_string()),
            ("PASS", PASS.to_string()),
            ("CACHED", CACHED.to_string()),
            ("STORE", STORE.to_string()),
        ],
    );
    text.lines().map(|l| format!("{indent}{l}\n")).collect()
}

/// The whole block for `api`, each line starting with `indent`.
pub fn render_block(api: &str, block: &Block, indent: &str) -> String {
    let mut x = String::new();
    let created = if block.created_policy { CREATED } else { "" };
    let _ = writeln!(x, "{indent}{BEGIN}{BEGIN_NOTE}{created} -->");
    for s in &block.bindings {
        let _ = writeln!(x, "{indent}{}", record(s));
    }
    let cached: Vec<&BindingSpec> = block.bindings.iter().filter(|s| s.cache_ttl > 0).collect();
    let live: Vec<&BindingSpec> = block.bindings.iter().filter(|s| s.cache_ttl <= 0).collect();
    let mut clear = Vec::new();
    if !cached.is_empty() {
        x.push_str(&cached_part(api, &cached, indent));
        clear.extend([CACHED, STEP, PASS, STORE, STORE_FOR, FETCHED, DURATION].map(String::from));
    }
    if !live.is_empty() {
        let (fetched, used) = fetch(&live, LIVE, indent);
        x.push_str(&fetched);
        clear.extend(used);
        clear.push(LIVE.to_string());
    }
    for s in &block.bindings {
        let source = if s.cache_ttl > 0 { CACHED } else { LIVE };
        let _ = writeln!(x, "{}", inject(s, source, indent));
    }
    for v in clear {
        let _ = writeln!(x, "{indent}<set-variable name=\"{v}\" value=\"\" />");
    }
    let _ = write!(x, "{indent}{END}");
    x
}

/// A block found in a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte range of the block in the document, with the line break before it.
    pub range: std::ops::Range<usize>,
    /// What its records say.
    pub block: Block,
    /// Bindings whose record could not be read (edited by hand).
    pub unreadable: Vec<String>,
}

/// The managed block of `raw`, if it has one.
pub fn find_block(raw: &str) -> Option<Found> {
    let begin = raw.find(BEGIN)?;
    let end = raw[begin..].find(END).map(|i| begin + i + END.len())?;
    let header_end = raw[begin..].find("-->").map(|i| begin + i)?;
    let created_policy = raw[begin..header_end].contains(CREATED);
    let mut bindings = Vec::new();
    let mut unreadable = Vec::new();
    let mut at = begin;
    while let Some(i) = raw[at..end].find(RECORD) {
        let start = at + i + RECORD.len();
        let Some(close) = raw[start..end].find("-->") else {
            break;
        };
        let text = raw[start..start + close].trim();
        let (name, data) = text.split_once(' ').unwrap_or((text, ""));
        let spec = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(data.trim())
            .ok()
            .and_then(|b| serde_json::from_slice::<BindingSpec>(&b).ok())
            .filter(|s| s.name == name);
        match spec {
            Some(s) => bindings.push(s),
            None => unreadable.push(name.to_string()),
        }
        at = start + close;
    }
    bindings.sort_by(|a, b| a.name.cmp(&b.name));
    let line_start = raw[..begin]
        .rfind(|c: char| c != ' ' && c != '\t' && c != '\r' && c != '\n')
        .map_or(0, |i| i + 1);
    Some(Found {
        range: line_start..end,
        block: Block {
            created_policy,
            bindings,
        },
        unreadable,
    })
}

/// What the bindings' policy document becomes: `doc` (`None`: the API has no policy) with
/// its block replaced by `block` (rendered for `api`), or removed when `block` has no
/// binding. `None` when the result is "no policy": the last binding of a policy the first one
/// created. Everything outside the block stays as it was, byte for byte.
pub fn with_block(doc: Option<&str>, api: &str, block: &Block) -> Result<Option<String>, String> {
    let (base, created_policy) = match doc {
        None => (policy_xml::DEFAULT_API_POLICY.to_string(), true),
        Some(d) => match find_block(d) {
            Some(f) => {
                let mut base = d.to_string();
                base.replace_range(f.range.clone(), "");
                (base, f.block.created_policy)
            }
            None => (d.to_string(), false),
        },
    };
    if block.bindings.is_empty() {
        let untouched_default = policy_xml::equivalent(
            &base,
            Format::Raw,
            policy_xml::DEFAULT_API_POLICY,
            Format::Raw,
        );
        return Ok(if created_policy && untouched_default {
            None
        } else {
            Some(base)
        });
    }
    let block = Block {
        created_policy,
        bindings: block.bindings.clone(),
    };
    let (at, indent) = policy_xml::inbound_insertion(&base)?;
    let rendered = render_block(api, &block, &indent);
    Ok(Some(format!("{}\n{rendered}{}", &base[..at], &base[at..])))
}

/// True when `doc`'s block is exactly what its records render (APIM's reformatting aside):
/// nobody edited it by hand.
pub fn block_intact(doc: &str, api: &str) -> bool {
    let Some(found) = find_block(doc) else {
        return false;
    };
    if !found.unreadable.is_empty() {
        return false;
    }
    let wrap = |b: &str| format!("<policies><inbound>{b}</inbound></policies>");
    let expected = render_block(api, &found.block, "");
    policy_xml::equivalent(
        &wrap(&doc[found.range.clone()]),
        Format::Raw,
        &wrap(&expected),
        Format::Raw,
    ) && doc[found.range.clone()].matches(RECORD).count() == found.block.bindings.len()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn spec(name: &str) -> BindingSpec {
        BindingSpec {
            name: name.into(),
            vault_address: "https://vault.example.com:8200".into(),
            vault_namespace: None,
            backend: "jwt".into(),
            role: "orders".into(),
            audience: "api://vault".into(),
            secret_path: "kv/data/orders/backend".into(),
            secret_field: "api_key".into(),
            kv_v2: true,
            leased: false,
            inject: Inject::Header("X-Api-Key".into()),
            cache_ttl: 300,
            rotation: 0,
            fail_on_error: true,
            api_ref: None,
            generation: 0,
            logger: None,
        }
    }

    fn block(specs: Vec<BindingSpec>) -> Block {
        Block {
            created_policy: false,
            bindings: specs,
        }
    }

    #[test]
    fn one_lookup_one_store_and_one_login_per_role_whatever_the_number_of_bindings() {
        let mut other_role = spec("c");
        other_role.role = "billing".into();
        let b = block(vec![spec("a"), spec("b"), other_role]);
        let x = render_block("orders", &b, "");
        assert_eq!(x.matches("<cache-lookup-value").count(), 1);
        assert_eq!(x.matches("<cache-store-value").count(), 1);
        assert_eq!(x.matches("<authentication-managed-identity").count(), 2);
        assert_eq!(x.matches("/login</set-url>").count(), 2);
        assert!(x.matches("apim-vault-read-").count() >= 3);
        assert!(x.contains("caching-type=\"internal\""));
        assert!(!x.contains("{{") && !x.contains("}}"), "{x}");
        assert!(!x.contains("include-fragment"));
    }

    #[test]
    fn the_block_is_well_formed_in_the_xml_view_and_reads_back_its_records() {
        let mut leased = spec("db");
        leased.leased = true;
        leased.kv_v2 = false;
        leased.secret_path = "database/creds/orders".into();
        leased.inject = Inject::Variable("db-password".into());
        let mut live = spec("live");
        live.cache_ttl = 0;
        live.fail_on_error = false;
        live.vault_namespace = Some("team-a".into());
        let b = block(vec![spec("a"), leased, live]);
        let doc = with_block(Some(policy_xml::DEFAULT_API_POLICY), "orders", &b)
            .unwrap()
            .unwrap();
        assert!(policy_xml::canonical(&doc, Format::Raw).is_ok(), "{doc}");
        let found = find_block(&doc).unwrap();
        assert_eq!(found.block.bindings, b.bindings);
        assert!(found.unreadable.is_empty());
        assert!(block_intact(&doc, "orders"));
        assert!(
            doc.contains("Math.Min(300, "),
            "leases bound the cache: {doc}"
        );
    }

    #[test]
    fn removing_the_last_binding_restores_the_document_byte_for_byte() {
        let original = "<policies>\n  <inbound>\n    <base />\n    <set-header name=\"A\" exists-action=\"override\">\n      <value>1</value>\n    </set-header>\n  </inbound>\n  <backend>\n    <base />\n  </backend>\n  <outbound>\n    <base />\n  </outbound>\n  <on-error>\n    <base />\n  </on-error>\n</policies>";
        let with = with_block(Some(original), "orders", &block(vec![spec("a")]))
            .unwrap()
            .unwrap();
        let with_two = with_block(Some(&with), "orders", &block(vec![spec("a"), spec("b")]))
            .unwrap()
            .unwrap();
        let back = with_block(Some(&with_two), "orders", &block(vec![]))
            .unwrap()
            .unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn a_policy_the_first_binding_created_is_deleted_by_the_last() {
        let with = with_block(None, "orders", &block(vec![spec("a")]))
            .unwrap()
            .unwrap();
        assert!(find_block(&with).unwrap().block.created_policy);
        assert_eq!(
            with_block(Some(&with), "orders", &block(vec![])).unwrap(),
            None
        );
    }

    #[test]
    fn a_hand_edited_block_is_not_intact() {
        let doc = with_block(None, "orders", &block(vec![spec("a")]))
            .unwrap()
            .unwrap();
        let edited = doc.replace(
            "caching-type=\"internal\" />",
            "caching-type=\"prefer-external\" />",
        );
        assert!(!block_intact(&edited, "orders"));
    }

    #[test]
    fn bindings_reading_one_secret_share_one_read() {
        let mut user = spec("db-user");
        user.secret_path = "database/creds/orders".into();
        user.secret_field = "username".into();
        user.kv_v2 = false;
        user.leased = true;
        let password = BindingSpec {
            name: "db-password".into(),
            secret_field: "password".into(),
            ..user.clone()
        };
        let x = render_block("orders", &block(vec![password, user]), "");
        assert_eq!(
            x.matches("/v1/database/creds/orders</set-url>").count(),
            1,
            "{x}"
        );
        // One lease read (named twice: tested, then taken).
        assert_eq!(x.matches("lease_duration").count(), 2, "{x}");
    }

    #[test]
    fn the_key_changes_with_rotation() {
        let a = spec("a");
        let mut rotated = spec("a");
        rotated.rotation = 1;
        assert_ne!(cache_key("orders", &[&a]), cache_key("orders", &[&rotated]));
        assert_eq!(
            cache_key("orders", &[&a]),
            cache_key("orders", &[&spec("a")])
        );
    }

    #[test]
    fn the_key_changes_with_the_generation_which_the_record_keeps() {
        let a = spec("a");
        let mut bumped = spec("a");
        bumped.generation = 1;
        assert_ne!(cache_key("orders", &[&a]), cache_key("orders", &[&bumped]));
        // Generation 0 is not written: records and keys of bindings never rotated stay as
        // they were.
        assert!(!record(&a).contains("generation"));
        let doc = with_block(None, "orders", &block(vec![bumped.clone()]))
            .unwrap()
            .unwrap();
        let found = find_block(&doc).unwrap();
        assert_eq!(found.block.bindings, vec![bumped]);
        assert!(block_intact(&doc, "orders"));
    }

    #[test]
    fn every_failed_step_leaves_a_trace_and_the_loggers_record() {
        let mut events = spec("a");
        events.logger = Some(Logger {
            id: "vault-events".into(),
            kind: LoggerKind::EventHub,
        });
        let mut metrics = spec("b");
        metrics.logger = Some(Logger {
            id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/apim/loggers/vault-metrics".into(),
            kind: LoggerKind::Metric,
        });
        let x = render_block("orders", &block(vec![events, metrics]), "");
        // One login for both (one role), one read (one secret): managed identity, login, read
        // and the field check each name both bindings (the field trace's message says whose
        // field is missing).
        assert_eq!(x.matches("<trace ").count(), 4, "{x}");
        let lines: Vec<&str> = x.lines().map(str::trim).collect();
        for step in ["managed-identity", "login", "read", "field"] {
            let at = lines
                .iter()
                .position(|l| *l == format!("<metadata name=\"step\" value=\"{step}\" />"))
                .unwrap_or_else(|| panic!("no {step} trace: {x}"));
            assert_eq!(
                lines[at - 1],
                "<metadata name=\"binding\" value=\"a, b\" />"
            );
        }
        for name in ["a", "b"] {
            let listed = format!("n = n + (n == \"\" ? \"\" : \", \") + {};", cs_string(name));
            assert!(x.contains(&listed), "{listed}: {x}");
        }
        // Each binding's logger: its three shared steps and its own field.
        assert_eq!(
            x.matches("<log-to-eventhub logger-id=\"vault-events\">")
                .count(),
            4
        );
        assert_eq!(x.matches("<emit-metric ").count(), 4, "{x}");
        assert_eq!(
            x.matches("<dimension name=\"binding\" value=\"b\" />")
                .count(),
            4
        );
        for outcome in [
            "managed-identity-failed",
            "login-failed",
            "read-failed",
            "field-missing",
        ] {
            assert!(
                x.contains(&format!(
                    "<dimension name=\"outcome\" value=\"{outcome}\" />"
                )),
                "{outcome}"
            );
        }
        assert!(!x.contains("{{") && !x.contains("}}"), "{x}");
        // What Vault said comes from failed calls only, and only their `errors`: the login's
        // token is read once, by the read it authorises.
        assert_eq!(x.matches("client_token").count(), 1, "{x}");
        assert_eq!(x.matches("[\"errors\"]").count(), 2, "login and read: {x}");
        // The variable holding it is emptied where it is set.
        assert_eq!(
            x.matches(&format!("<set-variable name=\"{FAILURE}\" value=\"@{{"))
                .count(),
            x.matches(&format!("<set-variable name=\"{FAILURE}\" value=\"\" />"))
                .count()
        );
        let doc = with_block(None, "orders", &block(vec![spec("c")]))
            .unwrap()
            .unwrap();
        assert!(policy_xml::canonical(&doc, Format::Raw).is_ok(), "{doc}");
        assert!(block_intact(&doc, "orders"));
    }

    #[test]
    fn a_record_without_a_logger_reads_back_and_one_with_it_round_trips() {
        let mut s = spec("a");
        let doc = with_block(None, "orders", &block(vec![s.clone()]))
            .unwrap()
            .unwrap();
        assert!(!doc.contains("<emit-metric") && !doc.contains("<log-to-eventhub"));
        s.logger = Some(Logger {
            id: "vault-events".into(),
            kind: LoggerKind::EventHub,
        });
        let doc = with_block(None, "orders", &block(vec![s.clone()]))
            .unwrap()
            .unwrap();
        assert_eq!(find_block(&doc).unwrap().block.bindings, vec![s]);
    }

    mod properties {
        use super::*;
        use crate::framework::diag::{AttrPath, Diags};
        use crate::framework::value::Value;
        use crate::resources::vault_binding::grammar::*;
        use proptest::prelude::*;
        use quick_xml::events::Event;

        fn accepted(check: fn(&Value, &AttrPath, &mut Diags), s: &str) -> bool {
            let mut d = Diags::new();
            check(&Value::from(s), &AttrPath::root("x"), &mut d);
            !d.has_errors()
        }

        /// An element's name, attributes and text.
        type Element = (String, Vec<(String, String)>, String);

        /// Every element of the rendered document (in its `xml` view) with its attributes
        /// and text: what APIM parses.
        fn elements(doc: &str) -> Vec<Element> {
            let xml = policy_xml::raw_to_xml(doc);
            let mut r = quick_xml::Reader::from_str(&xml);
            let mut out: Vec<Element> = Vec::new();
            loop {
                match r.read_event().expect("well-formed") {
                    Event::Start(e) | Event::Empty(e) => {
                        let attrs = e
                            .attributes()
                            .map(|a| {
                                let a = a.unwrap();
                                (
                                    String::from_utf8_lossy(a.key.as_ref()).into_owned(),
                                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                        .unwrap()
                                        .into_owned(),
                                )
                            })
                            .collect();
                        out.push((
                            String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                            attrs,
                            String::new(),
                        ));
                    }
                    Event::Text(t) => {
                        if let Some(last) = out.last_mut() {
                            last.2.push_str(t.decode().unwrap().trim());
                        }
                    }
                    Event::GeneralRef(g) => {
                        if let Some(last) = out.last_mut() {
                            let name = String::from_utf8_lossy(g.as_ref()).into_owned();
                            let c = match name.as_str() {
                                "amp" => "&".to_string(),
                                "lt" => "<".to_string(),
                                "gt" => ">".to_string(),
                                "quot" => "\"".to_string(),
                                "apos" => "'".to_string(),
                                n => n
                                    .strip_prefix("#x")
                                    .map(|h| u32::from_str_radix(h, 16))
                                    .or_else(|| n.strip_prefix('#').map(|d| d.parse::<u32>()))
                                    .and_then(|r| r.ok())
                                    .and_then(char::from_u32)
                                    .map(String::from)
                                    .unwrap_or_default(),
                            };
                            last.2.push_str(&c);
                        }
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]
            /// Whatever the grammar accepts renders a policy with exactly the expected
            /// elements, whose secret URL is exactly the checked path and whose names are
            /// exactly the configured ones: no value can add, remove or rewrite an element.
            #[test]
            fn accepted_values_render_exactly_the_expected_policy(
                // Alphabets mixing what the grammar allows with what would break out of a
                // context (quotes, braces, `@`, `<`, `&`, `?`, `#`, `%`, whitespace, dots).
                role in prop_oneof![4 => "[a-z0-9_][a-z0-9_.\\-]{0,8}[a-z0-9_]", 1 => "[a-z0-9_.\\-\"'{}@<&/ ]{1,10}"],
                path in prop_oneof![4 => "[a-z0-9_\\-]{1,6}(/[a-z0-9_.\\-]{1,6}){0,3}", 1 => "[a-z0-9_.\\-/\"{}@?#%]{1,16}"],
                audience in prop_oneof![4 => "(api://|https://)[a-z0-9.\\-/:]{1,16}", 1 => "[a-z0-9.\\-/:\"{}@<& ]{1,16}"],
                namespace in proptest::option::of(prop_oneof![4 => "[a-z0-9_\\-]{1,8}", 1 => "[a-z0-9_.\\-/\"{}@]{1,10}"]),
                header in prop_oneof![4 => "[A-Za-z0-9_.\\-]{1,10}", 1 => "[A-Za-z0-9_.\\-\"{}:@<& ]{1,10}"],
                field in prop_oneof![4 => "[a-z0-9_.\\-]{1,10}", 1 => "[a-z0-9_.\\-\"{}@<]{1,10}"],
                logger in proptest::option::of(prop_oneof![4 => "[A-Za-z0-9_.\\-]{1,12}", 1 => "[A-Za-z0-9_.\\-\"{}@<&/ ]{1,12}"]),
                metric in any::<bool>(),
            ) {
                prop_assume!(accepted(validate_vault_name, &role));
                prop_assume!(accepted(validate_secret_path, &path));
                prop_assume!(accepted(validate_audience, &audience));
                prop_assume!(namespace.as_deref().is_none_or(|n| accepted(validate_namespace, n)));
                prop_assume!(accepted(validate_inject_name, &header));
                prop_assume!(accepted(validate_secret_field, &field));
                prop_assume!(logger.as_deref().is_none_or(|l| accepted(validate_logger_id, l)));
                let mut s = spec("b");
                s.role = role;
                s.secret_path = path.clone();
                s.audience = audience.clone();
                s.vault_namespace = namespace.clone();
                s.inject = Inject::Header(header.clone());
                s.secret_field = field;
                s.logger = logger.clone().map(|id| Logger {
                    id,
                    kind: if metric { LoggerKind::Metric } else { LoggerKind::EventHub },
                });
                let doc = with_block(None, "orders", &block(vec![s.clone()])).unwrap().unwrap();
                prop_assert!(!doc.contains("{{") && !doc.contains("}}"));
                let found = find_block(&doc).unwrap();
                prop_assert_eq!(&found.block.bindings, &vec![s.clone()]);
                let els = elements(&doc);
                let count = |n: &str| els.iter().filter(|(name, _, _)| name == n).count();
                prop_assert_eq!(count("send-request"), 2);
                prop_assert_eq!(count("authentication-managed-identity"), 1);
                prop_assert_eq!(count("cache-lookup-value"), 1);
                prop_assert_eq!(count("cache-store-value"), 1);
                prop_assert_eq!(count("set-header"), 3 + 2 * usize::from(namespace.is_some()));
                // A trace per failed step (managed identity, login, read, field), naming the
                // binding; and per step the logger's metric or event.
                prop_assert_eq!(count("trace"), 4);
                let meta: Vec<(String, String)> = els.iter().filter(|(n, _, _)| n == "metadata")
                    .map(|(_, a, _)| (a[0].1.clone(), a[1].1.clone())).collect();
                prop_assert_eq!(meta.iter().filter(|(k, v)| k == "binding" && v == "b").count(), 4);
                let per_step = usize::from(logger.is_some()) * 4;
                prop_assert_eq!(count("emit-metric"), if metric { per_step } else { 0 });
                prop_assert_eq!(count("log-to-eventhub"), if metric { 0 } else { per_step });
                let ids: Vec<String> = els.iter().filter(|(n, _, _)| n == "log-to-eventhub")
                    .filter_map(|(_, a, _)| a.iter().find(|(k, _)| k == "logger-id").map(|(_, v)| v.clone())).collect();
                if let (Some(l), false) = (&logger, metric) {
                    let name = l.rsplit('/').next().unwrap_or(l).to_string();
                    prop_assert_eq!(ids, vec![name; 4]);
                }
                let urls: Vec<&str> = els.iter().filter(|(n, _, _)| n == "set-url").map(|(_, _, t)| t.as_str()).collect();
                prop_assert_eq!(urls, vec![
                    "https://vault.example.com:8200/v1/auth/jwt/login".to_string(),
                    format!("https://vault.example.com:8200/v1/{path}"),
                ]);
                let resource = els.iter().find(|(n, _, _)| n == "authentication-managed-identity")
                    .and_then(|(_, a, _)| a.iter().find(|(k, _)| k == "resource")).map(|(_, v)| v.clone());
                prop_assert_eq!(resource, Some(audience));
                let names: Vec<String> = els.iter().filter(|(n, _, _)| n == "set-header")
                    .filter_map(|(_, a, _)| a.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone())).collect();
                prop_assert!(names.contains(&header), "{names:?}");
                if let Some(ns) = &namespace {
                    let values: Vec<&str> = els.iter().filter(|(n, _, _)| n == "value").map(|(_, _, t)| t.trim()).collect();
                    prop_assert!(values.contains(&ns.as_str()), "{values:?}");
                }
            }
        }
    }
}
