//! The policy fragment of an `apim_vault_binding`: the runtime flow APIM runs on each
//! request, rendered in the `rawxml` format, and read back from a fragment for import.
//!
//! Flow: look the secret up in the gateway cache; on a miss, get a managed-identity token
//! for the audience, log in to Vault's JWT auth with it, read the secret with the Vault
//! token, keep the field in a variable and cache it for `cache_ttl` seconds; then inject it.
//! A failed login or read answers 502 (`on_error = fail`) without Vault's message, or goes
//! on without the secret (`continue`). The Vault address, role and audience come from named
//! values (`{{name}}`), so that they can be read and changed in APIM like any setting.
//!
//! Policy expressions use one small, fixed set of forms (casts of `context.Variables`,
//! `ContainsKey`, `StatusCode`, `Body.As<JObject>()` with indexers, string concatenation), so
//! that the project's runtime test can execute the fragment as APIM would.

use std::fmt::Write;

use crate::framework::model::Known;
use crate::resources::policy_xml::{self, Format};

use super::model::{spec, BindingModel, InjectBlock};

/// Where the secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inject {
    /// A request header to the backend.
    Header(String),
    /// A query parameter to the backend.
    Query(String),
    /// A context variable for other policies.
    Variable(String),
}

/// What the fragment is made from.
#[derive(Debug, Clone)]
pub struct FragmentSpec {
    /// The binding's name (lowercase letters, digits, dashes).
    pub name: String,
    /// Mount path of the JWT auth method.
    pub backend: String,
    /// API path of the secret, e.g. `kv/data/orders/backend`.
    pub secret_path: String,
    /// Field of the secret to inject.
    pub secret_field: String,
    /// KV version 2 (the field is under `data.data`, otherwise under `data`).
    pub kv_v2: bool,
    /// Vault Enterprise namespace, sent as `X-Vault-Namespace` on both Vault calls.
    pub vault_namespace: Option<String>,
    /// Where the secret goes.
    pub inject: Inject,
    /// Seconds the secret stays in the gateway cache; 0 disables caching.
    pub cache_ttl: i64,
    /// Answer 502 on failure (`fail`) rather than going on (`continue`).
    pub fail_on_error: bool,
}

/// The names of the binding's named values: (Vault address, role, audience).
pub fn named_value_names(binding: &str) -> [String; 3] {
    [
        format!("vault-{binding}-addr"),
        format!("vault-{binding}-role"),
        format!("vault-{binding}-audience"),
    ]
}

/// The policy fragment's ID.
pub fn fragment_id(binding: &str) -> String {
    format!("vault-{binding}")
}

