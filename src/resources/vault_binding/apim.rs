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

use crate::clients::azure::apim::PolicyFormat;
use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError, Tagged};
use crate::clients::backoff::random_u64;
use crate::framework::diag::Diags;

use crate::resources::shared_reads::{lock, SharedReads};

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
    let parsed = parsed(doc, api)?;
    let spec = parsed.records.get(name)?.clone();
    Some((spec, parsed.intact))
}

/// The records of one policy document's block and whether it is intact, worked out once per
/// document: the bindings of one API that refresh together ask the same document, and each
/// answer parses and renders the whole block (a refresh of 500 bindings, 50 per API, took
/// seconds of the provider's CPU before).
struct Parsed {
    records: HashMap<String, BindingSpec>,
    intact: bool,
}

/// How many documents [`parsed`] remembers (the most recent), each up to APIM's 256 KiB.
const PARSED_DOCS: usize = 8;

fn parsed(doc: &str, api: &str) -> Option<Arc<Parsed>> {
    type Memo = Vec<(String, String, Option<Arc<Parsed>>)>;
    static MEMO: std::sync::Mutex<Memo> = std::sync::Mutex::new(Vec::new());
    let known = lock(&MEMO)
        .iter()
        .find(|(a, d, _)| a == api && d == doc)
        .map(|(_, _, p)| p.clone());
    if let Some(p) = known {
        return p;
    }
    let p = find_block(doc).map(|found| {
        Arc::new(Parsed {
            records: found
                .block
                .bindings
                .into_iter()
                .fold(HashMap::new(), |mut records, s| {
                    // The first of a name, as a search of the block finds it.
                    records.entry(s.name.clone()).or_insert(s);
                    records
                }),
            intact: super::render::block_intact(doc, api),
        })
    });
    let mut memo = lock(&MEMO);
    if memo.len() >= PARSED_DOCS {
        memo.remove(0);
    }
    memo.push((api.to_string(), doc.to_string(), p.clone()));
    p
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
        lock(&PACE).arrived(Instant::now());
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
                    // The plan's checks of this binding read the policy a moment ago, as a
                    // rule: its ETag guards the write all the same.
                    false => match policy_reads().fresh(&id.arm_id(), FRESH_READ) {
                        Some(read) => Some(read),
                        None => read_policy(azure, &id).await.ok(),
                    },
                }
            };
            let ((), read) = tokio::join!(linger(), read);
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

/// How the writer of a batch waits for more edits before it writes. Terraform starts the next
/// bindings (`-parallelism` at a time) as the applies before them end, that is, as policy
/// writes end, and their edits reach the queues some tens of milliseconds later. A write takes
/// about a second in Azure, and an edit that reaches its API's queue while that policy is being
/// written waits for the whole write and then for its own. So the writer waits for the
/// successors of the edits just answered ([`Pace`]), or, with no recent answers, until edits
/// stop arriving for [`LINGER_GAP`]; and, when another policy write of this process is about
/// to end ([`ALIGN`]), until it has ended and its successors have arrived. The writes of a
/// process then start together, one wave per round of Terraform's applies, instead of drifting
/// apart (an API's first write starts later than the others, after its read) until every new
/// edit meets a write in flight. Never more than [`LINGER_MAX`].
const LINGER_GAP: Duration = Duration::from_millis(25);
const ALIGN: Duration = Duration::from_millis(300);
const LINGER_MAX: Duration = Duration::from_millis(450);

/// The arrivals of edits in this process, and the answers that free Terraform's slots: each
/// binding's apply that ends lets Terraform start another (`-parallelism`), whose edit arrives
/// some tens of milliseconds later, whatever its API.
#[derive(Default)]
struct Pace {
    last_arrival: Option<Instant>,
    last_answer: Option<Instant>,
    /// Edits answered whose successors have not arrived yet, while answers are recent.
    owed: usize,
}

static PACE: std::sync::Mutex<Pace> = std::sync::Mutex::new(Pace {
    last_arrival: None,
    last_answer: None,
    owed: 0,
});

/// How long after an answer its successor is waited for: Terraform plans it again (the
/// binding's checks: Vault reads, the first read of an API) before it applies it.
const SUCCESSOR_WITHIN: Duration = Duration::from_millis(150);

impl Pace {
    fn arrived(&mut self, now: Instant) {
        self.last_arrival = Some(now);
        self.owed = self.owed.saturating_sub(1);
    }

