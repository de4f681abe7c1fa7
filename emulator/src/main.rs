//! `apim-emulator`: see `--help` and README.md.

use apim_emulator::cli::{self, Command, HELP};
use std::io::Write as _;
use std::process::ExitCode;

/// Writes to stdout: the help text, the version, or the one JSON line describing the emulator.
#[allow(
    clippy::print_stdout,
    reason = "stdout carries exactly the first-line JSON (or --help/--version)"
)]
fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cfg = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::Help) => {
            stdout_line(HELP.trim_end());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            stdout_line(concat!("apim-emulator ", env!("CARGO_PKG_VERSION")));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("apim-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let running = match apim_emulator::start(&cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("apim-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    stdout_line(&running.info().to_string());
    eprintln!("apim-emulator: serving on {}", running.app.url);
    shutdown_signal().await;
    eprintln!("apim-emulator: shutting down");
    running.stop().await;
    ExitCode::SUCCESS
}
