//! Managed-identity tokens as Azure's instance metadata service (IMDS) hands them out:
//! `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<aud>&msi_res_id=<ARM id>`
//! with `Metadata: true`. The App Service flavour (`X-IDENTITY-HEADER`, api-version 2019-08-01,
//! `mi_res_id`) is accepted too, so `azure_identity`'s `ManagedIdentityCredential` can be pointed
//! here through `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`.

use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::store::State;
use crate::util::{b64url, now_unix, random_bytes};
use axum::body::Body;
use axum::http::Response;
use serde_json::{json, Value};

/// Lifetime of managed-identity tokens (IMDS hands out 24-hour tokens).
pub const MI_LIFETIME: i64 = 86_399;

/// A resolved identity to mint a token for.
#[derive(Debug, Clone)]
pub struct MiIdentity {
    /// Object id (`oid`, `sub`).
    pub principal_id: String,
    /// Client id (`appid`).
    pub client_id: String,
    /// `xms_mirid`: the instance's ARM id for a system-assigned identity, the identity's own ARM
    /// id for a user-assigned one (Azure writes `resourcegroups` in lower case there).
    pub mirid: String,
    /// Default token version of the instance.
    pub token_version: u8,
}

fn imds_error(status: u16, error: &str, description: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn mirid(id: &str) -> String {
    id.replacen("/resourceGroups/", "/resourcegroups/", 1)
}

/// Finds the identity a request names. `service` is an instance ARM id or `None` for the
/// default instance; `selector` is one of `msi_res_id`/`object_id`/`client_id` as (name, value).
pub fn resolve(st: &State, selector: Option<(&str, &str)>) -> Result<MiIdentity, String> {
    let from_service = |svc: &crate::store::Service| -> Result<MiIdentity, String> {
        if let Some(sys) = &svc.system_identity {
            return Ok(MiIdentity {
                principal_id: sys.principal_id.clone(),
                client_id: sys.client_id.clone(),
                mirid: mirid(&svc.id),
                token_version: svc.token_version,
            });
        }
        // Like IMDS on a resource with exactly one user-assigned identity and no system one.
        match svc.user_assigned.as_slice() {
            [only] => st
                .user_identities
                .get(&only.to_ascii_lowercase())
                .map(|u| MiIdentity {
                    principal_id: u.principal_id.clone(),
                    client_id: u.client_id.clone(),
                    mirid: mirid(&u.id),
                    token_version: svc.token_version,
                })
                .ok_or_else(|| "Identity not found".to_string()),
            _ => Err("Identity not found".into()),
        }
    };
    // The user-assigned identity with a given property, looked up among the assigned ones.
    let find_uai = |pred: &dyn Fn(&crate::store::UserIdentity) -> bool| -> Option<MiIdentity> {
        st.services.values().find_map(|svc| {
            svc.user_assigned.iter().find_map(|id| {
                st.user_identities
                    .get(&id.to_ascii_lowercase())
                    .filter(|u| pred(u))
                    .map(|u| MiIdentity {
                        principal_id: u.principal_id.clone(),
                        client_id: u.client_id.clone(),
                        mirid: mirid(&u.id),
                        token_version: svc.token_version,
                    })
            })
        })
    };
    match selector {
        None => {
            let key = st.defaults.api_management_id.to_ascii_lowercase();
            let svc = st
                .services
                .get(&key)
                .ok_or_else(|| "Identity not found".to_string())?;
            from_service(svc)
        }
        Some(("msi_res_id" | "mi_res_id", id)) => {
            if let Some(svc) = st.services.get(&id.to_ascii_lowercase()) {
                return from_service(svc);
            }
            find_uai(&|u| u.id.eq_ignore_ascii_case(id)).ok_or_else(|| "Identity not found".into())
        }
        Some(("object_id" | "principal_id", oid)) => st
            .services
            .values()
            .find_map(|svc| {
                svc.system_identity
                    .as_ref()
                    .filter(|s| s.principal_id.eq_ignore_ascii_case(oid))
                    .map(|s| MiIdentity {
                        principal_id: s.principal_id.clone(),
                        client_id: s.client_id.clone(),
                        mirid: mirid(&svc.id),
                        token_version: svc.token_version,
                    })
            })
            .or_else(|| find_uai(&|u| u.principal_id.eq_ignore_ascii_case(oid)))
            .ok_or_else(|| "Identity not found".into()),
        Some((_, cid)) => st
            .services
            .values()
            .find_map(|svc| {
                svc.system_identity
                    .as_ref()
                    .filter(|s| s.client_id.eq_ignore_ascii_case(cid))
                    .map(|s| MiIdentity {
                        principal_id: s.principal_id.clone(),
                        client_id: s.client_id.clone(),
                        mirid: mirid(&svc.id),
                        token_version: svc.token_version,
                    })
            })
            .or_else(|| find_uai(&|u| u.client_id.eq_ignore_ascii_case(cid)))
            .ok_or_else(|| "Identity not found".into()),
    }
}

/// The claims of a managed-identity access token (see the Azure docs on access-token claims).
pub fn claims(
    app: &App,
    tenant: &str,
    id: &MiIdentity,
    resource: &str,
    version: u8,
    lifetime: i64,
) -> Value {
    let now = now_unix();
    let v2 = version == 2;
    let iss = if v2 {
        crate::entra::issuer_v2(app, tenant)
    } else {
        crate::entra::issuer_v1(app, tenant)
    };
    let mut c = json!({
        "aud": resource,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "aio": b64url(&random_bytes::<24>()),
        "appid": id.client_id,
        "appidacr": "2",
        "idtyp": "app",
        "oid": id.principal_id,
        "rh": format!("0.{}.", b64url(&random_bytes::<24>())),
        "sub": id.principal_id,
        "tid": tenant,
        "uti": b64url(&random_bytes::<16>()),
        "ver": if v2 { "2.0" } else { "1.0" },
        "xms_mirid": id.mirid,
        "xms_tcdt": 1_600_000_000,
    });
    if v2 {
        c["azp"] = json!(id.client_id);
        c["azpacr"] = json!("2");
    } else {
        c["idp"] = json!(iss);
    }
    c
}

/// `GET /metadata/identity/oauth2/token`.
pub fn handle(app: &App, req: &Req) -> Response<Body> {
    match req.q("api-version") {
        Some("2018-02-01" | "2019-08-01") => {}
        Some(_) => return imds_error(400, "invalid_request", "Invalid API version"),
        None => {
            return imds_error(
                400,
                "invalid_request",
                "Required query variable 'api-version' is missing",
            )
        }
    }
    let metadata = req
        .header("metadata")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !metadata && req.header("x-identity-header").is_none() {
        return imds_error(
            400,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let Some(resource) = req.q("resource").filter(|r| !r.is_empty()) else {
        return imds_error(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let selector = [
        "msi_res_id",
        "mi_res_id",
        "object_id",
        "principal_id",
        "client_id",
    ]
    .iter()
    .find_map(|k| req.q(k).map(|v| (*k, v)));
    let st = lock(&app.state);
    let id = match resolve(&st, selector) {
        Ok(id) => id,
        Err(m) => return imds_error(400, "invalid_request", &m),
    };
    let tenant = st.tenant_id.clone();
    drop(st);
    let version = match req.q("token_version") {
        Some("2") => 2,
        Some("1") => 1,
        Some(_) => return imds_error(400, "invalid_request", "token_version must be 1 or 2"),
        None => id.token_version,
    };
    let c = claims(app, &tenant, &id, resource, version, MI_LIFETIME);
    let token = match app.signer.sign(&c) {
        Ok(t) => t,
        Err(e) => return imds_error(500, "server_error", &e),
    };
    let now = now_unix();
    json_response(
        200,
        &json!({
            "access_token": token,
            "client_id": id.client_id,
            "expires_in": MI_LIFETIME.to_string(),
            "expires_on": (now + MI_LIFETIME).to_string(),
            "ext_expires_in": MI_LIFETIME.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}
