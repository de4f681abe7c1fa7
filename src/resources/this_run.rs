//! What this provider process has planned for roles, policies and bindings in the current
//! run, so that a binding's plan-time checks can judge a role and policies created in the
//! same run (Terraform plans them first: the binding refers to them), and size an API's
//! policy with every binding planned on it. Planned values take precedence
//! over what Vault holds now, since they are what the apply will write.

use std::collections::{BTreeMap, HashMap};

use super::vault_binding::render::BindingSpec;
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
    /// Whether a role or policy planned in this run changes.
    changing: bool,
    roles: HashMap<(String, String), RoleFacts>,
    policies: HashMap<String, Option<String>>,
    bindings: HashMap<String, BTreeMap<String, BindingSpec>>,
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

    /// Records that a role or policy planned in this run changes.
    pub fn changing(&self) {
        if let Ok(mut i) = self.inner.lock() {
            i.changing = true;
        }
    }

    /// Whether a role or policy planned so far in this run changes: a binding's checks then
    /// judge what the apply will make, and refuse even a plan that leaves the binding as it is.
    pub fn is_changing(&self) -> bool {
        self.inner.lock().map(|i| i.changing).unwrap_or(true)
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

    /// Records a binding planned on the API `api` (a key naming the instance and the API), so
    /// that the bindings planned together are sized together.
    pub fn binding(&self, api: &str, spec: BindingSpec) {
        if let Ok(mut i) = self.inner.lock() {
            i.bindings
                .entry(api.to_string())
                .or_default()
                .insert(spec.name.clone(), spec);
        }
    }

    /// The bindings planned on the API `api` in this run.
    pub fn bindings_of(&self, api: &str) -> Vec<BindingSpec> {
        self.inner
            .lock()
            .ok()
            .and_then(|i| i.bindings.get(api).map(|b| b.values().cloned().collect()))
            .unwrap_or_default()
    }
}
