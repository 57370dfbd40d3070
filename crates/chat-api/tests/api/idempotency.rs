//! `Idempotency-Key` on `POST /chat/`: a retry with the same key and body
//! answers the first response and creates nothing; the key is per user, its
//! body is compared as a JSON value, a malformed key is a 400, a reused key
//! with another body a 422, a key in flight a 409, and failed requests leave
//! the key free.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, Response};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, header, problem};

/// `POST /chat/` with a raw body and these `Idempotency-Key` values.
async fn post(app: &TestApp, user: &User, keys: &[&str], body: &str) -> Response {
    let mut request = app
        .request(Method::POST, "/chat/", &user.token)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for key in keys {
        request = request.header("idempotency-key", *key);
    }
    request.send().await.expect("request")
}

/// Status, `Location`, `ETag`, `Idempotent-Replayed` and body of a response.
async fn parts(response: Response) -> (u16, String, String, String, Value) {
    let status = response.status().as_u16();
    let location = header(&response, "location");
    let etag = header(&response, "etag");
    let replayed = header(&response, "idempotent-replayed");
    let body = response.json().await.expect("JSON body");
    (status, location, etag, replayed, body)
}

async fn total(app: &TestApp, user: &User) -> u64 {
    let response = app.get("/chat/?limit=1", &user.token).await;
    assert_eq!(response.status(), 200);
    header(&response, "x-total-count")
        .parse()
        .expect("a number")
}

