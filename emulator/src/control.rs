//! The control plane under `/_emulator/` (no authentication, loopback peers only): fault rules,
//! inventory, request log, LRO poll count, identity re-creation and arbitrary test tokens.
#![allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP response, built once per request"
)]

use crate::faults::{lock, FaultRule};
use crate::server::{json_response, App, Req};
use crate::util::{now_unix, uuid};
use axum::body::Body;
use axum::http::Response;
use serde_json::{json, Map, Value};

fn error(status: u16, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": "BadRequest", "message": message}}),
    )
}

fn body_json(req: &Req) -> Result<Value, Response<Body>> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| error(400, &format!("invalid JSON: {e}")))
}

/// Serves `/_emulator/...`.
pub fn handle(app: &App, req: &Req) -> Response<Body> {
    if !req.peer.ip().is_loopback() {
        return error(403, "the control plane answers loopback clients only");
    }
    let rest: Vec<&str> = req.segs.iter().skip(1).map(String::as_str).collect();
    let r = match (req.method.as_str(), rest.as_slice()) {
        ("GET", ["info"]) => Ok(json_response(200, &app.info())),
        ("POST", ["faults"]) => add_faults(app, req),
        ("GET", ["faults"]) => Ok(json_response(200, &json!(app.faults.list()))),
        ("DELETE", ["faults"]) => {
            app.faults.clear();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        ("GET", ["inventory"]) => Ok(json_response(200, &inventory(app))),
        ("GET", ["requests"]) => Ok(json_response(
            200,
            &json!(lock(&app.log).iter().collect::<Vec<_>>()),
        )),
        ("DELETE", ["requests"]) => {
            lock(&app.log).clear();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        ("GET", ["lro"]) => {
            let st = lock(&app.state);
            Ok(json_response(
                200,
                &json!({"polls": st.settings.lro_polls, "retry_after": st.settings.lro_retry_after}),
            ))
        }
        ("POST" | "PUT", ["lro"]) => set_lro(app, req),
        ("GET", ["profile"]) => Ok(json_response(200, &json!(app.speed.profile()))),
        ("POST" | "PUT", ["profile"]) => set_profile(app, req),
        ("POST", ["identity"]) => identity(app, req),
        ("GET", ["rules"]) => {
            let st = lock(&app.state);
            Ok(json_response(
                200,
                &json!({"enforce": st.settings.enforce_rules}),
            ))
        }
        ("POST" | "PUT", ["rules"]) => set_rules(app, req),
        ("POST", ["tokens"]) => mint(app, req),
        ("POST", ["clients"]) => add_client(app, req),
        ("POST" | "PUT", ["entra"]) => set_entra(app, req),
        ("POST", ["pipelines"]) => body_json(req).and_then(|v| {
            crate::pipelines::register(app, v)
                .map(|v| json_response(200, &v))
                .map_err(|m| error(400, &m))
        }),
        ("GET", ["gateway", "log"]) => Ok(json_response(200, &json!(app.gateway.log.all()))),
        ("DELETE", ["gateway", "log"]) => {
            app.gateway.log.clear();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        ("GET", ["gateway", "telemetry"]) => {
            Ok(json_response(200, &json!(app.gateway.telemetry.all())))
        }
        ("DELETE", ["gateway", "telemetry"]) => {
            app.gateway.telemetry.clear();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        ("DELETE", ["gateway", "cache"]) => {
            app.gateway.cache.clear();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        ("DELETE", ["gateway", "tokens"]) => {
            app.gateway.forget_tokens();
            Ok(json_response(200, &json!({"cleared": true})))
        }
        _ => Err(error(
            404,
            &format!("no control-plane route for {} {}", req.method, req.path),
        )),
    };
    r.unwrap_or_else(|e| e)
}

fn add_faults(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let rules: Vec<Value> = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let mut added = Vec::new();
    for r in rules {
        let rule: FaultRule = serde_json::from_value(r)
            .map_err(|e| error(400, &format!("invalid fault rule: {e}")))?;
        rule.validate().map_err(|m| error(400, &m))?;
        added.push(rule);
    }
    for r in &added {
        app.faults.add(r.clone());
    }
    Ok(json_response(
        201,
        &json!({"added": added, "rules": app.faults.list().len()}),
    ))
}

fn set_lro(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let mut st = lock(&app.state);
    if let Some(p) = v.get("polls") {
        let n = p
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| error(400, "`polls` must be a non-negative integer"))?;
        st.settings.lro_polls = n;
    }
    if let Some(p) = v.get("retry_after") {
        let n = p
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| error(400, "`retry_after` must be a non-negative integer"))?;
        st.settings.lro_retry_after = n;
    }
    app.persist(&st);
    Ok(json_response(
        200,
        &json!({"polls": st.settings.lro_polls, "retry_after": st.settings.lro_retry_after}),
    ))
}

/// `POST /_emulator/rules {"enforce": bool}`: whether saving a policy, fragment or named value
/// is refused for breaking the documented rules (a transition aid; run-time behaviour is the
/// same either way).
fn set_rules(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let enforce = v
        .get("enforce")
        .and_then(Value::as_bool)
        .ok_or_else(|| error(400, "`enforce` must be a boolean"))?;
    let mut st = lock(&app.state);
    st.settings.enforce_rules = enforce;
    app.persist(&st);
    Ok(json_response(200, &json!({"enforce": enforce})))
}

/// `POST /_emulator/identity {"api_management_id"?, "recreate"?: bool, "token_version"?: 1|2}`:
/// re-creates the instance's system-assigned identity (a new principal, as when an identity is
/// disabled and enabled again in Azure) and/or sets its default token version.
fn identity(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let mut st = lock(&app.state);
    let id = v
        .get("api_management_id")
        .and_then(Value::as_str)
        .map_or_else(|| st.defaults.api_management_id.clone(), str::to_string);
    let key = id.to_ascii_lowercase();
    let Some(mut svc) = st.services.get(&key).cloned() else {
        return Err(error(404, &format!("no APIM instance '{id}'")));
    };
    if v.get("recreate").and_then(Value::as_bool) == Some(true) {
        svc.system_identity = Some(crate::store::SystemIdentity {
            principal_id: uuid(),
            client_id: uuid(),
        });
        // The gateway's tokens were issued to the identity that is gone.
        app.gateway.forget_tokens();
    }
    match v.get("token_version") {
        None => {}
        Some(t) if t == 1 || t == 2 => {
            svc.token_version = u8::try_from(t.as_u64().unwrap_or(1)).unwrap_or(1)
        }
        Some(_) => return Err(error(400, "`token_version` must be 1 or 2")),
    }
    svc.etag = st.next_etag();
    if st.defaults.api_management_id.eq_ignore_ascii_case(&svc.id) {
        if let Some(sys) = &svc.system_identity {
            st.defaults.principal_id = sys.principal_id.clone();
        }
    }
    let identity = st.identity_json(&svc);
    let token_version = svc.token_version;
    st.services.insert(key, svc);
    app.persist(&st);
    Ok(json_response(
        200,
        &json!({"api_management_id": id, "identity": identity, "token_version": token_version}),
    ))
}

/// `POST /_emulator/tokens`: a managed-identity-style token with chosen overrides, for negative
/// tests. Body: `api_management_id` / `user_assigned_id` (which identity; default: the default
/// instance), `resource` (audience; default `api://AzureADTokenExchange`), `token_version`,
/// `expires_in` (seconds, may be negative), `claims` (merged last; `null` removes a claim).
fn mint(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let st = lock(&app.state);
    let selector = v
        .get("user_assigned_id")
        .or_else(|| v.get("api_management_id"))
        .and_then(Value::as_str)
        .map(|id| ("msi_res_id", id));
    let id = crate::msi::resolve(&st, selector).map_err(|m| error(400, &m))?;
    let tenant = st.tenant_id.clone();
    drop(st);
    let resource = v
        .get("resource")
        .and_then(Value::as_str)
        .unwrap_or(crate::entra::EXCHANGE_AUDIENCE);
    let version = v
        .get("token_version")
        .and_then(Value::as_u64)
        .map_or(id.token_version, |n| if n == 2 { 2 } else { 1 });
    let lifetime = v
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(crate::msi::MI_LIFETIME);
    let mut claims = crate::msi::claims(app, &tenant, &id, resource, version, lifetime);
    if lifetime <= 0 {
        // An already-expired token was also issued and valid before it expired.
        let now = now_unix();
        claims["iat"] = json!(now + lifetime - 3600);
        claims["nbf"] = json!(now + lifetime - 3600);
    }
    if let Some(Value::Object(over)) = v.get("claims") {
        if let Some(c) = claims.as_object_mut() {
            for (k, val) in over {
                if val.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), val.clone());
                }
            }
        }
    }
    let token = app.signer.sign(&claims).map_err(|e| error(500, &e))?;
    Ok(json_response(
        200,
        &json!({"access_token": token, "claims": claims}),
    ))
}

