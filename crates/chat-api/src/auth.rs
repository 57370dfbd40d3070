//! Bearer-token authentication: JWT verification with keys and algorithms from
//! configuration only, and the extractor that yields the caller's [`UserId`].

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::{JwtSettings, is_hmac};
use crate::error::ApiError;

/// Why a request was not authenticated; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header, or a scheme other than `Bearer`.
    Missing(&'static str),
    /// A bearer token was sent and rejected.
    Rejected(String),
}

impl AuthError {
    fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected(reason.into())
    }

    /// The problem `detail`.
    pub fn detail(&self) -> &str {
        match self {
            Self::Missing(reason) => reason,
            Self::Rejected(reason) => reason,
        }
    }

    /// The RFC 6750 challenge.
    pub fn challenge(&self) -> String {
        match self {
            Self::Missing(_) => "Bearer".to_owned(),
            Self::Rejected(reason) => {
                format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"")
            }
        }
    }
}

/// The claims chat-api reads; every other claim is ignored.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: serde_json::Value,
    /// Seconds since the epoch; required (jsonwebtoken checks it first).
    exp: Option<f64>,
    /// Seconds since the epoch, if present.
    nbf: Option<f64>,
}

/// What a verified token established, and until when.
#[derive(Clone, Copy, Debug)]
struct Verified {
    user: UserId,
    exp: f64,
    nbf: Option<f64>,
}

/// Tokens verified recently, so a client's repeated token skips the base64,
/// JSON and signature work. Keyed by the whole token (a different signature is a
/// different key); `exp` and `nbf` are still checked on every hit. Bounded: the
/// map is emptied when full. Per verifier, never shared between key sets.
#[derive(Debug, Default)]
struct VerifiedTokens {
    entries: Mutex<HashMap<Box<str>, Verified>>,
}

impl VerifiedTokens {
    const CAPACITY: usize = 10_000;

    fn lookup(&self, token: &str, now: f64, leeway: f64) -> Option<UserId> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let hit = entries.get(token)?;
        let current = hit.exp + leeway >= now && hit.nbf.is_none_or(|nbf| nbf - leeway <= now);
        current.then_some(hit.user)
    }

    fn remember(&self, token: &str, verified: Verified) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(token.into(), verified);
    }
}

