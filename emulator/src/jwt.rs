//! RS256 JSON Web Tokens: the signing key behind every token the emulator mints, its JWKS, and
//! verification of tokens presented back to the emulator (ARM bearer tokens, client assertions).

use crate::util::{b64url, b64url_decode, now_unix};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url segments of JSON, or not RS256.
    Malformed(String),
    /// Signed by another key or tampered with.
    BadSignature,
    /// `exp` is in the past (no leeway: the emulator's clock is the only clock).
    Expired,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(m) => write!(f, "malformed token: {m}"),
            JwtError::BadSignature => f.write_str("signature verification failed"),
            JwtError::Expired => f.write_str("token has expired"),
        }
    }
}

/// The emulator's token-signing key (RSA-2048), with its key id and public components.
pub struct Signer {
    key: KeyPair,
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Signer {
    /// Generates a fresh RSA-2048 key.
    pub fn generate() -> Result<Self, String> {
        let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| format!("RSA keygen: {e}"))?;
        Ok(Self::from_key(key))
    }

    /// Restores a key persisted with [`Signer::pkcs8`], so tokens minted before a restart still
    /// verify against the JWKS after it.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let key = KeyPair::from_pkcs8(der).map_err(|e| format!("RSA key: {e}"))?;
        Ok(Self::from_key(key))
    }

    fn from_key(key: KeyPair) -> Self {
        let public = key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        // A stable, key-derived kid (like Entra's x5t thumbprints) so that a restart with the same
        // persisted key keeps the same kid.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let kid = b64url(&digest.as_ref()[..20]);
        Self { key, kid, n, e }
    }

    /// The private key as PKCS#8 DER, for the state file.
    pub fn pkcs8(&self) -> Vec<u8> {
        self.key
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .unwrap_or_default()
    }

    /// The key id placed in every token header and in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as an RS256 JWT with a `kid` (and `x5t`, as Entra's headers carry both).
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid});
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|e| format!("RSA sign: {e}"))?;
        Ok(format!("{signing_input}.{}", b64url(&sig)))
    }

    /// Verifies signature and expiry of a token this emulator minted; returns its claims.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let (header, claims) = decode_unverified(token)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(JwtError::Malformed("alg is not RS256".into()));
        }
        let mut parts = token.rsplitn(2, '.');
        let sig_b64 = parts.next().unwrap_or_default();
        let signing_input = parts.next().unwrap_or_default();
        let sig = b64url_decode(sig_b64).ok_or(JwtError::BadSignature)?;
        let public = RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        };
        public
            .verify(&RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), &sig)
            .map_err(|_| JwtError::BadSignature)?;
        if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
            if exp <= now_unix() {
                return Err(JwtError::Expired);
            }
        }
        Ok(claims)
    }

    /// The JSON Web Key Set with this key, in Entra's shape (`kty`, `use`, `kid`, `x5t`, `n`, `e`).
    pub fn jwks(&self, issuer: &str) -> Value {
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "x5t": self.kid,
            "n": b64url(&self.n),
            "e": b64url(&self.e),
            "issuer": issuer,
        }]})
    }
}

/// Splits and decodes a compact JWT without checking its signature: `(header, claims)`.
pub fn decode_unverified(token: &str) -> Result<(Value, Value), JwtError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(JwtError::Malformed("expected three segments".into()));
    }
    let decode = |s: &str, what: &str| -> Result<Value, JwtError> {
        let raw = b64url_decode(s)
            .ok_or_else(|| JwtError::Malformed(format!("{what} is not base64url")))?;
        let v: Value = serde_json::from_slice(&raw)
            .map_err(|_| JwtError::Malformed(format!("{what} is not JSON")))?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(JwtError::Malformed(format!("{what} is not a JSON object")))
        }
    };
    Ok((decode(parts[0], "header")?, decode(parts[1], "payload")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_roundtrip() {
        let s = Signer::generate().expect("keygen");
        let t = s
            .sign(&json!({"a": 1, "exp": now_unix() + 60}))
            .expect("sign");
        assert_eq!(s.verify(&t).expect("verify")["a"], 1);
        let restored = Signer::from_pkcs8(&s.pkcs8()).expect("restore");
        assert_eq!(restored.kid(), s.kid());
        assert!(restored.verify(&t).is_ok());
        let expired = s.sign(&json!({"exp": now_unix() - 1})).expect("sign");
        assert_eq!(s.verify(&expired), Err(JwtError::Expired));
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap_or(0) + 2, 'x');
        assert!(s.verify(&tampered).is_err());
    }
}
