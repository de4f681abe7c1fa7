//! The binding's place in API Management: its record and part in the managed block of its
//! API's inbound policy. Every change reads the policy, edits the block, and writes it back
//! with the ETag it read (`If-Match`), so a concurrent edit, by another binding of this
//! process, another pipeline or the portal, is never overwritten: a 412 reads again and
//! re-applies the change, which only touches the block.

use std::sync::OnceLock;

use crate::clients::azure::apim::api_policy::PolicyCreate;
use crate::clients::azure::apim::PolicyFormat;
use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError};
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

/// How an edit of the block ended.
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

/// Edits the block of `api`'s policy with `change`, which may refuse (an error message). The
/// edits of this process to one API take turns; another writer's edit in between is detected
/// by its ETag and the change applied again on top of it.
pub(super) async fn edit_block(
    azure: &Azure,
    service: &ServiceId,
    api: &str,
    change: impl Fn(&mut Block) -> Result<(), String>,
) -> Result<Edited, AzureError> {
    let id = api_policy_id(service, api);
    let lock = policy_lock(&id.arm_id());
    let _turn = lock.lock().await;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let current = read_policy(azure, &id).await?;
        let doc = current.as_ref().map(|(d, _)| d.as_str());
        let mut block = match doc.and_then(find_block) {
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
        change(&mut block).map_err(AzureError::Config)?;
        block.bindings.sort_by(|a, b| a.name.cmp(&b.name));
        let edited = with_block(doc, api_name(api), &block).map_err(|m| {
            AzureError::Config(format!(
                "the policy of API {:?} cannot be edited: {m}",
                api_name(api)
            ))
        })?;
        if edited.as_deref() == doc {
            return Ok(Edited::Unchanged);
        }
        let etag = current.as_ref().and_then(|(_, e)| e.clone());
        let outcome = match &edited {
            Some(text) => {
                let body = PolicyCreate {
                    value: text.clone(),
                    format: PolicyFormat::Rawxml,
                };
                azure
                    .put_api_policy(&id, &body, etag.as_deref())
                    .await
                    .map(|_| ())
            }
            None => azure
                .delete_api_policy(&id, etag.as_deref().unwrap_or("*"))
                .await
                .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) }),
        };
        match outcome {
            Err(e) if e.is_precondition_failed() && attempt < CONFLICT_ATTEMPTS => {
                // Another writer (a pipeline with its own state, the portal) wrote in
                // between: read again after a short random pause, so that two writers
                // retrying in step do not refuse each other again.
                let pause = random_u64() % (CONFLICT_PAUSE_MS * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                continue;
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(Edited::Written),
        }
    }
}

/// The lock that orders this process's edits of one API policy.
fn policy_lock(arm_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    > = OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    let mut map = locks
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    map.entry(arm_id.to_ascii_lowercase()).or_default().clone()
}
