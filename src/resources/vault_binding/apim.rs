//! The binding's place in API Management: its record and part in the managed block of its
//! API's inbound policy. Every change reads the policy (or starts from what this process
//! last wrote to it), edits the block, and writes it back with the ETag it read or was given
//! (`If-Match`), so a concurrent edit, by another binding of this process, another pipeline
//! or the portal, is never overwritten: a 412 reads again and re-applies the change, which
//! only touches the block.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::clients::azure::apim::api::Api;
use crate::clients::azure::apim::api_policy::PolicyCreate;
use crate::clients::azure::apim::service::Service;

use crate::clients::azure::apim::PolicyFormat;
use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError, Tagged};
use crate::clients::backoff::random_u64;
use crate::framework::diag::Diags;

use super::model::api_name;
use super::render::{find_block, with_block, BindingSpec, Block};
use super::TYPE;

/// The uniform diagnostic for a failed ARM call.
pub(super) fn azure_err(d: &mut Diags, action: &str, e: &AzureError) {
    let hint = if e.is_precondition_failed() {
        " It was changed outside Terraform since it was read: run `terraform plan` again to see the change, then apply."
    } else {
        ""
    };
    d.error(format!("Unable to {action} {TYPE}"), format!("{e}.{hint}"));
}

pub(super) fn api_policy_id(service: &ServiceId, api_id: &str) -> ApiPolicyId {
    service.api(api_name(api_id)).policy()
}

