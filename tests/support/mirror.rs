//! Installing the provider the way users do: the release artefacts `scripts/release` wrote,
//! a filesystem mirror built from them, and a static HTTPS server on loopback (with a CA of
//! its own) for the provider network mirror and registry protocols.
//!
//! The oracles here are independent of the provider's code: SHA-256 from aws-lc, the
//! `h1:` package hash computed as Go's `dirhash.Hash1` defines it, zips read by Python's
//! `zipfile`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The provider's name, as in its artefacts' names.
pub const NAME: &str = "terraform-provider-apim";
/// The version being released: the package version in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The one platform built and tested.
pub const PLATFORM: &str = "linux_amd64";
/// Where a packed filesystem mirror or a network mirror keeps this provider's files.
pub const MIRROR_PATH: &str = "registry.terraform.io/apimvault/apim";

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory `scripts/release` wrote into: `APIM_DIST_DIR`, else `<target dir>/dist`
/// (`<repo>/target/dist` unless `CARGO_TARGET_DIR` says otherwise; found next to the binary
/// under test, so it follows the target dir this test was built in).
pub fn dist_dir() -> PathBuf {
    match std::env::var_os("APIM_DIST_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_BIN_EXE_terraform-provider-apim"))
            .parent()
            .and_then(Path::parent)
            .expect("the binary under test sits in <target>/<profile>/")
            .join("dist"),
    }
}

/// The artefacts of this version in [`dist_dir`].
#[derive(Clone, Debug)]
pub struct Release {
    pub dir: PathBuf,
    /// `terraform-provider-apim_<version>_linux_amd64.zip`
    pub zip: PathBuf,
    /// `terraform-provider-apim_<version>_SHA256SUMS`
    pub sums: PathBuf,
    /// `terraform-provider-apim_<version>_manifest.json`
    pub manifest: PathBuf,
}

impl Release {
    /// The artefacts of [`dist_dir`]. Panics, saying to run `scripts/release`, when one is
    /// missing: these tests never pass without them.
    #[track_caller]
    pub fn get() -> Release {
        Release::in_dir(&dist_dir())
    }

    /// The artefacts `scripts/release --out dir` wrote.
    #[track_caller]
    pub fn in_dir(dir: &Path) -> Release {
        let file = |suffix: &str| dir.join(format!("{NAME}_{VERSION}_{suffix}"));
        let release = Release {
            dir: dir.to_path_buf(),
            zip: file(&format!("{PLATFORM}.zip")),
            sums: file("SHA256SUMS"),
            manifest: file("manifest.json"),
        };
        for f in [&release.zip, &release.sums, &release.manifest] {
            assert!(
                f.is_file(),
                "{} is missing: run scripts/release first (it writes the release artefacts into \
                 <target dir>/dist; set APIM_DIST_DIR when they are elsewhere)",
                f.display()
            );
        }
        release
    }

    /// The zip's file name.
    pub fn zip_name(&self) -> String {
        file_name(&self.zip)
    }

    /// `SHA256SUMS` as `{file name: hex digest}`. Panics on a line not of the form
    /// `<64 hex>  <name>`.
    #[track_caller]
    pub fn sums(&self) -> BTreeMap<String, String> {
        parse_sums(&std::fs::read_to_string(&self.sums).expect("read SHA256SUMS"))
    }

    /// The zip's `zh:` hash as `SHA256SUMS` states it.
    #[track_caller]
    pub fn zh(&self) -> String {
        let sums = self.sums();
        let hex = sums
            .get(&self.zip_name())
            .unwrap_or_else(|| panic!("SHA256SUMS has no line for {}: {sums:?}", self.zip_name()));
        format!("zh:{hex}")
    }
}

/// A path's last component as a string.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned()
}

