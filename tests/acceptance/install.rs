//! The provider installed as users install it, from the artefacts `scripts/release` wrote
//! (`APIM_DIST_DIR`, default `<target dir>/dist`), with the real Terraform and no
//! `dev_overrides`: a filesystem mirror, a provider network mirror over HTTPS, a registry
//! serving the signed release (for `terraform providers mirror`), and the hashes Terraform
//! checks. Every test fails, saying to run `scripts/release`, when the artefacts are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::mirror::{
    assert_lock_matches, cli_config, file_name, filesystem_mirror_block, h1, h1_of_zip,
    network_mirror, network_mirror_block, packed_mirror, parse_sums, repo, sha256_file, sha256_hex,
    zip_entries, Release, StaticHttps, MIRROR_PATH, NAME, PLATFORM, VERSION,
};
use crate::support::{contains_normalized, Bao, Emulator, TerraformBin, TfOutput, Workdir};

/// A configuration that needs only this provider, at the version released.
fn requires_provider() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    apim = {{\n      source  = \"apimvault/apim\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n"
    )
}

/// A fresh working directory for Terraform 1.15.5 whose CLI configuration is `cli` alone
/// (the harness's `dev_overrides` file is removed).
fn fresh_dir(cli: &str) -> Workdir {
    let mut wd = Workdir::new(&TerraformBin::primary());
    std::fs::remove_file(wd.path().join("dev.tfrc")).expect("remove the dev_overrides file");
    wd.write_file("cli.tfrc", cli);
    let config = wd.path().join("cli.tfrc");
    wd.env("TF_CLI_CONFIG_FILE", config);
    wd
}

/// `terraform init` must install the released version (not take a development override).
#[track_caller]
fn init_installs(wd: &Workdir) -> TfOutput {
    let out = wd.run_ok(&["init"]);
    assert!(
        contains_normalized(&out.stdout, &format!("Installed apimvault/apim v{VERSION}")),
        "init did not install the provider:\n{out}"
    );
    assert!(
        !out.combined().contains("development overrides"),
        "a development override is in effect:\n{out}"
    );
    out
}

/// The binary `terraform init` unpacked, which must be the zip's one file, byte for byte.
#[track_caller]
fn assert_installed_from(wd: &Workdir, release: &Release) {
    let dir = wd
        .path()
        .join(".terraform/providers")
        .join(MIRROR_PATH)
        .join(VERSION)
        .join(PLATFORM);
    let installed = dir.join(format!("{NAME}_v{VERSION}"));
    let entries = zip_entries(&release.zip);
    assert_eq!(entries.len(), 1, "the zip holds one file");
    let bytes = std::fs::read(&installed)
        .unwrap_or_else(|e| panic!("{} was not installed: {e}", installed.display()));
    assert!(
        bytes == entries[0].data,
        "{} differs from the zip's file",
        installed.display()
    );
}

