//! Verification: the algorithm from the configured list (never widened by
//! the token), the signature with the matching key, then the claims. A token
//! verified once is remembered (see [`super::cache`]).
//!
//! HS* tokens verify with the secret; the others with the public key file or
//! with the identity provider's key set ([`super::jwks`]). Everything here is
//! synchronous except one case: a token naming a `kid` the key set lacks,
//! which [`TokenVerifier::authenticate`] hands back for a refetch
//! ([`TokenVerifier::authenticate_after_refetch`]), so the common path never
//! allocates a future.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::UserId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::cache::{Verified, VerifiedTokens};
use super::jwks::Jwks;
use super::keys::{is_hmac, public_key};
use super::settings::JwtSettings;
use crate::error::{ApiError, AuthError};

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

/// Why the keys at hand did not admit a token.
pub(super) enum Miss {
    /// Refused, for this reason.
    Refused(AuthError),
    /// Its `kid` names no key of the set: worth one refetch (a rotation).
    UnknownKey,
    /// No key set has been fetched yet.
    NoKeySet,
}

impl Miss {
    fn into_auth_error(self) -> AuthError {
        match self {
            Self::Refused(error) => error,
            Self::UnknownKey => AuthError::rejected("token 'kid' names no key of the key set"),
            Self::NoKeySet => AuthError::rejected("no key set has been fetched yet"),
        }
    }

    fn into_api_error(self) -> ApiError {
        match self {
            // The token may well be good: the service cannot judge it yet.
            Self::NoKeySet => ApiError::Unavailable(None),
            miss => ApiError::Unauthorized(miss.into_auth_error()),
        }
    }
}

/// What [`TokenVerifier::authenticate`] concluded.
#[derive(Debug)]
pub enum Authentication {
    /// The caller, or why not.
    Done(Result<UserId, ApiError>),
    /// The token names a key the key set lacks (or no set is fetched yet):
    /// pass it to [`TokenVerifier::authenticate_after_refetch`].
    Refetch(String),
}

/// Verifies tokens against the configured keys and algorithms.
pub struct TokenVerifier {
    secret: Option<DecodingKey>,
    public_key: Option<DecodingKey>,
    /// The identity provider's key set, when `JWT_JWKS_URL` is set.
    jwks: Option<Arc<Jwks>>,
    /// One prepared validation per accepted algorithm.
    validations: Vec<(Algorithm, Validation)>,
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
    /// configured asymmetric algorithm. A key set is not fetched here: see
    /// [`TokenVerifier::start_key_refresh`].
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let secret = settings
            .secret
            .as_ref()
            .map(|secret| DecodingKey::from_secret(secret.expose_secret()));
        let public_key = settings
            .public_key_pem
            .as_deref()
            .map(|pem| public_key(pem, &settings.algorithms))
            .transpose()?;
        let jwks = settings
            .jwks
            .clone()
            .map(Jwks::new)
            .transpose()?
            .map(Arc::new);
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
            jwks,
            validations,
            verified: VerifiedTokens::new(settings.leeway.as_secs_f64()),
        })
    }

    /// With a key set: fetches it once (waiting at most a few seconds; the
    /// service starts anyway), then keeps it current in a background task
    /// that ends when the verifier is dropped or the handle aborts it.
    pub async fn start_key_refresh(&self) -> Option<tokio::task::AbortHandle> {
        match &self.jwks {
            Some(jwks) => Some(jwks.start().await),
            None => None,
        }
    }

    /// False while a configured key set has never been fetched.
    pub fn key_set_ready(&self) -> bool {
        self.jwks.as_ref().is_none_or(|jwks| jwks.is_ready())
    }

    /// The `jwks_refresh_failures_total` counter, when there is a key set.
    pub fn jwks_refresh_failures(&self) -> Option<prometheus::IntCounter> {
        self.jwks.as_ref().map(|jwks| jwks.failures())
    }

    /// The user a token speaks for, or why it is refused, judged against
    /// the keys at hand (a `kid` the key set lacks is refused, not refetched).
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        self.check(token).map_err(Miss::into_auth_error)
    }

    /// The remembered answer for a token, else the full check.
    fn check(&self, token: &str) -> Result<UserId, Miss> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let generation = self.jwks.as_ref().map_or(0, |jwks| jwks.generation());
        if let Some(user) = self.verified.lookup(token, now, generation) {
            return Ok(user);
        }
        let verified = self.verify_signed(token)?;
        self.verified.remember(token, verified);
        Ok(verified.user)
    }

    /// The full check: algorithm from the configured list, signature, claims.
    fn verify_signed(&self, token: &str) -> Result<Verified, Miss> {
        let (alg, kid) = read_header(token).map_err(Miss::Refused)?;
        let validation = self
            .validations
            .iter()
            .find(|(accepted, _)| *accepted == alg)
            .map(|(_, validation)| validation)
            .ok_or_else(|| {
                Miss::Refused(AuthError::rejected(format!(
                    "token algorithm {alg:?} is not accepted"
                )))
            })?;
        let not_accepted = || Miss::Refused(AuthError::rejected("token algorithm is not accepted"));
        // Holds the key set the key comes from for as long as the key is used.
        let key_set;
        let (key, generation) = if is_hmac(alg) {
            (self.secret.as_ref().ok_or_else(not_accepted)?, None)
        } else if let Some(key) = &self.public_key {
            (key, None)
        } else if let Some(jwks) = &self.jwks {
            key_set = jwks.current().ok_or(Miss::NoKeySet)?;
            (
                key_set.select(alg, kid.as_deref())?,
                Some(key_set.generation),
            )
        } else {
            return Err(not_accepted());
        };
        let refused = |reason: &str| Miss::Refused(AuthError::rejected(reason));
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|error| Miss::Refused(AuthError::Rejected(describe(error.kind()))))?
            .claims;
        if claims.sub.is_null() {
            return Err(refused("token lacks the required 'sub' claim"));
        }
        let user = claims
            .sub
            .as_str()
            .and_then(|sub| UserId::parse(sub).ok())
            .ok_or_else(|| refused("token 'sub' claim is not a UUID"))?;
        let exp = claims
            .exp
            .ok_or_else(|| refused("token lacks the required 'exp' claim"))?;
        Ok(Verified {
            user,
            exp,
            nbf: claims.nbf,
            generation,
        })
    }

    /// Reads and verifies the `Authorization` header, without waiting for
    /// anything: a token for which the key set should be refetched comes
    /// back as [`Authentication::Refetch`].
    pub fn authenticate(&self, request: &HttpRequest) -> Authentication {
        let token = match bearer_token(request) {
            Ok(token) => token,
            Err(error) => return Authentication::Done(Err(ApiError::Unauthorized(error))),
        };
        match self.check(token) {
            Ok(user) => Authentication::Done(Ok(user)),
            Err(Miss::UnknownKey | Miss::NoKeySet) if self.jwks.is_some() => {
                Authentication::Refetch(token.to_owned())
            }
            Err(miss) => Authentication::Done(Err(miss.into_api_error())),
        }
    }

    /// Refetches the key set (at most one fetch in flight, and at most one
    /// refetch per `JWT_JWKS_MIN_REFETCH_SECONDS`), then judges the token
    /// against the set as it is now: a key rotated in works on first use.
    pub async fn authenticate_after_refetch(&self, token: &str) -> Result<UserId, ApiError> {
        if let Some(jwks) = &self.jwks {
            jwks.refetch_for_unknown_key().await;
        }
        self.check(token).map_err(Miss::into_api_error)
    }
}

