//! Keys from an identity provider (`JWT_JWKS_URL`): a real JWKS server on a
//! free port inside the test, whose answer the test changes, and the real
//! service fetching from it. The service runs over the in-memory adapter:
//! these tests are about tokens, not storage.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, SECRET, TestApp, fixture, header, now, private_key, problem};

/// What the provider answers.
#[derive(Clone)]
enum Answer {
    /// This key set, with this `Cache-Control: max-age` if any.
    Keys(Value, Option<u64>),
    /// A 200 whose body is not a key set.
    Garbage,
    /// An error status.
    Status(u16),
}

struct ProviderState {
    answer: Mutex<Answer>,
    /// Requests received.
    hits: AtomicUsize,
    /// How long each answer takes (after the answer is chosen).
    delay: Mutex<Duration>,
}

/// A JWKS endpoint on 127.0.0.1: `GET /jwks`.
struct Provider {
    url: String,
    state: Arc<ProviderState>,
    handle: ServerHandle,
}

impl Drop for Provider {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn jwks(state: web::Data<ProviderState>) -> HttpResponse {
    // Chosen before the hit is counted: once a test sees the hit, what this
    // request answers is settled.
    let answer = state.answer.lock().expect("lock").clone();
    let delay = *state.delay.lock().expect("lock");
    state.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    match answer {
        Answer::Keys(keys, max_age) => {
            let mut response = HttpResponse::Ok();
            if let Some(age) = max_age {
                response.insert_header(("Cache-Control", format!("public, max-age={age}")));
            }
            response
                .content_type("application/json")
                .body(json!({ "keys": keys }).to_string())
        }
        Answer::Garbage => HttpResponse::Ok()
            .content_type("text/html")
            .body("<html>upstream hiccup</html>"),
        Answer::Status(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                .finish()
        }
    }
}

impl Provider {
    /// A provider serving `keys`.
    async fn start(keys: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        Self::start_on(listener, Answer::Keys(keys, None))
    }

