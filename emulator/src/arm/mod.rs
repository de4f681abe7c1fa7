//! Azure Resource Manager for `Microsoft.ApiManagement`, api-version 2024-05-01: routing,
//! authentication, the ARM response conventions (correlation and quota headers, error bodies,
//! ETags with `If-Match`, long-running operations, paging) and the generic child-entity CRUD that
//! each entity module plugs into.

pub mod api;
pub mod backend;
pub mod filter;
pub mod named_value;
pub mod policy;
pub mod policy_fragment;
pub mod service;

use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::{Entity, Operation, State};
use crate::util::{now_rfc3339, now_unix, short_id, uuid};
use axum::body::Body;
use axum::http::{HeaderValue, Method, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{json, Value};

/// The only api-version the APIM resource provider here implements.
pub const API_VERSION: &str = "2024-05-01";

/// Most items one page of a list holds when the client gives no `$top`.
pub const MAX_PAGE: usize = 100;

/// Audiences an ARM bearer token may carry (Azure accepts these for the public cloud).
const ARM_AUDIENCES: [&str; 2] = [
    "https://management.azure.com",
    "https://management.core.windows.net",
];

/// An ARM error, rendered as `{"error":{"code","message"[,"details"]}}`.
#[derive(Debug, Clone)]
pub struct ArmError {
    /// HTTP status.
    pub status: u16,
    /// ARM error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// `details` entries (validation errors).
    pub details: Vec<Value>,
    /// Extra response headers (e.g. `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    /// An error with a status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 404 `ResourceNotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFound", message)
    }

    /// 400 `ValidationError` with one detail naming the offending field, as APIM reports it.
    pub fn validation(target: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            400,
            "ValidationError",
            "One or more fields contain incorrect values:",
        );
        e.details
            .push(json!({"code": "ValidationError", "target": target, "message": message}));
        e
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let mut err = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            err["details"] = Value::Array(self.details);
        }
        let mut resp = json_response(self.status, &json!({ "error": err }));
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

/// Result of an ARM handler.
pub type ArmResult = Result<Response<Body>, ArmError>;

/// Characters escaped in URL path segments built from entity names.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Absolute URL of an ARM id on this emulator (segments percent-encoded).
pub fn id_url(app: &App, id: &str) -> String {
    format!("{}{}", app.url, utf8_percent_encode(id, SEGMENT))
}

/// `^[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$`, 1–50 characters.
pub fn valid_service_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 50
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// The response to a request a fault rule failed: ARM's throttling body for 429, a generic ARM
/// error body otherwise.
pub fn fault_response(
    app: &App,
    status: u16,
    retry_after: Option<u64>,
    path: &str,
) -> Response<Body> {
    let (code, message) = match status {
        429 => (
            "TooManyRequests",
            "The request was throttled. Retry after the delay given in the Retry-After header."
                .to_string(),
        ),
        500 => (
            "InternalServerError",
            "The server encountered an internal error.".to_string(),
        ),
        502 => (
            "BadGateway",
            "The gateway did not receive a valid response.".to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "The service is temporarily unavailable.".to_string(),
        ),
        504 => ("GatewayTimeout", "The gateway timed out.".to_string()),
        s => ("InjectedFault", format!("Fault injected with status {s}.")),
    };
    let mut resp = ArmError::new(status, code, message).into_response();
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    if path.to_ascii_lowercase().starts_with("/subscriptions") {
        add_arm_headers_raw(app, None, &Method::GET, &mut resp);
    }
    resp
}

/// Serves one ARM request.
pub fn handle(app: &App, req: &Req) -> Response<Body> {
    let result = authenticate(app, req).and_then(|()| route(app, req));
    let mut resp = result.unwrap_or_else(ArmError::into_response);
    add_arm_headers_raw(
        app,
        req.header("x-ms-correlation-request-id"),
        &req.method,
        &mut resp,
    );
    resp
}

