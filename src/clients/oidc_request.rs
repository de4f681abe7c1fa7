//! ID tokens requested from a CI system's OIDC provider, for signing in to Entra ID (as a
//! federated credential) or to Vault (JWT login):
//!
//! * GitHub Actions: `GET <request URL>&audience=<audience>` (with `?` when the URL has no query)
//!   and `Authorization: Bearer <request token>`, answering `{"value": "<jwt>"}`.
//! * Azure DevOps: `POST <SYSTEM_OIDCREQUESTURI>?api-version=7.1&serviceConnectionId=<id>` with
//!   `Authorization: Bearer <System.AccessToken>`, answering `{"oidcToken": "<jwt>"}` (whose
//!   audience is always `api://AzureADTokenExchange`).
//!
//! Neither the request tokens nor the ID tokens appear in errors or logs.

use serde::Deserialize;
use url::Url;

/// The Azure DevOps API version of the OIDC token request.
const ADO_API_VERSION: &str = "7.1";

/// GitHub's request URL with the audience appended (`?` or `&` as the URL needs); without one,
/// GitHub's default audience (the URL of the repository owner).
pub fn github_request_url(request_url: &str, audience: Option<&str>) -> Result<Url, String> {
    let mut url = Url::parse(request_url).map_err(|e| {
        format!("the OIDC request URL is not a URL ({e}); it is ARM_OIDC_REQUEST_URL or ACTIONS_ID_TOKEN_REQUEST_URL as GitHub Actions sets it")
    })?;
    if let Some(audience) = audience {
        url.query_pairs_mut().append_pair("audience", audience);
    }
    Ok(url)
}

/// Azure DevOps' request URL for a service connection.
pub fn ado_request_url(request_uri: &str, service_connection_id: &str) -> Result<Url, String> {
    let mut url = Url::parse(request_uri).map_err(|e| {
        format!("SYSTEM_OIDCREQUESTURI is not a URL ({e}); it is set by Azure Pipelines")
    })?;
    url.query_pairs_mut()
        .append_pair("api-version", ADO_API_VERSION)
        .append_pair("serviceConnectionId", service_connection_id);
    Ok(url)
}

#[derive(Deserialize)]
struct GitHubAnswer {
    value: Option<String>,
}

#[derive(Deserialize)]
struct AdoAnswer {
    #[serde(rename = "oidcToken")]
    oidc_token: Option<String>,
}

/// Asks GitHub Actions for an ID token for `audience`.
pub async fn github_token(
    http: &reqwest::Client,
    request_url: &str,
    request_token: &str,
    audience: Option<&str>,
) -> Result<String, String> {
    let url = github_request_url(request_url, audience)?;
    let resp = http
        .get(url)
        .bearer_auth(request_token)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            format!(
                "the GitHub Actions OIDC token request failed: {}",
                e.without_url()
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "GitHub Actions answered {status} to the OIDC token request; check that the job has `permissions: id-token: write` and that the request token (ARM_OIDC_REQUEST_TOKEN or ACTIONS_ID_TOKEN_REQUEST_TOKEN) belongs to this job"
        ));
    }
    let answer: GitHubAnswer = resp
        .json()
        .await
        .map_err(|_| "GitHub Actions' OIDC answer is not JSON with a `value`".to_string())?;
    answer
        .value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "GitHub Actions' OIDC answer has no `value`".to_string())
}

/// Asks Azure DevOps for an ID token for a service connection.
pub async fn ado_token(
    http: &reqwest::Client,
    request_uri: &str,
    service_connection_id: &str,
    access_token: &str,
) -> Result<String, String> {
    let url = ado_request_url(request_uri, service_connection_id)?;
    let resp = http
        .post(url)
        .bearer_auth(access_token)
        .header("content-type", "application/json")
        .header("x-tfs-fedauthredirect", "Suppress")
        .body("")
        .send()
        .await
        .map_err(|e| {
            format!(
                "the Azure DevOps OIDC token request failed: {}",
                e.without_url()
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!(
            "Azure DevOps answered {status} to the OIDC token request for service connection {service_connection_id}; check the connection ID (`ado_pipeline_service_connection_id`, ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID), that the pipeline may use it, and that SYSTEM_ACCESSTOKEN is mapped into the step's environment"
        ));
    }
    let answer: AdoAnswer = resp
        .json()
        .await
        .map_err(|_| "Azure DevOps' OIDC answer is not JSON with an `oidcToken`".to_string())?;
    answer
        .oidc_token
        .filter(|v| !v.is_empty())
        .ok_or_else(|| "Azure DevOps' OIDC answer has no `oidcToken`".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_audience_is_appended_with_the_right_separator() {
        let u = github_request_url(
            "https://gh.example/token?api-version=2.0",
            Some("api://AzureADTokenExchange"),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://gh.example/token?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"
        );
        let u = github_request_url("https://gh.example/token", Some("vault")).unwrap();
        assert_eq!(u.as_str(), "https://gh.example/token?audience=vault");
        let u = github_request_url("https://gh.example/token?api-version=2.0", None).unwrap();
        assert_eq!(u.as_str(), "https://gh.example/token?api-version=2.0");
        assert!(github_request_url("not a url", None)
            .unwrap_err()
            .contains("ACTIONS_ID_TOKEN_REQUEST_URL"));
    }

    #[test]
    fn ado_request_names_version_and_connection() {
        let u = ado_request_url("https://dev.azure.example/o/p/_apis/x/oidctoken", "c-1").unwrap();
        assert_eq!(
            u.as_str(),
            "https://dev.azure.example/o/p/_apis/x/oidctoken?api-version=7.1&serviceConnectionId=c-1"
        );
    }
}
