//! The gateway: requests to `{gateway_url}/{api path}/{rest}` are matched to an API of the
//! instance and to one of its operations, checked against its subscriptions, run through the
//! effective policy (global ← product ← API ← operation, fragments, named values) and forwarded to the API's `serviceUrl`. See README.md.
//!
//! - `handler`: one request: instance, API, subscription key, context, answer, log entry.
//! - `pipeline` and `policies`: executing the policy statements; `http` the calls they make
//!   (`send-request`, `forward-request`); `identity` managed-identity tokens; `cache`.
//! - `document`, `compose`, `instance`: the documents and what the store holds about them;
//!   `scopes`: operation matching and products.
//! - `telemetry`: what `trace`, `emit-metric` and `log-to-eventhub` emitted, with content.
//! - `rules`: the documented rules (the table) and their save-time check; `expr`: expressions.

pub mod cache;
pub mod compose;
pub mod context;
pub mod document;
pub mod expr;
mod handler;
mod http;
mod identity;
pub mod instance;
pub mod log;
mod pipeline;
mod policies;
pub mod rules;
pub mod scopes;
pub mod telemetry;

use crate::server::App;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Managed-identity tokens by (instance, client id, resource): token and expiry.
type TokenCache = Mutex<HashMap<(String, String, String), (String, i64)>>;

/// The gateway's shared state.
pub struct Gateway {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `https://127.0.0.1:<port>` (the emulator's certificate).
    pub https_url: String,
    /// The internal cache of every instance.
    pub cache: cache::Cache,
    /// The request log.
    pub log: log::Log,
    /// What `trace`, `emit-metric` and `log-to-eventhub` emitted.
    pub telemetry: telemetry::Telemetry,
    client: reqwest::Client,
    client_follow: reqwest::Client,
    /// Managed-identity tokens.
    tokens: TokenCache,
}

fn client(roots: &[Vec<u8>], follow: bool) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(if follow {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .connect_timeout(Duration::from_secs(10));
    for pem in roots {
        let certs =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("gateway CA: {e}"))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("gateway HTTP client: {e}"))
}

impl Gateway {
    /// A gateway answering at `url`/`https_url`, trusting the given CA certificates (PEM) for
    /// https backends and `send-request` targets.
    pub fn new(url: String, https_url: String, roots: &[Vec<u8>]) -> Result<Gateway, String> {
        Ok(Gateway {
            url,
            https_url,
            cache: cache::Cache::default(),
            log: log::Log::default(),
            telemetry: telemetry::Telemetry::default(),
            client: client(roots, false)?,
            client_follow: client(roots, true)?,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Forgets every managed-identity token held (as when they expire, or after their lifetime
    /// setting or the identity changed): the next `authentication-managed-identity` asks the
    /// endpoint again.
    pub fn forget_tokens(&self) {
        crate::faults::lock(&self.tokens).clear();
    }
}

/// Serves the gateway on `listener` (TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("apim-emulator: gateway accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => connection(app, peer, TokioIo::new(stream), true).await,
                    Err(e) => {
                        eprintln!("apim-emulator: gateway TLS handshake with {peer} failed: {e}")
                    }
                },
                None => connection(app, peer, TokioIo::new(tcp), false).await,
            }
        });
    }
}

async fn connection<S>(app: Arc<App>, peer: SocketAddr, io: TokioIo<S>, https: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(handler::handle(app, peer, req, https).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, svc)
        .await
    {
        eprintln!("apim-emulator: gateway connection from {peer}: {e}");
    }
}