fn add_arm_headers_raw(
    app: &App,
    correlation: Option<&str>,
    method: &Method,
    resp: &mut Response<Body>,
) {
    let request_id = uuid();
    let correlation = correlation
        .filter(|c| !c.is_empty() && c.len() <= 200)
        .map_or_else(|| request_id.clone(), str::to_string);
    let h = resp.headers_mut();
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("x-ms-request-id", request_id.clone());
    put("x-ms-correlation-request-id", correlation);
    put(
        "x-ms-routing-request-id",
        format!("LOCAL:{}:{}", now_unix(), request_id),
    );
    put("cache-control", "no-cache".into());
    put("pragma", "no-cache".into());
    let remaining = app.ratelimit_remaining().to_string();
    if *method == Method::GET || *method == Method::HEAD {
        put("x-ms-ratelimit-remaining-subscription-reads", remaining);
    } else if *method == Method::DELETE {
        put("x-ms-ratelimit-remaining-subscription-deletes", remaining);
    } else {
        put("x-ms-ratelimit-remaining-subscription-writes", remaining);
    }
}

fn auth_error(app: &App, code: &str, message: String) -> ArmError {
    let tenant = lock(&app.state).tenant_id.clone();
    let mut e = ArmError::new(401, code, message);
    e.headers.push((
        "www-authenticate",
        format!(
            "Bearer authorization_uri=\"{}/{tenant}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header or an invalid token.\"",
            app.url
        ),
    ));
    e
}