    /// A provider answering on `listener`.
    fn start_on(listener: TcpListener, answer: Answer) -> Self {
        let url = format!("http://{}/jwks", listener.local_addr().expect("an address"));
        let state = Arc::new(ProviderState {
            answer: Mutex::new(answer),
            hits: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/jwks", web::get().to(jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, state, handle }
    }

    fn answer(&self, answer: Answer) {
        *self.state.answer.lock().expect("lock") = answer;
    }

    fn serve(&self, keys: Value) {
        self.answer(Answer::Keys(keys, None));
    }

    fn slow_down(&self, delay: Duration) {
        *self.state.delay.lock().expect("lock") = delay;
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

/// The public half of a fixture key as a JWK (`tests/fixtures/public_jwks.json`),
/// with `extra` members (`kid`, `alg`, `use`) added.
fn jwk(name: &str, extra: Value) -> Value {
    let all: Value =
        serde_json::from_slice(&std::fs::read(fixture("public_jwks.json")).expect("fixture"))
            .expect("JSON");
    let mut key = all[name].clone();
    assert!(key.is_object(), "no JWK named {name}");
    for (field, value) in extra.as_object().expect("members") {
        key[field] = value.clone();
    }
    key
}

/// A token for a new user, signed with a fixture's private key, with this `kid`.
fn token(alg: Algorithm, private_file: &str, kid: Option<&str>) -> String {
    token_for(alg, &private_key(alg, private_file), kid)
}

fn token_for(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let claims = json!({ "sub": Uuid::new_v4().to_string(), "exp": now() + 600 });
    jsonwebtoken::encode(&header, &claims, key).expect("signing")
}

/// A service trusting `provider`, with `settings` on top (the default test
/// secret is unset unless `settings` sets it).
async fn service(provider_url: &str, settings: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("JWT_SECRET", ""), ("JWT_JWKS_URL", provider_url)];
    all.extend_from_slice(settings);
    TestApp::spawn_with(&all).await
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/chat/", token).await.status().as_u16()
}

/// The 401's `detail`.
async fn refusal(app: &TestApp, token: &str) -> String {
    let response = app.get("/chat/", token).await;
    assert!(
        header(&response, "www-authenticate").starts_with("Bearer error=\"invalid_token\""),
        "a 401 with its challenge"
    );
    let body = problem(response, 401).await;
    body["detail"].as_str().unwrap_or_default().to_owned()
}

/// Waits until `check` holds, polling; panics with `what` at the deadline.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `jwks_refresh_failures_total` on `/metrics`.
async fn refresh_failures(app: &TestApp) -> u64 {
    let text = app
        .get_anonymous("/metrics")
        .await
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix("jwks_refresh_failures_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("jwks_refresh_failures_total is exported")
}

/// Waits (a few seconds at most) for `jwks_refresh_failures_total` to pass
/// `count`, and returns it.
async fn failures_above(app: &TestApp, count: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = refresh_failures(app).await;
        if now > count {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no failed refresh counted after {count}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rsa_ec_and_ed25519_keys_of_the_set_verify_their_tokens() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([
                jwk("rsa", json!({"kid": "rsa"})),
                jwk("ec", json!({"kid": "p256", "use": "sig"})),
                jwk("ec384", json!({"kid": "p384"})),
                jwk("ed", json!({"kid": "ed", "alg": "EdDSA"})),
            ]))
            .await;
            let app = service(
                &provider.url,
                &[("JWT_ALGORITHMS", "RS256,PS256,ES256,ES384,EdDSA")],
            )
            .await;
            for (alg, file, kid) in [
                (Algorithm::RS256, "rsa_private.pem", "rsa"),
                (Algorithm::PS256, "rsa_private.pem", "rsa"),
                (Algorithm::ES256, "ec_private.pem", "p256"),
                (Algorithm::ES384, "ec384_private.pem", "p384"),
                (Algorithm::EdDSA, "ed_private.pem", "ed"),
            ] {
                assert_eq!(
                    status(&app, &token(alg, file, Some(kid))).await,
                    200,
                    "{alg:?}"
                );
            }
            // The kid names the key: another key's signature is refused.
            let forged = token(Algorithm::RS256, "rsa2_private.pem", Some("rsa"));
            assert!(refusal(&app, &forged).await.contains("signature"));
            // A key cannot serve another family's algorithm.
            let detail = refusal(
                &app,
                &token(Algorithm::RS256, "rsa_private.pem", Some("p256")),
            )
            .await;
            assert!(detail.contains("cannot verify RS256"), "{detail}");
            // One fetch at start; no refetch for known kids.
            assert_eq!(provider.hits(), 1);
        })
        .await;
}

#[tokio::test]
async fn a_rotated_in_key_works_on_first_use() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "2026-01"}))])).await;
            let app = service(&provider.url, &[]).await;
            let old = token(Algorithm::RS256, "rsa_private.pem", Some("2026-01"));
            assert_eq!(status(&app, &old).await, 200);

            // The provider rotates: the new key is published, tokens follow at once.
            provider.serve(json!([
                jwk("rsa", json!({"kid": "2026-01"})),
                jwk("rsa2", json!({"kid": "2026-02"})),
            ]));
            let new = token(Algorithm::RS256, "rsa2_private.pem", Some("2026-02"));
            assert_eq!(status(&app, &new).await, 200, "no restart, no waiting");
            assert_eq!(status(&app, &old).await, 200, "the old key still works");
            assert_eq!(provider.hits(), 2, "one refetch, for the unknown kid");
        })
        .await;
}

#[tokio::test]
async fn a_rotation_during_a_background_fetch_still_refetches() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "old"}))])).await;
            let app = service(&provider.url, &[("JWT_JWKS_REFRESH_SECONDS", "1")]).await;
            // The background refresh starts and is answered slowly, with the old set...
            provider.slow_down(Duration::from_millis(800));
            eventually(
                Duration::from_secs(3),
                "a background fetch is in flight",
                || async { provider.hits() >= 2 },
            )
            .await;
            // ...while the provider rotates and a token with the new kid arrives.
            provider.serve(json!([
                jwk("rsa", json!({"kid": "old"})),
                jwk("rsa2", json!({"kid": "new"})),
            ]));
            let new = token(Algorithm::RS256, "rsa2_private.pem", Some("new"));
            // The fetch in flight predates the rotation: the token gets its own.
            assert_eq!(status(&app, &new).await, 200);
        })
        .await;
}

#[tokio::test]
async fn a_removed_key_stops_working_at_the_next_refresh() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([
                jwk("rsa", json!({"kid": "old"})),
                jwk("rsa2", json!({"kid": "new"})),
            ]))
            .await;
            let app = service(&provider.url, &[("JWT_JWKS_REFRESH_SECONDS", "1")]).await;
            let old = token(Algorithm::RS256, "rsa_private.pem", Some("old"));
            let new = token(Algorithm::RS256, "rsa2_private.pem", Some("new"));
            assert_eq!(status(&app, &old).await, 200);
            assert_eq!(
                status(&app, &old).await,
                200,
                "and now from the token cache"
            );

            provider.serve(json!([jwk("rsa2", json!({"kid": "new"}))]));
            // The next refresh is at most a second away (JWT_JWKS_REFRESH_SECONDS=1).
            eventually(
                Duration::from_secs(5),
                "the removed key is refused",
                || async { status(&app, &old).await == 401 },
            )
            .await;
            assert_eq!(status(&app, &new).await, 200, "the remaining key works");
            assert!(refusal(&app, &old).await.contains("kid"));
        })
        .await;
}

