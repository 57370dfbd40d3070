//! What the configuration says about tokens. Read from the environment by
//! [`crate::config`]; everything here only uses it.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use secrecy::SecretBox;

use super::jwks::JwksSettings;
use super::keys::is_hmac;

/// Keys, accepted algorithms and claim checks for bearer tokens.
#[derive(Debug)]
pub struct JwtSettings {
    /// Shared secret for HS256/384/512 (raw UTF-8 bytes).
    pub secret: Option<SecretBox<[u8]>>,
    /// PEM public key for RS*/PS*/ES*/EdDSA, read at start.
    pub public_key_pem: Option<Vec<u8>>,
    /// Where the public key was read from, for messages.
    pub public_key_file: Option<PathBuf>,
    /// The identity provider's key set (`JWT_JWKS_URL`), for the algorithms
    /// that are not HS*; never together with a public key file.
    pub jwks: Option<JwksSettings>,
    /// Algorithms a token may use; never taken from the token itself.
    pub algorithms: Vec<Algorithm>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Accepted audiences; a token passes when its `aud` names one of them.
    pub audience: Vec<String>,
    /// Allowed clock skew for `exp` and `nbf`.
    pub leeway: Duration,
    /// True when no key was configured and a random secret was made (development only).
    pub generated_secret: bool,
}

impl JwtSettings {
    /// The first HMAC algorithm accepted, for minting development tokens.
    pub fn hmac_algorithm(&self) -> Option<Algorithm> {
        self.algorithms.iter().copied().find(|alg| is_hmac(*alg))
    }
}