#[test]
fn release_artefacts_are_named_and_laid_out_as_the_registry_expects() {
    let release = Release::get();

    // Only this version's four kinds of files, named as GoReleaser names them.
    let prefix = format!("{NAME}_{VERSION}_");
    let mut ours: Vec<String> = std::fs::read_dir(&release.dir)
        .expect("read the dist dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    ours.sort();
    let mut expected = vec![
        format!("{prefix}SHA256SUMS"),
        format!("{prefix}{PLATFORM}.zip"),
        format!("{prefix}manifest.json"),
    ];
    if ours.contains(&format!("{prefix}SHA256SUMS.sig")) {
        expected.push(format!("{prefix}SHA256SUMS.sig"));
    }
    expected.sort();
    assert_eq!(ours, expected, "the files in {}", release.dir.display());

    // The zip holds exactly the binary, executable, named terraform-provider-apim_v<version>.
    let entries = zip_entries(&release.zip);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [format!("{NAME}_v{VERSION}")], "the zip's files");
    let binary = &entries[0];
    assert_eq!(
        binary.mode, 0o100755,
        "the binary's mode in the zip: {:o}",
        binary.mode
    );
    assert!(
        binary.data.starts_with(b"\x7fELF"),
        "the zip's file is not an ELF binary ({} bytes)",
        binary.data.len()
    );

    // SHA256SUMS: one line per zip and the manifest, sorted by name, each the file's digest.
    let text = std::fs::read_to_string(&release.sums).expect("read SHA256SUMS");
    assert!(text.ends_with('\n'), "SHA256SUMS ends with a newline");
    let sums = parse_sums(&text);
    let listed: Vec<&String> = text
        .lines()
        .map(|l| &l[66..])
        .map(|n| sums.keys().find(|k| *k == n).expect("parsed"))
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "SHA256SUMS is sorted by file name");
    assert_eq!(
        sums.keys().cloned().collect::<Vec<_>>(),
        [
            format!("{prefix}{PLATFORM}.zip"),
            format!("{prefix}manifest.json")
        ],
        "the files SHA256SUMS lists"
    );
    for (name, hex) in &sums {
        assert_eq!(
            &sha256_file(&release.dir.join(name)),
            hex,
            "SHA256SUMS's digest of {name}"
        );
    }

    // The manifest is the committed terraform-registry-manifest.json, protocol 6.0.
    let committed =
        std::fs::read(repo().join("terraform-registry-manifest.json")).expect("committed manifest");
    assert_eq!(
        std::fs::read(&release.manifest).expect("read the manifest"),
        committed,
        "the released manifest is a copy of terraform-registry-manifest.json"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&committed).expect("manifest JSON");
    assert_eq!(
        manifest,
        json!({"version": 1, "metadata": {"protocol_versions": ["6.0"]}})
    );

    // The version released has its section in CHANGELOG.md.
    let changelog = std::fs::read_to_string(repo().join("CHANGELOG.md")).expect("CHANGELOG.md");
    assert!(
        changelog
            .lines()
            .any(|l| l.starts_with(&format!("## [{VERSION}]"))),
        "CHANGELOG.md has no section for {VERSION}"
    );
}

/// A throw-away GnuPG home with one RSA signing key.
struct Gpg {
    home: tempfile::TempDir,
    fingerprint: String,
}

