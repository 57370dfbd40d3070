//! `/openapi.json` checked by a real validator, route by route, and against
//! what the server really answers. The document does not depend on the
//! storage, so these run on the in-memory adapter only.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, User, fixture, header, hs256, now};

/// The official OpenAPI 3.1 schema (dialect 2022-10-07); see tests/fixtures/README.md.
const OAS_3_1_SCHEMA: &str = "oas-3.1-schema-2022-10-07.json";

async fn served_document(app: &TestApp) -> Value {
    let response = app.get_anonymous("/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

/// Every `$ref` in `value`, with where it was found.
fn references<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref"
                    && let Some(target) = child.as_str()
                {
                    found.push((at.clone(), target));
                }
                references(child, format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                references(child, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

/// The validator of OpenAPI 3.1 documents, from the vendored official schema.
fn oas_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(OAS_3_1_SCHEMA)).expect("vendored schema"),
    )
    .expect("schema JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the OAS 3.1 schema compiles")
}

fn oas_errors(document: &Value) -> Vec<String> {
    oas_validator()
        .iter_errors(document)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

#[tokio::test]
async fn the_validator_refuses_what_was_wrong_before() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let mut document = served_document(&app).await;
            assert!(oas_errors(&document).is_empty());
            // Issue 13: two responses had no `description`.
            let live = document["paths"]["/health/live"]["get"]["responses"]["200"]
                .as_object_mut()
                .expect("response");
            live.remove("description");
            let errors = oas_errors(&document);
            assert!(
                errors
                    .iter()
                    .any(|e| e.contains("/paths/~1health~1live/get/responses/200")
                        && e.contains("description")),
                "{errors:?}"
            );
            document["openapi"] = "3.0.3".into();
            assert!(oas_errors(&document).len() > 1);
        })
        .await;
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let document = served_document(&app).await;
            let errors = oas_errors(&document);
            assert!(
                errors.is_empty(),
                "{} errors:\n{}",
                errors.len(),
                errors.join("\n")
            );

            // The OAS schema leaves Schema Objects to the JSON Schema 2020-12
            // meta-schema, and references unresolved: check both.
            let mut problems = Vec::new();
            for (name, component) in document["components"]["schemas"]
                .as_object()
                .expect("schemas")
            {
                if let Err(error) = jsonschema::meta::validate(component) {
                    problems.push(format!("components/schemas/{name}: {error}"));
                }
            }
            let mut found = Vec::new();
            references(&document, String::new(), &mut found);
            assert!(!found.is_empty());
            for (at, target) in found {
                let pointer = target.strip_prefix('#').unwrap_or("not local");
                if document.pointer(pointer).is_none() {
                    problems.push(format!("{at}: $ref {target} resolves to nothing"));
                }
            }
            assert!(problems.is_empty(), "{}", problems.join("\n"));
        })
        .await;
}

/// Every status each operation can answer: the contract (docs/api.md,
/// "Statuses" and "Order of checks"), route by route.
const ANSWERS: [(&str, &str, &[u16]); 11] = [
    (
        "/chat/",
        "post",
        &[201, 400, 401, 405, 408, 409, 413, 415, 422, 431, 500, 503],
    ),
    ("/chat/", "get", &[200, 401, 405, 406, 422, 431, 500, 503]),
    (
        "/chat/{chat_id}",
        "get",
        &[200, 304, 401, 404, 405, 422, 431, 500, 503],
    ),
    (
        "/chat/{chat_id}",
        "put",
        &[
            200, 400, 401, 404, 405, 408, 412, 413, 415, 422, 431, 500, 503,
        ],
    ),
    (
        "/chat/{chat_id}",
        "patch",
        &[
            200, 400, 401, 404, 405, 408, 412, 413, 415, 422, 431, 500, 503,
        ],
    ),
    (
        "/chat/{chat_id}",
        "delete",
        &[204, 401, 404, 405, 412, 422, 431, 500, 503],
    ),
    ("/health/live", "get", &[200, 405, 431, 500]),
    ("/health/ready", "get", &[200, 405, 431, 500, 503]),
    ("/metrics", "get", &[200, 404, 405, 431, 500]),
    ("/openapi.json", "get", &[200, 405, 406, 431, 500]),
    ("/docs", "get", &[200, 405, 431, 500]),
];

