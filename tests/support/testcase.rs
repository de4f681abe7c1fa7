//! Test cases made of steps, with the semantics of terraform-plugin-testing's
//! `resource.Test`:
//!
//! * config step: `pre_config`; write the config; `plan -out`; `apply` of that plan; then
//!   `plan -refresh=false` and `plan` must both be empty (unless `expect_non_empty_plan`);
//!   then `check`. With `expect_error`, the plan or the apply must fail with that text
//!   instead, and the step ends there.
//! * import step: a fresh working directory with the same config, `terraform import`, then
//!   the imported resource's attributes must equal the previous step's, except
//!   `import_verify_ignore`; then `check` (given the import working directory).
//! * drift step: `pre_config` changes the remote object out of band; `plan` with refresh
//!   must then exit 2 (changes), its text containing every `drift_plan_contains`; then
//!   `check`. Follow it with a config step to prove that apply repairs the drift.
//!
//! After the last step: `destroy` (must succeed), then `check_destroy`. A failing step still
//! destroys what was created before the failure is reported.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use serde_json::Value;

use super::contains_normalized;
use super::tools::{terraform_versions, TerraformBin};
use super::workdir::{TfOutput, Workdir};

/// A closure run before a step (out-of-band changes) or after destroy.
pub type Hook<'a> = Box<dyn Fn() + 'a>;
/// A closure checking the working directory after a step.
pub type Check<'a> = Box<dyn Fn(&Workdir) + 'a>;

/// A sequence of steps run against every Terraform of [`terraform_versions`].
#[derive(Default)]
pub struct TestCase<'a> {
    pub steps: Vec<Step<'a>>,
    /// Runs after the final `destroy`: proves the remote objects are gone.
    pub check_destroy: Option<Hook<'a>>,
    /// Environment for every Terraform command (and so the provider), e.g. [`super::Bao::env`].
    pub env: Vec<(String, String)>,
}

impl<'a> TestCase<'a> {
    pub fn new(steps: Vec<Step<'a>>) -> TestCase<'a> {
        TestCase {
            steps,
            ..TestCase::default()
        }
    }

    pub fn check_destroy(mut self, f: impl Fn() + 'a) -> Self {
        self.check_destroy = Some(Box::new(f));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(vars);
        self
    }
}

/// One step of a [`TestCase`]. Its kind: an import step when `import_resource` is set, a
/// drift step when `drift` is set, a config step otherwise.
#[derive(Default)]
pub struct Step<'a> {
    /// HCL for `main.tf`. Required for config steps; import and drift steps reuse the
    /// previous step's config when `None`.
    pub config: Option<String>,
    /// Runs first (out-of-band changes).
    pub pre_config: Option<Hook<'a>>,
    /// Runs last, given the working directory (the import one for import steps).
    pub check: Option<Check<'a>>,
    /// The plan or apply must fail, its output containing this text (compared with
    /// whitespace and Terraform's diagnostic framing normalized).
    pub expect_error: Option<&'a str>,
    /// The post-apply plans are expected to be non-empty.
    pub expect_non_empty_plan: bool,

    /// Import step: the resource address to import.
    pub import_resource: Option<&'a str>,
    /// Import ID; default: the resource's `id` in the previous state.
    pub import_id: Option<String>,
    /// Attribute paths (dotted: `a`, `a.b`, `list.0.x`) not compared after import.
    pub import_verify_ignore: Vec<&'a str>,

    /// Drift step: `pre_config` changed the remote object; the refresh plan must be non-empty.
    pub drift: bool,
    /// Texts the drift plan must contain.
    pub drift_plan_contains: Vec<&'a str>,
}

