//! Unknown routes and methods, health, OpenAPI, docs, metrics, and the headers
//! every response carries.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{TestApp, User, header, problem};

on_every_adapter! {
    async fn unknown_routes_are_404_problems() {
        let app = TestApp::spawn().await;
        for path in [
            "/",
            "/nope",
            "/chats",
            "/chat/x/y",
            "/health",
            "/chat//",
            "/docs/no-such-asset.js",
        ] {
            let response = app.get_anonymous(path).await;
            problem(response, 404).await;
        }
    }
}

on_every_adapter! {
    async fn wrong_methods_are_405_with_allow_before_any_token_check() {
        let app = TestApp::spawn().await;
        let item = format!("/chat/{}", uuid::Uuid::new_v4());
        for (method, path, allow) in [
            (Method::DELETE, "/chat/", "GET, HEAD, POST"),
            (Method::PUT, "/chat", "GET, HEAD, POST"),
            (Method::POST, item.as_str(), "GET, HEAD, PUT, PATCH, DELETE"),
            (
                Method::OPTIONS,
                item.as_str(),
                "GET, HEAD, PUT, PATCH, DELETE",
            ),
            (Method::POST, "/health/live", "GET, HEAD"),
            (Method::DELETE, "/metrics", "GET, HEAD"),
        ] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .expect("request");
            assert_eq!(header(&response, "allow"), allow, "{method} {path}");
            problem(response, 405).await;
        }
    }
}

on_every_adapter! {
    async fn health_endpoints_need_no_token() {
        let app = TestApp::spawn().await;
        for path in ["/health/live", "/health/ready"] {
            let response = app.get_anonymous(path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(
                response.json::<Value>().await.expect("JSON")["status"],
                "ok"
            );
            let head = app
                .client
                .head(app.url(path))
                .send()
                .await
                .expect("request");
            assert_eq!(head.status(), 200);
        }
    }
}

on_every_adapter! {
    async fn openapi_documents_every_chat_operation_with_schemas_errors_and_bearer_auth() {
        let app = TestApp::spawn().await;
        let response = app.get_anonymous("/openapi.json").await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("application/json"));
        let document: Value = response.json().await.expect("JSON");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        let paths = &document["paths"];
        for (path, method) in [
            ("/chat/", "post"),
            ("/chat/", "get"),
            ("/chat/{chat_id}", "get"),
            ("/chat/{chat_id}", "put"),
            ("/chat/{chat_id}", "patch"),
            ("/chat/{chat_id}", "delete"),
        ] {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} is documented");
            assert_eq!(
                operation["security"][0]["bearer"],
                Value::Array(vec![]),
                "{method} {path} needs a bearer token"
            );
            for status in ["401", "422"] {
                let problem = &operation["responses"][status]["content"]["application/problem+json"];
                assert!(problem.is_object(), "{method} {path} documents {status}");
            }
        }
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for schema in [
            "ChatRead",
            "ChatCreate",
            "ChatUpdateFull",
            "ChatUpdatePartial",
            "Problem",
            "KmeansData",
        ] {
            assert!(
                document["components"]["schemas"][schema].is_object(),
                "{schema}"
            );
        }
        assert_eq!(
            document["components"]["schemas"]["ChatCreate"]["additionalProperties"],
            false
        );
    }
}

/// The committed copy of the document; a contract change shows up in review.
/// `UPDATE_SNAPSHOTS=1 cargo test` rewrites it.
#[test]
fn the_openapi_document_matches_its_snapshot() {
    let path = format!(
        "{}/tests/snapshots/openapi.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let current = String::from_utf8(chat_api::openapi::document()).expect("UTF-8");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &current).expect("write snapshot");
    }
    let committed = std::fs::read_to_string(&path)
        .expect("tests/snapshots/openapi.json (UPDATE_SNAPSHOTS=1 writes it)");
    assert!(
        committed == current,
        "the OpenAPI document changed; review, then UPDATE_SNAPSHOTS=1 cargo test"
    );
}

on_every_adapter! {
    async fn docs_work_offline_from_assets_in_the_binary() {
        let app = TestApp::spawn().await;
        let page = app.get_anonymous("/docs").await;
        assert_eq!(page.status(), 200);
        assert!(header(&page, "content-type").starts_with("text/html"));
        let html = page.text().await.expect("html");
        assert!(
            html.contains("/openapi.json") && !html.contains("https://"),
            "no external assets"
        );
        for asset in [
            "/docs/swagger-ui-bundle.js",
            "/docs/swagger-ui.css",
            "/docs/swagger-ui-standalone-preset.js",
        ] {
            let response = app.get_anonymous(asset).await;
            assert_eq!(response.status(), 200, "{asset}");
            assert!(
                response.bytes().await.expect("asset").len() > 1000,
                "{asset}"
            );
        }
    }
}