/// The response headers each answer documents.
fn expected_headers(path: &str, method: &str, status: u16) -> BTreeSet<&'static str> {
    let mut headers = BTreeSet::new();
    match status {
        401 => headers.extend(["WWW-Authenticate"]),
        405 => headers.extend(["Allow"]),
        409 | 503 => headers.extend(["Retry-After"]),
        _ => {}
    }
    if matches!((path, method), ("/chat/", "get") | ("/openapi.json", "get")) {
        headers.insert("Vary");
        if status == 200 {
            headers.insert("Content-Encoding");
        }
    }
    match (path, method, status) {
        ("/chat/", "post", 201) => {
            headers.extend(["Location", "ETag", "Idempotent-Replayed", "Cache-Control"])
        }
        ("/chat/", "get", 200) => {
            headers.extend(["X-Total-Count", "Link", "X-Next-Cursor", "Cache-Control"])
        }
        ("/chat/{chat_id}", "get", 200 | 304) | ("/chat/{chat_id}", "put" | "patch", 200) => {
            headers.extend(["ETag", "Cache-Control"])
        }
        ("/health/live" | "/health/ready", "get", 200) => headers.extend(["Cache-Control"]),
        _ => {}
    }
    headers
}

#[tokio::test]
async fn every_route_documents_each_status_and_header_it_answers_with() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let document = served_document(&app).await;
            let mut documented = BTreeSet::new();
            for (path, item) in document["paths"].as_object().expect("paths") {
                for method in item.as_object().expect("path item").keys() {
                    documented.insert((path.as_str(), method.as_str()));
                }
            }
            let expected: BTreeSet<_> = ANSWERS.iter().map(|(p, m, _)| (*p, *m)).collect();
            assert_eq!(documented, expected, "the documented operations");

            for (path, method, statuses) in ANSWERS {
                let responses = &document["paths"][path][method]["responses"];
                let found: BTreeSet<u16> = responses
                    .as_object()
                    .expect("responses")
                    .keys()
                    .map(|status| status.parse().expect("a status code"))
                    .collect();
                let statuses: BTreeSet<u16> = statuses.iter().copied().collect();
                assert_eq!(found, statuses, "{method} {path}: statuses");
                for status in statuses {
                    let response = &responses[status.to_string()];
                    let context = format!("{method} {path} {status}");
                    assert!(
                        response["description"]
                            .as_str()
                            .is_some_and(|d| !d.is_empty()),
                        "{context}: description"
                    );
                    let headers: BTreeSet<&str> = response["headers"]
                        .as_object()
                        .map(|h| h.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    assert_eq!(
                        headers,
                        expected_headers(path, method, status),
                        "{context}: headers"
                    );
                    for (name, header) in response["headers"].as_object().into_iter().flatten() {
                        assert!(
                            header["description"].is_string() && header["schema"].is_object(),
                            "{context}: header {name} has a description and a schema"
                        );
                    }
                    if status >= 400 {
                        let problem = &response["content"]["application/problem+json"];
                        assert_eq!(
                            problem["schema"]["$ref"], "#/components/schemas/Problem",
                            "{context}"
                        );
                        let example = &problem["example"];
                        assert_eq!(example["status"], status, "{context}: example");
                        assert_eq!(example["type"], "about:blank", "{context}: example");
                        let reason = reqwest::StatusCode::from_u16(status)
                            .expect("status")
                            .canonical_reason()
                            .expect("reason");
                        assert_eq!(example["title"], reason, "{context}: example");
                        assert!(example["detail"].is_string(), "{context}: example");
                        assert_eq!(
                            example["errors"].is_array(),
                            status == 422,
                            "{context}: `errors` on a 422 only"
                        );
                    }
                }
            }
        })
        .await;
}

