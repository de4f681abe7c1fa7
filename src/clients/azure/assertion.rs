//! Client assertions: what the provider presents to Entra's token endpoint instead of a client
//! secret (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`).
//!
//! * A federated token given as is (`ARM_OIDC_TOKEN`).
//! * A federated token requested from GitHub Actions or Azure DevOps
//!   ([`crate::clients::oidc_request`]) for each Entra token request (their ID tokens live
//!   minutes), for the audience `api://AzureADTokenExchange`.
//! * A JWT signed RS256 with a certificate's key (a PKCS#12 file), as Entra's certificate
//!   credentials: header `x5t` = base64url SHA-1 thumbprint of the certificate; claims `aud` =
//!   the token endpoint, `iss` = `sub` = the client ID, `jti`, `nbf`, `exp` (10 minutes).
//!
//! None of the request tokens, assertions or the certificate's password is logged or shown in
//! an error.

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_core::error::ErrorKind;
use azure_core::http::ClientMethodOptions;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::clients::oidc_request::{ado_token, github_token};

/// The audience Entra expects in federated tokens.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Lifetime of a certificate-signed assertion.
const CERTIFICATE_ASSERTION_SECONDS: u64 = 600;

/// Where a client assertion comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum AssertionKind {
    /// A federated token given as is (`oidc_token`, `ARM_OIDC_TOKEN`).
    Token(String),
    /// GitHub Actions' OIDC token request (`oidc_request_url` + `oidc_request_token`).
    GitHub {
        /// The request URL (`ARM_OIDC_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_URL`).
        request_url: String,
        /// The request token (never shown).
        request_token: String,
    },
    /// Azure DevOps' OIDC token request for a service connection.
    AzureDevOps {
        /// `SYSTEM_OIDCREQUESTURI`.
        request_uri: String,
        /// The service connection (`ado_pipeline_service_connection_id`).
        service_connection_id: String,
        /// `SYSTEM_ACCESSTOKEN` (never shown).
        access_token: String,
    },
    /// A certificate and its key in a PKCS#12 file.
    Certificate {
        /// The file (`client_certificate_path`).
        path: PathBuf,
        /// Its password (`client_certificate_password`; never shown), empty for none.
        password: String,
    },
}

impl AssertionKind {
    /// A readable name for messages, without any secret.
    pub fn describe(&self) -> String {
        match self {
            AssertionKind::Token(_) => "a federated token (`oidc_token`, ARM_OIDC_TOKEN)".into(),
            AssertionKind::GitHub { .. } => {
                "a federated token requested from GitHub Actions (`oidc_request_url`, ARM_OIDC_REQUEST_URL)".into()
            }
            AssertionKind::AzureDevOps {
                service_connection_id,
                ..
            } => format!(
                "a federated token requested from Azure DevOps for service connection {service_connection_id}"
            ),
            AssertionKind::Certificate { path, .. } => {
                format!("the client certificate {}", path.display())
            }
        }
    }
}

/// A certificate's key, ready to sign assertions.
pub(crate) struct CertificateSigner {
    key: aws_lc_rs::rsa::KeyPair,
    /// base64url SHA-1 thumbprint of the certificate (the `x5t` header).
    x5t: String,
}

impl CertificateSigner {
    /// Reads a PKCS#12 file: the first private key with its certificate. Errors name the file
    /// and the settings; never the password.
    pub(crate) fn from_pkcs12(path: &std::path::Path, password: &str) -> Result<Self, String> {
        let where_ = format!(
            "the client certificate {} (`client_certificate_path`, ARM_CLIENT_CERTIFICATE_PATH)",
            path.display()
        );
        let data = std::fs::read(path).map_err(|e| format!("cannot read {where_}: {e}"))?;
        let store = p12_keystore::KeyStore::from_pkcs12(
            &data,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| {
            format!("cannot open {where_} as PKCS#12 (.pfx/.p12): {e}; check the file and its password (`client_certificate_password`, ARM_CLIENT_CERTIFICATE_PASSWORD)")
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| format!("{where_} holds no private key"))?;
        let cert = chain
            .certs()
            .first()
            .ok_or_else(|| format!("{where_} holds no certificate for its private key"))?;
        let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(chain.key().as_der()).map_err(|_| {
            format!("the private key in {where_} is not an RSA key (Entra's certificate credentials sign with RS256)")
        })?;
        let thumbprint =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_der());
        Ok(CertificateSigner {
            key,
            x5t: URL_SAFE_NO_PAD.encode(thumbprint.as_ref()),
        })
    }

    /// A signed assertion for `client_id` at `token_endpoint`.
    pub(crate) fn sign(&self, client_id: &str, token_endpoint: &str) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| "no randomness for the assertion's jti")?;
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let claims = serde_json::json!({
            "aud": token_endpoint,
            "iss": client_id,
            "sub": client_id,
            "jti": hex(&jti),
            "nbf": now,
            "iat": now,
            "exp": now + CERTIFICATE_ASSERTION_SECONDS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The source of assertions handed to `azure_identity`'s `ClientAssertionCredential`, which
/// asks for one at each token request (so a short-lived CI token is fetched afresh whenever the
/// Entra token is renewed).
pub(crate) struct Assertions {
    pub(crate) kind: AssertionKind,
    pub(crate) http: reqwest::Client,
    pub(crate) client_id: String,
    /// The tenant's token endpoint (the `aud` of certificate assertions).
    pub(crate) token_endpoint: String,
    pub(crate) signer: Option<CertificateSigner>,
}

impl fmt::Debug for Assertions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind.describe())
    }
}

