//! Typed API clients. They know nothing of Terraform: no values, schemas or diagnostics.

pub mod azure;
pub mod backoff;
pub mod oidc_request;
pub mod vault;

/// A request that got no answer, as a message: without the URL (which holds no secret, but
/// is noise next to the client's own wording) and with the chain of causes.
pub(crate) fn transport_error_text(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(u) = e.url() {
        msg = msg.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
