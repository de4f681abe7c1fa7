//! The plugin's transport, in one place: where it listens, what it announces in the handshake
//! (`network|address`), the connections it accepts, what it leaves behind, and how it treats
//! Ctrl-C. On Unix this is a socket file, as go-plugin uses there. go-plugin on Windows
//! listens on TCP loopback instead; a Windows build would add that as a second implementation
//! of the items below (`TcpListener` on `127.0.0.1:0`, network `tcp`, nothing to remove),
//! and nothing outside this file would change.

use std::path::PathBuf;

use tokio::net::{UnixListener, UnixStream};

/// One accepted connection.
pub type Conn = UnixStream;

/// Accepted connections, as tonic's plaintext server takes them.
pub type Incoming = tokio_stream::wrappers::UnixListenerStream;

/// The listening endpoint Terraform connects to.
pub struct PluginListener {
    listener: UnixListener,
    path: PathBuf,
}

/// What the listener leaves behind (the socket file), removed on drop or by [`Leftover::remove`].
#[derive(Clone)]
pub struct Leftover(PathBuf);

impl Leftover {
    /// Removes it now (the process is about to exit).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl PluginListener {
    /// Listens on a fresh socket in `PLUGIN_UNIX_SOCKET_DIR` (go-plugin's setting), else the
    /// temporary directory.
    pub fn bind() -> Result<(PluginListener, Leftover), String> {
        let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!("plugin-apim-{}-{nanos}", std::process::id()));
        let listener = UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        Ok((
            PluginListener {
                listener,
                path: path.clone(),
            },
            Leftover(path),
        ))
    }

    /// go-plugin's network name for the handshake line and the reattach configuration.
    pub fn network(&self) -> &'static str {
        "unix"
    }

    /// The address Terraform connects to.
    pub fn address(&self) -> String {
        self.path.display().to_string()
    }

    /// The next connection.
    pub async fn accept(&self) -> std::io::Result<Conn> {
        self.listener.accept().await.map(|(sock, _)| sock)
    }

    /// Every connection, for a plaintext (h2c) server.
    pub fn incoming(self) -> Incoming {
        tokio_stream::wrappers::UnixListenerStream::new(self.listener)
    }
}

impl Drop for Leftover {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Ctrl-C reaches the whole process group; Terraform answers it with StopProvider, so the
/// signal itself is swallowed here (as go-plugin does).
pub fn ignore_interrupts() {
    if let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                crate::log::debug("interrupt ignored; waiting for StopProvider", &[]);
            }
        });
    }
}