/// Lines `<64 hex>  <name>` as `{name: hex}`.
#[track_caller]
pub fn parse_sums(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let (hex, name) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("SHA256SUMS line {line:?} is not '<sha256>  <file>'"));
        assert!(
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "SHA256SUMS line {line:?}: not a lowercase hex SHA-256"
        );
        out.insert(name.to_string(), hex.to_string());
    }
    out
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a file, lowercase hex.
#[track_caller]
pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// The `h1:` hash Terraform records for a provider package: Go's `dirhash.Hash1` over the
/// package's files (`name` relative, with `/`): the SHA-256 of the lines
/// `<hex sha256 of the file>  <name>\n`, sorted by name, in standard base64.
pub fn h1(files: &[(String, Vec<u8>)]) -> String {
    let mut files: Vec<&(String, Vec<u8>)> = files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut summary = String::new();
    for (name, data) in files {
        assert!(!name.contains('\n'), "a file name with a newline: {name:?}");
        summary.push_str(&format!("{}  {name}\n", sha256_hex(data)));
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, summary.as_bytes());
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// One file of a zip.
#[derive(Clone, Debug)]
pub struct ZipEntry {
    pub name: String,
    /// The Unix mode stored in the entry (e.g. `0o100755`), 0 when none is stored.
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Every entry of `zip`, in the archive's order, read by Python's `zipfile`.
#[track_caller]
pub fn zip_entries(zip: &Path) -> Vec<ZipEntry> {
    let out = tempfile::tempdir().expect("temp dir");
    let script = r#"
import json, os, sys, zipfile
archive, dest = sys.argv[1:]
entries = []
with zipfile.ZipFile(archive) as z:
    for n, info in enumerate(z.infolist()):
        with open(os.path.join(dest, str(n)), "wb") as f:
            f.write(z.read(info))
        entries.append({"name": info.filename, "mode": info.external_attr >> 16})
print(json.dumps(entries))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(zip)
        .arg(out.path())
        .output()
        .expect("run python3 (a stated prerequisite)");
    assert!(
        output.status.success(),
        "python3 could not read {}: {}",
        zip.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("python3 printed the entries as JSON");
    listed
        .into_iter()
        .enumerate()
        .map(|(n, e)| ZipEntry {
            name: e["name"].as_str().expect("name").to_string(),
            mode: e["mode"].as_u64().expect("mode") as u32,
            data: std::fs::read(out.path().join(n.to_string())).expect("extracted entry"),
        })
        .collect()
}

/// The `h1:` hash of the package in `zip`, from its contents.
#[track_caller]
pub fn h1_of_zip(zip: &Path) -> String {
    let files: Vec<(String, Vec<u8>)> = zip_entries(zip)
        .into_iter()
        .map(|e| (e.name, e.data))
        .collect();
    h1(&files)
}

/// The hashes `.terraform.lock.hcl` in `dir` records for `registry.terraform.io/apimvault/apim`,
/// with the version it selected. Panics when there is no lock file or no such provider.
#[track_caller]
pub fn lock_file_hashes(dir: &Path) -> (String, Vec<String>) {
    let path = dir.join(".terraform.lock.hcl");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let body: hcl::Body = hcl::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not HCL ({e}):\n{text}", path.display()));
    let block = body
        .blocks()
        .find(|b| {
            b.identifier() == "provider"
                && b.labels().first().map(|l| l.as_str()) == Some(MIRROR_PATH)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} has no provider \"{MIRROR_PATH}\":\n{text}",
                path.display()
            )
        });
    let attr = |key: &str| {
        block
            .body()
            .attributes()
            .find(|a| a.key() == key)
            .map(|a| a.expr().clone())
            .unwrap_or_else(|| panic!("the lock file's provider block has no {key}:\n{text}"))
    };
    let version = match attr("version") {
        hcl::Expression::String(s) => s,
        other => panic!("version is {other:?}"),
    };
    let hashes = match attr("hashes") {
        hcl::Expression::Array(items) => items
            .into_iter()
            .map(|e| match e {
                hcl::Expression::String(s) => s,
                other => panic!("a hash that is not a string: {other:?}"),
            })
            .collect(),
        other => panic!("hashes is {other:?}"),
    };
    (version, hashes)
}

/// Asserts that the lock file in `dir` selected [`VERSION`], that every `zh:` hash it holds is
/// a line of `SHA256SUMS` (Terraform records every line of a signed `SHA256SUMS`), and that it
/// holds the `h1:` hash of the zip's contents; with `want_zh`, that it holds the zip's `zh:`
/// hash too. Answers the hashes.
#[track_caller]
pub fn assert_lock_matches(dir: &Path, release: &Release, want_zh: bool) -> Vec<String> {
    let (version, hashes) = lock_file_hashes(dir);
    assert_eq!(version, VERSION, "the lock file's version");
    let zh = release.zh();
    let sums = release.sums();
    for h in hashes.iter().filter(|h| h.starts_with("zh:")) {
        assert!(
            sums.values().any(|hex| h[3..] == *hex),
            "the lock file records {h}, which is no line of SHA256SUMS: {sums:?}"
        );
    }
    if want_zh {
        assert!(
            hashes.contains(&zh),
            "the lock file lacks SHA256SUMS's {zh}: {hashes:?}"
        );
    }
    let h1 = h1_of_zip(&release.zip);
    assert!(
        hashes.contains(&h1),
        "the lock file lacks the h1: hash of the zip's contents ({h1}): {hashes:?}"
    );
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("zh:") || h.starts_with("h1:")),
        "unexpected hash schemes: {hashes:?}"
    );
    hashes
}