fn authenticate(app: &App, req: &Req) -> Result<(), ArmError> {
    let Some(header) = req.header("authorization") else {
        return Err(auth_error(
            app,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    };
    let Some(token) = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Err(auth_error(
            app,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format."
                .into(),
        ));
    };
    let claims = match app.signer.verify(token) {
        Ok(c) => c,
        Err(crate::jwt::JwtError::Expired) => {
            return Err(auth_error(
                app,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.".into(),
            ))
        }
        Err(_) => {
            return Err(auth_error(
                app,
                "InvalidAuthenticationToken",
                "The access token is invalid.".into(),
            ))
        }
    };
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let norm = aud.trim_end_matches('/');
    let own = app.url.trim_end_matches('/');
    if !ARM_AUDIENCES.contains(&norm) && norm != own {
        return Err(auth_error(
            app,
            "InvalidAuthenticationTokenAudience",
            format!("The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."),
        ));
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tenant = lock(&app.state).tenant_id.clone();
    if !tid.eq_ignore_ascii_case(&tenant) {
        return Err(auth_error(
            app,
            "InvalidAuthenticationTokenTenant",
            format!(
                "The access token is from the wrong issuer. It must match the tenant '{tenant}'."
            ),
        ));
    }
    Ok(())
}

fn check_api_version(req: &Req, rp: bool) -> Result<(), ArmError> {
    let Some(v) = req.q("api-version") else {
        return Err(ArmError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    };
    let ok = if rp {
        v == API_VERSION
    } else {
        let b = v.as_bytes();
        b.len() >= 10
            && b[..10].iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
            && (b.len() == 10 || v[10..].eq_ignore_ascii_case("-preview"))
    };
    if ok {
        Ok(())
    } else {
        let supported = if rp {
            API_VERSION.to_string()
        } else {
            "2021-04-01, 2022-09-01".to_string()
        };
        Err(ArmError::new(
            400,
            "InvalidApiVersionParameter",
            format!("The api-version '{v}' is invalid. The supported versions are '{supported}'."),
        ))
    }
}

/// Where a request lands inside an APIM instance.
pub struct Scope {
    /// Lower-cased id of the instance.
    pub service_key: String,
    /// Canonical id of the instance.
    pub service_id: String,
    /// Canonical id of the parent of the addressed collection (the instance, or an API).
    pub parent_id: String,
}

fn route(app: &App, req: &Req) -> ArmResult {
    let s = &req.segs;
    let eq = |i: usize, lit: &str| s.get(i).is_some_and(|x| x.eq_ignore_ascii_case(lit));
    let by_subscription =
        s.len() == 5 && eq(2, "providers") && eq(3, "Microsoft.ApiManagement") && eq(4, "service");
    let is_rp = by_subscription
        || (s.len() >= 7
            && eq(2, "resourceGroups")
            && eq(4, "providers")
            && eq(5, "Microsoft.ApiManagement")
            && eq(6, "service"));
    check_api_version(req, is_rp)?;
    let Some(sub) = s.get(1) else {
        return Err(unknown_route(req));
    };
    {
        let st = lock(&app.state);
        if !st.subscriptions.contains_key(&sub.to_ascii_lowercase()) {
            return Err(ArmError::new(
                404,
                "SubscriptionNotFound",
                format!("The subscription '{sub}' could not be found."),
            ));
        }
    }
    if s.len() == 2 {
        return subscription(app, req, sub);
    }
    if by_subscription {
        return service::list_subscription(app, req, sub);
    }
    if !eq(2, "resourceGroups") || s.len() < 4 {
        return Err(unknown_route(req));
    }
    if s.len() == 4 {
        return service::resource_group(app, req, sub, &s[3]);
    }
    {
        let st = lock(&app.state);
        let rg_key = crate::store::resource_group_id(sub, &s[3]).to_ascii_lowercase();
        if !st.resource_groups.contains_key(&rg_key) {
            return Err(ArmError::new(
                404,
                "ResourceGroupNotFound",
                format!("Resource group '{}' could not be found.", s[3]),
            ));
        }
    }
    if !is_rp {
        return Err(unknown_route(req));
    }
    if s.len() == 7 {
        return service::list(app, req, sub, &s[3]);
    }
    let rest: Vec<String> = s[8..].to_vec();
    if rest.is_empty() {
        return service::handle(app, req, sub, &s[3], &s[7]);
    }
    let scope = {
        let st = lock(&app.state);
        let key = crate::store::service_id(sub, &s[3], &s[7]).to_ascii_lowercase();
        match st.services.get(&key) {
            Some(svc) => Scope {
                service_key: key,
                service_id: svc.id.clone(),
                parent_id: svc.id.clone(),
            },
            None => return Err(service::not_found(&s[3], &s[7])),
        }
    };
    let head = rest[0].to_ascii_lowercase();
    match head.as_str() {
        "namedvalues" => entity_routes(app, req, &named_value::NamedValues, &scope, &rest[1..]),
        "policyfragments" => entity_routes(
            app,
            req,
            &policy_fragment::PolicyFragments,
            &scope,
            &rest[1..],
        ),
        "backends" => entity_routes(app, req, &backend::Backends, &scope, &rest[1..]),
        "policies" => entity_routes(app, req, &policy::Policies::SERVICE, &scope, &rest[1..]),
        "apis" if rest.len() >= 3 && rest[2].eq_ignore_ascii_case("policies") => {
            let api_key = format!("{}/apis/{}", scope.service_id, rest[1]).to_ascii_lowercase();
            let api_id = {
                let st = lock(&app.state);
                match st.entities.get(&api_key) {
                    Some(api) => api.id.clone(),
                    None => return Err(ArmError::not_found("Api not found.")),
                }
            };
            let scope = Scope {
                parent_id: api_id,
                ..scope
            };
            entity_routes(app, req, &policy::Policies::API, &scope, &rest[3..])
        }
        "apis" => entity_routes(app, req, &api::Apis, &scope, &rest[1..]),
        "tenant" if rest.len() == 3 && rest[1].eq_ignore_ascii_case("operationResults") => {
            operation_status(app, req, &scope, &rest[2])
        }
        _ => Err(unknown_route(req)),
    }
}

fn unknown_route(req: &Req) -> ArmError {
    ArmError::new(
        404,
        "InvalidResourceType",
        format!("The resource type for '{}' could not be found in the namespace 'Microsoft.ApiManagement' for api version '{API_VERSION}'.", req.path),
    )
}

fn subscription(app: &App, req: &Req, sub: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let st = lock(&app.state);
    Ok(json_response(
        200,
        &json!({
            "id": format!("/subscriptions/{sub}"),
            "subscriptionId": sub,
            "tenantId": st.tenant_id,
            "displayName": "apim-emulator subscription",
            "state": "Enabled",
        }),
    ))
}

/// 405 for a method the resource does not support.
pub fn method_not_allowed(req: &Req) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!(
            "The HTTP method '{}' is not supported for this resource.",
            req.method
        ),
    )
}

/// Parses a JSON request body that must be an object.
pub fn body_object(req: &Req) -> Result<Value, ArmError> {
    if req.body.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: the body is empty.",
        ));
    }
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ArmError::new(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized: expected a JSON object."))
    }
}

