//! The six `/chat` routes: statuses, headers and bodies, and ownership.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, User, header, problem};

fn id_of(chat: &Value) -> String {
    chat["id"].as_str().expect("id").to_owned()
}

/// RFC 3339, UTC, exactly six fractional digits and a `Z`.
fn assert_timestamp(value: &Value) {
    let text = value.as_str().expect("a string");
    let bytes = text.as_bytes();
    assert_eq!(text.len(), 27, "{text}");
    assert!(
        text.ends_with('Z') && bytes[10] == b'T' && bytes[19] == b'.',
        "{text}"
    );
    assert!(text[20..26].bytes().all(|b| b.is_ascii_digit()), "{text}");
    chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
}

on_every_adapter! {
    async fn create_answers_201_with_location_etag_and_the_chat() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = app
            .create(
                &user.token,
                json!({"title": "  My Chat \t", "description": "Example chat"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let location = header(&response, "location");
        let etag = header(&response, "etag");
        let chat: Value = response.json().await.expect("JSON");
        assert_eq!(location, format!("/chat/{}", id_of(&chat)));
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
            "strong ETag: {etag}"
        );
        assert_eq!(chat["title"], "My Chat");
        assert_eq!(chat["description"], "Example chat");
        assert_eq!(chat["user_id"], user.id.to_string());
        let id = Uuid::parse_str(&id_of(&chat)).expect("uuid");
        assert_eq!(id.get_version_num(), 7, "time-ordered ids");
        assert_timestamp(&chat["created_at"]);
        assert_eq!(chat["created_at"], chat["updated_at"]);
        let keys: Vec<&str> = chat
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 6, "exactly the ChatRead fields: {keys:?}");
    }
}

on_every_adapter! {
    async fn both_collection_paths_work_without_redirect() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = app
            .request(Method::POST, "/chat", &user.token)
            .json(&json!({"title": "a"}))
            .send()
            .await;
        let response = response.expect("request");
        assert_eq!(response.status(), 201);
        let chat: Value = response.json().await.expect("JSON");
        assert_eq!(
            chat["description"],
            Value::Null,
            "an omitted description is null"
        );
        for path in ["/chat", "/chat/"] {
            let response = app.get(path, &user.token).await;
            assert_eq!(response.status(), 200, "{path}");
            let list: Value = response.json().await.expect("JSON");
            assert_eq!(list.as_array().map(Vec::len), Some(1));
        }
    }
}

on_every_adapter! {
    async fn a_write_returns_exactly_what_a_later_read_returns() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = app
            .create(
                &user.token,
                json!({"title": "round trip", "description": ""}),
            )
            .await;
        let etag = header(&response, "etag");
        let created = response.text().await.expect("body");
        let id = id_of(&serde_json::from_str(&created).expect("JSON"));
        let read = app.get(&format!("/chat/{id}"), &user.token).await;
        assert_eq!(read.status(), 200);
        assert_eq!(header(&read, "etag"), etag);
        assert_eq!(read.text().await.expect("body"), created, "byte for byte");
        let created: Value = serde_json::from_str(&created).expect("JSON");
        assert_eq!(
            created["description"], "",
            "an empty description stays empty"
        );
    }
}

on_every_adapter! {
    async fn the_owner_comes_from_the_token_never_the_body() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = app
            .create(
                &user.token,
                json!({"title": "x", "user_id": Uuid::new_v4()}),
            )
            .await;
        let body = problem(response, 422).await;
        assert_eq!(crate::helpers::error_fields(&body), ["user_id"]);
    }
}

on_every_adapter! {
    async fn an_absent_chat_is_404_on_every_route() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let path = format!("/chat/{}", Uuid::new_v4());
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let response = app
                .request(method.clone(), &path, &user.token)
                .json(&json!({"title": "t"}))
                .send()
                .await
                .expect("request");
            problem(response, 404).await;
        }
    }
}

