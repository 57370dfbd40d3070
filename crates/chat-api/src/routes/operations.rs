//! Operational endpoints (no token): health, metrics, the OpenAPI document and
//! its interactive page, and the answers for unknown routes.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::TokenVerifier;
use crate::error::{ApiError, Chain, Problem, RETRY_AFTER_SECONDS, problem_response};
use crate::metrics;
use crate::state::AppState;

/// How long the database has to answer the readiness probe.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    status: &'static str,
}

/// Liveness: the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, description = "The process serves.", body = Health)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(Health { status: "ok" })
}

/// Readiness: the database answers within 1 s, the schema is migrated and the key set is fetched.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve.", body = Health),
        (status = 503, description = "The key set (JWT_JWKS_URL) has not been fetched yet, the database does not answer in time, or its schema is not migrated yet.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ready(state: web::Data<AppState>, verifier: web::Data<TokenVerifier>) -> HttpResponse {
    // First and without waiting: until the identity provider's key set has
    // been fetched once, no token but an HS* one can be verified.
    if !verifier.key_set_ready() {
        return not_ready(
            "not ready: the key set (JWT_JWKS_URL) has not been fetched yet",
            "the key set has not been fetched yet".into(),
        );
    }
    let probe = state.storage.readiness.ping(READY_WITHIN).await;
    match probe {
        Ok(()) if state.schema_is_ready() => HttpResponse::Ok()
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(Health { status: "ok" }),
        Ok(()) => not_ready(
            "not ready: the database schema is not migrated yet",
            "the database schema is not migrated yet".into(),
        ),
        Err(error) => not_ready("not ready: the database is unavailable", error.into()),
    }
}

/// 503; the detail says which half of readiness failed, the log says why.
fn not_ready(detail: &str, cause: chat_domain::BoxError) -> HttpResponse {
    tracing::warn!(error = %Chain(cause.as_ref()), "readiness check failed");
    let mut response = problem_response(StatusCode::SERVICE_UNAVAILABLE, detail.into(), None);
    response
        .headers_mut()
        .insert(RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    response
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Every metric, in the Prometheus text format (version 0.0.4).", content_type = "text/plain", body = String), (status = 404, description = "On the public address when `ADMIN_BIND_ADDRESS` is set: the metrics are served on the admin address only.", content_type = "application/problem+json", body = crate::error::Problem)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = state.metrics.render(state.storage.pool.as_ref());
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, metrics::CONTENT_TYPE))
        .body(body)
}

/// The OpenAPI document, rendered once at start.
#[derive(Debug)]
pub struct OpenApiJson(pub Vec<u8>);

/// The OpenAPI 3.1 document of every route (this document).
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document.", content_type = "application/json", body = Object)))]
pub async fn openapi(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(document.0.clone())
}

/// Swagger UI, served from assets compiled into the binary (no internet needed).
const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>chat-api — API documentation</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"##;

/// The interactive documentation page (Swagger UI, served from the binary).
#[utoipa::path(get, path = "/docs", tag = "operations", responses((status = 200, description = "HTML page.", content_type = "text/html", body = String)))]
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(DOCS_PAGE)
}

/// Any path no route matches.
pub async fn no_route(request: HttpRequest) -> HttpResponse {
    let path: String = request.path().chars().take(200).collect();
    ApiError::NotFound(format!("no route matches {path}")).error_response()
}
