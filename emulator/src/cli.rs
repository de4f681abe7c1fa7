//! Command line: `apim-emulator [--listen 127.0.0.1:0] [--tls-dir DIR] [--state-file FILE]
//! [--seed FILE] [--lro-polls N]`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// The `--help` text.
pub const HELP: &str = "\
apim-emulator: a local HTTPS emulator of Azure Resource Manager (Microsoft.ApiManagement,
api-version 2024-05-01), Entra ID and the managed-identity token endpoint.

USAGE:
    apim-emulator [--listen 127.0.0.1:0] [--tls-dir DIR] [--state-file FILE] [--seed FILE] [--lro-polls N] [--profile azure]
                  [--gateway-listen 127.0.0.1:0] [--gateway-ca FILE]...

OPTIONS:
    --listen ADDR        address to listen on (default 127.0.0.1:0: a free loopback port)
    --tls-dir DIR        where to write ca.pem (default: a new temporary directory)
    --state-file FILE    persist every object to FILE (JSON) and reload it on start
    --seed FILE          JSON seed: subscriptions, resource groups, APIM instances, clients
                         (ignored when --state-file already exists)
    --lro-polls N        polls a long-running operation answers InProgress (default 1; 0 = synchronous)
    --profile azure|none ARM at Azure's speed: latencies per operation and ARM's token-bucket
                         throttling (429 + Retry-After); see README.md (default none)
    --gateway-listen ADDR
                         address of the gateway's plain-HTTP listener (default 127.0.0.1:0); its
                         HTTPS listener takes another free port on the same address
    --gateway-ca FILE    extra CA certificates (PEM) the gateway trusts when it calls https
                         backends and send-request targets (repeatable; the emulator's CA is
                         always trusted)
    -h, --help           print this help
    -V, --version        print the version

The first stdout line is a JSON object: url, gateway_url, gateway_https_url, ca_file, tenant_id, subscription_id, resource_group,
api_management_id, principal_id, client_id, client_secret. Logs go to stderr. The emulator serves
until SIGTERM or SIGINT. See README.md for the control plane under /_emulator/.
";

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Where `ca.pem` goes.
    pub tls_dir: Option<PathBuf>,
    /// State file.
    pub state_file: Option<PathBuf>,
    /// Seed file.
    pub seed: Option<PathBuf>,
    /// Initial LRO poll count (None: the seed's or 1).
    pub lro_polls: Option<u32>,
    /// The gateway's plain-HTTP listen address.
    pub gateway_listen: SocketAddr,
    /// Extra CA certificates the gateway trusts.
    pub gateway_ca: Vec<PathBuf>,
    /// `--profile azure`: ARM answers at Azure's speed and throttles as ARM does.
    pub azure_profile: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_dir: None,
            state_file: None,
            seed: None,
            lro_polls: None,
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway_ca: Vec::new(),
            azure_profile: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve.
    Run(Config),
    /// Print help.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments (without the program name). Accepts `--flag value` and `--flag=value`.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut cfg = Config::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => {
                let v = value("--listen")?;
                cfg.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: '{v}' is not an address like 127.0.0.1:0"))?;
            }
            "--tls-dir" => cfg.tls_dir = Some(PathBuf::from(value("--tls-dir")?)),
            "--state-file" => cfg.state_file = Some(PathBuf::from(value("--state-file")?)),
            "--seed" => cfg.seed = Some(PathBuf::from(value("--seed")?)),
            "--lro-polls" => {
                let v = value("--lro-polls")?;
                cfg.lro_polls =
                    Some(v.parse().map_err(|_| {
                        format!("--lro-polls: '{v}' is not a non-negative integer")
                    })?);
            }
            "--profile" => match value("--profile")?.as_str() {
                "azure" => cfg.azure_profile = true,
                "none" => cfg.azure_profile = false,
                other => {
                    return Err(format!(
                        "--profile: '{other}' is not a profile: use 'azure' or 'none'"
                    ))
                }
            },
            "--gateway-listen" => {
                let v = value("--gateway-listen")?;
                cfg.gateway_listen = v.parse().map_err(|_| {
                    format!("--gateway-listen: '{v}' is not an address like 127.0.0.1:0")
                })?;
            }
            "--gateway-ca" => cfg.gateway_ca.push(PathBuf::from(value("--gateway-ca")?)),
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    Ok(Command::Run(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|s| (*s).to_string()))
    }

    #[test]
    fn parses_flags() {
        let Ok(Command::Run(c)) = p(&[
            "--listen",
            "127.0.0.1:8443",
            "--tls-dir=/tmp/x",
            "--lro-polls",
            "0",
        ]) else {
            panic!("expected run");
        };
        assert_eq!(c.listen.port(), 8443);
        assert_eq!(c.tls_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(c.lro_polls, Some(0));
        let Ok(Command::Run(c)) = p(&[
            "--gateway-listen=127.0.0.1:8080",
            "--gateway-ca",
            "/a.pem",
            "--gateway-ca=/b.pem",
        ]) else {
            panic!("expected run");
        };
        assert_eq!(c.gateway_listen.port(), 8080);
        assert_eq!(
            c.gateway_ca,
            vec![PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]
        );
        assert!(p(&["--gateway-listen", "nope"]).is_err());
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&["--listen"]).is_err());
    }
}
