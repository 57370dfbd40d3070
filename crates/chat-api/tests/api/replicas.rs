//! Many replicas, one database: two servers that share nothing but the
//! database. What one issues (a cursor, an ETag, an idempotency key's stored
//! answer, a token) means the same on the other, and concurrent conditional
//! writes through both let exactly one win.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, header};

/// Two servers over one fresh PostgreSQL database.
async fn two_replicas() -> (TestApp, TestApp) {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_on(first.database_url(), &[]).await;
    (first, second)
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_cursor_an_etag_and_a_token_from_one_replica_work_on_the_other() {
    let (a, b) = two_replicas().await;
    let user = User::new();
    for title in ["one", "two", "three"] {
        a.create_chat(&user.token, title).await;
    }

    // The same token on both; the cursor A issued pages the same on B.
    let first_page = a.get("/chat/?limit=1", &user.token).await;
    let cursor = header(&first_page, "x-next-cursor");
    assert!(!cursor.is_empty());
    let path = format!("/chat/?limit=1&cursor={cursor}");
    let on_a = json_of(a.get(&path, &user.token).await).await;
    let on_b_response = b.get(&path, &user.token).await;
    assert_eq!(on_b_response.status(), 200);
    assert_eq!(json_of(on_b_response).await, on_a);

    // The ETag A sent is current on B: a 304 for If-None-Match, a 200 for If-Match.
    let id = on_a[0]["id"].as_str().expect("id").to_owned();
    let etag = header(&a.get(&format!("/chat/{id}"), &user.token).await, "etag");
    let unchanged = b
        .request(Method::GET, &format!("/chat/{id}"), &user.token)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(unchanged.status(), 304);
    let patched = b
        .request(Method::PATCH, &format!("/chat/{id}"), &user.token)
        .header("If-Match", &etag)
        .json(&json!({"title": "renamed on B"}))
        .send()
        .await
        .expect("request");
    assert_eq!(patched.status(), 200);
    // …and B's new ETag is current on A, the old one stale there.
    let new_etag = header(&patched, "etag");
    let on_a = a
        .request(Method::GET, &format!("/chat/{id}"), &user.token)
        .header("If-None-Match", &new_etag)
        .send()
        .await
        .expect("request");
    assert_eq!(on_a.status(), 304);
    let stale = a
        .request(Method::DELETE, &format!("/chat/{id}"), &user.token)
        .header("If-Match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), 412);
}

#[tokio::test]
async fn an_idempotency_key_used_on_one_replica_replays_on_the_other() {
    let (a, b) = two_replicas().await;
    let user = User::new();
    let body = json!({"title": "once", "description": "only once"});
    let first = a
        .request(Method::POST, "/chat/", &user.token)
        .header("Idempotency-Key", "replica-key-1")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), 201);
    let location = header(&first, "location");
    let etag = header(&first, "etag");
    let created = json_of(first).await;

    let again = b
        .request(Method::POST, "/chat/", &user.token)
        .header("Idempotency-Key", "replica-key-1")
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(header(&again, "location"), location);
    assert_eq!(header(&again, "etag"), etag);
    assert_eq!(json_of(again).await, created);
    let listed = b.get("/chat/", &user.token).await;
    assert_eq!(header(&listed, "x-total-count"), "1");
}

#[tokio::test]
async fn of_concurrent_if_match_writes_through_two_replicas_exactly_one_wins() {
    let (a, b) = two_replicas().await;
    let user = User::new();
    for round in 0..5 {
        let chat = a
            .create_chat(&user.token, &format!("contended {round}"))
            .await;
        let id = chat["id"].as_str().expect("id").to_owned();
        let etag = header(&a.get(&format!("/chat/{id}"), &user.token).await, "etag");
        let writes: Vec<_> = (0..10)
            .map(|i| {
                let replica = if i % 2 == 0 { &a } else { &b };
                replica
                    .request(Method::PATCH, &format!("/chat/{id}"), &user.token)
                    .header("If-Match", &etag)
                    .json(&json!({ "title": format!("writer {i}") }))
                    .send()
            })
            .collect();
        let statuses: Vec<u16> = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|response| response.expect("answer").status().as_u16())
            .collect();
        let won = statuses.iter().filter(|s| **s == 200).count();
        let lost = statuses.iter().filter(|s| **s == 412).count();
        assert_eq!((won, lost), (1, 9), "round {round}: {statuses:?}");
        let winner = statuses.iter().position(|s| *s == 200).expect("a winner");
        let stored = json_of(b.get(&format!("/chat/{id}"), &user.token).await).await;
        assert_eq!(
            stored["title"],
            format!("writer {winner}"),
            "only the winner's write applied"
        );
    }
}
