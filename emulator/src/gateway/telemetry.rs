//! What the instance's diagnostics would receive from policies (`GET
//! /_emulator/gateway/telemetry`): each `trace` (Application Insights / the request trace),
//! `emit-metric` (custom metrics) and `log-to-eventhub` (an Event Hubs logger) with its
//! content as the policy made it. Unlike the request log, these records hold values: what a
//! policy chose to emit is exactly what an operator would read, so tests read it here (and
//! check that it holds no secret).

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Records kept (oldest dropped first).
const MAX_RECORDS: usize = 5_000;

/// One record.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// `trace`.
    Trace {
        /// RFC 3339 time.
        time: String,
        /// The API the request matched.
        api: String,
        /// `source`.
        source: String,
        /// `severity` (default `verbose`).
        severity: String,
        /// `<message>`, evaluated.
        message: String,
        /// `<metadata name value>`, evaluated.
        metadata: BTreeMap<String, String>,
    },
    /// `emit-metric`.
    Metric {
        /// RFC 3339 time.
        time: String,
        /// The API the request matched.
        api: String,
        /// `name`.
        name: String,
        /// `namespace` (default `API Management`).
        namespace: String,
        /// `value`, evaluated (default 1).
        value: String,
        /// `<dimension name value>`, evaluated.
        dimensions: BTreeMap<String, String>,
    },
    /// `log-to-eventhub`.
    Event {
        /// RFC 3339 time.
        time: String,
        /// The API the request matched.
        api: String,
        /// `logger-id`.
        logger_id: String,
        /// The event, evaluated.
        message: String,
    },
}

/// The records.
#[derive(Default)]
pub struct Telemetry {
    records: Mutex<VecDeque<Record>>,
}

impl Telemetry {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a record.
    pub fn push(&self, r: Record) {
        let mut l = self.lock();
        if l.len() >= MAX_RECORDS {
            l.pop_front();
        }
        l.push_back(r);
    }

    /// Every record, oldest first.
    pub fn all(&self) -> Vec<Record> {
        self.lock().iter().cloned().collect()
    }

    /// Empties it.
    pub fn clear(&self) {
        self.lock().clear();
    }
}
