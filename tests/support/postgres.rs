//! A throw-away PostgreSQL server for one test (e.g. as the database behind OpenBao's
//! database secrets engine, whose credentials carry real, renewable leases).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{kill_group, run_captured, tail};
use super::tools::Tools;

const SUPERUSER: &str = "postgres";
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// PostgreSQL refuses to run as root; as root the server runs as this uid/gid instead.
const UNPRIVILEGED: u32 = 65534;

/// A PostgreSQL server with a fresh cluster on a free loopback port, password
/// (scram-sha-256) authentication over TCP; stopped on drop.
pub struct Postgres {
    child: Child,
    port: u16,
    password: String,
    bin: PathBuf,
    /// The cluster's folder (data, password file, logs), removed on drop.
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Whether `scripts/setup` found PostgreSQL's server binaries (tests that need them can
    /// skip with a message otherwise).
    pub fn available() -> bool {
        Tools::get().pg_bin.is_some()
    }

    /// `initdb` + `postgres`. Panics when the binaries are missing (run scripts/setup).
    pub fn start() -> Postgres {
        let bin = Tools::get().pg_bin.clone().unwrap_or_else(|| {
            panic!("PostgreSQL server binaries are missing: run scripts/setup first (without APIM_SETUP_SKIP_POSTGRES)")
        });
        let dir = tempfile::Builder::new()
            .prefix("apim-pg-")
            .tempdir()
            .expect("create a temporary folder for PostgreSQL");
        let as_root = is_root();
        let data = dir.path().join("data");
        let password = format!("pw-{}", std::process::id());
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, &password).expect("write the password file");
        if as_root {
            // the unprivileged server user owns the folder, the cluster and the socket dir
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod the PostgreSQL folder");
            std::os::unix::fs::chown(dir.path(), Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .expect("chown the PostgreSQL folder");
            std::os::unix::fs::chown(&pwfile, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                .expect("chown the password file");
        }

        let mut initdb = server_command(&bin.join("initdb"), as_root);
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--no-sync"]);
        let out = run_captured(initdb, Duration::from_secs(120)).expect("run initdb");
        if out.code != Some(0) {
            panic!(
                "initdb failed ({:?}):\n{}\n{}",
                out.code,
                tail(&out.stderr, 8 * 1024),
                tail(&out.stdout, 8 * 1024)
            );
        }

        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = super::bao::free_port();
            let log = dir.path().join(format!("postgres-{port}.log"));
            let log_file = std::fs::File::create(&log).expect("create the PostgreSQL log");
            if as_root {
                std::os::unix::fs::chown(&log, Some(UNPRIVILEGED), Some(UNPRIVILEGED))
                    .expect("chown the PostgreSQL log");
            }
            let mut cmd = server_command(&bin.join("postgres"), as_root);
            cmd.arg("-D")
                .arg(&data)
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .arg("-k")
                .arg(dir.path())
                .args(["-c", "fsync=off", "-c", "max_connections=50"])
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log handle"))
                .stderr(log_file);
            let mut child = cmd.spawn().expect("start postgres");
            let started = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("could not bind") || text.contains("in use") {
                        failures.push(text);
                        break;
                    }
                    panic!(
                        "postgres exited with {status} on port {port}:\n{}",
                        tail(&text, 8 * 1024)
                    );
                }
                let ready = Command::new(bin.join("pg_isready"))
                    .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                if ready {
                    return Postgres {
                        child,
                        port,
                        password,
                        bin,
                        _dir: dir,
                    };
                }
                if started.elapsed() > START_TIMEOUT {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!(
                        "postgres on port {port} not ready after {} s:\n{}",
                        START_TIMEOUT.as_secs(),
                        tail(&text, 8 * 1024)
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!(
            "postgres did not start after 5 attempts:\n{}",
            failures.join("\n")
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name (`postgres`).
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// A `connection_url` for OpenBao's database engine, with its `{{username}}` and
    /// `{{password}}` templates (give `username`/`password` separately).
    pub fn bao_connection_url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// The `psql` next to the server binaries, else the one on `PATH`.
    pub fn psql_binary(&self) -> PathBuf {
        Some(self.bin.join("psql"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("psql"))
    }

    /// Runs SQL with `psql` as `user`/`password` over TCP; answers the rows as
    /// unaligned, tuples-only text, or the error output.
    pub fn psql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(self.psql_binary());
        cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", "postgres", "-c", sql])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10");
        let out = run_captured(cmd, Duration::from_secs(60)).map_err(|e| e.to_string())?;
        if out.code == Some(0) {
            Ok(out.stdout.trim_end().to_string())
        } else {
            Err(format!("{}{}", out.stderr, out.stdout))
        }
    }

    /// [`Postgres::psql_as`] as the superuser, panicking on an error.
    #[track_caller]
    pub fn psql(&self, sql: &str) -> String {
        self.psql_as(SUPERUSER, &self.password, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT = fast shutdown: backends end, then the postmaster.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program`, run through `setpriv` as an unprivileged user when the tests run as root.
fn server_command(program: &Path, as_root: bool) -> Command {
    if as_root {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={UNPRIVILEGED}"))
            .arg(format!("--regid={UNPRIVILEGED}"))
            .arg("--clear-groups")
            .arg(program)
            .env("HOME", "/tmp");
        cmd
    } else {
        Command::new(program)
    }
}
