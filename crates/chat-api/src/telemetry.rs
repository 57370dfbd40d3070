//! Logging: where log lines go and in which format. What is observed per
//! request (span, request id, metrics) is the [`crate::middleware`] pipeline.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{DEFAULT_LOG_FILTER, LogFormat, LogSettings};
pub use crate::middleware::X_REQUEST_ID;

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