on_every_adapter! {
    async fn another_users_chat_answers_404_everywhere_and_stays_intact() {
        let app = TestApp::spawn().await;
        let (alice, eve) = (User::new(), User::new());
        let chat = app.create_chat(&alice.token, "alice's").await;
        let path = format!("/chat/{}", id_of(&chat));
        let absent = format!("/chat/{}", Uuid::new_v4());
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            let theirs = app
                .request(method.clone(), &path, &eve.token)
                .json(&json!({"title": "pwned"}))
                .send()
                .await;
            let nobodys = app
                .request(method.clone(), &absent, &eve.token)
                .json(&json!({"title": "pwned"}))
                .send()
                .await;
            let theirs = problem(theirs.expect("request"), 404).await;
            let nobodys = problem(nobodys.expect("request"), 404).await;
            assert_eq!(theirs, nobodys, "{method}: indistinguishable from absent");
        }
        let list: Value = app
            .get("/chat/", &eve.token)
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(list, json!([]));
        let read: Value = app
            .get(&path, &alice.token)
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(read, chat, "untouched");
    }
}

on_every_adapter! {
    async fn list_shows_only_the_callers_chats_newest_first() {
        let app = TestApp::spawn().await;
        let (alice, bob) = (User::new(), User::new());
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(id_of(
                &app.create_chat(&alice.token, &format!("a{i}")).await,
            ));
        }
        app.create_chat(&bob.token, "b").await;
        let response = app.get("/chat/", &alice.token).await;
        assert_eq!(header(&response, "x-total-count"), "3");
        let list: Value = response.json().await.expect("JSON");
        let listed: Vec<String> = list.as_array().expect("array").iter().map(id_of).collect();
        ids.reverse();
        assert_eq!(listed, ids);
    }
}

on_every_adapter! {
    async fn an_empty_list_is_200_with_an_empty_array() {
        let app = TestApp::spawn().await;
        let response = app.get("/chat/", &User::new().token).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-total-count"), "0");
        assert_eq!(header(&response, "link"), "");
        assert_eq!(response.json::<Value>().await.expect("JSON"), json!([]));
    }
}

on_every_adapter! {
    async fn put_replaces_every_field() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app
            .create(&user.token, json!({"title": "old", "description": "old"}))
            .await;
        let old_etag = header(&chat, "etag");
        let chat: Value = chat.json().await.expect("JSON");
        let path = format!("/chat/{}", id_of(&chat));
        let response = app
            .request(Method::PUT, &path, &user.token)
            .json(&json!({"title": " new "}))
            .send()
            .await;
        let response = response.expect("request");
        assert_eq!(response.status(), 200);
        assert_ne!(header(&response, "etag"), old_etag);
        let replaced: Value = response.json().await.expect("JSON");
        assert_eq!(replaced["title"], "new");
        assert_eq!(
            replaced["description"],
            Value::Null,
            "omitted means null in a full replacement"
        );
        assert_eq!(replaced["created_at"], chat["created_at"]);
        assert!(
            replaced["updated_at"].as_str() > chat["updated_at"].as_str(),
            "updated_at moves"
        );
        let read: Value = app
            .get(&path, &user.token)
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(read, replaced);
    }
}

on_every_adapter! {
    async fn put_requires_a_title() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let path = format!("/chat/{}", id_of(&chat));
        let response = app
            .request(Method::PUT, &path, &user.token)
            .json(&json!({"description": "d"}))
            .send()
            .await;
        let body = problem(response.expect("request"), 422).await;
        assert_eq!(crate::helpers::error_fields(&body), ["title"]);
    }
}

on_every_adapter! {
    async fn patch_changes_only_the_given_fields() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app
            .create(&user.token, json!({"title": "t", "description": "d"}))
            .await
            .json::<Value>()
            .await;
        let chat = chat.expect("JSON");
        let path = format!("/chat/{}", id_of(&chat));
        let patch = |body: Value| {
            app.request(Method::PATCH, &path, &user.token)
                .json(&body)
                .send()
        };

        let retitled: Value = patch(json!({"title": "T2"}))
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            (retitled["title"].clone(), retitled["description"].clone()),
            (json!("T2"), json!("d"))
        );
        let cleared: Value = patch(json!({"description": null}))
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
        assert_eq!(
            (cleared["title"].clone(), cleared["description"].clone()),
            (json!("T2"), Value::Null)
        );
        let body = problem(patch(json!({"title": null})).await.expect("request"), 422).await;
        assert_eq!(crate::helpers::error_fields(&body), ["title"]);
    }
}