/// The `properties` object of a request body (required).
pub fn properties(body: &Value) -> Result<serde_json::Map<String, Value>, ArmError> {
    match body.get("properties") {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(ArmError::validation(
            "properties",
            "The 'properties' member must be an object.",
        )),
        None => Err(ArmError::validation(
            "properties",
            "The 'properties' member is required.",
        )),
    }
}

/// An optional string property with a length limit.
pub fn opt_str(
    p: &serde_json::Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, ArmError> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                Err(ArmError::validation(
                    key,
                    format!("The length of '{key}' must be between {min} and {max} characters."),
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(ArmError::validation(
            key,
            format!("'{key}' must be a string."),
        )),
    }
}

/// A required string property with a length limit.
pub fn req_str(
    p: &serde_json::Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<String, ArmError> {
    opt_str(p, key, min, max)?
        .ok_or_else(|| ArmError::validation(key, format!("'{key}' is required.")))
}

/// Compares an `If-Match` header with the current ETag. `required` is the spec's
/// `IfMatchRequiredParameter` (PATCH, DELETE).
pub fn check_if_match(req: &Req, current: Option<&str>, required: bool) -> Result<(), ArmError> {
    let Some(raw) = req.header("if-match") else {
        if required {
            return Err(ArmError::validation("If-Match", "The If-Match header is required: give the entity's ETag, or '*' for an unconditional update."));
        }
        return Ok(());
    };
    if raw.trim() == "*" {
        return Ok(());
    }
    let matches = raw.split(',').any(|t| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        let t = t.trim_matches('"');
        current.is_some_and(|c| c == t)
    });
    if matches {
        Ok(())
    } else {
        Err(ArmError::new(412, "PreconditionFailed", "The entity tag given in the If-Match header does not match the current state of the entity."))
    }
}

/// Adds `ETag: "<etag>"`.
pub fn with_etag(mut resp: Response<Body>, etag: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        resp.headers_mut().insert("etag", v);
    }
    resp
}

/// How an entity is being rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// GET of one entity.
    Get,
    /// Item of a list.
    List,
    /// Body of a PUT/PATCH response.
    Write,
}

/// One kind of APIM child entity; the generic CRUD in this module does the rest.
pub trait Kind: Sync {
    /// Collection segment, canonical casing (`namedValues`).
    fn segment(&self) -> &'static str;
    /// ARM type.
    fn type_name(&self) -> &'static str;
    /// Noun used in "... not found." messages.
    fn noun(&self) -> &'static str;
    /// Whether PUT/PATCH are long-running operations.
    fn lro(&self) -> bool {
        false
    }
    /// Checks the entity name against the spec's pattern.
    fn validate_name(&self, name: &str) -> Result<(), ArmError>;
    /// Validates a PUT body and returns the properties to store.
    fn create(&self, st: &State, scope: &Scope, req: &Req, body: &Value)
        -> Result<Value, ArmError>;
    /// Validates a PATCH body against the stored entity and returns the new properties.
    fn update(
        &self,
        _st: &State,
        _scope: &Scope,
        req: &Req,
        _existing: &Entity,
        _body: &Value,
    ) -> Result<Value, ArmError> {
        Err(method_not_allowed(req))
    }
    /// Properties as returned to the client.
    fn render(&self, e: &Entity, req: &Req, mode: Render) -> Result<Value, ArmError>;
    /// Values of a `$filter` field for an entity (`None`: unknown field).
    fn filter_field(&self, e: &Entity, field: &str) -> Option<Vec<String>>;
    /// POST actions (`listValue`, `listReferences`, ...).
    fn action(
        &self,
        _app: &App,
        req: &Req,
        _scope: &Scope,
        _e: &Entity,
        _action: &str,
    ) -> ArmResult {
        Err(method_not_allowed(req))
    }
    /// Called before deleting; may refuse, and removes dependants.
    fn before_delete(&self, _st: &mut State, _e: &Entity) -> Result<(), ArmError> {
        Ok(())
    }
}

