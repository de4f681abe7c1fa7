//! The verbs the API Management files use: GET, PUT, PATCH, POST and DELETE of an ARM ID,
//! decoded with the entity's ETag, and paged lists.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{ArmRequest, Tagged};
use crate::clients::azure::{Azure, AzureError};

impl Azure {
    /// GET of an ARM ID, decoded.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        self.send(get(path, query, what)).await?.decode(what)
    }

    /// PUT of a JSON body to an ARM ID (following a long-running operation), decoded.
    pub async fn put_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Value,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        self.write_json(Method::PUT, path, body, if_match, what)
            .await
    }

    /// PATCH of a JSON body to an ARM ID (following a long-running operation), decoded.
    pub async fn patch_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Value,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        self.write_json(Method::PATCH, path, body, if_match, what)
            .await
    }

    async fn write_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Value,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let req = ArmRequest::new(method, path, what)
            .json(body)
            .if_match(if_match);
        self.send(req).await?.decode(what)
    }

    /// POST to an ARM ID (an action such as `listValue`), decoded.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Tagged<T>, AzureError> {
        let mut req = ArmRequest::new(Method::POST, path, what);
        req.body = body;
        self.send(req).await?.decode(what)
    }

    /// DELETE of an ARM ID. A 404 is success: the object is already gone.
    pub async fn delete(
        &self,
        path: &str,
        if_match: Option<&str>,
        what: &str,
    ) -> Result<(), AzureError> {
        let req = ArmRequest::new(Method::DELETE, path, what).if_match(if_match);
        match self.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// GET of a collection, following `nextLink` to the last page.
    pub async fn list_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Vec<T>, AzureError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(default)]
            next_link: Option<String>,
        }
        let mut out = Vec::new();
        let mut req = get(path, query, what);
        // A bound on pages, so that a server that loops its nextLink cannot hold us forever.
        for _ in 0..10_000 {
            let page: Page<T> = self.send(req).await?.decode(what)?.value;
            out.extend(page.value);
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) => req = ArmRequest::new(Method::GET, next, what),
                None => return Ok(out),
            }
        }
        Err(AzureError::Decode {
            what: what.to_string(),
            message: "more than 10000 pages: the nextLink chain does not end".into(),
            request_id: None,
        })
    }
}

/// A GET of an ARM ID with query parameters.
fn get(path: &str, query: &[(&str, &str)], what: &str) -> ArmRequest {
    query
        .iter()
        .fold(ArmRequest::new(Method::GET, path, what), |req, (k, v)| {
            req.query(k, v)
        })
}
