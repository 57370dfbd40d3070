//! The request pool over time: connections age out (maximum lifetime, idle
//! timeout), seen from PostgreSQL's side in `pg_stat_activity`.

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