    fn answered(&mut self, n: usize, now: Instant) {
        self.last_answer = Some(now);
        self.owed += n;
    }

    /// How long to wait yet, at `now`, for edits to arrive; zero when none is expected.
    fn wait(&mut self, now: Instant) -> Duration {
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let recent = since(self.last_answer).is_some_and(|d| d < SUCCESSOR_WITHIN);
        if !recent {
            self.owed = 0;
        }
        match (recent, self.owed) {
            // Answers' successors still to come: poll.
            (true, 1..) => Duration::from_millis(5),
            // Every slot the last answers freed is back: nothing more comes before a write ends.
            (true, 0) => Duration::ZERO,
            // Arrivals not caused by answers here (the first round): until they pause.
            (false, _) => LINGER_GAP.saturating_sub(since(self.last_arrival).unwrap_or(LINGER_GAP)),
        }
    }
}

/// Waits (see [`LINGER_GAP`]) before a batch is taken: while edits are still expected to join
/// the queues of this process, and for a write of another API ending soon.
async fn linger() {
    let started = Instant::now();
    loop {
        let Some(left) = LINGER_MAX.checked_sub(started.elapsed()) else {
            return;
        };
        let wait = lock(&PACE).wait(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait.min(left)).await;
            continue;
        }
        match writes().ending_within(ALIGN, Instant::now()) {
            // Then the edits that its end lets Terraform start.
            Some(rest) => tokio::time::sleep((rest + Duration::from_millis(5)).min(left)).await,
            None => return,
        }
    }
}

/// The policy writes of this process in flight (when each started), and how long one takes
/// (a moving average of those that ended).
#[derive(Default)]
struct Writes {
    inner: std::sync::Mutex<WritesInner>,
}

#[derive(Default)]
struct WritesInner {
    next: u64,
    in_flight: HashMap<u64, Instant>,
    typical: Option<Duration>,
}

fn writes() -> &'static Writes {
    static WRITES: OnceLock<Writes> = OnceLock::new();
    WRITES.get_or_init(Writes::default)
}

impl Writes {
    /// Runs `write`, counted in flight while it runs.
    async fn track<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let key = {
            let mut w = lock(&self.inner);
            w.next += 1;
            let key = w.next;
            w.in_flight.insert(key, started);
            key
        };
        // Taken out of the count however the write ends, a dropped future too.
        struct Done<'a>(&'a Writes, u64, Instant);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut w = lock(&self.0.inner);
                w.in_flight.remove(&self.1);
                let took = self.2.elapsed();
                w.typical = Some(match w.typical {
                    Some(t) => (t * 3 + took) / 4,
                    None => took,
                });
            }
        }
        let _done = Done(self, key, started);
        write.await
    }

    /// How long from `now` until the first write in flight is expected to end, when that is
    /// within `within` (and not past already).
    fn ending_within(&self, within: Duration, now: Instant) -> Option<Duration> {
        let w = lock(&self.inner);
        let typical = w.typical?;
        w.in_flight
            .values()
            .filter_map(|started| typical.checked_sub(now.saturating_duration_since(*started)))
            .filter(|rest| !rest.is_zero() && *rest <= within)
            .min()
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
    lock(&PACE).answered(batch.len(), Instant::now());
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
                writes()
                    .track(azure.put_api_policy(id, &body, etag.as_deref()))
                    .await
                    .map(|etag| etag.map(|e| (body.value, e)))
            }
            None => writes()
                .track(azure.delete_api_policy(id, etag.as_deref().unwrap_or("*")))
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

/// The queue of this process's edits of one API policy.
fn queue_of(arm_id: &str) -> Arc<Queue> {
    static QUEUES: OnceLock<std::sync::Mutex<HashMap<String, Arc<Queue>>>> = OnceLock::new();
    let queues = QUEUES.get_or_init(Default::default);
    lock(queues)
        .entry(arm_id.to_ascii_lowercase())
        .or_default()
        .clone()
}

/// How old a shared read of a policy may be for an edit to start from it (the read of the
/// binding's own plan-time checks, in the apply): a policy written since is caught by its
/// ETag; one created since (no ETag to send) only within this window, as after any read.
const FRESH_READ: Duration = Duration::from_secs(2);

