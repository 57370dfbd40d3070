//! The one place where errors become `application/problem+json` (RFC 9457).
//!
//! Every response a client can see with a 4xx or 5xx status is built here:
//! handler errors, extractor errors, unknown routes and methods, and the
//! database being away. Unexpected errors are logged with their cause chain and
//! answered with a generic 500 that reveals nothing.

use std::error::Error as StdError;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use chat_domain::{BoxError, DomainError};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// Why a request was not authenticated; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header, or a scheme other than `Bearer`.
    Missing(&'static str),
    /// A bearer token was sent and rejected.
    Rejected(String),
}

impl AuthError {
    /// A token was sent and refused, for this reason.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected(reason.into())
    }

    /// The problem `detail`.
    pub fn detail(&self) -> &str {
        match self {
            Self::Missing(reason) => reason,
            Self::Rejected(reason) => reason,
        }
    }

    /// The RFC 6750 challenge.
    pub fn challenge(&self) -> String {
        match self {
            Self::Missing(_) => "Bearer".to_owned(),
            Self::Rejected(reason) => {
                format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"")
            }
        }
    }
}

/// One invalid field or parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The body field (`title`) or parameter (`chat_id`, `skip`, `limit`, `cursor`, `include`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field and its problem.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
    "detail": "request body is invalid",
    "errors": [{"field": "title", "message": "must not be empty"}]
}))]
pub struct Problem {
    /// Always `about:blank`: the status says it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for humans.
    pub detail: String,
    /// Every invalid field (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Everything a request can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no usable bearer token.
    Unauthorized(AuthError),
    /// 404: no such route, or no such chat for this user.
    NotFound(String),
    /// 405: the route exists, the method does not.
    MethodNotAllowed {
        /// The methods the route accepts (`Allow`).
        allow: &'static str,
    },
    /// 400: the body is not JSON.
    MalformedJson(String),
    /// 400: a request header is malformed; the detail names it.
    BadHeader(String),
    /// 409: a request with this `Idempotency-Key` is still being processed.
    IdempotencyKeyInFlight,
    /// 422: this `Idempotency-Key` was used with another request body.
    IdempotencyKeyReused,
    /// 413: the body exceeds the limit (in bytes).
    PayloadTooLarge(usize),
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType(String),
    /// 422: parameters or body fields are invalid; lists every one.
    Invalid {
        /// `request body is invalid` or `request parameters are invalid`.
        detail: &'static str,
        /// Every invalid field.
        errors: Vec<FieldError>,
    },
    /// 412: `If-Match` does not match the current ETag.
    PreconditionFailed,
    /// 408: the body did not arrive in time.
    BodyTimeout,
    /// 431: the request's headers are too large.
    HeadersTooLarge,
    /// 503: the database is unreachable or too slow; the cause is logged.
    Unavailable(Option<BoxError>),
    /// 500: a bug; the cause is logged, never shown.
    Internal(BoxError),
}

impl ApiError {
    /// A 500 with a cause for the log.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    /// 422 on the body.
    pub fn invalid_body(errors: Vec<FieldError>) -> Self {
        Self::Invalid {
            detail: "request body is invalid",
            errors,
        }
    }

    /// 422 on path or query parameters.
    pub fn invalid_parameters(errors: Vec<FieldError>) -> Self {
        Self::Invalid {
            detail: "request parameters are invalid",
            errors,
        }
    }

    /// 404 for a chat that is absent or another user's (the same answer).
    pub fn chat_not_found() -> Self {
        Self::NotFound("chat not found".into())
    }