/// Every object, keyed by ARM id, with its type and properties. Secret values are left out.
fn inventory(app: &App) -> Value {
    let st = lock(&app.state);
    let mut out = Map::new();
    for sub in st.subscriptions.values() {
        out.insert(
            format!("/subscriptions/{sub}"),
            json!({"type": "Microsoft.Resources/subscriptions", "name": sub, "properties": {}}),
        );
    }
    for g in st.resource_groups.values() {
        out.insert(g.id.clone(), json!({"type": "Microsoft.Resources/resourceGroups", "name": g.name, "properties": {"location": g.location}}));
    }
    for u in st.user_identities.values() {
        out.insert(u.id.clone(), json!({"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "name": u.id.rsplit('/').next().unwrap_or_default(), "properties": {"principalId": u.principal_id, "clientId": u.client_id, "tenantId": st.tenant_id}}));
    }
    for s in st.services.values() {
        let mut v = crate::arm::service::render(&st, s);
        v["token_version"] = json!(s.token_version);
        if let Some(sys) = &s.system_identity {
            v["identity"]["clientId"] = json!(sys.client_id);
        }
        out.insert(s.id.clone(), v);
    }
    for e in st.entities.values() {
        let mut props = e.properties.clone();
        if let Some(o) = props.as_object_mut() {
            if o.get("secret").and_then(Value::as_bool) == Some(true) {
                o.remove("value");
            }
            if e.type_name == crate::arm::subscription::TYPE {
                o.remove("primaryKey");
                o.remove("secondaryKey");
            }
            if e.type_name == crate::arm::logger::TYPE {
                o.remove("credentials");
            }
        }
        out.insert(
            e.id.clone(),
            json!({"type": e.type_name, "name": e.name, "etag": e.etag, "properties": props}),
        );
    }
    for c in &st.clients {
        out.insert(
            format!("/{}/applications/{}", st.tenant_id, c.client_id),
            json!({"type": "Microsoft.Entra/applications", "name": c.client_id, "properties": {"objectId": c.object_id, "hasSecret": c.client_secret.is_some(), "federatedCredentials": c.federated_credentials}}),
        );
    }
    Value::Object(out)
}

/// `POST /_emulator/clients`: registers an app (a seed `clients` entry: `client_id`,
/// `client_secret`, `object_id`, `federated_credentials`, `certificates`) and answers it.
fn add_client(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let seed: crate::store::SeedClient =
        serde_json::from_value(v).map_err(|e| error(400, &format!("invalid client: {e}")))?;
    for pem in &seed.certificates {
        crate::entra::certificate_key(pem).map_err(|m| error(400, &m))?;
    }
    let client = seed.build();
    let mut st = lock(&app.state);
    if st.client(&client.client_id).is_some() {
        return Err(error(
            409,
            &format!("client {} already exists", client.client_id),
        ));
    }
    st.clients.push(client.clone());
    app.persist(&st);
    Ok(json_response(200, &json!(client)))
}

/// `POST /_emulator/entra {"token_lifetime": seconds, "mi_token_lifetime": seconds}`: the
/// lifetime of the access tokens the token endpoint issues (`null`: Entra's 3599), and of the
/// managed-identity tokens the gateway obtains (`null`: 24 h; zero or negative: expired when
/// issued). Changing the latter forgets the gateway's cached tokens.
fn set_entra(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let v = body_json(req)?;
    let mut st = lock(&app.state);
    match v.get("token_lifetime") {
        Some(Value::Null) => st.settings.token_lifetime = None,
        Some(n) => {
            let n = n.as_i64().filter(|n| *n > 0).ok_or_else(|| {
                error(400, "`token_lifetime` must be a positive number of seconds")
            })?;
            st.settings.token_lifetime = Some(n);
        }
        None => {}
    }
    match v.get("mi_token_lifetime") {
        Some(Value::Null) => st.settings.mi_token_lifetime = None,
        Some(n) => {
            let n = n
                .as_i64()
                .ok_or_else(|| error(400, "`mi_token_lifetime` must be a number of seconds"))?;
            st.settings.mi_token_lifetime = Some(n);
        }
        None => {}
    }
    if v.get("mi_token_lifetime").is_some() {
        app.gateway.forget_tokens();
    }
    app.persist(&st);
    Ok(json_response(
        200,
        &json!({"token_lifetime": st.settings.token_lifetime, "mi_token_lifetime": st.settings.mi_token_lifetime}),
    ))
}

/// `PUT /_emulator/profile`: `{"profile": "azure"}` or `{"profile": "none"}` for the documented
/// figures or none, and/or any field of the profile to change (`read_ms`, `write_bucket`,
/// ...); answers the profile now in force.
fn set_profile(app: &App, req: &Req) -> Result<Response<Body>, Response<Body>> {
    let mut v = body_json(req)?;
    let mut profile = match v.as_object_mut().and_then(|o| o.remove("profile")) {
        None => app.speed.profile(),
        Some(Value::String(p)) if p == "azure" => crate::profile::Profile::azure(),
        Some(Value::String(p)) if p == "none" => crate::profile::Profile::default(),
        Some(other) => {
            return Err(error(
                400,
                &format!("`profile` is {other}: use \"azure\" or \"none\""),
            ))
        }
    };
    let mut merged = serde_json::to_value(&profile).unwrap_or_default();
    if let (Some(m), Some(changes)) = (merged.as_object_mut(), v.as_object()) {
        for (k, val) in changes {
            m.insert(k.clone(), val.clone());
        }
    }
    profile =
        serde_json::from_value(merged).map_err(|e| error(400, &format!("invalid profile: {e}")))?;
    app.speed.set(profile);
    Ok(json_response(200, &json!(app.speed.profile())))
}