/// An API's policy document (`rawxml`) and its ETag; `None` when the API has none.
pub(super) async fn read_policy(
    azure: &Azure,
    id: &ApiPolicyId,
) -> Result<Option<(String, Option<String>)>, AzureError> {
    match azure.get_api_policy(id).await {
        Ok(t) => Ok(Some((t.value.properties.value, t.etag))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// What the block of an API's policy says of binding `name`: its record, and whether the
/// block is as its records render it. `None` when the policy or the record is not there.
pub(super) fn record_of(doc: &str, api: &str, name: &str) -> Option<(BindingSpec, bool)> {
    let found = find_block(doc)?;
    let spec = found.block.bindings.into_iter().find(|s| s.name == name)?;
    Some((spec, super::render::block_intact(doc, api)))
}

/// The names of the bindings whose records the managed block of an API's policy holds
/// (sorted), and of those whose record could not be read (edited by hand); both empty when
/// the API has no policy or no block.
pub(super) async fn bindings_of(
    azure: &Azure,
    id: &ApiPolicyId,
) -> Result<(Vec<String>, Vec<String>), AzureError> {
    let Some((doc, _)) = read_policy_shared(azure, id).await? else {
        return Ok(Default::default());
    };
    Ok(find_block(&doc).map_or_else(Default::default, |found| {
        let names = found.block.bindings.into_iter().map(|s| s.name).collect();
        (names, found.unreadable)
    }))
}

/// How an edit of the block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edited {
    /// The policy was written (or deleted, after the last binding of a policy the first one
    /// created).
    Written,
    /// Nothing to change.
    Unchanged,
}

/// How many times an edit is tried when other writers keep changing the policy in between.
const CONFLICT_ATTEMPTS: u32 = 10;

/// The pause before another try grows by up to this many milliseconds per attempt.
const CONFLICT_PAUSE_MS: u64 = 100;

/// A change of the block: adds, replaces or removes one binding's record, or refuses (a
/// message).
pub(super) type Change = dyn Fn(&mut Block) -> Result<(), String> + Send + Sync;

/// An edit waiting for its turn, and where its outcome goes.
struct Waiting {
    change: Arc<Change>,
    done: oneshot::Sender<Result<Edited, AzureError>>,
}

/// One API policy's edits in this process: those waiting, whose turn it is, and what the
/// last batch wrote.
#[derive(Default)]
struct Queue {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    turn: tokio::sync::Mutex<()>,
    written: std::sync::Mutex<Written>,
}

/// The policy document this process last wrote and the ETag APIM gave it. The next batch
/// starts from it instead of reading the policy again: its write carries that ETag, so when
/// anyone else wrote in between, APIM answers 412 and the batch reads the policy afresh.
type Written = Option<(String, String)>;

/// Edits the block of `api`'s policy with `change`, which may refuse (an error message).
///
/// Group commit: the edits of this process to one API take turns, and the edits that queued
/// while another was being written go together, in one read and one write (a binding per
/// Terraform resource, `-parallelism` at a time, so an apply of many bindings on one API
/// writes its policy a few times, not once per binding). Another writer's edit in between (a
/// pipeline with its own state, the portal) is detected by its ETag, and the changes are
/// applied again on top of it. Each edit gets its own outcome: one that refuses does not stop
/// the others.
pub(super) async fn edit_block(
    azure: &Azure,
    service: &ServiceId,
    api: &str,
    change: impl Fn(&mut Block) -> Result<(), String> + Send + Sync + 'static,
) -> Result<Edited, AzureError> {
    let id = api_policy_id(service, api);
    let queue = queue_of(&id.arm_id());
    let change: Arc<Change> = Arc::new(change);
    loop {
        let (done, mut outcome) = oneshot::channel();
        lock(&queue.waiting).push(Waiting {
            change: change.clone(),
            done,
        });
        loop {
            let turn = queue.turn.lock().await;
            match outcome.try_recv() {
                Ok(result) => return result,
                // Taken into a batch whose writer stopped (Terraform stopped the provider)
                // before it said how it ended: queue again.
                Err(oneshot::error::TryRecvError::Closed) => break,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            // Without a policy this process wrote to start from, the batch's read goes while
            // it lingers: edits that join later are applied to it all the same.
            let remembered = lock(&queue.written).is_some();
            let read = async {
                match remembered {
                    true => None,
                    false => read_policy(azure, &id).await.ok(),
                }
            };
            let ((), read) = tokio::join!(linger(&queue), read);
            let batch = std::mem::take(&mut *lock(&queue.waiting));
            if !batch.is_empty() {
                write_batch(azure, &id, api, &queue, batch, read).await;
            }
            drop(turn);
        }
    }
}

/// Bumps the rotation generation of the bindings of `api` that `reads` picks (the
/// `apim_vault_rotate` action, after it wrote their secret): a new cache key, so the gateway
/// fetches the secret on the next request. The edit goes through the API's queue like every
/// binding's, with its ETag; the bindings' settings, and so their state, stay as they are.
/// Returns the names of the bindings bumped (none: nothing was written).
pub(crate) async fn bump_generation(
    azure: &Azure,
    service: &ServiceId,
    api: &str,
    reads: impl Fn(&BindingSpec) -> bool + Send + Sync + 'static,
) -> Result<Vec<String>, AzureError> {
    let bumped = Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = bumped.clone();
    let change = move |block: &mut Block| {
        let mut names = Vec::new();
        for s in block.bindings.iter_mut().filter(|s| reads(s)) {
            s.generation = s.generation.wrapping_add(1);
            names.push(s.name.clone());
        }
        // The change is applied again after another writer's edit: the last one is written.
        *lock(&out) = names;
        Ok(())
    };
    edit_block(azure, service, api, change).await?;
    let names = std::mem::take(&mut *lock(&bumped));
    Ok(names)
}

/// How long the writer waits for more edits to join its batch, at most, and for the next one
/// to arrive: the edits Terraform starts when a write completes reach the queue a few
/// milliseconds apart (their apply-time checks), and one write of a policy takes about a
/// second in Azure, so waiting a little lets them go together instead of in alternating
/// half-batches.
const LINGER_MAX: Duration = Duration::from_millis(100);
const LINGER_GAP: Duration = Duration::from_millis(25);

/// Waits, up to [`LINGER_MAX`], while edits keep joining `queue` less than [`LINGER_GAP`] apart.
async fn linger(queue: &Queue) {
    let started = Instant::now();
    let mut seen = lock(&queue.waiting).len();
    while started.elapsed() < LINGER_MAX {
        tokio::time::sleep(LINGER_GAP).await;
        let now = lock(&queue.waiting).len();
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// Applies `batch` to the block of the policy `id` in one write (reading again and applying
/// again when another writer changed it in between), and sends each edit its outcome.
async fn write_batch(
    azure: &Azure,
    id: &ApiPolicyId,
    api: &str,
    queue: &Queue,
    batch: Vec<Waiting>,
    read: Option<PolicyRead>,
) {
    let changes: Vec<Arc<Change>> = batch.iter().map(|w| w.change.clone()).collect();
    // Taken: a batch that ends in an error leaves nothing to start from.
    let mut written = lock(&queue.written).take();
    let mut read = read;
    let outcomes = match apply_changes(azure, id, api, &changes, &mut written, &mut read).await {
        // A document that the changes together cannot make (too large, say): each alone.
        Err(e) if changes.len() > 1 && matches!(e, AzureError::Config(_)) => {
            let mut each = Vec::with_capacity(changes.len());
            for c in &changes {
                each.push(
                    match apply_changes(
                        azure,
                        id,
                        api,
                        std::slice::from_ref(c),
                        &mut written,
                        &mut None,
                    )
                    .await
                    {
                        Ok(mut one) => one.remove(0),
                        Err(e) => Err(e),
                    },
                );
            }
            each
        }
        Err(e) => changes.iter().map(|_| Err(e.clone())).collect(),
        Ok(outcomes) => outcomes,
    };
    // The shared read of the policy is now what was written (the checks of the bindings
    // Terraform plans next judge it), or forgotten when that is not known.
    match &written {
        Some((doc, etag)) => {
            policy_reads().put(&id.arm_id(), Some((doc.clone(), Some(etag.clone()))))
        }
        None => forget_read(id),
    }
    *lock(&queue.written) = written;
    for (waiting, outcome) in batch.into_iter().zip(outcomes) {
        // The edit's caller may have stopped waiting; its change is written either way.
        let _ = waiting.done.send(outcome);
    }
}

/// Reads the policy (or starts from what this process last wrote, `written`, or from a read
/// made for it, `read`), applies every change that does not refuse, writes the policy once
/// with the ETag it read (trying again on a 412), and says how each change ended; `written`
/// is then what it wrote, if anything. An error of the whole (reading, writing, a block that
/// cannot be edited) is the `Err`.
async fn apply_changes(
    azure: &Azure,
    id: &ApiPolicyId,
    api: &str,
    changes: &[Arc<Change>],
    written: &mut Written,
    read: &mut Option<PolicyRead>,
) -> Result<Vec<Result<Edited, AzureError>>, AzureError> {
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        // What this process wrote is trusted only by a write (its ETag decides): any other
        // ending is judged again on what APIM holds now.
        let remembered = written.take();
        let from_memory = remembered.is_some();
        let current = match (remembered, read.take()) {
            (Some((doc, etag)), _) => Some((doc, Some(etag))),
            (None, Some(fresh)) => fresh,
            (None, None) => read_policy(azure, id).await?,
        };
        let doc = current.as_ref().map(|(d, _)| d.as_str());
        let mut block = match doc.and_then(find_block) {
            Some(found) if !found.unreadable.is_empty() && from_memory => continue,
            Some(found) if !found.unreadable.is_empty() => {
                return Err(AzureError::Config(format!(
                    "the managed block in the policy of API {:?} has records that were edited by hand and cannot be read ({}); restore them, or remove the block and apply every binding of that API again",
                    api_name(api),
                    found.unreadable.join(", ")
                )));
            }
            Some(found) => found.block,
            None => Block::default(),
        };
        let mut refused: Vec<Option<String>> = Vec::with_capacity(changes.len());
        for change in changes {
            let mut edited = block.clone();
            match change(&mut edited) {
                Ok(()) => {
                    block = edited;
                    refused.push(None);
                }
                Err(why) => refused.push(Some(why)),
            }
        }
        block.bindings.sort_by(|a, b| a.name.cmp(&b.name));
        let edited = match with_block(doc, api_name(api), &block) {
            Ok(edited) => edited,
            Err(_) if from_memory => continue,
            Err(m) => {
                return Err(AzureError::Config(format!(
                    "the policy of API {:?} cannot be edited: {m}",
                    api_name(api)
                )))
            }
        };
        let each = |ok: Edited| -> Vec<Result<Edited, AzureError>> {
            refused
                .iter()
                .map(|r| match r {
                    Some(why) => Err(AzureError::Config(why.clone())),
                    None => Ok(ok),
                })
                .collect()
        };
        if edited.as_deref() == doc {
            if from_memory {
                continue;
            }
            // Unchanged: what was read is what the next batch may start from.
            *written = current.and_then(|(doc, etag)| etag.map(|e| (doc, e)));
            return Ok(each(Edited::Unchanged));
        }
        let etag = current.as_ref().and_then(|(_, e)| e.clone());
        let outcome = match edited {
            Some(text) => {
                let body = PolicyCreate {
                    value: text,
                    format: PolicyFormat::Rawxml,
                };
                azure
                    .put_api_policy(id, &body, etag.as_deref())
                    .await
                    .map(|etag| etag.map(|e| (body.value, e)))
            }
            None => azure
                .delete_api_policy(id, etag.as_deref().unwrap_or("*"))
                .await
                .map(|()| None)
                .or_else(|e| if e.is_not_found() { Ok(None) } else { Err(e) }),
        };
        match outcome {
            Err(e) if e.is_precondition_failed() && attempt < CONFLICT_ATTEMPTS => {
                // Another writer (a pipeline with its own state, the portal) wrote in
                // between: read again after a short random pause, so that two writers
                // retrying in step do not refuse each other again.
                // (A write from what this process wrote before met another writer's: no
                // one to step aside for.)
                if !from_memory {
                    let pause = random_u64() % (CONFLICT_PAUSE_MS * u64::from(attempt));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
            }
            Err(e) => return Err(e),
            Ok(now) => {
                *written = now;
                return Ok(each(Edited::Written));
            }
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The queue of this process's edits of one API policy.
fn queue_of(arm_id: &str) -> Arc<Queue> {
    static QUEUES: OnceLock<std::sync::Mutex<HashMap<String, Arc<Queue>>>> = OnceLock::new();
    let queues = QUEUES.get_or_init(Default::default);
    lock(queues)
        .entry(arm_id.to_ascii_lowercase())
        .or_default()
        .clone()
}

/// Reads of ARM objects shared by the bindings of one process (one Terraform operation): the
/// bindings that refresh or are checked together read each object once, for at most
/// [`SHARED_READ_FOR`]. A failed read is not kept. Edits never use them (they start from a
/// fresh read, or from what this process wrote, with its ETag); a write of a policy replaces
/// its shared read with what was written.
pub(super) struct SharedReads<T> {
    reads: std::sync::Mutex<HashMap<String, (Instant, SharedRead<T>)>>,
}

/// One shared read: done once, by whoever comes first.
type SharedRead<T> = Arc<tokio::sync::OnceCell<T>>;

/// How long a shared read serves: a refresh or a plan's checks, not a long apply.
const SHARED_READ_FOR: Duration = Duration::from_secs(30);

impl<T: Clone> SharedReads<T> {
    fn new() -> Self {
        SharedReads {
            reads: std::sync::Mutex::default(),
        }
    }

    /// The object at `arm_id`, read by `read` unless a read of it is shared.
    pub(super) async fn get<F, Fut>(&self, arm_id: &str, read: F) -> Result<T, AzureError>
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
    fn put(&self, arm_id: &str, value: T) {
        let cell = Arc::new(tokio::sync::OnceCell::new_with(Some(value)));
        lock(&self.reads).insert(arm_id.to_ascii_lowercase(), (Instant::now(), cell));
    }

    fn forget(&self, arm_id: &str) {
        lock(&self.reads).remove(&arm_id.to_ascii_lowercase());
    }
}

/// An API policy and its ETag; `None` when the API has none.
pub(super) type PolicyRead = Option<(String, Option<String>)>;

fn policy_reads() -> &'static SharedReads<PolicyRead> {
    static READS: OnceLock<SharedReads<PolicyRead>> = OnceLock::new();
    READS.get_or_init(SharedReads::new)
}

/// The instances the bindings of this process are on.
pub(super) fn service_reads() -> &'static SharedReads<Tagged<Service>> {
    static READS: OnceLock<SharedReads<Tagged<Service>>> = OnceLock::new();
    READS.get_or_init(SharedReads::new)
}

/// The APIs the bindings of this process are on.
pub(super) fn api_reads() -> &'static SharedReads<Tagged<Api>> {
    static READS: OnceLock<SharedReads<Tagged<Api>>> = OnceLock::new();
    READS.get_or_init(SharedReads::new)
}

/// [`read_policy`], shared ([`SharedReads`]).
pub(super) async fn read_policy_shared(
    azure: &Azure,
    id: &ApiPolicyId,
) -> Result<PolicyRead, AzureError> {
    policy_reads()
        .get(&id.arm_id(), || read_policy(azure, id))
        .await
}

/// Forgets the shared read of the policy `id`, after this process wrote it.
fn forget_read(id: &ApiPolicyId) {
    policy_reads().forget(&id.arm_id());
}