on_every_adapter! {
    async fn a_retry_with_the_same_key_and_body_replays_the_first_response() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let first = parts(post(&app, &user, &["retry-1"], r#"{"title":"t","description":"d"}"#).await).await;
        assert_eq!(first.0, 201);
        assert_eq!(first.3, "", "the first answer is not a replay");
        assert_eq!(first.1, format!("/chat/{}", first.4["id"].as_str().expect("id")));
        // The same JSON value: other key order and white space, and the key quoted.
        let body = "{ \"description\": \"d\",\n  \"title\": \"t\" }";
        let again = parts(post(&app, &user, &["\"retry-1\""], body).await).await;
        assert_eq!(again.0, 201);
        assert_eq!((&again.1, &again.2, &again.4), (&first.1, &first.2, &first.4));
        assert_eq!(again.3, "true");
        assert_eq!(total(&app, &user).await, 1, "the retry created nothing");
    }
}

on_every_adapter! {
    async fn the_same_key_with_another_body_is_a_422() {
        let app = TestApp::spawn().await;
        let user = User::new();
        assert_eq!(post(&app, &user, &["k"], r#"{"title":"one"}"#).await.status(), 201);
        let body = problem(post(&app, &user, &["k"], r#"{"title":"two"}"#).await, 422).await;
        assert!(body["detail"].as_str().expect("detail").contains("Idempotency-Key"), "{body}");
        assert_eq!(total(&app, &user).await, 1);
    }
}

on_every_adapter! {
    async fn a_malformed_or_repeated_key_is_a_400_that_names_the_header() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let too_long = "k".repeat(256);
        let cases: [&[&str]; 6] = [
            &["has space"],
            &["tab\there"],
            &["\"\""],
            &[too_long.as_str()],
            &["caf\u{e9}"],
            &["a", "b"],
        ];
        for keys in cases {
            let mut request = app
                .request(Method::POST, "/chat/", &user.token)
                .header("content-type", "application/json")
                .body(r#"{"title":"t"}"#);
            for key in keys {
                let value = reqwest::header::HeaderValue::from_bytes(key.as_bytes())
                    .expect("a header value");
                request = request.header("idempotency-key", value);
            }
            let response = request.send().await.expect("request");
            let body = problem(response, 400).await;
            assert!(
                body["detail"].as_str().expect("detail").contains("Idempotency-Key"),
                "{keys:?}: {body}"
            );
        }
        // Every edge of the syntax that is allowed.
        let longest = "~".repeat(255);
        for key in ["!", longest.as_str(), "\"quoted\""] {
            assert_eq!(post(&app, &user, &[key], r#"{"title":"t"}"#).await.status(), 201, "{key}");
        }
        assert_eq!(total(&app, &user).await, 3);
    }
}

on_every_adapter! {
    async fn keys_are_scoped_to_the_user() {
        let app = TestApp::spawn().await;
        let (alice, bob) = (User::new(), User::new());
        let a = parts(post(&app, &alice, &["shared"], r#"{"title":"a"}"#).await).await;
        let b = parts(post(&app, &bob, &["shared"], r#"{"title":"b"}"#).await).await;
        assert_eq!((a.0, b.0), (201, 201));
        assert_eq!((a.3.as_str(), b.3.as_str()), ("", ""));
        assert_ne!(a.4["id"], b.4["id"]);
        assert_eq!((total(&app, &alice).await, total(&app, &bob).await), (1, 1));
    }
}

on_every_adapter! {
    async fn a_failed_first_attempt_leaves_the_key_free() {
        let app = TestApp::spawn().await;
        let user = User::new();
        // 422 (invalid field), 400 (not JSON), 415 (not JSON at all): nothing stored.
        assert_eq!(post(&app, &user, &["k"], r#"{"title":""}"#).await.status(), 422);
        assert_eq!(post(&app, &user, &["k"], r#"{"title":"#).await.status(), 400);
        let response = app
            .request(Method::POST, "/chat/", &user.token)
            .header("content-type", "text/plain")
            .header("idempotency-key", "k")
            .body("title")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 415);
        let created = parts(post(&app, &user, &["k"], r#"{"title":"at last"}"#).await).await;
        assert_eq!((created.0, created.3.as_str()), (201, ""));
        assert_eq!(total(&app, &user).await, 1);
    }
}

on_every_adapter! {
    async fn a_replay_answers_the_stored_response_after_the_chat_changed_or_went() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let first = parts(post(&app, &user, &["k"], r#"{"title":"before"}"#).await).await;
        let response = app
            .request(Method::PUT, &first.1, &user.token)
            .json(&json!({"title": "after"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        let changed = parts(post(&app, &user, &["k"], r#"{"title":"before"}"#).await).await;
        assert_eq!((changed.0, &changed.2, &changed.4), (201, &first.2, &first.4));
        assert_eq!(changed.4["title"], "before");
        assert_eq!(changed.3, "true");
        let response = app
            .request(Method::DELETE, &first.1, &user.token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 204);
        let gone = parts(post(&app, &user, &["k"], r#"{"title":"before"}"#).await).await;
        assert_eq!((gone.0, &gone.1, &gone.2, &gone.4), (201, &first.1, &first.2, &first.4));
        assert_eq!(gone.3, "true");
        assert_eq!(total(&app, &user).await, 0, "the replay did not bring the chat back");
    }
}

on_every_adapter! {
    async fn twenty_concurrent_duplicates_create_one_chat() {
        let app = TestApp::spawn_with(&[
            ("DATABASE_MAX_CONNECTIONS", "24"),
            ("DATABASE_ACQUIRE_TIMEOUT_MS", "20000"),
            ("DATABASE_QUERY_TIMEOUT_MS", "20000"),
        ])
        .await;
        let user = User::new();
        let requests = (0..20).map(|_| post(&app, &user, &["storm"], r#"{"title":"once"}"#));
        let mut created = Vec::new();
        let mut replays = 0;
        for response in join_all(requests).await {
            match response.status().as_u16() {
                201 => {
                    let (_, _, _, replayed, body) = parts(response).await;
                    if replayed == "true" {
                        replays += 1;
                    }
                    created.push(body);
                }
                409 => {
                    let retry_after = header(&response, "retry-after");
                    let body = problem(response, 409).await;
                    assert!(body["detail"].as_str().expect("detail").contains("Idempotency-Key"));
                    assert!(!retry_after.is_empty());
                }
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(created.len() - replays, 1, "exactly one request created the chat");
        assert!(created.iter().all(|body| body == &created[0]), "replays answer the same chat");
        assert_eq!(total(&app, &user).await, 1);
    }
}

on_every_adapter! {
    async fn expired_keys_are_purged_after_their_ttl() {
        let app = TestApp::spawn_with(&[("IDEMPOTENCY_KEY_TTL_SECONDS", "1")]).await;
        let user = User::new();
        assert_eq!(post(&app, &user, &["k"], r#"{"title":"one"}"#).await.status(), 201);
        // Until the purge runs the key is taken (another body: 422); then free.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = post(&app, &user, &["k"], r#"{"title":"two"}"#).await.status();
            if status == 201 {
                break;
            }
            assert_eq!(status, 422);
            assert!(Instant::now() < deadline, "the key was never purged");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(total(&app, &user).await, 2, "purging keys keeps the chats");
    }
}

/// A request whose key is in flight elsewhere gets 409 at once, even while
/// the first request's uncommitted key row sits in the unique index.
#[tokio::test]
async fn a_key_in_flight_is_a_409_without_waiting() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let db = app.sql().await;
    // What an in-flight keyed create holds until it commits: the advisory lock
    // on (user, key) and its not yet committed row.
    let transaction = db.begin().await.expect("begin");
    transaction
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2, 0))",
            [user.id.into(), "busy".into()],
        ))
        .await
        .expect("lock");
    transaction
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO idempotency_keys (user_id, idempotency_key, fingerprint, chat_id, \
             response_status, response_headers, response_body, created_at) \
             VALUES ($1, $2, 'f', $3, 201, '[]', '{}', now())",
            [user.id.into(), "busy".into(), uuid::Uuid::now_v7().into()],
        ))
        .await
        .expect("row");
    let started = Instant::now();
    let response = post(&app, &user, &["busy"], r#"{"title":"t"}"#).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered without waiting"
    );
    assert_eq!(header(&response, "retry-after"), "1");
    problem(response, 409).await;
    // The first request failed (rolled back): the key is free.
    transaction.rollback().await.expect("rollback");
    let response = post(&app, &user, &["busy"], r#"{"title":"t"}"#).await;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "idempotent-replayed"), "");
}

/// Replicas share keys: a retry through another server on the same database
/// is a replay.
#[tokio::test]
async fn a_replay_works_through_a_second_server_on_the_same_database() {
    let first_server = TestApp::spawn().await;
    let second_server = TestApp::spawn_on(first_server.database_url(), &[]).await;
    let user = User::new();
    let first = parts(post(&first_server, &user, &["k"], r#"{"title":"t"}"#).await).await;
    let again = parts(post(&second_server, &user, &["k"], r#"{"title":"t"}"#).await).await;
    assert_eq!((first.0, again.0), (201, 201));
    assert_eq!(
        (&again.1, &again.2, &again.4),
        (&first.1, &first.2, &first.4)
    );
    assert_eq!(again.3, "true");
    assert_eq!(total(&second_server, &user).await, 1);
}

/// What is stored: the key, a SHA-256 fingerprint and the response, in the
/// same transaction as the chat.
#[tokio::test]
async fn the_key_row_holds_the_response_and_exists_with_its_chat() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let first = parts(post(&app, &user, &["k"], r#"{"title":"t"}"#).await).await;
    let db = app.sql().await;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT k.fingerprint, k.response_status, k.response_body, \
                    (SELECT count(*) FROM chats c WHERE c.id = k.chat_id) AS chats \
               FROM idempotency_keys k WHERE k.user_id = $1 AND k.idempotency_key = 'k'",
            [user.id.into()],
        ))
        .await
        .expect("select")
        .expect("the key is stored");
    assert_eq!(
        row.try_get::<String>("", "fingerprint")
            .expect("fingerprint")
            .len(),
        64
    );
    assert_eq!(
        row.try_get::<i16>("", "response_status").expect("status"),
        201
    );
    let body: Value =
        serde_json::from_str(&row.try_get::<String>("", "response_body").expect("body"))
            .expect("JSON");
    assert_eq!(body, first.4);
    assert_eq!(row.try_get::<i64>("", "chats").expect("count"), 1);
}
