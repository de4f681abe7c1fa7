//! One Terraform working directory: configuration, local state and a CLI configuration whose
//! `dev_overrides` point Terraform at the provider binary under test.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::process::{run_captured, tail};
use super::tools::{TerraformBin, Tools};

/// Source address of the provider under test, as written in `required_providers`.
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/apimvault/apim";

/// Environment variable prefixes not passed on from the test process to Terraform (and so
/// to the provider), keeping tests independent of the developer's shell.
const SCRUBBED_PREFIXES: &[&str] = &[
    "TF_",
    "VAULT_",
    "BAO_",
    "ARM_",
    "AZURE_",
    "APIM_VAULT_",
    // A CI system's OIDC request settings (GitHub Actions, Azure Pipelines).
    "ACTIONS_ID_TOKEN_",
    "SYSTEM_ACCESSTOKEN",
    "SYSTEM_OIDCREQUESTURI",
];

/// The directory holding the provider binary under test.
pub fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-apim"))
        .parent()
        .expect("provider binary has a parent directory")
        .to_path_buf()
}

/// What one Terraform command did.
#[derive(Clone, Debug)]
pub struct TfOutput {
    /// The command line as run, e.g. `terraform plan -no-color -input=false`.
    pub command: String,
    pub dir: PathBuf,
    /// Terraform version that ran it.
    pub version: String,
    /// Exit code; -1 when killed by a signal or the timeout.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl TfOutput {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with the whole command report unless the exit code is 0.
    #[track_caller]
    pub fn expect_success(self) -> TfOutput {
        if !self.success() {
            panic!("Terraform command failed:\n{self}");
        }
        self
    }

    /// stderr followed by stdout.
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stderr, self.stdout)
    }
}

impl fmt::Display for TfOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.timed_out {
            format!("TIMED OUT after {:.1} s", self.elapsed.as_secs_f64())
        } else {
            format!(
                "exit code {} after {:.1} s",
                self.code,
                self.elapsed.as_secs_f64()
            )
        };
        writeln!(f, "$ {}", self.command)?;
        writeln!(
            f,
            "  (Terraform {} in {}): {how}",
            self.version,
            self.dir.display()
        )?;
        writeln!(f, "--- stderr ---")?;
        writeln!(f, "{}", tail(self.stderr.trim_end(), 24 * 1024))?;
        writeln!(f, "--- stdout ---")?;
        writeln!(f, "{}", tail(self.stdout.trim_end(), 24 * 1024))?;
        write!(f, "--------------")
    }
}

/// A temporary Terraform working directory bound to one Terraform CLI.
///
/// Its CLI configuration (`dev.tfrc`, via `TF_CLI_CONFIG_FILE`) overrides
/// `registry.terraform.io/apimvault/apim` with the provider binary under test and
/// `registry.terraform.io/hashicorp/null` with HashiCorp's null provider, so no `init` is
/// needed. `HOME` is a folder inside the working directory, and inherited `TF_*`, `VAULT_*`,
/// `BAO_*`, `ARM_*`, `AZURE_*` variables are not passed on: set what a test needs with
/// [`Workdir::env`].
pub struct Workdir {
    tf: TerraformBin,
    path: PathBuf,
    /// The directory, removed on drop (`None` with `APIM_TEST_KEEP=1`).
    _temp: Option<tempfile::TempDir>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl Workdir {
    pub fn new(tf: &TerraformBin) -> Workdir {
        let tools = Tools::get();
        let mut builder = tempfile::Builder::new();
        builder.prefix("apim-acc-");
        let temp = match std::env::var_os("APIM_TEST_TMPDIR") {
            Some(base) if !base.is_empty() => {
                std::fs::create_dir_all(&base).expect("create APIM_TEST_TMPDIR");
                builder.tempdir_in(base)
            }
            _ => builder.tempdir(),
        }
        .expect("create a temporary working directory");
        let path = temp.path().to_path_buf();
        std::fs::create_dir_all(path.join("home")).expect("create HOME folder");

        let quote = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote path");
        let tfrc = format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = {}\n    \"registry.terraform.io/hashicorp/null\" = {}\n  }}\n  direct {{}}\n}}\n",
            quote(&provider_dir()),
            quote(&tools.null_provider_dir),
        );
        std::fs::write(path.join("dev.tfrc"), tfrc).expect("write dev.tfrc");

        let timeout = std::env::var("APIM_TEST_TF_TIMEOUT")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(300));