/// The bearer token of the `Authorization` header.
fn bearer_token(request: &HttpRequest) -> Result<&str, AuthError> {
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
    Ok(token)
}

/// The `alg` and `kid` of a token's header, before anything is trusted: only
/// used to pick among the configured algorithms (never to widen them) and
/// among the keys of the key set.
fn read_header(token: &str) -> Result<(Algorithm, Option<String>), AuthError> {
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
    let alg = alg.parse::<Algorithm>().map_err(|_| {
        let shown: String = alg
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        AuthError::rejected(format!("token algorithm '{shown}' is not accepted"))
    })?;
    let kid = match header.get("kid") {
        None => None,
        Some(serde_json::Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(AuthError::rejected("token header 'kid' is not a string")),
    };
    Ok((alg, kid))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header};

    use super::*;
    use crate::auth::mint_token;
    use crate::auth::test_support::hs256;

    /// Settings from the `JWT_*` pairs these tests use (the parsing itself is
    /// tested with the configuration).
    fn settings(pairs: &[(&str, &str)]) -> JwtSettings {
        let mut settings = hs256("unset");
        for (key, value) in pairs {
            match *key {
                "JWT_SECRET" => {
                    settings.secret = Some(secrecy::SecretBox::new(value.as_bytes().into()));
                }
                "JWT_ALGORITHMS" => {
                    settings.algorithms = value
                        .split(',')
                        .map(|alg| alg.trim().parse().expect("algorithm"))
                        .collect();
                }
                "JWT_ISSUER" => settings.issuer = Some((*value).to_owned()),
                "JWT_AUDIENCE" => settings.audience = value.split(',').map(str::to_owned).collect(),
                "JWT_LEEWAY_SECONDS" => {
                    settings.leeway = Duration::from_secs(value.parse().expect("seconds"))
                }
                other => panic!("not used by these tests: {other}"),
            }
        }
        settings
    }

    fn verifier(pairs: &[(&str, &str)]) -> TokenVerifier {
        TokenVerifier::new(&settings(pairs)).expect("valid keys")
    }

    const SUB: &str = "5d1c0f52-3f8e-4c2b-8a49-6c3b7f1e9d20";

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
    fn the_header_gives_alg_and_a_string_kid_only() {
        let header = |json: &str| {
            let token = format!(
                "{}.{}.sig",
                URL_SAFE_NO_PAD.encode(json),
                URL_SAFE_NO_PAD.encode("{}")
            );
            read_header(&token)
        };
        assert_eq!(
            header(r#"{"alg":"RS256","kid":"2026-01"}"#),
            Ok((Algorithm::RS256, Some("2026-01".to_owned())))
        );
        assert_eq!(header(r#"{"alg":"ES256"}"#), Ok((Algorithm::ES256, None)));
        assert_eq!(
            header(r#"{"alg":"RS256","kid":7}"#),
            Err(AuthError::Rejected(
                "token header 'kid' is not a string".into()
            ))
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
