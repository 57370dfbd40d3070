//! Work per request, counted (not timed): statements the pool executes, read
//! from the server's own counter. On PostgreSQL no request begins an explicit
//! transaction (create is one data-modifying statement), so a statement is a
//! round trip; through a transaction-mode pooler too (each statement is then
//! one simple-protocol query).

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, User};

/// `(statements, status)` of one request.
async fn cost<F: Future<Output = reqwest::Response>>(app: &TestApp, request: F) -> (u64, u16) {
    let statements = app.statements();
    let status = request.await.status().as_u16();
    (app.statements() - statements, status)
}

#[tokio::test]
async fn each_route_stays_within_its_statement_budget() {
    Backend::Postgres.run(within_budget()).await;
}

#[tokio::test]
async fn each_route_stays_within_its_statement_budget_through_pgbouncer() {
    Backend::PgBouncer.run(within_budget()).await;
}

async fn within_budget() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "warm-up").await;
    let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
    for i in 0..12 {
        app.create_chat(&user.token, &format!("c{i}")).await;
    }

    // create: user provisioning and insert in one statement (a data-modifying
    // CTE), which PostgreSQL runs as one transaction: no BEGIN/COMMIT round trips
    assert_eq!(
        cost(&app, app.create(&user.token, json!({"title": "t"}))).await,
        (1, 201)
    );
    // a brand-new user costs the same: provisioning is part of that statement
    assert_eq!(
        cost(&app, app.create(&User::new().token, json!({"title": "t"}))).await,
        (1, 201)
    );
    // a keyed create: the key, its fingerprint and the response are written by
    // that same statement; a replay is one statement too
    let keyed = || {
        app.request(Method::POST, "/chat/", &user.token)
            .header("idempotency-key", "budget")
            .json(&json!({"title": "k"}))
            .send()
    };
    assert_eq!(
        cost(&app, async { keyed().await.expect("request") }).await,
        (1, 201)
    );
    assert_eq!(
        cost(&app, async { keyed().await.expect("request") }).await,
        (1, 201)
    );
    let newcomer = User::new();
    let keyed_first = app
        .request(Method::POST, "/chat/", &newcomer.token)
        .header("idempotency-key", "budget")
        .json(&json!({"title": "k"}))
        .send();
    assert_eq!(
        cost(&app, async { keyed_first.await.expect("request") }).await,
        (1, 201)
    );
    // read one: one statement, no transaction
    assert_eq!(cost(&app, app.get(&path, &user.token)).await, (1, 200));
    // list: the page with the total in the same statement; an empty page asks for the total
    assert_eq!(
        cost(&app, app.get("/chat/?limit=5", &user.token)).await,
        (1, 200)
    );
    assert_eq!(
        cost(&app, app.get("/chat/?limit=5&skip=5", &user.token)).await,
        (1, 200)
    );
    assert_eq!(
        cost(&app, app.get("/chat/?skip=1000", &user.token)).await,
        (2, 200)
    );
    // writes: one statement each, whatever the precondition
    let put = app
        .request(Method::PUT, &path, &user.token)
        .json(&json!({"title": "p"}))
        .send();
    assert_eq!(
        cost(&app, async { put.await.expect("request") }).await,
        (1, 200)
    );
    let etag = crate::helpers::header(&app.get(&path, &user.token).await, "etag");
    let patch = app
        .request(Method::PATCH, &path, &user.token)
        .header("if-match", &etag)
        .json(&json!({"title": "q"}))
        .send();
    assert_eq!(
        cost(&app, async { patch.await.expect("request") }).await,
        (1, 200)
    );
    let delete = app.request(Method::DELETE, &path, &user.token).send();
    assert_eq!(
        cost(&app, async { delete.await.expect("request") }).await,
        (1, 204)
    );
}

#[tokio::test]
async fn errors_the_client_causes_cost_no_statement() {
    let app = TestApp::spawn().await;
    let user = User::new();
    assert_eq!(
        cost(&app, app.get("/chat/not-a-uuid", &user.token)).await,
        (0, 422)
    );
    assert_eq!(cost(&app, app.get("/chat/", "bad-token")).await, (0, 401));
    assert_eq!(
        cost(&app, app.create(&user.token, json!({"title": ""}))).await,
        (0, 422)
    );
    let malformed_key = app
        .request(Method::POST, "/chat/", &user.token)
        .header("idempotency-key", "two words")
        .json(&json!({"title": "t"}))
        .send();
    assert_eq!(
        cost(&app, async { malformed_key.await.expect("request") }).await,
        (0, 400)
    );
}