fn entity_json(kind: &dyn Kind, e: &Entity, req: &Req, mode: Render) -> Result<Value, ArmError> {
    Ok(json!({
        "id": e.id,
        "type": kind.type_name(),
        "name": e.name,
        "properties": kind.render(e, req, mode)?,
    }))
}

/// Collection, entity and action routes for one kind under `scope`.
pub fn entity_routes(
    app: &App,
    req: &Req,
    kind: &dyn Kind,
    scope: &Scope,
    rest: &[String],
) -> ArmResult {
    match rest {
        [] if req.method == Method::GET => list(app, req, kind, scope),
        [] => Err(method_not_allowed(req)),
        [name] => {
            let id = format!("{}/{}/{}", scope.parent_id, kind.segment(), name);
            match req.method.as_str() {
                "GET" => get(app, req, kind, &id),
                "HEAD" => head(app, kind, &id),
                "PUT" => put(app, req, kind, scope, name, &id),
                "PATCH" => patch(app, req, kind, scope, &id),
                "DELETE" => delete(app, req, kind, &id),
                _ => Err(method_not_allowed(req)),
            }
        }
        [name, action] if req.method == Method::POST => {
            let id = format!("{}/{}/{}", scope.parent_id, kind.segment(), name);
            let e = lock(&app.state)
                .entities
                .get(&id.to_ascii_lowercase())
                .cloned();
            match e {
                Some(e) => kind.action(app, req, scope, &e, action),
                None => Err(ArmError::not_found(format!("{} not found.", kind.noun()))),
            }
        }
        _ => Err(unknown_route(req)),
    }
}

fn find(app: &App, kind: &dyn Kind, id: &str) -> Result<Entity, ArmError> {
    let st = lock(&app.state);
    st.entities
        .get(&id.to_ascii_lowercase())
        .filter(|e| e.type_name == kind.type_name())
        .cloned()
        .ok_or_else(|| ArmError::not_found(format!("{} not found.", kind.noun())))
}

fn get(app: &App, req: &Req, kind: &dyn Kind, id: &str) -> ArmResult {
    if let Some(op) = req.q("asyncId") {
        if let Some(resp) = poll_location(app, op) {
            return Ok(resp);
        }
    }
    let e = find(app, kind, id)?;
    let body = entity_json(kind, &e, req, Render::Get)?;
    Ok(with_etag(json_response(200, &body), &e.etag))
}

fn head(app: &App, kind: &dyn Kind, id: &str) -> ArmResult {
    match find(app, kind, id) {
        Ok(e) => Ok(with_etag(empty(200), &e.etag)),
        Err(_) => Ok(empty(404)),
    }
}

/// A response without a body.
pub fn empty(status: u16) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    r
}

