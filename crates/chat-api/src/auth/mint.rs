//! Minting: development tokens signed with the configured shared secret, for
//! the `token` command, the demo banner and tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::settings::JwtSettings;

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs a token for `sub`, valid for `ttl`, with the configured shared secret
/// (for development, the CLI's `token` command, and tests). It carries the
/// configured issuer and first audience, so the server accepts it.
pub fn mint_token(settings: &JwtSettings, sub: &str, ttl: Duration) -> Result<String, String> {
    let secret = settings.secret.as_ref().ok_or("JWT_SECRET is not set")?;
    let alg = settings
        .hmac_algorithm()
        .ok_or("JWT_ALGORITHMS lists no HS* algorithm")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let claims = MintedClaims {
        sub,
        iat: now,
        exp: now + ttl.as_secs(),
        iss: settings.issuer.as_deref(),
        aud: settings.audience.first().map(String::as_str),
    };
    let key = EncodingKey::from_secret(secret.expose_secret());
    jsonwebtoken::encode(&Header::new(alg), &claims, &key).map_err(|error| error.to_string())
}