#[tokio::test]
async fn a_shorter_max_age_from_the_provider_wins() {
    Backend::Memory
        .run(async {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
            let provider = Provider::start_on(
                listener,
                Answer::Keys(
                    json!([
                        jwk("rsa", json!({"kid": "a"})),
                        jwk("rsa2", json!({"kid": "b"}))
                    ]),
                    Some(1),
                ),
            );
            // Five minutes by configuration, one second by the provider's word.
            let app = service(&provider.url, &[]).await;
            let a = token(Algorithm::RS256, "rsa_private.pem", Some("a"));
            assert_eq!(status(&app, &a).await, 200);
            provider.answer(Answer::Keys(
                json!([jwk("rsa2", json!({"kid": "b"}))]),
                Some(1),
            ));
            eventually(
                Duration::from_secs(4),
                "max-age=1 refreshes the set",
                || async { status(&app, &a).await == 401 },
            )
            .await;
        })
        .await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_at_most_once_per_interval() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "real"}))])).await;
            let app = service(&provider.url, &[("JWT_JWKS_MIN_REFETCH_SECONDS", "3")]).await;
            assert_eq!(provider.hits(), 1, "the fetch at start");
            // Signed beforehand, so a flood takes milliseconds, well within the interval.
            let key = private_key(Algorithm::RS256, "rsa_private.pem");
            let mut made_up: Vec<String> = (0..80)
                .map(|i| {
                    let kid = format!("made-up-{i}-{}", Uuid::new_v4());
                    token_for(Algorithm::RS256, &key, Some(&kid))
                })
                .collect();
            let app = &app;
            let mut flood = |count: usize| {
                let tokens: Vec<String> = made_up.drain(..count).collect();
                futures_util::future::join_all(
                    tokens
                        .into_iter()
                        .map(move |token| async move { status(app, &token).await }),
                )
            };
            let answers = flood(40).await;
            assert!(answers.iter().all(|status| *status == 401), "{answers:?}");
            assert_eq!(provider.hits(), 2, "40 unknown kids, one refetch");
            let answers = flood(20).await;
            assert!(answers.iter().all(|status| *status == 401), "{answers:?}");
            assert_eq!(provider.hits(), 2, "still within the interval");

            // A known kid never refetches.
            let real = token(Algorithm::RS256, "rsa_private.pem", Some("real"));
            assert_eq!(status(app, &real).await, 200);

            // After the interval, an unknown kid may refetch once more.
            tokio::time::sleep(Duration::from_millis(3_100)).await;
            flood(20).await;
            assert_eq!(provider.hits(), 3);
        })
        .await;
}

#[tokio::test]
async fn the_last_good_set_serves_while_the_provider_fails() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("ec", json!({"kid": "k"}))])).await;
            let app = service(
                &provider.url,
                &[
                    ("JWT_JWKS_REFRESH_SECONDS", "1"),
                    ("JWT_ALGORITHMS", "ES256"),
                ],
            )
            .await;
            assert_eq!(refresh_failures(&app).await, 0);
            // Fresh tokens each time, so the token cache proves nothing.
            let fresh = || token(Algorithm::ES256, "ec_private.pem", Some("k"));
            assert_eq!(status(&app, &fresh()).await, 200);

            let mut failures = 0;
            for answer in [
                Answer::Status(503),
                Answer::Garbage,
                Answer::Keys(json!([]), None),
                Answer::Keys(
                    json!([jwk("rsa2", json!({"kid": "x", "use": "enc"}))]),
                    None,
                ),
            ] {
                provider.answer(answer);
                failures = failures_above(&app, failures).await;
                assert_eq!(
                    status(&app, &fresh()).await,
                    200,
                    "the last good set serves"
                );
            }

            // Unreachable altogether.
            drop(provider);
            failures_above(&app, failures).await;
            assert_eq!(status(&app, &fresh()).await, 200);
            let ready = app.get_anonymous("/health/ready").await;
            assert_eq!(ready.status(), 200, "a set was fetched once: still ready");
        })
        .await;
}

