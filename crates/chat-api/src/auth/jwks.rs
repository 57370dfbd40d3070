//! Keys from an identity provider: the JSON Web Key Set (RFC 7517) at
//! `JWT_JWKS_URL`, fetched at start, kept current in the background, and
//! refetched when a token names a key the set lacks (a rotation).
//!
//! The request path only reads: [`Jwks::current`] clones an `Arc` under a read
//! lock, so verifying against a known key costs what a PEM key costs. Fetches
//! are rare and go through one `tokio` mutex, so at most one is in flight,
//! whoever asked (the background task or any request on any actix worker).
//! Refetches for unknown `kid`s are further limited to one per
//! `JWT_JWKS_MIN_REFETCH_SECONDS`, so a flood of made-up `kid`s costs the
//! provider one request per interval, not one per token.
//!
//! A fetch that fails (unreachable, an error status, not a key set, no usable
//! key) changes nothing: the last good set keeps serving, and the failure is
//! logged and counted (`jwks_refresh_failures_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use prometheus::IntCounter;
use reqwest::Url;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use serde::Deserialize;

use super::keys::{KeyKind, rsa_modulus_bits_of};
use super::verify::Miss;
use crate::error::{AuthError, Chain};

/// Where the key set is and how often to fetch it.
#[derive(Clone)]
pub struct JwksSettings {
    /// The `http://` or `https://` URL of the set. It may carry credentials,
    /// so it is only ever shown through [`redacted`].
    pub url: Url,
    /// How often the set is fetched in the background (a shorter
    /// `Cache-Control: max-age` wins).
    pub refresh: Duration,
    /// The least time between two refetches caused by unknown `kid`s.
    pub min_refetch: Duration,
    /// RSA keys with a smaller modulus are ignored (2048 with
    /// `APP_ENV=production`, else 0).
    pub min_rsa_bits: usize,
}

impl std::fmt::Debug for JwksSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSettings")
            .field("url", &redacted(&self.url))
            .field("refresh", &self.refresh)
            .field("min_refetch", &self.min_refetch)
            .field("min_rsa_bits", &self.min_rsa_bits)
            .finish()
    }
}

/// The URL without what may be secret (user, password, query, fragment), for logs.
pub fn redacted(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// How long one fetch may take, all told. A request with an unknown `kid`
/// waits at most twice this: for a fetch in flight, then for its own.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest key set read; real ones are a few kilobytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The shortest time between two background fetches, whatever the provider's `max-age`.
const SHORTEST_REFRESH: Duration = Duration::from_secs(1);
/// After a failed fetch the next comes sooner than the refresh interval
/// (1 s, then doubling up to this), so a service that started with the
/// provider away becomes ready soon after the provider answers.
const LONGEST_RETRY: Duration = Duration::from_secs(5);

/// Makes ring the process's rustls provider, unless one is installed
/// already. reqwest's rustls backend takes the process default; ring is the
/// provider sqlx already links, so no second crypto library (and no C build
/// of aws-lc) comes with the JWKS client. Any reqwest client in the process
/// (the tests' too) needs this before it is built.
pub fn install_tls_provider() {
    // An error only says that a provider is installed already: keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One usable key of the set.
struct SetKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The key's `alg`, when it has one: then only that algorithm may use it.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl SetKey {
    /// A usable key of a parsed set, as the set keeps it.
    fn from_usable((jwk, kind, alg, key): (Jwk, KeyKind, Option<Algorithm>, DecodingKey)) -> Self {
        Self {
            kid: jwk.common.key_id,
            kind,
            alg,
            key,
        }
    }

    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.serves(alg) && self.alg.is_none_or(|own| own == alg)
    }
}

/// A fetched key set, as the verifier uses it. Never changed: a new fetch
/// makes a new one.
pub(super) struct KeySet {
    keys: Vec<SetKey>,
    /// The usable keys as fetched, to tell whether a new fetch changed anything.
    source: JwkSet,
    /// Why keys were left out, to log each reason once.
    ignored: Vec<Ignored>,
    /// Changes whenever the usable keys change; tokens verified with an
    /// older generation are verified again (see [`super::cache`]).
    pub(super) generation: u64,
}

