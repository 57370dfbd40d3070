//! Bad input gets the contract's status and a problem body that says what was
//! wrong, in the contract's order of checks; nothing is stored.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, User, error_fields, header, problem};

async fn post_raw(
    app: &TestApp,
    user: &User,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.request(Method::POST, "/chat/", &user.token).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.expect("request")
}

async fn total(app: &TestApp, user: &User) -> String {
    header(&app.get("/chat/", &user.token).await, "x-total-count")
}

on_every_adapter! {
    async fn titles_are_trimmed_of_unicode_white_space_only() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app
            .create_chat(&user.token, "\u{3000}\u{a0}\t Hello  world \n\u{2003}")
            .await;
        assert_eq!(chat["title"], "Hello  world");
        let chat = app
            .create_chat(&user.token, "\u{200b}zero width\u{200b}")
            .await;
        assert_eq!(
            chat["title"], "\u{200b}zero width\u{200b}",
            "U+200B is not White_Space"
        );
    }
}

on_every_adapter! {
    async fn titles_count_scalar_values_up_to_255() {
        let app = TestApp::spawn().await;
        let user = User::new();
        for title in [
            "🦀".repeat(255),
            "é".repeat(255),
            format!("  {}  ", "a".repeat(255)),
        ] {
            let chat = app.create_chat(&user.token, &title).await;
            assert_eq!(chat["title"].as_str().map(|t| t.chars().count()), Some(255));
        }
        for title in [
            "🦀".repeat(256),
            "a".repeat(256),
            String::new(),
            " \t\n".to_owned(),
        ] {
            let body = problem(
                app.create(&user.token, json!({ "title": title })).await,
                422,
            )
            .await;
            assert_eq!(error_fields(&body), ["title"]);
        }
    }
}

on_every_adapter! {
    async fn descriptions_hold_up_to_ten_thousand_characters() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = app
            .create(
                &user.token,
                json!({"title": "t", "description": "ü".repeat(10_000)}),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body = problem(
            app.create(
                &user.token,
                json!({"title": "t", "description": "ü".repeat(10_001)}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(error_fields(&body), ["description"]);
    }
}

on_every_adapter! {
    async fn nul_characters_are_a_422_never_a_500() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let body = problem(
            app.create(
                &user.token,
                json!({"title": "a\u{0}b", "description": "c\u{0}"}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(error_fields(&body), ["title", "description"]);
        let chat = app.create_chat(&user.token, "t").await;
        let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
        for method in [Method::PUT, Method::PATCH] {
            let response = app
                .request(method, &path, &user.token)
                .json(&json!({"title": "\u{0}"}))
                .send()
                .await;
            problem(response.expect("request"), 422).await;
        }
        assert_eq!(total(&app, &user).await, "1");
    }
}

on_every_adapter! {
    async fn unknown_fields_are_named() {
        let app = TestApp::spawn().await;
        let user = User::new();
        for field in ["id", "user_id", "titel", "created_at"] {
            let body = problem(
                app.create(&user.token, json!({"title": "t", field: "x"}))
                    .await,
                422,
            )
            .await;
            assert_eq!(error_fields(&body), [field]);
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("unknown")),
                "{body}"
            );
        }
    }
}

on_every_adapter! {
    async fn wrong_shapes_and_types_list_every_invalid_field() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let body = problem(
            app.create(
                &user.token,
                json!({"title": 5, "description": ["x"], "extra": 1}),
            )
            .await,
            422,
        )
        .await;
        let mut fields = error_fields(&body);
        fields.sort();
        assert_eq!(fields, ["description", "extra", "title"]);
        assert_eq!(body["detail"], "request body is invalid");
        for document in [json!([]), json!("title"), json!(3), json!(null)] {
            let body = problem(app.create(&user.token, document).await, 422).await;
            assert_eq!(error_fields(&body), ["body"]);
        }
        let body = problem(app.create(&user.token, json!({})).await, 422).await;
        assert_eq!(error_fields(&body), ["title"]);
        assert_eq!(total(&app, &user).await, "0", "nothing was stored");
    }
}

on_every_adapter! {
    async fn bodies_that_are_not_json_are_400() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let cases: [&[u8]; 9] = [
            b"",
            b"{\"title\": \"x\",}",
            b"{\"title\": \"x\"} // comment",
            b"{\"title\": NaN}",
            b"{\"title\": \"\xff\xfe\"}",
            br#"{"title": "\ud800"}"#,
            b"{\"title\": ",
            b"{'title': 'x'}",
            b"{\"title\": \"x\"}{}",
        ];
        for body in cases {
            let response = post_raw(&app, &user, Some("application/json"), body.to_vec()).await;
            let problem = problem(response, 400).await;
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("JSON")),
                "{problem}"
            );
        }
        // No Content-Type and no body is not "a body": still the 400 for emptiness.
        problem(post_raw(&app, &user, None, Vec::new()).await, 400).await;
        assert_eq!(total(&app, &user).await, "0");
    }
}

on_every_adapter! {
    async fn bodies_not_declared_as_json_are_415() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let body = br#"{"title": "x"}"#.to_vec();
        for content_type in [
            Some("text/plain"),
            None,
            Some("application/merge-patch+json"),
            Some("application/xml"),
        ] {
            let response = post_raw(&app, &user, content_type, body.clone()).await;
            problem(response, 415).await;
        }
        for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
            let response = post_raw(&app, &user, Some(content_type), body.clone()).await;
            assert_eq!(response.status(), 201, "{content_type}");
        }
        let chat = app.create_chat(&user.token, "t").await;
        let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
        let put = app
            .request(Method::PUT, &path, &user.token)
            .header("content-type", "application/merge-patch+json");
        problem(put.body(body.clone()).send().await.expect("request"), 415).await;
        let patch = app
            .request(Method::PATCH, &path, &user.token)
            .header("content-type", "text/plain");
        problem(patch.body(body).send().await.expect("request"), 415).await;
    }
}

