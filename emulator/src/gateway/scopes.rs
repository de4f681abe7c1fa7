//! The product and operation scopes of a request: the operation of the API a request matches
//! (by method and `urlTemplate`), a product's name and flags, and whether an API needs a
//! subscription key because of the products that hold it.

use crate::arm::{operation, product, product_api};
use crate::store::State;
use serde_json::Value;

/// The operation a request matched.
#[derive(Debug, Clone)]
pub struct MatchedOperation {
    /// ARM id.
    pub id: String,
    /// Operation id (its ARM name).
    pub name: String,
    /// Display name.
    pub display: String,
    /// Method as stored.
    pub method: String,
    /// URL template as stored.
    pub template: String,
    /// Values of the template's parameters, in template order.
    pub params: Vec<(String, String)>,
}

/// Template parameters and their values.
type Params = Vec<(String, String)>;

/// What a request matched among an API's operations.
pub enum OperationMatch {
    /// The API has no operations: every request reaches it.
    NoOperations,
    /// The most specific operation that matches.
    Matched(MatchedOperation),
    /// The API has operations and none matches (APIM's 404).
    NoneMatched,
}

/// Specificity of one template segment: a literal beats a parameter with literal text around
/// it, which beats a bare parameter, which beats the `*` wildcard.
const LITERAL: u8 = 3;
const AFFIXED: u8 = 2;
const PARAM: u8 = 1;
const WILDCARD: u8 = 0;

/// Matches one request segment against one template segment (`lit`, `{p}`, `pre{p}post`).
fn segment(t: &str, r: &str, params: &mut Params) -> Option<u8> {
    let (Some(open), Some(close)) = (t.find('{'), t.rfind('}')) else {
        return t.eq_ignore_ascii_case(r).then_some(LITERAL);
    };
    let (pre, name, post) = (&t[..open], &t[open + 1..close], &t[close + 1..]);
    let lower = r.to_ascii_lowercase();
    if r.len() <= pre.len() + post.len()
        || !lower.starts_with(&pre.to_ascii_lowercase())
        || !lower.ends_with(&post.to_ascii_lowercase())
    {
        return None;
    }
    params.push((
        name.to_string(),
        r[pre.len()..r.len() - post.len()].to_string(),
    ));
    Some(if pre.is_empty() && post.is_empty() {
        PARAM
    } else {
        AFFIXED
    })
}

/// The specificity of `template` for a request path below the API (`rest`, no leading slash),
/// segment by segment, or `None` when it does not match. `{p}` matches one non-empty segment;
/// a final `*` matches whatever is left.
fn match_template(template: &str, rest: &str) -> Option<(Vec<u8>, Params)> {
    let path = template.split('?').next().unwrap_or(template);
    let t: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let r: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut score = Vec::new();
    let mut params = Vec::new();
    for (i, ts) in t.iter().enumerate() {
        if *ts == "*" && i + 1 == t.len() {
            score.push(WILDCARD);
            return Some((score, params));
        }
        score.push(segment(ts, r.get(i)?, &mut params)?);
    }
    (t.len() == r.len()).then_some((score, params))
}

/// The operation of API `api_id` a request matches. The most specific template wins (compared
/// segment by segment), then the longer one; among equals, the first by operation id.
pub fn match_operation(st: &State, api_id: &str, method: &str, rest: &str) -> OperationMatch {
    let prefix = format!("{api_id}/operations/").to_ascii_lowercase();
    let mut any = false;
    let mut best: Option<(Vec<u8>, MatchedOperation)> = None;
    for (k, e) in st.entities.range(prefix.clone()..) {
        if !k.starts_with(&prefix) {
            break;
        }
        if e.type_name != operation::TYPE {
            continue;
        }
        any = true;
        let s = |n: &str| {
            e.properties
                .get(n)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let m = s("method");
        if m != "*" && !m.eq_ignore_ascii_case(method) {
            continue;
        }
        let Some((score, params)) = match_template(&s("urlTemplate"), rest) else {
            continue;
        };
        if best.as_ref().is_some_and(|(b, _)| *b >= score) {
            continue;
        }
        let op = MatchedOperation {
            id: e.id.clone(),
            name: e.name.clone(),
            display: s("displayName"),
            method: m,
            template: s("urlTemplate"),
            params,
        };
        best = Some((score, op));
    }
    match best {
        Some((_, op)) => OperationMatch::Matched(op),
        None if any => OperationMatch::NoneMatched,
        None => OperationMatch::NoOperations,
    }
}

/// A product of an instance: `(ARM id, name, display name, subscriptionRequired)`.
pub fn product_info(
    st: &State,
    service_id: &str,
    name: &str,
) -> Option<(String, String, String, bool)> {
    let key = format!("{service_id}/products/{name}").to_ascii_lowercase();
    let e = st
        .entities
        .get(&key)
        .filter(|e| e.type_name == product::TYPE)?;
    let p = &e.properties;
    Some((
        e.id.clone(),
        e.name.clone(),
        p.get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        p.get("subscriptionRequired")
            .and_then(Value::as_bool)
            .unwrap_or(true),
    ))
}

/// Whether a product that holds API `api_name` requires a subscription.
pub fn in_protected_product(
    st: &State,
    service_key: &str,
    service_id: &str,
    api_name: &str,
) -> bool {
    product_api::products_of(st, service_key, api_name)
        .iter()
        .filter_map(|p| product_info(st, service_id, p))
        .any(|(_, _, _, required)| required)
}

#[cfg(test)]
mod tests {
    use super::match_template;

    #[test]
    fn templates() {
        let score = |t: &str, r: &str| match_template(t, r).map(|(s, _)| s);
        assert_eq!(score("/orders/{id}", "orders/42"), Some(vec![3, 1]));
        assert_eq!(score("/orders/{id}", "orders"), None);
        assert_eq!(score("/orders/{id}", "orders/42/x"), None);
        assert_eq!(score("/orders", "ORDERS"), Some(vec![3]));
        assert_eq!(score("/orders/*", "orders/a/b"), Some(vec![3, 0]));
        assert_eq!(
            score("/files/{name}.json", "files/a.json"),
            Some(vec![3, 2])
        );
        assert_eq!(score("/files/{name}.json", "files/a.xml"), None);
        assert_eq!(
            score("/orders/{id}?date={date}", "orders/7"),
            Some(vec![3, 1])
        );
        assert!(score("/orders/latest", "orders/latest") > score("/orders/{id}", "orders/latest"));
        let (_, params) = match_template("/a/{x}/b/{y}", "a/1/b/2").expect("match");
        assert_eq!(
            params,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
    }
}