impl KeySet {
    /// The key for a token with this algorithm and `kid`: the key named by
    /// the `kid`, or, for a token without one, the only key that fits.
    pub(super) fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, Miss> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Err(Miss::UnknownKey);
                }
                named
                    .find(|key| key.fits(alg))
                    .map(|key| &key.key)
                    .ok_or_else(|| {
                        Miss::Refused(AuthError::rejected(format!(
                            "the key the token's 'kid' names cannot verify {alg:?}"
                        )))
                    })
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Ok(&key.key),
                    (None, _) => Err(Miss::Refused(AuthError::rejected(format!(
                        "no key of the key set verifies {alg:?}"
                    )))),
                    (Some(_), Some(_)) => Err(Miss::Refused(AuthError::rejected(
                        "token has no 'kid' and several keys of the key set fit its algorithm",
                    ))),
                }
            }
        }
    }
}

/// A key left out of the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ignored {
    reason: String,
    /// Worth a warning (a key the provider means for signing but that is too
    /// weak here), rather than a debug line (an encryption key, another kty).
    warn: bool,
}

/// What fetching established: the new set, and the provider's `max-age`.
type Fetched = (Parsed, Option<Duration>);

/// The keys a document yields.
struct Parsed {
    usable: Vec<(Jwk, KeyKind, Option<Algorithm>, DecodingKey)>,
    ignored: Vec<Ignored>,
}

/// Reads a key set, keeping the keys chat-api can verify with: `kty` RSA,
/// EC on P-256 or P-384, OKP on Ed25519, with `use` absent or `sig`. One key
/// that cannot be read is left out; a document that is not a key set, or has
/// no usable key, is an error (and the last good set keeps serving).
fn parse(body: &[u8], min_rsa_bits: usize) -> Result<Parsed, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|error| format!("the answer is not a JSON Web Key Set: {error}"))?;
    let mut usable = Vec::new();
    let mut ignored = Vec::new();
    for (index, value) in document.keys.into_iter().enumerate() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            ignored.push(Ignored {
                reason: format!("key {index} is not a JWK"),
                warn: false,
            });
            continue;
        };
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key '{}'", kid.escape_debug()),
            None => format!("key {index}"),
        };
        match usable_key(&jwk, min_rsa_bits) {
            Ok((kind, alg, key)) => usable.push((jwk, kind, alg, key)),
            Err(mut why) => {
                why.reason = format!("{name} is ignored: {}", why.reason);
                ignored.push(why);
            }
        }
    }
    if usable.is_empty() {
        return Err(
            "the key set has no usable key (RSA, EC P-256 or P-384, or Ed25519, for signatures)"
                .into(),
        );
    }
    Ok(Parsed { usable, ignored })
}

/// The kind, `alg` and decoding key of a usable key, or why it is not one.
fn usable_key(
    jwk: &Jwk,
    min_rsa_bits: usize,
) -> Result<(KeyKind, Option<Algorithm>, DecodingKey), Ignored> {
    let quiet = |reason: &str| Ignored {
        reason: reason.to_owned(),
        warn: false,
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Err(quiet("its use is not sig")),
    }
    let kind = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let bits = rsa_modulus_bits_of(&rsa.n)
                .ok_or_else(|| quiet("its RSA modulus is not base64url"))?;
            if bits < min_rsa_bits {
                return Err(Ignored {
                    reason: format!(
                        "a {bits}-bit RSA key; APP_ENV=production requires at least {min_rsa_bits} bits"
                    ),
                    warn: true,
                });
            }
            KeyKind::Rsa
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => KeyKind::EcP256,
            EllipticCurve::P384 => KeyKind::EcP384,
            _ => return Err(quiet("its curve is not P-256 or P-384")),
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            KeyKind::Ed25519
        }
        _ => return Err(quiet("its kty is not RSA, EC or OKP (Ed25519)")),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => {
            let alg = alg
                .to_string()
                .parse::<Algorithm>()
                .map_err(|_| quiet("its alg is not a signature algorithm"))?;
            if !kind.serves(alg) {
                return Err(quiet("its alg does not suit its key type"));
            }
            Some(alg)
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|_| quiet("its parameters cannot be read"))?;
    Ok((kind, alg, key))
}

