//! Logs and per-request observation: one span per request (method, route
//! template, request id, user, status, latency), `X-Request-Id` on every
//! response, metrics, and a 500 instead of a dropped connection if a handler panics.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use futures_util::FutureExt;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{DEFAULT_LOG_FILTER, LogFormat, LogSettings};
use crate::error::{ApiError, PROBLEM_JSON, problem_response};
use crate::state::AppState;

/// The request id header, accepted from clients and set on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: logs on stdout, `pretty` or one JSON object
/// per line. The returned guard flushes buffered lines when dropped.
pub fn init(settings: &LogSettings) -> tracing_appender::non_blocking::WorkerGuard {
    // Writing happens on a dedicated thread so a slow stdout never blocks a worker.
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    // The filter was validated with the rest of the configuration.
    let filter =
        EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_target(false)
                    .with_writer(writer),
            )
            .init(),
    }
    guard
}

/// A client's request id if it is short, printable and free of spaces; else a new one.
fn request_id(request: &ServiceRequest) -> HeaderValue {
    request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

/// The route template for labels and logs, never the raw path.
fn route_template(request: &ServiceRequest) -> Cow<'static, str> {
    match request.match_pattern() {
        Some(pattern) if pattern == "/chat" => Cow::Borrowed("/chat/"),
        Some(pattern) => Cow::Owned(pattern),
        None => Cow::Borrowed("unmatched"),
    }
}

/// Every error a client sees has one shape: a 4xx/5xx that some layer not
/// ours built (a CORS rejection, a missing documentation asset) becomes a
/// problem document with the same status and headers.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if status.as_u16() < 400 || is_problem {
        return response;
    }
    let detail = response.response().error().map_or_else(
        || status.canonical_reason().unwrap_or("error").to_lowercase(),
        ToString::to_string,
    );
    let (request, original) = response.into_parts();
    let mut problem = problem_response(status, detail, None);
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, problem)
}

/// Methods become labels only from a closed set, so clients cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The sum of header names and values, the size that matters to memory.
fn header_bytes(request: &ServiceRequest) -> usize {
    request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum()
}

/// The observing middleware; see the module docs.
pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    let state = request.app_data::<web::Data<AppState>>().cloned();
    let request_id = request_id(&request);
    let method = method_label(request.method());
    let route = route_template(&request);
    let span = tracing::info_span!(
        "request",
        method,
        route = route.as_ref(),
        request_id = %String::from_utf8_lossy(request_id.as_bytes()),
        user_id = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    let _in_flight = state.as_ref().map(|state| state.metrics.start_request());
    let max_header_bytes = request
        .app_data::<web::Data<HeaderLimit>>()
        .map_or(usize::MAX, |limit| limit.0);

    // The request cannot be kept (routing needs the only reference to it), so
    // an answer built here travels as an error that carries its response.
    let outcome = if header_bytes(&request) > max_header_bytes {
        Err(ApiError::HeadersTooLarge.error_response())
    } else {
        match AssertUnwindSafe(next.call(request))
            .catch_unwind()
            .instrument(span.clone())
            .await
        {
            Ok(Ok(response)) => Ok(as_problem(response.map_into_boxed_body())),
            // An error from a layer that is not ours (CORS, say): same problem shape.
            Ok(Err(error)) => Err(problem_response(
                error.as_response_error().status_code(),
                error.to_string(),
                None,
            )),
            Err(_) => {
                Err(span
                    .in_scope(|| ApiError::internal("a request handler panicked").error_response()))
            }
        }
    };

    let status = match &outcome {
        Ok(response) => response.status(),
        Err(response) => response.status(),
    };
    let elapsed = started.elapsed();
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1_000.0);
    span.in_scope(|| tracing::info!("request completed"));
    if let Some(state) = &state {
        state
            .metrics
            .observe(method, &route, status.as_u16(), elapsed.as_secs_f64());
    }
    let nosniff = HeaderValue::from_static("nosniff");
    match outcome {
        Ok(mut response) => {
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID, request_id);
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, nosniff);
            Ok(response)
        }
        Err(mut response) => {
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID, request_id);
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, nosniff);
            Err(InternalError::from_response(status, response).into())
        }
    }
}

/// The configured limit on a request's total header size.
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimit(pub usize);
