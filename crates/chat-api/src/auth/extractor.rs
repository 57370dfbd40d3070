//! The extractor: a handler that takes an [`AuthUser`] cannot run
//! unauthenticated. The verifier is app data of its own
//! (`web::Data<TokenVerifier>`), so authentication needs nothing else of the
//! application's state.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use chat_domain::UserId;

use super::verify::TokenVerifier;
use crate::error::ApiError;

/// The authenticated caller: extracting it verifies the bearer token.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(verifier) = request.app_data::<web::Data<TokenVerifier>>() else {
            return ready(Err(ApiError::internal(
                "the token verifier is not configured",
            )));
        };
        let result = verifier.authenticate(request).map(|user| {
            tracing::Span::current().record("user_id", tracing::field::display(user));
            AuthUser(user)
        });
        ready(result.map_err(ApiError::Unauthorized))
    }
}