/// Verifies tokens against the configured keys and algorithms.
pub struct TokenVerifier {
    secret: Option<DecodingKey>,
    public_key: Option<DecodingKey>,
    /// One prepared validation per accepted algorithm.
    validations: Vec<(Algorithm, Validation)>,
    leeway: f64,
    verified: VerifiedTokens,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.validations.iter().map(|(alg, _)| *alg).collect();
        f.debug_struct("TokenVerifier")
            .field("algorithms", &algorithms)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Builds the keys once; refuses a public key that cannot serve every
    /// configured asymmetric algorithm.
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let secret = settings
            .secret
            .as_ref()
            .map(|secret| DecodingKey::from_secret(secret.expose_secret()));
        let public_key = match &settings.public_key_pem {
            Some(pem) => {
                let kind = KeyKind::of_pem(pem)?;
                for alg in settings.algorithms.iter().filter(|alg| !is_hmac(**alg)) {
                    if !kind.serves(*alg) {
                        return Err(format!(
                            "JWT_ALGORITHMS lists {alg:?} but JWT_PUBLIC_KEY_FILE holds {}",
                            kind.describe()
                        ));
                    }
                }
                Some(kind.decoding_key(pem)?)
            }
            None => None,
        };
        let validations = settings
            .algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                // `sub` is checked below, so a non-string `sub` is "not a UUID", not "missing".
                let mut required = vec!["exp"];
                validation.leeway = settings.leeway.as_secs();
                validation.validate_exp = true;
                validation.validate_nbf = true;
                if let Some(issuer) = &settings.issuer {
                    validation.set_issuer(&[issuer]);
                    required.push("iss");
                }
                if settings.audience.is_empty() {
                    // No audience configured: a token's `aud` is ignored.
                    validation.validate_aud = false;
                } else {
                    validation.set_audience(&settings.audience);
                    required.push("aud");
                }
                validation.set_required_spec_claims(&required);
                (*alg, validation)
            })
            .collect();
        Ok(Self {
            secret,
            public_key,
            validations,
            leeway: settings.leeway.as_secs_f64(),
            verified: VerifiedTokens::default(),
        })
    }

    /// The user a token speaks for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        if let Some(user) = self.verified.lookup(token, now, self.leeway) {
            return Ok(user);
        }
        let verified = self.verify_signed(token)?;
        self.verified.remember(token, verified);
        Ok(verified.user)
    }

    /// The full check: algorithm from the configured list, signature, claims.
    fn verify_signed(&self, token: &str) -> Result<Verified, AuthError> {
        let alg = header_algorithm(token)?;
        let validation = self
            .validations
            .iter()
            .find(|(accepted, _)| *accepted == alg)
            .map(|(_, validation)| validation)
            .ok_or_else(|| {
                AuthError::rejected(format!("token algorithm {alg:?} is not accepted"))
            })?;
        let key = if is_hmac(alg) {
            &self.secret
        } else {
            &self.public_key
        };
        let key = key
            .as_ref()
            .ok_or_else(|| AuthError::rejected("token algorithm is not accepted"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| AuthError::Rejected(describe(error.kind())))?
            .claims;
        if claims.sub.is_null() {
            return Err(AuthError::rejected("token lacks the required 'sub' claim"));
        }
        let user = claims
            .sub
            .as_str()
            .and_then(|sub| UserId::parse(sub).ok())
            .ok_or_else(|| AuthError::rejected("token 'sub' claim is not a UUID"))?;
        let exp = claims
            .exp
            .ok_or_else(|| AuthError::rejected("token lacks the required 'exp' claim"))?;
        Ok(Verified {
            user,
            exp,
            nbf: claims.nbf,
        })
    }

    /// Reads and verifies the `Authorization` header.
    pub fn authenticate(&self, request: &HttpRequest) -> Result<UserId, AuthError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .ok_or(AuthError::Missing(
                "missing bearer token: send Authorization: Bearer <JWT>",
            ))?;
        let value = header
            .to_str()
            .map_err(|_| AuthError::rejected("Authorization header is not ASCII"))?;
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Missing("Authorization scheme must be Bearer"));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::rejected("bearer token is empty"));
        }
        self.verify(token)
    }
}

/// The `alg` of a token's header, before anything is trusted: only used to
/// pick among the configured algorithms, never to widen them.
fn header_algorithm(token: &str) -> Result<Algorithm, AuthError> {
    let malformed = || AuthError::rejected("token is malformed: expected three base64url segments");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
    let alg = header
        .get("alg")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| AuthError::rejected("token header has no 'alg'"))?;
    alg.parse::<Algorithm>().map_err(|_| {
        let shown: String = alg
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        AuthError::rejected(format!("token algorithm '{shown}' is not accepted"))
    })
}

/// A client-facing reason for each rejection.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token has expired".into(),
        ErrorKind::ImmatureSignature => "token is not valid yet (nbf is in the future)".into(),
        ErrorKind::InvalidSignature => "token signature is invalid".into(),
        ErrorKind::InvalidIssuer => "token issuer is not accepted".into(),
        ErrorKind::InvalidAudience => "token audience is not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("token lacks the required '{}' claim", sanitize(claim))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            format!("token claim '{}' is malformed", sanitize(claim))
        }
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => "token algorithm is not accepted".into(),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "token is malformed".into(),
        _ => "token is invalid".into(),
    }
}

fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(32)
        .collect()
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

/// The algorithm to accept by default for a public key (RS256 for RSA keys).
pub fn default_algorithm_for_pem(pem: &[u8]) -> Result<Algorithm, String> {
    KeyKind::of_pem(pem).map(KeyKind::default_algorithm)
}

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

