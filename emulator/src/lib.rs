//! apim-emulator: a local HTTPS emulator of Azure Resource Manager for `Microsoft.ApiManagement`
//! (api-version 2024-05-01), Entra ID token and discovery endpoints, and the managed-identity
//! token endpoint, for acceptance tests, demos and offline CI. See README.md for the interface.

#![warn(missing_docs)]

pub mod arm;
pub mod cli;
pub mod control;
pub mod der;
pub mod entra;
pub mod faults;
pub mod gateway;
pub mod jwt;
pub mod msi;
pub mod pipelines;
pub mod profile;
pub mod server;
pub mod store;
pub mod tls;
pub mod util;
pub mod xml;

use crate::faults::Faults;
use crate::server::App;
use crate::store::{Keys, Seed, State};
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// A started emulator.
pub struct Running {
    /// Shared state.
    pub app: Arc<App>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// The first-line document.
    pub fn info(&self) -> Value {
        self.app.info()
    }

    /// Stops accepting connections and waits for the accept loops to end.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

fn load_state(cfg: &cli::Config) -> Result<(State, jwt::Signer), String> {
    if let Some(path) = cfg.state_file.as_ref().filter(|p| p.exists()) {
        let st = State::load(path)?;
        let der =
            util::b64_decode(&st.keys.signing_key_pkcs8).ok_or("state file: bad signing key")?;
        let signer = jwt::Signer::from_pkcs8(&der)?;
        if cfg.seed.is_some() {
            eprintln!(
                "apim-emulator: {} exists; --seed is ignored",
                path.display()
            );
        }
        return Ok((st, signer));
    }
    let seed = match &cfg.seed {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str::<Seed>(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Seed::default_world(),
    };
    let signer = jwt::Signer::generate()?;
    let keys = Keys {
        signing_key_pkcs8: util::b64(&signer.pkcs8()),
        ca_key_pem: tls::new_ca_key_pem()?,
    };
    Ok((seed.build(keys, 1)?, signer))
}

/// Builds the state (from the state file, the seed or the default world), writes `ca.pem`, binds
/// the listener and starts serving.
pub async fn start(cfg: &cli::Config) -> Result<Running, String> {
    let (mut state, signer) = load_state(cfg)?;
    if cfg.azure_profile && cfg.lro_polls.is_none() {
        // Long-running writes answer InProgress twice, 2 s apart (Retry-After), as named
        // values and fragments take several seconds in Azure.
        state.settings.lro_polls = 2;
        state.settings.lro_retry_after = 2;
    }
    if let Some(n) = cfg.lro_polls {
        state.settings.lro_polls = n;
    }
    let tls = tls::build(&state.keys.ca_key_pem, &[])?;
    let tls_dir = match &cfg.tls_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "apim-emulator-{}-{}",
            std::process::id(),
            util::short_id()
        )),
    };
    std::fs::create_dir_all(&tls_dir).map_err(|e| format!("{}: {e}", tls_dir.display()))?;
    let ca_file: PathBuf = tls_dir.join("ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).map_err(|e| format!("{}: {e}", ca_file.display()))?;

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = format!("https://{host}:{}", addr.port());
    let (gw_plain, gw_tls, gateway) = gateway_listeners(cfg, &tls.ca_pem).await?;

    let app = Arc::new(App {
        url,
        ca_file,
        signer,
        state: Mutex::new(state),
        state_file: cfg.state_file.clone(),
        faults: Faults::default(),
        log: Mutex::new(VecDeque::new()),
        ratelimit: AtomicU64::new(0),
        log_requests: std::env::var("APIM_EMULATOR_LOG_REQUESTS").is_ok_and(|v| v == "1"),
        gateway,
        speed: crate::profile::Speed::new(if cfg.azure_profile {
            crate::profile::Profile::azure()
        } else {
            crate::profile::Profile::default()
        }),
    });
    {
        let st = faults::lock(&app.state);
        app.persist(&st);
    }
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config);
    let tasks = vec![
        tokio::spawn(server::serve(
            app.clone(),
            listener,
            acceptor.clone(),
            stopped(rx.clone()),
        )),
        tokio::spawn(gateway::serve(
            app.clone(),
            gw_plain,
            None,
            stopped(rx.clone()),
        )),
        tokio::spawn(gateway::serve(
            app.clone(),
            gw_tls,
            Some(acceptor),
            stopped(rx),
        )),
    ];
    Ok(Running {
        app,
        stop: Some(tx),
        tasks,
    })
}

/// The gateway's listeners (plain HTTP at `--gateway-listen`, HTTPS on another free port of
/// the same address) and its state, trusting the emulator's CA and the `--gateway-ca` files.
async fn gateway_listeners(
    cfg: &cli::Config,
    ca_pem: &str,
) -> Result<
    (
        tokio::net::TcpListener,
        tokio::net::TcpListener,
        gateway::Gateway,
    ),
    String,
> {
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let plain = bind(cfg.gateway_listen).await?;
    let secure = bind(std::net::SocketAddr::new(cfg.gateway_listen.ip(), 0)).await?;
    let url_of = |l: &tokio::net::TcpListener, scheme: &str| -> Result<String, String> {
        let a = l.local_addr().map_err(|e| e.to_string())?;
        let host = if a.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            a.ip().to_string()
        };
        Ok(format!("{scheme}://{host}:{}", a.port()))
    };
    let mut roots = vec![ca_pem.as_bytes().to_vec()];
    for f in &cfg.gateway_ca {
        roots.push(std::fs::read(f).map_err(|e| format!("--gateway-ca {}: {e}", f.display()))?);
    }
    let gw = gateway::Gateway::new(url_of(&plain, "http")?, url_of(&secure, "https")?, &roots)?;
    Ok((plain, secure, gw))
}