on_every_adapter! {
    async fn patch_accepts_merge_patch_json() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let response = app
            .request(
                Method::PATCH,
                &format!("/chat/{}", id_of(&chat)),
                &user.token,
            )
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"description": "via merge patch"}"#)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.json::<Value>().await.expect("JSON")["description"],
            "via merge patch"
        );
    }
}

on_every_adapter! {
    async fn the_empty_patch_is_a_noop_with_the_same_body_and_etag() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let created = app.create(&user.token, json!({"title": "t"})).await;
        let etag = header(&created, "etag");
        let created: Value = created.json().await.expect("JSON");
        let path = format!("/chat/{}", id_of(&created));
        let response = app
            .request(Method::PATCH, &path, &user.token)
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "etag"), etag);
        assert_eq!(response.json::<Value>().await.expect("JSON"), created);
    }
}

on_every_adapter! {
    async fn a_write_with_unchanged_values_still_moves_updated_at_and_etag() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let created = app.create(&user.token, json!({"title": "same"})).await;
        let etag = header(&created, "etag");
        let created: Value = created.json().await.expect("JSON");
        let path = format!("/chat/{}", id_of(&created));
        for method in [Method::PATCH, Method::PUT] {
            let response = app
                .request(method, &path, &user.token)
                .json(&json!({"title": "same"}))
                .send()
                .await;
            let response = response.expect("request");
            assert_ne!(header(&response, "etag"), etag);
            let body: Value = response.json().await.expect("JSON");
            assert!(body["updated_at"].as_str() > created["updated_at"].as_str());
        }
    }
}

on_every_adapter! {
    async fn delete_answers_204_with_no_body_then_the_chat_is_gone() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "doomed").await;
        let path = format!("/chat/{}", id_of(&chat));
        let response = app
            .request(Method::DELETE, &path, &user.token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 204);
        assert_eq!(response.bytes().await.expect("body").len(), 0);
        problem(app.get(&path, &user.token).await, 404).await;
        problem(
            app.request(Method::DELETE, &path, &user.token)
                .send()
                .await
                .expect("request"),
            404,
        )
        .await;
        assert_eq!(
            header(&app.get("/chat/", &user.token).await, "x-total-count"),
            "0"
        );
    }
}

on_every_adapter! {
    async fn of_concurrent_deletes_exactly_one_wins() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "contested").await;
        let path = format!("/chat/{}", id_of(&chat));
        let deletes = (0..8).map(|_| app.request(Method::DELETE, &path, &user.token).send());
        let statuses: Vec<u16> = futures_util::future::join_all(deletes)
            .await
            .into_iter()
            .map(|r| r.expect("request").status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 204).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 404).count(),
            7,
            "{statuses:?}"
        );
    }
}

on_every_adapter! {
    async fn get_routes_answer_head_without_a_body() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        for path in ["/chat/".to_owned(), format!("/chat/{}", id_of(&chat))] {
            let get = app.get(&path, &user.token).await;
            let head = app
                .request(Method::HEAD, &path, &user.token)
                .send()
                .await
                .expect("request");
            assert_eq!(head.status(), 200, "{path}");
            assert_eq!(header(&head, "etag"), header(&get, "etag"));
            assert_eq!(
                header(&head, "x-total-count"),
                header(&get, "x-total-count")
            );
            assert_eq!(head.bytes().await.expect("body").len(), 0);
        }
    }
}

on_every_adapter! {
    async fn first_writes_provision_the_user_once_even_concurrently() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let creates = (0..20).map(|i| app.create(&user.token, json!({ "title": format!("c{i}") })));
        for response in futures_util::future::join_all(creates).await {
            assert_eq!(response.status(), 201);
        }
        assert_eq!(
            header(&app.get("/chat/", &user.token).await, "x-total-count"),
            "20"
        );
    }
}
