//! Failover and the server's "try again later" answers, produced by the real
//! PostgreSQL: a database that turns read-only and back
//! (`default_transaction_read_only`, as a demoted primary or a standby is),
//! connections the server ends (`pg_terminate_backend`, as a restart or a
//! failover does), a role over its connection limit (53300), and a
//! serialization failure (40001) that the service retries once by itself.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use serde_json::json;

use crate::helpers::{TestApp, User, header, problem};

async fn run(sql: &DatabaseConnection, statement: &str) {
    sql.execute_unprepared(statement)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// Ends every other connection to the test's database, as a failover does.
async fn end_other_connections(sql: &DatabaseConnection) {
    run(
        sql,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
}

async fn set_read_only(sql: &DatabaseConnection, database: &str, on: bool) {
    let value = if on { "on" } else { "off" };
    // Explicitly read-write: a connection of ours opened while the database
    // was read-only would refuse the ALTER itself.
    let transaction = sql.begin().await.expect("begin");
    transaction
        .execute_unprepared("SET TRANSACTION READ WRITE")
        .await
        .expect("read-write");
    transaction
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{database}\" SET default_transaction_read_only = {value}"
        ))
        .await
        .expect("ALTER DATABASE");
    transaction.commit().await.expect("commit");
}

fn database_name(app: &TestApp) -> String {
    url::Url::parse(app.database_url())
        .expect("URL")
        .path()
        .trim_start_matches('/')
        .to_owned()
}

/// Asserts a 503 with `Retry-After`.
async fn assert_try_again_later(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    assert!(
        !header(&response, "retry-after").is_empty(),
        "{what}: Retry-After"
    );
    problem(response, 503).await;
}

#[tokio::test]
async fn a_read_only_database_refuses_writes_with_503_serves_reads_and_recovers_within_five_seconds()
 {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "before the failover").await;
    let id = chat["id"].as_str().expect("id");
    // A connection of our own, opened before the switch: it may still write.
    let sql = app.sql().await;
    let database = database_name(&app);

    assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);

    // The primary is demoted: new sessions are read-only, old ones are ended.
    set_read_only(&sql, &database, true).await;
    end_other_connections(&sql).await;

    // Reads keep answering, even on the connections the server just ended.
    let listed = app.get("/chat/", &user.token).await;
    assert_eq!(listed.status(), 200);
    assert_eq!(header(&listed, "x-total-count"), "1");
    assert_eq!(
        app.get(&format!("/chat/{id}"), &user.token).await.status(),
        200
    );
    assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);

    // Every kind of write: 503 with Retry-After, never a 500.
    for _ in 0..3 {
        let created = app.create(&user.token, json!({"title": "refused"})).await;
        assert_try_again_later(created, "POST /chat/").await;
    }
    let patched = app
        .request(Method::PATCH, &format!("/chat/{id}"), &user.token)
        .json(&json!({"title": "refused"}))
        .send()
        .await
        .expect("request");
    assert_try_again_later(patched, "PATCH").await;
    let replaced = app
        .request(Method::PUT, &format!("/chat/{id}"), &user.token)
        .json(&json!({"title": "refused", "description": null}))
        .send()
        .await
        .expect("request");
    assert_try_again_later(replaced, "PUT").await;
    let deleted = app
        .request(Method::DELETE, &format!("/chat/{id}"), &user.token)
        .send()
        .await
        .expect("request");
    assert_try_again_later(deleted, "DELETE").await;

    // The database accepts writes again (the failover finished). The service's
    // connections opened meanwhile are read-only for life; none is reused.
    set_read_only(&sql, &database, false).await;
    let writable = Instant::now();
    loop {
        let created = app.create(&user.token, json!({"title": "after"})).await;
        if created.status() == 201 {
            break;
        }
        assert_eq!(created.status(), 503);
        assert!(
            writable.elapsed() < Duration::from_secs(5),
            "writes still refused {:?} after the database turned writable",
            writable.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing refused was stored; the chat is as it was.
    let listed = app.get("/chat/", &user.token).await;
    assert_eq!(header(&listed, "x-total-count"), "2");
    let before = app.get(&format!("/chat/{id}"), &user.token).await;
    let before: serde_json::Value = before.json().await.expect("JSON");
    assert_eq!(before["title"], "before the failover");
}

#[tokio::test]
async fn connections_ended_while_pooled_cost_reads_nothing() {
    let app = TestApp::spawn_with(&[("DATABASE_MAX_CONNECTIONS", "4")]).await;
    let user = User::new();
    app.create_chat(&user.token, "one").await;
    // Fill the pool with several connections.
    let reads: Vec<_> = (0..8).map(|_| app.get("/chat/", &user.token)).collect();
    for read in futures_util::future::join_all(reads).await {
        assert_eq!(read.status(), 200);
    }
    let sql = app.sql().await;
    for _ in 0..3 {
        assert_eq!(app.get_anonymous("/health/ready").await.status(), 200);
        end_other_connections(&sql).await;
        // Give the server a moment to close them: they now sit dead in the pool
        // (and the readiness probe's own connection is dead too).
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            app.get_anonymous("/health/ready").await.status(),
            200,
            "a probe failed on its dead connection"
        );
        for _ in 0..6 {
            let listed = app.get("/chat/", &user.token).await;
            assert_eq!(
                listed.status(),
                200,
                "a read failed on a dead pooled connection"
            );
        }
    }
}

