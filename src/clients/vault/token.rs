//! The provider's own Vault token and its lifetime.
//!
//! * A configured token is looked up once (`auth/token/lookup-self`). When it expires and is
//!   renewable, it is renewed (`auth/token/renew-self`) once two thirds of its TTL have
//!   passed, for as long as Vault extends it. A token without a TTL (a root token) is used
//!   as is.
//! * A token from `auth_login_jwt` is renewed the same way while it is renewable and its
//!   maximum TTL leaves room; once Vault stops extending it by its full TTL (or refuses to
//!   renew it), the provider logs in again.
//!
//! Renewal runs in a background task as well as on demand, so that a token outlives the idle
//! periods of a long apply (a slow resource of another provider, a provisioner) during which
//! the provider makes no call. Nothing here logs a token: only TTLs and outcomes.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::transport::Transport;
use super::{json_body, JwtLogin, VaultError};
use crate::log;

/// Where the token comes from.
#[derive(Clone)]
pub(super) enum Source {
    /// `vault { token }`, `VAULT_TOKEN` or `~/.vault-token`.
    Static(String),
    /// `vault { auth_login_jwt { ... } }`.
    Login(JwtLogin),
    /// Neither: every call fails with a configuration error.
    Missing,
}

/// The token in use and what is known of its lifetime.
struct Held {
    token: String,
    /// When to renew or replace it; `None` when it never needs it.
    refresh_at: Option<Instant>,
    /// When it stops working; `None` when it does not expire (or the lifetime is unknown).
    expires_at: Option<Instant>,
    /// Vault would extend it (`renew-self`).
    renewable: bool,
    /// The TTL asked for on renewal (the token's own TTL).
    ttl: Duration,
}