/// The authenticated caller: extracting it verifies the bearer token, so a
/// handler that takes one cannot run unauthenticated.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(verifier) = request.app_data::<web::Data<TokenVerifier>>() else {
            return ready(Err(ApiError::internal(
                "token verification is not configured",
            )));
        };
        let result = verifier.authenticate(request).map(|user| {
            tracing::Span::current().record("user_id", tracing::field::display(user));
            AuthUser(user)
        });
        ready(result.map_err(ApiError::Unauthorized))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn verifier(pairs: &[(&str, &str)]) -> TokenVerifier {
        let map: std::collections::HashMap<_, _> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = Config::from_lookup(|key| map.get(key).cloned()).expect("valid config");
        TokenVerifier::new(&config.jwt).expect("valid keys")
    }

    const SUB: &str = "5d1c0f52-3f8e-4c2b-8a49-6c3b7f1e9d20";

    fn settings(pairs: &[(&str, &str)]) -> JwtSettings {
        let map: std::collections::HashMap<_, _> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|key| map.get(key).cloned())
            .expect("valid config")
            .jwt
    }

    fn mint(pairs: &[(&str, &str)], sub: &str) -> String {
        mint_token(&settings(pairs), sub, Duration::from_secs(60)).expect("token")
    }

    #[test]
    fn a_token_signed_with_the_secret_names_its_user() {
        let verifier = verifier(&[("JWT_SECRET", "secret")]);
        let token = mint(&[("JWT_SECRET", "secret")], SUB);
        assert_eq!(
            verifier.verify(&token).map(|u| u.to_string()).as_deref(),
            Ok(SUB)
        );
        let upper = mint(&[("JWT_SECRET", "secret")], &SUB.to_uppercase());
        assert_eq!(
            verifier.verify(&upper).map(|u| u.to_string()).as_deref(),
            Ok(SUB)
        );
    }

    #[test]
    fn minted_tokens_carry_the_configured_issuer_and_audience() {
        let pairs = [
            ("JWT_SECRET", "secret"),
            ("JWT_ISSUER", "me"),
            ("JWT_AUDIENCE", "a,b"),
        ];
        assert!(verifier(&pairs).verify(&mint(&pairs, SUB)).is_ok());
    }

    #[test]
    fn algorithms_outside_the_list_are_refused_whatever_the_signature() {
        let verifier = verifier(&[("JWT_SECRET", "secret")]);
        let hs512 = mint(
            &[("JWT_SECRET", "secret"), ("JWT_ALGORITHMS", "HS512")],
            SUB,
        );
        assert_eq!(
            verifier.verify(&hs512),
            Err(AuthError::Rejected(
                "token algorithm HS512 is not accepted".into()
            ))
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(
            verifier.verify(&none),
            Err(AuthError::Rejected(
                "token algorithm 'none' is not accepted".into()
            ))
        );
    }

    #[test]
    fn a_remembered_token_still_expires_and_waits_for_nbf() {
        let cache = VerifiedTokens::default();
        let user = UserId::parse(SUB).expect("uuid");
        cache.remember(
            "t",
            Verified {
                user,
                exp: 1_000.0,
                nbf: Some(500.0),
            },
        );
        assert_eq!(cache.lookup("t", 700.0, 30.0), Some(user));
        assert_eq!(
            cache.lookup("t", 1_029.0, 30.0),
            Some(user),
            "within the leeway"
        );
        assert_eq!(
            cache.lookup("t", 1_031.0, 30.0),
            None,
            "expired: verified again, and refused"
        );
        assert_eq!(cache.lookup("t", 469.0, 30.0), None, "not valid yet");
        assert_eq!(cache.lookup("other", 700.0, 30.0), None);
    }

    #[test]
    fn an_expired_token_is_refused_even_after_a_successful_verification() {
        let pairs = [("JWT_SECRET", "secret"), ("JWT_LEEWAY_SECONDS", "0")];
        let verifier = verifier(&pairs);
        let token = mint(&pairs, SUB);
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok(), "from the cache");
        let mut claims = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"secret"),
            &Validation::new(Algorithm::HS256),
        )
        .expect("decodes")
        .claims;
        claims["exp"] = serde_json::json!(1);
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("token");
        assert_eq!(
            verifier.verify(&expired),
            Err(AuthError::Rejected("token has expired".into()))
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_crash() {
        let verifier = verifier(&[("JWT_SECRET", "secret")]);
        for token in ["", "a", "a.b", "a.b.c.d", "!!!.???.***", "e30.e30.e30"] {
            assert!(
                matches!(verifier.verify(token), Err(AuthError::Rejected(_))),
                "{token:?}"
            );
        }
    }
}