on_every_adapter! {
    async fn metrics_count_requests_by_route_template_never_raw_path() {
        let app = TestApp::spawn().await;
        let user = User::new();
        let chat = app.create_chat(&user.token, "t").await;
        let id = chat["id"].as_str().expect("id");
        assert_eq!(
            app.get(&format!("/chat/{id}"), &user.token).await.status(),
            200
        );
        let response = app.get_anonymous("/metrics").await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("text/plain"));
        let text = response.text().await.expect("text");
        assert!(
            text.contains(r#"http_requests_total{method="POST",route="/chat/",status="201"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/chat/{chat_id}",status="200"} 1"#
            )
        );
        assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
        assert!(text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/chat/{chat_id}",status="200",le="0.005"}"#));
        assert!(!text.contains(id), "raw paths never become labels");
        for gauge in [
            "http_requests_in_flight",
            "db_statements_total",
            "chat_api_build_info",
        ] {
            assert!(text.contains(gauge), "{gauge}");
        }
        // The pool as three plain gauges, so sums and ratios need no label tricks.
        let value = |name: &str| -> i64 {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .parse()
                .expect("an integer")
        };
        let (idle, in_use, max) = (
            value("db_pool_connections_idle"),
            value("db_pool_connections_in_use"),
            value("db_pool_connections_max"),
        );
        assert!(idle >= 0 && in_use >= 0 && idle + in_use <= max, "{idle} {in_use} {max}");
        assert!(!text.contains("state=\""), "no state label any more");
        // The process collector: memory, CPU and file descriptors of the server.
        assert!(value("process_resident_memory_bytes") > 0, "{text}");
        for metric in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
            "process_threads",
            "process_virtual_memory_bytes",
        ] {
            assert!(text.contains(&format!("\n{metric} ")), "{metric}");
        }
    }
}

on_every_adapter! {
    async fn every_response_carries_a_request_id_and_nosniff() {
        let app = TestApp::spawn().await;
        let response = app
            .client
            .get(app.url("/health/live"))
            .header("x-request-id", "trace-abc.123")
            .send()
            .await;
        let response = response.expect("request");
        assert_eq!(
            header(&response, "x-request-id"),
            "trace-abc.123",
            "a client's id is kept"
        );
        for path in ["/health/live", "/nope", "/chat/"] {
            let response = app.get_anonymous(path).await;
            assert_eq!(
                header(&response, "x-request-id").len(),
                32,
                "{path}: a generated id"
            );
            assert_eq!(
                header(&response, "x-content-type-options"),
                "nosniff",
                "{path}"
            );
            assert_eq!(header(&response, "server"), "", "no version banner");
        }
        let unsafe_id = app
            .client
            .get(app.url("/health/live"))
            .header("x-request-id", "a b")
            .send()
            .await;
        assert_ne!(header(&unsafe_id.expect("request"), "x-request-id"), "a b");
    }
}

on_every_adapter! {
    async fn oversized_headers_are_431() {
        let app = TestApp::spawn_with(&[("HTTP_MAX_HEADER_BYTES", "4096")]).await;
        let response = app
            .client
            .get(app.url("/health/live"))
            .header("x-padding", "p".repeat(5000))
            .send()
            .await;
        problem(response.expect("request"), 431).await;
    }
}

on_every_adapter! {
    async fn cors_is_off_by_default_and_on_for_configured_origins() {
        let app = TestApp::spawn().await;
        let response = app
            .client
            .get(app.url("/health/live"))
            .header("origin", "https://app.example")
            .send()
            .await;
        assert_eq!(
            header(&response.expect("request"), "access-control-allow-origin"),
            ""
        );

        let app = TestApp::spawn_with(&[("CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
        let preflight = app
            .client
            .request(Method::OPTIONS, app.url("/chat/"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("request");
        assert!(preflight.status().is_success());
        assert_eq!(
            header(&preflight, "access-control-allow-origin"),
            "https://app.example"
        );
        let user = User::new();
        let response = app
            .request(Method::GET, "/chat/", &user.token)
            .header("origin", "https://app.example")
            .send()
            .await;
        let response = response.expect("request");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            "https://app.example"
        );
        assert!(
            header(&response, "access-control-expose-headers")
                .to_lowercase()
                .contains("x-total-count")
        );
        let other = app
            .client
            .get(app.url("/health/live"))
            .header("origin", "https://evil.example")
            .send()
            .await;
        assert_eq!(
            header(&other.expect("request"), "access-control-allow-origin"),
            ""
        );
        let refused = app
            .client
            .request(Method::OPTIONS, app.url("/chat/"))
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .expect("request");
        assert!(refused.status().is_client_error());
        assert_eq!(header(&refused, "content-type"), "application/problem+json");
    }
}

on_every_adapter! {
    async fn unknown_methods_do_not_mint_metric_series() {
        let app = TestApp::spawn().await;
        for method in ["FOOBAR1", "FOOBAR2"] {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            let response = app.client.request(method, app.url("/chat/")).send().await;
            problem(response.expect("request"), 405).await;
        }
        let metrics = app.get_anonymous("/metrics").await;
        let text = metrics.text().await.expect("text");
        assert!(
            !text.contains("FOOBAR"),
            "client-chosen methods are not labels"
        );
        assert!(
            text.contains(r#"http_requests_total{method="OTHER",route="/chat/",status="405"} 2"#),
            "{text}"
        );
    }
}
