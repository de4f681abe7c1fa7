//! The emulator's private CA and its server certificate for `127.0.0.1` / `localhost`.
//!
//! Azure SDKs (azure_identity among them) refuse an authority host that is not `https`, so the
//! emulator always serves TLS. The CA key is persisted in the state file; the CA certificate is
//! re-derived from it with fixed parameters, so a restarted emulator presents a chain that the
//! `ca.pem` written by an earlier run still validates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// What the server needs to speak TLS and what clients need to trust it.
pub struct Tls {
    /// The CA certificate (PEM) clients must trust; written to `<tls-dir>/ca.pem`.
    pub ca_pem: String,
    /// rustls configuration (aws-lc-rs provider, HTTP/1.1 ALPN) with the server chain.
    pub server_config: Arc<rustls::ServerConfig>,
}

/// A new P-256 CA key in PKCS#8 PEM, for a first start.
pub fn new_ca_key_pem() -> Result<String, String> {
    KeyPair::generate()
        .map(|k| k.serialize_pem())
        .map_err(|e| format!("CA key generation: {e}"))
}

fn ca_params(ca_key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "apim-emulator local CA");
    dn.push(DnType::OrganizationName, "apim-emulator");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Serial derived from the key: the same key always yields the same CA certificate body.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ca_key.public_key_raw());
    let mut serial = digest.as_ref()[..16].to_vec();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params
}

/// Builds the CA certificate from its key and issues a fresh server certificate with IP SAN
/// `127.0.0.1` and DNS SAN `localhost` (plus any extra `hosts`).
pub fn build(ca_key_pem: &str, hosts: &[String]) -> Result<Tls, String> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|e| format!("CA key: {e}"))?;
    let ca_params = ca_params(&ca_key);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| format!("CA certificate: {e}"))?;

    let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    for h in hosts {
        if !sans.contains(h) {
            sans.push(h.clone());
        }
    }
    let mut params =
        CertificateParams::new(sans).map_err(|e| format!("server certificate names: {e}"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let server_key = KeyPair::generate().map_err(|e| format!("server key: {e}"))?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(|e| format!("server certificate: {e}"))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(server_cert.der().to_vec()),
                CertificateDer::from(ca_cert.der().to_vec()),
            ],
            PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .map_err(|e| format!("TLS config: {e}"))?;
    // HTTP/1.1 only: a fault rule's `drop` must close the whole connection, which HTTP/2 would
    // turn into a stream reset.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_stable_for_a_key() {
        let key = new_ca_key_pem().expect("key");
        let a = build(&key, &[]).expect("a");
        let b = build(&key, &[]).expect("b");
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(b.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