/// The provider's `Cache-Control: max-age`, if it sent one.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("max-age") {
                return None;
            }
            value.trim().trim_matches('"').parse().ok()
        })
        .map(Duration::from_secs)
}

/// When to fetch next: after a success, at the refresh interval or the
/// provider's shorter `max-age` (never under 1 s); after `failures` failures
/// in a row, soon (1 s, 2 s, 4 s, then every 5 s), never later than the
/// refresh interval.
fn next_fetch_in(
    refresh: Duration,
    outcome: Result<Option<Duration>, ()>,
    failures: u32,
) -> Duration {
    match outcome {
        Ok(max_age) => max_age
            .map_or(refresh, |age| age.min(refresh))
            .max(SHORTEST_REFRESH),
        Err(()) => {
            let doubling = Duration::from_secs(1u64 << failures.saturating_sub(1).min(8));
            doubling.min(LONGEST_RETRY).min(refresh)
        }
    }
}

/// The state of on-demand refetches, behind the fetch mutex.
struct FetchState {
    /// When the last refetch for an unknown `kid` started.
    last_on_demand: Option<Instant>,
}

/// The key set of one verifier: the current keys, and how they are fetched.
pub(super) struct Jwks {
    settings: JwksSettings,
    client: reqwest::Client,
    /// `None` until a set has been fetched once.
    current: RwLock<Option<Arc<KeySet>>>,
    /// The generation of the current set (see [`KeySet::generation`]).
    generation: AtomicU64,
    /// Fetches started, successful or not: a request that waited for the
    /// mutex while a fetch *started after it arrived* ran uses that fetch
    /// instead of making another. (A fetch already in flight when it arrived
    /// may have read the set from before the rotation it is looking for.)
    fetch_starts: AtomicU64,
    /// One fetch in flight at a time.
    fetch: tokio::sync::Mutex<FetchState>,
    failures: IntCounter,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("settings", &self.settings)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// Ready to fetch; nothing is fetched yet (see [`Jwks::start`]).
    pub(super) fn new(settings: JwksSettings) -> Result<Self, String> {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            // No pooled connections: a fetch runs on whichever runtime asked
            // (an actix worker's or the background task's), and a pooled
            // connection belongs to the runtime that opened it. Fetches are
            // minutes apart, so a connection each costs nothing.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("chat-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                format!(
                    "JWT_JWKS_URL: cannot build the HTTP client: {}",
                    Chain(&error)
                )
            })?;
        let failures = IntCounter::new(
            "jwks_refresh_failures_total",
            "Fetches of the key set at JWT_JWKS_URL that failed (unreachable, an error status, or not a usable key set).",
        )
        .map_err(|error| format!("jwks_refresh_failures_total: {error}"))?;
        Ok(Self {
            settings,
            client,
            current: RwLock::new(None),
            generation: AtomicU64::new(0),
            fetch_starts: AtomicU64::new(0),
            fetch: tokio::sync::Mutex::new(FetchState {
                last_on_demand: None,
            }),
            failures,
        })
    }

    /// The failed-fetch counter, for the service's metrics registry.
    pub(super) fn failures(&self) -> IntCounter {
        self.failures.clone()
    }

    /// The current set; `None` until one has been fetched.
    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The generation of the current set (0 before the first).
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a set has been fetched once.
    pub(super) fn is_ready(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Fetches the set once now (waiting at most the fetch timeout), then
    /// keeps it current in a background task, which ends when the verifier
    /// is dropped or the returned handle aborts it.
    pub(super) async fn start(self: &Arc<Self>) -> tokio::task::AbortHandle {
        let first = self.refresh().await;
        if first.is_err() {
            tracing::warn!(
                url = %redacted(&self.settings.url),
                "the key set could not be fetched at start; /health/ready answers 503 until it is"
            );
        }
        let failures = u32::from(first.is_err());
        let delay = next_fetch_in(self.settings.refresh, first, failures);
        tokio::spawn(refresh_in_background(Arc::downgrade(self), delay, failures)).abort_handle()
    }

    /// Fetches the set now, after any fetch in flight.
    async fn refresh(&self) -> Result<Option<Duration>, ()> {
        let _one_at_a_time = self.fetch.lock().await;
        self.fetch_locked().await
    }

    /// A token named a `kid` the set lacks: fetch again, unless a fetch that
    /// started after this request arrived ran while it waited its turn, or
    /// the last refetch for an unknown `kid` is less than
    /// `JWT_JWKS_MIN_REFETCH_SECONDS` old.
    pub(super) async fn refetch_for_unknown_key(&self) {
        let arrived = self.fetch_starts.load(Ordering::Acquire);
        let mut state = self.fetch.lock().await;
        // A fetch in flight when this request arrived was counted already.
        if self.fetch_starts.load(Ordering::Acquire) > arrived {
            return;
        }
        if state
            .last_on_demand
            .is_some_and(|at| at.elapsed() < self.settings.min_refetch)
        {
            return;
        }
        state.last_on_demand = Some(Instant::now());
        // A failure is logged and counted inside; the old set keeps serving.
        let _ = self.fetch_locked().await;
    }

    /// One fetch; the caller holds the fetch mutex. `Ok` carries the
    /// provider's `max-age`.
    async fn fetch_locked(&self) -> Result<Option<Duration>, ()> {
        // Counted before the request goes out (see `fetch_starts`).
        self.fetch_starts.fetch_add(1, Ordering::AcqRel);
        match self.download().await {
            Ok((parsed, max_age)) => {
                self.install(parsed);
                Ok(max_age)
            }
            Err(error) => {
                self.failures.inc();
                tracing::warn!(
                    url = %redacted(&self.settings.url),
                    %error,
                    "fetching the key set failed; the last good set keeps serving"
                );
                Err(())
            }
        }
    }

    async fn download(&self) -> Result<Fetched, String> {
        let describe = |error: reqwest::Error| Chain(&error.without_url()).to_string();
        let mut response = self
            .client
            .get(self.settings.url.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the provider answered {status}"));
        }
        let max_age = max_age(response.headers());
        let too_large = || format!("the key set is larger than {MAX_BODY_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse(&body, self.settings.min_rsa_bits)?, max_age))
    }

    /// Makes a freshly fetched set current. The generation moves only when
    /// the usable keys changed, so an unchanged set keeps the token cache.
    fn install(&self, parsed: Parsed) {
        let source = JwkSet {
            keys: parsed.usable.iter().map(|(jwk, ..)| jwk.clone()).collect(),
        };
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = current.as_deref();
        if previous.is_none_or(|set| set.ignored != parsed.ignored) {
            for ignored in &parsed.ignored {
                if ignored.warn {
                    tracing::warn!(url = %redacted(&self.settings.url), "{}", ignored.reason);
                } else {
                    tracing::debug!(url = %redacted(&self.settings.url), "{}", ignored.reason);
                }
            }
        }
        let changed = previous.is_none_or(|set| set.source != source);
        let generation = if changed {
            // Moved before the set is swapped, so a cached token is never
            // taken as current against a set that no longer holds its key.
            self.generation.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.generation()
        };
        if changed {
            let kids: Vec<&str> = source
                .keys
                .iter()
                .map(|jwk| jwk.common.key_id.as_deref().unwrap_or("(no kid)"))
                .collect();
            tracing::info!(
                url = %redacted(&self.settings.url),
                keys = ?kids,
                "key set fetched"
            );
        }
        let keys = parsed.usable.into_iter().map(SetKey::from_usable).collect();
        *current = Some(Arc::new(KeySet {
            keys,
            source,
            ignored: parsed.ignored,
            generation,
        }));
    }
}

/// Fetches the set every interval until the key set is dropped (the server
/// stopped) or the task is aborted.
async fn refresh_in_background(jwks: Weak<Jwks>, mut delay: Duration, mut failures: u32) {
    loop {
        tokio::time::sleep(delay).await;
        let Some(jwks) = jwks.upgrade() else {
            return;
        };
        let outcome = jwks.refresh().await;
        failures = if outcome.is_ok() { 0 } else { failures + 1 };
        delay = next_fetch_in(jwks.settings.refresh, outcome, failures);
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn fixture_jwk(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/tests/fixtures/public_jwks.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let all: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("JSON");
        all[name].clone()
    }

    fn with(name: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut key = fixture_jwk(name);
        for (field, value) in extra.as_object().expect("object") {
            key[field] = value.clone();
        }
        key
    }

    fn set(keys: Vec<serde_json::Value>) -> KeySet {
        let body = serde_json::to_vec(&json!({ "keys": keys })).expect("JSON");
        let parsed = parse(&body, 0).expect("a usable set");
        KeySet {
            source: JwkSet {
                keys: parsed.usable.iter().map(|(jwk, ..)| jwk.clone()).collect(),
            },
            keys: parsed.usable.into_iter().map(SetKey::from_usable).collect(),
            ignored: parsed.ignored,
            generation: 1,
        }
    }

    fn refused(result: Result<&DecodingKey, Miss>) -> String {
        match result {
            Err(Miss::Refused(error)) => error.detail().to_owned(),
            Err(Miss::UnknownKey) => "unknown".into(),
            Err(Miss::NoKeySet) => "no set".into(),
            Ok(_) => "selected".into(),
        }
    }

    #[test]
    fn each_supported_key_type_is_read_and_others_are_ignored() {
        let body = serde_json::to_vec(&json!({ "keys": [
            with("rsa", json!({"kid": "rsa"})),
            with("ec", json!({"kid": "ec"})),
            with("ec384", json!({"kid": "ec384"})),
            with("ed", json!({"kid": "ed", "use": "sig"})),
            with("rsa2", json!({"kid": "enc", "use": "enc"})),
            {"kid": "oct", "kty": "oct", "k": "c2VjcmV0"},
            {"kid": "p521", "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kid": "x25519", "kty": "OKP", "crv": "X25519", "x": "AA"},
            with("rsa", json!({"kid": "oaep", "alg": "RSA-OAEP"})),
            with("ec", json!({"kid": "mismatch", "alg": "RS256"})),
            "not a key",
        ]}))
        .expect("JSON");
        let parsed = parse(&body, 0).expect("usable");
        let kids: Vec<_> = parsed
            .usable
            .iter()
            .map(|(jwk, kind, ..)| (jwk.common.key_id.clone().unwrap_or_default(), *kind))
            .collect();
        assert_eq!(
            kids,
            [
                ("rsa".to_owned(), KeyKind::Rsa),
                ("ec".to_owned(), KeyKind::EcP256),
                ("ec384".to_owned(), KeyKind::EcP384),
                ("ed".to_owned(), KeyKind::Ed25519),
            ]
        );
        assert_eq!(parsed.ignored.len(), 7, "{:?}", parsed.ignored);
        assert!(parsed.ignored.iter().all(|ignored| !ignored.warn));
    }

    #[test]
    fn a_keycloak_shaped_set_yields_its_signing_key() {
        // Keycloak's certs endpoint: a signing key with its certificate
        // members and an RSA-OAEP encryption key, both RSA.
        let mut signing = with(
            "rsa",
            json!({"kid": "sig-1", "use": "sig", "alg": "RS256", "x5t": "AAAA",
                   "x5t#S256": "AAAA", "x5c": ["MIIC"], "issuer": "ignored"}),
        );
        signing["key_ops"] = json!(["verify"]);
        let body = serde_json::to_vec(&json!({ "keys": [
            signing,
            with("rsa2", json!({"kid": "enc-1", "use": "enc", "alg": "RSA-OAEP"})),
        ]}))
        .expect("JSON");
        let parsed = parse(&body, 2048).expect("usable");
        assert_eq!(parsed.usable.len(), 1);
        assert_eq!(parsed.usable[0].0.common.key_id.as_deref(), Some("sig-1"));
        assert_eq!(parsed.usable[0].2, Some(Algorithm::RS256));
    }

    #[test]
    fn garbage_and_sets_without_a_usable_key_are_errors() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"{}",
            b"{\"keys\": 5}",
            b"{\"keys\": []}",
            b"{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}",
            b"",
        ] {
            assert!(
                parse(body, 0).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn small_rsa_keys_are_ignored_with_a_warning_when_asked() {
        let body = serde_json::to_vec(&json!({ "keys": [
            with("rsa_small", json!({"kid": "small"})),
            with("rsa", json!({"kid": "big"})),
        ]}))
        .expect("JSON");
        assert_eq!(parse(&body, 0).expect("usable").usable.len(), 2);
        let parsed = parse(&body, 2048).expect("usable");
        assert_eq!(parsed.usable.len(), 1);
        assert_eq!(
            parsed.ignored,
            [Ignored {
                reason: "key 'small' is ignored: a 1024-bit RSA key; APP_ENV=production requires at least 2048 bits".into(),
                warn: true,
            }]
        );
    }

    #[test]
    fn a_kid_selects_its_key_and_the_key_alg_must_match() {
        let set = set(vec![
            with("rsa", json!({"kid": "a", "alg": "RS256"})),
            with("rsa2", json!({"kid": "b"})),
            with("ec", json!({"kid": "c"})),
        ]);
        assert_eq!(refused(set.select(Algorithm::RS256, Some("a"))), "selected");
        assert_eq!(refused(set.select(Algorithm::PS256, Some("b"))), "selected");
        assert_eq!(refused(set.select(Algorithm::ES256, Some("c"))), "selected");
        assert_eq!(refused(set.select(Algorithm::RS256, Some("z"))), "unknown");
        assert!(
            refused(set.select(Algorithm::PS256, Some("a"))).contains("cannot verify PS256"),
            "the key's alg is RS256"
        );
        assert!(refused(set.select(Algorithm::RS256, Some("c"))).contains("cannot verify RS256"));
    }

    #[test]
    fn a_token_without_kid_needs_exactly_one_fitting_key() {
        let set = set(vec![
            with("rsa", json!({"kid": "a"})),
            with("rsa2", json!({"kid": "b", "alg": "PS256"})),
            with("ec", json!({"kid": "c"})),
        ]);
        // RS256: only "a" (the other RSA key is for PS256 only).
        assert_eq!(refused(set.select(Algorithm::RS256, None)), "selected");
        assert_eq!(refused(set.select(Algorithm::ES256, None)), "selected");
        // PS256: both RSA keys fit.
        assert!(refused(set.select(Algorithm::PS256, None)).contains("several keys"));
        assert!(refused(set.select(Algorithm::EdDSA, None)).contains("no key of the key set"));
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=120, must-revalidate"),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(120)));
        headers.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache, MAX-AGE=\"7\""),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(7)));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=soon"));
        assert_eq!(max_age(&headers), None);
    }

    #[test]
    fn the_next_fetch_honours_max_age_and_backs_off_after_failures() {
        let five_minutes = Duration::from_secs(300);
        let secs = Duration::from_secs;
        assert_eq!(next_fetch_in(five_minutes, Ok(None), 0), five_minutes);
        assert_eq!(next_fetch_in(five_minutes, Ok(Some(secs(60))), 0), secs(60));
        assert_eq!(
            next_fetch_in(five_minutes, Ok(Some(secs(900))), 0),
            five_minutes
        );
        assert_eq!(next_fetch_in(five_minutes, Ok(Some(secs(0))), 0), secs(1));
        let retries: Vec<_> = (1..=5)
            .map(|failures| next_fetch_in(five_minutes, Err(()), failures))
            .collect();
        assert_eq!(retries, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
        assert_eq!(next_fetch_in(secs(3), Err(()), 10), secs(3));
        assert_eq!(next_fetch_in(secs(1), Err(()), 200), secs(1));
    }

    #[test]
    fn urls_are_logged_without_credentials_or_query() {
        let url =
            Url::parse("https://user:pass@idp.example:8443/realms/x/certs?token=s#f").expect("URL");
        assert_eq!(redacted(&url), "https://idp.example:8443/realms/x/certs");
        let settings = JwksSettings {
            url,
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(10),
            min_rsa_bits: 0,
        };
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("pass") && !shown.contains("token"),
            "{shown}"
        );
    }
}