fn attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A C# string literal.
fn cs(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A short, stable hash of the settings that decide which secret the fragment fetches.
fn settings_hash(spec: &FragmentSpec) -> String {
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        spec.backend,
        spec.secret_path,
        spec.secret_field,
        spec.kv_v2,
        spec.vault_namespace.as_deref().unwrap_or("")
    );
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

/// Renders the fragment.
pub fn render(spec: &FragmentSpec) -> String {
    let n = &spec.name;
    let [addr, role, audience] = named_value_names(n);
    let secret_var = format!("vault-secret-{n}");
    let msi_var = format!("vault-msi-{n}");
    let login_var = format!("vault-login-{n}");
    let read_var = format!("vault-read-{n}");
    // The gateway cache is shared by the whole instance: the key changes with the settings
    // that decide the secret, so an apply that changes them is not answered from the cache.
    let cache_key = format!("vault-secret-{n}-{}", settings_hash(spec));
    let field_path = if spec.kv_v2 {
        format!("[\"data\"][\"data\"][{}]", cs(&spec.secret_field))
    } else {
        format!("[\"data\"][{}]", cs(&spec.secret_field))
    };
    let namespace = spec
        .vault_namespace
        .as_deref()
        .map(|ns| {
            format!(
                "\n{0}<set-header name=\"X-Vault-Namespace\" exists-action=\"override\">\n{0}  <value>{1}</value>\n{0}</set-header>",
                "          ",
                attr(ns)
            )
        })
        .unwrap_or_default();
    let failure = if spec.fail_on_error {
        "<return-response>\n                <set-status code=\"502\" reason=\"Bad Gateway\" />\n              </return-response>"
    } else {
        "<set-variable name=\"vault-error-NAME\" value=\"true\" />"
    };
    let failure = failure.replace("NAME", n);
    let ok = |var: &str| {
        format!(
            "@(context.Variables.ContainsKey(\"{var}\") && ((IResponse)context.Variables[\"{var}\"]) != null && ((IResponse)context.Variables[\"{var}\"]).StatusCode == 200)"
        )
    };
    // The read succeeded only if the field is there: a missing field is a failure too.
    let read_ok = format!(
        "{} && ((IResponse)context.Variables[\"{read_var}\"]).Body.As<JObject>(preserveContent: true){field_path} != null)",
        ok(&read_var).trim_end_matches(')')
    );
    let mut x = String::new();
    x.push_str("<fragment>\n");
    if spec.cache_ttl > 0 {
        let _ = writeln!(
            x,
            "  <cache-lookup-value key=\"{cache_key}\" variable-name=\"{secret_var}\" />"
        );
    }
    let _ = write!(
        x,
        r#"  <choose>
    <when condition="@(!context.Variables.ContainsKey("{secret_var}"))">
      <authentication-managed-identity resource="{{{{{audience}}}}}" output-token-variable-name="{msi_var}" ignore-error="true" />
      <send-request mode="new" response-variable-name="{login_var}" timeout="10" ignore-error="true">
        <set-url>{{{{{addr}}}}}/v1/auth/{backend}/login</set-url>
        <set-method>POST</set-method>
        <set-header name="Content-Type" exists-action="override">
          <value>application/json</value>
        </set-header>{namespace}
        <set-body>@("{{\"role\":\"{{{{{role}}}}}\",\"jwt\":\"" + (string)context.Variables.GetValueOrDefault("{msi_var}", "") + "\"}}")</set-body>
      </send-request>
      <choose>
        <when condition="{login_ok}">
          <send-request mode="new" response-variable-name="{read_var}" timeout="10" ignore-error="true">
            <set-url>{{{{{addr}}}}}/v1/{secret_path}</set-url>
            <set-method>GET</set-method>
            <set-header name="X-Vault-Token" exists-action="override">
              <value>@(((IResponse)context.Variables["{login_var}"]).Body.As<JObject>()["auth"]["client_token"].ToString())</value>
            </set-header>{namespace}
          </send-request>
          <choose>
            <when condition="{read_ok}">
              <set-variable name="{secret_var}" value="@(((IResponse)context.Variables["{read_var}"]).Body.As<JObject>(preserveContent: true){field_path}.ToString())" />
"#,
        backend = attr(&spec.backend),
        secret_path = attr(&spec.secret_path),
        login_ok = ok(&login_var),
        read_ok = read_ok,
    );
    if spec.cache_ttl > 0 {
        let _ = writeln!(
            x,
            "              <cache-store-value key=\"{cache_key}\" value=\"@((string)context.Variables[\"{secret_var}\"])\" duration=\"{}\" />",
            spec.cache_ttl
        );
    }
    let _ = write!(
        x,
        r#"            </when>
            <otherwise>
              {failure}
            </otherwise>
          </choose>
        </when>
        <otherwise>
          {failure}
        </otherwise>
      </choose>
    </when>
  </choose>
  <choose>
    <when condition="@(context.Variables.ContainsKey("{secret_var}"))">
"#
    );
    let value = format!("@((string)context.Variables[\"{secret_var}\"])");
    match &spec.inject {
        Inject::Header(h) => {
            let _ = writeln!(
                x,
                "      <set-header name=\"{}\" exists-action=\"override\">\n        <value>{value}</value>\n      </set-header>",
                attr(h)
            );
        }
        Inject::Query(q) => {
            let _ = writeln!(
                x,
                "      <set-query-parameter name=\"{}\" exists-action=\"override\">\n        <value>{value}</value>\n      </set-query-parameter>",
                attr(q)
            );
        }
        Inject::Variable(v) => {
            let _ = writeln!(
                x,
                "      <set-variable name=\"{}\" value=\"{value}\" />",
                attr(v)
            );
        }
    }
    x.push_str("    </when>\n  </choose>\n</fragment>\n");
    x
}

/// The settings a fragment this provider rendered was made from (for import).
pub(super) fn parse_fragment(name: &str, xml: &str) -> Option<BindingModel> {
    let between = |start: &str, end: &str| -> Option<String> {
        let i = xml.find(start)? + start.len();
        let j = xml[i..].find(end)? + i;
        Some(xml[i..j].to_string())
    };
    let backend = between("/v1/auth/", "/login</set-url>")?;
    let read_url = format!("{{{{vault-{name}-addr}}}}/v1/");
    let after_login = &xml[xml.find("/login</set-url>")?..];
    let i = after_login.find(&read_url)? + read_url.len();
    let secret_path = after_login[i..].split("</set-url>").next()?.to_string();
    let (kv_v2, field) = if let Some(f) = between("[\"data\"][\"data\"][\"", "\"]") {
        (true, f)
    } else {
        (
            false,
            between(
                "Body.As<JObject>(preserveContent: true)[\"data\"][\"",
                "\"]",
            )?,
        )
    };
    let cache_ttl = between("duration=\"", "\"")
        .and_then(|d| d.parse::<i64>().ok())
        .unwrap_or(0);
    let mut inject = InjectBlock::default();
    let tail = &xml[xml.rfind(&format!("ContainsKey(\"vault-secret-{name}\"))\">"))?..];
    let first_attr = |start: &str| -> Option<String> {
        Some(tail.split(start).nth(1)?.split('"').next()?.to_string())
    };
    if let Some(h) = first_attr("<set-header name=\"") {
        inject.header = Some(h);
    } else if let Some(q) = first_attr("<set-query-parameter name=\"") {
        inject.query = Some(q);
    } else {
        inject.variable = Some(first_attr("<set-variable name=\"")?);
    }
    let namespace = between(
        "<set-header name=\"X-Vault-Namespace\" exists-action=\"override\">\n          <value>",
        "</value>",
    );
    let mut s = BindingModel {
        name: name.to_string(),
        backend: Some(backend),
        secret_path,
        secret_field: field,
        cache_ttl: Some(cache_ttl),
        on_error: Some(
            if xml.contains("<return-response>") {
                "fail"
            } else {
                "continue"
            }
            .to_string(),
        ),
        vault_namespace: namespace,
        inject: Some(inject),
        vault_address: Known::Value(None),
        fragment_id: Known::Value(String::new()),
        named_value_ids: Known::Value(Vec::new()),
        ..BindingModel::default()
    };
    // The text must mean exactly what the provider renders for these settings; the state
    // keeps the rendering, as after a create.
    let rendered = render(&spec(&s, kv_v2)?);
    if !policy_xml::equivalent(&rendered, Format::Raw, xml, Format::Raw) {
        return None;
    }
    s.policy_xml = Known::Value(rendered);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::policy_xml::{canonical, Format};

    fn spec() -> FragmentSpec {
        FragmentSpec {
            name: "orders".into(),
            backend: "jwt".into(),
            secret_path: "kv/data/orders/backend".into(),
            secret_field: "api_key".into(),
            kv_v2: true,
            vault_namespace: None,
            inject: Inject::Header("X-Api-Key".into()),
            cache_ttl: 300,
            fail_on_error: true,
        }
    }

    #[test]
    fn renders_the_runtime_flow_as_well_formed_rawxml() {
        let x = render(&spec());
        canonical(&x, Format::Raw).unwrap_or_else(|e| panic!("{e}\n{x}"));
        for needle in [
            "<cache-lookup-value key=\"vault-secret-orders-",
            "resource=\"{{vault-orders-audience}}\"",
            "<set-url>{{vault-orders-addr}}/v1/auth/jwt/login</set-url>",
            "\\\"role\\\":\\\"{{vault-orders-role}}\\\"",
            "<set-url>{{vault-orders-addr}}/v1/kv/data/orders/backend</set-url>",
            "[\"data\"][\"data\"][\"api_key\"] != null)\">",
            "duration=\"300\"",
            "<set-status code=\"502\" reason=\"Bad Gateway\" />",
            "<set-header name=\"X-Api-Key\" exists-action=\"override\">",
        ] {
            assert!(x.contains(needle), "missing {needle} in:\n{x}");
        }
        assert!(!x.contains("X-Vault-Namespace"));
    }

    #[test]
    fn variants() {
        let mut s = spec();
        s.cache_ttl = 0;
        s.kv_v2 = false;
        s.fail_on_error = false;
        s.vault_namespace = Some("team-a".into());
        s.inject = Inject::Query("key".into());
        let x = render(&s);
        canonical(&x, Format::Raw).unwrap();
        assert!(!x.contains("cache-"), "no caching at 0");
        assert!(
            x.contains("Body.As<JObject>(preserveContent: true)[\"data\"][\"api_key\"] != null")
        );
        assert!(x.contains("<set-variable name=\"vault-error-orders\" value=\"true\" />"));
        assert!(!x.contains("return-response"));
        assert_eq!(
            x.matches("<value>team-a</value>").count(),
            2,
            "namespace on both calls"
        );
        assert!(x.contains("<set-query-parameter name=\"key\""));
        s.inject = Inject::Variable("backendKey".into());
        assert!(render(&s).contains("<set-variable name=\"backendKey\""));
    }
}
