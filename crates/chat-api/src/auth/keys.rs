//! Key loading: which key verifies which algorithm, what kind of public key a
//! PEM file holds (the EC curve is sniffed from its OID), and the algorithm a
//! public key serves when none is configured.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};

const HMAC: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Whether `alg` verifies with the shared secret (else with the public key).
pub fn is_hmac(alg: Algorithm) -> bool {
    HMAC.contains(&alg)
}

/// The algorithm to accept by default for a public key (RS256 for RSA keys).
pub fn default_algorithm_for_pem(pem: &[u8]) -> Result<Algorithm, String> {
    KeyKind::of_pem(pem).map(KeyKind::default_algorithm)
}

/// The decoding key for a PEM public key, refused unless it can serve every
/// asymmetric algorithm in `algorithms`.
pub(super) fn public_key(pem: &[u8], algorithms: &[Algorithm]) -> Result<DecodingKey, String> {
    let kind = KeyKind::of_pem(pem)?;
    for alg in algorithms.iter().filter(|alg| !is_hmac(**alg)) {
        if !kind.serves(*alg) {
            return Err(format!(
                "JWT_ALGORITHMS lists {alg:?} but JWT_PUBLIC_KEY_FILE holds {}",
                kind.describe()
            ));
        }
    }
    kind.decoding_key(pem)
}

/// The kind of public key in a PEM file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    fn of_pem(pem: &[u8]) -> Result<Self, String> {
        if DecodingKey::from_rsa_pem(pem).is_ok() {
            return Ok(Self::Rsa);
        }
        if DecodingKey::from_ed_pem(pem).is_ok() {
            return Ok(Self::Ed25519);
        }
        if DecodingKey::from_ec_pem(pem).is_ok() {
            // The SubjectPublicKeyInfo names the curve by OID.
            let der = pem_body(pem).ok_or("JWT_PUBLIC_KEY_FILE is not a PEM public key")?;
            const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
            const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
            if der.windows(P256.len()).any(|w| w == P256) {
                return Ok(Self::EcP256);
            }
            if der.windows(P384.len()).any(|w| w == P384) {
                return Ok(Self::EcP384);
            }
            return Err(
                "JWT_PUBLIC_KEY_FILE holds an EC key on an unsupported curve (use P-256 or P-384)"
                    .into(),
            );
        }
        Err("JWT_PUBLIC_KEY_FILE holds no RSA, EC or Ed25519 public key in PEM form".into())
    }

    fn serves(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (Self::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (Self::EcP256, ES256)
                | (Self::EcP384, ES384)
                | (Self::Ed25519, EdDSA)
        )
    }

    fn default_algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RS256,
            Self::EcP256 => Algorithm::ES256,
            Self::EcP384 => Algorithm::ES384,
            Self::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Rsa => "an RSA key",
            Self::EcP256 => "a P-256 EC key",
            Self::EcP384 => "a P-384 EC key",
            Self::Ed25519 => "an Ed25519 key",
        }
    }

    fn decoding_key(self, pem: &[u8]) -> Result<DecodingKey, String> {
        let key = match self {
            Self::Rsa => DecodingKey::from_rsa_pem(pem),
            Self::EcP256 | Self::EcP384 => DecodingKey::from_ec_pem(pem),
            Self::Ed25519 => DecodingKey::from_ed_pem(pem),
        };
        key.map_err(|error| format!("JWT_PUBLIC_KEY_FILE cannot be used: {error}"))
    }
}

fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).expect("fixture")
    }

    #[test]
    fn each_public_key_kind_has_its_default_algorithm() {
        assert_eq!(
            default_algorithm_for_pem(&fixture("rsa_public.pem")),
            Ok(Algorithm::RS256)
        );
        assert_eq!(
            default_algorithm_for_pem(&fixture("ed_public.pem")),
            Ok(Algorithm::EdDSA)
        );
        assert_eq!(
            default_algorithm_for_pem(&fixture("ec_public.pem")),
            Ok(Algorithm::ES256)
        );
        assert!(default_algorithm_for_pem(b"not a key").is_err());
    }

    #[test]
    fn a_key_that_cannot_serve_a_listed_algorithm_is_refused() {
        let Err(error) = public_key(&fixture("ec_public.pem"), &[Algorithm::RS256]) else {
            panic!("an EC key cannot verify RS256");
        };
        assert!(error.contains("a P-256 EC key"), "{error}");
    }
}
