//! `apim_vault_audit` against a real OpenBao and a real collector: a TCP listener run by
//! the test receives the audit entries of a binding's runtime flow (the APIM identity's JWT
//! login with an emulator-minted managed-identity token, then its read of the bound secret),
//! with secrets and tokens only as HMAC-SHA256 values.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fixtures::{provider_at, provider_with_vault, read_policy, vault_at};
use crate::support::{run, Bao, Collector, Emulator, Step, TestCase};

/// OpenBao accepts API-created audit devices only with this switch (test servers only).
const ALLOW_API_AUDIT: &str = "unsafe_allow_api_audit_creation = true";

const AUDIENCE: &str = "api://vault-apim";
const JWT_MOUNT: &str = "apim-jwt";
const ROLE: &str = "orders-api";
const SECRET_PATH: &str = "secret/data/orders/backend-key";

/// The Vault side of a binding, as the quickstart sets it up: a JWT auth mount trusting the
/// emulator's Entra discovery, a role bound to the APIM instance's managed identity, and a
/// KV v2 secret. The policy granting the read is managed by Terraform (in the config).
fn setup_binding(bao: &Bao, emu: &Emulator, secret_value: &str) {
    bao.trust_emulator(emu, JWT_MOUNT);
    bao.emulator_role(
        emu,
        JWT_MOUNT,
        ROLE,
        AUDIENCE,
        json!({"token_policies": ["orders-reader"], "token_ttl": "15m"}),
    );
    bao.api_ok(
        "POST",
        SECRET_PATH,
        Some(json!({"data": {"api_key": secret_value}})),
    );
}

/// The policy the role's tokens get, managed by Terraform next to the audit device.
fn policy() -> String {
    read_policy("orders", "orders-reader", "secret/data/orders/*")
}

/// What the APIM gateway does at request time: a managed-identity token from the instance
/// metadata endpoint, a JWT login, a read of the bound secret. Answers (jwt, client token).
fn binding_flow(bao: &Bao, emu: &Emulator, secret_value: &str) -> (String, String) {
    let jwt = emu.managed_identity_token(AUDIENCE);

    // The gateway has no Vault token: a plain client, not the root-token helper.
    let http = reqwest::blocking::Client::new();
    let login: Value = http
        .post(format!("{}/v1/auth/{JWT_MOUNT}/login", bao.addr()))
        .json(&json!({"role": ROLE, "jwt": jwt}))
        .send()
        .expect("JWT login")
        .json()
        .expect("JWT login answer");
    let token = login["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login refused: {login}"))
        .to_string();
    let read: Value = http
        .get(format!("{}/v1/{SECRET_PATH}", bao.addr()))
        .header("X-Vault-Token", &token)
        .send()
        .expect("secret read")
        .json()
        .expect("secret read answer");
    assert_eq!(read["data"]["data"]["api_key"], secret_value, "{read}");
    (jwt, token)
}

/// `hmac-sha256:<hex>` of `input` with the salt of the device at `path` (`sys/audit-hash`).
fn audit_hash(bao: &Bao, path: &str, input: &str) -> String {
    let v = bao.api_ok(
        "PUT",
        &format!("sys/audit-hash/{path}"),
        Some(json!({ "input": input })),
    );
    v["data"]["hash"]
        .as_str()
        .or(v["hash"].as_str())
        .unwrap_or_else(|| panic!("no hash: {v}"))
        .to_string()
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn find<'v>(entries: &'v [Value], kind: &str, path: &str) -> Option<&'v Value> {
    entries
        .iter()
        .find(|e| e["type"] == kind && e["request"]["path"] == path)
}

fn has_flow(lines: &[String]) -> bool {
    let entries: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    find(&entries, "response", &format!("auth/{JWT_MOUNT}/login")).is_some()
        && find(&entries, "response", SECRET_PATH).is_some()
}