#[tokio::test]
async fn the_documented_examples_are_the_bodies_the_server_sends() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let document = served_document(&app).await;
            let example = |path: &str, method: &str, status: &str| {
                document["paths"][path][method]["responses"][status]["content"]
                    ["application/problem+json"]["example"]
                    .clone()
            };
            let allow_example = |path: &str| {
                document["paths"][path]["get"]["responses"]["405"]["headers"]["Allow"]["example"]
                    .clone()
            };
            let chat = format!("/chat/{}", uuid::Uuid::new_v4());
            for (path, documented) in [
                ("/chat/", "/chat/"),
                (chat.as_str(), "/chat/{chat_id}"),
                ("/health/live", "/health/live"),
                ("/metrics", "/metrics"),
                ("/openapi.json", "/openapi.json"),
            ] {
                let response = app
                    .client
                    .request(Method::OPTIONS, app.url(path))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), 405);
                assert_eq!(
                    Value::from(header(&response, "allow")),
                    allow_example(documented),
                    "{path}"
                );
                let body: Value = response.json().await.expect("problem");
                assert_eq!(body, example(documented, "get", "405"), "{path}");
            }

            let expired = hs256(json!({"sub": uuid::Uuid::new_v4(), "exp": now() - 3600}));
            let response = app.get(&chat, &expired).await;
            assert_eq!(response.status(), 401);
            assert_eq!(
                Value::from(header(&response, "www-authenticate")),
                document["paths"]["/chat/{chat_id}"]["get"]["responses"]["401"]["headers"]
                    ["WWW-Authenticate"]["example"]
            );
            let body: Value = response.json().await.expect("problem");
            assert_eq!(body, example("/chat/{chat_id}", "get", "401"));

            let user = User::new();
            let response = app.get(&chat, &user.token).await;
            let body: Value = response.json().await.expect("problem");
            assert_eq!(body, example("/chat/{chat_id}", "get", "404"));
            let response = app.get("/chat/?limit=0", &user.token).await;
            let body: Value = response.json().await.expect("problem");
            assert_eq!(body, example("/chat/", "get", "422"));
        })
        .await;
}

#[tokio::test]
async fn include_is_an_enum_and_both_forms_of_a_chat_are_documented() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let document = served_document(&app).await;
            let get = &document["paths"]["/chat/{chat_id}"]["get"];
            let include = get["parameters"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["name"] == "include"))
                .expect("include");
            assert_eq!(include["in"], "query");
            assert_eq!(include["schema"]["enum"], json!(["kmeans_datas"]));
            let forms = &get["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"];
            assert_eq!(
                forms,
                &json!([
                    {"$ref": "#/components/schemas/ChatRead"},
                    {"$ref": "#/components/schemas/ChatReadWithKmeans"}
                ])
            );
            let create = &document["paths"]["/chat/"]["post"]["parameters"];
            assert!(
                create.as_array().is_some_and(|p| p
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")),
                "{create}"
            );
        })
        .await;
}

/// A validator for the component `name` of `document` (the document itself
/// is the root, so its `#/components/...` references resolve).
fn component_validator(document: &Value, schema: Value) -> jsonschema::Validator {
    let mut root = document.clone();
    let root_object = root.as_object_mut().expect("object");
    root_object.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    if let Value::Object(schema) = schema {
        root_object.extend(schema);
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .expect("the document's schemas compile")
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, context: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{context}: {}\n{instance}",
        errors.join("\n")
    );
}

/// A cursor of the documented pattern, made at random.
fn random_cursor(rng: &mut impl Rng) -> String {
    const ANY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut cursor = String::from("AQ");
    cursor.push(char::from(b"ABCDEFGHIJKL"[rng.random_range(0..12)]));
    for _ in 0..30 {
        cursor.push(char::from(ANY[rng.random_range(0..ANY.len())]));
    }
    cursor.push(char::from(b"AQgw"[rng.random_range(0..4)]));
    cursor
}

