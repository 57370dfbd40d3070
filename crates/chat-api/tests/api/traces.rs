//! Traces across services: the real binary, exporting over OTLP/HTTP to a
//! receiver started here that decodes the protobuf with `opentelemetry-proto`.
//! A request carrying `traceparent` joins the caller's trace; each request is
//! a server span named `{METHOD} {route}` with its HTTP attributes; each
//! database statement a client span under it; the spans still buffered leave
//! at a graceful shutdown; log lines carry the ids; and no value a client
//! sent (a title, a token) is ever exported.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};

use crate::binary::Serving;
use crate::helpers::{SECRET, User};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-api");

/// Spans received, with the service name of their resource.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP receiver on a free port: `POST /v1/traces` with protobuf.
async fn receiver() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let store = web::Data::new(Arc::clone(&received));
    let server = HttpServer::new(move || {
        App::new().app_data(store.clone()).route(
            "/v1/traces",
            web::post().to(|body: web::Bytes, store: web::Data<Received>| async move {
                let request = ExportTraceServiceRequest::decode(body.as_ref())
                    .expect("an OTLP protobuf body");
                let mut spans = store.lock().expect("lock");
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| kv.value.as_ref())
                        .and_then(|v| match &v.value {
                            Some(Any::StringValue(name)) => Some(name.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                    }
                }
                HttpResponse::Ok()
                    .content_type("application/x-protobuf")
                    .finish()
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let address = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (address, received, handle)
}

/// The binary over a fresh PostgreSQL database, exporting to `endpoint`.
fn start(database: &str, endpoint: &str) -> Serving {
    let dir = tempfile::tempdir().expect("tempdir");
    Serving::start(
        Command::new(BINARY)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database)
            .env("JWT_SECRET", SECRET)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            // Far longer than the test: only the shutdown flush can deliver them.
            .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
            .env("OTEL_SERVICE_NAME", "chat-api-under-test"),
    )
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn string(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(Any::StringValue(text)) => text.clone(),
        other => panic!("{key} on {}: {other:?}", span.name),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn requests_and_statements_are_exported_as_one_trace_with_the_callers_parent() {
    let (endpoint, received, receiver_handle) = receiver().await;
    let database = chat_testing::TestDatabase::create().await;
    let Serving {
        child,
        address,
        later: lines,
        ..
    } = start(database.url(), &endpoint);
    let user = User::new();
    let client = reqwest::Client::new();
    let title = "a-title-that-must-never-be-exported";
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let created = client
        .post(format!("http://{address}/chat/"))
        .bearer_auth(&user.token)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .header("tracestate", "vendor=opaque")
        .json(&json!({ "title": title }))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // No traceparent: a trace of its own.
    let read = client
        .get(format!("http://{address}/chat/{id}"))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("request");
    assert_eq!(read.status(), 200);

    // A graceful stop flushes what the batch still holds.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut child = child;
    let exited = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exited.success(), "{exited:?}");
    receiver_handle.stop(true).await;

    let spans = received.lock().expect("lock").clone();
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "chat-api-under-test"),
        "service.name from OTEL_SERVICE_NAME"
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, span)| span).collect();
    let server = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no span named {name}: {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let create = server("POST /chat/");
    assert_eq!(create.kind, SpanKind::Server as i32);
    assert_eq!(
        hex(&create.trace_id),
        caller_trace,
        "joins the caller's trace"
    );
    assert_eq!(
        hex(&create.parent_span_id),
        caller_span,
        "under the caller's span"
    );
    assert_eq!(string(create, "http.request.method"), "POST");
    assert_eq!(string(create, "http.route"), "/chat/");
    assert!(matches!(
        attribute(create, "http.response.status_code"),
        Some(Any::IntValue(201))
    ));
    let get = server("GET /chat/{chat_id}");
    assert_ne!(hex(&get.trace_id), caller_trace, "a trace of its own");
    assert!(get.parent_span_id.is_empty(), "a root span");
    assert_eq!(string(get, "http.route"), "/chat/{chat_id}");

    // Each statement: a client span under its request's span.
    for (request, operation) in [(create, "INSERT"), (get, "SELECT")] {
        let statements: Vec<&Span> = spans
            .iter()
            .filter(|span| span.parent_span_id == request.span_id)
            .collect();
        assert!(!statements.is_empty(), "statements of {}", request.name);
        for statement in &statements {
            assert_eq!(statement.kind, SpanKind::Client as i32);
            assert_eq!(statement.trace_id, request.trace_id);
            assert_eq!(string(statement, "db.system.name"), "postgresql");
        }
        assert!(
            statements
                .iter()
                .any(|s| string(s, "db.operation.name") == operation && s.name == operation),
            "{} runs an {operation}",
            request.name
        );
    }

    // Nothing a client sent is exported: no title, no token, no id of a chat in a value.
    let exported = format!("{spans:?}");
    for secret in [title, user.token.as_str(), SECRET] {
        assert!(!exported.contains(secret), "{secret} was exported");
    }

    // The log lines of the traced request carry its trace and span ids.
    let logged: Vec<Value> = lines
        .try_iter()
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect();
    let completed = logged
        .iter()
        .find(|entry| entry["message"] == "request completed" && entry["span"]["route"] == "/chat/")
        .expect("the create's completion line");
    assert_eq!(completed["span"]["trace_id"], caller_trace);
    assert_eq!(completed["span"]["span_id"], hex(&create.span_id));
}

#[tokio::test]
async fn without_an_endpoint_log_lines_still_carry_the_callers_trace_id() {
    let database = chat_testing::TestDatabase::create().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let Serving {
        mut child,
        address,
        later: receiver,
        ..
    } = Serving::start(
        Command::new(BINARY)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database.url())
            .env("JWT_SECRET", SECRET),
    );
    let user = User::new();
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let listed = reqwest::Client::new()
        .get(format!("http://{address}/chat/"))
        .bearer_auth(&user.token)
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(listed.status(), 200);
    let completed = loop {
        let entry: Value = serde_json::from_str(
            &receiver
                .recv_timeout(Duration::from_secs(10))
                .expect("a line"),
        )
        .expect("JSON");
        if entry["message"] == "request completed" {
            break entry;
        }
    };
    assert_eq!(completed["span"]["trace_id"], trace);
    let span_id = completed["span"]["span_id"].as_str().expect("span id");
    assert_eq!(span_id.len(), 16);
    assert_ne!(span_id, "b7ad6b7169203331", "a span of its own");
    let _ = child.kill();
    let _ = child.wait();
}
