//! The go-plugin handshake and transport, as Terraform's plugin client expects them:
//! magic cookie, protocol 6, the listener of [`super::listener`] (a unix socket), AutoMTLS (or plaintext h2c when Terraform runs
//! with `TF_DISABLE_PLUGIN_TLS`), one handshake line on stdout, and a prompt exit on
//! `GRPCController.Shutdown`.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use tonic::transport::Server;

use crate::framework::resource::Provider;
use crate::log;
use crate::server::proto::plugin::grpc_broker_server::GrpcBrokerServer;
use crate::server::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::server::proto::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::server::proto::tfplugin6::provider_server::ProviderServer;

use super::listener::{ignore_interrupts, Conn, PluginListener};
use super::plugin::{Broker, Controller, Stdio};
use super::service::ProviderService;
use super::tls;

/// The environment variable Terraform sets to prove it launched the plugin.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Its value for Terraform providers.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The provider's source address, used in debug mode's reattach configuration.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/apimvault/apim";
/// The plugin protocol major version served.
pub const PROTOCOL_VERSION: u32 = 6;
/// gRPC message limit in both directions (Terraform allows more; 256 MiB is ample).
pub const MAX_MESSAGE: usize = 256 << 20;

/// How the process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeMode {
    /// Launched by Terraform.
    Managed,
    /// Started by a developer; prints `TF_REATTACH_PROVIDERS` and serves plaintext.
    Debug,
}

/// A hint for people who run the binary by hand.
pub const NOT_A_PROGRAM: &str =
    "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically (for this provider: terraform).\n\
To debug the provider, run it with --debug and set TF_REATTACH_PROVIDERS as it tells you.";

/// Serves `provider` until Terraform shuts it down. Returns the process exit code.
pub async fn serve<P: Provider>(provider: P, mode: ServeMode) -> i32 {
    if mode == ServeMode::Managed
        && std::env::var(MAGIC_COOKIE_KEY).as_deref() != Ok(MAGIC_COOKIE_VALUE)
    {
        eprintln!("{NOT_A_PROGRAM}");
        return 1;
    }
    if mode == ServeMode::Managed {
        if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
            if !versions.split(',').any(|v| v.trim() == "6") {
                log::warn(
                    "Terraform did not offer protocol 6; this provider speaks only 6 (Terraform >= 1.0)",
                    &[("offered", &versions)],
                );
            }
        }
    }
    match run(provider, mode).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("terraform-provider-apim: {e}");
            1
        }
    }
}

async fn run<P: Provider>(provider: P, mode: ServeMode) -> Result<(), String> {
    let (listener, leftover) = PluginListener::bind()?;
    let client_cert = match mode {
        ServeMode::Managed => std::env::var("PLUGIN_CLIENT_CERT")
            .ok()
            .filter(|c| !c.trim().is_empty()),
        ServeMode::Debug => None,
    };
    let started = std::time::Instant::now();
    let server_tls = client_cert.as_deref().map(tls::server_tls).transpose()?;
    log::debug(
        "TLS configuration ready",
        &[("elapsed_us", &started.elapsed().as_micros().to_string())],
    );

    let shutdown = Arc::new(Notify::new());
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let service = Arc::new(ProviderService::new(provider));
    let router = Server::builder()
        .add_service(health_svc)
        .add_service(
            ProviderServer::from_arc(service.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(Stdio))
        .add_service(GrpcBrokerServer::new(Broker));

    match mode {
        ServeMode::Managed => {
            let cert = server_tls
                .as_ref()
                .map(|t| base64::engine::general_purpose::STANDARD_NO_PAD.encode(&t.cert_der))
                .unwrap_or_default();
            announce(&format!(
                "1|{PROTOCOL_VERSION}|{}|{}|grpc|{cert}",
                listener.network(),
                listener.address()
            ))?;
            ignore_interrupts();
        }
        ServeMode::Debug => announce(&reattach_line(&listener))?,
    }

    let stop = {
        let shutdown = shutdown.clone();
        let leftover = leftover.clone();
        async move {
            match mode {
                ServeMode::Managed => shutdown.notified().await,
                ServeMode::Debug => {
                    tokio::select! {
                        _ = shutdown.notified() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
            }
            log::debug("shutting down", &[]);
            // What the provider obtained (a Vault login's token) is given back first.
            service.shutdown(Duration::from_millis(1000)).await;
            // Graceful shutdown ends when Terraform closes its connection; should it not,
            // the process still exits well inside go-plugin's 2 s grace period.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                leftover.remove();
                std::process::exit(0);
            });
        }
    };

    let served = match server_tls {
        Some(t) => {
            router
                .serve_with_incoming_shutdown(tls_incoming(listener, t.config), stop)
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(listener.incoming(), stop)
                .await
        }
    };
    drop(leftover);
    served.map_err(|e| format!("gRPC server failed: {e}"))
}

/// Writes the one line stdout ever carries, and flushes it.
fn announce(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot write the handshake to stdout: {e}"))
}

/// Debug mode's instructions: the reattach configuration for Terraform.
fn reattach_line(listener: &PluginListener) -> String {
    let cfg = serde_json::json!({
        PROVIDER_ADDRESS: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": {"Network": listener.network(), "String": listener.address()},
        }
    });
    format!(
        "Provider started in debug mode. To attach Terraform, set in your shell:\n\n\tTF_REATTACH_PROVIDERS='{cfg}'\n"
    )
}

/// Accepts connections and completes their TLS handshakes concurrently; refused clients
/// (wrong certificate) are logged and dropped.
fn tls_incoming(
    listener: PluginListener,
    config: Arc<rustls::ServerConfig>,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsConn, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let sock = match listener.accept().await {
                Ok(sock) => sock,
                Err(e) => {
                    log::warn("accept failed", &[("error", &e.to_string())]);
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(sock).await {
                    Ok(s) => {
                        let _ = tx.send(Ok(TlsConn(s))).await;
                    }
                    Err(e) => log::warn("TLS handshake refused", &[("error", &e.to_string())]),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A TLS connection over the plugin's transport, as tonic's server wants it.
pub struct TlsConn(TlsStream<Conn>);

impl Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
