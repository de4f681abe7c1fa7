//! Long-running operations: whether a write's answer starts one, its polling through
//! `Azure-AsyncOperation` (preferred) or `Location` at the interval ARM asks for, and the
//! final read of the resource.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::exchange::Exchange;
use super::{ArmRequest, ArmResponse, Budget};
use crate::clients::azure::{Azure, AzureError};

/// Poll interval of a long-running operation whose answer has no `Retry-After`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The status of a long-running operation (`Azure-AsyncOperation` body).
#[derive(Deserialize)]
struct OperationStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<OperationError>,
}

#[derive(Deserialize)]
struct OperationError {
    code: Option<String>,
    message: Option<String>,
}

/// Where an operation stands after one status answer.
#[derive(Debug, PartialEq, Eq)]
enum LroState {
    Running,
    Succeeded,
    /// `Failed` or `Canceled` (or another terminal failure), with the error code and message.
    Failed(String, Option<String>, Option<String>),
}

/// Reads an `Azure-AsyncOperation` status body. Unknown statuses count as still running,
/// as ARM documents ("any other value means the operation is still running").
fn lro_state(body: &Value) -> LroState {
    let parsed: OperationStatus = serde_json::from_value(body.clone()).unwrap_or(OperationStatus {
        status: String::new(),
        error: None,
    });
    match parsed.status.to_ascii_lowercase().as_str() {
        "succeeded" => LroState::Succeeded,
        "failed" | "canceled" | "cancelled" => {
            let (code, message) = parsed
                .error
                .map(|e| (e.code, e.message))
                .unwrap_or((None, None));
            LroState::Failed(parsed.status, code, message)
        }
        _ => LroState::Running,
    }
}

/// Whether a write's first answer starts a long-running operation.
pub(super) fn starts_lro(x: &Exchange) -> bool {
    let has_headers =
        x.headers.contains_key("azure-asyncoperation") || x.headers.contains_key("location");
    match x.status {
        202 => true,
        200 | 201 if has_headers => {
            let state = x
                .body
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            !matches!(
                state.as_deref(),
                None | Some("succeeded" | "failed" | "canceled")
            )
        }
        _ => false,
    }
}

impl Azure {
    /// Polls a long-running operation to its end and returns the final resource.
    pub(super) async fn follow(
        &self,
        req: &ArmRequest,
        url: &Url,
        first: Exchange,
        budget: &mut Budget,
    ) -> Result<ArmResponse, AzureError> {
        let what = &req.what;
        let async_op = first.header("azure-asyncoperation");
        let location = first.header("location");
        let mut wait = first.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
        let get = Method::GET;
        if let Some(op) = async_op {
            let op_url = self.checked_url(&op, what)?;
            loop {
                self.pause(wait, budget, what, None).await?;
                let poll = self
                    .exchange_with_retries(&get, &op_url, req, budget)
                    .await?;
                match lro_state(&poll.body) {
                    LroState::Running => {
                        wait = poll.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
                    }
                    LroState::Succeeded => break,
                    LroState::Failed(status, code, message) => {
                        return Err(AzureError::OperationFailed {
                            what: what.clone(),
                            status,
                            code,
                            message,
                            request_id: poll.request_id(),
                        })
                    }
                }
            }
            return self
                .final_state(req, url, location.as_deref(), budget)
                .await;
        }
        if let Some(loc) = location {
            let loc_url = self.checked_url(&loc, what)?;
            loop {
                self.pause(wait, budget, what, None).await?;
                let poll = self
                    .exchange_with_retries(&get, &loc_url, req, budget)
                    .await?;
                if poll.status == 202 {
                    wait = poll.retry_after().unwrap_or(DEFAULT_POLL_INTERVAL);
                    continue;
                }
                if poll.body.is_null() && (req.method == Method::PUT || req.method == Method::PATCH)
                {
                    return self.final_state(req, url, None, budget).await;
                }
                return Ok(poll.into_response());
            }
        }
        // A 202 with nowhere to poll: the write was accepted and there is nothing to follow.
        Ok(first.into_response())
    }

    /// After a successful operation: the resource itself for PUT/PATCH (GET on `Location`,
    /// which ARM documents as the final state, or on the request URL); nothing for DELETE.
    async fn final_state(
        &self,
        req: &ArmRequest,
        url: &Url,
        location: Option<&str>,
        budget: &mut Budget,
    ) -> Result<ArmResponse, AzureError> {
        if req.method == Method::DELETE {
            return Ok(ArmResponse {
                status: 200,
                body: Value::Null,
                etag: None,
                request_id: None,
            });
        }
        let target = match location {
            Some(l) if req.method != Method::POST => self.checked_url(l, &req.what)?,
            _ => {
                // The request URL without the write's own query parameters but api-version.
                let mut u = url.clone();
                let keep: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k == "api-version")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(keep);
                u
            }
        };
        let x = self
            .exchange_with_retries(&Method::GET, &target, req, budget)
            .await?;
        Ok(x.into_response())
    }

    /// Sleeps `wait`, or fails when that would pass the deadline.
    async fn pause(
        &self,
        wait: Duration,
        budget: &Budget,
        what: &str,
        last: Option<String>,
    ) -> Result<(), AzureError> {
        if wait > budget.left() {
            return Err(AzureError::Timeout {
                what: what.to_string(),
                attempts: budget.attempts,
                budget: budget.total,
                last,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::json;

    #[test]
    fn lro_states() {
        assert_eq!(
            lro_state(&json!({"status": "InProgress"})),
            LroState::Running
        );
        assert_eq!(lro_state(&json!({"status": "Accepted"})), LroState::Running);
        assert_eq!(
            lro_state(&json!({"status": "Succeeded"})),
            LroState::Succeeded
        );
        assert_eq!(
            lro_state(
                &json!({"status": "Failed", "error": {"code": "ValidationError", "message": "bad"}})
            ),
            LroState::Failed(
                "Failed".into(),
                Some("ValidationError".into()),
                Some("bad".into())
            )
        );
        assert_eq!(
            lro_state(&json!({"status": "Canceled"})),
            LroState::Failed("Canceled".into(), None, None)
        );
        assert_eq!(lro_state(&json!("garbage")), LroState::Running);
    }

    #[test]
    fn operation_failed_message() {
        let e = AzureError::OperationFailed {
            what: "creating named value x".into(),
            status: "Failed".into(),
            code: Some("ValidationError".into()),
            message: Some("bad".into()),
            request_id: Some("r".into()),
        };
        assert_eq!(
            e.to_string(),
            "creating named value x: the long-running operation ended Failed with ValidationError: bad (request ID r)"
        );
    }

    #[test]
    fn lro_start_detection() {
        let mut h = HeaderMap::new();
        h.insert("azure-asyncoperation", "https://x/op".parse().unwrap());
        let x = |status, body| Exchange {
            status,
            headers: h.clone(),
            body,
        };
        assert!(starts_lro(&x(
            201,
            json!({"properties": {"provisioningState": "InProgress"}})
        )));
        assert!(!starts_lro(&x(
            200,
            json!({"properties": {"provisioningState": "Succeeded"}})
        )));
        assert!(!starts_lro(&x(200, json!({"properties": {}}))));
        assert!(starts_lro(&x(202, Value::Null)));
        let plain = Exchange {
            status: 201,
            headers: HeaderMap::new(),
            body: json!({"properties": {"provisioningState": "InProgress"}}),
        };
        assert!(!starts_lro(&plain));
    }
}
