#![allow(
    clippy::print_stdout,
    reason = "cargo reads build-script directives from stdout"
)]
//! Compiles the vendored protocol definitions in `proto/` without a system `protoc`:
//! `protox` parses them into a descriptor set, `tonic-prost-build` generates the code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/tfplugin6.proto", "proto/plugin.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        // Clients are for tests only; they connect through a channel the test builds.
        .build_transport(false)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
