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

/// The fewest bytes of shared secret accepted with `APP_ENV=production` for an
/// HMAC algorithm: the hash's output size (RFC 7518 §3.2), and never under 32.
pub fn min_secret_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// The fewest bits of RSA modulus accepted with `APP_ENV=production`.
pub const MIN_RSA_BITS: usize = 2048;

/// The rules `APP_ENV=production` adds for keys: a secret long enough for
/// every listed HMAC algorithm (at least 32 bytes in any case), and an RSA
/// public key of at least 2048 bits. `Err` is the one-line reason.
pub fn check_production_keys(
    secret: Option<&[u8]>,
    public_key_pem: Option<&[u8]>,
    algorithms: &[Algorithm],
) -> Result<(), String> {
    if let Some(secret) = secret {
        // The strictest rule among the listed HMAC algorithms (32 bytes for none).
        let strictest = algorithms
            .iter()
            .copied()
            .filter(|alg| is_hmac(*alg))
            .max_by_key(|alg| min_secret_bytes(*alg));
        let needed = strictest.map_or(32, min_secret_bytes);
        if secret.len() < needed {
            let reason = match strictest {
                Some(alg) if needed > 32 => format!(" for {alg:?} (RFC 7518 section 3.2)"),
                _ => String::new(),
            };
            return Err(format!(
                "JWT_SECRET is {} bytes; APP_ENV=production requires at least {needed}{reason}",
                secret.len()
            ));
        }
    }
    if let Some(pem) = public_key_pem
        && KeyKind::of_pem(pem) == Ok(KeyKind::Rsa)
    {
        match rsa_modulus_bits(pem) {
            Some(bits) if bits >= MIN_RSA_BITS => {}
            Some(bits) => {
                return Err(format!(
                    "JWT_PUBLIC_KEY_FILE holds a {bits}-bit RSA key; APP_ENV=production requires at least {MIN_RSA_BITS} bits"
                ));
            }
            None => {
                return Err(
                    "JWT_PUBLIC_KEY_FILE holds an RSA key whose size cannot be read; APP_ENV=production requires at least 2048 bits"
                        .into(),
                );
            }
        }
    }
    Ok(())
}

/// The size in bits of the modulus of an RSA public key in PEM form, either
/// a SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`).
pub fn rsa_modulus_bits(pem: &[u8]) -> Option<usize> {
    let der = pem_body(pem)?;
    let (tag, outer, _) = der_element(&der)?;
    if tag != 0x30 {
        return None;
    }
    let (first_tag, first, rest) = der_element(outer)?;
    let modulus = match first_tag {
        // PKCS#1: RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        0x02 => first,
        // SPKI: SEQUENCE { AlgorithmIdentifier, BIT STRING { RSAPublicKey } }
        0x30 => {
            let (bits_tag, bit_string, _) = der_element(rest)?;
            let (&unused, key) = bit_string.split_first()?;
            if bits_tag != 0x03 || unused != 0 {
                return None;
            }
            let (tag, inner, _) = der_element(key)?;
            if tag != 0x30 {
                return None;
            }
            let (tag, modulus, _) = der_element(inner)?;
            if tag != 0x02 {
                return None;
            }
            modulus
        }
        _ => return None,
    };
    significant_bits(modulus)
}

/// The size in bits of an RSA modulus given as a JWK's `n` (base64url, big-endian).
pub(super) fn rsa_modulus_bits_of(n: &str) -> Option<usize> {
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .ok()?;
    significant_bits(&modulus)
}

/// The bits of a big-endian unsigned integer, leading zeros aside (a positive
/// DER INTEGER may carry a zero byte that is not part of the size).
fn significant_bits(integer: &[u8]) -> Option<usize> {
    let start = integer.iter().position(|byte| *byte != 0)?;
    let significant = &integer[start..];
    let leading = significant.first()?.leading_zeros() as usize;
    Some(significant.len() * 8 - leading)
}

/// One DER element at the start of `input`: its tag, its contents and what follows.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    let (contents, rest) = rest.split_at(length);
    Some((tag, contents, rest))
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

/// The kind of a public key (from a PEM file or a JWKS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
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

    /// Whether a key of this kind verifies `alg`.
    pub(super) fn serves(self, alg: Algorithm) -> bool {
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
    fn rsa_key_sizes_are_read_from_both_pem_forms() {
        assert_eq!(rsa_modulus_bits(&fixture("rsa_public.pem")), Some(2048));
        assert_eq!(
            rsa_modulus_bits(&fixture("rsa_2047_public.pem")),
            Some(2047)
        );
        assert_eq!(rsa_modulus_bits(&fixture("rsa_2047_pkcs1.pem")), Some(2047));
        assert_eq!(
            rsa_modulus_bits(&fixture("rsa_1024_public.pem")),
            Some(1024)
        );
        assert_eq!(rsa_modulus_bits(b"not a key"), None);
    }

    #[test]
    fn production_wants_2048_bit_rsa_keys() {
        let rs256 = [Algorithm::RS256];
        assert_eq!(
            check_production_keys(None, Some(&fixture("rsa_public.pem")), &rs256),
            Ok(())
        );
        for (name, bits) in [
            ("rsa_2047_public.pem", 2047),
            ("rsa_2047_pkcs1.pem", 2047),
            ("rsa_1024_public.pem", 1024),
        ] {
            let Err(error) = check_production_keys(None, Some(&fixture(name)), &rs256) else {
                panic!("{name} is under 2048 bits");
            };
            assert_eq!(
                error,
                format!(
                    "JWT_PUBLIC_KEY_FILE holds a {bits}-bit RSA key; APP_ENV=production requires at least 2048 bits"
                )
            );
        }
        // Other key kinds have no size rule here.
        let es256 = [Algorithm::ES256];
        assert_eq!(
            check_production_keys(None, Some(&fixture("ec_public.pem")), &es256),
            Ok(())
        );
    }

    #[test]
    fn production_secrets_are_as_long_as_the_hash() {
        let cases = [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ];
        for (alg, needed) in cases {
            let short = vec![b'x'; needed - 1];
            let Err(error) = check_production_keys(Some(short.as_slice()), None, &[alg]) else {
                panic!("{alg:?} with {} bytes", needed - 1);
            };
            assert!(
                error.starts_with(&format!(
                    "JWT_SECRET is {} bytes; APP_ENV=production requires at least {needed}",
                    needed - 1
                )),
                "{error}"
            );
            if needed > 32 {
                assert!(error.contains(&format!("{alg:?}")), "{error}");
            }
            assert_eq!(
                check_production_keys(Some(vec![b'x'; needed].as_slice()), None, &[alg]),
                Ok(())
            );
        }
        // The strictest listed algorithm decides.
        let both = [Algorithm::HS256, Algorithm::HS512];
        assert!(check_production_keys(Some(&[b'x'; 48][..]), None, &both).is_err());
        // A secret next to a public key still needs 32 bytes.
        assert!(check_production_keys(Some(&[b'x'; 31][..]), None, &[Algorithm::RS256]).is_err());
    }

    #[test]
    fn a_key_that_cannot_serve_a_listed_algorithm_is_refused() {
        let Err(error) = public_key(&fixture("ec_public.pem"), &[Algorithm::RS256]) else {
            panic!("an EC key cannot verify RS256");
        };
        assert!(error.contains("a P-256 EC key"), "{error}");
    }
}
