//! The command-line contract: `--help`, the exact first line, and a clean exit on SIGTERM.

mod common;

use serde_json::Value;
use std::process::Command;

#[test]
fn help_and_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_apim-emulator"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--listen")
            && text.contains("--tls-dir")
            && text.contains("--state-file")
            && text.contains("--seed")
    );
    let out = Command::new(env!("CARGO_BIN_EXE_apim-emulator"))
        .arg("--nope")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn first_line_has_exactly_the_documented_keys_and_sigterm_stops() {
    let mut emu = common::Emu::start();
    let mut keys: Vec<&str> = emu
        .info
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_management_id",
            "ca_file",
            "client_id",
            "client_secret",
            "gateway_https_url",
            "gateway_url",
            "principal_id",
            "resource_group",
            "subscription_id",
            "tenant_id",
            "url"
        ]
    );
    assert!(emu.url.starts_with("https://127.0.0.1:"));
    assert!(std::path::Path::new(&emu.s("ca_file")).ends_with("ca.pem"));
    assert!(emu
        .info
        .as_object()
        .expect("object")
        .values()
        .all(Value::is_string));
    let info = emu
        .http
        .get(format!("{}/_emulator/info", emu.url))
        .send()
        .expect("info")
        .json::<Value>()
        .expect("json");
    assert_eq!(info, emu.info);
    let status = Command::new("kill")
        .args(["-TERM", &emu.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = emu.wait();
    assert_eq!(code, Some(0), "SIGTERM ends the emulator cleanly");
}
