//! A CI system's OIDC provider, as GitHub Actions and Azure DevOps run one for each job: an
//! issuer at `<url>/oidc` with its discovery document and JWKS, and the two ways a job asks it
//! for an ID token with the request token the CI system gave the job.
//!
//! * GitHub style: `GET /oidc/github/token[?...]&audience=<aud>` with `Authorization: Bearer
//!   <request token>` answers `{"value": "<jwt>"}`, the JWT's `aud` being the audience asked for
//!   (the repository owner's URL when none is).
//! * Azure DevOps style: `POST /oidc/ado/.../oidctoken?api-version=7.1&serviceConnectionId=<id>`
//!   with `Authorization: Bearer <System.AccessToken>` answers `{"oidcToken": "<jwt>"}`, whose
//!   `aud` is always `api://AzureADTokenExchange`.
//!
//! Which request tokens are valid, and the subject each one's ID tokens carry, is registered
//! through `POST /_emulator/pipelines`. The ID tokens are signed with the emulator's key, so
//! both OpenBao (through discovery) and the emulator's Entra token endpoint can verify them.
#![allow(
    clippy::result_large_err,
    reason = "the error is the finished HTTP response, built once per request"
)]

use crate::faults::lock;
use crate::server::{json_response, App, Req};
use crate::util::{now_unix, uuid};
use axum::body::Body;
use axum::http::{Method, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Default lifetime of an ID token (GitHub's last about 5 minutes, ADO's about 10).
pub const DEFAULT_LIFETIME: i64 = 300;
/// The audience of GitHub-style tokens requested without one.
pub const DEFAULT_GITHUB_AUDIENCE: &str = "https://github.com/octo-org";

/// A job allowed to request ID tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineIdentity {
    /// `github` or `ado`.
    pub kind: String,
    /// The bearer token the job presents (GitHub's `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, ADO's
    /// `System.AccessToken`).
    pub request_token: String,
    /// `sub` of the tokens issued (e.g. `repo:octo-org/app:ref:refs/heads/main`,
    /// `sc://org/project/connection`).
    pub subject: String,
    /// For `ado`: the service connection the request must name.
    #[serde(default)]
    pub service_connection_id: Option<String>,
    /// Lifetime of the issued tokens in seconds (may be negative, for an expired one).
    #[serde(default = "default_lifetime")]
    pub lifetime: i64,
}

fn default_lifetime() -> i64 {
    DEFAULT_LIFETIME
}

/// The issuer: `<url>/oidc`.
pub fn issuer(app: &App) -> String {
    format!("{}/oidc", app.url)
}

fn error(status: u16, message: &str) -> Response<Body> {
    json_response(status, &json!({"message": message}))
}

/// Serves `/oidc/...`.
pub fn handle(app: &App, req: &Req) -> Response<Body> {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (req.method.clone(), segs.as_slice()) {
        (Method::GET, ["oidc", ".well-known", "openid-configuration"]) => {
            let iss = issuer(app);
            json_response(
                200,
                &json!({
                    "issuer": iss,
                    "jwks_uri": format!("{iss}/.well-known/jwks"),
                    "subject_types_supported": ["public", "pairwise"],
                    "response_types_supported": ["id_token"],
                    "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid"],
                }),
            )
        }
        (Method::GET, ["oidc", ".well-known", "jwks"]) => {
            json_response(200, &app.signer.jwks(&issuer(app)))
        }
        (Method::GET, ["oidc", "github", "token"]) => github(app, req),
        (Method::POST, ["oidc", "ado", .., "oidctoken"]) => ado(app, req),
        _ => error(404, &format!("No route for {} {}.", req.method, req.path)),
    }
}

/// The bearer token of the request, if any.
fn bearer(req: &Req) -> Option<&str> {
    let h = req.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The registered identity whose request token was presented.
fn identity(app: &App, req: &Req, kind: &str) -> Result<PipelineIdentity, Response<Body>> {
    let Some(token) = bearer(req) else {
        return Err(error(
            401,
            "No bearer token: send `Authorization: Bearer <request token>`.",
        ));
    };
    lock(&app.state)
        .pipelines
        .iter()
        .find(|p| p.kind == kind && p.request_token == token)
        .cloned()
        .ok_or_else(|| error(401, "The request token is not valid for this job."))
}

fn mint(app: &App, who: &PipelineIdentity, audience: &str) -> Result<String, Response<Body>> {
    let now = now_unix();
    let issued = if who.lifetime <= 0 {
        now + who.lifetime - 60
    } else {
        now
    };
    let claims = json!({
        "iss": issuer(app),
        "sub": who.subject,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": now + who.lifetime,
        "jti": uuid(),
    });
    app.signer.sign(&claims).map_err(|e| error(500, &e))
}

/// GitHub style: `GET` with the audience in the query.
fn github(app: &App, req: &Req) -> Response<Body> {
    let who = match identity(app, req, "github") {
        Ok(w) => w,
        Err(r) => return r,
    };
    let audience = req.q("audience").unwrap_or(DEFAULT_GITHUB_AUDIENCE);
    match mint(app, &who, audience) {
        Ok(jwt) => json_response(200, &json!({"count": 1, "value": jwt})),
        Err(r) => r,
    }
}

/// Azure DevOps style: `POST` naming the service connection; the audience is fixed.
fn ado(app: &App, req: &Req) -> Response<Body> {
    if req.q("api-version").is_none() {
        return error(400, "No api-version was supplied for the POST request.");
    }
    let Some(connection) = req.q("serviceConnectionId") else {
        return error(400, "The serviceConnectionId query parameter is required.");
    };
    let who = match identity(app, req, "ado") {
        Ok(w) => w,
        Err(r) => return r,
    };
    if who
        .service_connection_id
        .as_deref()
        .is_none_or(|c| !c.eq_ignore_ascii_case(connection))
    {
        return error(
            404,
            &format!("Service connection {connection} was not found or the pipeline is not authorized to use it."),
        );
    }
    match mint(app, &who, crate::entra::EXCHANGE_AUDIENCE) {
        Ok(jwt) => json_response(200, &json!({"oidcToken": jwt})),
        Err(r) => r,
    }
}

/// `POST /_emulator/pipelines`: registers a job's request token (a [`PipelineIdentity`]) and
/// answers the issuer and the URL the job requests tokens from.
pub fn register(app: &App, body: Value) -> Result<Value, String> {
    let who: PipelineIdentity =
        serde_json::from_value(body).map_err(|e| format!("invalid pipeline identity: {e}"))?;
    let request_url = match who.kind.as_str() {
        // GitHub's request URL already carries a query string.
        "github" => format!("{}/oidc/github/token?api-version=2.0", app.url),
        "ado" => format!(
            "{}/oidc/ado/org/project/_apis/distributedtask/hubs/build/plans/plan/jobs/job/oidctoken",
            app.url
        ),
        other => return Err(format!("kind must be \"github\" or \"ado\", not {other:?}")),
    };
    if who.kind == "ado" && who.service_connection_id.is_none() {
        return Err("an \"ado\" identity needs a service_connection_id".into());
    }
    let mut st = lock(&app.state);
    st.pipelines
        .retain(|p| p.request_token != who.request_token);
    st.pipelines.push(who);
    app.persist(&st);
    Ok(json!({"issuer": issuer(app), "request_url": request_url}))
}
