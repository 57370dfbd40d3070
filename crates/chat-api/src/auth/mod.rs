//! Bearer-token authentication, one job per module:
//!
//! - [`settings`]: what configuration says about tokens (keys, algorithms, claims);
//! - [`keys`]: reading the public key's PEM, telling its kind (curve sniffing)
//!   and the algorithm it serves by default;
//! - [`jwks`]: the identity provider's key set (`JWT_JWKS_URL`): fetched,
//!   refreshed in the background, refetched for an unknown `kid`;
//! - [`verify`]: checking a token's algorithm, signature and claims;
//! - [`cache`]: the tokens verified recently, so a repeated token is cheap;
//! - [`mint`]: signing development tokens (the `token` command, the demo banner);
//! - [`extractor`]: [`AuthUser`], which makes a handler authenticated.
//!
//! The error type lives with the other errors ([`crate::error::AuthError`]), so
//! the error module does not depend on this one.

mod cache;
pub mod extractor;
pub mod jwks;
pub mod keys;
pub mod mint;
pub mod settings;
pub mod verify;

pub use crate::error::AuthError;
pub use extractor::AuthUser;
pub use jwks::{JwksSettings, install_tls_provider};
pub use keys::{default_algorithm_for_pem, is_hmac};
pub use mint::mint_token;
pub use settings::JwtSettings;
pub use verify::TokenVerifier;

#[cfg(test)]
pub(crate) mod test_support {
    use std::time::Duration;

    use jsonwebtoken::Algorithm;
    use secrecy::SecretBox;

    use super::JwtSettings;

    /// HS256 with `secret`, no issuer or audience, 30 s of leeway: what an
    /// unconfigured development server accepts, with a known secret.
    pub(crate) fn hs256(secret: &str) -> JwtSettings {
        JwtSettings {
            secret: Some(SecretBox::new(secret.as_bytes().into())),
            public_key_pem: None,
            public_key_file: None,
            jwks: None,
            algorithms: vec![Algorithm::HS256],
            issuer: None,
            audience: Vec::new(),
            leeway: Duration::from_secs(30),
            generated_secret: false,
        }
    }
}