#[tokio::test]
async fn a_service_started_with_the_provider_down_is_ready_once_it_answers() {
    Backend::Memory
        .run(async {
            // A port nothing listens on yet (connections are refused).
            let reserved = TcpListener::bind("127.0.0.1:0").expect("a free port");
            let address = reserved.local_addr().expect("address");
            drop(reserved);
            let url = format!("http://{address}/jwks");
            // The default five-minute refresh: retries after a failure come sooner.
            let app = service(&url, &[]).await;

            let ready = app.get_anonymous("/health/ready").await;
            assert!(!header(&ready, "retry-after").is_empty());
            let body = problem(ready, 503).await;
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("key set"), "{detail}");
            assert_eq!(app.get_anonymous("/health/live").await.status(), 200);
            let token = token(Algorithm::RS256, "rsa_private.pem", Some("k"));
            problem(app.get("/chat/", &token).await, 503).await;
            assert!(refresh_failures(&app).await >= 1);

            let listener = TcpListener::bind(address).expect("the reserved port");
            let provider = Provider::start_on(
                listener,
                Answer::Keys(json!([jwk("rsa", json!({"kid": "k"}))]), None),
            );
            eventually(
                Duration::from_secs(8),
                "ready once the set is fetched",
                || async { app.get_anonymous("/health/ready").await.status() == 200 },
            )
            .await;
            assert_eq!(status(&app, &token).await, 200);
            assert!(provider.hits() >= 1);
        })
        .await;
}

#[tokio::test]
async fn a_token_without_kid_needs_exactly_one_fitting_key() {
    Backend::Memory
        .run(async {
            // One RSA key and one EC key: a kid-less token of either kind has one key.
            let provider = Provider::start(json!([
                jwk("rsa", json!({"kid": "r"})),
                jwk("ec", json!({"kid": "e"})),
            ]))
            .await;
            let app = service(&provider.url, &[("JWT_ALGORITHMS", "RS256,ES256")]).await;
            assert_eq!(
                status(&app, &token(Algorithm::RS256, "rsa_private.pem", None)).await,
                200
            );
            assert_eq!(
                status(&app, &token(Algorithm::ES256, "ec_private.pem", None)).await,
                200
            );

            // Two RSA keys: a kid-less RS256 token is ambiguous, whichever key signed it.
            let two = Provider::start(json!([
                jwk("rsa", json!({"kid": "r1"})),
                jwk("rsa2", json!({})),
            ]))
            .await;
            let app = service(&two.url, &[]).await;
            for file in ["rsa_private.pem", "rsa2_private.pem"] {
                let detail = refusal(&app, &token(Algorithm::RS256, file, None)).await;
                assert!(detail.contains("several keys"), "{detail}");
            }
            assert_eq!(two.hits(), 1, "no refetch for a kid-less token");

            // Unless the key's alg narrows it to one.
            let narrowed = Provider::start(json!([
                jwk("rsa", json!({"kid": "r1", "alg": "RS256"})),
                jwk("rsa2", json!({"kid": "r2", "alg": "PS256"})),
            ]))
            .await;
            let app = service(&narrowed.url, &[("JWT_ALGORITHMS", "RS256,PS256")]).await;
            assert_eq!(
                status(&app, &token(Algorithm::RS256, "rsa_private.pem", None)).await,
                200
            );
            assert_eq!(
                status(&app, &token(Algorithm::PS256, "rsa2_private.pem", None)).await,
                200
            );
        })
        .await;
}

