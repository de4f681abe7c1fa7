//! Reads shared within one provider process, that is one Terraform operation: the objects many
//! resources of a configuration judge (an instance, an API and its policy in ARM; a role, its
//! policies, a secret's mount in Vault) are read once per operation instead of once per
//! resource.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::clients::azure::apim::service::Service;
use crate::clients::azure::Tagged;

/// Reads shared by the resources of one process (one Terraform operation): the bindings that
/// refresh or are checked together, and the roles on their instance, read each object once,
/// for at most [`SHARED_READ_FOR`]. A failed read is not kept. (An edit of an API policy starts
/// from a shared read only when it is a moment old, and always with its ETag; a write of a
/// policy replaces its shared read with what was written.)
pub(crate) struct SharedReads<T> {
    reads: std::sync::Mutex<HashMap<String, Entry<T>>>,
    /// Keys are ARM IDs, whose case does not matter (Vault paths are kept as they are).
    fold_case: bool,
}

/// One shared read: done once, by whoever comes first.
type SharedRead<T> = Arc<tokio::sync::OnceCell<T>>;

/// A shared read, when it started and in which operation.
struct Entry<T> {
    at: Instant,
    operation: u64,
    read: SharedRead<T>,
}

impl<T> Entry<T> {
    fn new(read: SharedRead<T>) -> Self {
        Entry {
            at: Instant::now(),
            operation: OPERATION.load(Ordering::Relaxed),
            read,
        }
    }

    /// Younger than `age`, and of the operation under way.
    fn serves(&self, age: Duration) -> bool {
        self.at.elapsed() < age && self.operation == OPERATION.load(Ordering::Relaxed)
    }
}

/// Which Terraform operation this process serves: each configures the provider first. One
/// process serves several when Terraform reattaches to it (`TF_REATTACH_PROVIDERS`); their
/// reads are never shared.
static OPERATION: AtomicU64 = AtomicU64::new(0);

/// A new operation begins (the provider is configured): what earlier ones read is not used.
pub(crate) fn new_operation() {
    OPERATION.fetch_add(1, Ordering::Relaxed);
}

/// How long a shared read serves: a refresh or a plan's checks, not a long apply.
const SHARED_READ_FOR: Duration = Duration::from_secs(30);

impl<T: Clone> SharedReads<T> {
    /// Reads of ARM objects, by ARM ID.
    pub(crate) fn new() -> Self {
        SharedReads {
            reads: std::sync::Mutex::default(),
            fold_case: true,
        }
    }

    /// Reads by a key whose case matters (a Vault path).
    pub(crate) fn exact() -> Self {
        SharedReads {
            fold_case: false,
            ..Self::new()
        }
    }

    fn key(&self, key: &str) -> String {
        match self.fold_case {
            true => key.to_ascii_lowercase(),
            false => key.to_string(),
        }
    }