/// Copies the zip into `root` in the packed layout of a filesystem mirror:
/// `<root>/registry.terraform.io/apimvault/apim/<zip>`.
#[track_caller]
pub fn packed_mirror(root: &Path, release: &Release) {
    let dir = root.join(MIRROR_PATH);
    std::fs::create_dir_all(&dir).expect("create the mirror's folders");
    std::fs::copy(&release.zip, dir.join(release.zip_name())).expect("copy the zip");
}

/// Writes a provider network mirror into `root`: `index.json` listing [`VERSION`] and
/// `<version>.json` with the zip's archive entry (a relative URL) and `hashes`.
#[track_caller]
pub fn network_mirror(root: &Path, release: &Release, hashes: &[String]) {
    let dir = root.join(MIRROR_PATH);
    std::fs::create_dir_all(&dir).expect("create the mirror's folders");
    std::fs::copy(&release.zip, dir.join(release.zip_name())).expect("copy the zip");
    let index = serde_json::json!({ "versions": { VERSION: {} } });
    let version = serde_json::json!({
        "archives": { PLATFORM: { "url": release.zip_name(), "hashes": hashes } }
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join(format!("{VERSION}.json")), version.to_string())
        .expect("write <version>.json");
}

/// A CLI configuration whose only installation method for this provider is `method` (the
/// body of `provider_installation`), e.g. a `filesystem_mirror { ... }` block.
pub fn cli_config(method: &str) -> String {
    format!("provider_installation {{\n{method}\n}}\n")
}

/// `filesystem_mirror { path = <root>, include = [this provider] }`.
pub fn filesystem_mirror_block(root: &Path) -> String {
    format!(
        "  filesystem_mirror {{\n    path    = {}\n    include = [\"{MIRROR_PATH}\"]\n  }}",
        serde_json::to_string(&root.to_string_lossy()).expect("quote")
    )
}

/// `network_mirror { url = <url>, include = [this provider] }`.
pub fn network_mirror_block(url: &str) -> String {
    format!("  network_mirror {{\n    url     = \"{url}\"\n    include = [\"{MIRROR_PATH}\"]\n  }}")
}

/// A static file server over HTTPS on a free loopback port, with a CA made for it: files
/// under [`StaticHttps::root`] are served at the same relative path (GET only, one request
/// per connection). Stopped on drop.
pub struct StaticHttps {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl StaticHttps {
    #[track_caller]
    pub fn start() -> StaticHttps {
        let dir = tempfile::Builder::new()
            .prefix("apim-mirror-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path().join("www");
        std::fs::create_dir_all(&root).expect("create www");
        let (config, ca_pem) = tls_config();
        std::fs::write(dir.path().join("ca.pem"), ca_pem).expect("write ca.pem");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (config, root, log) = (config.clone(), root.clone(), log.clone());
                thread::spawn(move || {
                    let _ = serve(stream, config, &root, &log);
                });
            }
        });
        StaticHttps {
            dir,
            addr,
            requests,
            stop,
        }
    }

    /// The folder whose files are served.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    /// `https://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// The CA to trust (PEM), e.g. as Terraform's `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The paths requested so far, with the status answered: `"200 /a/b.json"`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for StaticHttps {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// A server configuration for 127.0.0.1/localhost, signed by a new CA; and the CA (PEM).
fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "apim mirror test CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server names");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .expect("server certificate");

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(cert.der().to_vec()),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("TLS configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (Arc::new(config), ca_cert.pem())
}

/// One connection: one GET, answered from `root`, then closed.
fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    root: &Path,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let path = target.split('?').next().unwrap_or("/");
    let file = (!path.split('/').any(|s| s == ".." || s == "."))
        .then(|| root.join(path.trim_start_matches('/')))
        .filter(|f| f.is_file());
    let (status, body, kind) = match (method, file) {
        ("GET", Some(f)) => {
            let kind = if path.ends_with(".json") {
                "application/json"
            } else {
                "application/octet-stream"
            };
            ("200 OK", std::fs::read(f)?, kind)
        }
        ("GET", None) => ("404 Not Found", b"not found\n".to_vec(), "text/plain"),
        _ => (
            "405 Method Not Allowed",
            b"GET only\n".to_vec(),
            "text/plain",
        ),
    };
    log.lock()
        .expect("request log")
        .push(format!("{} {path}", &status[..3]));
    write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    tls.write_all(&body)?;
    tls.flush()?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}
