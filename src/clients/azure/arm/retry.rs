//! One request retried on 429, 5xx and no answer: after exactly the wait ARM asks for, else
//! after the shared [`Backoff`], and never past the operation's deadline (a wait that would
//! pass it fails at once, saying so).

use reqwest::Method;
use url::Url;

use super::exchange::Exchange;
use super::{ArmRequest, Budget, ATTEMPT_TIMEOUT};
use crate::clients::azure::{Azure, AzureError};
use crate::clients::backoff::Backoff;
use crate::log;

impl Azure {
    /// One request, retried on 429, 5xx and no answer; an error status becomes an
    /// [`AzureError`].
    pub(super) async fn exchange_with_retries(
        &self,
        method: &Method,
        url: &Url,
        req: &ArmRequest,
        budget: &mut Budget,
    ) -> Result<Exchange, AzureError> {
        let what = &req.what;
        let client_request_id = super::exchange::client_request_id();
        let mut retries = 0u32;
        loop {
            budget.attempts += 1;
            super::pacing::pace(method).await;
            let left = budget.left();
            let attempt = self.exchange(method, url, req, &client_request_id);
            let outcome = match tokio::time::timeout(left.min(ATTEMPT_TIMEOUT), attempt).await {
                Ok(r) => r?,
                Err(_) if budget.left().is_zero() => {
                    return Err(AzureError::Timeout {
                        what: what.clone(),
                        attempts: budget.attempts,
                        budget: budget.total,
                        last: Some("no answer before the deadline".into()),
                    })
                }
                Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            // What the retry would wait for, and the error to give if it cannot.
            let (wait, asked, failure_text, final_error) = match outcome {
                Ok(x) if x.status < 400 => return Ok(x),
                Ok(x) if !AzureError::retryable_status(x.status) => {
                    return Err(AzureError::Api {
                        what: what.clone(),
                        failure: Box::new(x.failure()),
                    })
                }
                Ok(x) => {
                    let failure = x.failure();
                    let asked = x.retry_after();
                    let text = failure.to_string();
                    let err = if x.status == 429 {
                        AzureError::Throttled {
                            what: what.clone(),
                            attempts: budget.attempts,
                            waited: budget.started.elapsed(),
                            reason: String::new(),
                            last: Box::new(failure),
                        }
                    } else {
                        AzureError::Api {
                            what: what.clone(),
                            failure: Box::new(failure),
                        }
                    };
                    (Backoff::ARM.wait(retries + 1, asked), asked, text, err)
                }
                Err(message) => {
                    let err = AzureError::Transport {
                        what: what.clone(),
                        endpoint: self.endpoint.to_string(),
                        message: message.clone(),
                    };
                    (Backoff::ARM.delay(retries + 1), None, message, err)
                }
            };
            if retries >= self.max_retries {
                return Err(with_reason(
                    final_error,
                    format!("the provider gave up after {retries} retries"),
                ));
            }
            if wait > budget.left() {
                return Err(match final_error {
                    AzureError::Throttled { .. } => with_reason(
                        final_error,
                        format!(
                            "waiting the {:.1} s {} would pass the operation timeout of {} s ({:.1} s left)",
                            wait.as_secs_f64(),
                            if asked.is_some() { "it asked for" } else { "of the next backoff" },
                            budget.total.as_secs(),
                            budget.left().as_secs_f64()
                        ),
                    ),
                    _ => AzureError::Timeout {
                        what: what.clone(),
                        attempts: budget.attempts,
                        budget: budget.total,
                        last: Some(failure_text),
                    },
                });
            }
            retries += 1;
            if log::enabled(log::Level::Debug) {
                log::debug(
                    "retrying an ARM request",
                    &[
                        ("operation", what),
                        ("last", &failure_text),
                        ("wait_ms", &wait.as_millis().to_string()),
                        ("retry", &retries.to_string()),
                    ],
                );
            }
            tokio::time::sleep(wait).await;
        }
    }
}

fn with_reason(e: AzureError, reason: String) -> AzureError {
    match e {
        AzureError::Throttled {
            what,
            attempts,
            waited,
            last,
            ..
        } => AzureError::Throttled {
            what,
            attempts,
            waited,
            reason,
            last,
        },
        other => other,
    }
}
