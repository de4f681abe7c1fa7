//! The binaries `scripts/setup` installs, and the Terraform version matrix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Terraform version `scripts/setup` installs; every test case runs against it.
pub const PRIMARY_TERRAFORM_VERSION: &str = "1.15.5";

/// Paths of the tools installed by `scripts/setup` into `$APIM_TOOLS_DIR`
/// (default `<repo>/.tools`).
#[derive(Debug)]
pub struct Tools {
    /// The Terraform 1.15.5 launcher (`bin/terraform`).
    pub terraform: PathBuf,
    /// The OpenBao server and CLI (`bin/bao`).
    pub bao: PathBuf,
    /// A directory holding HashiCorp's `terraform-provider-null_v2.1.2_x4`, usable as a
    /// `dev_overrides` target for `registry.terraform.io/hashicorp/null`.
    pub null_provider_dir: PathBuf,
    /// PostgreSQL's server bin dir (`pg_ctl`, `initdb`, `postgres`), when setup found one.
    pub pg_bin: Option<PathBuf>,
}

impl Tools {
    /// The installed tools. Panics with "run scripts/setup first" when one is missing.
    pub fn get() -> &'static Tools {
        static TOOLS: OnceLock<Tools> = OnceLock::new();
        TOOLS.get_or_init(Tools::locate)
    }

    fn locate() -> Tools {
        let root = match std::env::var_os("APIM_TOOLS_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools"),
        };
        let require = |path: PathBuf| -> PathBuf {
            if !path.exists() {
                panic!(
                    "{} is missing: run scripts/setup first (tools folder {}, set APIM_TOOLS_DIR to use another)",
                    path.display(),
                    root.display()
                );
            }
            path
        };
        let terraform = require(root.join("bin/terraform"));
        let bao = require(root.join("bin/bao"));
        let null_provider_dir = require(root.join("null-provider"));
        let has_null = std::fs::read_dir(&null_provider_dir)
            .map(|entries| {
                entries.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with("terraform-provider-null")
                })
            })
            .unwrap_or(false);
        if !has_null {
            panic!(
                "{} holds no terraform-provider-null*: run scripts/setup first",
                null_provider_dir.display()
            );
        }
        let pg_bin = std::env::var("APIM_PG_BIN")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| env_file_value(&root.join("env"), "APIM_PG_BIN"))
            .map(PathBuf::from)
            .filter(|dir| dir.join("pg_ctl").exists());
        Tools {
            terraform,
            bao,
            null_provider_dir,
            pg_bin,
        }
    }
}

/// Reads `export NAME='value'` from the sourceable env file `scripts/setup` writes.
fn env_file_value(file: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let prefix = format!("export {name}=");
    text.lines().find_map(|line| {
        let value = line.strip_prefix(&prefix)?;
        let value = value.trim().trim_matches('\'').trim_matches('"');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// One Terraform CLI of the version matrix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerraformBin {
    pub path: PathBuf,
    /// e.g. "1.15.5"
    pub version: String,
}

impl TerraformBin {
    /// The Terraform 1.15.5 launcher installed by `scripts/setup`.
    pub fn primary() -> TerraformBin {
        terraform_versions()[0].clone()
    }

    /// Asks a binary for its version (`terraform version -json`).
    pub fn probe(path: &Path) -> Option<TerraformBin> {
        let output = Command::new(path)
            .args(["version", "-json"])
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        let version = json.get("terraform_version")?.as_str()?.to_string();
        Some(TerraformBin {
            path: path.to_path_buf(),
            version,
        })
    }

    /// (major, minor, patch) of `version`; missing parts are 0.
    pub fn version_tuple(&self) -> (u32, u32, u32) {
        parse_version(&self.version)
    }
}

pub(crate) fn parse_version(v: &str) -> (u32, u32, u32) {
    let mut parts = v
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The Terraform CLIs every test case runs against: always the 1.15.5 launcher from
/// `scripts/setup`, plus a `terraform` 1.11.x found on `PATH` unless `APIM_TEST_TF_MATRIX=0`.
pub fn terraform_versions() -> &'static [TerraformBin] {
    static VERSIONS: OnceLock<Vec<TerraformBin>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        let tools = Tools::get();
        let primary = TerraformBin::probe(&tools.terraform).unwrap_or_else(|| {
            panic!(
                "{} does not answer `version -json`: run scripts/setup again",
                tools.terraform.display()
            )
        });
        assert_eq!(
            primary.version,
            PRIMARY_TERRAFORM_VERSION,
            "{} is Terraform {}, expected {}: run scripts/setup again",
            tools.terraform.display(),
            primary.version,
            PRIMARY_TERRAFORM_VERSION
        );
        let mut versions = vec![primary];
        if std::env::var("APIM_TEST_TF_MATRIX").as_deref() != Ok("0") {
            let ours = std::fs::canonicalize(&tools.terraform).ok();
            let mut seen = Vec::new();
            let path_var = std::env::var_os("PATH").unwrap_or_default();
            for dir in std::env::split_paths(&path_var) {
                let candidate = dir.join("terraform");
                let Ok(real) = std::fs::canonicalize(&candidate) else {
                    continue;
                };
                if Some(&real) == ours.as_ref() || seen.contains(&real) {
                    continue;
                }
                seen.push(real);
                if let Some(bin) = TerraformBin::probe(&candidate) {
                    let (major, minor, _) = bin.version_tuple();
                    if (major, minor) == (1, 11) {
                        versions.push(bin);
                        break;
                    }
                }
            }
        }
        versions
    })
}
