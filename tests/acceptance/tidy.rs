//! The architecture invariants of ARCHITECTURE.md, checked by reading the source.

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

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
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
