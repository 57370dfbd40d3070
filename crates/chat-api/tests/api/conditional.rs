//! Conditional requests: strong ETags, `If-None-Match` (304) and `If-Match`
//! (412), the latter enforced atomically in the database.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, header, problem};

async fn chat_with_etag(app: &TestApp, user: &User) -> (String, String) {
    let response = app.create(&user.token, json!({"title": "t"})).await;
    let etag = header(&response, "etag");
    let chat: Value = response.json().await.expect("JSON");
    (format!("/chat/{}", chat["id"].as_str().expect("id")), etag)
}

on_every_adapter! {
    async fn if_none_match_answers_304_without_a_body() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let (path, etag) = chat_with_etag(&app, &user).await;
        for value in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let response = app
                .request(Method::GET, &path, &user.token)
                .header("if-none-match", &value)
                .send()
                .await;
            let response = response.expect("request");
            assert_eq!(response.status(), 304, "{value}");
            assert_eq!(header(&response, "etag"), etag);
            assert!(response.bytes().await.expect("body").is_empty());
        }
        let response = app
            .request(Method::GET, &path, &user.token)
            .header("if-none-match", "\"v0\"")
            .send()
            .await;
        assert_eq!(response.expect("request").status(), 200);
    }
}

on_every_adapter! {
    async fn etags_change_on_every_change() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let (path, first) = chat_with_etag(&app, &user).await;
        let response = app
            .request(Method::PATCH, &path, &user.token)
            .json(&json!({"title": "u"}))
            .send()
            .await;
        let second = header(&response.expect("request"), "etag");
        assert_ne!(first, second);
        let response = app
            .request(Method::PATCH, &path, &user.token)
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(
            header(&response.expect("request"), "etag"),
            second,
            "the empty patch changes nothing"
        );
        assert_eq!(header(&app.get(&path, &user.token).await, "etag"), second);
    }
}

on_every_adapter! {
    async fn if_match_guards_put_patch_and_delete() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let (path, etag) = chat_with_etag(&app, &user).await;
        let stale = "\"v99\"";
        for (method, body) in [
            (Method::PUT, json!({"title": "x"})),
            (Method::PATCH, json!({"title": "y"})),
            (Method::DELETE, json!({})),
        ] {
            let response = app
                .request(method.clone(), &path, &user.token)
                .header("if-match", stale)
                .json(&body)
                .send()
                .await;
            let problem = problem(response.expect("request"), 412).await;
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("If-Match")),
                "{method}: {problem}"
            );
        }
        // A weak tag never matches (strong comparison).
        let weak = app
            .request(Method::PATCH, &path, &user.token)
            .header("if-match", format!("W/{etag}"))
            .json(&json!({"title": "z"}));
        problem(weak.send().await.expect("request"), 412).await;
        let current = app
            .request(Method::PUT, &path, &user.token)
            .header("if-match", &etag)
            .json(&json!({"title": "ok"}));
        let response = current.send().await.expect("request");
        assert_eq!(response.status(), 200);
        let etag = header(&response, "etag");
        let any = app
            .request(Method::PATCH, &path, &user.token)
            .header("if-match", "*")
            .json(&json!({"title": "star"}));
        let etag_after_star = header(&any.send().await.expect("request"), "etag");
        assert_ne!(etag_after_star, etag);
        problem(
            app.request(Method::DELETE, &path, &user.token)
                .header("if-match", &etag)
                .send()
                .await
                .expect("request"),
            412,
        )
        .await;
        let delete = app
            .request(Method::DELETE, &path, &user.token)
            .header("if-match", &etag_after_star)
            .send()
            .await;
        assert_eq!(delete.expect("request").status(), 204);
    }
}

on_every_adapter! {
    async fn of_concurrent_patches_with_the_same_if_match_exactly_one_wins() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let (path, etag) = chat_with_etag(&app, &user).await;
        let patches = (0..10).map(|i| {
            app.request(Method::PATCH, &path, &user.token)
                .header("if-match", &etag)
                .json(&json!({ "title": format!("w{i}") }))
                .send()
        });
        let statuses: Vec<u16> = futures_util::future::join_all(patches)
            .await
            .into_iter()
            .map(|r| r.expect("request").status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 412).count(),
            9,
            "{statuses:?}"
        );
    }
}
