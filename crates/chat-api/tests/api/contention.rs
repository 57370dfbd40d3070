//! One user writing from many connections at once: creates and deletes for the
//! same user run concurrently (no per-user lock), never deadlock or surface a
//! serialisation failure, and `X-Total-Count` stays exact.

use std::sync::Mutex;

use futures_util::StreamExt;
use futures_util::stream;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::helpers::{TestApp, User, header};

/// Requests in flight at once in the storm.
const IN_FLIGHT: usize = 32;

/// A pool as wide as the storm, so the requests really run side by side in
/// PostgreSQL instead of queueing for a connection. Generous timeouts: a slow,
/// shared machine must not turn into 503s; a deadlock still surfaces (PostgreSQL
/// detects it after a second and fails the statement).
async fn spawn_wide() -> TestApp {
    TestApp::spawn_with(&[
        ("DATABASE_MAX_CONNECTIONS", "32"),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "20000"),
        ("DATABASE_QUERY_TIMEOUT_MS", "20000"),
    ])
    .await
}

async fn total(app: &TestApp, user: &User) -> u64 {
    let response = app.get("/chat/?limit=1", &user.token).await;
    assert_eq!(response.status(), 200, "listing");
    header(&response, "x-total-count")
        .parse()
        .expect("a number")
}

/// The user's chats as PostgreSQL counts them, bypassing the counter.
async fn counted_in_database(app: &TestApp, user: &User) -> u64 {
    let db = app.sql().await;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT count(*) FROM chats WHERE user_id = $1",
            [user.id.into()],
        ))
        .await
        .expect("count(*)")
        .expect("a row");
    u64::try_from(row.try_get_by_index::<i64>(0).expect("an integer")).expect("not negative")
}

async fn create(app: &TestApp, user: &User, title: String) -> Result<String, String> {
    let response = app.create(&user.token, json!({ "title": title })).await;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status != 201 {
        return Err(format!("create: {status} {body}"));
    }
    let chat: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    Ok(chat["id"].as_str().expect("id").to_owned())
}

async fn delete(app: &TestApp, user: &User, id: &str) -> Result<(), String> {
    let response = app
        .request(Method::DELETE, &format!("/chat/{id}"), &user.token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    if status != 204 {
        let body = response.text().await.unwrap_or_default();
        return Err(format!("delete {id}: {status} {body}"));
    }
    Ok(())
}

#[tokio::test]
async fn sixty_four_concurrent_creates_then_sixty_four_concurrent_deletes_keep_the_total_exact() {
    let app = spawn_wide().await;
    let user = User::new();

    let creates = (0..64).map(|i| create(&app, &user, format!("burst {i}")));
    let ids: Vec<String> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every create succeeds");
    assert_eq!(total(&app, &user).await, 64);
    assert_eq!(counted_in_database(&app, &user).await, 64);

    let deletes = ids.iter().map(|id| delete(&app, &user, id));
    let outcomes = futures_util::future::join_all(deletes).await;
    let failures: Vec<&String> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "every delete succeeds: {failures:?}");
    assert_eq!(total(&app, &user).await, 0);
    assert_eq!(counted_in_database(&app, &user).await, 0);
}

/// What one request of the storm does.
#[derive(Clone, Copy, Debug)]
enum Step {
    Create,
    /// Deletes a chat no other request touches (or creates one if none is left).
    Delete,
    /// Lists the first page: the total is read while the writes go on.
    List,
}

#[tokio::test]
async fn a_storm_of_mixed_creates_and_deletes_for_one_user_leaves_the_total_equal_to_count() {
    let app = spawn_wide().await;
    let user = User::new();
    let other = User::new();
    // Somebody else's chat must not move this user's total.
    create(&app, &other, "bystander".to_owned())
        .await
        .expect("bystander's create");
    let live: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seed = Vec::new();
    for i in 0..IN_FLIGHT {
        seed.push(
            create(&app, &user, format!("seed {i}"))
                .await
                .expect("seeding"),
        );
    }
    live.lock().expect("lock").extend(seed);

    // 500 requests, 32 in flight: 2 creates for every delete, and a list now
    // and then.
    let steps = (0..500).map(|i| match i % 10 {
        0 => Step::List,
        1 | 4 | 7 => Step::Delete,
        _ => Step::Create,
    });
    let (live_ref, app_ref, user_ref) = (&live, &app, &user);
    let outcomes: Vec<Result<(), String>> = stream::iter(steps.enumerate())
        .map(|(i, step)| async move {
            let doomed = match step {
                Step::Delete => live_ref.lock().expect("lock").pop(),
                _ => None,
            };
            match (step, doomed) {
                (Step::List, _) => {
                    let response = app_ref.get("/chat/", &user_ref.token).await;
                    if response.status() != 200 {
                        return Err(format!("list: {}", response.status()));
                    }
                    Ok(())
                }
                (Step::Delete, Some(id)) => delete(app_ref, user_ref, &id).await,
                (Step::Create | Step::Delete, _) => {
                    let id = create(app_ref, user_ref, format!("storm {i}")).await?;
                    live_ref.lock().expect("lock").push(id);
                    Ok(())
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;

    let failures: Vec<&String> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failures.is_empty(), "no request fails: {failures:?}");
    let expected = u64::try_from(live.lock().expect("lock").len()).expect("fits");
    assert!(expected > 0, "the storm leaves chats behind");
    assert_eq!(counted_in_database(&app, &user).await, expected);
    assert_eq!(total(&app, &user).await, expected);
    assert_eq!(total(&app, &other).await, 1);
}
