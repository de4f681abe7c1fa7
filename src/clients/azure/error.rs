//! What went wrong talking to Azure. Every message names the object (by its readable ID) and,
//! when ARM answered, its status, error code, message and request ID (`x-ms-request-id`),
//! which is what Azure support asks for. No message ever holds a token or a secret value.

use std::fmt;
use std::time::Duration;

use super::id::IdError;

/// An error answer from ARM, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmFailure {
    /// HTTP status.
    pub status: u16,
    /// ARM's `error.code`, e.g. `ResourceNotFound`.
    pub code: Option<String>,
    /// ARM's `error.message`, with the `details` messages appended.
    pub message: Option<String>,
    /// The `x-ms-request-id` of the answer.
    pub request_id: Option<String>,
}

impl fmt::Display for ArmFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ARM answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(msg) = self.message.as_deref().filter(|m| !m.is_empty()) {
            write!(f, ": {msg}")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request ID {id})")?;
        }
        Ok(())
    }
}

/// What went wrong talking to Azure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// ARM answered with an error status (after retries, for retryable ones).
    #[error("{}", describe_api(what, failure))]
    Api {
        /// The object and operation, e.g. "reading named value x of API Management service …".
        what: String,
        /// ARM's answer.
        failure: Box<ArmFailure>,
    },
    /// ARM kept answering 429 and the operation's time budget does not allow waiting as asked.
    #[error("Azure Resource Manager kept throttling {what}: {attempts} attempt(s) over {:.1} s, the last one: {last}; {reason}. Try again later", waited.as_secs_f64())]
    Throttled {
        /// The object and operation.
        what: String,
        /// Requests made.
        attempts: u32,
        /// Time spent.
        waited: Duration,
        /// Why the provider stopped retrying, e.g. that the wait asked for exceeds the
        /// operation timeout.
        reason: String,
        /// The last answer.
        last: Box<ArmFailure>,
    },
    /// The operation did not finish within its time budget (retries or long-running polling).
    #[error("{what} did not finish within the operation timeout of {} s ({attempts} request(s)){}", budget.as_secs(), last.as_ref().map(|l| format!("; the last attempt: {l}")).unwrap_or_default())]
    Timeout {
        /// The object and operation.
        what: String,
        /// Requests made.
        attempts: u32,
        /// The operation timeout.
        budget: Duration,
        /// Why the last attempt failed, when it did.
        last: Option<String>,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("{what}: the long-running operation ended {status}{}{}{}", code.as_deref().map(|c| format!(" with {c}")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(), request_id.as_deref().map(|r| format!(" (request ID {r})")).unwrap_or_default())]
    OperationFailed {
        /// The object and operation.
        what: String,
        /// `Failed` or `Canceled`.
        status: String,
        /// The operation's `error.code`.
        code: Option<String>,
        /// The operation's `error.message`.
        message: Option<String>,
        /// The `x-ms-request-id` of the status answer.
        request_id: Option<String>,
    },
    /// No answer (connection refused, reset, TLS failure, …) after retries.
    #[error("cannot reach Azure Resource Manager at {endpoint} for {what}: {message}")]
    Transport {
        /// The object and operation.
        what: String,
        /// The ARM endpoint.
        endpoint: String,
        /// Why.
        message: String,
    },
    /// No token could be obtained from Entra ID (or the CLI, or the managed-identity endpoint).
    #[error("cannot get an Azure access token with {method}: {message}")]
    Credential {
        /// Which credential, e.g. "a client secret (client ID …)".
        method: String,
        /// Why.
        message: String,
    },
    /// The provider's Azure settings are missing or invalid.
    #[error("{0}")]
    Config(String),
    /// An ID is not valid.
    #[error(transparent)]
    InvalidId(#[from] IdError),
    /// An answer was not what the API documents.
    #[error("unexpected answer from Azure Resource Manager for {what}: {message}{}", request_id.as_deref().map(|r| format!(" (request ID {r})")).unwrap_or_default())]
    Decode {
        /// The object and operation.
        what: String,
        /// Why.
        message: String,
        /// The `x-ms-request-id` of the answer.
        request_id: Option<String>,
    },
}

fn describe_api(what: &str, failure: &ArmFailure) -> String {
    match failure.status {
        404 => format!("{what}: it is gone (not found): {failure}"),
        412 => format!(
            "{what}: it was changed by someone else since it was read: {failure}. Run plan again"
        ),
        401 => format!("{what}: Azure did not accept the provider's credentials: {failure}"),
        403 => format!("{what}: the provider's identity is not allowed to do this: {failure}"),
        _ => format!("{what}: {failure}"),
    }
}

impl AzureError {
    /// The HTTP status of ARM's (last) answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AzureError::Api { failure, .. } => Some(failure.status),
            AzureError::Throttled { last, .. } => Some(last.status),
            _ => None,
        }
    }

    /// ARM's error code, when it gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzureError::Api { failure, .. } => failure.code.as_deref(),
            AzureError::Throttled { last, .. } => last.code.as_deref(),
            AzureError::OperationFailed { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The `x-ms-request-id` of ARM's (last) answer.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            AzureError::Api { failure, .. } => failure.request_id.as_deref(),
            AzureError::Throttled { last, .. } => last.request_id.as_deref(),
            AzureError::OperationFailed { request_id, .. }
            | AzureError::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// 404: the object is gone (read removes it from state; delete succeeds).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 412: the object changed since its ETag was read; the user must plan again.
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412)
    }

    /// Throttling outlasted the operation's budget.
    pub fn is_throttled(&self) -> bool {
        matches!(self, AzureError::Throttled { .. })
    }

    /// The operation's time budget ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AzureError::Timeout { .. })
    }

    /// Whether a later retry could succeed: 429, 5xx (except 501/505) and no answer at all.
    pub(crate) fn retryable_status(status: u16) -> bool {
        status == 429
            || status == 408
            || (500..600).contains(&status) && status != 501 && status != 505
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> ArmFailure {
        ArmFailure {
            status,
            code: Some(code.into()),
            message: Some("NamedValue not found.".into()),
            request_id: Some("r-1".into()),
        }
    }

    #[test]
    fn messages() {
        let e = AzureError::Api {
            what: "reading named value x".into(),
            failure: Box::new(failure(404, "ResourceNotFound")),
        };
        assert!(e.is_not_found() && !e.is_precondition_failed());
        assert_eq!(
            e.to_string(),
            "reading named value x: it is gone (not found): ARM answered 404 ResourceNotFound: NamedValue not found. (request ID r-1)"
        );
        let e = AzureError::Api {
            what: "updating named value x".into(),
            failure: Box::new(ArmFailure {
                message: None,
                ..failure(412, "PreconditionFailed")
            }),
        };
        assert!(e.is_precondition_failed());
        assert_eq!(
            e.to_string(),
            "updating named value x: it was changed by someone else since it was read: ARM answered 412 PreconditionFailed (request ID r-1). Run plan again"
        );
        assert_eq!(e.request_id(), Some("r-1"));
        assert_eq!(e.code(), Some("PreconditionFailed"));
    }

    #[test]
    fn retryable() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(AzureError::retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 501, 505] {
            assert!(!AzureError::retryable_status(s), "{s}");
        }
    }
}
