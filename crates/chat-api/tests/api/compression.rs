//! Compression: the list and the OpenAPI document honour `Accept-Encoding`
//! (`gzip`, `br`, `zstd`, and `deflate`) with `Vary: Accept-Encoding`; single chats, which
//! carry strong ETags, are never compressed.

use std::io::Read;

use reqwest::{Method, Response};
use serde_json::Value;

use crate::helpers::{TestApp, User, header, problem};

/// The body as the server sent it, decoded by its `Content-Encoding`.
async fn decoded(response: Response) -> (String, Vec<u8>) {
    let encoding = header(&response, "content-encoding");
    let raw = response.bytes().await.expect("body").to_vec();
    let mut plain = Vec::new();
    match encoding.as_str() {
        "gzip" => {
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_end(&mut plain)
                .expect("gzip");
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(raw.as_slice())
                .read_to_end(&mut plain)
                .expect("deflate");
        }
        "br" => {
            brotli::Decompressor::new(raw.as_slice(), 4096)
                .read_to_end(&mut plain)
                .expect("brotli");
        }
        "zstd" => plain = zstd::decode_all(raw.as_slice()).expect("zstd"),
        "" => plain = raw,
        other => panic!("unexpected Content-Encoding {other:?}"),
    }
    (encoding, plain)
}

fn varies_on_accept_encoding(response: &Response) -> bool {
    response.headers().get_all("vary").iter().any(|value| {
        value
            .to_str()
            .expect("ASCII")
            .to_ascii_lowercase()
            .contains("accept-encoding")
    })
}

on_every_adapter! {
    async fn list_responses_are_compressed_as_the_client_accepts() {
        let app = TestApp::spawn().await;
        let user = User::new();
        for n in 0..20 {
            app.create_chat(&user.token, &format!("a chat with a fairly repetitive title {n}")).await;
        }
        let plain = app.get("/chat/?limit=100", &user.token).await;
        assert_eq!(plain.status(), 200);
        assert!(varies_on_accept_encoding(&plain), "Vary even when not compressed");
        let total = header(&plain, "x-total-count");
        let (encoding, expected) = decoded(plain).await;
        assert_eq!(encoding, "", "no Accept-Encoding, no compression");
        let expected: Value = serde_json::from_slice(&expected).expect("JSON");
        assert_eq!(expected.as_array().expect("array").len(), 20);

        for accepted in ["gzip", "br", "zstd", "deflate"] {
            let response = app
                .request(Method::GET, "/chat/?limit=100", &user.token)
                .header("accept-encoding", accepted)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{accepted}");
            assert!(varies_on_accept_encoding(&response), "{accepted}");
            assert_eq!(header(&response, "x-total-count"), total, "{accepted}");
            assert!(header(&response, "etag").is_empty(), "{accepted}");
            let (encoding, body) = decoded(response).await;
            assert_eq!(encoding, accepted);
            let body: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(body, expected, "{accepted}");
        }
    }
}

on_every_adapter! {
    async fn unsupported_or_refused_encodings() {
        let app = TestApp::spawn().await;
        let user = User::new();
        app.create_chat(&user.token, "t").await;
        // An encoding the server lacks: the plain body (identity is always acceptable).
        let response = app
            .request(Method::GET, "/chat/", &user.token)
            .header("accept-encoding", "compress, exi")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-encoding"), "");
        let (_, body) = decoded(response).await;
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body.as_array().expect("array").len(), 1);
        // Nothing acceptable at all: 406, as a problem.
        let response = app
            .request(Method::GET, "/chat/", &user.token)
            .header("accept-encoding", "identity;q=0, compress")
            .send()
            .await
            .expect("request");
        assert!(varies_on_accept_encoding(&response));
        let problem = problem(response, 406).await;
        assert_eq!(problem["title"], "Not Acceptable");
        // Checked before the token, like the method.
        let response = app
            .client
            .get(app.url("/chat/"))
            .header("accept-encoding", "identity;q=0")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 406);
    }
}

on_every_adapter! {
    async fn the_openapi_document_is_compressed_as_the_client_accepts() {
        let app = TestApp::spawn().await;
        let plain = app.get_anonymous("/openapi.json").await;
        assert!(varies_on_accept_encoding(&plain));
        let (_, expected) = decoded(plain).await;
        for accepted in ["gzip", "br", "zstd"] {
            let response = app
                .client
                .get(app.url("/openapi.json"))
                .header("accept-encoding", accepted)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{accepted}");
            assert!(varies_on_accept_encoding(&response), "{accepted}");
            let (encoding, body) = decoded(response).await;
            assert_eq!(encoding, accepted);
            assert_eq!(body, expected, "{accepted}");
        }
    }
}

on_every_adapter! {
    async fn single_chats_are_never_compressed_and_keep_their_etags() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, &"long title ".repeat(20)).await;
        let path = format!("/chat/{}", chat["id"].as_str().expect("id"));
        let created_etag = header(&app.get(&path, &user.token).await, "etag");
        for accepted in ["gzip", "br", "zstd", "gzip, br, zstd"] {
            let response = app
                .request(Method::GET, &path, &user.token)
                .header("accept-encoding", accepted)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{accepted}");
            assert_eq!(header(&response, "content-encoding"), "", "{accepted}");
            assert_eq!(header(&response, "etag"), created_etag, "{accepted}");
            let body: Value = response.json().await.expect("plain JSON");
            assert_eq!(body, chat);

            let response = app
                .request(Method::GET, &path, &user.token)
                .header("accept-encoding", accepted)
                .header("if-none-match", &created_etag)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 304, "{accepted}");
            assert_eq!(header(&response, "etag"), created_etag, "{accepted}");
        }
        // A create and an update answer one chat with its ETag: not compressed either.
        let response = app
            .request(Method::POST, "/chat/", &user.token)
            .header("accept-encoding", "gzip")
            .json(&serde_json::json!({"title": "x".repeat(200)}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        assert_eq!(header(&response, "content-encoding"), "");
        assert!(!header(&response, "etag").is_empty());
        let response = app
            .request(Method::PATCH, &path, &user.token)
            .header("accept-encoding", "gzip")
            .json(&serde_json::json!({"title": "y".repeat(200)}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-encoding"), "");
    }
}

on_every_adapter! {
    async fn other_routes_are_not_compressed() {
        let app = TestApp::spawn().await;
        for path in ["/health/live", "/health/ready", "/metrics"] {
            let response = app
                .client
                .get(app.url(path))
                .header("accept-encoding", "gzip, br, zstd")
                .send()
                .await
                .expect("request");
            assert_eq!(header(&response, "content-encoding"), "", "{path}");
        }
    }
}
