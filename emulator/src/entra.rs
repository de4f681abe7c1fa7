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
    let mut proof = "client secret".to_string();
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
            match check_assertion(app, &client, assertion, &tenant) {
                Ok(how) => proof = how,
                Err(resp) => return resp,
            }
            "2"
        }
        (None, None) => {
            return aad_error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
        }
    };
    let now = now_unix();
    let lifetime = lock(&app.state)
        .settings
        .token_lifetime
        .unwrap_or(TOKEN_LIFETIME);
    let iss = issuer_v1(app, &tenant);
    let claims = json!({
        "aud": audience,
        "iss": iss,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
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
        Ok(token) => {
            let mut resp = json_response(
                200,
                &json!({
                    "token_type": "Bearer",
                    "expires_in": lifetime,
                    "ext_expires_in": lifetime,
                    "access_token": token,
                }),
            );
            resp.extensions_mut()
                .insert(crate::server::Principal(format!(
                    "client {} by {proof}",
                    client.client_id
                )));
            resp
        }
        Err(e) => aad_error(500, "server_error", 90033, &e),
    }
}

/// Accepts a client assertion and says how it proved the client (for the request log):
/// * signed with a certificate registered for the client (`x5t` or `x5t#S256` in the header
///   naming it; `iss` = `sub` = the client id; `aud` the token endpoint), as Entra's certificate
///   credentials;
/// * or a federated token: well-formed, unexpired, signed by the emulator if it claims the
///   emulator's key id (its own CI issuer and managed identities; other issuers' keys are unknown
///   offline, so their signatures are not checked), and matching a federated credential of the
///   client by issuer, subject and audience (or, for a client without any, any assertion for
///   `api://AzureADTokenExchange`, or a certificate-style one whose `iss` and `sub` are the client
///   id).
fn check_assertion(
    app: &App,
    client: &crate::store::Client,
    assertion: &str,
    tenant: &str,
) -> Result<String, Response<Body>> {
    let (header, claims) = crate::jwt::decode_unverified(assertion).map_err(|e| {
        aad_error(
            400,
            "invalid_client",
            50027,
            &format!("JWT token is invalid or malformed: {e}."),
        )
    })?;
    let s = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let exp = claims.get("exp").and_then(Value::as_i64);
    let expired = || {
        aad_error(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        )
    };
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let (iss, sub) = (s("iss"), s("sub"));
    let x5t = header.get("x5t").and_then(Value::as_str);
    let x5t256 = header.get("x5t#S256").and_then(Value::as_str);
    if !client.certificates.is_empty() && (x5t.is_some() || x5t256.is_some()) {
        return check_certificate_assertion(
            app,
            client,
            assertion,
            tenant,
            (x5t, x5t256),
            &auds,
            (&iss, &sub),
            exp,
        );
    }
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
    if exp.is_none_or(|e| e <= now_unix()) {
        return Err(expired());
    }
    let federated_aud = auds.iter().any(|a| a == EXCHANGE_AUDIENCE);
    if client.federated_credentials.is_empty() {
        let cert_style = iss.eq_ignore_ascii_case(&client.client_id)
            && sub.eq_ignore_ascii_case(&client.client_id)
            && auds.iter().any(|a| a.contains(tenant));
        if federated_aud || cert_style {
            return Ok(format!("client assertion (iss {iss}, sub {sub})"));
        }
    } else {
        let trusted: Vec<_> = client
            .federated_credentials
            .iter()
            .filter(|f| f.issuer == iss && f.subject == sub)
            .collect();
        if trusted.iter().any(|f| {
            let want = f.audience.as_deref().unwrap_or(EXCHANGE_AUDIENCE);
            auds.iter().any(|a| a == want)
        }) {
            return Ok(format!("federated credential (iss {iss}, sub {sub})"));
        }
        if !trusted.is_empty() {
            return Err(aad_error(400, "invalid_client", 700212, &format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                auds.join(",")
            )));
        }
    }
    Err(aad_error(400, "invalid_client", 70021, &format!(
        "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
        auds.join(",")
    )))
}

/// A certificate-signed client assertion: the certificate it names among the client's, its
/// signature, issuer, subject, audience (this tenant's token endpoint) and lifetime.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one decoded assertion"
)]
fn check_certificate_assertion(
    app: &App,
    client: &crate::store::Client,
    assertion: &str,
    tenant: &str,
    (x5t, x5t256): (Option<&str>, Option<&str>),
    auds: &[String],
    (iss, sub): (&str, &str),
    exp: Option<i64>,
) -> Result<String, Response<Body>> {
    let key = client.certificates.iter().find_map(|pem| {
        let k = certificate_key(pem).ok()?;
        (x5t == Some(k.x5t.as_str()) || x5t256 == Some(k.x5t_s256.as_str())).then_some(k)
    });
    let Some(key) = key else {
        return Err(aad_error(401, "invalid_client", 700027, &format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}'.]",
            x5t.or(x5t256).unwrap_or_default()
        )));
    };
    let mut parts = assertion.rsplitn(2, '.');
    let sig = parts
        .next()
        .and_then(crate::util::b64url_decode)
        .unwrap_or_default();
    let signing_input = parts.next().unwrap_or_default();
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &key.rsa_public_key,
    );
    if public.verify(signing_input.as_bytes(), &sig).is_err() {
        return Err(aad_error(
            401,
            "invalid_client",
            700027,
            "Client assertion failed signature validation.",
        ));
    }
    if !iss.eq_ignore_ascii_case(&client.client_id) || !sub.eq_ignore_ascii_case(&client.client_id)
    {
        return Err(aad_error(
            400,
            "invalid_client",
            700023,
            &format!(
                "Client assertion issuer and subject must both be the client id '{}'.",
                client.client_id
            ),
        ));
    }
    let endpoints = [
        format!("{}/{tenant}/oauth2/v2.0/token", app.url),
        format!("{}/{tenant}/oauth2/token", app.url),
    ];
    if !auds
        .iter()
        .any(|a| endpoints.iter().any(|e| e.eq_ignore_ascii_case(a)))
    {
        return Err(aad_error(400, "invalid_client", 700212, &format!(
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials. Presented audience: '{}'.",
            auds.join(",")
        )));
    }
    if exp.is_none_or(|e| e <= now_unix()) {
        return Err(aad_error(
            400,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(format!("certificate {}", key.x5t))
}

/// What the token endpoint needs of a registered certificate.
pub struct CertificateKey {
    /// base64url SHA-1 of the DER certificate.
    pub x5t: String,
    /// base64url SHA-256 of the DER certificate.
    pub x5t_s256: String,
    /// The RSA public key (PKCS#1 `RSAPublicKey`, DER).
    pub rsa_public_key: Vec<u8>,
}

/// Reads a PEM certificate: its thumbprints and RSA public key.
pub fn certificate_key(pem: &str) -> Result<CertificateKey, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = crate::util::b64_decode(body.trim()).ok_or("the certificate is not PEM")?;
    let spki = crate::der::subject_public_key_info(&der)
        .ok_or("the certificate is not a DER X.509 certificate")?;
    let rsa = crate::der::rsa_public_key(spki).ok_or("the certificate's key is not RSA")?;
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    Ok(CertificateKey {
        x5t: crate::util::b64url(sha1.as_ref()),
        x5t_s256: crate::util::b64url(sha256.as_ref()),
        rsa_public_key: rsa.to_vec(),
    })
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