impl Held {
    /// A token whose lifetime is not known: used as it is, never renewed.
    fn unknown(token: &str) -> Held {
        Held {
            token: token.to_string(),
            refresh_at: None,
            expires_at: None,
            renewable: false,
            ttl: Duration::ZERO,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Why every call fails from now on, and what to configure instead.
    fn expiry_message(&self, now: Instant) -> String {
        let ago = self
            .expires_at
            .map_or(0, |at| now.saturating_duration_since(at).as_secs());
        let why = if self.renewable {
            "it reached its maximum TTL"
        } else {
            "it is not renewable"
        };
        format!(
            "the configured Vault token expired {ago} s ago ({why}; it had a TTL of {} s), so Vault refuses every call made with it. Give the provider a token that outlives the whole run (a periodic token, or a renewable one whose max TTL covers it), or let it log in with `vault {{ auth_login_jwt {{ ... }} }}`, which obtains a new token when one runs out",
            self.ttl.as_secs()
        )
    }
}

/// Requests and state shared by the client and the background renewal.
pub(super) struct TokenKeeper {
    transport: Arc<Transport>,
    /// For requesting a login's JWT from a CI system.
    oidc_http: reqwest::Client,
    source: Source,
    state: Mutex<Option<Held>>,
    renewer_started: std::sync::atomic::AtomicBool,
}

/// The `auth` object of a login or renewal answer.
#[derive(Deserialize)]
struct Auth {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct AuthResponse {
    auth: Option<Auth>,
}

/// Body of `POST auth/token/renew-self`: the TTL asked for, as a duration string.
/// API reference: <https://developer.hashicorp.com/vault/api-docs/auth/token#renew-a-token-self>.
#[derive(Serialize)]
struct RenewSelfRequest {
    increment: String,
}

/// Body of `POST auth/<mount>/login` of the JWT auth method. It carries the JWT, so it has
/// no `Debug`. API reference: <https://developer.hashicorp.com/vault/api-docs/auth/jwt#jwt-login>.
#[derive(Serialize)]
struct JwtLoginRequest<'a> {
    role: &'a str,
    jwt: &'a str,
}

/// The parts of `auth/token/lookup-self` used here.
#[derive(Deserialize)]
struct SelfLookup {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    creation_ttl: u64,
    #[serde(default)]
    period: Option<u64>,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct LookupResponse {
    data: Option<SelfLookup>,
}

/// Two thirds of `d` from now: when a lease of length `d` gets renewed.
fn two_thirds(d: Duration) -> Instant {
    Instant::now() + d * 2 / 3
}

impl TokenKeeper {
    pub(super) fn new(
        transport: Arc<Transport>,
        source: Source,
        oidc_http: reqwest::Client,
    ) -> Arc<TokenKeeper> {
        Arc::new(TokenKeeper {
            transport,
            oidc_http,
            source,
            state: Mutex::new(None),
            renewer_started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The token to use now: acquired on first use, renewed or replaced when due.
    pub(super) async fn current(self: &Arc<Self>) -> Result<String, VaultError> {
        let mut slot = self.state.lock().await;
        let now = Instant::now();
        match slot.as_mut() {
            Some(h) if matches!(self.source, Source::Static(_)) && h.expired(now) => {
                // By this process's clock it has run out; Vault has the last word (another
                // holder may have renewed a renewable token).
                match self.look_up(&h.token).await {
                    Ok(fresh) if !fresh.expired(Instant::now()) => {
                        *h = fresh;
                        if h.refresh_at.is_some() {
                            self.start_renewer();
                        }
                        return Ok(h.token.clone());
                    }
                    _ => {
                        // Nothing left to renew: the background renewal ends.
                        h.refresh_at = None;
                        return Err(VaultError::Config(h.expiry_message(now)));
                    }
                }
            }
            Some(h) if h.refresh_at.is_none_or(|at| now < at) => return Ok(h.token.clone()),
            Some(h) => self.refresh(h).await?,
            None => *slot = Some(self.acquire().await?),
        }
        let held = slot.as_ref().expect("a token was just stored");
        let token = held.token.clone();
        if held.refresh_at.is_some() {
            self.start_renewer();
        }
        Ok(token)
    }

    /// Renews in the background when due, for as long as the client exists.
    fn start_renewer(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.renewer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<TokenKeeper> = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let due = {
                    let Some(k) = weak.upgrade() else { return };
                    let s = k.state.lock().await;
                    s.as_ref().and_then(|h| h.refresh_at)
                };
                let Some(due) = due else {
                    // Nothing left to renew; a later acquisition starts a new task.
                    if let Some(k) = weak.upgrade() {
                        k.renewer_started.store(false, Ordering::SeqCst);
                    }
                    return;
                };
                tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
                let Some(k) = weak.upgrade() else { return };
                if let Err(e) = k.current().await {
                    log::warn(
                        "Vault token renewal failed; retrying on the next call",
                        &[("error", &e.to_string())],
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        });
    }

    /// The first token of this provider process.
    async fn acquire(&self) -> Result<Held, VaultError> {
        match &self.source {
            Source::Login(login) => self.login(login).await,
            Source::Static(token) => Ok(self.inspect(token).await),
            Source::Missing => Err(VaultError::Config(
                "no Vault token: set `vault { token }` in the provider block, VAULT_TOKEN, or ~/.vault-token; or configure `vault { auth_login_jwt { ... } }`".into(),
            )),
        }
    }

    /// A configured token, with its lifetime from `lookup-self`. A token that may not look
    /// itself up is used without renewal.
    async fn inspect(&self, token: &str) -> Held {
        self.look_up(token).await.unwrap_or_else(|e| {
            log::debug(
                "Vault token lookup-self failed; the token is used without renewal",
                &[("error", &e.to_string())],
            );
            Held::unknown(token)
        })
    }

    /// `auth/token/lookup-self`: the token's lifetime as Vault sees it now.
    async fn look_up(&self, token: &str) -> Result<Held, VaultError> {
        let looked: LookupResponse = self
            .request(reqwest::Method::GET, "auth/token/lookup-self", token, None)
            .await?;
        let mut held = Held::unknown(token);
        match looked.data {
            Some(s) if s.ttl > 0 => {
                let ttl = Duration::from_secs(s.ttl);
                held.expires_at = Some(Instant::now() + ttl);
                held.renewable = s.renewable;
                let own = s.period.filter(|p| *p > 0).unwrap_or(s.creation_ttl);
                held.ttl = Duration::from_secs(own.max(s.ttl));
                if s.renewable {
                    held.refresh_at = Some(two_thirds(ttl));
                    log::debug(
                        "Vault token expires; it will be renewed before it does",
                        &[("ttl_seconds", &s.ttl.to_string())],
                    );
                } else {
                    log::warn(
                        "The Vault token expires and is not renewable: calls after its expiry fail",
                        &[("ttl_seconds", &s.ttl.to_string())],
                    );
                }
            }
            _ => log::debug("Vault token does not expire", &[]),
        }
        Ok(held)
    }

    /// Renews or replaces a token that is due.
    async fn refresh(&self, h: &mut Held) -> Result<(), VaultError> {
        if h.renewable {
            match self.renew_self(h).await {
                Ok(()) => return Ok(()),
                Err(e) => log::debug("Vault token renewal refused", &[("error", &e.to_string())]),
            }
        }
        match &self.source {
            Source::Login(login) => {
                let old = std::mem::replace(h, self.login(login).await?);
                // The replaced token is not left to live out its TTL.
                self.revoke(&old.token).await;
                log::debug(
                    "Logged in to Vault again (the previous token reached its maximum TTL or was not renewable)",
                    &[("ttl_seconds", &h.ttl.as_secs().to_string())],
                );
                Ok(())
            }
            _ => {
                // A configured token that cannot be extended: keep using it until it expires,
                // trying again now and then while it still works.
                let now = Instant::now();
                h.refresh_at = match h.expires_at {
                    Some(exp) if exp > now + Duration::from_secs(1) => {
                        Some(now + ((exp - now) / 2).min(Duration::from_secs(5)))
                    }
                    _ => None,
                };
                Ok(())
            }
        }
    }

    /// `auth/token/renew-self` by the token's own TTL.
    async fn renew_self(&self, h: &mut Held) -> Result<(), VaultError> {
        let body = json_body(&RenewSelfRequest {
            increment: format!("{}s", h.ttl.as_secs()),
        });
        let resp: AuthResponse = self
            .request(
                reqwest::Method::POST,
                "auth/token/renew-self",
                &h.token,
                Some(&body),
            )
            .await?;
        let auth = resp.auth.ok_or_else(|| VaultError::Decode {
            path: "auth/token/renew-self".into(),
            message: "no `auth` in the answer".into(),
        })?;
        let got = Duration::from_secs(auth.lease_duration);
        if got.is_zero() {
            h.refresh_at = None;
            h.expires_at = None;
            return Ok(());
        }
        h.expires_at = Some(Instant::now() + got);
        h.refresh_at = Some(two_thirds(got));
        // Vault grants less than asked when the token nears its maximum TTL: a login token is
        // then replaced at the next refresh instead of being renewed ever shorter.
        let capped = got + Duration::from_secs(1) < h.ttl;
        h.renewable = auth.renewable && !(capped && matches!(self.source, Source::Login(_)));
        if capped && !matches!(self.source, Source::Login(_)) && got < Duration::from_secs(3) {
            h.refresh_at = None;
            log::warn(
                "The Vault token reached its maximum TTL and cannot be renewed further",
                &[("ttl_seconds", &got.as_secs().to_string())],
            );
        }
        log::debug(
            "Vault token renewed",
            &[("ttl_seconds", &got.as_secs().to_string())],
        );
        Ok(())
    }

    /// `auth/<mount>/login` with the JWT (requested afresh from a CI system when it comes from
    /// one: their tokens live minutes, a Vault token may outlive many of them).
    async fn login(&self, login: &JwtLogin) -> Result<Held, VaultError> {
        let path = format!(
            "auth/{}/login",
            super::path::segments("auth mount path", &login.mount)?
        );
        let jwt = login.jwt.fetch(&self.oidc_http).await.map_err(|e| {
            VaultError::Config(format!(
                "cannot log in to Vault with `auth_login_jwt`: no JWT from {}: {e}",
                login.jwt.describe()
            ))
        })?;
        let body = json_body(&JwtLoginRequest {
            role: &login.role,
            jwt: &jwt,
        });
        let resp: AuthResponse = self
            .request(reqwest::Method::POST, &path, "", Some(&body))
            .await?;
        let auth = resp.auth.ok_or_else(|| VaultError::Decode {
            path: path.clone(),
            message: "no `auth` in the login answer".into(),
        })?;
        let ttl = Duration::from_secs(auth.lease_duration);
        log::debug(
            "Logged in to Vault with a JWT",
            &[
                ("mount", login.mount.as_str()),
                ("role", login.role.as_str()),
                ("jwt_from", login.jwt.describe()),
                ("ttl_seconds", &auth.lease_duration.to_string()),
            ],
        );
        Ok(Held {
            token: auth.client_token,
            refresh_at: (!ttl.is_zero()).then(|| two_thirds(ttl)),
            expires_at: (!ttl.is_zero()).then(|| Instant::now() + ttl),
            renewable: auth.renewable,
            ttl,
        })
    }

    /// `auth/token/revoke-self` of a token this process obtained by logging in; best effort
    /// (a token that cannot be revoked still expires with its TTL), and only for logins: a
    /// configured token belongs to whoever gave it.
    async fn revoke(&self, token: &str) {
        if !matches!(self.source, Source::Login(_)) || token.is_empty() {
            return;
        }
        match self
            .request::<serde_json::Value>(
                reqwest::Method::POST,
                "auth/token/revoke-self",
                token,
                None,
            )
            .await
        {
            Ok(_) => log::debug("Revoked a Vault token this process obtained", &[]),
            Err(e) => log::debug(
                "Could not revoke a Vault token this process obtained; it expires with its TTL",
                &[("error", &e.to_string())],
            ),
        }
    }

    /// At the end of the process: revokes the token obtained by logging in, if any.
    pub(super) async fn release(&self) {
        let held = self.state.lock().await.take();
        if let Some(h) = held {
            self.revoke(&h.token).await;
        }
    }

    /// One request with the transport's retries.
    async fn request<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, VaultError> {
        self.transport.request(&method, path, token, body).await.0
    }
}
