//! Traces across services: the W3C `traceparent` a request arrives with, the
//! trace and span ids on its log lines, and, when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, spans exported over OTLP (a server span per request, a client span
//! per database statement).
//!
//! Configured only by the standard OpenTelemetry variables; the SDK itself
//! reads most of them (`OTEL_EXPORTER_OTLP_*` endpoint, headers and timeout,
//! `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`).
//! [`crate::config`] reads whether to export at all, the protocol and the
//! service name into [`TraceSettings`]; this module builds the exporter.
//!
//! With no endpoint nothing is exported and no OpenTelemetry layer is
//! installed: a request costs what it cost before, plus, only when its span
//! is logged at all, two random ids (or the caller's trace id).

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (the default): `POST {endpoint}/v1/traces`.
    HttpProtobuf,
    /// `grpc`: the OTLP gRPC service (plaintext; TLS ends at a sidecar or mesh).
    Grpc,
}

/// Export settings; present only when an endpoint is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSettings {
    /// The protocol.
    pub protocol: OtlpProtocol,
    /// `OTEL_SERVICE_NAME`, default `chat-api`.
    pub service_name: String,
}

impl TraceSettings {
    /// The tracer provider: a batch exporter over the configured protocol.
    /// Built inside the async runtime (gRPC needs one).
    pub fn provider(&self) -> Result<SdkTracerProvider, String> {
        let exporter = match self.protocol {
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build(),
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build(),
        }
        .map_err(|error| format!("cannot build the OTLP exporter: {error}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(self.service_name.clone())
            .build();
        Ok(SdkTracerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build())
    }
}

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Says that spans are exported (the OpenTelemetry layer is installed).
pub(crate) fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// An actix header map as the propagator reads it.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .map(actix_web::http::header::HeaderName::as_str)
            .collect()
    }
}

/// Joins the request's span to the caller's trace (`traceparent`,
/// `tracestate`) and records its trace and span ids for the log lines. When
/// exporting, also names the span `{METHOD} {route}` and sets its HTTP
/// attributes. Nothing at all when the span is not recorded anywhere.
pub fn join(span: &Span, headers: &HeaderMap, method: &'static str, route: &str) {
    if span.is_disabled() {
        return;
    }
    let caller = TraceContextPropagator::new().extract(&Headers(headers));
    let (trace_id, span_id) = if exporting() {
        span.record("otel.name", format!("{method} {route}"));
        span.record("otel.kind", "server");
        // A malformed traceparent extracts as an empty context: a new trace.
        let _ = span.set_parent(caller);
        span.set_attribute("http.request.method", method);
        span.set_attribute("http.route", route.to_owned());
        let context = span.context();
        let span_ref = context.span();
        let ids = span_ref.span_context();
        (ids.trace_id(), ids.span_id())
    } else {
        let remote = caller.span().span_context().clone();
        let ids = RandomIdGenerator::default();
        let trace_id = if remote.is_valid() {
            remote.trace_id()
        } else {
            ids.new_trace_id()
        };
        (trace_id, ids.new_span_id())
    };
    span.record("trace_id", tracing::field::display(trace_id));
    span.record("span_id", tracing::field::display(span_id));
}

/// Records the answer's status on an exported span (an error status for 5xx).
pub fn answered(span: &Span, status: StatusCode) {
    if !exporting() || span.is_disabled() {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
}