impl<'a> Step<'a> {
    /// A config step.
    pub fn config(hcl: impl Into<String>) -> Step<'a> {
        Step {
            config: Some(hcl.into()),
            ..Step::default()
        }
    }

    /// An import step for `address` (ID from the previous state's `id` unless set).
    pub fn import(address: &'a str) -> Step<'a> {
        Step {
            import_resource: Some(address),
            ..Step::default()
        }
    }

    /// A drift step: `change` alters the remote object out of band.
    pub fn drift(change: impl Fn() + 'a) -> Step<'a> {
        Step {
            drift: true,
            pre_config: Some(Box::new(change)),
            ..Step::default()
        }
    }

    pub fn pre_config(mut self, f: impl Fn() + 'a) -> Self {
        self.pre_config = Some(Box::new(f));
        self
    }

    pub fn check(mut self, f: impl Fn(&Workdir) + 'a) -> Self {
        self.check = Some(Box::new(f));
        self
    }

    pub fn expect_error(mut self, text: &'a str) -> Self {
        self.expect_error = Some(text);
        self
    }

    pub fn expect_non_empty_plan(mut self) -> Self {
        self.expect_non_empty_plan = true;
        self
    }

    pub fn import_id(mut self, id: impl Into<String>) -> Self {
        self.import_id = Some(id.into());
        self
    }

    pub fn verify_ignore(mut self, attributes: &[&'a str]) -> Self {
        self.import_verify_ignore.extend_from_slice(attributes);
        self
    }

    pub fn plan_contains(mut self, text: &'a str) -> Self {
        self.drift_plan_contains.push(text);
        self
    }

    fn kind(&self) -> &'static str {
        if self.import_resource.is_some() {
            "import"
        } else if self.drift {
            "drift"
        } else {
            "config"
        }
    }
}

/// Runs `case` against every Terraform of [`terraform_versions`].
pub fn run(case: TestCase<'_>) {
    for tf in terraform_versions() {
        run_with(tf, &case);
    }
}

/// Runs `case` against one Terraform.
pub fn run_with(tf: &TerraformBin, case: &TestCase<'_>) {
    let mut wd = Workdir::new(tf);
    for (k, v) in &case.env {
        wd.env(k, v);
    }
    let total = case.steps.len();
    let mut runner = Runner {
        tf,
        case,
        wd: &wd,
        config: None,
        applied: std::cell::RefCell::new(None),
    };

    let mut failed_at = None;
    let steps = catch_unwind(AssertUnwindSafe(|| {
        for (i, step) in case.steps.iter().enumerate() {
            failed_at = Some((i + 1, step.kind()));
            eprintln!(
                "acceptance: Terraform {}: step {}/{total} ({})",
                tf.version,
                i + 1,
                step.kind()
            );
            runner.step(i + 1, total, step);
        }
        failed_at = None;
    }));

    let applied = runner.applied.borrow().clone();
    match &applied {
        Some(config) => wd.write_config(config),
        // Nothing was ever applied (every step expected an error): nothing to destroy.
        None => wd.write_config(""),
    }
    if let Err(payload) = steps {
        let (n, kind) = failed_at.unwrap_or((0, "?"));
        eprintln!(
            "acceptance: FAILED at step {n}/{total} ({kind}) with Terraform {} in {} \
             (APIM_TEST_KEEP=1 keeps the directory); destroying what was created",
            tf.version,
            wd.path().display()
        );
        let out = wd.destroy();
        if !out.success() {
            eprintln!("acceptance: the cleanup destroy failed too:\n{out}");
        }
        resume_unwind(payload);
    }

    let out = wd.destroy();
    if !out.success() {
        panic!(
            "[Terraform {}] the destroy after the last step failed:\n{out}",
            tf.version
        );
    }
    if let Some(check_destroy) = &case.check_destroy {
        check_destroy();
    }
}

struct Runner<'r, 'a> {
    tf: &'r TerraformBin,
    case: &'r TestCase<'a>,
    wd: &'r Workdir,
    /// The config of the latest step that had one.
    config: Option<String>,
    /// The config of the latest step that applied successfully: destroy runs with it, since
    /// an `expect_error` step may leave an invalid config behind.
    applied: std::cell::RefCell<Option<String>>,
}

impl Runner<'_, '_> {
    fn fail(&self, n: usize, total: usize, kind: &str, message: &str) -> ! {
        panic!(
            "[Terraform {}, step {n}/{total} ({kind})] {message}",
            self.tf.version
        )
    }

    fn step(&mut self, n: usize, total: usize, step: &Step<'_>) {
        if let Some(f) = &step.pre_config {
            f();
        }
        if let Some(hcl) = &step.config {
            self.config = Some(hcl.clone());
        }
        let Some(config) = self.config.clone() else {
            self.fail(n, total, step.kind(), "no config: the first step needs one");
        };
        match step.kind() {
            "import" => self.import_step(n, total, step, &config),
            "drift" => {
                self.wd.write_config(&config);
                self.drift_step(n, total, step)
            }
            _ => {
                self.wd.write_config(&config);
                self.config_step(n, total, step)
            }
        }
    }

    fn config_step(&self, n: usize, total: usize, step: &Step<'_>) {
        let wd = self.wd;
        let fail = |msg: String| -> ! { self.fail(n, total, "config", &msg) };

        let plan = wd.run(&["plan", "-out=tfplan"]);
        if let Some(expected) = step.expect_error {
            let failing = if plan.success() {
                let apply = wd.run(&["apply", "tfplan"]);
                if apply.success() {
                    fail(format!(
                        "expected an error containing {expected:?}, but plan and apply succeeded:\n{plan}\n{apply}"
                    ));
                }
                apply
            } else {
                plan
            };
            if !contains_normalized(&failing.combined(), expected) {
                fail(format!(
                    "expected an error containing {expected:?}, got another error:\n{failing}"
                ));
            }
            let _ = std::fs::remove_file(wd.path().join("tfplan"));
            return;
        }
        if !plan.success() {
            fail(format!("plan failed:\n{plan}"));
        }
        let apply = wd.run(&["apply", "tfplan"]);
        let _ = std::fs::remove_file(wd.path().join("tfplan"));
        if !apply.success() {
            fail(format!("apply failed:\n{apply}"));
        }
        *self.applied.borrow_mut() = self.config.clone();

        let no_refresh = wd.plan_output(false);
        if let Some(e) = plan_error(&no_refresh) {
            fail(e);
        }
        let refresh = wd.plan_output(true);
        if let Some(e) = plan_error(&refresh) {
            fail(e);
        }
        if step.expect_non_empty_plan {
            if no_refresh.code == 0 && refresh.code == 0 {
                fail(format!(
                    "Expected a non-empty plan, but got an empty plan:\n{refresh}"
                ));
            }
        } else if no_refresh.code == 2 {
            fail(format!(
                "After applying this test step, the non-refresh plan was not empty.\n{no_refresh}"
            ));
        } else if refresh.code == 2 {
            fail(format!(
                "After applying this test step, the refresh plan was not empty.\n{refresh}"
            ));
        }

        if let Some(check) = &step.check {
            check(wd);
        }
    }

    fn drift_step(&self, n: usize, total: usize, step: &Step<'_>) {
        let wd = self.wd;
        let fail = |msg: String| -> ! { self.fail(n, total, "drift", &msg) };
        let plan = wd.plan_output(true);
        if let Some(e) = plan_error(&plan) {
            fail(e);
        }
        if plan.code != 2 {
            fail(format!(
                "expected a non-empty plan after the out-of-band change (plan -detailed-exitcode = 2), got {}:\n{plan}",
                plan.code
            ));
        }
        for text in &step.drift_plan_contains {
            if !contains_normalized(&plan.stdout, text) {
                fail(format!("the drift plan does not contain {text:?}:\n{plan}"));
            }
        }
        if let Some(check) = &step.check {
            check(wd);
        }
    }

    fn import_step(&self, n: usize, total: usize, step: &Step<'_>, config: &str) {
        let fail = |msg: String| -> ! { self.fail(n, total, "import", &msg) };
        let address = step.import_resource.expect("import step has an address");
        let previous = self.wd.try_resource(address).unwrap_or_else(|| {
            fail(format!(
                "{address} is not in the previous step's state (it has: [{}])",
                self.wd.resource_addresses().join(", ")
            ))
        });
        let id = if let Some(id) = &step.import_id {
            id.clone()
        } else {
            match previous.get("id").and_then(Value::as_str) {
                Some(id) => id.to_string(),
                None => fail(format!(
                    "{address} has no string `id` attribute in state; set import_id"
                )),
            }
        };

        let mut iwd = Workdir::new(self.tf);
        for (k, v) in &self.case.env {
            iwd.env(k, v);
        }
        iwd.write_config(config);
        let out = iwd.import(address, &id);
        if !out.success() {
            fail(format!("import of {address} with ID {id:?} failed:\n{out}"));
        }
        let imported = iwd.try_resource(address).unwrap_or_else(|| {
            fail(format!(
                "after importing {address} ({id:?}) it is not in the new state (it has: [{}])",
                iwd.resource_addresses().join(", ")
            ))
        });

        let differences = compare_attributes(&previous, &imported, &step.import_verify_ignore);
        if !differences.is_empty() {
            fail(format!(
                "ImportStateVerify: the attributes of {address} imported with ID {id:?} differ from the applied state \
                 (ignore some with import_verify_ignore):\n{}",
                differences.join("\n")
            ));
        }
        if let Some(check) = &step.check {
            check(&iwd);
        }
    }
}

/// A plan with `-detailed-exitcode` succeeded when it exits 0 (empty) or 2 (changes).
fn plan_error(plan: &TfOutput) -> Option<String> {
    (plan.code != 0 && plan.code != 2).then(|| format!("plan failed:\n{plan}"))
}

/// Attribute-by-attribute differences between two `values` objects, flattened to dotted
/// paths; `null` and absent are the same. Paths equal to an ignored one, or below it, are
/// skipped.
pub fn compare_attributes(applied: &Value, imported: &Value, ignore: &[&str]) -> Vec<String> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    flatten("", applied, &mut a);
    flatten("", imported, &mut b);
    let ignored = |key: &str| {
        ignore.iter().any(|i| {
            key == *i || (key.starts_with(i) && key.as_bytes().get(i.len()) == Some(&b'.'))
        })
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for key in keys {
        if ignored(key) {
            continue;
        }
        let left = a.get(key);
        let right = b.get(key);
        if left != right {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "<absent>".into());
            out.push(format!(
                "  {key}: applied = {}, imported = {}",
                show(left),
                show(right)
            ));
        }
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Null => {}
        Value::Object(map) => {
            if !prefix.is_empty() {
                out.insert(format!("{prefix}.%"), map.len().to_string());
            }
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        Value::Array(items) => {
            out.insert(format!("{prefix}.#"), items.len().to_string());
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        scalar => {
            out.insert(prefix.to_string(), scalar.to_string());
        }
    }
}
