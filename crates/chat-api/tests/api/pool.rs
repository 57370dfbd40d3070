//! The request pool over time: connections age out (maximum lifetime, idle
//! timeout), seen from PostgreSQL's side in `pg_stat_activity`; and readiness,
//! which pings on a connection of its own, never the request pool's.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::helpers::{TestApp, User};

/// Backend pids of the server's connections to its database that ran a
/// statement on `chats` (the request pool's; not ours, not the migrations').
async fn request_connections(sql: &DatabaseConnection) -> HashSet<i32> {
    sql.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        r#"SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND query LIKE '%"chats"%'"#,
    ))
    .await
    .expect("pg_stat_activity")
    .iter()
    .map(|row| row.try_get_by_index::<i32>(0).expect("pid"))
    .collect()
}

#[tokio::test]
async fn idle_connections_are_closed_and_replaced() {
    let app = TestApp::spawn_with(&[("DATABASE_IDLE_TIMEOUT_SECONDS", "1")]).await;
    let sql = app.sql().await;
    let user = User::new();
    app.create_chat(&user.token, "first").await;
    let before = request_connections(&sql).await;
    assert!(!before.is_empty(), "the request used a connection");

    // Idle for longer than the timeout: closed in the background, no request needed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.storage.pool.status().size > 0 || !request_connections(&sql).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "idle connections still open: {:?}",
            app.state.storage.pool.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let list = app.get("/chat/", &user.token).await;
    assert_eq!(list.status(), 200);
    let after = request_connections(&sql).await;
    assert!(!after.is_empty(), "a new connection served the request");
    assert!(after.is_disjoint(&before), "{before:?} then {after:?}");
}

#[tokio::test]
async fn busy_connections_are_replaced_after_their_lifetime() {
    let app = TestApp::spawn_with(&[
        ("DATABASE_MAX_LIFETIME_SECONDS", "1"),
        ("DATABASE_MAX_CONNECTIONS", "1"),
    ])
    .await;
    let sql = app.sql().await;
    let user = User::new();
    app.create_chat(&user.token, "first").await;
    let first = request_connections(&sql).await;
    assert_eq!(first.len(), 1, "one pooled connection: {first:?}");

    // Never idle for long (a request every 50 ms): only age can retire it.
    let until = Instant::now() + Duration::from_millis(2500);
    let mut seen = first.clone();
    while Instant::now() < until {
        assert_eq!(app.get("/chat/", &user.token).await.status(), 200);
        seen.extend(request_connections(&sql).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get("/chat/", &user.token).await.status(), 200);
    let last = request_connections(&sql).await;
    assert!(!last.is_empty());
    assert!(last.is_disjoint(&first), "{first:?} still serves: {last:?}");
    assert!(seen.len() >= 2, "replaced at least once: {seen:?}");
}

#[tokio::test]
async fn readiness_answers_while_chat_traffic_holds_every_pooled_connection() {
    let app = TestApp::spawn_with(&[
        ("DATABASE_MAX_CONNECTIONS", "1"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "5000"),
        ("DATABASE_QUERY_TIMEOUT_MS", "10000"),
    ])
    .await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "held").await;
    let path = format!("/chat/{}", chat["id"].as_str().expect("id"));

    // The only pooled connection is held by a read that waits on a lock.
    let sql = app.sql().await;
    let lock = sea_orm::TransactionTrait::begin(&sql).await.expect("BEGIN");
    lock.execute_unprepared("LOCK TABLE chats IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let blocked = tokio::spawn(app.request(reqwest::Method::GET, &path, &user.token).send());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting = sql
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity");
        if waiting.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the read never blocked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.state.storage.pool.status().idle,
        0,
        "the pool is exhausted"
    );

    // Readiness still answers, quickly, flood or not.
    let started = Instant::now();
    assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let flood = (0..50).map(|_| app.get_anonymous("/health/ready"));
    for ready in futures_util::future::join_all(flood).await {
        assert_eq!(ready.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    lock.rollback().await.expect("ROLLBACK");
    let read = blocked.await.expect("the read ends").expect("response");
    assert_eq!(read.status(), 200);
}

#[tokio::test]
async fn probes_take_no_connection_from_chat() {
    let app = TestApp::spawn_with(&[("DATABASE_MAX_CONNECTIONS", "1")]).await;
    let flood = (0..100).map(|_| app.get_anonymous("/health/ready"));
    for ready in futures_util::future::join_all(flood).await {
        assert_eq!(ready.status(), 200);
    }
    assert_eq!(
        app.state.storage.pool.status().size,
        0,
        "no request-pool connection was opened for probes"
    );
    let user = User::new();
    app.create_chat(&user.token, "served").await;
}