    /// The object at `key`, read by `read` unless a read of it is shared.
    pub(crate) async fn get<F, Fut, E>(&self, key: &str, read: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let key = self.key(key);
        let cell = {
            let mut reads = lock(&self.reads);
            match reads.get(&key) {
                Some(entry) if entry.serves(SHARED_READ_FOR) => entry.read.clone(),
                _ => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    reads.insert(key, Entry::new(cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_try_init(read).await.cloned()
    }

    /// [`SharedReads::get`] of an object that may not be there (`None`): only one found is
    /// shared, since one missing may be made by this very operation before it is looked at
    /// again.
    pub(crate) async fn get_found<F, Fut, E>(&self, key: &str, read: F) -> Result<Option<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, E>>,
    {
        enum Missed<E> {
            Absent,
            Failed(E),
        }
        let found = self
            .get(key, || async {
                match read().await {
                    Ok(Some(t)) => Ok(t),
                    Ok(None) => Err(Missed::Absent),
                    Err(e) => Err(Missed::Failed(e)),
                }
            })
            .await;
        match found {
            Ok(t) => Ok(Some(t)),
            Err(Missed::Absent) => Ok(None),
            Err(Missed::Failed(e)) => Err(e),
        }
    }

    /// Shares `value` as the object at `key` (this process wrote it).
    pub(crate) fn put(&self, key: &str, value: T) {
        let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(value)));
        lock(&self.reads).insert(self.key(key), Entry::new(cell));
    }

    /// The shared read of the object at `key` when it is done and younger than `age`.
    pub(crate) fn fresh(&self, key: &str, age: Duration) -> Option<T> {
        let reads = lock(&self.reads);
        let entry = reads.get(&self.key(key))?;
        entry
            .serves(age)
            .then(|| entry.read.get().cloned())
            .flatten()
    }

    pub(crate) fn forget(&self, key: &str) {
        lock(&self.reads).remove(&self.key(key));
    }
}

/// The instances the bindings and roles of this process are on.
pub(crate) fn service_reads() -> &'static SharedReads<Tagged<Service>> {
    static READS: OnceLock<SharedReads<Tagged<Service>>> = OnceLock::new();
    READS.get_or_init(SharedReads::new)
}

/// Locks `m`, whatever a thread that panicked while holding it left: what the provider keeps
/// behind these locks (reads, queues, counts) stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// One test at a time: `a_new_operation_reads_again` ends the operation of them all.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A read that counts its calls and answers `answer`.
    async fn counted<T>(calls: &AtomicUsize, answer: T) -> Result<T, String> {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok(answer)
    }

    #[tokio::test]
    async fn concurrent_readers_of_one_object_make_one_read_and_arm_ids_ignore_case() {
        let _one = ONE_AT_A_TIME.lock().await;
        let reads = SharedReads::<u32>::new();
        let calls = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            reads.get("/Subscriptions/S/x", || counted(&calls, 1)),
            reads.get("/subscriptions/s/X", || counted(&calls, 2)),
        );
        assert_eq!((a, b), (Ok(1), Ok(1)));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn vault_keys_keep_their_case_and_a_missing_object_is_read_again() {
        let _one = ONE_AT_A_TIME.lock().await;
        let reads = SharedReads::<u32>::exact();
        let calls = AtomicUsize::new(0);
        assert_eq!(reads.get("kv/App", || counted(&calls, 1)).await, Ok(1));
        assert_eq!(reads.get("kv/app", || counted(&calls, 2)).await, Ok(2));
        let missing = SharedReads::<u32>::exact();
        let none: Result<Option<u32>, String> = missing.get_found("r", || async { Ok(None) }).await;
        assert_eq!(none, Ok(None));
        // Made since (by this very operation, say): found now, and shared from then on.
        assert_eq!(
            missing.get_found("r", || counted(&calls, Some(7))).await,
            Ok(Some(7))
        );
        assert_eq!(
            missing.get_found("r", || counted(&calls, Some(8))).await,
            Ok(Some(7))
        );
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let _one = ONE_AT_A_TIME.lock().await;
        let reads = SharedReads::<u32>::new();
        let failed: Result<u32, String> = reads.get("a", || async { Err("503".into()) }).await;
        assert!(failed.is_err());
        let calls = AtomicUsize::new(0);
        assert_eq!(reads.get("a", || counted(&calls, 5)).await, Ok(5));
    }

    #[tokio::test]
    async fn a_new_operation_reads_again() {
        let _one = ONE_AT_A_TIME.lock().await;
        let reads = SharedReads::<u32>::new();
        let calls = AtomicUsize::new(0);
        assert_eq!(reads.get("a", || counted(&calls, 1)).await, Ok(1));
        new_operation();
        assert_eq!(reads.get("a", || counted(&calls, 2)).await, Ok(2));
        assert_eq!(reads.fresh("a", SHARED_READ_FOR), Some(2));
    }
}