/// What `read` answers once it holds the flow's entries, or after 15 s (for the assertions to
/// say what is missing).
fn wait_for_flow(read: impl Fn() -> Vec<String>) -> Vec<String> {
    let start = Instant::now();
    loop {
        let lines = read();
        if has_flow(&lines) || start.elapsed() > Duration::from_secs(15) {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The entries of the flow are there, with the token, the JWT and the secret only as the
/// device's HMAC values.
fn assert_flow_audited(
    bao: &Bao,
    principal: &str,
    device: &str,
    lines: &[String],
    jwt: &str,
    token: &str,
    secret: &str,
) {
    let text = lines.join("\n");
    for (what, clear) in [
        ("secret value", secret),
        ("client token", token),
        ("JWT", jwt),
    ] {
        assert!(
            !text.contains(clear),
            "the {what} appears in clear in the audit entries:\n{text}"
        );
    }
    let entries = parse(lines);
    let login_path = format!("auth/{JWT_MOUNT}/login");
    let login = find(&entries, "response", &login_path).expect("login response entry");
    assert_eq!(login["request"]["operation"], "update", "{login}");
    assert_eq!(
        login["auth"]["client_token"],
        audit_hash(bao, device, token),
        "{login}"
    );
    assert_eq!(
        login["auth"]["metadata"]["role"], ROLE,
        "the role is logged in clear: {login}"
    );
    // `user_claim = "oid"`: the APIM identity's principal, in clear, names the login.
    assert_eq!(
        login["auth"]["display_name"],
        format!("{JWT_MOUNT}-{principal}"),
        "{login}"
    );
    assert!(
        login["auth"]["policies"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "orders-reader")),
        "{login}"
    );
    let login_req = find(&entries, "request", &login_path).expect("login request entry");
    assert_eq!(
        login_req["request"]["data"]["jwt"],
        audit_hash(bao, device, jwt)
    );

    let read = find(&entries, "response", SECRET_PATH).expect("read response entry");
    assert_eq!(read["request"]["operation"], "read", "{read}");
    assert_eq!(
        read["request"]["client_token"],
        audit_hash(bao, device, token),
        "{read}"
    );
    assert_eq!(
        read["response"]["data"]["data"]["api_key"],
        audit_hash(bao, device, secret),
        "{read}"
    );
    assert!(
        read["auth"]["policies"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "orders-reader")),
        "{read}"
    );
    if std::env::var("APIM_TEST_SHOW_AUDIT").as_deref() == Ok("1") {
        for e in [login_req, login, read] {
            eprintln!("audit entry: {e}");
        }
    }
}

/// The device at `path` as OpenBao lists it, or `None`.
fn device(bao: &Bao, path: &str) -> Option<Value> {
    let list = bao.api_ok("GET", "sys/audit", None);
    list["data"].get(format!("{path}/")).cloned()
}

fn socket_config(bao: &Bao, collector: &str) -> String {
    format!(
        r#"{}{}
resource "apim_vault_audit" "siem" {{
  type        = "socket"
  path        = "to-siem"
  description = "Vault events to the SIEM collector"
  options = {{
    address     = "{collector}"
    socket_type = "tcp"
    format      = "json"
  }}
}}
"#,
        provider_at(bao),
        policy()
    )
}

#[test]
fn vault_audit_socket_collector() {
    let bao = Bao::start_with_config(ALLOW_API_AUDIT);
    let emu = Emulator::start();
    let collector = Collector::start();
    let other = Collector::start();
    let secret = format!("orders-backend-key-{}", std::process::id());
    setup_binding(&bao, &emu, &secret);
    let config = socket_config(&bao, &collector.addr);
    run(TestCase::new(vec![
        Step::config(config.clone()).check(|wd| {
            let state = wd.resource("apim_vault_audit.siem");
            assert_eq!(state["id"], "to-siem");
            assert_eq!(state["local"], false);
            assert_eq!(state["allow_raw_secrets"], false);
            let dev = device(&bao, "to-siem").expect("device enabled");
            assert_eq!(dev["type"], "socket");
            assert_eq!(dev["options"]["address"], collector.addr.as_str());
            let from = collector.count();
            let (jwt, token) = binding_flow(&bao, &emu, &secret);
            let lines = collector.wait_since(from, has_flow);
            assert_flow_audited(&bao, emu.principal_id(), "to-siem", &lines, &jwt, &token, &secret);

            // A refused login (a token for another audience) and a denied read reach the
            // SIEM too. The login's reason is response data, so it is hashed; the ACL
            // denial is the entry's own `error`, in clear.
            let from = collector.count();
            let wrong = emu.managed_identity_token("api://another-app");
            let http = reqwest::blocking::Client::new();
            let status = http
                .post(format!("{}/v1/auth/{JWT_MOUNT}/login", bao.addr()))
                .json(&json!({"role": ROLE, "jwt": wrong}))
                .send()
                .expect("JWT login")
                .status();
            assert_eq!(status.as_u16(), 400);
            let status = http
                .get(format!("{}/v1/secret/data/payments/db", bao.addr()))
                .header("X-Vault-Token", &token)
                .send()
                .expect("secret read")
                .status();
            assert_eq!(status.as_u16(), 403);
            let login_path = format!("auth/{JWT_MOUNT}/login");
            let denied_path = "secret/data/payments/db";
            let lines = collector.wait_since(from, |l| {
                let e = parse(l);
                find(&e, "response", &login_path).is_some()
                    && find(&e, "response", denied_path).is_some()
            });
            let entries = parse(&lines);
            let refused = find(&entries, "response", &login_path).unwrap();
            assert!(refused["auth"]["client_token"].is_null(), "{refused}");
            assert!(
                refused["response"]["data"]["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("hmac-sha256:")),
                "{refused}"
            );
            let denied = find(&entries, "response", denied_path).unwrap();
            assert!(
                denied["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("permission denied")),
                "{denied}"
            );
            assert!(!lines.join("\n").contains(&wrong), "the refused JWT appears in clear");
            assert!(!lines.join("\n").contains(&token), "the token appears in clear");
            if std::env::var("APIM_TEST_SHOW_AUDIT").as_deref() == Ok("1") {
                eprintln!("audit entry: {refused}");
                eprintln!("audit entry: {denied}");
            }
        }),
        Step::import("apim_vault_audit.siem"),
        // Disabled out of band: the next apply enables it again.
        Step::drift(|| {
            bao.api_ok("DELETE", "sys/audit/to-siem", None);
        })
        .plan_contains("apim_vault_audit.siem will be created"),
        Step::config(config.clone()).check(|_| {
            assert!(device(&bao, "to-siem").is_some());
        }),
        // Enabled again out of band with another collector: a replacement.
        Step::drift(|| {
            bao.api_ok("DELETE", "sys/audit/to-siem", None);
            bao.api_ok(
                "PUT",
                "sys/audit/to-siem",
                Some(json!({"type": "socket", "description": "Vault events to the SIEM collector",
                    "options": {"address": other.addr, "socket_type": "tcp", "format": "json"}})),
            );
        })
        .plan_contains("apim_vault_audit.siem must be replaced")
        .plan_contains("# forces replacement"),
        Step::config(config.clone()).check(|_| {
            let dev = device(&bao, "to-siem").expect("device enabled");
            assert_eq!(dev["options"]["address"], collector.addr.as_str());
        }),
        // Options the configuration does not set are the server's business: no diff, and
        // so no replacement (the device keeps its extra option).
        Step::config(config.clone())
            .pre_config(|| {
                bao.api_ok("DELETE", "sys/audit/to-siem", None);
                bao.api_ok(
                    "PUT",
                    "sys/audit/to-siem",
                    Some(json!({"type": "socket", "description": "Vault events to the SIEM collector",
                        "options": {"address": collector.addr, "socket_type": "tcp", "format": "json",
                            "elide_list_responses": "false"}})),
                );
            })
            .check(|_| {
                let dev = device(&bao, "to-siem").expect("device enabled");
                assert_eq!(dev["options"]["elide_list_responses"], "false");
            }),
    ])
    .check_destroy(|| assert_eq!(device(&bao, "to-siem"), None)));
}

#[test]
fn vault_audit_file() {
    let bao = Bao::start_with_config(ALLOW_API_AUDIT);
    let emu = Emulator::start();
    let secret = format!("orders-file-key-{}", std::process::id());
    setup_binding(&bao, &emu, &secret);
    let log = bao.dir().join("audit.log");
    let config = |allow_raw: bool| {
        format!(
            r#"{}{}
resource "apim_vault_audit" "file" {{
  type = "file"
  options = {{
    file_path     = "{}"
    hmac_accessor = "true"
  }}
  allow_raw_secrets = {allow_raw}
}}
"#,
            provider_at(&bao),
            policy(),
            log.display()
        )
    };
    // The device's salt: the same hash of a fixed input means the same device.
    let salt_probe = std::cell::RefCell::new(String::new());
    run(TestCase::new(vec![
        Step::config(config(false)).check(|wd| {
            *salt_probe.borrow_mut() = audit_hash(&bao, "file", "probe");
            let state = wd.resource("apim_vault_audit.file");
            // `path` defaults to the type.
            assert_eq!(state["path"], "file");
            assert_eq!(state["id"], "file");
            assert!(state["description"].is_null(), "{state}");
            assert!(device(&bao, "file").is_some());
            let before = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count();
            let (jwt, token) = binding_flow(&bao, &emu, &secret);
            let lines = wait_for_flow(|| {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines().skip(before).map(str::to_string).collect()
            });
            assert_flow_audited(
                &bao,
                emu.principal_id(),
                "file",
                &lines,
                &jwt,
                &token,
                &secret,
            );
        }),
        Step::import("apim_vault_audit.file").import_id("file"),
        // `allow_raw_secrets` is the provider's own check: it changes in place, and the
        // device (and so its salt) stays.
        Step::config(config(true)).check(|wd| {
            assert_eq!(
                wd.resource("apim_vault_audit.file")["allow_raw_secrets"],
                true
            );
            assert_eq!(audit_hash(&bao, "file", "probe"), *salt_probe.borrow());
        }),
    ])
    .check_destroy(|| assert_eq!(device(&bao, "file"), None)));
}

#[test]
fn vault_audit_refused_by_server_names_declarative_alternative() {
    // OpenBao's default: no API-created audit devices.
    let bao = Bao::start();
    let config = format!(
        r#"{}
resource "apim_vault_audit" "siem" {{
  type        = "file"
  path        = "to-siem"
  description = "SIEM"
  options = {{
    file_path = "/var/log/openbao/audit.log"
  }}
}}
"#,
        provider_at(&bao)
    );
    run(TestCase::new(vec![
        Step::config(config.clone()).expect_error(
            "audit \"file\" \"to-siem\" { description = \"SIEM\" options { file_path = \"/var/log/openbao/audit.log\" } }",
        ),
        Step::config(config).expect_error("`unsafe_allow_api_audit_creation = true` in the server configuration"),
    ]));
    assert_eq!(device(&bao, "to-siem"), None);
}

#[test]
fn vault_audit_bad_input() {
    let bao = Bao::start_with_config(ALLOW_API_AUDIT);
    let resource = |body: &str| {
        format!(
            "{}\nresource \"apim_vault_audit\" \"a\" {{\n{body}\n}}\n",
            provider_at(&bao)
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            resource("  type = \"file\"\n  options = {\n    file_path = \"/tmp/x.log\"\n    log_raw = \"true\"\n  }"),
            "`log_raw = \"true\"` makes Vault write every secret value, token and password in clear to this audit device, and so to the SIEM",
        ),
        (
            resource("  type = \"file\"\n  options = {\n    file_path = \"/tmp/x.log\"\n    log_raw = \"1\"\n  }"),
            "set `allow_raw_secrets = true` to acknowledge this",
        ),
        (
            resource("  type = \"kafka\"\n  options = {\n    address = \"a:1\"\n  }"),
            "`type` is \"kafka\", which is not one of: \"file\", \"socket\", \"syslog\"",
        ),
        (
            resource("  type = \"file\"\n  options = {\n    hmac_accessor = \"yes\"\n  }"),
            "Vault reads it as a boolean",
        ),
        (
            resource("  type = \"socket\"\n  path = \"/siem/\""),
            "`path` is \"/siem/\": it starts with `/`",
        ),
        (
            resource("  type = \"socket\"\n  path = \"siem\""),
            "A `socket` audit device needs `options.address`",
        ),
    ];
    for (config, expected) in &cases {
        run(TestCase::new(vec![
            Step::config(config.clone()).expect_error(expected)
        ]));
    }
    // A token without `sudo` is told which capabilities audit devices need.
    bao.write_policy(
        "no-sudo",
        "path \"sys/audit\" { capabilities = [\"read\"] }\npath \"sys/audit/*\" { capabilities = [\"create\", \"update\", \"delete\"] }",
    );
    let weak = bao.create_token(json!({"policies": ["no-sudo"]}));
    run(TestCase::new(vec![Step::config(format!(
        "{}\nresource \"apim_vault_audit\" \"a\" {{\n  type = \"file\"\n  options = {{\n    file_path = \"{}\"\n  }}\n}}\n",
        provider_with_vault(&vault_at(bao.addr(), &weak)),
        bao.dir().join("weak.log").display()
    ))
    .expect_error("Audit devices need a token with `sudo`")]));

    // A device that exists already is not adopted: the error says to import it.
    let taken = bao.dir().join("taken.log");
    bao.api_ok(
        "PUT",
        "sys/audit/taken",
        Some(json!({"type": "file", "options": {"file_path": taken.display().to_string()}})),
    );
    run(TestCase::new(vec![Step::config(resource(&format!(
        "  type = \"file\"\n  path = \"taken\"\n  options = {{\n    file_path = \"{}\"\n  }}",
        bao.dir().join("other.log").display()
    )))
    .expect_error(
        "terraform import apim_vault_audit.<name> taken",
    )]));
    assert_eq!(
        device(&bao, "taken").expect("still there")["options"]["file_path"],
        taken.display().to_string()
    );
}

/// A syslog device: OpenBao writes to the local syslog socket `/dev/log`, which this test
/// plays (the machines here run no syslog daemon), so the entries can be checked like the
/// collector's.
#[test]
fn vault_audit_syslog() {
    use std::os::unix::net::UnixDatagram;
    use std::sync::{Arc, Mutex};
    let path = std::path::Path::new("/dev/log");
    if path.exists() {
        eprintln!("audit: /dev/log belongs to this machine's syslog daemon; the syslog device is checked where there is none (CI)");
        return;
    }
    let socket = match UnixDatagram::bind(path) {
        Ok(s) => s,
        Err(e) => {
            panic!("cannot play syslog at /dev/log ({e}): run as root where no syslog daemon runs")
        }
    };
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file("/dev/log");
        }
    }
    let _cleanup = Remove;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    // `<priority>date tag[pid]: {json}`: keep the JSON entry.
                    if let Some(i) = msg.find('{') {
                        received
                            .lock()
                            .unwrap()
                            .push(msg[i..].trim_end().to_string());
                    }
                }
            }
        })
    };
    let bao = Bao::start_with_config(ALLOW_API_AUDIT);
    let emu = Emulator::start();
    let secret = format!("orders-syslog-key-{}", std::process::id());
    setup_binding(&bao, &emu, &secret);
    let config = format!(
        "{}{}\nresource \"apim_vault_audit\" \"syslog\" {{\n  type = \"syslog\"\n  options = {{\n    tag      = \"vault-apim\"\n    facility = \"AUTH\"\n  }}\n}}\n",
        provider_at(&bao),
        policy()
    );
    run(TestCase::new(vec![
        Step::config(config).check(|wd| {
            assert_eq!(wd.resource("apim_vault_audit.syslog")["path"], "syslog");
            let before = received.lock().unwrap().len();
            let (jwt, token) = binding_flow(&bao, &emu, &secret);
            let lines = wait_for_flow(|| received.lock().unwrap()[before..].to_vec());
            assert_flow_audited(
                &bao,
                emu.principal_id(),
                "syslog",
                &lines,
                &jwt,
                &token,
                &secret,
            );
        }),
        Step::import("apim_vault_audit.syslog").import_id("syslog"),
    ])
    .check_destroy(|| assert_eq!(device(&bao, "syslog"), None)));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.join();
}
