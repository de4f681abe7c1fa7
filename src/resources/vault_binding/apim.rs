//! The binding's objects in API Management: three named values, a policy fragment, and the
//! `<include-fragment>` in an API's inbound policy; read, written and removed with ETags so
//! that a concurrent edit is never overwritten.

use std::sync::OnceLock;

use crate::clients::azure::apim::api_policy::PolicyCreate;
use crate::clients::azure::apim::named_value::NamedValueCreate;
use crate::clients::azure::apim::policy_fragment::PolicyFragmentCreate;
use crate::clients::azure::apim::PolicyFormat;
use crate::clients::azure::id::{ResourceId, ServiceId};
use crate::clients::azure::{Azure, AzureError};
use crate::framework::diag::Diags;
use crate::framework::model::Known;
use crate::resources::policy_xml::{self, Format};

use super::model::{api_policy_id, named_values, service_of, BindingModel};
use super::render::{fragment_id, named_value_names};
use super::{VaultBinding, TYPE};

pub(super) fn azure_err(d: &mut Diags, action: &str, e: &AzureError) {
    let hint = if e.is_precondition_failed() {
        " It was changed outside Terraform since it was read: run `terraform plan` again to see the change, then apply."
    } else {
        ""
    };
    d.error(format!("Unable to {action} {TYPE}"), format!("{e}.{hint}"));
}