        let keep = std::env::var("APIM_TEST_KEEP").as_deref() == Ok("1");
        let temp = if keep {
            eprintln!("acceptance: keeping working directory {}", path.display());
            let _ = temp.keep();
            None
        } else {
            Some(temp)
        };
        Workdir {
            tf: tf.clone(),
            path,
            _temp: temp,
            env: Vec::new(),
            timeout,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets an environment variable for every Terraform command (and so for the provider).
    pub fn env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Workdir {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Sets every variable of `vars` (e.g. `bao.env()` chained with `emu.env()`).
    pub fn envs(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> &mut Workdir {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// The variables set with [`Workdir::env`].
    pub fn env_vars(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// Writes `main.tf`.
    pub fn write_config(&self, hcl: &str) {
        self.write_file("main.tf", hcl);
    }

    /// Writes a file relative to the working directory.
    pub fn write_file(&self, name: &str, contents: &str) {
        let file = self.path.join(name);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create parent folder");
        }
        std::fs::write(&file, contents).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    }

    /// Runs `terraform <args>` here. `-no-color` (and `-input=false` where Terraform accepts
    /// it) is added after the subcommand. Never panics on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> TfOutput {
        let mut full: Vec<String> = Vec::with_capacity(args.len() + 2);
        if let Some((sub, rest)) = args.split_first() {
            full.push(sub.to_string());
            if matches!(
                *sub,
                "plan"
                    | "apply"
                    | "destroy"
                    | "import"
                    | "init"
                    | "refresh"
                    | "show"
                    | "validate"
                    | "output"
                    | "console"
                    | "graph"
                    | "query"
            ) && !rest.contains(&"-no-color")
            {
                full.push("-no-color".into());
            }
            if matches!(
                *sub,
                "plan" | "apply" | "destroy" | "import" | "init" | "refresh"
            ) && !rest.iter().any(|a| a.starts_with("-input"))
            {
                full.push("-input=false".into());
            }
            full.extend(rest.iter().map(|s| s.to_string()));
        }

        let mut cmd = Command::new(&self.tf.path);
        cmd.args(&full).current_dir(&self.path);
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
        cmd.env("HOME", self.path.join("home"))
            .env("TF_CLI_CONFIG_FILE", self.path.join("dev.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        if let Ok(level) = std::env::var("APIM_TEST_TF_LOG") {
            if !level.is_empty() {
                cmd.env("TF_LOG", level);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }

        let command = format!("terraform {}", shell_words(&full));
        match run_captured(cmd, self.timeout) {
            Ok(c) => TfOutput {
                command,
                dir: self.path.clone(),
                version: self.tf.version.clone(),
                code: c.code.unwrap_or(-1),
                stdout: c.stdout,
                stderr: c.stderr,
                timed_out: c.timed_out,
                elapsed: c.elapsed,
            },
            Err(e) => panic!(
                "cannot start {} ({command}) in {}: {e}",
                self.tf.path.display(),
                self.path.display()
            ),
        }
    }

    /// Runs `terraform <args>` and panics with the full report unless it exits 0.
    #[track_caller]
    pub fn run_ok(&self, args: &[&str]) -> TfOutput {
        self.run(args).expect_success()
    }

    /// `terraform apply -auto-approve` (result returned, not checked).
    pub fn apply(&self) -> TfOutput {
        self.run(&["apply", "-auto-approve"])
    }

    /// `terraform plan -detailed-exitcode` (with `-refresh=false` unless `refresh`):
    /// 0 = no changes, 2 = changes. Panics with the report on an error (exit code 1).
    #[track_caller]
    pub fn plan(&self, refresh: bool) -> i32 {
        let out = self.plan_output(refresh);
        if out.code != 0 && out.code != 2 {
            panic!("terraform plan failed:\n{out}");
        }
        out.code
    }

    /// `terraform plan -detailed-exitcode` (with `-refresh=false` unless `refresh`), with its
    /// output.
    pub fn plan_output(&self, refresh: bool) -> TfOutput {
        if refresh {
            self.run(&["plan", "-detailed-exitcode"])
        } else {
            self.run(&["plan", "-detailed-exitcode", "-refresh=false"])
        }
    }

    /// `terraform show -json` of the current state.
    #[track_caller]
    pub fn show_json(&self) -> Value {
        let out = self.run_ok(&["show", "-json"]);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`terraform show -json` printed no JSON ({e}):\n{out}"))
    }

    /// The `values` of one resource or data source in state (`"apim_vault_policy.p"`,
    /// `"data.apim_vault_lease.l"`, `"module.m.x.y"`, `"x.y[0]"`). Panics when absent.
    #[track_caller]
    pub fn resource(&self, address: &str) -> Value {
        let state = self.show_json();
        match find_resource(&state, address) {
            Some(r) => r.get("values").cloned().unwrap_or(Value::Null),
            None => panic!(
                "{address} is not in the state of {}; the state has: [{}]",
                self.path.display(),
                resource_addresses(&state).join(", ")
            ),
        }
    }

    /// Like [`Workdir::resource`], `None` when the address is not in state.
    pub fn try_resource(&self, address: &str) -> Option<Value> {
        let state = self.show_json();
        find_resource(&state, address).map(|r| r.get("values").cloned().unwrap_or(Value::Null))
    }

    /// Every resource and data source address in state.
    pub fn resource_addresses(&self) -> Vec<String> {
        resource_addresses(&self.show_json())
    }

    /// Root module outputs from state: `{name: value}`.
    pub fn outputs(&self) -> Value {
        let state = self.show_json();
        let mut map = serde_json::Map::new();
        if let Some(outputs) = state.pointer("/values/outputs").and_then(Value::as_object) {
            for (name, o) in outputs {
                map.insert(name.clone(), o.get("value").cloned().unwrap_or(Value::Null));
            }
        }
        Value::Object(map)
    }

    /// `terraform import <address> <id>` (result returned, not checked).
    pub fn import(&self, address: &str, id: &str) -> TfOutput {
        self.run(&["import", address, id])
    }

    /// `terraform destroy -auto-approve` (result returned, not checked).
    pub fn destroy(&self) -> TfOutput {
        self.run(&["destroy", "-auto-approve"])
    }

    /// The raw `terraform.tfstate` (empty when there is none yet), e.g. to prove a secret
    /// never reaches state.
    pub fn state_raw(&self) -> String {
        std::fs::read_to_string(self.path.join("terraform.tfstate")).unwrap_or_default()
    }
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@[]".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn all_resources(state: &Value) -> Vec<&Value> {
    fn walk<'v>(module: &'v Value, out: &mut Vec<&'v Value>) {
        if let Some(rs) = module.get("resources").and_then(Value::as_array) {
            out.extend(rs);
        }
        if let Some(children) = module.get("child_modules").and_then(Value::as_array) {
            for c in children {
                walk(c, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(root) = state.pointer("/values/root_module") {
        walk(root, &mut out);
    }
    out
}

fn find_resource<'v>(state: &'v Value, address: &str) -> Option<&'v Value> {
    all_resources(state)
        .into_iter()
        .find(|r| r.get("address").and_then(Value::as_str) == Some(address))
}

fn resource_addresses(state: &Value) -> Vec<String> {
    all_resources(state)
        .into_iter()
        .filter_map(|r| r.get("address").and_then(Value::as_str).map(String::from))
        .collect()
}
