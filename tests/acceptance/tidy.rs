//! The architecture invariants of ARCHITECTURE.md, and the tests' conventions (a test file
//! per Terraform type, a reason on every silenced lint), checked by reading the source.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn src() -> PathBuf {
    root().join("src")
}

/// Lines of code (not comments) in `dir` that contain any of `needles`.
fn offenders(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for f in rust_files(&src().join(dir)) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|n| mentions(code, n)) {
                out.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    out
}

/// `code` contains `needle` as a whole word at its start (`print!` is not `eprint!`).
fn mentions(code: &str, needle: &str) -> bool {
    code.match_indices(needle).any(|(i, _)| {
        code[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

#[test]
fn only_the_server_knows_the_protocol() {
    for dir in ["framework", "resources", "clients"] {
        let bad = offenders(
            dir,
            &[
                "tonic::",
                "prost::",
                "rmpv::",
                "crate::proto",
                "crate::server",
            ],
        );
        assert!(
            bad.is_empty(),
            "{dir}/ must not use the protocol layer:\n{}",
            bad.join("\n")
        );
    }
    for f in ["provider.rs", "docs.rs"] {
        let text = std::fs::read_to_string(src().join(f)).unwrap();
        assert!(
            !text.contains("crate::server") && !text.contains("tonic::"),
            "{f} uses the protocol layer"
        );
    }
}

#[test]
fn clients_know_nothing_of_terraform() {
    let bad = offenders(
        "clients",
        &["crate::framework", "crate::resources", "crate::provider"],
    );
    assert!(
        bad.is_empty(),
        "clients/ must not import Terraform layers:\n{}",
        bad.join("\n")
    );
}

#[test]
fn stdout_belongs_to_the_handshake() {
    let bad = offenders("", &["println!", "print!(", "dbg!(", "std::io::stdout"]);
    let bad: Vec<_> = bad
        .into_iter()
        .filter(|l| !l.contains("src/server/handshake.rs"))
        .collect();
    assert!(
        bad.is_empty(),
        "only the handshake writes to stdout:\n{}",
        bad.join("\n")
    );
}

/// A type reads and writes its values through its model: no string key into a `Value` in
/// `resources/` or the provider block (a misspelt key reads null or is dropped silently).
#[test]
fn types_use_their_models_not_string_keys() {
    const VALUE_READS: &[&str] = &[
        ".as_str()",
        ".as_i64()",
        ".as_bool()",
        ".as_list()",
        ".as_map()",
        ".is_null()",
        ".is_unknown()",
        ".string_list()",
    ];
    let mut bad = offenders("resources", &[".set(\"", "get_mut(\"", "empty_value()"]);
    for f in rust_files(&src().join("resources"))
        .into_iter()
        .chain([src().join("provider.rs")])
    {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let by_key = code.match_indices(".get(\"").any(|(at, _)| {
                let rest = &code[at..];
                let after = rest.find(')').map_or("", |close| &rest[close + 1..]);
                VALUE_READS.iter().any(|r| after.starts_with(r))
            });
            if by_key {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "read and write values through the type's model (framework::model), not by key:\n{}",
        bad.join("\n")
    );
}

/// The provider block builds the per-process context and the types use it: `resources/`
/// never imports `provider.rs`, so the registry and the types do not import each other.
#[test]
fn types_do_not_import_the_provider_block() {
    let bad = offenders("resources", &["crate::provider"]);
    assert!(
        bad.is_empty(),
        "resources/ takes ProviderData from crate::context:\n{}",
        bad.join("\n")
    );
}

/// Each Terraform type has its acceptance tests in a file named after it: every
/// `src/resources/vault_*.rs` (or `src/resources/vault_*/` folder) has a
/// `tests/acceptance/vault_*.rs` of the same name, declared in `main.rs`.
#[test]
fn every_vault_type_has_a_test_file_of_its_name() {
    let tests = root().join("tests/acceptance");
    let main = std::fs::read_to_string(tests.join("main.rs")).unwrap();
    let mut types = Vec::new();
    for entry in std::fs::read_dir(src().join("resources")).unwrap() {
        let path = entry.unwrap().path();
        let name = if path.is_dir() {
            path.file_name()
        } else if path.extension().is_some_and(|e| e == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name.and_then(|n| n.to_str()) {
            if name.starts_with("vault_") {
                types.push(name.to_string());
            }
        }
    }
    assert!(
        !types.is_empty(),
        "no src/resources/vault_*: this check looks in the wrong place"
    );
    let missing: Vec<_> = types
        .iter()
        .filter(|t| {
            !tests.join(format!("{t}.rs")).is_file()
                || !main.lines().any(|l| l.trim() == format!("mod {t};"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "types without a test file of their name (tests/acceptance/<type>.rs, declared in main.rs): {missing:?}"
    );
}

/// The attributes in `text` that silence lints (`allow`, `expect`, also under `cfg_attr`)
/// without a `reason = "..."`, as `line: attribute`. Attributes are read from the start of a
/// line (where rustfmt puts them) to their closing bracket.
fn silenced_without_reason(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start();
        let Some(body) = first
            .strip_prefix("#![")
            .or_else(|| first.strip_prefix("#["))
        else {
            i += 1;
            continue;
        };
        // The attribute's text up to its closing bracket, across lines; brackets in string
        // literals do not count.
        let (start, mut attr, mut depth, mut in_string, mut escaped) =
            (i, String::new(), 1, false, false);
        let mut rest = body.to_string();
        'lines: loop {
            for c in rest.chars() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_string => escaped = true,
                    '"' => in_string = !in_string,
                    '[' if !in_string => depth += 1,
                    ']' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            break 'lines;
                        }
                    }
                    _ => {}
                }
                attr.push(c);
            }
            i += 1;
            match lines.get(i) {
                Some(next) => {
                    attr.push(' ');
                    rest = next.trim().to_string();
                }
                None => break,
            }
        }
        i += 1;
        let compact: String = attr.split_whitespace().collect();
        let silences = ["allow(", "expect("].iter().any(|a| {
            compact.starts_with(a) || (compact.starts_with("cfg_attr(") && compact.contains(a))
        });
        if silences && !compact.contains("reason=\"") {
            out.push(format!("{}: #[{}]", start + 1, attr.trim()));
        }
    }
    out
}

#[test]
fn silenced_lints_say_why() {
    // src/ and emulator/ are checked as well: none of their `allow`s lacks a reason today.
    let mut bad = Vec::new();
    for dir in ["src", "tests", "emulator"] {
        for f in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&f).unwrap();
            let file = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
            for hit in silenced_without_reason(&text) {
                bad.push(format!("{file}:{hit}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "lint attributes without `reason = \"...\"`:\n{}",
        bad.join("\n")
    );
}

#[test]
fn silenced_lints_are_found_however_they_are_written() {
    let text = "fn a() {}\n#[allow(dead_code)]\nfn b() {}\n#![allow(\n    clippy::x,\n    reason = \"why [not]\"\n)]\n#[cfg_attr(test, expect(unused))]\n#[expect(unused, reason = \"r\")]\n#[derive(Debug)]\n#[allow(clippy::y, reason = \"a ] in a reason\")]\n";
    assert_eq!(
        silenced_without_reason(text),
        [
            "2: #[allow(dead_code)]",
            "8: #[cfg_attr(test, expect(unused))]"
        ]
    );
}

/// The plugin's transport (unix socket, its signals) stays in `server/listener.rs`, so a TCP
/// loopback listener for Windows is an addition to that one file.
#[test]
fn the_plugin_transport_stays_behind_its_seam() {
    let bad = offenders(
        "",
        &[
            "UnixListener",
            "UnixStream",
            "tokio::signal::unix",
            "\"unix\"",
        ],
    );
    let bad: Vec<_> = bad
        .into_iter()
        .filter(|l| !l.contains("src/server/listener.rs"))
        .collect();
    assert!(
        bad.is_empty(),
        "only server/listener.rs knows the transport:\n{}",
        bad.join("\n")
    );
}
