//! The request pipeline around every route, one job per module, composed in
//! [`observe`] (registered once, with `from_fn`, as the outermost layer).
//!
//! Order of effects for each request:
//!
//! 1. [`request_id`]: the client's `X-Request-Id` if acceptable, else a new one;
//! 2. [`labels`]: the method and route template used by logs and metrics
//!    (never the raw path);
//! 3. [`access_log`]: the request's span opens (method, route, request id; the
//!    extractor adds the user) and joins the caller's trace (`traceparent`, see
//!    [`crate::traces`]);
//! 4. [`request_metrics`]: the request counts as in flight until it is answered,
//!    however it ends;
//! 5. [`header_limit`]: headers over the configured size are answered 431 here,
//!    without routing;
//! 6. [`panics`]: the route runs inside the span; a panic becomes a logged 500
//!    instead of a dropped connection;
//! 7. [`problem`]: a 4xx/5xx that a layer not ours built (CORS, static assets)
//!    or an error it returned becomes `application/problem+json`;
//! 8. [`access_log`] records status and latency and logs the completion, then
//!    [`request_metrics`] counts the answer by method, route and status;
//! 9. [`response_headers`]: `X-Request-Id` and `X-Content-Type-Options: nosniff`
//!    go on every response, answers built here included.

pub mod access_log;
pub mod header_limit;
pub mod labels;
pub mod panics;
pub mod problem;
pub mod request_id;
pub mod request_metrics;
pub mod response_headers;

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use tracing::Instrument;

pub use header_limit::HeaderLimit;
pub use request_id::X_REQUEST_ID;

/// What the inner layers produced: the route's response, or an answer built in
/// this pipeline. The request cannot be kept (routing needs the only reference
/// to it), so an answer built here travels without one.
type Outcome = Result<ServiceResponse<BoxBody>, HttpResponse>;

/// The pipeline; see the module docs for the order of its effects.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let request_id = request_id::of(&request);
    let method = labels::method(request.method());
    let route = labels::route(&request);
    let span = access_log::span(method, &route, &request_id);
    crate::traces::join(&span, request.headers(), method, &route);
    let metrics = request_metrics::RequestMetrics::of(&request);
    let _in_flight = metrics.as_ref().map(request_metrics::RequestMetrics::start);

    let outcome: Outcome = match header_limit::refusal(&request) {
        Some(too_large) => Err(too_large),
        None => match panics::caught(next.call(request).instrument(span.clone()), &span).await {
            Err(panicked) => Err(panicked),
            Ok(Ok(response)) => Ok(problem::from_response(response.map_into_boxed_body())),
            Ok(Err(error)) => Err(problem::from_error(&error)),
        },
    };

    let status = match &outcome {
        Ok(response) => response.status(),
        Err(response) => response.status(),
    };
    let elapsed = started.elapsed();
    crate::traces::answered(&span, status);
    access_log::completed(&span, status, elapsed);
    if let Some(metrics) = &metrics {
        metrics.answered(method, &route, status, elapsed);
    }
    response_headers::stamp(outcome, request_id)
}