/// A JSON body of exactly `size` bytes: a valid document padded with spaces.
fn padded_body(size: usize) -> Vec<u8> {
    let mut body = br#"{"title": "big"}"#.to_vec();
    body.resize(size, b' ');
    body
}

on_every_adapter! {
    async fn bodies_up_to_64_kib_are_accepted_and_larger_ones_are_413() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let response = post_raw(&app, &user, Some("application/json"), padded_body(65_536)).await;
        assert_eq!(response.status(), 201, "exactly 65,536 bytes is accepted");
        let response = post_raw(&app, &user, Some("application/json"), padded_body(65_537)).await;
        problem(response, 413).await;
        let response = post_raw(
            &app,
            &user,
            Some("application/json"),
            padded_body(2 * 1024 * 1024),
        )
        .await;
        problem(response, 413).await;
        assert_eq!(total(&app, &user).await, "1");
    }
}

on_every_adapter! {
    async fn a_chunked_body_over_the_limit_is_413() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..17).map(|_| Ok(vec![b' '; 4096])).collect();
        let response = app
            .request(Method::POST, "/chat/", &user.token)
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("request");
        problem(response, 413).await;
    }
}

on_every_adapter! {
    async fn checks_run_in_the_contracts_order() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
        let absent = format!("/chat/{}", Uuid::new_v4());
        let send =
            |method: Method, path: &str, token: Option<&str>, content_type: &str, body: Vec<u8>| {
                let mut request = app
                    .client
                    .request(method, app.url(path))
                    .header("content-type", content_type)
                    .body(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                request.send()
            };
        let invalid = br#"{"title": ""}"#.to_vec();
        // route before token
        problem(
            send(Method::POST, &path, None, "text/plain", invalid.clone())
                .await
                .expect("request"),
            405,
        )
        .await;
        // token before parameters
        problem(
            send(
                Method::PUT,
                "/chat/nope",
                None,
                "text/plain",
                invalid.clone(),
            )
            .await
            .expect("request"),
            401,
        )
        .await;
        // parameters before body size
        let body = problem(
            send(
                Method::PUT,
                "/chat/nope",
                Some(&user.token),
                "text/plain",
                padded_body(70_000),
            )
            .await
            .expect("request"),
            422,
        )
        .await;
        assert_eq!(error_fields(&body), ["chat_id"]);
        // body size before content type
        problem(
            send(
                Method::PUT,
                &path,
                Some(&user.token),
                "text/plain",
                padded_body(70_000),
            )
            .await
            .expect("request"),
            413,
        )
        .await;
        // content type before syntax
        problem(
            send(
                Method::PUT,
                &path,
                Some(&user.token),
                "text/plain",
                b"{,".to_vec(),
            )
            .await
            .expect("request"),
            415,
        )
        .await;
        // syntax before shape
        problem(
            send(
                Method::PUT,
                &path,
                Some(&user.token),
                "application/json",
                b"{,".to_vec(),
            )
            .await
            .expect("request"),
            400,
        )
        .await;
        // shape before existence
        problem(
            send(
                Method::PUT,
                &absent,
                Some(&user.token),
                "application/json",
                invalid,
            )
            .await
            .expect("request"),
            422,
        )
        .await;
        // existence before precondition
        let stale = app
            .request(Method::PUT, &absent, &user.token)
            .header("if-match", "\"v999\"")
            .json(&json!({"title": "t"}));
        problem(stale.send().await.expect("request"), 404).await;
    }
}

on_every_adapter! {
    async fn chat_ids_are_hyphenated_uuids_in_any_case() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let id = chat["id"].as_str().expect("id");
        let upper = app
            .get(&format!("/chat/{}", id.to_uppercase()), &user.token)
            .await;
        assert_eq!(upper.status(), 200);
        assert_eq!(upper.json::<Value>().await.expect("JSON")["id"], id);
        let simple = id.replace('-', "");
        for bad in [
            simple.as_str(),
            &format!("{{{id}}}"),
            &format!("urn:uuid:{id}"),
            "42",
            "not-a-uuid",
        ] {
            let body = problem(app.get(&format!("/chat/{bad}"), &user.token).await, 422).await;
            assert_eq!(error_fields(&body), ["chat_id"], "{bad}");
            assert_eq!(body["detail"], "request parameters are invalid");
        }
    }
}

on_every_adapter! {
    async fn paging_parameters_are_checked() {
        let app = TestApp::spawn().await;
        let user = User::new();
        for (query, fields) in [
            ("skip=-1", vec!["skip"]),
            ("skip=abc", vec!["skip"]),
            ("skip=9223372036854775808", vec!["skip"]),
            ("limit=0", vec!["limit"]),
            ("limit=101", vec!["limit"]),
            ("limit=2.5", vec!["limit"]),
            ("limit=", vec!["limit"]),
            ("limit=5&limit=5", vec!["limit"]),
            ("skip=-1&limit=1000", vec!["skip", "limit"]),
        ] {
            let body = problem(app.get(&format!("/chat/?{query}"), &user.token).await, 422).await;
            assert_eq!(error_fields(&body), fields, "{query}");
        }
        for query in [
            "skip=9223372036854775807",
            "limit=100",
            "limit=1",
            "unknown=x&include=foo",
        ] {
            assert_eq!(
                app.get(&format!("/chat/?{query}"), &user.token)
                    .await
                    .status(),
                200,
                "{query}"
            );
        }
    }
}
