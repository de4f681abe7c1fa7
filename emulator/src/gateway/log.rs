//! The gateway's request log (`GET /_emulator/gateway/log`): per request, what it matched, how
//! it was answered, and each policy step's outcome. Never a header value, a body, a token, a
//! secret or a cached value: outcomes name what happened (cache hit, token obtained, URL and
//! status of a call, the reason an expression failed).

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Requests kept (oldest dropped first).
const MAX_ENTRIES: usize = 2_000;

/// One policy step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The policy element.
    pub policy: String,
    /// `inbound`, `backend`, `outbound` or `on-error`.
    pub section: String,
    /// `global`, `product`, `api` or `operation`.
    pub scope: String,
    /// What happened (`cache hit`, `token obtained`, `GET http://... -> 200`, ...).
    pub outcome: String,
}

/// The error a request ran into, as `context.LastError` had it.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorSummary {
    /// The failing policy or built-in step.
    pub source: String,
    /// `ExpressionValueEvaluationFailure`, `Timeout`, ...
    pub reason: String,
    /// `context.LastError.Message` (exception messages and URLs without query strings; no
    /// values).
    pub message: String,
    /// Section it happened in.
    pub section: String,
    /// Path of the policy (`choose[1]/when[1]/send-request[1]`).
    pub path: String,
}

/// One request through the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339 arrival time.
    pub time: String,
    /// Method.
    pub method: String,
    /// Path as received (no query string: it may carry a subscription key).
    pub path: String,
    /// Instance name.
    pub instance: String,
    /// Matched API id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// Subscription id used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The product the subscription is scoped to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Matched operation id, if the API has operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The scopes whose policies were composed, outermost first (`global`, `product`, `api`,
    /// `operation`).
    pub scopes: Vec<String>,
    /// Status answered.
    pub status: u16,
    /// Time to answer.
    pub duration_ms: u64,
    /// Policy steps in execution order.
    pub steps: Vec<Step>,
    /// The error handled by on-error (or answered as 500), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorSummary>,
}

/// The log.
#[derive(Default)]
pub struct Log {
    entries: Mutex<VecDeque<Entry>>,
}

impl Log {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an entry.
    pub fn push(&self, e: Entry) {
        let mut l = self.lock();
        if l.len() >= MAX_ENTRIES {
            l.pop_front();
        }
        l.push_back(e);
    }

    /// Every entry, oldest first.
    pub fn all(&self) -> Vec<Entry> {
        self.lock().iter().cloned().collect()
    }

    /// Empties the log.
    pub fn clear(&self) {
        self.lock().clear();
    }
}