fn put(app: &App, req: &Req, kind: &dyn Kind, scope: &Scope, name: &str, id: &str) -> ArmResult {
    kind.validate_name(name)?;
    let body = body_object(req)?;
    let mut st = lock(&app.state);
    let key = id.to_ascii_lowercase();
    let existing = st.entities.get(&key).cloned();
    if existing.is_some() || req.header("if-match").is_some_and(|v| v.trim() != "*") {
        check_if_match(req, existing.as_ref().map(|e| e.etag.as_str()), false)?;
    }
    let props = kind.create(&st, scope, req, &body)?;
    let etag = st.next_etag();
    let entity = Entity {
        id: existing
            .as_ref()
            .map_or_else(|| id.to_string(), |e| e.id.clone()),
        type_name: kind.type_name().to_string(),
        name: existing
            .as_ref()
            .map_or_else(|| name.to_string(), |e| e.name.clone()),
        service_key: scope.service_key.clone(),
        etag: etag.clone(),
        properties: props,
    };
    st.entities.insert(key, entity.clone());
    let status = if existing.is_some() { 200 } else { 201 };
    let mut body = entity_json(kind, &entity, req, Render::Write)?;
    let mut headers = Vec::new();
    if kind.lro() {
        let polls = st.settings.lro_polls;
        if polls == 0 {
            body["properties"]["provisioningState"] = json!("Succeeded");
        } else {
            body["properties"]["provisioningState"] = json!("InProgress");
            headers = start_operation(app, &mut st, scope, &entity.id, status);
        }
    }
    app.persist(&st);
    drop(st);
    let mut resp = with_etag(json_response(status, &body), &etag);
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

fn patch(app: &App, req: &Req, kind: &dyn Kind, scope: &Scope, id: &str) -> ArmResult {
    let body = body_object(req)?;
    let mut st = lock(&app.state);
    let key = id.to_ascii_lowercase();
    if req.header("if-match").is_none() {
        check_if_match(req, None, true)?;
    }
    let Some(existing) = st
        .entities
        .get(&key)
        .filter(|e| e.type_name == kind.type_name())
        .cloned()
    else {
        return Err(ArmError::not_found(format!("{} not found.", kind.noun())));
    };
    check_if_match(req, Some(&existing.etag), true)?;
    let props = kind.update(&st, scope, req, &existing, &body)?;
    let etag = st.next_etag();
    let entity = Entity {
        etag: etag.clone(),
        properties: props,
        ..existing
    };
    st.entities.insert(key, entity.clone());
    if kind.lro() && st.settings.lro_polls > 0 {
        let headers = start_operation(app, &mut st, scope, &entity.id, 200);
        app.persist(&st);
        let mut resp = empty(202);
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        return Ok(resp);
    }
    app.persist(&st);
    drop(st);
    let body = entity_json(kind, &entity, req, Render::Write)?;
    Ok(with_etag(json_response(200, &body), &etag))
}

fn delete(app: &App, req: &Req, kind: &dyn Kind, id: &str) -> ArmResult {
    check_if_match(req, None, true).or_else(|e| if e.status == 412 { Ok(()) } else { Err(e) })?;
    let mut st = lock(&app.state);
    let key = id.to_ascii_lowercase();
    let Some(existing) = st
        .entities
        .get(&key)
        .filter(|e| e.type_name == kind.type_name())
        .cloned()
    else {
        return Ok(empty(204));
    };
    check_if_match(req, Some(&existing.etag), true)?;
    kind.before_delete(&mut st, &existing)?;
    st.entities.remove(&key);
    app.persist(&st);
    Ok(empty(200))
}

fn list(app: &App, req: &Req, kind: &dyn Kind, scope: &Scope) -> ArmResult {
    let top = match req.q("$top") {
        None => None,
        Some(t) => match t.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(ArmError::validation(
                    "$top",
                    "'$top' must be an integer of at least 1.",
                ))
            }
        },
    };
    let skip = match req.q("$skip") {
        None => 0,
        Some(s) => s.parse::<usize>().map_err(|_| {
            ArmError::validation("$skip", "'$skip' must be a non-negative integer.")
        })?,
    };
    let filter = match req.q("$filter") {
        Some(f) if !f.trim().is_empty() => {
            Some(filter::parse(f).map_err(|m| ArmError::validation("$filter", m))?)
        }
        _ => None,
    };
    let prefix = format!("{}/{}/", scope.parent_id, kind.segment()).to_ascii_lowercase();
    let st = lock(&app.state);
    let mut matched = Vec::new();
    for (k, e) in st.entities.range(prefix.clone()..) {
        if !k.starts_with(&prefix) {
            break;
        }
        if k[prefix.len()..].contains('/') || e.type_name != kind.type_name() {
            continue;
        }
        if let Some(f) = &filter {
            let ok = f
                .eval(&|field| kind.filter_field(e, field))
                .map_err(|m| ArmError::validation("$filter", m))?;
            if !ok {
                continue;
            }
        }
        matched.push(e.clone());
    }
    drop(st);
    let count = matched.len();
    let page = top.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let items: Vec<Value> = matched
        .iter()
        .skip(skip)
        .take(page)
        .map(|e| entity_json(kind, e, req, Render::List))
        .collect::<Result<_, _>>()?;
    let mut body = json!({"value": items, "count": count});
    if skip + page < count {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("api-version", API_VERSION);
        if let Some(f) = req.q("$filter") {
            q.append_pair("$filter", f);
        }
        q.append_pair("$top", &page.to_string());
        q.append_pair("$skip", &(skip + page).to_string());
        body["nextLink"] = json!(format!("{}{}?{}", app.url, req.path, q.finish()));
    }
    Ok(json_response(200, &body))
}

