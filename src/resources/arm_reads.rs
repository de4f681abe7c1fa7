//! Reads of ARM objects shared within one provider process, that is one Terraform operation:
//! the objects many resources of a configuration judge (an instance, an API and its policy)
//! are read once per operation instead of once per resource.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::clients::azure::apim::service::Service;
use crate::clients::azure::{AzureError, Tagged};

/// Reads of ARM objects shared by the resources of one process (one Terraform operation): the
/// bindings that refresh or are checked together, and the roles on their instance, read each object once, for at most
/// [`SHARED_READ_FOR`]. A failed read is not kept. An edit starts from one only when it is
/// younger than [`FRESH_READ`] (else from a fresh read, or from what this process wrote),
/// always with its ETag; a write of a policy replaces its shared read with what was written.
pub(crate) struct SharedReads<T> {
    reads: std::sync::Mutex<HashMap<String, (Instant, SharedRead<T>)>>,
}

/// One shared read: done once, by whoever comes first.
type SharedRead<T> = Arc<tokio::sync::OnceCell<T>>;

/// How long a shared read serves: a refresh or a plan's checks, not a long apply.
const SHARED_READ_FOR: Duration = Duration::from_secs(30);

impl<T: Clone> SharedReads<T> {
    pub(crate) fn new() -> Self {
        SharedReads {
            reads: std::sync::Mutex::default(),
        }
    }

    /// The object at `arm_id`, read by `read` unless a read of it is shared.
    pub(crate) async fn get<F, Fut>(&self, arm_id: &str, read: F) -> Result<T, AzureError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, AzureError>>,
    {
        let key = arm_id.to_ascii_lowercase();
        let cell = {
            let mut reads = lock(&self.reads);
            match reads.get(&key) {
                Some((at, cell)) if at.elapsed() < SHARED_READ_FOR => cell.clone(),
                _ => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    reads.insert(key, (Instant::now(), cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(read).await.cloned()
    }

    /// Shares `value` as the object at `arm_id` (this process wrote it).
    pub(crate) fn put(&self, arm_id: &str, value: T) {
        let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(value)));
        lock(&self.reads).insert(arm_id.to_ascii_lowercase(), (Instant::now(), cell));
    }

    /// The shared read of the object at `arm_id` when it is done and younger than `age`.
    pub(crate) fn fresh(&self, arm_id: &str, age: Duration) -> Option<T> {
        let reads = lock(&self.reads);
        let (at, cell) = reads.get(&arm_id.to_ascii_lowercase())?;
        (at.elapsed() < age).then(|| cell.get().cloned()).flatten()
    }

    pub(crate) fn forget(&self, arm_id: &str) {
        lock(&self.reads).remove(&arm_id.to_ascii_lowercase());
    }
}

/// The instances the bindings and roles of this process are on.
pub(crate) fn service_reads() -> &'static SharedReads<Tagged<Service>> {
    static READS: OnceLock<SharedReads<Tagged<Service>>> = OnceLock::new();
    READS.get_or_init(SharedReads::new)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
