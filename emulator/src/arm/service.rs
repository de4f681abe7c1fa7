//! APIM instances (`.../providers/Microsoft.ApiManagement/service/{serviceName}`,
//! apimdeployment.json) with their managed identities, plus the resource groups that hold them.
//!
//! In Azure, creating or changing an instance takes many minutes; here PUT, PATCH and DELETE
//! complete synchronously (PUT 201/200, PATCH 200, DELETE 200/204), which every ARM client treats
//! as a finished long-running operation.

use super::body::body_object;
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::etag::{check_if_match, with_etag};
use super::response::empty;
use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::{
    parse_identity_type, resource_group_id, service_id, ResourceGroup, Service, State,
    SystemIdentity, SERVICE_TYPE,
};
use crate::util::{now_rfc3339, uuid};
use axum::http::Method;
use serde_json::{json, Map, Value};

/// 404 for a missing instance, in ARM's words.
pub fn not_found(rg: &str, name: &str) -> ArmError {
    ArmError::not_found(format!(
        "The Resource 'Microsoft.ApiManagement/service/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    ))
}

/// Whether `name` is a valid instance name: `^[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$`, 1–50
/// characters (it becomes the `{name}.azure-api.net` host name).
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 50
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// The instance as ARM returns it.
pub fn render(st: &State, svc: &Service) -> Value {
    let n = &svc.name;
    let mut props = svc.properties.as_object().cloned().unwrap_or_default();
    let computed = json!({
        "provisioningState": "Succeeded",
        "targetProvisioningState": "",
        "createdAtUtc": svc.created_at,
        "gatewayUrl": format!("https://{n}.azure-api.net"),
        "gatewayRegionalUrl": format!("https://{n}-{}-01.regional.azure-api.net", svc.location.to_ascii_lowercase().replace(' ', "")),
        "portalUrl": format!("https://{n}.portal.azure-api.net"),
        "developerPortalUrl": format!("https://{n}.developer.azure-api.net"),
        "managementApiUrl": format!("https://{n}.management.azure-api.net"),
        "scmUrl": format!("https://{n}.scm.azure-api.net"),
        "hostnameConfigurations": [{
            "type": "Proxy", "hostName": format!("{n}.azure-api.net"),
            "negotiateClientCertificate": false, "defaultSslBinding": true, "certificateSource": "BuiltIn"
        }],
        "publicIPAddresses": ["127.0.0.1"],
        "virtualNetworkType": "None",
        "disableGateway": false,
        "natGatewayState": "Disabled",
        "platformVersion": "stv2",
        "publicNetworkAccess": "Enabled",
    });
    if let Value::Object(c) = computed {
        for (k, v) in c {
            props.entry(k).or_insert(v);
        }
    }
    props
        .entry("notificationSenderEmail")
        .or_insert_with(|| json!("apimgmt-noreply@mail.windowsazure.com"));
    let mut out = json!({
        "id": svc.id,
        "name": svc.name,
        "type": SERVICE_TYPE,
        "tags": svc.tags,
        "location": svc.location,
        "etag": svc.etag,
        "properties": props,
        "sku": svc.sku,
    });
    if let Some(identity) = st.identity_json(svc) {
        out["identity"] = identity;
    }
    out
}

/// GET/PUT/HEAD of a resource group.
pub fn resource_group(app: &App, req: &Req, sub: &str, rg: &str) -> ArmResult {
    let id = resource_group_id(sub, rg);
    let key = id.to_ascii_lowercase();
    let mut st = lock(&app.state);
    let render = |g: &ResourceGroup| json!({"id": g.id, "name": g.name, "type": "Microsoft.Resources/resourceGroups", "location": g.location, "properties": {"provisioningState": "Succeeded"}});
    match req.method.as_str() {
        "GET" => st
            .resource_groups
            .get(&key)
            .map(|g| json_response(200, &render(g)))
            .ok_or_else(|| {
                ArmError::new(
                    404,
                    "ResourceGroupNotFound",
                    format!("Resource group '{rg}' could not be found."),
                )
            }),
        "HEAD" => Ok(empty(if st.resource_groups.contains_key(&key) {
            204
        } else {
            404
        })),
        "PUT" => {
            let body = body_object(req)?;
            let Some(location) = body.get("location").and_then(Value::as_str) else {
                return Err(ArmError::new(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                ));
            };
            let existed = st.resource_groups.contains_key(&key);
            let g = st
                .resource_groups
                .entry(key)
                .or_insert_with(|| ResourceGroup {
                    id,
                    subscription_id: sub.to_string(),
                    name: rg.to_string(),
                    location: location.to_string(),
                })
                .clone();
            app.persist(&st);
            Ok(json_response(if existed { 200 } else { 201 }, &render(&g)))
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// GET of the instances in a resource group.
pub fn list(app: &App, req: &Req, sub: &str, rg: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let st = lock(&app.state);
    let prefix = format!(
        "{}/providers/microsoft.apimanagement/service/",
        resource_group_id(sub, rg).to_ascii_lowercase()
    );
    let items: Vec<Value> = st
        .services
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, s)| render(&st, s))
        .collect();
    Ok(json_response(200, &json!({"value": items})))
}

/// GET of the instances in a subscription.
pub fn list_subscription(app: &App, req: &Req, sub: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let st = lock(&app.state);
    let prefix = format!("/subscriptions/{}/", sub.to_ascii_lowercase());
    let items: Vec<Value> = st
        .services
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, s)| render(&st, s))
        .collect();
    Ok(json_response(200, &json!({"value": items})))
}

/// GET/HEAD/PUT/PATCH/DELETE of one instance.
pub fn handle(app: &App, req: &Req, sub: &str, rg: &str, name: &str) -> ArmResult {
    let key = service_id(sub, rg, name).to_ascii_lowercase();
    match req.method.as_str() {
        "GET" | "HEAD" => {
            let st = lock(&app.state);
            let svc = st.services.get(&key).ok_or_else(|| not_found(rg, name))?;
            let resp = if req.method == Method::HEAD {
                empty(200)
            } else {
                json_response(200, &render(&st, svc))
            };
            Ok(with_etag(resp, &svc.etag))
        }
        "PUT" => put(app, req, sub, rg, name, &key),
        "PATCH" => patch(app, req, rg, name, &key),
        "DELETE" => {
            let mut st = lock(&app.state);
            let Some(svc) = st.services.get(&key).cloned() else {
                return Ok(empty(204));
            };
            check_if_match(req, Some(&svc.etag), false)?;
            st.services.remove(&key);
            st.entities.retain(|_, e| e.service_key != key);
            app.persist(&st);
            Ok(empty(200))
        }
        _ => Err(method_not_allowed(req)),
    }
}

fn put(app: &App, req: &Req, sub: &str, rg: &str, name: &str, key: &str) -> ArmResult {
    if !valid_name(name) {
        return Err(ArmError::validation("serviceName", format!("The service name '{name}' is invalid: 1-50 letters, digits and dashes, starting with a letter.")));
    }
    let body = body_object(req)?;
    let mut st = lock(&app.state);
    let existing = st.services.get(key).cloned();
    check_if_match(req, existing.as_ref().map(|s| s.etag.as_str()), false)?;
    let Some(location) = body.get("location").and_then(Value::as_str) else {
        return Err(ArmError::new(
            400,
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    let sku = match body.get("sku") {
        Some(Value::Object(s)) if s.get("name").and_then(Value::as_str).is_some() => {
            let mut s = s.clone();
            s.entry("capacity").or_insert(json!(1));
            Value::Object(s)
        }
        _ => {
            return Err(ArmError::validation(
                "sku",
                "'sku' with a 'name' is required.",
            ))
        }
    };
    let props = match body.get("properties") {
        Some(Value::Object(p)) => p.clone(),
        _ => {
            return Err(ArmError::validation(
                "properties",
                "The 'properties' member is required.",
            ))
        }
    };
    for k in ["publisherEmail", "publisherName"] {
        if props
            .get(k)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ArmError::validation(k, format!("'{k}' is required.")));
        }
    }
    let etag = st.next_etag();
    let mut svc = existing.clone().unwrap_or_else(|| Service {
        id: service_id(sub, rg, name),
        subscription_id: sub.to_string(),
        resource_group: rg.to_string(),
        name: name.to_string(),
        location: location.to_string(),
        sku: Value::Null,
        tags: json!({}),
        properties: Value::Null,
        created_at: now_rfc3339(),
        system_identity: None,
        user_assigned: Vec::new(),
        token_version: 1,
        etag: String::new(),
    });
    svc.location = location.to_string();
    svc.sku = sku;
    svc.tags = body
        .get("tags")
        .filter(|t| t.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    svc.properties = Value::Object(writable(&props));
    svc.etag = etag.clone();
    // PUT replaces the resource: no identity block means no identity.
    apply_identity(&mut st, &mut svc, body.get("identity"), false)?;
    let out = render(&st, &svc);
    st.services.insert(key.to_string(), svc);
    app.persist(&st);
    Ok(with_etag(
        json_response(if existing.is_some() { 200 } else { 201 }, &out),
        &etag,
    ))
}

fn patch(app: &App, req: &Req, rg: &str, name: &str, key: &str) -> ArmResult {
    let body = body_object(req)?;
    let mut st = lock(&app.state);
    let mut svc = st
        .services
        .get(key)
        .cloned()
        .ok_or_else(|| not_found(rg, name))?;
    check_if_match(req, Some(&svc.etag), false)?;
    if let Some(Value::Object(t)) = body.get("tags") {
        svc.tags = Value::Object(t.clone());
    }
    if let Some(Value::Object(s)) = body.get("sku") {
        let mut sku = svc.sku.as_object().cloned().unwrap_or_default();
        sku.extend(s.clone());
        svc.sku = Value::Object(sku);
    }
    if let Some(Value::Object(p)) = body.get("properties") {
        let mut props = svc.properties.as_object().cloned().unwrap_or_default();
        props.extend(writable(p));
        svc.properties = Value::Object(props);
    }
    if body.get("identity").is_some() {
        apply_identity(&mut st, &mut svc, body.get("identity"), true)?;
    }
    svc.etag = st.next_etag();
    let out = render(&st, &svc);
    let etag = svc.etag.clone();
    st.services.insert(key.to_string(), svc);
    app.persist(&st);
    Ok(with_etag(json_response(200, &out), &etag))
}

/// Keeps the client-settable properties (read-only ones are computed on render).
fn writable(p: &Map<String, Value>) -> Map<String, Value> {
    const READ_ONLY: [&str; 12] = [
        "provisioningState",
        "targetProvisioningState",
        "createdAtUtc",
        "gatewayUrl",
        "gatewayRegionalUrl",
        "portalUrl",
        "developerPortalUrl",
        "managementApiUrl",
        "scmUrl",
        "publicIPAddresses",
        "privateIPAddresses",
        "platformVersion",
    ];
    p.iter()
        .filter(|(k, _)| !READ_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Applies an ARM `identity` block. Enabling a system-assigned identity that was off creates a
/// new service principal (new `principalId`), as Azure does; keeping it on keeps the old one.
/// PATCH merges `userAssignedIdentities` (a `null` value removes one); PUT replaces.
pub fn apply_identity(
    st: &mut State,
    svc: &mut Service,
    identity: Option<&Value>,
    patch: bool,
) -> Result<(), ArmError> {
    let Some(identity) = identity.filter(|v| !v.is_null()) else {
        if !patch {
            svc.system_identity = None;
            svc.user_assigned.clear();
        }
        return Ok(());
    };
    let kind = identity
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("None");
    let (sys, user) = parse_identity_type(kind).ok_or_else(|| {
        ArmError::new(
            400,
            "InvalidIdentityType",
            format!("The identity type '{kind}' is not supported."),
        )
    })?;
    if sys {
        if svc.system_identity.is_none() {
            svc.system_identity = Some(SystemIdentity {
                principal_id: uuid(),
                client_id: uuid(),
            });
        }
    } else {
        svc.system_identity = None;
    }
    if !user {
        svc.user_assigned.clear();
        return Ok(());
    }
    let map = identity
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !patch {
        svc.user_assigned.clear();
    }
    for (id, v) in map {
        let lower = id.to_ascii_lowercase();
        if !lower.starts_with("/subscriptions/")
            || !lower.contains("/providers/microsoft.managedidentity/userassignedidentities/")
        {
            return Err(ArmError::new(
                400,
                "InvalidIdentityValues",
                format!("'{id}' is not the resource id of a user-assigned identity."),
            ));
        }
        svc.user_assigned.retain(|u| !u.eq_ignore_ascii_case(&id));
        if !v.is_null() {
            let u = st.user_identity(&id);
            svc.user_assigned.push(u.id);
        }
    }
    if svc.user_assigned.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "The identity type includes 'UserAssigned' but no user-assigned identity is given.",
        ));
    }
    Ok(())
}
