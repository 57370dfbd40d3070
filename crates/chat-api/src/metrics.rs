//! Prometheus metrics: requests by method, route template and status; latency
//! histograms; in-flight requests; pool occupancy; statements executed; build
//! info; the process itself (CPU, memory, file descriptors) on Linux.

use std::sync::Mutex;

use chat_domain::ConnectionPool;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets (seconds): sub-millisecond to the 5 s database bound.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The service's metrics, in a registry of its own (no global state, so
/// several instances can live in one test process).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    pool_idle: IntGauge,
    pool_in_use: IntGauge,
    pool_max: IntGauge,
    statements: IntCounter,
    /// Serialises scrapes, which move the statement counters forward.
    scrape: Mutex<()>,
}

/// Decrements the in-flight gauge when the request ends, however it ends
/// (including a client hanging up mid-request).
#[derive(Debug)]
pub struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Registers every metric.
    ///
    /// # Panics
    /// Never in practice: names are constants, registered once.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new(
            "http_requests_in_flight",
            "HTTP requests being processed now.",
        )
        .expect("valid metric");
        let pool_idle = IntGauge::new(
            "db_pool_connections_idle",
            "Open database pool connections waiting for work.",
        )
        .expect("valid metric");
        let pool_in_use = IntGauge::new(
            "db_pool_connections_in_use",
            "Database pool connections lent to a request now.",
        )
        .expect("valid metric");
        let pool_max = IntGauge::new(
            "db_pool_connections_max",
            "The most connections the database pool may open.",
        )
        .expect("valid metric");
        let statements = IntCounter::new("db_statements_total", "SQL statements executed.")
            .expect("valid metric");
        let build = IntGaugeVec::new(
            Opts::new("chat_api_build_info", "Build information; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(in_flight.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_in_use.clone()),
            Box::new(pool_max.clone()),
            Box::new(statements.clone()),
            Box::new(build),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        // CPU, memory, file descriptors, threads and start time of this
        // process, read from /proc at each scrape (Linux only).
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("metric names are unique");
        Self {
            registry,
            requests,
            duration,
            in_flight,
            pool_idle,
            pool_in_use,
            pool_max,
            statements,
            scrape: Mutex::new(()),
        }
    }

    /// Adds a metric kept elsewhere (the key set's `jwks_refresh_failures_total`).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        if let Err(error) = self.registry.register(collector) {
            tracing::error!(%error, "registering a metric failed");
        }
    }

    /// Counts a request as in flight until the guard drops.
    pub fn start_request(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.duration.with_label_values(&labels).observe(seconds);
    }

    /// The text exposition of every metric, with pool figures read now.
    pub fn render(&self, pool: &dyn ConnectionPool) -> String {
        let _scrape = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = pool.status();
        self.pool_idle.set(i64::from(status.idle));
        self.pool_in_use.set(i64::from(status.in_use()));
        self.pool_max.set(i64::from(status.max));
        self.statements
            .inc_by(pool.statements().saturating_sub(self.statements.get()));
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
