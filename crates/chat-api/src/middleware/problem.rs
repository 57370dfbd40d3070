//! Every error a client sees has one shape: what a layer not ours answered or
//! returned (a CORS rejection, a missing documentation asset) becomes a
//! problem document with the same status and headers.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::{Error, HttpResponse};

use crate::error::{PROBLEM_JSON, problem_response};

/// A 4xx/5xx response that is not a problem document, rewritten as one.
pub fn from_response(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
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

/// An error returned by a layer that is not ours, as a problem document.
pub fn from_error(error: &Error) -> HttpResponse {
    problem_response(
        error.as_response_error().status_code(),
        error.to_string(),
        None,
    )
}
