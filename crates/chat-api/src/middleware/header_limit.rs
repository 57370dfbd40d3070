//! 431 for requests whose headers exceed the configured total size (names
//! plus values: the size that matters to memory).

use actix_web::dev::ServiceRequest;
use actix_web::{HttpResponse, ResponseError, web};

use crate::error::ApiError;

/// The configured limit on a request's total header size, as app data.
#[derive(Clone, Copy, Debug)]
pub struct HeaderLimit(pub usize);

/// The 431 answer when the headers are too large; no limit configured, no check.
pub fn refusal(request: &ServiceRequest) -> Option<HttpResponse> {
    let limit = request
        .app_data::<web::Data<HeaderLimit>>()
        .map_or(usize::MAX, |limit| limit.0);
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (size > limit).then(|| ApiError::HeadersTooLarge.error_response())
}
