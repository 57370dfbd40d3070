//! Logging and trace export: where log lines go and in which format, and,
//! when configured, the OpenTelemetry layer that exports spans. What is
//! observed per request (span, request id, metrics) is the
//! [`crate::middleware`] pipeline; trace propagation is [`crate::traces`].

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{DEFAULT_LOG_FILTER, LogFormat, LogSettings};
pub use crate::middleware::X_REQUEST_ID;

/// What [`init`] installed; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    _logs: tracing_appender::non_blocking::WorkerGuard,
    traces: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporting_traces", &self.traces.is_some())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Exports the spans still buffered (within a few seconds) and stops the
    /// exporter; log lines are flushed when the value is dropped.
    pub async fn shutdown(self) {
        let Some(provider) = self.traces else {
            return;
        };
        // Blocking, and the gRPC exporter needs this runtime to make progress
        // meanwhile: off the runtime's thread.
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_FLUSH))
                .await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "exporting the last spans failed"),
            Err(error) => tracing::warn!(%error, "exporting the last spans failed"),
        }
    }
}

/// How long a graceful shutdown waits for the last spans to leave.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);

/// The log lines' layer: one JSON object per line, or pretty lines.
fn log_layer<S>(format: LogFormat, writer: NonBlocking) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_target(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// Installs the global subscriber: logs on stdout, `pretty` or one JSON object
/// per line, and the span exporter when `traces` is given. The returned value
/// flushes both (see [`Telemetry::shutdown`]).
pub fn init(settings: &LogSettings, traces: Option<SdkTracerProvider>) -> Telemetry {
    // Writing happens on a dedicated thread so a slow stdout never blocks a worker.
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    // The filter was validated with the rest of the configuration.
    let filter =
        EnvFilter::try_new(&settings.filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    match &traces {
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_layer(settings.format, writer))
            .init(),
        // One global filter still (per-layer filters dropped log lines here):
        // the exporter sees the request spans the log filter lets through
        // (the default keeps `chat_api` at info), plus the statements' debug
        // spans, which carry no events and so add no log lines.
        Some(provider) => {
            let filter = filter.add_directive(
                "chat_infra::statement=debug"
                    .parse()
                    .expect("a valid directive"),
            );
            tracing_subscriber::registry()
                .with(filter)
                .with(log_layer(settings.format, writer))
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("chat-api")))
                .init();
            crate::traces::set_exporting();
        }
    }
    Telemetry {
        _logs: guard,
        traces,
    }
}
