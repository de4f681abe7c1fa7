//! Helpers of the product and operation tests (`scopes.rs`, `scopes_arm.rs`): ARM calls with
//! `If-Match: *`, policies at a scope, operations with their template parameters, gateway
//! requests with a subscription key.

use super::echo::Echo;
use super::{Emu, V};
use reqwest::Method;
use serde_json::{json, Value};

pub fn arm(emu: &Emu, m: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s, _, v) = emu.arm(m, &format!("{path}{sep}{V}"), body, &[("If-Match", "*")]);
    (s, v)
}

pub fn put(emu: &Emu, path: &str, body: &Value) -> Value {
    let (s, v) = arm(emu, Method::PUT, path, Some(body));
    assert!(s == 200 || s == 201, "PUT {path}: {s} {v}");
    v
}

pub fn policy(emu: &Emu, parent: &str, xml: &str) {
    put(
        emu,
        &format!("{parent}/policies/policy"),
        &json!({"properties": {"format": "rawxml", "value": xml}}),
    );
}

/// A policy whose inbound appends `v` to `X-Scopes` (after the parent's when `base`).
pub fn appending(v: &str, base: bool) -> String {
    let b = if base { "<base />" } else { "" };
    format!("<policies><inbound>{b}<set-header name=\"X-Scopes\" exists-action=\"append\"><value>{v}</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>")
}

pub fn op(emu: &Emu, api: &str, id: &str, method: &str, template: &str) {
    let params: Vec<Value> = template
        .split('{')
        .skip(1)
        .filter_map(|s| s.split('}').next())
        .map(|n| json!({"name": n, "type": "string", "required": true}))
        .collect();
    put(
        emu,
        &format!("{api}/operations/{id}"),
        &json!({"properties": {"displayName": id, "method": method, "urlTemplate": template, "templateParameters": params}}),
    );
}

pub fn send(emu: &Emu, m: Method, path: &str, key: Option<&str>) -> (u16, String) {
    let mut r = emu
        .http
        .request(m, format!("{}{path}", emu.s("gateway_url")));
    if let Some(k) = key {
        r = r.header("Ocp-Apim-Subscription-Key", k);
    }
    let resp = r.send().expect("gateway request");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

pub fn key_of(emu: &Emu, sub: &str) -> String {
    let (s, v) = arm(emu, Method::POST, &format!("{sub}/listSecrets"), None);
    assert_eq!(s, 200, "{v}");
    v["primaryKey"].as_str().expect("key").to_string()
}

pub fn scopes_seen(echo: &Echo) -> Vec<String> {
    echo.last()
        .headers
        .iter()
        .filter(|(k, _)| k == "x-scopes")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|x| x.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}
