//! Entra ID: the v2 token endpoint (client credentials with a secret or a client assertion), OpenID
//! discovery for the v2 issuer (`<url>/{tenant}/v2.0`) and the v1 issuer (`<url>/{tenant}/`), and
//! the JWKS. The emulator serves all of them under its own host, so both issuers live there; the
//! v1 discovery document's `issuer` is exactly `<url>/{tenant}/`, as go-oidc (used by OpenBao and
//! Vault) requires it to equal the configured discovery URL.
#![allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP response, built once per request"
)]

use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::util::{now_rfc3339, now_unix, uuid};
use axum::body::Body;
use axum::http::{Method, Response};
use serde_json::{json, Value};

/// Lifetime of client-credentials access tokens, as Entra issues them.
const TOKEN_LIFETIME: i64 = 3599;
/// The audience federated credentials expect in client assertions.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// v1 issuer: `<url>/{tenant}/`.
pub fn issuer_v1(app: &App, tenant: &str) -> String {
    format!("{}/{tenant}/", app.url)
}

/// v2 issuer: `<url>/{tenant}/v2.0`.
pub fn issuer_v2(app: &App, tenant: &str) -> String {
    format!("{}/{tenant}/v2.0", app.url)
}

/// An AADSTS-style error body.
fn aad_error(status: u16, error: &str, code: u32, description: &str) -> Response<Body> {
    let trace = uuid();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {} Timestamp: {}", uuid(), now_rfc3339()),
            "error_codes": [code],
            "timestamp": now_rfc3339(),
            "trace_id": trace,
            "correlation_id": uuid(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

fn tenant_ok(app: &App, tenant: &str) -> Option<String> {
    let st = lock(&app.state);
    st.tenant_id
        .eq_ignore_ascii_case(tenant)
        .then(|| st.tenant_id.clone())
}

fn unknown_tenant(tenant: &str) -> Response<Body> {
    aad_error(400, "invalid_tenant", 90002, &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."))
}

/// The audience of a token requested for `scope` (`<resource>/.default`).
fn audience_for_scope(scope: &str) -> String {
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    let bare = resource.trim_end_matches('/');
    // ARM tokens carry the resource with its trailing slash, as `az` and the SDKs see them.
    if bare == "https://management.azure.com" || bare == "https://management.core.windows.net" {
        format!("{bare}/")
    } else {
        resource.to_string()
    }
}

/// `POST /{tenant}/oauth2/v2.0/token` (and the v1 `/{tenant}/oauth2/token`, which takes
/// `resource` instead of `scope`).
pub fn token(app: &App, req: &Req, tenant: &str) -> Response<Body> {
    if req.method != Method::POST {
        return aad_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        );
    }
    let Some(tenant) = tenant_ok(app, tenant) else {
        return unknown_tenant(tenant);
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some("client_credentials") {
        return aad_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type; only 'client_credentials' is supported here.");
    }
    let Some(client_id) = get("client_id") else {
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let audience = match (get("scope"), get("resource")) {
        (Some(scope), _) => {
            let first = scope.split_whitespace().next().unwrap_or_default();
            if !first.ends_with("/.default") {
                return aad_error(400, "invalid_scope", 1002012, &format!("The provided value for scope {first} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."));
            }
            audience_for_scope(first)
        }
        (None, Some(resource)) => resource.to_string(),
        (None, None) => {
            return aad_error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        }
    };
    let client = lock(&app.state).client(client_id).cloned();
    let Some(client) = client else {
        return aad_error(400, "unauthorized_client", 700016, &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."));
    };
    let appidacr = match (get("client_secret"), get("client_assertion")) {
        (Some(secret), _) => {
            if client.client_secret.as_deref() != Some(secret) {
                return aad_error(401, "invalid_client", 7000215, &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."));
            }
            "1"
        }
        (None, Some(assertion)) => {
            if get("client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return aad_error(400, "invalid_request", 50027, "client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.");
            }
            if let Err(resp) = check_assertion(app, &client, assertion, &tenant) {
                return resp;
            }
            "2"
        }
        (None, None) => {
            return aad_error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
        }
    };
    let now = now_unix();
    let iss = issuer_v1(app, &tenant);
    let claims = json!({
        "aud": audience,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME,
        "appid": client.client_id,
        "appidacr": appidacr,
        "idp": iss,
        "idtyp": "app",
        "oid": client.object_id,
        "sub": client.object_id,
        "tid": tenant,
        "uti": crate::util::b64url(&crate::util::random_bytes::<16>()),
        "ver": "1.0",
    });
    match app.signer.sign(&claims) {
        Ok(token) => json_response(
            200,
            &json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            }),
        ),
        Err(e) => aad_error(500, "server_error", 90033, &e),
    }
}

/// Accepts a client assertion: well-formed, unexpired, signed by the emulator if it claims the
/// emulator's key id (other issuers' keys are unknown offline, so their signatures are not
/// checked), and matching a federated credential of the client (or, for a client without any,
/// any assertion for `api://AzureADTokenExchange`, or a certificate-style one whose `iss` and `sub`
/// are the client id).
fn check_assertion(
    app: &App,
    client: &crate::store::Client,
    assertion: &str,
    tenant: &str,
) -> Result<(), Response<Body>> {
    let (header, claims) = crate::jwt::decode_unverified(assertion).map_err(|e| {
        aad_error(
            400,
            "invalid_client",
            50027,
            &format!("JWT token is invalid or malformed: {e}."),
        )
    })?;
    if header.get("kid").and_then(Value::as_str) == Some(app.signer.kid()) {
        match app.signer.verify(assertion) {
            Ok(_) | Err(crate::jwt::JwtError::Expired) => {}
            Err(_) => {
                return Err(aad_error(
                    401,
                    "invalid_client",
                    50027,
                    "JWT token failed signature validation.",
                ))
            }
        }
    }
    let s = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let exp = claims.get("exp").and_then(Value::as_i64);
    if exp.is_none_or(|e| e <= now_unix()) {
        return Err(aad_error(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let (iss, sub) = (s("iss"), s("sub"));
    let federated_aud = auds.iter().any(|a| a == EXCHANGE_AUDIENCE);
    let ok = if client.federated_credentials.is_empty() {
        let cert_style = iss.eq_ignore_ascii_case(&client.client_id)
            && sub.eq_ignore_ascii_case(&client.client_id)
            && auds.iter().any(|a| a.contains(tenant));
        federated_aud || cert_style
    } else {
        federated_aud
            && client
                .federated_credentials
                .iter()
                .any(|f| f.issuer == iss && f.subject == sub)
    };
    if ok {
        Ok(())
    } else {
        Err(aad_error(400, "invalid_client", 70021, &format!(
            "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
            auds.join(",")
        )))
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (version 2) and
/// `GET /{tenant}/.well-known/openid-configuration` (version 1).
pub fn discovery(app: &App, req: &Req, tenant: &str, version: u8) -> Response<Body> {
    if req.method != Method::GET {
        return aad_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts GET requests.",
        );
    }
    let Some(tenant) = tenant_ok(app, tenant) else {
        return unknown_tenant(tenant);
    };
    let base = format!("{}/{tenant}", app.url);
    let (issuer, jwks, token, authorize) = if version == 2 {
        (
            issuer_v2(app, &tenant),
            format!("{base}/discovery/v2.0/keys"),
            format!("{base}/oauth2/v2.0/token"),
            format!("{base}/oauth2/v2.0/authorize"),
        )
    } else {
        (
            issuer_v1(app, &tenant),
            format!("{base}/discovery/keys"),
            format!("{base}/oauth2/token"),
            format!("{base}/oauth2/authorize"),
        )
    };
    json_response(
        200,
        &json!({
            "token_endpoint": token,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": jwks,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": false,
            "authorization_endpoint": authorize,
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "appid", "azp", "ver", "xms_mirid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys` and `/{tenant}/discovery/keys`.
pub fn jwks(app: &App, req: &Req, tenant: &str) -> Response<Body> {
    if req.method != Method::GET {
        return aad_error(
            405,
            "invalid_request",
            900561,
            "The endpoint only accepts GET requests.",
        );
    }
    let Some(tenant) = tenant_ok(app, tenant) else {
        return unknown_tenant(tenant);
    };
    json_response(200, &app.signer.jwks(&issuer_v2(app, &tenant)))
}