#[tokio::test]
async fn what_the_document_allows_is_accepted_and_what_is_served_fits_the_document() {
    Backend::Memory
        .run(async {
            let app = TestApp::spawn().await;
            let document = served_document(&app).await;
            let user = User::new();
            let mut ids = Vec::new();
            for n in 0..3 {
                let chat = app.create_chat(&user.token, &format!("chat {n}")).await;
                ids.push(chat["id"].as_str().expect("id").to_owned());
            }
            let list = app
                .get("/chat/?limit=2", &user.token)
                .await;
            let next = header(&list, "x-next-cursor");

            // Parameter values drawn from the documented schemas: none is a 422.
            let list_parameters = &document["paths"]["/chat/"]["get"]["parameters"];
            let schema_of = |name: &str| {
                list_parameters
                    .as_array()
                    .and_then(|p| p.iter().find(|p| p["name"] == name))
                    .map(|p| p["schema"].clone())
                    .expect("parameter")
            };
            let cursor_schema = component_validator(&document, schema_of("cursor"));
            let skip_schema = component_validator(&document, schema_of("skip"));
            let limit_schema = component_validator(&document, schema_of("limit"));
            assert_valid(&cursor_schema, &Value::from(next.clone()), "a served cursor");
            let mut rng = rand::rng();
            let mut queries = vec![format!("cursor={next}")];
            for _ in 0..40 {
                let cursor = random_cursor(&mut rng);
                assert_valid(&cursor_schema, &Value::from(cursor.clone()), "made cursor");
                queries.push(format!("cursor={cursor}&limit={}", rng.random_range(1..=100)));
            }
            for skip in [0, 1, 2, 1_000_000, i64::MAX] {
                assert_valid(&skip_schema, &json!(skip), "skip");
                queries.push(format!("skip={skip}"));
            }
            for limit in [1, 2, 50, 100] {
                assert_valid(&limit_schema, &json!(limit), "limit");
                queries.push(format!("limit={limit}"));
            }
            let page_schema = component_validator(
                &document,
                document["paths"]["/chat/"]["get"]["responses"]["200"]["content"]
                    ["application/json"]["schema"]
                    .clone(),
            );
            for query in queries {
                let response = app.get(&format!("/chat/?{query}"), &user.token).await;
                assert_eq!(response.status(), 200, "{query}");
                let page: Value = response.json().await.expect("JSON");
                assert_valid(&page_schema, &page, &query);
            }

            let read_schema = component_validator(
                &document,
                document["paths"]["/chat/{chat_id}"]["get"]["responses"]["200"]["content"]
                    ["application/json"]["schema"]
                    .clone(),
            );
            let with_kmeans = component_validator(
                &document,
                json!({"$ref": "#/components/schemas/ChatReadWithKmeans"}),
            );
            let id_schema = component_validator(&document, json!({
                "type": "string",
                "pattern": document["paths"]["/chat/{chat_id}"]["get"]["parameters"][0]["schema"]["pattern"],
            }));
            for id in &ids {
                let upper = id.to_uppercase();
                for (path, kmeans) in [
                    (format!("/chat/{id}"), false),
                    (format!("/chat/{upper}"), false),
                    (format!("/chat/{id}?include=kmeans_datas"), true),
                ] {
                    assert_valid(&id_schema, &Value::from(upper.clone()), "an id");
                    let response = app.get(&path, &user.token).await;
                    assert_eq!(response.status(), 200, "{path}");
                    let chat: Value = response.json().await.expect("JSON");
                    assert_valid(&read_schema, &chat, &path);
                    if kmeans {
                        assert_valid(&with_kmeans, &chat, &path);
                    }
                }
            }
            let created = app
                .create(&user.token, json!({"title": "t", "description": null}))
                .await;
            let created: Value = created.json().await.expect("JSON");
            let chat_schema = component_validator(
                &document,
                json!({"$ref": "#/components/schemas/ChatRead"}),
            );
            assert_valid(&chat_schema, &created, "a created chat");

            let mut bodies: BTreeMap<&str, Value> = BTreeMap::new();
            bodies.insert("KmeansData", json!({
                "id": uuid::Uuid::new_v4(), "chat_id": uuid::Uuid::new_v4(), "k": 2,
                "centroids": [[0.0, -1.5e300], [2, 3]],
                "created_at": "0001-01-01T00:00:00.000000Z"
            }));
            for (name, body) in bodies {
                let schema = component_validator(
                    &document,
                    json!({"$ref": format!("#/components/schemas/{name}")}),
                );
                assert_valid(&schema, &body, name);
            }
        })
        .await;
}
