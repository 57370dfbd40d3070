//! A handler that panics gets a logged 500, not a dropped connection.

use std::panic::AssertUnwindSafe;

use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt;
use tracing::Span;

use crate::error::ApiError;

/// The future's output, or the 500 for its panic (logged in `span`).
pub async fn caught<T>(future: impl Future<Output = T>, span: &Span) -> Result<T, HttpResponse> {
    AssertUnwindSafe(future).catch_unwind().await.map_err(|_| {
        span.in_scope(|| ApiError::internal("a request handler panicked").error_response())
    })
}