/// An API policy and its ETag; `None` when the API has none.
pub(super) type PolicyRead = Option<(String, Option<String>)>;

fn policy_reads() -> &'static SharedReads<PolicyRead> {
    static READS: OnceLock<SharedReads<PolicyRead>> = OnceLock::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_writer_waits_for_the_successors_of_the_edits_just_answered() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.answered(3, t0);
        pace.arrived(t0 + 10 * MS);
        pace.arrived(t0 + 20 * MS);
        // One successor still to come, within the window: keep polling.
        assert!(!pace.wait(t0 + 30 * MS).is_zero());
        pace.arrived(t0 + 40 * MS);
        // Every slot the answers freed is back: write now, without a quiet gap.
        assert_eq!(pace.wait(t0 + 41 * MS), Duration::ZERO);
    }

    #[test]
    fn successors_that_never_come_are_waited_for_a_bounded_time() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.answered(2, t0);
        assert!(!pace.wait(t0 + SUCCESSOR_WITHIN - MS).is_zero());
        assert_eq!(
            pace.wait(t0 + SUCCESSOR_WITHIN + LINGER_GAP),
            Duration::ZERO
        );
    }

    #[test]
    fn without_answers_a_writer_waits_for_arrivals_to_pause() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.arrived(t0);
        assert_eq!(pace.wait(t0 + 10 * MS), LINGER_GAP - 10 * MS);
        pace.arrived(t0 + 20 * MS);
        assert_eq!(pace.wait(t0 + 30 * MS), LINGER_GAP - 10 * MS);
        assert_eq!(pace.wait(t0 + 20 * MS + LINGER_GAP), Duration::ZERO);
    }

    #[test]
    fn a_write_about_to_end_is_waited_for_and_a_young_or_late_one_is_not() {
        let w = Writes::default();
        let t0 = Instant::now();
        {
            let mut inner = lock(&w.inner);
            inner.typical = Some(1000 * MS);
            inner.in_flight.insert(1, t0);
        }
        // Just started: it ends in a second, too far to wait for.
        assert_eq!(w.ending_within(ALIGN, t0 + 100 * MS), None);
        assert_eq!(w.ending_within(ALIGN, t0 + 800 * MS), Some(200 * MS));
        // Past its usual length: no telling when it ends.
        assert_eq!(w.ending_within(ALIGN, t0 + 1200 * MS), None);
        lock(&w.inner).in_flight.insert(2, t0 + 900 * MS);
        assert_eq!(w.ending_within(ALIGN, t0 + 800 * MS), Some(200 * MS));
    }

    #[test]
    fn records_come_from_the_document_asked_whether_or_not_it_was_parsed_before() {
        use super::super::render::tests::spec;
        let block = |names: &[&str]| Block {
            created_policy: true,
            bindings: names.iter().map(|n| spec(n)).collect(),
        };
        let doc = with_block(None, "orders", &block(&["a", "b"]))
            .unwrap()
            .unwrap();
        let (a, intact) = record_of(&doc, "orders", "a").expect("a's record");
        assert_eq!((a.name.as_str(), intact), ("a", true));
        // Asked again (the memo): the same answers; a name it does not hold has none.
        assert_eq!(
            record_of(&doc, "orders", "a").map(|(s, _)| s.name),
            Some("a".into())
        );
        assert!(record_of(&doc, "orders", "c").is_none());
        // Another document of the same API: its own records, not the remembered ones.
        let other = with_block(Some(&doc), "orders", &block(&["a", "c"]))
            .unwrap()
            .unwrap();
        assert!(record_of(&other, "orders", "c").is_some());
        assert!(record_of(&other, "orders", "b").is_none());
        assert!(record_of(&doc, "orders", "b").is_some());
        // Edited by hand: not intact, whatever was remembered of the document before.
        let edited = doc.replacen("X-Api-Key", "X-Other", 1);
        assert_eq!(
            record_of(&edited, "orders", "a").map(|(_, i)| i),
            Some(false)
        );
    }

    #[tokio::test]
    async fn a_tracked_write_counts_while_it_runs_and_sets_the_usual_length() {
        let w = Writes::default();
        w.track(tokio::time::sleep(20 * MS)).await;
        let inner = lock(&w.inner);
        assert!(inner.in_flight.is_empty());
        assert!(inner.typical.is_some_and(|t| t >= 20 * MS));
    }
}
