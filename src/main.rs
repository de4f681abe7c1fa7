//! The `terraform-provider-apim` binary: Terraform launches it and speaks tfplugin6 to it.
//! `--debug` starts it by hand for a debugger, printing the `TF_REATTACH_PROVIDERS` value.

use apim_provider::provider::ApimProvider;
use apim_provider::server::{serve, ServeMode};

fn main() {
    let mode = match std::env::args().nth(1).as_deref() {
        None => ServeMode::Managed,
        Some("--debug") => ServeMode::Debug,
        Some("--version") => {
            eprintln!("terraform-provider-apim {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some(other) => {
            eprintln!(
                "terraform-provider-apim: unknown argument {other:?}\n\n{}",
                apim_provider::server::handshake::NOT_A_PROGRAM
            );
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-apim: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(serve(ApimProvider::new(), mode));
    std::process::exit(code);
}
