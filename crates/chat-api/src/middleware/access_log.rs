//! One span per request (method, route template, request id, user, status,
//! latency, trace and span ids) and one "request completed" event when it is
//! answered.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use tracing::Span;
use tracing::field::Empty;

/// The request's span; `user_id` is filled by the authentication extractor.
pub fn span(method: &'static str, route: &str, request_id: &HeaderValue) -> Span {
    // A target of its own, so that a filter can keep the span (for traces)
    // without the "request completed" lines: `RUST_LOG=warn,chat_api::request=info`.
    tracing::info_span!(
        target: "chat_api::request",
        "request",
        method,
        route,
        request_id = %String::from_utf8_lossy(request_id.as_bytes()),
        user_id = Empty,
        status = Empty,
        latency_ms = Empty,
        // Set by `traces::join`: the ids always (when the span is recorded),
        // the OpenTelemetry name and kind only when spans are exported.
        trace_id = Empty,
        span_id = Empty,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
    )
}

/// Records the answer on the span and logs the completion.
pub fn completed(span: &Span, status: StatusCode, elapsed: Duration) {
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1_000.0);
    span.in_scope(|| tracing::info!("request completed"));
}