fn credential_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(ErrorKind::Credential, message)
}

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for Assertions {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        let got = match &self.kind {
            AssertionKind::Token(t) => Ok(t.clone()),
            AssertionKind::GitHub {
                request_url,
                request_token,
            } => {
                github_token(
                    &self.http,
                    request_url,
                    request_token,
                    Some(EXCHANGE_AUDIENCE),
                )
                .await
            }
            AssertionKind::AzureDevOps {
                request_uri,
                service_connection_id,
                access_token,
            } => ado_token(&self.http, request_uri, service_connection_id, access_token).await,
            AssertionKind::Certificate { .. } => match &self.signer {
                Some(s) => s.sign(&self.client_id, &self.token_endpoint),
                None => Err("the client certificate was not loaded".into()),
            },
        };
        got.map_err(credential_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_never_show_secrets() {
        let kinds = [
            AssertionKind::Token("tok-secret".into()),
            AssertionKind::GitHub {
                request_url: "https://x".into(),
                request_token: "req-secret".into(),
            },
            AssertionKind::AzureDevOps {
                request_uri: "https://x".into(),
                service_connection_id: "c".into(),
                access_token: "ado-secret".into(),
            },
            AssertionKind::Certificate {
                path: "/c.pfx".into(),
                password: "pw-secret".into(),
            },
        ];
        for k in kinds {
            assert!(!k.describe().contains("secret"), "{}", k.describe());
        }
    }

    /// A PKCS#12 file for a fresh self-signed certificate with a key of `alg`, written with
    /// `encryption` (AES-256 as OpenSSL 3 writes, or 3DES as older tools and Windows do).
    fn pfx(
        dir: &std::path::Path,
        alg: &'static rcgen::SignatureAlgorithm,
        encryption: p12_keystore::EncryptionAlgorithm,
        mac: p12_keystore::MacAlgorithm,
    ) -> (PathBuf, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["t.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(
            "k",
            p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
            [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("k", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let data = store
            .writer("s3cret-pw")
            .encryption_algorithm(encryption)
            .mac_algorithm(mac)
            .write()
            .unwrap();
        let path = dir.join(format!("{}.pfx", data.len()));
        std::fs::write(&path, data).unwrap();
        (path, cert.der().to_vec())
    }

    #[test]
    fn pkcs12_files_as_openssl_and_older_tools_write_them_sign_verifiable_assertions() {
        use p12_keystore::{EncryptionAlgorithm as E, MacAlgorithm as M};
        let dir = tempfile::tempdir().unwrap();
        for (enc, mac) in [
            (E::PbeWithHmacSha256AndAes256, M::HmacSha256),
            (E::PbeWithShaAnd3KeyTripleDesCbc, M::HmacSha1),
        ] {
            let (path, der) = pfx(dir.path(), &rcgen::PKCS_RSA_SHA256, enc, mac);
            let signer = CertificateSigner::from_pkcs12(&path, "s3cret-pw").unwrap();
            let jwt = signer
                .sign("client-1", "https://login.example/t/oauth2/v2.0/token")
                .unwrap();
            let parts: Vec<&str> = jwt.split('.').collect();
            let header: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
            let claims: serde_json::Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            let sha1 =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode(sha1.as_ref()));
            assert_eq!(header["alg"], "RS256");
            assert_eq!(claims["iss"], "client-1");
            assert_eq!(claims["sub"], "client-1");
            assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
            assert_eq!(
                claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
                CERTIFICATE_ASSERTION_SECONDS
            );
            // The signature verifies with the certificate's public key, read by an independent
            // X.509 parser.
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            let key = cert.public_key().subject_public_key.data.to_vec();
            aws_lc_rs::signature::UnparsedPublicKey::new(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                key,
            )
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .expect("the assertion's signature verifies with the certificate");
            let e = CertificateSigner::from_pkcs12(&path, "wrong-pw")
                .err()
                .unwrap();
            assert!(
                e.contains("ARM_CLIENT_CERTIFICATE_PASSWORD") && !e.contains("wrong-pw"),
                "{e}"
            );
        }
        let (path, _) = pfx(
            dir.path(),
            &rcgen::PKCS_ECDSA_P256_SHA256,
            E::PbeWithHmacSha256AndAes256,
            M::HmacSha256,
        );
        let e = CertificateSigner::from_pkcs12(&path, "s3cret-pw")
            .err()
            .unwrap();
        assert!(e.contains("is not an RSA key"), "{e}");
    }

    #[test]
    fn a_missing_certificate_file_is_named_with_its_setting() {
        let e = CertificateSigner::from_pkcs12(std::path::Path::new("/nonexistent/c.pfx"), "pw")
            .err()
            .unwrap();
        assert!(
            e.contains("/nonexistent/c.pfx") && e.contains("ARM_CLIENT_CERTIFICATE_PATH"),
            "{e}"
        );
        assert!(!e.contains("pw\""));
    }
}