impl Gpg {
    #[track_caller]
    fn new() -> Gpg {
        // gpg-agent's socket lives in the home: keep the path short.
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .expect("temp GNUPGHOME");
        let mut gpg = Gpg {
            home,
            fingerprint: String::new(),
        };
        let out = gpg.run(&[
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-generate-key",
            "apim release test <release-test@example.invalid>",
            "rsa3072",
            "sign",
            "1d",
        ]);
        assert!(out.status.success(), "gpg could not make a key: {out:?}");
        let listed = gpg.run(&["--batch", "--with-colons", "--list-secret-keys"]);
        let text = String::from_utf8_lossy(&listed.stdout).into_owned();
        gpg.fingerprint = text
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| f.len() == 40))
            .unwrap_or_else(|| panic!("no fingerprint in gpg's listing:\n{text}"))
            .to_string();
        gpg
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(args)
            .output()
            .expect("run gpg (scripts/setup installs Debian's gnupg)")
    }

    /// The public key, ASCII-armoured.
    fn armored_public_key(&self) -> String {
        let out = self.run(&["--batch", "--armor", "--export", &self.fingerprint]);
        assert!(out.status.success(), "gpg --export: {out:?}");
        String::from_utf8(out.stdout).expect("armour is text")
    }

    /// Whether `sig` is a good signature of `file` by this key.
    fn verifies(&self, sig: &Path, file: &Path) -> bool {
        let out = self.run(&[
            "--batch",
            "--status-fd",
            "1",
            "--verify",
            &sig.to_string_lossy(),
            &file.to_string_lossy(),
        ]);
        let status = String::from_utf8_lossy(&out.stdout);
        out.status.success() && status.contains(&format!("VALIDSIG {}", self.fingerprint))
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// The released binary, taken out of the zip into `dir`.
fn released_binary(release: &Release, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let entry = zip_entries(&release.zip).remove(0);
    let path = dir.join(&entry.name);
    std::fs::write(&path, &entry.data).expect("write the binary");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// `scripts/release --binary <binary> --out <out>` with `env`; panics unless it succeeds.
#[track_caller]
fn package(binary: &Path, out: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(repo().join("scripts/release"));
    cmd.arg("--binary").arg(binary).arg("--out").arg(out);
    cmd.env_remove("APIM_RELEASE_GPG_KEY_ID")
        .env_remove("APIM_RELEASE_GPG_PASSPHRASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run scripts/release");
    assert!(
        output.status.success(),
        "scripts/release failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The released binary packaged again by `scripts/release`, signed with a new key.
fn signed_release(tmp: &Path) -> (Release, Gpg) {
    let release = Release::get();
    let gpg = Gpg::new();
    let binary = released_binary(&release, tmp);
    let out = tmp.join("signed");
    package(
        &binary,
        &out,
        &[
            ("GNUPGHOME", &gpg.home.path().to_string_lossy()),
            ("APIM_RELEASE_GPG_KEY_ID", &gpg.fingerprint),
        ],
    );
    (Release::in_dir(&out), gpg)
}

#[test]
fn release_signs_sha256sums_with_the_key_given() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (signed, gpg) = signed_release(tmp.path());
    let sig = signed.dir.join(format!("{}.sig", file_name(&signed.sums)));
    assert!(sig.is_file(), "no {} was written", sig.display());
    assert!(
        gpg.verifies(&sig, &signed.sums),
        "gpg does not verify {} against SHA256SUMS",
        sig.display()
    );
    // The signature covers the text: a changed SHA256SUMS no longer verifies.
    let tampered = tmp.path().join("tampered");
    let text = std::fs::read_to_string(&signed.sums).expect("read");
    let first = if text.starts_with('0') { "1" } else { "0" };
    let changed = format!("{first}{}", &text[1..]);
    std::fs::write(&tampered, changed).expect("write");
    assert!(
        !gpg.verifies(&sig, &tampered),
        "gpg verifies the signature against a changed SHA256SUMS"
    );
    // Packaging the same binary gives the same zip's contents and a consistent SHA256SUMS.
    let release = Release::get();
    assert_eq!(h1_of_zip(&signed.zip), h1_of_zip(&release.zip));
    for (name, hex) in signed.sums() {
        assert_eq!(sha256_file(&signed.dir.join(&name)), hex, "{name}");
    }

    // Without a key, no signature.
    let unsigned = tmp.path().join("unsigned");
    let binary = released_binary(&release, tmp.path());
    let out = package(&binary, &unsigned, &[]);
    assert!(
        !unsigned
            .join(format!("{NAME}_{VERSION}_SHA256SUMS.sig"))
            .exists(),
        "a signature was written without APIM_RELEASE_GPG_KEY_ID"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("APIM_RELEASE_GPG_KEY_ID is not set"),
        "scripts/release does not say why there is no signature"
    );
}

#[test]
fn packaging_the_same_binary_twice_gives_the_same_bytes() {
    let release = Release::get();
    let tmp = tempfile::tempdir().expect("temp dir");
    let binary = released_binary(&release, tmp.path());
    let pack = |dir: &str, epoch: &str| {
        let out = tmp.path().join(dir);
        package(&binary, &out, &[("SOURCE_DATE_EPOCH", epoch)]);
        Release::in_dir(&out)
    };
    let a = pack("a", "1700000000");
    let b = pack("b", "1700000000");
    for (x, y) in [
        (&a.zip, &b.zip),
        (&a.sums, &b.sums),
        (&a.manifest, &b.manifest),
    ] {
        assert_eq!(
            std::fs::read(x).expect("read"),
            std::fs::read(y).expect("read"),
            "{} differs between two packagings of the same binary",
            file_name(x)
        );
    }
    // The entries' time is SOURCE_DATE_EPOCH (the commit's time by default), so another
    // time gives another zip with the same contents.
    let c = pack("c", "1800000000");
    assert_ne!(
        sha256_file(&a.zip),
        sha256_file(&c.zip),
        "the zip ignores SOURCE_DATE_EPOCH"
    );
    assert_eq!(h1_of_zip(&a.zip), h1_of_zip(&c.zip));
}

#[test]
fn filesystem_mirror_installs_the_release_and_the_quickstart_plans() {
    let release = Release::get();
    let mirror = tempfile::tempdir().expect("temp dir");
    packed_mirror(mirror.path(), &release);
    let mut wd = fresh_dir(&cli_config(&filesystem_mirror_block(mirror.path())));
    let quickstart = std::fs::read_to_string(repo().join("examples/quickstart/main.tf"))
        .expect("examples/quickstart/main.tf");
    wd.write_config(&quickstart);

    init_installs(&wd);
    assert_installed_from(&wd, &release);
    // A filesystem mirror gives Terraform no checksums of its own: it records the h1: hash it
    // computed, which must be the hash of the zip's contents.
    assert_lock_matches(wd.path(), &release, false);

    // The installed provider plans the quickstart against OpenBao and the emulator.
    let bao = Bao::start();
    let emu = Emulator::start();
    emu.create_api("orders-api");
    bao.api_ok(
        "POST",
        "secret/data/orders/backend",
        Some(json!({"data": {"api_key": "installed-from-a-mirror"}})),
    );
    for (k, v) in bao.env().into_iter().chain(emu.env()) {
        wd.env(k, v);
    }
    let ca = std::fs::read_to_string(emu.ca_file()).expect("the emulator's CA");
    wd.env("TF_VAR_api_management_id", emu.api_management_id())
        .env("TF_VAR_tenant_id", emu.tenant_id())
        .env("TF_VAR_discovery_ca_pem", ca);
    let plan = wd.run(&["plan", "-detailed-exitcode"]);
    assert_eq!(plan.code, 2, "the quickstart's plan:\n{plan}");
    for line in [
        "apim_vault_auth_backend.entra will be created",
        "apim_vault_policy.orders will be created",
        "apim_vault_azure_role.orders will be created",
        "apim_vault_binding.orders will be created",
        "Plan: 4 to add, 0 to change, 0 to destroy.",
    ] {
        assert!(
            contains_normalized(&plan.stdout, line),
            "the plan lacks {line:?}:\n{plan}"
        );
    }
    // The role's identity was resolved through ARM at plan time: the provider really ran.
    assert!(
        plan.stdout.contains(emu.principal_id()),
        "the plan does not show the instance's identity {}:\n{plan}",
        emu.principal_id()
    );
}

#[test]
fn network_mirror_over_https_installs_the_release() {
    let release = Release::get();
    let server = StaticHttps::start();
    network_mirror(&server.root(), &release, &[release.zh()]);
    let mut wd = fresh_dir(&cli_config(&network_mirror_block(&server.url())));
    wd.env("SSL_CERT_FILE", server.ca_file());
    wd.write_config(&requires_provider());

    init_installs(&wd);
    assert_installed_from(&wd, &release);
    // Terraform checks the download against the mirror's zh: hash (a wrong one is refused:
    // network_mirror_announcing_a_wrong_hash_is_refused) and records the h1: hash of what it
    // installed; a mirror's hashes are not signed, so no zh: hash goes into the lock file.
    assert_lock_matches(wd.path(), &release, false);
    let requests = server.requests();
    for path in [
        format!("/{MIRROR_PATH}/index.json"),
        format!("/{MIRROR_PATH}/{}", release.zip_name()),
    ] {
        assert!(
            requests.contains(&format!("200 {path}")),
            "Terraform did not fetch {path}: {requests:?}"
        );
    }

    // A second init with the lock file verifies the same package again.
    let out = wd.run_ok(&["init"]);
    assert!(
        contains_normalized(
            &out.stdout,
            &format!("Using previously-installed apimvault/apim v{VERSION}")
        ) || contains_normalized(&out.stdout, &format!("Installed apimvault/apim v{VERSION}")),
        "the second init:\n{out}"
    );
}

#[test]
fn providers_lock_works_against_both_mirrors() {
    let release = Release::get();
    let fs_mirror = tempfile::tempdir().expect("temp dir");
    packed_mirror(fs_mirror.path(), &release);
    let server = StaticHttps::start();
    network_mirror(&server.root(), &release, &[release.zh()]);
    let mut wd = fresh_dir(&cli_config(&filesystem_mirror_block(fs_mirror.path())));
    wd.env("SSL_CERT_FILE", server.ca_file());
    wd.write_config(&requires_provider());
    let lock = wd.path().join(".terraform.lock.hcl");

    let fs = format!("-fs-mirror={}", fs_mirror.path().display());
    wd.run_ok(&["providers", "lock", &fs, &format!("-platform={PLATFORM}")]);
    let hashes = assert_lock_matches(wd.path(), &release, false);
    assert!(
        hashes.contains(&h1_of_zip(&release.zip)),
        "providers lock -fs-mirror: {hashes:?}"
    );

    std::fs::remove_file(&lock).expect("remove the lock file");
    let net = format!("-net-mirror={}", server.url());
    wd.run_ok(&["providers", "lock", &net, &format!("-platform={PLATFORM}")]);
    assert_lock_matches(wd.path(), &release, false);
    let requests = server.requests();
    assert!(
        requests.contains(&format!("200 /{MIRROR_PATH}/{}", release.zip_name())),
        "providers lock -net-mirror did not download the zip: {requests:?}"
    );

    // The lock file written from one mirror is accepted by an init from the other.
    wd.run_ok(&["init"]);
    assert_lock_matches(wd.path(), &release, false);
}

/// Serves the registry protocol for `signed` on `server` (`/v1/providers/...` and the files
/// under `/files/`), announcing `armor` (key `key_id`) as the signing key.
fn registry(server: &StaticHttps, signed: &Release, key_id: &str, armor: &str) {
    let files = server.root().join("files");
    std::fs::create_dir_all(&files).expect("files");
    let sums_name = file_name(&signed.sums);
    for f in [
        signed.zip.clone(),
        signed.sums.clone(),
        signed.dir.join(format!("{sums_name}.sig")),
    ] {
        std::fs::copy(&f, files.join(file_name(&f))).expect("copy an artefact");
    }
    let api = server.root().join("v1/providers/apimvault/apim");
    std::fs::create_dir_all(api.join(format!("{VERSION}/download/linux"))).expect("api dirs");
    let protocols = json!(["6.0"]);
    std::fs::write(
        api.join("versions"),
        json!({"versions": [{"version": VERSION, "protocols": protocols,
            "platforms": [{"os": "linux", "arch": "amd64"}]}]})
        .to_string(),
    )
    .expect("versions");
    std::fs::write(
        api.join(format!("{VERSION}/download/linux/amd64")),
        json!({
            "protocols": protocols, "os": "linux", "arch": "amd64",
            "filename": signed.zip_name(),
            "download_url": format!("{}files/{}", server.url(), signed.zip_name()),
            "shasums_url": format!("{}files/{sums_name}", server.url()),
            "shasums_signature_url": format!("{}files/{sums_name}.sig", server.url()),
            "shasum": &signed.zh()[3..],
            "signing_keys": {"gpg_public_keys": [{"key_id": key_id, "ascii_armor": armor}]}
        })
        .to_string(),
    )
    .expect("download");
}

/// A CLI configuration that sends registry.terraform.io's provider API to `server`.
fn registry_host(server: &StaticHttps) -> String {
    format!(
        "host \"registry.terraform.io\" {{\n  services = {{\n    \"providers.v1\" = \"{}v1/providers/\"\n  }}\n}}\n",
        server.url()
    )
}

#[test]
fn providers_mirror_copies_the_signed_release_from_a_registry() {
    // `terraform providers mirror` reads from the provider's origin registry only: serve the
    // registry protocol for registry.terraform.io (a `host` block of the CLI configuration),
    // with the release signed by a new key, as the registry serves a published provider.
    let tmp = tempfile::tempdir().expect("temp dir");
    let (signed, gpg) = signed_release(tmp.path());
    let server = StaticHttps::start();
    let key_id = gpg.fingerprint[24..].to_string();
    registry(&server, &signed, &key_id, &gpg.armored_public_key());

    let mut wd = fresh_dir(&registry_host(&server));
    wd.env("SSL_CERT_FILE", server.ca_file());
    wd.write_config(&requires_provider());
    let out_dir = tmp.path().join("mirrored");
    let out = wd.run_ok(&[
        "providers",
        "mirror",
        &format!("-platform={PLATFORM}"),
        &out_dir.to_string_lossy(),
    ]);
    assert!(
        contains_normalized(&out.stdout, "Package authenticated: self-signed"),
        "Terraform did not authenticate the package by its signature:\n{out}"
    );

    // What it wrote is a network mirror: the same zip, index.json and <version>.json.
    let mirrored = out_dir.join(MIRROR_PATH);
    let zip = mirrored.join(signed.zip_name());
    assert_eq!(sha256_file(&zip), &signed.zh()[3..], "the mirrored zip");
    let version: serde_json::Value = serde_json::from_slice(
        &std::fs::read(mirrored.join(format!("{VERSION}.json"))).expect("<version>.json"),
    )
    .expect("JSON");
    let hashes: Vec<String> = version["archives"][PLATFORM]["hashes"]
        .as_array()
        .unwrap_or_else(|| panic!("no hashes for {PLATFORM}: {version}"))
        .iter()
        .map(|h| h.as_str().expect("a string").to_string())
        .collect();
    assert!(
        hashes.contains(&h1_of_zip(&signed.zip)) || hashes.contains(&signed.zh()),
        "the mirror's hashes {hashes:?} are neither the zip's h1: nor its zh:"
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mirrored.join("index.json")).expect("index.json"))
            .expect("JSON");
    assert!(
        index["versions"].get(VERSION).is_some(),
        "index.json: {index}"
    );

    // That mirror, served over HTTPS, installs the provider.
    let second = StaticHttps::start();
    copy_tree(&out_dir, &second.root());
    let mut wd = fresh_dir(&cli_config(&network_mirror_block(&second.url())));
    wd.env("SSL_CERT_FILE", second.ca_file());
    wd.write_config(&requires_provider());
    init_installs(&wd);
    assert_installed_from(&wd, &signed);
    assert_lock_matches(wd.path(), &signed, false);
}

#[test]
fn registry_install_records_the_signed_sha256sums_in_the_lock_file() {
    // As from the registry once the provider is published: `terraform init` with no CLI
    // configuration but the registry's address, the release signed.
    let tmp = tempfile::tempdir().expect("temp dir");
    let (signed, gpg) = signed_release(tmp.path());
    let server = StaticHttps::start();
    let key_id = gpg.fingerprint[24..].to_string();
    registry(&server, &signed, &key_id, &gpg.armored_public_key());
    let mut wd = fresh_dir(&registry_host(&server));
    wd.env("SSL_CERT_FILE", server.ca_file());
    wd.write_config(&requires_provider());
    let out = init_installs(&wd);
    assert!(
        contains_normalized(&out.stdout, &format!("(self-signed, key ID {key_id})")),
        "init did not report the signing key:\n{out}"
    );
    assert_installed_from(&wd, &signed);
    // A signed SHA256SUMS is what Terraform records as zh: hashes, beside the h1: hash.
    assert_lock_matches(wd.path(), &signed, true);

    // A signature by a key the registry does not announce is refused.
    let other = Gpg::new();
    let refusing = StaticHttps::start();
    let other_id = other.fingerprint[24..].to_string();
    registry(&refusing, &signed, &other_id, &other.armored_public_key());
    let mut wd = fresh_dir(&registry_host(&refusing));
    wd.env("SSL_CERT_FILE", refusing.ca_file());
    wd.write_config(&requires_provider());
    let out = wd.run(&["init"]);
    assert_eq!(out.code, 1, "init with a signature by another key:\n{out}");
    assert!(
        contains_normalized(&out.stderr, "authentication signature from unknown issuer"),
        "init failed, but not with Terraform's signature error:\n{out}"
    );
}

/// Copies the files under `from` into `to`, keeping their relative paths.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn network_mirror_announcing_a_wrong_hash_is_refused() {
    let release = Release::get();
    let server = StaticHttps::start();
    let wrong = format!("zh:{}", sha256_hex(b"not the release"));
    network_mirror(&server.root(), &release, std::slice::from_ref(&wrong));
    let mut wd = fresh_dir(&cli_config(&network_mirror_block(&server.url())));
    wd.env("SSL_CERT_FILE", server.ca_file());
    wd.write_config(&requires_provider());

    let out = wd.run(&["init"]);
    assert_eq!(out.code, 1, "init with a wrong zh: hash:\n{out}");
    assert!(
        contains_normalized(
            &out.stderr,
            &format!("provider package doesn't match the expected checksum \"{wrong}\"")
        ),
        "init failed, but not with Terraform's checksum error:\n{out}"
    );
    assert!(
        !wd.path()
            .join(".terraform/providers")
            .join(MIRROR_PATH)
            .join(VERSION)
            .exists(),
        "the package was installed despite the wrong hash"
    );
}

#[test]
fn lock_file_with_a_wrong_hash_is_refused() {
    let release = Release::get();
    let mirror = tempfile::tempdir().expect("temp dir");
    packed_mirror(mirror.path(), &release);
    let wd = fresh_dir(&cli_config(&filesystem_mirror_block(mirror.path())));
    wd.write_config(&requires_provider());
    // A well-formed h1: hash of another package.
    let wrong = h1(&[(format!("{NAME}_v{VERSION}"), b"another binary".to_vec())]);
    wd.write_file(
        ".terraform.lock.hcl",
        &format!(
            "provider \"{MIRROR_PATH}\" {{\n  version     = \"{VERSION}\"\n  constraints = \"{VERSION}\"\n  hashes = [\n    \"{wrong}\",\n  ]\n}}\n"
        ),
    );

    let out = wd.run(&["init"]);
    assert_eq!(out.code, 1, "init with a wrong lock file hash:\n{out}");
    assert!(
        contains_normalized(
            &out.stderr,
            "doesn't match any of the checksums previously recorded in the dependency lock file"
        ),
        "init failed, but not with Terraform's checksum error:\n{out}"
    );
}
