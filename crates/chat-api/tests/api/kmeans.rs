//! `GET /chat/{id}?include=kmeans_datas`: the chat with its k-means results,
//! written through the domain's port as the trainer does.

use chat_domain::{Centroids, ChatId, NewKmeansData, UserId};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, User, error_fields, header, problem};

async fn add_result(app: &TestApp, user: &User, chat_id: &str, rows: Vec<Vec<f64>>) {
    let command = NewKmeansData {
        chat_id: ChatId::parse(chat_id).expect("id"),
        centroids: Centroids::new(rows).expect("valid centroids"),
    };
    app.state
        .chats()
        .expect("ready")
        .add_kmeans_data(UserId::from_uuid(user.id), command)
        .await
        .expect("stored");
}

on_every_adapter! {
    async fn include_adds_the_results_oldest_first() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "with results").await;
        let id = chat["id"].as_str().expect("id");
        add_result(
            &app,
            &user,
            id,
            vec![vec![0.0, 1.5], vec![2.0, 3.0], vec![4.5, 0.5]],
        )
        .await;
        add_result(&app, &user, id, vec![vec![-1.25]]).await;

        let response = app
            .get(&format!("/chat/{id}?include=kmeans_datas"), &user.token)
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        for field in [
            "id",
            "title",
            "description",
            "user_id",
            "created_at",
            "updated_at",
        ] {
            assert_eq!(body[field], chat[field], "{field}");
        }
        let results = body["kmeans_datas"].as_array().expect("kmeans_datas");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["k"], 3);
        assert_eq!(
            results[0]["centroids"],
            json!([[0.0, 1.5], [2.0, 3.0], [4.5, 0.5]])
        );
        assert_eq!(results[0]["chat_id"], id);
        assert_eq!(results[1]["k"], 1);
        assert!(results[0]["created_at"].as_str() <= results[1]["created_at"].as_str());
        Uuid::parse_str(results[0]["id"].as_str().expect("id")).expect("uuid");

        let plain: Value = app
            .get(&format!("/chat/{id}"), &user.token)
            .await
            .json()
            .await
            .expect("JSON");
        assert!(plain.get("kmeans_datas").is_none(), "only when asked for");
    }
}

#[tokio::test]
async fn the_included_representation_has_its_own_etag() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "t").await;
    let id = chat["id"].as_str().expect("id");
    let path = format!("/chat/{id}?include=kmeans_datas");
    let empty = header(&app.get(&path, &user.token).await, "etag");
    assert_ne!(
        empty,
        header(&app.get(&format!("/chat/{id}"), &user.token).await, "etag")
    );
    add_result(&app, &user, id, vec![vec![1.0]]).await;
    let with_one = header(&app.get(&path, &user.token).await, "etag");
    assert_ne!(with_one, empty, "a new result changes the ETag");
    let cached = app
        .request(Method::GET, &path, &user.token)
        .header("if-none-match", &with_one)
        .send()
        .await;
    assert_eq!(cached.expect("request").status(), 304);

    // Another service edits a result in place: the representation, and so its ETag, changes.
    use sea_orm::ConnectionTrait;
    let db = app.sql().await;
    db.execute_unprepared("UPDATE kmeans_data SET centroids = '[[2.0]]'")
        .await
        .expect("update");
    let edited = app
        .request(Method::GET, &path, &user.token)
        .header("if-none-match", &with_one)
        .send()
        .await;
    let edited = edited.expect("request");
    assert_eq!(edited.status(), 200);
    assert_ne!(header(&edited, "etag"), with_one);
}

on_every_adapter! {
    async fn include_accepts_only_kmeans_datas() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let id = chat["id"].as_str().expect("id");
        for value in [
            "chats",
            "kmeans",
            "KMEANS_DATAS",
            "",
            "kmeans_datas&include=kmeans_datas",
        ] {
            let body = problem(
                app.get(&format!("/chat/{id}?include={value}"), &user.token)
                    .await,
                422,
            )
            .await;
            assert_eq!(error_fields(&body), ["include"], "{value}");
        }
        let body = problem(app.get("/chat/nope?include=nope", &user.token).await, 422).await;
        assert_eq!(
            error_fields(&body),
            ["chat_id", "include"],
            "every invalid parameter is listed"
        );
    }
}

on_every_adapter! {
    async fn another_users_chat_with_results_is_404() {
        let app = TestApp::spawn().await;
        let (alice, eve) = (User::new(), User::new());
        let chat = app.create_chat(&alice.token, "t").await;
        let id = chat["id"].as_str().expect("id");
        add_result(&app, &alice, id, vec![vec![1.0]]).await;
        problem(
            app.get(&format!("/chat/{id}?include=kmeans_datas"), &eve.token)
                .await,
            404,
        )
        .await;
    }
}

#[tokio::test]
async fn deleting_a_chat_deletes_its_results() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "t").await;
    let id = chat["id"].as_str().expect("id");
    add_result(&app, &user, id, vec![vec![1.0, 2.0]]).await;
    let response = app
        .request(Method::DELETE, &format!("/chat/{id}"), &user.token)
        .send()
        .await;
    assert_eq!(response.expect("request").status(), 204);
    use sea_orm::ConnectionTrait;
    let db = app.sql().await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM kmeans_data",
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.try_get::<i64>("", "n").expect("count"), 0);
}