#[tokio::test]
async fn a_key_is_used_only_for_its_alg_and_only_for_signatures() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([
                jwk("rsa", json!({"kid": "rs", "alg": "RS256"})),
                jwk("rsa2", json!({"kid": "enc", "use": "enc"})),
                jwk("ec", json!({"kid": "es", "alg": "ES256", "use": "sig"})),
            ]))
            .await;
            let app = service(&provider.url, &[("JWT_ALGORITHMS", "RS256,PS256,ES256")]).await;
            assert_eq!(
                status(
                    &app,
                    &token(Algorithm::RS256, "rsa_private.pem", Some("rs"))
                )
                .await,
                200
            );
            assert_eq!(
                status(&app, &token(Algorithm::ES256, "ec_private.pem", Some("es"))).await,
                200
            );
            // The key says RS256; a PS256 token naming it is refused.
            let detail = refusal(
                &app,
                &token(Algorithm::PS256, "rsa_private.pem", Some("rs")),
            )
            .await;
            assert!(detail.contains("cannot verify PS256"), "{detail}");
            // An encryption key verifies nothing, named or not.
            refusal(
                &app,
                &token(Algorithm::RS256, "rsa2_private.pem", Some("enc")),
            )
            .await;
            assert_eq!(
                status(&app, &token(Algorithm::RS256, "rsa_private.pem", None)).await,
                200,
                "kid-less: the enc key does not count, so one key fits"
            );
            // JWT_ALGORITHMS still decides: EdDSA is not listed.
            let detail =
                refusal(&app, &token(Algorithm::EdDSA, "ed_private.pem", Some("rs"))).await;
            assert!(detail.contains("not accepted"), "{detail}");
        })
        .await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "k"}))])).await;
            let public_pem = std::fs::read(fixture("rsa_public.pem")).expect("fixture");
            let rsa_jwk = jwk("rsa", json!({}));
            let forgeries = [
                EncodingKey::from_secret(&public_pem),
                EncodingKey::from_secret(rsa_jwk["n"].as_str().expect("n").as_bytes()),
                EncodingKey::from_secret(rsa_jwk.to_string().as_bytes()),
            ];
            // A key set alone: HS256 is not even accepted.
            let app = service(&provider.url, &[]).await;
            for forged in &forgeries {
                for kid in [Some("k"), None] {
                    let detail = refusal(&app, &token_for(Algorithm::HS256, forged, kid)).await;
                    assert!(detail.contains("not accepted"), "{detail}");
                }
            }
            // With a secret as well, HS256 verifies with the secret only.
            let app = service(
                &provider.url,
                &[("JWT_SECRET", SECRET), ("JWT_ALGORITHMS", "HS256,RS256")],
            )
            .await;
            for forged in &forgeries {
                for kid in [Some("k"), None] {
                    let detail = refusal(&app, &token_for(Algorithm::HS256, forged, kid)).await;
                    assert!(detail.contains("signature"), "{detail}");
                }
            }
        })
        .await;
}

#[tokio::test]
async fn with_a_secret_too_both_kinds_of_token_work() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "k"}))])).await;
            // Defaults: HS256 with the secret, RS256 with the set.
            let app = service(&provider.url, &[("JWT_SECRET", SECRET)]).await;
            let hs256 = token_for(
                Algorithm::HS256,
                &EncodingKey::from_secret(SECRET.as_bytes()),
                None,
            );
            assert_eq!(status(&app, &hs256).await, 200);
            let rs256 = token(Algorithm::RS256, "rsa_private.pem", Some("k"));
            assert_eq!(status(&app, &rs256).await, 200);
        })
        .await;
}

#[test]
fn a_key_set_and_a_public_key_file_refuse_to_start() {
    let key_file = fixture("rsa_public.pem");
    let pairs = [
        ("JWT_JWKS_URL", "https://idp.example/jwks"),
        ("JWT_PUBLIC_KEY_FILE", key_file.as_str()),
    ];
    let error = chat_api::app::Settings::from_lookup(|key| {
        pairs
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| (*value).to_owned())
    })
    .expect_err("refused");
    let line = error.to_string();
    assert!(
        line.contains("JWT_JWKS_URL") && line.contains("JWT_PUBLIC_KEY_FILE"),
        "{line}"
    );
    assert!(!line.contains('\n'));
}

#[tokio::test]
async fn production_ignores_rsa_keys_of_the_set_under_2048_bits() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([
                jwk("rsa_small", json!({"kid": "small"})),
                jwk("rsa", json!({"kid": "big"})),
            ]))
            .await;
            let small = token(Algorithm::RS256, "rsa_small_private.pem", Some("small"));
            let big = token(Algorithm::RS256, "rsa_private.pem", Some("big"));
            let production = service(&provider.url, &[("APP_ENV", "production")]).await;
            assert_eq!(status(&production, &big).await, 200);
            refusal(&production, &small).await;
            // Development takes it.
            let development = service(&provider.url, &[]).await;
            assert_eq!(status(&development, &small).await, 200);
        })
        .await;
}

#[tokio::test]
async fn the_background_refresh_stops_with_the_server() {
    Backend::Memory
        .run(async {
            let provider = Provider::start(json!([jwk("rsa", json!({"kid": "k"}))])).await;
            let app = service(&provider.url, &[("JWT_JWKS_REFRESH_SECONDS", "1")]).await;
            eventually(Duration::from_secs(5), "the set is refreshed", || async {
                provider.hits() >= 2
            })
            .await;
            drop(app);
            // Let the server stop and a fetch in flight land; then no more.
            tokio::time::sleep(Duration::from_millis(1_200)).await;
            let after_stop = provider.hits();
            tokio::time::sleep(Duration::from_millis(2_200)).await;
            assert_eq!(
                provider.hits(),
                after_stop,
                "no fetch after the server stopped"
            );
        })
        .await;
}
