//! Request metrics: in-flight requests, and every answer by method, route
//! template and status with its latency.

use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::web;

use crate::metrics::InFlight;
use crate::state::AppState;

/// The metrics of the application serving this request.
#[derive(Debug)]
pub struct RequestMetrics(web::Data<AppState>);

impl RequestMetrics {
    /// `None` when the application registered no state (then nothing is counted).
    pub fn of(request: &ServiceRequest) -> Option<Self> {
        request.app_data::<web::Data<AppState>>().cloned().map(Self)
    }

    /// Counts the request as in flight until the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.0.metrics.start_request()
    }

    /// Counts one answered request.
    pub fn answered(&self, method: &str, route: &str, status: StatusCode, elapsed: Duration) {
        self.0
            .metrics
            .observe(method, route, status.as_u16(), elapsed.as_secs_f64());
    }
}
