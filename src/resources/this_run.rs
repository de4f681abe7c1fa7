//! What this provider process has planned for roles and policies in the current run, so
//! that a binding's plan-time checks can judge a role and policies created in the same run
//! (Terraform plans them first: the binding refers to them). Planned values take precedence
//! over what Vault holds now, since they are what the apply will write.

use std::collections::HashMap;
use std::sync::Mutex;

/// The facts of a planned role that a binding's checks need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleFacts {
    /// Its token policies, when known at plan time.
    pub token_policies: Option<Vec<String>>,
    /// Its token TTL in seconds (0: the mount default), when known.
    pub token_ttl: Option<i64>,
    /// The audiences its tokens may carry, when known (`None` also for auth methods
    /// without audiences).
    pub audiences: Option<Vec<String>>,
    /// The identity it is bound to (`oid`, `tid`), when known.
    pub bound_identity: Option<(String, String)>,
}

#[derive(Default)]
struct Inner {
    roles: HashMap<(String, String), RoleFacts>,
    policies: HashMap<String, Option<String>>,
}

/// The registry, one per provider process (and so per provider configuration).
#[derive(Default)]
pub struct ThisRun {
    inner: Mutex<Inner>,
}

impl ThisRun {
    /// Records a role planned on `backend` (its facts may be partly unknown).
    pub fn role(&self, backend: &str, name: &str, facts: RoleFacts) {
        if let Ok(mut i) = self.inner.lock() {
            i.roles
                .insert((backend.to_string(), name.to_string()), facts);
        }
    }

    /// Records a policy planned with `text` (`None`: not known until apply).
    pub fn policy(&self, name: &str, text: Option<String>) {
        if let Ok(mut i) = self.inner.lock() {
            i.policies.insert(name.to_string(), text);
        }
    }

    /// The planned role, if one was planned in this run.
    pub fn find_role(&self, backend: &str, name: &str) -> Option<RoleFacts> {
        self.inner
            .lock()
            .ok()?
            .roles
            .get(&(backend.to_string(), name.to_string()))
            .cloned()
    }

    /// The planned policy: `Some(Some(text))`, `Some(None)` when planned with unknown text,
    /// `None` when not planned in this run.
    pub fn find_policy(&self, name: &str) -> Option<Option<String>> {
        self.inner.lock().ok()?.policies.get(name).cloned()
    }
}
