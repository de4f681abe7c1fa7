//! `authentication-managed-identity`: a token for the instance's managed identity, minted by the
//! emulator's own managed-identity code (so OpenBao's JWT auth verifies it through the
//! emulator's discovery and JWKS), cached until shortly before it expires ("API Management
//! caches the token until it expires"). Fault rules on `/metadata/identity/oauth2/token` apply,
//! as if the gateway called IMDS.

use super::document::Node;
use super::pipeline::{Flow, Run};
use super::policies::tri;
use crate::faults::lock;
use crate::msi::{self, MiIdentity, MI_LIFETIME};
use crate::server::App;
use crate::util::now_unix;
use std::time::Duration;

/// The IMDS path fault rules are matched against.
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";

/// A token is reused until this many seconds before it expires.
const REFRESH_MARGIN: i64 = 300;

/// The identity: the system-assigned one without `client-id`, else the assigned identity
/// (system or user-assigned) with that client id.
fn identity(
    app: &App,
    service_key: &str,
    client_id: Option<&str>,
) -> Result<(MiIdentity, String), String> {
    let st = lock(&app.state);
    let svc = st
        .services
        .get(service_key)
        .ok_or("the instance no longer exists")?;
    let tenant = st.tenant_id.clone();
    let id = match client_id {
        None => match &svc.system_identity {
            Some(_) => msi::resolve(&st, Some(("msi_res_id", &svc.id)))?,
            None => return Err("the instance has no system-assigned managed identity".into()),
        },
        Some(cid) => {
            let assigned = svc
                .system_identity
                .as_ref()
                .is_some_and(|s| s.client_id.eq_ignore_ascii_case(cid))
                || svc.user_assigned.iter().any(|u| {
                    st.user_identities
                        .get(&u.to_ascii_lowercase())
                        .is_some_and(|ui| ui.client_id.eq_ignore_ascii_case(cid))
                });
            if !assigned {
                return Err(format!(
                    "no managed identity with client id '{cid}' is assigned to the instance"
                ));
            }
            msi::resolve(&st, Some(("client_id", cid)))?
        }
    };
    Ok((id, tenant))
}

/// A token for `resource`: `(token, from cache)`.
pub async fn token(
    app: &App,
    service_key: &str,
    client_id: Option<&str>,
    resource: &str,
) -> Result<(String, bool), String> {
    let key = (
        service_key.to_string(),
        client_id.unwrap_or_default().to_ascii_lowercase(),
        resource.to_string(),
    );
    let now = now_unix();
    if let Some((t, exp)) = lock(&app.gateway.tokens).get(&key) {
        if *exp - REFRESH_MARGIN > now {
            return Ok((t.clone(), true));
        }
    }
    let d = app.faults.decide("GET", IMDS_PATH);
    if d.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(d.latency_ms)).await;
    }
    if d.drop {
        return Err("the managed-identity endpoint closed the connection".into());
    }
    if let Some((status, _)) = d.status {
        return Err(format!("the managed-identity endpoint answered {status}"));
    }
    let (id, tenant) = identity(app, service_key, client_id)?;
    let lifetime = lock(&app.state)
        .settings
        .mi_token_lifetime
        .unwrap_or(MI_LIFETIME);
    let mut claims = msi::claims(app, &tenant, &id, resource, id.token_version, lifetime);
    if lifetime <= 0 {
        // Issued an hour before it ran out, as a token that has expired would have been.
        claims["iat"] = serde_json::json!(now + lifetime - 3600);
        claims["nbf"] = serde_json::json!(now + lifetime - 3600);
    }
    let t = app.signer.sign(&claims)?;
    lock(&app.gateway.tokens).insert(key, (t.clone(), now + lifetime));
    Ok((t, false))
}

impl Run<'_> {
    /// Gets the token an `authentication-managed-identity` element asks for; `Ok(None)` when it
    /// failed and `ignore-error` is true.
    pub(super) async fn token_for(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Result<Option<String>, Flow> {
        let resource = self.attr_text(node, path, "resource", "")?;
        let ignore = self.attr_bool(node, path, "ignore-error", false)?;
        let client_id = node.attr("client-id").map(str::to_string);
        match token(self.app, &self.service_key, client_id.as_deref(), &resource).await {
            Ok((t, cached)) => {
                let how = if cached { " (cached)" } else { "" };
                self.step(
                    "authentication-managed-identity",
                    format!("token obtained for '{resource}'{how}"),
                );
                Ok(Some(t))
            }
            Err(m) if ignore => {
                self.step(
                    "authentication-managed-identity",
                    format!("no token ({m}); ignored"),
                );
                Ok(None)
            }
            Err(m) => Err(self.fail(
                node,
                path,
                "TokenAcquisitionFailure",
                format!("Could not obtain a managed-identity token for '{resource}': {m}"),
            )),
        }
    }

    /// The standalone policy (inbound): `output-token-variable-name` receives the token as a
    /// string; without it the request's `Authorization` header is set to `Bearer <token>`.
    pub(super) async fn managed_identity(&mut self, node: &Node, path: &str) -> Flow {
        let Some(t) = tri!(self.token_for(node, path).await) else {
            return Flow::Next;
        };
        match node.attr("output-token-variable-name") {
            Some(var) => {
                self.ctx
                    .variables
                    .insert(var.to_string(), super::expr::value::Val::Str(t));
            }
            None => super::context::set_pairs(
                &mut self.ctx.req_headers,
                "Authorization",
                "override",
                vec![format!("Bearer {t}")],
            ),
        }
        Flow::Next
    }
}