#[tokio::test]
async fn a_statement_ended_by_the_server_is_a_503_for_a_write_and_retried_for_a_read() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "locked").await;
    let id = chat["id"].as_str().expect("id").to_owned();
    let sql = app.sql().await;

    // Hold a lock that makes the service's statements wait, then end the
    // waiting backends (57P01 admin_shutdown in the middle of a statement).
    let lock = sql.begin().await.expect("begin");
    lock.execute_unprepared("LOCK TABLE chats IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let write = {
        let request = app
            .request(Method::PATCH, &format!("/chat/{id}"), &user.token)
            .json(&json!({"title": "ended"}));
        tokio::spawn(request.send())
    };
    wait_for_lock_waiters(&sql, 1).await;
    end_waiting_backends(&sql).await;
    let write = write.await.expect("task").expect("answer");
    assert_try_again_later(write, "a PATCH whose statement was ended").await;

    let read = tokio::spawn(app.request(Method::GET, "/chat/", &user.token).send());
    wait_for_lock_waiters(&sql, 1).await;
    end_waiting_backends(&sql).await;
    // The read runs again on a fresh connection, which waits for the lock too;
    // releasing it lets that one through.
    wait_for_lock_waiters(&sql, 1).await;
    lock.rollback().await.expect("rollback");
    let read = read.await.expect("task").expect("answer");
    assert_eq!(read.status(), 200);
    assert_eq!(header(&read, "x-total-count"), "1");
}

async fn wait_for_lock_waiters(sql: &DatabaseConnection, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let waiting = sql
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            ))
            .await
            .expect("pg_stat_activity")
            .len();
        if waiting >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "no statement waits for the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn end_waiting_backends(sql: &DatabaseConnection) {
    run(
        sql,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await;
}

#[tokio::test]
async fn a_serialization_failure_is_retried_once_by_the_service() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "contended").await;
    let id = chat["id"].as_str().expect("id").to_owned();
    let sql = app.sql().await;
    let database = database_name(&app);
    // Sessions opened from now on are serializable, the service's included
    // (its pooled ones are ended; a read replaces them).
    run(
        &sql,
        &format!(
            "ALTER DATABASE \"{database}\" SET default_transaction_isolation = 'serializable'"
        ),
    )
    .await;
    end_other_connections(&sql).await;
    assert_eq!(app.get("/chat/", &user.token).await.status(), 200);

    // A concurrent transaction updates the chat and commits while the
    // service's UPDATE waits for its row: that UPDATE fails with 40001.
    let other = sea_orm::Database::connect(app.database_url())
        .await
        .expect("connect");
    let rival = other.begin().await.expect("begin");
    rival
        .execute_unprepared(&format!(
            "UPDATE chats SET description = 'rival' WHERE id = '{id}'"
        ))
        .await
        .expect("update");
    let patch = {
        let request = app
            .request(Method::PATCH, &format!("/chat/{id}"), &user.token)
            .json(&json!({"title": "ours"}));
        tokio::spawn(request.send())
    };
    wait_for_lock_waiters(&sql, 1).await;
    rival.commit().await.expect("commit");

    // The service ran it again on a fresh snapshot: the client never saw the failure.
    let patched = patch.await.expect("task").expect("answer");
    assert_eq!(patched.status(), 200, "{:?}", patched.text().await);
    let stored: serde_json::Value = app
        .get(&format!("/chat/{id}"), &user.token)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(stored["title"], "ours");
    assert_eq!(stored["description"], "rival");
}

#[tokio::test]
async fn a_role_over_its_connection_limit_is_a_503_not_a_500() {
    let app = TestApp::spawn().await;
    let sql = app.sql().await;
    let role = format!("chat_limited_{}", uuid::Uuid::new_v4().simple());
    run(
        &sql,
        &format!("CREATE ROLE \"{role}\" LOGIN CONNECTION LIMIT 0"),
    )
    .await;
    let mut url = url::Url::parse(app.database_url()).expect("URL");
    url.set_username(&role).expect("user");
    let limited = TestApp::spawn_on(url.as_str(), &[("RUN_MIGRATIONS", "false")]).await;
    // 53300 too_many_connections at every connection attempt.
    let listed = limited.get("/chat/", &User::new().token).await;
    assert_try_again_later(listed, "GET /chat/ over the role's limit").await;
    let ready = limited.get_anonymous("/health/ready").await;
    assert_try_again_later(ready, "/health/ready over the role's limit").await;
    drop(limited);
    run(&sql, &format!("DROP ROLE \"{role}\"")).await;
}
