//! The generic child-entity CRUD every `Kind` plugs into: the collection, entity and action
//! routes under an instance or an API, with ARM's status codes (201 on create, 200 on replace,
//! 200/204 on delete), `If-Match`, long-running writes and paged, filtered lists.

use super::body::body_object;
use super::error::{method_not_allowed, ArmError, ArmResult};
use super::etag::{check_if_match, with_etag};
use super::kind::{entity_json, not_found, Kind, Render};
use super::lro::{poll_location, start_operation};
use super::response::{empty, set_header};
use super::{filter, unknown_route, Scope, API_VERSION, MAX_PAGE};
use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::{Entity, State};
use axum::http::Method;
use serde_json::{json, Value};

/// Collection, entity and action routes for one kind under `scope`.
pub(super) fn entity_routes(
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
                None => Err(not_found(kind)),
            }
        }
        _ => Err(unknown_route(req)),
    }
}

/// The stored entity under `key` (a lower-cased id), if it is of `kind`.
fn stored(st: &State, kind: &dyn Kind, key: &str) -> Option<Entity> {
    st.entities
        .get(key)
        .filter(|e| e.type_name == kind.type_name())
        .cloned()
}

fn find(app: &App, kind: &dyn Kind, id: &str) -> Result<Entity, ArmError> {
    let st = lock(&app.state);
    stored(&st, kind, &id.to_ascii_lowercase()).ok_or_else(|| not_found(kind))
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

fn put(app: &App, req: &Req, kind: &dyn Kind, scope: &Scope, name: &str, id: &str) -> ArmResult {
    kind.validate_name(name)?;
    let body = body_object(req)?;
    let mut st = lock(&app.state);
    let key = id.to_ascii_lowercase();
    let existing = st.entities.get(&key).cloned();
    if existing.is_some() || req.header("if-match").is_some_and(|v| v.trim() != "*") {
        check_if_match(req, existing.as_ref().map(|e| e.etag.as_str()), false)?;
    }
    if existing.is_none() {
        kind.before_create(&st, scope)?;
    }
    let props = kind.create(&st, scope, req, &body)?;
    let etag = st.next_etag();
    // ARM ids are case-insensitive: a replace addressed in other casing keeps the id and name
    // the entity was created with.
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
        set_header(&mut resp, k, &v);
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
    let Some(existing) = stored(&st, kind, &key) else {
        return Err(not_found(kind));
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
            set_header(&mut resp, k, &v);
        }
        return Ok(resp);
    }
    app.persist(&st);
    drop(st);
    let body = entity_json(kind, &entity, req, Render::Write)?;
    Ok(with_etag(json_response(200, &body), &etag))
}

fn delete(app: &App, req: &Req, kind: &dyn Kind, id: &str) -> ArmResult {
    // A missing If-Match is refused even for an entity that is gone; whether the ETag given
    // matches only matters while the entity is still there (deleting what is gone is a 204).
    check_if_match(req, None, true).or_else(|e| if e.status == 412 { Ok(()) } else { Err(e) })?;
    let mut st = lock(&app.state);
    let key = id.to_ascii_lowercase();
    let Some(existing) = stored(&st, kind, &key) else {
        return Ok(empty(204));
    };
    check_if_match(req, Some(&existing.etag), true)?;
    kind.before_delete(&mut st, req, &existing)?;
    st.entities.remove(&key);
    app.persist(&st);
    Ok(empty(200))
}

/// A page of the collection: `$filter` first, then `$skip` and `$top` (at most `MAX_PAGE`),
/// with a `nextLink` that carries the filter on to the next page.
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
