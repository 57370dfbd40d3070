//! Headers every response carries: the request id, and `nosniff` so no
//! browser guesses a type other than the declared one.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{Error, HttpResponse};

use super::request_id::X_REQUEST_ID;

/// Stamps the headers on the route's response or on an answer built in the
/// pipeline (which leaves as an error that carries its response).
pub fn stamp(
    outcome: Result<ServiceResponse<BoxBody>, HttpResponse>,
    request_id: HeaderValue,
) -> Result<ServiceResponse<BoxBody>, Error> {
    match outcome {
        Ok(mut response) => {
            insert(response.headers_mut(), request_id);
            Ok(response)
        }
        Err(mut response) => {
            insert(response.headers_mut(), request_id);
            let status = response.status();
            Err(InternalError::from_response(status, response).into())
        }
    }
}

fn insert(headers: &mut HeaderMap, request_id: HeaderValue) {
    headers.insert(X_REQUEST_ID, request_id);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