    fn detail(&self) -> String {
        match self {
            Self::Unauthorized(error) => error.detail().to_owned(),
            Self::NotFound(detail)
            | Self::MalformedJson(detail)
            | Self::BadHeader(detail)
            | Self::UnsupportedMediaType(detail) => detail.clone(),
            Self::MethodNotAllowed { allow } => {
                format!("method not allowed; this route accepts {allow}")
            }
            Self::PayloadTooLarge(limit) => {
                format!("request body is larger than {limit} bytes")
            }
            Self::Invalid { detail, .. } => (*detail).to_owned(),
            Self::PreconditionFailed => "If-Match does not match the chat's current ETag".into(),
            Self::IdempotencyKeyInFlight => {
                "a request with this Idempotency-Key is still being processed; retry later".into()
            }
            Self::IdempotencyKeyReused => {
                "this Idempotency-Key was already used with a different request body".into()
            }
            Self::HeadersTooLarge => "request headers are too large".into(),
            Self::BodyTimeout => "the request body was not received in time".into(),
            Self::Unavailable(_) => "the service is temporarily unavailable; retry shortly".into(),
            Self::Internal(_) => "internal server error".into(),
        }
    }

    /// The problem document this error is answered with (the OpenAPI
    /// document's examples are made with it, so they are the real bodies).
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Invalid { errors, .. } => Some(errors.clone()),
                _ => None,
            },
        }
    }

    /// Logs what the client is not told: the causes of 5xx answers.
    fn log(&self) {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = %Chain(cause.as_ref()), "unexpected error")
            }
            Self::Unavailable(Some(cause)) => {
                tracing::warn!(error = %Chain(cause.as_ref()), "database unavailable")
            }
            _ => {}
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status_code(), self.detail())
    }
}

/// An error and its sources, `a: b: c`, for the log.
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::MalformedJson(_) | Self::BadHeader(_) => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let status = self.status_code();
        let errors = match self {
            Self::Invalid { errors, .. } => Some(errors.clone()),
            _ => None,
        };
        let mut response = problem_response(status, self.detail(), errors);
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(error) => {
                if let Ok(value) = HeaderValue::from_str(&error.challenge()) {
                    headers.insert(WWW_AUTHENTICATE, value);
                }
            }
            Self::MethodNotAllowed { allow } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            Self::Unavailable(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            Self::IdempotencyKeyInFlight => {
                headers.insert(RETRY_AFTER, HeaderValue::from(1_u32));
            }
            _ => {}
        }
        response
    }
}

/// A problem+json response with this status and detail.
pub fn problem_response(
    status: StatusCode,
    detail: String,
    errors: Option<Vec<FieldError>>,
) -> HttpResponse {
    let problem = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        errors,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, PROBLEM_JSON))
        .body(body)
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NotFound => Self::chat_not_found(),
            DomainError::PreconditionFailed => Self::PreconditionFailed,
            DomainError::Unavailable(cause) => Self::Unavailable(Some(cause)),
            // A server-generated id colliding, or a reference vanishing mid-write:
            // not the client's doing.
            DomainError::Conflict(what) => Self::internal(format!("unexpected conflict: {what}")),
            DomainError::Unexpected(cause) => Self::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    fn body_of(response: HttpResponse) -> serde_json::Value {
        let bytes = response.into_body().try_into_bytes().unwrap_or_default();
        serde_json::from_slice(&bytes).expect("problem JSON")
    }

    #[test]
    fn a_500_tells_nothing_of_its_cause() {
        let response = ApiError::internal("password=hunter2 in connection string").error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response);
        assert_eq!(body["detail"], "internal server error");
        assert!(!body.to_string().contains("hunter2"));
    }

    #[test]
    fn a_422_lists_every_field_and_has_the_reason_phrase_as_title() {
        let errors = vec![
            FieldError::new("title", "must not be empty"),
            FieldError::new("titel", "unknown field"),
        ];
        let response = ApiError::invalid_body(errors).error_response();
        assert_eq!(
            response
                .headers()
                .get(CONTENT_TYPE)
                .map(HeaderValue::as_bytes),
            Some(PROBLEM_JSON.as_bytes())
        );
        let body = body_of(response);
        assert_eq!(body["title"], "Unprocessable Entity");
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_503_says_when_to_retry() {
        let response = ApiError::Unavailable(None).error_response();
        assert_eq!(
            response
                .headers()
                .get(RETRY_AFTER)
                .map(HeaderValue::as_bytes),
            Some(&b"2"[..])
        );
    }
}
