//! The request context a policy pipeline works on, as policy expressions see it through
//! `context`: the request (and the URL it is forwarded to), the response, variables, the last
//! error, and what the request matched (instance, product, API, operation, subscription).

use super::expr::value::Val;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A message body that can be read once (`As<T>()`) or many times (`preserveContent: true`).
#[derive(Debug, Default)]
pub struct BodyCell {
    bytes: Mutex<Option<Vec<u8>>>,
}

impl BodyCell {
    /// A body holding `bytes`.
    pub fn new(bytes: Vec<u8>) -> Arc<BodyCell> {
        Arc::new(BodyCell {
            bytes: Mutex::new(Some(bytes)),
        })
    }

    /// Reads the body; without `preserve` it is gone afterwards (later reads see it empty).
    pub fn read(&self, preserve: bool) -> Vec<u8> {
        let mut b = self
            .bytes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if preserve {
            b.clone().unwrap_or_default()
        } else {
            b.take().unwrap_or_default()
        }
    }

    /// The bytes left, without consuming them (to forward or answer with).
    pub fn peek(&self) -> Vec<u8> {
        self.read(true)
    }
}

/// An HTTP response held in a variable (`send-request`'s `IResponse`).
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Arc<BodyCell>,
}

/// A URL as `IUrl` exposes it.
#[derive(Debug, Clone)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
    /// Query parameters in order, decoded.
    pub query: Vec<(String, String)>,
}

impl Url {
    /// Parses an absolute `http(s)` URL.
    pub fn parse(s: &str) -> Result<Url, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("'{s}' is not an absolute URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("'{s}': only http and https URLs are supported"));
        }
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if scheme == "https" { 443 } else { 80 };
        let bracketed = authority.starts_with('[') && authority.ends_with(']');
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !bracketed => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("'{s}': bad port"))?,
            ),
            _ => (authority.to_string(), default_port),
        };
        if host.is_empty() {
            return Err(format!("'{s}' has no host"));
        }
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_query, ""),
        };
        let path = if path.is_empty() { "/" } else { path };
        Ok(Url {
            scheme,
            host,
            port,
            path: path.to_string(),
            query: form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        })
    }

    /// `?a=b&c=d`, or "" without parameters.
    pub fn query_string(&self) -> String {
        if self.query.is_empty() {
            return String::new();
        }
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            s.append_pair(k, v);
        }
        format!("?{}", s.finish())
    }

    /// The whole URL.
    pub fn full(&self) -> String {
        let default = (self.scheme == "https" && self.port == 443)
            || (self.scheme == "http" && self.port == 80);
        let port = if default {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!(
            "{}://{}{port}{}{}",
            self.scheme,
            self.host,
            self.path,
            self.query_string()
        )
    }
}

/// `context.LastError`.
#[derive(Debug, Clone, Default)]
pub struct LastError {
    /// The policy or built-in step that failed.
    pub source: String,
    /// Machine-readable reason (`ExpressionValueEvaluationFailure`, `Timeout`, ...).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// `global` or `api`.
    pub scope: String,
    /// `inbound`, `backend`, `outbound` or `on-error`.
    pub section: String,
    /// Path of the failing policy (`choose[1]/when[1]/send-request[1]`).
    pub path: String,
    /// The failing policy's `id` attribute.
    pub policy_id: String,
}

/// What the request matched, for `context.Api`, `context.Deployment`, `context.Subscription`.
#[derive(Debug, Clone, Default)]
pub struct Matched {
    /// Instance name (`context.Deployment.ServiceName`).
    pub service_name: String,
    /// Region.
    pub region: String,
    /// API id (its ARM name).
    pub api_id: String,
    /// API display name.
    pub api_name: String,
    /// API path.
    pub api_path: String,
    /// The subscription used, if any: (id, display name, key used, primary, secondary).
    pub subscription: Option<[String; 5]>,
    /// The product the subscription is scoped to, if any: (id, display name).
    pub product: Option<[String; 2]>,
    /// The operation matched, if any: (id, display name, method, URL template).
    pub operation: Option<[String; 4]>,
}

/// The context of one request going through the pipeline.
#[derive(Debug)]
pub struct Ctx {
    /// Request method.
    pub method: String,
    /// Where the request goes (the backend URL once the API is matched).
    pub url: Url,
    /// The URL as received.
    pub original_url: Url,
    /// Request headers.
    pub req_headers: Vec<(String, String)>,
    /// Request body.
    pub req_body: Arc<BodyCell>,
    /// The caller's address.
    pub ip: String,
    /// Response status.
    pub status: u16,
    /// Response reason phrase.
    pub reason: String,
    /// Response headers.
    pub resp_headers: Vec<(String, String)>,
    /// Response body.
    pub resp_body: Arc<BodyCell>,
    /// `context.Variables`.
    pub variables: BTreeMap<String, Val>,
    /// `context.LastError` while on-error runs.
    pub last_error: Option<LastError>,
    /// What the request matched.
    pub matched: Matched,
}

impl Ctx {
    /// A context for a request as received; the response starts as `200 OK`, empty.
    pub fn new(
        method: &str,
        url: Url,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        ip: String,
        matched: Matched,
    ) -> Ctx {
        Ctx {
            method: method.to_string(),
            original_url: url.clone(),
            url,
            req_headers: headers,
            req_body: BodyCell::new(body),
            ip,
            status: 200,
            reason: "OK".into(),
            resp_headers: Vec::new(),
            resp_body: BodyCell::new(Vec::new()),
            variables: BTreeMap::new(),
            last_error: None,
            matched,
        }
    }
}

/// Comma-joined values of a header (or query parameter), case-insensitive, like
/// `Headers.GetValueOrDefault`.
pub fn joined(pairs: &[(String, String)], name: &str) -> Option<String> {
    let vals: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!vals.is_empty()).then(|| vals.join(","))
}

/// Applies `set-header`/`set-query-parameter`'s `exists-action` to a list of pairs.
pub fn set_pairs(pairs: &mut Vec<(String, String)>, name: &str, action: &str, values: Vec<String>) {
    let exists = pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    match action {
        "skip" if exists => {}
        "delete" => pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name)),
        "append" => pairs.extend(values.into_iter().map(|v| (name.to_string(), v))),
        _ => {
            pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
            pairs.extend(values.into_iter().map(|v| (name.to_string(), v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_pairs() {
        let u = Url::parse("http://127.0.0.1:8200/v1/a?x=1&y=%20").expect("url");
        assert_eq!((u.port, u.path.as_str()), (8200, "/v1/a"));
        assert_eq!(u.query[1], ("y".into(), " ".into()));
        assert_eq!(u.full(), "http://127.0.0.1:8200/v1/a?x=1&y=+");
        assert_eq!(Url::parse("https://h").expect("url").full(), "https://h/");
        assert!(Url::parse("ftp://h").is_err());
        assert_eq!(Url::parse("http://[::1]").expect("v6").port, 80);
        assert_eq!(Url::parse("http://[::1]:81/a").expect("v6").host, "[::1]");
        let mut p = vec![("A".to_string(), "1".to_string())];
        set_pairs(&mut p, "a", "append", vec!["2".into()]);
        assert_eq!(joined(&p, "A").as_deref(), Some("1,2"));
        set_pairs(&mut p, "a", "skip", vec!["3".into()]);
        set_pairs(&mut p, "a", "override", vec!["4".into()]);
        assert_eq!(joined(&p, "a").as_deref(), Some("4"));
        set_pairs(&mut p, "a", "delete", vec![]);
        assert!(p.is_empty());
    }
}
