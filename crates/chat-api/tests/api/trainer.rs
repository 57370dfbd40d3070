//! The k-means trainer, a second service on the same database: what it
//! stores is what `GET /chat/{id}?include=kmeans_datas` returns.

use serde_json::{Value, json};

use crate::helpers::{TestApp, User};

#[tokio::test]
async fn centroids_stored_by_the_trainer_are_served_over_http() {
    let app = TestApp::spawn().await;
    let user = User::new();
    let chat = app.create_chat(&user.token, "clustered").await;
    let id = chat["id"].as_str().expect("id");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let csv = dir.path().join("points.csv");
    std::fs::write(
        &csv,
        "x,y\n0,0\n0,2\n2,0\n2,2\n10,10\n10,12\n12,10\n12,12\n",
    )
    .expect("CSV written");

    let args = kmeans_trainer::parse_args([
        "kmeans-trainer".to_owned(),
        format!("--database-url={}", app.database_url()),
        format!("--chat={id}"),
        format!("--user={}", user.id),
        "--k=2".to_owned(),
        csv.display().to_string(),
    ])
    .expect("valid arguments");
    let report = kmeans_trainer::run(args).await.expect("trained and stored");

    let response = app
        .get(&format!("/chat/{id}?include=kmeans_datas"), &user.token)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    let results = body["kmeans_datas"].as_array().expect("kmeans_datas");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], report.stored.id.to_string());
    assert_eq!(results[0]["chat_id"], id);
    assert_eq!(results[0]["k"], 2);
    assert_eq!(results[0]["centroids"], json!([[1.0, 1.0], [11.0, 11.0]]));
}

#[tokio::test]
async fn the_trainer_cannot_write_into_another_users_chat() {
    let app = TestApp::spawn().await;
    let (owner, stranger) = (User::new(), User::new());
    let chat = app.create_chat(&owner.token, "not yours").await;
    let id = chat["id"].as_str().expect("id");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let csv = dir.path().join("points.csv");
    std::fs::write(&csv, "1,2\n3,4\n").expect("CSV written");

    let args = kmeans_trainer::parse_args([
        "kmeans-trainer".to_owned(),
        format!("--database-url={}", app.database_url()),
        format!("--chat={id}"),
        format!("--user={}", stranger.id),
        "--k=1".to_owned(),
        csv.display().to_string(),
    ])
    .expect("valid arguments");
    let error = kmeans_trainer::run(args).await.expect_err("refused");
    assert_eq!(error.exit_code(), kmeans_trainer::exit::BAD_INPUT);
    assert!(error.to_string().contains("not found"), "{error}");

    let body: Value = app
        .get(&format!("/chat/{id}?include=kmeans_datas"), &owner.token)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["kmeans_datas"], json!([]));
}
