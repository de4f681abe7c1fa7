//! The binding's model, and what is derived from it: the fragment's specification, the
//! named values' contents, the IDs of the APIM objects.

use crate::clients::azure::id::{ApiPolicyId, ResourceId, ServiceId};
use crate::framework::model::Known;

use super::render::{fragment_id, named_value_names, FragmentSpec, Inject};

crate::model! {
    /// An `apim_vault_binding`.
    pub struct BindingModel, plan BindingPlan {
        /// `<api_management_id>/vaultBindings/<name>`.
        pub id: Known<String>,
        /// `api_management_id`.
        pub api_management_id: String,
        /// `name`.
        pub name: String,
        /// `role`.
        pub role: String,
        /// `backend` (default `jwt`).
        pub backend: Option<String>,
        /// `audience`.
        pub audience: String,
        /// `vault_address` (default: the provider's).
        pub vault_address: Known<Option<String>>,
        /// `vault_namespace`.
        pub vault_namespace: Option<String>,
        /// `secret_path`.
        pub secret_path: String,
        /// `secret_field`.
        pub secret_field: String,
        /// The `inject` block.
        pub inject: Option<InjectBlock>,
        /// `cache_ttl` (default 300).
        pub cache_ttl: Option<i64>,
        /// `api_id`.
        pub api_id: Option<String>,
        /// `on_error` (default `fail`).
        pub on_error: Option<String>,
        /// ARM ID of the policy fragment.
        pub fragment_id: Known<String>,
        /// ARM IDs of the named values.
        pub named_value_ids: Known<Vec<String>>,
        /// The rendered fragment.
        pub policy_xml: Known<String>,
    }
}

crate::model! {
    /// The `inject` block.
    pub struct InjectBlock, plan InjectBlockPlan {
        /// `header`.
        pub header: Option<String>,
        /// `query`.
        pub query: Option<String>,
        /// `variable`.
        pub variable: Option<String>,
    }
}

impl BindingModel {
    pub(super) fn backend(&self) -> &str {
        self.backend.as_deref().unwrap_or("jwt")
    }
    pub(super) fn cache_ttl(&self) -> i64 {
        self.cache_ttl.unwrap_or(300)
    }
}

/// The fragment specification of a binding; `kv_v2` decided by the caller.
pub(super) fn spec(v: &BindingModel, kv_v2: bool) -> Option<FragmentSpec> {
    let inject = v.inject.as_ref()?;
    let inject = if let Some(h) = &inject.header {
        Inject::Header(h.clone())
    } else if let Some(q) = &inject.query {
        Inject::Query(q.clone())
    } else {
        Inject::Variable(inject.variable.clone()?)
    };
    Some(FragmentSpec {
        name: v.name.clone(),
        backend: v.backend().to_string(),
        secret_path: v.secret_path.clone(),
        secret_field: v.secret_field.clone(),
        kv_v2,
        vault_namespace: v.vault_namespace.clone(),
        inject,
        cache_ttl: v.cache_ttl(),
        fail_on_error: v.on_error.as_deref() != Some("continue"),
    })
}

pub(super) fn service_of(v: &BindingModel) -> Option<ServiceId> {
    ServiceId::parse(&v.api_management_id).ok()
}

/// The API name from `api_id` (a name, or an API's full ARM ID).
fn api_name(api_id: &str) -> &str {
    api_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(api_id)
}

pub(super) fn api_policy_id(service: &ServiceId, api_id: &str) -> ApiPolicyId {
    service.api(api_name(api_id)).policy()
}

/// The three named values: (name, value).
pub(super) fn named_values(v: &BindingModel) -> [(String, String); 3] {
    let [a, r, au] = named_value_names(&v.name);
    [
        (
            a,
            v.vault_address
                .value()
                .map(|a| a.trim_end_matches('/').to_string())
                .unwrap_or_default(),
        ),
        (r, v.role.clone()),
        (au, v.audience.clone()),
    ]
}

/// The IDs the binding's APIM objects have.
pub(super) fn object_ids(service: &ServiceId, name: &str) -> (String, String, Vec<String>) {
    (
        format!("{}/vaultBindings/{name}", service.arm_id()),
        service.policy_fragment(fragment_id(name)).arm_id(),
        named_value_names(name)
            .into_iter()
            .map(|n| service.named_value(n).arm_id())
            .collect(),
    )
}

/// The state after a successful create or update: the planned values, the IDs of the
/// objects written, and the fragment as rendered.
pub(super) fn created(
    planned: BindingModel,
    service: &ServiceId,
    policy_xml: String,
) -> BindingModel {
    let (id, fragment, named_values) = object_ids(service, &planned.name);
    BindingModel {
        id: Known::Value(id),
        fragment_id: Known::Value(fragment),
        named_value_ids: Known::Value(named_values),
        policy_xml: Known::Value(policy_xml),
        ..planned
    }
}