impl VaultBinding {
    /// Reads the APIM side into a state, starting from `prior`.
    pub(super) async fn read_apim(
        &self,
        azure: &Azure,
        prior: &BindingModel,
        d: &mut Diags,
    ) -> Option<BindingModel> {
        let service = service_of(prior)?;
        let name = prior.name.clone();
        let mut s = prior.clone();
        let mut found_any = false;
        let mut ids = Vec::new();
        // One list call for the three named values (a refresh costs at most three API
        // calls: this, the fragment and the API policy).
        let filter = format!("startswith(name,'vault-{name}-')");
        let listed = match azure.list_named_values(&service, Some(&filter)).await {
            Ok(l) => l,
            Err(e) => {
                azure_err(d, "read", &e);
                return Some(prior.clone());
            }
        };
        let [addr, role, audience] = named_value_names(&name);
        let remote = |nv: &str| {
            listed
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(nv))
                .map(|found| found.properties.value.clone().unwrap_or_default())
        };
        for nv in [&addr, &role, &audience] {
            if remote(nv).is_some() {
                found_any = true;
                ids.push(service.named_value(nv.clone()).arm_id());
            }
        }
        if let Some(value) = remote(&addr) {
            let same = prior
                .vault_address
                .value()
                .is_some_and(|p| p.trim_end_matches('/') == value);
            if !same {
                s.vault_address = Known::Value(Some(value));
            }
        }
        // Values that differ from the prior state only by a trailing `/` keep its spelling.
        let differs = |prior: &str, remote: &str| prior.trim_end_matches('/') != remote;
        if let Some(value) = remote(&role).filter(|v| differs(&prior.role, v)) {
            s.role = value;
        }
        if let Some(value) = remote(&audience).filter(|v| differs(&prior.audience, v)) {
            s.audience = value;
        }
        s.named_value_ids = Known::Value(ids);
        let fid = service.policy_fragment(fragment_id(&name));
        match azure.get_policy_fragment(&fid).await {
            Ok(t) => {
                found_any = true;
                let remote = t.value.properties.value;
                let same = prior
                    .policy_xml
                    .get()
                    .is_some_and(|p| policy_xml::equivalent(p, Format::Raw, &remote, Format::Raw));
                if !same {
                    s.policy_xml = Known::Value(remote);
                }
                s.fragment_id = Known::Value(fid.arm_id());
            }
            Err(e) if e.is_not_found() => {
                s.policy_xml = Known::Value(String::new());
                s.fragment_id = Known::Value(String::new());
            }
            Err(e) => {
                azure_err(d, "read", &e);
                return Some(prior.clone());
            }
        }
        if let Some(api) = &prior.api_id {
            match azure.get_api_policy(&api_policy_id(&service, api)).await {
                Ok(t)
                    if policy_xml::includes_fragment(
                        &t.value.properties.value,
                        &fragment_id(&name),
                    ) =>
                {
                    found_any = true;
                }
                // The include is gone (or the API policy is): the binding no longer applies
                // to that API, which plan shows as `api_id` to be set again.
                Ok(_) => s.api_id = None,
                Err(e) if e.is_not_found() => s.api_id = None,
                Err(e) => {
                    azure_err(d, "read", &e);
                    return Some(prior.clone());
                }
            }
        }
        found_any.then_some(s)
    }

    /// Writes every named value that differs from `prior` (all of them on create).
    pub(super) async fn write_named_values(
        &self,
        azure: &Azure,
        service: &ServiceId,
        prior: Option<&BindingModel>,
        planned: &BindingModel,
    ) -> Result<(), AzureError> {
        let old = prior.map(named_values);
        for (i, (name, value)) in named_values(planned).into_iter().enumerate() {
            if old.as_ref().is_some_and(|o| o[i].1 == value) {
                continue;
            }
            let id = service.named_value(name.clone());
            // Updates go with the ETag just read, so a concurrent edit is not overwritten.
            let etag = match azure.get_named_value(&id).await {
                Ok(t) => t.etag,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            let body = NamedValueCreate {
                display_name: name,
                value: Some(value),
                secret: false,
                tags: vec!["apim-vault-binding".into()],
                key_vault: None,
            };
            azure.put_named_value(&id, &body, etag.as_deref()).await?;
        }
        Ok(())
    }

    pub(super) async fn write_fragment(
        &self,
        azure: &Azure,
        service: &ServiceId,
        name: &str,
        xml: &str,
        exists: bool,
    ) -> Result<(), AzureError> {
        let id = service.policy_fragment(fragment_id(name));
        let etag = if exists {
            match azure.get_policy_fragment(&id).await {
                Ok(t) => t.etag,
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let body = PolicyFragmentCreate {
            value: xml.to_string(),
            description: Some(format!(
                "Fetches a Vault secret at request time (apim_vault_binding {name})"
            )),
            format: PolicyFormat::Rawxml,
        };
        azure
            .put_policy_fragment(&id, &body, etag.as_deref())
            .await
            .map(|_| ())
    }

    /// Adds (or removes) the include in the API's inbound policy, with If-Match. Bindings of
    /// the same API edit one document: edits from this process take turns, and an edit that
    /// meets a concurrent change (412) reads the document again and re-applies itself, since
    /// it touches only its own `<include-fragment>`.
    pub(super) async fn set_include(
        &self,
        azure: &Azure,
        service: &ServiceId,
        api: &str,
        name: &str,
        include: bool,
    ) -> Result<(), AzureError> {
        let id = api_policy_id(service, api);
        let lock = policy_lock(&id.arm_id());
        let _turn = lock.lock().await;
        let fid = fragment_id(name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (doc, etag) = match azure.get_api_policy(&id).await {
                Ok(t) => (t.value.properties.value, t.etag),
                Err(e) if e.is_not_found() && include => {
                    (policy_xml::DEFAULT_API_POLICY.to_string(), None)
                }
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            let edited = if include {
                policy_xml::include_fragment(&doc, &fid)
            } else {
                policy_xml::exclude_fragment(&doc, &fid)
            }
            .map_err(|m| {
                AzureError::Config(format!("the policy of API {api:?} cannot be edited: {m}"))
            })?;
            if edited == doc {
                return Ok(());
            }
            let body = PolicyCreate {
                value: edited,
                format: PolicyFormat::Rawxml,
            };
            match azure.put_api_policy(&id, &body, etag.as_deref()).await {
                Err(e) if e.is_precondition_failed() && attempt < 5 => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    /// Removes everything the binding added, in reverse order; missing pieces are fine.
    pub(super) async fn remove_all(
        &self,
        azure: &Azure,
        service: &ServiceId,
        name: &str,
        api: Option<&str>,
    ) -> Result<(), AzureError> {
        if let Some(api) = api {
            self.set_include(azure, service, api, name, false).await?;
        }
        azure
            .delete_policy_fragment(&service.policy_fragment(fragment_id(name)), "*")
            .await
            .or_else(ignore_404)?;
        for nv in named_value_names(name) {
            azure
                .delete_named_value(&service.named_value(nv), "*")
                .await
                .or_else(ignore_404)?;
        }
        Ok(())
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

fn ignore_404(e: AzureError) -> Result<(), AzureError> {
    if e.is_not_found() {
        Ok(())
    } else {
        Err(e)
    }
}