/// Registers a long-running operation and returns its `Azure-AsyncOperation`, `Location` and
/// `Retry-After` headers.
fn start_operation(
    app: &App,
    st: &mut State,
    scope: &Scope,
    resource_id: &str,
    code: u16,
) -> Vec<(&'static str, String)> {
    let op = short_id();
    st.operations.insert(
        op.clone(),
        Operation {
            resource_id: resource_id.to_string(),
            remaining: st.settings.lro_polls,
            started: now_rfc3339(),
        },
    );
    vec![
        (
            "azure-asyncoperation",
            format!(
                "{}/tenant/operationResults/{op}?api-version={API_VERSION}",
                id_url(app, &scope.service_id)
            ),
        ),
        (
            "location",
            format!(
                "{}?api-version={API_VERSION}&asyncId={op}&asyncCode={code}",
                id_url(app, resource_id)
            ),
        ),
        ("retry-after", st.settings.lro_retry_after.to_string()),
    ]
}

/// A GET on a `Location` URL: 202 while the operation runs, `None` once it is done (the caller
/// then answers with the entity).
fn poll_location(app: &App, op: &str) -> Option<Response<Body>> {
    let mut st = lock(&app.state);
    let retry = st.settings.lro_retry_after;
    let o = st.operations.get_mut(op)?;
    if o.remaining == 0 {
        return None;
    }
    o.remaining -= 1;
    app.persist(&st);
    let mut resp = empty(202);
    if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
        resp.headers_mut().insert("retry-after", v);
    }
    Some(resp)
}

fn operation_status(app: &App, req: &Req, scope: &Scope, op: &str) -> ArmResult {
    if req.method != Method::GET {
        return Err(method_not_allowed(req));
    }
    let mut st = lock(&app.state);
    let retry = st.settings.lro_retry_after;
    let Some(o) = st.operations.get_mut(op) else {
        return Err(ArmError::not_found("Operation not found."));
    };
    let id = format!("{}/tenant/operationResults/{op}", scope.service_id);
    let body = if o.remaining > 0 {
        o.remaining -= 1;
        json!({"id": id, "name": op, "status": "InProgress", "startTime": o.started})
    } else {
        json!({"id": id, "name": op, "status": "Succeeded", "startTime": o.started, "endTime": now_rfc3339()})
    };
    app.persist(&st);
    let mut resp = json_response(200, &body);
    if body["status"] == "InProgress" {
        if let Ok(v) = HeaderValue::from_str(&retry.to_string()) {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    Ok(resp)
}

/// Checks that every `{{name}}` in a policy document names a named value (by display name) of
/// the instance, as APIM does when a policy is saved.
pub fn check_named_value_refs(st: &State, scope: &Scope, doc: &str) -> Result<(), ArmError> {
    for name in crate::xml::named_value_refs(doc) {
        let found = st.entities.values().any(|e| {
            e.service_key == scope.service_key
                && e.type_name == named_value::TYPE
                && e.properties
                    .get("displayName")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.eq_ignore_ascii_case(&name))
        });
        if !found {
            return Err(ArmError::validation(
                "representation",
                format!("Cannot find a property '{name}'"),
            ));
        }
    }
    Ok(())
}

/// Checks that every `<include-fragment fragment-id>` names an existing fragment of the instance.
pub fn check_fragment_refs(
    st: &State,
    scope: &Scope,
    root: &crate::xml::Elem,
) -> Result<(), ArmError> {
    for id in crate::xml::included_fragments(root) {
        let key = format!("{}/policyFragments/{id}", scope.service_id).to_ascii_lowercase();
        if !st.entities.contains_key(&key) {
            return Err(ArmError::validation(
                "representation",
                format!(
                    "Error in element 'include-fragment': Policy fragment '{id}' does not exist."
                ),
            ));
        }
    }
    Ok(())
}
