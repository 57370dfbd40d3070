//! The database away: a 503 with `Retry-After`, fast, never a hang; and the
//! service recovers by itself when the database returns.

use std::time::{Duration, Instant};

use chat_testing::{Fault, FaultProxy, TestDatabase};
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::{TestApp, User, header, problem};

async fn assert_503_within(app: &TestApp, path: &str, token: Option<&str>, bound: Duration) {
    let started = Instant::now();
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let elapsed = started.elapsed();
    assert_eq!(header(&response, "retry-after"), "2", "{path}");
    let body = problem(response, 503).await;
    assert!(
        !body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "generic detail: {body}"
    );
    assert!(
        elapsed < bound,
        "{path} answered in {elapsed:?}, over {bound:?}"
    );
}

/// Polls `/health/ready` until it answers 200, failing after `within`.
async fn wait_until_ready(app: &TestApp, within: Duration, since: &str) {
    let deadline = Instant::now() + within;
    loop {
        let ready = app.get_anonymous("/health/ready").await;
        if ready.status() == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready {within:?} after {since}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_database_refusing_connections_gives_503s_within_two_seconds() {
    // Bound and dropped: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let app = TestApp::spawn_on(&format!("postgres://postgres@127.0.0.1:{port}/chat"), &[]).await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
    assert_eq!(app.get_anonymous("/health/live").await.status(), 200);
    // Still a 401 first without a token: the order of checks holds while degraded.
    problem(app.get_anonymous("/chat/").await, 401).await;
}

#[tokio::test]
async fn a_database_that_never_answers_gives_503s_not_hangs() {
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::spawn_on(
        &format!("postgres://postgres@127.0.0.1:{port}/chat"),
        &[("RUN_MIGRATIONS", "false")],
    )
    .await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(5)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
    holder.abort();
}

#[tokio::test]
async fn a_database_that_stops_answering_mid_flight_gives_503s_within_five_seconds() {
    let database = TestDatabase::create().await;
    let proxy = FaultProxy::start().await;
    let app = TestApp::spawn_on(&proxy.url_for(database.url()), &[]).await;
    let user = User::new();
    app.create_chat(&user.token, "before the freeze").await;
    proxy.set(Fault::BlackHole);
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(5)).await;
    assert_503_within(&app, "/health/ready", None, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn the_service_recovers_by_itself_when_the_database_returns() {
    let database = TestDatabase::create().await;
    let proxy = FaultProxy::start().await;
    proxy.set(Fault::Refuse);
    // Down at start: migrations cannot run; the server serves 503s meanwhile.
    let app = TestApp::spawn_on(&proxy.url_for(database.url()), &[]).await;
    let user = User::new();
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;

    proxy.heal();
    wait_until_ready(&app, Duration::from_secs(20), "the database returned").await;
    app.create_chat(&user.token, "after recovery").await;

    // Down again with connections in the pool, then back: no restart needed.
    proxy.set(Fault::Refuse);
    assert_503_within(&app, "/chat/", Some(&user.token), Duration::from_secs(2)).await;
    proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get("/chat/", &user.token).await;
        if response.status() == 200 {
            assert_eq!(header(&response, "x-total-count"), "1");
            break;
        }
        assert_eq!(response.status(), 503);
        assert!(
            Instant::now() < deadline,
            "no recovery 10 s after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = app
        .create(&user.token, json!({"title": "still fine"}))
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_unmigrated_database_is_not_ready_and_says_so() {
    // Up and answering, but nobody has run the migrations (RUN_MIGRATIONS=false).
    let database = TestDatabase::create().await;
    let app = TestApp::spawn_on(database.url(), &[("RUN_MIGRATIONS", "false")]).await;
    let live = app.get_anonymous("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get_anonymous("/health/ready").await;
    assert_eq!(header(&ready, "retry-after"), "2");
    let body = problem(ready, 503).await;
    assert_eq!(
        body["detail"], "not ready: the database schema is not migrated yet",
        "{body}"
    );
    assert_503_within(
        &app,
        "/chat/",
        Some(&User::new().token),
        Duration::from_secs(2),
    )
    .await;

    // Someone runs `chat-api migrate`: the service notices by itself.
    let migrator = chat_infra::Database::connect(&chat_infra::DatabaseConfig::new(database.url()))
        .await
        .expect("connect");
    migrator.migrate().await.expect("migrate");
    wait_until_ready(&app, Duration::from_secs(10), "the migrations ran").await;
    let user = User::new();
    app.create_chat(&user.token, "after the migrations").await;
}
