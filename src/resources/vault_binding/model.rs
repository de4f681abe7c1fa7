//! The binding's model, and what is derived from it: its part of the managed block and its ID.

use crate::clients::azure::id::{ResourceId, ServiceId};
use crate::framework::model::Known;

use super::render::{binding_part, BindingSpec, Inject, Logger};

crate::model! {
    /// An `apim_vault_binding`.
    pub struct BindingModel, plan BindingPlan {
        /// `<api_management_id>/apis/<api_id>/vaultBindings/<name>`.
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
        /// `rotation` (default 0): bumping it invalidates the cached secrets at once.
        pub rotation: Option<i64>,
        /// `api_id`: the API whose inbound policy runs the binding.
        pub api_id: String,
        /// `on_error` (default `fail`).
        pub on_error: Option<String>,
        /// `logger_id`: the APIM logger failures are also sent to.
        pub logger_id: Option<String>,
        /// The binding's part of the managed block.
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

/// The binding's settings as the block records them, given what the secret's mount is
/// (`kv_v2`, `leased`) and what its logger is; `None` without an `inject` target or a Vault
/// address.
pub(super) fn spec(
    v: &BindingModel,
    kv_v2: bool,
    leased: bool,
    logger: Option<Logger>,
) -> Option<BindingSpec> {
    let inject = v.inject.as_ref()?;
    let inject = if let Some(h) = &inject.header {
        Inject::Header(h.clone())
    } else if let Some(q) = &inject.query {
        Inject::Query(q.clone())
    } else {
        Inject::Variable(inject.variable.clone()?)
    };
    Some(BindingSpec {
        name: v.name.clone(),
        vault_address: v.vault_address.value()?.trim_end_matches('/').to_string(),
        vault_namespace: v.vault_namespace.clone(),
        backend: v.backend().to_string(),
        role: v.role.clone(),
        audience: v.audience.clone(),
        secret_path: v.secret_path.clone(),
        secret_field: v.secret_field.clone(),
        kv_v2,
        leased,
        inject,
        cache_ttl: v.cache_ttl(),
        rotation: v.rotation.unwrap_or(0),
        fail_on_error: v.on_error.as_deref() != Some("continue"),
        api_ref: Some(v.api_id.clone()),
        logger,
        // Not a setting: an edit keeps what the block holds (`apim::keep_generation`).
        generation: 0,
    })
}

pub(super) fn service_of(v: &BindingModel) -> Option<ServiceId> {
    ServiceId::parse(&v.api_management_id).ok()
}

/// The API name from `api_id` (a name, or an API's full ARM ID).
pub(crate) fn api_name(api_id: &str) -> &str {
    api_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(api_id)
}

/// The binding's ID: `<api_management_id>/apis/<api>/vaultBindings/<name>`.
pub(super) fn binding_id(service: &ServiceId, api_id: &str, name: &str) -> String {
    format!(
        "{}/vaultBindings/{name}",
        service.api(api_name(api_id)).arm_id()
    )
}

/// The state of a binding whose record the block holds: the recorded settings, with the
/// spellings of `prior` kept where they mean the same.
pub(super) fn from_record(
    service: &ServiceId,
    api_id: &str,
    spec: &BindingSpec,
    prior: Option<&BindingModel>,
    intact: bool,
) -> BindingModel {
    let (header, query, variable) = match &spec.inject {
        Inject::Header(h) => (Some(h.clone()), None, None),
        Inject::Query(q) => (None, Some(q.clone()), None),
        Inject::Variable(v) => (None, None, Some(v.clone())),
    };
    let address = match prior.and_then(|p| p.vault_address.value()) {
        Some(p) if p.trim_end_matches('/') == spec.vault_address => p.clone(),
        _ => spec.vault_address.clone(),
    };
    BindingModel {
        id: Known::Value(binding_id(service, api_id, &spec.name)),
        api_management_id: prior.map_or_else(|| service.arm_id(), |p| p.api_management_id.clone()),
        name: spec.name.clone(),
        role: spec.role.clone(),
        backend: Some(spec.backend.clone()),
        audience: spec.audience.clone(),
        vault_address: Known::Value(Some(address)),
        vault_namespace: spec.vault_namespace.clone(),
        secret_path: spec.secret_path.clone(),
        secret_field: spec.secret_field.clone(),
        inject: Some(InjectBlock {
            header,
            query,
            variable,
        }),
        cache_ttl: Some(spec.cache_ttl),
        rotation: Some(spec.rotation),
        api_id: match (prior, &spec.api_ref) {
            (Some(p), _) => p.api_id.clone(),
            (None, Some(written)) if api_name(written) == api_name(api_id) => written.clone(),
            (None, _) => api_name(api_id).to_string(),
        },
        on_error: Some(
            if spec.fail_on_error {
                "fail"
            } else {
                "continue"
            }
            .to_string(),
        ),
        logger_id: spec.logger.as_ref().map(|l| l.id.clone()),
        // A block edited by hand shows as a change of every binding's part, which apply
        // repairs by rendering the block again.
        policy_xml: Known::Value(if intact {
            binding_part(spec)
        } else {
            String::new()
        }),
    }
}
